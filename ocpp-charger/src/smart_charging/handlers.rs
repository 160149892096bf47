//! The built-in answers of the smart-charging block
//! ([`SmartCharging`](crate::app::SmartCharging)), per version.

use ocpp_codec::ErrorCode;
use ocpp_types::BoundedString;
use serde_json::{json, Value};

use super::{ChargingProfile, CompositeSchedule, FollowUp, Installed, Kind, Purpose, RateUnit};
use crate::app::{CallError, Context};
use crate::central::{wire_id, After};

/// 1.6 `Absolute` without `startSchedule` (optional in 1.6): it starts when received.
fn start_now(ctx: &Context<'_>, p: &mut ChargingProfile) {
    if p.kind == Kind::Absolute {
        let now = super::whole_seconds(ctx.wall_clock());
        for s in &mut p.schedules {
            s.start_schedule.get_or_insert(now);
        }
    }
}

/// The clear filter: by id, else by EVSE, purpose and stack level (all absent: everything);
/// never the external constraints, which the central system does not own (2.0.1 K10).
fn clear(
    ctx: &mut Context<'_>,
    id: Option<i32>,
    evse: Option<i32>,
    purpose: Option<Purpose>,
    stack_level: Option<i32>,
) -> bool {
    let evse = evse.map(wire_id);
    ctx.station.remove_profiles(|i| {
        i.profile.purpose != Purpose::ExternalConstraints
            && match id {
                Some(id) => i.profile.id == id,
                None => {
                    evse.is_none_or(|e| e == i.evse)
                        && purpose.is_none_or(|p| p == i.profile.purpose)
                        && stack_level.is_none_or(|s| s == i.profile.stack_level)
                }
            }
    })
}

/// The composite for a request, `None` when it is refused (unknown EVSE, negative duration,
/// unit not supported).
fn composite(
    ctx: &Context<'_>,
    evse: i32,
    duration: i32,
    unit: Option<RateUnit>,
) -> Option<CompositeSchedule> {
    let cfg = &ctx.station.cfg.smart;
    if duration < 0 || unit.is_some_and(|u| !cfg.units.contains(&u)) {
        return None;
    }
    ctx.station
        .composite_schedule(ctx.now, wire_id(evse), duration, unit)
}

/// The profiles `GetChargingProfiles` asks for, as reports of at most
/// [`SmartChargingConfig::profiles_per_report`](super::SmartChargingConfig::profiles_per_report)
/// profiles, grouped by EVSE and source.
fn reports(
    selected: Vec<&Installed>,
    request_id: i32,
    per_report: usize,
    to_json: impl Fn(&ChargingProfile) -> Value,
) -> Vec<Value> {
    let mut groups: std::collections::BTreeMap<(u32, &'static str), Vec<Value>> =
        std::collections::BTreeMap::new();
    for i in selected {
        groups
            .entry((i.evse, i.source.as_str()))
            .or_default()
            .push(to_json(&i.profile));
    }
    let mut out = Vec::new();
    for ((evse, source), profiles) in groups {
        for chunk in profiles.chunks(per_report.max(1)) {
            out.push(json!({
                "requestId": request_id,
                "chargingLimitSource": source,
                "chargingProfile": chunk,
                "tbc": true,
                "evseId": evse,
            }));
        }
    }
    if let Some(last) = out.last_mut() {
        last["tbc"] = json!(false);
    }
    out
}

/// The selection of `GetChargingProfiles` (2.0.1 K09): every criterion given must match.
fn select<'a>(
    installed: &'a [Installed],
    evse: Option<i32>,
    purpose: Option<Purpose>,
    stack_level: Option<i32>,
    ids: Option<&[i32]>,
    sources: Option<Vec<String>>,
) -> Vec<&'a Installed> {
    let evse = evse.map(wire_id);
    installed
        .iter()
        .filter(|i| {
            evse.is_none_or(|e| e == i.evse)
                && purpose.is_none_or(|p| p == i.profile.purpose)
                && stack_level.is_none_or(|s| s == i.profile.stack_level)
                && ids.is_none_or(|ids| ids.contains(&i.profile.id))
                && sources
                    .as_ref()
                    .is_none_or(|s| s.iter().any(|s| s == i.source.as_str()))
        })
        .collect()
}

/// Queues the reports after the answer, when they fit the call queue.
fn follow_reports(ctx: &mut Context<'_>, reports: Vec<Value>) -> Result<(), CallError> {
    if !ctx.station.room_for(reports.len()) {
        return Err(CallError::new(
            ErrorCode::GenericError,
            "too many calls queued to report the charging profiles now",
        ));
    }
    ctx.after.push(After::Smart(FollowUp { reports }));
    Ok(())
}

/// The profile of a remote start, if any, checked and kept for the transaction it starts
/// (1.6 §5.11 and 2.x RequestStartTransaction: the profile is the new transaction's
/// TxProfile). `Err` when it is refused (the remote start is then `Rejected`).
pub(crate) fn remote_start_profile(
    ctx: &mut Context<'_>,
    evse: Option<u32>,
    token: &str,
) -> Result<(), super::Rejection> {
    use ocpp_codec::typed::TypedRequest as T;
    let profile = match ctx.raw.as_ref() {
        Some(T::V16(ocpp_types::v16::AnyRequest::RemoteStartTransaction(q))) => {
            q.charging_profile.as_ref().map(ChargingProfile::from_v16)
        }
        Some(T::V201(ocpp_types::v201::AnyRequest::RequestStartTransaction(q))) => {
            q.charging_profile.as_ref().map(ChargingProfile::from_v201)
        }
        Some(T::V21(ocpp_types::v21::AnyRequest::RequestStartTransaction(q))) => {
            q.charging_profile.as_ref().map(ChargingProfile::from_v21)
        }
        _ => None,
    };
    let Some(mut profile) = profile else {
        return Ok(());
    };
    if ctx.version() == ocpp_codec::Version::V16 {
        start_now(ctx, &mut profile);
    }
    let now = ctx.now;
    ctx.station.expect_remote_profile(now, evse, token, profile)
}

mod v16_handlers {
    use super::*;
    use ocpp_types::v16;

    fn purpose(p: v16::ChargingProfilePurposeType) -> Purpose {
        match p {
            v16::ChargingProfilePurposeType::ChargePointMaxProfile => Purpose::ChargingStationMax,
            v16::ChargingProfilePurposeType::TxDefaultProfile => Purpose::TxDefault,
            v16::ChargingProfilePurposeType::TxProfile => Purpose::Tx,
        }
    }

    /// 1.6 `SetChargingProfile`: Accepted, or Rejected with the [`Rejection`](super::super::Rejection)s.
    pub(crate) fn set_charging_profile_v16(
        ctx: &mut Context<'_>,
        request: v16::SetChargingProfileRequest,
    ) -> Result<v16::SetChargingProfileResponse, CallError> {
        let mut p = ChargingProfile::from_v16(&request.cs_charging_profiles);
        start_now(ctx, &mut p);
        let status = match ctx
            .station
            .install_profile(wire_id(request.connector_id), p)
        {
            Ok(()) => v16::ChargingProfileStatus::Accepted,
            Err(_) => v16::ChargingProfileStatus::Rejected,
        };
        Ok(v16::SetChargingProfileResponse::new(status))
    }

    /// 1.6 `ClearChargingProfile`: Accepted when a profile was removed, else Unknown.
    pub(crate) fn clear_charging_profile_v16(
        ctx: &mut Context<'_>,
        request: v16::ClearChargingProfileRequest,
    ) -> Result<v16::ClearChargingProfileResponse, CallError> {
        let removed = clear(
            ctx,
            request.id,
            request.connector_id,
            request.charging_profile_purpose.map(purpose),
            request.stack_level,
        );
        Ok(v16::ClearChargingProfileResponse::new(if removed {
            v16::ClearChargingProfileStatus::Accepted
        } else {
            v16::ClearChargingProfileStatus::Unknown
        }))
    }

    /// 1.6 `GetCompositeSchedule`.
    pub(crate) fn get_composite_schedule_v16(
        ctx: &mut Context<'_>,
        request: v16::GetCompositeScheduleRequest,
    ) -> Result<v16::GetCompositeScheduleResponse, CallError> {
        let unit = request.charging_rate_unit.map(|u| match u {
            v16::ChargingRateUnitType::A => RateUnit::A,
            v16::ChargingRateUnitType::W => RateUnit::W,
        });
        let Some(c) = composite(ctx, request.connector_id, request.duration, unit) else {
            return Ok(v16::GetCompositeScheduleResponse::new(
                v16::GetCompositeScheduleStatus::Rejected,
            ));
        };
        let periods = c
            .periods
            .iter()
            .map(|p| {
                let mut q = v16::ChargingSchedulePeriod::new(p.start_period, p.limit);
                q.number_phases = Some(i32::from(p.number_phases));
                q
            })
            .collect();
        let unit = match c.unit {
            RateUnit::A => v16::ChargingRateUnitType::A,
            RateUnit::W => v16::ChargingRateUnitType::W,
        };
        let start = ocpp_types::DateTime::from_utc(c.start);
        let mut schedule = v16::ChargingSchedule::new(unit, periods);
        schedule.duration = Some(c.duration);
        schedule.start_schedule = Some(start);
        schedule.min_charging_rate = c.min_charging_rate;
        let mut r =
            v16::GetCompositeScheduleResponse::new(v16::GetCompositeScheduleStatus::Accepted);
        r.connector_id = Some(request.connector_id);
        r.schedule_start = Some(start);
        r.charging_schedule = Some(schedule);
        Ok(r)
    }
}
pub(crate) use v16_handlers::*;

macro_rules! v2x_handlers {
    ($modname:ident, $v:ident, $from:ident, $to:ident,
     $set:ident, $clear:ident, $get_composite:ident, $get_profiles:ident,
     $period:expr, $composite:expr) => {
        mod $modname {
            use super::*;
            use ocpp_types::$v;

            fn purpose(p: $v::ChargingProfilePurposeEnumType) -> Purpose {
                Purpose::$from(p)
            }

            fn status_info(reason: &str, info: &str) -> Option<$v::StatusInfoType> {
                let mut s = $v::StatusInfoType::new(BoundedString::new(reason).ok()?);
                let mut info = info.to_owned();
                info.truncate(512);
                s.additional_info = BoundedString::new(info).ok();
                Some(s)
            }

            #[doc = concat!("OCPP ", stringify!($v), " `SetChargingProfile`: Accepted, or Rejected with the reason in `statusInfo`.")]
            pub(crate) fn $set(
                ctx: &mut Context<'_>,
                request: $v::SetChargingProfileRequest,
            ) -> Result<$v::SetChargingProfileResponse, CallError> {
                let p = ChargingProfile::$from(&request.charging_profile);
                Ok(match ctx.station.install_profile(wire_id(request.evse_id), p) {
                    Ok(()) => $v::SetChargingProfileResponse::new(
                        $v::ChargingProfileStatusEnumType::Accepted,
                    ),
                    Err(e) => {
                        let mut r = $v::SetChargingProfileResponse::new(
                            $v::ChargingProfileStatusEnumType::Rejected,
                        );
                        r.status_info = status_info(e.reason_code(), &e.to_string());
                        r
                    }
                })
            }

            #[doc = concat!("OCPP ", stringify!($v), " `ClearChargingProfile`: Accepted when a profile was removed, else Unknown.")]
            pub(crate) fn $clear(
                ctx: &mut Context<'_>,
                request: $v::ClearChargingProfileRequest,
            ) -> Result<$v::ClearChargingProfileResponse, CallError> {
                let c = request.charging_profile_criteria.as_ref();
                let removed = clear(
                    ctx,
                    request.charging_profile_id,
                    c.and_then(|c| c.evse_id),
                    c.and_then(|c| c.charging_profile_purpose).map(purpose),
                    c.and_then(|c| c.stack_level),
                );
                Ok($v::ClearChargingProfileResponse::new(if removed {
                    $v::ClearChargingProfileStatusEnumType::Accepted
                } else {
                    $v::ClearChargingProfileStatusEnumType::Unknown
                }))
            }

            #[doc = concat!("OCPP ", stringify!($v), " `GetCompositeSchedule`.")]
            pub(crate) fn $get_composite(
                ctx: &mut Context<'_>,
                request: $v::GetCompositeScheduleRequest,
            ) -> Result<$v::GetCompositeScheduleResponse, CallError> {
                let unit = request.charging_rate_unit.map(|u| match u {
                    $v::ChargingRateUnitEnumType::A => RateUnit::A,
                    $v::ChargingRateUnitEnumType::W => RateUnit::W,
                });
                let Some(c) = composite(ctx, request.evse_id, request.duration, unit) else {
                    return Ok($v::GetCompositeScheduleResponse::new(
                        $v::GenericStatusEnumType::Rejected,
                    ));
                };
                let periods: Vec<$v::ChargingSchedulePeriodType> = c
                    .periods
                    .iter()
                    .map(|p| {
                        let mut q = $period(p);
                        q.number_phases = Some(i32::from(p.number_phases));
                        q
                    })
                    .collect();
                let unit = match c.unit {
                    RateUnit::A => $v::ChargingRateUnitEnumType::A,
                    RateUnit::W => $v::ChargingRateUnitEnumType::W,
                };
                let start = ocpp_types::DateTime::from_utc(c.start);
                let mut r =
                    $v::GetCompositeScheduleResponse::new($v::GenericStatusEnumType::Accepted);
                r.schedule = Some($composite(request.evse_id, c.duration, start, unit, periods));
                Ok(r)
            }

            #[doc = concat!("OCPP ", stringify!($v), " `GetChargingProfiles`: NoProfiles, or Accepted and `ReportChargingProfiles` after the answer.")]
            pub(crate) fn $get_profiles(
                ctx: &mut Context<'_>,
                request: $v::GetChargingProfilesRequest,
            ) -> Result<$v::GetChargingProfilesResponse, CallError> {
                let c = &request.charging_profile;
                let sources: Option<Vec<String>> = c
                    .charging_limit_source
                    .as_ref()
                    .map(|s| s.iter().map(|s| s.to_string()).collect());
                let st = &*ctx.station;
                let selected = select(
                    &st.smart.doc.profiles,
                    request.evse_id,
                    c.charging_profile_purpose.map(purpose),
                    c.stack_level,
                    c.charging_profile_id.as_deref(),
                    sources,
                );
                if selected.is_empty() {
                    return Ok($v::GetChargingProfilesResponse::new(
                        $v::GetChargingProfileStatusEnumType::NoProfiles,
                    ));
                }
                let reports = reports(
                    selected,
                    request.request_id,
                    st.cfg.smart.profiles_per_report,
                    |p| serde_json::to_value(p.$to()).unwrap_or(Value::Null),
                );
                follow_reports(ctx, reports)?;
                Ok($v::GetChargingProfilesResponse::new(
                    $v::GetChargingProfileStatusEnumType::Accepted,
                ))
            }
        }
        pub(crate) use $modname::*;
    };
}

v2x_handlers!(
    v201_handlers,
    v201,
    from_v201,
    to_v201,
    set_charging_profile_v201,
    clear_charging_profile_v201,
    get_composite_schedule_v201,
    get_charging_profiles_v201,
    |p: &ocpp_types::smart_charging::CompositePeriod| {
        ocpp_types::v201::ChargingSchedulePeriodType::new(p.start_period, p.limit)
    },
    |evse, duration, start, unit, periods| ocpp_types::v201::CompositeScheduleType::new(
        periods, evse, duration, start, unit
    )
);

v2x_handlers!(
    v21_handlers,
    v21,
    from_v21,
    to_v21,
    set_charging_profile_v21,
    clear_charging_profile_v21,
    get_composite_schedule_v21,
    get_charging_profiles_v21,
    |c: &ocpp_types::smart_charging::CompositePeriod| {
        let mut p = ocpp_types::v21::ChargingSchedulePeriodType::new(c.start_period);
        p.limit = Some(c.limit);
        if let Some(x) = &c.v2x {
            p.discharge_limit = x.discharge_limit;
            p.setpoint = x.setpoint;
            p.setpoint_reactive = x.setpoint_reactive;
            p.operation_mode = x.operation_mode.as_deref().and_then(|m| m.parse().ok());
        }
        p
    },
    ocpp_types::v21::CompositeScheduleType::new
);
