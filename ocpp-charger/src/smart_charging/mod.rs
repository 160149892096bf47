//! Smart charging: the charging-profile store, its validation, the composite schedule and the
//! limit applied to the hardware, for OCPP 1.6, 2.0.1 and 2.1.
//!
//! - [`ChargingProfile`]: one version-neutral profile, converted from and to each version's
//!   generated type (`from_v16` / `to_v16`, `from_v201` / `to_v201`, `from_v21` / `to_v21`).
//! - The store: per EVSE (0 = the station), at most
//!   [`SmartChargingConfig::max_profiles_per_evse`] profiles, kept in the station's state
//!   document (so they survive a restart through the same [`Persist`](crate::Persist) work
//!   as everything else); read it with [`Station::charging_profiles`].
//! - [`Rejection`]: why `SetChargingProfile` (or a remote start's profile) is refused; the
//!   answer is `Rejected`, with a 2.x `statusInfo.reasonCode`.
//! - [`CompositeSchedule`]: [`Station::composite_schedule`], the answer to
//!   `GetCompositeSchedule`; the rules are in the `composite` module's documentation.
//! - Applied: after every input the station evaluates the limit of every EVSE (and of EVSE
//!   0, the station total) and tells [`Hardware::set_charging_limit`](crate::Hardware::set_charging_limit)
//!   when it changed; [`Station::poll_timeout`] includes the next period boundary.
//!
//! The built-in answers of the [`SmartCharging`](crate::app::SmartCharging) block are here;
//! an application overrides them by implementing that trait.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ocpp_codec::Version;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::settings::Settings;
use crate::station::{Pending, Station};
use crate::time::deadline;

mod composite;
pub(crate) mod handlers;
mod validate;

pub use composite::{Limit, MAX_STEPS};
/// The profile model, shared with central systems (`ocpp_types::smart_charging`).
pub use ocpp_types::smart_charging::{
    ChargingProfile, CompositePeriod, CompositeSchedule, Kind, Period, Purpose, RateUnit,
    Recurrency, Schedule,
};
pub use validate::Rejection;

use validate::TxView;

/// A limit as the hardware takes it ([`Hardware::set_charging_limit`](crate::Hardware::set_charging_limit)):
/// the same limit as power and as current per phase, at the station's nominal voltage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargingLimit {
    /// The most power to draw, in W.
    pub power_w: Decimal,
    /// The most current per phase, in A.
    pub current_a: Decimal,
    /// The phases to use (1 to 3).
    pub phases: u8,
    /// (2.1) The power to follow, in W: negative discharges (V2X `setpoint`, kept within
    /// `discharge_limit_w` and `power_w`). `None`: draw up to the limit.
    pub setpoint_w: Option<Decimal>,
    /// (2.1) The most power the EV may discharge, in W (negative). `None`: no discharge
    /// limit given.
    pub discharge_limit_w: Option<Decimal>,
}

/// The station's smart-charging parameters and bounds
/// ([`StationConfig::smart_charging`](crate::StationConfig::smart_charging)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmartChargingConfig {
    /// The voltage between a phase and neutral used to convert A into W (default 230 V).
    pub nominal_voltage: Decimal,
    /// What the hardware can do: the limit of a composite schedule's instants no profile
    /// limits (default 32 A on 3 phases).
    pub hardware_limit: Limit,
    /// The most profiles installed per EVSE, EVSE 0 included (default 16). One more is
    /// `Rejected` (a replacement does not count).
    pub max_profiles_per_evse: usize,
    /// The most periods per schedule (default 96: a day in quarter hours). More is
    /// `Rejected`.
    pub max_periods: usize,
    /// The highest stack level accepted (default 100).
    pub max_stack_level: i32,
    /// The highest limit accepted, in A or W (default 1,000,000,000); keeps every
    /// conversion within exact decimals.
    pub max_limit: Decimal,
    /// The units accepted in schedules and composite requests (default both).
    pub units: Vec<RateUnit>,
    /// The unit of a composite schedule when the request names none (default A).
    pub default_unit: RateUnit,
    /// The most profiles per `ReportChargingProfiles` (default 8); more go in several
    /// reports, all but the last with `tbc`.
    pub profiles_per_report: usize,
}

impl Default for SmartChargingConfig {
    fn default() -> Self {
        SmartChargingConfig {
            nominal_voltage: Decimal::from(230),
            hardware_limit: Limit {
                value: Decimal::from(32),
                unit: RateUnit::A,
                phases: 3,
            },
            max_profiles_per_evse: 16,
            max_periods: 96,
            max_stack_level: 100,
            max_limit: Decimal::from(1_000_000_000u32),
            units: vec![RateUnit::A, RateUnit::W],
            default_unit: RateUnit::A,
            profiles_per_report: 8,
        }
    }
}

/// Who set a profile (2.x `chargingLimitSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Source {
    /// The central system (`CSO`).
    #[default]
    Cso,
    /// An energy management system (`EMS`).
    Ems,
    /// The system operator (`SO`).
    So,
    /// Anything else (`Other`).
    Other,
}

impl Source {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Cso => "CSO",
            Source::Ems => "EMS",
            Source::So => "SO",
            Source::Other => "Other",
        }
    }
}

/// A profile in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    /// The EVSE (0: the station; a `TxDefaultProfile` there applies to every EVSE).
    pub evse: u32,
    /// The profile.
    pub profile: ChargingProfile,
    /// Who set it.
    #[serde(default)]
    pub source: Source,
    /// The station-local key of the transaction of a `TxProfile`
    /// ([`TransactionInfo::local_id`](crate::TransactionInfo::local_id)); a `TxProfile`
    /// applies only while that transaction is ongoing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_local: Option<u64>,
}

/// A remote start's profile, waiting for its transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PendingRemote {
    evse: Option<u32>,
    token: String,
    profile: ChargingProfile,
    /// When it was accepted (Unix seconds).
    #[serde(default)]
    since: i64,
}

/// The part of the station's state document that belongs to smart charging.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct SmartDoc {
    #[serde(default)]
    profiles: Vec<Installed>,
    /// EVSE → (transaction's local key, its start in Unix seconds).
    #[serde(default)]
    tx_starts: BTreeMap<u32, (u64, i64)>,
    #[serde(default)]
    pending_remote: Option<PendingRemote>,
}

/// The station's smart-charging state.
#[derive(Debug, Default)]
pub(crate) struct SmartState {
    pub(crate) doc: SmartDoc,
    /// What the hardware was last told, per EVSE from 0 (`None`: nothing yet).
    applied: Vec<Option<Option<ChargingLimit>>>,
    /// The next period boundary.
    pub(crate) next_check: Option<Instant>,
}

impl SmartState {
    pub(crate) fn new(doc: SmartDoc) -> SmartState {
        SmartState {
            doc,
            applied: Vec::new(),
            next_check: None,
        }
    }
}

/// What the station does after answering `GetChargingProfiles`: the reports to send.
#[derive(Debug)]
pub(crate) struct FollowUp {
    reports: Vec<Value>,
}

/// Whether `existing` gives way to `new` set for `evse`: the same id (1.6 §5.16, 2.0.1
/// K01.FR.05), or, in 1.6, the same purpose and stack level on the same connector (1.6
/// §5.16: the new profile replaces the existing one; 2.x refuses it instead, K01.FR.06).
pub(crate) fn replaced_by(
    existing: &Installed,
    evse: u32,
    new: &ChargingProfile,
    version: Version,
) -> bool {
    existing.profile.purpose != Purpose::ExternalConstraints
        && (existing.profile.id == new.id
            || (version == Version::V16
                && existing.evse == evse
                && existing.profile.purpose == new.purpose
                && existing.profile.stack_level == new.stack_level))
}

/// The composite schedule of `evse` (0: the station) over `installed`: the computation behind
/// [`Station::composite_schedule`] and `GetCompositeSchedule`, without a station (a central
/// system can predict what a charger will do with it). `transaction`: the EVSE's ongoing
/// transaction (its local key, for its `TxProfile`s, and its start, for relative schedules).
pub fn composite_schedule(
    installed: &[Installed],
    evse: u32,
    transaction: Option<(u64, DateTime<Utc>)>,
    start: DateTime<Utc>,
    duration: i32,
    unit: RateUnit,
    config: &SmartChargingConfig,
) -> CompositeSchedule {
    composite::composite(
        installed,
        evse,
        transaction.map(|(l, s)| (l, s.timestamp())),
        whole_seconds(start),
        duration,
        unit,
        config,
    )
}

/// The limit of `evse` at `at` over `installed` (what [`Hardware::set_charging_limit`](crate::Hardware::set_charging_limit)
/// receives); `None` when no profile limits it.
pub fn limit_at(
    installed: &[Installed],
    evse: u32,
    transaction: Option<(u64, DateTime<Utc>)>,
    at: DateTime<Utc>,
    config: &SmartChargingConfig,
) -> Option<Limit> {
    composite::limit_at(
        installed,
        evse,
        transaction.map(|(l, _)| l),
        transaction.map(|(_, s)| s.timestamp()),
        at.timestamp(),
        config,
    )
    .limit
}

/// Reports the bounds in the version's configuration keys (1.6 `ChargeProfileMaxStackLevel`,
/// `ChargingScheduleAllowedChargingRateUnit`, `ChargingScheduleMaxPeriods`,
/// `MaxChargingProfilesInstalled`) or variables (2.x `SmartChargingCtrlr.ProfileStackLevel`,
/// `RateUnit`, `PeriodsPerSchedule`, `Entries[ChargingProfiles]`).
pub(crate) fn fill_settings(settings: &mut Settings, cfg: &SmartChargingConfig, evses: u32) {
    let total = cfg
        .max_profiles_per_evse
        .saturating_mul(
            usize::try_from(evses)
                .unwrap_or(usize::MAX)
                .saturating_add(1),
        )
        .to_string();
    let stack = cfg.max_stack_level.to_string();
    let periods = cfg.max_periods.to_string();
    let words = |a: &str, w: &str| {
        cfg.units
            .iter()
            .map(|u| if *u == RateUnit::A { a } else { w })
            .collect::<Vec<_>>()
            .join(",")
    };
    settings.set_fixed("", "ChargeProfileMaxStackLevel", None, &stack);
    settings.set_fixed(
        "",
        "ChargingScheduleAllowedChargingRateUnit",
        None,
        &words("Current", "Power"),
    );
    settings.set_fixed("", "ChargingScheduleMaxPeriods", None, &periods);
    settings.set_fixed("", "MaxChargingProfilesInstalled", None, &total);
    let c = "SmartChargingCtrlr";
    settings.set_fixed(c, "ProfileStackLevel", None, &stack);
    settings.set_fixed(c, "RateUnit", None, &words("A", "W"));
    settings.set_fixed(c, "PeriodsPerSchedule", None, &periods);
    settings.set_fixed(c, "Entries", Some("ChargingProfiles"), &total);
}

fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

impl Station {
    /// The installed charging profiles, every EVSE (0 = the station).
    pub fn charging_profiles(&self) -> &[Installed] {
        &self.smart.doc.profiles
    }

    /// The limit the hardware of `evse` was last given (`None`: no profile limits it).
    pub fn charging_limit(&self, evse: u32) -> Option<ChargingLimit> {
        self.smart
            .applied
            .get(evse as usize)
            .copied()
            .flatten()
            .flatten()
    }

    /// The composite schedule of `evse` (0: the station total) from `now` for `duration`
    /// seconds, in `unit` (default [`SmartChargingConfig::default_unit`]); `None` for an EVSE
    /// the station does not have.
    pub fn composite_schedule(
        &self,
        now: Instant,
        evse: u32,
        duration: i32,
        unit: Option<RateUnit>,
    ) -> Option<CompositeSchedule> {
        if evse > self.cfg.evses {
            return None;
        }
        let cfg = &self.cfg.smart;
        let start = whole_seconds(self.cfg.time.wall(now));
        Some(composite::composite(
            &self.smart.doc.profiles,
            evse,
            self.smart.doc.tx_starts.get(&evse).copied(),
            start,
            duration,
            unit.unwrap_or(cfg.default_unit),
            cfg,
        ))
    }

    /// Installs a `ChargingStationExternalConstraints` profile from outside OCPP (an energy
    /// management system, `source`), replacing one with the same id; the central system reads
    /// it with `GetChargingProfiles` but cannot set or clear it.
    pub fn set_external_constraints(
        &mut self,
        now: Instant,
        evse: u32,
        profile: ChargingProfile,
        source: Source,
    ) -> Result<(), Rejection> {
        if evse > self.cfg.evses {
            return Err(Rejection::UnknownEvse(evse));
        }
        if profile.purpose != Purpose::ExternalConstraints {
            return Err(Rejection::Schedules);
        }
        validate::check_schedules(&profile, Version::V201, &self.cfg.smart)?;
        let docs = &mut self.smart.doc.profiles;
        docs.retain(|i| {
            !(i.profile.purpose == Purpose::ExternalConstraints && i.profile.id == profile.id)
        });
        if docs.iter().filter(|i| i.evse == evse).count() >= self.cfg.smart.max_profiles_per_evse {
            return Err(Rejection::TooManyProfiles(
                self.cfg.smart.max_profiles_per_evse,
            ));
        }
        docs.push(Installed {
            evse,
            profile,
            source,
            tx_local: None,
        });
        self.save();
        self.smart_step(now);
        Ok(())
    }

    /// Removes the external constraints profile `id`; `false` when there was none.
    pub fn clear_external_constraints(&mut self, now: Instant, id: i32) -> bool {
        let removed = self.remove_profiles(|i| {
            i.profile.purpose == Purpose::ExternalConstraints && i.profile.id == id
        });
        self.smart_step(now);
        removed
    }

    pub(crate) fn tx_views(&self) -> Vec<TxView> {
        self.evses
            .iter()
            .filter_map(|e| {
                e.tx.as_ref().map(|t| TxView {
                    evse: e.id,
                    local: t.local,
                    id: self.tx_id_of(t),
                })
            })
            .collect()
    }

    /// Checks and installs a profile the central system sent for `evse`.
    pub(crate) fn install_profile(
        &mut self,
        evse: u32,
        profile: ChargingProfile,
    ) -> Result<(), Rejection> {
        let version = self.cfg.version;
        let txs = self.tx_views();
        if self.smart.doc.profiles.iter().any(|i| {
            i.profile.purpose == Purpose::ExternalConstraints && i.profile.id == profile.id
        }) {
            return Err(Rejection::ExternalConstraints);
        }
        let tx_local = validate::check_set(
            &profile,
            evse,
            self.cfg.evses,
            &txs,
            &self.smart.doc.profiles,
            version,
            &self.cfg.smart,
        )?;
        self.smart
            .doc
            .profiles
            .retain(|i| !replaced_by(i, evse, &profile, version));
        self.smart.doc.profiles.push(Installed {
            evse,
            profile,
            source: Source::Cso,
            tx_local,
        });
        self.save();
        Ok(())
    }

    /// Checks a remote start's profile and keeps it for the transaction it starts.
    pub(crate) fn expect_remote_profile(
        &mut self,
        now: Instant,
        evse: Option<u32>,
        token: &str,
        profile: ChargingProfile,
    ) -> Result<(), Rejection> {
        validate::check_remote(&profile, self.cfg.version, &self.cfg.smart)?;
        self.smart.doc.pending_remote = Some(PendingRemote {
            evse,
            token: token.to_owned(),
            profile,
            since: self.cfg.time.wall(now).timestamp(),
        });
        self.save();
        Ok(())
    }

    /// Removes the profiles matching `f` (external constraints only when `f` names them);
    /// whether any was.
    pub(crate) fn remove_profiles(&mut self, f: impl Fn(&Installed) -> bool) -> bool {
        let before = self.smart.doc.profiles.len();
        self.smart.doc.profiles.retain(|i| !f(i));
        let removed = self.smart.doc.profiles.len() != before;
        if removed {
            self.save();
        }
        removed
    }

    /// After every input: follows transactions (their start, a remote start's profile, the
    /// end that removes their `TxProfile`s), drops expired profiles, gives the hardware every
    /// changed limit and sets the next period boundary.
    pub(crate) fn smart_step(&mut self, now: Instant) {
        let wall = self.cfg.time.wall(now);
        let t = wall.timestamp();
        let mut changed = false;
        // A remote start's profile waits as long as its authorization may wait for a cable
        // (`ConnectionTimeOut` / `TxCtrlr.EVConnectionTimeOut`) and its Authorize may take.
        let wait = self
            .settings
            .duration(crate::Setting::ConnectionTimeout)
            .saturating_add(self.cfg.call_timeout)
            .as_secs();
        let wait = i64::try_from(wait).unwrap_or(i64::MAX);
        if self
            .smart
            .doc
            .pending_remote
            .as_ref()
            .is_some_and(|p| t.saturating_sub(p.since) > wait)
        {
            self.smart.doc.pending_remote = None;
            changed = true;
        }
        // Transactions started and ended.
        for i in 0..self.evses.len() {
            let id = self.evses[i].id;
            let current = self.evses[i]
                .tx
                .as_ref()
                .map(|tx| (tx.local, tx.token.clone()));
            let known = self.smart.doc.tx_starts.get(&id).map(|(l, _)| *l);
            match current {
                Some((local, token)) if known != Some(local) => {
                    self.smart.doc.tx_starts.insert(id, (local, t));
                    let matches = self
                        .smart
                        .doc
                        .pending_remote
                        .as_ref()
                        .is_some_and(|p| p.token == token && p.evse.is_none_or(|e| e == id));
                    if matches {
                        if let Some(p) = self.smart.doc.pending_remote.take() {
                            let mut profile = p.profile;
                            if profile.transaction_id.is_none() && !self.v16() {
                                profile.transaction_id =
                                    self.evses[i].tx.as_ref().and_then(|tx| tx.id.clone());
                            }
                            let version = self.cfg.version;
                            self.smart
                                .doc
                                .profiles
                                .retain(|x| !replaced_by(x, id, &profile, version));
                            self.smart.doc.profiles.push(Installed {
                                evse: id,
                                profile,
                                source: Source::Cso,
                                tx_local: Some(local),
                            });
                        }
                    }
                    changed = true;
                }
                None if known.is_some() => {
                    self.smart.doc.tx_starts.remove(&id);
                    changed = true;
                }
                _ => {}
            }
        }
        // A TxProfile lives as long as its transaction; an expired profile goes.
        let starts = &self.smart.doc.tx_starts;
        let before = self.smart.doc.profiles.len();
        self.smart.doc.profiles.retain(|i| {
            let tx_alive = i.profile.purpose != Purpose::Tx
                || (i.tx_local.is_some() && starts.get(&i.evse).map(|(l, _)| *l) == i.tx_local);
            let expired = i.profile.valid_to.is_some_and(|to| to.timestamp() <= t);
            tx_alive && !expired
        });
        changed |= self.smart.doc.profiles.len() != before;
        if changed {
            self.save();
        }
        // The limits.
        let n = self.evses.len() + 1;
        if self.smart.applied.len() != n {
            self.smart.applied = vec![None; n];
        }
        let voltage = self.cfg.smart.nominal_voltage;
        let mut next: Option<i64> = None;
        for evse in 0..n {
            let id = evse as u32;
            let tx = self.smart.doc.tx_starts.get(&id).copied();
            let at = composite::limit_at(
                &self.smart.doc.profiles,
                id,
                tx.map(|(l, _)| l),
                tx.map(|(_, s)| s),
                t,
                &self.cfg.smart,
            );
            if let Some(x) = at.next {
                next = Some(next.map_or(x, |m| m.min(x)));
            }
            let mut limit = at.limit.map(|l| l.to_charging_limit(voltage));
            // (2.1) A setpoint or discharge limit rides on the limit (the hardware limit
            // when the period has none).
            if at.v2x.setpoint.is_some() || at.v2x.discharge_limit.is_some() {
                let mut l = limit
                    .unwrap_or_else(|| self.cfg.smart.hardware_limit.to_charging_limit(voltage));
                l.setpoint_w = at.v2x.setpoint.map(|s| s.watts(voltage));
                l.discharge_limit_w = at.v2x.discharge_limit.map(|d| d.watts(voltage));
                limit = Some(l);
            }
            if self.smart.applied[evse] != Some(limit) {
                self.smart.applied[evse] = Some(limit);
                self.hw.set_charging_limit(now, id, limit);
            }
        }
        self.smart.next_check = next.map(|x| {
            let ms = x
                .saturating_mul(1000)
                .saturating_sub(wall.timestamp_millis())
                .max(1);
            deadline(now, Duration::from_millis(u64::try_from(ms).unwrap_or(1)))
        });
    }

    /// Sends the reports of a `GetChargingProfiles` after its answer.
    pub(crate) fn smart_follow_up(&mut self, now: Instant, f: FollowUp) {
        for report in f.reports {
            self.call(now, "ReportChargingProfiles", &report, Pending::Plain);
        }
    }
}
