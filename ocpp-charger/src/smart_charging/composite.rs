//! The composite schedule: what limit applies to an EVSE at each instant.
//!
//! The rules (OCPP 1.6 §3.13 Smart Charging: charging profile purposes, stacking, combining
//! purposes; 2.0.1 and 2.1 part 2, K "Smart Charging": the same sections and use case K08
//! Get Composite Schedule):
//!
//! - Within a purpose, the profile with the highest stack level valid at an instant wins
//!   (validFrom / validTo, and its schedule started and not ended); when it ends, the next
//!   lower one applies again.
//! - A `TxProfile` overrides the `TxDefaultProfile`s; a `TxDefaultProfile` of the EVSE
//!   overrides one of EVSE 0 at the same stack level.
//! - The result is the minimum of the `ChargingStationMaxProfile`, the transaction's
//!   (default) profile and the external constraints, compared as power: a current limit is
//!   `A × nominal voltage × phases` watts ([`SmartChargingConfig::nominal_voltage`]).
//! - The composite of EVSE 0 is the station total: the `ChargingStationMaxProfile` and the
//!   station's external constraints.
//! - A recurring schedule repeats from its `startSchedule` every day or week; a relative one
//!   starts with the transaction (or at the time asked, when none is ongoing: what a
//!   transaction starting then would get).
//! - Equal neighbouring periods are merged; an instant no profile limits gets the hardware
//!   limit ([`SmartChargingConfig::hardware_limit`]).
//!
//! All arithmetic is on exact decimals and `i64` seconds, checked; the work is bounded by
//! [`MAX_STEPS`] changes per composite.

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};

use super::{ChargingLimit, Installed, SmartChargingConfig};
use ocpp_types::smart_charging::{
    ChargingProfile, CompositePeriod, CompositeSchedule, Kind, Purpose, RateUnit, V2x,
};

/// The most limit changes one composite schedule looks at. A longer schedule (e.g. a year of
/// a daily recurring profile with many periods) is cut there: its `duration` says how far it
/// reaches.
pub const MAX_STEPS: usize = 10_000;

/// A limit with its unit and phases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The value, in `unit`.
    pub value: Decimal,
    /// A (per phase) or W.
    pub unit: RateUnit,
    /// Phases used (1 to 3).
    pub phases: u8,
}

impl Limit {
    /// The limit in watts at `voltage`.
    pub fn watts(&self, voltage: Decimal) -> Decimal {
        match self.unit {
            RateUnit::W => self.value,
            RateUnit::A => self
                .value
                .checked_mul(voltage)
                .and_then(|w| w.checked_mul(Decimal::from(self.phases)))
                .unwrap_or(Decimal::MAX),
        }
    }

    /// The limit in amperes per phase at `voltage`, rounded down to 0.1 A (never above the
    /// limit).
    pub fn amps(&self, voltage: Decimal) -> Decimal {
        match self.unit {
            RateUnit::A => self.value,
            RateUnit::W => {
                let per = voltage
                    .checked_mul(Decimal::from(self.phases))
                    .unwrap_or(Decimal::ZERO);
                if per.is_zero() {
                    return Decimal::ZERO;
                }
                self.value
                    .checked_div(per)
                    .unwrap_or(Decimal::ZERO)
                    .round_dp_with_strategy(1, RoundingStrategy::ToZero)
            }
        }
    }

    /// The value in `unit`.
    pub fn value_in(&self, unit: RateUnit, voltage: Decimal) -> Decimal {
        match unit {
            RateUnit::W => self.watts(voltage),
            RateUnit::A => self.amps(voltage),
        }
    }

    /// As the hardware takes it.
    pub fn to_charging_limit(&self, voltage: Decimal) -> ChargingLimit {
        ChargingLimit {
            power_w: self.watts(voltage),
            current_a: self.amps(voltage),
            phases: self.phases,
            setpoint_w: None,
            discharge_limit_w: None,
        }
    }
}

/// (2.1) The bidirectional values that apply at an instant: each value with its schedule's
/// unit and phases, so it converts like a limit (negative values discharge).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V2xAt {
    /// The most the EV may discharge (negative): of every profile that gives one, the one
    /// closest to zero.
    pub discharge_limit: Option<Limit>,
    /// The setpoint of the transaction's profile (else the external constraints', else the
    /// station maximum's), kept between the discharge limit and the limit.
    pub setpoint: Option<Limit>,
    /// The reactive setpoint of the same profile, as given.
    pub setpoint_reactive: Option<Decimal>,
    /// The operation mode of the same profile.
    pub operation_mode: Option<String>,
}

impl V2xAt {
    /// The values in `unit`, `None` when nothing is set.
    pub fn to_v2x(&self, unit: RateUnit, voltage: Decimal) -> Option<V2x> {
        V2x {
            discharge_limit: self.discharge_limit.map(|l| l.value_in(unit, voltage)),
            setpoint: self.setpoint.map(|l| l.value_in(unit, voltage)),
            setpoint_reactive: self.setpoint_reactive,
            operation_mode: self.operation_mode.clone(),
        }
        .non_empty()
    }
}

/// One profile evaluated at an instant: its limit (when it applies) and when that may change.
#[derive(Debug, Clone)]
struct Eval {
    limit: Option<Limit>,
    min_rate: Option<Decimal>,
    next: Option<i64>,
    /// (2.1) The period's V2X values, with the unit and phases of its schedule.
    v2x: Option<(V2x, RateUnit, u8)>,
}

fn ts(t: &DateTime<Utc>) -> i64 {
    t.timestamp()
}

/// Evaluates `p` at `t` (Unix seconds); a relative schedule starts at `rel_start`.
fn eval(p: &ChargingProfile, t: i64, rel_start: i64) -> Eval {
    let mut next: Option<i64> = None;
    let mut bump = |x: i64| {
        if x > t {
            next = Some(next.map_or(x, |n| n.min(x)));
        }
    };
    let none = |next| Eval {
        limit: None,
        min_rate: None,
        next,
        v2x: None,
    };
    let Some(s) = p.schedule() else {
        return none(None);
    };
    if let Some(from) = p.valid_from.as_ref().map(ts) {
        if t < from {
            bump(from);
            return none(next);
        }
    }
    if let Some(to) = p.valid_to.as_ref().map(ts) {
        if t >= to {
            return none(None);
        }
        bump(to);
    }
    let base = s.start_schedule.as_ref().map(ts);
    let mut length: Option<i64> = s.duration.map(i64::from);
    let start = match p.kind {
        Kind::Absolute | Kind::Dynamic => base.unwrap_or(rel_start),
        Kind::Relative => rel_start,
        Kind::Recurring(r) => {
            let base = base.unwrap_or(rel_start);
            match r {
                None => base,
                Some(r) => {
                    let period = r.seconds();
                    if t < base {
                        bump(base);
                        return none(next);
                    }
                    let k = (t - base) / period;
                    let start = base.saturating_add(k.saturating_mul(period));
                    bump(start.saturating_add(period));
                    length = Some(length.map_or(period, |l| l.min(period)));
                    start
                }
            }
        }
    };
    if t < start {
        bump(start);
        return none(next);
    }
    let offset = t - start;
    if let Some(l) = length {
        if offset >= l {
            return none(next);
        }
        bump(start.saturating_add(l));
    }
    let idx = s
        .periods
        .partition_point(|q| i64::from(q.start_period) <= offset);
    if idx == 0 {
        if let Some(first) = s.periods.first() {
            bump(start.saturating_add(i64::from(first.start_period)));
        }
        return none(next);
    }
    if let Some(after) = s.periods.get(idx) {
        bump(start.saturating_add(i64::from(after.start_period)));
    }
    let q = &s.periods[idx - 1];
    let phases = q
        .number_phases
        .and_then(|n| u8::try_from(n).ok())
        .filter(|n| (1..=3).contains(n))
        .unwrap_or(3);
    Eval {
        limit: q.limit.map(|value| Limit {
            value,
            unit: s.charging_rate_unit,
            phases,
        }),
        min_rate: s.min_charging_rate,
        next,
        v2x: q.v2x.clone().map(|x| (x, s.charging_rate_unit, phases)),
    }
}

/// What applies to one EVSE at one instant.
#[derive(Debug, Clone)]
pub(crate) struct AtInstant {
    pub(crate) limit: Option<Limit>,
    pub(crate) min_rate: Option<Limit>,
    pub(crate) next: Option<i64>,
    pub(crate) v2x: V2xAt,
}

/// The profile that won a purpose at an instant: its limit (`None`: a 2.1 period with
/// setpoints only) and the rest of its period.
#[derive(Debug, Clone)]
struct Chosen {
    limit: Option<Limit>,
    min_rate: Option<Decimal>,
    v2x: Option<(V2x, RateUnit, u8)>,
}

/// Whether the schedule of `p` starts at the transaction's start (relative, or without a
/// `startSchedule`).
fn floats(p: &ChargingProfile) -> bool {
    p.kind == Kind::Relative || p.schedule().is_some_and(|s| s.start_schedule.is_none())
}

/// The profiles of one purpose: the highest stack level that applies wins; `specific` ranks
/// an EVSE's own profile above EVSE 0's at the same level. Without a fixed start
/// (`rel_fixed`), a relative schedule starts at every instant anew: its changes are not
/// boundaries.
fn best<'a>(
    items: impl Iterator<Item = (&'a Installed, bool)>,
    t: i64,
    rel_start: i64,
    rel_fixed: bool,
    voltage: Decimal,
    next: &mut Option<i64>,
) -> Option<Chosen> {
    let mut winner: Option<((i32, bool), Chosen)> = None;
    for (i, specific) in items {
        let e = eval(&i.profile, t, rel_start);
        if let Some(n) = e.next.filter(|_| rel_fixed || !floats(&i.profile)) {
            *next = Some(next.map_or(n, |m: i64| m.min(n)));
        }
        if e.limit.is_none() && e.v2x.is_none() {
            continue;
        }
        let key = (i.profile.stack_level, specific);
        // Equal keys (which the validation keeps apart) go to the lower limit, then the
        // fewer phases, then the rest of the period: a total order, so the result never
        // depends on the order the profiles were set in.
        let rank = |c: &Chosen| {
            (
                c.limit.map_or(Decimal::MAX, |l| l.watts(voltage)),
                c.limit.map_or(0, |l| l.phases),
                c.limit.is_some_and(|l| l.unit == RateUnit::W),
                c.limit.map(|l| l.value),
                c.min_rate,
                c.v2x.as_ref().map(|(x, _, _)| format!("{x:?}")),
            )
        };
        let c = Chosen {
            limit: e.limit,
            min_rate: e.min_rate,
            v2x: e.v2x,
        };
        let wins = winner
            .as_ref()
            .is_none_or(|(k, w)| key > *k || (key == *k && rank(&c) < rank(w)));
        if wins {
            winner = Some((key, c));
        }
    }
    winner.map(|(_, c)| c)
}

/// The limit of `evse` at `t`. `tx_local`: the EVSE's transaction (for its `TxProfile`s);
/// `rel_start`: when relative schedules start (the transaction's start, or the start of a
/// composite schedule; `None`: at `t`).
pub(crate) fn limit_at(
    installed: &[Installed],
    evse: u32,
    tx_local: Option<u64>,
    rel_start: Option<i64>,
    t: i64,
    cfg: &SmartChargingConfig,
) -> AtInstant {
    let mut next = None;
    let rel_fixed = rel_start.is_some();
    let rel_start = rel_start.unwrap_or(t);
    let v = cfg.nominal_voltage;
    let of = |purpose: Purpose| {
        installed
            .iter()
            .filter(move |i| i.profile.purpose == purpose && (i.evse == 0 || i.evse == evse))
            .map(move |i| (i, i.evse == evse && evse != 0))
    };
    let max = best(
        of(Purpose::ChargingStationMax).filter(|(i, _)| i.evse == 0),
        t,
        rel_start,
        rel_fixed,
        v,
        &mut next,
    );
    let ext = best(
        of(Purpose::ExternalConstraints),
        t,
        rel_start,
        rel_fixed,
        v,
        &mut next,
    );
    let mut txl = None;
    if evse != 0 {
        txl = best(
            of(Purpose::Tx)
                .filter(|(i, _)| i.evse == evse && tx_local.is_some() && i.tx_local == tx_local),
            t,
            rel_start,
            rel_fixed,
            v,
            &mut next,
        );
        let default = best(
            of(Purpose::TxDefault),
            t,
            rel_start,
            rel_fixed,
            v,
            &mut next,
        );
        if txl.is_none() {
            txl = default;
        }
    }
    let chosen = [&max, &ext, &txl];
    let mut limit: Option<Limit> = None;
    for l in chosen
        .iter()
        .filter_map(|c| c.as_ref().and_then(|c| c.limit))
    {
        if limit.as_ref().is_none_or(|m| l.watts(v) < m.watts(v)) {
            limit = Some(l);
        }
    }
    let min_rate = txl.as_ref().and_then(|c| {
        let l = c.limit?;
        c.min_rate.map(|value| Limit {
            value,
            unit: l.unit,
            phases: l.phases,
        })
    });
    let v2x = v2x_at(&[&txl, &ext, &max], limit, v);
    AtInstant {
        limit,
        min_rate,
        next,
        v2x,
    }
}

/// The V2X values at an instant from the purposes' winners (the transaction's first): the
/// discharge limit closest to zero of all, the first setpoint kept within
/// `[discharge limit, limit]`, its profile's reactive setpoint and operation mode.
fn v2x_at(chosen: &[&Option<Chosen>], limit: Option<Limit>, v: Decimal) -> V2xAt {
    let as_limit = |value: Decimal, unit: RateUnit, phases: u8| Limit {
        value,
        unit,
        phases,
    };
    let mut out = V2xAt::default();
    for (x, unit, phases) in chosen
        .iter()
        .filter_map(|c| c.as_ref().and_then(|c| c.v2x.as_ref()))
    {
        if let Some(d) = x.discharge_limit {
            let d = as_limit(d.min(Decimal::ZERO), *unit, *phases);
            if out.discharge_limit.is_none_or(|m| d.watts(v) > m.watts(v)) {
                out.discharge_limit = Some(d);
            }
        }
    }
    let source = chosen
        .iter()
        .filter_map(|c| c.as_ref().and_then(|c| c.v2x.as_ref()))
        .find(|(x, _, _)| x.setpoint.is_some() || x.operation_mode.is_some());
    if let Some((x, unit, phases)) = source {
        out.setpoint_reactive = x.setpoint_reactive;
        out.operation_mode = x.operation_mode.clone();
        out.setpoint = x.setpoint.map(|s| {
            let mut s = as_limit(s, *unit, *phases);
            if let Some(l) = limit.filter(|l| s.watts(v) > l.watts(v)) {
                s = l;
            }
            match out.discharge_limit {
                Some(d) if s.watts(v) < d.watts(v) => d,
                // Without a discharge limit, a negative setpoint is what the profile allows.
                _ => s,
            }
        });
    }
    out
}

/// The composite schedule of `evse` from `start` for `duration` seconds in `unit`.
pub(crate) fn composite(
    installed: &[Installed],
    evse: u32,
    tx: Option<(u64, i64)>,
    start: DateTime<Utc>,
    duration: i32,
    unit: RateUnit,
    cfg: &SmartChargingConfig,
) -> CompositeSchedule {
    let v = cfg.nominal_voltage;
    let t0 = start.timestamp();
    let end = t0.saturating_add(i64::from(duration.max(0)));
    let mut periods: Vec<CompositePeriod> = Vec::new();
    let mut t = t0;
    let mut min_charging_rate = None;
    let mut covered = end;
    for step in 0..MAX_STEPS {
        let at = limit_at(
            installed,
            evse,
            tx.map(|(l, _)| l),
            Some(tx.map_or(t0, |(_, s)| s)),
            t,
            cfg,
        );
        if step == 0 {
            min_charging_rate = at.min_rate.map(|m| m.value_in(unit, v));
        }
        let l = at.limit.unwrap_or(cfg.hardware_limit);
        let (value, phases) = (l.value_in(unit, v), l.phases);
        let v2x = at.v2x.to_v2x(unit, v);
        let offset = i32::try_from(t - t0).unwrap_or(i32::MAX);
        if periods
            .last()
            .is_none_or(|p| p.limit != value || p.number_phases != phases || p.v2x != v2x)
        {
            periods.push(CompositePeriod {
                start_period: offset,
                limit: value,
                number_phases: phases,
                v2x,
            });
        }
        match at.next {
            Some(n) if n < end => t = n,
            _ => break,
        }
        if step + 1 == MAX_STEPS {
            covered = t;
        }
    }
    CompositeSchedule {
        evse,
        start,
        duration: i32::try_from(covered - t0).unwrap_or(duration),
        unit,
        periods,
        min_charging_rate,
    }
}
