//! Security events (OCPP 2.0.1 / 2.1 use case A04 "Security Event Notification" and the
//! appendix "Security Events"; the 1.6 security whitepaper, "Security events"): raised where
//! the station sees them, given to the application ([`StationEvent::SecurityEvent`], its
//! security log) and, with [`StationConfig::security_events`], sent to the central system
//! as `SecurityEventNotification` through the durable outbox, so they survive offline
//! periods and restarts like transaction messages (at most [`MAX_QUEUED_SECURITY_EVENTS`]
//! wait; beyond, the oldest one not in flight is dropped and reported as
//! [`StationEvent::Dropped`]).
//!
//! What the library raises itself:
//!
//! - [`SecurityEvent::StartupOfTheDevice`] when a station is built ([`Station::new`]: the
//!   process started, i.e. the device started).
//! - [`SecurityEvent::ResetOrReboot`] when it executes a Reset from the central system.
//! - [`SecurityEvent::ReconfigurationOfSecurityParameters`] when the central system changes
//!   the Basic-auth password (1.6 `AuthorizationKey`, 2.x `SecurityCtrlr.BasicAuthPassword`).
//!
//! What only the driver or the application can see is raised with
//! [`Station::security_event`]: TLS failures ([`SecurityEvent::InvalidCentralCertificate`],
//! [`SecurityEvent::InvalidTlsVersion`], ...), a clock set by the application
//! ([`SecurityEvent::SettingSystemTime`]), tampering, memory exhaustion, firmware checks.

use super::*;

/// The most `SecurityEventNotification`s waiting in the outbox. A station that stays offline
/// long enough for more to happen keeps the newest ones (the oldest waiting one not in
/// flight is dropped), so a burst cannot grow its storage without bound.
pub const MAX_QUEUED_SECURITY_EVENTS: usize = 32;

/// The longest `techInfo` sent (both versions: 255 characters); longer text is cut.
pub const MAX_TECH_INFO: usize = 255;

/// A security event type of the specifications' list. The 1.6 whitepaper and 2.x name some
/// differently ("CentralSystem" / "Csms", "ChargePoint" / "ChargingStation"); each variant is
/// spelled for the station's version ([`SecurityEvent::name`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecurityEvent {
    /// The firmware was updated.
    FirmwareUpdated,
    /// The station failed to authenticate at the central system.
    FailedToAuthenticateAtCentral,
    /// The central system failed to authenticate at the station.
    CentralFailedToAuthenticate,
    /// The system time was set.
    SettingSystemTime,
    /// The station started.
    StartupOfTheDevice,
    /// The station was reset or rebooted.
    ResetOrReboot,
    /// The security log was cleared.
    SecurityLogWasCleared,
    /// Security parameters (keys, passwords, the security profile) were changed.
    ReconfigurationOfSecurityParameters,
    /// Flash or RAM is getting full.
    MemoryExhaustion,
    /// Messages that are not valid OCPP were received.
    InvalidMessages,
    /// A replayed message was received.
    AttemptedReplayAttacks,
    /// Physical tampering was detected.
    TamperDetectionActivated,
    /// A firmware signature is invalid.
    InvalidFirmwareSignature,
    /// A firmware signing certificate is invalid.
    InvalidFirmwareSigningCertificate,
    /// The central system's TLS certificate is invalid (1.6
    /// `InvalidCentralSystemCertificate`, 2.x `InvalidCsmsCertificate`).
    InvalidCentralCertificate,
    /// The station's own certificate is invalid (1.6 `InvalidChargePointCertificate`, 2.x
    /// `InvalidChargingStationCertificate`).
    InvalidStationCertificate,
    /// The central system offered a TLS version the station refuses.
    InvalidTlsVersion,
    /// The central system offered no acceptable TLS cipher suite.
    InvalidTlsCipherSuite,
    /// Another type (at most 50 characters are sent).
    Other(String),
}

impl SecurityEvent {
    /// The `type` sent for `version`.
    pub fn name(&self, version: Version) -> &str {
        let v16 = version == Version::V16;
        match self {
            SecurityEvent::FirmwareUpdated => "FirmwareUpdated",
            SecurityEvent::FailedToAuthenticateAtCentral if v16 => {
                "FailedToAuthenticateAtCentralSystem"
            }
            SecurityEvent::FailedToAuthenticateAtCentral => "FailedToAuthenticateAtCsms",
            SecurityEvent::CentralFailedToAuthenticate if v16 => {
                "CentralSystemFailedToAuthenticate"
            }
            SecurityEvent::CentralFailedToAuthenticate => "CsmsFailedToAuthenticate",
            SecurityEvent::SettingSystemTime => "SettingSystemTime",
            SecurityEvent::StartupOfTheDevice => "StartupOfTheDevice",
            SecurityEvent::ResetOrReboot => "ResetOrReboot",
            SecurityEvent::SecurityLogWasCleared => "SecurityLogWasCleared",
            SecurityEvent::ReconfigurationOfSecurityParameters => {
                "ReconfigurationOfSecurityParameters"
            }
            SecurityEvent::MemoryExhaustion => "MemoryExhaustion",
            SecurityEvent::InvalidMessages => "InvalidMessages",
            SecurityEvent::AttemptedReplayAttacks => "AttemptedReplayAttacks",
            SecurityEvent::TamperDetectionActivated => "TamperDetectionActivated",
            SecurityEvent::InvalidFirmwareSignature => "InvalidFirmwareSignature",
            SecurityEvent::InvalidFirmwareSigningCertificate => "InvalidFirmwareSigningCertificate",
            SecurityEvent::InvalidCentralCertificate if v16 => "InvalidCentralSystemCertificate",
            SecurityEvent::InvalidCentralCertificate => "InvalidCsmsCertificate",
            SecurityEvent::InvalidStationCertificate if v16 => "InvalidChargePointCertificate",
            SecurityEvent::InvalidStationCertificate => "InvalidChargingStationCertificate",
            SecurityEvent::InvalidTlsVersion => "InvalidTLSVersion",
            SecurityEvent::InvalidTlsCipherSuite => "InvalidTLSCipherSuite",
            SecurityEvent::Other(name) => name,
        }
    }

    /// Whether the specifications mark it critical (the 1.6 whitepaper's and the 2.x
    /// appendix's "critical" column): a critical event must reach the central system; the
    /// others must at least be logged. The station sends every event it is given when
    /// [`StationConfig::security_events`] is on; this tells an application which ones it
    /// may not leave out.
    pub fn is_critical(&self) -> bool {
        matches!(
            self,
            SecurityEvent::FirmwareUpdated
                | SecurityEvent::SettingSystemTime
                | SecurityEvent::StartupOfTheDevice
                | SecurityEvent::ResetOrReboot
                | SecurityEvent::SecurityLogWasCleared
                | SecurityEvent::MemoryExhaustion
                | SecurityEvent::AttemptedReplayAttacks
                | SecurityEvent::TamperDetectionActivated
                | SecurityEvent::InvalidFirmwareSignature
                | SecurityEvent::InvalidFirmwareSigningCertificate
                | SecurityEvent::InvalidCentralCertificate
                | SecurityEvent::InvalidStationCertificate
                | SecurityEvent::InvalidTlsVersion
                | SecurityEvent::InvalidTlsCipherSuite
        )
    }
}

/// The first `max` characters of `s`.
fn cut(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl Station {
    /// Records a security event at `now`: reported as [`StationEvent::SecurityEvent`] and,
    /// with [`StationConfig::security_events`], queued as a `SecurityEventNotification` in
    /// the durable outbox (sent once the station is accepted; see the [module
    /// docs](self) for the bound). `tech_info` (at most [`MAX_TECH_INFO`] characters are
    /// sent) must not carry secrets. This is the hook for what the driver sees (a TLS
    /// connection refused for the central system's certificate:
    /// [`SecurityEvent::InvalidCentralCertificate`]) and what the application sees.
    pub fn security_event(&mut self, now: Instant, event: SecurityEvent, tech_info: Option<&str>) {
        self.raise_security_event(now, event, tech_info);
        self.step(now);
    }

    /// [`Station::security_event`] without the step (inside the station's own work).
    pub(crate) fn raise_security_event(
        &mut self,
        now: Instant,
        event: SecurityEvent,
        tech_info: Option<&str>,
    ) {
        let version = self.cfg.version;
        let name = cut(event.name(version), 50).to_owned();
        let tech_info = tech_info.map(|t| cut(t, MAX_TECH_INFO).to_owned());
        self.events.push_back(StationEvent::SecurityEvent {
            kind: name.clone(),
            tech_info: tech_info.clone(),
        });
        if !self.cfg.security_events {
            return;
        }
        let queued: Vec<u64> = self
            .outbox
            .queue
            .iter()
            .filter(|m| m.action == "SecurityEventNotification")
            .map(|m| m.seq)
            .collect();
        if queued.len() >= MAX_QUEUED_SECURITY_EVENTS {
            if let Some(seq) = queued
                .into_iter()
                .find(|s| self.outbox.inflight != Some(*s))
            {
                self.drop_queued(seq);
            }
        }
        let mut p = json!({ "type": name, "timestamp": self.wall(now) });
        if let Some(t) = tech_info {
            p["techInfo"] = json!(t);
        }
        self.enqueue("SecurityEventNotification", &p, None);
    }
}
