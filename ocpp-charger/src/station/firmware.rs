//! Firmware updates (1.6 Firmware Management profile §5.16 / §6.? UpdateFirmware, the 1.6
//! security whitepaper's SignedUpdateFirmware, 2.x functional block L, use case L01).
//!
//! The station schedules; the application transfers. The station never opens a socket or a
//! file: it asks its application, through [`StationEvent`]s, to download
//! ([`StationEvent::FirmwareDownload`]) and to install ([`StationEvent::FirmwareInstall`]),
//! and the application tells it how that went with [`Station::firmware_progress`]. Only a
//! station built with [`StationConfig::transfers`] takes updates; without it UpdateFirmware
//! is refused as before (1.6 CALLERROR `NotSupported`, 2.x and SignedUpdateFirmware
//! `Rejected`).
//!
//! What the station does on its injected clock:
//!
//! - Answers `Accepted` (2.x and SignedUpdateFirmware: `AcceptedCanceled` when an update
//!   that was not installing yet is replaced, `Rejected` while one installs or when the
//!   location is not a URL, `InvalidCertificate` for a signing certificate that is not a PEM
//!   certificate, with the security event `InvalidFirmwareSigningCertificate`). A 1.6
//!   UpdateFirmware (whose answer has no status) with such a location is answered CALLERROR
//!   `PropertyConstraintViolation`.
//! - Waits for the retrieve time (2.x and signed: `DownloadScheduled` when it is in the
//!   future), then sends `Downloading` and asks for the download. A failed download is
//!   retried `retries` times (at most [`MAX_TRANSFER_RETRIES`]), `retryInterval` seconds
//!   apart; after the last, `DownloadFailed` and the update ends.
//! - `Downloaded`; for a signed update (1.6 SignedUpdateFirmware, 2.x with a `signature`)
//!   the application reports `SignatureVerified` or `InvalidSignature` (security event
//!   `InvalidFirmwareSignature`, the update ends).
//! - Waits for the install time (`InstallScheduled` when it is in the future) and for every
//!   transaction to end (2.x use case L01; 1.6 UpdateFirmware), then asks for the install. The
//!   application reports `Installing`, `InstallRebooting` and reboots; after its restart it
//!   reports `Installed` (security event `FirmwareUpdated`) or `InstallationFailed` /
//!   `InstallVerificationFailed`.
//! - The statuses are spelled for the message: 1.6 FirmwareStatusNotification knows only
//!   `Downloading`, `Downloaded`, `DownloadFailed`, `Installing`, `Installed`,
//!   `InstallationFailed` (a bad signature or a failed verification is sent as
//!   `InstallationFailed`, the other steps are not sent); 1.6 signed updates go as
//!   SignedFirmwareStatusNotification, 2.x as FirmwareStatusNotification, both with the
//!   `requestId`. At most [`MAX_PENDING_TRANSFER_STATUSES`] wait while offline.
//! - TriggerMessage FirmwareStatusNotification answers with the last status of the ongoing
//!   update, `Idle` when there is none.
//! - The update is part of the state document: it survives a restart (a download that was
//!   running is asked for again; an install waits for the application's report).

use super::*;

/// The most retries of a download or an upload, whatever `retries` says (a central system
/// sending `i32::MAX` gets this many).
pub const MAX_TRANSFER_RETRIES: u32 = 10;

/// The most firmware (and, separately, log) status notifications kept while the station
/// cannot send them; beyond, the oldest is dropped.
pub const MAX_PENDING_TRANSFER_STATUSES: usize = 16;

/// The longest `location` / `remoteLocation` the station takes: the length 1.6 signed
/// updates, GetLog and 2.0.1 allow (1.6 UpdateFirmware and GetDiagnostics set none); 2.1
/// allows [`MAX_LOCATION_V21`].
pub const MAX_LOCATION: usize = 512;

/// The longest location OCPP 2.1 allows.
pub const MAX_LOCATION_V21: usize = 2000;

/// The longest location the station takes in `version`.
pub(crate) fn max_location(version: Version) -> usize {
    if version == Version::V21 {
        MAX_LOCATION_V21
    } else {
        MAX_LOCATION
    }
}

/// The wait between two attempts when the central system gives no `retryInterval`.
pub const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(60);

/// A firmware status, as the 2.x / signed-update messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FirmwareStatus {
    /// No update ongoing.
    Idle,
    /// Waiting for the retrieve time.
    DownloadScheduled,
    /// Downloading.
    Downloading,
    /// Downloaded.
    Downloaded,
    /// The download failed (after every retry).
    DownloadFailed,
    /// The signature checked out.
    SignatureVerified,
    /// The signature did not.
    InvalidSignature,
    /// Waiting for the install time.
    InstallScheduled,
    /// Installing.
    Installing,
    /// Rebooting to finish the install.
    InstallRebooting,
    /// Installed.
    Installed,
    /// The install failed.
    InstallationFailed,
    /// The installed firmware did not verify.
    InstallVerificationFailed,
}

impl FirmwareStatus {
    /// The wire name (2.x, 1.6 SignedFirmwareStatusNotification).
    pub const fn as_str(self) -> &'static str {
        match self {
            FirmwareStatus::Idle => "Idle",
            FirmwareStatus::DownloadScheduled => "DownloadScheduled",
            FirmwareStatus::Downloading => "Downloading",
            FirmwareStatus::Downloaded => "Downloaded",
            FirmwareStatus::DownloadFailed => "DownloadFailed",
            FirmwareStatus::SignatureVerified => "SignatureVerified",
            FirmwareStatus::InvalidSignature => "InvalidSignature",
            FirmwareStatus::InstallScheduled => "InstallScheduled",
            FirmwareStatus::Installing => "Installing",
            FirmwareStatus::InstallRebooting => "InstallRebooting",
            FirmwareStatus::Installed => "Installed",
            FirmwareStatus::InstallationFailed => "InstallationFailed",
            FirmwareStatus::InstallVerificationFailed => "InstallVerificationFailed",
        }
    }

    /// The 1.6 FirmwareStatusNotification spelling; `None` for a step 1.6 does not report.
    pub const fn v16_plain(self) -> Option<&'static str> {
        match self {
            FirmwareStatus::Idle => Some("Idle"),
            FirmwareStatus::Downloading => Some("Downloading"),
            FirmwareStatus::Downloaded => Some("Downloaded"),
            FirmwareStatus::DownloadFailed => Some("DownloadFailed"),
            FirmwareStatus::Installing => Some("Installing"),
            FirmwareStatus::Installed => Some("Installed"),
            FirmwareStatus::InvalidSignature
            | FirmwareStatus::InstallationFailed
            | FirmwareStatus::InstallVerificationFailed => Some("InstallationFailed"),
            _ => None,
        }
    }
}

/// What the application reports about the transfer or install it was asked for
/// ([`Station::firmware_progress`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirmwareProgress {
    /// The file is downloaded (and, for an unsigned update, checked as far as the
    /// application checks).
    Downloaded,
    /// This download attempt failed: the station retries or gives up.
    DownloadFailed,
    /// (Signed update) The signature is valid.
    SignatureVerified,
    /// (Signed update) It is not: the update ends.
    InvalidSignature,
    /// The install began.
    Installing,
    /// The station reboots to finish the install (the application then reboots).
    InstallRebooting,
    /// After the restart: the new firmware runs.
    Installed,
    /// The install failed.
    InstallationFailed,
    /// The new firmware did not verify.
    InstallVerificationFailed,
}

/// Where an update stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FirmwarePhase {
    /// Waiting for the retrieve time or the next attempt.
    Download,
    /// The application downloads.
    Downloading,
    /// (Signed) Downloaded; the application checks the signature.
    Verifying,
    /// Waiting for the install time and for the transactions to end.
    Install,
    /// The application installs (and reboots).
    Installing,
}

/// An update the station holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareUpdate {
    /// The central system's `requestId` (0 for a 1.6 UpdateFirmware, which has none).
    pub request_id: i32,
    /// It came as 1.6 SignedUpdateFirmware.
    pub signed_v16: bool,
    /// Where to download it.
    pub location: String,
    /// Not before.
    pub retrieve: DateTime<Utc>,
    /// Install not before.
    pub install: Option<DateTime<Utc>>,
    /// Retries left after the attempt under way.
    pub retries_left: u32,
    /// Between attempts.
    pub retry_interval: Duration,
    /// The signing certificate (PEM), when given.
    pub signing_certificate: Option<String>,
    /// The signature (base64), when given.
    pub signature: Option<String>,
    /// Where it stands.
    pub phase: FirmwarePhase,
    /// Attempts made.
    pub attempts: u32,
    /// The next attempt, during [`FirmwarePhase::Download`].
    pub next_attempt: DateTime<Utc>,
    /// The last status reported.
    pub status: FirmwareStatus,
}

impl FirmwareUpdate {
    fn signed(&self) -> bool {
        self.signed_v16 || self.signature.is_some()
    }
}

/// The update and the notifications still to send, as persisted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct FirmwareDoc {
    /// Boxed: most stations hold none, and each station's size counts in a simulator.
    #[serde(default)]
    pub(crate) update: Option<Box<FirmwareUpdate>>,
    /// (action, payload) to send, in order.
    #[serde(default)]
    pub(crate) queue: VecDeque<(String, Value)>,
}

/// Pushes onto a bounded queue of notifications.
pub(crate) fn enqueue(queue: &mut VecDeque<(String, Value)>, action: &str, payload: Value) {
    if queue.len() >= MAX_PENDING_TRANSFER_STATUSES {
        queue.pop_front();
    }
    queue.push_back((action.to_owned(), payload));
}

/// Whether `s` looks like an absolute URL: a scheme, `://`, a host, no whitespace or control
/// characters, at most `max` characters.
pub(crate) fn is_url(s: &str, max: usize) -> bool {
    if s.chars().count() > max || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((scheme, rest)) = s.split_once("://") else {
        return false;
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    scheme_ok && !host.is_empty()
}

/// A PEM certificate, as far as the station checks without parsing it.
fn is_pem_certificate(s: &str) -> bool {
    let t = s.trim();
    t.starts_with("-----BEGIN CERTIFICATE-----") && t.ends_with("-----END CERTIFICATE-----")
}

/// `retries` from the wire: negative counts as 0, at most [`MAX_TRANSFER_RETRIES`]; absent:
/// the station's choice, 3.
pub(crate) fn retries_of(v: Option<i64>) -> u32 {
    v.map_or(3, |r| {
        u32::try_from(r.clamp(0, i64::from(MAX_TRANSFER_RETRIES))).unwrap_or(0)
    })
}

/// `retryInterval` from the wire: negative counts as 0, at most [`MAX_TIMER`]; absent:
/// [`DEFAULT_RETRY_INTERVAL`].
pub(crate) fn interval_of(v: Option<i64>) -> Duration {
    v.map_or(DEFAULT_RETRY_INTERVAL, |s| seconds(s).min(MAX_TIMER))
}

/// The instant of wall time `at`, seen from `now` / `wall` (clamped by [`deadline`]).
pub(crate) fn instant_of(now: Instant, wall: DateTime<Utc>, at: DateTime<Utc>) -> Instant {
    deadline(now, (at - wall).to_std().unwrap_or(Duration::ZERO))
}

/// Why an UpdateFirmware is not taken.
enum Refused {
    /// The version's `Rejected` (1.6 UpdateFirmware: CALLERROR).
    Rejected(&'static str),
    /// `InvalidCertificate`.
    Certificate,
}

impl Station {
    /// After a restart: a download or an upload that was running is asked for again (the
    /// process that ran it is gone); an install waits for the application's report.
    pub(crate) fn resume_transfers(&mut self) {
        if let Some(u) = self.firmware.update.as_mut() {
            if u.phase == FirmwarePhase::Downloading {
                u.phase = FirmwarePhase::Download;
            }
        }
        if let Some(u) = self.logs.upload.as_mut() {
            u.uploading = false;
        }
    }

    /// The firmware update the station holds, if any.
    pub fn firmware_update(&self) -> Option<&FirmwareUpdate> {
        self.firmware.update.as_deref()
    }

    /// The last firmware status reported (`Idle` when no update is held).
    pub fn firmware_status(&self) -> FirmwareStatus {
        self.firmware
            .update
            .as_ref()
            .map_or(FirmwareStatus::Idle, |u| u.status)
    }

    /// The application's report on the download or install of update `request_id` (as given
    /// in [`StationEvent::FirmwareDownload`] / [`StationEvent::FirmwareInstall`]). `false`
    /// when the station holds no such update or the report does not fit where it stands (a
    /// late report of a replaced update); nothing changes then.
    pub fn firmware_progress(
        &mut self,
        now: Instant,
        request_id: i32,
        progress: FirmwareProgress,
    ) -> bool {
        let taken = self.apply_firmware_progress(now, request_id, progress);
        self.step(now);
        taken
    }

    fn apply_firmware_progress(
        &mut self,
        now: Instant,
        request_id: i32,
        progress: FirmwareProgress,
    ) -> bool {
        let wall = self.cfg.time.wall(now);
        let Some(u) = self.firmware.update.as_mut() else {
            return false;
        };
        if u.request_id != request_id {
            return false;
        }
        use FirmwarePhase as P;
        use FirmwareProgress as G;
        let signed = u.signed();
        let (status, next, end) = match (u.phase, progress) {
            (P::Downloading, G::DownloadFailed) if u.retries_left > 0 => {
                u.retries_left -= 1;
                u.phase = P::Download;
                let step = chrono::Duration::from_std(u.retry_interval)
                    .unwrap_or(chrono::Duration::zero());
                u.next_attempt = wall.checked_add_signed(step).unwrap_or(wall);
                self.save();
                return true;
            }
            (P::Downloading, G::DownloadFailed) => (FirmwareStatus::DownloadFailed, None, true),
            (P::Downloading, G::Downloaded) if signed => {
                (FirmwareStatus::Downloaded, Some(P::Verifying), false)
            }
            (P::Downloading, G::Downloaded) => {
                (FirmwareStatus::Downloaded, Some(P::Install), false)
            }
            (P::Verifying, G::SignatureVerified) => {
                (FirmwareStatus::SignatureVerified, Some(P::Install), false)
            }
            (P::Verifying, G::InvalidSignature) | (P::Downloading, G::InvalidSignature) => {
                (FirmwareStatus::InvalidSignature, None, true)
            }
            (P::Installing, G::Installing) => (FirmwareStatus::Installing, None, false),
            (P::Installing, G::InstallRebooting) => (FirmwareStatus::InstallRebooting, None, false),
            (P::Installing, G::Installed) => (FirmwareStatus::Installed, None, true),
            (P::Installing, G::InstallationFailed) => {
                (FirmwareStatus::InstallationFailed, None, true)
            }
            (P::Installing, G::InstallVerificationFailed)
            | (P::Verifying, G::InstallVerificationFailed) => {
                (FirmwareStatus::InstallVerificationFailed, None, true)
            }
            _ => return false,
        };
        if let Some(p) = next {
            u.phase = p;
        }
        u.status = status;
        let install_later = next == Some(P::Install) && u.install.is_some_and(|t| t > wall);
        self.firmware_notify(status);
        match status {
            FirmwareStatus::InvalidSignature => {
                self.raise_security_event(now, SecurityEvent::InvalidFirmwareSignature, None)
            }
            FirmwareStatus::Installed => {
                self.raise_security_event(now, SecurityEvent::FirmwareUpdated, None)
            }
            _ => {}
        }
        if install_later {
            if let Some(u) = self.firmware.update.as_mut() {
                u.status = FirmwareStatus::InstallScheduled;
            }
            self.firmware_notify(FirmwareStatus::InstallScheduled);
        }
        if end {
            self.firmware.update = None;
        }
        self.save();
        true
    }

    /// Queues the status notification of the held update (or `Idle`), spelled for its message.
    pub(crate) fn firmware_notify(&mut self, status: FirmwareStatus) {
        let (signed_v16, request_id) = match &self.firmware.update {
            Some(u) => (u.signed_v16, Some(u.request_id)),
            None => (false, None),
        };
        if let Some((action, payload)) = self.firmware_message(status, signed_v16, request_id) {
            enqueue(&mut self.firmware.queue, action, payload);
            self.save();
        }
    }

    fn firmware_message(
        &self,
        status: FirmwareStatus,
        signed_v16: bool,
        request_id: Option<i32>,
    ) -> Option<(&'static str, Value)> {
        if self.v16() && !signed_v16 {
            let s = status.v16_plain()?;
            return Some(("FirmwareStatusNotification", json!({ "status": s })));
        }
        let mut p = json!({ "status": status.as_str() });
        if let Some(id) = request_id.filter(|_| status != FirmwareStatus::Idle) {
            p["requestId"] = json!(id);
        }
        let action = if signed_v16 {
            "SignedFirmwareStatusNotification"
        } else {
            "FirmwareStatusNotification"
        };
        Some((action, p))
    }

    /// TriggerMessage FirmwareStatusNotification (1.6 ExtendedTriggerMessage: the signed
    /// one): the ongoing update's last status, else `Idle`. Sent at once (behind the queue).
    pub(crate) fn trigger_firmware_status(&mut self, now: Instant, signed_v16: bool) {
        let (status, request_id) = match &self.firmware.update {
            Some(u) if u.signed_v16 == signed_v16 || !self.v16() => (u.status, Some(u.request_id)),
            _ => (FirmwareStatus::Idle, None),
        };
        let status = if self.v16() && !signed_v16 && status.v16_plain().is_none() {
            // A step 1.6 does not name: the last one it does.
            match status {
                FirmwareStatus::DownloadScheduled => FirmwareStatus::Idle,
                FirmwareStatus::SignatureVerified | FirmwareStatus::InstallScheduled => {
                    FirmwareStatus::Downloaded
                }
                _ => FirmwareStatus::Installing,
            }
        } else {
            status
        };
        if let Some((action, p)) = self.firmware_message(status, signed_v16, request_id) {
            self.call(now, action, &p, Pending::Plain);
        }
    }

    /// An UpdateFirmware (any version, signed or not): the status word, or the refusal.
    fn take_firmware(
        &mut self,
        now: Instant,
        mut update: FirmwareUpdate,
    ) -> Result<&'static str, Refused> {
        if !is_url(&update.location, max_location(self.cfg.version)) {
            return Err(Refused::Rejected("the location is not a URL"));
        }
        if update
            .signing_certificate
            .as_deref()
            .is_some_and(|c| !is_pem_certificate(c))
        {
            self.raise_security_event(
                now,
                SecurityEvent::InvalidFirmwareSigningCertificate,
                Some("the signing certificate is not a PEM certificate"),
            );
            return Err(Refused::Certificate);
        }
        let mut status = "Accepted";
        if let Some(old) = &self.firmware.update {
            if old.phase == FirmwarePhase::Installing {
                return Err(Refused::Rejected("an update is being installed"));
            }
            // 2.x use case L01 and the whitepaper: the ongoing update is canceled.
            let id = old.request_id;
            if !self.v16() || update.signed_v16 {
                status = "AcceptedCanceled";
            }
            self.events
                .push_back(StationEvent::FirmwareCanceled { request_id: id });
        }
        let wall = self.cfg.time.wall(now);
        update.next_attempt = update.retrieve;
        update.status = if update.retrieve > wall {
            FirmwareStatus::DownloadScheduled
        } else {
            FirmwareStatus::Idle
        };
        let scheduled = update.retrieve > wall;
        self.firmware.update = Some(Box::new(update));
        if scheduled {
            self.firmware_notify(FirmwareStatus::DownloadScheduled);
        }
        self.save();
        Ok(status)
    }

    /// After every input: starts what is due (a download at its retrieve or retry time, the
    /// install at its time once no transaction runs), sends the queued notifications, sets
    /// the next deadline.
    pub(crate) fn firmware_step(&mut self, now: Instant) {
        let wall = self.cfg.time.wall(now);
        let busy = self.evses.iter().any(|e| e.tx.is_some());
        let mut download = None;
        let mut install = None;
        if let Some(u) = self.firmware.update.as_mut() {
            match u.phase {
                FirmwarePhase::Download if u.next_attempt <= wall => {
                    u.phase = FirmwarePhase::Downloading;
                    u.attempts = u.attempts.saturating_add(1);
                    u.status = FirmwareStatus::Downloading;
                    download = Some(StationEvent::FirmwareDownload {
                        request_id: u.request_id,
                        location: u.location.clone(),
                        attempt: u.attempts,
                        signing_certificate: u.signing_certificate.clone(),
                        signature: u.signature.clone(),
                    });
                }
                FirmwarePhase::Install if u.install.is_none_or(|t| t <= wall) && !busy => {
                    u.phase = FirmwarePhase::Installing;
                    install = Some(StationEvent::FirmwareInstall {
                        request_id: u.request_id,
                    });
                }
                _ => {}
            }
        }
        if let Some(e) = download {
            self.firmware_notify(FirmwareStatus::Downloading);
            self.events.push_back(e);
            self.save();
        }
        if let Some(e) = install {
            self.events.push_back(e);
            self.save();
        }
        while self.accepted() {
            let Some((action, p)) = self.firmware.queue.front().cloned() else {
                break;
            };
            if !self.call(now, &action, &p, Pending::Plain) {
                break;
            }
            self.firmware.queue.pop_front();
            self.save();
        }
        self.firmware_next = self.firmware.update.as_ref().and_then(|u| match u.phase {
            FirmwarePhase::Download => Some(instant_of(now, wall, u.next_attempt)),
            FirmwarePhase::Install => u
                .install
                .filter(|t| *t > wall)
                .map(|t| instant_of(now, wall, t)),
            _ => None,
        });
    }
}

fn date(v: &Value, key: &str) -> Option<DateTime<Utc>> {
    text(v, key).and_then(|s| s.parse().ok())
}

/// Reads an UpdateFirmware / SignedUpdateFirmware of any version (its payload as JSON).
fn read_update(v16_plain: bool, signed_v16: bool, q: &Value) -> Option<FirmwareUpdate> {
    let (request_id, location, retrieve, install, cert, signature) = if v16_plain {
        (
            0,
            text(q, "location")?,
            date(q, "retrieveDate")?,
            None,
            None,
            None,
        )
    } else {
        let f = q.get("firmware")?;
        (
            i32::try_from(int(q, "requestId")?).ok()?,
            text(f, "location")?,
            date(f, "retrieveDateTime")?,
            date(f, "installDateTime"),
            text(f, "signingCertificate"),
            text(f, "signature"),
        )
    };
    Some(FirmwareUpdate {
        request_id,
        signed_v16,
        location,
        retrieve,
        install,
        retries_left: retries_of(int(q, "retries")),
        retry_interval: interval_of(int(q, "retryInterval")),
        signing_certificate: cert,
        signature,
        phase: FirmwarePhase::Download,
        attempts: 0,
        next_attempt: retrieve,
        status: FirmwareStatus::Idle,
    })
}

/// The built-in UpdateFirmware / SignedUpdateFirmware of every version.
fn update_firmware<Q: Serialize, R: serde::de::DeserializeOwned>(
    ctx: &mut crate::app::Context<'_>,
    request: Q,
    signed_v16: bool,
    action: &str,
) -> Result<R, crate::app::CallError> {
    let v16_plain = ctx.station.v16() && !signed_v16;
    if !ctx.station.cfg.transfers {
        return crate::app::refusal(action);
    }
    let value = serde_json::to_value(&request).unwrap_or_default();
    let refused = |why: &str| -> Result<R, crate::app::CallError> {
        if v16_plain {
            Err(crate::app::CallError::new(
                ocpp_codec::ErrorCode::PropertyConstraintViolation,
                format!("{action}: {why}"),
            ))
        } else {
            local_list::status_response("Rejected", action)
        }
    };
    let Some(update) = read_update(v16_plain, signed_v16, &value) else {
        return refused("the request cannot be read");
    };
    match ctx.station.take_firmware(ctx.now, update) {
        Ok(_) if v16_plain => serde_json::from_value(json!({})).map_err(|_| {
            crate::app::CallError::new(ocpp_codec::ErrorCode::InternalError, "empty answer")
        }),
        Ok(status) => local_list::status_response(status, action),
        Err(Refused::Rejected(why)) => refused(why),
        Err(Refused::Certificate) => local_list::status_response("InvalidCertificate", action),
    }
}

/// The built-in 1.6 UpdateFirmware.
pub(crate) fn update_firmware_v16(
    ctx: &mut crate::app::Context<'_>,
    request: ocpp_types::v16::UpdateFirmwareRequest,
) -> Result<ocpp_types::v16::UpdateFirmwareResponse, crate::app::CallError> {
    update_firmware(ctx, request, false, "UpdateFirmware")
}

/// The built-in 1.6 SignedUpdateFirmware.
pub(crate) fn signed_update_firmware_v16(
    ctx: &mut crate::app::Context<'_>,
    request: ocpp_types::v16::SignedUpdateFirmwareRequest,
) -> Result<ocpp_types::v16::SignedUpdateFirmwareResponse, crate::app::CallError> {
    update_firmware(ctx, request, true, "SignedUpdateFirmware")
}

/// The built-in 2.x UpdateFirmware.
pub(crate) fn update_firmware_v2<Q: Serialize, R: serde::de::DeserializeOwned>(
    ctx: &mut crate::app::Context<'_>,
    request: Q,
) -> Result<R, crate::app::CallError> {
    update_firmware(ctx, request, false, "UpdateFirmware")
}
