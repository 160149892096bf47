//! OCPP 2.1 periodic event streams from the central system: the commands on
//! [`ChargerHandle`] and what the charger's stream messages say.
//!
//! | command | message |
//! |---|---|
//! | [`open_event_stream`](ChargerHandle::open_event_stream) | SetVariableMonitoring with `periodicEventStream` (the charger then opens the stream) |
//! | [`close_event_stream`](ChargerHandle::close_event_stream) | ClearVariableMonitoring of the stream's monitor (the charger then closes it) |
//! | [`get_event_streams`](ChargerHandle::get_event_streams) | GetPeriodicEventStream |
//! | [`adjust_event_stream`](ChargerHandle::adjust_event_stream) | AdjustPeriodicEventStream |
//!
//! The charger's OpenPeriodicEventStream and ClosePeriodicEventStream are answered by the
//! default handler (`Accepted`) and projected into [`Event::EventStream`]; each
//! NotifyPeriodicEventStream (a SEND: no answer) is decoded and checked like a CALL and
//! becomes one [`Event::StreamData`] with absolute timestamps (`basetime` + `t`, checked),
//! at most [`MAX_STREAM_SAMPLES`] per message. The model keeps nothing per sample. A SEND
//! that fails the schema or the checks gets no answer (OCPP-J: SENDs are never answered);
//! it is a [`SessionEvent::Protocol`](crate::SessionEvent::Protocol) and nothing else.
//!
//! [`Event::EventStream`]: crate::Event::EventStream
//! [`Event::StreamData`]: crate::Event::StreamData

use chrono::{DateTime, Utc};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::commands::Answer;
use crate::device_model::{Monitor, MonitorResult};
use crate::handler::ChargerHandle;
use crate::message::AnyRequest;
use crate::session::CallError;

/// The most samples one NotifyPeriodicEventStream may carry (more: the message is refused).
pub const MAX_STREAM_SAMPLES: usize = 10_000;

/// A stream's parameters: send every `interval` seconds and / or every `values` samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamParams {
    /// Seconds between sends.
    pub interval: Option<u32>,
    /// Samples per send.
    pub values: Option<u32>,
}

impl StreamParams {
    fn to_json(self) -> Value {
        let mut p = json!({});
        if let Some(i) = self.interval {
            p["interval"] = json!(i);
        }
        if let Some(n) = self.values {
            p["values"] = json!(n);
        }
        p
    }

    fn of(v: &Value) -> StreamParams {
        let n = |k: &str| {
            v.get(k)
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
        };
        StreamParams {
            interval: n("interval"),
            values: n("values"),
        }
    }
}

/// A stream as the charger describes it (`ConstantStreamDataType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// The stream's id.
    pub id: i32,
    /// The monitor whose events it carries.
    pub monitor_id: i32,
    /// Its parameters.
    pub params: StreamParams,
}

impl StreamInfo {
    fn of(v: &Value) -> Option<StreamInfo> {
        Some(StreamInfo {
            id: i32::try_from(v.get("id")?.as_i64()?).ok()?,
            monitor_id: i32::try_from(v.get("variableMonitoringId")?.as_i64()?).ok()?,
            params: StreamParams::of(v.get("params")?),
        })
    }
}

/// What the charger's OpenPeriodicEventStream / ClosePeriodicEventStream says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamNotice {
    /// The charger opened a stream.
    Opened(StreamInfo),
    /// The charger closed the stream with this id.
    Closed {
        /// The stream's id.
        id: i32,
    },
}

/// One sample of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSample {
    /// When it was taken (`basetime` + `t`).
    pub at: DateTime<Utc>,
    /// The value, as the charger sent it.
    pub value: String,
}

/// One NotifyPeriodicEventStream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamData {
    /// The stream's id.
    pub id: i32,
    /// Samples the charger still holds.
    pub pending: i32,
    /// The samples, in order.
    pub samples: Vec<StreamSample>,
}

/// Why a NotifyPeriodicEventStream was refused after its schema check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamDataError {
    /// More than [`MAX_STREAM_SAMPLES`] samples.
    #[error("{0} samples; at most {MAX_STREAM_SAMPLES} in one message")]
    TooMany(usize),
    /// A `t` that is negative or puts the sample outside the calendar.
    #[error("sample {index}: offset {t} is negative or out of range")]
    Offset {
        /// The sample's position.
        index: usize,
        /// Its offset.
        t: Decimal,
    },
}

/// What an OpenPeriodicEventStream / ClosePeriodicEventStream says (`None` for any other
/// message).
pub fn stream_notice(request: &AnyRequest) -> Option<StreamNotice> {
    match request {
        #[cfg(feature = "v21")]
        AnyRequest::V21(ocpp_types::v21::AnyRequest::OpenPeriodicEventStream(q)) => {
            let v = serde_json::to_value(&q.constant_stream_data).ok()?;
            StreamInfo::of(&v).map(StreamNotice::Opened)
        }
        #[cfg(feature = "v21")]
        AnyRequest::V21(ocpp_types::v21::AnyRequest::ClosePeriodicEventStream(q)) => {
            Some(StreamNotice::Closed { id: q.id })
        }
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The samples of a NotifyPeriodicEventStream, with absolute timestamps (checked).
#[cfg(feature = "v21")]
pub fn stream_data(
    message: &ocpp_types::v21::NotifyPeriodicEventStream,
) -> Result<StreamData, StreamDataError> {
    if message.data.len() > MAX_STREAM_SAMPLES {
        return Err(StreamDataError::TooMany(message.data.len()));
    }
    let base = message.basetime.to_utc();
    let samples = message
        .data
        .iter()
        .enumerate()
        .map(|(index, d)| {
            let bad = || StreamDataError::Offset { index, t: d.t };
            if d.t.is_sign_negative() {
                return Err(bad());
            }
            let ms =
                d.t.checked_mul(Decimal::from(1000))
                    .and_then(|x| x.trunc().to_i64())
                    .ok_or_else(bad)?;
            let at = chrono::Duration::try_milliseconds(ms)
                .and_then(|off| base.checked_add_signed(off))
                .ok_or_else(bad)?;
            Ok(StreamSample {
                at,
                value: d.v.as_str().to_owned(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(StreamData {
        id: message.id,
        pending: message.pending,
        samples,
    })
}

fn v21_only(h: &ChargerHandle, what: &str) -> Result<(), CallError> {
    if h.version() != ocpp_types::Version::V21 {
        return Err(CallError::Refused(format!(
            "OCPP {} has no {what}",
            h.version()
        )));
    }
    Ok(())
}

async fn call_json(h: &ChargerHandle, action: &str, q: &Value) -> Result<Value, CallError> {
    let request = AnyRequest::from_json(h.version(), action, &q.to_string())
        .map_err(|e| CallError::Refused(format!("{action}: {e}")))?;
    let r = h.call_any(request).await?;
    serde_json::from_str(&r.to_json()).map_err(|e| CallError::InvalidResponse(e.to_string()))
}

impl ChargerHandle {
    /// (2.1) Sets `monitor` with a periodic event stream: the charger answers the
    /// SetVariableMonitoring item (its status and the monitor's id, which is the stream's id
    /// on chargers built with ocpp-charger), then opens the stream with
    /// OpenPeriodicEventStream and sends NotifyPeriodicEventStream.
    pub async fn open_event_stream(
        &self,
        monitor: &Monitor,
        params: StreamParams,
    ) -> Result<MonitorResult, CallError> {
        v21_only(self, "periodic event streams")?;
        let value: Value =
            serde_json::from_str(&monitor.value).unwrap_or(Value::String(monitor.value.clone()));
        let mut d = json!({
            "value": value,
            "type": monitor.kind,
            "severity": monitor.severity,
            "transaction": monitor.transaction,
            "component": crate::device_model::component_json(&monitor.component),
            "variable": crate::device_model::variable_json(&monitor.variable),
            "periodicEventStream": params.to_json(),
        });
        if let Some(id) = monitor.id {
            d["id"] = json!(id);
        }
        let r = call_json(
            self,
            "SetVariableMonitoring",
            &json!({ "setMonitoringData": [d] }),
        )
        .await?;
        let x = &r["setMonitoringResult"][0];
        Ok(MonitorResult {
            id: x
                .get("id")
                .and_then(Value::as_i64)
                .and_then(|i| i32::try_from(i).ok()),
            status: x
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            component: crate::device_model::component_of(&x["component"]),
            variable: crate::device_model::variable_of(&x["variable"]),
            kind: x
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            severity: x
                .get("severity")
                .and_then(Value::as_i64)
                .and_then(|i| i32::try_from(i).ok())
                .unwrap_or_default(),
        })
    }

    /// (2.1) Closes a stream by clearing its monitor: the status of ClearVariableMonitoring
    /// (`Accepted`, `Rejected`, `NotFound`); the charger then sends ClosePeriodicEventStream.
    pub async fn close_event_stream(&self, monitor_id: i32) -> Result<String, CallError> {
        v21_only(self, "periodic event streams")?;
        let r = self.clear_variable_monitoring(&[monitor_id]).await?;
        Ok(r.into_iter().next().map(|(_, s)| s).unwrap_or_default())
    }

    /// (2.1) GetPeriodicEventStream: the streams the charger has open.
    pub async fn get_event_streams(&self) -> Result<Vec<StreamInfo>, CallError> {
        v21_only(self, "periodic event streams")?;
        let r = call_json(self, "GetPeriodicEventStream", &json!({})).await?;
        Ok(r["constantStreamData"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(StreamInfo::of)
            .collect())
    }

    /// (2.1) AdjustPeriodicEventStream: `Accepted` or `Rejected`.
    pub async fn adjust_event_stream(
        &self,
        id: i32,
        params: StreamParams,
    ) -> Result<Answer, CallError> {
        v21_only(self, "periodic event streams")?;
        let q = json!({ "id": id, "params": params.to_json() });
        let request =
            AnyRequest::from_json(self.version(), "AdjustPeriodicEventStream", &q.to_string())
                .map_err(|e| CallError::Refused(format!("AdjustPeriodicEventStream: {e}")))?;
        let response = self.call_any(request).await?;
        let v: Value = serde_json::from_str(&response.to_json())
            .map_err(|e| CallError::InvalidResponse(e.to_string()))?;
        Ok(Answer {
            status: v["status"].as_str().unwrap_or_default().to_owned(),
            response,
        })
    }
}
