//! Driver accounts: the people who charge, their ID tokens, fleets and vehicles (the
//! driver's side of the example network; the operator's accounts are [`super::auth`]).
//!
//! - **Accounts** (`driver_accounts`): an e-mail address (the sign-in name), a display name,
//!   an Argon2id password hash (as operators', 12 to 1024 characters), a status (`active` or
//!   `blocked`), an optional fleet and an optional payment card (the local provider's test
//!   card number, [`super::payments`]).
//! - **Driver sessions** (`driver_sessions`), distinct from operator sessions: the cookie
//!   `ocpp_driver=<id>.<secret>` (`HttpOnly; SameSite=Strict; Path=/`), only the secret's
//!   SHA-256 stored, idle and absolute timeouts of [`super::auth::AuthConfig`]. A driver
//!   session opens only the driver routes (`Access::Driver` in [`super::api::ROUTES`]); every
//!   operator route answers 401 to it, as to anyone without an operator session. CSRF as
//!   operators': `Origin` and the session's token in `X-CSRF-Token`.
//! - **Tokens** (`driver_tokens`): each account has one app token (`APP` and 17 hex digits,
//!   a valid 1.6 `idTag` and 2.x `idToken`, made at sign-up: the app starts sessions with
//!   it) and up to [`MAX_TOKENS`] RFID tokens it links. A token belongs to one account.
//! - **Authorization** (`Backend::decide`): a token linked to a `blocked` account is answered
//!   `Blocked` at Authorize and at transaction start (1.6 and 2.x); a linked token of an
//!   active account is `Accepted` unless the operator's token table says otherwise.
//! - **Fleets** (`fleets`, `fleet_vehicles`): a group of driver accounts and vehicles with
//!   one monthly invoice.
//!
//! Failed sign-ins are limited per client address like operators' (5 per 15 minutes, at
//! most [`MAX_TRACKED_ADDRESSES`] addresses remembered).

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, PoisonError, RwLock};

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::auth::{
    self, blocking, check_password, hash_password, random_hex, same, sha256_hex, split_token,
    verify_password, AuthConfig, AuthError, Clock, Secret,
};
use super::db::{self, ts, Db, DbError};

/// Migration 19: driver accounts, their sessions and tokens, fleets and vehicles, the billing
/// ledger ([`super::ledger`]) and payments ([`super::payments`]; with the local provider's own
/// state, which stands for a processor's and so outlives the central system's restarts).
pub const MIGRATION: &str = "CREATE TABLE fleets (
        id {ID},
        name TEXT NOT NULL UNIQUE,
        currency TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE driver_accounts (
        id {ID},
        email TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        status TEXT NOT NULL,
        fleet_id BIGINT,
        card TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX driver_accounts_fleet ON driver_accounts (fleet_id);
    CREATE TABLE driver_sessions (
        id TEXT PRIMARY KEY,
        secret_hash TEXT NOT NULL,
        account_id BIGINT NOT NULL,
        created_at TEXT NOT NULL,
        last_seen TEXT NOT NULL
    );
    CREATE TABLE driver_tokens (
        id_token TEXT PRIMARY KEY,
        account_id BIGINT NOT NULL,
        kind TEXT NOT NULL,
        label TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX driver_tokens_account ON driver_tokens (account_id);
    CREATE TABLE fleet_vehicles (
        id {ID},
        fleet_id BIGINT NOT NULL,
        plate TEXT NOT NULL,
        label TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX fleet_vehicles_fleet ON fleet_vehicles (fleet_id);
    CREATE TABLE ledger_journals (
        key TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        currency TEXT NOT NULL,
        session_id BIGINT,
        account_id BIGINT,
        memo TEXT,
        at TEXT NOT NULL
    );
    CREATE TABLE ledger_entries (
        id {ID},
        journal_key TEXT NOT NULL,
        line BIGINT NOT NULL,
        account TEXT NOT NULL,
        amount TEXT NOT NULL,
        currency TEXT NOT NULL
    );
    CREATE INDEX ledger_entries_journal ON ledger_entries (journal_key, line);
    CREATE INDEX ledger_entries_account ON ledger_entries (account);
    CREATE INDEX ledger_journals_session ON ledger_journals (session_id);
    CREATE TABLE payments (
        id {ID},
        account_id BIGINT NOT NULL,
        session_id BIGINT,
        charger TEXT,
        id_token TEXT,
        provider_ref TEXT,
        status TEXT NOT NULL,
        held TEXT NOT NULL,
        captured TEXT NOT NULL,
        refunded TEXT NOT NULL,
        currency TEXT NOT NULL,
        attempts BIGINT NOT NULL,
        last_error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX payments_session ON payments (session_id);
    CREATE INDEX payments_status ON payments (status, id);
    CREATE TABLE local_provider_answers (
        key TEXT PRIMARY KEY,
        answer TEXT NOT NULL
    );
    CREATE TABLE local_provider_holds (
        reference TEXT PRIMARY KEY,
        hold TEXT NOT NULL
    );
    CREATE TABLE payment_webhooks (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        received_at TEXT NOT NULL
    )";

/// The most RFID tokens one account links (its app token aside).
pub const MAX_TOKENS: i64 = 20;

/// The most accounts one page lists.
pub const MAX_PAGE: i64 = 500;

/// The most client addresses whose failed sign-ins are remembered.
pub const MAX_TRACKED_ADDRESSES: usize = 4096;

/// The longest ID token (the 2.x `idToken` bound; 1.6 `idTag`s are at most 20).
pub const MAX_ID_TOKEN: usize = 36;

/// The name of the driver session cookie.
pub const DRIVER_COOKIE: &str = "ocpp_driver";

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Hashing, randomness or a stored credential failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A malformed e-mail address.
    #[error("an e-mail address is 3 to 254 characters with one '@' and no spaces")]
    InvalidEmail,
    /// A malformed name.
    #[error("a name is 1 to 100 characters")]
    InvalidName,
    /// The e-mail address has an account already.
    #[error("an account with this e-mail address exists")]
    EmailTaken,
    /// No such account.
    #[error("no account {0}")]
    UnknownAccount(i64),
    /// No such fleet.
    #[error("no fleet {0}")]
    UnknownFleet(i64),
    /// A fleet with that name exists.
    #[error("a fleet named {0:?} exists")]
    FleetExists(String),
    /// A malformed ID token.
    #[error("an ID token is 1 to {MAX_ID_TOKEN} printable ASCII characters")]
    InvalidToken,
    /// The token belongs to another account (or, for a removal, is not this account's).
    #[error("the token {0:?} is linked to another account")]
    TokenTaken(String),
    /// The account has its [`MAX_TOKENS`] tokens.
    #[error("an account links at most {MAX_TOKENS} tokens")]
    TooManyTokens,
    /// Not a token of this account.
    #[error("no token {0:?} on this account")]
    UnknownToken(String),
    /// The app token cannot be removed.
    #[error("the app token cannot be removed")]
    AppToken,
    /// A status other than `active` or `blocked`.
    #[error("the status is active or blocked")]
    InvalidStatus,
    /// A malformed currency, plate or label.
    #[error("{0}")]
    Invalid(&'static str),
    /// Wrong e-mail or password (which is not said).
    #[error("wrong e-mail address or password")]
    Wrong,
    /// Too many failures from this address.
    #[error("too many failed sign-ins; try again in {0} s")]
    TooMany(u64),
}

/// A driver account as shown (never its hash; the card only as its last four digits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountInfo {
    /// Id.
    pub id: i64,
    /// E-mail address (the sign-in name).
    pub email: String,
    /// Display name.
    pub name: String,
    /// `active` or `blocked`.
    pub status: String,
    /// The fleet, if any.
    pub fleet_id: Option<i64>,
    /// The card's last four digits, if a card is on file.
    pub card_last4: Option<String>,
    /// The app token (the `idTag` / `idToken` the app starts sessions with).
    pub app_token: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// One of a driver's ID tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriverToken {
    /// The token (`idTag` / `idToken`).
    pub id_token: String,
    /// `app` or `rfid`.
    pub kind: String,
    /// The driver's label.
    pub label: Option<String>,
    /// Linked.
    pub created_at: DateTime<Utc>,
}

/// A fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Fleet {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// The currency of its invoices (ISO 4217).
    pub currency: String,
    /// Its drivers.
    pub members: i64,
    /// Its vehicles.
    pub vehicles: Vec<Vehicle>,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// A fleet's vehicle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Vehicle {
    /// Id.
    pub id: i64,
    /// Licence plate.
    pub plate: String,
    /// Label.
    pub label: Option<String>,
}

/// A signed-in driver: put in the request's extensions by the guard on driver routes.
#[derive(Clone, PartialEq, Eq)]
pub struct Driver {
    /// The account.
    pub account_id: i64,
    /// Its e-mail address.
    pub email: String,
    /// The driver session's id.
    pub session_id: String,
    /// The session's CSRF token.
    pub csrf: Secret,
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("account_id", &self.account_id)
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// A successful sign-in: who and the cookie value.
#[derive(Debug)]
pub struct DriverLogin {
    /// The driver.
    pub driver: Driver,
    /// The cookie value, `<id>.<secret>`.
    pub token: Secret,
}

/// Who owns a token, as the authorization decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    /// The account.
    pub account_id: i64,
    /// Whether the account is blocked.
    pub blocked: bool,
}

/// The accounts store (see the module docs).
pub struct Accounts {
    db: Db,
    config: RwLock<AuthConfig>,
    /// The clock and the failed sign-in table ([`super::signin`], shared with operators').
    sign_ins: super::signin::SignIns,
    dummy_hash: String,
}

impl fmt::Debug for Accounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accounts").finish_non_exhaustive()
    }
}

fn check_email(email: &str) -> Result<(), AccountsError> {
    let n = email.chars().count();
    let ok = (3..=254).contains(&n)
        && email.matches('@').count() == 1
        && !email.starts_with('@')
        && !email.ends_with('@')
        && email.chars().all(|c| c.is_ascii_graphic() || !c.is_ascii());
    ok.then_some(()).ok_or(AccountsError::InvalidEmail)
}

fn check_name(name: &str) -> Result<(), AccountsError> {
    let n = name.trim().chars().count();
    ((1..=100).contains(&n) && !name.chars().any(char::is_control))
        .then_some(())
        .ok_or(AccountsError::InvalidName)
}

/// Whether `t` is a valid ID token: 1 to [`MAX_ID_TOKEN`] printable ASCII characters.
pub fn valid_id_token(t: &str) -> bool {
    (1..=MAX_ID_TOKEN).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_graphic())
}

fn dberr(e: sqlx::Error) -> AccountsError {
    AccountsError::Db(DbError::from(e))
}

fn last4(card: Option<String>) -> Option<String> {
    card.map(|c| {
        let digits: Vec<char> = c.chars().filter(char::is_ascii_digit).collect();
        digits[digits.len().saturating_sub(4)..].iter().collect()
    })
}

const ACCOUNT_COLUMNS: &str = "a.id, a.email, a.name, a.status, a.fleet_id, a.card, a.created_at,
    (SELECT t.id_token FROM driver_tokens t WHERE t.account_id = a.id AND t.kind = 'app') AS app_token";

fn account_of(r: &sqlx::any::AnyRow) -> Result<AccountInfo, AccountsError> {
    Ok(AccountInfo {
        id: r.try_get("id").map_err(dberr)?,
        email: r.try_get("email").map_err(dberr)?,
        name: r.try_get("name").map_err(dberr)?,
        status: r.try_get("status").map_err(dberr)?,
        fleet_id: r.try_get("fleet_id").map_err(dberr)?,
        card_last4: last4(r.try_get("card").map_err(dberr)?),
        app_token: r.try_get("app_token").map_err(dberr)?,
        created_at: db::parse_ts("created_at", r.try_get("created_at").map_err(dberr)?)?,
    })
}

fn chrono_of(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Accounts {
    /// The store over `db` (migrated by [`Db::open`]).
    pub fn new(db: Db, config: AuthConfig) -> Result<Arc<Accounts>, AccountsError> {
        let dummy_hash = hash_password(&random_hex(16)?)?;
        Ok(Arc::new(Accounts {
            db,
            config: RwLock::new(config),
            sign_ins: super::signin::SignIns::default(),
            dummy_hash,
        }))
    }

    /// Takes the operators' session and cookie settings (timeouts, `Secure`, sign-in
    /// limits): `run.rs` passes the command line's.
    pub fn configure(&self, config: AuthConfig) {
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = config;
    }

    fn config(&self) -> AuthConfig {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the clock of sessions and sign-in limits (tests).
    pub fn set_clock(&self, clock: Clock) {
        self.sign_ins.set_clock(clock);
    }

    fn now(&self) -> DateTime<Utc> {
        self.sign_ins.now()
    }

    // -------------------------------------------------------------- accounts

    /// Signs a driver up: the account (active, no fleet) and its app token.
    pub async fn sign_up(
        &self,
        email: &str,
        name: &str,
        password: &Secret,
    ) -> Result<AccountInfo, AccountsError> {
        let email = email.trim().to_ascii_lowercase();
        check_email(&email)?;
        check_name(name)?;
        check_password(password)?;
        let pw = password.clone();
        let hash = blocking(move || hash_password(pw.expose())).await?;
        let now = self.now();
        let r = sqlx::query(
            "INSERT INTO driver_accounts (email, name, password_hash, status, created_at)
             VALUES ($1, $2, $3, 'active', $4) ON CONFLICT (email) DO NOTHING",
        )
        .bind(&email)
        .bind(name.trim())
        .bind(hash)
        .bind(ts(now))
        .execute(self.db.writer())
        .await
        .map_err(dberr)?;
        if r.rows_affected() == 0 {
            return Err(AccountsError::EmailTaken);
        }
        let id: i64 = sqlx::query("SELECT id FROM driver_accounts WHERE email = $1")
            .bind(&email)
            .fetch_one(self.db.writer())
            .await
            .map_err(dberr)?
            .try_get("id")
            .map_err(dberr)?;
        // 17 hex digits: 68 random bits, and the whole a valid 1.6 idTag (20 characters).
        let app = format!("APP{}", &random_hex(9)?[..17]).to_ascii_uppercase();
        sqlx::query(
            "INSERT INTO driver_tokens (id_token, account_id, kind, label, created_at)
             VALUES ($1, $2, 'app', 'App', $3)",
        )
        .bind(&app)
        .bind(id)
        .bind(ts(now))
        .execute(self.db.writer())
        .await
        .map_err(dberr)?;
        tracing::info!(account = id, "driver account created");
        self.account(id).await
    }

    /// One account.
    pub async fn account(&self, id: i64) -> Result<AccountInfo, AccountsError> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM driver_accounts a WHERE a.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.db.writer())
        .await
        .map_err(dberr)?;
        match row {
            Some(r) => account_of(&r),
            None => Err(AccountsError::UnknownAccount(id)),
        }
    }

    /// A page of accounts by id, those whose e-mail or name contains `search` (empty: all).
    pub async fn accounts(
        &self,
        search: &str,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<AccountInfo>, i64), AccountsError> {
        self.accounts_in(search, None, offset, limit).await
    }

    /// One page of accounts whose e-mail or name contains `search`, of fleet `fleet` when
    /// given, and how many match in all.
    pub async fn accounts_in(
        &self,
        search: &str,
        fleet: Option<i64>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<AccountInfo>, i64), AccountsError> {
        let pattern = format!("%{}%", search.to_ascii_lowercase());
        let fleet = fleet.unwrap_or(-1);
        let filter = "($1 = '%%' OR LOWER(a.email) LIKE $1 OR LOWER(a.name) LIKE $1)
             AND ($4 = -1 OR a.fleet_id = $4)";
        let rows = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM driver_accounts a WHERE {filter}
             ORDER BY a.id LIMIT $2 OFFSET $3"
        ))
        .bind(&pattern)
        .bind(limit.clamp(1, MAX_PAGE))
        .bind(offset.max(0))
        .bind(fleet)
        .fetch_all(self.db.reader())
        .await
        .map_err(dberr)?;
        let total: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM driver_accounts a WHERE {}",
            filter.replace("$4", "$2")
        ))
        .bind(&pattern)
        .bind(fleet)
        .fetch_one(self.db.reader())
        .await
        .map_err(dberr)?
        .try_get("n")
        .map_err(dberr)?;
        let accounts = rows.iter().map(account_of).collect::<Result<_, _>>()?;
        Ok((accounts, total))
    }

    /// Blocks (`blocked`) or unblocks (`active`) an account. Blocking ends its driver
    /// sessions; its tokens are refused from then on.
    pub async fn set_status(&self, id: i64, status: &str) -> Result<AccountInfo, AccountsError> {
        if !matches!(status, "active" | "blocked") {
            return Err(AccountsError::InvalidStatus);
        }
        let r = sqlx::query("UPDATE driver_accounts SET status = $1 WHERE id = $2")
            .bind(status)
            .bind(id)
            .execute(self.db.writer())
            .await
            .map_err(dberr)?;
        if r.rows_affected() == 0 {
            return Err(AccountsError::UnknownAccount(id));
        }
        if status == "blocked" {
            sqlx::query("DELETE FROM driver_sessions WHERE account_id = $1")
                .bind(id)
                .execute(self.db.writer())
                .await
                .map_err(dberr)?;
        }
        tracing::info!(account = id, status, "driver account status changed");
        self.account(id).await
    }

    /// Puts a payment card (a card number of the payment provider) on file; `None` removes it.
    pub async fn set_card(&self, id: i64, card: Option<&str>) -> Result<(), AccountsError> {
        if let Some(c) = card {
            let digits = c.chars().filter(|c| !c.is_whitespace()).collect::<String>();
            if !(12..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(AccountsError::Invalid("a card number is 12 to 19 digits"));
            }
        }
        let card: Option<String> = card.map(|c| c.chars().filter(|c| !c.is_whitespace()).collect());
        let r = sqlx::query("UPDATE driver_accounts SET card = $1 WHERE id = $2")
            .bind(card)
            .bind(id)
            .execute(self.db.writer())
            .await
            .map_err(dberr)?;
        if r.rows_affected() == 0 {
            return Err(AccountsError::UnknownAccount(id));
        }
        Ok(())
    }

    /// The card number on file (for the payment provider only; never shown).
    pub async fn card(&self, id: i64) -> Result<Option<String>, AccountsError> {
        let row = sqlx::query("SELECT card FROM driver_accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(self.db.writer())
            .await
            .map_err(dberr)?
            .ok_or(AccountsError::UnknownAccount(id))?;
        row.try_get("card").map_err(dberr)
    }

    // -------------------------------------------------------------- tokens

    /// Who owns `id_token`, if a driver does.
    pub async fn token_owner(&self, id_token: &str) -> Result<Option<TokenOwner>, AccountsError> {
        let row = sqlx::query(
            "SELECT t.account_id, a.status FROM driver_tokens t
             JOIN driver_accounts a ON a.id = t.account_id WHERE t.id_token = $1",
        )
        .bind(id_token)
        .fetch_optional(self.db.reader())
        .await
        .map_err(dberr)?;
        row.map(|r| {
            Ok(TokenOwner {
                account_id: r.try_get("account_id").map_err(dberr)?,
                blocked: r.try_get::<String, _>("status").map_err(dberr)? != "active",
            })
        })
        .transpose()
    }

    /// An account's tokens, the app token first.
    pub async fn tokens(&self, account: i64) -> Result<Vec<DriverToken>, AccountsError> {
        let rows = sqlx::query(
            "SELECT id_token, kind, label, created_at FROM driver_tokens WHERE account_id = $1
             ORDER BY kind, id_token",
        )
        .bind(account)
        .fetch_all(self.db.reader())
        .await
        .map_err(dberr)?;
        rows.iter()
            .map(|r| {
                Ok(DriverToken {
                    id_token: r.try_get("id_token").map_err(dberr)?,
                    kind: r.try_get("kind").map_err(dberr)?,
                    label: r.try_get("label").map_err(dberr)?,
                    created_at: db::parse_ts(
                        "created_at",
                        r.try_get("created_at").map_err(dberr)?,
                    )?,
                })
            })
            .collect()
    }

    /// Links an RFID token to an account.
    pub async fn add_token(
        &self,
        account: i64,
        id_token: &str,
        label: Option<&str>,
    ) -> Result<DriverToken, AccountsError> {
        if !valid_id_token(id_token) {
            return Err(AccountsError::InvalidToken);
        }
        if label.is_some_and(|l| l.chars().count() > 100 || l.chars().any(char::is_control)) {
            return Err(AccountsError::Invalid("a label is at most 100 characters"));
        }
        self.account(account).await?;
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM driver_tokens WHERE account_id = $1 AND kind = 'rfid'",
        )
        .bind(account)
        .fetch_one(self.db.writer())
        .await
        .map_err(dberr)?
        .try_get("n")
        .map_err(dberr)?;
        if n >= MAX_TOKENS {
            return Err(AccountsError::TooManyTokens);
        }
        let now = self.now();
        let r = sqlx::query(
            "INSERT INTO driver_tokens (id_token, account_id, kind, label, created_at)
             VALUES ($1, $2, 'rfid', $3, $4) ON CONFLICT (id_token) DO NOTHING",
        )
        .bind(id_token)
        .bind(account)
        .bind(label)
        .bind(ts(now))
        .execute(self.db.writer())
        .await
        .map_err(dberr)?;
        if r.rows_affected() == 0 {
            return Err(AccountsError::TokenTaken(id_token.to_owned()));
        }
        Ok(DriverToken {
            id_token: id_token.to_owned(),
            kind: "rfid".into(),
            label: label.map(str::to_owned),
            created_at: now,
        })
    }

    /// Unlinks one of the account's RFID tokens.
    pub async fn remove_token(&self, account: i64, id_token: &str) -> Result<(), AccountsError> {
        let tokens = self.tokens(account).await?;
        match tokens.iter().find(|t| t.id_token == id_token) {
            None => Err(AccountsError::UnknownToken(id_token.to_owned())),
            Some(t) if t.kind == "app" => Err(AccountsError::AppToken),
            Some(_) => {
                sqlx::query("DELETE FROM driver_tokens WHERE id_token = $1 AND account_id = $2")
                    .bind(id_token)
                    .bind(account)
                    .execute(self.db.writer())
                    .await
                    .map_err(dberr)?;
                Ok(())
            }
        }
    }

    // -------------------------------------------------------------- fleets

    /// Creates a fleet.
    pub async fn create_fleet(&self, name: &str, currency: &str) -> Result<Fleet, AccountsError> {
        check_name(name)
            .map_err(|_| AccountsError::Invalid("a fleet name is 1 to 100 characters"))?;
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(AccountsError::Invalid(
                "a currency is three capital letters (ISO 4217)",
            ));
        }
        let r = sqlx::query(
            "INSERT INTO fleets (name, currency, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name.trim())
        .bind(currency)
        .bind(ts(self.now()))
        .execute(self.db.writer())
        .await
        .map_err(dberr)?;
        if r.rows_affected() == 0 {
            return Err(AccountsError::FleetExists(name.trim().to_owned()));
        }
        let id: i64 = sqlx::query("SELECT id FROM fleets WHERE name = $1")
            .bind(name.trim())
            .fetch_one(self.db.writer())
            .await
            .map_err(dberr)?
            .try_get("id")
            .map_err(dberr)?;
        self.fleet(id).await
    }

    /// One fleet with its vehicles and member count.
    pub async fn fleet(&self, id: i64) -> Result<Fleet, AccountsError> {
        let row = sqlx::query(
            "SELECT f.id, f.name, f.currency, f.created_at,
             (SELECT COUNT(*) FROM driver_accounts a WHERE a.fleet_id = f.id) AS members
             FROM fleets f WHERE f.id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.writer())
        .await
        .map_err(dberr)?
        .ok_or(AccountsError::UnknownFleet(id))?;
        let vehicles = sqlx::query(
            "SELECT id, plate, label FROM fleet_vehicles WHERE fleet_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.db.writer())
        .await
        .map_err(dberr)?
        .iter()
        .map(|r| {
            Ok(Vehicle {
                id: r.try_get("id").map_err(dberr)?,
                plate: r.try_get("plate").map_err(dberr)?,
                label: r.try_get("label").map_err(dberr)?,
            })
        })
        .collect::<Result<_, AccountsError>>()?;
        Ok(Fleet {
            id,
            name: row.try_get("name").map_err(dberr)?,
            currency: row.try_get("currency").map_err(dberr)?,
            members: row.try_get("members").map_err(dberr)?,
            vehicles,
            created_at: db::parse_ts("created_at", row.try_get("created_at").map_err(dberr)?)?,
        })
    }

    /// Every fleet (at most [`MAX_PAGE`]).
    pub async fn fleets(&self) -> Result<Vec<Fleet>, AccountsError> {
        let ids: Vec<i64> = sqlx::query("SELECT id FROM fleets ORDER BY id LIMIT $1")
            .bind(MAX_PAGE)
            .fetch_all(self.db.reader())
            .await
            .map_err(dberr)?
            .iter()
            .map(|r| r.try_get("id").map_err(dberr))
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.fleet(id).await?);
        }
        Ok(out)
    }

    /// Puts an account in a fleet (`None`: out of any).
    pub async fn set_fleet(&self, account: i64, fleet: Option<i64>) -> Result<(), AccountsError> {
        if let Some(f) = fleet {
            self.fleet(f).await?;
        }
        let r = sqlx::query("UPDATE driver_accounts SET fleet_id = $1 WHERE id = $2")
            .bind(fleet)
            .bind(account)
            .execute(self.db.writer())
            .await
            .map_err(dberr)?;
        if r.rows_affected() == 0 {
            return Err(AccountsError::UnknownAccount(account));
        }
        Ok(())
    }

    /// Adds a vehicle to a fleet.
    pub async fn add_vehicle(
        &self,
        fleet: i64,
        plate: &str,
        label: Option<&str>,
    ) -> Result<Vehicle, AccountsError> {
        let plate = plate.trim();
        if plate.is_empty() || plate.chars().count() > 20 || plate.chars().any(char::is_control) {
            return Err(AccountsError::Invalid("a plate is 1 to 20 characters"));
        }
        if label.is_some_and(|l| l.chars().count() > 100 || l.chars().any(char::is_control)) {
            return Err(AccountsError::Invalid("a label is at most 100 characters"));
        }
        self.fleet(fleet).await?;
        let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM fleet_vehicles WHERE fleet_id = $1")
            .bind(fleet)
            .fetch_one(self.db.writer())
            .await
            .map_err(dberr)?
            .try_get("n")
            .map_err(dberr)?;
        if n >= MAX_PAGE {
            return Err(AccountsError::Invalid("a fleet has at most 500 vehicles"));
        }
        sqlx::query(
            "INSERT INTO fleet_vehicles (fleet_id, plate, label, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(fleet)
        .bind(plate)
        .bind(label)
        .bind(ts(self.now()))
        .execute(self.db.writer())
        .await
        .map_err(dberr)?;
        let f = self.fleet(fleet).await?;
        f.vehicles
            .into_iter()
            .rev()
            .find(|v| v.plate == plate)
            .ok_or(AccountsError::UnknownFleet(fleet))
    }

    /// The accounts of a fleet.
    pub async fn fleet_members(&self, fleet: i64) -> Result<Vec<AccountInfo>, AccountsError> {
        let rows = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM driver_accounts a WHERE a.fleet_id = $1 ORDER BY a.id LIMIT $2"
        ))
        .bind(fleet)
        .bind(MAX_PAGE)
        .fetch_all(self.db.reader())
        .await
        .map_err(dberr)?;
        rows.iter().map(account_of).collect()
    }

    // -------------------------------------------------------------- sessions

    fn csrf_of(secret: &str) -> Secret {
        Secret::new(sha256_hex(&format!("driver-csrf:{secret}")))
    }

    /// Checks an e-mail address and password from `addr`; on success opens a driver session.
    /// A blocked account signs in (to see its history and receipts) but cannot charge.
    pub async fn sign_in(
        &self,
        addr: IpAddr,
        email: &str,
        password: &Secret,
    ) -> Result<DriverLogin, AccountsError> {
        if let Some(wait) = self.locked_out(addr) {
            return Err(AccountsError::TooMany(wait));
        }
        let email = email.trim().to_ascii_lowercase();
        let row = if check_email(&email).is_ok() {
            sqlx::query("SELECT id, password_hash FROM driver_accounts WHERE email = $1")
                .bind(&email)
                .fetch_optional(self.db.reader())
                .await
                .map_err(dberr)?
        } else {
            None
        };
        let (hash, id) = match &row {
            Some(r) => (
                r.try_get::<String, _>("password_hash").map_err(dberr)?,
                Some(r.try_get::<i64, _>("id").map_err(dberr)?),
            ),
            None => (self.dummy_hash.clone(), None),
        };
        let too_long = password.expose().chars().count() > auth::MAX_PASSWORD_CHARS;
        let pw = password.clone();
        let ok = !too_long && blocking(move || verify_password(pw.expose(), &hash)).await?;
        let Some(account_id) = id.filter(|_| ok) else {
            self.failed(addr);
            tracing::warn!(%addr, "driver sign-in failed");
            return Err(AccountsError::Wrong);
        };
        self.sign_ins.succeeded(addr);
        let sid = random_hex(8)?;
        let secret = random_hex(32)?;
        let now = self.now();
        sqlx::query("DELETE FROM driver_sessions WHERE created_at <= $1 OR last_seen <= $2")
            .bind(ts(now - chrono_of(self.config().session_max)))
            .bind(ts(now - chrono_of(self.config().session_idle)))
            .execute(self.db.writer())
            .await
            .map_err(dberr)?;
        sqlx::query(
            "INSERT INTO driver_sessions (id, secret_hash, account_id, created_at, last_seen)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&sid)
        .bind(sha256_hex(&secret))
        .bind(account_id)
        .bind(ts(now))
        .bind(ts(now))
        .execute(self.db.writer())
        .await
        .map_err(dberr)?;
        tracing::info!(%addr, account = account_id, "driver sign-in");
        Ok(DriverLogin {
            driver: Driver {
                account_id,
                email,
                session_id: sid.clone(),
                csrf: Accounts::csrf_of(&secret),
            },
            token: Secret::new(format!("{sid}.{secret}")),
        })
    }

    /// Ends a driver session.
    pub async fn sign_out(&self, session_id: &str) -> Result<(), AccountsError> {
        sqlx::query("DELETE FROM driver_sessions WHERE id = $1")
            .bind(session_id)
            .execute(self.db.writer())
            .await
            .map_err(dberr)?;
        Ok(())
    }

    /// The driver of the `ocpp_driver` cookie in `headers`, if it names a live session.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Driver>, AccountsError> {
        let Some(token) = driver_cookie(headers) else {
            return Ok(None);
        };
        let Some((id, secret)) = split_token(&token, '.') else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT s.secret_hash, s.account_id, s.created_at, s.last_seen, a.email
             FROM driver_sessions s JOIN driver_accounts a ON a.id = s.account_id WHERE s.id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.reader())
        .await
        .map_err(dberr)?;
        let Some(row) = row else { return Ok(None) };
        let stored: String = row.try_get("secret_hash").map_err(dberr)?;
        if !same(&sha256_hex(secret), &stored) {
            return Ok(None);
        }
        let now = self.now();
        let created = db::parse_ts("created_at", row.try_get("created_at").map_err(dberr)?)?;
        let seen = db::parse_ts("last_seen", row.try_get("last_seen").map_err(dberr)?)?;
        if now - created >= chrono_of(self.config().session_max)
            || now - seen >= chrono_of(self.config().session_idle)
        {
            self.sign_out(id).await?;
            return Ok(None);
        }
        if now - seen >= chrono::Duration::seconds(60) {
            sqlx::query("UPDATE driver_sessions SET last_seen = $1 WHERE id = $2")
                .bind(ts(now))
                .bind(id)
                .execute(self.db.writer())
                .await
                .map_err(dberr)?;
        }
        Ok(Some(Driver {
            account_id: row.try_get("account_id").map_err(dberr)?,
            email: row.try_get("email").map_err(dberr)?,
            session_id: id.to_owned(),
            csrf: Accounts::csrf_of(secret),
        }))
    }

    /// The `Set-Cookie` value that opens a driver session.
    pub fn session_cookie(&self, token: &Secret) -> String {
        super::signin::set_cookie(DRIVER_COOKIE, token, &self.config())
    }

    /// The `Set-Cookie` value that clears the driver cookie.
    pub fn clear_cookie(&self) -> String {
        super::signin::clear_cookie(DRIVER_COOKIE, &self.config())
    }

    fn locked_out(&self, addr: IpAddr) -> Option<u64> {
        self.sign_ins
            .locked_out(addr, &self.config())
            .map(|d| d.as_secs())
    }

    fn failed(&self, addr: IpAddr) {
        self.sign_ins
            .failed(addr, &self.config(), MAX_TRACKED_ADDRESSES);
    }
}

/// The driver cookie's value in `headers`.
fn driver_cookie(headers: &HeaderMap) -> Option<String> {
    super::signin::cookie_value(headers, DRIVER_COOKIE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;
    use std::net::Ipv4Addr;

    async fn store() -> Arc<Accounts> {
        let db = Db::open("sqlite::memory:").await.expect("db");
        Accounts::new(db, AuthConfig::new()).expect("accounts")
    }

    #[tokio::test]
    async fn sign_up_tokens_and_blocking() {
        let a = store().await;
        let pw = Secret::new("correct horse battery");
        let acc = a
            .sign_up("Ann@Example.org", "Ann", &pw)
            .await
            .expect("sign up");
        assert_eq!(acc.email, "ann@example.org");
        let app = acc.app_token.clone().expect("app token");
        assert!(app.len() == 20 && app.starts_with("APP"), "{app}");
        assert!(matches!(
            a.sign_up("ann@example.org", "Ann 2", &pw).await,
            Err(AccountsError::EmailTaken)
        ));
        assert!(matches!(
            a.sign_up("no-at-sign", "X", &pw).await,
            Err(AccountsError::InvalidEmail)
        ));
        assert!(matches!(
            a.sign_up("b@example.org", "B", &Secret::new("short")).await,
            Err(AccountsError::Auth(AuthError::InvalidPassword))
        ));
        a.add_token(acc.id, "RFID0001", Some("blue card"))
            .await
            .expect("token");
        let bob = a.sign_up("bob@example.org", "Bob", &pw).await.expect("bob");
        assert!(matches!(
            a.add_token(bob.id, "RFID0001", None).await,
            Err(AccountsError::TokenTaken(_))
        ));
        assert!(matches!(
            a.add_token(bob.id, "bad token", None).await,
            Err(AccountsError::InvalidToken)
        ));
        assert!(matches!(
            a.remove_token(bob.id, "RFID0001").await,
            Err(AccountsError::UnknownToken(_))
        ));
        assert!(matches!(
            a.remove_token(acc.id, &app).await,
            Err(AccountsError::AppToken)
        ));
        assert_eq!(
            a.token_owner("RFID0001").await.expect("owner"),
            Some(TokenOwner {
                account_id: acc.id,
                blocked: false
            })
        );
        a.set_status(acc.id, "blocked").await.expect("block");
        assert_eq!(
            a.token_owner(&app).await.expect("owner"),
            Some(TokenOwner {
                account_id: acc.id,
                blocked: true
            })
        );
        assert!(matches!(
            a.set_status(acc.id, "gone").await,
            Err(AccountsError::InvalidStatus)
        ));
        assert_eq!(a.token_owner("NOBODY").await.expect("none"), None);
        for i in 0..MAX_TOKENS {
            a.add_token(bob.id, &format!("B{i}"), None)
                .await
                .expect("within bound");
        }
        assert!(matches!(
            a.add_token(bob.id, "ONEMORE", None).await,
            Err(AccountsError::TooManyTokens)
        ));
    }

    #[tokio::test]
    async fn sign_in_sessions_and_lockout() {
        let a = store().await;
        let pw = Secret::new("correct horse battery");
        let acc = a.sign_up("c@example.org", "C", &pw).await.expect("sign up");
        let addr = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let login = a
            .sign_in(addr, "C@example.org", &pw)
            .await
            .expect("sign in");
        assert_eq!(login.driver.account_id, acc.id);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            format!("{DRIVER_COOKIE}={}", login.token.expose())
                .parse()
                .expect("header"),
        );
        let who = a
            .authenticate(&headers)
            .await
            .expect("auth")
            .expect("driver");
        assert_eq!(who.account_id, acc.id);
        // An operator cookie of the same shape is not a driver session.
        let mut op = HeaderMap::new();
        op.insert(
            header::COOKIE,
            format!("ocpp_session={}", login.token.expose())
                .parse()
                .expect("header"),
        );
        assert!(a.authenticate(&op).await.expect("auth").is_none());
        // Blocking ends the sessions.
        a.set_status(acc.id, "blocked").await.expect("block");
        assert!(a.authenticate(&headers).await.expect("auth").is_none());
        let wrong = Secret::new("wrong wrong wrong");
        for _ in 0..5 {
            assert!(matches!(
                a.sign_in(addr, "c@example.org", &wrong).await,
                Err(AccountsError::Wrong)
            ));
        }
        assert!(matches!(
            a.sign_in(addr, "c@example.org", &pw).await,
            Err(AccountsError::TooMany(_))
        ));
    }

    #[tokio::test]
    async fn fleets_group_drivers_and_vehicles() {
        let a = store().await;
        let pw = Secret::new("correct horse battery");
        let d = a.sign_up("d@example.org", "D", &pw).await.expect("sign up");
        let f = a.create_fleet("Acme", "EUR").await.expect("fleet");
        assert!(matches!(
            a.create_fleet("Acme", "EUR").await,
            Err(AccountsError::FleetExists(_))
        ));
        assert!(matches!(
            a.create_fleet("Other", "euro").await,
            Err(AccountsError::Invalid(_))
        ));
        a.set_fleet(d.id, Some(f.id)).await.expect("member");
        assert!(matches!(
            a.set_fleet(d.id, Some(f.id + 10)).await,
            Err(AccountsError::UnknownFleet(_))
        ));
        a.add_vehicle(f.id, "B-XY 123", Some("van"))
            .await
            .expect("vehicle");
        let f = a.fleet(f.id).await.expect("fleet");
        assert_eq!(f.members, 1);
        assert_eq!(f.vehicles.len(), 1);
        assert_eq!(a.fleet_members(f.id).await.expect("members")[0].id, d.id);
    }
}
