//! Who may use the operator API and the dashboard: operator accounts, API keys, login
//! sessions, roles, and the request guards (Host allow-list, authentication, role, CSRF).
//!
//! - **Accounts** (`operator_users`): a name, a role and an Argon2id password hash (PHC
//!   string, random salt). Passwords are 12 to 1024 characters.
//! - **API keys** (`operator_api_keys`), for programs: `Authorization: Bearer ocpp_<id>_<secret>`,
//!   where `id` is 16 hex digits (public, the key's name in lists and logs) and `secret` 256
//!   random bits in hex. Only the SHA-256 of the secret is stored; the key is shown once, when
//!   it is created. A key has its own role.
//! - **Sessions** (`operator_sessions`), for the dashboard: `POST /api/login` sets the cookie
//!   `ocpp_session=<id>.<secret>` (`HttpOnly; SameSite=Strict; Path=/`, and `Secure` with
//!   [`AuthConfig::secure_cookie`]); only the SHA-256 of the secret is stored, with the
//!   session's start and last use. A session ends at logout, after [`AuthConfig::session_idle`]
//!   without a request, and [`AuthConfig::session_max`] after login, whatever happens.
//! - **Roles**: [`Role::Viewer`] reads, [`Role::Operator`] also commands chargers, and
//!   [`Role::Admin`] also manages ID tokens, charger registration, raw OCPP calls, accounts and
//!   keys. Which route needs which role is one table ([`super::api::ROUTES`]); a route missing
//!   from it is refused to everyone.
//! - **CSRF**: a request that changes state (any method but GET, HEAD and OPTIONS) made with a
//!   session cookie must carry an `Origin` (or, without one, a `Referer`) whose host is the
//!   request's `Host`, and the session's CSRF token in `X-CSRF-Token` (given by the login and
//!   `GET /api/me`). Requests with `Authorization: Bearer` are exempt: a browser never adds
//!   that header by itself. A request with a Bearer key is judged by the key only (the cookie is
//!   ignored).
//! - **Host allow-list**: a request whose `Host` is not allowed gets **421 Misdirected
//!   Request** (400 without a `Host`): a page of another site that rebinds its DNS name to
//!   this address still sends its own name as `Host`, so DNS rebinding reaches nothing.
//! - **Failed logins**: at most [`AuthConfig::login_failures`] failed logins per client
//!   address within [`AuthConfig::login_window`]; beyond, 429 until the window ends. The
//!   table holds at most [`AuthConfig::login_addresses`] addresses (when full, expired entries
//!   go, then the oldest).
//!
//! Secrets never appear in URLs (keys and sessions are read from headers only) or logs
//! ([`Secret`]'s `Debug` and `Display` print `[redacted]`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::Row;
use subtle::ConstantTimeEq;

use super::db::{ts, Db, DbError};

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "ocpp_session";

/// The header that carries a session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The prefix of every API key.
pub const KEY_PREFIX: &str = "ocpp_";

/// The shortest password accepted for an operator account.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// The longest password accepted (hashing is deliberately slow: no unbounded input to it).
pub const MAX_PASSWORD_CHARS: usize = 1024;

// ------------------------------------------------------------------ secrets, roles, errors

/// A password, API key or session token: its `Debug` and `Display` print `[redacted]`, so it
/// cannot reach a log by accident. [`Secret::expose`] gives the text.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret text.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret text (to print once to the operator, or send as a credential).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// What an account or key may do; each role may do everything the ones before it may.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything (chargers, sessions, tokens, log, live feed, metrics); changes nothing.
    Viewer,
    /// Also commands chargers: remote start and stop, reset, configuration and variables.
    Operator,
    /// Also ID tokens, charger registration, raw OCPP calls, accounts and API keys.
    Admin,
}

impl Role {
    /// `viewer`, `operator` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// Reads `viewer`, `operator` or `admin`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (the login page and form, static assets, `/health`, the OpenAPI document).
    Public,
    /// Signed-in users and keys of at least this role.
    Role(Role),
    /// A signed-in driver (the driver session cookie of [`super::accounts`]); operator
    /// credentials do not open these routes, nor driver sessions operator routes.
    Driver,
}

/// Why an account or key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The database failed.
    #[error(transparent)]
    Database(#[from] DbError),
    /// A stored value could not be read (a corrupt hash or role).
    #[error("corrupt stored credential: {0}")]
    Corrupt(String),
    /// The password hash could not be computed.
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The system's random generator failed.
    #[error("no randomness: {0}")]
    Random(String),
    /// A user name is malformed.
    #[error("user names are 1 to 64 characters of letters, digits, '.', '_', '-' and '@'")]
    InvalidUsername,
    /// A key name is malformed.
    #[error("key names are 1 to 100 characters")]
    InvalidKeyName,
    /// A password is too short or too long.
    #[error("passwords are {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")]
    InvalidPassword,
    /// The account exists already.
    #[error("user {0:?} exists")]
    UserExists(String),
    /// No such account.
    #[error("no user {0:?}")]
    UnknownUser(String),
    /// The change would leave no administrator.
    #[error("the last admin cannot be removed or demoted")]
    LastAdmin,
    /// The admin password file could not be read.
    #[error("cannot read the admin password file {path}: {source}")]
    PasswordFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

// ------------------------------------------------------------------ configuration

/// The clock of sessions and login limits (tests inject theirs).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// How authentication behaves.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// The `Host` values served (`name` for any port, `name:port` for one port). Anything
    /// else gets 421.
    pub allowed_hosts: Vec<String>,
    /// A session ends after this long without a request.
    pub session_idle: Duration,
    /// A session ends this long after login.
    pub session_max: Duration,
    /// Mark the session cookie `Secure` (set when the API is served over https, directly or
    /// behind a proxy).
    pub secure_cookie: bool,
    /// Failed logins allowed per client address within [`AuthConfig::login_window`].
    pub login_failures: u32,
    /// The window of [`AuthConfig::login_failures`].
    pub login_window: Duration,
    /// The most client addresses whose failed logins are remembered.
    pub login_addresses: usize,
}

impl AuthConfig {
    /// The defaults: sessions idle out after 30 minutes and end after 12 hours; 5 failed logins
    /// per address per 15 minutes; 4,096 addresses remembered; hosts `localhost`,
    /// `127.0.0.1` and `[::1]` (any port).
    pub fn new() -> AuthConfig {
        AuthConfig {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()],
            session_idle: Duration::from_secs(30 * 60),
            session_max: Duration::from_secs(12 * 3600),
            secure_cookie: false,
            login_failures: 5,
            login_window: Duration::from_secs(15 * 60),
            login_addresses: 4096,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> AuthConfig {
        AuthConfig::new()
    }
}

// ------------------------------------------------------------------ principals

/// How a request was authenticated.
#[derive(Clone, PartialEq, Eq)]
pub enum Via {
    /// A login session (cookie).
    Session {
        /// The session's public id.
        id: String,
        /// The session's CSRF token.
        csrf: Secret,
    },
    /// An API key (Bearer).
    Key {
        /// The key's public id.
        id: String,
    },
}

impl fmt::Debug for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Via::Session { id, .. } => write!(f, "Session({id})"),
            Via::Key { id } => write!(f, "Key({id})"),
        }
    }
}

/// An API request routed here by another cluster node, which authenticated and authorized
/// its operator (see `cluster.rs`): the guard lets it through as that operator.
#[derive(Debug, Clone)]
pub struct Forwarded(pub Principal);

/// Who is asking: put in the request's extensions by the guard for every request that
/// carries valid credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user name, or `key:<name>` for an API key.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Session or key.
    pub via: Via,
}

/// An account as listed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserInfo {
    /// User name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// An API key as listed (never with its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    /// The key's public id (the 16 hex digits after `ocpp_`).
    pub id: String,
    /// What it is for.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: String,
    /// Last used (to the minute).
    pub last_used: Option<DateTime<Utc>>,
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Wrong user name or password (which one is not said).
    #[error("wrong user name or password")]
    Wrong,
    /// Too many failures from this address; try again after this long.
    #[error("too many failed logins; try again in {} s", .0.as_secs())]
    TooMany(Duration),
    /// Something else failed.
    #[error(transparent)]
    Failed(#[from] AuthError),
}

/// A successful login: who, and the cookie value (shown to the browser only).
#[derive(Debug)]
pub struct Login {
    /// The signed-in user.
    pub principal: Principal,
    /// The session cookie's value, `<id>.<secret>`.
    pub token: Secret,
}

// ------------------------------------------------------------------ the store

/// Accounts, keys, sessions and the failed-login table, over the backend's database.
pub struct Auth {
    db: Db,
    config: AuthConfig,
    /// The clock and the failed-login table ([`super::signin`], shared with drivers').
    sign_ins: super::signin::SignIns,
    /// Verified against when the user does not exist, so both cases take as long.
    dummy_hash: String,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Auth")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

pub(crate) fn random_hex(bytes: usize) -> Result<String, AuthError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(hex(&buf))
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

pub(crate) fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

pub(crate) fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

pub(crate) fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| AuthError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

pub(crate) fn verify_password(password: &str, hash: &str) -> Result<bool, AuthError> {
    let parsed = PasswordHash::new(hash).map_err(|e| AuthError::Corrupt(e.to_string()))?;
    Ok(Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok())
}

/// Hashing is slow on purpose: off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AuthError> + Send + 'static,
) -> Result<T, AuthError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AuthError::Hash(e.to_string()))?
}

fn check_username(name: &str) -> Result<(), AuthError> {
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::InvalidUsername)
    }
}

pub(crate) fn check_password(password: &Secret) -> Result<(), AuthError> {
    let n = password.expose().chars().count();
    if (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&n) {
        Ok(())
    } else {
        Err(AuthError::InvalidPassword)
    }
}

pub(crate) fn parse_time(s: &str) -> Result<DateTime<Utc>, AuthError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| AuthError::Corrupt(format!("timestamp {s:?}")))
}

fn role_of(s: &str) -> Result<Role, AuthError> {
    Role::parse(s).ok_or_else(|| AuthError::Corrupt(format!("role {s:?}")))
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Splits `<id><sep><secret>` where id is 16 hex digits and secret 64.
pub(crate) fn split_token(s: &str, sep: char) -> Option<(&str, &str)> {
    let (id, secret) = s.split_once(sep)?;
    let hex_of = |x: &str, n: usize| x.len() == n && x.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_of(id, 16) && hex_of(secret, 64)).then_some((id, secret))
}

impl Auth {
    /// The store over `db` (migrated by [`Db::open`]).
    pub fn new(db: Db, config: AuthConfig) -> Result<Auth, AuthError> {
        let dummy_hash = hash_password(&random_hex(16)?)?;
        Ok(Auth {
            db,
            config,
            sign_ins: super::signin::SignIns::default(),
            dummy_hash,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Replaces the clock of sessions and login limits (tests).
    pub fn set_clock(&self, clock: Clock) {
        self.sign_ins.set_clock(clock);
    }

    fn now(&self) -> DateTime<Utc> {
        self.sign_ins.now()
    }

    // -------------------------------------------------------------- accounts

    /// On first run (no account at all), creates `admin` with `password`, or with a random
    /// password that it returns (to be shown once). `None` when an account existed.
    pub async fn bootstrap_admin(
        &self,
        password: Option<Secret>,
    ) -> Result<Option<Secret>, AuthError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM operator_users")
            .fetch_one(self.db.writer())
            .await
            .map_err(DbError::from)?;
        let n: i64 = row.try_get("n").map_err(DbError::from)?;
        if n > 0 {
            return Ok(None);
        }
        let (password, generated) = match password {
            Some(p) => (p, false),
            None => (Secret(random_hex(12)?), true),
        };
        self.create_user("admin", &password, Role::Admin).await?;
        tracing::warn!("first run: created the operator account \"admin\"");
        Ok(generated.then_some(password))
    }

    /// Creates an account.
    pub async fn create_user(
        &self,
        username: &str,
        password: &Secret,
        role: Role,
    ) -> Result<UserInfo, AuthError> {
        check_username(username)?;
        check_password(password)?;
        let pw = password.clone();
        let hash = blocking(move || hash_password(pw.expose())).await?;
        let now = self.now();
        let r = sqlx::query(
            "INSERT INTO operator_users (username, password_hash, role, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (username) DO NOTHING",
        )
        .bind(username)
        .bind(hash)
        .bind(role.as_str())
        .bind(ts(now))
        .execute(self.db.writer())
        .await
        .map_err(DbError::from)?;
        if r.rows_affected() == 0 {
            return Err(AuthError::UserExists(username.to_owned()));
        }
        tracing::info!(username, role = role.as_str(), "operator account created");
        Ok(UserInfo {
            username: username.to_owned(),
            role,
            created_at: now,
        })
    }

    /// Every account.
    pub async fn users(&self) -> Result<Vec<UserInfo>, AuthError> {
        let rows =
            sqlx::query("SELECT username, role, created_at FROM operator_users ORDER BY username")
                .fetch_all(self.db.reader())
                .await
                .map_err(DbError::from)?;
        rows.iter()
            .map(|r| {
                Ok(UserInfo {
                    username: r.try_get("username").map_err(DbError::from)?,
                    role: role_of(&r.try_get::<String, _>("role").map_err(DbError::from)?)?,
                    created_at: parse_time(
                        &r.try_get::<String, _>("created_at")
                            .map_err(DbError::from)?,
                    )?,
                })
            })
            .collect()
    }

    async fn admins_other_than(&self, username: &str) -> Result<i64, AuthError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM operator_users WHERE role = 'admin' AND username <> $1",
        )
        .bind(username)
        .fetch_one(self.db.reader())
        .await
        .map_err(DbError::from)?;
        Ok(row.try_get("n").map_err(DbError::from)?)
    }

    /// Changes an account's password and/or role. A new password ends its sessions.
    pub async fn update_user(
        &self,
        username: &str,
        password: Option<&Secret>,
        role: Option<Role>,
    ) -> Result<UserInfo, AuthError> {
        let Some(current) = self
            .users()
            .await?
            .into_iter()
            .find(|u| u.username == username)
        else {
            return Err(AuthError::UnknownUser(username.to_owned()));
        };
        if let Some(p) = password {
            check_password(p)?;
        }
        if current.role == Role::Admin
            && role.is_some_and(|r| r != Role::Admin)
            && self.admins_other_than(username).await? == 0
        {
            return Err(AuthError::LastAdmin);
        }
        if let Some(p) = password {
            let pw = p.clone();
            let hash = blocking(move || hash_password(pw.expose())).await?;
            sqlx::query("UPDATE operator_users SET password_hash = $1 WHERE username = $2")
                .bind(hash)
                .bind(username)
                .execute(self.db.writer())
                .await
                .map_err(DbError::from)?;
            self.end_sessions_of(username).await?;
            tracing::info!(username, "operator password changed; its sessions ended");
        }
        if let Some(r) = role {
            sqlx::query("UPDATE operator_users SET role = $1 WHERE username = $2")
                .bind(r.as_str())
                .bind(username)
                .execute(self.db.writer())
                .await
                .map_err(DbError::from)?;
            tracing::info!(username, role = r.as_str(), "operator role changed");
        }
        Ok(UserInfo {
            role: role.unwrap_or(current.role),
            ..current
        })
    }

    /// Ends every login session of `username`.
    async fn end_sessions_of(&self, username: &str) -> Result<(), AuthError> {
        sqlx::query("DELETE FROM operator_sessions WHERE username = $1")
            .bind(username)
            .execute(self.db.writer())
            .await
            .map_err(DbError::from)?;
        Ok(())
    }

    /// Removes an account and ends its sessions (never the last admin).
    pub async fn delete_user(&self, username: &str) -> Result<(), AuthError> {
        let Some(user) = self
            .users()
            .await?
            .into_iter()
            .find(|u| u.username == username)
        else {
            return Err(AuthError::UnknownUser(username.to_owned()));
        };
        if user.role == Role::Admin && self.admins_other_than(username).await? == 0 {
            return Err(AuthError::LastAdmin);
        }
        self.end_sessions_of(username).await?;
        sqlx::query("DELETE FROM operator_users WHERE username = $1")
            .bind(username)
            .execute(self.db.writer())
            .await
            .map_err(DbError::from)?;
        tracing::info!(username, "operator account removed");
        Ok(())
    }

    // -------------------------------------------------------------- API keys

    /// Creates an API key; the key itself (`ocpp_<id>_<secret>`) is returned once and never
    /// stored.
    pub async fn create_api_key(
        &self,
        name: &str,
        role: Role,
        created_by: &str,
    ) -> Result<(KeyInfo, Secret), AuthError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AuthError::InvalidKeyName);
        }
        let id = random_hex(8)?;
        let secret = random_hex(32)?;
        let now = self.now();
        sqlx::query(
            "INSERT INTO operator_api_keys (id, name, role, secret_hash, created_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(name)
        .bind(role.as_str())
        .bind(sha256_hex(&secret))
        .bind(ts(now))
        .bind(created_by)
        .execute(self.db.writer())
        .await
        .map_err(DbError::from)?;
        tracing::info!(key = %id, name, role = role.as_str(), created_by, "API key created");
        let key = Secret(format!("{KEY_PREFIX}{id}_{secret}"));
        Ok((
            KeyInfo {
                id,
                name: name.to_owned(),
                role,
                created_at: now,
                created_by: created_by.to_owned(),
                last_used: None,
            },
            key,
        ))
    }

    /// Every API key (without secrets).
    pub async fn api_keys(&self) -> Result<Vec<KeyInfo>, AuthError> {
        let rows = sqlx::query(
            "SELECT id, name, role, created_at, created_by, last_used FROM operator_api_keys ORDER BY created_at, id",
        )
        .fetch_all(self.db.reader())
        .await
        .map_err(DbError::from)?;
        rows.iter()
            .map(|r| {
                let last: Option<String> = r.try_get("last_used").map_err(DbError::from)?;
                Ok(KeyInfo {
                    id: r.try_get("id").map_err(DbError::from)?,
                    name: r.try_get("name").map_err(DbError::from)?,
                    role: role_of(&r.try_get::<String, _>("role").map_err(DbError::from)?)?,
                    created_at: parse_time(
                        &r.try_get::<String, _>("created_at")
                            .map_err(DbError::from)?,
                    )?,
                    created_by: r.try_get("created_by").map_err(DbError::from)?,
                    last_used: last.as_deref().map(parse_time).transpose()?,
                })
            })
            .collect()
    }

    /// Revokes (deletes) an API key; whether it existed.
    pub async fn revoke_api_key(&self, id: &str) -> Result<bool, AuthError> {
        let r = sqlx::query("DELETE FROM operator_api_keys WHERE id = $1")
            .bind(id)
            .execute(self.db.writer())
            .await
            .map_err(DbError::from)?;
        if r.rows_affected() > 0 {
            tracing::info!(key = %id, "API key revoked");
        }
        Ok(r.rows_affected() > 0)
    }

    async fn key_principal(&self, key: &str) -> Result<Option<Principal>, AuthError> {
        let Some((id, secret)) = key
            .strip_prefix(KEY_PREFIX)
            .and_then(|k| split_token(k, '_'))
        else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT name, role, secret_hash, last_used FROM operator_api_keys WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.reader())
        .await
        .map_err(DbError::from)?;
        let Some(row) = row else { return Ok(None) };
        let stored: String = row.try_get("secret_hash").map_err(DbError::from)?;
        if !same(&sha256_hex(secret), &stored) {
            return Ok(None);
        }
        let now = self.now();
        let last: Option<String> = row.try_get("last_used").map_err(DbError::from)?;
        let stale = match last.as_deref().map(parse_time).transpose()? {
            Some(t) => now - t >= chrono::Duration::seconds(60),
            None => true,
        };
        if stale {
            sqlx::query("UPDATE operator_api_keys SET last_used = $1 WHERE id = $2")
                .bind(ts(now))
                .bind(id)
                .execute(self.db.writer())
                .await
                .map_err(DbError::from)?;
        }
        let name: String = row.try_get("name").map_err(DbError::from)?;
        Ok(Some(Principal {
            name: format!("key:{name}"),
            role: role_of(&row.try_get::<String, _>("role").map_err(DbError::from)?)?,
            via: Via::Key { id: id.to_owned() },
        }))
    }

    // -------------------------------------------------------------- sessions

    fn csrf_of(secret: &str) -> Secret {
        Secret(sha256_hex(&format!("csrf:{secret}")))
    }

    /// Checks a user name and password from `addr`; on success opens a session.
    pub async fn login(
        &self,
        addr: IpAddr,
        username: &str,
        password: &Secret,
    ) -> Result<Login, LoginError> {
        if let Some(wait) = self.locked_out(addr) {
            tracing::warn!(%addr, "login refused: too many failures");
            return Err(LoginError::TooMany(wait));
        }
        // What the client sent as a user name goes to the logs only when it is one.
        let shown = if check_username(username).is_ok() {
            username
        } else {
            "<malformed>"
        };
        let row = if check_username(username).is_ok() {
            sqlx::query("SELECT password_hash, role FROM operator_users WHERE username = $1")
                .bind(username)
                .fetch_optional(self.db.reader())
                .await
                .map_err(|e| AuthError::from(DbError::from(e)))?
        } else {
            None
        };
        let (hash, role) = match &row {
            Some(r) => (
                r.try_get::<String, _>("password_hash")
                    .map_err(|e| AuthError::from(DbError::from(e)))?,
                Some(role_of(
                    &r.try_get::<String, _>("role")
                        .map_err(|e| AuthError::from(DbError::from(e)))?,
                )?),
            ),
            None => (self.dummy_hash.clone(), None),
        };
        let too_long = password.expose().chars().count() > MAX_PASSWORD_CHARS;
        let pw = password.clone();
        let ok = !too_long && blocking(move || verify_password(pw.expose(), &hash)).await?;
        let Some(role) = role.filter(|_| ok) else {
            self.failed(addr);
            tracing::warn!(%addr, username = shown, "login failed");
            return Err(LoginError::Wrong);
        };
        self.succeeded(addr);
        let id = random_hex(8)?;
        let secret = random_hex(32)?;
        let now = self.now();
        // Sessions that ended without being presented again go here (timestamps sort as
        // text), so the table holds at most the logins of the last `session_max`.
        sqlx::query("DELETE FROM operator_sessions WHERE created_at <= $1 OR last_seen <= $2")
            .bind(ts(now - chrono(self.config.session_max)))
            .bind(ts(now - chrono(self.config.session_idle)))
            .execute(self.db.writer())
            .await
            .map_err(|e| AuthError::from(DbError::from(e)))?;
        sqlx::query(
            "INSERT INTO operator_sessions (id, secret_hash, username, created_at, last_seen)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(sha256_hex(&secret))
        .bind(username)
        .bind(ts(now))
        .bind(ts(now))
        .execute(self.db.writer())
        .await
        .map_err(|e| AuthError::from(DbError::from(e)))?;
        tracing::info!(%addr, username, session = %id, "login");
        Ok(Login {
            principal: Principal {
                name: username.to_owned(),
                role,
                via: Via::Session {
                    id: id.clone(),
                    csrf: Auth::csrf_of(&secret),
                },
            },
            token: Secret(format!("{id}.{secret}")),
        })
    }

    /// Ends a session.
    pub async fn logout(&self, session_id: &str) -> Result<(), AuthError> {
        sqlx::query("DELETE FROM operator_sessions WHERE id = $1")
            .bind(session_id)
            .execute(self.db.writer())
            .await
            .map_err(DbError::from)?;
        tracing::info!(session = %session_id, "logout");
        Ok(())
    }

    async fn session_principal(&self, token: &str) -> Result<Option<Principal>, AuthError> {
        let Some((id, secret)) = split_token(token, '.') else {
            return Ok(None);
        };
        let row = sqlx::query(
            "SELECT s.secret_hash, s.username, s.created_at, s.last_seen, u.role
             FROM operator_sessions s JOIN operator_users u ON u.username = s.username
             WHERE s.id = $1",
        )
        .bind(id)
        .fetch_optional(self.db.reader())
        .await
        .map_err(DbError::from)?;
        let Some(row) = row else { return Ok(None) };
        let stored: String = row.try_get("secret_hash").map_err(DbError::from)?;
        if !same(&sha256_hex(secret), &stored) {
            return Ok(None);
        }
        let now = self.now();
        let created = parse_time(
            &row.try_get::<String, _>("created_at")
                .map_err(DbError::from)?,
        )?;
        let seen = parse_time(
            &row.try_get::<String, _>("last_seen")
                .map_err(DbError::from)?,
        )?;
        if now - created >= chrono(self.config.session_max)
            || now - seen >= chrono(self.config.session_idle)
        {
            self.logout(id).await?;
            return Ok(None);
        }
        // Written at most once a minute (or a quarter of the idle timeout, if shorter).
        let touch = chrono(self.config.session_idle / 4).min(chrono::Duration::seconds(60));
        if now - seen >= touch {
            sqlx::query("UPDATE operator_sessions SET last_seen = $1 WHERE id = $2")
                .bind(ts(now))
                .bind(id)
                .execute(self.db.writer())
                .await
                .map_err(DbError::from)?;
        }
        Ok(Some(Principal {
            name: row.try_get("username").map_err(DbError::from)?,
            role: role_of(&row.try_get::<String, _>("role").map_err(DbError::from)?)?,
            via: Via::Session {
                id: id.to_owned(),
                csrf: Auth::csrf_of(secret),
            },
        }))
    }

    /// Who sent these headers: a Bearer key when there is an `Authorization` header (then
    /// the cookie is not looked at), else the session cookie. `None`: no valid credentials.
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Option<Principal>, AuthError> {
        if let Some(auth) = headers.get(header::AUTHORIZATION) {
            let Some(key) = auth.to_str().ok().and_then(|a| a.strip_prefix("Bearer ")) else {
                return Ok(None);
            };
            return self.key_principal(key.trim()).await;
        }
        match session_cookie(headers) {
            Some(token) => self.session_principal(&token).await,
            None => Ok(None),
        }
    }

    /// The `Set-Cookie` value that opens a session.
    pub fn session_cookie(&self, token: &Secret) -> String {
        super::signin::set_cookie(SESSION_COOKIE, token, &self.config)
    }

    /// The `Set-Cookie` value that clears the session cookie.
    pub fn clear_cookie(&self) -> String {
        super::signin::clear_cookie(SESSION_COOKIE, &self.config)
    }

    // -------------------------------------------------------------- failed logins

    fn locked_out(&self, addr: IpAddr) -> Option<Duration> {
        self.sign_ins.locked_out(addr, &self.config)
    }

    fn failed(&self, addr: IpAddr) {
        self.sign_ins
            .failed(addr, &self.config, self.config.login_addresses);
    }

    fn succeeded(&self, addr: IpAddr) {
        self.sign_ins.succeeded(addr);
    }

    /// How many client addresses the failed-login table holds now.
    pub fn tracked_addresses(&self) -> usize {
        self.sign_ins.tracked()
    }

    // -------------------------------------------------------------- hosts

    /// Whether `host` (a `Host` header value) is served.
    pub fn host_allowed(&self, host: &str) -> bool {
        let (name, port) = split_host(host);
        self.config.allowed_hosts.iter().any(|entry| {
            let (n, p) = split_host(entry);
            n.eq_ignore_ascii_case(name) && (p.is_none() || p == port)
        })
    }
}

/// `name[:port]` or `[v6][:port]` into name and port.
fn split_host(h: &str) -> (&str, Option<&str>) {
    if h.starts_with('[') {
        return match h.find(']') {
            Some(end) => {
                let (name, rest) = h.split_at(end + 1);
                (name, rest.strip_prefix(':'))
            }
            None => (h, None),
        };
    }
    match h.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => (name, Some(port)),
        _ => (h, None),
    }
}

/// The session cookie's value in `headers`.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    super::signin::cookie_value(headers, SESSION_COOKIE)
}

/// The client's address: the connection's peer (unspecified when the server did not say).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip())
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        ))
    }
}

// ------------------------------------------------------------------ the guards

pub(crate) fn refuse(status: StatusCode, code: &'static str, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

/// First guard, on every request (matched or not): the `Host` allow-list.
pub async fn host_guard(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()));
    match host {
        None => refuse(
            StatusCode::BAD_REQUEST,
            "missing_host",
            "the request has no Host header",
        ),
        Some(h) if !auth.host_allowed(&h) => {
            tracing::warn!(host = %h, "request for a host not served (421)");
            refuse(
                StatusCode::MISDIRECTED_REQUEST,
                "host_not_allowed",
                "this server does not serve that host name (see --allowed-host)",
            )
        }
        Some(_) => next.run(req).await,
    }
}

/// Whether `origin` (`scheme://host[:port]`, or a whole Referer URL) names the request's
/// `host`.
fn same_origin(origin: &str, host: &str) -> bool {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    let Some(rest) = rest else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    !authority.is_empty() && authority.eq_ignore_ascii_case(host)
}

/// The CSRF verdict for a request: `Ok` or why not. `csrf`: the token of the cookie session
/// the request came with (`None` for the login form, where only the origin is checked).
pub(crate) fn csrf_check(
    headers: &HeaderMap,
    method: &Method,
    csrf: Option<&Secret>,
) -> Result<(), &'static str> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let origin = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|o| o.to_str().ok());
    match (origin, csrf) {
        (Some(o), _) if !same_origin(o, host) => Err("cross-origin request refused"),
        (None, Some(_)) => Err("a request with a session cookie needs an Origin or Referer header"),
        (_, Some(token)) => {
            let sent = headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if same(sent, token.expose()) {
                Ok(())
            } else {
                Err("missing or wrong X-CSRF-Token")
            }
        }
        _ => Ok(()),
    }
}

/// The route guard's state: the store and the route table.
#[derive(Clone)]
pub struct Guard {
    /// The store.
    pub auth: Arc<Auth>,
    /// `(method, path pattern, access)` of every route; see [`super::api::ROUTES`].
    pub routes: &'static [(&'static str, &'static str, Access)],
    /// The driver accounts, for [`Access::Driver`] routes.
    pub drivers: Arc<super::accounts::Accounts>,
}

impl Guard {
    fn access(&self, method: &Method, path: &str) -> Option<Access> {
        let method = if *method == Method::HEAD {
            "GET"
        } else {
            method.as_str()
        };
        self.routes
            .iter()
            .find(|(m, p, _)| *m == method && *p == path)
            .map(|r| r.2)
    }

    fn knows_path(&self, path: &str) -> bool {
        self.routes.iter().any(|(_, p, _)| *p == path)
    }
}

/// Second guard, on every matched route: authenticates, looks the route up in the table and
/// checks the role and, for cookie sessions, CSRF. Puts the [`Principal`] (if any) in the
/// request's extensions. 401 without valid credentials, 403 for too small a role, a CSRF
/// failure or a route missing from the table.
pub async fn access_guard(State(guard): State<Guard>, mut req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    // An API request another cluster node authenticated, authorized and routed here (it
    // never comes from a socket: only `cluster::Inbound` puts it in the extensions).
    if let Some(Forwarded(p)) = req.extensions().get::<Forwarded>().cloned() {
        req.extensions_mut().insert(Some(p));
        return next.run(req).await;
    }
    let principal = match guard.auth.authenticate(req.headers()).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("authentication failed: {e}");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "database",
                "authentication is not available",
            );
        }
    };
    let access = guard.access(req.method(), &path);
    if access == Some(Access::Driver) {
        let driver = match guard.drivers.authenticate(req.headers()).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "sign in as a driver (POST /api/driver/login)",
                )
            }
            Err(e) => {
                tracing::error!("driver authentication failed: {e}");
                return refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "database",
                    "authentication is not available",
                );
            }
        };
        if let Err(why) = csrf_check(req.headers(), req.method(), Some(&driver.csrf)) {
            return refuse(StatusCode::FORBIDDEN, "csrf", why);
        }
        req.extensions_mut().insert(driver);
        req.extensions_mut().insert(principal);
        return next.run(req).await;
    }
    let csrf = match principal.as_ref().map(|p| &p.via) {
        Some(Via::Session { csrf, .. }) => Some(csrf.clone()),
        _ => None,
    };
    match access {
        Some(Access::Public) => {
            // The login form: no session yet, but a foreign page may not post to it.
            if let Err(why) = csrf_check(req.headers(), req.method(), None) {
                return refuse(StatusCode::FORBIDDEN, "csrf", why);
            }
        }
        other => {
            let Some(p) = &principal else {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "sign in (POST /api/login) or send Authorization: Bearer <API key>",
                );
            };
            let need = match other {
                Some(Access::Role(r)) => r,
                Some(Access::Public) | Some(Access::Driver) => Role::Viewer,
                // A route with no rule: its methods that are not routed answer 405 below;
                // a routed method missing from the table is refused to everyone.
                None if guard.knows_path(&path) => Role::Viewer,
                None => {
                    tracing::error!(path, method = %req.method(), "route missing from the access table: refused");
                    return refuse(
                        StatusCode::FORBIDDEN,
                        "forbidden",
                        "this route has no access rule",
                    );
                }
            };
            if p.role < need {
                return refuse(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    &format!(
                        "this needs the {} role; you are {}",
                        need.as_str(),
                        p.role.as_str()
                    ),
                );
            }
            // Bearer requests are exempt: a browser never sends a key by itself.
            if let Some(token) = &csrf {
                if let Err(why) = csrf_check(req.headers(), req.method(), Some(token)) {
                    return refuse(StatusCode::FORBIDDEN, "csrf", why);
                }
            }
        }
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Mutex, PoisonError};

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2hunter2");
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
        assert_eq!(format!("{s}"), "[redacted]");
        let via = Via::Session {
            id: "0011223344556677".into(),
            csrf: s,
        };
        assert!(!format!("{via:?}").contains("hunter2"));
    }

    #[test]
    fn hosts_and_origins() {
        assert_eq!(split_host("a.example:8080"), ("a.example", Some("8080")));
        assert_eq!(split_host("[::1]:80"), ("[::1]", Some("80")));
        assert_eq!(split_host("[::1]"), ("[::1]", None));
        assert!(same_origin("http://127.0.0.1:8080", "127.0.0.1:8080"));
        assert!(same_origin("https://h:1/page?x", "h:1"));
        assert!(!same_origin("http://evil.example", "127.0.0.1:8080"));
        assert!(!same_origin("null", "127.0.0.1:8080"));
        assert!(!same_origin("http://127.0.0.1:8080.evil", "127.0.0.1:8080"));
    }

    #[test]
    fn tokens_split_only_when_well_formed() {
        let id = "0123456789abcdef";
        let secret = "a".repeat(64);
        assert_eq!(
            split_token(&format!("{id}.{secret}"), '.'),
            Some((id, secret.as_str()))
        );
        assert_eq!(split_token(&format!("{id}.{secret}x"), '.'), None);
        assert_eq!(split_token("x.y", '.'), None);
        assert_eq!(split_token("", '.'), None);
    }

    /// The failed-login table never holds more than its bound, and a lockout ends with the
    /// window (injected clock).
    #[tokio::test]
    async fn failed_logins_are_bounded_and_expire() {
        let db = Db::open("sqlite::memory:").await.expect("db");
        let mut config = AuthConfig::new();
        config.login_addresses = 3;
        config.login_failures = 2;
        let auth = Auth::new(db, config).expect("auth");
        let now = Arc::new(Mutex::new(Utc::now()));
        let clock = now.clone();
        auth.set_clock(Arc::new(move || {
            *clock.lock().unwrap_or_else(PoisonError::into_inner)
        }));
        let pw = Secret::new("correct horse battery");
        auth.create_user("ann", &pw, Role::Viewer)
            .await
            .expect("user");
        let wrong = Secret::new("wrong wrong wrong");
        for i in 0..10u8 {
            let addr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, i));
            assert!(matches!(
                auth.login(addr, "ann", &wrong).await,
                Err(LoginError::Wrong)
            ));
            assert!(auth.tracked_addresses() <= 3);
        }
        let addr = IpAddr::V4(Ipv4Addr::new(10, 0, 1, 1));
        for _ in 0..2 {
            assert!(auth.login(addr, "nobody", &wrong).await.is_err());
        }
        // Locked out, even with the right password.
        assert!(matches!(
            auth.login(addr, "ann", &pw).await,
            Err(LoginError::TooMany(_))
        ));
        *now.lock().unwrap_or_else(PoisonError::into_inner) += chrono::Duration::minutes(16);
        let login = auth
            .login(addr, "ann", &pw)
            .await
            .expect("after the window");
        assert_eq!(login.principal.role, Role::Viewer);
        assert!(!format!("{login:?}").contains(login.token.expose()));

        // Sessions never presented again are removed by a later login once they ended.
        let sessions = || async {
            let row = sqlx::query("SELECT COUNT(*) AS n FROM operator_sessions")
                .fetch_one(auth.db.reader())
                .await
                .expect("count");
            row.try_get::<i64, _>("n").expect("n")
        };
        auth.login(addr, "ann", &pw).await.expect("second session");
        assert_eq!(sessions().await, 2);
        *now.lock().unwrap_or_else(PoisonError::into_inner) += chrono::Duration::minutes(31);
        auth.login(addr, "ann", &pw).await.expect("third session");
        assert_eq!(sessions().await, 1, "the two idle ones are gone");
    }
}
