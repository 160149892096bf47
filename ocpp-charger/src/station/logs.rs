//! Diagnostics and log uploads (1.6 GetDiagnostics and DiagnosticsStatusNotification, the
//! 1.6 security whitepaper's GetLog and LogStatusNotification, 2.x functional block N, use
//! case N01).
//!
//! As with firmware ([`super::firmware`]) the station schedules and the application
//! transfers: the station asks for an upload with [`StationEvent::LogUpload`] (the file name
//! it announced, the time window, the location), the application puts the file there and
//! reports with [`Station::log_progress`]. Only a station built with
//! [`StationConfig::transfers`] takes requests; without it GetDiagnostics is answered
//! CALLERROR `NotSupported` and GetLog `Rejected`, as before.
//!
//! - GetDiagnostics (1.6) answers the `fileName` it will upload; GetLog answers `Accepted`
//!   with the `filename`, or `AcceptedCanceled` when it replaces an upload under way
//!   (2.x use case N01), or `Rejected` for a `remoteLocation` that is not a URL; a 1.6
//!   GetDiagnostics with such a location gets CALLERROR `PropertyConstraintViolation` (its
//!   answer has no status).
//! - It sends `Uploading` and asks for the upload at once. A failed upload is retried
//!   `retries` times (at most [`MAX_TRANSFER_RETRIES`]), `retryInterval` seconds apart;
//!   then `UploadFailed` (1.6 diagnostics) / `UploadFailure`. `BadMessage`,
//!   `NotSupportedOperation` and `PermissionDenied` end it at once (1.6 diagnostics:
//!   `UploadFailed`). Success: `Uploaded`.
//! - GetLog notifications carry the `requestId`. TriggerMessage DiagnosticsStatusNotification
//!   / LogStatusNotification answers `Uploading` during an upload, else `Idle`.
//! - The upload is part of the state document; after a restart an upload that was running is
//!   asked for again.

use super::firmware::{enqueue, instant_of, interval_of, is_url, max_location, retries_of};
pub use super::firmware::{MAX_LOCATION, MAX_LOCATION_V21, MAX_TRANSFER_RETRIES};
use super::*;

/// Which log is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogKind {
    /// 1.6 GetDiagnostics.
    Diagnostics,
    /// GetLog `DiagnosticsLog`.
    DiagnosticsLog,
    /// GetLog `SecurityLog`.
    SecurityLog,
}

/// What the application reports about an upload ([`Station::log_progress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogProgress {
    /// The file is at its location.
    Uploaded,
    /// This attempt failed: the station retries or gives up.
    UploadFailed,
    /// A protocol incompatibility with the server (ends the upload).
    BadMessage,
    /// The server does not support the operation (ends the upload).
    NotSupportedOperation,
    /// The server refused the credentials (ends the upload).
    PermissionDenied,
}

/// An upload the station holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogUpload {
    /// The `requestId` (0 for 1.6 GetDiagnostics, which has none).
    pub request_id: i32,
    /// Which log.
    pub kind: LogKind,
    /// Where to put it.
    pub location: String,
    /// The file name announced in the answer.
    pub file_name: String,
    /// The oldest entries wanted (1.6 `startTime`, `oldestTimestamp`).
    pub oldest: Option<DateTime<Utc>>,
    /// The latest entries wanted (1.6 `stopTime`, `latestTimestamp`).
    pub latest: Option<DateTime<Utc>>,
    /// Retries left after the attempt under way.
    pub retries_left: u32,
    /// Between attempts.
    pub retry_interval: Duration,
    /// Attempts made.
    pub attempts: u32,
    /// The application uploads now.
    pub uploading: bool,
    /// The next attempt, when not uploading.
    pub next_attempt: DateTime<Utc>,
}

/// The upload and the notifications still to send, as persisted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct LogDoc {
    /// Boxed: most stations hold none, and each station's size counts in a simulator.
    #[serde(default)]
    pub(crate) upload: Option<Box<LogUpload>>,
    #[serde(default)]
    pub(crate) queue: VecDeque<(String, Value)>,
}

impl Station {
    /// The upload the station holds, if any.
    pub fn log_upload(&self) -> Option<&LogUpload> {
        self.logs.upload.as_deref()
    }

    /// The application's report on upload `request_id` (as given in
    /// [`StationEvent::LogUpload`]). `false` when the station holds no such upload under way;
    /// nothing changes then.
    pub fn log_progress(&mut self, now: Instant, request_id: i32, progress: LogProgress) -> bool {
        let taken = self.apply_log_progress(now, request_id, progress);
        self.step(now);
        taken
    }

    fn apply_log_progress(&mut self, now: Instant, request_id: i32, progress: LogProgress) -> bool {
        let wall = self.cfg.time.wall(now);
        let Some(u) = self.logs.upload.as_mut() else {
            return false;
        };
        if u.request_id != request_id || !u.uploading {
            return false;
        }
        if progress == LogProgress::UploadFailed && u.retries_left > 0 {
            u.retries_left -= 1;
            u.uploading = false;
            let step =
                chrono::Duration::from_std(u.retry_interval).unwrap_or(chrono::Duration::zero());
            u.next_attempt = wall.checked_add_signed(step).unwrap_or(wall);
            self.save();
            return true;
        }
        let diagnostics = u.kind == LogKind::Diagnostics;
        let status = match (progress, diagnostics) {
            (LogProgress::Uploaded, _) => "Uploaded",
            (_, true) => "UploadFailed",
            (LogProgress::UploadFailed, false) => "UploadFailure",
            (LogProgress::BadMessage, false) => "BadMessage",
            (LogProgress::NotSupportedOperation, false) => "NotSupportedOperation",
            (LogProgress::PermissionDenied, false) => "PermissionDenied",
        };
        self.log_notify(status);
        self.logs.upload = None;
        self.save();
        true
    }

    fn log_message(
        &self,
        status: &str,
        diagnostics: bool,
        request_id: Option<i32>,
    ) -> (&'static str, Value) {
        if diagnostics {
            return ("DiagnosticsStatusNotification", json!({ "status": status }));
        }
        let mut p = json!({ "status": status });
        if let Some(id) = request_id.filter(|_| status != "Idle") {
            p["requestId"] = json!(id);
        }
        ("LogStatusNotification", p)
    }

    fn log_notify(&mut self, status: &str) {
        let Some(u) = &self.logs.upload else {
            return;
        };
        let (action, p) =
            self.log_message(status, u.kind == LogKind::Diagnostics, Some(u.request_id));
        enqueue(&mut self.logs.queue, action, p);
        self.save();
    }

    /// TriggerMessage DiagnosticsStatusNotification (`diagnostics`) / LogStatusNotification:
    /// `Uploading` during such an upload, else `Idle`.
    pub(crate) fn trigger_log_status(&mut self, now: Instant, diagnostics: bool) {
        let (status, id) = match &self.logs.upload {
            Some(u) if (u.kind == LogKind::Diagnostics) == diagnostics => {
                ("Uploading", Some(u.request_id))
            }
            _ => ("Idle", None),
        };
        let (action, p) = self.log_message(status, diagnostics, id);
        self.call(now, action, &p, Pending::Plain);
    }

    /// A log request: the status word (`Accepted` / `AcceptedCanceled`).
    fn take_log(&mut self, now: Instant, mut upload: LogUpload) -> &'static str {
        let mut status = "Accepted";
        if let Some(old) = self.logs.upload.take() {
            status = "AcceptedCanceled";
            self.events.push_back(StationEvent::LogCanceled {
                request_id: old.request_id,
            });
        }
        upload.next_attempt = self.cfg.time.wall(now);
        self.logs.upload = Some(Box::new(upload));
        self.save();
        status
    }

    /// After every input: starts the due attempt, sends the queued notifications, sets the
    /// next deadline.
    pub(crate) fn log_step(&mut self, now: Instant) {
        let wall = self.cfg.time.wall(now);
        let mut start = None;
        if let Some(u) = self.logs.upload.as_mut() {
            if !u.uploading && u.next_attempt <= wall {
                u.uploading = true;
                u.attempts = u.attempts.saturating_add(1);
                start = Some(StationEvent::LogUpload {
                    request_id: u.request_id,
                    kind: u.kind,
                    location: u.location.clone(),
                    file_name: u.file_name.clone(),
                    oldest: u.oldest,
                    latest: u.latest,
                    attempt: u.attempts,
                });
            }
        }
        if let Some(e) = start {
            self.log_notify("Uploading");
            self.events.push_back(e);
            self.save();
        }
        while self.accepted() {
            let Some((action, p)) = self.logs.queue.front().cloned() else {
                break;
            };
            if !self.call(now, &action, &p, Pending::Plain) {
                break;
            }
            self.logs.queue.pop_front();
            self.save();
        }
        self.log_next = self
            .logs
            .upload
            .as_ref()
            .filter(|u| !u.uploading)
            .map(|u| instant_of(now, wall, u.next_attempt));
    }

    /// The name of the file the station uploads for a request.
    fn log_file_name(&self, now: Instant, kind: LogKind) -> String {
        let stamp = self.cfg.time.wall(now).format("%Y%m%dT%H%M%SZ");
        let what = match kind {
            LogKind::Diagnostics | LogKind::DiagnosticsLog => "diagnostics",
            LogKind::SecurityLog => "security",
        };
        format!("{what}-{stamp}.log")
    }
}

fn date(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    text(v, key).and_then(|s| s.parse().ok())
}

/// The built-in 1.6 GetDiagnostics.
pub(crate) fn get_diagnostics_v16(
    ctx: &mut crate::app::Context<'_>,
    request: ocpp_types::v16::GetDiagnosticsRequest,
) -> Result<ocpp_types::v16::GetDiagnosticsResponse, crate::app::CallError> {
    if !ctx.station.cfg.transfers {
        return crate::app::refusal("GetDiagnostics");
    }
    let q = serde_json::to_value(&request).unwrap_or_default();
    let location = text(&q, "location").unwrap_or_default();
    if !is_url(&location, MAX_LOCATION) {
        return Err(crate::app::CallError::new(
            ocpp_codec::ErrorCode::PropertyConstraintViolation,
            "GetDiagnostics: the location is not a URL",
        ));
    }
    let file_name = ctx.station.log_file_name(ctx.now, LogKind::Diagnostics);
    let upload = LogUpload {
        request_id: 0,
        kind: LogKind::Diagnostics,
        location,
        file_name: file_name.clone(),
        oldest: date(&q, "startTime"),
        latest: date(&q, "stopTime"),
        retries_left: retries_of(int(&q, "retries")),
        retry_interval: interval_of(int(&q, "retryInterval")),
        attempts: 0,
        uploading: false,
        next_attempt: ctx.wall_clock(),
    };
    ctx.station.take_log(ctx.now, upload);
    serde_json::from_value(json!({ "fileName": file_name }))
        .map_err(|_| crate::app::CallError::new(ocpp_codec::ErrorCode::InternalError, "fileName"))
}

/// The built-in GetLog (1.6 whitepaper, 2.x).
pub(crate) fn get_log<Q: Serialize, R: serde::de::DeserializeOwned>(
    ctx: &mut crate::app::Context<'_>,
    request: Q,
) -> Result<R, crate::app::CallError> {
    if !ctx.station.cfg.transfers {
        return local_list::status_response("Rejected", "GetLog");
    }
    let q = serde_json::to_value(&request).unwrap_or_default();
    let log = q.get("log").cloned().unwrap_or_default();
    let location = text(&log, "remoteLocation").unwrap_or_default();
    let kind = match text(&q, "logType").as_deref() {
        Some("SecurityLog") => LogKind::SecurityLog,
        _ => LogKind::DiagnosticsLog,
    };
    let request_id = int(&q, "requestId").and_then(|i| i32::try_from(i).ok());
    let max = max_location(ctx.station.cfg.version);
    let (Some(request_id), true) = (request_id, is_url(&location, max)) else {
        return local_list::status_response("Rejected", "GetLog");
    };
    let file_name = ctx.station.log_file_name(ctx.now, kind);
    let upload = LogUpload {
        request_id,
        kind,
        location,
        file_name: file_name.clone(),
        oldest: date(&log, "oldestTimestamp"),
        latest: date(&log, "latestTimestamp"),
        retries_left: retries_of(int(&q, "retries")),
        retry_interval: interval_of(int(&q, "retryInterval")),
        attempts: 0,
        uploading: false,
        next_attempt: ctx.wall_clock(),
    };
    let status = ctx.station.take_log(ctx.now, upload);
    serde_json::from_value(json!({ "status": status, "filename": file_name })).map_err(|_| {
        crate::app::CallError::new(ocpp_codec::ErrorCode::InternalError, "GetLog answer")
    })
}
