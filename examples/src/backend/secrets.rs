//! Charger passwords (security profile 1) and the security events chargers report.
//!
//! **Storage.** A charger's password lives in the `charger_passwords` table as an argon2id
//! hash (a PHC string with its own salt and parameters), never in clear: not in the database,
//! not in a log line, not in a `Debug` output. Passwords come from a file or the environment
//! at start ([`parse_passwords`]: `IDENTITY=PASSWORD` or `IDENTITY:$argon2id$...` lines), or
//! are generated here (20 random letters and digits for a charger registered through the API,
//! or rotated over OCPP) and shown once, in the API answer that made them.
//!
//! **Checking.** [`PasswordAuth`] is the server's [`Authenticator`]: a charger with a password
//! on file must present it (401 otherwise); a charger without one is admitted only when no
//! passwords are required (no file or environment given: security profile 0 for those). An
//! argon2 verification takes tens of milliseconds of CPU by design, so at most
//! [`Passwords::max_concurrent`] run at once (by default one per CPU); a handshake that finds
//! none free within [`VERIFY_WAIT`] is answered 503 (`Retry-After`), so a flood of handshakes
//! with made-up passwords cannot take every CPU from the chargers already connected. The
//! verification runs off the async runtime's workers (`block_in_place`) on a multi-threaded
//! runtime. A result is used for the connection attempt that asked only: nothing is cached
//! between attempts (a cache of what verified would be a table of clear-text passwords).
//!
//! **Rotation** (`POST /api/chargers/{id}/password`). The backend generates a password and
//! sends it (2.x `SetVariables` `SecurityCtrlr.BasicAuthPassword`; 1.6 `ChangeConfiguration`
//! `AuthorizationKey`, hex-encoded as the security whitepaper asks). The rule that keeps a
//! charger from being locked out:
//!
//! 1. Before the call, the new hash is kept as *pending*: valid, but not yet the password.
//! 2. The charger answers `Accepted`: the pending hash becomes the password, and the old one
//!    stays valid as *previous* until the charger has connected with the new one (then it is
//!    forgotten). A charger that applies the new password but fails to reconnect with it can
//!    still come back with the old one.
//! 3. The charger answers `Rejected` or with a CALLERROR: the pending hash is dropped.
//! 4. No answer (timeout, lost connection): the pending hash stays valid, because the charger
//!    may have applied it and lost only the answer. The first connection with it makes it the
//!    password (and forgets the old one); a later rotation replaces it.
//!
//! **Security events** (`SecurityEventNotification`, 1.6 security whitepaper and 2.x A04) are
//! stored in `security_events`, listed by `GET /api/security-events` and shown on the
//! dashboard.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use ocpp_central::ocpp_types::Version;
use ocpp_central::{AnyRequest, Authenticator, Verdict};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::Row;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::api::{self, ApiError, ErrorBody, P, Q};
use super::db::{parse_ts, ts};
use super::{Db, DbError, Shared};

/// How long a handshake waits for a free verification slot before it is answered 503.
pub const VERIFY_WAIT: Duration = Duration::from_secs(2);

/// The length of generated passwords: 20 letters and digits (about 119 bits), valid for
/// every version (1.6 `AuthorizationKey`: 16 to 20 bytes; 2.x `BasicAuthPassword`: 16 to 40
/// characters).
pub const GENERATED_LEN: usize = 20;

/// The most rows `GET /api/security-events` returns.
pub const MAX_PAGE: i64 = 1000;

/// Why a password could not be made or stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Hashing failed (argon2 refused its parameters, or the task hashing it died).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// A password from the passwords file or the environment: in clear (hashed at start) or
/// already an argon2 PHC string. Its `Debug` shows neither.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// A password in clear.
    Plain(String),
    /// An argon2 hash (`$argon2id$v=19$...`).
    Hash(String),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Plain(_) => f.write_str("Plain(<redacted>)"),
            Secret::Hash(_) => f.write_str("Hash(<redacted>)"),
        }
    }
}

/// Reads the passwords file format: one charger per line, `IDENTITY=PASSWORD` (the password
/// in clear, hashed at start) or `IDENTITY:HASH` with an argon2 PHC string (`$argon2id$...`,
/// as [`hash_password`] writes). Blank lines and lines starting with `#` are skipped; `;`
/// also separates entries (for the one-line environment variable). An identity containing
/// `=` can only be given with a hash (identities never contain `:`). Errors name the line,
/// never the password.
pub fn parse_passwords(text: &str) -> Result<Vec<(String, Secret)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        for entry in line.split(';') {
            let entry = entry.trim();
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            let (identity, secret) = match entry.split_once(":$argon2") {
                Some((id, rest)) => {
                    let phc = format!("$argon2{rest}");
                    // A whole hash: salt and output, not only a well-formed prefix.
                    let whole =
                        PasswordHash::new(&phc).is_ok_and(|h| h.salt.is_some() && h.hash.is_some());
                    if !whole {
                        return Err(format!("line {}: not an argon2 PHC hash", n + 1));
                    }
                    (id, Secret::Hash(phc))
                }
                None => {
                    let (id, pw) = entry.split_once('=').ok_or_else(|| {
                        format!(
                            "line {}: want IDENTITY=PASSWORD or IDENTITY:$argon2id$...",
                            n + 1
                        )
                    })?;
                    if pw.is_empty() {
                        return Err(format!("line {}: empty password", n + 1));
                    }
                    (id, Secret::Plain(pw.to_owned()))
                }
            };
            ocpp_codec::transport::check_identity(identity)
                .map_err(|e| format!("line {}: {e}", n + 1))?;
            out.push((identity.to_owned(), secret));
        }
    }
    Ok(out)
}

/// The argon2id hash of `password` (default parameters: 19 MiB, 2 passes, one lane, as
/// OWASP recommends) as a PHC string, with a fresh random salt. Slow by design: call it off
/// the async runtime (`spawn_blocking`).
pub fn hash_password(password: &[u8]) -> Result<String, SecretError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `phc` (argon2 compares in constant time).
pub fn verify_password(phc: &str, password: &[u8]) -> bool {
    PasswordHash::new(phc)
        .map(|h| Argon2::default().verify_password(password, &h).is_ok())
        .unwrap_or(false)
}

/// A random password of `len` letters and digits from the operating system's generator.
pub fn generate_password(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        OsRng.fill_bytes(&mut buf);
        for b in buf {
            // 248 = 4 * 62: below it every letter is equally likely (no modulo bias).
            if b < 248 && out.len() < len {
                out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
            }
        }
    }
    out
}

async fn hash_off_runtime(password: String) -> Result<String, SecretError> {
    tokio::task::spawn_blocking(move || hash_password(password.as_bytes()))
        .await
        .map_err(|e| SecretError::Hash(e.to_string()))?
}

/// One charger's hashes (PHC strings).
#[derive(Clone, Default, PartialEq, Eq)]
struct Entry {
    hash: Option<String>,
    pending: Option<String>,
    previous: Option<String>,
    /// `file` (the passwords file or environment) or `api` (generated here).
    source: String,
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.hash.is_none() && self.pending.is_none() && self.previous.is_none()
    }
}

/// Which of a charger's hashes a password matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Matched {
    Current,
    Pending,
    Previous,
}

/// Counts argon2 verifications running, against a bound.
#[derive(Debug)]
struct Gate {
    running: Mutex<usize>,
    freed: Condvar,
    permits: usize,
}

/// A verification slot, given back on drop.
struct Permit<'a>(&'a Gate);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut n = self.0.running.lock().unwrap_or_else(|e| e.into_inner());
        *n = n.saturating_sub(1);
        self.0.freed.notify_one();
    }
}

impl Gate {
    /// A slot, waiting up to `wait` for one.
    fn acquire(&self, wait: Duration) -> Option<Permit<'_>> {
        let guard = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let (mut n, _) = self
            .freed
            .wait_timeout_while(guard, wait, |n| *n >= self.permits)
            .unwrap_or_else(|e| e.into_inner());
        if *n >= self.permits {
            return None;
        }
        *n += 1;
        Some(Permit(self))
    }
}

/// The chargers' password hashes: the `charger_passwords` table, mirrored in memory so the
/// handshake (a synchronous callback) reads them without a query; every change is written
/// through.
pub struct Passwords {
    db: Db,
    required: std::sync::atomic::AtomicBool,
    entries: RwLock<HashMap<String, Entry>>,
    gate: Gate,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("required", &self.required())
            .field("chargers", &self.read().len())
            .field("max_concurrent", &self.gate.permits)
            .finish_non_exhaustive()
    }
}

impl Passwords {
    /// The hashes stored in `db`; passwords not required until [`Passwords::require`].
    pub async fn load(db: Db) -> Result<Passwords, DbError> {
        let rows =
            sqlx::query("SELECT charger, hash, pending, previous, source FROM charger_passwords")
                .fetch_all(db.reader())
                .await?;
        let mut entries = HashMap::with_capacity(rows.len());
        for r in rows {
            entries.insert(
                r.try_get::<String, _>("charger")?,
                Entry {
                    hash: r.try_get("hash")?,
                    pending: r.try_get("pending")?,
                    previous: r.try_get("previous")?,
                    source: r.try_get("source")?,
                },
            );
        }
        let permits = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Passwords {
            db,
            required: false.into(),
            entries: RwLock::new(entries),
            gate: Gate {
                running: Mutex::new(0),
                freed: Condvar::new(),
                permits,
            },
        })
    }

    /// Requires a password of every charger (when a passwords file or environment is given):
    /// a charger without one is refused with 401.
    pub fn require(&self, yes: bool) {
        self.required
            .store(yes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether every charger needs a password.
    pub fn required(&self) -> bool {
        self.required.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many verifications run at once at most (one per CPU).
    pub fn max_concurrent(&self) -> usize {
        self.gate.permits
    }

    /// Whether `identity` has a password on file.
    pub fn has_password(&self, identity: &str) -> bool {
        self.read().get(identity).is_some_and(|e| !e.is_empty())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Entry>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Entry>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }

    async fn store(&self, identity: &str, entry: &Entry) -> Result<(), DbError> {
        store_entry(&self.db, identity, entry).await
    }

    /// Installs the passwords of the file / environment: each replaces what is on file for
    /// its charger unless that was generated here (registration or rotation: the charger has
    /// been given it since, and the file would lock it out). Clear passwords are hashed.
    pub async fn seed(&self, entries: Vec<(String, Secret)>) -> Result<(), SecretError> {
        for (identity, secret) in entries {
            if self
                .read()
                .get(&identity)
                .is_some_and(|e| e.source == "api")
            {
                tracing::info!(charger = %identity, "password kept: rotated or issued through the API since");
                continue;
            }
            let hash = match secret {
                Secret::Hash(h) => h,
                Secret::Plain(p) => hash_off_runtime(p).await?,
            };
            let entry = Entry {
                hash: Some(hash),
                source: "file".into(),
                ..Entry::default()
            };
            self.store(&identity, &entry).await?;
            self.write().insert(identity, entry);
        }
        Ok(())
    }

    /// A new password for `identity` if it has none (registration through the API); `None`
    /// when it has one already (registering again does not lock it out).
    pub async fn issue(&self, identity: &str) -> Result<Option<String>, SecretError> {
        if self.has_password(identity) {
            return Ok(None);
        }
        let password = generate_password(GENERATED_LEN);
        let entry = Entry {
            hash: Some(hash_off_runtime(password.clone()).await?),
            source: "api".into(),
            ..Entry::default()
        };
        self.store(identity, &entry).await?;
        self.write().insert(identity.to_owned(), entry);
        Ok(Some(password))
    }

    /// Step 1 of a rotation: a new password, its hash kept as pending.
    pub async fn begin_rotation(&self, identity: &str) -> Result<String, SecretError> {
        let password = generate_password(GENERATED_LEN);
        let hash = hash_off_runtime(password.clone()).await?;
        let mut entry = self.read().get(identity).cloned().unwrap_or_default();
        entry.pending = Some(hash);
        entry.source = "api".into();
        self.store(identity, &entry).await?;
        self.write().insert(identity.to_owned(), entry);
        Ok(password)
    }

    /// Step 2: the charger accepted; the pending hash is the password, the old one stays
    /// valid until the charger connects with the new one.
    pub async fn confirm_rotation(&self, identity: &str) -> Result<(), DbError> {
        let entry = {
            let mut entries = self.write();
            let Some(e) = entries.get_mut(identity) else {
                return Ok(());
            };
            let Some(pending) = e.pending.take() else {
                return Ok(());
            };
            // The connection with the new password may have come first (and forgotten
            // the old one already).
            if e.hash.as_deref() != Some(pending.as_str()) {
                e.previous = e.hash.take();
                e.hash = Some(pending);
            }
            e.clone()
        };
        self.store(identity, &entry).await
    }

    /// Step 3: the charger refused; the pending hash is dropped.
    pub async fn abandon_rotation(&self, identity: &str) -> Result<(), DbError> {
        let entry = {
            let mut entries = self.write();
            let Some(e) = entries.get_mut(identity) else {
                return Ok(());
            };
            e.pending = None;
            e.clone()
        };
        self.store(identity, &entry).await
    }

    /// The verdict for a handshake (see the [module docs](self)).
    fn check(self: &Arc<Self>, identity: &str, password: Option<&[u8]>) -> Verdict {
        let entry = self.read().get(identity).cloned().filter(|e| !e.is_empty());
        let Some(entry) = entry else {
            return if self.required() {
                Verdict::Refuse
            } else {
                Verdict::Accept
            };
        };
        let Some(password) = password else {
            return Verdict::Refuse;
        };
        let multi = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let verify = || {
            // On one thread nothing else verifies meanwhile: no wait.
            let permit = self
                .gate
                .acquire(if multi { VERIFY_WAIT } else { Duration::ZERO })?;
            let matched = [
                (Matched::Current, &entry.hash),
                (Matched::Pending, &entry.pending),
                (Matched::Previous, &entry.previous),
            ]
            .into_iter()
            .find_map(|(m, phc)| {
                phc.as_deref()
                    .is_some_and(|phc| verify_password(phc, password))
                    .then_some(m)
            });
            drop(permit);
            Some(matched)
        };
        let outcome = if multi {
            tokio::task::block_in_place(verify)
        } else {
            verify()
        };
        let matched = match outcome {
            None => return Verdict::Busy,
            Some(None) => return Verdict::Refuse,
            Some(Some(m)) => m,
        };
        // The charger connected with its newest password: the older ones go. Decided on the
        // hashes as they are now (a rotation may have been confirmed while this verified).
        let phc = match matched {
            Matched::Current => entry.hash,
            Matched::Pending => entry.pending,
            Matched::Previous => None,
        };
        let changed = phc.and_then(|phc| {
            let mut entries = self.write();
            let e = entries.get_mut(identity)?;
            if e.pending.as_deref() == Some(phc.as_str()) {
                e.hash = e.pending.take();
                e.previous = None;
                Some(e.clone())
            } else if e.hash.as_deref() == Some(phc.as_str()) && e.previous.is_some() {
                e.previous = None;
                Some(e.clone())
            } else {
                None
            }
        });
        if let (Some(e), Ok(rt)) = (changed, tokio::runtime::Handle::try_current()) {
            let db = self.db.clone();
            let identity = identity.to_owned();
            rt.spawn(async move {
                if let Err(err) = store_entry(&db, &identity, &e).await {
                    tracing::error!(charger = %identity, "storing the password change failed: {err}");
                }
            });
        }
        Verdict::Accept
    }

    /// The server's authenticator over these passwords.
    pub fn authenticator(self: &Arc<Self>) -> PasswordAuth {
        PasswordAuth(self.clone())
    }
}

async fn store_entry(db: &Db, identity: &str, entry: &Entry) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO charger_passwords (charger, hash, pending, previous, source, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (charger) DO UPDATE SET hash = excluded.hash, pending = excluded.pending,
         previous = excluded.previous, source = excluded.source, updated_at = excluded.updated_at",
    )
    .bind(identity)
    .bind(entry.hash.as_deref())
    .bind(entry.pending.as_deref())
    .bind(entry.previous.as_deref())
    .bind(entry.source.as_str())
    .bind(ts(Utc::now()))
    .execute(db.writer())
    .await?;
    Ok(())
}

/// [`Passwords`] as the OCPP server's [`Authenticator`].
#[derive(Debug, Clone)]
pub struct PasswordAuth(Arc<Passwords>);

impl Authenticator for PasswordAuth {
    fn verify(&self, identity: &str, password: &[u8]) -> bool {
        self.0.check(identity, Some(password)) == Verdict::Accept
    }

    fn check(&self, identity: &str, password: Option<&[u8]>) -> Verdict {
        self.0.check(identity, password)
    }
}

// ------------------------------------------------------------------ security events

/// A stored security event.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityEventRow {
    /// Row id (increasing).
    pub id: i64,
    /// The charger.
    pub charger: String,
    /// The event type, as the charger spelled it (e.g. `ResetOrReboot`).
    pub kind: String,
    /// When it happened, by the charger's clock.
    pub at: DateTime<Utc>,
    /// When the central system received it.
    pub received_at: DateTime<Utc>,
    /// The charger's free text about it.
    pub tech_info: Option<String>,
}

/// Stores one security event.
pub async fn store_security_event(
    db: &Db,
    charger: &str,
    kind: &str,
    at: DateTime<Utc>,
    tech_info: Option<&str>,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO security_events (charger, kind, at, received_at, tech_info) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(charger)
    .bind(kind)
    .bind(ts(at))
    .bind(ts(Utc::now()))
    .bind(tech_info)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Security events, newest first: of one charger (or all), received at or after `since`,
/// at most `limit`.
pub async fn security_events(
    db: &Db,
    charger: Option<&str>,
    since: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<SecurityEventRow>, DbError> {
    let rows = sqlx::query(
        "SELECT id, charger, kind, at, received_at, tech_info FROM security_events
         WHERE ($1 = '' OR charger = $1) AND received_at >= $2 ORDER BY id DESC LIMIT $3",
    )
    .bind(charger.unwrap_or_default())
    .bind(since.map(ts).unwrap_or_default())
    .bind(limit.clamp(1, MAX_PAGE))
    .fetch_all(db.reader())
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(SecurityEventRow {
                id: r.try_get("id")?,
                charger: r.try_get("charger")?,
                kind: r.try_get("kind")?,
                at: parse_ts("security_events.at", r.try_get("at")?)?,
                received_at: parse_ts("security_events.received_at", r.try_get("received_at")?)?,
                tech_info: r.try_get("tech_info")?,
            })
        })
        .collect()
}

// ------------------------------------------------------------------ HTTP routes

/// The routes of this module, merged into [`api::router`]. Roles (for the operator
/// authentication layer): `POST /api/chargers/{id}/password` is **admin only** (it hands
/// out a charger's credentials); `GET /api/security-events` is **viewer** (read-only).
pub fn routes() -> Router<Shared> {
    Router::new()
        // admin
        .route("/api/chargers/{id}/password", post(rotate_password))
        // viewer
        .route("/api/security-events", get(list_security_events))
        // the dashboard's panel (static, like /dashboard.js)
        .route("/security-events.js", get(panel_js))
}

async fn panel_js() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/javascript; charset=utf-8",
        )],
        include_str!("../../dashboard/security-events.js"),
    )
}

/// The OpenAPI paths of these routes, merged into the API's document.
#[derive(OpenApi)]
#[openapi(
    paths(rotate_password, list_security_events),
    components(schemas(NewPassword, SecurityEventRow))
)]
pub struct SecretsDoc;

/// Refuses a password change sent through the generic routes (`/configuration`,
/// `/variables/set`, `/call/{action}`): the charger would reconnect with a password the
/// central system does not know, and be locked out. `POST /api/chargers/{id}/password` is
/// the way.
pub fn refuse_password_change(action: &str, payload: &Value) -> Result<(), ApiError> {
    let is_password = match action {
        "ChangeConfiguration" => payload
            .get("key")
            .and_then(Value::as_str)
            .is_some_and(|k| k.eq_ignore_ascii_case("AuthorizationKey")),
        "SetVariables" => payload
            .get("setVariableData")
            .and_then(Value::as_array)
            .is_some_and(|items| {
                items.iter().any(|i| {
                    i.pointer("/component/name").and_then(Value::as_str) == Some("SecurityCtrlr")
                        && i.pointer("/variable/name").and_then(Value::as_str)
                            == Some("BasicAuthPassword")
                })
            }),
        _ => false,
    };
    if is_password {
        return Err(ApiError::bad(
            "use_password_route",
            "a charger's password is set with POST /api/chargers/{id}/password, so that the \
             central system knows it",
        ));
    }
    Ok(())
}

/// A password handed out once: after a rotation the charger accepted.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewPassword {
    /// The charger.
    pub identity: String,
    /// The OCPP version it speaks (which message carried the password).
    pub version: String,
    /// The new Basic-auth password. Shown only here, never stored in clear.
    pub password: String,
}

/// Filters of `GET /api/security-events`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SecurityEventsQuery {
    /// Only this charger's events.
    pub charger: Option<String>,
    /// Only events received at or after this instant (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// At most this many (default 100, at most 1000), newest first.
    pub limit: Option<i64>,
}

/// Rotates a connected charger's Basic-auth password (admin): a new random password is sent
/// over OCPP (2.x SetVariables `SecurityCtrlr.BasicAuthPassword`, 1.6 ChangeConfiguration
/// `AuthorizationKey` hex-encoded) and returned once when the charger accepts it; the
/// charger then reconnects with it. Rejected: 409 `password_rejected`; no answer: 504, and
/// the new password stays valid in case the charger applied it (see the module docs).
#[utoipa::path(post, path = "/api/chargers/{id}/password", params(("id" = String, Path, description = "Charger identity")),
    responses((status = 200, body = NewPassword), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn rotate_password(
    State(b): State<Shared>,
    P(id): P<String>,
) -> Result<Json<NewPassword>, ApiError> {
    let handle = api::connected(&b, &id).await?;
    let version = handle.version();
    let password = b
        .passwords()
        .begin_rotation(&id)
        .await
        .map_err(|e| api::internal("password", e.to_string()))?;
    let (action, payload) = match version {
        Version::V16 => (
            "ChangeConfiguration",
            json!({
                "key": "AuthorizationKey",
                "value": ocpp_codec::transport::encode_authorization_key(password.as_bytes()),
            }),
        ),
        _ => (
            "SetVariables",
            json!({ "setVariableData": [{
                "component": { "name": "SecurityCtrlr" },
                "variable": { "name": "BasicAuthPassword" },
                "attributeValue": password,
            }]}),
        ),
    };
    let request = AnyRequest::from_json(version, action, &payload.to_string())
        .map_err(|e| api::internal("password", format!("{action}: {e}")))?;
    let t0 = std::time::Instant::now();
    let result = handle.call_any(request).await;
    b.metrics().message_out(version, action, t0.elapsed());
    let answer = match result {
        Ok(answer) => answer,
        Err(e) => {
            // A CALLERROR is a refusal; no answer may be a lost one (the pending password
            // stays valid).
            if matches!(e, ocpp_central::CallError::CallError { .. }) {
                b.passwords().abandon_rotation(&id).await?;
            }
            b.log_call(&id, action, None).await;
            return Err(api::call_failed(&b, version, action, e));
        }
    };
    let response: Value = serde_json::from_str(&answer.to_json()).unwrap_or(Value::Null);
    let status = response
        .get("status")
        .or_else(|| response.pointer("/setVariableResult/0/attributeStatus"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    b.log_call(&id, action, Some(&status)).await;
    if status != "Accepted" {
        b.passwords().abandon_rotation(&id).await?;
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "password_rejected",
            format!("the charger answered {status:?} to the new password"),
        ));
    }
    b.passwords().confirm_rotation(&id).await?;
    tracing::info!(charger = %id, "password rotated");
    Ok(Json(NewPassword {
        identity: id,
        version: version.to_string(),
        password,
    }))
}

/// Security events the chargers reported (viewer), newest first.
#[utoipa::path(get, path = "/api/security-events", params(SecurityEventsQuery),
    responses((status = 200, body = [SecurityEventRow]), (status = 400, body = ErrorBody)))]
async fn list_security_events(
    State(b): State<Shared>,
    Q(q): Q<SecurityEventsQuery>,
) -> Result<Json<Vec<SecurityEventRow>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad(
            "invalid_query",
            format!("limit must be 1 to {MAX_PAGE}"),
        ));
    }
    Ok(Json(
        security_events(b.db(), q.charger.as_deref(), q.since, limit).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_passwords_file_format() {
        let hash = hash_password(b"0123456789abcdef").unwrap();
        let text = format!("# comment\n\nCP-1=s3cret=with=equals\n  CP-2:{hash}  \nA;B=x\n")
            .replace("A;B=x", "CP-3=one;CP-4=two");
        let entries = parse_passwords(&text).unwrap();
        assert_eq!(
            entries,
            [
                (
                    "CP-1".to_owned(),
                    Secret::Plain("s3cret=with=equals".into())
                ),
                ("CP-2".to_owned(), Secret::Hash(hash.clone())),
                ("CP-3".to_owned(), Secret::Plain("one".into())),
                ("CP-4".to_owned(), Secret::Plain("two".into())),
            ]
        );
        assert!(verify_password(&hash, b"0123456789abcdef"));
        assert!(!verify_password(&hash, b"0123456789abcdeF"));
        assert!(!verify_password("not a hash", b"x"));
        for bad in [
            "CP-1",
            "CP-1=",
            "CP 1=x",
            "CP-1:$argon2id$garbage",
            &format!("{}=x", "A".repeat(49)),
        ] {
            let err = parse_passwords(bad).unwrap_err();
            assert!(err.starts_with("line 1"), "{bad}: {err}");
        }
        // Errors and Debug never show the password.
        assert!(!parse_passwords("CP 1=hunter2")
            .unwrap_err()
            .contains("hunter2"));
        assert!(!format!("{:?}", Secret::Plain("hunter2".into())).contains("hunter2"));
    }

    #[test]
    fn generated_passwords_are_valid_for_every_version() {
        let a = generate_password(GENERATED_LEN);
        let b = generate_password(GENERATED_LEN);
        assert_ne!(a, b);
        assert_eq!(a.len(), 20);
        assert!(ocpp_codec::transport::is_valid_v2_password(&a));
        let key = ocpp_codec::transport::encode_authorization_key(a.as_bytes());
        assert_eq!(
            ocpp_codec::transport::decode_authorization_key(&key).as_deref(),
            Some(a.as_bytes())
        );
    }

    #[test]
    fn the_gate_bounds_verifications() {
        let gate = Gate {
            running: Mutex::new(0),
            freed: Condvar::new(),
            permits: 2,
        };
        let a = gate.acquire(Duration::ZERO).unwrap();
        let _b = gate.acquire(Duration::ZERO).unwrap();
        assert!(gate.acquire(Duration::from_millis(1)).is_none());
        drop(a);
        assert!(gate.acquire(Duration::ZERO).is_some());
    }
}
