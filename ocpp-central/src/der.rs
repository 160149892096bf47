//! OCPP 2.1 DER control (bidirectional power transfer) from the central system: what the
//! charger's NotifyDERAlarm, NotifyDERStartStop and ReportDERControl say, and the commands
//! on [`ChargerHandle`].
//!
//! | command | message |
//! |---|---|
//! | [`set_der_control`](ChargerHandle::set_der_control) | SetDERControl (`Accepted`, `Rejected`, `NotSupported`, `NotFound`; `supersededIds`) |
//! | [`get_der_control`](ChargerHandle::get_der_control) | GetDERControl, then ReportDERControl parts ([`Event::Der`]) |
//! | [`clear_der_control`](ChargerHandle::clear_der_control) | ClearDERControl |
//!
//! The charger's messages are answered by the default handler and projected into
//! [`Event::Der`]; the model keeps nothing of them.
//!
//! [`Event::Der`]: crate::Event::Der

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::commands::Answer;
use crate::handler::ChargerHandle;
use crate::message::AnyRequest;
use crate::session::CallError;

/// One control in a ReportDERControl.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerControlItem {
    /// The control's id.
    pub id: String,
    /// Its type (`LimitMaxDischarge`, `VoltVar`, ...).
    pub kind: String,
    /// A default control.
    pub is_default: bool,
    /// Superseded by another of its type.
    pub superseded: bool,
}

/// What a charger's DER message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DerNotice {
    /// NotifyDERAlarm: an alarm raised (or ended) about a control type.
    Alarm {
        /// The DER control type concerned.
        control_type: String,
        /// The grid event (`OverVoltage`, `UnderFrequency`, ...), if given.
        grid_event_fault: Option<String>,
        /// The alarm ended.
        ended: bool,
        /// When.
        at: DateTime<Utc>,
        /// Free text from the charger.
        extra_info: Option<String>,
    },
    /// NotifyDERStartStop: a control started or stopped acting.
    StartStop {
        /// The control.
        control_id: String,
        /// Started (`false`: stopped).
        started: bool,
        /// When.
        at: DateTime<Utc>,
        /// The controls it superseded.
        superseded: Vec<String>,
    },
    /// ReportDERControl: one part of the answer to a GetDERControl.
    Report {
        /// The GetDERControl's request id.
        request_id: i32,
        /// More parts follow.
        tbc: bool,
        /// The controls of this part.
        controls: Vec<DerControlItem>,
    },
}

/// What a NotifyDERAlarm / NotifyDERStartStop / ReportDERControl says (`None` for any other
/// message).
pub fn der_notice(request: &AnyRequest) -> Option<DerNotice> {
    #[cfg(feature = "v21")]
    {
        use ocpp_types::v21::AnyRequest as Q;
        match request {
            AnyRequest::V21(Q::NotifyDERAlarm(q)) => Some(DerNotice::Alarm {
                control_type: q.control_type.as_str().to_owned(),
                grid_event_fault: q.grid_event_fault.as_ref().map(|f| f.as_str().to_owned()),
                ended: q.alarm_ended.unwrap_or(false),
                at: q.timestamp.to_utc(),
                extra_info: q.extra_info.as_ref().map(|x| x.as_str().to_owned()),
            }),
            AnyRequest::V21(Q::NotifyDERStartStop(q)) => Some(DerNotice::StartStop {
                control_id: q.control_id.as_str().to_owned(),
                started: q.started,
                at: q.timestamp.to_utc(),
                superseded: q
                    .superseded_ids
                    .iter()
                    .flatten()
                    .map(|s| s.as_str().to_owned())
                    .collect(),
            }),
            AnyRequest::V21(Q::ReportDERControl(q)) => {
                let v = serde_json::to_value(q).ok()?;
                let mut controls = Vec::new();
                for (list, kind_of) in [
                    ("curve", None),
                    ("enterService", Some("EnterService")),
                    ("fixedPFAbsorb", Some("FixedPFAbsorb")),
                    ("fixedPFInject", Some("FixedPFInject")),
                    ("fixedVar", Some("FixedVar")),
                    ("freqDroop", Some("FreqDroop")),
                    ("gradient", Some("Gradients")),
                    ("limitMaxDischarge", Some("LimitMaxDischarge")),
                ] {
                    for item in v[list].as_array().into_iter().flatten() {
                        let kind = kind_of
                            .map(str::to_owned)
                            .or_else(|| item["curveType"].as_str().map(str::to_owned))
                            .unwrap_or_default();
                        controls.push(DerControlItem {
                            id: item["id"].as_str().unwrap_or_default().to_owned(),
                            kind,
                            is_default: item["isDefault"].as_bool().unwrap_or(false),
                            superseded: item["isSuperseded"].as_bool().unwrap_or(false),
                        });
                    }
                }
                Some(DerNotice::Report {
                    request_id: q.request_id,
                    tbc: q.tbc.unwrap_or(false),
                    controls,
                })
            }
            _ => None,
        }
    }
    #[cfg(not(feature = "v21"))]
    {
        let _ = request;
        None
    }
}

fn v21_only(h: &ChargerHandle) -> Result<(), CallError> {
    if h.version() != ocpp_types::Version::V21 {
        return Err(CallError::Refused(format!(
            "OCPP {} has no DER control",
            h.version()
        )));
    }
    Ok(())
}

async fn status_call(h: &ChargerHandle, action: &str, q: &Value) -> Result<Answer, CallError> {
    let request = AnyRequest::from_json(h.version(), action, &q.to_string())
        .map_err(|e| CallError::Refused(format!("{action}: {e}")))?;
    let response = h.call_any(request).await?;
    let v: Value = serde_json::from_str(&response.to_json())
        .map_err(|e| CallError::InvalidResponse(e.to_string()))?;
    Ok(Answer {
        status: v["status"].as_str().unwrap_or_default().to_owned(),
        response,
    })
}

impl ChargerHandle {
    /// (2.1) SetDERControl with `control`, a `SetDERControlRequest` as JSON (checked against
    /// the type before sending: [`CallError::Refused`] otherwise). The answer's
    /// `supersededIds` are in its typed response.
    pub async fn set_der_control(&self, control: &Value) -> Result<Answer, CallError> {
        v21_only(self)?;
        status_call(self, "SetDERControl", control).await
    }

    /// (2.1) GetDERControl: `Accepted` (the ReportDERControl parts follow as
    /// [`Event::Der`](crate::Event::Der)) or `NotFound`.
    pub async fn get_der_control(
        &self,
        request_id: i32,
        is_default: Option<bool>,
        control_type: Option<&str>,
        control_id: Option<&str>,
    ) -> Result<Answer, CallError> {
        v21_only(self)?;
        let mut q = json!({ "requestId": request_id });
        if let Some(d) = is_default {
            q["isDefault"] = json!(d);
        }
        if let Some(t) = control_type {
            q["controlType"] = json!(t);
        }
        if let Some(i) = control_id {
            q["controlId"] = json!(i);
        }
        status_call(self, "GetDERControl", &q).await
    }

    /// (2.1) ClearDERControl of the default (or scheduled) controls, of one type and / or
    /// one id: `Accepted` or `NotFound`.
    pub async fn clear_der_control(
        &self,
        is_default: bool,
        control_type: Option<&str>,
        control_id: Option<&str>,
    ) -> Result<Answer, CallError> {
        v21_only(self)?;
        let mut q = json!({ "isDefault": is_default });
        if let Some(t) = control_type {
            q["controlType"] = json!(t);
        }
        if let Some(i) = control_id {
            q["controlId"] = json!(i);
        }
        status_call(self, "ClearDERControl", &q).await
    }
}
