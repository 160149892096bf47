//! The running cost of a transaction, told to the charger (OCPP 2.x block I; the 1.6
//! California Pricing whitepaper), priced by the [`Tariff`] with exact decimals.
//!
//! - **TransactionEvent answers.** The cost so far is the tariff's price of the energy the
//!   message's `Energy.Active.Import.Register` shows since the transaction's start (or the
//!   last energy known, when the message carries no register) and of the time from its
//!   start to the message's timestamp. 2.1 puts it in `totalCost` of the answers to
//!   `Updated` (the running cost) and `Ended` (the final cost); 2.0.1 only in the answer to
//!   `Ended` (its schema: "SHALL only be sent when charging has ended"). With
//!   [`CostConfig::personal_message`] the answer also carries `updatedPersonalMessage`, the
//!   template with `{cost}` and `{currency}` replaced (at most 512 characters).
//! - **CostUpdated.** Every [`CostConfig::interval`] (0: never) a task sends each
//!   connected 2.x charger's running transactions their cost so far (CostUpdated; 1.6
//!   chargers the `RunningCost` DataTransfer when [`CostConfig::v16_cost_messages`] is on),
//!   at most [`MAX_PARALLEL`] chargers at once, each call bounded by the call timeout.
//! - **1.6 final cost.** With [`CostConfig::v16_cost_messages`], the `FinalCost`
//!   DataTransfer follows a StopTransaction, with the personal message as `priceText`.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ocpp_central::{ChargerHandle, Chargers, MeterSample, Transaction};
use rust_decimal::Decimal;

use super::Tariff;

/// At most this many chargers get their CostUpdated at once.
pub const MAX_PARALLEL: usize = 16;

/// The longest personal message (the 2.0.1 schema's `content` bound).
pub const MAX_PERSONAL_MESSAGE: usize = 512;

/// How the running cost is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostConfig {
    /// How often CostUpdated goes to the running transactions; zero: never.
    pub interval: Duration,
    /// The `updatedPersonalMessage` of TransactionEvent answers (`{cost}`, `{currency}`
    /// replaced); `None`: none.
    pub personal_message: Option<String>,
    /// Send 1.6 chargers the California Pricing DataTransfers (`RunningCost`, `FinalCost`).
    pub v16_cost_messages: bool,
}

impl Default for CostConfig {
    /// CostUpdated every minute, no personal message, no 1.6 messages.
    fn default() -> Self {
        CostConfig {
            interval: Duration::from_secs(60),
            personal_message: None,
            v16_cost_messages: false,
        }
    }
}

/// The configuration, replaceable while running.
#[derive(Debug, Default)]
pub struct Costs {
    config: RwLock<CostConfig>,
}

impl Costs {
    /// The configuration now.
    pub fn config(&self) -> CostConfig {
        self.config.read().map(|c| c.clone()).unwrap_or_default()
    }

    /// Replaces the configuration (the update task reads it at each tick).
    pub fn configure(&self, config: CostConfig) {
        if let Ok(mut c) = self.config.write() {
            *c = config;
        }
    }

    /// The personal message for `cost`, if configured.
    pub fn personal_message(&self, cost: Decimal, currency: &str) -> Option<String> {
        let template = self.config().personal_message?;
        let text = template
            .replace("{cost}", &cost.to_string())
            .replace("{currency}", currency);
        Some(text.chars().take(MAX_PERSONAL_MESSAGE).collect())
    }
}

/// The energy register (Wh) among a message's samples: the last total import register.
pub fn register_wh(samples: &[MeterSample]) -> Option<Decimal> {
    samples
        .iter()
        .filter(|s| s.is_import_register())
        .filter_map(MeterSample::energy_wh)
        .next_back()
}

/// The cost so far of a transaction whose previous state is `before` (`None`: this message
/// starts it), given the register the message brought and its timestamp.
pub fn cost_so_far(
    tariff: &Tariff,
    before: Option<&Transaction>,
    register_wh: Option<Decimal>,
    at: DateTime<Utc>,
) -> Option<Decimal> {
    let (started, energy) = match before {
        None => (at, Decimal::ZERO),
        Some(tx) => {
            let energy = match (register_wh, tx.meter_start_wh) {
                (Some(r), Some(start)) => r.checked_sub(start)?.max(tx.energy_wh),
                _ => tx.energy_wh,
            };
            (tx.started_at, energy)
        }
    };
    tariff.cost(energy, started, at.max(started))
}

/// The cost so far of a running transaction, as the model knows it now.
pub fn running_cost(tariff: &Tariff, tx: &Transaction, now: DateTime<Utc>) -> Option<Decimal> {
    tariff.cost(tx.energy_wh, tx.started_at, now.max(tx.started_at))
}

/// Sends the running transactions of every connected charger their cost so far, once.
/// Returns how many were told.
pub async fn update_all(chargers: &Chargers, tariff: &Tariff, config: &CostConfig) -> usize {
    let now = Utc::now();
    let mut work: Vec<(ChargerHandle, String, Decimal)> = Vec::new();
    for id in chargers.identities() {
        let Some(h) = chargers.get(&id).filter(|h| h.is_connected()) else {
            continue;
        };
        if h.version() == ocpp_central::ocpp_types::Version::V16 && !config.v16_cost_messages {
            continue;
        }
        for tx in h.state().transactions.values() {
            if let Some(cost) = running_cost(tariff, tx, now) {
                work.push((h.clone(), tx.id.clone(), cost));
            }
        }
    }
    let semaphore = Arc::new(tokio::sync::Semaphore::new(MAX_PARALLEL));
    let mut tasks = tokio::task::JoinSet::new();
    for (h, tx, cost) in work {
        let Ok(permit) = semaphore.clone().acquire_owned().await else {
            break;
        };
        tasks.spawn(async move {
            let _permit = permit;
            match h.cost_updated(&tx, cost).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::debug!("cost of {tx} on {}: {e}", h.identity());
                    false
                }
            }
        });
    }
    let mut told = 0;
    while let Some(r) = tasks.join_next().await {
        if matches!(r, Ok(true)) {
            told += 1;
        }
    }
    told
}

impl super::Backend {
    /// (1.6, with [`CostConfig::v16_cost_messages`]) After a StopTransaction: the
    /// `FinalCost` DataTransfer, with the personal message as `priceText`, sent from a task
    /// of its own (the event hook does not wait for the charger).
    pub(crate) fn final_cost_v16(&self, charger: &ChargerHandle, event: &ocpp_central::Event) {
        let ocpp_central::Event::TransactionEnded { transaction, .. } = event else {
            return;
        };
        let config = self.costs().config();
        if charger.version() != ocpp_central::ocpp_types::Version::V16 || !config.v16_cost_messages
        {
            return;
        }
        let Ok(id) = transaction.id.parse::<i32>() else {
            return;
        };
        let end = transaction.ended_at.unwrap_or_else(Utc::now);
        let Some(cost) = self
            .tariff()
            .cost(transaction.energy_wh, transaction.started_at, end)
        else {
            return;
        };
        let text = self
            .costs()
            .personal_message(cost, self.tariff().currency());
        let h = charger.clone();
        tokio::spawn(async move {
            if let Err(e) = h.final_cost_v16(id, cost, text.as_deref()).await {
                tracing::debug!("FinalCost of {id} on {}: {e}", h.identity());
            }
        });
    }
}

/// Sends CostUpdated every [`CostConfig::interval`] (re-read at each tick; zero: checks
/// again after a second) until the backend is dropped.
pub fn spawn_updates(backend: &Arc<super::Backend>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(backend);
    tokio::spawn(async move {
        loop {
            let interval = match weak.upgrade() {
                Some(b) => b.costs().config().interval,
                None => return,
            };
            tokio::time::sleep(if interval.is_zero() {
                Duration::from_secs(1)
            } else {
                interval
            })
            .await;
            let Some(b) = weak.upgrade() else {
                return;
            };
            let config = b.costs().config();
            if !config.interval.is_zero() {
                update_all(b.chargers(), b.tariff(), &config).await;
            }
        }
    })
}
