//! What each charger reports of its configuration (2.x device model, 1.6 configuration
//! keys), the desired configuration and its application, and (2.x) monitors, their events
//! and the alerts they raise. Tables of migration [`MIGRATION`]:
//!
//! | table | what |
//! |---|---|
//! | `device_variables` | per charger, one row per component/variable with every attribute and the characteristics (JSON), upserted from NotifyReport parts and 1.6 GetConfiguration answers |
//! | `device_reports` | per charger and `requestId`: the report requested, its status (`Requested`, `Receiving`, `Complete`, `Incomplete` (a `seqNo` gap), or the charger's refusal), parts, items, items dropped by the bound |
//! | `desired_config` | variable → value, for one charger or (`scope` `*`) for all; a charger's own entry wins |
//! | `config_applies` | every value sent to apply the desired configuration or set by hand, with the charger's status |
//! | `charger_monitors` | the monitors set through the API or listed by a NotifyMonitoringReport (their severity) |
//! | `device_events` | every NotifyEvent event, newest [`MAX_EVENTS_PER_CHARGER`] per charger |
//! | `device_alerts` | one row per monitor (or variable) whose `Alerting` event is not cleared yet, and the cleared ones |
//!
//! Bounds: at most [`MAX_VARIABLES_PER_CHARGER`] variables per charger (items of new
//! variables beyond it are dropped and counted in the report's `dropped`); at most
//! [`MAX_DESIRED`] desired entries per scope; events keep the newest
//! [`MAX_EVENTS_PER_CHARGER`] per charger. A report's parts are assembled by `requestId`:
//! each part's items are written as it arrives (so a report of any size costs one part's
//! memory), a `seqNo` that is not the next one is counted as a gap (whatever its size) and
//! the report ends `Incomplete`.

use std::sync::Arc;

use chrono::Utc;
use ocpp_central::device_model::{
    Component, ComponentVariable, DeviceEvents, Monitor, MonitoringReportPart, ReportBase,
    ReportItem, ReportPart, Variable, WriteVariable,
};
use ocpp_central::ocpp_types::Version;
use ocpp_central::{CallError, ChargerHandle, Event};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::Row;

use super::db::{self, Db, DbError};
use super::metrics::Metrics;

/// Migration 13: the device model, desired configuration, monitors, events and alerts.
pub const MIGRATION: &str = "CREATE TABLE device_variables (
        charger TEXT NOT NULL,
        var_key TEXT NOT NULL,
        component TEXT NOT NULL,
        component_instance TEXT,
        evse BIGINT,
        connector BIGINT,
        variable TEXT NOT NULL,
        variable_instance TEXT,
        attributes TEXT NOT NULL,
        characteristics TEXT,
        request_id BIGINT,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (charger, var_key)
    );
    CREATE TABLE device_reports (
        charger TEXT NOT NULL,
        request_id BIGINT NOT NULL,
        base TEXT NOT NULL,
        status TEXT NOT NULL,
        parts BIGINT NOT NULL,
        items BIGINT NOT NULL,
        dropped BIGINT NOT NULL,
        gaps BIGINT NOT NULL,
        next_seq BIGINT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (charger, request_id)
    );
    CREATE TABLE desired_config (
        scope TEXT NOT NULL,
        var_key TEXT NOT NULL,
        component TEXT NOT NULL,
        component_instance TEXT,
        evse BIGINT,
        connector BIGINT,
        variable TEXT NOT NULL,
        variable_instance TEXT,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (scope, var_key)
    );
    CREATE TABLE config_applies (
        id {ID},
        charger TEXT NOT NULL,
        var_key TEXT NOT NULL,
        value TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX config_applies_charger ON config_applies (charger, id);
    CREATE TABLE charger_monitors (
        charger TEXT NOT NULL,
        monitor_id BIGINT NOT NULL,
        component TEXT NOT NULL,
        variable TEXT NOT NULL,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        severity BIGINT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (charger, monitor_id)
    );
    CREATE TABLE device_events (
        id {ID},
        charger TEXT NOT NULL,
        event_id BIGINT NOT NULL,
        event_ts TEXT NOT NULL,
        trigger_kind TEXT NOT NULL,
        cleared BIGINT NOT NULL,
        actual_value TEXT NOT NULL,
        component TEXT NOT NULL,
        variable TEXT NOT NULL,
        monitor_id BIGINT,
        severity BIGINT,
        received_at TEXT NOT NULL
    );
    CREATE INDEX device_events_charger ON device_events (charger, id);
    CREATE TABLE device_alerts (
        charger TEXT NOT NULL,
        alert_key TEXT NOT NULL,
        component TEXT NOT NULL,
        variable TEXT NOT NULL,
        monitor_id BIGINT,
        severity BIGINT,
        value TEXT NOT NULL,
        raised_at TEXT NOT NULL,
        cleared_at TEXT,
        PRIMARY KEY (charger, alert_key)
    )";

/// The most variables stored per charger.
pub const MAX_VARIABLES_PER_CHARGER: i64 = 5000;
/// The most desired entries per scope.
pub const MAX_DESIRED: usize = 500;
/// The newest events kept per charger.
pub const MAX_EVENTS_PER_CHARGER: i64 = 1000;
/// The most rows a list returns.
pub const MAX_LIST: i64 = 1000;
/// Items per SetVariables when applying (the default `ItemsPerMessage[SetVariables]`
/// of a station is 50; smaller pieces fit every charger that follows the specification's
/// minimum).
const WRITE_CHUNK: usize = 20;

/// A component and variable as the API names them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VarName {
    /// 2.x component name (1.6: empty).
    #[serde(default)]
    pub component: String,
    /// Component instance.
    #[serde(default)]
    pub component_instance: Option<String>,
    /// EVSE of the component.
    #[serde(default)]
    pub evse: Option<i32>,
    /// Connector of the component.
    #[serde(default)]
    pub connector: Option<i32>,
    /// Variable name (1.6: the key).
    pub variable: String,
    /// Variable instance.
    #[serde(default)]
    pub variable_instance: Option<String>,
}

impl VarName {
    /// Its key: every part, `|`-separated.
    pub fn key(&self) -> String {
        let o = |s: &Option<String>| s.clone().unwrap_or_default();
        let n = |n: Option<i32>| n.map(|n| n.to_string()).unwrap_or_default();
        format!(
            "{}|{}|{}|{}|{}|{}",
            self.component,
            o(&self.component_instance),
            n(self.evse),
            n(self.connector),
            self.variable,
            o(&self.variable_instance)
        )
    }

    fn of(c: &Component, v: &Variable) -> VarName {
        VarName {
            component: c.name.clone(),
            component_instance: c.instance.clone(),
            evse: c.evse,
            connector: c.connector,
            variable: v.name.clone(),
            variable_instance: v.instance.clone(),
        }
    }

    fn component(&self) -> Component {
        Component {
            name: self.component.clone(),
            instance: self.component_instance.clone(),
            evse: self.evse,
            connector: self.connector,
        }
    }

    fn variable_ref(&self) -> Variable {
        Variable {
            name: self.variable.clone(),
            instance: self.variable_instance.clone(),
        }
    }

    /// `Component.Variable` for display.
    pub fn display(&self) -> String {
        if self.component.is_empty() {
            self.variable.clone()
        } else {
            format!("{}.{}", self.component, self.variable)
        }
    }

    fn bind_row(r: &sqlx::any::AnyRow) -> Result<VarName, DbError> {
        Ok(VarName {
            component: r.try_get("component")?,
            component_instance: r.try_get("component_instance")?,
            evse: r
                .try_get::<Option<i64>, _>("evse")?
                .and_then(|n| i32::try_from(n).ok()),
            connector: r
                .try_get::<Option<i64>, _>("connector")?
                .and_then(|n| i32::try_from(n).ok()),
            variable: r.try_get("variable")?,
            variable_instance: r.try_get("variable_instance")?,
        })
    }
}

/// One stored variable.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VariableRow {
    /// Which.
    #[serde(flatten)]
    pub name: VarName,
    /// The `Actual` value, when reported.
    pub value: Option<String>,
    /// Every attribute: `type`, `value`, `mutability`, `persistent`, `constant`.
    #[schema(value_type = Object)]
    pub attributes: Value,
    /// The characteristics (`unit`, `dataType`, `minLimit`, `maxLimit`, `valuesList`,
    /// `supportsMonitoring`), when reported.
    #[schema(value_type = Object)]
    pub characteristics: Option<Value>,
    /// When it was last reported.
    pub updated_at: String,
}

/// One report.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportRow {
    /// The charger.
    pub charger: String,
    /// The `requestId`.
    pub request_id: i64,
    /// `FullInventory`, `ConfigurationInventory`, `SummaryInventory`, `Configuration`
    /// (1.6 GetConfiguration) or `Unsolicited`.
    pub base: String,
    /// See the module docs.
    pub status: String,
    /// Parts received.
    pub parts: i64,
    /// Items stored.
    pub items: i64,
    /// Items dropped ([`MAX_VARIABLES_PER_CHARGER`]).
    pub dropped: i64,
    /// `seqNo` gaps seen.
    pub gaps: i64,
    /// When requested.
    pub created_at: String,
    /// When last changed.
    pub updated_at: String,
}

/// A value to write, or a desired one.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamedValue {
    /// Which.
    #[serde(flatten)]
    pub name: VarName,
    /// The value.
    pub value: String,
}

/// The result of one write.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WriteRow {
    /// Which.
    #[serde(flatten)]
    pub name: VarName,
    /// The value sent.
    pub value: String,
    /// The charger's status (`Accepted`, `RebootRequired`, `Rejected`, `UnknownComponent`,
    /// `UnknownVariable`, `NotSupportedAttributeType`, 1.6 `NotSupported`).
    pub status: String,
}

/// One line of the diff between the desired and the reported configuration.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiffRow {
    /// Which.
    #[serde(flatten)]
    pub name: VarName,
    /// The desired value.
    pub desired: String,
    /// The reported value (none: not reported).
    pub reported: Option<String>,
    /// `same`, `differs` or `unreported`.
    pub state: String,
    /// Where the desired value comes from: the charger's identity or `*`.
    pub scope: String,
}

/// One monitor.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MonitorRow {
    /// Its id on the charger (absent when asking for a new one).
    pub id: Option<i64>,
    /// Which variable (`Component.Variable` in the stored list).
    #[serde(flatten)]
    pub name: VarName,
    /// `UpperThreshold`, `LowerThreshold`, `Delta`, `Periodic`, `PeriodicClockAligned`.
    pub kind: String,
    /// The threshold, delta or interval.
    pub value: String,
    /// 0 (danger) to 9 (debug).
    pub severity: i64,
    /// (Answer) the charger's status.
    #[serde(default)]
    pub status: Option<String>,
}

/// One stored event.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventRow {
    /// Row id.
    pub id: i64,
    /// The charger.
    pub charger: String,
    /// The charger's `eventId`.
    pub event_id: i64,
    /// When it happened (the charger's time).
    pub timestamp: String,
    /// `Alerting`, `Delta` or `Periodic`.
    pub trigger: String,
    /// The condition is over.
    pub cleared: bool,
    /// The value.
    pub actual_value: String,
    /// `Component.Variable`.
    pub component: String,
    /// The variable.
    pub variable: String,
    /// The monitor.
    pub monitor_id: Option<i64>,
    /// Its severity, when the monitor is known.
    pub severity: Option<i64>,
}

/// One alert.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AlertRow {
    /// The charger.
    pub charger: String,
    /// The component.
    pub component: String,
    /// The variable.
    pub variable: String,
    /// The monitor.
    pub monitor_id: Option<i64>,
    /// Its severity (0 danger .. 9 debug), when known.
    pub severity: Option<i64>,
    /// The value that raised it.
    pub value: String,
    /// When it was raised.
    pub raised_at: String,
    /// When it was cleared (none: open).
    pub cleared_at: Option<String>,
}

/// Why a device-model operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceModelError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The charger did not answer (or the request was refused before sending).
    #[error("{0}")]
    Call(#[from] CallError),
    /// Too many entries.
    #[error("{0}")]
    TooMany(String),
}

impl From<sqlx::Error> for DeviceModelError {
    fn from(e: sqlx::Error) -> Self {
        DeviceModelError::Db(e.into())
    }
}

/// The device-model store (see the module docs).
#[derive(Debug)]
pub struct DeviceModel {
    db: Db,
    metrics: Metrics,
}

fn attributes_json(item: &ReportItem) -> Value {
    Value::Array(
        item.attributes
            .iter()
            .map(|a| {
                json!({
                    "type": a.kind,
                    "value": a.value,
                    "mutability": a.mutability,
                    "persistent": a.persistent,
                    "constant": a.constant,
                })
            })
            .collect(),
    )
}

fn characteristics_json(item: &ReportItem) -> Option<Value> {
    item.characteristics.as_ref().map(|c| {
        json!({
            "unit": c.unit,
            "dataType": c.data_type,
            "minLimit": c.min_limit,
            "maxLimit": c.max_limit,
            "valuesList": c.values_list,
            "supportsMonitoring": c.supports_monitoring,
        })
    })
}

impl DeviceModel {
    /// Over `db`, counting into `metrics`.
    pub fn new(db: Db, metrics: Metrics) -> Arc<DeviceModel> {
        Arc::new(DeviceModel { db, metrics })
    }

    // ------------------------------------------------------------ reports

    /// Asks for a report: 2.x GetBaseReport of `base` (a new `requestId`; the parts arrive
    /// as events), 1.6 GetConfiguration of every key (stored at once).
    pub async fn request_report(
        &self,
        h: &ChargerHandle,
        base: ReportBase,
    ) -> Result<ReportRow, DeviceModelError> {
        let charger = h.identity();
        let row = sqlx::query(
            "SELECT COALESCE(MAX(request_id), 0) AS m FROM device_reports WHERE charger = $1",
        )
        .bind(charger)
        .fetch_one(self.db.writer())
        .await?;
        let last: i64 = row.try_get("m")?;
        // Ids from 1; past 2^31 - 1 they start again at 1 (the old rows are replaced).
        let request_id = if last >= i64::from(i32::MAX) {
            1
        } else {
            last + 1
        };
        let v16 = h.version() == Version::V16;
        let base_word = if v16 { "Configuration" } else { base.as_str() };
        let now = db::ts(Utc::now());
        sqlx::query("DELETE FROM device_reports WHERE charger = $1 AND request_id = $2")
            .bind(charger)
            .bind(request_id)
            .execute(self.db.writer())
            .await?;
        sqlx::query(
            "INSERT INTO device_reports (charger, request_id, base, status, parts, items, dropped, gaps, next_seq, created_at, updated_at)
             VALUES ($1, $2, $3, 'Requested', 0, 0, 0, 0, 0, $4, $4)",
        )
        .bind(charger)
        .bind(request_id)
        .bind(base_word)
        .bind(&now)
        .execute(self.db.writer())
        .await?;
        let id32 = i32::try_from(request_id).unwrap_or(1);
        if v16 {
            match h.get_configuration(&[]).await {
                Ok(c) => {
                    let items: Vec<ReportItem> = c
                        .known
                        .into_iter()
                        .map(|k| ReportItem {
                            component: Component::default(),
                            variable: Variable::named(k.key),
                            attributes: vec![ocpp_central::device_model::ReportedAttribute {
                                kind: "Actual".into(),
                                value: k.value,
                                mutability: if k.readonly { "ReadOnly" } else { "ReadWrite" }
                                    .into(),
                                persistent: true,
                                constant: false,
                            }],
                            characteristics: None,
                        })
                        .collect();
                    let part = ReportPart {
                        request_id: id32,
                        seq_no: 0,
                        tbc: false,
                        generated_at: now.clone(),
                        items,
                    };
                    self.on_report(charger, &part).await?;
                }
                Err(e) => {
                    self.report_status(charger, request_id, "Failed").await?;
                    return Err(e.into());
                }
            }
        } else {
            match h.get_base_report(id32, base).await {
                Ok(a) => {
                    // The parts may already have arrived: only a report still `Requested`
                    // takes the answer's word.
                    let word = if a.status == "Accepted" {
                        "Receiving"
                    } else {
                        a.status.as_str()
                    };
                    sqlx::query(
                        "UPDATE device_reports SET status = $1, updated_at = $2
                         WHERE charger = $3 AND request_id = $4 AND status = 'Requested'",
                    )
                    .bind(word)
                    .bind(db::ts(Utc::now()))
                    .bind(charger)
                    .bind(request_id)
                    .execute(self.db.writer())
                    .await?;
                }
                Err(e) => {
                    self.report_status(charger, request_id, "Failed").await?;
                    return Err(e.into());
                }
            }
        }
        Ok(self
            .report(charger, request_id)
            .await?
            .ok_or(DbError::Corrupt {
                column: "device_reports",
                value: request_id.to_string(),
            })?)
    }

    async fn report_status(&self, charger: &str, id: i64, status: &str) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE device_reports SET status = $1, updated_at = $2 WHERE charger = $3 AND request_id = $4",
        )
        .bind(status)
        .bind(db::ts(Utc::now()))
        .bind(charger)
        .bind(id)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// Stores one NotifyReport part (see the module docs).
    pub async fn on_report(&self, charger: &str, part: &ReportPart) -> Result<(), DbError> {
        let now = db::ts(Utc::now());
        let request_id = i64::from(part.request_id);
        let mut tx = self.db.begin_write().await?;
        let row = sqlx::query(
            "SELECT next_seq, gaps FROM device_reports WHERE charger = $1 AND request_id = $2",
        )
        .bind(charger)
        .bind(request_id)
        .fetch_optional(&mut *tx)
        .await?;
        let (next_seq, mut gaps) = match row {
            Some(r) => (
                r.try_get::<i64, _>("next_seq")?,
                r.try_get::<i64, _>("gaps")?,
            ),
            None => {
                sqlx::query(
                    "INSERT INTO device_reports (charger, request_id, base, status, parts, items, dropped, gaps, next_seq, created_at, updated_at)
                     VALUES ($1, $2, 'Unsolicited', 'Receiving', 0, 0, 0, 0, 0, $3, $3)",
                )
                .bind(charger)
                .bind(request_id)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
                (0, 0)
            }
        };
        if i64::from(part.seq_no) != next_seq {
            gaps += 1;
        }
        let count: i64 =
            sqlx::query("SELECT COUNT(*) AS n FROM device_variables WHERE charger = $1")
                .bind(charger)
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
        let mut room = MAX_VARIABLES_PER_CHARGER.saturating_sub(count);
        let (mut stored, mut dropped) = (0i64, 0i64);
        for item in &part.items {
            let name = VarName::of(&item.component, &item.variable);
            let key = name.key();
            let exists = sqlx::query(
                "SELECT 1 AS x FROM device_variables WHERE charger = $1 AND var_key = $2",
            )
            .bind(charger)
            .bind(&key)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
            if !exists {
                if room <= 0 {
                    dropped += 1;
                    continue;
                }
                room -= 1;
            }
            sqlx::query(
                "INSERT INTO device_variables (charger, var_key, component, component_instance, evse, connector,
                     variable, variable_instance, attributes, characteristics, request_id, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                 ON CONFLICT (charger, var_key) DO UPDATE SET attributes = excluded.attributes,
                     characteristics = COALESCE(excluded.characteristics, device_variables.characteristics),
                     request_id = excluded.request_id, updated_at = excluded.updated_at",
            )
            .bind(charger)
            .bind(&key)
            .bind(&name.component)
            .bind(&name.component_instance)
            .bind(name.evse.map(i64::from))
            .bind(name.connector.map(i64::from))
            .bind(&name.variable)
            .bind(&name.variable_instance)
            .bind(attributes_json(item).to_string())
            .bind(characteristics_json(item).map(|c| c.to_string()))
            .bind(request_id)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            stored += 1;
        }
        let status = match (part.tbc, gaps > 0) {
            (true, _) => "Receiving",
            (false, false) => "Complete",
            (false, true) => "Incomplete",
        };
        sqlx::query(
            "UPDATE device_reports SET status = $1, parts = parts + 1, items = items + $2, dropped = dropped + $3,
                 gaps = $4, next_seq = $5, updated_at = $6 WHERE charger = $7 AND request_id = $8",
        )
        .bind(status)
        .bind(stored)
        .bind(dropped)
        .bind(gaps)
        .bind(i64::from(part.seq_no) + 1)
        .bind(&now)
        .bind(charger)
        .bind(request_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    fn report_row(r: &sqlx::any::AnyRow) -> Result<ReportRow, DbError> {
        Ok(ReportRow {
            charger: r.try_get("charger")?,
            request_id: r.try_get("request_id")?,
            base: r.try_get("base")?,
            status: r.try_get("status")?,
            parts: r.try_get("parts")?,
            items: r.try_get("items")?,
            dropped: r.try_get("dropped")?,
            gaps: r.try_get("gaps")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }

    /// One report.
    pub async fn report(&self, charger: &str, id: i64) -> Result<Option<ReportRow>, DbError> {
        let r = sqlx::query("SELECT * FROM device_reports WHERE charger = $1 AND request_id = $2")
            .bind(charger)
            .bind(id)
            .fetch_optional(self.db.writer())
            .await?;
        r.as_ref().map(Self::report_row).transpose()
    }

    /// A charger's reports, newest first.
    pub async fn reports(&self, charger: &str) -> Result<Vec<ReportRow>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT * FROM device_reports WHERE charger = $1 ORDER BY updated_at DESC, request_id DESC LIMIT {MAX_LIST}"
        ))
        .bind(charger)
        .fetch_all(self.db.writer())
        .await?;
        rows.iter().map(Self::report_row).collect()
    }

    /// A charger's variables, ordered by component and variable, those whose
    /// `Component.Variable` contains `search` (case-insensitive) when given.
    pub async fn variables(
        &self,
        charger: &str,
        search: Option<&str>,
    ) -> Result<Vec<VariableRow>, DbError> {
        let rows = sqlx::query(
            "SELECT * FROM device_variables WHERE charger = $1 ORDER BY component, evse, connector, variable, variable_instance",
        )
        .bind(charger)
        .fetch_all(self.db.writer())
        .await?;
        let needle = search.map(str::to_lowercase);
        let mut out = Vec::new();
        for r in &rows {
            let name = VarName::bind_row(r)?;
            if let Some(n) = &needle {
                let hay = format!(
                    "{}[{}].{}[{}]",
                    name.component,
                    name.component_instance.clone().unwrap_or_default(),
                    name.variable,
                    name.variable_instance.clone().unwrap_or_default()
                )
                .to_lowercase();
                if !hay.contains(n.as_str()) {
                    continue;
                }
            }
            let attributes: Value =
                serde_json::from_str(&r.try_get::<String, _>("attributes")?).unwrap_or_default();
            let value = attributes
                .as_array()
                .and_then(|a| a.iter().find(|a| a["type"] == "Actual"))
                .and_then(|a| a["value"].as_str())
                .map(str::to_owned);
            let characteristics = r
                .try_get::<Option<String>, _>("characteristics")?
                .and_then(|c| serde_json::from_str(&c).ok());
            out.push(VariableRow {
                name,
                value,
                attributes,
                characteristics,
                updated_at: r.try_get("updated_at")?,
            });
        }
        Ok(out)
    }

    // ------------------------------------------------------------ writes

    /// Writes values through the charger (2.x SetVariables in pieces, 1.6
    /// ChangeConfiguration), records each status in `config_applies` and, when accepted,
    /// the new value as the stored `Actual`.
    pub async fn write(
        &self,
        h: &ChargerHandle,
        values: &[NamedValue],
    ) -> Result<Vec<WriteRow>, DeviceModelError> {
        let mut out = Vec::with_capacity(values.len());
        for chunk in values.chunks(WRITE_CHUNK) {
            let vars: Vec<WriteVariable> = chunk
                .iter()
                .map(|v| WriteVariable {
                    component: v.name.component(),
                    variable: v.name.variable_ref(),
                    attribute: None,
                    value: v.value.clone(),
                })
                .collect();
            let results = h.write_variables(&vars).await?;
            let now = db::ts(Utc::now());
            for (v, r) in chunk.iter().zip(results) {
                let key = v.name.key();
                sqlx::query(
                    "INSERT INTO config_applies (charger, var_key, value, status, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(h.identity())
                .bind(&key)
                .bind(&v.value)
                .bind(&r.status)
                .bind(&now)
                .execute(self.db.writer())
                .await?;
                if matches!(r.status.as_str(), "Accepted" | "RebootRequired") {
                    self.store_value(h.identity(), &v.name, &v.value).await?;
                }
                out.push(WriteRow {
                    name: v.name.clone(),
                    value: v.value.clone(),
                    status: r.status,
                });
            }
        }
        Ok(out)
    }

    /// Sets the stored `Actual` value of a variable (a row is made when none was reported).
    async fn store_value(&self, charger: &str, name: &VarName, value: &str) -> Result<(), DbError> {
        let key = name.key();
        let row = sqlx::query(
            "SELECT attributes FROM device_variables WHERE charger = $1 AND var_key = $2",
        )
        .bind(charger)
        .bind(&key)
        .fetch_optional(self.db.writer())
        .await?;
        let mut attributes: Value = match &row {
            Some(r) => serde_json::from_str(&r.try_get::<String, _>("attributes")?)
                .unwrap_or_else(|_| json!([])),
            None => json!([]),
        };
        let list = attributes
            .as_array_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        let mut list: Vec<Value> = list;
        match list.iter_mut().find(|a| a["type"] == "Actual") {
            Some(a) if a["mutability"] != "WriteOnly" => a["value"] = json!(value),
            Some(_) => {}
            None => {
                list.push(json!({ "type": "Actual", "value": value, "mutability": "ReadWrite" }))
            }
        }
        let text = Value::Array(list).to_string();
        let now = db::ts(Utc::now());
        if row.is_some() {
            sqlx::query(
                "UPDATE device_variables SET attributes = $1, updated_at = $2 WHERE charger = $3 AND var_key = $4",
            )
            .bind(text)
            .bind(now)
            .bind(charger)
            .bind(key)
            .execute(self.db.writer())
            .await?;
        } else {
            let count: i64 =
                sqlx::query("SELECT COUNT(*) AS n FROM device_variables WHERE charger = $1")
                    .bind(charger)
                    .fetch_one(self.db.writer())
                    .await?
                    .try_get("n")?;
            if count >= MAX_VARIABLES_PER_CHARGER {
                return Ok(());
            }
            sqlx::query(
                "INSERT INTO device_variables (charger, var_key, component, component_instance, evse, connector,
                     variable, variable_instance, attributes, characteristics, request_id, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, NULL, $10)",
            )
            .bind(charger)
            .bind(key)
            .bind(&name.component)
            .bind(&name.component_instance)
            .bind(name.evse.map(i64::from))
            .bind(name.connector.map(i64::from))
            .bind(&name.variable)
            .bind(&name.variable_instance)
            .bind(text)
            .bind(now)
            .execute(self.db.writer())
            .await?;
        }
        Ok(())
    }

    // ------------------------------------------------------------ desired configuration

    /// Replaces the desired configuration of `scope` (a charger's identity, or `*` for all).
    pub async fn set_desired(
        &self,
        scope: &str,
        entries: &[NamedValue],
    ) -> Result<(), DeviceModelError> {
        if entries.len() > MAX_DESIRED {
            return Err(DeviceModelError::TooMany(format!(
                "{} entries; at most {MAX_DESIRED} per scope",
                entries.len()
            )));
        }
        let now = db::ts(Utc::now());
        let mut tx = self.db.begin_write().await?;
        sqlx::query("DELETE FROM desired_config WHERE scope = $1")
            .bind(scope)
            .execute(&mut *tx)
            .await?;
        for e in entries {
            sqlx::query(
                "INSERT INTO desired_config (scope, var_key, component, component_instance, evse, connector, variable, variable_instance, value, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (scope, var_key) DO UPDATE SET value = excluded.value",
            )
            .bind(scope)
            .bind(e.name.key())
            .bind(&e.name.component)
            .bind(&e.name.component_instance)
            .bind(e.name.evse.map(i64::from))
            .bind(e.name.connector.map(i64::from))
            .bind(&e.name.variable)
            .bind(&e.name.variable_instance)
            .bind(&e.value)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The desired configuration of `scope`.
    pub async fn desired(&self, scope: &str) -> Result<Vec<NamedValue>, DbError> {
        let rows = sqlx::query(
            "SELECT * FROM desired_config WHERE scope = $1 ORDER BY component, variable",
        )
        .bind(scope)
        .fetch_all(self.db.writer())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(NamedValue {
                    name: VarName::bind_row(r)?,
                    value: r.try_get("value")?,
                })
            })
            .collect()
    }

    /// The desired configuration of `charger` (its own entries over those for all) against
    /// what it reported.
    pub async fn diff(&self, charger: &str) -> Result<Vec<DiffRow>, DbError> {
        let mut wanted: Vec<(String, NamedValue)> = Vec::new();
        for scope in ["*", charger] {
            for e in self.desired(scope).await? {
                let key = e.name.key();
                wanted.retain(|(_, w)| w.name.key() != key);
                wanted.push((scope.to_owned(), e));
            }
        }
        let reported = self.variables(charger, None).await?;
        let mut out = Vec::with_capacity(wanted.len());
        for (scope, w) in wanted {
            let key = w.name.key();
            let got = reported.iter().find(|r| r.name.key() == key);
            let value = got.and_then(|r| r.value.clone());
            let state = match (got, &value) {
                (None, _) => "unreported",
                (Some(_), Some(v)) if *v == w.value => "same",
                _ => "differs",
            };
            out.push(DiffRow {
                name: w.name,
                desired: w.value,
                reported: value,
                state: state.into(),
                scope,
            });
        }
        Ok(out)
    }

    /// Applies the diff: writes every desired value that differs or was not reported.
    pub async fn apply(&self, h: &ChargerHandle) -> Result<Vec<WriteRow>, DeviceModelError> {
        let todo: Vec<NamedValue> = self
            .diff(h.identity())
            .await?
            .into_iter()
            .filter(|d| d.state != "same")
            .map(|d| NamedValue {
                name: d.name,
                value: d.desired,
            })
            .collect();
        self.write(h, &todo).await
    }

    // ------------------------------------------------------------ monitoring

    /// Sets monitors through the charger (SetVariableMonitoring); the accepted ones are
    /// stored with their severity.
    pub async fn set_monitors(
        &self,
        h: &ChargerHandle,
        monitors: &[MonitorRow],
    ) -> Result<Vec<MonitorRow>, DeviceModelError> {
        let asked: Vec<Monitor> = monitors
            .iter()
            .map(|m| Monitor {
                id: m.id.and_then(|i| i32::try_from(i).ok()),
                component: m.name.component(),
                variable: m.name.variable_ref(),
                kind: m.kind.clone(),
                value: m.value.clone(),
                severity: i32::try_from(m.severity).unwrap_or(i32::MAX),
                transaction: false,
            })
            .collect();
        let results = h.set_variable_monitoring(&asked).await?;
        let mut out = Vec::with_capacity(results.len());
        for (m, r) in monitors.iter().zip(results) {
            let mut row = m.clone();
            row.id = r.id.map(i64::from);
            row.status = Some(r.status.clone());
            if r.status == "Accepted" {
                if let Some(id) = r.id {
                    self.store_monitor(h.identity(), i64::from(id), &row)
                        .await?;
                }
            }
            out.push(row);
        }
        Ok(out)
    }

    async fn store_monitor(&self, charger: &str, id: i64, m: &MonitorRow) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO charger_monitors (charger, monitor_id, component, variable, kind, value, severity, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (charger, monitor_id) DO UPDATE SET component = excluded.component, variable = excluded.variable,
                 kind = excluded.kind, value = excluded.value, severity = excluded.severity, updated_at = excluded.updated_at",
        )
        .bind(charger)
        .bind(id)
        .bind(m.name.component.clone())
        .bind(m.name.variable.clone())
        .bind(&m.kind)
        .bind(&m.value)
        .bind(m.severity)
        .bind(db::ts(Utc::now()))
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// Clears a monitor (ClearVariableMonitoring); returns the charger's status.
    pub async fn clear_monitor(
        &self,
        h: &ChargerHandle,
        id: i32,
    ) -> Result<String, DeviceModelError> {
        let r = h.clear_variable_monitoring(&[id]).await?;
        let status = r.first().map(|(_, s)| s.clone()).unwrap_or_default();
        if matches!(status.as_str(), "Accepted" | "NotFound") {
            sqlx::query("DELETE FROM charger_monitors WHERE charger = $1 AND monitor_id = $2")
                .bind(h.identity())
                .bind(i64::from(id))
                .execute(self.db.writer())
                .await?;
        }
        Ok(status)
    }

    /// The monitors stored for `charger`.
    pub async fn monitors(&self, charger: &str) -> Result<Vec<MonitorRow>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT * FROM charger_monitors WHERE charger = $1 ORDER BY monitor_id LIMIT {MAX_LIST}"
        ))
        .bind(charger)
        .fetch_all(self.db.writer())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MonitorRow {
                    id: Some(r.try_get("monitor_id")?),
                    name: VarName {
                        component: r.try_get("component")?,
                        variable: r.try_get("variable")?,
                        ..VarName::default()
                    },
                    kind: r.try_get("kind")?,
                    value: r.try_get("value")?,
                    severity: r.try_get("severity")?,
                    status: None,
                })
            })
            .collect()
    }

    /// Stores the monitors of a NotifyMonitoringReport part.
    pub async fn on_monitoring_report(
        &self,
        charger: &str,
        part: &MonitoringReportPart,
    ) -> Result<(), DbError> {
        for m in part.monitors.iter().take(MAX_LIST as usize) {
            let Some(id) = m.id else { continue };
            let row = MonitorRow {
                id: Some(i64::from(id)),
                name: VarName::of(&m.component, &m.variable),
                kind: m.kind.clone(),
                value: m.value.clone(),
                severity: i64::from(m.severity),
                status: None,
            };
            self.store_monitor(charger, i64::from(id), &row).await?;
        }
        Ok(())
    }

    /// Stores a NotifyEvent's events, keeps the newest [`MAX_EVENTS_PER_CHARGER`], raises
    /// and clears alerts, and counts them on `/metrics`.
    pub async fn on_events(&self, charger: &str, events: &DeviceEvents) -> Result<(), DbError> {
        let now = db::ts(Utc::now());
        for e in events.events.iter().take(MAX_EVENTS_PER_CHARGER as usize) {
            let severity: Option<i64> = match e.monitor_id {
                Some(id) => sqlx::query(
                    "SELECT severity FROM charger_monitors WHERE charger = $1 AND monitor_id = $2",
                )
                .bind(charger)
                .bind(i64::from(id))
                .fetch_optional(self.db.writer())
                .await?
                .map(|r| r.try_get("severity"))
                .transpose()?,
                None => None,
            };
            let name = VarName::of(&e.component, &e.variable);
            sqlx::query(
                "INSERT INTO device_events (charger, event_id, event_ts, trigger_kind, cleared, actual_value, component, variable, monitor_id, severity, received_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(charger)
            .bind(i64::from(e.event_id))
            .bind(&e.timestamp)
            .bind(&e.trigger)
            .bind(i64::from(e.cleared))
            .bind(&e.actual_value)
            .bind(name.display())
            .bind(&name.variable)
            .bind(e.monitor_id.map(i64::from))
            .bind(severity)
            .bind(&now)
            .execute(self.db.writer())
            .await?;
            self.metrics.device_event(&e.trigger);
            if e.trigger == "Alerting" {
                let key = match e.monitor_id {
                    Some(id) => format!("monitor:{id}"),
                    None => format!("variable:{}", name.key()),
                };
                if e.cleared {
                    sqlx::query(
                        "UPDATE device_alerts SET cleared_at = $1 WHERE charger = $2 AND alert_key = $3 AND cleared_at IS NULL",
                    )
                    .bind(&now)
                    .bind(charger)
                    .bind(&key)
                    .execute(self.db.writer())
                    .await?;
                } else {
                    sqlx::query(
                        "INSERT INTO device_alerts (charger, alert_key, component, variable, monitor_id, severity, value, raised_at, cleared_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)
                         ON CONFLICT (charger, alert_key) DO UPDATE SET value = excluded.value, severity = excluded.severity,
                             raised_at = excluded.raised_at, cleared_at = NULL",
                    )
                    .bind(charger)
                    .bind(&key)
                    .bind(name.display())
                    .bind(&name.variable)
                    .bind(e.monitor_id.map(i64::from))
                    .bind(severity)
                    .bind(&e.actual_value)
                    .bind(&now)
                    .execute(self.db.writer())
                    .await?;
                }
            }
        }
        // Retention: the newest MAX_EVENTS_PER_CHARGER rows of this charger.
        sqlx::query(&format!(
            "DELETE FROM device_events WHERE charger = $1 AND id <= (
                 SELECT id FROM device_events WHERE charger = $1 ORDER BY id DESC LIMIT 1 OFFSET {MAX_EVENTS_PER_CHARGER})"
        ))
        .bind(charger)
        .execute(self.db.writer())
        .await?;
        self.count_alerts().await
    }

    /// Sets the open-alert gauges from the table.
    pub async fn count_alerts(&self) -> Result<(), DbError> {
        let rows = sqlx::query(
            "SELECT COALESCE(severity, -1) AS s, COUNT(*) AS n FROM device_alerts WHERE cleared_at IS NULL GROUP BY COALESCE(severity, -1)",
        )
        .fetch_all(self.db.writer())
        .await?;
        let mut counts = [0i64; 11];
        for r in &rows {
            let s: i64 = r.try_get("s")?;
            let n: i64 = r.try_get("n")?;
            let i = usize::try_from(s.clamp(-1, 9) + 1).unwrap_or(0);
            counts[i] = counts[i].saturating_add(n);
        }
        for (i, n) in counts.iter().enumerate() {
            let label = if i == 0 {
                "unknown".to_owned()
            } else {
                (i - 1).to_string()
            };
            self.metrics.open_alerts(&label, *n);
        }
        Ok(())
    }

    /// The newest events (of one charger when given).
    pub async fn events(&self, charger: Option<&str>) -> Result<Vec<EventRow>, DbError> {
        let rows = match charger {
            Some(c) => {
                sqlx::query(&format!(
                "SELECT * FROM device_events WHERE charger = $1 ORDER BY id DESC LIMIT {MAX_LIST}"
            ))
                .bind(c)
                .fetch_all(self.db.writer())
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT * FROM device_events ORDER BY id DESC LIMIT {MAX_LIST}"
                ))
                .fetch_all(self.db.writer())
                .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(EventRow {
                    id: r.try_get("id")?,
                    charger: r.try_get("charger")?,
                    event_id: r.try_get("event_id")?,
                    timestamp: r.try_get("event_ts")?,
                    trigger: r.try_get("trigger_kind")?,
                    cleared: r.try_get::<i64, _>("cleared")? != 0,
                    actual_value: r.try_get("actual_value")?,
                    component: r.try_get("component")?,
                    variable: r.try_get("variable")?,
                    monitor_id: r.try_get("monitor_id")?,
                    severity: r.try_get("severity")?,
                })
            })
            .collect()
    }

    /// The alerts: open ones first (most severe first), then the cleared ones.
    pub async fn alerts(&self) -> Result<Vec<AlertRow>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT * FROM device_alerts ORDER BY CASE WHEN cleared_at IS NULL THEN 0 ELSE 1 END,
                 COALESCE(severity, 10), raised_at DESC LIMIT {MAX_LIST}"
        ))
        .fetch_all(self.db.writer())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AlertRow {
                    charger: r.try_get("charger")?,
                    component: r.try_get("component")?,
                    variable: r.try_get("variable")?,
                    monitor_id: r.try_get("monitor_id")?,
                    severity: r.try_get("severity")?,
                    value: r.try_get("value")?,
                    raised_at: r.try_get("raised_at")?,
                    cleared_at: r.try_get("cleared_at")?,
                })
            })
            .collect()
    }

    /// Follows the charger's reports, monitoring reports and events.
    pub async fn on_event(&self, charger: &ChargerHandle, event: &Event) -> Result<(), DbError> {
        match event {
            Event::Report { part, .. } => self.on_report(charger.identity(), part).await,
            Event::MonitoringReport { part, .. } => {
                self.on_monitoring_report(charger.identity(), part).await
            }
            Event::DeviceEvents { events, .. } => self.on_events(charger.identity(), events).await,
            _ => Ok(()),
        }
    }
}

/// A GetReport filter from names (a `variable` of `""`: the whole component).
pub fn filter_of(names: &[VarName]) -> Vec<ComponentVariable> {
    names
        .iter()
        .map(|n| ComponentVariable {
            component: n.component(),
            variable: (!n.variable.is_empty()).then(|| n.variable_ref()),
        })
        .collect()
}
