//! Smart charging from the central system: version-neutral [`ChargerHandle`] commands over
//! the one profile model both sides share ([`ocpp_types::smart_charging`], re-exported
//! here), and the charger's smart-charging notifications as [`SmartChargingNotice`]s
//! (inside [`Event::SmartCharging`](crate::Event::SmartCharging)).
//!
//! | command | 1.6 | 2.0.1 / 2.1 |
//! |---|---|---|
//! | [`set_charging_profile`](ChargerHandle::set_charging_profile) | SetChargingProfile (`connectorId`, `csChargingProfiles`) | SetChargingProfile (`evseId`, `chargingProfile`) |
//! | [`clear_charging_profiles`](ChargerHandle::clear_charging_profiles) | ClearChargingProfile | ClearChargingProfile (`chargingProfileId` or `chargingProfileCriteria`) |
//! | [`get_charging_profiles`](ChargerHandle::get_charging_profiles) | none: refused with [`CallError::Refused`] | GetChargingProfiles, then the ReportChargingProfiles that follow, collected |
//! | [`get_composite_schedule`](ChargerHandle::get_composite_schedule) | GetCompositeSchedule | GetCompositeSchedule |
//!
//! What the central system may set is refused before anything is sent: a purpose other than
//! `TxProfile`, `TxDefaultProfile` and `ChargingStationMaxProfile` (the others belong to the
//! station), a `ChargingStationMaxProfile` off EVSE 0, a `TxProfile` on EVSE 0, a 1.6
//! transaction id that is not an integer.
//!
//! The charger's notifications are answered by the handler traits' defaults (every one
//! `Accepted` or the empty answer, never `NotSupported`): NotifyChargingLimit,
//! ClearedChargingLimit, NotifyEVChargingNeeds, NotifyEVChargingSchedule and
//! ReportChargingProfiles. An application overrides the answer with the trait method of its
//! version (e.g. `HandleV201::notify_ev_charging_needs`) and sees every one of them as a
//! [`SmartChargingNotice`] event.

use std::sync::atomic::{AtomicI32, Ordering};

use chrono::{DateTime, Utc};
use futures::channel::oneshot;

use crate::commands::{by_version, status_call, Answer};
use crate::handler::ChargerHandle;
use crate::message::{AnyRequest, AnyResponse};
use crate::session::CallError;

pub use ocpp_types::smart_charging::{
    ChargingProfile, CompositePeriod, CompositeSchedule, Kind, Period, Purpose, RateUnit,
    Recurrency, Schedule,
};

/// The most profiles one [`ChargerHandle::get_charging_profiles`] collects; further reported
/// profiles are dropped and the report says [`ProfileReport::truncated`].
pub const MAX_REPORTED_PROFILES: usize = 1024;

/// The most [`ChargerHandle::get_charging_profiles`] waiting for their reports at once per
/// charger; one more is refused ([`CallError::Refused`]) without being sent.
pub const MAX_PROFILE_QUERIES: usize = 4;

/// How long [`ChargerHandle::get_charging_profiles`] waits for the last report after the
/// charger accepted (with the `tokio` feature; without it, until the last report or the
/// disconnection).
pub const REPORT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Which profiles to clear ([`ChargerHandle::clear_charging_profiles`]); `None` fields do not
/// filter. All `None`: every profile the central system may clear.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClearProfiles {
    /// The profile id (2.x: when given, the other criteria are not sent).
    pub id: Option<i32>,
    /// The EVSE (1.6: the connector; 0 is the station).
    pub evse: Option<i32>,
    /// The purpose.
    pub purpose: Option<Purpose>,
    /// The stack level.
    pub stack_level: Option<i32>,
}

/// Which profiles to report ([`ChargerHandle::get_charging_profiles`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileQuery {
    /// The EVSE (`None`: all; 0: the station's own).
    pub evse: Option<i32>,
    /// Only these profile ids (empty: any).
    pub ids: Vec<i32>,
    /// Only this purpose.
    pub purpose: Option<Purpose>,
    /// Only this stack level.
    pub stack_level: Option<i32>,
    /// Only profiles from these sources (`EMS`, `Other`, `SO`, `CSO`; empty: any).
    pub sources: Vec<String>,
}

/// A profile the charger reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportedProfile {
    /// The EVSE it is installed on (0: the station).
    pub evse: i32,
    /// Who set it (`CSO`, `EMS`, `SO`, `Other`, ...).
    pub source: String,
    /// The profile.
    pub profile: ChargingProfile,
}

/// The profiles of a [`ChargerHandle::get_charging_profiles`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileReport {
    /// The status of GetChargingProfiles (`Accepted`, or `NoProfiles` with none).
    pub status: String,
    /// Every profile of every report, in the order received.
    pub profiles: Vec<ReportedProfile>,
    /// More than [`MAX_REPORTED_PROFILES`] were reported; the rest were dropped.
    pub truncated: bool,
}

/// A charger's answer to [`ChargerHandle::get_composite_schedule`].
#[derive(Debug, Clone, PartialEq)]
pub struct CompositeAnswer {
    /// `Accepted` or `Rejected`.
    pub status: String,
    /// The schedule, when accepted (and given).
    pub schedule: Option<CompositeSchedule>,
    /// The typed response, in the charger's version.
    pub response: AnyResponse,
}

/// A smart-charging notification from the charger, version-neutral (2.x; 1.6 has none).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SmartChargingNotice {
    /// NotifyChargingLimit: a limit from outside OCPP (an energy management system, the grid
    /// operator) applies.
    ChargingLimit {
        /// The EVSE, if the limit is for one.
        evse: Option<i32>,
        /// `chargingLimitSource` (`EMS`, `Other`, `SO`, `CSO`, ...).
        source: String,
        /// Whether the grid needs it (`isGridCritical`).
        grid_critical: Option<bool>,
        /// The limit's schedules, if given.
        schedules: Vec<Schedule>,
    },
    /// ClearedChargingLimit: such a limit no longer applies.
    ChargingLimitCleared {
        /// The EVSE, if the limit was for one.
        evse: Option<i32>,
        /// `chargingLimitSource`.
        source: String,
    },
    /// NotifyEVChargingNeeds: what an EV asked for (ISO 15118).
    EvChargingNeeds {
        /// The EVSE.
        evse: i32,
        /// `requestedEnergyTransfer` (`AC_three_phase`, `DC`, ...).
        energy_transfer: String,
        /// When the EV wants to leave.
        departure_time: Option<DateTime<Utc>>,
        /// The energy asked for, in Wh (AC or DC parameters' `energyAmount`).
        energy_amount_wh: Option<rust_decimal::Decimal>,
        /// `maxScheduleTuples`.
        max_schedule_tuples: Option<i32>,
    },
    /// NotifyEVChargingSchedule: the schedule the EV chose.
    EvChargingSchedule {
        /// The EVSE.
        evse: i32,
        /// `timeBase`: the schedule's periods count from it.
        time_base: DateTime<Utc>,
        /// The schedule.
        schedule: Schedule,
    },
    /// ReportChargingProfiles (one report; a [`ChargerHandle::get_charging_profiles`] waiting
    /// for it also collects it).
    ProfilesReported {
        /// The `requestId` of the GetChargingProfiles it answers.
        request_id: i32,
        /// The EVSE.
        evse: i32,
        /// `chargingLimitSource`.
        source: String,
        /// The profiles.
        profiles: Vec<ChargingProfile>,
        /// More reports follow (`tbc`).
        tbc: bool,
    },
}

/// Request ids of GetChargingProfiles, unique in the process.
static REQUEST_IDS: AtomicI32 = AtomicI32::new(1);

/// One GetChargingProfiles waiting for its reports.
#[derive(Debug)]
struct Collector {
    request_id: i32,
    report: ProfileReport,
    done: Option<oneshot::Sender<ProfileReport>>,
}

/// The GetChargingProfiles of one connection waiting for their reports (in the handle).
#[derive(Debug, Default)]
pub(crate) struct ReportCollectors {
    waiting: Vec<Collector>,
}

impl ReportCollectors {
    /// Registers a query; `None` when [`MAX_PROFILE_QUERIES`] already wait.
    fn register(&mut self, request_id: i32) -> Option<oneshot::Receiver<ProfileReport>> {
        if self.waiting.len() >= MAX_PROFILE_QUERIES {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        self.waiting.push(Collector {
            request_id,
            report: ProfileReport::default(),
            done: Some(tx),
        });
        Some(rx)
    }

    fn remove(&mut self, request_id: i32) {
        self.waiting.retain(|c| c.request_id != request_id);
    }

    /// Adds a report to its query; the last one (`tbc` false) completes it.
    pub(crate) fn add(
        &mut self,
        request_id: i32,
        evse: i32,
        source: &str,
        profiles: Vec<ChargingProfile>,
        tbc: bool,
    ) {
        let Some(i) = self.waiting.iter().position(|c| c.request_id == request_id) else {
            return;
        };
        let c = &mut self.waiting[i];
        for profile in profiles {
            if c.report.profiles.len() >= MAX_REPORTED_PROFILES {
                c.report.truncated = true;
                break;
            }
            c.report.profiles.push(ReportedProfile {
                evse,
                source: source.to_owned(),
                profile,
            });
        }
        if !tbc {
            let mut c = self.waiting.swap_remove(i);
            if let Some(done) = c.done.take() {
                let _ = done.send(std::mem::take(&mut c.report));
            }
        }
    }

    /// Fails every waiting query (the connection ended).
    pub(crate) fn clear(&mut self) {
        self.waiting.clear();
    }
}

/// Gives a ReportChargingProfiles to the GetChargingProfiles waiting for it, if any.
pub(crate) fn collect(charger: &ChargerHandle, request: &AnyRequest) {
    if request.action() != "ReportChargingProfiles" {
        return;
    }
    if let Some(SmartChargingNotice::ProfilesReported {
        request_id,
        evse,
        source,
        profiles,
        tbc,
    }) = notice(request)
    {
        charger
            .reports()
            .add(request_id, evse, &source, profiles, tbc);
    }
}

/// The notice a 2.x charger request makes, if it is a smart-charging notification.
pub(crate) fn notice(request: &AnyRequest) -> Option<SmartChargingNotice> {
    match request {
        #[cfg(feature = "v201")]
        AnyRequest::V201(q) => v201::notice(q),
        #[cfg(feature = "v21")]
        AnyRequest::V21(q) => v21::notice(q),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

fn refused(what: impl Into<String>) -> CallError {
    CallError::Refused(what.into())
}

/// The checks of what the central system may set, common to every version.
fn check_settable(evse: i32, profile: &ChargingProfile) -> Result<(), CallError> {
    match profile.purpose {
        Purpose::ChargingStationMax if evse != 0 => Err(refused(
            "a ChargingStationMaxProfile is set on EVSE 0 (the station)",
        )),
        Purpose::Tx if evse <= 0 => Err(refused("a TxProfile is set on an EVSE above 0")),
        Purpose::TxDefault | Purpose::Tx | Purpose::ChargingStationMax if evse >= 0 => Ok(()),
        Purpose::TxDefault | Purpose::Tx | Purpose::ChargingStationMax => {
            Err(refused(format!("no EVSE {evse}")))
        }
        other => Err(refused(format!(
            "{} profiles are the station's, not the central system's",
            other.as_str()
        ))),
    }
}

#[cfg(feature = "v16")]
mod v16 {
    use super::*;
    use ocpp_types::v16 as t;

    fn purpose(p: Purpose) -> Result<t::ChargingProfilePurposeType, CallError> {
        match p {
            Purpose::ChargingStationMax => Ok(t::ChargingProfilePurposeType::ChargePointMaxProfile),
            Purpose::TxDefault => Ok(t::ChargingProfilePurposeType::TxDefaultProfile),
            Purpose::Tx => Ok(t::ChargingProfilePurposeType::TxProfile),
            other => Err(refused(format!("OCPP 1.6 has no {}", other.as_str()))),
        }
    }

    fn unit(u: RateUnit) -> t::ChargingRateUnitType {
        match u {
            RateUnit::A => t::ChargingRateUnitType::A,
            RateUnit::W => t::ChargingRateUnitType::W,
        }
    }

    pub(super) async fn set(
        h: &ChargerHandle,
        evse: i32,
        profile: &ChargingProfile,
    ) -> Result<Answer, CallError> {
        purpose(profile.purpose)?;
        if profile.schedules.len() != 1 {
            return Err(refused("an OCPP 1.6 profile has exactly one schedule"));
        }
        if let Some(tx) = &profile.transaction_id {
            if tx.parse::<i32>().is_err() {
                return Err(refused(format!(
                    "1.6 transaction ids are 32-bit integers, not {tx:?}"
                )));
            }
        }
        let q = t::SetChargingProfileRequest::new(evse, profile.to_v16());
        status_call!(h, q)
    }

    pub(super) async fn clear(h: &ChargerHandle, f: &ClearProfiles) -> Result<Answer, CallError> {
        let mut q = t::ClearChargingProfileRequest::new();
        q.id = f.id;
        q.connector_id = f.evse;
        q.charging_profile_purpose = f.purpose.map(purpose).transpose()?;
        q.stack_level = f.stack_level;
        status_call!(h, q)
    }

    pub(super) async fn composite(
        h: &ChargerHandle,
        evse: i32,
        duration: i32,
        rate_unit: Option<RateUnit>,
    ) -> Result<CompositeAnswer, CallError> {
        let mut q = t::GetCompositeScheduleRequest::new(evse, duration);
        q.charging_rate_unit = rate_unit.map(unit);
        let r = h.call(q).await?;
        let schedule = r.charging_schedule.as_ref().map(|s| {
            CompositeSchedule::from_v16(
                r.connector_id.unwrap_or(evse),
                r.schedule_start.as_ref(),
                s,
                h.defaults().clock.now(),
            )
        });
        Ok(CompositeAnswer {
            status: r.status.as_str().to_owned(),
            schedule,
            response: AnyResponse::from(t::AnyResponse::from(r)),
        })
    }
}

macro_rules! v2_smart {
    ($m:ident, $from:ident, $to:ident) => {
        mod $m {
            use super::*;
            use ocpp_types::$m as t;

            fn purpose(p: Purpose) -> Result<t::ChargingProfilePurposeEnumType, CallError> {
                p.as_str().parse().map_err(|_| {
                    refused(format!(
                        concat!("OCPP ", stringify!($m), " has no {}"),
                        p.as_str()
                    ))
                })
            }

            pub(super) async fn set(
                h: &ChargerHandle,
                evse: i32,
                profile: &ChargingProfile,
            ) -> Result<Answer, CallError> {
                purpose(profile.purpose)?;
                if profile.schedules.is_empty() || profile.schedules.len() > 3 {
                    return Err(refused("a 2.x profile has one to three schedules"));
                }
                let q = t::SetChargingProfileRequest::new(evse, profile.$to());
                status_call!(h, q)
            }

            pub(super) async fn clear(
                h: &ChargerHandle,
                f: &ClearProfiles,
            ) -> Result<Answer, CallError> {
                let mut q = t::ClearChargingProfileRequest::new();
                q.charging_profile_id = f.id;
                if f.id.is_none()
                    && (f.evse.is_some() || f.purpose.is_some() || f.stack_level.is_some())
                {
                    let mut c = t::ClearChargingProfileType::new();
                    c.evse_id = f.evse;
                    c.charging_profile_purpose = f.purpose.map(purpose).transpose()?;
                    c.stack_level = f.stack_level;
                    q.charging_profile_criteria = Some(c);
                }
                status_call!(h, q)
            }

            pub(super) async fn get(
                h: &ChargerHandle,
                query: &ProfileQuery,
            ) -> Result<ProfileReport, CallError> {
                let mut c = t::ChargingProfileCriterionType::new();
                c.charging_profile_purpose = query.purpose.map(purpose).transpose()?;
                c.stack_level = query.stack_level;
                if !query.ids.is_empty() {
                    c.charging_profile_id = Some(query.ids.clone());
                }
                if !query.sources.is_empty() {
                    c.charging_limit_source = Some(
                        query
                            .sources
                            .iter()
                            .map(|s| {
                                s.parse()
                                    .map_err(|_| refused(format!("no charging limit source {s:?}")))
                            })
                            .collect::<Result<_, _>>()?,
                    );
                }
                let request_id = REQUEST_IDS.fetch_add(1, Ordering::Relaxed);
                let mut q = t::GetChargingProfilesRequest::new(request_id, c);
                q.evse_id = query.evse;
                let Some(rx) = h.reports().register(request_id) else {
                    return Err(refused(format!(
                        "{MAX_PROFILE_QUERIES} GetChargingProfiles already wait for their reports"
                    )));
                };
                let r = match h.call(q).await {
                    Ok(r) => r,
                    Err(e) => {
                        h.reports().remove(request_id);
                        return Err(e);
                    }
                };
                let status = r.status.as_str().to_owned();
                if status != "Accepted" {
                    h.reports().remove(request_id);
                    return Ok(ProfileReport {
                        status,
                        ..ProfileReport::default()
                    });
                }
                let report = wait(h, request_id, rx).await?;
                Ok(ProfileReport { status, ..report })
            }

            pub(super) async fn composite(
                h: &ChargerHandle,
                evse: i32,
                duration: i32,
                rate_unit: Option<RateUnit>,
            ) -> Result<CompositeAnswer, CallError> {
                let mut q = t::GetCompositeScheduleRequest::new(duration, evse);
                q.charging_rate_unit = rate_unit.map(|u| match u {
                    RateUnit::A => t::ChargingRateUnitEnumType::A,
                    RateUnit::W => t::ChargingRateUnitEnumType::W,
                });
                let r = h.call(q).await?;
                Ok(CompositeAnswer {
                    status: r.status.as_str().to_owned(),
                    schedule: r.schedule.as_ref().map(CompositeSchedule::$from),
                    response: AnyResponse::from(t::AnyResponse::from(r)),
                })
            }

            fn energy(n: &t::ChargingNeedsType) -> Option<rust_decimal::Decimal> {
                n.ac_charging_parameters
                    .as_ref()
                    .map(|p| rust_decimal::Decimal::from(p.energy_amount))
                    .or_else(|| {
                        n.dc_charging_parameters
                            .as_ref()
                            .and_then(|p| p.energy_amount.map(rust_decimal::Decimal::from))
                    })
            }

            pub(super) fn notice(q: &t::AnyRequest) -> Option<SmartChargingNotice> {
                use t::AnyRequest as Q;
                Some(match q {
                    Q::NotifyChargingLimit(q) => SmartChargingNotice::ChargingLimit {
                        evse: q.evse_id,
                        source: q.charging_limit.charging_limit_source.as_str().to_owned(),
                        grid_critical: q.charging_limit.is_grid_critical,
                        schedules: q
                            .charging_schedule
                            .iter()
                            .flatten()
                            .map(Schedule::$from)
                            .collect(),
                    },
                    Q::ClearedChargingLimit(q) => SmartChargingNotice::ChargingLimitCleared {
                        evse: q.evse_id,
                        source: q.charging_limit_source.as_str().to_owned(),
                    },
                    Q::NotifyEVChargingNeeds(q) => SmartChargingNotice::EvChargingNeeds {
                        evse: q.evse_id,
                        energy_transfer: q
                            .charging_needs
                            .requested_energy_transfer
                            .as_str()
                            .to_owned(),
                        departure_time: q
                            .charging_needs
                            .departure_time
                            .as_ref()
                            .map(|t| t.to_utc()),
                        energy_amount_wh: energy(&q.charging_needs),
                        max_schedule_tuples: q.max_schedule_tuples,
                    },
                    Q::NotifyEVChargingSchedule(q) => SmartChargingNotice::EvChargingSchedule {
                        evse: q.evse_id,
                        time_base: q.time_base.to_utc(),
                        schedule: Schedule::$from(&q.charging_schedule),
                    },
                    Q::ReportChargingProfiles(q) => SmartChargingNotice::ProfilesReported {
                        request_id: q.request_id,
                        evse: q.evse_id,
                        source: q.charging_limit_source.as_str().to_owned(),
                        profiles: q
                            .charging_profile
                            .iter()
                            .map(ChargingProfile::$from)
                            .collect(),
                        tbc: q.tbc.unwrap_or(false),
                    },
                    _ => return None,
                })
            }
        }
    };
}

#[cfg(feature = "v201")]
v2_smart!(v201, from_v201, to_v201);
#[cfg(feature = "v21")]
v2_smart!(v21, from_v21, to_v21);

/// Waits for the last report of `request_id`.
async fn wait(
    h: &ChargerHandle,
    request_id: i32,
    rx: oneshot::Receiver<ProfileReport>,
) -> Result<ProfileReport, CallError> {
    #[cfg(feature = "tokio")]
    let got = match tokio::time::timeout(REPORT_TIMEOUT, rx).await {
        Ok(got) => got,
        Err(_) => {
            h.reports().remove(request_id);
            return Err(CallError::Timeout);
        }
    };
    #[cfg(not(feature = "tokio"))]
    let got = {
        let _ = request_id;
        rx.await
    };
    let _ = h;
    got.map_err(|_| CallError::Disconnected)
}

impl ChargerHandle {
    /// Installs `profile` on `evse` (0: the station; 1.6: the connector): a `TxProfile`
    /// (with the transaction's id, or on 2.x without one: the station then refuses unless a
    /// transaction runs), a `TxDefaultProfile` (EVSE 0: for every EVSE) or a
    /// `ChargingStationMaxProfile` (EVSE 0 only). The answer's status is `Accepted` or
    /// `Rejected`.
    ///
    /// ```no_run
    /// # async fn f(charger: ocpp_central::ChargerHandle) -> Result<(), ocpp_central::CallError> {
    /// use ocpp_central::smart_charging::{ChargingProfile, Purpose, RateUnit};
    /// use rust_decimal::Decimal;
    /// let mut p = ChargingProfile::constant(7, 1, Purpose::Tx, RateUnit::W, Decimal::from(7_400), chrono::Utc::now());
    /// p.transaction_id = Some("42".into());
    /// assert!(charger.set_charging_profile(1, &p).await?.is_accepted());
    /// # Ok(()) }
    /// ```
    pub async fn set_charging_profile(
        &self,
        evse: i32,
        profile: &ChargingProfile,
    ) -> Result<crate::Answer, CallError> {
        check_settable(evse, profile)?;
        by_version!(
            self,
            v16::set(self, evse, profile).await,
            v201::set(self, evse, profile).await,
            v21::set(self, evse, profile).await
        )
    }

    /// Clears the profiles that match `filter` (ClearChargingProfile). The answer's status
    /// is `Accepted`, or `Unknown` when none matched.
    pub async fn clear_charging_profiles(
        &self,
        filter: &ClearProfiles,
    ) -> Result<crate::Answer, CallError> {
        if let Some(p) = filter.purpose {
            if !matches!(
                p,
                Purpose::Tx | Purpose::TxDefault | Purpose::ChargingStationMax
            ) {
                return Err(refused(format!(
                    "{} profiles are the station's, not the central system's",
                    p.as_str()
                )));
            }
        }
        by_version!(
            self,
            v16::clear(self, filter).await,
            v201::clear(self, filter).await,
            v21::clear(self, filter).await
        )
    }

    /// (2.x) Reads the installed profiles that match `query`: sends GetChargingProfiles with
    /// a fresh `requestId` and collects the ReportChargingProfiles that follow, until the one
    /// without `tbc` (at most [`MAX_REPORTED_PROFILES`] profiles; with the `tokio` feature
    /// for at most [`REPORT_TIMEOUT`], then [`CallError::Timeout`]). `NoProfiles` is an
    /// empty report. OCPP 1.6 has no such message: [`CallError::Refused`].
    pub async fn get_charging_profiles(
        &self,
        query: &ProfileQuery,
    ) -> Result<ProfileReport, CallError> {
        by_version!(
            self,
            {
                let _ = query;
                Err(refused(
                    "OCPP 1.6 has no GetChargingProfiles: a 1.6 charger cannot report its profiles",
                ))
            },
            v201::get(self, query).await,
            v21::get(self, query).await
        )
    }

    /// The limits that apply on `evse` (0: the station) for the next `duration` seconds, in
    /// `unit` (the charger's choice when `None`): GetCompositeSchedule.
    pub async fn get_composite_schedule(
        &self,
        evse: i32,
        duration: i32,
        unit: Option<RateUnit>,
    ) -> Result<CompositeAnswer, CallError> {
        by_version!(
            self,
            v16::composite(self, evse, duration, unit).await,
            v201::composite(self, evse, duration, unit).await,
            v21::composite(self, evse, duration, unit).await
        )
    }
}
