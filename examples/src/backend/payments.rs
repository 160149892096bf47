//! Payments: the payment provider behind a trait ([`PaymentProvider`]), a local provider that
//! behaves like a card processor's test mode ([`LocalProvider`]), and the billing flow that
//! ties a driver's sessions to the ledger ([`Billing`], journals in [`super::ledger`]).
//!
//! **The flow.** A session started from the app puts a pre-authorization hold of
//! [`BillingConfig::hold`] on the driver's card ([`Billing::hold`]; a decline refuses the
//! start). When the session ends ([`Billing::settle`], run on every `transaction_ended` and
//! by the sweeper): the exact cost (the session's `cost`, priced by the tariff from the
//! stored meter values) is charged to the driver's receivable **first**, then captured (at
//! most the hold; an RFID session with a card on file is authorized and captured at once),
//! then the hold is released. A declined or timed-out capture leaves the cost receivable and
//! the payment `capture_pending`; the sweeper ([`Billing::sweep`], every
//! [`BillingConfig::sweep_every`] and at start) retries it with the **same idempotency key**,
//! so a capture that went through but whose answer was lost is not taken twice. After
//! [`BillingConfig::max_attempts`] the hold is released and the payment is `failed`: the cost
//! stays receivable (on the driver's or fleet's invoice). A crash anywhere in between is
//! recovered by the sweeper: every step is keyed, in the ledger and at the provider.
//!
//! Payment statuses: `held`, `declined` (the hold was refused), `capture_pending`,
//! `captured`, `failed`, `released` (nothing to capture), `invoiced` (no card: owed on the
//! invoice), `refunded` (partly or wholly).
//!
//! **Test cards** of [`LocalProvider`] (the numbers card processors use in test mode):
//!
//! | card | behaviour |
//! |---|---|
//! | `4242424242424242` (any other Luhn-valid number) | succeeds |
//! | `4000000000000002` | authorization declined, `card_declined` |
//! | `4000000000009995` | authorization declined, `insufficient_funds` |
//! | `4000000000000119` | authorization times out |
//! | `4000000000000341` | authorization succeeds, every capture is declined |
//! | `4000000000006975` | the first capture is taken but its answer is lost (a timeout); the retry with the same key answers the first result |
//! | a Luhn-invalid number | declined, `invalid_number` |
//!
//! **Webhooks.** With a webhook target, the local provider posts each event
//! (`payment.authorized`, `payment.captured`, `payment.released`, `payment.refunded`,
//! `payment.declined`) to the backend's `POST /api/payments/webhook`, signed like card
//! processors do: header `Payment-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
//! "<t>.<body>">`. The endpoint refuses a bad signature or one older than
//! [`WEBHOOK_TOLERANCE_SECS`] (400) and stores each event once by its id.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::Row;

use super::accounts::{Accounts, AccountsError};
use super::db::{self, ts, Db, DbError, SessionRow};
use super::ledger::{Amount, Currency, Ledger, LedgerAccount, LedgerError, Posting};

/// The oldest webhook signature accepted.
pub const WEBHOOK_TOLERANCE_SECS: i64 = 300;

/// The most idempotency keys (and authorizations) the local provider remembers; beyond,
/// the oldest go.
pub const LOCAL_MAX_KEYS: usize = 100_000;

/// The most sessions one sweep settles.
pub const SWEEP_BATCH: i64 = 100;

/// Why the provider refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, serde::Deserialize)]
pub enum ProviderError {
    /// The card or the operation was declined, with the processor's code.
    #[error("declined: {0}")]
    Declined(String),
    /// No answer in time (the operation may or may not have happened: retry with the same
    /// idempotency key).
    #[error("the payment provider timed out")]
    Timeout,
    /// The request was wrong (unknown reference, more than held, ...).
    #[error("invalid payment request: {0}")]
    Invalid(String),
}

/// A payment provider (card processor). Every call carries an idempotency key: the same key
/// again answers the first result without doing anything twice.
#[async_trait]
pub trait PaymentProvider: Send + Sync + std::fmt::Debug {
    /// Puts a hold of `amount` on `card`; the hold's reference.
    async fn authorize(
        &self,
        card: &str,
        amount: Amount,
        currency: &Currency,
        key: &str,
    ) -> Result<String, ProviderError>;
    /// Captures `amount` (at most what is held) of the hold `reference`.
    async fn capture(
        &self,
        reference: &str,
        amount: Amount,
        key: &str,
    ) -> Result<(), ProviderError>;
    /// Releases what is left of the hold `reference`.
    async fn release(&self, reference: &str, key: &str) -> Result<(), ProviderError>;
    /// Refunds `amount` (at most what was captured) of `reference`.
    async fn refund(&self, reference: &str, amount: Amount, key: &str)
        -> Result<(), ProviderError>;
}

// ------------------------------------------------------------------ the local provider

/// Where the local provider posts its events.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    /// The URL (`http://127.0.0.1:<port>/api/payments/webhook`).
    pub url: String,
    /// The shared HMAC secret.
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
struct LocalHold {
    card: String,
    held: Decimal,
    captured: Decimal,
    refunded: Decimal,
    released: bool,
    currency: String,
    /// The first capture's answer was lost already (card `4000000000006975`).
    #[serde(default)]
    lost_once: bool,
}

#[derive(Debug, Default)]
struct LocalState {
    holds: HashMap<String, LocalHold>,
    /// Idempotency key -> the answer given (a reference or nothing).
    answers: HashMap<String, Result<String, ProviderError>>,
    order: VecDeque<String>,
}

/// A change of the local provider's state to write through to its tables.
enum Change {
    Answer(String, Result<String, ProviderError>),
    Hold(String, LocalHold),
    Forget(String),
}

/// A card processor in test mode (see the module docs for its test cards): in memory, or
/// written through to its own tables (`local_provider_answers`, `local_provider_holds`),
/// which stand for the processor's books and outlive the central system's restarts.
#[derive(Debug, Default)]
pub struct LocalProvider {
    state: Mutex<LocalState>,
    webhook: Option<WebhookTarget>,
    client: Option<reqwest::Client>,
    db: Option<Db>,
}

/// Whether `number` passes the Luhn check.
pub fn luhn(number: &str) -> bool {
    let digits: Option<Vec<u32>> = number.chars().map(|c| c.to_digit(10)).collect();
    let Some(digits) = digits else { return false };
    if digits.len() < 12 {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The signature header value of `body` at unix time `t` with `secret`.
pub fn sign_webhook(secret: &str, t: i64, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, format!("{t}.{body}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// Checks a `Payment-Signature` header over `body` at `now`.
pub fn verify_webhook(secret: &str, header: &str, body: &str, now: DateTime<Utc>) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", x)) => t = x.parse::<i64>().ok(),
            Some(("v1", x)) => v1 = Some(x),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if (now.timestamp() - t).abs() > WEBHOOK_TOLERANCE_SECS {
        return false;
    }
    let Some(tag) = (0..v1.len())
        .step_by(2)
        .map(|i| {
            v1.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::verify(&key, format!("{t}.{body}").as_bytes(), &tag).is_ok()
}

impl LocalProvider {
    /// A provider that sends no webhooks.
    pub fn new() -> LocalProvider {
        LocalProvider::default()
    }

    /// A provider whose state lives in `db` (loaded now) and that posts its events to
    /// `target`.
    pub async fn with_webhook(db: Db, target: WebhookTarget) -> Result<LocalProvider, DbError> {
        let mut st = LocalState::default();
        for r in sqlx::query("SELECT key, answer FROM local_provider_answers")
            .fetch_all(db.writer())
            .await?
        {
            let key: String = r.try_get("key")?;
            let text: String = r.try_get("answer")?;
            let answer = serde_json::from_str(&text).map_err(|_| DbError::Corrupt {
                column: "local_provider_answers.answer",
                value: text.clone(),
            })?;
            st.order.push_back(key.clone());
            st.answers.insert(key, answer);
        }
        for r in sqlx::query("SELECT reference, hold FROM local_provider_holds")
            .fetch_all(db.writer())
            .await?
        {
            let text: String = r.try_get("hold")?;
            let hold = serde_json::from_str(&text).map_err(|_| DbError::Corrupt {
                column: "local_provider_holds.hold",
                value: text.clone(),
            })?;
            st.holds.insert(r.try_get("reference")?, hold);
        }
        Ok(LocalProvider {
            state: Mutex::new(st),
            client: Some(reqwest::Client::new()),
            webhook: Some(target),
            db: Some(db),
        })
    }

    fn remember(
        st: &mut LocalState,
        changes: &mut Vec<Change>,
        key: &str,
        answer: Result<String, ProviderError>,
    ) {
        if st.order.len() >= LOCAL_MAX_KEYS {
            if let Some(old) = st.order.pop_front() {
                st.answers.remove(&old);
                changes.push(Change::Forget(old));
            }
        }
        st.order.push_back(key.to_owned());
        st.answers.insert(key.to_owned(), answer.clone());
        changes.push(Change::Answer(key.to_owned(), answer));
    }

    /// Writes `changes` through (a failure is the processor's outage: a timeout).
    async fn persist(&self, changes: Vec<Change>) -> Result<(), ProviderError> {
        let Some(db) = &self.db else { return Ok(()) };
        for c in changes {
            let q = match c {
                Change::Answer(k, a) => sqlx::query(
                    "INSERT INTO local_provider_answers (key, answer) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET answer = $2",
                )
                .bind(k)
                .bind(serde_json::to_string(&a).unwrap_or_default()),
                Change::Hold(r, h) => sqlx::query(
                    "INSERT INTO local_provider_holds (reference, hold) VALUES ($1, $2)
                     ON CONFLICT (reference) DO UPDATE SET hold = $2",
                )
                .bind(r)
                .bind(serde_json::to_string(&h).unwrap_or_default()),
                Change::Forget(k) => {
                    sqlx::query("DELETE FROM local_provider_answers WHERE key = $1").bind(k)
                }
            };
            if let Err(e) = q.execute(db.writer()).await {
                tracing::error!("local payment provider: {e}");
                return Err(ProviderError::Timeout);
            }
        }
        Ok(())
    }

    fn event(&self, kind: &str, reference: &str, amount: Decimal, currency: &str, key: &str) {
        let (Some(target), Some(client)) = (self.webhook.clone(), self.client.clone()) else {
            return;
        };
        let body = serde_json::json!({
            "id": format!("evt_{}", ring_digest_hex(key, kind)),
            "type": kind,
            "reference": reference,
            "amount": amount.to_string(),
            "currency": currency,
        })
        .to_string();
        tokio::spawn(async move {
            for attempt in 0..3u32 {
                let sig = sign_webhook(&target.secret, Utc::now().timestamp(), &body);
                let sent = client
                    .post(&target.url)
                    .header("content-type", "application/json")
                    .header("payment-signature", sig)
                    .body(body.clone())
                    .send()
                    .await;
                if sent.is_ok_and(|r| r.status().is_success()) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            tracing::warn!("payment webhook not delivered after 3 attempts");
        });
    }
}

fn ring_digest_hex(key: &str, kind: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, format!("{kind}:{key}").as_bytes());
    d.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[async_trait]
impl PaymentProvider for LocalProvider {
    async fn authorize(
        &self,
        card: &str,
        amount: Amount,
        currency: &Currency,
        key: &str,
    ) -> Result<String, ProviderError> {
        let reference = format!(
            "auth_{}",
            super::auth::random_hex(8).map_err(|e| ProviderError::Invalid(e.to_string()))?
        );
        let mut changes = Vec::new();
        let answer = {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(a) = st.answers.get(key) {
                return a.clone();
            }
            let answer = match card {
                "4000000000000002" => Err(ProviderError::Declined("card_declined".into())),
                "4000000000009995" => Err(ProviderError::Declined("insufficient_funds".into())),
                // A timeout is not remembered: the retry gets a real answer.
                "4000000000000119" => return Err(ProviderError::Timeout),
                c if !luhn(c) => Err(ProviderError::Declined("invalid_number".into())),
                _ => {
                    let hold = LocalHold {
                        card: card.to_owned(),
                        held: amount.get(),
                        captured: Decimal::ZERO,
                        refunded: Decimal::ZERO,
                        released: false,
                        currency: currency.as_str().to_owned(),
                        lost_once: false,
                    };
                    st.holds.insert(reference.clone(), hold.clone());
                    changes.push(Change::Hold(reference.clone(), hold));
                    Ok(reference)
                }
            };
            LocalProvider::remember(&mut st, &mut changes, key, answer.clone());
            answer
        };
        self.persist(changes).await?;
        match &answer {
            Ok(r) => self.event(
                "payment.authorized",
                r,
                amount.get(),
                currency.as_str(),
                key,
            ),
            Err(_) => self.event("payment.declined", "", amount.get(), currency.as_str(), key),
        }
        answer
    }

    async fn capture(
        &self,
        reference: &str,
        amount: Amount,
        key: &str,
    ) -> Result<(), ProviderError> {
        let mut changes = Vec::new();
        let (answer, currency, lost) = {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(a) = st.answers.get(key) {
                return a.clone().map(|_| ());
            }
            let Some(mut hold) = st.holds.get(reference).cloned() else {
                return Err(ProviderError::Invalid(format!(
                    "no authorization {reference}"
                )));
            };
            let answer = if hold.card == "4000000000000341" {
                Err(ProviderError::Declined("card_declined".into()))
            } else if hold.released || hold.captured > Decimal::ZERO {
                Err(ProviderError::Invalid("the authorization is closed".into()))
            } else if amount.get() > hold.held {
                Err(ProviderError::Invalid("more than authorized".into()))
            } else {
                hold.captured = amount.get();
                Ok(reference.to_owned())
            };
            // The lost answer: taken and remembered, but the caller hears a timeout once.
            let lost = answer.is_ok() && hold.card == "4000000000006975" && !hold.lost_once;
            if lost {
                hold.lost_once = true;
            }
            if answer.is_ok() {
                st.holds.insert(reference.to_owned(), hold.clone());
                changes.push(Change::Hold(reference.to_owned(), hold.clone()));
            }
            LocalProvider::remember(&mut st, &mut changes, key, answer.clone());
            (answer, hold.currency, lost)
        };
        self.persist(changes).await?;
        if answer.is_ok() {
            self.event("payment.captured", reference, amount.get(), &currency, key);
        }
        if lost {
            return Err(ProviderError::Timeout);
        }
        answer.map(|_| ())
    }

    async fn release(&self, reference: &str, key: &str) -> Result<(), ProviderError> {
        let mut changes = Vec::new();
        let (held, currency) = {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(a) = st.answers.get(key) {
                return a.clone().map(|_| ());
            }
            let Some(mut hold) = st.holds.get(reference).cloned() else {
                return Err(ProviderError::Invalid(format!(
                    "no authorization {reference}"
                )));
            };
            hold.released = true;
            st.holds.insert(reference.to_owned(), hold.clone());
            changes.push(Change::Hold(reference.to_owned(), hold.clone()));
            LocalProvider::remember(&mut st, &mut changes, key, Ok(reference.to_owned()));
            (hold.held, hold.currency)
        };
        self.persist(changes).await?;
        self.event("payment.released", reference, held, &currency, key);
        Ok(())
    }

    async fn refund(
        &self,
        reference: &str,
        amount: Amount,
        key: &str,
    ) -> Result<(), ProviderError> {
        let mut changes = Vec::new();
        let (answer, currency) = {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(a) = st.answers.get(key) {
                return a.clone().map(|_| ());
            }
            let Some(mut hold) = st.holds.get(reference).cloned() else {
                return Err(ProviderError::Invalid(format!(
                    "no authorization {reference}"
                )));
            };
            let answer = match hold.refunded.checked_add(amount.get()) {
                Some(a) if a <= hold.captured => {
                    hold.refunded = a;
                    st.holds.insert(reference.to_owned(), hold.clone());
                    changes.push(Change::Hold(reference.to_owned(), hold.clone()));
                    Ok(reference.to_owned())
                }
                _ => Err(ProviderError::Invalid("more than captured".into())),
            };
            LocalProvider::remember(&mut st, &mut changes, key, answer.clone());
            (answer, hold.currency)
        };
        self.persist(changes).await?;
        if answer.is_ok() {
            self.event("payment.refunded", reference, amount.get(), &currency, key);
        }
        answer.map(|_| ())
    }
}

/// Runs billing in the background: settles when a session ends (after its rows are
/// written) and every [`BillingConfig::sweep_every`], and once at start
/// (what a crash left). Ends with the backend.
pub fn spawn_settlement(backend: &Arc<super::Backend>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(backend);
    let ended = backend.session_ended();
    tokio::spawn(async move {
        let mut first = true;
        loop {
            if !first {
                let Some(every) = weak.upgrade().map(|b| b.billing().config().sweep_every) else {
                    return;
                };
                tokio::select! {
                    _ = ended.notified() => {}
                    _ = tokio::time::sleep(every) => {}
                }
            }
            first = false;
            let Some(b) = weak.upgrade() else { return };
            b.flush().await;
            if let Err(e) = b.billing().sweep().await {
                tracing::warn!("billing sweep failed (retried): {e}");
            }
        }
    })
}

// ------------------------------------------------------------------ billing

/// How billing behaves.
#[derive(Debug, Clone)]
pub struct BillingConfig {
    /// The pre-authorization hold of a session started from the app.
    pub hold: Decimal,
    /// Capture attempts before the hold is released and the cost left to the invoice.
    pub max_attempts: i64,
    /// Each provider call's time limit.
    pub call_timeout: Duration,
    /// How often the sweeper settles what is left (ended sessions not billed, captures to
    /// retry).
    pub sweep_every: Duration,
    /// The HMAC secret webhooks are signed with (`None`: the webhook endpoint refuses all).
    pub webhook_secret: Option<String>,
}

impl Default for BillingConfig {
    /// A hold of 50, 5 capture attempts, 10 s per call, a sweep every 30 s.
    fn default() -> BillingConfig {
        BillingConfig {
            hold: Decimal::from(50),
            max_attempts: 5,
            call_timeout: Duration::from_secs(10),
            sweep_every: Duration::from_secs(30),
            webhook_secret: None,
        }
    }
}

/// Why a billing step failed.
#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The ledger refused or failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The accounts store failed.
    #[error(transparent)]
    Accounts(#[from] AccountsError),
    /// The provider declined or failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The account has no card on file.
    #[error("no payment card on file")]
    NoCard,
    /// The account is blocked.
    #[error("the account is blocked")]
    Blocked,
    /// No such payment or session.
    #[error("no {0}")]
    Unknown(String),
}

/// A payment as stored and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRow {
    /// Id.
    pub id: i64,
    /// The driver account.
    pub account_id: i64,
    /// The session, once linked.
    pub session_id: Option<i64>,
    /// The charger it was held for.
    pub charger: Option<String>,
    /// The token the session runs with.
    pub id_token: Option<String>,
    /// The provider's reference of the hold.
    pub provider_ref: Option<String>,
    /// See the module docs.
    pub status: String,
    /// Held.
    #[schema(value_type = String)]
    pub held: Decimal,
    /// Captured.
    #[schema(value_type = String)]
    pub captured: Decimal,
    /// Refunded.
    #[schema(value_type = String)]
    pub refunded: Decimal,
    /// Currency.
    pub currency: String,
    /// Capture attempts.
    pub attempts: i64,
    /// The last failure.
    pub last_error: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

const PAYMENT_COLUMNS: &str = "id, account_id, session_id, charger, id_token, provider_ref, status,
    held, captured, refunded, currency, attempts, last_error, created_at, updated_at";

fn payment_of(r: &sqlx::any::AnyRow) -> Result<PaymentRow, DbError> {
    Ok(PaymentRow {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        session_id: r.try_get("session_id")?,
        charger: r.try_get("charger")?,
        id_token: r.try_get("id_token")?,
        provider_ref: r.try_get("provider_ref")?,
        status: r.try_get("status")?,
        held: db::parse_dec("payments.held", r.try_get("held")?)?,
        captured: db::parse_dec("payments.captured", r.try_get("captured")?)?,
        refunded: db::parse_dec("payments.refunded", r.try_get("refunded")?)?,
        currency: r.try_get("currency")?,
        attempts: r.try_get("attempts")?,
        last_error: r.try_get("last_error")?,
        created_at: db::parse_ts("payments.created_at", r.try_get("created_at")?)?,
        updated_at: db::parse_ts("payments.updated_at", r.try_get("updated_at")?)?,
    })
}

/// What settling a session did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Settled {
    /// Not a driver's session, or not ended: nothing to bill.
    NotBilled,
    /// Nothing was owed (cost 0); the hold, if any, was released.
    Free,
    /// Captured (and the hold released).
    Captured,
    /// The capture failed; the cost is receivable and the capture will be retried.
    Pending,
    /// No card, or the attempts ran out: the cost is on the invoice.
    Invoiced,
}

/// The billing flow (see the module docs).
#[derive(Debug, Clone)]
pub struct Billing {
    db: Db,
    ledger: Ledger,
    accounts: Arc<Accounts>,
    provider: Arc<dyn PaymentProvider>,
    config: BillingConfig,
}

fn dberr(e: sqlx::Error) -> BillingError {
    BillingError::Db(DbError::from(e))
}

impl Billing {
    /// Billing over `db` with `provider`.
    pub fn new(
        db: Db,
        accounts: Arc<Accounts>,
        provider: Arc<dyn PaymentProvider>,
        config: BillingConfig,
    ) -> Billing {
        Billing {
            ledger: Ledger::new(db.clone()),
            db,
            accounts,
            provider,
            config,
        }
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The configuration.
    pub fn config(&self) -> &BillingConfig {
        &self.config
    }

    async fn call<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        match tokio::time::timeout(self.config.call_timeout, f).await {
            Ok(r) => r,
            Err(_) => Err(ProviderError::Timeout),
        }
    }

    /// One payment.
    pub async fn payment(&self, id: i64) -> Result<PaymentRow, BillingError> {
        let row = sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.db.writer())
        .await
        .map_err(dberr)?
        .ok_or_else(|| BillingError::Unknown(format!("payment {id}")))?;
        Ok(payment_of(&row)?)
    }

    /// A driver's payments, newest first (at most 200).
    pub async fn payments_of(&self, account: i64) -> Result<Vec<PaymentRow>, BillingError> {
        let rows = sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE account_id = $1 ORDER BY id DESC LIMIT 200"
        ))
        .bind(account)
        .fetch_all(self.db.reader())
        .await
        .map_err(dberr)?;
        Ok(rows.iter().map(payment_of).collect::<Result<_, _>>()?)
    }

    /// The payment of a session, if any.
    pub async fn payment_of_session(
        &self,
        session: i64,
    ) -> Result<Option<PaymentRow>, BillingError> {
        let row = sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE session_id = $1 ORDER BY id DESC LIMIT 1"
        ))
        .bind(session)
        .fetch_optional(self.db.writer())
        .await
        .map_err(dberr)?;
        Ok(row.as_ref().map(payment_of).transpose()?)
    }

    async fn set_payment(
        &self,
        id: i64,
        status: &str,
        captured: Option<Decimal>,
        attempts: Option<i64>,
        error: Option<&str>,
    ) -> Result<(), BillingError> {
        sqlx::query(
            "UPDATE payments SET status = $2, captured = COALESCE($3, captured),
             attempts = COALESCE($4, attempts), last_error = $5, updated_at = $6 WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(captured.map(|c| c.to_string()))
        .bind(attempts)
        .bind(error)
        .bind(ts(Utc::now()))
        .execute(self.db.writer())
        .await
        .map_err(dberr)?;
        Ok(())
    }

    /// Puts the pre-authorization hold for a session the driver starts from the app on
    /// `charger` with `id_token`. Refused when the account is blocked, has no card, or the
    /// provider declines (the payment is then stored `declined`).
    pub async fn hold(
        &self,
        account: i64,
        charger: &str,
        id_token: &str,
        currency: &str,
    ) -> Result<PaymentRow, BillingError> {
        let info = self.accounts.account(account).await?;
        if info.status != "active" {
            return Err(BillingError::Blocked);
        }
        let card = self
            .accounts
            .card(account)
            .await?
            .ok_or(BillingError::NoCard)?;
        let currency = Currency::new(currency)?;
        let amount = Amount::new(self.config.hold)?;
        let now = Utc::now();
        let row = sqlx::query(
            "INSERT INTO payments (account_id, charger, id_token, status, held, captured, refunded,
             currency, attempts, created_at, updated_at)
             VALUES ($1, $2, $3, 'authorizing', $4, '0', '0', $5, 0, $6, $6) RETURNING id",
        )
        .bind(account)
        .bind(charger)
        .bind(id_token)
        .bind(amount.get().to_string())
        .bind(currency.as_str())
        .bind(ts(now))
        .fetch_one(self.db.writer())
        .await
        .map_err(dberr)?;
        let id: i64 = row.try_get("id").map_err(dberr)?;
        let key = format!("payment:{id}:hold");
        match self
            .call(self.provider.authorize(&card, amount, &currency, &key))
            .await
        {
            Ok(reference) => {
                sqlx::query(
                    "UPDATE payments SET provider_ref = $2, status = 'held', updated_at = $3 WHERE id = $1",
                )
                .bind(id)
                .bind(&reference)
                .bind(ts(Utc::now()))
                .execute(self.db.writer())
                .await
                .map_err(dberr)?;
                let posting = Posting::new(key, "hold", currency)?
                    .transfer(
                        LedgerAccount::CardHolds,
                        LedgerAccount::Hold(account),
                        amount,
                    )?
                    .about(None, Some(account))
                    .memo(&format!("pre-authorization for {charger}"));
                self.ledger.post(&posting, Utc::now()).await?;
                self.payment(id).await
            }
            Err(e) => {
                self.set_payment(id, "declined", None, None, Some(&e.to_string()))
                    .await?;
                Err(e.into())
            }
        }
    }

    /// Bills an ended session (idempotent; see the module docs).
    pub async fn settle(&self, session: &SessionRow) -> Result<Settled, BillingError> {
        if session.status != "completed" {
            return Ok(Settled::NotBilled);
        }
        let Some(token) = session.id_token.as_deref() else {
            return Ok(Settled::NotBilled);
        };
        let Some(owner) = self.accounts.token_owner(token).await? else {
            return Ok(Settled::NotBilled);
        };
        let account = owner.account_id;
        let currency = Currency::new(&session.currency)?;
        let cost = session.cost;
        // 1. The cost is owed, before anything can fail.
        let charge_key = format!("session:{}:charge", session.id);
        if cost > Decimal::ZERO {
            let posting = Posting::new(charge_key, "charge", currency.clone())?
                .transfer(
                    LedgerAccount::Receivable(account),
                    LedgerAccount::Revenue,
                    Amount::new(cost)?,
                )?
                .about(Some(session.id), Some(account))
                .memo(&format!("charging on {}", session.charger));
            self.ledger.post(&posting, Utc::now()).await?;
        }
        // 2. The payment: the session's, or the hold put for it (same account, token and
        // charger, not yet linked, made before the session started or up to 5 minutes after).
        let mut payment = self.payment_of_session(session.id).await?;
        if payment.is_none() {
            let row = sqlx::query(&format!(
                "SELECT {PAYMENT_COLUMNS} FROM payments WHERE session_id IS NULL AND account_id = $1
                 AND id_token = $2 AND charger = $3 AND status = 'held' ORDER BY id LIMIT 1"
            ))
            .bind(account)
            .bind(token)
            .bind(&session.charger)
            .fetch_optional(self.db.writer())
            .await
            .map_err(dberr)?;
            if let Some(r) = row {
                let p = payment_of(&r)?;
                sqlx::query(
                    "UPDATE payments SET session_id = $2 WHERE id = $1 AND session_id IS NULL",
                )
                .bind(p.id)
                .bind(session.id)
                .execute(self.db.writer())
                .await
                .map_err(dberr)?;
                payment = Some(PaymentRow {
                    session_id: Some(session.id),
                    ..p
                });
            }
        }
        if payment.is_none() && cost > Decimal::ZERO {
            // An RFID session: authorize the cost now, if there is a card; else invoice.
            let Some(card) = self.accounts.card(account).await? else {
                self.new_payment(account, session, "invoiced", Decimal::ZERO, None, None)
                    .await?;
                return Ok(Settled::Invoiced);
            };
            let key = format!("session:{}:authorize", session.id);
            let amount = Amount::new(cost)?;
            match self
                .call(self.provider.authorize(&card, amount, &currency, &key))
                .await
            {
                Ok(reference) => {
                    let id = self
                        .new_payment(account, session, "held", cost, Some(&reference), None)
                        .await?;
                    let posting =
                        Posting::new(format!("payment:{id}:hold"), "hold", currency.clone())?
                            .transfer(
                                LedgerAccount::CardHolds,
                                LedgerAccount::Hold(account),
                                amount,
                            )?
                            .about(Some(session.id), Some(account));
                    self.ledger.post(&posting, Utc::now()).await?;
                    payment = Some(self.payment(id).await?);
                }
                Err(ProviderError::Timeout) => return Ok(Settled::Pending),
                Err(e) => {
                    self.new_payment(
                        account,
                        session,
                        "invoiced",
                        Decimal::ZERO,
                        None,
                        Some(&e.to_string()),
                    )
                    .await?;
                    return Ok(Settled::Invoiced);
                }
            }
        }
        let Some(payment) = payment else {
            return Ok(Settled::Free);
        };
        match payment.status.as_str() {
            "captured" | "refunded" => return Ok(Settled::Captured),
            "released" => return Ok(Settled::Free),
            "failed" | "invoiced" | "declined" => return Ok(Settled::Invoiced),
            _ => {}
        }
        let reference = payment.provider_ref.clone().unwrap_or_default();
        let to_capture = cost.min(payment.held);
        if to_capture <= Decimal::ZERO {
            self.release(&payment, account, &currency).await?;
            self.set_payment(payment.id, "released", None, None, None)
                .await?;
            return Ok(Settled::Free);
        }
        let amount = Amount::new(to_capture)?;
        let key = format!("session:{}:capture", session.id);
        let attempts = payment.attempts.saturating_add(1);
        match self
            .call(self.provider.capture(&reference, amount, &key))
            .await
        {
            Ok(()) => {
                let posting = Posting::new(key, "capture", currency.clone())?
                    .transfer(
                        LedgerAccount::Clearing,
                        LedgerAccount::Receivable(account),
                        amount,
                    )?
                    .about(Some(session.id), Some(account));
                self.ledger.post(&posting, Utc::now()).await?;
                self.release(&payment, account, &currency).await?;
                self.set_payment(
                    payment.id,
                    "captured",
                    Some(to_capture),
                    Some(attempts),
                    None,
                )
                .await?;
                Ok(Settled::Captured)
            }
            Err(e) => {
                tracing::warn!(session = session.id, attempts, "capture failed: {e}");
                if attempts >= self.config.max_attempts {
                    self.release(&payment, account, &currency).await?;
                    self.set_payment(
                        payment.id,
                        "failed",
                        None,
                        Some(attempts),
                        Some(&e.to_string()),
                    )
                    .await?;
                    Ok(Settled::Invoiced)
                } else {
                    self.set_payment(
                        payment.id,
                        "capture_pending",
                        None,
                        Some(attempts),
                        Some(&e.to_string()),
                    )
                    .await?;
                    Ok(Settled::Pending)
                }
            }
        }
    }

    async fn new_payment(
        &self,
        account: i64,
        session: &SessionRow,
        status: &str,
        held: Decimal,
        reference: Option<&str>,
        error: Option<&str>,
    ) -> Result<i64, BillingError> {
        let now = ts(Utc::now());
        let row = sqlx::query(
            "INSERT INTO payments (account_id, session_id, charger, id_token, provider_ref, status,
             held, captured, refunded, currency, attempts, last_error, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, '0', '0', $8, 0, $9, $10, $10) RETURNING id",
        )
        .bind(account)
        .bind(session.id)
        .bind(&session.charger)
        .bind(session.id_token.as_deref())
        .bind(reference)
        .bind(status)
        .bind(held.to_string())
        .bind(&session.currency)
        .bind(error)
        .bind(now)
        .fetch_one(self.db.writer())
        .await
        .map_err(dberr)?;
        row.try_get("id").map_err(dberr)
    }

    async fn release(
        &self,
        payment: &PaymentRow,
        account: i64,
        currency: &Currency,
    ) -> Result<(), BillingError> {
        let key = format!("payment:{}:release", payment.id);
        if self.ledger.has(&key).await? {
            return Ok(());
        }
        if let Some(reference) = &payment.provider_ref {
            // A failed release is retried by the next settle (the journal is not written).
            self.call(self.provider.release(reference, &key)).await?;
        }
        if let Ok(held) = Amount::new(payment.held) {
            let posting = Posting::new(key, "release", currency.clone())?
                .transfer(LedgerAccount::Hold(account), LedgerAccount::CardHolds, held)?
                .about(payment.session_id, Some(account));
            self.ledger.post(&posting, Utc::now()).await?;
        }
        Ok(())
    }

    /// Releases a hold whose session never started (the charger refused the remote start).
    pub async fn cancel_hold(&self, payment: &PaymentRow) -> Result<(), BillingError> {
        if payment.status != "held" || payment.session_id.is_some() {
            return Ok(());
        }
        let currency = Currency::new(&payment.currency)?;
        self.release(payment, payment.account_id, &currency).await?;
        self.set_payment(
            payment.id,
            "released",
            None,
            None,
            Some("the session did not start"),
        )
        .await
    }

    /// Refunds `amount` of a captured session (at most what was captured and not refunded).
    pub async fn refund(
        &self,
        session_id: i64,
        amount: Decimal,
    ) -> Result<PaymentRow, BillingError> {
        let p = self
            .payment_of_session(session_id)
            .await?
            .filter(|p| matches!(p.status.as_str(), "captured" | "refunded"))
            .ok_or_else(|| {
                BillingError::Unknown(format!("captured payment of session {session_id}"))
            })?;
        let amount = Amount::new(amount)?;
        let after = p
            .refunded
            .checked_add(amount.get())
            .filter(|a| *a <= p.captured)
            .ok_or_else(|| ProviderError::Invalid("more than captured".into()))?;
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM ledger_journals WHERE session_id = $1 AND kind = 'refund'",
        )
        .bind(session_id)
        .fetch_one(self.db.writer())
        .await
        .map_err(dberr)?
        .try_get("n")
        .map_err(dberr)?;
        let key = format!("session:{session_id}:refund:{}", n + 1);
        let reference = p.provider_ref.clone().unwrap_or_default();
        self.call(self.provider.refund(&reference, amount, &key))
            .await?;
        let posting = Posting::new(key, "refund", Currency::new(&p.currency)?)?
            .transfer(LedgerAccount::Refunds, LedgerAccount::Clearing, amount)?
            .about(Some(session_id), Some(p.account_id));
        self.ledger.post(&posting, Utc::now()).await?;
        sqlx::query(
            "UPDATE payments SET refunded = $2, status = 'refunded', updated_at = $3 WHERE id = $1",
        )
        .bind(p.id)
        .bind(after.to_string())
        .bind(ts(Utc::now()))
        .execute(self.db.writer())
        .await
        .map_err(dberr)?;
        self.payment(p.id).await
    }

    /// Settles what is left: ended sessions of driver tokens with no charge journal or no
    /// settled payment, and captures to retry (at most [`SWEEP_BATCH`] sessions). How many
    /// sessions it looked at.
    pub async fn sweep(&self) -> Result<usize, BillingError> {
        let rows = sqlx::query(
            "SELECT s.id FROM sessions s JOIN driver_tokens t ON t.id_token = s.id_token
             WHERE s.status = 'completed' AND (
                NOT EXISTS (SELECT 1 FROM payments p WHERE p.session_id = s.id)
                OR EXISTS (SELECT 1 FROM payments p WHERE p.session_id = s.id
                           AND p.status IN ('held', 'capture_pending', 'authorizing')))
             ORDER BY s.id LIMIT $1",
        )
        .bind(SWEEP_BATCH)
        .fetch_all(self.db.writer())
        .await
        .map_err(dberr)?;
        let mut n = 0;
        for r in rows {
            let id: i64 = r.try_get("id").map_err(dberr)?;
            let Some(session) = self.db.session(id).await? else {
                continue;
            };
            // A free session with no payment stays "no payment"; settle is idempotent.
            if session.cost.is_zero() && self.payment_of_session(id).await?.is_none() {
                let held = sqlx::query(
                    "SELECT id FROM payments WHERE session_id IS NULL AND status = 'held' AND id_token = $1 AND charger = $2",
                )
                .bind(session.id_token.as_deref())
                .bind(&session.charger)
                .fetch_optional(self.db.writer())
                .await
                .map_err(dberr)?;
                if held.is_none() {
                    continue;
                }
            }
            if let Err(e) = self.settle(&session).await {
                tracing::warn!(
                    session = id,
                    "settling failed (retried by the next sweep): {e}"
                );
            }
            n += 1;
        }
        Ok(n)
    }

    /// Stores a webhook event once by its id; whether it was new.
    pub async fn webhook_received(
        &self,
        id: &str,
        kind: &str,
        body: &str,
    ) -> Result<bool, BillingError> {
        let r = sqlx::query(
            "INSERT INTO payment_webhooks (id, kind, body, received_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(kind)
        .bind(body)
        .bind(ts(Utc::now()))
        .execute(self.db.writer())
        .await
        .map_err(dberr)?;
        Ok(r.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_and_signatures() {
        assert!(luhn("4242424242424242"));
        assert!(luhn("4000000000000002"));
        assert!(!luhn("4242424242424241"));
        assert!(!luhn("42x2"));
        let now = Utc::now();
        let sig = sign_webhook("whsec", now.timestamp(), "{}");
        assert!(verify_webhook("whsec", &sig, "{}", now));
        assert!(!verify_webhook("other", &sig, "{}", now));
        assert!(!verify_webhook("whsec", &sig, "{ }", now));
        assert!(!verify_webhook(
            "whsec",
            &sig,
            "{}",
            now + chrono::Duration::seconds(WEBHOOK_TOLERANCE_SECS + 1)
        ));
        assert!(!verify_webhook("whsec", "t=1,v1=zz", "{}", now));
        assert!(!verify_webhook("whsec", "garbage", "{}", now));
    }

    #[tokio::test]
    async fn local_provider_test_cards_and_idempotency() {
        let p = LocalProvider::new();
        let eur = Currency::new("EUR").expect("eur");
        let ten = Amount::new(Decimal::from(10)).expect("amount");
        let r = p
            .authorize("4242424242424242", ten, &eur, "k1")
            .await
            .expect("ok");
        assert_eq!(
            p.authorize("4242424242424242", ten, &eur, "k1").await,
            Ok(r.clone())
        );
        assert_eq!(
            p.authorize("4000000000000002", ten, &eur, "k2").await,
            Err(ProviderError::Declined("card_declined".into()))
        );
        assert_eq!(
            p.authorize("4000000000009995", ten, &eur, "k3").await,
            Err(ProviderError::Declined("insufficient_funds".into()))
        );
        assert_eq!(
            p.authorize("4000000000000119", ten, &eur, "k4").await,
            Err(ProviderError::Timeout)
        );
        assert_eq!(
            p.authorize("1234567812345678", ten, &eur, "k5").await,
            Err(ProviderError::Declined("invalid_number".into()))
        );
        let more = Amount::new(Decimal::from(11)).expect("amount");
        assert!(matches!(
            p.capture(&r, more, "c0").await,
            Err(ProviderError::Invalid(_))
        ));
        p.capture(&r, Amount::new(Decimal::from(7)).expect("7"), "c1")
            .await
            .expect("capture");
        // The same key again: the first answer, not a second capture.
        p.capture(&r, Amount::new(Decimal::from(7)).expect("7"), "c1")
            .await
            .expect("again");
        // A different key: the authorization is closed.
        assert!(p
            .capture(&r, Amount::new(Decimal::from(1)).expect("1"), "c2")
            .await
            .is_err());
        p.refund(&r, Amount::new(Decimal::from(7)).expect("7"), "r1")
            .await
            .expect("refund");
        assert!(p
            .refund(&r, Amount::new(Decimal::from(1)).expect("1"), "r2")
            .await
            .is_err());
        // Capture declined on 0341; the lost answer on 6975.
        let d = p
            .authorize("4000000000000341", ten, &eur, "k6")
            .await
            .expect("auth");
        assert!(matches!(
            p.capture(&d, ten, "c3").await,
            Err(ProviderError::Declined(_))
        ));
        let l = p
            .authorize("4000000000006975", ten, &eur, "k7")
            .await
            .expect("auth");
        assert_eq!(p.capture(&l, ten, "c4").await, Err(ProviderError::Timeout));
        assert_eq!(
            p.capture(&l, ten, "c4").await,
            Ok(()),
            "the retry hears the first result"
        );
    }
}

/// The property: under any lifecycle of app and RFID sessions (holds, stops, captures that
/// succeed, are declined or lose their answer, refunds, sweeps, and crashes of the billing
/// process at any point, including between a session's end and its settling), every journal
/// balances, every ended session's exact cost is in the ledger once, and nothing is captured
/// twice.
#[cfg(test)]
mod lifecycle {
    use super::*;
    use crate::backend::auth::{AuthConfig, Secret};
    use proptest::prelude::*;

    /// The cards of the drivers: good, capture declined, capture answer lost, declines holds,
    /// none (RFID on the invoice).
    const CARDS: [Option<&str>; 5] = [
        Some("4242424242424242"),
        Some("4000000000000341"),
        Some("4000000000006975"),
        Some("4000000000000002"),
        None,
    ];

    #[derive(Debug, Clone)]
    enum Op {
        /// A driver starts from the app (a hold) or with RFID (no hold).
        Start {
            driver: usize,
            app: bool,
        },
        /// Session `slot` ends with cost `cents / 10^4`; settled at once unless `crash`.
        Stop {
            slot: usize,
            cents: i64,
            crash: bool,
        },
        Sweep,
        Refund {
            slot: usize,
            cents: i64,
        },
        /// The billing process dies and comes back (the database and the provider stay).
        Crash,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..CARDS.len(), any::<bool>()).prop_map(|(driver, app)| Op::Start { driver, app }),
            (0..8usize, 0..1_000_000i64, any::<bool>()).prop_map(|(slot, cents, crash)| Op::Stop {
                slot,
                cents,
                crash
            }),
            Just(Op::Sweep),
            (0..8usize, 1..200_000i64).prop_map(|(slot, cents)| Op::Refund { slot, cents }),
            Just(Op::Crash),
        ]
    }

    struct World {
        db: Db,
        accounts: Arc<Accounts>,
        provider: Arc<LocalProvider>,
        billing: Billing,
        drivers: Vec<(i64, String)>,
        /// (session id, driver index, ended cost)
        sessions: Vec<(i64, usize, Option<Decimal>)>,
    }

    fn billing(w: &World) -> Billing {
        Billing::new(
            w.db.clone(),
            w.accounts.clone(),
            w.provider.clone(),
            BillingConfig {
                max_attempts: 3,
                ..BillingConfig::default()
            },
        )
    }

    async fn world() -> World {
        let db = Db::open("sqlite::memory:").await.expect("db");
        let accounts = Accounts::new(db.clone(), AuthConfig::new()).expect("accounts");
        let mut drivers = Vec::new();
        for (i, card) in CARDS.iter().enumerate() {
            let a = accounts
                .sign_up(
                    &format!("d{i}@example.org"),
                    "D",
                    &Secret::new("correct horse battery"),
                )
                .await
                .expect("sign up");
            accounts.set_card(a.id, *card).await.expect("card");
            drivers.push((a.id, a.app_token.expect("app token")));
        }
        let provider = Arc::new(LocalProvider::new());
        let mut w = World {
            billing: Billing::new(
                db.clone(),
                accounts.clone(),
                provider.clone(),
                BillingConfig::default(),
            ),
            db,
            accounts,
            provider,
            drivers,
            sessions: Vec::new(),
        };
        w.billing = billing(&w);
        w
    }

    async fn run(ops: Vec<Op>) {
        let mut w = world().await;
        let mut n = 0u32;
        for op in ops {
            match op {
                Op::Start { driver, app } => {
                    let (account, token) = w.drivers[driver].clone();
                    let charger = format!("CP{driver}");
                    if app
                        && w.billing
                            .hold(account, &charger, &token, "EUR")
                            .await
                            .is_err()
                    {
                        continue; // declined or no card: the start is refused
                    }
                    n += 1;
                    let id =
                        w.db.session_started(
                            &charger,
                            &format!("T{n}"),
                            1,
                            None,
                            Some(&token),
                            Utc::now(),
                            None,
                            "EUR",
                        )
                        .await
                        .expect("session");
                    w.sessions.push((id, driver, None));
                }
                Op::Stop { slot, cents, crash } => {
                    let Some(s) = w.sessions.get_mut(slot) else {
                        continue;
                    };
                    if s.2.is_some() {
                        continue;
                    }
                    let cost = Decimal::new(cents, 4);
                    s.2 = Some(cost);
                    sqlx::query("UPDATE sessions SET status = 'completed', ended_at = $2, cost = $3 WHERE id = $1")
                        .bind(s.0)
                        .bind(ts(Utc::now()))
                        .bind(cost.to_string())
                        .execute(w.db.writer())
                        .await
                        .expect("stop");
                    if !crash {
                        let row = w.db.session(s.0).await.expect("read").expect("session");
                        let _ = w.billing.settle(&row).await;
                    }
                }
                Op::Sweep => {
                    w.billing.sweep().await.expect("sweep");
                }
                Op::Refund { slot, cents } => {
                    if let Some(s) = w.sessions.get(slot) {
                        let _ = w.billing.refund(s.0, Decimal::new(cents, 4)).await;
                    }
                }
                Op::Crash => w.billing = billing(&w),
            }
        }
        // Everything ended is settled after enough sweeps (the attempts run out at 3).
        for s in &mut w.sessions {
            if s.2.is_none() {
                s.2 = Some(Decimal::ZERO);
                sqlx::query(
                    "UPDATE sessions SET status = 'completed', ended_at = $2 WHERE id = $1",
                )
                .bind(s.0)
                .bind(ts(Utc::now()))
                .execute(w.db.writer())
                .await
                .expect("stop");
            }
        }
        for _ in 0..5 {
            w.billing.sweep().await.expect("sweep");
        }
        let ledger = w.billing.ledger();
        assert!(
            ledger.unbalanced().await.expect("audit").is_empty(),
            "every journal balances"
        );
        let mut owed = vec![Decimal::ZERO; CARDS.len()];
        let mut total = Decimal::ZERO;
        for (id, driver, cost) in &w.sessions {
            let cost = cost.unwrap_or_default();
            total += cost;
            let journals = ledger.journals(Some(*id), None).await.expect("journals");
            let charged: Decimal = journals
                .iter()
                .filter(|j| j.kind == "charge")
                .flat_map(|j| j.entries.iter())
                .filter(|e| e.amount > Decimal::ZERO)
                .map(|e| e.amount)
                .sum();
            assert_eq!(
                charged, cost,
                "session {id}: its exact cost is charged once"
            );
            let captures = journals.iter().filter(|j| j.kind == "capture").count();
            assert!(captures <= 1, "session {id} captured {captures} times");
            let captured: Decimal = journals
                .iter()
                .filter(|j| j.kind == "capture")
                .flat_map(|j| j.entries.iter())
                .filter(|e| e.amount > Decimal::ZERO)
                .map(|e| e.amount)
                .sum();
            assert!(captured <= cost);
            let p = w.billing.payment_of_session(*id).await.expect("payment");
            if let Some(p) = &p {
                assert_eq!(
                    p.captured, captured,
                    "session {id}: payment and ledger agree"
                );
                assert!(
                    !matches!(
                        p.status.as_str(),
                        "held" | "capture_pending" | "authorizing"
                    ),
                    "session {id} left {}",
                    p.status
                );
            }
            owed[*driver] += cost - captured;
        }
        for (i, (account, _)) in w.drivers.iter().enumerate() {
            assert_eq!(
                ledger
                    .balance(LedgerAccount::Receivable(*account), "EUR")
                    .await
                    .expect("b"),
                owed[i],
                "driver {i}: what is not captured is still owed"
            );
            // Every hold of an ended session is released (no session is running now); holds
            // whose session never started stay (they are released when the start is refused).
        }
        assert_eq!(
            ledger
                .balance(LedgerAccount::Revenue, "EUR")
                .await
                .expect("revenue"),
            -total,
            "no session's cost is lost"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]
        #[test]
        fn every_lifecycle_balances_and_loses_no_cost(ops in prop::collection::vec(op(), 1..40)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
            rt.block_on(run(ops));
        }
    }
}
