//! The charger simulator: one to many thousands of simulated chargers of any mix of OCPP 1.6,
//! 2.0.1 and 2.1 against one central system, built only on our crates.
//!
//! Two engines share the configuration ([`SimConfig`]'s URL, identities, versions, Basic auth
//! and local source addresses) and the transport rules of `ocpp_codec::transport`:
//!
//! - [`Fleet`]: full chargers. Each is an [`ocpp_charger::Station`] (boot, status, heartbeat,
//!   authorization, transactions, meter values, every central-system call) on simulated
//!   hardware (a meter per EVSE and a [`SimulatedEv`](ocpp_charger::SimulatedEv) battery
//!   plugged in with the cable), run by `ocpp_charger`'s own WebSocket driver
//!   ([`ocpp_charger::ws::run`]: one task owning the socket, the station and its store,
//!   reconnecting with backoff) beside a small controller task that plays the charger's
//!   script and keeps the fleet's counters. A [`Scenario`] plays drivers: `idle` leaves the
//!   chargers to the central system (remote start / stop work), `charge` runs a scripted
//!   session per charger again and again, `random` plays seeded random drivers. The
//!   application can plug cables, present tokens and fill batteries itself
//!   ([`Fleet::plug_in`], [`Fleet::present_id_token`], ...), read [`Stats`] and wait for
//!   events ([`Fleet::subscribe`]).
//! - [`load`]: the load generator of the benchmark. Each charger is an
//!   [`ocpp_codec::rpc::Endpoint`] on a WebSocket, boots, then alternates Heartbeat and
//!   MeterValues (seven sampled values) with exactly one call in flight, or holds an idle
//!   connection with heartbeats; the report gives calls/s and latency percentiles of the
//!   steady window. Payloads are the generated `ocpp_types` structs. It keeps its own minimal
//!   connection loop instead of the charger driver (no station, outbox or store per
//!   connection), so that what it costs per connection stays what the benchmark was measured
//!   with.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ocpp_examples::sim::SimError> {
//! use std::time::Duration;
//! use ocpp_examples::sim::{Fleet, Scenario, SimConfig};
//!
//! let mut config = SimConfig::new("ws://127.0.0.1:9000/ocpp");
//! config.count = 10;
//! config.scenario = Scenario::Idle;
//! let fleet = Fleet::start(config).await?;
//! fleet.wait_stats(|s| s.booted == 10, Duration::from_secs(30)).await?;
//! fleet.plug_in("SIM-0001", 1)?;
//! fleet.present_id_token("SIM-0001", Some(1), "04E1A2B3")?;
//! fleet.shutdown().await;
//! # Ok(()) }
//! ```

mod connect;
mod fleet;
mod hardware;
mod histogram;
pub mod load;
pub mod ocmf;
mod script;
mod transfers;

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use ocpp_codec::Version;

pub use fleet::{Fleet, FleetEvent, Stats, Subscription, COMMAND_QUEUE};
pub use histogram::LatencySummary;

/// Why the simulator could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The URL is not a `ws://` URL with a host (TLS is not supported by the simulator).
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// No tokio runtime is running (the fleet spawns its tasks on the current one).
    #[error("the simulator must run inside a tokio runtime")]
    NoRuntime,
    /// No charger has this identity.
    #[error("no simulated charger {0:?}")]
    UnknownCharger(String),
    /// The charger's task has ended (the fleet was shut down).
    #[error("simulated charger {0:?} is not running")]
    ChargerStopped(String),
    /// The charger already has [`fleet::COMMAND_QUEUE`] commands waiting; try again later.
    #[error("simulated charger {0:?} has {n} commands waiting (the most it queues)", n = fleet::COMMAND_QUEUE)]
    Busy(String),
    /// A station could not be built.
    #[error("station {identity:?}: {reason}")]
    Station {
        /// The charger.
        identity: String,
        /// What failed.
        reason: String,
    },
    /// Waiting for a condition or an event took longer than allowed.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    /// The event stream ended (the fleet was shut down).
    #[error("the fleet's event stream ended")]
    Closed,
    /// A simulator task failed.
    #[error("{0}")]
    Task(String),
}

/// Which OCPP versions the chargers speak: charger `i` (from 0) speaks `versions[i % len]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionMix(Vec<Version>);

impl VersionMix {
    /// Every charger speaks `version`.
    pub fn one(version: Version) -> VersionMix {
        VersionMix(vec![version])
    }

    /// 1.6, 2.0.1, 2.1, 1.6, ... in turn.
    pub fn mixed() -> VersionMix {
        VersionMix(Version::ALL.to_vec())
    }

    /// The versions in turn; `None` when empty.
    pub fn cycle(versions: Vec<Version>) -> Option<VersionMix> {
        (!versions.is_empty()).then_some(VersionMix(versions))
    }

    /// The version of charger `index` (from 0).
    pub fn version_of(&self, index: usize) -> Version {
        self.0[index % self.0.len()]
    }

    /// The versions in turn.
    pub fn versions(&self) -> &[Version] {
        &self.0
    }
}

impl std::fmt::Display for VersionMix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 == Version::ALL {
            return f.write_str("mixed");
        }
        let names: Vec<&str> = self.0.iter().map(|v| v.as_str()).collect();
        f.write_str(&names.join(","))
    }
}

impl FromStr for VersionMix {
    type Err = String;

    /// `1.6`, `2.0.1`, `2.1`, `mixed`, or a comma-separated list such as `1.6,2.1`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case("mixed") {
            return Ok(VersionMix::mixed());
        }
        let versions = s
            .split(',')
            .map(|v| Version::from_str(v.trim()).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        VersionMix::cycle(versions).ok_or_else(|| "no version given".to_owned())
    }
}

/// What the simulated drivers do (full chargers, [`Fleet`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Boot, status, heartbeats; nothing else happens unless the application or the central
    /// system acts (remote start / stop, [`Fleet::plug_in`], ...).
    Idle,
    /// Per charger, again and again: plug in, present the id tag, charge with meter values
    /// for [`SimConfig::charge_duration`], present the tag again (local stop), unplug, pause
    /// for [`SimConfig::pause`]. Successive sessions rotate over the EVSEs.
    Charge,
    /// Seeded random drivers on every EVSE: random arrival, authorization, charging time,
    /// EV pauses, full batteries, and stop by tag or by pulling the cable.
    Random,
}

impl FromStr for Scenario {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "idle" => Ok(Scenario::Idle),
            "charge" => Ok(Scenario::Charge),
            "random" => Ok(Scenario::Random),
            other => Err(format!(
                "unknown scenario {other:?}: expected idle, charge or random"
            )),
        }
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Scenario::Idle => "idle",
            Scenario::Charge => "charge",
            Scenario::Random => "random",
        })
    }
}

/// How a fleet of simulated chargers is set up. Build with [`SimConfig::new`] and change the
/// public fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SimConfig {
    /// Base URL, `ws://HOST:PORT/PATH` (or `wss://` with [`SimConfig::tls`]); each charger
    /// appends `/<its identity>`.
    pub url: String,
    /// How many chargers.
    pub count: usize,
    /// Index of the first charger (identities are `prefix-<index>`), so several simulator
    /// processes can share one central system without clashing identities.
    pub first_index: usize,
    /// Which versions they speak.
    pub versions: VersionMix,
    /// EVSEs (2.x) / connectors (1.6) per charger.
    pub evses: u32,
    /// Identity prefix.
    pub prefix: String,
    /// Basic-auth password (security profile 1, user = identity); `None`: no credentials.
    pub password: Option<String>,
    /// TLS for a `wss://` URL (security profile 2, or 3 with a client certificate).
    pub tls: Option<ocpp_charger::tls::ClientTls>,
    /// What the drivers do.
    pub scenario: Scenario,
    /// Seed of every random choice (message ids, scenario timing, EV batteries).
    pub seed: u64,
    /// New connections per second while starting (0: all at once).
    pub ramp: f64,
    /// Local source addresses for the TCP connections, used in turn (empty: the system's
    /// choice). With several addresses (127.0.0.2, 127.0.0.3, ...) one load generator can
    /// exceed the ephemeral ports of one source address.
    pub bind_ips: Vec<IpAddr>,
    /// The id tag the scripted drivers present; a driver arriving at a reserved EVSE (or at
    /// any EVSE while a reservation of any EVSE is held) presents the reserved token instead,
    /// and a driver stops with the token that started the transaction.
    pub id_tag: String,
    /// Seconds between meter samples of a running transaction (1.6
    /// `MeterValueSampleInterval`, 2.x `SampledDataCtrlr.TxUpdatedInterval`), set in every
    /// station at construction.
    pub meter_interval: Duration,
    /// How long a scripted session charges.
    pub charge_duration: Duration,
    /// Pause between scripted sessions.
    pub pause: Duration,
    /// (Charge scenario) Charger `i` (from 0)'s first driver arrives `i` times this after
    /// its first boot (`None`: after a random delay), so arrivals come in a steady wave.
    pub arrival_stagger: Option<Duration>,
    /// (Charge scenario) How many sessions each charger's drivers make before it stays idle
    /// (`None`: without end), so departures end the wave.
    pub sessions: Option<u32>,
    /// Charging power of each EVSE in W.
    pub power_w: u32,
    /// How long a CALL waits for its answer.
    pub call_timeout: Duration,
    /// How long a connection attempt may take.
    pub connect_timeout: Duration,
    /// Vendor in BootNotification (at most 20 characters).
    pub vendor: String,
    /// Model in BootNotification (at most 20 characters).
    pub model: String,
    /// On [`Fleet::shutdown`], end running transactions first (the EV unplugs) and wait up
    /// to 5 s for the central system to confirm them, so no session stays open there.
    pub end_transactions_on_shutdown: bool,
    /// WebSocket compression the chargers offer (default: none, unlike
    /// `ocpp_charger::ws::ClientConfig`, so simulations and their measurements stay
    /// comparable with earlier ones; `charger-sim --compression` offers it).
    pub compression: ocpp_charger::ws::Compression,
    /// Sign every transaction and clock-aligned reading as OCMF with this P-256 key
    /// (`charger-sim --sign-readings`): the stations' sign-readings settings are on and 2.x
    /// sends the public key once per transaction (`PublicKeyWithSignedMeterValue`). `None`:
    /// unsigned readings.
    pub sign_readings: Option<std::sync::Arc<ocmf::MeterKey>>,
}

impl SimConfig {
    /// One 1.6/2.0.1/2.1-mixed charger `SIM-0001` with 2 EVSEs against `url`, scenario
    /// idle, seed 1, all connections at once, meter samples every 10 s, sessions of 60 s
    /// with 30 s pauses, 7.4 kW per EVSE, id tag `04E1A2B3C4D5E6`; running transactions
    /// are ended on shutdown.
    pub fn new(url: impl Into<String>) -> SimConfig {
        SimConfig {
            url: url.into(),
            count: 1,
            first_index: 1,
            versions: VersionMix::mixed(),
            evses: 2,
            prefix: "SIM".into(),
            password: None,
            tls: None,
            scenario: Scenario::Idle,
            seed: 1,
            ramp: 0.0,
            bind_ips: Vec::new(),
            id_tag: "04E1A2B3C4D5E6".into(),
            meter_interval: Duration::from_secs(10),
            charge_duration: Duration::from_secs(60),
            pause: Duration::from_secs(30),
            arrival_stagger: None,
            sessions: None,
            power_w: 7400,
            sign_readings: None,
            call_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            vendor: "ocpp-rs".into(),
            model: "charger-sim".into(),
            end_transactions_on_shutdown: true,
            compression: ocpp_charger::ws::Compression::off(),
        }
    }

    /// The identity of charger `i` (from 0): the prefix, a dash and the zero-padded index.
    pub fn identity(&self, i: usize) -> String {
        identity(&self.prefix, self.first_index, self.count, i)
    }

    pub(crate) fn validate(&self) -> Result<(), SimError> {
        validate_common(
            &self.prefix,
            self.count,
            self.evses,
            self.ramp,
            self.password.as_deref(),
        )?;
        if self.id_tag.is_empty() || self.id_tag.chars().count() > 20 {
            return Err(SimError::InvalidConfig(
                "the id tag must have 1 to 20 characters (1.6 idTag)".into(),
            ));
        }
        if self.vendor.chars().count() > 20 || self.model.chars().count() > 20 {
            return Err(SimError::InvalidConfig(
                "vendor and model may have at most 20 characters".into(),
            ));
        }
        if self.power_w == 0 {
            return Err(SimError::InvalidConfig("power must be above 0 W".into()));
        }
        Ok(())
    }
}

/// `prefix-<first + i>`, zero-padded to at least 4 digits and to the width of the last index.
pub(crate) fn identity(prefix: &str, first: usize, count: usize, i: usize) -> String {
    let last = first + count.max(1) - 1;
    let width = last.to_string().len().max(4);
    format!("{prefix}-{:0width$}", first + i)
}

pub(crate) fn validate_common(
    prefix: &str,
    count: usize,
    evses: u32,
    ramp: f64,
    password: Option<&str>,
) -> Result<(), SimError> {
    if count == 0 {
        return Err(SimError::InvalidConfig("count must be at least 1".into()));
    }
    if !(1..=100).contains(&evses) {
        return Err(SimError::InvalidConfig(
            "evses must be between 1 and 100".into(),
        ));
    }
    if prefix.is_empty()
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(SimError::InvalidConfig(
            "the prefix must be non-empty ASCII letters, digits, '-', '_' or '.'".into(),
        ));
    }
    if prefix.len() + 1 + count.to_string().len().max(4) > 48 {
        return Err(SimError::InvalidConfig(
            "identities would be longer than 48 characters".into(),
        ));
    }
    if !ramp.is_finite() || ramp < 0.0 {
        return Err(SimError::InvalidConfig(
            "ramp must be a non-negative number of connections per second".into(),
        ));
    }
    if password.is_some_and(|p| p.contains(['\r', '\n'])) {
        return Err(SimError::InvalidConfig(
            "the password must not contain line breaks".into(),
        ));
    }
    Ok(())
}

/// When charger `i` starts connecting, counted from the start, at `ramp` per second.
pub(crate) fn ramp_offset(ramp: f64, i: usize) -> Duration {
    if ramp > 0.0 {
        Duration::from_secs_f64(i as f64 / ramp)
    } else {
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_zero_padded() {
        assert_eq!(identity("SIM", 1, 6, 0), "SIM-0001");
        assert_eq!(identity("SIM", 1, 10_000, 9_999), "SIM-10000");
        assert_eq!(identity("SIM", 1, 10_000, 0), "SIM-00001");
        assert_eq!(identity("CP", 501, 500, 0), "CP-0501");
    }

    #[test]
    fn version_mix_parses() {
        assert_eq!("mixed".parse::<VersionMix>().unwrap(), VersionMix::mixed());
        let m: VersionMix = "1.6,2.1".parse().unwrap();
        assert_eq!(m.version_of(0), Version::V16);
        assert_eq!(m.version_of(1), Version::V21);
        assert_eq!(m.version_of(2), Version::V16);
        assert_eq!(m.to_string(), "1.6,2.1");
        assert!("1.5".parse::<VersionMix>().is_err());
    }
}
