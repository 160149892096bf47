//! The tariff that prices sessions: energy, time and a fixed fee, computed exactly.

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};

/// A simple public-charging tariff: a price per kWh, per started hour of plug-in time and a
/// fixed fee per session. Costs are exact decimals rounded half-up to the currency's cents.
#[derive(Debug, Clone, PartialEq)]
pub struct Tariff {
    /// Price per kWh.
    pub per_kwh: Decimal,
    /// Price per hour plugged in (charged per started minute, pro rata).
    pub per_hour: Decimal,
    /// Fixed fee per session.
    pub per_session: Decimal,
    /// ISO 4217 currency code.
    pub currency: String,
}

impl Default for Tariff {
    /// 0.30 per kWh, nothing per hour, no session fee, EUR.
    fn default() -> Self {
        Tariff {
            per_kwh: Decimal::new(30, 2),
            per_hour: Decimal::ZERO,
            per_session: Decimal::ZERO,
            currency: "EUR".into(),
        }
    }
}

impl Tariff {
    /// The currency code.
    pub fn currency(&self) -> &str {
        &self.currency
    }

    /// The cost of `energy_wh` delivered between `start` and `end`; `None` when it does not
    /// fit a decimal (an absurd energy or price: the caller keeps the last cost).
    pub fn cost(
        &self,
        energy_wh: Decimal,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Option<Decimal> {
        let kwh = energy_wh
            .max(Decimal::ZERO)
            .checked_div(Decimal::from(1000))?;
        let seconds = (end - start).num_seconds().max(0);
        let minutes = seconds.checked_add(59)? / 60;
        let hours = Decimal::from(minutes).checked_div(Decimal::from(60))?;
        let total = self
            .per_session
            .checked_add(kwh.checked_mul(self.per_kwh)?)?
            .checked_add(hours.checked_mul(self.per_hour)?)?;
        Some(total.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn energy_time_and_fee_are_priced_exactly() {
        let t = Tariff {
            per_kwh: d("0.39"),
            per_hour: d("1.20"),
            per_session: d("0.50"),
            currency: "EUR".into(),
        };
        let start = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z")
            .unwrap()
            .to_utc();
        // 12.345 kWh, 30 min 1 s (31 started minutes): 0.50 + 4.81455 + 0.62 = 5.93455 -> 5.93
        let end = start + chrono::Duration::seconds(30 * 60 + 1);
        assert_eq!(t.cost(d("12345"), start, end), Some(d("5.93")));
        // Nothing delivered, no time: the fee.
        assert_eq!(t.cost(Decimal::ZERO, start, start), Some(d("0.50")));
        // A register that went backwards never gives a negative energy price.
        assert_eq!(t.cost(d("-100"), start, start), Some(d("0.50")));
        // The largest energy a decimal holds, at a price that overflows: no price, no panic.
        let dear = Tariff {
            per_kwh: Decimal::MAX,
            ..t.clone()
        };
        assert_eq!(dear.cost(Decimal::MAX, start, start), None);
    }

    #[test]
    fn default_tariff_prices_energy_only() {
        let t = Tariff::default();
        let start = Utc::now();
        assert_eq!(
            t.cost(d("10000"), start, start + chrono::Duration::hours(5)),
            Some(d("3.00"))
        );
    }
}
