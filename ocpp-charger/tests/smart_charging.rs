//! Smart charging: the composite schedule (cases from the specifications' rules and from
//! EVerest libocpp's published test cases), its properties (proptest), every rejection with its
//! exact answer, persistence across a restart, the limit applied to the simulated EV, and the
//! extremes of the wire, for OCPP 1.6, 2.0.1 and 2.1.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ocpp_charger::ocpp_types::{v16, v201};
use ocpp_charger::smart_charging::{
    composite_schedule, limit_at, ChargingProfile, CompositeSchedule, Installed, Kind, Limit,
    Period, Purpose, RateUnit, Schedule, SmartChargingConfig, Source, MAX_STEPS,
};
use ocpp_charger::testing::{test_config, MockCentral, TestClock, VirtualPair};
use ocpp_charger::{MemoryStore, Setting, Version};
use proptest::prelude::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};

const ALL: [Version; 3] = [Version::V16, Version::V201, Version::V21];
const V2X: [Version; 2] = [Version::V201, Version::V21];

// ----- helpers -----

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("a test time")
}

fn dec(s: &str) -> Decimal {
    s.parse().expect("a test decimal")
}

/// A profile from its 1.6 JSON (the wire form the central system sends).
fn p16(v: Value) -> ChargingProfile {
    let wire: v16::ChargingProfile = serde_json::from_value(v).expect("a 1.6 profile");
    ChargingProfile::from_v16(&wire)
}

fn on(evse: u32, profile: ChargingProfile) -> Installed {
    Installed {
        evse,
        profile,
        source: Source::Cso,
        tx_local: None,
    }
}

fn tx_on(evse: u32, local: u64, profile: ChargingProfile) -> Installed {
    Installed {
        tx_local: Some(local),
        ..on(evse, profile)
    }
}

/// A config whose gaps are 0 A, as in libocpp's tests ("a default limit of 0.0 Amps").
fn zero_gap() -> SmartChargingConfig {
    SmartChargingConfig {
        hardware_limit: Limit {
            value: Decimal::ZERO,
            unit: RateUnit::A,
            phases: 3,
        },
        ..SmartChargingConfig::default()
    }
}

/// `(startPeriod, limit, phases)` of a composite.
fn periods(c: &CompositeSchedule) -> Vec<(i32, Decimal, u8)> {
    c.periods
        .iter()
        .map(|p| (p.start_period, p.limit, p.number_phases))
        .collect()
}

fn connected(v: Version) -> VirtualPair {
    connected_with(v, |c| c)
}

fn connected_with(
    v: Version,
    f: impl FnOnce(ocpp_charger::StationConfig) -> ocpp_charger::StationConfig,
) -> VirtualPair {
    let clock = TestClock::new();
    let config = f(test_config(v, &clock));
    let mut pair = VirtualPair::with(
        config,
        Box::new(MemoryStore::new()),
        MockCentral::new(v),
        clock,
    );
    pair.connect();
    pair
}

fn answer(pair: &VirtualPair, id: &str) -> Value {
    match pair.central.answer(id) {
        Some(Ok(v)) => v.clone(),
        other => panic!("call {id}: {other:?}"),
    }
}

/// A schedule in the version's shape (1.6: one object; 2.x: a list with an id).
fn schedule(v: Version, s: Value) -> Value {
    if v == Version::V16 {
        s
    } else {
        let mut s = s;
        s["id"] = json!(1);
        json!([s])
    }
}

/// A SetChargingProfile payload in the version's words.
fn set_payload(v: Version, evse: i64, mut profile: Value, sched: Value) -> Value {
    let sched = schedule(v, sched);
    if v == Version::V16 {
        let id = profile["id"].take();
        let obj = profile.as_object_mut().expect("an object");
        obj.remove("id");
        obj.insert("chargingProfileId".into(), id);
        if obj.get("chargingProfilePurpose") == Some(&json!("ChargingStationMaxProfile")) {
            obj.insert(
                "chargingProfilePurpose".into(),
                json!("ChargePointMaxProfile"),
            );
        }
        if let Some(t) = obj.get("transactionId").and_then(Value::as_str) {
            let t: i64 = t.parse().unwrap_or(0);
            obj.insert("transactionId".into(), json!(t));
        }
        obj.insert("chargingSchedule".into(), sched);
        json!({ "connectorId": evse, "csChargingProfiles": profile })
    } else {
        profile["chargingSchedule"] = sched;
        json!({ "evseId": evse, "chargingProfile": profile })
    }
}

fn set(pair: &mut VirtualPair, evse: i64, profile: Value, sched: Value) -> Value {
    let v = pair.station.version();
    let id = pair.central_call("SetChargingProfile", set_payload(v, evse, profile, sched));
    answer(pair, &id)
}

fn composite_call(pair: &mut VirtualPair, evse: i64, duration: i64, unit: &str) -> Value {
    let v = pair.station.version();
    let p = if v == Version::V16 {
        json!({ "connectorId": evse, "duration": duration, "chargingRateUnit": unit })
    } else {
        json!({ "evseId": evse, "duration": duration, "chargingRateUnit": unit })
    };
    let id = pair.central_call("GetCompositeSchedule", p);
    answer(pair, &id)
}

/// `(startPeriod, limit)` of a GetCompositeSchedule answer, either version.
fn answered_periods(v: Version, a: &Value) -> Vec<(i64, Decimal)> {
    let list = if v == Version::V16 {
        &a["chargingSchedule"]["chargingSchedulePeriod"]
    } else {
        &a["schedule"]["chargingSchedulePeriod"]
    };
    list.as_array()
        .expect("periods")
        .iter()
        .map(|p| {
            (
                p["startPeriod"].as_i64().expect("startPeriod"),
                dec(&p["limit"].to_string()),
            )
        })
        .collect()
}

/// Starts a transaction on EVSE 1; gives its id as the central system knows it.
fn start_tx(pair: &mut VirtualPair) -> String {
    pair.plug_in(1);
    pair.present(1, "TAG1");
    pair.station
        .transaction(1)
        .and_then(|t| t.transaction_id)
        .expect("a transaction with its id")
}

/// The `Power.Active.Import` values the station sent, in order.
fn power_samples(pair: &VirtualPair) -> Vec<Decimal> {
    let mut out = Vec::new();
    for action in ["MeterValues", "TransactionEvent"] {
        for p in pair.central.payloads(action) {
            for mv in p["meterValue"].as_array().into_iter().flatten() {
                for sv in mv["sampledValue"].as_array().into_iter().flatten() {
                    if sv["measurand"] == "Power.Active.Import" {
                        let text = match &sv["value"] {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        out.push(dec(&text));
                    }
                }
            }
        }
    }
    out
}

fn tx_default(id: i64, stack: i64) -> Value {
    json!({ "id": id, "stackLevel": stack, "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute" })
}

fn amps(limit: i64) -> Value {
    json!({ "startSchedule": "2025-01-01T00:00:00Z", "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": limit }] })
}

fn relative_amps(limit: i64) -> Value {
    json!({ "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": limit }] })
}

// ----- the composite schedule -----

/// EVerest libocpp tests/lib/ocpp/v16/test_composite_schedule.cpp:
/// CalculateEnhancedCompositeSchedule_ValidatedBaseline. TxDefaultProfile_01.json (stack level
/// 1, 2000 W on one phase from 2024-01-17T18:00 for 1080 s) over a stack-level-0 default of
/// 11000 W on three phases (TxDefaultProfile_100.json, which the published expectation pins
/// down as 11000 W, 3 phases, stack level 0), asked from 18:01 to midnight in W: two periods,
/// 2000 W then 11000 W from 1020 s, duration 21540 s.
#[test]
fn libocpp_validated_baseline() {
    let p01 = p16(json!({
        "chargingProfileId": 1, "chargingProfileKind": "Absolute",
        "chargingProfilePurpose": "TxDefaultProfile", "recurrencyKind": "Daily", "stackLevel": 1,
        "chargingSchedule": { "chargingRateUnit": "W", "duration": 1080, "minChargingRate": 0.0,
            "startSchedule": "2024-01-17T18:00:00.000Z",
            "chargingSchedulePeriod": [{ "limit": 2000.0, "numberPhases": 1, "startPeriod": 0 }] }
    }));
    let p100 = p16(json!({
        "chargingProfileId": 100, "chargingProfileKind": "Absolute",
        "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 0,
        "chargingSchedule": { "chargingRateUnit": "W", "startSchedule": "2024-01-01T00:00:00Z",
            "chargingSchedulePeriod": [{ "limit": 11000.0, "numberPhases": 3, "startPeriod": 0 }] }
    }));
    let installed = [on(1, p01), on(0, p100)];
    let c = composite_schedule(
        &installed,
        1,
        None,
        at("2024-01-17T18:01:00Z"),
        21540,
        RateUnit::W,
        &zero_gap(),
    );
    assert_eq!(c.unit, RateUnit::W);
    assert_eq!(c.duration, 21540);
    assert_eq!(
        periods(&c),
        [(0, Decimal::from(2000), 1), (1020, Decimal::from(11000), 3)]
    );
}

/// EVerest libocpp tests/lib/ocpp/v16/profile_tests.md, "validFrom & validTo and transaction
/// start time": a relative TxDefaultProfile (32 A for an hour, then 6 A) valid 12:00-20:00.
/// Plugged in at 10:00: nothing (the 0 A default) until 12:00, then 6 A. Plugged in at 19:50:
/// 32 A for 10 minutes, then nothing.
#[test]
fn libocpp_relative_profile_within_its_validity() {
    let p = p16(json!({
        "chargingProfileId": 1, "chargingProfileKind": "Relative",
        "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 1,
        "validFrom": "2024-01-01T12:00:00Z", "validTo": "2024-01-01T20:00:00Z",
        "chargingSchedule": { "chargingRateUnit": "A", "chargingSchedulePeriod": [
            { "limit": 32.0, "startPeriod": 0 }, { "limit": 6.0, "startPeriod": 3600 }] }
    }));
    let installed = [on(1, p)];
    let cfg = zero_gap();
    let start = at("2024-01-01T10:00:00Z");
    let c = composite_schedule(
        &installed,
        1,
        Some((1, start)),
        start,
        4 * 3600,
        RateUnit::A,
        &cfg,
    );
    assert_eq!(
        periods(&c),
        [(0, Decimal::ZERO, 3), (7200, Decimal::from(6), 3)]
    );
    let start = at("2024-01-01T19:50:00Z");
    let c = composite_schedule(
        &installed,
        1,
        Some((2, start)),
        start,
        3600,
        RateUnit::A,
        &cfg,
    );
    assert_eq!(
        periods(&c),
        [(0, Decimal::from(32), 3), (600, Decimal::ZERO, 3)]
    );
}

/// EVerest libocpp tests/lib/ocpp/v16/profile_tests.md, "Time handling": without a transaction
/// a relative schedule starts at the composite's start ("the assumption is that a transaction
/// has just started"): 32 A for an hour, then 6 A.
#[test]
fn libocpp_relative_without_a_transaction_starts_with_the_composite() {
    let p = p16(json!({
        "chargingProfileId": 1, "chargingProfileKind": "Relative",
        "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 1,
        "chargingSchedule": { "chargingRateUnit": "A", "chargingSchedulePeriod": [
            { "limit": 32.0, "startPeriod": 0 }, { "limit": 6.0, "startPeriod": 3600 }] }
    }));
    let c = composite_schedule(
        &[on(1, p)],
        1,
        None,
        at("2024-01-01T10:00:00Z"),
        7200,
        RateUnit::A,
        &zero_gap(),
    );
    assert_eq!(
        periods(&c),
        [(0, Decimal::from(32), 3), (3600, Decimal::from(6), 3)]
    );
}

/// EVerest libocpp tests/lib/ocpp/v16/profile_tests.md, "startSchedule and daily recurring":
/// plugged in at 2024-01-10T11:50, 6 A for 10 minutes (the previous day's recurrence), then
/// 32 A from 12:00 when the schedule repeats (and 6 A again an hour later).
#[test]
fn libocpp_daily_recurring_rolls_to_the_day() {
    let p = p16(json!({
        "chargingProfileId": 1, "chargingProfileKind": "Recurring", "recurrencyKind": "Daily",
        "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 1,
        "chargingSchedule": { "startSchedule": "2024-01-01T12:00:00Z", "chargingRateUnit": "A",
            "chargingSchedulePeriod": [
                { "limit": 32.0, "startPeriod": 0 }, { "limit": 6.0, "startPeriod": 3600 }] }
    }));
    let start = at("2024-01-10T11:50:00Z");
    let c = composite_schedule(
        &[on(1, p)],
        1,
        Some((1, start)),
        start,
        7200,
        RateUnit::A,
        &zero_gap(),
    );
    assert_eq!(
        periods(&c),
        [
            (0, Decimal::from(6), 3),
            (600, Decimal::from(32), 3),
            (4200, Decimal::from(6), 3)
        ]
    );
}

/// EVerest libocpp tests/lib/ocpp/v16/profile_tests.md, "startSchedule and daily recurring with
/// duration": 5 h a day from 12:00, valid from 2024-02-01T12:00. At 2024-02-10T11:50: the
/// default for 10 minutes (yesterday's 5 h are over), then 32 A from 12:00, 6 A from 13:00,
/// the default again from 17:00. At 2024-02-01T11:50: the default until the profile becomes
/// valid at 12:00, then 32 A.
#[test]
fn libocpp_daily_recurring_with_duration_and_validity() {
    let p = p16(json!({
        "chargingProfileId": 1, "chargingProfileKind": "Recurring", "recurrencyKind": "Daily",
        "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 1,
        "validFrom": "2024-02-01T12:00:00Z", "validTo": "2024-03-01T09:00:00Z",
        "chargingSchedule": { "startSchedule": "2024-01-01T12:00:00Z", "duration": 18000,
            "chargingRateUnit": "A", "chargingSchedulePeriod": [
                { "limit": 32.0, "startPeriod": 0 }, { "limit": 6.0, "startPeriod": 3600 }] }
    }));
    let installed = [on(1, p)];
    let cfg = zero_gap();
    let start = at("2024-02-10T11:50:00Z");
    let c = composite_schedule(&installed, 1, None, start, 6 * 3600, RateUnit::A, &cfg);
    assert_eq!(
        periods(&c),
        [
            (0, Decimal::ZERO, 3),
            (600, Decimal::from(32), 3),
            (4200, Decimal::from(6), 3),
            (18600, Decimal::ZERO, 3)
        ]
    );
    let start = at("2024-02-01T11:50:00Z");
    let c = composite_schedule(&installed, 1, None, start, 1800, RateUnit::A, &cfg);
    assert_eq!(
        periods(&c),
        [(0, Decimal::ZERO, 3), (600, Decimal::from(32), 3)]
    );
}

/// OCPP 1.6 §3.13 / 2.0.1 part 2 K (charging profile purposes, stacking): a TxProfile overrides the
/// TxDefaultProfile, the ChargingStationMaxProfile caps both; within a purpose the highest
/// stack level valid at each instant wins, and the next one applies again when it ends.
#[test]
fn purposes_and_stack_levels_combine() {
    let start = at("2025-01-01T00:00:00Z");
    let absolute = |id: i32, stack: i32, purpose: Purpose, duration: Option<i32>, limit: i64| {
        ChargingProfile {
            id,
            stack_level: stack,
            purpose,
            kind: Kind::Absolute,
            valid_from: None,
            valid_to: None,
            transaction_id: None,
            schedules: vec![Schedule {
                id: None,
                start_schedule: Some(start),
                duration,
                charging_rate_unit: RateUnit::A,
                periods: vec![Period::new(0, Decimal::from(limit))],
                min_charging_rate: None,
            }],
            original: None,
        }
    };
    let cfg = zero_gap();
    let installed = vec![
        on(1, absolute(1, 0, Purpose::TxDefault, None, 20)),
        // Stack level 5 for the first hour: it wins, then level 0 again.
        on(1, absolute(2, 5, Purpose::TxDefault, Some(3600), 10)),
        // A TxProfile for transaction 9 from 2 h: overrides both defaults, to 30 A...
        tx_on(1, 9, {
            let mut p = absolute(3, 0, Purpose::Tx, None, 30);
            p.schedules[0].periods = vec![Period::new(0, Decimal::from(30))];
            p.valid_from = Some(at("2025-01-01T02:00:00Z"));
            p
        }),
        // ...but the station's maximum is 25 A.
        on(0, absolute(4, 0, Purpose::ChargingStationMax, None, 25)),
    ];
    let c = composite_schedule(
        &installed,
        1,
        Some((9, start)),
        start,
        3 * 3600,
        RateUnit::A,
        &cfg,
    );
    assert_eq!(
        periods(&c),
        [
            (0, Decimal::from(10), 3),
            (3600, Decimal::from(20), 3),
            (7200, Decimal::from(25), 3)
        ]
    );
    // Another transaction (local key 8): the TxProfile of 9 does not apply.
    let c = composite_schedule(
        &installed,
        1,
        Some((8, start)),
        start,
        3 * 3600,
        RateUnit::A,
        &cfg,
    );
    assert_eq!(
        periods(&c),
        [(0, Decimal::from(10), 3), (3600, Decimal::from(20), 3)]
    );
    // EVSE 0 is the station total: the ChargingStationMaxProfile alone.
    let c = composite_schedule(&installed, 0, None, start, 3600, RateUnit::A, &cfg);
    assert_eq!(periods(&c), [(0, Decimal::from(25), 3)]);
    // An EVSE's own TxDefaultProfile wins over EVSE 0's at the same stack level.
    let mut both = vec![on(0, absolute(5, 3, Purpose::TxDefault, None, 12))];
    both.push(on(1, absolute(6, 3, Purpose::TxDefault, None, 14)));
    let c = composite_schedule(&both, 1, None, start, 60, RateUnit::A, &cfg);
    assert_eq!(periods(&c), [(0, Decimal::from(14), 3)]);
}

/// A and W convert by phases and the nominal voltage; a conversion to A rounds down to 0.1 A
/// (never above the limit); the minimum is taken as power.
#[test]
fn units_convert_by_phases_and_voltage() {
    let start = at("2025-01-01T00:00:00Z");
    let cfg = zero_gap();
    let a16 = p16(json!({ "chargingProfileId": 1, "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Relative",
        "chargingSchedule": { "chargingRateUnit": "A", "minChargingRate": 6,
            "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": 16 }] } }));
    let c = composite_schedule(&[on(1, a16.clone())], 1, None, start, 60, RateUnit::W, &cfg);
    assert_eq!(periods(&c), [(0, Decimal::from(11040), 3)]); // 16 A × 230 V × 3
    assert_eq!(c.min_charging_rate, Some(Decimal::from(4140)));
    let w7400 = p16(json!({ "chargingProfileId": 2, "stackLevel": 0,
        "chargingProfilePurpose": "ChargePointMaxProfile", "chargingProfileKind": "Absolute",
        "chargingSchedule": { "chargingRateUnit": "W", "startSchedule": "2024-01-01T00:00:00Z",
            "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": 7400, "numberPhases": 1 }] } }));
    // 7400 W on one phase is 32.17 A: 32.1 A. It is below 16 A on three phases (11040 W).
    let c = composite_schedule(
        &[on(1, a16), on(0, w7400)],
        1,
        None,
        start,
        60,
        RateUnit::A,
        &cfg,
    );
    assert_eq!(periods(&c), [(0, dec("32.1"), 1)]);
    // A different nominal voltage.
    let cfg = SmartChargingConfig {
        nominal_voltage: Decimal::from(120),
        ..zero_gap()
    };
    let p = p16(json!({ "chargingProfileId": 1, "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Relative",
        "chargingSchedule": { "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": 10, "numberPhases": 2 }] } }));
    let c = composite_schedule(&[on(1, p)], 1, None, start, 60, RateUnit::W, &cfg);
    assert_eq!(periods(&c), [(0, Decimal::from(2400), 2)]);
}

/// A weekly recurring profile rolls to the right week and weekday.
#[test]
fn weekly_recurrence() {
    // Mondays 08:00-10:00 (2024-01-01 is a Monday): 10 A, the rest of the week nothing.
    let p = p16(json!({
        "chargingProfileId": 1, "chargingProfileKind": "Recurring", "recurrencyKind": "Weekly",
        "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 0,
        "chargingSchedule": { "startSchedule": "2024-01-01T08:00:00Z", "duration": 7200,
            "chargingRateUnit": "A", "chargingSchedulePeriod": [{ "limit": 10, "startPeriod": 0 }] }
    }));
    let installed = [on(1, p)];
    let cfg = zero_gap();
    // Sunday 2025-03-16 07:00 for two days: Monday 2025-03-17 08:00 is 25 h later.
    let c = composite_schedule(
        &installed,
        1,
        None,
        at("2025-03-16T07:00:00Z"),
        2 * 86400,
        RateUnit::A,
        &cfg,
    );
    assert_eq!(
        periods(&c),
        [
            (0, Decimal::ZERO, 3),
            (25 * 3600, Decimal::from(10), 3),
            (27 * 3600, Decimal::ZERO, 3)
        ]
    );
    let limit = limit_at(&installed, 1, None, at("2025-03-17T09:59:59Z"), &cfg);
    assert_eq!(limit.map(|l| l.value), Some(Decimal::from(10)));
    assert_eq!(
        limit_at(&installed, 1, None, at("2025-03-17T10:00:00Z"), &cfg),
        None
    );
}

/// The extremes: offsets and durations at i32::MAX, year 9999, a daily recurrence asked over
/// 68 years: no panic, no overflow, the work bounded by MAX_STEPS.
#[test]
fn composite_extremes_are_bounded() {
    let cfg = zero_gap();
    let far = p16(json!({
        "chargingProfileId": 1, "chargingProfileKind": "Absolute",
        "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 0,
        "validTo": "9999-12-31T23:59:59Z",
        "chargingSchedule": { "startSchedule": "9999-12-31T23:59:59Z", "duration": i32::MAX,
            "chargingRateUnit": "W", "chargingSchedulePeriod": [
                { "limit": 1, "startPeriod": 0 }, { "limit": 2, "startPeriod": i32::MAX }] }
    }));
    let c = composite_schedule(
        &[on(1, far)],
        1,
        None,
        at("9999-12-31T00:00:00Z"),
        i32::MAX,
        RateUnit::W,
        &cfg,
    );
    assert_eq!(periods(&c), [(0, Decimal::ZERO, 3)]);
    assert_eq!(c.duration, i32::MAX);
    let every_minute: Vec<Value> = (0..1440)
        .map(|i| json!({ "startPeriod": i * 60, "limit": (i % 2) + 1 }))
        .collect();
    let daily = p16(json!({
        "chargingProfileId": 2, "chargingProfileKind": "Recurring", "recurrencyKind": "Daily",
        "chargingProfilePurpose": "TxDefaultProfile", "stackLevel": 0,
        "chargingSchedule": { "startSchedule": "2024-01-01T00:00:00Z", "chargingRateUnit": "A",
            "chargingSchedulePeriod": every_minute }
    }));
    let c = composite_schedule(
        &[on(1, daily)],
        1,
        None,
        at("2025-01-01T00:00:00Z"),
        i32::MAX,
        RateUnit::A,
        &cfg,
    );
    assert_eq!(c.periods.len(), MAX_STEPS);
    assert!(c.duration < i32::MAX && c.duration > 0, "{}", c.duration);
}

// ----- properties -----

/// A random absolute or relative profile of `purpose`: up to 4 periods within a day.
fn arb_profile(purpose: Purpose) -> impl Strategy<Value = ChargingProfile> {
    (
        0i32..1000,
        0i32..4,
        any::<bool>(),
        0i64..86_400,
        proptest::option::of(60i32..86_400),
        proptest::collection::btree_map(0i32..86_400, (0u32..100, 1i32..=3), 1..4),
        any::<bool>(),
    )
        .prop_map(
            move |(id, stack, relative, start, duration, periods, watts)| {
                let mut periods: Vec<Period> = periods
                    .into_iter()
                    .map(|(s, (l, n))| Period {
                        start_period: s,
                        limit: Some(Decimal::from(if watts { l * 230 } else { l })),
                        number_phases: Some(n),
                        phase_to_use: None,
                        v2x: None,
                    })
                    .collect();
                periods[0].start_period = 0;
                ChargingProfile {
                    id,
                    stack_level: stack,
                    purpose,
                    kind: if relative {
                        Kind::Relative
                    } else {
                        Kind::Absolute
                    },
                    valid_from: None,
                    valid_to: None,
                    transaction_id: None,
                    schedules: vec![Schedule {
                        id: None,
                        start_schedule: (!relative).then(|| {
                            DateTime::from_timestamp(1_735_689_600 + start, 0).unwrap_or_default()
                        }),
                        duration,
                        charging_rate_unit: if watts { RateUnit::W } else { RateUnit::A },
                        periods,
                        min_charging_rate: None,
                    }],
                    original: None,
                }
            },
        )
}

fn arb_installed() -> impl Strategy<Value = Vec<Installed>> {
    (
        proptest::collection::vec(arb_profile(Purpose::ChargingStationMax), 0..3),
        proptest::collection::vec((0u32..2, arb_profile(Purpose::TxDefault)), 0..4),
        proptest::collection::vec(arb_profile(Purpose::Tx), 0..3),
    )
        .prop_map(|(max, defaults, txs)| {
            let mut out: Vec<Installed> = max.into_iter().map(|p| on(0, p)).collect();
            out.extend(defaults.into_iter().map(|(e, p)| on(e, p)));
            out.extend(txs.into_iter().map(|p| tx_on(1, 1, p)));
            out
        })
}

/// No gap limit in the properties: a gap is "unlimited".
fn open_gaps() -> SmartChargingConfig {
    SmartChargingConfig {
        hardware_limit: Limit {
            value: Decimal::from(1_000_000_000u32),
            unit: RateUnit::W,
            phases: 3,
        },
        ..SmartChargingConfig::default()
    }
}

/// The value of a composite at `offset`.
fn value_at(c: &CompositeSchedule, offset: i32) -> Decimal {
    c.periods
        .iter()
        .rev()
        .find(|p| p.start_period <= offset)
        .map_or(Decimal::ZERO, |p| p.limit)
}

fn breakpoints(cs: &[&CompositeSchedule]) -> Vec<i32> {
    let mut b: Vec<i32> = cs
        .iter()
        .flat_map(|c| c.periods.iter().map(|p| p.start_period))
        .collect();
    b.sort_unstable();
    b.dedup();
    b
}

const T0: &str = "2025-01-01T06:00:00Z";

fn comp(installed: &[Installed]) -> CompositeSchedule {
    let start = at(T0);
    composite_schedule(
        installed,
        1,
        Some((1, start)),
        start,
        2 * 86_400,
        RateUnit::W,
        &open_gaps(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// The composite never exceeds any applicable limit: at every instant it is the minimum
    /// of the station maximum alone and of the transaction's profiles alone.
    #[test]
    fn never_above_the_station_maximum_nor_the_transaction_limit(installed in arb_installed()) {
        let all = comp(&installed);
        let (max, rest): (Vec<Installed>, Vec<Installed>) = installed
            .into_iter()
            .partition(|i| i.profile.purpose == Purpose::ChargingStationMax);
        let max = comp(&max);
        let rest = comp(&rest);
        for t in breakpoints(&[&all, &max, &rest]) {
            let expected = value_at(&max, t).min(value_at(&rest, t));
            prop_assert_eq!(value_at(&all, t), expected, "at {}", t);
        }
    }

    /// The result does not depend on the order the profiles were set in.
    #[test]
    fn order_does_not_matter(installed in arb_installed(), seed in any::<u64>()) {
        let mut shuffled = installed.clone();
        let n = shuffled.len();
        if n > 1 {
            let mut s = seed;
            for i in (1..n).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let j = (s >> 33) as usize % (i + 1);
                shuffled.swap(i, j);
            }
        }
        prop_assert_eq!(comp(&installed), comp(&shuffled));
    }

    /// Adding a profile below an always-valid higher stack level of the same purpose changes
    /// nothing; adding a station maximum below the stack levels of the others never raises the
    /// limit (a higher stack level overrides the lower ones of its purpose, so only below can
    /// a maximum be guaranteed not to raise it).
    #[test]
    fn lower_stack_levels_and_maxima_never_raise(
        installed in arb_installed(),
        extra in arb_profile(Purpose::TxDefault),
        max in arb_profile(Purpose::ChargingStationMax),
    ) {
        // An always-valid TxDefaultProfile at stack level 10 on the EVSE.
        let top = p16(json!({ "chargingProfileId": 5000, "stackLevel": 10,
            "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Relative",
            "chargingSchedule": { "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": 5000 }] } }));
        let mut base: Vec<Installed> = installed
            .into_iter()
            .filter(|i| i.profile.purpose != Purpose::Tx)
            .map(|mut i| {
                i.profile.stack_level += 1;
                i
            })
            .collect();
        let max = ChargingProfile { stack_level: 0, ..max };
        base.push(on(1, top));
        let before = comp(&base);
        let mut with_lower = base.clone();
        with_lower.push(on(1, extra));
        prop_assert_eq!(&comp(&with_lower), &before);
        let mut with_max = base;
        with_max.push(on(0, max));
        let after = comp(&with_max);
        for t in breakpoints(&[&before, &after]) {
            prop_assert!(value_at(&after, t) <= value_at(&before, t), "raised at {}", t);
        }
    }
}

// ----- on the wire -----

/// Set, read back as the composite (1.6 and 2.x shapes), clear by id (Accepted, then Unknown).
#[test]
fn set_composite_clear_every_version() {
    for v in ALL {
        let mut pair = connected(v);
        let a = set(&mut pair, 0, tx_default(1, 0), amps(16));
        assert_eq!(a["status"], "Accepted", "{v}: {a}");
        let a = composite_call(&mut pair, 1, 3600, "W");
        assert_eq!(a["status"], "Accepted", "{v}");
        assert_eq!(
            answered_periods(v, &a),
            [(0, Decimal::from(11040))],
            "{v}: {a}"
        );
        if v == Version::V16 {
            assert_eq!(a["connectorId"], 1);
            assert_eq!(a["scheduleStart"], "2025-01-01T00:00:00Z");
            assert_eq!(a["chargingSchedule"]["duration"], 3600);
        } else {
            assert_eq!(a["schedule"]["evseId"], 1);
            assert_eq!(a["schedule"]["duration"], 3600);
            assert_eq!(a["schedule"]["chargingRateUnit"], "W");
        }
        // The applied limit: 16 A on 3 phases for the EVSE.
        let limit = pair.station.charging_limit(1).expect("a limit");
        assert_eq!(limit.current_a, Decimal::from(16));
        assert_eq!(limit.power_w, Decimal::from(11040));
        // Clear by id: Accepted; again: Unknown.
        let p = if v == Version::V16 {
            json!({ "id": 1 })
        } else {
            json!({ "chargingProfileId": 1 })
        };
        let id = pair.central_call("ClearChargingProfile", p.clone());
        assert_eq!(answer(&pair, &id)["status"], "Accepted", "{v}");
        let id = pair.central_call("ClearChargingProfile", p);
        assert_eq!(answer(&pair, &id)["status"], "Unknown", "{v}");
        assert_eq!(pair.station.charging_limit(1), None, "{v}");
        // No profile: the hardware limit (32 A on 3 phases).
        let a = composite_call(&mut pair, 0, 60, "A");
        assert_eq!(answered_periods(v, &a), [(0, Decimal::from(32))], "{v}");
        pair.assert_no_invalid_outgoing();
    }
}

/// ClearChargingProfile by purpose, by stack level, by EVSE, and everything.
#[test]
fn clear_by_criteria() {
    for v in ALL {
        let mut pair = connected(v);
        for (id, evse, stack) in [(1, 0, 0), (2, 1, 0), (3, 1, 1), (4, 0, 2)] {
            let a = set(&mut pair, evse, tx_default(id, stack), amps(10 + id));
            assert_eq!(a["status"], "Accepted", "{v}");
        }
        let max = json!({ "id": 9, "stackLevel": 0, "chargingProfilePurpose": "ChargingStationMaxProfile",
            "chargingProfileKind": "Absolute" });
        assert_eq!(
            set(&mut pair, 0, max, amps(30))["status"],
            "Accepted",
            "{v}"
        );
        let (by_stack, by_evse, by_purpose, all) = if v == Version::V16 {
            (
                json!({ "stackLevel": 1 }),
                json!({ "connectorId": 1 }),
                json!({ "chargingProfilePurpose": "ChargePointMaxProfile" }),
                json!({}),
            )
        } else {
            (
                json!({ "chargingProfileCriteria": { "stackLevel": 1 } }),
                json!({ "chargingProfileCriteria": { "evseId": 1 } }),
                json!({ "chargingProfileCriteria": { "chargingProfilePurpose": "ChargingStationMaxProfile" } }),
                json!({}),
            )
        };
        let ids = |pair: &VirtualPair| {
            let mut ids: Vec<i32> = pair
                .station
                .charging_profiles()
                .iter()
                .map(|i| i.profile.id)
                .collect();
            ids.sort_unstable();
            ids
        };
        let id = pair.central_call("ClearChargingProfile", by_stack.clone());
        assert_eq!(answer(&pair, &id)["status"], "Accepted", "{v}");
        assert_eq!(ids(&pair), [1, 2, 4, 9], "{v}");
        let id = pair.central_call("ClearChargingProfile", by_stack);
        assert_eq!(answer(&pair, &id)["status"], "Unknown", "{v}");
        let id = pair.central_call("ClearChargingProfile", by_evse);
        assert_eq!(answer(&pair, &id)["status"], "Accepted", "{v}");
        assert_eq!(ids(&pair), [1, 4, 9], "{v}");
        let id = pair.central_call("ClearChargingProfile", by_purpose);
        assert_eq!(answer(&pair, &id)["status"], "Accepted", "{v}");
        assert_eq!(ids(&pair), [1, 4], "{v}");
        let id = pair.central_call("ClearChargingProfile", all.clone());
        assert_eq!(answer(&pair, &id)["status"], "Accepted", "{v}");
        assert!(ids(&pair).is_empty(), "{v}");
        let id = pair.central_call("ClearChargingProfile", all);
        assert_eq!(answer(&pair, &id)["status"], "Unknown", "{v}");
    }
}

/// 1.6: the same purpose and stack level on a connector replaces (1.6 §5.16); 2.x refuses it
/// while the validity overlaps (2.0.1 K01.FR.06); the same id replaces in every version.
#[test]
fn replacement_rules() {
    for v in ALL {
        let mut pair = connected(v);
        assert_eq!(
            set(&mut pair, 1, tx_default(1, 3), amps(10))["status"],
            "Accepted"
        );
        // Same id: replaced.
        assert_eq!(
            set(&mut pair, 1, tx_default(1, 3), amps(12))["status"],
            "Accepted"
        );
        assert_eq!(pair.station.charging_profiles().len(), 1, "{v}");
        let a = set(&mut pair, 1, tx_default(2, 3), amps(14));
        if v == Version::V16 {
            assert_eq!(a["status"], "Accepted");
            let ids: Vec<i32> = pair
                .station
                .charging_profiles()
                .iter()
                .map(|i| i.profile.id)
                .collect();
            assert_eq!(ids, [2]);
        } else {
            assert_eq!(a["status"], "Rejected", "{v}");
            assert_eq!(a["statusInfo"]["reasonCode"], "DuplicateProfile", "{v}");
            // Validity periods that do not overlap: accepted.
            let mut until = tx_default(5, 4);
            until["validTo"] = json!("2026-01-01T00:00:00Z");
            assert_eq!(
                set(&mut pair, 1, until, amps(14))["status"],
                "Accepted",
                "{v}"
            );
            let mut later = tx_default(6, 4);
            later["validFrom"] = json!("2026-01-01T00:00:00Z");
            assert_eq!(
                set(&mut pair, 1, later, amps(14))["status"],
                "Accepted",
                "{v}"
            );
            let mut overlapping = tx_default(7, 4);
            overlapping["validFrom"] = json!("2025-12-31T00:00:00Z");
            assert_eq!(
                set(&mut pair, 1, overlapping, amps(14))["status"],
                "Rejected",
                "{v}"
            );
        }
    }
}

/// Every rejection, with its exact answer: 1.6 `Rejected`; 2.x `Rejected` and the reason code.
#[test]
fn every_rejection_has_its_answer() {
    let period = |start: i64, limit: Value| json!({ "startPeriod": start, "limit": limit });
    let sched = |periods: Vec<Value>| {
        json!({ "startSchedule": "2025-01-01T00:00:00Z", "chargingRateUnit": "A",
                "chargingSchedulePeriod": periods })
    };
    for v in ALL {
        let v16 = v == Version::V16;
        let mut pair = connected(v);
        let tx = |id: i64| {
            json!({ "id": id, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
                    "chargingProfileKind": "Relative", "transactionId": "1" })
        };
        let max = json!({ "id": 3, "stackLevel": 0, "chargingProfilePurpose": "ChargingStationMaxProfile",
            "chargingProfileKind": "Absolute" });
        let mut max_relative = max.clone();
        max_relative["chargingProfileKind"] = json!("Relative");
        let mut cases: Vec<(&str, i64, Value, Value, &str)> = vec![
            (
                "TxProfile without a transaction",
                1,
                tx(1),
                relative_amps(10),
                "TxNotFound",
            ),
            (
                "TxProfile for EVSE 0",
                0,
                tx(1),
                relative_amps(10),
                "InvalidValue",
            ),
            (
                "unknown EVSE",
                2,
                tx_default(1, 0),
                amps(10),
                "InvalidValue",
            ),
            (
                "station maximum on an EVSE",
                1,
                max.clone(),
                amps(10),
                "InvalidValue",
            ),
            (
                "relative station maximum",
                0,
                max_relative,
                relative_amps(10),
                "InvalidValue",
            ),
            (
                "stack level above the bound",
                0,
                tx_default(1, 101),
                amps(10),
                "InvalidStackLevel",
            ),
            (
                "negative stack level",
                0,
                tx_default(1, -1),
                amps(10),
                "InvalidStackLevel",
            ),
            (
                "negative limit",
                0,
                tx_default(1, 0),
                sched(vec![period(0, json!(-1))]),
                "InvalidSchedule",
            ),
            (
                "limit above the bound",
                0,
                tx_default(1, 0),
                sched(vec![period(0, json!(1_000_000_001))]),
                "InvalidSchedule",
            ),
            (
                "periods out of order",
                0,
                tx_default(1, 0),
                sched(vec![
                    period(0, json!(6)),
                    period(600, json!(8)),
                    period(600, json!(9)),
                ]),
                "InvalidSchedule",
            ),
            (
                "negative startPeriod",
                0,
                tx_default(1, 0),
                sched(vec![period(0, json!(6)), period(-5, json!(8))]),
                "InvalidSchedule",
            ),
            (
                "numberPhases 4",
                0,
                tx_default(1, 0),
                sched(vec![
                    json!({ "startPeriod": 0, "limit": 6, "numberPhases": 4 }),
                ]),
                "InvalidSchedule",
            ),
            (
                "negative duration",
                0,
                tx_default(1, 0),
                json!({ "startSchedule": "2025-01-01T00:00:00Z", "duration": -1, "chargingRateUnit": "A",
                        "chargingSchedulePeriod": [period(0, json!(6))] }),
                "InvalidSchedule",
            ),
            (
                "recurring without recurrencyKind",
                0,
                json!({ "id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
                        "chargingProfileKind": "Recurring" }),
                amps(10),
                "InvalidSchedule",
            ),
            (
                "recurring without startSchedule",
                0,
                json!({ "id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
                        "chargingProfileKind": "Recurring", "recurrencyKind": "Daily" }),
                relative_amps(10),
                "InvalidSchedule",
            ),
            (
                "validTo before validFrom",
                0,
                json!({ "id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
                        "chargingProfileKind": "Absolute", "validFrom": "2025-02-01T00:00:00Z",
                        "validTo": "2025-01-01T00:00:00Z" }),
                amps(10),
                "InvalidValue",
            ),
        ];
        if !v16 {
            cases.extend([
                ("external constraints from the CSMS", 0,
                    json!({ "id": 1, "stackLevel": 0, "chargingProfilePurpose": "ChargingStationExternalConstraints",
                            "chargingProfileKind": "Absolute" }), amps(10), "DuplicateProfile"),
                ("relative with startSchedule", 0,
                    json!({ "id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
                            "chargingProfileKind": "Relative" }), amps(10), "InvalidSchedule"),
                ("absolute without startSchedule", 0, tx_default(1, 0), relative_amps(10), "InvalidSchedule"),
                ("first period not at 0", 0, tx_default(1, 0), sched(vec![period(60, json!(6))]), "InvalidSchedule"),
                ("phaseToUse without numberPhases 1", 0, tx_default(1, 0),
                    sched(vec![json!({ "startPeriod": 0, "limit": 6, "phaseToUse": 2 })]), "InvalidSchedule"),
            ]);
        }
        for (what, evse, profile, schedule, reason) in cases {
            // 2.1's schemas set minimums and maximums 2.0.1's and 1.6's do not: the codec
            // refuses those with the schema's CALLERROR before the station sees them.
            if v == Version::V21 && matches!(what, "negative stack level" | "numberPhases 4") {
                let id = pair.central_call(
                    "SetChargingProfile",
                    set_payload(v, evse, profile, schedule),
                );
                assert_eq!(
                    pair.central.answer(&id),
                    Some(&Err("PropertyConstraintViolation".to_owned())),
                    "{v} {what}"
                );
                continue;
            }
            let a = set(&mut pair, evse, profile, schedule);
            assert_eq!(a["status"], "Rejected", "{v} {what}: {a}");
            if !v16 {
                assert_eq!(a["statusInfo"]["reasonCode"], reason, "{v} {what}");
            }
        }
        assert!(pair.station.charging_profiles().is_empty(), "{v}");
        // With a transaction: a TxProfile naming another transaction, or (2.x) none.
        let tx_id = start_tx(&mut pair);
        let mut other = tx(7);
        other["transactionId"] = json!("999");
        let a = set(&mut pair, 1, other, relative_amps(10));
        assert_eq!(a["status"], "Rejected", "{v}");
        if !v16 {
            assert_eq!(a["statusInfo"]["reasonCode"], "TxNotFound");
            let mut missing = tx(7);
            missing.as_object_mut().map(|o| o.remove("transactionId"));
            let a = set(&mut pair, 1, missing, relative_amps(10));
            assert_eq!(a["statusInfo"]["reasonCode"], "MissingParam", "{v}");
            // A second TxProfile at the same stack level (2.0.1 K01.FR.39).
            let mut first = tx(7);
            first["transactionId"] = json!(tx_id);
            assert_eq!(
                set(&mut pair, 1, first, relative_amps(10))["status"],
                "Accepted"
            );
            let mut second = tx(8);
            second["transactionId"] = json!(tx_id);
            let a = set(&mut pair, 1, second, relative_amps(12));
            assert_eq!(a["statusInfo"]["reasonCode"], "InvalidStackLevel", "{v}");
        }
        pair.assert_no_invalid_outgoing();
    }
}

/// The bounds: more periods than the bound (1.6: 30,000, what fits in a 1 MiB message; 2.x:
/// the schema's 1024, and one more is the schema's CALLERROR) and one profile beyond the
/// per-EVSE bound are Rejected, without a panic; GetCompositeSchedule with i32::MAX duration
/// answers.
#[test]
fn wire_extremes() {
    let many = |n: i64| {
        let periods: Vec<Value> = (0..n)
            .map(|i| json!({ "startPeriod": i, "limit": 6 }))
            .collect();
        json!({ "startSchedule": "2025-01-01T00:00:00Z", "chargingRateUnit": "A",
                "chargingSchedulePeriod": periods })
    };
    for v in ALL {
        let mut pair = connected(v);
        let n = if v == Version::V16 { 30_000 } else { 1024 };
        let a = set(&mut pair, 0, tx_default(1, 0), many(n));
        assert_eq!(a["status"], "Rejected", "{v}");
        if v != Version::V16 {
            let id = pair.central_call(
                "SetChargingProfile",
                set_payload(v, 0, tx_default(1, 0), many(1025)),
            );
            assert_eq!(
                pair.central.answer(&id),
                Some(&Err("OccurrenceConstraintViolation".to_owned())),
                "{v}"
            );
        }
        for id in 0..16 {
            assert_eq!(
                set(&mut pair, 1, tx_default(id, id), amps(6))["status"],
                "Accepted",
                "{v}"
            );
        }
        let a = set(&mut pair, 1, tx_default(99, 50), amps(6));
        assert_eq!(a["status"], "Rejected", "{v}");
        if v != Version::V16 {
            assert_eq!(a["statusInfo"]["reasonCode"], "NoResources");
        }
        // Replacing one of the 16 still works.
        assert_eq!(
            set(&mut pair, 1, tx_default(3, 3), amps(8))["status"],
            "Accepted",
            "{v}"
        );
        // Year 9999 and i32::MAX offsets are accepted and evaluated.
        let far = json!({ "startSchedule": "9999-12-31T23:59:59Z", "duration": i32::MAX,
            "chargingRateUnit": "W", "chargingSchedulePeriod": [
                { "startPeriod": 0, "limit": 1 }, { "startPeriod": i32::MAX, "limit": 2 }] });
        assert_eq!(
            set(&mut pair, 0, tx_default(100, 0), far)["status"],
            "Accepted",
            "{v}"
        );
        let a = composite_call(&mut pair, 1, i64::from(i32::MAX), "A");
        assert_eq!(a["status"], "Accepted", "{v}");
        let a = composite_call(&mut pair, 1, -1, "A");
        assert_eq!(a["status"], "Rejected", "{v}");
        let a = composite_call(&mut pair, 2, 60, "A");
        assert_eq!(a["status"], "Rejected", "{v}");
        pair.assert_no_invalid_outgoing();
    }
}

/// 60,000 periods handed to the station by its application: refused by the bound.
#[test]
fn sixty_thousand_periods_are_refused() {
    let mut pair = connected(Version::V201);
    let periods: Vec<Period> = (0..60_000).map(|i| Period::new(i, Decimal::ONE)).collect();
    let profile = ChargingProfile {
        id: 1,
        stack_level: 0,
        purpose: Purpose::ExternalConstraints,
        kind: Kind::Absolute,
        valid_from: None,
        valid_to: None,
        transaction_id: None,
        schedules: vec![Schedule {
            id: None,
            start_schedule: Some(at("2025-01-01T00:00:00Z")),
            duration: None,
            charging_rate_unit: RateUnit::A,
            periods,
            min_charging_rate: None,
        }],
        original: None,
    };
    let mut result = None;
    pair.station_input(|s, now| {
        result = Some(s.set_external_constraints(now, 0, profile, Source::Ems));
    });
    assert_eq!(
        result,
        Some(Err(
            ocpp_charger::smart_charging::Rejection::TooManyPeriods(60_000, 96)
        ))
    );
    assert!(pair.station.charging_profiles().is_empty());
}

/// A unit the station does not take: SetChargingProfile and GetCompositeSchedule are
/// Rejected (2.0.1 K01.FR.26; K08 for the composite).
#[test]
fn unsupported_unit() {
    for v in ALL {
        let mut pair = connected_with(v, |c| {
            c.smart_charging(SmartChargingConfig {
                units: vec![RateUnit::A],
                ..SmartChargingConfig::default()
            })
        });
        let w = json!({ "startSchedule": "2025-01-01T00:00:00Z", "chargingRateUnit": "W",
                        "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": 6000 }] });
        let a = set(&mut pair, 0, tx_default(1, 0), w);
        assert_eq!(a["status"], "Rejected", "{v}");
        if v != Version::V16 {
            assert_eq!(a["statusInfo"]["reasonCode"], "UnsupportedRateUnit");
        }
        assert_eq!(
            composite_call(&mut pair, 1, 60, "W")["status"],
            "Rejected",
            "{v}"
        );
        assert_eq!(
            composite_call(&mut pair, 1, 60, "A")["status"],
            "Accepted",
            "{v}"
        );
    }
}

/// The profiles survive a restart of the station (the state document), and the limit is
/// applied again.
#[test]
fn profiles_survive_a_restart() {
    for v in ALL {
        let mut pair = connected(v);
        assert_eq!(
            set(&mut pair, 0, tx_default(1, 0), amps(16))["status"],
            "Accepted"
        );
        let max = json!({ "id": 2, "stackLevel": 1, "chargingProfilePurpose": "ChargingStationMaxProfile",
            "chargingProfileKind": "Absolute" });
        assert_eq!(set(&mut pair, 0, max, amps(10))["status"], "Accepted");
        let before = pair.station.charging_profiles().to_vec();
        let composite = composite_call(&mut pair, 1, 3600, "A");
        let VirtualPair {
            station,
            store,
            central,
            clock,
            ..
        } = pair;
        drop(station);
        drop(central);
        let config = test_config(v, &clock);
        let mut pair = VirtualPair::with(config, store, MockCentral::new(v), clock);
        assert_eq!(pair.station.charging_profiles(), before.as_slice(), "{v}");
        pair.connect();
        assert_eq!(
            pair.station.charging_limit(1).map(|l| l.current_a),
            Some(Decimal::from(10)),
            "{v}"
        );
        let again = composite_call(&mut pair, 1, 3600, "A");
        assert_eq!(
            answered_periods(v, &again),
            answered_periods(v, &composite),
            "{v}"
        );
    }
}

/// The simulated EV draws no more than the limit: its meter values show it, and the limit
/// follows the period boundaries on virtual time.
#[test]
fn the_simulated_ev_follows_the_limit() {
    for v in ALL {
        let mut pair = connected_with(v, |c| {
            c.setting(
                Setting::SampledMeasurands,
                "Energy.Active.Import.Register,Power.Active.Import",
            )
            .setting(Setting::SampleInterval, "60")
        });
        let tx_id = start_tx(&mut pair);
        // 10 A on one phase (2300 W) for 150 s, then 5 A (1150 W).
        let profile = json!({ "id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative", "transactionId": tx_id });
        let sched = json!({ "chargingRateUnit": "A", "chargingSchedulePeriod": [
            { "startPeriod": 0, "limit": 10, "numberPhases": 1 },
            { "startPeriod": 150, "limit": 5, "numberPhases": 1 }] });
        assert_eq!(
            set(&mut pair, 1, profile, sched)["status"],
            "Accepted",
            "{v}"
        );
        assert_eq!(
            pair.station.charging_limit(1).map(|l| l.power_w),
            Some(Decimal::from(2300)),
            "{v}"
        );
        pair.advance(Duration::from_secs(300));
        assert_eq!(
            pair.station.charging_limit(1).map(|l| l.power_w),
            Some(Decimal::from(1150)),
            "{v}"
        );
        let samples = power_samples(&pair);
        // The start's reading (7400 W, no limit yet), then one sample a minute.
        assert_eq!(
            &samples[samples.len() - 5..],
            [2300, 2300, 1150, 1150, 1150].map(Decimal::from),
            "{v}: {samples:?}"
        );
        // The transaction ends: its TxProfile goes, the limit is lifted.
        pair.unplug(1);
        assert!(pair.station.transaction(1).is_none(), "{v}");
        assert!(pair.station.charging_profiles().is_empty(), "{v}");
        assert_eq!(pair.station.charging_limit(1), None, "{v}");
        pair.assert_no_invalid_outgoing();
    }
}

/// RemoteStartTransaction's (1.6) / RequestStartTransaction's (2.x) chargingProfile is the
/// transaction's TxProfile (2.x: with the transaction's id); one that is not a TxProfile
/// refuses the start.
#[test]
fn remote_start_profile_becomes_the_tx_profile() {
    for v in ALL {
        let mut pair = connected(v);
        let sched = schedule(v, relative_amps(8));
        let (action, start, bad) = if v == Version::V16 {
            (
                "RemoteStartTransaction",
                json!({ "connectorId": 1, "idTag": "REMOTE1", "chargingProfile": {
                    "chargingProfileId": 5, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
                    "chargingProfileKind": "Relative", "chargingSchedule": sched } }),
                "TxDefaultProfile",
            )
        } else {
            (
                "RequestStartTransaction",
                json!({ "evseId": 1, "remoteStartId": 1, "idToken": { "idToken": "REMOTE1", "type": "Central" },
                    "chargingProfile": { "id": 5, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
                    "chargingProfileKind": "Relative", "chargingSchedule": sched } }),
                "TxDefaultProfile",
            )
        };
        let mut refused = start.clone();
        refused["chargingProfile"]["chargingProfilePurpose"] = json!(bad);
        let id = pair.central_call(action, refused);
        assert_eq!(answer(&pair, &id)["status"], "Rejected", "{v}");
        let id = pair.central_call(action, start);
        assert_eq!(answer(&pair, &id)["status"], "Accepted", "{v}");
        pair.plug_in(1);
        let tx = pair.station.transaction(1).expect("a transaction");
        let profiles = pair.station.charging_profiles();
        assert_eq!(profiles.len(), 1, "{v}");
        assert_eq!(profiles[0].profile.purpose, Purpose::Tx);
        assert_eq!(profiles[0].tx_local, Some(tx.local_id));
        if v != Version::V16 {
            assert_eq!(profiles[0].profile.transaction_id, tx.transaction_id, "{v}");
        }
        assert_eq!(
            pair.station.charging_limit(1).map(|l| l.current_a),
            Some(Decimal::from(8)),
            "{v}"
        );
        pair.unplug(1);
        assert!(pair.station.charging_profiles().is_empty(), "{v}");
        pair.assert_no_invalid_outgoing();
    }
}

/// A remote start's profile that no transaction took within `ConnectionTimeOut` (plus the
/// call timeout) is forgotten: the same token presented later starts a transaction without it.
#[test]
fn an_unused_remote_start_profile_expires() {
    for v in ALL {
        let mut pair = connected_with(v, |c| c.setting(Setting::ConnectionTimeout, "30"));
        let sched = schedule(v, relative_amps(8));
        let (action, start) = if v == Version::V16 {
            (
                "RemoteStartTransaction",
                json!({ "connectorId": 1, "idTag": "REMOTE1", "chargingProfile": {
                    "chargingProfileId": 5, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
                    "chargingProfileKind": "Relative", "chargingSchedule": sched } }),
            )
        } else {
            (
                "RequestStartTransaction",
                json!({ "evseId": 1, "remoteStartId": 1, "idToken": { "idToken": "REMOTE1", "type": "Central" },
                    "chargingProfile": { "id": 5, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
                    "chargingProfileKind": "Relative", "chargingSchedule": sched } }),
            )
        };
        let id = pair.central_call(action, start);
        assert_eq!(answer(&pair, &id)["status"], "Accepted", "{v}");
        pair.advance(Duration::from_secs(61));
        pair.plug_in(1);
        pair.present(1, "REMOTE1");
        assert!(pair.station.transaction(1).is_some(), "{v}");
        assert!(pair.station.charging_profiles().is_empty(), "{v}");
        assert_eq!(pair.station.charging_limit(1), None, "{v}");
    }
}

/// 2.x GetChargingProfiles: NoProfiles, or Accepted and ReportChargingProfiles split by
/// `profiles_per_report` with `tbc`; external constraints are reported (source EMS), not
/// settable or clearable by the CSMS.
#[test]
fn get_charging_profiles_reports_v2x() {
    for v in V2X {
        let mut pair = connected_with(v, |c| {
            c.smart_charging(SmartChargingConfig {
                profiles_per_report: 4,
                ..SmartChargingConfig::default()
            })
        });
        let id = pair.central_call(
            "GetChargingProfiles",
            json!({ "requestId": 1, "chargingProfile": {} }),
        );
        assert_eq!(answer(&pair, &id)["status"], "NoProfiles", "{v}");
        for i in 0..10 {
            assert_eq!(
                set(&mut pair, 1, tx_default(i, i), amps(6))["status"],
                "Accepted"
            );
        }
        let ext = p16(json!({ "chargingProfileId": 77, "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
            "chargingSchedule": { "startSchedule": "2025-01-01T00:00:00Z", "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": 4 }] } }));
        let ext = ChargingProfile {
            purpose: Purpose::ExternalConstraints,
            ..ext
        };
        pair.station_input(|s, now| {
            s.set_external_constraints(now, 0, ext, Source::Ems)
                .expect("accepted");
        });
        // The external constraint (4 A) caps the EVSE.
        assert_eq!(
            pair.station.charging_limit(1).map(|l| l.current_a),
            Some(Decimal::from(4))
        );
        let id = pair.central_call(
            "GetChargingProfiles",
            json!({ "requestId": 42, "chargingProfile": {} }),
        );
        assert_eq!(answer(&pair, &id)["status"], "Accepted", "{v}");
        let reports = pair.central.payloads("ReportChargingProfiles");
        let shape: Vec<(i64, &str, usize, bool)> = reports
            .iter()
            .map(|r| {
                (
                    r["evseId"].as_i64().unwrap_or(-1),
                    r["chargingLimitSource"].as_str().unwrap_or(""),
                    r["chargingProfile"].as_array().map_or(0, Vec::len),
                    r["tbc"].as_bool().unwrap_or(false),
                )
            })
            .collect();
        assert_eq!(
            shape,
            [
                (0, "EMS", 1, true),
                (1, "CSO", 4, true),
                (1, "CSO", 4, true),
                (1, "CSO", 2, false)
            ],
            "{v}"
        );
        assert!(reports.iter().all(|r| r["requestId"] == 42));
        // The profile goes back as it was received.
        let limit = &reports[1]["chargingProfile"][0]["chargingSchedule"][0]
            ["chargingSchedulePeriod"][0]["limit"];
        assert_eq!(dec(&limit.to_string()), Decimal::from(6), "{v}");
        // By criteria: stack level 3, or ids.
        let id = pair.central_call(
            "GetChargingProfiles",
            json!({ "requestId": 43, "evseId": 1, "chargingProfile": { "stackLevel": 3 } }),
        );
        assert_eq!(answer(&pair, &id)["status"], "Accepted");
        let last = pair
            .central
            .payloads("ReportChargingProfiles")
            .last()
            .map(|r| (*r).clone());
        assert_eq!(
            last.map(|r| r["chargingProfile"][0]["id"].clone()),
            Some(json!(3))
        );
        let id = pair.central_call(
            "GetChargingProfiles",
            json!({ "requestId": 44, "chargingProfile": { "chargingProfileId": [123] } }),
        );
        assert_eq!(answer(&pair, &id)["status"], "NoProfiles");
        // The CSMS cannot clear the external constraints.
        let id = pair.central_call("ClearChargingProfile", json!({ "chargingProfileId": 77 }));
        assert_eq!(answer(&pair, &id)["status"], "Unknown", "{v}");
        pair.station_input(|s, now| assert!(s.clear_external_constraints(now, 77)));
        assert_eq!(
            pair.station.charging_limit(1).map(|l| l.current_a),
            Some(Decimal::from(6))
        );
        pair.assert_no_invalid_outgoing();
    }
}

/// The model converts from and back to each version's type without loss.
#[test]
fn conversions_round_trip() {
    let wire: v16::ChargingProfile = serde_json::from_value(json!({
        "chargingProfileId": 3, "transactionId": 12, "stackLevel": 2,
        "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Recurring",
        "recurrencyKind": "Weekly", "validFrom": "2025-01-01T00:00:00Z", "validTo": "2025-02-01T00:00:00Z",
        "chargingSchedule": { "duration": 600, "startSchedule": "2025-01-01T00:00:00Z",
            "chargingRateUnit": "W", "minChargingRate": 1.5,
            "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": 11000.5, "numberPhases": 2 }] }
    }))
    .expect("a 1.6 profile");
    let p = ChargingProfile::from_v16(&wire);
    assert_eq!(
        p.kind,
        Kind::Recurring(Some(ocpp_charger::smart_charging::Recurrency::Weekly))
    );
    assert_eq!(p.transaction_id.as_deref(), Some("12"));
    assert_eq!(p.to_v16(), wire);
    let wire: v201::ChargingProfileType = serde_json::from_value(json!({
        "id": 3, "stackLevel": 2, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Absolute",
        "chargingSchedule": [{ "id": 9, "startSchedule": "2025-01-01T00:00:00Z", "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": 16, "numberPhases": 1, "phaseToUse": 2 }] }]
    }))
    .expect("a 2.0.1 profile");
    let p = ChargingProfile::from_v201(&wire);
    assert_eq!(p.schedules[0].periods[0].phase_to_use, Some(2));
    assert_eq!(p.to_v201(), wire);
    // Without the original, from the neutral fields.
    let neutral = ChargingProfile {
        original: None,
        ..p
    };
    assert_eq!(neutral.to_v201(), wire);
}

/// 2.1 additions are stored and reported back as received (not applied): a profile's
/// `maxOfflineDuration`, a period's `setpoint`, a `PriorityCharging` profile.
#[test]
fn v21_additions_are_kept_and_reported() {
    let mut pair = connected(Version::V21);
    let sched = json!([{ "id": 1, "startSchedule": "2025-01-01T00:00:00Z", "chargingRateUnit": "W",
        "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": 7000, "setpoint": 5000 }] }]);
    let p = json!({ "evseId": 1, "chargingProfile": { "id": 1, "stackLevel": 0,
        "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
        "maxOfflineDuration": 300, "chargingSchedule": sched } });
    let id = pair.central_call("SetChargingProfile", p);
    assert_eq!(answer(&pair, &id)["status"], "Accepted");
    let prio = json!({ "evseId": 1, "chargingProfile": { "id": 2, "stackLevel": 0,
        "chargingProfilePurpose": "PriorityCharging", "chargingProfileKind": "Absolute",
        "chargingSchedule": [{ "id": 2, "startSchedule": "2025-01-01T00:00:00Z", "chargingRateUnit": "W",
            "chargingSchedulePeriod": [{ "startPeriod": 0, "limit": 1000 }] }] } });
    let id = pair.central_call("SetChargingProfile", prio);
    assert_eq!(answer(&pair, &id)["status"], "Accepted");
    // The PriorityCharging profile is not applied: the limit is the TxDefaultProfile's.
    assert_eq!(
        pair.station.charging_limit(1).map(|l| l.power_w),
        Some(Decimal::from(7000))
    );
    let id = pair.central_call(
        "GetChargingProfiles",
        json!({ "requestId": 5, "chargingProfile": {} }),
    );
    assert_eq!(answer(&pair, &id)["status"], "Accepted");
    let reports = pair.central.payloads("ReportChargingProfiles");
    let profiles = reports[0]["chargingProfile"].as_array().expect("profiles");
    assert_eq!(profiles[0]["maxOfflineDuration"], 300);
    let setpoint = &profiles[0]["chargingSchedule"][0]["chargingSchedulePeriod"][0]["setpoint"];
    assert_eq!(dec(&setpoint.to_string()), Decimal::from(5000));
    assert_eq!(profiles[1]["chargingProfilePurpose"], "PriorityCharging");
    pair.assert_no_invalid_outgoing();
}

/// The application decides: an override of the smart-charging block sees every
/// SetChargingProfile and can still use the built-in store (`app::BuiltIn`).
#[test]
fn an_application_overrides_and_calls_the_built_in() {
    use ocpp_charger::app::{Application, BuiltIn, CallError, Context, SmartCharging};
    #[derive(Default)]
    struct Logger {
        seen: std::sync::Arc<std::sync::Mutex<Vec<i32>>>,
    }
    impl SmartCharging for Logger {
        fn set_charging_profile_v201(
            &mut self,
            ctx: &mut Context<'_>,
            request: v201::SetChargingProfileRequest,
        ) -> Result<v201::SetChargingProfileResponse, CallError> {
            if let Ok(mut seen) = self.seen.lock() {
                seen.push(request.charging_profile.id);
            }
            SmartCharging::set_charging_profile_v201(&mut BuiltIn, ctx, request)
        }
    }
    impl Application for Logger {
        fn smart_charging(&mut self) -> Option<&mut dyn SmartCharging> {
            Some(self)
        }
    }
    let app = Logger::default();
    let seen = app.seen.clone();
    let mut pair = connected_with(Version::V201, |c| c.application(app));
    assert_eq!(
        set(&mut pair, 0, tx_default(4, 0), amps(10))["status"],
        "Accepted"
    );
    assert_eq!(seen.lock().map(|s| s.clone()).unwrap_or_default(), [4]);
    assert_eq!(pair.station.charging_profiles().len(), 1);
    assert_eq!(
        pair.station.charging_limit(1).map(|l| l.current_a),
        Some(Decimal::from(10))
    );
}

/// The bounds are reported in the version's configuration keys (1.6) and SmartChargingCtrlr
/// variables (2.x), with the station's configured values.
#[test]
fn bounds_are_reported_in_the_settings() {
    let config = |c: ocpp_charger::StationConfig| {
        c.evses(2).smart_charging(SmartChargingConfig {
            max_periods: 24,
            max_stack_level: 9,
            max_profiles_per_evse: 5,
            units: vec![RateUnit::W],
            ..SmartChargingConfig::default()
        })
    };
    let mut pair = connected_with(Version::V16, config);
    let id = pair.central_call(
        "GetConfiguration",
        json!({ "key": ["ChargeProfileMaxStackLevel", "ChargingScheduleAllowedChargingRateUnit",
                        "ChargingScheduleMaxPeriods", "MaxChargingProfilesInstalled"] }),
    );
    let a = answer(&pair, &id);
    let values: Vec<(&str, &str, bool)> = a["configurationKey"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| {
            (
                k["key"].as_str().unwrap_or(""),
                k["value"].as_str().unwrap_or(""),
                k["readonly"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        values,
        [
            ("ChargeProfileMaxStackLevel", "9", true),
            ("ChargingScheduleAllowedChargingRateUnit", "Power", true),
            ("ChargingScheduleMaxPeriods", "24", true),
            ("MaxChargingProfilesInstalled", "15", true),
        ]
    );
    for v in V2X {
        let mut pair = connected_with(v, config);
        let var = |name: &str, instance: Option<&str>| {
            let mut variable = json!({ "name": name });
            if let Some(i) = instance {
                variable["instance"] = json!(i);
            }
            json!({ "component": { "name": "SmartChargingCtrlr" }, "variable": variable })
        };
        let id = pair.central_call(
            "GetVariables",
            json!({ "getVariableData": [
                var("PeriodsPerSchedule", None), var("ProfileStackLevel", None),
                var("RateUnit", None), var("Entries", Some("ChargingProfiles")),
                var("Enabled", None)] }),
        );
        let a = answer(&pair, &id);
        let values: Vec<&str> = a["getVariableResult"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| r["attributeValue"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(values, ["24", "9", "W", "15", "true"], "{v}");
    }
}

/// Two profiles of one purpose and stack level (which the validation keeps apart, but a store
/// written by another version may hold) with the same power: 66 A on one phase and 15,180 W on
/// two. Whichever was set first, the composite is the same (found by `order_does_not_matter`).
#[test]
fn a_tie_on_stack_level_and_power_does_not_depend_on_the_order() {
    let profile = |unit: RateUnit, limit: u32, phases: i32| ChargingProfile {
        id: 0,
        stack_level: 3,
        purpose: Purpose::TxDefault,
        kind: Kind::Absolute,
        valid_from: None,
        valid_to: None,
        transaction_id: None,
        schedules: vec![Schedule {
            id: None,
            start_schedule: Some(at("2025-01-01T00:00:00Z")),
            duration: None,
            charging_rate_unit: unit,
            periods: vec![Period {
                start_period: 0,
                limit: Some(Decimal::from(limit)),
                number_phases: Some(phases),
                phase_to_use: None,
                v2x: None,
            }],
            min_charging_rate: None,
        }],
        original: None,
    };
    let amps = on(1, profile(RateUnit::A, 66, 1));
    let watts = on(1, profile(RateUnit::W, 15_180, 2));
    let one = comp(&[amps.clone(), watts.clone()]);
    let other = comp(&[watts, amps]);
    assert_eq!(one, other);
    assert_eq!(one.periods.len(), 1);
    assert_eq!(one.periods[0].limit, Decimal::from(15_180));
    assert_eq!(
        one.periods[0].number_phases, 1,
        "the fewer phases win a tie"
    );
}
