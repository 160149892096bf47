//! The load balancer's plan: a pure function from a site's limit and its sessions to each
//! session's limit, in exact decimals (the driver in [`sites`](super::sites) feeds it and
//! sends the profiles).
//!
//! The rules, in this order:
//!
//! 1. **Admission in arrival order.** Sessions are taken by arrival (then by key, so the
//!    input's order never matters). Each needs its floor (its minimum rate, or less when it
//!    cannot draw that much); a session is admitted while the floors of the admitted ones
//!    and its own fit in the limit. The first that does not fit is queued
//!    ([`Queued::BelowMinimum`]) and so is everyone after it ([`Queued::Behind`]): no one
//!    overtakes, and a queued session is admitted first when room frees.
//! 2. **Water-filling.** The admitted sessions share the limit equally: one level `L`, each
//!    gets `L` clamped to `[floor, cap]`, where the cap is what it can actually draw (its
//!    EVSE's maximum, lowered to its measured draw plus headroom when it draws clearly less
//!    than it was given: [`cap_from_measurement`]). What a capped session leaves is
//!    redistributed to the others. `L` is rounded down to the `step` (1 W, 0.1 A), so the
//!    sum never exceeds the limit.
//!
//! The work is `O(n log n)` for `n` sessions (one sort of the breakpoints and one sweep).

use std::cmp::Ordering;

use rust_decimal::Decimal;
use serde::Serialize;

/// One session as the balancer sees it (numbers in the site's unit: W, or A per phase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand<K> {
    /// Who it is (the driver uses charger and EVSE).
    pub key: K,
    /// Arrival order (smaller: earlier).
    pub arrival: u64,
    /// The most it can draw now (never below 0).
    pub cap: Decimal,
    /// The lowest rate worth charging at.
    pub min: Decimal,
}

/// Why a session gets nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Queued {
    /// The sessions before it leave less than its minimum.
    BelowMinimum,
    /// An earlier arrival is queued: it goes first.
    Behind,
}

impl Queued {
    /// A sentence for the API.
    pub fn reason(self) -> &'static str {
        match self {
            Queued::BelowMinimum => "the site's limit leaves less than this session's minimum rate",
            Queued::Behind => "waiting behind an earlier arrival that is queued",
        }
    }
}

/// One session's share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation<K> {
    /// The session.
    pub key: K,
    /// Its limit (0 when queued).
    pub limit: Decimal,
    /// Why it is queued, if it is.
    pub queued: Option<Queued>,
}

/// The floor of a session: its minimum, unless it cannot draw that much.
fn floor_of<K>(d: &Demand<K>) -> Decimal {
    d.min.max(Decimal::ZERO).min(cap_of(d))
}

fn cap_of<K>(d: &Demand<K>) -> Decimal {
    d.cap.max(Decimal::ZERO)
}

/// Rounds `x` down to a multiple of `step` (`step` > 0; otherwise `x`).
fn round_down(x: Decimal, step: Decimal) -> Decimal {
    if step <= Decimal::ZERO {
        return x;
    }
    (x / step).floor() * step
}

/// The plan: every session's limit, in the order of `sessions` sorted by arrival and key.
/// `limit` below 0 counts as 0; `step` is the granularity of the limits (1 for W, 0.1 for A).
pub fn plan<K: Ord + Clone>(
    sessions: &[Demand<K>],
    limit: Decimal,
    step: Decimal,
) -> Vec<Allocation<K>> {
    let limit = limit.max(Decimal::ZERO);
    let mut order: Vec<&Demand<K>> = sessions.iter().collect();
    order.sort_by(|a, b| a.arrival.cmp(&b.arrival).then_with(|| a.key.cmp(&b.key)));
    // 1. Admission.
    let mut admitted = 0;
    let mut floors = Decimal::ZERO;
    for d in &order {
        let f = floor_of(d);
        match floors.checked_add(f) {
            Some(sum) if sum <= limit => {
                floors = sum;
                admitted += 1;
            }
            _ => break,
        }
    }
    let (active, waiting) = order.split_at(admitted);
    // 2. The level.
    let level = level(active, limit, step);
    let mut out: Vec<Allocation<K>> = active
        .iter()
        .map(|d| Allocation {
            key: d.key.clone(),
            limit: clamp(level, floor_of(d), cap_of(d)),
            queued: None,
        })
        .collect();
    out.extend(waiting.iter().enumerate().map(|(i, d)| Allocation {
        key: d.key.clone(),
        limit: Decimal::ZERO,
        queued: Some(if i == 0 {
            Queued::BelowMinimum
        } else {
            Queued::Behind
        }),
    }));
    out
}

fn clamp(level: Decimal, floor: Decimal, cap: Decimal) -> Decimal {
    level.max(floor).min(cap)
}

/// The highest level, rounded down to `step`, at which the clamped shares fit in `limit`
/// (the floors are known to fit). Sweeps the sorted breakpoints (floors and caps): between
/// two, the sum grows by the number of sessions neither at their floor nor at their cap.
fn level<K>(active: &[&Demand<K>], limit: Decimal, step: Decimal) -> Decimal {
    if active.is_empty() {
        return Decimal::ZERO;
    }
    let total_caps = active
        .iter()
        .try_fold(Decimal::ZERO, |s, d| s.checked_add(cap_of(d)));
    if let Some(all) = total_caps {
        if all <= limit {
            // Everyone gets their cap: the level is the highest cap.
            return active
                .iter()
                .map(|d| cap_of(d))
                .max()
                .unwrap_or(Decimal::ZERO);
        }
    }
    // Breakpoints: +1 at a floor (the session starts rising), -1 at its cap (it stops).
    let mut points: Vec<(Decimal, i64)> = Vec::with_capacity(active.len() * 2);
    let mut sum_floors = Decimal::ZERO;
    for d in active {
        let (f, c) = (floor_of(d), cap_of(d));
        sum_floors += f;
        if c > f {
            points.push((f, 1));
            points.push((c, -1));
        }
    }
    points.sort_by(|a, b| a.0.cmp(&b.0).then(Ordering::Equal));
    // g(x) = the sum of the shares at level x; g(lowest point) = sum of floors.
    let mut rising: i64 = 0;
    let mut x = points.first().map_or(Decimal::ZERO, |p| p.0);
    let mut g = sum_floors;
    for (at, delta) in points {
        if at > x {
            let grow = Decimal::from(rising) * (at - x);
            if g + grow >= limit {
                break;
            }
            g += grow;
            x = at;
        }
        rising += delta;
    }
    if rising <= 0 {
        return round_down(x, step);
    }
    round_down(x + (limit - g) / Decimal::from(rising), step)
}

/// Whether a new limit must be sent, given the one sent before (hysteresis): the first one
/// always; a lower one always (the site must stay under its limit); a higher one only when
/// it rises by more than `hysteresis` (a smaller rise is not worth a message); an unchanged
/// one never.
pub fn should_send(previous: Option<Decimal>, new: Decimal, hysteresis: Decimal) -> bool {
    match previous {
        None => true,
        Some(p) => new < p || new > p + hysteresis,
    }
}

/// The cap to plan with, from the EVSE's maximum, the limit it was given and what it was
/// measured drawing: when it draws clearly less than it was given (below 90 %), it is
/// EV-limited and its cap becomes its draw plus 25 % headroom (at least `step`), so the
/// rest goes to others; when it draws close to its limit (90 % or more), it may want more:
/// its maximum. The headroom keeps a capped EV that goes on drawing the same below 90 % of
/// its new limit (1 / 1.25 = 80 %): a steady draw is a fixed point, no swinging between
/// capped and not from one plan to the next.
pub fn cap_from_measurement(
    max: Decimal,
    given: Option<Decimal>,
    measured: Option<Decimal>,
    step: Decimal,
) -> Decimal {
    match (given, measured) {
        (Some(given), Some(m))
            if given > Decimal::ZERO && m * Decimal::TEN < given * Decimal::from(9) =>
        {
            let headroom = (m / Decimal::from(4)).max(step);
            (m.max(Decimal::ZERO) + headroom).min(max)
        }
        _ => max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal::prelude::ToPrimitive;

    fn d(key: u32, arrival: u64, cap: i64, min: i64) -> Demand<u32> {
        Demand {
            key,
            arrival,
            cap: Decimal::from(cap),
            min: Decimal::from(min),
        }
    }

    fn limits(p: &[Allocation<u32>]) -> Vec<(u32, i64, Option<Queued>)> {
        p.iter()
            .map(|a| (a.key, a.limit.to_i64().unwrap(), a.queued))
            .collect()
    }

    #[test]
    fn equal_shares_with_the_leftover_of_capped_sessions_redistributed() {
        let s = [
            d(1, 1, 22_000, 1_400),
            d(2, 2, 22_000, 1_400),
            d(3, 3, 5_000, 1_400),
        ];
        let p = plan(&s, Decimal::from(30_000), Decimal::ONE);
        assert_eq!(
            limits(&p),
            vec![(1, 12_500, None), (2, 12_500, None), (3, 5_000, None)]
        );
    }

    #[test]
    fn a_level_that_does_not_divide_is_rounded_down() {
        let s = [d(1, 1, 22_000, 0), d(2, 2, 22_000, 0), d(3, 3, 22_000, 0)];
        let p = plan(&s, Decimal::from(10_000), Decimal::ONE);
        assert!(p.iter().all(|a| a.limit == Decimal::from(3_333)));
        let p = plan(&s, Decimal::from(100), Decimal::new(1, 1));
        assert!(p.iter().all(|a| a.limit == Decimal::new(333, 1)));
    }

    #[test]
    fn late_arrivals_queue_in_order_and_never_overtake() {
        let s = [
            d(1, 1, 22_000, 4_000),
            d(2, 2, 22_000, 4_000),
            d(3, 3, 22_000, 4_000),
            d(4, 4, 22_000, 1_000),
        ];
        let p = plan(&s, Decimal::from(10_000), Decimal::ONE);
        assert_eq!(
            limits(&p),
            vec![
                (1, 5_000, None),
                (2, 5_000, None),
                (3, 0, Some(Queued::BelowMinimum)),
                (4, 0, Some(Queued::Behind))
            ]
        );
    }

    #[test]
    fn an_ev_drawing_less_than_its_minimum_holds_only_what_it_draws() {
        let s = [d(1, 1, 500, 1_400), d(2, 2, 22_000, 1_400)];
        let p = plan(&s, Decimal::from(2_000), Decimal::ONE);
        assert_eq!(limits(&p), vec![(1, 500, None), (2, 1_500, None)]);
    }

    #[test]
    fn only_changed_limits_are_sent() {
        let h = Decimal::from(100);
        assert!(should_send(None, Decimal::from(5_000), h));
        assert!(!should_send(
            Some(Decimal::from(5_000)),
            Decimal::from(5_000),
            h
        ));
        assert!(should_send(
            Some(Decimal::from(5_000)),
            Decimal::from(4_999),
            h
        ));
        assert!(!should_send(
            Some(Decimal::from(5_000)),
            Decimal::from(5_100),
            h
        ));
        assert!(should_send(
            Some(Decimal::from(5_000)),
            Decimal::from(5_101),
            h
        ));
    }

    #[test]
    fn caps_follow_the_measured_draw() {
        let one = Decimal::ONE;
        let max = Decimal::from(22_000);
        // Draws its share: may want more.
        assert_eq!(
            cap_from_measurement(
                max,
                Some(Decimal::from(5_000)),
                Some(Decimal::from(4_800)),
                one
            ),
            max
        );
        // Draws clearly less: its draw plus 25 %; drawing the same at that limit keeps it.
        let cap = cap_from_measurement(
            max,
            Some(Decimal::from(5_000)),
            Some(Decimal::from(3_000)),
            one,
        );
        assert_eq!(cap, Decimal::from(3_750));
        assert_eq!(
            cap_from_measurement(max, Some(cap), Some(Decimal::from(3_000)), one),
            cap
        );
        // Drawing close to it again: may want more.
        assert_eq!(
            cap_from_measurement(max, Some(cap), Some(Decimal::from(3_400)), one),
            max
        );
        // Draws nothing: one step.
        assert_eq!(
            cap_from_measurement(max, Some(Decimal::from(5_000)), Some(Decimal::ZERO), one),
            one
        );
        // Nothing known yet.
        assert_eq!(cap_from_measurement(max, None, None, one), max);
    }

    fn demands() -> impl Strategy<Value = Vec<Demand<u32>>> {
        prop::collection::vec((0u64..50, 0i64..50_000, 0i64..8_000), 0..40).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (arrival, cap, min))| d(i as u32, arrival, cap, min))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn plan_properties(sessions in demands(), limit in 0i64..400_000, tenths in any::<bool>()) {
            let limit = Decimal::from(limit);
            let step = if tenths { Decimal::new(1, 1) } else { Decimal::ONE };
            let p = plan(&sessions, limit, step);
            prop_assert_eq!(p.len(), sessions.len());
            let by_key = |k: u32| sessions.iter().find(|s| s.key == k).unwrap();
            // The sum never exceeds the limit; nobody above its cap.
            let sum: Decimal = p.iter().map(|a| a.limit).sum();
            prop_assert!(sum <= limit, "{} > {}", sum, limit);
            for a in &p {
                let s = by_key(a.key);
                prop_assert!(a.limit <= s.cap.max(Decimal::ZERO));
                prop_assert!(a.limit >= Decimal::ZERO);
                // Admitted sessions get at least their floor.
                if a.queued.is_none() {
                    prop_assert!(a.limit >= floor_of(s));
                }
            }
            // Queued only when the minimum cannot be met: the floors of those before the
            // first queued one plus its own exceed the limit.
            if let Some(i) = p.iter().position(|a| a.queued.is_some()) {
                prop_assert_eq!(p[i].queued, Some(Queued::BelowMinimum));
                let before: Decimal = p[..i].iter().map(|a| floor_of(by_key(a.key))).sum();
                prop_assert!(before + floor_of(by_key(p[i].key)) > limit);
                prop_assert!(p[i + 1..].iter().all(|a| a.queued == Some(Queued::Behind)));
            }
            // Equal share where caps allow: two admitted sessions neither at cap nor at floor
            // get the same; one below another's share is at its cap or its floor is higher.
            let free: Vec<&Allocation<u32>> = p.iter().filter(|a| {
                let s = by_key(a.key);
                a.queued.is_none() && a.limit < s.cap && a.limit > floor_of(s)
            }).collect();
            for w in free.windows(2) {
                prop_assert_eq!(w[0].limit, w[1].limit);
            }
            // Not wasteful: with everyone admitted below their cap, less than one step per
            // session is left.
            let room = p.iter().filter(|a| a.queued.is_none() && a.limit < by_key(a.key).cap).count();
            if room > 0 {
                prop_assert!(limit - sum < step * Decimal::from(room as u64) + step);
            }
        }

        #[test]
        fn plan_does_not_depend_on_the_input_order(sessions in demands(), limit in 0i64..400_000, seed in any::<u64>()) {
            let limit = Decimal::from(limit);
            let a = plan(&sessions, limit, Decimal::ONE);
            let mut shuffled = sessions.clone();
            // A deterministic shuffle from the seed.
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let b = plan(&shuffled, limit, Decimal::ONE);
            prop_assert_eq!(a, b);
        }
    }
}
