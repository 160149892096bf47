//! Periodic event streams (OCPP 2.1, block N: "Periodic Event Streams"): a monitor set with
//! `periodicEventStream` parameters (SetVariableMonitoring) sends its events as samples of a
//! stream instead of NotifyEvents.
//!
//! | step | message | when |
//! |---|---|---|
//! | open | OpenPeriodicEventStream (CALL) with the stream's id (the monitor's id), the monitor and the parameters | after the monitor is installed, once the station is accepted; a refusal turns the monitor back to NotifyEvents; a CALLERROR or a timeout retries after [`OPEN_RETRY`] |
//! | samples | NotifyPeriodicEventStream (SEND, message type 6, no answer) with `basetime`, `data` (`t`: seconds after `basetime`, `v`: the value) and `pending` (samples still held) | when `values` samples are held, or `interval` seconds after the oldest held sample; with neither, every sample at once |
//! | adjust | AdjustPeriodicEventStream (from the central system) | `Accepted` and new parameters for an open stream; `Rejected` for an unknown id or an interval above 86,400 s |
//! | list | GetPeriodicEventStream (from the central system) | the open streams |
//! | close | ClosePeriodicEventStream (CALL) | the monitor was cleared (ClearVariableMonitoring, SetMonitoringBase) or set again without `periodicEventStream` |
//!
//! Samples are taken while the stream waits for its open answer and while the station is
//! offline, and sent once it can. Bounds: at most [`MAX_STREAMS`] streams (one more
//! monitor with a stream: `Rejected`), [`MAX_STREAM_BACKLOG`] samples held per stream (the
//! oldest are dropped and counted, [`StreamInfo::dropped`]), at most [`MAX_STREAM_BATCH`]
//! samples in one message. The streams, their held samples and the closes not yet sent live
//! in the state document (persisted through `poll_persist`), so a restart goes on with them.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::app::{CallError, Context};
use crate::settings::MAX_INTERVAL_SECS;
use crate::station::{Pending, Station};
use crate::time::{deadline, seconds};

/// The most streams a station keeps open.
pub const MAX_STREAMS: usize = 16;

/// The most samples a stream holds before sending (the oldest are dropped beyond it).
pub const MAX_STREAM_BACKLOG: usize = 1_000;

/// The most samples in one NotifyPeriodicEventStream.
pub const MAX_STREAM_BATCH: usize = 200;

/// How long the station waits before asking again to open a stream whose
/// OpenPeriodicEventStream failed (CALLERROR or timeout).
pub const OPEN_RETRY: Duration = Duration::from_secs(60);

/// What the central system asked for: send every `interval` seconds and / or every
/// `values` samples (`None` or 0: not set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamParams {
    /// Seconds after the oldest held sample at which the samples are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u32>,
    /// Samples held at which they are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<u32>,
}

impl StreamParams {
    /// From a `PeriodicEventStreamParamsType`; `None` when a field is negative, not an
    /// integer, or the interval is above 86,400 s.
    pub(crate) fn from_json(v: &Value) -> Option<StreamParams> {
        let field = |k: &str| -> Option<Option<u32>> {
            match v.get(k) {
                None | Some(Value::Null) => Some(None),
                Some(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()).map(Some),
            }
        };
        let interval = field("interval")?;
        let values = field("values")?;
        if interval.is_some_and(|i| i > MAX_INTERVAL_SECS) {
            return None;
        }
        Some(StreamParams {
            interval: interval.filter(|i| *i > 0),
            values: values.filter(|n| *n > 0),
        })
    }

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
}

/// Where a stream stands with the central system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamStatus {
    /// OpenPeriodicEventStream is still to be sent.
    ToOpen,
    /// OpenPeriodicEventStream was sent; waiting for the answer.
    Opening,
    /// The central system accepted it: samples are sent.
    Open,
}

/// One held sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sample {
    at: DateTime<Utc>,
    v: String,
}

/// One stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StreamState {
    id: i32,
    params: StreamParams,
    status: StreamStatus,
    #[serde(default)]
    samples: std::collections::VecDeque<Sample>,
    #[serde(default)]
    dropped: u64,
}

/// What is persisted (inside the monitoring document).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct StreamsDoc {
    #[serde(default)]
    streams: Vec<StreamState>,
    /// Streams whose ClosePeriodicEventStream is still to be sent.
    #[serde(default)]
    closing: Vec<i32>,
}

impl StreamsDoc {
    pub(crate) fn is_empty(&self) -> bool {
        self.streams.is_empty() && self.closing.is_empty()
    }
}

/// The streams' timers (not persisted: recomputed after a restart).
#[derive(Debug, Default)]
pub(crate) struct StreamTimers {
    /// Per stream: when its held samples are due to be sent.
    flush: Vec<(i32, Instant)>,
    /// When failed opens are asked again.
    retry: Option<Instant>,
}

impl StreamTimers {
    pub(crate) fn next(&self) -> Option<Instant> {
        self.flush.iter().map(|(_, t)| *t).chain(self.retry).min()
    }
}

/// A stream as the station holds it ([`Station::streams`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// The stream's id (the monitor's id).
    pub id: i32,
    /// Its parameters.
    pub params: StreamParams,
    /// Where it stands.
    pub status: StreamStatus,
    /// Samples held, not yet sent.
    pub held: usize,
    /// Samples dropped because [`MAX_STREAM_BACKLOG`] were held.
    pub dropped: u64,
}

impl Station {
    /// The periodic event streams.
    pub fn streams(&self) -> Vec<StreamInfo> {
        self.monitoring
            .doc
            .streams
            .streams
            .iter()
            .map(|s| StreamInfo {
                id: s.id,
                params: s.params,
                status: s.status,
                held: s.samples.len(),
                dropped: s.dropped,
            })
            .collect()
    }

    pub(crate) fn stream_count(&self) -> usize {
        self.monitoring
            .doc
            .monitors
            .iter()
            .filter(|m| m.stream.is_some())
            .count()
    }

    /// Whether the monitor's events go to its stream (the stream exists).
    pub(crate) fn stream_takes(&self, monitor: i32) -> bool {
        self.monitoring
            .doc
            .streams
            .streams
            .iter()
            .any(|s| s.id == monitor)
    }

    /// Holds one sample of the monitor's stream.
    pub(crate) fn stream_sample(&mut self, now: Instant, monitor: i32, value: String) {
        let at = self.cfg.time.wall(now);
        let Some(s) = self
            .monitoring
            .doc
            .streams
            .streams
            .iter_mut()
            .find(|s| s.id == monitor)
        else {
            return;
        };
        while s.samples.len() >= MAX_STREAM_BACKLOG {
            s.samples.pop_front();
            s.dropped = s.dropped.saturating_add(1);
        }
        let v: String = value.chars().take(2500).collect();
        s.samples.push_back(Sample { at, v });
        self.save();
    }

    /// Follows the monitors, opens and closes streams, sends due samples (after every
    /// input, after `monitoring_step`).
    pub(crate) fn streams_step(&mut self, now: Instant) {
        if self.cfg.version != ocpp_codec::Version::V21 {
            return;
        }
        let mut changed = self.streams_follow_monitors();
        // An open asked on a lost connection is asked again.
        let waiting: Vec<i32> = self
            .pending
            .values()
            .filter_map(|p| match p {
                Pending::StreamOpen(id) => Some(*id),
                _ => None,
            })
            .collect();
        for s in &mut self.monitoring.doc.streams.streams {
            if s.status == StreamStatus::Opening && !waiting.contains(&s.id) {
                s.status = StreamStatus::ToOpen;
                changed = true;
            }
        }
        if !self.accepted() {
            if changed {
                self.save();
            }
            self.update_flush_timers(now);
            return;
        }
        // Closes first, then opens.
        let closing = std::mem::take(&mut self.monitoring.doc.streams.closing);
        let mut left = Vec::new();
        for id in closing {
            if !self.call(
                now,
                "ClosePeriodicEventStream",
                &json!({ "id": id }),
                Pending::Plain,
            ) {
                left.push(id);
            } else {
                changed = true;
            }
        }
        self.monitoring.doc.streams.closing = left;
        let retry_due = self.monitoring.stream_timers.retry.is_none_or(|t| t <= now);
        if retry_due {
            self.monitoring.stream_timers.retry = None;
            let to_open: Vec<(i32, StreamParams)> = self
                .monitoring
                .doc
                .streams
                .streams
                .iter()
                .filter(|s| s.status == StreamStatus::ToOpen)
                .map(|s| (s.id, s.params))
                .collect();
            for (id, params) in to_open {
                let p = json!({ "constantStreamData": {
                    "id": id,
                    "variableMonitoringId": id,
                    "params": params.to_json(),
                }});
                if self.call(now, "OpenPeriodicEventStream", &p, Pending::StreamOpen(id)) {
                    self.set_stream_status(id, StreamStatus::Opening);
                    changed = true;
                }
            }
        }
        // Samples of open streams that are due.
        let due: Vec<i32> = self
            .monitoring
            .doc
            .streams
            .streams
            .iter()
            .filter(|s| s.status == StreamStatus::Open && !s.samples.is_empty())
            .filter(|s| self.stream_due(now, s))
            .map(|s| s.id)
            .collect();
        for id in due {
            changed |= self.stream_flush(now, id);
        }
        if changed {
            self.save();
        }
        self.update_flush_timers(now);
    }

    fn stream_due(&self, now: Instant, s: &StreamState) -> bool {
        let full = match s.params.values {
            Some(n) => s.samples.len() >= n as usize,
            None => s.params.interval.is_none(),
        };
        let timed = s.params.interval.is_some()
            && self
                .monitoring
                .stream_timers
                .flush
                .iter()
                .any(|(id, t)| *id == s.id && *t <= now);
        full || timed
    }

    /// Sends the held samples of stream `id` (in messages of at most `values` /
    /// [`MAX_STREAM_BATCH`]); `true` when something was sent.
    fn stream_flush(&mut self, now: Instant, id: i32) -> bool {
        let Some(i) = self
            .monitoring
            .doc
            .streams
            .streams
            .iter()
            .position(|s| s.id == id)
        else {
            return false;
        };
        let interval_due = self
            .monitoring
            .stream_timers
            .flush
            .iter()
            .any(|(sid, t)| *sid == id && *t <= now);
        let mut sent = false;
        loop {
            let s = &self.monitoring.doc.streams.streams[i];
            if s.samples.is_empty() {
                break;
            }
            let batch = s
                .params
                .values
                .map_or(MAX_STREAM_BATCH, |n| (n as usize).min(MAX_STREAM_BATCH))
                .max(1);
            // A part batch goes out when the interval is due, or when no bound is set.
            let unbounded = s.params.values.is_none() && s.params.interval.is_none();
            if s.samples.len() < batch && !interval_due && !unbounded {
                break;
            }
            let n = batch.min(s.samples.len());
            let basetime = s.samples[0].at;
            let data: Vec<Value> = s
                .samples
                .iter()
                .take(n)
                .map(|x| {
                    let ms = (x.at - basetime).num_milliseconds().max(0);
                    let t = Decimal::new(ms, 3).normalize().to_string();
                    let t = serde_json::from_str::<Value>(&t).unwrap_or(json!(0));
                    json!({ "t": t, "v": x.v })
                })
                .collect();
            let pending = s.samples.len().saturating_sub(n);
            let p = json!({
                "id": id,
                "pending": i32::try_from(pending).unwrap_or(i32::MAX),
                "basetime": basetime.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "data": data,
            });
            if !self.send(now, "NotifyPeriodicEventStream", &p) {
                break;
            }
            let s = &mut self.monitoring.doc.streams.streams[i];
            s.samples.drain(..n);
            sent = true;
        }
        if sent {
            // The interval runs again from this send.
            let timers = &mut self.monitoring.stream_timers.flush;
            timers.retain(|(sid, _)| *sid != id);
            if let Some(interval) = self.monitoring.doc.streams.streams[i].params.interval {
                timers.push((id, deadline(now, seconds(i64::from(interval)))));
            }
        }
        sent
    }

    /// Sends an OCPP 2.1 SEND; `false` when not connected.
    fn send(&mut self, now: Instant, action: &str, payload: &Value) -> bool {
        let text = payload.to_string();
        self.check_outgoing(action, ocpp_types::MessageKind::Send, &text);
        let Some(ep) = self.ep.as_mut() else {
            return false;
        };
        let Ok(raw) = serde_json::value::RawValue::from_string(text) else {
            return false;
        };
        ep.send(now, action, &raw).is_ok()
    }

    fn update_flush_timers(&mut self, now: Instant) {
        let mut timers = std::mem::take(&mut self.monitoring.stream_timers.flush);
        let streams = &self.monitoring.doc.streams.streams;
        // A timer stays while it runs, or while samples wait for it.
        timers.retain(|(id, t)| {
            streams.iter().any(|s| {
                s.id == *id && s.params.interval.is_some() && (!s.samples.is_empty() || *t > now)
            })
        });
        for s in streams {
            if let (Some(interval), false) = (s.params.interval, s.samples.is_empty()) {
                if !timers.iter().any(|(id, _)| *id == s.id) {
                    // From the oldest held sample, at the earliest now.
                    let age = (self.cfg.time.wall(now) - s.samples[0].at)
                        .to_std()
                        .unwrap_or_default();
                    let wait = seconds(i64::from(interval)).saturating_sub(age);
                    timers.push((s.id, deadline(now, wait)));
                }
            }
        }
        self.monitoring.stream_timers.flush = timers;
    }

    fn set_stream_status(&mut self, id: i32, status: StreamStatus) {
        if let Some(s) = self
            .monitoring
            .doc
            .streams
            .streams
            .iter_mut()
            .find(|s| s.id == id)
        {
            s.status = status;
        }
    }

    /// Makes the streams follow the monitors: a monitor with stream parameters gets a
    /// stream, a stream whose monitor is gone (or has none) is closed. `true` when
    /// something changed.
    fn streams_follow_monitors(&mut self) -> bool {
        let wanted: Vec<(i32, StreamParams)> = self
            .monitoring
            .doc
            .monitors
            .iter()
            .filter_map(|m| m.stream.map(|p| (m.id, p)))
            .collect();
        let doc = &mut self.monitoring.doc.streams;
        let mut changed = false;
        let mut kept = Vec::with_capacity(doc.streams.len());
        for s in std::mem::take(&mut doc.streams) {
            match wanted.iter().find(|(id, _)| *id == s.id) {
                Some((_, p)) => {
                    let mut s = s;
                    if s.params != *p {
                        s.params = *p;
                        changed = true;
                    }
                    kept.push(s);
                }
                None => {
                    changed = true;
                    if s.status != StreamStatus::ToOpen && !doc.closing.contains(&s.id) {
                        doc.closing.push(s.id);
                    }
                }
            }
        }
        for (id, params) in wanted {
            if !kept.iter().any(|s| s.id == id) {
                doc.closing.retain(|c| *c != id);
                kept.push(StreamState {
                    id,
                    params,
                    status: StreamStatus::ToOpen,
                    samples: Default::default(),
                    dropped: 0,
                });
                changed = true;
            }
        }
        doc.streams = kept;
        // Closes are bounded like the streams.
        let extra = doc.closing.len().saturating_sub(MAX_STREAMS);
        doc.closing.drain(..extra);
        changed
    }

    /// The answer to OpenPeriodicEventStream.
    pub(crate) fn on_stream_open(&mut self, now: Instant, id: i32, answer: Option<&Value>) {
        match answer.and_then(|v| v.get("status")).and_then(Value::as_str) {
            Some("Accepted") => self.set_stream_status(id, StreamStatus::Open),
            Some(_) => {
                // Refused: the monitor goes back to NotifyEvents.
                for m in &mut self.monitoring.doc.monitors {
                    if m.id == id {
                        m.stream = None;
                    }
                }
                self.monitoring.doc.streams.streams.retain(|s| s.id != id);
            }
            None => {
                self.set_stream_status(id, StreamStatus::ToOpen);
                self.monitoring.stream_timers.retry = Some(deadline(now, OPEN_RETRY));
            }
        }
        self.save();
    }
}

#[cfg(feature = "v21")]
/// The built-in GetPeriodicEventStream (2.1): the open streams.
pub(crate) fn get_periodic_event_stream(
    ctx: &mut Context<'_>,
    _request: ocpp_types::v21::GetPeriodicEventStreamRequest,
) -> Result<ocpp_types::v21::GetPeriodicEventStreamResponse, CallError> {
    let data: Vec<Value> = ctx
        .station
        .monitoring
        .doc
        .streams
        .streams
        .iter()
        .filter(|s| s.status == StreamStatus::Open)
        .map(|s| json!({ "id": s.id, "variableMonitoringId": s.id, "params": s.params.to_json() }))
        .collect();
    let v = if data.is_empty() {
        json!({})
    } else {
        json!({ "constantStreamData": data })
    };
    crate::device_model::from_json("GetPeriodicEventStream", v)
}

#[cfg(feature = "v21")]
/// The built-in AdjustPeriodicEventStream (2.1): `Accepted` with the new parameters for a
/// stream the station holds; `Rejected` (with `statusInfo` `UnknownStream` or
/// `InvalidParams`) otherwise.
pub(crate) fn adjust_periodic_event_stream(
    ctx: &mut Context<'_>,
    request: ocpp_types::v21::AdjustPeriodicEventStreamRequest,
) -> Result<ocpp_types::v21::AdjustPeriodicEventStreamResponse, CallError> {
    let st = &mut *ctx.station;
    let params = serde_json::to_value(&request.params)
        .ok()
        .and_then(|p| StreamParams::from_json(&p));
    let known = st.stream_takes(request.id);
    let reason = match (known, params) {
        (false, _) => Some("UnknownStream"),
        (true, None) => Some("InvalidParams"),
        (true, Some(p)) => {
            for m in &mut st.monitoring.doc.monitors {
                if m.id == request.id {
                    m.stream = Some(p);
                }
            }
            st.streams_follow_monitors();
            st.monitoring
                .stream_timers
                .flush
                .retain(|(id, _)| *id != request.id);
            st.save();
            None
        }
    };
    let v = match reason {
        None => json!({ "status": "Accepted" }),
        Some(r) => json!({ "status": "Rejected", "statusInfo": { "reasonCode": r } }),
    };
    crate::device_model::from_json("AdjustPeriodicEventStream", v)
}
