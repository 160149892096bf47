//! What a driver looks for: each connector's maximum power, connector type and phases, each
//! site's location, and the one query behind the driver app's charger list and site map.
//!
//! - **Specs** (`connector_specs`): per charger, EVSE and connector (connector `-1`: the whole
//!   EVSE, and a 1.6 connector). A 2.x charger's NotifyReport fills them ([`specs_of`]):
//!   `EVSE` `Power` `maxLimit` (W or kW) and `SupplyPhases` on the EVSE row, `Connector`
//!   `ConnectorType` on the connector's. A 1.6 charger says nothing of either: the operator
//!   sets them (`PUT /api/chargers/{id}/connectors/{evse}/spec`). What the operator set wins
//!   over what a later report says (the row's `source` is `operator` until deleted), and, per
//!   field, over a reported row of the same connector or EVSE.
//! - **Locations** (`site_locations`): latitude and longitude (exact decimals) and an address
//!   per site, set by the operator.
//! - [`find`]: the driver's charger list in one SQL statement whatever the number of chargers
//!   (filters: power at least N kW, connector type, available only, site, text; paging), and
//!   [`site_overview`]: every located site with available/total per connector type, also one
//!   statement.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::Utc;
use ocpp_central::device_model::ReportPart;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::Row;

use super::db::{self, Db, DbError};

/// Migration 22: connector specs and site locations (and the alert tables of
/// [`super::alerts`]).
pub const MIGRATION: &str = "CREATE TABLE connector_specs (
        charger TEXT NOT NULL,
        evse BIGINT NOT NULL,
        connector BIGINT NOT NULL,
        max_power_w BIGINT,
        connector_type TEXT,
        phases BIGINT,
        source TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (charger, evse, connector)
    );
    CREATE INDEX connector_specs_power ON connector_specs (max_power_w);
    CREATE TABLE site_locations (
        site_id BIGINT PRIMARY KEY,
        lat TEXT NOT NULL,
        lon TEXT NOT NULL,
        address TEXT
    );
    CREATE TABLE alert_settings (
        id BIGINT PRIMARY KEY,
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE alert_states (
        charger TEXT PRIMARY KEY,
        flag TEXT NOT NULL,
        since TEXT NOT NULL
    );
    CREATE TABLE alert_deliveries (
        id {ID},
        charger TEXT NOT NULL,
        event TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        last_error TEXT,
        next_at TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX alert_deliveries_status ON alert_deliveries (status, id)";

/// The most watts a spec may say (1 GW): keeps every conversion in range.
pub const MAX_POWER_W: i64 = 1_000_000_000;
/// The longest connector type name.
pub const MAX_TYPE_LEN: usize = 32;
/// The most chargers one page of [`find`] returns.
pub const MAX_PAGE: usize = 200;
/// The most sites [`site_overview`] returns.
pub const MAX_SITES: i64 = 2_000;

/// A connector's specs as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// The most power, in W.
    pub max_power_w: Option<i64>,
    /// `cCCS2`, `cType2`, `sType2`, `cCHAdeMO`, ... (2.x `ConnectorEnumType` names, or the
    /// operator's words).
    pub connector_type: Option<String>,
    /// Supply phases (1 to 3; 0 for DC).
    pub phases: Option<i64>,
}

/// Where a spec came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The charger's device model.
    Reported,
    /// The operator, through the API.
    Operator,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Reported => "reported",
            Source::Operator => "operator",
        }
    }
}

/// The specs one NotifyReport part tells, per (EVSE, connector) (`-1`: the EVSE): `Power`
/// `maxLimit` (unit `W`, or `kW`) and `SupplyPhases` of `EVSE` components, `ConnectorType` of
/// `Connector` components. Values that do not parse, or are out of range, are left out.
pub fn specs_of(part: &ReportPart) -> BTreeMap<(i64, i64), Spec> {
    let mut out: BTreeMap<(i64, i64), Spec> = BTreeMap::new();
    for item in &part.items {
        let Some(evse) = item.component.evse.filter(|e| *e > 0) else {
            continue;
        };
        let actual = || {
            item.attributes
                .iter()
                .find(|a| a.kind == "Actual")
                .and_then(|a| a.value.clone())
        };
        match (item.component.name.as_str(), item.variable.name.as_str()) {
            ("EVSE", "Power") => {
                let Some(c) = &item.characteristics else {
                    continue;
                };
                let scale = match c.unit.as_deref() {
                    None | Some("W") => Decimal::ONE,
                    Some("kW") => Decimal::from(1000),
                    Some(_) => continue,
                };
                let w = c
                    .max_limit
                    .as_deref()
                    .and_then(|m| Decimal::from_str(m.trim()).ok())
                    .and_then(|m| m.checked_mul(scale))
                    .and_then(|m| m.round().to_i64())
                    .filter(|w| (0..=MAX_POWER_W).contains(w));
                if let Some(w) = w {
                    out.entry((i64::from(evse), -1)).or_default().max_power_w = Some(w);
                }
            }
            ("EVSE", "SupplyPhases") => {
                if let Some(p) = actual()
                    .and_then(|v| v.trim().parse::<i64>().ok())
                    .filter(|p| (0..=3).contains(p))
                {
                    out.entry((i64::from(evse), -1)).or_default().phases = Some(p);
                }
            }
            ("Connector", "ConnectorType") => {
                let connector = item
                    .component
                    .connector
                    .filter(|c| *c > 0)
                    .map_or(-1, i64::from);
                if let Some(t) = actual().filter(|t| valid_type(t)) {
                    out.entry((i64::from(evse), connector))
                        .or_default()
                        .connector_type = Some(t);
                }
            }
            _ => {}
        }
    }
    out
}

/// Whether `t` is a connector type name we store: 1 to [`MAX_TYPE_LEN`] ASCII letters,
/// digits, `-`, `_` or `.`.
pub fn valid_type(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= MAX_TYPE_LEN
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Stores what a report told ([`specs_of`]), field by field, leaving rows the operator set
/// alone.
pub async fn on_report(db: &Db, charger: &str, part: &ReportPart) -> Result<(), DbError> {
    let specs = specs_of(part);
    if specs.is_empty() {
        return Ok(());
    }
    let now = db::ts(Utc::now());
    let mut tx = db.begin_write().await?;
    for ((evse, connector), s) in specs {
        sqlx::query(
            "INSERT INTO connector_specs (charger, evse, connector, max_power_w, connector_type, phases, source, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'reported', $7)
             ON CONFLICT (charger, evse, connector) DO UPDATE SET
                 max_power_w = COALESCE(excluded.max_power_w, connector_specs.max_power_w),
                 connector_type = COALESCE(excluded.connector_type, connector_specs.connector_type),
                 phases = COALESCE(excluded.phases, connector_specs.phases),
                 updated_at = excluded.updated_at
             WHERE connector_specs.source = 'reported'",
        )
        .bind(charger)
        .bind(evse)
        .bind(connector)
        .bind(s.max_power_w)
        .bind(s.connector_type)
        .bind(s.phases)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Sets a connector's specs (connector `-1`: the whole EVSE, or a 1.6 connector) from
/// `source`, replacing the row.
pub async fn set_spec(
    db: &Db,
    charger: &str,
    evse: i64,
    connector: i64,
    spec: &Spec,
    source: Source,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO connector_specs (charger, evse, connector, max_power_w, connector_type, phases, source, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (charger, evse, connector) DO UPDATE SET max_power_w = excluded.max_power_w,
             connector_type = excluded.connector_type, phases = excluded.phases,
             source = excluded.source, updated_at = excluded.updated_at",
    )
    .bind(charger)
    .bind(evse)
    .bind(connector)
    .bind(spec.max_power_w)
    .bind(spec.connector_type.as_deref())
    .bind(spec.phases)
    .bind(source.as_str())
    .bind(db::ts(Utc::now()))
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Removes a connector's specs row (the charger's next report fills it again); whether
/// there was one.
pub async fn delete_spec(
    db: &Db,
    charger: &str,
    evse: i64,
    connector: i64,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "DELETE FROM connector_specs WHERE charger = $1 AND evse = $2 AND connector = $3",
    )
    .bind(charger)
    .bind(evse)
    .bind(connector)
    .execute(db.writer())
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A stored spec row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpecRow {
    /// EVSE.
    pub evse: i64,
    /// Connector (`-1`: the whole EVSE, or a 1.6 connector).
    pub connector: i64,
    /// The specs.
    #[serde(flatten)]
    pub spec: Spec,
    /// `reported` or `operator`.
    pub source: String,
}

/// A charger's spec rows.
pub async fn specs(db: &Db, charger: &str) -> Result<Vec<SpecRow>, DbError> {
    sqlx::query(
        "SELECT evse, connector, max_power_w, connector_type, phases, source FROM connector_specs
         WHERE charger = $1 ORDER BY evse, connector",
    )
    .bind(charger)
    .fetch_all(db.reader())
    .await?
    .iter()
    .map(|r| {
        Ok(SpecRow {
            evse: r.try_get("evse")?,
            connector: r.try_get("connector")?,
            spec: Spec {
                max_power_w: r.try_get("max_power_w")?,
                connector_type: r.try_get("connector_type")?,
                phases: r.try_get("phases")?,
            },
            source: r.try_get("source")?,
        })
    })
    .collect()
}

// ------------------------------------------------------------------ locations

/// A site's location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// Latitude, -90 to 90.
    #[schema(value_type = String)]
    pub lat: Decimal,
    /// Longitude, -180 to 180.
    #[schema(value_type = String)]
    pub lon: Decimal,
    /// A street address, if given.
    pub address: Option<String>,
}

/// Sets a site's location.
pub async fn set_location(db: &Db, site: i64, at: &Location) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO site_locations (site_id, lat, lon, address) VALUES ($1, $2, $3, $4)
         ON CONFLICT (site_id) DO UPDATE SET lat = excluded.lat, lon = excluded.lon, address = excluded.address",
    )
    .bind(site)
    .bind(at.lat.normalize().to_string())
    .bind(at.lon.normalize().to_string())
    .bind(at.address.as_deref())
    .execute(db.writer())
    .await?;
    Ok(())
}

/// A site's location, if set.
pub async fn location(db: &Db, site: i64) -> Result<Option<Location>, DbError> {
    let Some(r) = sqlx::query("SELECT lat, lon, address FROM site_locations WHERE site_id = $1")
        .bind(site)
        .fetch_optional(db.reader())
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(Location {
        lat: db::parse_dec("site_locations.lat", r.try_get("lat")?)?,
        lon: db::parse_dec("site_locations.lon", r.try_get("lon")?)?,
        address: r.try_get("address")?,
    }))
}

// ------------------------------------------------------------------ the driver's query

/// What the driver looks for ([`find`]).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Identity or site name contains this (case-insensitive).
    pub text: Option<String>,
    /// A connector of at least this many W.
    pub min_power_w: Option<i64>,
    /// A connector of this type.
    pub connector_type: Option<String>,
    /// A connector `Available` on a connected charger.
    pub available: bool,
    /// On this site.
    pub site: Option<i64>,
    /// Skip this many chargers.
    pub offset: usize,
    /// At most this many (1 to [`MAX_PAGE`]).
    pub limit: usize,
}

/// A connector in [`find`]'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FoundConnector {
    /// EVSE (1.6 connector) id.
    pub evse: i64,
    /// Connector within the EVSE (2.x).
    pub connector: Option<i64>,
    /// `Available`, `Occupied`, `Charging`, `Faulted`, `Unavailable` (every connector of a
    /// charger that is offline), ...
    pub status: String,
    /// The specs: per field what the operator set (on the connector, else on its EVSE),
    /// else what the charger reported (likewise).
    #[serde(flatten)]
    pub spec: Spec,
}

/// A charger in [`find`]'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FoundCharger {
    /// Identity.
    pub identity: String,
    /// Connected now.
    pub online: bool,
    /// Its site, if any.
    pub site_id: Option<i64>,
    /// The site's name.
    pub site_name: Option<String>,
    /// Every connector (EVSE 0 left out), whether it matches the filter or not.
    pub connectors: Vec<FoundConnector>,
    /// How many are `Available`.
    pub available: usize,
}

/// The connectors of `{c}` (a `connectors` row) joined with their specs: `{c}` on the
/// connector's own row, `{c}e` on the EVSE's.
fn spec_join(c: &str) -> String {
    format!(
        "LEFT JOIN connector_specs {c}s ON {c}s.charger = {c}.charger AND {c}s.evse = {c}.evse AND {c}s.connector = {c}.connector
         LEFT JOIN connector_specs {c}e ON {c}e.charger = {c}.charger AND {c}e.evse = {c}.evse AND {c}e.connector = -1"
    )
}

/// Field `f` of connector `{c}`'s specs: what the operator set (on the connector, then on its
/// EVSE) before what the charger reported (likewise).
fn pick(c: &str, f: &str) -> String {
    format!(
        "COALESCE(CASE WHEN {c}s.source = 'operator' THEN {c}s.{f} END, \
         CASE WHEN {c}e.source = 'operator' THEN {c}e.{f} END, {c}s.{f}, {c}e.{f})"
    )
}

/// Escapes `%`, `_` and `\` for `LIKE ... ESCAPE '\'`.
fn like(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for ch in text.to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('%');
    out
}

/// The driver's charger list: one page of chargers (by identity) that match every filter
/// given, each with all its connectors, in ONE SQL statement (a page of matching chargers in
/// a subquery, joined with their connectors, specs and site), so the cost does not grow
/// with a query per charger. A connector filter (power, type, available) matches a charger
/// that has one connector meeting all of them at once.
pub async fn find(db: &Db, f: &Filter) -> Result<Vec<FoundCharger>, DbError> {
    let mut wh: Vec<String> = Vec::new();
    let mut n = 0usize;
    let mut next = || {
        n += 1;
        db.param(n)
    };
    let mut binds: Vec<Bind> = Vec::new();
    if let Some(t) = f.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let (a, b) = (next(), next());
        wh.push(format!(
            "(LOWER(ch.identity) LIKE {a} ESCAPE '\\' OR ch.identity IN
              (SELECT sc.charger FROM site_chargers sc JOIN sites st ON st.id = sc.site_id
               WHERE LOWER(st.name) LIKE {b} ESCAPE '\\'))"
        ));
        binds.push(Bind::Text(like(t)));
        binds.push(Bind::Text(like(t)));
    }
    if let Some(site) = f.site {
        let a = next();
        wh.push(format!(
            "ch.identity IN (SELECT charger FROM site_chargers WHERE site_id = {a})"
        ));
        binds.push(Bind::Int(site));
    }
    let mut conn: Vec<String> = Vec::new();
    if let Some(w) = f.min_power_w {
        let a = next();
        conn.push(format!("{} >= {a}", pick("k", "max_power_w")));
        binds.push(Bind::Int(w));
    }
    if let Some(t) = f.connector_type.as_deref() {
        let a = next();
        conn.push(format!("LOWER({}) = {a}", pick("k", "connector_type")));
        binds.push(Bind::Text(t.to_lowercase()));
    }
    if f.available {
        conn.push("k.status = 'Available' AND ch.connected = 1".into());
    }
    if !conn.is_empty() {
        wh.push(format!(
            "EXISTS (SELECT 1 FROM connectors k {} WHERE k.charger = ch.identity AND k.evse > 0 AND {})",
            spec_join("k"),
            conn.join(" AND ")
        ));
    }
    let (lim, off) = (next(), next());
    binds.push(Bind::Int(
        i64::try_from(f.limit.clamp(1, MAX_PAGE)).unwrap_or(50),
    ));
    binds.push(Bind::Int(i64::try_from(f.offset).unwrap_or(i64::MAX)));
    let sql = format!(
        "SELECT p.identity, p.connected, sa.site_id, st.name AS site_name, c.evse, c.connector, c.status,
                {power} AS max_power_w, {ctype} AS connector_type, {phases} AS phases
         FROM (SELECT ch.identity, ch.connected FROM chargers ch {where_} ORDER BY ch.identity LIMIT {lim} OFFSET {off}) p
         LEFT JOIN connectors c ON c.charger = p.identity AND c.evse > 0
         {join}
         LEFT JOIN site_chargers sa ON sa.charger = p.identity
         LEFT JOIN sites st ON st.id = sa.site_id
         ORDER BY p.identity, c.evse, c.connector",
        where_ = if wh.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", wh.join(" AND "))
        },
        join = spec_join("c"),
        power = pick("c", "max_power_w"),
        ctype = pick("c", "connector_type"),
        phases = pick("c", "phases"),
    );
    let mut q = sqlx::query(&sql);
    for b in binds {
        q = match b {
            Bind::Int(i) => q.bind(i),
            Bind::Text(t) => q.bind(t),
        };
    }
    let rows = q.fetch_all(db.reader()).await?;
    let mut out: Vec<FoundCharger> = Vec::new();
    for r in rows {
        let identity: String = r.try_get("identity")?;
        let online = r.try_get::<i64, _>("connected")? != 0;
        if out.last().is_none_or(|c| c.identity != identity) {
            out.push(FoundCharger {
                identity,
                online,
                site_id: r.try_get("site_id")?,
                site_name: r.try_get("site_name")?,
                connectors: Vec::new(),
                available: 0,
            });
        }
        let Some(c) = out.last_mut() else { continue };
        let Some(evse) = r.try_get::<Option<i64>, _>("evse")? else {
            continue;
        };
        let connector: i64 = r.try_get("connector")?;
        let status: String = if online {
            r.try_get("status")?
        } else {
            "Unavailable".into()
        };
        if status == "Available" {
            c.available += 1;
        }
        c.connectors.push(FoundConnector {
            evse,
            connector: (connector >= 0).then_some(connector),
            status,
            spec: Spec {
                max_power_w: r.try_get("max_power_w")?,
                connector_type: r.try_get("connector_type")?,
                phases: r.try_get("phases")?,
            },
        });
    }
    Ok(out)
}

enum Bind {
    Int(i64),
    Text(String),
}

/// Available and total connectors of one type on a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TypeCount {
    /// The connector type (`unknown` when no spec says).
    pub connector_type: String,
    /// `Available` on a connected charger.
    pub available: i64,
    /// All.
    pub total: i64,
}

/// A site as the driver's map shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteSummary {
    /// Site id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Where it is (`null`: not set; the map leaves it out, the list keeps it).
    pub location: Option<Location>,
    /// Available connectors, all types.
    pub available: i64,
    /// Connectors, all types.
    pub total: i64,
    /// Per connector type, by type name.
    pub types: Vec<TypeCount>,
}

/// Every site (at most [`MAX_SITES`]) with its location and its connectors available/total
/// per connector type, in one SQL statement.
pub async fn site_overview(db: &Db) -> Result<Vec<SiteSummary>, DbError> {
    let sql = format!(
        "SELECT st.id, st.name, l.lat, l.lon, l.address,
                COALESCE({}, 'unknown') AS ctype,
                SUM(CASE WHEN c.status = 'Available' AND ch.connected = 1 THEN 1 ELSE 0 END) AS available,
                COUNT(c.charger) AS total
         FROM (SELECT id, name FROM sites ORDER BY id LIMIT $1) st
         LEFT JOIN site_locations l ON l.site_id = st.id
         LEFT JOIN site_chargers sa ON sa.site_id = st.id
         LEFT JOIN chargers ch ON ch.identity = sa.charger
         LEFT JOIN connectors c ON c.charger = ch.identity AND c.evse > 0
         {}
         GROUP BY st.id, st.name, l.lat, l.lon, l.address, ctype
         ORDER BY st.id, ctype",
        pick("c", "connector_type"),
        spec_join("c")
    );
    let rows = sqlx::query(&sql)
        .bind(MAX_SITES)
        .fetch_all(db.reader())
        .await?;
    let mut out: Vec<SiteSummary> = Vec::new();
    for r in rows {
        let id: i64 = r.try_get("id")?;
        if out.last().is_none_or(|s| s.id != id) {
            let lat: Option<String> = r.try_get("lat")?;
            let lon: Option<String> = r.try_get("lon")?;
            let location = match (lat, lon) {
                (Some(lat), Some(lon)) => Some(Location {
                    lat: db::parse_dec("site_locations.lat", lat)?,
                    lon: db::parse_dec("site_locations.lon", lon)?,
                    address: r.try_get("address")?,
                }),
                _ => None,
            };
            out.push(SiteSummary {
                id,
                name: r.try_get("name")?,
                location,
                available: 0,
                total: 0,
                types: Vec::new(),
            });
        }
        let Some(s) = out.last_mut() else { continue };
        let total: i64 = r.try_get("total")?;
        if total == 0 {
            continue;
        }
        let available: i64 = r.try_get("available")?;
        s.available = s.available.saturating_add(available);
        s.total = s.total.saturating_add(total);
        s.types.push(TypeCount {
            connector_type: r.try_get("ctype")?,
            available,
            total,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocpp_central::device_model::{
        Component, ReportItem, ReportedAttribute, ReportedCharacteristics, Variable,
    };

    fn item(
        component: &str,
        evse: Option<i32>,
        connector: Option<i32>,
        variable: &str,
        actual: Option<&str>,
        unit: Option<&str>,
        max: Option<&str>,
    ) -> ReportItem {
        ReportItem {
            component: Component {
                name: component.into(),
                instance: None,
                evse,
                connector,
            },
            variable: Variable {
                name: variable.into(),
                instance: None,
            },
            attributes: actual
                .map(|v| ReportedAttribute {
                    kind: "Actual".into(),
                    value: Some(v.into()),
                    mutability: "ReadOnly".into(),
                    persistent: false,
                    constant: true,
                })
                .into_iter()
                .collect(),
            characteristics: max.map(|m| ReportedCharacteristics {
                unit: unit.map(str::to_owned),
                data_type: "decimal".into(),
                min_limit: None,
                max_limit: Some(m.into()),
                values_list: None,
                supports_monitoring: false,
            }),
        }
    }

    #[test]
    fn specs_from_a_report() {
        let part = ReportPart {
            request_id: 1,
            seq_no: 0,
            tbc: false,
            generated_at: String::new(),
            items: vec![
                item(
                    "EVSE",
                    Some(1),
                    None,
                    "Power",
                    Some("0"),
                    Some("W"),
                    Some("22080"),
                ),
                item(
                    "EVSE",
                    Some(2),
                    None,
                    "Power",
                    None,
                    Some("kW"),
                    Some("150.4"),
                ),
                item("EVSE", Some(1), None, "SupplyPhases", Some("3"), None, None),
                item("EVSE", Some(2), None, "SupplyPhases", Some("7"), None, None),
                item(
                    "Connector",
                    Some(1),
                    Some(1),
                    "ConnectorType",
                    Some("cType2"),
                    None,
                    None,
                ),
                item(
                    "Connector",
                    Some(2),
                    Some(1),
                    "ConnectorType",
                    Some("bad type!"),
                    None,
                    None,
                ),
                item("EVSE", Some(3), None, "Power", None, Some("A"), Some("32")),
                item("EVSE", Some(4), None, "Power", None, None, Some("-5")),
                item("EVSE", Some(5), None, "Power", None, None, Some("lots")),
                item(
                    "ChargingStation",
                    None,
                    None,
                    "Power",
                    None,
                    None,
                    Some("44160"),
                ),
            ],
        };
        let specs = specs_of(&part);
        assert_eq!(
            specs.into_iter().collect::<Vec<_>>(),
            vec![
                (
                    (1, -1),
                    Spec {
                        max_power_w: Some(22_080),
                        connector_type: None,
                        phases: Some(3)
                    }
                ),
                (
                    (1, 1),
                    Spec {
                        max_power_w: None,
                        connector_type: Some("cType2".into()),
                        phases: None
                    }
                ),
                (
                    (2, -1),
                    Spec {
                        max_power_w: Some(150_400),
                        connector_type: None,
                        phases: None
                    }
                ),
            ]
        );
    }

    #[test]
    fn like_escapes() {
        assert_eq!(like("a_b%C\\"), "%a\\_b\\%c\\\\%");
        assert!(valid_type("cCCS2"));
        assert!(!valid_type(""));
        assert!(!valid_type("a b"));
        assert!(!valid_type(&"x".repeat(33)));
    }
}
