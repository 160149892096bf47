//! Monitoring (2.x block N, use cases N02 to N08): monitors on device-model variables
//! ([`crate::device_model`]), evaluated on the injected clock after every input, and the
//! NotifyEvents they raise.
//!
//! | monitor | fires when | event |
//! |---|---|---|
//! | `UpperThreshold` | the value rises above the monitor's value | `Alerting`; `cleared` when it falls back to or below it |
//! | `LowerThreshold` | the value falls below the monitor's value | `Alerting`; `cleared` when it rises back |
//! | `Delta` | a number moves by at least the monitor's value from the value last reported (any change of a non-number) | `Delta`, the new value becomes the reference |
//! | `Periodic` | every `value` seconds | `Periodic` |
//! | `PeriodicClockAligned` | at every multiple of `value` seconds of the wall clock from midnight | `Periodic` |
//!
//! A monitor with `transaction` fires only while a transaction is ongoing. An event whose
//! severity is above the monitoring level (SetMonitoringLevel, 0 to 9) is not sent; a
//! change that cannot be sent (offline, or the call queue full) is not recorded either, so
//! it is sent once it can. Monitors live in the state document (persisted through
//! `poll_persist`); `MonitoringCtrlr.Enabled` `false` stops their evaluation.
//!
//! Bounds: at most [`MAX_MONITORS`] monitors (one more: `Rejected`);
//! `MonitoringCtrlr.ItemsPerMessage[SetVariableMonitoring]` /
//! `[ClearVariableMonitoring]` items per request (more: CALLERROR
//! `OccurrenceConstraintViolation`); a periodic interval of 1 to 86,400 s; a value is a
//! decimal (the schema's `number`), compared exactly.

use std::time::Instant;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::{CallError, Context};
use crate::central::After;
use crate::device_model::{
    component_json, from_json, to_json, variable_json, ComponentKey, ModelVariable, Query,
    VariableKey,
};
use crate::settings::MAX_INTERVAL_SECS;
use crate::station::{Pending, Station};
use crate::time::{deadline, next_aligned, seconds};

/// The most monitors a station holds.
pub const MAX_MONITORS: usize = 100;

/// An installed monitor ([`Station::monitors`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorInfo {
    /// Its id.
    pub id: i32,
    /// The component.
    pub component: ComponentKey,
    /// The variable.
    pub variable: VariableKey,
    /// `UpperThreshold`, `LowerThreshold`, `Delta`, `Periodic` or `PeriodicClockAligned`.
    pub kind: String,
    /// The threshold, delta or period in seconds.
    pub value: Decimal,
    /// 0 (danger) to 9 (debug).
    pub severity: u8,
    /// Only while a transaction is ongoing.
    pub transaction: bool,
}

/// One monitor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct MonitorState {
    pub(crate) id: i32,
    component: ComponentKey,
    variable: VariableKey,
    kind: String,
    value: Decimal,
    severity: u8,
    transaction: bool,
    /// A threshold monitor's condition holds (an `Alerting` event was sent).
    #[serde(default)]
    active: bool,
    /// A delta monitor's value last reported.
    #[serde(default)]
    reference: Option<String>,
    /// (2.1) Its events go to a periodic event stream with these parameters
    /// ([`super::streams`]) instead of NotifyEvent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) stream: Option<super::streams::StreamParams>,
}

/// What is persisted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct MonitoringDoc {
    #[serde(default)]
    pub(crate) monitors: Vec<MonitorState>,
    #[serde(default)]
    next_id: i32,
    #[serde(default)]
    next_event_id: i32,
    /// The monitoring level; `None`: 9 (everything).
    #[serde(default)]
    level: Option<u8>,
    /// (2.1) The periodic event streams ([`super::streams`]).
    #[serde(default, skip_serializing_if = "super::streams::StreamsDoc::is_empty")]
    pub(crate) streams: super::streams::StreamsDoc,
}

/// The station's monitoring.
#[derive(Debug, Default)]
pub(crate) struct Monitoring {
    pub(crate) doc: MonitoringDoc,
    /// Per monitor id: when its next periodic event is due.
    due: Vec<(i32, Instant)>,
    /// The periodic event streams' timers ([`super::streams`]).
    pub(crate) stream_timers: super::streams::StreamTimers,
}

impl Monitoring {
    pub(crate) fn new(doc: MonitoringDoc) -> Monitoring {
        Monitoring {
            doc,
            due: Vec::new(),
            stream_timers: super::streams::StreamTimers::default(),
        }
    }

    /// The earliest periodic event or stream deadline.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        let monitors = self.due.iter().map(|(_, t)| *t).min();
        let streams = self.stream_timers.next();
        match (monitors, streams) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

fn numeric(s: &str) -> Option<Decimal> {
    s.trim().parse::<Decimal>().ok()
}

fn is_periodic(kind: &str) -> bool {
    matches!(kind, "Periodic" | "PeriodicClockAligned")
}

impl Station {
    /// The installed monitors.
    pub fn monitors(&self) -> Vec<MonitorInfo> {
        self.monitoring
            .doc
            .monitors
            .iter()
            .map(|m| MonitorInfo {
                id: m.id,
                component: m.component.clone(),
                variable: m.variable.clone(),
                kind: m.kind.clone(),
                value: m.value,
                severity: m.severity,
                transaction: m.transaction,
            })
            .collect()
    }

    fn monitoring_enabled(&self) -> bool {
        self.settings
            .index("MonitoringCtrlr", "Enabled", None)
            .is_none_or(|i| self.settings.value_at(i) == "true")
    }

    fn next_periodic(&self, now: Instant, m: &MonitorState) -> Instant {
        let secs = m
            .value
            .trunc()
            .to_string()
            .parse::<u64>()
            .unwrap_or(1)
            .clamp(1, u64::from(MAX_INTERVAL_SECS));
        let interval = seconds(i64::try_from(secs).unwrap_or(1));
        if m.kind == "PeriodicClockAligned" {
            let wall = self.cfg.time.wall(now);
            let at = next_aligned(wall, interval);
            let wait = (at - wall).to_std().unwrap_or(interval).min(interval);
            deadline(now, wait)
        } else {
            deadline(now, interval)
        }
    }

    /// Evaluates every monitor at `now` and sends the events (after every input).
    pub(crate) fn monitoring_step(&mut self, now: Instant) {
        if self.v16() || self.monitoring.doc.monitors.is_empty() || !self.monitoring_enabled() {
            self.monitoring.due.clear();
            return;
        }
        // Periodic monitors get a due time when they have none.
        let mut due = std::mem::take(&mut self.monitoring.due);
        due.retain(|(id, _)| {
            self.monitoring
                .doc
                .monitors
                .iter()
                .any(|m| m.id == *id && is_periodic(&m.kind))
        });
        for m in &self.monitoring.doc.monitors {
            if is_periodic(&m.kind) && !due.iter().any(|(id, _)| *id == m.id) {
                due.push((m.id, self.next_periodic(now, m)));
            }
        }
        self.monitoring.due = due;
        // Offline, only streamed monitors take samples (held by their streams); the others'
        // changes are seen again once the station is accepted, and periodic events missed.
        let online = self.accepted();
        let model = self.device_model(now);
        let in_tx = self.evses.iter().any(|e| e.tx.is_some());
        let level = self.monitoring.doc.level.unwrap_or(9);
        let mut events = Vec::new();
        let mut samples: Vec<(i32, String)> = Vec::new();
        let mut changes: Vec<(usize, bool, Option<String>, Option<Instant>)> = Vec::new();
        for (i, m) in self.monitoring.doc.monitors.iter().enumerate() {
            let query = Query {
                component: m.component.name.clone(),
                component_instance: m.component.instance.clone(),
                evse: m.component.evse.map(i64::from),
                connector: m.component.connector.map(i64::from),
                variable: Some(m.variable.name.clone()),
                variable_instance: m.variable.instance.clone(),
            };
            let Some(v) = model.iter().find(|v| query.matches(v)) else {
                continue;
            };
            let Some(value) = v.actual().map(str::to_owned) else {
                continue;
            };
            let number = numeric(&value);
            let live = !m.transaction || in_tx;
            let fired: Option<(&str, bool)> = match m.kind.as_str() {
                "UpperThreshold" | "LowerThreshold" => number.and_then(|n| {
                    let beyond = live
                        && if m.kind == "UpperThreshold" {
                            n > m.value
                        } else {
                            n < m.value
                        };
                    match (beyond, m.active) {
                        (true, false) => Some(("Alerting", false)),
                        (false, true) => Some(("Alerting", true)),
                        _ => None,
                    }
                }),
                "Delta" if live => {
                    let moved = match (number, m.reference.as_deref().and_then(numeric)) {
                        (Some(n), Some(r)) => n.checked_sub(r).is_none_or(|d| d.abs() >= m.value),
                        _ => m.reference.as_deref() != Some(value.as_str()),
                    };
                    moved.then_some(("Delta", false))
                }
                kind if is_periodic(kind) => {
                    let at = self
                        .monitoring
                        .due
                        .iter()
                        .find(|(id, _)| *id == m.id)
                        .map(|(_, t)| *t);
                    if at.is_some_and(|t| t <= now) {
                        changes.push((
                            i,
                            m.active,
                            m.reference.clone(),
                            Some(self.next_periodic(now, m)),
                        ));
                        live.then_some(("Periodic", false))
                    } else {
                        None
                    }
                }
                _ => None,
            };
            let Some((trigger, cleared)) = fired else {
                continue;
            };
            let streamed = m.stream.is_some() && self.stream_takes(m.id);
            if !online && !streamed {
                continue;
            }
            if !is_periodic(&m.kind) {
                let active =
                    matches!(m.kind.as_str(), "UpperThreshold" | "LowerThreshold") && !cleared;
                changes.push((i, active, Some(value.clone()), None));
            }
            if streamed {
                // 2.1: the event becomes a sample of the monitor's stream.
                samples.push((m.id, value));
            } else if m.severity <= level {
                events.push((
                    m.id,
                    trigger,
                    cleared,
                    value,
                    v.component.clone(),
                    v.variable.clone(),
                ));
            }
        }
        if changes.is_empty() {
            return;
        }
        if !events.is_empty() {
            let first = self.monitoring.doc.next_event_id;
            let data: Vec<Value> = events
                .iter()
                .enumerate()
                .map(|(n, (id, trigger, cleared, value, c, var))| {
                    let mut e = json!({
                        "eventId": first.wrapping_add(n as i32).max(0),
                        "timestamp": self.wall(now),
                        "trigger": trigger,
                        "actualValue": value.chars().take(2500).collect::<String>(),
                        "eventNotificationType": "CustomMonitor",
                        "variableMonitoringId": id,
                        "component": component_json(c),
                        "variable": variable_json(var),
                    });
                    if *cleared {
                        e["cleared"] = json!(true);
                    }
                    e
                })
                .collect();
            let p = json!({
                "generatedAt": self.wall(now),
                "seqNo": 0,
                "tbc": false,
                "eventData": data,
            });
            if !self.call(now, "NotifyEvent", &p, Pending::Plain) {
                // Not sent: nothing is recorded, the change is seen again at the next step.
                return;
            }
            let next = first.checked_add(events.len() as i32).unwrap_or(0);
            self.monitoring.doc.next_event_id = next;
        }
        for (id, value) in samples {
            self.stream_sample(now, id, value);
        }
        for (i, active, reference, next) in changes {
            let id = self.monitoring.doc.monitors[i].id;
            if let Some(at) = next {
                if let Some(d) = self.monitoring.due.iter_mut().find(|(m, _)| *m == id) {
                    d.1 = at;
                }
                continue;
            }
            let m = &mut self.monitoring.doc.monitors[i];
            m.active = active;
            m.reference = reference;
        }
        self.save();
    }

    fn monitor_items(&self, instance: &str) -> usize {
        self.settings
            .index("MonitoringCtrlr", "ItemsPerMessage", Some(instance))
            .and_then(|i| self.settings.value_at(i).trim().parse::<usize>().ok())
            .unwrap_or(20)
    }
}

fn monitor_json(m: &MonitorState, v21: bool) -> Value {
    let mut v = json!({
        "id": m.id,
        "transaction": m.transaction,
        "value": serde_json::from_str::<Value>(&m.value.normalize().to_string()).unwrap_or(Value::Null),
        "type": m.kind,
        "severity": m.severity,
    });
    // 2.1 names the kind of monitor; 2.0.1 has no such field.
    if v21 {
        v["eventNotificationType"] = json!("CustomMonitor");
    }
    v
}

/// The status of one SetVariableMonitoring item, and the monitor to install.
fn check_monitor(
    st: &Station,
    model: &[ModelVariable],
    item: &Value,
) -> Result<(Option<usize>, MonitorState), &'static str> {
    let query = Query::from_json(&item["component"], Some(&item["variable"]));
    let i = Station::find_in(model, &query).map_err(|u| u.as_str())?;
    let var = &model[i];
    let kind = item["type"].as_str().unwrap_or_default();
    if !matches!(
        kind,
        "UpperThreshold" | "LowerThreshold" | "Delta" | "Periodic" | "PeriodicClockAligned"
    ) {
        return Err("UnsupportedMonitorType");
    }
    let numeric_var = var.characteristics.data_type.is_numeric();
    if !var.characteristics.supports_monitoring
        || (matches!(kind, "UpperThreshold" | "LowerThreshold") && !numeric_var)
    {
        return Err("Rejected");
    }
    let value = match &item["value"] {
        Value::Number(n) => n.to_string().parse::<Decimal>().ok(),
        _ => None,
    }
    .ok_or("Rejected")?;
    if (is_periodic(kind) || kind == "Delta") && value < Decimal::ZERO {
        return Err("Rejected");
    }
    if is_periodic(kind) && !(Decimal::ONE..=Decimal::from(MAX_INTERVAL_SECS)).contains(&value) {
        return Err("Rejected");
    }
    let severity = item["severity"]
        .as_i64()
        .and_then(|s| u8::try_from(s).ok())
        .filter(|s| *s <= 9)
        .ok_or("Rejected")?;
    let transaction = item["transaction"].as_bool().unwrap_or(false);
    let monitors = &st.monitoring.doc.monitors;
    // A given id replaces that monitor (it must exist, on the same variable).
    let replaces = match item["id"].as_i64() {
        Some(id) => Some(
            monitors
                .iter()
                .position(|m| {
                    i64::from(m.id) == id
                        && m.component == var.component
                        && m.variable == var.variable
                })
                .ok_or("Rejected")?,
        ),
        None => None,
    };
    let duplicate = monitors.iter().enumerate().any(|(n, m)| {
        Some(n) != replaces
            && m.component == var.component
            && m.variable == var.variable
            && m.kind == kind
            && m.severity == severity
    });
    if duplicate {
        return Err("Duplicate");
    }
    if replaces.is_none() && monitors.len() >= MAX_MONITORS {
        return Err("Rejected");
    }
    // 2.1: a monitor may send its events as a periodic event stream.
    let stream = match item.get("periodicEventStream") {
        Some(p) if st.cfg.version == ocpp_codec::Version::V21 => {
            let params = super::streams::StreamParams::from_json(p).ok_or("Rejected")?;
            let had = replaces.is_some_and(|n| monitors[n].stream.is_some());
            if !had && st.stream_count() >= super::streams::MAX_STREAMS {
                return Err("Rejected");
            }
            Some(params)
        }
        _ => None,
    };
    Ok((
        replaces,
        MonitorState {
            id: replaces.map_or(0, |n| monitors[n].id),
            component: var.component.clone(),
            variable: var.variable.clone(),
            kind: kind.to_owned(),
            value,
            severity,
            transaction,
            active: false,
            reference: var.actual().map(str::to_owned),
            stream,
        },
    ))
}

/// The built-in SetVariableMonitoring (2.x N04): per item `Accepted` (with the monitor's
/// id), `UnknownComponent`, `UnknownVariable`, `UnsupportedMonitorType`, `Rejected` (a
/// threshold on a non-number, a value out of range, a severity above 9, an unknown id, a
/// variable that cannot be monitored, [`MAX_MONITORS`] reached) or `Duplicate` (a monitor
/// of that type and severity is on the variable).
pub(crate) fn set_variable_monitoring<Q: Serialize, R: serde::de::DeserializeOwned>(
    ctx: &mut Context<'_>,
    request: Q,
) -> Result<R, CallError> {
    let q = to_json(&request);
    let items = q["setMonitoringData"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let st = &mut *ctx.station;
    let max = st.monitor_items("SetVariableMonitoring");
    if items.len() > max {
        return Err(CallError::new(
            ocpp_codec::ErrorCode::OccurrenceConstraintViolation,
            format!(
                "{} items; ItemsPerMessageSetVariableMonitoring is {max}",
                items.len()
            ),
        ));
    }
    let model = st.device_model(ctx.now);
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        let (status, id) = match check_monitor(st, &model, &item) {
            Err(s) => (s, None),
            Ok((Some(n), m)) => {
                let id = m.id;
                st.monitoring.doc.monitors[n] = m;
                st.monitoring.due.retain(|(d, _)| *d != id);
                ("Accepted", Some(id))
            }
            Ok((None, mut m)) => {
                let doc = &mut st.monitoring.doc;
                // Ids from 1, skipping ones in use (after a wrap-around).
                let mut id = doc.next_id.max(1);
                while doc.monitors.iter().any(|x| x.id == id) {
                    id = id.checked_add(1).unwrap_or(1);
                }
                doc.next_id = id.checked_add(1).unwrap_or(1);
                m.id = id;
                doc.monitors.push(m);
                ("Accepted", Some(id))
            }
        };
        let mut r = json!({
            "status": status,
            "type": item["type"],
            "severity": item["severity"],
            "component": item["component"],
            "variable": item["variable"],
        });
        if let Some(id) = id.or_else(|| item["id"].as_i64().and_then(|i| i32::try_from(i).ok())) {
            r["id"] = json!(id);
        }
        results.push(r);
    }
    st.save();
    from_json(
        "SetVariableMonitoring",
        json!({ "setMonitoringResult": results }),
    )
}

/// The built-in ClearVariableMonitoring (2.x N06): per id `Accepted` or `NotFound`.
pub(crate) fn clear_variable_monitoring<Q: Serialize, R: serde::de::DeserializeOwned>(
    ctx: &mut Context<'_>,
    request: Q,
) -> Result<R, CallError> {
    let q = to_json(&request);
    let ids = q["id"].as_array().cloned().unwrap_or_default();
    let st = &mut *ctx.station;
    let max = st.monitor_items("ClearVariableMonitoring");
    if ids.len() > max {
        return Err(CallError::new(
            ocpp_codec::ErrorCode::OccurrenceConstraintViolation,
            format!(
                "{} ids; ItemsPerMessageClearVariableMonitoring is {max}",
                ids.len()
            ),
        ));
    }
    let mut results = Vec::with_capacity(ids.len());
    for id in ids {
        let n = id.as_i64().unwrap_or(-1);
        let before = st.monitoring.doc.monitors.len();
        st.monitoring.doc.monitors.retain(|m| i64::from(m.id) != n);
        let found = st.monitoring.doc.monitors.len() != before;
        results.push(json!({ "id": id, "status": if found { "Accepted" } else { "NotFound" } }));
    }
    st.save();
    from_json(
        "ClearVariableMonitoring",
        json!({ "clearMonitoringResult": results }),
    )
}

/// The built-in SetMonitoringBase (2.x N03): `All` keeps the monitors (this station has no
/// pre-configured ones), `FactoryDefault` and `HardWiredOnly` remove every custom monitor.
/// `MonitoringCtrlr.ActiveMonitoringBase` follows.
pub(crate) fn set_monitoring_base<Q: Serialize, R: serde::de::DeserializeOwned>(
    ctx: &mut Context<'_>,
    request: Q,
) -> Result<R, CallError> {
    let q = to_json(&request);
    let base = q["monitoringBase"].as_str().unwrap_or_default();
    let st = &mut *ctx.station;
    let status = match base {
        "All" => "Accepted",
        "FactoryDefault" | "HardWiredOnly" => {
            st.monitoring.doc.monitors.clear();
            st.monitoring.due.clear();
            "Accepted"
        }
        _ => "NotSupported",
    };
    if status == "Accepted" {
        st.settings
            .set_fixed("MonitoringCtrlr", "ActiveMonitoringBase", None, base);
        st.save();
    }
    from_json("SetMonitoringBase", json!({ "status": status }))
}

/// The built-in SetMonitoringLevel (2.x N05): 0 to 9 `Accepted` (events of a higher
/// severity number are no longer sent), anything else `Rejected`.
pub(crate) fn set_monitoring_level<Q: Serialize, R: serde::de::DeserializeOwned>(
    ctx: &mut Context<'_>,
    request: Q,
) -> Result<R, CallError> {
    let q = to_json(&request);
    let level = q["severity"]
        .as_i64()
        .and_then(|s| u8::try_from(s).ok())
        .filter(|s| *s <= 9);
    let st = &mut *ctx.station;
    let status = match level {
        Some(l) => {
            st.monitoring.doc.level = Some(l);
            st.settings.set_fixed(
                "MonitoringCtrlr",
                "ActiveMonitoringLevel",
                None,
                &l.to_string(),
            );
            st.save();
            "Accepted"
        }
        None => "Rejected",
    };
    from_json("SetMonitoringLevel", json!({ "status": status }))
}

/// The built-in GetMonitoringReport (2.x N02): the monitors of the given components /
/// variables (all when none) of the given kinds (`ThresholdMonitoring`, `DeltaMonitoring`,
/// `PeriodicMonitoring`; all when none), as NotifyMonitoringReports after the answer,
/// `ItemsPerMessage[GetReport]` variables each. `EmptyResultSet` when none matches,
/// `Rejected` when the reports would not fit in the queue.
pub(crate) fn get_monitoring_report<Q: Serialize, R: serde::de::DeserializeOwned>(
    ctx: &mut Context<'_>,
    request: Q,
) -> Result<R, CallError> {
    let q = to_json(&request);
    let request_id = q["requestId"].as_i64().unwrap_or_default();
    let wanted: Vec<Query> = q["componentVariable"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|cv| Query::from_json(&cv["component"], cv.get("variable")))
                .collect()
        })
        .unwrap_or_default();
    let criteria: Vec<&str> = q["monitoringCriteria"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let st = &*ctx.station;
    let v21 = st.cfg.version == ocpp_codec::Version::V21;
    let kind_ok = |kind: &str| {
        criteria.is_empty()
            || criteria.iter().any(|c| match *c {
                "ThresholdMonitoring" => kind.ends_with("Threshold"),
                "DeltaMonitoring" => kind == "Delta",
                "PeriodicMonitoring" => is_periodic(kind),
                _ => false,
            })
    };
    // Grouped per component / variable, in the order the monitors were made.
    let mut groups: Vec<(ComponentKey, VariableKey, Vec<Value>)> = Vec::new();
    for m in &st.monitoring.doc.monitors {
        let var_match = wanted.is_empty()
            || wanted.iter().any(|w| {
                w.matches_component(&m.component)
                    && w.variable.as_ref().is_none_or(|n| {
                        *n == m.variable.name && w.variable_instance == m.variable.instance
                    })
            });
        if !var_match || !kind_ok(&m.kind) {
            continue;
        }
        match groups
            .iter_mut()
            .find(|(c, v, _)| *c == m.component && *v == m.variable)
        {
            Some(g) => g.2.push(monitor_json(m, v21)),
            None => groups.push((
                m.component.clone(),
                m.variable.clone(),
                vec![monitor_json(m, v21)],
            )),
        }
    }
    let data: Vec<Value> = groups
        .into_iter()
        .map(|(c, v, monitors)| {
            json!({
                "component": component_json(&c),
                "variable": variable_json(&v),
                "variableMonitoring": monitors,
            })
        })
        .collect();
    let per = st.items_per_message("GetReport", 20).max(1);
    let status = if data.is_empty() {
        "EmptyResultSet"
    } else if !st.room_for(data.len().div_ceil(per)) {
        "Rejected"
    } else {
        ctx.after.push(After::MonitoringReport { request_id, data });
        "Accepted"
    };
    from_json("GetMonitoringReport", json!({ "status": status }))
}

impl Station {
    /// Queues NotifyMonitoringReports, `ItemsPerMessage[GetReport]` variables each.
    pub(crate) fn notify_monitoring_report(
        &mut self,
        now: Instant,
        request_id: i64,
        data: Vec<Value>,
    ) {
        let per = self.items_per_message("GetReport", 20).max(1);
        let n = data.len().div_ceil(per);
        let mut data = data.into_iter();
        for seq in 0..n {
            let chunk: Vec<Value> = data.by_ref().take(per).collect();
            let p = json!({
                "requestId": request_id,
                "generatedAt": self.wall(now),
                "tbc": seq + 1 < n,
                "seqNo": seq,
                "monitor": chunk,
            });
            self.call(now, "NotifyMonitoringReport", &p, Pending::Plain);
        }
    }
}
