//! Persistence: chargers, connectors, ID tokens, charging sessions with their meter values,
//! and an event log, in SQLite (embedded, the default) or PostgreSQL (by URL), through one
//! set of queries on sqlx's `Any` driver.
//!
//! Conventions that keep the two databases interchangeable: timestamps are RFC 3339 text in
//! UTC with milliseconds (so they sort as text), exact decimals (Wh, prices) are text, flags
//! and ids are 64-bit integers, parameters are `$1, $2, ...` (both databases read them by
//! number). Migrations are numbered and applied on start, each in its own transaction.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

/// What went wrong with the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL names no supported database.
    #[error("unsupported database URL {0:?}: use a file path, sqlite://PATH, sqlite::memory: or postgres://...")]
    UnsupportedUrl(String),
    /// The database refused or failed a query.
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    /// SQLite refused or failed a write made in place (see the backend's `inline` module).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A journal segment file could not be written or read (see the backend's
    /// `journal_file` module).
    #[error("journal file {path}: {source}")]
    JournalFile {
        /// The file or directory.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// A stored value could not be read back (e.g. a corrupt timestamp or decimal).
    #[error("corrupt stored value in {column}: {value:?}")]
    Corrupt {
        /// The column.
        column: &'static str,
        /// The text stored.
        value: String,
    },
}

/// Runs [`Db::checkpoint`] every second while held (see [`Db::start_checkpoints`]).
#[derive(Debug)]
pub(crate) struct Checkpoints {
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Which database the pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (embedded).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// The database: a connection pool for reads, one for writes, and the dialect it speaks.
///
/// SQLite has one writer at a time; a second connection that wants to write waits in
/// SQLite's busy handler, which sleeps (1, 2, 5, 10 ... 100 ms) instead of queueing. So with
/// SQLite every write goes through a pool of one connection, where writers queue in order
/// and none sleeps, and reads use the other pool (WAL: readers never block the writer).
/// With PostgreSQL (and `sqlite::memory:`, one connection) both are the same pool.
///
/// A SQLite file also has a connection of its own for the hot writes (the write-behind's
/// batches; the journal is in segment files, see the `journal_file` module), run in place on the calling task's thread (see
/// the `inline` module). It and the writer pool's connection take turns at SQLite's write
/// lock: the in-place writes are short (one commit each, nothing awaited inside), and while
/// the writer pool's connection holds the lock they wait without sleeping on the runtime.
/// The writer pool's transactions start with `Db::begin_write`, which takes the lock
/// before the first read, so an in-place commit cannot invalidate what they read.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    write: AnyPool,
    backend: Backend,
    inline: Option<std::sync::Arc<super::inline::Inline>>,
    /// The journal's segment files of a SQLite file (`None`: the journal is a table).
    journal_file: Option<std::sync::Arc<super::journal_file::JournalFile>>,
}

/// A charger row.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargerRow {
    /// Identity (the last path segment of its WebSocket URL).
    pub identity: String,
    /// OCPP version of its latest connection (`1.6`, `2.0.1`, `2.1`).
    pub version: Option<String>,
    /// Vendor from its BootNotification.
    pub vendor: Option<String>,
    /// Model from its BootNotification.
    pub model: Option<String>,
    /// Serial number.
    pub serial_number: Option<String>,
    /// Firmware version.
    pub firmware_version: Option<String>,
    /// Boot state (`Accepted`, `Pending`, `Rejected`, `Unknown`).
    pub boot_state: Option<String>,
    /// Registered by an operator (known-only admission admits it).
    pub registered: bool,
    /// Whether it is connected now (as last recorded).
    pub connected: bool,
    /// First time seen.
    pub first_seen: Option<DateTime<Utc>>,
    /// Last time seen (heartbeats recorded at most once a minute).
    pub last_seen: Option<DateTime<Utc>>,
    /// The connection that holds (or last held) it: `<node>|<connection>` (migration 18).
    pub owner: Option<String>,
}

/// A connector / EVSE status row.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorRow {
    /// EVSE id (1.6: the connector id).
    pub evse: i64,
    /// Connector id within the EVSE (2.x), if any.
    pub connector: Option<i64>,
    /// Status as the charger reported it.
    pub status: String,
    /// Error code, if any.
    pub error_code: Option<String>,
    /// Since when.
    pub since: DateTime<Utc>,
}

/// An ID token row.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRow {
    /// The token (1.6 idTag, 2.x idToken).
    pub id_token: String,
    /// Its authorization status (`Accepted`, `Blocked`, `Expired`, `Invalid`).
    pub status: String,
    /// A free note (who holds it).
    pub note: Option<String>,
}

/// A charging session row.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    /// Our id.
    pub id: i64,
    /// The charger.
    pub charger: String,
    /// The OCPP transaction id (1.6 integer as text, 2.x the charger's id).
    pub transaction_id: String,
    /// EVSE (1.6 connector).
    pub evse: i64,
    /// Connector within the EVSE (2.x), if known.
    pub connector: Option<i64>,
    /// The id token that started it.
    pub id_token: Option<String>,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// End, when completed.
    pub ended_at: Option<DateTime<Utc>>,
    /// Energy register at the start, Wh.
    pub meter_start_wh: Option<Decimal>,
    /// Latest energy register, Wh.
    pub meter_last_wh: Option<Decimal>,
    /// Energy so far, Wh (exact).
    pub energy_wh: Decimal,
    /// Latest active power reported, W.
    pub power_w: Option<Decimal>,
    /// Why it stopped.
    pub stop_reason: Option<String>,
    /// Cost so far / final, in `currency`.
    pub cost: Decimal,
    /// Currency of `cost`.
    pub currency: String,
    /// `active` or `completed`.
    pub status: String,
}

/// A stored meter sample.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRow {
    /// When measured.
    pub timestamp: DateTime<Utc>,
    /// Measurand.
    pub measurand: String,
    /// Value, exact, in `unit`.
    pub value: Decimal,
    /// Unit.
    pub unit: Option<String>,
    /// Phase.
    pub phase: Option<String>,
    /// Reading context.
    pub context: Option<String>,
}

/// An event log row.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRow {
    /// Sequence number.
    pub id: i64,
    /// When recorded.
    pub at: DateTime<Utc>,
    /// The charger.
    pub charger: String,
    /// Kind (`connected`, `booted`, `status`, `authorized`, `transaction_started`, ...).
    pub kind: String,
    /// Details, JSON text.
    pub detail: String,
}

/// A journaled transaction message.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct JournalRow {
    /// Row id (journal order).
    pub id: i64,
    /// The charger.
    pub charger: String,
    /// Its OCPP version.
    pub version: String,
    /// The action.
    pub action: String,
    /// The request payload, JSON.
    pub request: String,
    /// The answer sent, JSON.
    pub response: String,
    /// Why it was set aside (rows that failed to apply at recovery), else `None`.
    pub error: Option<String>,
    /// The session it belongs to, once known.
    pub session_id: Option<i64>,
}

/// Filter for [`Db::sessions`].
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// Only this charger's.
    pub charger: Option<String>,
    /// Only `active` or `completed`.
    pub status: Option<String>,
    /// At most this many, newest first.
    pub limit: i64,
}

/// Chargers per `journal_projected` statement (3 columns each).
const MARKS_PER_STATEMENT: usize = 256;

/// The conflict clause that raises a charger's mark in `journal_projected` and never lowers
/// it (a literal, for `concat!`).
macro_rules! raise_upto {
    () => {
        "ON CONFLICT (charger) DO UPDATE SET upto = CASE WHEN excluded.upto > journal_projected.upto \
         THEN excluded.upto ELSE journal_projected.upto END"
    };
}

/// Formats a timestamp the way the database stores it.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(crate) fn parse_ts(column: &'static str, s: String) -> Result<DateTime<Utc>, DbError> {
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| DbError::Corrupt { column, value: s })
}

pub(crate) fn parse_dec(column: &'static str, s: String) -> Result<Decimal, DbError> {
    Decimal::from_str(&s).map_err(|_| DbError::Corrupt { column, value: s })
}

fn opt<T>(
    column: &'static str,
    s: Option<String>,
    f: fn(&'static str, String) -> Result<T, DbError>,
) -> Result<Option<T>, DbError> {
    s.map(|s| f(column, s)).transpose()
}

/// The schema, per dialect: `{ID}` becomes the auto-increment primary key.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE chargers (
        identity TEXT PRIMARY KEY,
        version TEXT,
        vendor TEXT,
        model TEXT,
        serial_number TEXT,
        firmware_version TEXT,
        boot_state TEXT,
        registered BIGINT NOT NULL DEFAULT 0,
        connected BIGINT NOT NULL DEFAULT 0,
        first_seen TEXT,
        last_seen TEXT
    );
    CREATE TABLE connectors (
        charger TEXT NOT NULL,
        evse BIGINT NOT NULL,
        connector BIGINT NOT NULL,
        status TEXT NOT NULL,
        error_code TEXT,
        since TEXT NOT NULL,
        PRIMARY KEY (charger, evse, connector)
    );
    CREATE TABLE id_tokens (
        id_token TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        note TEXT,
        created_at TEXT NOT NULL
    );
    CREATE TABLE sessions (
        id {ID},
        charger TEXT NOT NULL,
        transaction_id TEXT NOT NULL,
        evse BIGINT NOT NULL,
        connector BIGINT,
        id_token TEXT,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        meter_start_wh TEXT,
        meter_last_wh TEXT,
        energy_wh TEXT NOT NULL,
        power_w TEXT,
        stop_reason TEXT,
        cost TEXT NOT NULL,
        currency TEXT NOT NULL,
        status TEXT NOT NULL,
        UNIQUE (charger, transaction_id)
    );
    CREATE INDEX sessions_status ON sessions (status, charger);
    CREATE TABLE meter_values (
        id {ID},
        session_id BIGINT NOT NULL REFERENCES sessions (id),
        timestamp TEXT NOT NULL,
        measurand TEXT NOT NULL,
        value TEXT NOT NULL,
        unit TEXT,
        phase TEXT,
        context TEXT
    );
    CREATE INDEX meter_values_session ON meter_values (session_id, id);
    CREATE TABLE events (
        id {ID},
        at TEXT NOT NULL,
        charger TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX events_charger ON events (charger, id);",
    // 2: the journal of transaction messages (written before they are answered, so a crash
    // between the answer and the projection into sessions loses nothing), and one row per
    // distinct meter sample (a replayed message adds nothing twice).
    "CREATE TABLE journal (
        id {ID},
        charger TEXT NOT NULL,
        version TEXT NOT NULL,
        action TEXT NOT NULL,
        request TEXT NOT NULL,
        response TEXT NOT NULL,
        at TEXT NOT NULL,
        processed BIGINT NOT NULL DEFAULT 0
    );
    CREATE INDEX journal_unprocessed ON journal (processed, charger, id);
    CREATE UNIQUE INDEX meter_values_distinct ON meter_values
        (session_id, timestamp, measurand, (COALESCE(phase, '')), (COALESCE(context, '')))",
    // 3: 1.6 transaction ids from one counter in the database (never reused across restarts
    // or processes); journal rows that failed to apply are set aside (processed = 2) with why.
    "CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value BIGINT NOT NULL
    );
    ALTER TABLE journal ADD COLUMN error TEXT",
    // 4: the journal is where a session's meter values live (each transaction message once,
    // linked to its session; `meter_values` keeps the rows written before), and what is
    // projected is one mark per charger, not an update of every row: `upto` (projected up
    // to) and `last` (journaled up to); a charger with `last > upto` has rows to replay. No
    // index per charger on the journal: each commit would write one index page per charger.
    "ALTER TABLE journal ADD COLUMN session_id BIGINT;
    CREATE INDEX journal_session ON journal (session_id, id);
    DROP INDEX journal_unprocessed;
    CREATE INDEX journal_set_aside ON journal (id) WHERE processed = 2;
    CREATE TABLE journal_projected (
        charger TEXT PRIMARY KEY,
        upto BIGINT NOT NULL,
        last BIGINT NOT NULL
    );
    INSERT INTO journal_projected (charger, upto, last)
        SELECT charger, 0, MAX(id) FROM journal GROUP BY charger",
    // 5: `last` is raised by the database as each journal row is inserted, so a group of
    // rows is one statement (committed alone) instead of a transaction of two.
    "@journal_last_trigger",
    // 6: operator accounts (Argon2id password hashes), API keys and login sessions (only the
    // SHA-256 of their secrets); the same spelling in both databases.
    "CREATE TABLE operator_users (
        username TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        role TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE operator_api_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        secret_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        last_used TEXT
    );
    CREATE TABLE operator_sessions (
        id TEXT PRIMARY KEY,
        secret_hash TEXT NOT NULL,
        username TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_seen TEXT NOT NULL
    );
    CREATE INDEX operator_sessions_user ON operator_sessions (username)",
    // 7: charger passwords as argon2 PHC strings (`hash` current, `pending` sent and not
    // confirmed, `previous` still valid until the charger connects with the new one; see
    // `secrets.rs`), and the security events chargers report.
    "CREATE TABLE charger_passwords (
        charger TEXT PRIMARY KEY,
        hash TEXT,
        pending TEXT,
        previous TEXT,
        source TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE security_events (
        id {ID},
        charger TEXT NOT NULL,
        kind TEXT NOT NULL,
        at TEXT NOT NULL,
        received_at TEXT NOT NULL,
        tech_info TEXT
    );
    CREATE INDEX security_events_received ON security_events (received_at, id)",
    // 8: the journal's low-water mark (see `watermark.rs`), stored by the write-behind with
    // its batches, replaces the trigger that raised each charger's `last` on every insert
    // (one more page of log per commit): recovery reads the journal from the mark on. The
    // first mark is where the charger marks said to replay from. And SQLite's journal loses
    // AUTOINCREMENT, whose counter row (in `sqlite_sequence`) was one more page of log per
    // commit: journal rows are never deleted, so the next id is still one above every id
    // given before (the low-water mark relies on it).
    "@drop_journal_last_trigger;
    @journal_without_autoincrement;
    CREATE TABLE journal_watermark (
        id BIGINT PRIMARY KEY CHECK (id = 1),
        upto BIGINT NOT NULL
    );
    INSERT INTO journal_watermark (id, upto) SELECT 1, COALESCE(
        (SELECT MIN(upto) FROM journal_projected WHERE last > upto),
        (SELECT MAX(id) FROM journal), 0)",
    // 9: chargers' certificates (`pki.rs`): issued by the central system's CA or installed
    // on the charger, with serial, subject, expiry and the hash data the charger reports.
    "CREATE TABLE charger_certificates (
        id {ID},
        charger TEXT NOT NULL,
        source TEXT NOT NULL,
        kind TEXT NOT NULL,
        serial TEXT NOT NULL,
        subject TEXT,
        not_after TEXT,
        hash_algorithm TEXT,
        issuer_name_hash TEXT,
        issuer_key_hash TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX charger_certificates_charger ON charger_certificates (charger, id)",
    // 10: sites with their grid limit, and the chargers of each (`sites.rs`).
    super::sites::MIGRATION,
    // 11: reservations and the chargers' local list versions (`reservations.rs`,
    // `local_list.rs`).
    super::reservations::MIGRATION,
    // 12: firmware images, rollouts and targets; log requests and files (`firmware.rs`,
    // `uploads.rs`).
    super::firmware::MIGRATION,
    // 13: the device model, desired configuration, monitors, events and alerts
    // (`device_model.rs`).
    super::device_model::MIGRATION,
    // 14: display messages and customer-information reports (`display.rs`,
    // `customers.rs`). Numbered 14 where migrations 12 and 13 come first.
    super::display::MIGRATION,
    // 15: signed meter values and meter keys (`signed.rs`).
    super::signed::MIGRATION,
    // 16: OCPP 2.1 tariffs, the chargers' default tariffs and the sessions' cost by them
    // (`tariffs.rs`).
    super::tariffs::MIGRATION,
    // 17: periodic event streams and their samples, DER events (`streams.rs`, `der.rs`).
    super::streams::MIGRATION,
    // 18: the connection that holds each charger (`<node>|<connection>`): a disconnection
    // clears `connected` only if it is still that connection's, so a reconnect elsewhere (a
    // cluster node, or a newer connection here) is never marked offline by the older one
    // (`cluster.rs`).
    // A cluster node replays the unprojected journal rows of a charger it takes over from a
    // dead node (PostgreSQL only: a cluster needs it; SQLite stays one index lighter).
    "ALTER TABLE chargers ADD COLUMN owner TEXT;
    @journal_charger_index",
    // 19: driver accounts, tokens, fleets and vehicles, the billing ledger and payments
    // (`accounts.rs`, `ledger.rs`, `payments.rs`).
    super::accounts::MIGRATION,
    // 20: a cluster node's journal low-water mark (`watermark.rs`, `cluster.rs`): each row
    // says which node wrote it, each node stores the mark of its own rows, so a restarted
    // node recovers from its recent mark (the shared mark cannot move on a cluster: ids from
    // one sequence interleave across nodes). Rows of a single node have no node. A firmware
    // rollout stores what its UpdateFirmware is built from, so the node holding each target
    // sends it (`firmware.rs`).
    "ALTER TABLE journal ADD COLUMN node TEXT;
    CREATE TABLE journal_node_marks (
        node TEXT PRIMARY KEY,
        upto BIGINT NOT NULL
    );
    ALTER TABLE firmware_rollouts ADD COLUMN params TEXT",
    // 21: which journal rows belong to which session, in a table of their own written by the
    // write-behind once a second (`writer.rs`), no longer an index on the journal: each commit
    // of the journal wrote a page of that index per session in it (sessions are many, their
    // rows interleaved), most of the write-ahead log of a network in transactions. The table
    // is ordered by session (one tree, no rowid on SQLite), written in batches a page per
    // session per second. Links of earlier rows move over; `journal.session_id` stays for
    // them and is no longer written.
    "@journal_sessions",
    // 22: connector specs, site locations, charger alerts and their webhook deliveries
    // (`catalog.rs`, `alerts.rs`).
    super::catalog::MIGRATION,
    // 23: a SQLite file's journal is kept in segment files beside it (`journal_file.rs`):
    // a row of it that fails to apply at recovery is copied to `journal_aside` with why (the
    // journal table's own rows, of older databases, are still set aside in place);
    // `journal_files` holds the token that marks the directory as this database's.
    "CREATE TABLE journal_files (id INTEGER PRIMARY KEY, token TEXT NOT NULL);
    CREATE TABLE journal_aside (
        id BIGINT PRIMARY KEY,
        charger TEXT NOT NULL,
        version TEXT NOT NULL,
        action TEXT NOT NULL,
        request TEXT NOT NULL,
        response TEXT NOT NULL,
        error TEXT NOT NULL,
        at TEXT NOT NULL
    )",
];

/// The statements of a migration step `@name` that the two databases spell differently (a
/// trigger's body holds `;`, which the scripts above separate statements with).
fn dialect_statements(name: &str, backend: Backend) -> Option<&'static [&'static str]> {
    match (name, backend) {
        ("@journal_last_trigger", Backend::Sqlite) => Some(&[
            "CREATE TRIGGER journal_last AFTER INSERT ON journal BEGIN
                INSERT INTO journal_projected (charger, upto, last) VALUES (NEW.charger, 0, NEW.id)
                ON CONFLICT (charger) DO UPDATE SET last = MAX(journal_projected.last, excluded.last);
            END",
        ]),
        ("@journal_last_trigger", Backend::Postgres) => Some(&[
            "CREATE FUNCTION journal_last() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO journal_projected (charger, upto, last) VALUES (NEW.charger, 0, NEW.id)
                ON CONFLICT (charger) DO UPDATE SET last = GREATEST(journal_projected.last, excluded.last);
                RETURN NEW;
            END $$",
            "CREATE TRIGGER journal_last AFTER INSERT ON journal
                FOR EACH ROW EXECUTE FUNCTION journal_last()",
        ]),
        ("@journal_without_autoincrement", Backend::Sqlite) => Some(&[
            "CREATE TABLE journal_rebuilt (
                id INTEGER PRIMARY KEY,
                charger TEXT NOT NULL,
                version TEXT NOT NULL,
                action TEXT NOT NULL,
                request TEXT NOT NULL,
                response TEXT NOT NULL,
                at TEXT NOT NULL,
                processed BIGINT NOT NULL DEFAULT 0,
                error TEXT,
                session_id BIGINT
            )",
            "INSERT INTO journal_rebuilt
                (id, charger, version, action, request, response, at, processed, error, session_id)
                SELECT id, charger, version, action, request, response, at, processed, error, session_id
                FROM journal",
            "DROP TABLE journal",
            "ALTER TABLE journal_rebuilt RENAME TO journal",
            "CREATE INDEX journal_session ON journal (session_id, id)",
            "CREATE INDEX journal_set_aside ON journal (id) WHERE processed = 2",
        ]),
        // A sequence: nothing written per row beyond the row.
        ("@journal_without_autoincrement", Backend::Postgres) => Some(&[]),
        ("@journal_charger_index", Backend::Sqlite) => Some(&[]),
        ("@journal_charger_index", Backend::Postgres) => {
            Some(&["CREATE INDEX journal_charger ON journal (charger, id)"])
        }
        ("@journal_sessions", Backend::Sqlite) => Some(&[
            "CREATE TABLE journal_sessions (
                session_id BIGINT NOT NULL,
                id BIGINT NOT NULL,
                PRIMARY KEY (session_id, id)
            ) WITHOUT ROWID",
            "INSERT INTO journal_sessions (session_id, id)
                SELECT session_id, id FROM journal WHERE session_id IS NOT NULL",
            "DROP INDEX IF EXISTS journal_session",
        ]),
        ("@journal_sessions", Backend::Postgres) => Some(&[
            "CREATE TABLE journal_sessions (
                session_id BIGINT NOT NULL,
                id BIGINT NOT NULL,
                PRIMARY KEY (session_id, id)
            )",
            "INSERT INTO journal_sessions (session_id, id)
                SELECT session_id, id FROM journal WHERE session_id IS NOT NULL",
            "DROP INDEX IF EXISTS journal_session",
        ]),
        ("@drop_journal_last_trigger", Backend::Sqlite) => {
            Some(&["DROP TRIGGER IF EXISTS journal_last"])
        }
        ("@drop_journal_last_trigger", Backend::Postgres) => Some(&[
            "DROP TRIGGER IF EXISTS journal_last ON journal",
            "DROP FUNCTION IF EXISTS journal_last()",
        ]),
        _ => None,
    }
}

/// The counter of OCPP 1.6 transaction ids.
const TRANSACTION_ID_COUNTER: &str = "v16_transaction_id";

pub(crate) const SESSION_COLUMNS: &str =
    "id, charger, transaction_id, evse, connector, id_token, started_at, ended_at, \
     meter_start_wh, meter_last_wh, energy_wh, power_w, stop_reason, cost, currency, status";

impl Db {
    /// Opens (creating if needed) the database at `url` and applies pending migrations.
    ///
    /// `url`: a file path or `sqlite://PATH` (created if missing), `sqlite::memory:` (one
    /// connection, gone at exit), or `postgres://user:pass@host:port/db`.
    pub async fn open(url: &str) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let Target {
            url,
            backend,
            max,
            file,
        } = normalize(url)?;
        if backend == Backend::Postgres || max == 1 {
            let pool = pool_options(backend, max, false).connect(&url).await?;
            let db = Db {
                write: pool.clone(),
                pool,
                backend,
                inline: None,
                journal_file: None,
            };
            return db.ready().await;
        }
        let write = pool_options(backend, 1, true).connect(&url).await?;
        // The readers' pool sees the file in WAL mode (set by the writer, kept in the file).
        sqlx::query("PRAGMA journal_mode=WAL")
            .execute(&write)
            .await?;
        let pool = pool_options(backend, max, false).connect(&url).await?;
        let mut db = Db {
            pool,
            write,
            backend,
            inline: None,
            journal_file: None,
        }
        .ready()
        .await?;
        // After the migrations: the file exists, in WAL mode, with every table.
        let path = file.ok_or_else(|| DbError::UnsupportedUrl(url.clone()))?;
        db.inline = Some(std::sync::Arc::new(super::inline::Inline::open(
            &path,
            WRITER_AUTOCHECKPOINT,
        )?));
        // The journal's rows of an older database stay in its table; new ones go to the
        // segments, numbered above them.
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS n FROM journal")
            .fetch_one(&db.write)
            .await?;
        let table_max: i64 = row.try_get("n")?;
        // The database's mark on its journal directory: segments of another database (one
        // deleted and created again beside them) are never replayed into this one. Drawn by
        // SQLite once, at the first open.
        sqlx::query(
            "INSERT INTO journal_files (id, token) VALUES (1, lower(hex(randomblob(16))))
             ON CONFLICT (id) DO NOTHING",
        )
        .execute(&db.write)
        .await?;
        let token: String = sqlx::query("SELECT token FROM journal_files WHERE id = 1")
            .fetch_one(&db.write)
            .await?
            .try_get("token")?;
        db.journal_file = Some(std::sync::Arc::new(super::journal_file::JournalFile::open(
            std::path::PathBuf::from(format!("{path}.journal")),
            table_max,
            &token,
        )?));
        Ok(db)
    }

    async fn ready(self) -> Result<Db, DbError> {
        self.migrate().await?;
        self.seed_transaction_ids().await?;
        Ok(self)
    }

    /// Copies the write-ahead log into the database file, mostly without blocking the writer;
    /// a no-op for PostgreSQL. First a SQLite `wal_checkpoint(PASSIVE)` on a reader's
    /// connection copies what is committed while the writer goes on. Under a steady stream of
    /// commits that never catches up with the end of the log, and the log is only started
    /// again from its beginning once a checkpoint has caught up: so when the log holds more
    /// than `RESTART_FRAMES` (4,000), a `wal_checkpoint(RESTART)` through the writer's connection
    /// copies the little that is left, with the writes queued behind it for that long. The
    /// backend runs it every second, so the writer's commits never carry a checkpoint of
    /// their own (its automatic checkpoint is only a backstop, `WRITER_AUTOCHECKPOINT`).
    pub async fn checkpoint(&self) -> Result<(), DbError> {
        if self.same_pool() {
            return Ok(());
        }
        // Columns: busy, frames in the log, frames copied into the database (-1, -1 when the
        // database is not in WAL mode).
        let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&self.pool)
            .await?;
        let frames: i64 = row.try_get(1)?;
        if frames > restart_frames() {
            let started = std::time::Instant::now();
            sqlx::query("PRAGMA wal_checkpoint(RESTART)")
                .fetch_one(&self.write)
                .await?;
            // The writes queue behind it: worth seeing when it is long.
            let took = started.elapsed();
            if took > std::time::Duration::from_millis(2) {
                tracing::info!(frames, ?took, "the write-ahead log was restarted");
            } else {
                tracing::debug!(frames, ?took, "the write-ahead log was restarted");
            }
        }
        Ok(())
    }

    /// Starts a task on the current runtime that runs [`Db::checkpoint`] every second until
    /// the returned guard is dropped.
    pub(crate) fn start_checkpoints(&self) -> Checkpoints {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        if !self.same_pool() {
            let db = self.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        _ = every.tick() => {}
                    }
                    if let Err(e) = db.checkpoint().await {
                        tracing::warn!("database checkpoint failed: {e}");
                    }
                    // The journal's segment on disk too (see `journal_file`).
                    if let Some(file) = &db.journal_file {
                        file.sync();
                    }
                }
            });
        }
        Checkpoints { _stop: stop }
    }

    /// Whether reads and writes share one pool (PostgreSQL, `sqlite::memory:`): there is no
    /// separate SQLite writer, and nothing to checkpoint.
    fn same_pool(&self) -> bool {
        self.backend == Backend::Postgres || self.pool.options().get_max_connections() == 1
    }

    /// The pool reads go through (see [`Db`]).
    pub(crate) fn reader(&self) -> &AnyPool {
        &self.pool
    }

    /// The pool writes go through (see [`Db`]).
    pub(crate) fn writer(&self) -> &AnyPool {
        &self.write
    }

    /// A transaction on the writer pool (see [`Db`]). On SQLite it starts with
    /// `BEGIN IMMEDIATE`, which takes the write lock at once (waiting in the busy handler
    /// while the in-place writer holds it). A deferred `BEGIN` would take a snapshot at its
    /// first read and fail with `SQLITE_BUSY` at its first write if the in-place writer had
    /// committed in between: such a transaction cannot move its snapshot forward, and SQLite
    /// does not wait for it.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.write.begin().await,
        }
    }

    /// The journal's segment files of a SQLite file (`None`: PostgreSQL, `sqlite::memory:`,
    /// whose journal is a table).
    pub(crate) fn journal_file(&self) -> Option<&super::journal_file::JournalFile> {
        self.journal_file.as_deref()
    }

    /// The in-place writer of a SQLite file (`None`: PostgreSQL, `sqlite::memory:`).
    pub(crate) fn inline(&self) -> Option<&super::inline::Inline> {
        self.inline.as_deref()
    }

    /// The parameters of a multi-row `VALUES`, `rows` rows of `cols` columns each:
    /// `(?, ?), (?, ?)` for SQLite, `($1, $2), ($3, $4)` for PostgreSQL. SQLite gets
    /// anonymous parameters because binding numbered ones costs a scan of the statement's
    /// parameter names per parameter (quadratic in a statement of hundreds of them).
    pub(crate) fn values(&self, rows: usize, cols: usize) -> String {
        let mut sql = String::with_capacity(rows * cols * 5);
        for row in 0..rows {
            if row > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            self.push_params(&mut sql, cols, row * cols + 1);
            sql.push(')');
        }
        sql
    }

    /// `n` parameters separated by commas (for `IN (...)`), numbered from `first` where the
    /// database needs numbers (see [`Db::values`]).
    pub(crate) fn params_from(&self, n: usize, first: usize) -> String {
        let mut sql = String::with_capacity(n * 5);
        self.push_params(&mut sql, n, first);
        sql
    }

    /// Parameter number `i`, in the database's spelling (see [`Db::values`]).
    pub(crate) fn param(&self, i: usize) -> String {
        self.params_from(1, i)
    }

    /// Raises each charger's `upto` mark in `journal_projected` (see migrations 4 and 8) to
    /// the given row, never lowering it. (Its `last` column is no longer kept up: a charger
    /// new to the table gets the row in both.)
    pub(crate) async fn raise_journal_upto(
        &self,
        conn: &mut sqlx::AnyConnection,
        rows: &[(&str, i64)],
    ) -> Result<(), DbError> {
        for chunk in rows.chunks(MARKS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO journal_projected (charger, upto, last) VALUES {} {}",
                self.values(chunk.len(), 3),
                raise_upto!()
            );
            let mut q = sqlx::query(&sql);
            for (charger, id) in chunk {
                q = q.bind(*charger).bind(*id).bind(*id);
            }
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// [`Db::raise_journal_upto`] in a transaction of the in-place writer (see the `inline`
    /// module): one prepared single-row statement per charger.
    pub(crate) fn raise_journal_upto_in_place(
        tx: &rusqlite::Connection,
        rows: &[(&str, i64)],
    ) -> rusqlite::Result<()> {
        let mut raise = tx.prepare_cached(concat!(
            "INSERT INTO journal_projected (charger, upto, last) VALUES (?1, ?2, ?2) ",
            raise_upto!()
        ))?;
        for (charger, upto) in rows {
            raise.execute(rusqlite::params![charger, upto])?;
        }
        Ok(())
    }

    fn push_params(&self, sql: &mut String, n: usize, first: usize) {
        use std::fmt::Write as _;
        for i in 0..n {
            if i > 0 {
                sql.push_str(", ");
            }
            match self.backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    let _ = write!(sql, "${}", first + i);
                }
            }
        }
    }

    /// The largest event log id (0 when empty): ids are given out in memory from here.
    pub async fn max_event_id(&self) -> Result<i64, DbError> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS m FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("m")?)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn migrate(&self) -> Result<(), DbError> {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS ocpp_schema_version (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)",
        )
        .execute(&self.write)
        .await?;
        let row = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM ocpp_schema_version")
            .fetch_one(&self.write)
            .await?;
        let current: i64 = row.try_get("v")?;
        let id = match self.backend {
            Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Backend::Postgres => "BIGSERIAL PRIMARY KEY",
        };
        for (i, script) in MIGRATIONS.iter().enumerate() {
            let version = i as i64 + 1;
            if version <= current {
                continue;
            }
            let mut tx = self.begin_write().await?;
            for statement in script.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                if statement.starts_with('@') {
                    let Some(statements) = dialect_statements(statement, self.backend) else {
                        return Err(DbError::Corrupt {
                            column: "migration",
                            value: statement.to_owned(),
                        });
                    };
                    for statement in statements {
                        sqlx::raw_sql(statement).execute(&mut *tx).await?;
                    }
                    continue;
                }
                sqlx::query(&statement.replace("{ID}", id))
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("INSERT INTO ocpp_schema_version (version, applied_at) VALUES ($1, $2)")
                .bind(version)
                .bind(ts(Utc::now()))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(version, "database migration applied");
        }
        Ok(())
    }

    // ---------------------------------------------------------------- chargers

    /// Marks every charger disconnected (on start: no connection survives a restart).
    pub async fn all_disconnected(&self) -> Result<(), DbError> {
        sqlx::query("UPDATE chargers SET connected = 0")
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// The chargers marked connected, with the connection holding each (`<node>|<conn>`,
    /// `None` for rows written before it was recorded).
    pub async fn connected_owners(&self) -> Result<Vec<(String, Option<String>)>, DbError> {
        let rows = sqlx::query("SELECT identity, owner FROM chargers WHERE connected = 1")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("identity")?,
                    r.try_get::<Option<String>, _>("owner")?,
                ))
            })
            .collect()
    }

    /// Marks `identity` disconnected if connection `owner` still holds it (a node found its
    /// connection gone: the node died); whether it did.
    pub async fn disconnected_if(
        &self,
        identity: &str,
        owner: Option<&str>,
    ) -> Result<bool, DbError> {
        let done = sqlx::query(
            "UPDATE chargers SET connected = 0 WHERE identity = $1 AND connected = 1
             AND (owner = $2 OR (owner IS NULL AND $2 IS NULL))",
        )
        .bind(identity)
        .bind(owner)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Puts the event-log id sequence (PostgreSQL's `events_id_seq`) above every stored id
    /// (ids a single node gave out from memory do not advance it). A cluster node calls it
    /// at start, before [`Db::next_event_id`].
    pub async fn seed_event_ids(&self) -> Result<(), DbError> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        sqlx::query(
            "SELECT setval('events_id_seq', GREATEST((SELECT COALESCE(MAX(id), 0) FROM events),
             (SELECT last_value FROM events_id_seq), 1))",
        )
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The next event-log id from the database's sequence (PostgreSQL): unique across every
    /// node sharing the database, and in the order the nodes asked for them, so the log
    /// reads in time order across nodes.
    pub async fn next_event_id(&self) -> Result<i64, DbError> {
        let row = sqlx::query("SELECT nextval('events_id_seq') AS id")
            .fetch_one(&self.write)
            .await?;
        Ok(row.try_get("id")?)
    }

    /// Registers a charger (admitted when only known chargers may connect).
    pub async fn register_charger(&self, identity: &str) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO chargers (identity, registered) VALUES ($1, 1)
             ON CONFLICT (identity) DO UPDATE SET registered = 1",
        )
        .bind(identity)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Every charger ever seen or registered, by identity.
    pub async fn chargers(&self) -> Result<Vec<ChargerRow>, DbError> {
        let rows = sqlx::query(
            "SELECT identity, version, vendor, model, serial_number, firmware_version, boot_state,
             registered, connected, first_seen, last_seen, owner FROM chargers ORDER BY identity",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(charger_row).collect()
    }

    /// One charger.
    pub async fn charger(&self, identity: &str) -> Result<Option<ChargerRow>, DbError> {
        let row = sqlx::query(
            "SELECT identity, version, vendor, model, serial_number, firmware_version, boot_state,
             registered, connected, first_seen, last_seen, owner FROM chargers WHERE identity = $1",
        )
        .bind(identity)
        .fetch_optional(&self.pool)
        .await?;
        row.map(charger_row).transpose()
    }

    /// The identities registered by an operator.
    pub async fn registered_identities(&self) -> Result<Vec<String>, DbError> {
        let rows = sqlx::query("SELECT identity FROM chargers WHERE registered = 1")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("identity").map_err(DbError::from))
            .collect()
    }

    /// The last recorded statuses of a charger's connectors.
    pub async fn connectors(&self, charger: &str) -> Result<Vec<ConnectorRow>, DbError> {
        let rows = sqlx::query(
            "SELECT evse, connector, status, error_code, since FROM connectors WHERE charger = $1 ORDER BY evse, connector",
        )
        .bind(charger)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                let connector: i64 = r.try_get("connector")?;
                Ok(ConnectorRow {
                    evse: r.try_get("evse")?,
                    connector: (connector >= 0).then_some(connector),
                    status: r.try_get("status")?,
                    error_code: r.try_get("error_code")?,
                    since: parse_ts("connectors.since", r.try_get("since")?)?,
                })
            })
            .collect()
    }

    // ---------------------------------------------------------------- tokens

    /// Adds or changes an ID token.
    pub async fn upsert_token(
        &self,
        id_token: &str,
        status: &str,
        note: Option<&str>,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO id_tokens (id_token, status, note, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id_token) DO UPDATE SET status = $2, note = $3",
        )
        .bind(id_token)
        .bind(status)
        .bind(note)
        .bind(ts(Utc::now()))
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Removes an ID token; whether it existed.
    pub async fn delete_token(&self, id_token: &str) -> Result<bool, DbError> {
        let r = sqlx::query("DELETE FROM id_tokens WHERE id_token = $1")
            .bind(id_token)
            .execute(&self.write)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// One ID token.
    pub async fn token(&self, id_token: &str) -> Result<Option<TokenRow>, DbError> {
        let row = sqlx::query("SELECT id_token, status, note FROM id_tokens WHERE id_token = $1")
            .bind(id_token)
            .fetch_optional(&self.pool)
            .await?;
        row.map(token_row).transpose()
    }

    /// Every ID token.
    pub async fn tokens(&self) -> Result<Vec<TokenRow>, DbError> {
        let rows = sqlx::query("SELECT id_token, status, note FROM id_tokens ORDER BY id_token")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(token_row).collect()
    }

    // ---------------------------------------------------------------- sessions

    /// Records a started session (idempotent: a session already recorded for the same
    /// charger and transaction id is kept); returns its id.
    #[allow(clippy::too_many_arguments)]
    pub async fn session_started(
        &self,
        charger: &str,
        transaction_id: &str,
        evse: i64,
        connector: Option<i64>,
        id_token: Option<&str>,
        started_at: DateTime<Utc>,
        meter_start_wh: Option<Decimal>,
        currency: &str,
    ) -> Result<i64, DbError> {
        sqlx::query(
            "INSERT INTO sessions (charger, transaction_id, evse, connector, id_token, started_at,
             meter_start_wh, meter_last_wh, energy_wh, cost, currency, status)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, '0', '0', $8, 'active')
             ON CONFLICT (charger, transaction_id) DO NOTHING",
        )
        .bind(charger)
        .bind(transaction_id)
        .bind(evse)
        .bind(connector)
        .bind(id_token)
        .bind(ts(started_at))
        .bind(meter_start_wh.map(|d| d.to_string()))
        .bind(currency)
        .execute(&self.write)
        .await?;
        let row = sqlx::query("SELECT id FROM sessions WHERE charger = $1 AND transaction_id = $2")
            .bind(charger)
            .bind(transaction_id)
            .fetch_one(&self.write)
            .await?;
        Ok(row.try_get("id")?)
    }

    /// The session of `charger` with OCPP transaction id `transaction_id`.
    pub async fn session_by_transaction(
        &self,
        charger: &str,
        transaction_id: &str,
    ) -> Result<Option<SessionRow>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE charger = $1 AND transaction_id = $2"
        ))
        .bind(charger)
        .bind(transaction_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(session_row).transpose()
    }

    /// One session.
    pub async fn session(&self, id: i64) -> Result<Option<SessionRow>, DbError> {
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(session_row).transpose()
    }

    /// Sessions, newest first.
    pub async fn sessions(&self, filter: &SessionFilter) -> Result<Vec<SessionRow>, DbError> {
        let rows = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions
             WHERE ($1 = '' OR charger = $1) AND ($2 = '' OR status = $2)
             ORDER BY id DESC LIMIT $3"
        ))
        .bind(filter.charger.clone().unwrap_or_default())
        .bind(filter.status.clone().unwrap_or_default())
        .bind(if filter.limit > 0 { filter.limit } else { 100 })
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(session_row).collect()
    }

    /// A session's meter samples stored as rows of their own (by versions before the
    /// journal held them; see `Backend::samples`), in arrival order.
    pub async fn stored_samples(&self, session_id: i64) -> Result<Vec<SampleRow>, DbError> {
        let rows = sqlx::query(
            "SELECT timestamp, measurand, value, unit, phase, context FROM meter_values WHERE session_id = $1 ORDER BY id",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(SampleRow {
                    timestamp: parse_ts("meter_values.timestamp", r.try_get("timestamp")?)?,
                    measurand: r.try_get("measurand")?,
                    value: parse_dec("meter_values.value", r.try_get("value")?)?,
                    unit: r.try_get("unit")?,
                    phase: r.try_get("phase")?,
                    context: r.try_get("context")?,
                })
            })
            .collect()
    }

    /// The largest numeric transaction id issued so far (1.6 ids are central-issued integers
    /// and must not repeat after a restart).
    pub async fn max_numeric_transaction_id(&self) -> Result<i64, DbError> {
        // Filtered in Rust: 2.x ids are arbitrary text, and casting text differs per dialect.
        let rows = sqlx::query("SELECT transaction_id FROM sessions")
            .fetch_all(&self.pool)
            .await?;
        let mut max = 0i64;
        for r in rows {
            let id: String = r.try_get("transaction_id")?;
            // 1.6 ids are 32-bit; a 2.x charger's numeric text beyond that is not one.
            if let Ok(n) = id.parse::<i32>() {
                max = max.max(i64::from(n));
            }
        }
        Ok(max)
    }

    // ---------------------------------------------------------------- journal

    /// The next OCPP 1.6 transaction id, from the counter in the database: never reused,
    /// across restarts and across processes sharing the database. `None` once the ids of
    /// the 1.6 schema (a 32-bit integer) are exhausted.
    pub async fn next_transaction_id(&self) -> Result<Option<i32>, DbError> {
        let row =
            sqlx::query("UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value")
                .bind(TRANSACTION_ID_COUNTER)
                .fetch_one(&self.write)
                .await?;
        let value: i64 = row.try_get("value")?;
        Ok(i32::try_from(value).ok())
    }

    /// Creates the transaction id counter, above every numeric transaction id stored (a
    /// database from before the counter keeps its ids unique).
    async fn seed_transaction_ids(&self) -> Result<(), DbError> {
        let max = self.max_numeric_transaction_id().await?;
        sqlx::query(
            "INSERT INTO counters (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(TRANSACTION_ID_COUNTER)
        .bind(max)
        .execute(&self.write)
        .await?;
        sqlx::query("UPDATE counters SET value = $2 WHERE name = $1 AND value < $2")
            .bind(TRANSACTION_ID_COUNTER)
            .bind(max)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Sets a journal row aside: it could not be applied (kept, with why, for an operator).
    /// A row of the segment files is copied to `journal_aside`; one of the journal table is
    /// marked in place.
    pub async fn journal_set_aside(&self, row: &JournalRow, error: &str) -> Result<(), DbError> {
        if self.journal_file.as_ref().is_some_and(|f| f.holds(row.id)) {
            sqlx::query(
                "INSERT INTO journal_aside (id, charger, version, action, request, response, error, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (id) DO UPDATE SET error = excluded.error",
            )
            .bind(row.id)
            .bind(row.charger.as_str())
            .bind(row.version.as_str())
            .bind(row.action.as_str())
            .bind(row.request.as_str())
            .bind(row.response.as_str())
            .bind(error)
            .bind(ts(Utc::now()))
            .execute(&self.write)
            .await?;
            return Ok(());
        }
        sqlx::query("UPDATE journal SET processed = 2, error = $2 WHERE id = $1")
            .bind(row.id)
            .bind(error)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// The journal rows set aside, oldest first (at most `limit`).
    pub async fn journal_set_aside_rows(&self, limit: i64) -> Result<Vec<JournalRow>, DbError> {
        let mut rows = sqlx::query(
            "SELECT id, charger, version, action, request, response, error, session_id FROM journal WHERE processed = 2 ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.extend(
            sqlx::query(
                "SELECT id, charger, version, action, request, response, error,
                 CAST(NULL AS BIGINT) AS session_id FROM journal_aside ORDER BY id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&self.pool)
            .await?,
        );
        let mut rows = rows
            .into_iter()
            .map(journal_row)
            .collect::<Result<Vec<_>, _>>()?;
        rows.sort_unstable_by_key(|r| r.id);
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(rows)
    }

    /// The ids of the segment files' rows set aside after `after`.
    async fn journal_aside_ids(&self, after: i64) -> Result<HashSet<i64>, DbError> {
        let rows = sqlx::query("SELECT id FROM journal_aside WHERE id > $1")
            .bind(after)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(r.try_get::<i64, _>("id")?))
            .collect()
    }

    /// Each charger's journal projected up to (`journal_projected`).
    async fn journal_projected_marks(&self) -> Result<HashMap<String, i64>, DbError> {
        let rows = sqlx::query("SELECT charger, upto FROM journal_projected")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("charger")?,
                    r.try_get::<i64, _>("upto")?,
                ))
            })
            .collect()
    }

    /// The segment files' records after `after` that are not set aside and that `keep`
    /// keeps, as journal rows; read on a blocking thread (none without segment files).
    async fn journal_file_rows(
        &self,
        after: i64,
        mut keep: impl FnMut(&super::journal_file::Record) -> bool + Send + 'static,
    ) -> Result<Vec<JournalRow>, DbError> {
        let Some(file) = self.journal_file.clone() else {
            return Ok(Vec::new());
        };
        let aside = self.journal_aside_ids(after).await?;
        let records =
            on_blocking(move || file.scan_after(after, |r| !aside.contains(&r.id) && keep(r)))
                .await?;
        Ok(records.into_iter().map(|r| r.into_row(None)).collect())
    }

    /// `rows` (of the journal table) with the segment files' rows after `mark` that are not
    /// yet projected (after their charger's own mark) and, for cluster node `node`, its own
    /// or a single node's; by charger, then in order (callers without segment files need not
    /// read their mark for it).
    async fn with_unprojected_file_rows(
        &self,
        mut rows: Vec<JournalRow>,
        mark: i64,
        node: Option<String>,
    ) -> Result<Vec<JournalRow>, DbError> {
        let marks = self.journal_projected_marks().await?;
        rows.extend(
            self.journal_file_rows(mark, move |r| {
                node.as_deref()
                    .is_none_or(|node| r.node.as_deref().is_none_or(|n| n == node))
                    && r.id > marks.get(&r.charger).copied().unwrap_or(0)
            })
            .await?,
        );
        rows.sort_by(|a, b| (&a.charger, a.id).cmp(&(&b.charger, b.id)));
        Ok(rows)
    }

    /// How many sessions are active.
    pub async fn active_session_count(&self) -> Result<usize, DbError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM sessions WHERE status = 'active'")
            .fetch_one(&self.pool)
            .await?;
        let n: i64 = row.try_get("n")?;
        usize::try_from(n).map_err(|_| DbError::Corrupt {
            column: "sessions.status",
            value: format!("{n} active"),
        })
    }

    /// How many journal rows are set aside.
    pub async fn journal_set_aside_count(&self) -> Result<i64, DbError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM journal WHERE processed = 2)
                  + (SELECT COUNT(*) FROM journal_aside) AS n",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }

    /// Journal rows not yet projected, by charger and then in order: those after the
    /// journal's low-water mark (see `watermark.rs`) and after their charger's own mark
    /// (recent rows, or those of a charger whose projection failed since the last start).
    pub async fn journal_unprocessed(&self) -> Result<Vec<JournalRow>, DbError> {
        let rows = sqlx::query(
            "SELECT j.id, j.charger, j.version, j.action, j.request, j.response, j.error, j.session_id
             FROM journal j LEFT JOIN journal_projected p ON p.charger = j.charger
             WHERE j.id > (SELECT upto FROM journal_watermark WHERE id = 1)
             AND j.processed = 0 AND j.id > COALESCE(p.upto, 0) ORDER BY j.charger, j.id",
        )
        .fetch_all(&self.pool)
        .await?;
        let rows = rows
            .into_iter()
            .map(journal_row)
            .collect::<Result<Vec<_>, _>>()?;
        if self.journal_file.is_none() {
            return Ok(rows);
        }
        let mark = self.journal_mark().await?;
        self.with_unprojected_file_rows(rows, mark, None).await
    }

    /// [`Db::journal_unprocessed`] of one charger, whatever the low-water mark (a cluster
    /// node taking over a charger from a node that died: the rows that node answered and did
    /// not project).
    pub async fn journal_unprocessed_of(&self, charger: &str) -> Result<Vec<JournalRow>, DbError> {
        let rows = sqlx::query(
            "SELECT j.id, j.charger, j.version, j.action, j.request, j.response, j.error, j.session_id
             FROM journal j WHERE j.charger = $1 AND j.processed = 0
             AND j.id > COALESCE((SELECT upto FROM journal_projected WHERE charger = $1), 0)
             ORDER BY j.id",
        )
        .bind(charger)
        .fetch_all(&self.pool)
        .await?;
        let mut rows = rows
            .into_iter()
            .map(journal_row)
            .collect::<Result<Vec<_>, _>>()?;
        if self.journal_file.is_some() {
            let upto = self
                .journal_projected_marks()
                .await?
                .get(charger)
                .copied()
                .unwrap_or(0);
            let charger = charger.to_owned();
            rows.extend(
                self.journal_file_rows(upto, move |r| r.charger == charger)
                    .await?,
            );
        }
        Ok(rows)
    }

    /// The journal's low-water mark as stored: every row at or below it is projected or set
    /// aside (see `watermark.rs`).
    pub async fn journal_mark(&self) -> Result<i64, DbError> {
        let row = sqlx::query("SELECT upto FROM journal_watermark WHERE id = 1")
            .fetch_optional(&self.write)
            .await?;
        Ok(match row {
            Some(row) => row.try_get("upto")?,
            None => 0,
        })
    }

    /// Cluster node `node`'s journal low-water mark: every row that node wrote at or below
    /// it is projected or set aside. A node's first start begins at the shared mark (rows
    /// of a single node before it are replayed by it too).
    pub async fn journal_node_mark(&self, node: &str) -> Result<i64, DbError> {
        sqlx::query(
            "INSERT INTO journal_node_marks (node, upto)
             SELECT $1, upto FROM journal_watermark WHERE id = 1
             ON CONFLICT (node) DO NOTHING",
        )
        .bind(node)
        .execute(&self.write)
        .await?;
        let row = sqlx::query("SELECT upto FROM journal_node_marks WHERE node = $1")
            .bind(node)
            .fetch_optional(&self.write)
            .await?;
        Ok(match row {
            Some(row) => row.try_get("upto")?,
            None => 0,
        })
    }

    /// [`Db::journal_unprocessed`] of cluster node `node`: its own rows (and a single
    /// node's, which have none) after its mark. Another node's rows are its own to replay
    /// when it restarts, or the taking node's when one of its chargers reconnects elsewhere
    /// ([`Db::journal_unprocessed_of`]).
    pub async fn journal_unprocessed_node(&self, node: &str) -> Result<Vec<JournalRow>, DbError> {
        let rows = sqlx::query(
            "SELECT j.id, j.charger, j.version, j.action, j.request, j.response, j.error, j.session_id
             FROM journal j LEFT JOIN journal_projected p ON p.charger = j.charger
             WHERE j.id > (SELECT upto FROM journal_node_marks WHERE node = $1)
             AND (j.node = $1 OR j.node IS NULL)
             AND j.processed = 0 AND j.id > COALESCE(p.upto, 0) ORDER BY j.charger, j.id",
        )
        .bind(node)
        .fetch_all(&self.pool)
        .await?;
        let rows = rows
            .into_iter()
            .map(journal_row)
            .collect::<Result<Vec<_>, _>>()?;
        if self.journal_file.is_none() {
            return Ok(rows);
        }
        let mark = self.journal_node_mark(node).await?;
        self.with_unprojected_file_rows(rows, mark, Some(node.to_owned()))
            .await
    }

    /// The journal rows of a session (its transaction messages), in order.
    pub async fn session_journal(&self, session_id: i64) -> Result<Vec<JournalRow>, DbError> {
        let rows = sqlx::query(
            "SELECT j.id, j.charger, j.version, j.action, j.request, j.response, j.error, s.session_id
             FROM journal_sessions s JOIN journal j ON j.id = s.id
             WHERE s.session_id = $1 AND j.processed != 2 ORDER BY s.id",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?;
        let mut rows = rows
            .into_iter()
            .map(journal_row)
            .collect::<Result<Vec<_>, _>>()?;
        let Some(file) = self.journal_file.clone() else {
            return Ok(rows);
        };
        // The rows of the segment files: linked by id, read at their place.
        let links = sqlx::query(
            "SELECT s.id FROM journal_sessions s
             WHERE s.session_id = $1 AND NOT EXISTS (SELECT 1 FROM journal_aside a WHERE a.id = s.id)
             ORDER BY s.id",
        )
        .bind(session_id)
        .fetch_all(&self.pool)
        .await?;
        let ids = links
            .iter()
            .map(|r| r.try_get::<i64, _>("id"))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|&id| file.holds(id))
            .collect::<Vec<_>>();
        if ids.is_empty() {
            return Ok(rows);
        }
        let records = on_blocking(move || file.read(&ids)).await?;
        rows.extend(records.into_iter().map(|r| r.into_row(Some(session_id))));
        Ok(rows)
    }

    // ---------------------------------------------------------------- event log

    /// The latest `limit` log entries (optionally of one charger), newest first.
    pub async fn events(
        &self,
        charger: Option<&str>,
        limit: i64,
    ) -> Result<Vec<EventRow>, DbError> {
        let rows = sqlx::query(
            "SELECT id, at, charger, kind, detail FROM events WHERE ($1 = '' OR charger = $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(charger.unwrap_or_default())
        .bind(limit.max(1))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(EventRow {
                    id: r.try_get("id")?,
                    at: parse_ts("events.at", r.try_get("at")?)?,
                    charger: r.try_get("charger")?,
                    kind: r.try_get("kind")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}

/// Pages of write-ahead log after which the SQLite writer checkpoints in its own commit:
/// a backstop (160 MB) for when [`Db::checkpoint`] is not run; SQLite's default is 1,000
/// pages, which puts a checkpoint (and its fsync) into a commit every 4 MB.
const WRITER_AUTOCHECKPOINT: u32 = 40_000;

/// Frames (pages) in the SQLite write-ahead log above which [`Db::checkpoint`] finishes
/// with a checkpoint that starts the log again (about 16 MB). That checkpoint holds every
/// write for its fsyncs (6 to 30 ms measured under an open network of 10,000 chargers in
/// transactions, where it comes every second: the MeterValues p99, BENCHMARKS.md section 9).
/// A larger log is worse, not better: at 256 MB the passive checkpoint's fsync of the long
/// log stalled the writer's commits for over a second.
const RESTART_FRAMES: i64 = 4_000;

/// [`RESTART_FRAMES`], or the number in the environment variable
/// `OCPP_SQLITE_RESTART_FRAMES` (a tuning knob for the load benchmark; at least 1,000).
fn restart_frames() -> i64 {
    static FRAMES: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *FRAMES.get_or_init(|| {
        std::env::var("OCPP_SQLITE_RESTART_FRAMES")
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map_or(RESTART_FRAMES, |n| n.max(1_000))
    })
}

/// The options of a pool of `max` connections; `writer`: the SQLite writer's.
fn pool_options(backend: Backend, max: u32, writer: bool) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        // An embedded database's connection cannot go stale: no ping (a round trip to its
        // thread) before each use.
        .test_before_acquire(backend == Backend::Postgres)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // With WAL, NORMAL syncs at checkpoints: a killed process loses nothing
                    // committed (only a power cut may lose the last commits).
                    sqlx::query("PRAGMA synchronous=NORMAL")
                        .execute(&mut *conn)
                        .await?;
                    // Statement journals (a multi-row statement's undo log) in memory, not
                    // in a temporary file; and an 8 MiB page cache per connection (the
                    // default is 2 MiB), so the indexes' hot pages are not read again.
                    sqlx::query("PRAGMA temp_store=MEMORY")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA cache_size=-8192")
                        .execute(&mut *conn)
                        .await?;
                    if writer {
                        sqlx::query(&format!(
                            "PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT}"
                        ))
                        .execute(&mut *conn)
                        .await?;
                    }
                }
                Ok(())
            })
        })
}

/// Where [`Db::open`] connects: sqlx's URL, the database, the pool's size and, for a SQLite
/// file, its path (for the in-place writer's connection).
struct Target {
    url: String,
    backend: Backend,
    max: u32,
    file: Option<String>,
}

fn normalize(url: &str) -> Result<Target, DbError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target {
            url: url.to_owned(),
            backend: Backend::Postgres,
            max: 8,
            file: None,
        });
    }
    if url == "sqlite::memory:" || url == ":memory:" {
        // One connection: every connection to `:memory:` is a database of its own.
        return Ok(Target {
            url: "sqlite::memory:".to_owned(),
            backend: Backend::Sqlite,
            max: 1,
            file: None,
        });
    }
    let path = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if url.contains("://") {
        return Err(DbError::UnsupportedUrl(url.to_owned()));
    } else {
        url
    };
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, q.to_owned()),
        None => (path, String::new()),
    };
    if path.is_empty() {
        return Err(DbError::UnsupportedUrl(url.to_owned()));
    }
    let query = if query.contains("mode=") {
        query
    } else if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(Target {
        url: format!("sqlite://{path}?{query}"),
        backend: Backend::Sqlite,
        max: 4,
        file: Some(path.to_owned()),
    })
}

/// Runs `f` (the journal's segment files read) on a blocking thread.
async fn on_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DbError> + Send + 'static,
) -> Result<T, DbError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DbError::JournalFile {
            path: "journal".to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?
}

fn journal_row(r: AnyRow) -> Result<JournalRow, DbError> {
    Ok(JournalRow {
        id: r.try_get("id")?,
        charger: r.try_get("charger")?,
        version: r.try_get("version")?,
        action: r.try_get("action")?,
        request: r.try_get("request")?,
        response: r.try_get("response")?,
        error: r.try_get("error")?,
        session_id: r.try_get("session_id")?,
    })
}

fn charger_row(r: AnyRow) -> Result<ChargerRow, DbError> {
    Ok(ChargerRow {
        identity: r.try_get("identity")?,
        version: r.try_get("version")?,
        vendor: r.try_get("vendor")?,
        model: r.try_get("model")?,
        serial_number: r.try_get("serial_number")?,
        firmware_version: r.try_get("firmware_version")?,
        boot_state: r.try_get("boot_state")?,
        registered: r.try_get::<i64, _>("registered")? != 0,
        connected: r.try_get::<i64, _>("connected")? != 0,
        first_seen: opt("chargers.first_seen", r.try_get("first_seen")?, parse_ts)?,
        last_seen: opt("chargers.last_seen", r.try_get("last_seen")?, parse_ts)?,
        owner: r.try_get("owner")?,
    })
}

fn token_row(r: AnyRow) -> Result<TokenRow, DbError> {
    Ok(TokenRow {
        id_token: r.try_get("id_token")?,
        status: r.try_get("status")?,
        note: r.try_get("note")?,
    })
}

pub(crate) fn session_row(r: AnyRow) -> Result<SessionRow, DbError> {
    Ok(SessionRow {
        id: r.try_get("id")?,
        charger: r.try_get("charger")?,
        transaction_id: r.try_get("transaction_id")?,
        evse: r.try_get("evse")?,
        connector: r.try_get("connector")?,
        id_token: r.try_get("id_token")?,
        started_at: parse_ts("sessions.started_at", r.try_get("started_at")?)?,
        ended_at: opt("sessions.ended_at", r.try_get("ended_at")?, parse_ts)?,
        meter_start_wh: opt(
            "sessions.meter_start_wh",
            r.try_get("meter_start_wh")?,
            parse_dec,
        )?,
        meter_last_wh: opt(
            "sessions.meter_last_wh",
            r.try_get("meter_last_wh")?,
            parse_dec,
        )?,
        energy_wh: parse_dec("sessions.energy_wh", r.try_get("energy_wh")?)?,
        power_w: opt("sessions.power_w", r.try_get("power_w")?, parse_dec)?,
        stop_reason: r.try_get("stop_reason")?,
        cost: parse_dec("sessions.cost", r.try_get("cost")?)?,
        currency: r.try_get("currency")?,
        status: r.try_get("status")?,
    })
}
