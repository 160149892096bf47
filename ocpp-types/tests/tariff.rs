//! The 2.1 tariff model and cost calculator (`ocpp_types::tariff`): worked examples with
//! exact numbers, the bounds and extremes, and properties over generated tariffs.

use chrono::{DateTime, Duration, Utc};
use ocpp_types::tariff::{
    ConditionKind, CostBreakdown, CostContext, CostError, CostMeter, Refusal, Tariff, TariffError,
    TariffLimits, Usage, MAX_STEPS,
};
use ocpp_types::v21::TariffType;
use ocpp_types::Decimal;
use proptest::prelude::*;
use serde_json::json;

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn tariff(v: serde_json::Value) -> Tariff {
    let wire: TariffType = serde_json::from_value(v).unwrap();
    Tariff::new(&wire, 100).unwrap()
}

fn usage(start: DateTime<Utc>, secs: i64, wh: &str, charging: bool) -> Usage {
    Usage {
        start,
        end: start + Duration::seconds(secs),
        energy_wh: d(wh),
        charging,
        current_a: None,
    }
}

#[test]
fn energy_time_idle_fixed_and_taxes_are_exact() {
    let tf = tariff(json!({
        "tariffId": "t1", "currency": "EUR",
        "energy": {"prices": [{"priceKwh": 0.30}], "taxRates": [{"type": "VAT", "tax": 21}]},
        "chargingTime": {"prices": [{"priceMinute": 0.05}]},
        "idleTime": {"prices": [{"priceMinute": 0.10, "conditions": {"minIdleTime": 600}}]},
        "fixedFee": {"prices": [{"priceFixed": 1.00}], "taxRates": [{"type": "VAT", "tax": 21}]}
    }));
    let start = t("2026-03-02T10:00:00Z");
    let mut m = CostMeter::new(tf.clone(), CostContext::default(), start).unwrap();
    // 30 minutes charging, 11 kWh: 3.30 energy (+21% = 3.993), 1.50 time.
    m.add(&usage(start, 1800, "11000", true)).unwrap();
    // 20 minutes idle: the first 10 minutes are free, the next 10 cost 1.00.
    m.add(&usage(start + Duration::seconds(1800), 1200, "0", false))
        .unwrap();
    let b = m.breakdown();
    assert_eq!(b.energy.excl, d("3.3"));
    assert_eq!(b.energy.incl, d("3.993"));
    assert_eq!(b.charging_time.excl, d("1.5"));
    assert_eq!(b.idle_time.excl, d("1.0"));
    assert_eq!(b.fixed.excl, d("1.00"));
    assert_eq!(b.fixed.incl, d("1.21"));
    assert_eq!(b.total.excl, d("6.8"));
    assert_eq!(b.total.incl, d("7.703"));
    assert_eq!((b.charging_s, b.idle_s), (1800, 1200));
    let r = b.rounded(2, &tf).unwrap();
    assert_eq!(r.energy.incl, d("3.99"));
    assert_eq!(r.total.incl, d("7.70"));
    assert_eq!(r.tax(), d("0.90"));
}

#[test]
fn stacked_taxes_compound() {
    let tf = tariff(json!({
        "tariffId": "t", "currency": "EUR",
        "fixedFee": {"prices": [{"priceFixed": 100}],
            "taxRates": [{"type": "A", "tax": 10}, {"type": "B", "tax": 5, "stack": 1}]}
    }));
    let m = CostMeter::new(tf, CostContext::default(), t("2026-01-01T00:00:00Z")).unwrap();
    // 100 + 10% = 110, then + 5% = 115.5.
    assert_eq!(m.breakdown().fixed.incl, d("115.5"));
}

#[test]
fn energy_steps_split_exactly_inside_one_interval() {
    let tf = tariff(json!({
        "tariffId": "t", "currency": "EUR",
        "energy": {"prices": [
            {"priceKwh": 0.50, "conditions": {"maxEnergy": 10000}},
            {"priceKwh": 0.30}
        ]}
    }));
    let start = t("2026-01-01T00:00:00Z");
    let mut m = CostMeter::new(tf, CostContext::default(), start).unwrap();
    m.add(&usage(start, 3600, "15000", true)).unwrap();
    // 10 kWh at 0.50 and 5 kWh at 0.30.
    assert_eq!(m.breakdown().energy.excl, d("6.5"));
}

#[test]
fn time_of_day_and_day_of_week_split_at_the_boundary_in_local_time() {
    let tf = tariff(json!({
        "tariffId": "t", "currency": "EUR",
        "chargingTime": {"prices": [
            {"priceMinute": 0.20, "conditions": {"startTimeOfDay": "08:00", "endTimeOfDay": "20:00",
                "dayOfWeek": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]}},
            {"priceMinute": 0.10}
        ]}
    }));
    let ctx = CostContext {
        utc_offset_s: 3600,
        ..CostContext::default()
    };
    // Monday 18:00Z = 19:00 local; two hours: one at 0.20, one at 0.10.
    let start = t("2026-03-02T18:00:00Z");
    let mut m = CostMeter::new(tf.clone(), ctx.clone(), start).unwrap();
    m.add(&usage(start, 7200, "0", true)).unwrap();
    assert_eq!(m.breakdown().charging_time.excl, d("18"));
    // Saturday the same hours: all at 0.10.
    let sat = t("2026-03-07T18:00:00Z");
    let mut m = CostMeter::new(tf, ctx, sat).unwrap();
    m.add(&usage(sat, 7200, "0", true)).unwrap();
    assert_eq!(m.breakdown().charging_time.excl, d("12"));
}

#[test]
fn an_end_time_before_the_start_time_spans_midnight() {
    let tf = tariff(json!({
        "tariffId": "t", "currency": "EUR",
        "energy": {"prices": [
            {"priceKwh": 0.10, "conditions": {"startTimeOfDay": "22:00", "endTimeOfDay": "06:00"}},
            {"priceKwh": 0.40}
        ]}
    }));
    let start = t("2026-03-02T21:00:00Z");
    let mut m = CostMeter::new(tf, CostContext::default(), start).unwrap();
    // 21:00 to 07:00: 10 hours, 1 kWh an hour: 1 h at 0.40, 8 h at 0.10, 1 h at 0.40.
    m.add(&usage(start, 36000, "10000", true)).unwrap();
    assert_eq!(m.breakdown().energy.excl, d("1.6"));
}

#[test]
fn power_current_and_session_time_conditions() {
    let tf = tariff(json!({
        "tariffId": "t", "currency": "EUR",
        "energy": {"prices": [
            {"priceKwh": 0.60, "conditions": {"minPower": 50000}},
            {"priceKwh": 0.45, "conditions": {"minCurrent": 16}},
            {"priceKwh": 0.30, "conditions": {"maxTime": 3600}},
            {"priceKwh": 0.20}
        ]}
    }));
    let start = t("2026-03-02T10:00:00Z");
    let mut m = CostMeter::new(tf, CostContext::default(), start).unwrap();
    // 30 min, 30 kWh = 60 kW: 0.60.
    m.add(&usage(start, 1800, "30000", true)).unwrap();
    assert_eq!(m.breakdown().energy.excl, d("18"));
    // 30 min, 5 kWh at 32 A: 0.45.
    let mut u = usage(start + Duration::seconds(1800), 1800, "5000", true);
    u.current_a = Some(d("32"));
    m.add(&u).unwrap();
    assert_eq!(m.breakdown().energy.excl, d("20.25"));
    // After the first hour, without a current: 0.20.
    m.add(&usage(start + Duration::seconds(3600), 1800, "1000", true))
        .unwrap();
    assert_eq!(m.breakdown().energy.excl, d("20.45"));
}

#[test]
fn min_and_max_cost_hold_the_total() {
    let tf = tariff(json!({
        "tariffId": "t", "currency": "EUR",
        "energy": {"prices": [{"priceKwh": 1}]},
        "minCost": {"exclTax": 2, "inclTax": 2.42},
        "maxCost": {"exclTax": 10, "taxRates": [{"type": "VAT", "tax": 21}]}
    }));
    let start = t("2026-03-02T10:00:00Z");
    let mut m = CostMeter::new(tf.clone(), CostContext::default(), start).unwrap();
    assert_eq!(m.breakdown().total.excl, d("2"));
    assert_eq!(m.breakdown().total.incl, d("2.42"));
    m.add(&usage(start, 60, "50000", true)).unwrap();
    assert_eq!(m.breakdown().energy.excl, d("50"));
    assert_eq!(m.breakdown().total.excl, d("10"));
    assert_eq!(m.breakdown().total.incl, d("12.10"));
    let r = m.breakdown().rounded(2, &tf).unwrap();
    assert_eq!(r.total.excl, d("10"));
}

#[test]
fn changing_the_tariff_keeps_what_was_priced_and_refuses_another_currency() {
    let a = tariff(json!({"tariffId": "a", "currency": "EUR",
        "energy": {"prices": [{"priceKwh": 0.50}]},
        "fixedFee": {"prices": [{"priceFixed": 1}]}}));
    let b = tariff(json!({"tariffId": "b", "currency": "EUR",
        "energy": {"prices": [{"priceKwh": 0.20}]},
        "fixedFee": {"prices": [{"priceFixed": 5}]}}));
    let usd = tariff(json!({"tariffId": "c", "currency": "USD"}));
    let start = t("2026-03-02T10:00:00Z");
    let mut m = CostMeter::new(a, CostContext::default(), start).unwrap();
    m.add(&usage(start, 600, "10000", true)).unwrap();
    m.change_tariff(b).unwrap();
    m.add(&usage(start + Duration::seconds(600), 600, "10000", true))
        .unwrap();
    // 1 fixed + 5.00 + 2.00; the new fixed fee is not charged.
    assert_eq!(m.breakdown().total.excl, d("8"));
    assert_eq!(m.breakdown().tariff_id, "b");
    assert_eq!(m.change_tariff(usd), Err(CostError::CurrencyChange));
}

#[test]
fn bad_tariffs_are_refused_with_their_reason() {
    let wire = |v: serde_json::Value| serde_json::from_value::<TariffType>(v).unwrap();
    let cases = [
        (
            json!({"tariffId": "t", "currency": "eur"}),
            TariffError::Currency("eur".into()),
        ),
        (
            json!({"tariffId": "t", "currency": "EUR", "energy": {"prices": [{"priceKwh": -1}]}}),
            TariffError::Negative("priceKwh"),
        ),
        (
            json!({"tariffId": "t", "currency": "EUR", "energy": {"prices": [{"priceKwh": 1,
                "conditions": {"startTimeOfDay": "25:00"}}]}}),
            TariffError::TimeOfDay("25:00".into()),
        ),
        (
            json!({"tariffId": "t", "currency": "EUR", "energy": {"prices": [{"priceKwh": 1,
                "conditions": {"validFromDate": "2026-13-01"}}]}}),
            TariffError::Date("2026-13-01".into()),
        ),
        (
            json!({"tariffId": "t", "currency": "EUR", "energy": {"prices": [{"priceKwh": 1,
                "conditions": {"minEnergy": 10, "maxEnergy": 5}}]}}),
            TariffError::Range("minEnergy/maxEnergy"),
        ),
        (
            json!({"tariffId": "t", "currency": "EUR",
                "minCost": {"exclTax": 10}, "maxCost": {"exclTax": 5}}),
            TariffError::Range("minCost/maxCost"),
        ),
        (
            json!({"tariffId": "t", "currency": "EUR", "energy": {"prices": [{"priceKwh": 1}],
                "taxRates": [{"type": "VAT", "tax": -5}]}}),
            TariffError::Negative("tax rate"),
        ),
    ];
    for (v, err) in cases {
        assert_eq!(Tariff::new(&wire(v.clone()), 100), Err(err), "{v}");
    }
    // A condition the station cannot evaluate.
    let limits = TariffLimits::default();
    let w = wire(json!({"tariffId": "t", "currency": "EUR",
        "fixedFee": {"prices": [{"priceFixed": 1, "conditions": {"paymentBrand": "VISA"}}]}}));
    assert_eq!(
        Tariff::checked(&w, &limits),
        Err(Refusal::Condition(ConditionKind::PaymentBrand))
    );
}

#[test]
fn sixty_thousand_price_elements_are_refused_by_the_bound() {
    let prices: Vec<_> = (0..60_000).map(|_| json!({"priceKwh": 0.1})).collect();
    let w: TariffType = serde_json::from_value(json!({
        "tariffId": "big", "currency": "EUR", "energy": {"prices": prices}
    }))
    .unwrap();
    assert_eq!(
        Tariff::new(&w, 100),
        Err(TariffError::TooManyElements {
            count: 60_000,
            max: 100
        })
    );
    // The hard cap holds whatever the configured limit.
    assert_eq!(
        Tariff::new(&w, usize::MAX),
        Err(TariffError::TooManyElements {
            count: 60_000,
            max: ocpp_types::tariff::MAX_ELEMENTS
        })
    );
}

#[test]
fn extremes_overflow_and_far_dates_give_errors_not_panics() {
    // The largest decimal price: an overflow, the meter unchanged.
    let mut wire: TariffType = serde_json::from_value(
        json!({"tariffId": "t", "currency": "EUR", "energy": {"prices": [{"priceKwh": 1}]}}),
    )
    .unwrap();
    wire.energy.as_mut().unwrap().prices[0].price_kwh = Decimal::MAX;
    let dear = Tariff::new(&wire, 100).unwrap();
    let start = t("2026-01-01T00:00:00Z");
    let mut m = CostMeter::new(dear, CostContext::default(), start).unwrap();
    let before = m.clone();
    assert_eq!(
        m.add(&Usage {
            energy_wh: Decimal::MAX,
            ..usage(start, 60, "0", true)
        }),
        Err(CostError::Overflow)
    );
    assert_eq!(m, before);
    // Year 9999: the last hour of the calendar is priced.
    let tf = tariff(json!({"tariffId": "t", "currency": "EUR",
        "chargingTime": {"prices": [{"priceMinute": 1,
            "conditions": {"startTimeOfDay": "23:30", "validFromDate": "9999-12-31"}}, {"priceMinute": 2}]}}));
    let late = t("9999-12-31T23:00:00Z");
    let mut m = CostMeter::new(tf.clone(), CostContext::default(), late).unwrap();
    // 30 minutes at 2, then 29 min 59 s at 1 (the last second of 9999 is the interval's end).
    m.add(&usage(late, 3599, "0", true)).unwrap();
    let r = m.breakdown().rounded(2, &tf).unwrap();
    assert_eq!(r.charging_time.excl, d("89.98"));
    // One interval from 2026 to 9999 under a time-of-day tariff: too many parts.
    let mut m = CostMeter::new(tf, CostContext::default(), start).unwrap();
    let span = (late - start).num_seconds();
    assert_eq!(
        m.add(&usage(start, span, "1", true)),
        Err(CostError::TooManySteps)
    );
    const { assert!(MAX_STEPS >= 100_000) };
    // Out of order and negative energy.
    let mut m = CostMeter::new(
        tariff(json!({"tariffId": "t", "currency": "EUR"})),
        CostContext::default(),
        start,
    )
    .unwrap();
    m.add(&usage(start, 60, "1", true)).unwrap();
    assert_eq!(m.add(&usage(start, 60, "1", true)), Err(CostError::Order));
    assert_eq!(
        m.add(&usage(start + Duration::seconds(60), 60, "-1", true)),
        Err(CostError::NegativeEnergy)
    );
}

// ---- properties ----

/// An element's generated conditions: energy bounds, minTime, a start hour.
type Cond = (Option<i64>, Option<i64>, Option<i32>, Option<u32>);

fn arb_price() -> impl Strategy<Value = Decimal> + Clone {
    (0i64..100_000, 0u32..5).prop_map(|(m, s)| Decimal::new(m, s))
}

/// Tariffs without power or current conditions, and time prices without energy conditions
/// (their choice depends on the energy, so more energy may pick a cheaper time price).
fn arb_tariff() -> impl Strategy<Value = Tariff> {
    let cond = (
        proptest::option::of(0i64..50_000),
        proptest::option::of(0i64..50_000),
        proptest::option::of(0i32..20_000),
        proptest::option::of(0u32..24),
    );
    let elem = (arb_price(), proptest::option::of(cond));
    (
        proptest::collection::vec(elem.clone(), 1..5),
        proptest::collection::vec(elem.clone(), 0..3),
        proptest::collection::vec(elem, 0..3),
        proptest::option::of(arb_price()),
        proptest::option::of(arb_price()),
        proptest::option::of(arb_price()),
        proptest::option::of(0u32..30),
    )
        .prop_map(|(energy, charging, idle, fixed, min, max, vat)| {
            let conds = |c: Option<Cond>| {
                let mut o = serde_json::Map::new();
                if let Some((a, b, mt, h)) = c {
                    if let (Some(a), Some(b)) = (a, b) {
                        o.insert("minEnergy".into(), json!(a.min(b)));
                        o.insert("maxEnergy".into(), json!(a.max(b)));
                    }
                    if let Some(mt) = mt {
                        o.insert("minTime".into(), json!(mt));
                    }
                    if let Some(h) = h {
                        o.insert("startTimeOfDay".into(), json!(format!("{h:02}:00")));
                    }
                }
                serde_json::Value::Object(o)
            };
            // Time prices without energy conditions: the energy would move their thresholds.
            let time_conds = |c: Option<Cond>| {
                conds(c.map(|(_, _, mt, h)| (None, None, mt, h)))
            };
            let num = |p: Decimal| p.to_string().parse::<serde_json::Number>().unwrap();
            let taxes = vat.map(|v| json!([{"type": "VAT", "tax": v}]));
            let mut v = json!({"tariffId": "p", "currency": "EUR",
                "energy": {"prices": energy.iter().map(|(p, c)| json!({"priceKwh": num(*p), "conditions": conds(*c)})).collect::<Vec<_>>()}});
            if let Some(t) = &taxes {
                v["energy"]["taxRates"] = t.clone();
            }
            if !charging.is_empty() {
                v["chargingTime"] = json!({"prices": charging.iter().map(|(p, c)| json!({"priceMinute": num(*p), "conditions": time_conds(*c)})).collect::<Vec<_>>()});
            }
            if !idle.is_empty() {
                v["idleTime"] = json!({"prices": idle.iter().map(|(p, c)| json!({"priceMinute": num(*p), "conditions": time_conds(*c)})).collect::<Vec<_>>()});
            }
            if let Some(f) = fixed {
                v["fixedFee"] = json!({"prices": [{"priceFixed": num(f)}]});
            }
            if let (Some(a), Some(b)) = (min, max) {
                v["minCost"] = json!({"exclTax": num(a.min(b))});
                v["maxCost"] = json!({"exclTax": num(a.max(b))});
            }
            tariff(v)
        })
}

fn arb_usages() -> impl Strategy<Value = Vec<(i64, i64, Decimal, bool)>> {
    proptest::collection::vec(
        (
            0i64..600,
            0i64..7200,
            (0i64..100_000_000, 0u32..4).prop_map(|(m, s)| Decimal::new(m, s)),
            any::<bool>(),
        ),
        0..8,
    )
}

fn run(tf: &Tariff, start: DateTime<Utc>, us: &[(i64, i64, Decimal, bool)]) -> CostBreakdown {
    let mut m = CostMeter::new(tf.clone(), CostContext::default(), start).unwrap();
    let mut at = start;
    for (gap, len, e, ch) in us {
        let s = at + Duration::seconds(*gap);
        m.add(&Usage {
            start: s,
            end: s + Duration::seconds(*len),
            energy_wh: *e,
            charging: *ch,
            current_a: None,
        })
        .unwrap();
        at = s + Duration::seconds(*len);
    }
    m.breakdown().clone()
}

proptest! {
    // A fixed seed: the same 200 cases on every run.
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x7a41ff),
        ..ProptestConfig::default()
    })]

    #[test]
    fn cost_is_never_negative_and_within_the_bounds(tf in arb_tariff(), us in arb_usages(), h in 0i64..(24 * 7)) {
        let start = t("2026-03-02T00:00:00Z") + Duration::hours(h);
        let b = run(&tf, start, &us);
        prop_assert!(b.total.excl >= Decimal::ZERO);
        prop_assert!(b.total.incl >= b.total.excl);
        if let Some(m) = tf.min_cost.as_ref().and_then(|m| m.excl) {
            prop_assert!(b.total.excl >= m);
        }
        if let Some(m) = tf.max_cost.as_ref().and_then(|m| m.excl) {
            prop_assert!(b.total.excl <= m);
        }
        let r = b.rounded(2, &tf).unwrap();
        prop_assert!(r.total.excl.scale() <= 2);
        prop_assert!(r.total.excl >= Decimal::ZERO);
    }

    #[test]
    fn cost_is_monotone_in_energy(tf in arb_tariff(), us in arb_usages(), extra in 0i64..10_000_000, i in 0usize..8) {
        let start = t("2026-03-02T10:00:00Z");
        let base = run(&tf, start, &us);
        let mut more = us.clone();
        if !more.is_empty() {
            let k = i % more.len();
            more[k].2 += Decimal::from(extra);
        }
        let b = run(&tf, start, &more);
        prop_assert!(b.total.excl >= base.total.excl, "{} < {}", b.total.excl, base.total.excl);
        prop_assert!(b.energy.excl >= base.energy.excl);
    }

    #[test]
    fn splitting_an_interval_does_not_change_the_cost(tf in arb_tariff(), len in 2i64..7200, wh in 0i64..1_000_000, cut in 1i64..7199) {
        // Energy spread evenly, so the two halves carry energy in proportion.
        let cut = cut % (len - 1) + 1;
        let start = t("2026-03-02T10:00:00Z");
        let e = Decimal::from(wh);
        let whole = run(&tf, start, &[(0, len, e, true)]);
        let first = e * Decimal::from(cut) / Decimal::from(len);
        let halves = run(&tf, start, &[(0, cut, first, true), (0, len - cut, e - first, true)]);
        prop_assert_eq!(whole.energy_wh.round_dp(15), halves.energy_wh.round_dp(15));
        // Equal to the 15th decimal (the even spread is a division, exact to 28 digits).
        prop_assert_eq!(whole.total.excl.round_dp(15), halves.total.excl.round_dp(15));
    }
}
