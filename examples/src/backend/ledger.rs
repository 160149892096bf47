//! The billing ledger: double-entry bookkeeping of what drivers owe and pay, in exact
//! decimals with a currency, stored in the database (`ledger_journals`, `ledger_entries`,
//! migration 19 in [`super::accounts::MIGRATION`]).
//!
//! A [`Posting`] (one journal) is a list of transfers, each moving a positive [`Amount`]
//! from one [`LedgerAccount`] (credited) to another (debited), all in one currency; its
//! entries are `+amount` on the debited account and `-amount` on the credited one, so every
//! journal sums to zero **by construction**: there is no way to build an unbalanced one.
//! A journal is written once per key ([`Ledger::post`] is idempotent: posting the same key
//! again writes nothing), so a flow that crashes and runs again after a restart never
//! counts anything twice.
//!
//! The accounts and what moves between them in a session's life ([`super::payments`]):
//!
//! | journal (key) | debit | credit | amount |
//! |---|---|---|---|
//! | hold, when a session starts from the app (`payment:{id}:hold`) | `card_holds` | `hold:{driver}` | the pre-authorized amount |
//! | charge, when the session ends (`session:{id}:charge`) | `receivable:{driver}` | `revenue` | the session's exact cost |
//! | capture, when the provider took it (`session:{id}:capture`) | `clearing` | `receivable:{driver}` | the captured amount |
//! | release, of the hold (`payment:{id}:release`) | `hold:{driver}` | `card_holds` | the whole hold |
//! | refund (`session:{id}:refund:{n}`) | `refunds` | `clearing` | the refunded amount |
//!
//! The cost is owed (`receivable`) from the moment the session ends, whatever the payment
//! provider says afterwards: a declined or timed-out capture leaves it there, to be
//! captured on a retry or invoiced.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::Row;

use super::db::{self, ts, Db, DbError};

/// The largest amount one transfer moves (10¹² in the currency's unit): far beyond any
/// charging session, and far from `Decimal`'s limits, so sums of many never overflow.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(0xD4A5_1000, 0xE8, 0, false, 0);

/// The most decimal places an amount keeps (costs come from the tariff with up to 6).
pub const MAX_SCALE: u32 = 6;

/// The most transfers in one posting.
pub const MAX_TRANSFERS: usize = 16;

/// The longest journal key.
pub const MAX_KEY: usize = 200;

/// Why a ledger operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// An amount that is not positive, too large or too precise.
    #[error("an amount is positive, at most 10^12 and has at most {MAX_SCALE} decimals: {0}")]
    InvalidAmount(Decimal),
    /// A currency that is not three capital letters.
    #[error("a currency is three capital letters (ISO 4217): {0:?}")]
    InvalidCurrency(String),
    /// A key that is empty or too long.
    #[error("a journal key is 1 to {MAX_KEY} characters")]
    InvalidKey,
    /// A posting with no transfer or too many.
    #[error("a posting has 1 to {MAX_TRANSFERS} transfers")]
    Transfers,
    /// A transfer from an account to itself.
    #[error("a transfer moves between two different accounts")]
    SameAccount,
    /// A stored ledger account name that is not one.
    #[error("unknown ledger account {0:?}")]
    UnknownAccount(String),
}

/// A positive amount of money: more than zero, at most [`MAX_AMOUNT`], at most
/// [`MAX_SCALE`] decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Amount(Decimal);

impl Amount {
    /// `d` if it is a valid amount.
    pub fn new(d: Decimal) -> Result<Amount, LedgerError> {
        if d > Decimal::ZERO && d <= MAX_AMOUNT && d.normalize().scale() <= MAX_SCALE {
            Ok(Amount(d.normalize()))
        } else {
            Err(LedgerError::InvalidAmount(d))
        }
    }

    /// The value.
    pub fn get(self) -> Decimal {
        self.0
    }
}

/// An ISO 4217 currency code.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Currency(String);

impl Currency {
    /// `code` if it is three capital letters.
    pub fn new(code: &str) -> Result<Currency, LedgerError> {
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Currency(code.to_owned()))
        } else {
            Err(LedgerError::InvalidCurrency(code.to_owned()))
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An account of the ledger (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LedgerAccount {
    /// What a driver owes (asset).
    Receivable(i64),
    /// Funds held on a driver's card (liability: the driver's money, not ours).
    Hold(i64),
    /// Funds held at the payment provider (asset, mirrors the holds).
    CardHolds,
    /// Money the payment provider captured and will pay out (asset).
    Clearing,
    /// Revenue from charging.
    Revenue,
    /// Refunds given (contra-revenue).
    Refunds,
}

impl fmt::Display for LedgerAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerAccount::Receivable(d) => write!(f, "receivable:{d}"),
            LedgerAccount::Hold(d) => write!(f, "hold:{d}"),
            LedgerAccount::CardHolds => f.write_str("card_holds"),
            LedgerAccount::Clearing => f.write_str("clearing"),
            LedgerAccount::Revenue => f.write_str("revenue"),
            LedgerAccount::Refunds => f.write_str("refunds"),
        }
    }
}

impl FromStr for LedgerAccount {
    type Err = LedgerError;

    fn from_str(s: &str) -> Result<LedgerAccount, LedgerError> {
        let unknown = || LedgerError::UnknownAccount(s.to_owned());
        let driver = |d: &str| d.parse::<i64>().map_err(|_| unknown());
        match s.split_once(':') {
            Some(("receivable", d)) => Ok(LedgerAccount::Receivable(driver(d)?)),
            Some(("hold", d)) => Ok(LedgerAccount::Hold(driver(d)?)),
            None => match s {
                "card_holds" => Ok(LedgerAccount::CardHolds),
                "clearing" => Ok(LedgerAccount::Clearing),
                "revenue" => Ok(LedgerAccount::Revenue),
                "refunds" => Ok(LedgerAccount::Refunds),
                _ => Err(unknown()),
            },
            _ => Err(unknown()),
        }
    }
}

/// One transfer of a posting: `amount` debited to `debit`, credited to `credit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The account debited (`+amount`).
    pub debit: LedgerAccount,
    /// The account credited (`-amount`).
    pub credit: LedgerAccount,
    /// How much.
    pub amount: Amount,
}

/// One line of a journal: an account and a signed amount (debit positive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The account (`receivable:7`, `revenue`, ...).
    pub account: String,
    /// Debit positive, credit negative.
    #[schema(value_type = String)]
    pub amount: Decimal,
    /// The currency.
    pub currency: String,
}

/// A balanced journal ready to post (see the module docs). Only [`Posting::new`] and
/// [`Posting::transfer`] build one, so its entries always sum to zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    key: String,
    kind: &'static str,
    currency: Currency,
    session_id: Option<i64>,
    account_id: Option<i64>,
    memo: Option<String>,
    transfers: Vec<Transfer>,
}

impl Posting {
    /// An empty posting with its idempotency key, kind (`hold`, `charge`, `capture`,
    /// `release`, `refund`) and currency.
    pub fn new(
        key: impl Into<String>,
        kind: &'static str,
        currency: Currency,
    ) -> Result<Posting, LedgerError> {
        let key = key.into();
        if key.is_empty() || key.len() > MAX_KEY {
            return Err(LedgerError::InvalidKey);
        }
        Ok(Posting {
            key,
            kind,
            currency,
            session_id: None,
            account_id: None,
            memo: None,
            transfers: Vec::new(),
        })
    }

    /// Adds a transfer of `amount` from `credit` to `debit`.
    pub fn transfer(
        mut self,
        debit: LedgerAccount,
        credit: LedgerAccount,
        amount: Amount,
    ) -> Result<Posting, LedgerError> {
        if debit == credit {
            return Err(LedgerError::SameAccount);
        }
        if self.transfers.len() >= MAX_TRANSFERS {
            return Err(LedgerError::Transfers);
        }
        self.transfers.push(Transfer {
            debit,
            credit,
            amount,
        });
        Ok(self)
    }

    /// Links the journal to a session and a driver account.
    pub fn about(mut self, session_id: Option<i64>, account_id: Option<i64>) -> Posting {
        self.session_id = session_id;
        self.account_id = account_id;
        self
    }

    /// A note for humans (at most 200 characters kept).
    pub fn memo(mut self, memo: &str) -> Posting {
        self.memo = Some(memo.chars().take(200).collect());
        self
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The transfers.
    pub fn transfers(&self) -> &[Transfer] {
        &self.transfers
    }

    /// The entries: two per transfer, summing to zero.
    pub fn entries(&self) -> Vec<Entry> {
        let mut out = Vec::with_capacity(self.transfers.len() * 2);
        for t in &self.transfers {
            out.push(Entry {
                account: t.debit.to_string(),
                amount: t.amount.get(),
                currency: self.currency.0.clone(),
            });
            out.push(Entry {
                account: t.credit.to_string(),
                amount: -t.amount.get(),
                currency: self.currency.0.clone(),
            });
        }
        out
    }
}

/// A journal as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Journal {
    /// The idempotency key.
    pub key: String,
    /// `hold`, `charge`, `capture`, `release` or `refund`.
    pub kind: String,
    /// The currency.
    pub currency: String,
    /// The session, if any.
    pub session_id: Option<i64>,
    /// The driver account, if any.
    pub account_id: Option<i64>,
    /// A note.
    pub memo: Option<String>,
    /// When it was posted.
    pub at: DateTime<Utc>,
    /// Its entries.
    pub entries: Vec<Entry>,
}

/// The ledger over the database.
#[derive(Debug, Clone)]
pub struct Ledger {
    db: Db,
}

fn dberr(e: sqlx::Error) -> LedgerError {
    LedgerError::Db(DbError::from(e))
}

impl Ledger {
    /// Over `db`.
    pub fn new(db: Db) -> Ledger {
        Ledger { db }
    }

    /// Writes `posting` in one database transaction, unless a journal with its key exists:
    /// whether it was written now.
    pub async fn post(&self, posting: &Posting, at: DateTime<Utc>) -> Result<bool, LedgerError> {
        if posting.transfers.is_empty() {
            return Err(LedgerError::Transfers);
        }
        let mut tx = self.db.begin_write().await.map_err(dberr)?;
        let r = sqlx::query(
            "INSERT INTO ledger_journals (key, kind, currency, session_id, account_id, memo, at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (key) DO NOTHING",
        )
        .bind(&posting.key)
        .bind(posting.kind)
        .bind(posting.currency.as_str())
        .bind(posting.session_id)
        .bind(posting.account_id)
        .bind(posting.memo.as_deref())
        .bind(ts(at))
        .execute(&mut *tx)
        .await
        .map_err(dberr)?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        for (line, e) in posting.entries().iter().enumerate() {
            sqlx::query(
                "INSERT INTO ledger_entries (journal_key, line, account, amount, currency)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&posting.key)
            .bind(i64::try_from(line).unwrap_or(i64::MAX))
            .bind(&e.account)
            .bind(e.amount.to_string())
            .bind(&e.currency)
            .execute(&mut *tx)
            .await
            .map_err(dberr)?;
        }
        tx.commit().await.map_err(dberr)?;
        Ok(true)
    }

    /// Whether a journal with `key` exists.
    pub async fn has(&self, key: &str) -> Result<bool, LedgerError> {
        Ok(
            sqlx::query("SELECT 1 AS x FROM ledger_journals WHERE key = $1")
                .bind(key)
                .fetch_optional(self.db.writer())
                .await
                .map_err(dberr)?
                .is_some(),
        )
    }

    /// The balance of `account` in `currency` (debits minus credits).
    pub async fn balance(
        &self,
        account: LedgerAccount,
        currency: &str,
    ) -> Result<Decimal, LedgerError> {
        let rows =
            sqlx::query("SELECT amount FROM ledger_entries WHERE account = $1 AND currency = $2")
                .bind(account.to_string())
                .bind(currency)
                .fetch_all(self.db.writer())
                .await
                .map_err(dberr)?;
        let mut sum = Decimal::ZERO;
        for r in rows {
            let a = db::parse_dec("ledger_entries.amount", r.try_get("amount").map_err(dberr)?)?;
            sum = sum.checked_add(a).ok_or(LedgerError::InvalidAmount(a))?;
        }
        Ok(sum)
    }

    /// The journals of a session (or, without one, of a driver account), oldest first (at
    /// most 1,000).
    pub async fn journals(
        &self,
        session_id: Option<i64>,
        account_id: Option<i64>,
    ) -> Result<Vec<Journal>, LedgerError> {
        let (column, id) = match (session_id, account_id) {
            (Some(s), _) => ("session_id", s),
            (None, Some(a)) => ("account_id", a),
            (None, None) => return Ok(Vec::new()),
        };
        let rows = sqlx::query(&format!(
            "SELECT key, kind, currency, session_id, account_id, memo, at FROM ledger_journals
             WHERE {column} = $1 ORDER BY at, key LIMIT 1000"
        ))
        .bind(id)
        .fetch_all(self.db.writer())
        .await
        .map_err(dberr)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let key: String = r.try_get("key").map_err(dberr)?;
            let entries = sqlx::query(
                "SELECT account, amount, currency FROM ledger_entries WHERE journal_key = $1 ORDER BY line",
            )
            .bind(&key)
            .fetch_all(self.db.writer())
            .await
            .map_err(dberr)?
            .iter()
            .map(|e| {
                Ok(Entry {
                    account: e.try_get("account").map_err(dberr)?,
                    amount: db::parse_dec("ledger_entries.amount", e.try_get("amount").map_err(dberr)?)?,
                    currency: e.try_get("currency").map_err(dberr)?,
                })
            })
            .collect::<Result<_, LedgerError>>()?;
            out.push(Journal {
                key,
                kind: r.try_get("kind").map_err(dberr)?,
                currency: r.try_get("currency").map_err(dberr)?,
                session_id: r.try_get("session_id").map_err(dberr)?,
                account_id: r.try_get("account_id").map_err(dberr)?,
                memo: r.try_get("memo").map_err(dberr)?,
                at: db::parse_ts("ledger_journals.at", r.try_get("at").map_err(dberr)?)?,
                entries,
            });
        }
        Ok(out)
    }

    /// Every journal key whose entries do not sum to zero per currency (an audit over the
    /// whole table; empty when the books balance).
    pub async fn unbalanced(&self) -> Result<Vec<String>, LedgerError> {
        let rows = sqlx::query("SELECT journal_key, amount, currency FROM ledger_entries")
            .fetch_all(self.db.writer())
            .await
            .map_err(dberr)?;
        let mut sums: BTreeMap<(String, String), Decimal> = BTreeMap::new();
        for r in rows {
            let a = db::parse_dec("ledger_entries.amount", r.try_get("amount").map_err(dberr)?)?;
            let s = sums
                .entry((
                    r.try_get("journal_key").map_err(dberr)?,
                    r.try_get("currency").map_err(dberr)?,
                ))
                .or_default();
            *s = s.checked_add(a).ok_or(LedgerError::InvalidAmount(a))?;
        }
        let mut out: Vec<String> = sums
            .into_iter()
            .filter(|(_, s)| !s.is_zero())
            .map(|((k, _), _)| k)
            .collect();
        out.dedup();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str_exact(s).expect("decimal")
    }

    fn eur() -> Currency {
        Currency::new("EUR").expect("EUR")
    }

    #[test]
    fn amounts_currencies_and_accounts_are_checked() {
        assert!(Amount::new(dec("0")).is_err());
        assert!(Amount::new(dec("-1")).is_err());
        assert!(Amount::new(dec("0.0000001")).is_err());
        assert!(Amount::new(MAX_AMOUNT).is_ok());
        assert!(Amount::new(MAX_AMOUNT + dec("1")).is_err());
        assert_eq!(MAX_AMOUNT, dec("1000000000000"));
        assert!(Currency::new("eur").is_err());
        assert!(Currency::new("EURO").is_err());
        for a in [
            LedgerAccount::Receivable(7),
            LedgerAccount::Hold(-1),
            LedgerAccount::CardHolds,
            LedgerAccount::Clearing,
            LedgerAccount::Revenue,
            LedgerAccount::Refunds,
        ] {
            assert_eq!(
                a.to_string().parse::<LedgerAccount>().expect("round trip"),
                a
            );
        }
        assert!("receivable:x".parse::<LedgerAccount>().is_err());
        assert!("cash".parse::<LedgerAccount>().is_err());
        let p = Posting::new("k", "charge", eur()).expect("posting");
        assert!(matches!(
            p.clone().transfer(
                LedgerAccount::Revenue,
                LedgerAccount::Revenue,
                Amount::new(dec("1")).expect("a")
            ),
            Err(LedgerError::SameAccount)
        ));
        assert!(matches!(
            Posting::new("", "charge", eur()),
            Err(LedgerError::InvalidKey)
        ));
    }

    #[tokio::test]
    async fn postings_are_idempotent_by_key_and_balance() {
        let db = Db::open("sqlite::memory:").await.expect("db");
        let ledger = Ledger::new(db);
        let p = Posting::new("session:1:charge", "charge", eur())
            .expect("posting")
            .transfer(
                LedgerAccount::Receivable(3),
                LedgerAccount::Revenue,
                Amount::new(dec("4.2035")).expect("amount"),
            )
            .expect("transfer")
            .about(Some(1), Some(3));
        assert!(matches!(
            ledger
                .post(
                    &Posting::new("empty", "charge", eur()).expect("p"),
                    Utc::now()
                )
                .await,
            Err(LedgerError::Transfers)
        ));
        assert!(ledger.post(&p, Utc::now()).await.expect("post"));
        assert!(
            !ledger.post(&p, Utc::now()).await.expect("again"),
            "idempotent"
        );
        assert_eq!(
            ledger
                .balance(LedgerAccount::Receivable(3), "EUR")
                .await
                .expect("b"),
            dec("4.2035")
        );
        assert_eq!(
            ledger
                .balance(LedgerAccount::Revenue, "EUR")
                .await
                .expect("b"),
            dec("-4.2035")
        );
        assert!(ledger.unbalanced().await.expect("audit").is_empty());
        let j = ledger.journals(Some(1), None).await.expect("journals");
        assert_eq!(j.len(), 1);
        assert_eq!(j[0].entries.len(), 2);
    }
}
