//! OCPP 2.1 tariffs in the example backend: the catalog, the chargers' default tariffs and
//! the cost of 2.1 sessions priced by them (the model and calculator are
//! [`ocpp_types::tariff`], shared with the charging station).
//!
//! - **Catalog** (`tariffs`): tariffs as the OCPP `TariffType` JSON, checked by
//!   [`Tariff::new`] before they are stored (at most [`MAX_ELEMENTS`] price elements).
//! - **Assignments** (`charger_tariffs`): a tariff becomes a charger's default on an EVSE
//!   (0: all) through SetDefaultTariff; the row is written when the charger answers
//!   `Accepted`, and removed by an accepted ClearTariffs. Mirrored in memory.
//! - **Session cost** (`session_costs`): a 2.1 transaction on an EVSE with a default tariff
//!   gets a [`CostMeter`] when it is first seen; every TransactionEvent adds the interval
//!   since the previous one (the energy the `Energy.Active.Import.Register` moved, charging
//!   or idle as the previous event's `chargingState` said), and the answer's `totalCost` is
//!   the rounded total with taxes. The meter is written after each event, so a restart goes
//!   on from it; an accepted ChangeTransactionTariff puts the new tariff in force from then.
//!   In memory at most [`MAX_METERS`] meters are held, ended ones too (for the session's
//!   row); beyond that the least recently used is dropped and read back from the database
//!   when its next event comes.
//!
//! 1.6 and 2.0.1 chargers, and 2.1 chargers without a default tariff, keep the flat
//! [`super::Tariff`] and the 1.6 California Pricing path ([`super::cost`]).

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use chrono::{DateTime, Utc};
use ocpp_central::ocpp_types::tariff::{
    CostBreakdown, CostContext, CostMeter, Tariff, MAX_ELEMENTS,
};
use ocpp_central::ocpp_types::v21::TariffType;
use ocpp_central::{CallError, ChargerHandle};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::db::{self, Db, DbError};

/// Migration 16: the tariff catalog, the chargers' default tariffs, the sessions' cost.
pub const MIGRATION: &str = "CREATE TABLE tariffs (
        tariff_id TEXT PRIMARY KEY,
        currency TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE charger_tariffs (
        charger TEXT NOT NULL,
        evse_id BIGINT NOT NULL,
        tariff_id TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (charger, evse_id)
    );
    CREATE TABLE session_costs (
        charger TEXT NOT NULL,
        transaction_id TEXT NOT NULL,
        tariff_id TEXT NOT NULL,
        state TEXT NOT NULL,
        final BIGINT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (charger, transaction_id)
    )";

/// The most cost meters held in memory.
pub const MAX_METERS: usize = 10_000;

/// The decimals of the costs told and shown.
pub const COST_DECIMALS: u32 = 2;

/// Why a tariff operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TariffsError {
    /// The database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The charger's call.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The tariff is not in the catalog.
    #[error("no tariff {0:?}")]
    UnknownTariff(String),
    /// A stored tariff no longer reads.
    #[error("stored tariff {0:?} does not read: {1}")]
    Corrupt(String, String),
}

impl From<sqlx::Error> for TariffsError {
    fn from(e: sqlx::Error) -> Self {
        TariffsError::Db(e.into())
    }
}

/// A tariff of the catalog.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TariffRow {
    /// `tariffId`.
    pub tariff_id: String,
    /// Currency.
    pub currency: String,
    /// The OCPP 2.1 `TariffType`.
    #[schema(value_type = Object)]
    pub tariff: serde_json::Value,
    /// When it was stored.
    pub created_at: String,
}

/// A charger's default tariff on one EVSE.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssignmentRow {
    /// The EVSE (0: all).
    pub evse_id: i64,
    /// The tariff.
    pub tariff_id: String,
    /// When the charger accepted it.
    pub updated_at: String,
}

/// The meter of one transaction, as persisted.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TxCost {
    meter: CostMeter,
    /// The register at the previous event, Wh.
    last_wh: Option<Decimal>,
    /// Whether the previous event said the EV was charging.
    charging: bool,
    /// Order of arrival, for dropping the oldest beyond [`MAX_METERS`].
    #[serde(default)]
    tick: u64,
}

/// The tariffs, assignments and meters.
#[derive(Debug)]
pub struct Tariffs {
    db: Db,
    assigned: RwLock<HashMap<(String, u32), Tariff>>,
    meters: Mutex<HashMap<(String, String), TxCost>>,
    tick: std::sync::atomic::AtomicU64,
}

fn read(body: &str, id: &str) -> Result<Tariff, TariffsError> {
    let wire: TariffType = serde_json::from_str(body)
        .map_err(|e| TariffsError::Corrupt(id.to_owned(), e.to_string()))?;
    Tariff::new(&wire, MAX_ELEMENTS)
        .map_err(|e| TariffsError::Corrupt(id.to_owned(), e.to_string()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Tariffs {
    /// Loads the assignments.
    pub async fn load(db: Db) -> Result<Tariffs, TariffsError> {
        let rows = sqlx::query(
            "SELECT a.charger, a.evse_id, a.tariff_id, t.body FROM charger_tariffs a
             JOIN tariffs t ON t.tariff_id = a.tariff_id",
        )
        .fetch_all(db.writer())
        .await?;
        let mut assigned = HashMap::new();
        for r in rows {
            let charger: String = r.try_get("charger")?;
            let evse: i64 = r.try_get("evse_id")?;
            let id: String = r.try_get("tariff_id")?;
            let body: String = r.try_get("body")?;
            let t = read(&body, &id)?;
            assigned.insert((charger, u32::try_from(evse).unwrap_or(0)), t);
        }
        Ok(Tariffs {
            db,
            assigned: RwLock::new(assigned),
            meters: Mutex::new(HashMap::new()),
            tick: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Stores a tariff in the catalog; `Ok(false)` when its id is taken.
    pub async fn create(&self, wire: &TariffType) -> Result<bool, TariffsError> {
        let body = serde_json::to_string(wire)
            .map_err(|e| TariffsError::Corrupt(wire.tariff_id.to_string(), e.to_string()))?;
        let r = sqlx::query(
            "INSERT INTO tariffs (tariff_id, currency, body, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tariff_id) DO NOTHING",
        )
        .bind(wire.tariff_id.as_str())
        .bind(wire.currency.as_str())
        .bind(body)
        .bind(db::ts(Utc::now()))
        .execute(self.db.writer())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    fn row(r: &sqlx::any::AnyRow) -> Result<TariffRow, TariffsError> {
        let body: String = r.try_get("body")?;
        Ok(TariffRow {
            tariff_id: r.try_get("tariff_id")?,
            currency: r.try_get("currency")?,
            tariff: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
            created_at: r.try_get("created_at")?,
        })
    }

    /// The catalog (at most 1,000, by id).
    pub async fn list(&self) -> Result<Vec<TariffRow>, TariffsError> {
        let rows = sqlx::query(
            "SELECT tariff_id, currency, body, created_at FROM tariffs ORDER BY tariff_id LIMIT 1000",
        )
        .fetch_all(self.db.writer())
        .await?;
        rows.iter().map(Self::row).collect()
    }

    /// One tariff of the catalog.
    pub async fn get(&self, id: &str) -> Result<Option<TariffRow>, TariffsError> {
        let row = sqlx::query(
            "SELECT tariff_id, currency, body, created_at FROM tariffs WHERE tariff_id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.writer())
        .await?;
        row.as_ref().map(Self::row).transpose()
    }

    async fn wire(&self, id: &str) -> Result<TariffType, TariffsError> {
        let row = self
            .get(id)
            .await?
            .ok_or_else(|| TariffsError::UnknownTariff(id.to_owned()))?;
        serde_json::from_value(row.tariff)
            .map_err(|e| TariffsError::Corrupt(id.to_owned(), e.to_string()))
    }

    /// Removes a tariff from the catalog: `Ok(None)` when unknown, `Ok(Some(false))` when a
    /// charger still has it as a default.
    pub async fn delete(&self, id: &str) -> Result<Option<bool>, TariffsError> {
        let used = sqlx::query("SELECT COUNT(*) AS n FROM charger_tariffs WHERE tariff_id = $1")
            .bind(id)
            .fetch_one(self.db.writer())
            .await?;
        let n: i64 = used.try_get("n")?;
        if n > 0 {
            return Ok(Some(false));
        }
        let r = sqlx::query("DELETE FROM tariffs WHERE tariff_id = $1")
            .bind(id)
            .execute(self.db.writer())
            .await?;
        Ok((r.rows_affected() == 1).then_some(true))
    }

    /// A charger's stored default tariffs.
    pub async fn assignments(&self, charger: &str) -> Result<Vec<AssignmentRow>, TariffsError> {
        let rows = sqlx::query(
            "SELECT evse_id, tariff_id, updated_at FROM charger_tariffs WHERE charger = $1 ORDER BY evse_id",
        )
        .bind(charger)
        .fetch_all(self.db.writer())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AssignmentRow {
                    evse_id: r.try_get("evse_id")?,
                    tariff_id: r.try_get("tariff_id")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect()
    }

    /// SetDefaultTariff of catalog tariff `id` on `evse`; stored when Accepted. Returns the
    /// charger's answer.
    pub async fn set_default(
        &self,
        h: &ChargerHandle,
        evse: u32,
        id: &str,
    ) -> Result<ocpp_central::ocpp_types::v21::SetDefaultTariffResponse, TariffsError> {
        let wire = self.wire(id).await?;
        let evse_i = i32::try_from(evse).unwrap_or(i32::MAX);
        let a = h.set_default_tariff(evse_i, &wire).await?;
        if a.status == ocpp_central::ocpp_types::v21::TariffSetStatusEnumType::Accepted {
            sqlx::query(
                "INSERT INTO charger_tariffs (charger, evse_id, tariff_id, updated_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (charger, evse_id) DO UPDATE SET tariff_id = $3, updated_at = $4",
            )
            .bind(h.identity())
            .bind(i64::from(evse))
            .bind(id)
            .bind(db::ts(Utc::now()))
            .execute(self.db.writer())
            .await?;
            let t = Tariff::new(&wire, MAX_ELEMENTS)
                .map_err(|e| TariffsError::Corrupt(id.to_owned(), e.to_string()))?;
            if let Ok(mut m) = self.assigned.write() {
                m.insert((h.identity().to_owned(), evse), t);
            }
        }
        Ok(a)
    }

    /// ClearTariffs; the accepted ones leave the assignments.
    pub async fn clear(
        &self,
        h: &ChargerHandle,
        ids: Option<Vec<String>>,
        evse: Option<u32>,
    ) -> Result<ocpp_central::ocpp_types::v21::ClearTariffsResponse, TariffsError> {
        use ocpp_central::ocpp_types::v21::TariffClearStatusEnumType as S;
        let a = h
            .clear_tariffs(
                ids.as_deref(),
                evse.map(|e| i32::try_from(e).unwrap_or(i32::MAX)),
            )
            .await?;
        let charger = h.identity().to_owned();
        for r in &a.clear_tariffs_result {
            if r.status != S::Accepted {
                continue;
            }
            let tariff = r.tariff_id.as_ref().map(|t| t.as_str().to_owned());
            let mut sql = String::from("DELETE FROM charger_tariffs WHERE charger = $1");
            let mut n = 1;
            if tariff.is_some() {
                n += 1;
                sql.push_str(&format!(" AND tariff_id = ${n}"));
            }
            if evse.is_some() {
                n += 1;
                sql.push_str(&format!(" AND evse_id = ${n}"));
            }
            let mut q = sqlx::query(&sql).bind(charger.clone());
            if let Some(t) = &tariff {
                q = q.bind(t.clone());
            }
            if let Some(e) = evse {
                q = q.bind(i64::from(e));
            }
            q.execute(self.db.writer()).await?;
            if let Ok(mut m) = self.assigned.write() {
                m.retain(|(c, e), t| {
                    !(*c == charger
                        && evse.is_none_or(|x| x == *e)
                        && tariff.as_ref().is_none_or(|x| *x == t.id))
                });
            }
        }
        Ok(a)
    }

    /// ChangeTransactionTariff of catalog tariff `id`; when Accepted the session's meter
    /// takes it from now on.
    pub async fn change(
        &self,
        h: &ChargerHandle,
        transaction_id: &str,
        id: &str,
    ) -> Result<ocpp_central::ocpp_types::v21::ChangeTransactionTariffResponse, TariffsError> {
        let wire = self.wire(id).await?;
        let a = h.change_transaction_tariff(transaction_id, &wire).await?;
        if a.status == ocpp_central::ocpp_types::v21::TariffChangeStatusEnumType::Accepted {
            let t = Tariff::new(&wire, MAX_ELEMENTS)
                .map_err(|e| TariffsError::Corrupt(id.to_owned(), e.to_string()))?;
            let key = (h.identity().to_owned(), transaction_id.to_owned());
            let held = lock(&self.meters).remove(&key);
            let mut state = match held {
                Some(s) => Some(s),
                None => self.stored(&key.0, &key.1).await?,
            };
            match state.as_mut() {
                Some(s) => {
                    // Same currency: the charger checked it (NoCurrencyChange otherwise).
                    let _ = s.meter.change_tariff(t);
                }
                None => {
                    state = CostMeter::new(t, CostContext::default(), Utc::now())
                        .ok()
                        .map(|meter| TxCost {
                            meter,
                            last_wh: None,
                            charging: true,
                            tick: 0,
                        });
                }
            }
            if let Some(s) = state {
                self.save(&key, &s, false).await?;
                self.hold(key, s);
            }
        }
        Ok(a)
    }

    async fn stored(&self, charger: &str, tx: &str) -> Result<Option<TxCost>, TariffsError> {
        let row = sqlx::query(
            "SELECT state FROM session_costs WHERE charger = $1 AND transaction_id = $2",
        )
        .bind(charger)
        .bind(tx)
        .fetch_optional(self.db.writer())
        .await?;
        Ok(match row {
            Some(r) => {
                let s: String = r.try_get("state")?;
                serde_json::from_str(&s).ok()
            }
            None => None,
        })
    }

    async fn save(
        &self,
        key: &(String, String),
        s: &TxCost,
        done: bool,
    ) -> Result<(), TariffsError> {
        let state = serde_json::to_string(s)
            .map_err(|e| TariffsError::Corrupt(s.meter.tariff.id.clone(), e.to_string()))?;
        sqlx::query(
            "INSERT INTO session_costs (charger, transaction_id, tariff_id, state, final, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (charger, transaction_id) DO UPDATE
             SET tariff_id = $3, state = $4, final = $5, updated_at = $6",
        )
        .bind(&key.0)
        .bind(&key.1)
        .bind(&s.meter.tariff.id)
        .bind(state)
        .bind(i64::from(done))
        .bind(db::ts(Utc::now()))
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    fn hold(&self, key: (String, String), mut s: TxCost) {
        s.tick = self.tick.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut m = lock(&self.meters);
        if m.len() >= MAX_METERS && !m.contains_key(&key) {
            if let Some(oldest) = m.iter().min_by_key(|(_, v)| v.tick).map(|(k, _)| k.clone()) {
                m.remove(&oldest);
            }
        }
        m.insert(key, s);
    }

    /// The default tariff in force for `evse` of `charger`: the EVSE's own, else EVSE 0's.
    pub fn in_force(&self, charger: &str, evse: Option<u32>) -> Option<Tariff> {
        let m = self.assigned.read().ok()?;
        evse.and_then(|e| m.get(&(charger.to_owned(), e)))
            .or_else(|| m.get(&(charger.to_owned(), 0)))
            .cloned()
    }

    /// Prices one 2.1 TransactionEvent: `None` when the session has no tariff (the flat
    /// path applies). `register_wh` is the message's energy register, `charging_state` its
    /// `chargingState`.
    #[allow(clippy::too_many_arguments)]
    pub async fn price(
        &self,
        charger: &str,
        transaction_id: &str,
        evse: Option<u32>,
        ended: bool,
        charging_state: Option<&str>,
        register_wh: Option<Decimal>,
        at: DateTime<Utc>,
    ) -> Result<Option<CostBreakdown>, TariffsError> {
        let key = (charger.to_owned(), transaction_id.to_owned());
        let held = lock(&self.meters).remove(&key);
        let state = match held {
            Some(s) => Some(s),
            None => self.stored(charger, transaction_id).await?,
        };
        let mut s = match state {
            Some(s) => s,
            None => {
                let Some(t) = self.in_force(charger, evse) else {
                    return Ok(None);
                };
                let valid = t.valid_from.is_none_or(|v| v <= at);
                if !valid {
                    return Ok(None);
                }
                let Ok(meter) = CostMeter::new(t, CostContext::default(), at) else {
                    return Ok(None);
                };
                TxCost {
                    meter,
                    last_wh: register_wh,
                    charging: true,
                    tick: 0,
                }
            }
        };
        if at > s.meter.until {
            let energy = match (register_wh, s.last_wh) {
                (Some(r), Some(l)) => r.checked_sub(l).unwrap_or_default().max(Decimal::ZERO),
                _ => Decimal::ZERO,
            };
            let usage = ocpp_central::ocpp_types::tariff::Usage {
                start: s.meter.until,
                end: at,
                energy_wh: energy,
                charging: s.charging,
                current_a: None,
            };
            // An interval that cannot be priced (an overflow) leaves the cost as it was.
            if s.meter.add(&usage).is_ok() && register_wh.is_some() {
                s.last_wh = register_wh;
            }
        } else if s.last_wh.is_none() {
            s.last_wh = register_wh;
        }
        if let Some(c) = charging_state {
            s.charging = c == "Charging";
        }
        let tariff = s.meter.tariff.clone();
        let out = s.meter.breakdown().rounded(COST_DECIMALS, &tariff).ok();
        self.save(&key, &s, ended).await?;
        self.hold(key, s);
        Ok(out)
    }

    /// The rounded cost of a session priced by a tariff, and whether it is final.
    pub async fn session_cost(
        &self,
        charger: &str,
        transaction_id: &str,
    ) -> Result<Option<(CostBreakdown, bool)>, TariffsError> {
        let row = sqlx::query(
            "SELECT state, final FROM session_costs WHERE charger = $1 AND transaction_id = $2",
        )
        .bind(charger)
        .bind(transaction_id)
        .fetch_optional(self.db.writer())
        .await?;
        let Some(r) = row else { return Ok(None) };
        let state: String = r.try_get("state")?;
        let done: i64 = r.try_get("final")?;
        let s: TxCost = serde_json::from_str(&state)
            .map_err(|e| TariffsError::Corrupt(transaction_id.to_owned(), e.to_string()))?;
        let tariff = s.meter.tariff.clone();
        Ok(s.meter
            .breakdown()
            .rounded(COST_DECIMALS, &tariff)
            .ok()
            .map(|b| (b, done != 0)))
    }

    /// The rounded total (with taxes) of a session held in memory, for the session row.
    pub fn total_held(&self, charger: &str, transaction_id: &str) -> Option<Decimal> {
        let m = lock(&self.meters);
        // No session priced by a 2.1 tariff: no key to build (every meter value of every
        // session in transactions asks).
        if m.is_empty() {
            return None;
        }
        let s = m.get(&(charger.to_owned(), transaction_id.to_owned()))?;
        let tariff = s.meter.tariff.clone();
        s.meter
            .breakdown()
            .rounded(COST_DECIMALS, &tariff)
            .ok()
            .map(|b| b.total.incl)
    }
}
