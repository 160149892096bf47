//! Checks a charging profile before it is stored: every number from the wire, the bounds of
//! [`SmartChargingConfig`], and the per-version rules of OCPP 1.6 §3.13 / §5.16 and 2.0.1 /
//! 2.1 use case K01 (SetChargingProfile).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{Installed, SmartChargingConfig};
use ocpp_codec::Version;
use ocpp_types::smart_charging::{ChargingProfile, Kind, Purpose};

/// Why a charging profile was refused. Every rejection is answered `Rejected` (1.6
/// `SetChargingProfile.conf`, 2.x `SetChargingProfileResponse`); 2.x also gets
/// [`Rejection::reason_code`] in `statusInfo`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The EVSE (1.6 connector) does not exist.
    #[error("EVSE {0} does not exist")]
    UnknownEvse(u32),
    /// A `TxProfile` for EVSE 0 (1.6 §5.16, 2.0.1 K01.FR.16).
    #[error("a TxProfile needs an EVSE greater than 0")]
    TxProfileOnStation,
    /// A `TxProfile` without an ongoing transaction on the EVSE (1.6 §5.16, 2.0.1
    /// K01.FR.09).
    #[error("no transaction is ongoing on EVSE {0}")]
    NoTransaction(u32),
    /// A `TxProfile` whose `transactionId` is not the EVSE's transaction (2.0.1 K01.FR.33).
    #[error("transaction {0} is not ongoing on this EVSE")]
    TransactionMismatch(String),
    /// (2.x) A `TxProfile` without `transactionId` (2.0.1 K01.FR.03).
    #[error("a TxProfile needs a transactionId")]
    MissingTransactionId,
    /// A `ChargingStationMaxProfile` (1.6 `ChargePointMaxProfile`) for an EVSE other than 0
    /// (1.6 and 2.x: a purpose of the whole station, EVSE 0).
    #[error("a ChargingStationMaxProfile applies to EVSE 0 only")]
    StationMaxNotOnStation,
    /// A `ChargingStationMaxProfile` of kind `Relative` (2.0.1 K01.FR.38: it has no
    /// transaction to be relative to).
    #[error("a ChargingStationMaxProfile cannot be Relative")]
    StationMaxRelative,
    /// (2.x) The central system may not set `ChargingStationExternalConstraints` (2.0.1
    /// K01.FR.22).
    #[error("ChargingStationExternalConstraints are not set by the CSMS")]
    ExternalConstraints,
    /// A remote start's profile that is not a `TxProfile` (1.6 §5.11, 2.x
    /// RequestStartTransaction), or (2.x) one that names a transaction.
    #[error("a remote start carries a TxProfile only")]
    NotTxProfile,
    /// The stack level is negative or above [`SmartChargingConfig::max_stack_level`].
    #[error("stack level {0} out of range")]
    StackLevel(i32),
    /// The EVSE already holds [`SmartChargingConfig::max_profiles_per_evse`] profiles.
    #[error("at most {0} profiles per EVSE")]
    TooManyProfiles(usize),
    /// A schedule has more than [`SmartChargingConfig::max_periods`] periods.
    #[error("{0} periods; at most {1}")]
    TooManyPeriods(usize, usize),
    /// No schedule, or (2.x) more than three, or several outside a `TxProfile` (2.0.1
    /// ChargingProfileType: several schedules only for an ISO 15118 TxProfile).
    #[error("wrong number of charging schedules")]
    Schedules,
    /// A schedule without periods.
    #[error("a schedule without periods")]
    NoPeriods,
    /// (2.x) The first period does not start at 0 (2.0.1 K01.FR.31).
    #[error("the first period must start at 0")]
    FirstPeriodNotZero,
    /// A negative `startPeriod`, or periods not in strictly increasing order (2.0.1
    /// K01.FR.35).
    #[error("periods out of order")]
    PeriodsOutOfOrder,
    /// A negative limit or minimum charging rate, or one above
    /// [`SmartChargingConfig::max_limit`].
    #[error("limit out of range")]
    Limit,
    /// `numberPhases` outside 1..=3.
    #[error("numberPhases out of range")]
    NumberPhases,
    /// `phaseToUse` outside 1..=3, or given without `numberPhases` 1 (2.0.1 K01.FR.19,
    /// K01.FR.20).
    #[error("phaseToUse out of range or without numberPhases 1")]
    PhaseToUse,
    /// A negative `duration`.
    #[error("negative duration")]
    Duration,
    /// An `Absolute` or `Recurring` profile without `startSchedule` (2.0.1 K01.FR.40; 1.6:
    /// `Recurring` only).
    #[error("startSchedule missing")]
    MissingStartSchedule,
    /// (2.x) A `Relative` profile with `startSchedule` (2.0.1 K01.FR.41).
    #[error("a Relative profile has no startSchedule")]
    ExtraneousStartSchedule,
    /// A `Recurring` profile without `recurrencyKind`.
    #[error("recurrencyKind missing")]
    MissingRecurrency,
    /// `validTo` not after `validFrom`.
    #[error("validTo is not after validFrom")]
    Validity,
    /// A unit not in [`SmartChargingConfig::units`] (2.0.1 K01.FR.26).
    #[error("unit {0} not supported")]
    Unit(&'static str),
    /// (2.x) A second `TxProfile` with the same stack level for the transaction (2.0.1
    /// K01.FR.39).
    #[error("another TxProfile of the transaction has this stack level")]
    ConflictingStackLevel,
    /// (2.x) Another profile with the same purpose, stack level and EVSE whose validity
    /// overlaps (2.0.1 K01.FR.06).
    #[error("another profile with this purpose and stack level is valid at the same time")]
    Duplicate,
}

impl Rejection {
    /// The 2.x `statusInfo.reasonCode` (at most 20 characters).
    pub fn reason_code(&self) -> &'static str {
        use Rejection::*;
        match self {
            NoTransaction(_) | TransactionMismatch(_) => "TxNotFound",
            MissingTransactionId => "MissingParam",
            ConflictingStackLevel | StackLevel(_) => "InvalidStackLevel",
            Duplicate | ExternalConstraints => "DuplicateProfile",
            Unit(_) => "UnsupportedRateUnit",
            TooManyProfiles(_) => "NoResources",
            TooManyPeriods(..)
            | Schedules
            | NoPeriods
            | FirstPeriodNotZero
            | PeriodsOutOfOrder
            | Limit
            | NumberPhases
            | PhaseToUse
            | Duration
            | MissingStartSchedule
            | ExtraneousStartSchedule
            | MissingRecurrency => "InvalidSchedule",
            UnknownEvse(_)
            | TxProfileOnStation
            | StationMaxNotOnStation
            | StationMaxRelative
            | NotTxProfile
            | Validity => "InvalidValue",
        }
    }
}

/// The ongoing transaction of an EVSE, as the validation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TxView {
    pub(crate) evse: u32,
    pub(crate) local: u64,
    pub(crate) id: Option<String>,
}

/// The schedule-level checks, the same for every purpose and source.
pub(crate) fn check_schedules(
    p: &ChargingProfile,
    version: Version,
    cfg: &SmartChargingConfig,
) -> Result<(), Rejection> {
    let v16 = version == Version::V16;
    if p.stack_level < 0 || p.stack_level > cfg.max_stack_level {
        return Err(Rejection::StackLevel(p.stack_level));
    }
    if p.schedules.is_empty()
        || p.schedules.len() > 3
        || (p.schedules.len() > 1 && p.purpose != Purpose::Tx)
    {
        return Err(Rejection::Schedules);
    }
    if let (Some(from), Some(to)) = (p.valid_from, p.valid_to) {
        if to <= from {
            return Err(Rejection::Validity);
        }
    }
    if p.kind == Kind::Recurring(None) {
        return Err(Rejection::MissingRecurrency);
    }
    let max_limit = cfg.max_limit;
    let in_range = |d: &Decimal| !d.is_sign_negative() && *d <= max_limit;
    for s in &p.schedules {
        if !cfg.units.contains(&s.charging_rate_unit) {
            return Err(Rejection::Unit(s.charging_rate_unit.as_str()));
        }
        match (p.kind, s.start_schedule.is_some()) {
            (Kind::Recurring(_), false) => return Err(Rejection::MissingStartSchedule),
            (Kind::Absolute, false) if !v16 => return Err(Rejection::MissingStartSchedule),
            (Kind::Relative, true) if !v16 => return Err(Rejection::ExtraneousStartSchedule),
            _ => {}
        }
        if s.duration.is_some_and(|d| d < 0) {
            return Err(Rejection::Duration);
        }
        if s.periods.is_empty() {
            return Err(Rejection::NoPeriods);
        }
        if s.periods.len() > cfg.max_periods {
            return Err(Rejection::TooManyPeriods(s.periods.len(), cfg.max_periods));
        }
        if !v16 && s.periods[0].start_period != 0 {
            return Err(Rejection::FirstPeriodNotZero);
        }
        let mut last: Option<i32> = None;
        for q in &s.periods {
            if q.start_period < 0 || last.is_some_and(|l| q.start_period <= l) {
                return Err(Rejection::PeriodsOutOfOrder);
            }
            last = Some(q.start_period);
            if q.limit.as_ref().is_some_and(|l| !in_range(l)) {
                return Err(Rejection::Limit);
            }
            if q.number_phases.is_some_and(|n| !(1..=3).contains(&n)) {
                return Err(Rejection::NumberPhases);
            }
            if let Some(phase) = q.phase_to_use {
                if !(1..=3).contains(&phase) || q.number_phases != Some(1) {
                    return Err(Rejection::PhaseToUse);
                }
            }
        }
        if s.min_charging_rate.as_ref().is_some_and(|m| !in_range(m)) {
            return Err(Rejection::Limit);
        }
    }
    Ok(())
}

fn overlaps(a: &ChargingProfile, b: &ChargingProfile) -> bool {
    let start = |p: &ChargingProfile| p.valid_from.unwrap_or(DateTime::<Utc>::MIN_UTC);
    let end = |p: &ChargingProfile| p.valid_to.unwrap_or(DateTime::<Utc>::MAX_UTC);
    start(a) < end(b) && start(b) < end(a)
}

/// Checks `p` for `evse` as sent by the central system (`SetChargingProfile`, or a remote
/// start when `remote`) against what is installed; gives the ongoing transaction a
/// `TxProfile` belongs to.
pub(crate) fn check_set(
    p: &ChargingProfile,
    evse: u32,
    evses: u32,
    txs: &[TxView],
    installed: &[Installed],
    version: Version,
    cfg: &SmartChargingConfig,
) -> Result<Option<u64>, Rejection> {
    let v16 = version == Version::V16;
    if evse > evses {
        return Err(Rejection::UnknownEvse(evse));
    }
    check_schedules(p, version, cfg)?;
    let mut tx_local = None;
    match p.purpose {
        Purpose::ExternalConstraints => return Err(Rejection::ExternalConstraints),
        Purpose::ChargingStationMax => {
            if evse != 0 {
                return Err(Rejection::StationMaxNotOnStation);
            }
            if p.kind == Kind::Relative {
                return Err(Rejection::StationMaxRelative);
            }
        }
        Purpose::Tx => {
            if evse == 0 {
                return Err(Rejection::TxProfileOnStation);
            }
            let Some(tx) = txs.iter().find(|t| t.evse == evse) else {
                return Err(Rejection::NoTransaction(evse));
            };
            match (&p.transaction_id, &tx.id) {
                (None, _) if !v16 => return Err(Rejection::MissingTransactionId),
                (Some(want), Some(have)) if want != have => {
                    return Err(Rejection::TransactionMismatch(want.clone()))
                }
                // 1.6: the central system's id is not issued yet; the profile names one.
                (Some(want), None) => return Err(Rejection::TransactionMismatch(want.clone())),
                _ => {}
            }
            if !v16
                && installed.iter().any(|i| {
                    i.evse == evse
                        && i.profile.purpose == Purpose::Tx
                        && i.profile.stack_level == p.stack_level
                        && i.profile.id != p.id
                })
            {
                return Err(Rejection::ConflictingStackLevel);
            }
            tx_local = Some(tx.local);
        }
        Purpose::TxDefault | Purpose::PriorityCharging | Purpose::LocalGeneration => {}
    }
    if !v16
        && p.purpose != Purpose::Tx
        && installed.iter().any(|i| {
            i.evse == evse
                && i.profile.purpose == p.purpose
                && i.profile.stack_level == p.stack_level
                && i.profile.id != p.id
                && overlaps(&i.profile, p)
        })
    {
        return Err(Rejection::Duplicate);
    }
    // What stays after the replacement (same id anywhere; 1.6 also same purpose and stack
    // level on the EVSE) must fit the bound.
    let kept = installed
        .iter()
        .filter(|i| i.evse == evse && !super::replaced_by(i, evse, p, version))
        .count();
    if kept >= cfg.max_profiles_per_evse {
        return Err(Rejection::TooManyProfiles(cfg.max_profiles_per_evse));
    }
    Ok(tx_local)
}

/// The checks of a remote start's charging profile (1.6 `RemoteStartTransaction`, 2.x
/// `RequestStartTransaction`): a `TxProfile` (2.x: without transactionId, the station gives it
/// the new transaction's), whose schedules pass [`check_schedules`].
pub(crate) fn check_remote(
    p: &ChargingProfile,
    version: Version,
    cfg: &SmartChargingConfig,
) -> Result<(), Rejection> {
    if p.purpose != Purpose::Tx {
        return Err(Rejection::NotTxProfile);
    }
    if version != Version::V16 && p.transaction_id.is_some() {
        return Err(Rejection::TransactionMismatch(
            p.transaction_id.clone().unwrap_or_default(),
        ));
    }
    check_schedules(p, version, cfg)
}
