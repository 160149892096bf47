//! The version-neutral charging profile, and its conversions from and to each version's
//! generated types: the one model of smart charging that the charging station
//! (`ocpp-charger`) and the central system (`ocpp-central`) share. Hand-written, not
//! generated.
//!
//! One [`ChargingProfile`] describes a 1.6 `ChargingProfile` and a 2.0.1 / 2.1
//! `ChargingProfileType` alike. Numbers stay as they came (exact [`Decimal`] limits, `i32`
//! offsets); the charging station's validation checks them before a profile is stored. The
//! conversions from the wire never fail: what a profile may not hold is a
//! rejection of the station's validation, answered with the action's own
//! status.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// What a profile is for (1.6 `ChargingProfilePurposeType`, 2.x
/// `ChargingProfilePurposeEnumType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Purpose {
    /// 1.6 `ChargePointMaxProfile`, 2.x `ChargingStationMaxProfile`: the limit of the whole
    /// station (EVSE 0 only).
    ChargingStationMax,
    /// `TxDefaultProfile`: the default for new transactions, on one EVSE or on all (EVSE 0).
    TxDefault,
    /// `TxProfile`: the limit of one ongoing transaction; overrides `TxDefaultProfile`.
    Tx,
    /// (2.x) `ChargingStationExternalConstraints`: a limit from outside OCPP (an energy
    /// management system); set by the station's application, never by the central system.
    ExternalConstraints,
    /// (2.1) `PriorityCharging`: stored and reported, not applied.
    PriorityCharging,
    /// (2.1) `LocalGeneration`: stored and reported, not applied.
    LocalGeneration,
}

impl Purpose {
    /// The 2.x wire name (1.6 calls [`Purpose::ChargingStationMax`] `ChargePointMaxProfile`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Purpose::ChargingStationMax => "ChargingStationMaxProfile",
            Purpose::TxDefault => "TxDefaultProfile",
            Purpose::Tx => "TxProfile",
            Purpose::ExternalConstraints => "ChargingStationExternalConstraints",
            Purpose::PriorityCharging => "PriorityCharging",
            Purpose::LocalGeneration => "LocalGeneration",
        }
    }
}

/// How often a recurring profile repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Recurrency {
    /// Every day, from the time of day of `startSchedule`.
    Daily,
    /// Every week, from the weekday and time of `startSchedule`.
    Weekly,
}

impl Recurrency {
    /// The length of one recurrence, in seconds.
    pub const fn seconds(self) -> i64 {
        match self {
            Recurrency::Daily => 86_400,
            Recurrency::Weekly => 7 * 86_400,
        }
    }
}

/// When the schedule starts (`chargingProfileKind` with its `recurrencyKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// At `startSchedule`.
    Absolute,
    /// At `startSchedule`, repeated every day or week. `None`: the `recurrencyKind` was
    /// missing (the validation rejects it).
    Recurring(Option<Recurrency>),
    /// At the start of the transaction (or now, when none is ongoing).
    Relative,
    /// (2.1) `Dynamic`: stored and reported; evaluated like `Absolute` (its `startSchedule`,
    /// else like `Relative`); its updates (`UpdateDynamicSchedule`, `dynUpdateInterval`) are
    /// not applied.
    Dynamic,
}

/// The unit of the limits of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RateUnit {
    /// Watts (power).
    W,
    /// Amperes per phase (current).
    A,
}

impl RateUnit {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            RateUnit::W => "W",
            RateUnit::A => "A",
        }
    }
}

/// One period of a schedule: from `start_period` seconds after the schedule's start until the
/// next period's start (or the schedule's end).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    /// Seconds from the start of the schedule.
    pub start_period: i32,
    /// The limit, in the schedule's unit (A per phase, or W). `None` only in 2.1, where a
    /// period may carry only setpoints: no limit then.
    pub limit: Option<Decimal>,
    /// Phases that may be used (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_phases: Option<i32>,
    /// (2.x) The phase to use when `number_phases` is 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase_to_use: Option<i32>,
    /// (2.1) Bidirectional values: discharge limit, setpoints, operation mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v2x: Option<V2x>,
}

/// The OCPP 2.1 bidirectional (V2X) values of a period, in the schedule's unit: what the EV
/// may discharge (`discharge_limit`, zero or negative), what it should follow (`setpoint`:
/// positive charges, negative discharges; `setpoint_reactive`) and how
/// (`operation_mode`: `ChargingOnly`, `CentralSetpoint`, `ExternalSetpoint`,
/// `ExternalLimits`, `CentralFrequency`, `LocalFrequency`, `LocalLoadBalancing`, `Idle`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct V2x {
    /// The most the EV may discharge (negative; `None`: no discharge allowed unless a
    /// setpoint says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discharge_limit: Option<Decimal>,
    /// The value to follow (negative: discharge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setpoint: Option<Decimal>,
    /// The reactive power to follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setpoint_reactive: Option<Decimal>,
    /// The operation mode (`None`: `ChargingOnly`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_mode: Option<String>,
}

impl V2x {
    /// `None` when nothing is set.
    pub fn non_empty(self) -> Option<V2x> {
        (self != V2x::default()).then_some(self)
    }
}

impl Period {
    /// A period with a limit, all phases.
    pub fn new(start_period: i32, limit: Decimal) -> Period {
        Period {
            start_period,
            limit: Some(limit),
            number_phases: None,
            phase_to_use: None,
            v2x: None,
        }
    }
}

/// A charging schedule: the periods, their unit, and when it starts and ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// (2.x) The schedule's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i32>,
    /// The start (`Absolute`, `Recurring`); `None` for `Relative`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_schedule: Option<DateTime<Utc>>,
    /// Seconds after the start when the schedule ends; `None`: until the next recurrence, or
    /// open-ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i32>,
    /// The unit of the limits.
    pub charging_rate_unit: RateUnit,
    /// The periods, in order of `start_period`.
    pub periods: Vec<Period>,
    /// The lowest rate the EV charges efficiently at, in the schedule's unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_charging_rate: Option<Decimal>,
}

/// A charging profile, version-neutral.
///
/// ```
/// use ocpp_types::smart_charging::{ChargingProfile, Kind, Period, Purpose, RateUnit, Schedule};
/// use rust_decimal::Decimal;
///
/// let profile = ChargingProfile {
///     id: 7,
///     stack_level: 1,
///     purpose: Purpose::TxDefault,
///     kind: Kind::Relative,
///     valid_from: None,
///     valid_to: None,
///     transaction_id: None,
///     schedules: vec![Schedule {
///         id: None,
///         start_schedule: None,
///         duration: None,
///         charging_rate_unit: RateUnit::A,
///         periods: vec![Period::new(0, Decimal::from(16))],
///         min_charging_rate: None,
///     }],
///     original: None,
/// };
/// let wire = profile.to_v16();
/// assert_eq!(ChargingProfile::from_v16(&wire), profile);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargingProfile {
    /// `chargingProfileId` (1.6) / `id` (2.x).
    pub id: i32,
    /// Higher stack levels override lower ones of the same purpose.
    pub stack_level: i32,
    /// What it is for.
    pub purpose: Purpose,
    /// When its schedule starts.
    pub kind: Kind,
    /// Valid from (inclusive); `None`: at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<DateTime<Utc>>,
    /// Valid until (exclusive); `None`: open-ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<DateTime<Utc>>,
    /// The transaction of a `TxProfile` (1.6: the central system's integer id as text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_id: Option<String>,
    /// The schedules: one in 1.6; up to three in 2.x (several only for a `TxProfile` of an
    /// ISO 15118 session, for the EV to choose from; this station applies the first).
    pub schedules: Vec<Schedule>,
    /// (2.x) The profile as received (JSON), so that `ReportChargingProfiles` gives back every
    /// field, 2.1 additions included (sales tariffs, price schedules, setpoints, V2X curves,
    /// offline durations), which the composite schedule does not use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<serde_json::Value>,
}

impl ChargingProfile {
    /// A profile with one constant limit of `limit` (in `unit`), from now on and open-ended:
    /// kind `Relative` (its schedule starts with the transaction, or at once when none is
    /// ongoing), except a [`Purpose::ChargingStationMax`] profile, which may not be relative
    /// (2.0.1 K01.FR.38): that one is `Absolute` from `now`. Set
    /// [`transaction_id`](ChargingProfile::transaction_id) for a `TxProfile`.
    ///
    /// ```
    /// use ocpp_types::smart_charging::{ChargingProfile, Kind, Purpose, RateUnit};
    /// use rust_decimal::Decimal;
    ///
    /// let p = ChargingProfile::constant(1, 0, Purpose::TxDefault, RateUnit::W, Decimal::from(11_000), chrono::Utc::now());
    /// assert_eq!(p.kind, Kind::Relative);
    /// assert_eq!(p.schedules[0].periods[0].limit, Some(Decimal::from(11_000)));
    /// ```
    pub fn constant(
        id: i32,
        stack_level: i32,
        purpose: Purpose,
        unit: RateUnit,
        limit: Decimal,
        now: DateTime<Utc>,
    ) -> ChargingProfile {
        let absolute = purpose == Purpose::ChargingStationMax;
        ChargingProfile {
            id,
            stack_level,
            purpose,
            kind: if absolute {
                Kind::Absolute
            } else {
                Kind::Relative
            },
            valid_from: None,
            valid_to: None,
            transaction_id: None,
            schedules: vec![Schedule {
                id: Some(0),
                start_schedule: absolute
                    .then(|| DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now)),
                duration: None,
                charging_rate_unit: unit,
                periods: vec![Period::new(0, limit)],
                min_charging_rate: None,
            }],
            original: None,
        }
    }

    /// The schedule the station applies (the first).
    pub fn schedule(&self) -> Option<&Schedule> {
        self.schedules.first()
    }
}

/// One period of a composite schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompositePeriod {
    /// Seconds from the composite's start.
    pub start_period: i32,
    /// The limit, in the composite's unit.
    pub limit: Decimal,
    /// Phases.
    pub number_phases: u8,
    /// (2.1) The discharge limit, setpoints and operation mode that apply, in the
    /// composite's unit.
    pub v2x: Option<V2x>,
}

/// The limits of one EVSE over a time span (GetCompositeSchedule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompositeSchedule {
    /// The EVSE (0: the station).
    pub evse: u32,
    /// The start.
    pub start: DateTime<Utc>,
    /// Seconds covered (the duration asked, or less when the station cut it short).
    pub duration: i32,
    /// The unit of the limits.
    pub unit: RateUnit,
    /// The periods, merged, starting at 0.
    pub periods: Vec<CompositePeriod>,
    /// The minimum charging rate of the transaction's profile at the start, in `unit`.
    pub min_charging_rate: Option<Decimal>,
}

#[cfg(any(feature = "v16", feature = "v201", feature = "v21"))]
fn phases(n: Option<i32>) -> u8 {
    n.and_then(|n| u8::try_from(n).ok()).unwrap_or(3)
}

#[cfg(any(feature = "v16", feature = "v201", feature = "v21"))]
fn utc(t: &crate::DateTime) -> DateTime<Utc> {
    t.to_utc()
}

#[cfg(feature = "v16")]
mod v16_conv {
    use super::*;
    use crate::v16;

    impl CompositeSchedule {
        /// From a 1.6 GetCompositeSchedule answer's `connectorId`, `scheduleStart` and
        /// `chargingSchedule` (its `startSchedule` when `scheduleStart` is missing, else
        /// `fallback_start`; phases default to 3).
        pub fn from_v16(
            connector_id: i32,
            schedule_start: Option<&crate::DateTime>,
            s: &v16::ChargingSchedule,
            fallback_start: DateTime<Utc>,
        ) -> CompositeSchedule {
            CompositeSchedule {
                evse: u32::try_from(connector_id).unwrap_or(0),
                start: schedule_start
                    .or(s.start_schedule.as_ref())
                    .map_or(fallback_start, utc),
                duration: s.duration.unwrap_or(0),
                unit: match s.charging_rate_unit {
                    v16::ChargingRateUnitType::A => RateUnit::A,
                    v16::ChargingRateUnitType::W => RateUnit::W,
                },
                periods: s
                    .charging_schedule_period
                    .iter()
                    .map(|q| CompositePeriod {
                        start_period: q.start_period,
                        limit: q.limit,
                        number_phases: phases(q.number_phases),
                        v2x: None,
                    })
                    .collect(),
                min_charging_rate: s.min_charging_rate,
            }
        }
    }

    impl ChargingProfile {
        /// From a 1.6 `ChargingProfile`.
        pub fn from_v16(p: &v16::ChargingProfile) -> ChargingProfile {
            let s = &p.charging_schedule;
            ChargingProfile {
                id: p.charging_profile_id,
                stack_level: p.stack_level,
                purpose: match p.charging_profile_purpose {
                    v16::ChargingProfilePurposeType::ChargePointMaxProfile => {
                        Purpose::ChargingStationMax
                    }
                    v16::ChargingProfilePurposeType::TxDefaultProfile => Purpose::TxDefault,
                    v16::ChargingProfilePurposeType::TxProfile => Purpose::Tx,
                },
                kind: match p.charging_profile_kind {
                    v16::ChargingProfileKindType::Absolute => Kind::Absolute,
                    v16::ChargingProfileKindType::Recurring => {
                        Kind::Recurring(p.recurrency_kind.map(|r| match r {
                            v16::RecurrencyKindType::Daily => Recurrency::Daily,
                            v16::RecurrencyKindType::Weekly => Recurrency::Weekly,
                        }))
                    }
                    v16::ChargingProfileKindType::Relative => Kind::Relative,
                },
                valid_from: p.valid_from.as_ref().map(utc),
                valid_to: p.valid_to.as_ref().map(utc),
                transaction_id: p.transaction_id.map(|t| t.to_string()),
                schedules: vec![Schedule {
                    id: None,
                    start_schedule: s.start_schedule.as_ref().map(utc),
                    duration: s.duration,
                    charging_rate_unit: match s.charging_rate_unit {
                        v16::ChargingRateUnitType::A => RateUnit::A,
                        v16::ChargingRateUnitType::W => RateUnit::W,
                    },
                    periods: s
                        .charging_schedule_period
                        .iter()
                        .map(|p| Period {
                            start_period: p.start_period,
                            limit: Some(p.limit),
                            number_phases: p.number_phases,
                            phase_to_use: None,
                            v2x: None,
                        })
                        .collect(),
                    min_charging_rate: s.min_charging_rate,
                }],
                original: None,
            }
        }

        /// As a 1.6 `ChargingProfile` (the first schedule; a 2.x-only purpose becomes
        /// `TxDefaultProfile`, a `Dynamic` kind `Absolute`, a missing limit 0).
        pub fn to_v16(&self) -> v16::ChargingProfile {
            let schedule = self.schedule();
            let unit = match schedule.map_or(RateUnit::A, |s| s.charging_rate_unit) {
                RateUnit::A => v16::ChargingRateUnitType::A,
                RateUnit::W => v16::ChargingRateUnitType::W,
            };
            let periods = schedule
                .map(|s| {
                    s.periods
                        .iter()
                        .map(|p| {
                            let mut q = v16::ChargingSchedulePeriod::new(
                                p.start_period,
                                p.limit.unwrap_or_default(),
                            );
                            q.number_phases = p.number_phases;
                            q
                        })
                        .collect()
                })
                .unwrap_or_default();
            let mut s = v16::ChargingSchedule::new(unit, periods);
            if let Some(sch) = schedule {
                s.duration = sch.duration;
                s.start_schedule = sch.start_schedule.map(crate::DateTime::from_utc);
                s.min_charging_rate = sch.min_charging_rate;
            }
            let (kind, recurrency) = match self.kind {
                Kind::Absolute | Kind::Dynamic => (v16::ChargingProfileKindType::Absolute, None),
                Kind::Recurring(r) => (
                    v16::ChargingProfileKindType::Recurring,
                    r.map(|r| match r {
                        Recurrency::Daily => v16::RecurrencyKindType::Daily,
                        Recurrency::Weekly => v16::RecurrencyKindType::Weekly,
                    }),
                ),
                Kind::Relative => (v16::ChargingProfileKindType::Relative, None),
            };
            let purpose = match self.purpose {
                Purpose::ChargingStationMax => {
                    v16::ChargingProfilePurposeType::ChargePointMaxProfile
                }
                Purpose::Tx => v16::ChargingProfilePurposeType::TxProfile,
                _ => v16::ChargingProfilePurposeType::TxDefaultProfile,
            };
            let mut p = v16::ChargingProfile::new(self.id, self.stack_level, purpose, kind, s);
            p.recurrency_kind = recurrency;
            p.valid_from = self.valid_from.map(crate::DateTime::from_utc);
            p.valid_to = self.valid_to.map(crate::DateTime::from_utc);
            p.transaction_id = self.transaction_id.as_deref().and_then(|t| t.parse().ok());
            p
        }
    }
}

/// The 2.0.1 and 2.1 conversions differ only in the optional period limit and the 2.1
/// additions.
#[cfg(any(feature = "v201", feature = "v21"))]
macro_rules! v2x_conv {
    ($modname:ident, $v:ident, $from:ident, $to:ident, $limit_in:expr, $limit_out:expr, $v2x_in:expr) => {
        mod $modname {
            use super::*;
            use crate::$v;

            impl Schedule {
                #[doc = concat!("From an OCPP ", stringify!($v), " `ChargingScheduleType` (its 2.1 additions are not kept).")]
                pub fn $from(s: &$v::ChargingScheduleType) -> Schedule {
                    Schedule {
                        id: Some(s.id),
                        start_schedule: s.start_schedule.as_ref().map(utc),
                        duration: s.duration,
                        charging_rate_unit: match s.charging_rate_unit {
                            $v::ChargingRateUnitEnumType::A => RateUnit::A,
                            $v::ChargingRateUnitEnumType::W => RateUnit::W,
                        },
                        periods: s
                            .charging_schedule_period
                            .iter()
                            .map(|q| Period {
                                start_period: q.start_period,
                                limit: $limit_in(q),
                                number_phases: q.number_phases,
                                phase_to_use: q.phase_to_use,
                                v2x: $v2x_in(q),
                            })
                            .collect(),
                        min_charging_rate: s.min_charging_rate,
                    }
                }
            }

            impl CompositeSchedule {
                #[doc = concat!("From an OCPP ", stringify!($v), " `CompositeScheduleType` (a period without a limit, 2.1 only, reads as 0; phases default to 3).")]
                pub fn $from(s: &$v::CompositeScheduleType) -> CompositeSchedule {
                    CompositeSchedule {
                        evse: u32::try_from(s.evse_id).unwrap_or(0),
                        start: utc(&s.schedule_start),
                        duration: s.duration,
                        unit: match s.charging_rate_unit {
                            $v::ChargingRateUnitEnumType::A => RateUnit::A,
                            $v::ChargingRateUnitEnumType::W => RateUnit::W,
                        },
                        periods: s
                            .charging_schedule_period
                            .iter()
                            .map(|q| CompositePeriod {
                                start_period: q.start_period,
                                limit: $limit_in(q).unwrap_or_default(),
                                number_phases: phases(q.number_phases),
                                v2x: $v2x_in(q),
                            })
                            .collect(),
                        min_charging_rate: None,
                    }
                }
            }

            impl Purpose {
                #[doc = concat!("From an OCPP ", stringify!($v), " `ChargingProfilePurposeEnumType`.")]
                #[allow(unreachable_patterns)]
                pub fn $from(p: $v::ChargingProfilePurposeEnumType) -> Purpose {
                    use $v::ChargingProfilePurposeEnumType as P;
                    match p {
                        P::ChargingStationMaxProfile => Purpose::ChargingStationMax,
                        P::TxDefaultProfile => Purpose::TxDefault,
                        P::TxProfile => Purpose::Tx,
                        P::ChargingStationExternalConstraints => Purpose::ExternalConstraints,
                        other => match other.as_str() {
                            "PriorityCharging" => Purpose::PriorityCharging,
                            _ => Purpose::LocalGeneration,
                        },
                    }
                }
            }

            impl ChargingProfile {
                #[doc = concat!("From an OCPP ", stringify!($v), " `ChargingProfileType` (the original kept in [`ChargingProfile::original`]).")]
                pub fn $from(p: &$v::ChargingProfileType) -> ChargingProfile {
                    use $v::ChargingProfileKindEnumType as K;
                    let purpose = Purpose::$from(p.charging_profile_purpose);
                    #[allow(unreachable_patterns)]
                    let kind = match p.charging_profile_kind {
                        K::Absolute => Kind::Absolute,
                        K::Recurring => Kind::Recurring(p.recurrency_kind.map(|r| {
                            match r {
                                $v::RecurrencyKindEnumType::Daily => Recurrency::Daily,
                                $v::RecurrencyKindEnumType::Weekly => Recurrency::Weekly,
                            }
                        })),
                        K::Relative => Kind::Relative,
                        _ => Kind::Dynamic,
                    };
                    ChargingProfile {
                        id: p.id,
                        stack_level: p.stack_level,
                        purpose,
                        kind,
                        valid_from: p.valid_from.as_ref().map(utc),
                        valid_to: p.valid_to.as_ref().map(utc),
                        transaction_id: p.transaction_id.as_ref().map(|t| t.as_str().to_owned()),
                        schedules: p.charging_schedule.iter().map(Schedule::$from).collect(),
                        original: serde_json::to_value(p).ok(),
                    }
                }

                #[doc = concat!("As an OCPP ", stringify!($v), " `ChargingProfileType`: the original when it was received in this version, else built from the neutral fields.")]
                pub fn $to(&self) -> $v::ChargingProfileType {
                    if let Some(p) = self
                        .original
                        .as_ref()
                        .and_then(|o| serde_json::from_value::<$v::ChargingProfileType>(o.clone()).ok())
                    {
                        // A TxProfile from a remote start got its transaction id here.
                        let mut p = p;
                        if p.transaction_id.is_none() {
                            p.transaction_id = self
                                .transaction_id
                                .as_deref()
                                .and_then(|t| crate::BoundedString::new(t).ok());
                        }
                        return p;
                    }
                    use $v::ChargingProfilePurposeEnumType as P;
                    use $v::ChargingProfileKindEnumType as K;
                    let purpose = match self.purpose {
                        Purpose::ChargingStationMax => P::ChargingStationMaxProfile,
                        Purpose::TxDefault => P::TxDefaultProfile,
                        Purpose::Tx => P::TxProfile,
                        Purpose::ExternalConstraints => P::ChargingStationExternalConstraints,
                        other => other.as_str().parse().unwrap_or(P::TxDefaultProfile),
                    };
                    let (kind, recurrency) = match self.kind {
                        Kind::Absolute => (K::Absolute, None),
                        Kind::Recurring(r) => (
                            K::Recurring,
                            r.map(|r| match r {
                                Recurrency::Daily => $v::RecurrencyKindEnumType::Daily,
                                Recurrency::Weekly => $v::RecurrencyKindEnumType::Weekly,
                            }),
                        ),
                        Kind::Relative => (K::Relative, None),
                        Kind::Dynamic => ("Dynamic".parse().unwrap_or(K::Absolute), None),
                    };
                    let schedules = self
                        .schedules
                        .iter()
                        .enumerate()
                        .map(|(i, s)| {
                            let periods = s
                                .periods
                                .iter()
                                .map(|q| {
                                    let mut p = $limit_out(q);
                                    p.number_phases = q.number_phases;
                                    p.phase_to_use = q.phase_to_use;
                                    p
                                })
                                .collect();
                            let unit = match s.charging_rate_unit {
                                RateUnit::A => $v::ChargingRateUnitEnumType::A,
                                RateUnit::W => $v::ChargingRateUnitEnumType::W,
                            };
                            let id = s.id.unwrap_or(i32::try_from(i).unwrap_or(0));
                            let mut t = $v::ChargingScheduleType::new(id, unit, periods);
                            t.start_schedule = s.start_schedule.map(crate::DateTime::from_utc);
                            t.duration = s.duration;
                            t.min_charging_rate = s.min_charging_rate;
                            t
                        })
                        .collect();
                    let mut p = $v::ChargingProfileType::new(
                        self.id,
                        self.stack_level,
                        purpose,
                        kind,
                        schedules,
                    );
                    p.recurrency_kind = recurrency;
                    p.valid_from = self.valid_from.map(crate::DateTime::from_utc);
                    p.valid_to = self.valid_to.map(crate::DateTime::from_utc);
                    p.transaction_id = self
                        .transaction_id
                        .as_deref()
                        .and_then(|t| crate::BoundedString::new(t).ok());
                    p
                }
            }
        }
    };
}

#[cfg(feature = "v201")]
v2x_conv!(
    v201_conv,
    v201,
    from_v201,
    to_v201,
    |q: &crate::v201::ChargingSchedulePeriodType| Some(q.limit),
    |q: &Period| crate::v201::ChargingSchedulePeriodType::new(
        q.start_period,
        q.limit.unwrap_or_default()
    ),
    |_: &crate::v201::ChargingSchedulePeriodType| None
);

#[cfg(feature = "v21")]
v2x_conv!(
    v21_conv,
    v21,
    from_v21,
    to_v21,
    |q: &crate::v21::ChargingSchedulePeriodType| q.limit,
    |q: &Period| {
        let mut p = crate::v21::ChargingSchedulePeriodType::new(q.start_period);
        p.limit = q.limit;
        if let Some(x) = &q.v2x {
            p.discharge_limit = x.discharge_limit;
            p.setpoint = x.setpoint;
            p.setpoint_reactive = x.setpoint_reactive;
            p.operation_mode = x.operation_mode.as_deref().and_then(|m| m.parse().ok());
        }
        p
    },
    |q: &crate::v21::ChargingSchedulePeriodType| V2x {
        discharge_limit: q.discharge_limit,
        setpoint: q.setpoint,
        setpoint_reactive: q.setpoint_reactive,
        operation_mode: q.operation_mode.map(|m| m.as_str().to_owned()),
    }
    .non_empty()
);
