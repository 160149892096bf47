//! OCPP 2.1 tariffs on the station (functional block I, use cases I07 to I12) and the local
//! cost calculation (I05), over the shared model and calculator of
//! [`ocpp_types::tariff`].
//!
//! - **SetDefaultTariff** (I07): the tariff becomes the default of the EVSE (`evseId` 0:
//!   of the whole station; an EVSE's own default wins over the station's). Answers:
//!   `Rejected` when `TariffCostCtrlr.Enabled[Tariff]` is false, the EVSE does not exist, the
//!   tariff is invalid (a negative price, a malformed time of day or date, a currency that
//!   is not ISO 4217, a minimum above its maximum; the reason is in `statusInfo`) or the
//!   EVSE already holds [`TariffConfig::max_per_evse`] tariffs; `TooManyElements` above
//!   `TariffCostCtrlr.MaxElements[Tariff]` ([`TariffLimits::max_elements`], at most
//!   [`MAX_ELEMENTS`](ocpp_types::tariff::MAX_ELEMENTS)); `ConditionNotSupported` for a
//!   condition outside [`TariffLimits::conditions`]; `DuplicateTariffId` when the id is held
//!   already with another content (the same tariff may be the default of several EVSEs).
//!   A tariff with a later `validFrom` is kept beside the one in force and takes over then.
//! - **GetTariffs** (I10): the default tariffs of the EVSE (0: all) and the tariffs of its
//!   ongoing transactions (`DriverTariff`), `NoTariff` when there are none, `Rejected` for an
//!   unknown EVSE.
//! - **ClearTariffs** (I11): one result per tariff id asked (`Accepted` when it was held as
//!   a default, else `NoTariff`); without ids every default tariff (of `evseId` when given),
//!   one result. A transaction's tariff stays until the transaction ends.
//! - **ChangeTransactionTariff** (I12): `TxNotFound` for a transaction that is not ongoing,
//!   `NoCurrencyChange` for a tariff in another currency than the transaction's,
//!   `TooManyElements` / `ConditionNotSupported` / `Rejected` as above, else `Accepted`: the
//!   tariff prices the transaction from now on.
//!
//! A 2.1 transaction takes the tariff in force on its EVSE when it starts. With
//! [`TariffConfig::local_cost`] the station prices it itself, on its own clock: after every
//! input (`step.rs` calls `tariff_step`) each priced transaction's meter is read and the
//! interval since the last reading added to its [`CostMeter`]; a new total is reported as
//! [`StationEvent::Cost`] with `source` `"LocalCost"` (shown on the display like the
//! central system's cost), the transaction's end gives the final one. Tariffs and meters
//! are part of the state document, so they survive a restart.

use std::collections::BTreeSet;

use ocpp_types::tariff::{
    ConditionKind, CostContext, CostMeter, Refusal, Tariff, TariffError, TariffLimits, Usage,
};
use ocpp_types::v21::{
    ChangeTransactionTariffRequest, ChangeTransactionTariffResponse, ClearTariffsRequest,
    ClearTariffsResponse, ClearTariffsResultType, EvseKindEnumType, GetTariffsRequest,
    GetTariffsResponse, SetDefaultTariffRequest, SetDefaultTariffResponse, StatusInfoType,
    TariffAssignmentType, TariffChangeStatusEnumType, TariffClearStatusEnumType,
    TariffGetStatusEnumType, TariffKindEnumType, TariffSetStatusEnumType, TariffType,
};

use super::*;
use crate::app::{CallError, Context};
use ocpp_types::BoundedString;

/// The default of [`TariffConfig::max_per_evse`].
pub const DEFAULT_MAX_TARIFFS_PER_EVSE: usize = 4;

/// What the station does with tariffs.
#[derive(Debug, Clone, PartialEq)]
pub struct TariffConfig {
    /// Element count and the conditions the station can evaluate.
    pub limits: TariffLimits,
    /// The most default tariffs one EVSE (or the station, EVSE 0) holds: the one in force and
    /// those waiting for their `validFrom`. Default [`DEFAULT_MAX_TARIFFS_PER_EVSE`].
    pub max_per_evse: usize,
    /// Whether the station computes its transactions' cost itself (I05). Default off.
    pub local_cost: bool,
    /// The station's local time as an offset from UTC in seconds (times of day, days, dates).
    pub utc_offset_s: i32,
    /// The kind of the station's EVSEs (`evseKind` conditions), when known.
    pub evse_kind: Option<EvseKindEnumType>,
}

impl Default for TariffConfig {
    fn default() -> Self {
        TariffConfig {
            limits: TariffLimits::default(),
            max_per_evse: DEFAULT_MAX_TARIFFS_PER_EVSE,
            local_cost: false,
            utc_offset_s: 0,
            evse_kind: None,
        }
    }
}

/// A default tariff as held.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct HeldDefault {
    evse: u32,
    tariff: TariffType,
}

/// A transaction's tariff and, with local cost, its meter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TxTariff {
    transaction_id: String,
    evse: u32,
    tariff: TariffType,
    meter: Option<CostMeter>,
    /// The energy register at the last reading, Wh.
    last_wh: Option<Decimal>,
    /// The cost last reported.
    reported: Option<Decimal>,
}

/// The tariffs, as persisted (`StateDoc.tariffs`). Bounded: at most `max_per_evse` per EVSE
/// and one per ongoing transaction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct TariffDoc {
    defaults: Vec<HeldDefault>,
    txs: Vec<TxTariff>,
}

/// The station's tariffs, allocated only once a 2.1 station uses them (a station of another
/// version, or without tariffs, keeps one pointer: the simulator runs thousands).
#[derive(Debug, Default)]
pub(crate) struct TariffBox(Option<Box<TariffDoc>>);

static EMPTY: TariffDoc = TariffDoc {
    defaults: Vec::new(),
    txs: Vec::new(),
};

impl From<TariffDoc> for TariffBox {
    fn from(d: TariffDoc) -> Self {
        TariffBox((d != TariffDoc::default()).then(|| Box::new(d)))
    }
}

impl std::ops::Deref for TariffBox {
    type Target = TariffDoc;
    fn deref(&self) -> &TariffDoc {
        self.0.as_deref().unwrap_or(&EMPTY)
    }
}

impl std::ops::DerefMut for TariffBox {
    fn deref_mut(&mut self) -> &mut TariffDoc {
        self.0.get_or_insert_with(Box::default)
    }
}

fn info(reason: &str, detail: impl std::fmt::Display) -> Option<StatusInfoType> {
    let mut s = StatusInfoType::new(BoundedString::new(reason.to_owned()).unwrap_or_default());
    let mut text = detail.to_string();
    text.truncate(1000);
    s.additional_info = BoundedString::new(text).ok();
    Some(s)
}

fn context(cfg: &TariffConfig) -> CostContext {
    CostContext {
        utc_offset_s: cfg.utc_offset_s,
        evse_kind: cfg.evse_kind,
        ..CostContext::default()
    }
}

fn enabled(station: &Station) -> bool {
    let s = &station.settings;
    s.index("TariffCostCtrlr", "Enabled", Some("Tariff"))
        .is_none_or(|i| s.value_at(i) == "true")
}

/// The status a refused tariff is answered with: (TooManyElements, ConditionNotSupported,
/// Rejected).
enum Why {
    TooMany(TariffError),
    Condition(ConditionKind),
    Invalid(TariffError),
}

fn check(t: &TariffType, limits: &TariffLimits) -> Result<Tariff, Why> {
    match Tariff::checked(t, limits) {
        Ok(t) => Ok(t),
        Err(Refusal::Invalid(e @ TariffError::TooManyElements { .. })) => Err(Why::TooMany(e)),
        Err(Refusal::Condition(k)) => Err(Why::Condition(k)),
        Err(Refusal::Invalid(e)) => Err(Why::Invalid(e)),
        Err(e) => Err(Why::Invalid(TariffError::Currency(e.to_string()))),
    }
}

impl Station {
    pub(crate) fn tariff_config(&self) -> &TariffConfig {
        self.cfg.tariff_config()
    }

    /// The default tariff in force on `evse` at `wall`: the EVSE's own, else the station's.
    pub(crate) fn tariff_in_force(&self, evse: u32, wall: DateTime<Utc>) -> Option<&TariffType> {
        let pick = |e: u32| {
            self.tariffs
                .defaults
                .iter()
                .filter(|d| d.evse == e)
                .filter(|d| {
                    d.tariff
                        .valid_from
                        .as_ref()
                        .is_none_or(|v| v.to_utc() <= wall)
                })
                .max_by_key(|d| d.tariff.valid_from.as_ref().map(|v| v.to_utc()))
                .map(|d| &d.tariff)
        };
        pick(evse).or_else(|| pick(0))
    }

    /// Whether `id` is held with a content other than `t`.
    fn tariff_id_conflicts(&self, t: &TariffType) -> bool {
        let id = t.tariff_id.as_str();
        self.tariffs
            .defaults
            .iter()
            .map(|d| &d.tariff)
            .chain(self.tariffs.txs.iter().map(|x| &x.tariff))
            .any(|h| h.tariff_id.as_str() == id && h != t)
    }

    /// The default tariffs the station holds, with their EVSE (0: the station's).
    pub fn default_tariffs(&self) -> Vec<(u32, &TariffType)> {
        self.tariffs
            .defaults
            .iter()
            .map(|d| (d.evse, &d.tariff))
            .collect()
    }

    /// The tariffs of the ongoing transactions, with the transaction id.
    pub fn transaction_tariffs(&self) -> Vec<(&str, &TariffType)> {
        self.tariffs
            .txs
            .iter()
            .map(|t| (t.transaction_id.as_str(), &t.tariff))
            .collect()
    }

    /// The cost the station computed for an ongoing transaction (local cost), exact.
    pub fn local_cost(&self, transaction_id: &str) -> Option<&ocpp_types::tariff::CostBreakdown> {
        self.tariffs
            .txs
            .iter()
            .find(|t| t.transaction_id == transaction_id)
            .and_then(|t| t.meter.as_ref())
            .map(CostMeter::breakdown)
    }

    /// (Local cost) The `costDetails` of the `Ended` TransactionEvent of `transaction_id`:
    /// its meter advanced to now, the final total and usage.
    pub(crate) fn local_cost_details(
        &mut self,
        now: Instant,
        evse: u32,
        transaction_id: &str,
    ) -> Option<Value> {
        let wall = self.cfg.time.wall(now);
        let reading = self.hw.meter(now, evse);
        let charging = self.evse_mut(evse).is_some_and(|e| !e.suspended);
        let t = self
            .tariffs
            .txs
            .iter_mut()
            .find(|t| t.transaction_id == transaction_id)?;
        let m = t.meter.as_mut()?;
        if wall > m.until {
            let energy = t
                .last_wh
                .and_then(|l| reading.energy_wh.checked_sub(l))
                .unwrap_or(Decimal::ZERO)
                .max(Decimal::ZERO);
            let usage = Usage {
                start: m.until,
                end: wall,
                energy_wh: energy,
                charging,
                current_a: Some(reading.current_a),
            };
            if m.add(&usage).is_ok() {
                t.last_wh = Some(reading.energy_wh);
            }
        }
        let tf = m.tariff.clone();
        let r = m.breakdown().rounded(2, &tf).ok()?;
        let price = |a: ocpp_types::tariff::Amount| json!({ "exclTax": super::meter::number(a.excl), "inclTax": super::meter::number(a.incl) });
        let secs = |s: i64| i32::try_from(s).unwrap_or(i32::MAX);
        let sum = [r.fixed, r.energy, r.charging_time, r.idle_time]
            .iter()
            .try_fold(Decimal::ZERO, |a, x| a.checked_add(x.excl))?;
        let kind = match r.total.excl.cmp(&sum) {
            std::cmp::Ordering::Greater => "MinCost",
            std::cmp::Ordering::Less => "MaxCost",
            std::cmp::Ordering::Equal => "NormalCost",
        };
        Some(json!({
            "totalCost": {
                "currency": r.currency,
                "typeOfCost": kind,
                "fixed": price(r.fixed),
                "energy": price(r.energy),
                "chargingTime": price(r.charging_time),
                "idleTime": price(r.idle_time),
                "total": price(r.total),
            },
            "totalUsage": {
                "energy": super::meter::number(r.energy_wh.round_dp(3)),
                "chargingTime": secs(r.charging_s),
                "idleTime": secs(r.idle_s),
            },
        }))
    }

    /// After every input: ongoing 2.1 transactions take their EVSE's tariff, priced ones add
    /// the interval since their last reading, ended ones report their final cost and go.
    pub(crate) fn tariff_step(&mut self, now: Instant) {
        if self.cfg.version != Version::V21 {
            return;
        }
        let wall = self.cfg.time.wall(now);
        let ongoing: Vec<(u32, String, bool)> = self
            .evses
            .iter()
            .filter_map(|e| {
                let tx = e.tx.as_ref()?;
                Some((e.id, self.tx_id_of(tx)?, !e.suspended))
            })
            .collect();
        let mut changed = false;
        // Ended transactions: the final cost, then forget.
        let ids: BTreeSet<&str> = ongoing.iter().map(|o| o.1.as_str()).collect();
        let mut ended = Vec::new();
        self.tariffs.txs.retain(|t| {
            if ids.contains(t.transaction_id.as_str()) {
                true
            } else {
                ended.push(t.clone());
                false
            }
        });
        for t in ended {
            changed = true;
            if let Some(m) = &t.meter {
                let tf = m.tariff.clone();
                if let Ok(r) = m.breakdown().rounded(2, &tf) {
                    self.events.push_back(StationEvent::Cost {
                        transaction_id: t.transaction_id.clone(),
                        total_cost: r.total.incl,
                        final_cost: true,
                        source: "LocalCost",
                    });
                }
            }
        }
        let cfg = self.tariff_config().clone();
        for (evse, id, charging) in ongoing {
            let known = self.tariffs.txs.iter().any(|t| t.transaction_id == id);
            if !known {
                let Some(tariff) = self.tariff_in_force(evse, wall).cloned() else {
                    continue;
                };
                let meter = if cfg.local_cost {
                    Tariff::new(&tariff, cfg.limits.max_elements)
                        .ok()
                        .and_then(|t| CostMeter::new(t, context(&cfg), wall).ok())
                } else {
                    None
                };
                let last_wh = meter.as_ref().map(|_| self.hw.meter(now, evse).energy_wh);
                self.tariffs.txs.push(TxTariff {
                    transaction_id: id.clone(),
                    evse,
                    tariff,
                    meter,
                    last_wh,
                    reported: None,
                });
                changed = true;
            }
            let Some(i) = self.tariffs.txs.iter().position(|t| t.transaction_id == id) else {
                continue;
            };
            if self.tariffs.txs[i].meter.is_none() {
                continue;
            }
            let reading = self.hw.meter(now, evse);
            let t = &mut self.tariffs.txs[i];
            let Some(m) = t.meter.as_mut() else { continue };
            if wall <= m.until {
                continue;
            }
            let energy = t
                .last_wh
                .and_then(|l| reading.energy_wh.checked_sub(l))
                .unwrap_or(Decimal::ZERO)
                .max(Decimal::ZERO);
            let usage = Usage {
                start: m.until,
                end: wall,
                energy_wh: energy,
                charging,
                current_a: Some(reading.current_a),
            };
            if m.add(&usage).is_err() {
                continue;
            }
            t.last_wh = Some(reading.energy_wh);
            changed = true;
            let tf = m.tariff.clone();
            let Ok(r) = m.breakdown().rounded(2, &tf) else {
                continue;
            };
            if t.reported != Some(r.total.incl) {
                t.reported = Some(r.total.incl);
                self.events.push_back(StationEvent::Cost {
                    transaction_id: id.clone(),
                    total_cost: r.total.incl,
                    final_cost: false,
                    source: "LocalCost",
                });
            }
        }
        if changed {
            self.save();
        }
    }
}

impl StationConfig {
    /// The tariff configuration.
    pub(crate) fn tariff_config(&self) -> &TariffConfig {
        static DEFAULT: std::sync::LazyLock<TariffConfig> =
            std::sync::LazyLock::new(TariffConfig::default);
        self.tariffs.as_deref().unwrap_or(&DEFAULT)
    }
}

/// The built-in SetDefaultTariff (I07).
pub(crate) fn set_default_tariff(
    ctx: &mut Context<'_>,
    q: SetDefaultTariffRequest,
) -> Result<SetDefaultTariffResponse, CallError> {
    let st = &mut *ctx.station;
    let answer = |status, info| {
        let mut r = SetDefaultTariffResponse::new(status);
        r.status_info = info;
        Ok(r)
    };
    if !enabled(st) {
        return answer(
            TariffSetStatusEnumType::Rejected,
            info("Disabled", "TariffCostCtrlr.Enabled[Tariff] is false"),
        );
    }
    let Ok(evse) = u32::try_from(q.evse_id) else {
        return answer(
            TariffSetStatusEnumType::Rejected,
            info("UnknownEvse", q.evse_id),
        );
    };
    if evse > st.cfg.evses {
        return answer(TariffSetStatusEnumType::Rejected, info("UnknownEvse", evse));
    }
    let cfg = st.tariff_config().clone();
    match check(&q.tariff, &cfg.limits) {
        Ok(_) => {}
        Err(Why::TooMany(e)) => {
            return answer(
                TariffSetStatusEnumType::TooManyElements,
                info("TooManyElements", e),
            )
        }
        Err(Why::Condition(k)) => {
            return answer(
                TariffSetStatusEnumType::ConditionNotSupported,
                info("UnsupportedParam", format!("{k:?}")),
            )
        }
        Err(Why::Invalid(e)) => {
            return answer(TariffSetStatusEnumType::Rejected, info("InvalidValue", e))
        }
    }
    if st.tariff_id_conflicts(&q.tariff) {
        return answer(TariffSetStatusEnumType::DuplicateTariffId, None);
    }
    let docs = &mut st.tariffs.defaults;
    // The same id on this EVSE is replaced; a tariff with the same validFrom too.
    docs.retain(|d| {
        d.evse != evse
            || (d.tariff.tariff_id != q.tariff.tariff_id
                && d.tariff.valid_from != q.tariff.valid_from)
    });
    if docs.iter().filter(|d| d.evse == evse).count() >= cfg.max_per_evse {
        return answer(
            TariffSetStatusEnumType::Rejected,
            info(
                "TooManyTariffs",
                format!("at most {} per EVSE", cfg.max_per_evse),
            ),
        );
    }
    docs.push(HeldDefault {
        evse,
        tariff: q.tariff,
    });
    st.save();
    answer(TariffSetStatusEnumType::Accepted, None)
}

/// The built-in GetTariffs (I10).
pub(crate) fn get_tariffs(
    ctx: &mut Context<'_>,
    q: GetTariffsRequest,
) -> Result<GetTariffsResponse, CallError> {
    let st = &*ctx.station;
    let Ok(evse) = u32::try_from(q.evse_id) else {
        return Ok(GetTariffsResponse::new(TariffGetStatusEnumType::Rejected));
    };
    if evse > st.cfg.evses {
        return Ok(GetTariffsResponse::new(TariffGetStatusEnumType::Rejected));
    }
    let mut out: Vec<TariffAssignmentType> = Vec::new();
    for d in &st.tariffs.defaults {
        if evse != 0 && d.evse != evse && d.evse != 0 {
            continue;
        }
        match out.iter_mut().find(|a| {
            a.tariff_id == d.tariff.tariff_id && a.tariff_kind == TariffKindEnumType::DefaultTariff
        }) {
            Some(a) => {
                if let Some(ids) = a.evse_ids.as_mut() {
                    ids.push(d.evse as i32);
                }
            }
            None => {
                let mut a = TariffAssignmentType::new(
                    d.tariff.tariff_id.clone(),
                    TariffKindEnumType::DefaultTariff,
                );
                a.valid_from = d.tariff.valid_from;
                a.evse_ids = Some(vec![d.evse as i32]);
                out.push(a);
            }
        }
    }
    for t in &st.tariffs.txs {
        if evse != 0 && t.evse != evse {
            continue;
        }
        if out.iter().any(|a| a.tariff_id == t.tariff.tariff_id) {
            continue;
        }
        let mut a =
            TariffAssignmentType::new(t.tariff.tariff_id.clone(), TariffKindEnumType::DriverTariff);
        a.valid_from = t.tariff.valid_from;
        a.evse_ids = Some(vec![t.evse as i32]);
        out.push(a);
    }
    if out.is_empty() {
        return Ok(GetTariffsResponse::new(TariffGetStatusEnumType::NoTariff));
    }
    let mut r = GetTariffsResponse::new(TariffGetStatusEnumType::Accepted);
    r.tariff_assignments = Some(out);
    Ok(r)
}

/// The built-in ClearTariffs (I11).
pub(crate) fn clear_tariffs(
    ctx: &mut Context<'_>,
    q: ClearTariffsRequest,
) -> Result<ClearTariffsResponse, CallError> {
    let st = &mut *ctx.station;
    let on_evse = |d: &HeldDefault| {
        q.evse_id
            .is_none_or(|e| u32::try_from(e).is_ok_and(|e| e == d.evse))
    };
    let mut results = Vec::new();
    match &q.tariff_ids {
        Some(ids) => {
            for id in ids {
                let before = st.tariffs.defaults.len();
                st.tariffs
                    .defaults
                    .retain(|d| !(d.tariff.tariff_id == *id && on_evse(d)));
                let mut r = ClearTariffsResultType::new(if st.tariffs.defaults.len() < before {
                    TariffClearStatusEnumType::Accepted
                } else {
                    TariffClearStatusEnumType::NoTariff
                });
                r.tariff_id = Some(id.clone());
                results.push(r);
            }
        }
        None => {
            let before = st.tariffs.defaults.len();
            st.tariffs.defaults.retain(|d| !on_evse(d));
            results.push(ClearTariffsResultType::new(
                if st.tariffs.defaults.len() < before {
                    TariffClearStatusEnumType::Accepted
                } else {
                    TariffClearStatusEnumType::NoTariff
                },
            ));
        }
    }
    st.save();
    Ok(ClearTariffsResponse::new(results))
}

/// The built-in ChangeTransactionTariff (I12).
pub(crate) fn change_transaction_tariff(
    ctx: &mut Context<'_>,
    q: ChangeTransactionTariffRequest,
) -> Result<ChangeTransactionTariffResponse, CallError> {
    let now = ctx.now;
    // The transaction may have started in this very input: let it take its tariff first.
    ctx.station.tariff_step(now);
    let st = &mut *ctx.station;
    let answer = |status, info| {
        let mut r = ChangeTransactionTariffResponse::new(status);
        r.status_info = info;
        Ok(r)
    };
    if !enabled(st) {
        return answer(
            TariffChangeStatusEnumType::Rejected,
            info("Disabled", "TariffCostCtrlr.Enabled[Tariff] is false"),
        );
    }
    let id = q.transaction_id.as_str();
    let ongoing = st
        .evses
        .iter()
        .filter_map(|e| e.tx.as_ref().map(|t| (e.id, t)))
        .find_map(|(e, t)| (st.tx_id_of(t).as_deref() == Some(id)).then_some(e));
    let Some(evse) = ongoing else {
        return answer(TariffChangeStatusEnumType::TxNotFound, None);
    };
    let cfg = st.tariff_config().clone();
    let tariff = match check(&q.tariff, &cfg.limits) {
        Ok(t) => t,
        Err(Why::TooMany(e)) => {
            return answer(
                TariffChangeStatusEnumType::TooManyElements,
                info("TooManyElements", e),
            )
        }
        Err(Why::Condition(k)) => {
            return answer(
                TariffChangeStatusEnumType::ConditionNotSupported,
                info("UnsupportedParam", format!("{k:?}")),
            )
        }
        Err(Why::Invalid(e)) => {
            return answer(
                TariffChangeStatusEnumType::Rejected,
                info("InvalidValue", e),
            )
        }
    };
    match st.tariffs.txs.iter_mut().find(|t| t.transaction_id == id) {
        Some(t) => {
            if t.tariff.currency != q.tariff.currency {
                return answer(TariffChangeStatusEnumType::NoCurrencyChange, None);
            }
            if let Some(m) = t.meter.as_mut() {
                if m.change_tariff(tariff).is_err() {
                    return answer(TariffChangeStatusEnumType::NoCurrencyChange, None);
                }
            }
            t.tariff = q.tariff;
        }
        None => {
            let wall = st.cfg.time.wall(now);
            let meter = cfg
                .local_cost
                .then(|| CostMeter::new(tariff, context(&cfg), wall).ok())
                .flatten();
            let last_wh = meter.as_ref().map(|_| st.hw.meter(now, evse).energy_wh);
            st.tariffs.txs.push(TxTariff {
                transaction_id: id.to_owned(),
                evse,
                tariff: q.tariff,
                meter,
                last_wh,
                reported: None,
            })
        }
    }
    st.save();
    answer(TariffChangeStatusEnumType::Accepted, None)
}

/// Fills the `TariffCostCtrlr` variables from the configuration.
pub(crate) fn fill_settings(settings: &mut crate::settings::Settings, c: &TariffConfig) {
    settings.set_fixed(
        "TariffCostCtrlr",
        "MaxElements",
        Some("Tariff"),
        &c.limits
            .max_elements
            .min(ocpp_types::tariff::MAX_ELEMENTS)
            .to_string(),
    );
    let conditions: Vec<String> = c
        .limits
        .conditions
        .iter()
        .map(|k| format!("{k:?}"))
        .collect();
    settings.set_fixed(
        "TariffCostCtrlr",
        "ConditionsSupported",
        Some("Tariff"),
        &conditions.join(","),
    );
    settings.set_fixed(
        "TariffCostCtrlr",
        "LocalCostCalculation",
        None,
        if c.local_cost { "true" } else { "false" },
    );
}
