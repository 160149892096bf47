//! The OCPP 2.1 tariff (functional block I, "Tariff and cost", use cases I04 to I12): a
//! validated [`Tariff`] built from the generated [`TariffType`], and an exact cost
//! calculator, [`CostMeter`], that the charging station (local cost calculation) and the
//! central system (the running and final cost of a transaction) share. Hand-written, not
//! generated.
//!
//! # What is priced
//!
//! A transaction is a sequence of [`Usage`] intervals: a span of time, the energy delivered
//! in it (Wh), whether the EV was charging or idle (connected, not charging), and the
//! current when it is known. [`CostMeter::add`] prices each interval:
//!
//! - **energy**: the first `energy.prices` element whose conditions hold, per kWh. The
//!   interval's energy is split exactly at every `minEnergy` / `maxEnergy` threshold, so a
//!   price step at 10 kWh is exact whatever the metering interval.
//! - **charging time** / **idle time**: the first matching `chargingTime` / `idleTime`
//!   element, per minute, pro rata per second. The interval is split at every boundary a
//!   condition can change at (a time of day, local midnight, the `min/max(Charging|Idle)Time`
//!   thresholds), energy being spread evenly over the interval.
//! - **fixed fee**: the first matching `fixedFee` element, once, when the meter starts.
//!
//! Each component carries its own `taxRates`: a rate of `stack` 0 is a percentage of the
//! net price, a rate of `stack` n a percentage of the price with the taxes of the stacks
//! below. The total (without and with taxes) is then held between `minCost` and `maxCost`.
//!
//! # Conditions
//!
//! Times of day, days of the week and dates are read in the station's local time, given as
//! a fixed offset ([`CostContext::utc_offset_s`]). `min*` bounds are inclusive, `max*` bounds
//! exclusive (`validToDate` is the first day the element no longer applies); an
//! `endTimeOfDay` before the `startTimeOfDay` spans midnight. A condition on a value that is
//! not known (the current, the power of a zero-length interval, the EVSE kind, the payment
//! brand) does not hold.
//!
//! # Exactness and bounds
//!
//! Every amount is a [`Decimal`] computed with checked arithmetic; nothing is floating
//! point. An overflow is [`CostError::Overflow`], never a panic or a wrong number. Amounts
//! are kept exact; [`CostBreakdown::rounded`] rounds them (half away from zero) for the
//! wire, each component first and the total as their sum. A tariff holds at most
//! [`MAX_ELEMENTS`] price elements (the station's own limit, `TariffCtrlr.MaxElements`,
//! may be lower: [`TariffLimits`]); one interval is split into at most [`MAX_STEPS`] parts.
//! Prices, tax rates and costs may not be negative.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, Offset, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::v21::{
    DayOfWeekEnumType, EvseKindEnumType, PriceType, TariffConditionsFixedType,
    TariffConditionsType, TariffType, TaxRateType, TotalCostType, TotalPriceType,
};

/// The most price elements (energy, charging time, idle time, fixed fee and reservation
/// elements together) any tariff may hold, whatever a station or central system allows.
pub const MAX_ELEMENTS: usize = 1000;

/// The most parts one [`Usage`] interval is split into; a longer walk is
/// [`CostError::TooManySteps`] (a multi-year interval under a time-of-day tariff).
pub const MAX_STEPS: usize = 100_000;

/// Why a tariff is refused before it is stored or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TariffError {
    /// More price elements than allowed (answered `TooManyElements`).
    #[error("the tariff has {count} price elements, at most {max} are allowed")]
    TooManyElements {
        /// Elements in the tariff.
        count: usize,
        /// The limit that applied.
        max: usize,
    },
    /// The currency is not three upper-case letters (ISO 4217).
    #[error("currency {0:?} is not an ISO 4217 code")]
    Currency(String),
    /// A time of day that is not `HH:MM`.
    #[error("time of day {0:?} is not HH:MM")]
    TimeOfDay(String),
    /// A date that is not `YYYY-MM-DD`.
    #[error("date {0:?} is not YYYY-MM-DD")]
    Date(String),
    /// A price, bound, tax rate or cost below zero.
    #[error("negative {0}")]
    Negative(&'static str),
    /// A `min*` bound above its `max*` bound, or `minCost` above `maxCost`.
    #[error("{0}: the minimum is above the maximum")]
    Range(&'static str),
}

/// Why a cost could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CostError {
    /// An interval that ends before it starts, or starts before the previous one ended.
    #[error("the usage interval is out of order")]
    Order,
    /// Negative energy in an interval.
    #[error("negative energy in a usage interval")]
    NegativeEnergy,
    /// A number left the range of an exact decimal (about 7.9e28) or of the time line.
    #[error("the cost does not fit an exact decimal")]
    Overflow,
    /// The interval needs more than [`MAX_STEPS`] parts.
    #[error("the usage interval needs more than {MAX_STEPS} parts")]
    TooManySteps,
    /// A tariff change to another currency (answered `NoCurrencyChange`).
    #[error("the new tariff's currency differs")]
    CurrencyChange,
}

/// A kind of condition, for a station to say which ones it can evaluate
/// (`ConditionNotSupported`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConditionKind {
    /// `startTimeOfDay` / `endTimeOfDay`.
    TimeOfDay,
    /// `dayOfWeek`.
    DayOfWeek,
    /// `validFromDate` / `validToDate`.
    Date,
    /// `evseKind`.
    EvseKind,
    /// `minEnergy` / `maxEnergy`.
    Energy,
    /// `minCurrent` / `maxCurrent`.
    Current,
    /// `minPower` / `maxPower`.
    Power,
    /// `minTime` / `maxTime`.
    Time,
    /// `minChargingTime` / `maxChargingTime`.
    ChargingTime,
    /// `minIdleTime` / `maxIdleTime`.
    IdleTime,
    /// `paymentBrand` (fixed prices).
    PaymentBrand,
    /// `paymentRecognition` (fixed prices).
    PaymentRecognition,
}

/// A tariff's own limits: how many elements, which conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TariffLimits {
    /// The most price elements (`TariffCtrlr.MaxElements`); never above [`MAX_ELEMENTS`].
    pub max_elements: usize,
    /// The conditions that may be used; others are `ConditionNotSupported`.
    pub conditions: BTreeSet<ConditionKind>,
}

impl Default for TariffLimits {
    /// 100 elements and every condition but the payment ones (a station without a payment
    /// terminal cannot tell a brand).
    fn default() -> Self {
        use ConditionKind::*;
        TariffLimits {
            max_elements: 100,
            conditions: [
                TimeOfDay,
                DayOfWeek,
                Date,
                EvseKind,
                Energy,
                Current,
                Power,
                Time,
                ChargingTime,
                IdleTime,
            ]
            .into_iter()
            .collect(),
        }
    }
}

/// A closed-open range `[min, max)` of a condition; a missing end is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Range<T> {
    /// Inclusive lower bound.
    pub min: Option<T>,
    /// Exclusive upper bound.
    pub max: Option<T>,
}

impl<T: PartialOrd + Copy> Range<T> {
    fn is_set(&self) -> bool {
        self.min.is_some() || self.max.is_some()
    }
    fn holds(&self, v: Option<T>) -> bool {
        if !self.is_set() {
            return true;
        }
        let Some(v) = v else { return false };
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v < m)
    }
    fn check(&self, what: &'static str) -> Result<(), TariffError> {
        match (self.min, self.max) {
            (Some(a), Some(b)) if a > b => Err(TariffError::Range(what)),
            _ => Ok(()),
        }
    }
}

/// The parsed conditions of one price element.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Conditions {
    /// `startTimeOfDay`, local.
    pub start_time_of_day: Option<NaiveTime>,
    /// `endTimeOfDay`, local.
    pub end_time_of_day: Option<NaiveTime>,
    /// `dayOfWeek` as a mask, bit 0 Monday.
    pub days: Option<u8>,
    /// `validFromDate` (inclusive) and `validToDate` (exclusive), local.
    pub dates: Range<NaiveDate>,
    /// `evseKind`.
    pub evse_kind: Option<EvseKindEnumType>,
    /// `minEnergy` / `maxEnergy`, Wh of the transaction so far.
    pub energy: Range<Decimal>,
    /// `minCurrent` / `maxCurrent`, A.
    pub current: Range<Decimal>,
    /// `minPower` / `maxPower`, W (the interval's mean power).
    pub power: Range<Decimal>,
    /// `minTime` / `maxTime`, seconds since the transaction started.
    pub time: Range<i64>,
    /// `minChargingTime` / `maxChargingTime`, seconds charged so far.
    pub charging_time: Range<i64>,
    /// `minIdleTime` / `maxIdleTime`, seconds idle so far.
    pub idle_time: Range<i64>,
    /// `paymentBrand`.
    pub payment_brand: Option<String>,
    /// `paymentRecognition`.
    pub payment_recognition: Option<String>,
}

fn parse_tod(s: &Option<String>) -> Result<Option<NaiveTime>, TariffError> {
    s.as_deref()
        .map(|t| {
            if t.len() != 5 {
                return Err(TariffError::TimeOfDay(t.to_owned()));
            }
            NaiveTime::parse_from_str(t, "%H:%M").map_err(|_| TariffError::TimeOfDay(t.to_owned()))
        })
        .transpose()
}

fn parse_date(s: &Option<String>) -> Result<Option<NaiveDate>, TariffError> {
    s.as_deref()
        .map(|t| {
            NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| TariffError::Date(t.to_owned()))
        })
        .transpose()
}

fn day_mask(days: &Option<Vec<DayOfWeekEnumType>>) -> Option<u8> {
    days.as_ref().map(|v| {
        v.iter().fold(0u8, |m, d| {
            m | 1
                << match d {
                    DayOfWeekEnumType::Monday => 0,
                    DayOfWeekEnumType::Tuesday => 1,
                    DayOfWeekEnumType::Wednesday => 2,
                    DayOfWeekEnumType::Thursday => 3,
                    DayOfWeekEnumType::Friday => 4,
                    DayOfWeekEnumType::Saturday => 5,
                    DayOfWeekEnumType::Sunday => 6,
                }
        })
    })
}

fn nonneg(v: Option<Decimal>, what: &'static str) -> Result<Option<Decimal>, TariffError> {
    match v {
        Some(d) if d.is_sign_negative() && !d.is_zero() => Err(TariffError::Negative(what)),
        _ => Ok(v),
    }
}

fn secs(v: Option<i32>, what: &'static str) -> Result<Option<i64>, TariffError> {
    match v {
        Some(s) if s < 0 => Err(TariffError::Negative(what)),
        _ => Ok(v.map(i64::from)),
    }
}

impl Conditions {
    fn from_element(c: &TariffConditionsType) -> Result<Self, TariffError> {
        let out = Conditions {
            start_time_of_day: parse_tod(&c.start_time_of_day)?,
            end_time_of_day: parse_tod(&c.end_time_of_day)?,
            days: day_mask(&c.day_of_week),
            dates: Range {
                min: parse_date(&c.valid_from_date)?,
                max: parse_date(&c.valid_to_date)?,
            },
            evse_kind: c.evse_kind,
            energy: Range {
                min: nonneg(c.min_energy, "minEnergy")?,
                max: nonneg(c.max_energy, "maxEnergy")?,
            },
            current: Range {
                min: nonneg(c.min_current, "minCurrent")?,
                max: nonneg(c.max_current, "maxCurrent")?,
            },
            power: Range {
                min: nonneg(c.min_power, "minPower")?,
                max: nonneg(c.max_power, "maxPower")?,
            },
            time: Range {
                min: secs(c.min_time, "minTime")?,
                max: secs(c.max_time, "maxTime")?,
            },
            charging_time: Range {
                min: secs(c.min_charging_time, "minChargingTime")?,
                max: secs(c.max_charging_time, "maxChargingTime")?,
            },
            idle_time: Range {
                min: secs(c.min_idle_time, "minIdleTime")?,
                max: secs(c.max_idle_time, "maxIdleTime")?,
            },
            payment_brand: None,
            payment_recognition: None,
        };
        out.check()?;
        Ok(out)
    }

    fn from_fixed(c: &TariffConditionsFixedType) -> Result<Self, TariffError> {
        let out = Conditions {
            start_time_of_day: parse_tod(&c.start_time_of_day)?,
            end_time_of_day: parse_tod(&c.end_time_of_day)?,
            days: day_mask(&c.day_of_week),
            dates: Range {
                min: parse_date(&c.valid_from_date)?,
                max: parse_date(&c.valid_to_date)?,
            },
            evse_kind: c.evse_kind,
            payment_brand: c.payment_brand.as_ref().map(|s| s.as_str().to_owned()),
            payment_recognition: c
                .payment_recognition
                .as_ref()
                .map(|s| s.as_str().to_owned()),
            ..Conditions::default()
        };
        out.check()?;
        Ok(out)
    }

    fn check(&self) -> Result<(), TariffError> {
        self.dates.check("validFromDate/validToDate")?;
        self.energy.check("minEnergy/maxEnergy")?;
        self.current.check("minCurrent/maxCurrent")?;
        self.power.check("minPower/maxPower")?;
        self.time.check("minTime/maxTime")?;
        self.charging_time
            .check("minChargingTime/maxChargingTime")?;
        self.idle_time.check("minIdleTime/maxIdleTime")
    }

    /// The kinds of condition this element uses.
    pub fn kinds(&self) -> impl Iterator<Item = ConditionKind> + '_ {
        use ConditionKind::*;
        [
            (
                self.start_time_of_day.is_some() || self.end_time_of_day.is_some(),
                TimeOfDay,
            ),
            (self.days.is_some(), DayOfWeek),
            (self.dates.is_set(), Date),
            (self.evse_kind.is_some(), EvseKind),
            (self.energy.is_set(), Energy),
            (self.current.is_set(), Current),
            (self.power.is_set(), Power),
            (self.time.is_set(), Time),
            (self.charging_time.is_set(), ChargingTime),
            (self.idle_time.is_set(), IdleTime),
            (self.payment_brand.is_some(), PaymentBrand),
            (self.payment_recognition.is_some(), PaymentRecognition),
        ]
        .into_iter()
        .filter_map(|(on, k)| on.then_some(k))
    }

    fn holds(&self, s: &State, ctx: &CostContext) -> bool {
        let local = s.at.with_timezone(&ctx.offset());
        let tod = local.time();
        let tod_ok = match (self.start_time_of_day, self.end_time_of_day) {
            (None, None) => true,
            (Some(a), None) => tod >= a,
            (None, Some(b)) => tod < b,
            (Some(a), Some(b)) if a <= b => tod >= a && tod < b,
            (Some(a), Some(b)) => tod >= a || tod < b,
        };
        let day = local.weekday().num_days_from_monday();
        tod_ok
            && self.days.is_none_or(|m| m & (1 << day) != 0)
            && self.dates.holds(Some(local.date_naive()))
            && self
                .evse_kind
                .is_none_or(|k| ctx.evse_kind.is_some_and(|c| c == k))
            && self.energy.holds(Some(s.energy_wh))
            && self.current.holds(s.current_a)
            && self.power.holds(s.power_w)
            && self.time.holds(Some(s.elapsed_s))
            && self.charging_time.holds(Some(s.charging_s))
            && self.idle_time.holds(Some(s.idle_s))
            && self
                .payment_brand
                .as_ref()
                .is_none_or(|b| ctx.payment_brand.as_ref() == Some(b))
            && self
                .payment_recognition
                .as_ref()
                .is_none_or(|b| ctx.payment_recognition.as_ref() == Some(b))
    }
}

/// One price element: a price (per kWh, per minute or fixed) and its conditions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Element {
    /// The price, without taxes.
    pub price: Decimal,
    /// When it applies.
    pub conditions: Conditions,
}

/// A priced component: its elements, first match wins, and its tax rates.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Component {
    /// The price elements, in the tariff's order.
    pub elements: Vec<Element>,
    /// The tax rates: (percentage, stack level).
    pub taxes: Vec<(Decimal, u32)>,
}

fn taxes(t: &Option<Vec<TaxRateType>>) -> Result<Vec<(Decimal, u32)>, TariffError> {
    t.iter()
        .flatten()
        .map(|r| {
            nonneg(Some(r.tax), "tax rate")?;
            Ok((r.tax, u32::try_from(r.stack.unwrap_or(0)).unwrap_or(0)))
        })
        .collect()
}

/// Adds the taxes to a net amount, stack by stack.
fn with_taxes(net: Decimal, taxes: &[(Decimal, u32)]) -> Result<Decimal, CostError> {
    let mut levels: Vec<u32> = taxes.iter().map(|t| t.1).collect();
    levels.sort_unstable();
    levels.dedup();
    let mut base = net;
    for level in levels {
        let rate = taxes
            .iter()
            .filter(|t| t.1 == level)
            .try_fold(Decimal::ZERO, |a, t| a.checked_add(t.0))
            .ok_or(CostError::Overflow)?;
        let tax = base
            .checked_mul(rate)
            .and_then(|x| x.checked_div(Decimal::ONE_HUNDRED))
            .ok_or(CostError::Overflow)?;
        base = base.checked_add(tax).ok_or(CostError::Overflow)?;
    }
    Ok(base)
}

impl Component {
    fn first(&self, s: &State, ctx: &CostContext) -> Option<&Element> {
        self.elements.iter().find(|e| e.conditions.holds(s, ctx))
    }
}

/// A cost bound (`minCost` / `maxCost`): without and with taxes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bound {
    /// `exclTax`.
    pub excl: Option<Decimal>,
    /// `inclTax`, or `exclTax` with the bound's own `taxRates`.
    pub incl: Option<Decimal>,
}

impl Bound {
    fn from_price(p: &PriceType, what: &'static str) -> Result<Self, TariffError> {
        let excl = nonneg(p.excl_tax, what)?;
        let mut incl = nonneg(p.incl_tax, what)?;
        if incl.is_none() {
            if let Some(e) = excl {
                incl = with_taxes(e, &taxes(&p.tax_rates)?).ok();
            }
        }
        Ok(Bound { excl, incl })
    }
}

/// A validated OCPP 2.1 tariff. Built with [`Tariff::new`] from the wire type, which it
/// keeps ([`Tariff::wire`]) to send it on unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tariff {
    /// `tariffId`.
    pub id: String,
    /// `currency`, ISO 4217.
    pub currency: String,
    /// `validFrom`: the tariff applies from then on.
    pub valid_from: Option<DateTime<Utc>>,
    /// `energy`: per kWh.
    pub energy: Component,
    /// `chargingTime`: per minute charging.
    pub charging_time: Component,
    /// `idleTime`: per minute connected, not charging.
    pub idle_time: Component,
    /// `fixedFee`: once per transaction.
    pub fixed_fee: Component,
    /// `minCost`.
    pub min_cost: Option<Bound>,
    /// `maxCost`.
    pub max_cost: Option<Bound>,
    /// The tariff as it came.
    pub wire: TariffType,
}

/// The number of price elements of a tariff, reservation elements included.
pub fn element_count(t: &TariffType) -> usize {
    let time = |c: &Option<crate::v21::TariffTimeType>| c.as_ref().map_or(0, |c| c.prices.len());
    let fixed = |c: &Option<crate::v21::TariffFixedType>| c.as_ref().map_or(0, |c| c.prices.len());
    t.energy.as_ref().map_or(0, |e| e.prices.len())
        + time(&t.charging_time)
        + time(&t.idle_time)
        + time(&t.reservation_time)
        + fixed(&t.fixed_fee)
        + fixed(&t.reservation_fixed)
}

impl Tariff {
    /// Checks a tariff and parses its conditions. The element count is checked first,
    /// against `max_elements` (capped at [`MAX_ELEMENTS`]), so a tariff of 60,000 elements
    /// is refused before any of them is read.
    pub fn new(t: &TariffType, max_elements: usize) -> Result<Self, TariffError> {
        let count = element_count(t);
        let max = max_elements.min(MAX_ELEMENTS);
        if count > max {
            return Err(TariffError::TooManyElements { count, max });
        }
        let cur = t.currency.as_str();
        if cur.len() != 3 || !cur.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(TariffError::Currency(cur.to_owned()));
        }
        let energy = match &t.energy {
            None => Component::default(),
            Some(e) => Component {
                elements: e
                    .prices
                    .iter()
                    .map(|p| {
                        Ok(Element {
                            price: nonneg(Some(p.price_kwh), "priceKwh")?.unwrap_or(Decimal::ZERO),
                            conditions: p
                                .conditions
                                .as_ref()
                                .map(Conditions::from_element)
                                .transpose()?
                                .unwrap_or_default(),
                        })
                    })
                    .collect::<Result<_, TariffError>>()?,
                taxes: taxes(&e.tax_rates)?,
            },
        };
        let time = |c: &Option<crate::v21::TariffTimeType>| -> Result<Component, TariffError> {
            let Some(c) = c else {
                return Ok(Component::default());
            };
            Ok(Component {
                elements: c
                    .prices
                    .iter()
                    .map(|p| {
                        Ok(Element {
                            price: nonneg(Some(p.price_minute), "priceMinute")?
                                .unwrap_or(Decimal::ZERO),
                            conditions: p
                                .conditions
                                .as_ref()
                                .map(Conditions::from_element)
                                .transpose()?
                                .unwrap_or_default(),
                        })
                    })
                    .collect::<Result<_, TariffError>>()?,
                taxes: taxes(&c.tax_rates)?,
            })
        };
        let fixed_fee = match &t.fixed_fee {
            None => Component::default(),
            Some(c) => Component {
                elements: c
                    .prices
                    .iter()
                    .map(|p| {
                        Ok(Element {
                            price: nonneg(Some(p.price_fixed), "priceFixed")?
                                .unwrap_or(Decimal::ZERO),
                            conditions: p
                                .conditions
                                .as_ref()
                                .map(Conditions::from_fixed)
                                .transpose()?
                                .unwrap_or_default(),
                        })
                    })
                    .collect::<Result<_, TariffError>>()?,
                taxes: taxes(&c.tax_rates)?,
            },
        };
        let min_cost = t
            .min_cost
            .as_ref()
            .map(|p| Bound::from_price(p, "minCost"))
            .transpose()?;
        let max_cost = t
            .max_cost
            .as_ref()
            .map(|p| Bound::from_price(p, "maxCost"))
            .transpose()?;
        if let (Some(a), Some(b)) = (&min_cost, &max_cost) {
            if matches!((a.excl, b.excl), (Some(x), Some(y)) if x > y)
                || matches!((a.incl, b.incl), (Some(x), Some(y)) if x > y)
            {
                return Err(TariffError::Range("minCost/maxCost"));
            }
        }
        Ok(Tariff {
            id: t.tariff_id.as_str().to_owned(),
            currency: cur.to_owned(),
            valid_from: t.valid_from.as_ref().map(|v| v.to_utc()),
            energy,
            charging_time: time(&t.charging_time)?,
            idle_time: time(&t.idle_time)?,
            fixed_fee,
            min_cost,
            max_cost,
            wire: t.clone(),
        })
    }

    /// Like [`Tariff::new`] with `limits.max_elements`, and every condition used must be in
    /// `limits.conditions` ([`Refusal::Condition`] names the first one that is not).
    pub fn checked(t: &TariffType, limits: &TariffLimits) -> Result<Self, Refusal> {
        let tariff = Tariff::new(t, limits.max_elements).map_err(Refusal::Invalid)?;
        if let Some(k) = tariff.conditions().find(|k| !limits.conditions.contains(k)) {
            return Err(Refusal::Condition(k));
        }
        Ok(tariff)
    }

    /// Every condition kind the tariff uses (with repeats).
    pub fn conditions(&self) -> impl Iterator<Item = ConditionKind> + '_ {
        [
            &self.energy,
            &self.charging_time,
            &self.idle_time,
            &self.fixed_fee,
        ]
        .into_iter()
        .flat_map(|c| c.elements.iter())
        .flat_map(|e| e.conditions.kinds())
    }

    fn all_elements(&self) -> impl Iterator<Item = &Element> + '_ {
        [&self.energy, &self.charging_time, &self.idle_time]
            .into_iter()
            .flat_map(|c| c.elements.iter())
    }
}

/// Why a station or central system refuses a tariff.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The tariff is invalid or too large.
    #[error(transparent)]
    Invalid(TariffError),
    /// It uses a condition that is not supported (answered `ConditionNotSupported`).
    #[error("condition {0:?} is not supported")]
    Condition(ConditionKind),
}

/// What the cost depends on besides usage: the station's local time and what it knows
/// about the EVSE and the payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostContext {
    /// The station's offset from UTC in seconds, for times of day, days and dates (an offset
    /// beyond a day is read as UTC).
    pub utc_offset_s: i32,
    /// The EVSE's kind, when known.
    pub evse_kind: Option<EvseKindEnumType>,
    /// The payment brand, when known.
    pub payment_brand: Option<String>,
    /// The payment recognition, when known.
    pub payment_recognition: Option<String>,
}

impl CostContext {
    /// The offset as a chrono offset.
    pub fn offset(&self) -> FixedOffset {
        FixedOffset::east_opt(self.utc_offset_s).unwrap_or_else(|| Utc.fix())
    }
}

impl Default for CostContext {
    /// UTC, nothing known.
    fn default() -> Self {
        CostContext {
            utc_offset_s: 0,
            evse_kind: None,
            payment_brand: None,
            payment_recognition: None,
        }
    }
}

/// One interval of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// Start.
    pub start: DateTime<Utc>,
    /// End (not before `start`).
    pub end: DateTime<Utc>,
    /// Energy delivered in it, Wh (not negative).
    pub energy_wh: Decimal,
    /// Charging (else idle: connected, not charging).
    pub charging: bool,
    /// The current, A, when known.
    pub current_a: Option<Decimal>,
}

/// The amounts of one component: without and with taxes.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Amount {
    /// Without taxes.
    pub excl: Decimal,
    /// With taxes.
    pub incl: Decimal,
}

impl Amount {
    fn add(&mut self, net: Decimal, taxes: &[(Decimal, u32)]) -> Result<(), CostError> {
        let gross = with_taxes(net, taxes)?;
        self.excl = self.excl.checked_add(net).ok_or(CostError::Overflow)?;
        self.incl = self.incl.checked_add(gross).ok_or(CostError::Overflow)?;
        Ok(())
    }
    fn checked_add(self, o: Amount) -> Result<Amount, CostError> {
        Ok(Amount {
            excl: self.excl.checked_add(o.excl).ok_or(CostError::Overflow)?,
            incl: self.incl.checked_add(o.incl).ok_or(CostError::Overflow)?,
        })
    }
    fn round(self, dp: u32) -> Amount {
        let r = |d: Decimal| d.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
        Amount {
            excl: r(self.excl),
            incl: r(self.incl),
        }
    }
}

/// A transaction's cost by component, with its usage.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CostBreakdown {
    /// `tariffId` of the tariff that priced the last interval.
    pub tariff_id: String,
    /// Currency.
    pub currency: String,
    /// Energy.
    pub energy: Amount,
    /// Charging time.
    pub charging_time: Amount,
    /// Idle time.
    pub idle_time: Amount,
    /// Fixed fee.
    pub fixed: Amount,
    /// The total after `minCost` / `maxCost`.
    pub total: Amount,
    /// Energy delivered, Wh.
    pub energy_wh: Decimal,
    /// Seconds charging.
    pub charging_s: i64,
    /// Seconds idle.
    pub idle_s: i64,
}

impl CostBreakdown {
    /// Rounds every component to `dp` decimals (half away from zero) and makes the total
    /// their sum, held between the tariff's bounds (which `tariff` gives again).
    pub fn rounded(&self, dp: u32, tariff: &Tariff) -> Result<CostBreakdown, CostError> {
        let mut out = self.clone();
        out.energy = self.energy.round(dp);
        out.charging_time = self.charging_time.round(dp);
        out.idle_time = self.idle_time.round(dp);
        out.fixed = self.fixed.round(dp);
        let sum = out
            .energy
            .checked_add(out.charging_time)?
            .checked_add(out.idle_time)?
            .checked_add(out.fixed)?;
        out.total = clamp(sum, tariff).round(dp);
        Ok(out)
    }

    /// The tax part of the total.
    pub fn tax(&self) -> Decimal {
        self.total.incl.saturating_sub(self.total.excl)
    }

    /// The 2.1 `totalCost` of `costDetails` (`typeOfCost` given).
    pub fn to_total_cost(&self, kind: crate::v21::TariffCostEnumType) -> TotalCostType {
        let price = |a: Amount| {
            Some(PriceType {
                excl_tax: Some(a.excl),
                incl_tax: Some(a.incl),
                tax_rates: None,
                custom_data: None,
            })
        };
        TotalCostType {
            currency: crate::BoundedString::new(self.currency.clone())
                .unwrap_or_else(|_| crate::BoundedString::default()),
            type_of_cost: kind,
            fixed: price(self.fixed),
            energy: price(self.energy),
            charging_time: price(self.charging_time),
            idle_time: price(self.idle_time),
            reservation_time: None,
            reservation_fixed: None,
            total: TotalPriceType {
                excl_tax: Some(self.total.excl),
                incl_tax: Some(self.total.incl),
                custom_data: None,
            },
            custom_data: None,
        }
    }
}

fn clamp(sum: Amount, t: &Tariff) -> Amount {
    let mut out = sum;
    if let Some(b) = &t.min_cost {
        if let Some(m) = b.excl {
            out.excl = out.excl.max(m);
        }
        if let Some(m) = b.incl {
            out.incl = out.incl.max(m);
        }
    }
    if let Some(b) = &t.max_cost {
        if let Some(m) = b.excl {
            out.excl = out.excl.min(m);
        }
        if let Some(m) = b.incl {
            out.incl = out.incl.min(m);
        }
    }
    out
}

/// Where a transaction is when a condition is evaluated.
#[derive(Clone, Copy)]
struct State {
    at: DateTime<Utc>,
    energy_wh: Decimal,
    elapsed_s: i64,
    charging_s: i64,
    idle_s: i64,
    power_w: Option<Decimal>,
    current_a: Option<Decimal>,
}

/// The running cost of one transaction: feed it the usage intervals in order, read the
/// breakdown at any time. Serializable, so a station or a backend can persist it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostMeter {
    /// The tariff in force.
    pub tariff: Tariff,
    /// The context the conditions are read in.
    pub context: CostContext,
    /// When the transaction started.
    pub started: DateTime<Utc>,
    /// The end of the last interval added.
    pub until: DateTime<Utc>,
    /// The amounts so far (exact, before the bounds).
    pub breakdown: CostBreakdown,
}

impl CostMeter {
    /// A meter for a transaction that started at `started`: the fixed fee is charged now,
    /// from the first fixed element whose conditions hold at the start.
    pub fn new(
        tariff: Tariff,
        context: CostContext,
        started: DateTime<Utc>,
    ) -> Result<Self, CostError> {
        let mut b = CostBreakdown {
            tariff_id: tariff.id.clone(),
            currency: tariff.currency.clone(),
            ..CostBreakdown::default()
        };
        let s = State {
            at: started,
            energy_wh: Decimal::ZERO,
            elapsed_s: 0,
            charging_s: 0,
            idle_s: 0,
            power_w: None,
            current_a: None,
        };
        if let Some(e) = tariff.fixed_fee.first(&s, &context) {
            b.fixed.add(e.price, &tariff.fixed_fee.taxes)?;
        }
        b.total = clamp(b.fixed, &tariff);
        Ok(CostMeter {
            tariff,
            context,
            started,
            until: started,
            breakdown: b,
        })
    }

    /// Puts another tariff in force from now on (ChangeTransactionTariff, use case I12): what
    /// was priced stays, the fixed fee is not charged again. The currency may not change.
    pub fn change_tariff(&mut self, tariff: Tariff) -> Result<(), CostError> {
        if tariff.currency != self.tariff.currency {
            return Err(CostError::CurrencyChange);
        }
        self.breakdown.tariff_id = tariff.id.clone();
        self.tariff = tariff;
        self.breakdown.total = self.total()?;
        Ok(())
    }

    fn total(&self) -> Result<Amount, CostError> {
        let b = &self.breakdown;
        let sum = b
            .energy
            .checked_add(b.charging_time)?
            .checked_add(b.idle_time)?
            .checked_add(b.fixed)?;
        Ok(clamp(sum, &self.tariff))
    }

    /// The cost so far, exact.
    pub fn breakdown(&self) -> &CostBreakdown {
        &self.breakdown
    }

    /// The next instant after `t` (local day boundaries and times of day) at which a
    /// time-of-day, day or date condition can change, if any element has one.
    fn next_clock_boundary(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let offset = self.context.offset();
        let local = t.with_timezone(&offset);
        let mut marks: Vec<NaiveTime> = Vec::new();
        let mut midnight = false;
        for e in self.tariff.all_elements() {
            let c = &e.conditions;
            marks.extend(c.start_time_of_day);
            marks.extend(c.end_time_of_day);
            midnight |= c.days.is_some() || c.dates.is_set();
        }
        if marks.is_empty() && !midnight {
            return None;
        }
        marks.push(NaiveTime::MIN);
        let today = local.date_naive();
        // The last day of the calendar has no tomorrow.
        let days: Vec<NaiveDate> = [Some(today), today.succ_opt()]
            .into_iter()
            .flatten()
            .collect();
        marks
            .iter()
            .flat_map(|m| days.iter().map(move |d| d.and_time(*m)))
            .filter(|n| *n > local.naive_local())
            .min()
            .and_then(|n| n.and_local_timezone(offset).single())
            .map(|d| d.with_timezone(&Utc))
    }

    /// The next instant after `t` at which a duration threshold is crossed.
    fn next_duration_boundary(
        &self,
        t: DateTime<Utc>,
        elapsed: i64,
        charging: i64,
        idle: i64,
        is_charging: bool,
    ) -> Option<DateTime<Utc>> {
        let mut best: Option<i64> = None;
        let mut consider = |threshold: Option<i64>, now: i64| {
            if let Some(th) = threshold {
                if th > now {
                    let d = th - now;
                    best = Some(best.map_or(d, |b| b.min(d)));
                }
            }
        };
        for e in self.tariff.all_elements() {
            let c = &e.conditions;
            consider(c.time.min, elapsed);
            consider(c.time.max, elapsed);
            if is_charging {
                consider(c.charging_time.min, charging);
                consider(c.charging_time.max, charging);
            } else {
                consider(c.idle_time.min, idle);
                consider(c.idle_time.max, idle);
            }
        }
        best.and_then(|d| t.checked_add_signed(Duration::seconds(d)))
    }

    /// The first whole second after `t` at which the energy delivered so far, spread evenly
    /// over the interval, crosses a time element's `minEnergy` / `maxEnergy`.
    fn next_energy_boundary(
        &self,
        t: DateTime<Utc>,
        u: &Usage,
        total_s: i64,
    ) -> Option<DateTime<Utc>> {
        if total_s <= 0 || u.energy_wh <= Decimal::ZERO {
            return None;
        }
        let now = self.breakdown.energy_wh;
        let comp = if u.charging {
            &self.tariff.charging_time
        } else {
            &self.tariff.idle_time
        };
        let th = comp
            .elements
            .iter()
            .flat_map(|e| [e.conditions.energy.min, e.conditions.energy.max])
            .flatten()
            .filter(|b| *b > now)
            .min()?;
        let secs = th
            .checked_sub(now)?
            .checked_mul(Decimal::from(total_s))?
            .checked_div(u.energy_wh)?
            .ceil();
        let secs = i64::try_from(secs).ok()?.max(1);
        t.checked_add_signed(Duration::try_seconds(secs)?)
    }

    /// Prices one interval. Intervals come in order: one may not start before the previous
    /// one ended (a gap is fine: it is not priced).
    pub fn add(&mut self, u: &Usage) -> Result<(), CostError> {
        if u.end < u.start || u.start < self.until || u.start < self.started {
            return Err(CostError::Order);
        }
        if u.energy_wh.is_sign_negative() && !u.energy_wh.is_zero() {
            return Err(CostError::NegativeEnergy);
        }
        let total_s = (u.end - u.start).num_seconds();
        let mut next = self.clone();
        let mut t = u.start;
        let mut energy_left = u.energy_wh;
        let mut steps = 0usize;
        loop {
            steps += 1;
            if steps > MAX_STEPS {
                return Err(CostError::TooManySteps);
            }
            let b = &next.breakdown;
            let elapsed = (t - next.started).num_seconds();
            let mut step_end = u.end;
            for cand in [
                next.next_clock_boundary(t),
                next.next_duration_boundary(t, elapsed, b.charging_s, b.idle_s, u.charging),
                next.next_energy_boundary(t, u, total_s),
            ]
            .into_iter()
            .flatten()
            {
                if cand < step_end {
                    step_end = cand;
                }
            }
            let dt = (step_end - t).num_seconds();
            let de = if step_end == u.end {
                energy_left
            } else {
                u.energy_wh
                    .checked_mul(Decimal::from(dt))
                    .and_then(|x| x.checked_div(Decimal::from(total_s)))
                    .ok_or(CostError::Overflow)?
            };
            let power_w = if dt > 0 {
                de.checked_mul(Decimal::from(3600))
                    .and_then(|x| x.checked_div(Decimal::from(dt)))
            } else {
                None
            };
            let state = State {
                at: t,
                energy_wh: b.energy_wh,
                elapsed_s: elapsed,
                charging_s: b.charging_s,
                idle_s: b.idle_s,
                power_w,
                current_a: u.current_a,
            };
            // Time.
            let comp = if u.charging {
                &next.tariff.charging_time
            } else {
                &next.tariff.idle_time
            };
            if let Some(e) = comp.first(&state, &next.context) {
                let net = e
                    .price
                    .checked_mul(Decimal::from(dt))
                    .and_then(|x| x.checked_div(Decimal::from(60)))
                    .ok_or(CostError::Overflow)?;
                let taxes = comp.taxes.clone();
                let slot = if u.charging {
                    &mut next.breakdown.charging_time
                } else {
                    &mut next.breakdown.idle_time
                };
                slot.add(net, &taxes)?;
            }
            // Energy, split at the energy thresholds.
            next.price_energy(de, &state)?;
            energy_left = energy_left.checked_sub(de).ok_or(CostError::Overflow)?;
            let b = &mut next.breakdown;
            if u.charging {
                b.charging_s = b.charging_s.checked_add(dt).ok_or(CostError::Overflow)?;
            } else {
                b.idle_s = b.idle_s.checked_add(dt).ok_or(CostError::Overflow)?;
            }
            t = step_end;
            if t >= u.end {
                break;
            }
        }
        next.until = u.end;
        next.breakdown.total = next.total()?;
        *self = next;
        Ok(())
    }

    fn price_energy(&mut self, energy: Decimal, state: &State) -> Result<(), CostError> {
        let mut left = energy;
        let mut guard = 0usize;
        while left > Decimal::ZERO {
            guard += 1;
            if guard > 2 * MAX_ELEMENTS + 2 {
                return Err(CostError::TooManySteps);
            }
            let e_now = self.breakdown.energy_wh;
            let s = State {
                energy_wh: e_now,
                ..*state
            };
            let boundary = self
                .tariff
                .energy
                .elements
                .iter()
                .flat_map(|e| [e.conditions.energy.min, e.conditions.energy.max])
                .flatten()
                .filter(|b| *b > e_now)
                .min();
            let take = match boundary {
                Some(b) => left.min(b.checked_sub(e_now).ok_or(CostError::Overflow)?),
                None => left,
            };
            if let Some(e) = self.tariff.energy.first(&s, &self.context) {
                let net = e
                    .price
                    .checked_mul(take)
                    .and_then(|x| x.checked_div(Decimal::ONE_THOUSAND))
                    .ok_or(CostError::Overflow)?;
                let taxes = self.tariff.energy.taxes.clone();
                self.breakdown.energy.add(net, &taxes)?;
            }
            self.breakdown.energy_wh = e_now.checked_add(take).ok_or(CostError::Overflow)?;
            left = left.checked_sub(take).ok_or(CostError::Overflow)?;
        }
        Ok(())
    }
}
