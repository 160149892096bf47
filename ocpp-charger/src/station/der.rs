//! DER control (OCPP 2.1 block R, bidirectional power transfer): the controls the central
//! system sets for the station's inverter, kept bounded and persisted, and the station's
//! DER alarms.
//!
//! | request | answer |
//! |---|---|
//! | SetDERControl | `NotSupported` when the station has no DER ([`StationConfig::der`](crate::StationConfig::der)) or not this control type; `Rejected` when the control's data for its type is missing (a curve for a curve type, `limitMaxDischarge` for `LimitMaxDischarge`, ...) or [`MAX_DER_CONTROLS`] are held; `Accepted` otherwise, with `supersededIds`: the held controls of the same type and `isDefault` whose priority number is not lower (0 is the highest) |
//! | GetDERControl | `NotFound` when nothing matches the filters (`isDefault`, `controlType`, `controlId`); `Accepted`, then ReportDERControl with the matches grouped by type, [`DER_REPORT_ITEMS`] per message (`tbc` on all but the last) |
//! | ClearDERControl | `Accepted` when controls matching `isDefault` and the optional `controlType` / `controlId` were removed, `NotFound` otherwise; a superseded control of the type becomes active again |
//!
//! The application raises alarms with [`Station::der_alarm`] (NotifyDERAlarm) and tells
//! when a control starts or stops acting with [`Station::der_started`]
//! (NotifyDERStartStop). The controls live in the state document (`StateDoc.der`).

use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::{CallError, Context};
use crate::central::After;
use crate::station::{Pending, Station};

/// The most DER controls a station holds.
pub const MAX_DER_CONTROLS: usize = 24;

/// Controls per ReportDERControl message.
pub const DER_REPORT_ITEMS: usize = 10;

/// The DER control types of OCPP 2.1 (`DERControlEnumType`).
pub const DER_CONTROL_TYPES: [&str; 22] = [
    "EnterService",
    "FreqDroop",
    "FreqWatt",
    "FixedPFAbsorb",
    "FixedPFInject",
    "FixedVar",
    "Gradients",
    "HFMustTrip",
    "HFMayTrip",
    "HVMustTrip",
    "HVMomCess",
    "HVMayTrip",
    "LimitMaxDischarge",
    "LFMustTrip",
    "LVMustTrip",
    "LVMomCess",
    "LVMayTrip",
    "PowerMonitoringMustTrip",
    "VoltVar",
    "VoltWatt",
    "WattPF",
    "WattVar",
];

/// The request field that carries a control of `kind`, and the field its report item
/// names it by.
fn field_of(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        "EnterService" => ("enterService", "enterService"),
        "FreqDroop" => ("freqDroop", "freqDroop"),
        "FixedPFAbsorb" => ("fixedPFAbsorb", "fixedPF"),
        "FixedPFInject" => ("fixedPFInject", "fixedPF"),
        "FixedVar" => ("fixedVar", "fixedVar"),
        "Gradients" => ("gradient", "gradient"),
        "LimitMaxDischarge" => ("limitMaxDischarge", "limitMaxDischarge"),
        k if DER_CONTROL_TYPES.contains(&k) => ("curve", "curve"),
        _ => return None,
    })
}

/// One held control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DerControl {
    id: String,
    kind: String,
    is_default: bool,
    priority: i64,
    /// The control's own object (`curve`, `limitMaxDischarge`, ...), as sent.
    body: Value,
}

/// What is persisted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct DerDoc {
    #[serde(default)]
    controls: Vec<DerControl>,
}

/// A held control ([`Station::der_controls`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DerControlInfo {
    /// The control's id.
    pub id: String,
    /// Its type (`LimitMaxDischarge`, `VoltVar`, ...).
    pub kind: String,
    /// A default control (applies when no scheduled one does).
    pub is_default: bool,
    /// Its priority (0 is the highest).
    pub priority: i64,
    /// Another control of its type and `isDefault` has a higher priority.
    pub superseded: bool,
    /// The control's object, as the central system sent it.
    pub body: Value,
}

impl DerDoc {
    pub(crate) fn is_empty(&self) -> bool {
        self.controls.is_empty()
    }

    fn superseded(&self, c: &DerControl) -> bool {
        self.controls.iter().any(|o| {
            o.id != c.id
                && o.kind == c.kind
                && o.is_default == c.is_default
                && (o.priority < c.priority || (o.priority == c.priority && o.id > c.id))
        })
    }
}

impl Station {
    /// The DER controls held.
    pub fn der_controls(&self) -> Vec<DerControlInfo> {
        self.der
            .controls
            .iter()
            .map(|c| DerControlInfo {
                id: c.id.clone(),
                kind: c.kind.clone(),
                is_default: c.is_default,
                priority: c.priority,
                superseded: self.der.superseded(c),
                body: c.body.clone(),
            })
            .collect()
    }

    /// Sends NotifyDERAlarm (2.1): `control_type` is the DER control the alarm is about,
    /// `grid_event_fault` one of `GridEventFaultEnumType` (`OverVoltage`, ...), `ended` when
    /// the alarm is over. `false` when not sent (not 2.1, not accepted, queue full).
    pub fn der_alarm(
        &mut self,
        now: Instant,
        control_type: &str,
        grid_event_fault: Option<&str>,
        ended: bool,
        extra_info: Option<&str>,
    ) -> bool {
        if self.cfg.version != ocpp_codec::Version::V21 || !self.accepted() {
            return false;
        }
        let mut p = json!({ "controlType": control_type, "timestamp": self.wall(now) });
        if let Some(f) = grid_event_fault {
            p["gridEventFault"] = json!(f);
        }
        if ended {
            p["alarmEnded"] = json!(true);
        }
        if let Some(x) = extra_info {
            p["extraInfo"] = json!(x.chars().take(200).collect::<String>());
        }
        self.call(now, "NotifyDERAlarm", &p, Pending::Plain)
    }

    /// Sends NotifyDERStartStop (2.1): the control `control_id` started (or stopped)
    /// acting, superseding `superseded` when it started. `false` when not sent.
    pub fn der_started(
        &mut self,
        now: Instant,
        control_id: &str,
        started: bool,
        superseded: &[String],
    ) -> bool {
        if self.cfg.version != ocpp_codec::Version::V21 || !self.accepted() {
            return false;
        }
        let mut p = json!({
            "controlId": control_id.chars().take(36).collect::<String>(),
            "started": started,
            "timestamp": self.wall(now),
        });
        if !superseded.is_empty() {
            p["supersededIds"] = json!(superseded);
        }
        self.call(now, "NotifyDERStartStop", &p, Pending::Plain)
    }

    /// Sends the ReportDERControls of a GetDERControl.
    pub(crate) fn report_der(&mut self, now: Instant, request_id: i64, ids: Vec<String>) {
        let items: Vec<&DerControl> = ids
            .iter()
            .filter_map(|id| self.der.controls.iter().find(|c| c.id == *id))
            .collect();
        let parts: Vec<Value> = items
            .chunks(DER_REPORT_ITEMS)
            .map(|chunk| {
                let mut p = json!({ "requestId": request_id });
                for c in chunk {
                    let Some((_, item_field)) = field_of(&c.kind) else {
                        continue;
                    };
                    let (list, item) = match c.kind.as_str() {
                        "FixedPFAbsorb" => (
                            "fixedPFAbsorb",
                            json!({ "id": c.id, "isDefault": c.is_default,
                            "isSuperseded": self.der.superseded(c), item_field: c.body }),
                        ),
                        "FixedPFInject" => (
                            "fixedPFInject",
                            json!({ "id": c.id, "isDefault": c.is_default,
                            "isSuperseded": self.der.superseded(c), item_field: c.body }),
                        ),
                        "EnterService" | "Gradients" => (
                            if c.kind == "Gradients" {
                                "gradient"
                            } else {
                                "enterService"
                            },
                            json!({ "id": c.id, item_field: c.body }),
                        ),
                        "FreqDroop" | "FixedVar" | "LimitMaxDischarge" => (
                            item_field,
                            json!({ "id": c.id, "isDefault": c.is_default,
                                "isSuperseded": self.der.superseded(c), item_field: c.body }),
                        ),
                        _ => (
                            "curve",
                            json!({ "id": c.id, "curveType": c.kind, "isDefault": c.is_default,
                                "isSuperseded": self.der.superseded(c), "curve": c.body }),
                        ),
                    };
                    match p.get_mut(list).and_then(Value::as_array_mut) {
                        Some(a) => a.push(item),
                        None => p[list] = json!([item]),
                    }
                }
                p
            })
            .collect();
        let n = parts.len();
        for (i, mut p) in parts.into_iter().enumerate() {
            if i + 1 < n {
                p["tbc"] = json!(true);
            }
            self.call(now, "ReportDERControl", &p, Pending::Plain);
        }
    }

    fn der_supports(&self, kind: &str) -> bool {
        self.cfg
            .der
            .as_ref()
            .is_some_and(|types| types.iter().any(|t| t == kind))
    }
}

fn status(s: &str, reason: Option<&str>) -> Value {
    let mut v = json!({ "status": s });
    if let Some(r) = reason {
        v["statusInfo"] = json!({ "reasonCode": r });
    }
    v
}

/// The built-in SetDERControl (2.1, see the module docs).
#[cfg(feature = "v21")]
pub(crate) fn set_der_control(
    ctx: &mut Context<'_>,
    request: ocpp_types::v21::SetDERControlRequest,
) -> Result<ocpp_types::v21::SetDERControlResponse, CallError> {
    let q = serde_json::to_value(&request).unwrap_or(Value::Null);
    let st = &mut *ctx.station;
    let kind = q["controlType"].as_str().unwrap_or_default().to_owned();
    let id = q["controlId"].as_str().unwrap_or_default().to_owned();
    let is_default = q["isDefault"].as_bool().unwrap_or(false);
    let answer = if !st.der_supports(&kind) {
        status("NotSupported", Some("UnsupportedType"))
    } else {
        match field_of(&kind).and_then(|(f, _)| q.get(f).cloned()) {
            None => status("Rejected", Some("MissingControlData")),
            Some(body) => {
                let replaces = st.der.controls.iter().position(|c| c.id == id);
                if replaces.is_none() && st.der.controls.len() >= MAX_DER_CONTROLS {
                    status("Rejected", Some("TooManyControls"))
                } else {
                    let priority = body["priority"].as_i64().unwrap_or(0);
                    let c = DerControl {
                        id: id.clone(),
                        kind: kind.clone(),
                        is_default,
                        priority,
                        body,
                    };
                    match replaces {
                        Some(i) => st.der.controls[i] = c,
                        None => st.der.controls.push(c),
                    }
                    st.save();
                    // The controls this one supersedes now.
                    let superseded: Vec<String> = st
                        .der
                        .controls
                        .iter()
                        .filter(|o| {
                            o.id != id
                                && o.kind == kind
                                && o.is_default == is_default
                                && o.priority >= priority
                        })
                        .map(|o| o.id.clone())
                        .collect();
                    let mut v = status("Accepted", None);
                    if !superseded.is_empty() {
                        v["supersededIds"] = json!(superseded);
                    }
                    v
                }
            }
        }
    };
    crate::device_model::from_json("SetDERControl", answer)
}

fn matches(c: &DerControl, q: &Value) -> bool {
    q.get("isDefault")
        .and_then(Value::as_bool)
        .is_none_or(|d| d == c.is_default)
        && q.get("controlType")
            .and_then(Value::as_str)
            .is_none_or(|t| t == c.kind)
        && q.get("controlId")
            .and_then(Value::as_str)
            .is_none_or(|i| i == c.id)
}

/// The built-in GetDERControl (2.1, see the module docs).
#[cfg(feature = "v21")]
pub(crate) fn get_der_control(
    ctx: &mut Context<'_>,
    request: ocpp_types::v21::GetDERControlRequest,
) -> Result<ocpp_types::v21::GetDERControlResponse, CallError> {
    let q = serde_json::to_value(&request).unwrap_or(Value::Null);
    let st = &*ctx.station;
    let ids: Vec<String> = st
        .der
        .controls
        .iter()
        .filter(|c| matches(c, &q))
        .map(|c| c.id.clone())
        .collect();
    let answer = if ids.is_empty() {
        status("NotFound", None)
    } else if !st.room_for(ids.len().div_ceil(DER_REPORT_ITEMS)) {
        status("Rejected", Some("Busy"))
    } else {
        ctx.after.push(After::Der {
            request_id: i64::from(request.request_id),
            ids,
        });
        status("Accepted", None)
    };
    crate::device_model::from_json("GetDERControl", answer)
}

/// The built-in ClearDERControl (2.1, see the module docs).
#[cfg(feature = "v21")]
pub(crate) fn clear_der_control(
    ctx: &mut Context<'_>,
    request: ocpp_types::v21::ClearDERControlRequest,
) -> Result<ocpp_types::v21::ClearDERControlResponse, CallError> {
    let q = serde_json::to_value(&request).unwrap_or(Value::Null);
    let st = &mut *ctx.station;
    let before = st.der.controls.len();
    st.der.controls.retain(|c| !matches(c, &q));
    let answer = if st.der.controls.len() == before {
        status("NotFound", None)
    } else {
        st.save();
        status("Accepted", None)
    };
    crate::device_model::from_json("ClearDERControl", answer)
}
