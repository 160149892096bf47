//! The central system's backend: persistence, HTTP API, dashboard and metrics around the
//! ocpp-central server.
//!
//! [`Backend`] is the application the ocpp-central [`Server`](ocpp_central::Server) calls:
//! it answers authorization from the ID token table, issues 1.6 transaction ids that never
//! repeat across restarts, and turns the version-neutral [`Event`]s into database rows (chargers,
//! connector statuses, sessions with meter values and cost, an event log), Prometheus metrics
//! and a live feed for the dashboard. [`api::router`] serves all of it over HTTP.

pub mod api;
pub mod auth;
mod auth_api;
pub mod balancer;
pub mod cluster;
pub mod db;
pub mod http;
mod inline;
mod journal;
mod journal_file;
pub mod metrics;
pub mod run;
pub mod secrets;
pub mod sites;
pub mod sites_api;
pub mod tariff;
mod watermark;
mod writer;
// Certificates: the CA and the chargers' certificates, their routes.
mod certs_api;
pub mod pki;
// Reservations and local lists (reservations.rs, local_list.rs, reservations_api.rs).
pub mod local_list;
pub mod reservations;
pub mod reservations_api;
// Firmware rollouts and log uploads (firmware.rs, uploads.rs, firmware_api.rs).
pub mod firmware;
pub mod firmware_api;
pub mod uploads;
// The device model, configuration and monitoring (device_model.rs, device_model_api.rs).
pub mod device_model;
pub mod device_model_api;
// Display messages, customer information and the running cost (display.rs, customers.rs,
// cost.rs, display_api.rs).
pub mod cost;
pub mod customers;
pub mod display;
pub mod display_api;
// Signed meter values (signed.rs, signed_api.rs).
pub mod signed;
pub mod signed_api;
// Periodic event streams (streams.rs, streams_api.rs).
pub mod streams;
pub mod streams_api;
// DER control (der.rs).
pub mod der;
// OCPP 2.1 tariffs and the sessions' cost by them (tariffs.rs, tariffs_api.rs).
pub mod tariffs;
pub mod tariffs_api;
// Driver accounts, the billing ledger and payments (accounts.rs, accounts_api.rs, ledger.rs,
// payments.rs).
pub mod accounts;
pub mod accounts_api;
pub mod alerts;
// The session rules operators and drivers share (signin.rs).
pub mod analytics;
pub mod analytics_api;
pub mod signin;
// Receipts and invoices as PDF (pdf.rs).
pub mod ledger;
pub mod payments;
pub mod pdf;
// What drivers search (connector specs, site locations) and its routes (catalog.rs,
// catalog_api.rs).
pub mod catalog;
pub mod catalog_api;

use std::collections::{HashMap, HashSet, VecDeque};
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use futures::FutureExt;
use ocpp_central::ocpp_types::{v16, v201, v21, Version};
use ocpp_central::{
    async_trait, AnyRequest, AnyResponse, CallFailure, ChargerHandle, ChargerState, Chargers,
    Defaults, Event, HandleV16, HandleV201, HandleV21, Handler, MeterSample, Transaction,
};

/// Whether `request` is journaled before it is answered: the transaction messages (1.6
/// MeterValues only with a transaction id: the others are not stored). The handlers below
/// journal exactly these; the projection settles their rows by the same rule.
fn journaled(request: &AnyRequest) -> bool {
    match request {
        AnyRequest::V16(q) => match q {
            v16::AnyRequest::StartTransaction(_) | v16::AnyRequest::StopTransaction(_) => true,
            v16::AnyRequest::MeterValues(m) => m.transaction_id.is_some(),
            _ => false,
        },
        AnyRequest::V201(q) => matches!(q, v201::AnyRequest::TransactionEvent(_)),
        AnyRequest::V21(q) => matches!(q, v21::AnyRequest::TransactionEvent(_)),
        _ => false,
    }
}
use rust_decimal::Decimal;
use serde::Serialize;
use tokio::sync::broadcast;

pub use db::{Db, DbError};
pub use metrics::Metrics;
pub use tariff::Tariff;

/// What to answer for an ID token that is not in the token table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UnknownTokens {
    /// Accept it (a demo network, or a charger doing its own authorization).
    Accept,
    /// Answer `Invalid`.
    Reject,
}

/// One entry of the live feed (`GET /api/events`, server-sent events), also stored in the
/// event log (except heartbeats).
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveEvent {
    /// Event log id (0 for entries not stored, e.g. heartbeats).
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// The charger.
    pub charger: String,
    /// `connected`, `booted`, `heartbeat`, `status`, `authorized`, `transaction_started`,
    /// `transaction_updated`, `transaction_ended`, `refused`, `disconnected`, ...
    pub kind: String,
    /// Details of the event.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// A journal row answered and not yet projected.
#[derive(Debug, Clone, Copy)]
struct Journaled {
    id: i64,
    action: &'static str,
}

/// Open sessions a connection remembers at most in [`Conn::sessions`] (the oldest is
/// forgotten first, and found again through [`Backend`]'s map of open sessions).
const CONN_SESSIONS: usize = 16;

/// What the backend keeps per connection, in the connection's own slot
/// ([`ChargerHandle::app_data`]): a journaled message finds it without looking its charger
/// up in a map shared by every connection (each such lookup misses the cache at a
/// thousand chargers).
#[derive(Debug, Default)]
struct Conn {
    /// Journal rows written and answered on this connection, not yet projected (bounded by
    /// the journal's queue: a message waits for its row, and its projection follows it).
    journaled: Mutex<VecDeque<Journaled>>,
    /// Session row ids of transactions open on this connection, by transaction id: the
    /// last [`CONN_SESSIONS`] found, a cache of [`Backend`]'s map of open sessions.
    sessions: Mutex<VecDeque<(String, i64)>>,
}

impl Conn {
    /// This connection's data.
    fn of(charger: &ChargerHandle) -> Option<&Conn> {
        charger.app_data(Conn::default)
    }

    fn session(&self, transaction: &str) -> Option<i64> {
        lock(&self.sessions)
            .iter()
            .find(|(t, _)| t == transaction)
            .map(|(_, s)| *s)
    }

    fn remember(&self, transaction: &str, session: i64) {
        let mut sessions = lock(&self.sessions);
        if sessions.len() >= CONN_SESSIONS {
            sessions.pop_front();
        }
        sessions.push_back((transaction.to_owned(), session));
    }

    fn forget(&self, transaction: &str) {
        lock(&self.sessions).retain(|(t, _)| t != transaction);
    }
}

/// The application behind the central system.
pub struct Backend {
    db: Db,
    chargers: Chargers,
    tariff: Tariff,
    metrics: Metrics,
    unknown_tokens: UnknownTokens,
    live: broadcast::Sender<LiveEvent>,
    /// Session row id of each transaction open on this process, by charger and transaction.
    open: Mutex<HashMap<String, HashMap<String, i64>>>,
    /// Chargers whose projection failed: their journal is not marked projected further (the
    /// next start replays it from the mark).
    stalled: Mutex<HashSet<String>>,
    last_seen_written: Mutex<HashMap<String, DateTime<Utc>>>,
    known: Arc<RwLock<HashSet<String>>>,
    writer: writer::Writer,
    journal: journal::Journal,
    /// The database's checkpoints, off the writer's commits (stop with the backend).
    _checkpoints: db::Checkpoints,
    event_ids: std::sync::atomic::AtomicI64,
    /// Charger passwords (hashes) and the handshake's authenticator over them.
    passwords: Arc<secrets::Passwords>,
    /// Sites and their load balancer.
    sites: Arc<sites::Sites>,
    /// Journal rows not yet marked projected: the journal's low-water mark.
    pending: Arc<watermark::Pending>,
    /// The certificate authority and the chains waiting to go out ([`pki`]).
    certs: pki::Certs,
    /// Reservations ([`reservations`]).
    reservations: Arc<reservations::Reservations>,
    /// The chargers' local lists ([`local_list`]).
    local_lists: Arc<local_list::LocalLists>,
    /// Firmware images and rollouts ([`firmware`]).
    firmware: Arc<firmware::Firmware>,
    /// Log requests and uploaded files ([`uploads`]).
    uploads: Arc<uploads::Uploads>,
    /// The device model, desired configuration and monitoring ([`device_model`]).
    device_model: Arc<device_model::DeviceModel>,
    /// Display messages ([`display`]), customer information ([`customers`]) and the
    /// running cost's settings ([`cost`]).
    displays: Arc<display::Displays>,
    customers: Arc<customers::Customers>,
    costs: cost::Costs,
    /// Signed meter values and meter keys ([`signed`]).
    signed: Arc<signed::Signed>,
    /// Periodic event streams and their samples ([`streams`]).
    streams: Arc<streams::Streams>,
    /// DER events ([`der`]).
    der: Arc<der::Der>,
    /// 2.1 tariffs, assignments and session costs ([`tariffs`]).
    tariffs: tariffs::Tariffs,
    /// The cluster this node is part of, when it is ([`cluster`]); a single node without.
    cluster: std::sync::OnceLock<ClusterNode>,
    /// Driver accounts, their tokens and fleets ([`accounts`]).
    accounts: Arc<accounts::Accounts>,
    /// Billing: the ledger, payments and the provider ([`payments`]); replaced by
    /// [`Backend::set_billing`].
    billing: RwLock<payments::Billing>,
    /// Woken when a session ends (billing settles it).
    session_ended: Arc<tokio::sync::Notify>,
    /// Health alerts and their webhook ([`alerts`]); replaced by [`Backend::set_alerts`].
    alerts: RwLock<Arc<alerts::Alerts>>,
}

/// A node's part of the cluster: the broker and how long routed requests may take.
struct ClusterNode {
    cluster: Arc<dyn cluster::Cluster>,
    /// How long a routed API request may take (the call timeout and some margin).
    route_timeout: std::time::Duration,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("db", &self.db.backend())
            .field("tariff", &self.tariff)
            .field("unknown_tokens", &self.unknown_tokens)
            .finish_non_exhaustive()
    }
}

/// How often `last_seen` of a charger is written for heartbeats alone.
const LAST_SEEN_EVERY: chrono::Duration = chrono::Duration::seconds(60);

impl Backend {
    /// A backend on `db`, sharing `chargers` with the OCPP server. Starts its database
    /// writer task on the current tokio runtime.
    pub async fn new(
        db: Db,
        chargers: Chargers,
        tariff: Tariff,
        metrics: Metrics,
        unknown_tokens: UnknownTokens,
    ) -> Result<Backend, DbError> {
        let (live, _) = broadcast::channel(1024);
        let first_event = db.max_event_id().await?;
        let passwords = Arc::new(secrets::Passwords::load(db.clone()).await?);
        let sites = sites::Sites::start(
            db.clone(),
            chargers.clone(),
            sites::BalancerConfig::default(),
        )
        .await?;
        let pending = Arc::new(watermark::Pending::new(db.journal_mark().await?));
        let displays = display::Displays::new(db.clone());
        let tariffs = tariffs::Tariffs::load(db.clone())
            .await
            .map_err(|e| match e {
                tariffs::TariffsError::Db(e) => e,
                other => DbError::Corrupt {
                    column: "tariffs",
                    value: other.to_string(),
                },
            })?;
        let accounts =
            accounts::Accounts::new(db.clone(), auth::AuthConfig::new()).map_err(|e| {
                DbError::Corrupt {
                    column: "driver_accounts",
                    value: e.to_string(),
                }
            })?;
        let billing = RwLock::new(payments::Billing::new(
            db.clone(),
            accounts.clone(),
            Arc::new(payments::LocalProvider::new()),
            payments::BillingConfig::default(),
        ));
        Ok(Backend {
            session_ended: Arc::new(tokio::sync::Notify::new()),
            billing,
            alerts: RwLock::new(alerts::Alerts::new(
                db.clone(),
                alerts::AlertConfig::default(),
            )),
            accounts,
            tariffs,
            customers: customers::Customers::new(db.clone(), displays.clone()),
            displays,
            costs: cost::Costs::default(),
            signed: signed::Signed::new(db.clone()),
            streams: streams::Streams::new(db.clone()),
            der: der::Der::new(db.clone()),
            passwords,
            sites,
            certs: pki::Certs::default(),
            reservations: reservations::Reservations::new(db.clone()),
            firmware: firmware::Firmware::new(db.clone()),
            uploads: uploads::Uploads::new(db.clone()),
            device_model: device_model::DeviceModel::new(db.clone(), metrics.clone()),
            local_lists: local_list::LocalLists::load(db.clone(), chargers.clone()).await?,
            writer: writer::Writer::start(db.clone(), metrics.clone(), pending.clone()),
            journal: journal::Journal::start(db.clone(), pending.clone(), metrics.clone()),
            pending,
            _checkpoints: db.start_checkpoints(),
            event_ids: std::sync::atomic::AtomicI64::new(first_event),
            db,
            chargers,
            tariff,
            metrics,
            unknown_tokens,
            live,
            open: Mutex::new(HashMap::new()),
            last_seen_written: Mutex::new(HashMap::new()),
            known: Arc::new(RwLock::new(HashSet::new())),
            stalled: Mutex::new(HashSet::new()),
            cluster: std::sync::OnceLock::new(),
        })
    }

    /// Waits until every charger, connector and event-log write queued so far is in the
    /// database (the API calls it before reading those tables: read your writes).
    pub async fn flush(&self) {
        self.writer.flush().await;
    }

    /// Journals a transaction message and its answer before the answer goes out. If the
    /// journal cannot be written the charger gets `InternalError` and sends the message
    /// again later (it stays in its outbox): nothing is acknowledged that is not stored.
    /// The request is stored as the charger sent it (the payload's own text, byte for
    /// byte), the answer serialized once, here, from its typed value; a request the codec
    /// repaired before decoding it is stored as its typed value's encoding (what decodes
    /// again at recovery). The row is linked to its session when it is projected
    /// (`journal_sessions`, by the write-behind).
    async fn journal<Q: ocpp_central::ocpp_types::Request>(
        &self,
        charger: &ChargerHandle,
        request: &Q,
        response: &Q::Response,
    ) -> Result<(), CallFailure> {
        let encode = |e: serde_json::Error| CallFailure::internal(format!("encoding: {e}"));
        let as_sent = ocpp_central::with_incoming_call(|call| {
            call.filter(|c| c.action() == Q::ACTION && !c.repaired())
                .map(|c| c.payload().to_owned())
        });
        let request = match as_sent {
            Some(text) => text,
            None => serde_json::to_string(request).map_err(encode)?,
        };
        let entry = journal::Entry {
            charger: charger.identity().to_owned(),
            version: charger.version().as_str(),
            action: Q::ACTION,
            request,
            response: serde_json::to_string(response).map_err(encode)?,
        };
        let Some(conn) = Conn::of(charger) else {
            return Err(CallFailure::internal(
                "the connection's data slot holds another type",
            ));
        };
        let id = self.journal.insert(entry).await.map_err(|e| {
            tracing::error!("database write (journal) failed: {e}");
            self.metrics.error("database", "journal");
            CallFailure::internal("the central system could not store the message; send it again")
        })?;
        lock(&conn.journaled).push_back(Journaled {
            id,
            action: Q::ACTION,
        });
        Ok(())
    }

    /// The journal rows the projection of `request` settles: its own row and any earlier row
    /// of the same action that produced no projection, taken off the charger's pending queue.
    /// Messages are answered, applied and projected in order on one connection, so the
    /// oldest pending row of the action is this request's.
    fn journal_rows_of(conn: Option<&Conn>, request: &AnyRequest) -> Vec<Journaled> {
        let Some(conn) = conn.filter(|_| journaled(request)) else {
            return Vec::new();
        };
        let action = request.action();
        let mut queue = lock(&conn.journaled);
        let Some(pos) = queue.iter().position(|j| j.action == action) else {
            return Vec::new();
        };
        queue.drain(..=pos).collect()
    }

    /// Links the projected rows `ids` to their session and marks the charger's journal
    /// projected up to `upto` (after the projection's writes, in the same write-behind queue:
    /// see `writer`).
    ///
    /// `lazy`: the projection's own deferred writes (a session's progress), queued first, with
    /// the link and the mark in one entry of the write-behind's queue.
    async fn journal_projected(
        &self,
        charger: &str,
        upto: i64,
        ids: Vec<i64>,
        session: Option<i64>,
        mut lazy: Vec<writer::Write>,
    ) {
        let marked = !lock(&self.stalled).contains(charger);
        // A meter update (its session's progress alone): one write for the three.
        let lone = matches!(
            lazy.as_slice(),
            [writer::Write::SessionProgress(p)] if session == Some(p.session_id)
        );
        if let Some(writer::Write::SessionProgress(progress)) = lone.then(|| lazy.pop()).flatten() {
            let projected = writer::Write::Projected {
                progress,
                ids,
                upto: marked.then_some(upto),
            };
            self.writer.write(projected).await;
            return;
        }
        if let Some(session_id) = session {
            if !ids.is_empty() {
                lazy.push(writer::Write::JournalSession {
                    charger: charger.to_owned(),
                    session_id,
                    ids,
                });
            }
        }
        if marked {
            lazy.push(writer::Write::JournalDone {
                charger: charger.to_owned(),
                upto,
            });
        }
        self.writer.write_all(lazy).await;
    }

    /// A session's meter samples: those stored as rows (before the journal held them) and
    /// those of its journal rows, read through the same projector as live
    /// ([`ChargerState::apply`]); a sample sent twice (a message repeated) counts once.
    /// Rows are linked to their session by the write-behind: its queue is flushed first, so
    /// every message projected so far is read.
    pub async fn samples(&self, session_id: i64) -> Result<Vec<db::SampleRow>, DbError> {
        self.writer.flush().await;
        self.samples_flushed(session_id).await
    }

    /// [`Backend::samples`] for a caller that flushed the write-behind itself (once, before
    /// reading many sessions).
    pub(crate) async fn samples_flushed(
        &self,
        session_id: i64,
    ) -> Result<Vec<db::SampleRow>, DbError> {
        let mut out = self.db.stored_samples(session_id).await?;
        let limits = ocpp_central::Limits::default();
        for row in self.db.session_journal(session_id).await? {
            let Ok(version) = row.version.parse::<Version>() else {
                continue;
            };
            let request = AnyRequest::from_json(version, &row.action, &row.request);
            let response = AnyResponse::from_json(version, &row.action, &row.response);
            let (Ok(request), Ok(response)) = (request, response) else {
                continue;
            };
            let request = Arc::new(request);
            let mut state = ChargerState::new(row.charger.clone(), version, Utc::now());
            let mut events = Vec::new();
            state.apply(&request, &response, Utc::now(), &limits, &mut events);
            for event in &events {
                if let Event::TransactionStarted { samples, .. }
                | Event::TransactionUpdated { samples, .. }
                | Event::TransactionEnded { samples, .. }
                | Event::MeterValues { samples, .. } = event
                {
                    // A 1.6 SignedData sample has no number: its data is in the session's
                    // signed values (signed.rs).
                    out.extend(samples.iter().filter(|s| s.has_value()).map(sample_row));
                }
            }
        }
        let mut seen = HashSet::new();
        out.retain(|s| {
            seen.insert((
                s.timestamp,
                s.measurand.clone(),
                s.phase.clone(),
                s.context.clone(),
            ))
        });
        Ok(out)
    }

    /// Projects the journal rows a crash left unprojected (answered, but not yet in the
    /// sessions) through the same pure projector as live ([`ChargerState::apply`]), seeded
    /// per charger with its active sessions: the same model, the same events, the same
    /// projection. Idempotent. A row that cannot be applied (unreadable, or its projection
    /// panics) is set aside (kept with why, logged, counted on `/metrics`, listed by the API)
    /// and recovery goes on; a database error stops it (start fails, nothing is marked done).
    pub async fn recover(&self) -> Result<Recovery, DbError> {
        let rows = match self.pending.node() {
            Some(node) => self.db.journal_unprocessed_node(&node).await?,
            None => self.db.journal_unprocessed().await?,
        };
        let report = self.replay(rows).await?;
        if report.replayed > 0 || report.set_aside > 0 {
            tracing::warn!(
                replayed = report.replayed,
                set_aside = report.set_aside,
                "journal: transaction messages left over by a crash"
            );
        }
        self.metrics
            .journal_set_aside(self.db.journal_set_aside_count().await?);
        Ok(report)
    }

    /// Projects unprojected journal rows (ordered by charger, then id): see
    /// [`Backend::recover`].
    async fn replay(&self, rows: Vec<db::JournalRow>) -> Result<Recovery, DbError> {
        // All of them before any is settled (ids ascending), so the low-water mark cannot
        // pass a row that is yet to be replayed.
        let mut ids: Vec<(&str, i64)> = rows.iter().map(|r| (r.charger.as_str(), r.id)).collect();
        ids.sort_unstable_by_key(|&(_, id)| id);
        self.pending.register(ids);
        let mut report = Recovery::default();
        let limits = ocpp_central::Limits::default();
        let mut i = 0;
        while i < rows.len() {
            let charger = rows[i].charger.clone();
            let end = rows[i..]
                .iter()
                .position(|r| r.charger != charger)
                .map_or(rows.len(), |n| i + n);
            let group = &rows[i..end];
            i = end;
            let Ok(version) = group[0].version.parse::<Version>() else {
                for row in group {
                    let why = format!("unknown OCPP version {:?}", row.version);
                    self.set_aside(row, &why, &mut report).await?;
                }
                continue;
            };
            let mut state = ChargerState::new(charger.clone(), version, Utc::now());
            for tx in self.active_transactions(&charger).await {
                state.restore_transaction(tx, &limits);
            }
            let (handle, _commands) = ChargerHandle::new(state.clone(), Defaults::default());
            for row in group {
                let request = AnyRequest::from_json(version, &row.action, &row.request);
                let response = AnyResponse::from_json(version, &row.action, &row.response);
                let (request, response) = match (request, response) {
                    (Ok(q), Ok(r)) => (Arc::new(q), r),
                    (Err(e), _) | (_, Err(e)) => {
                        let why = format!("stored message unreadable: {e}");
                        self.set_aside(row, &why, &mut report).await?;
                        continue;
                    }
                };
                let mut events = Vec::new();
                let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    state.apply(&request, &response, Utc::now(), &limits, &mut events)
                }));
                if applied.is_err() {
                    self.set_aside(row, "applying it to the model panicked", &mut report)
                        .await?;
                    continue;
                }
                let mut failed = None;
                let mut session = row.session_id;
                let mut lazy = Vec::new();
                for event in &events {
                    let projected =
                        std::panic::AssertUnwindSafe(self.project(&handle, event, &mut lazy))
                            .catch_unwind()
                            .await;
                    match projected {
                        Ok(Ok(s)) => session = session.or(s),
                        Ok(Err(e)) => {
                            self.writer.write_all(lazy).await;
                            return Err(e);
                        }
                        Err(_) => {
                            failed = Some("storing its projection panicked");
                            break;
                        }
                    }
                }
                if let Some(why) = failed {
                    self.writer.write_all(lazy).await;
                    self.set_aside(row, why, &mut report).await?;
                    continue;
                }
                // Linked and marked projected once its projection is stored (the writer keeps
                // the order).
                self.journal_projected(&charger, row.id, vec![row.id], session, lazy)
                    .await;
                report.replayed += 1;
            }
        }
        self.writer.flush().await;
        Ok(report)
    }

    /// The transactions of `identity` active in the database (seeded into its new session),
    /// remembered as open here.
    async fn active_transactions(&self, identity: &str) -> Vec<Transaction> {
        // Sessions are projected behind; read them once the queue so far is written.
        self.writer.flush().await;
        let filter = db::SessionFilter {
            charger: Some(identity.to_owned()),
            status: Some("active".into()),
            limit: 1000,
        };
        let rows = match self.db.sessions(&filter).await {
            Ok(rows) => rows,
            Err(e) => {
                self.db_failed("restore sessions", &e);
                return Vec::new();
            }
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let connector = ocpp_central::ConnectorRef {
                evse: i32::try_from(row.evse).unwrap_or(0),
                connector: row.connector.and_then(|c| i32::try_from(c).ok()),
            };
            let mut tx = Transaction::new(row.transaction_id.clone(), connector, row.started_at);
            tx.id_token = row.id_token.clone();
            tx.meter_start_wh = row.meter_start_wh;
            tx.meter_last_wh = row.meter_last_wh;
            tx.energy_wh = row.energy_wh;
            tx.power_w = row.power_w;
            lock(&self.open)
                .entry(identity.to_owned())
                .or_default()
                .insert(row.transaction_id, row.id);
            out.push(tx);
        }
        out
    }

    async fn set_aside(
        &self,
        row: &db::JournalRow,
        why: &str,
        report: &mut Recovery,
    ) -> Result<(), DbError> {
        tracing::error!(
            charger = row.charger,
            row = row.id,
            action = row.action,
            "journal row set aside: {why}"
        );
        self.db.journal_set_aside(row, why).await?;
        report.set_aside += 1;
        Ok(())
    }

    /// Admits `identity` when only known chargers may connect.
    pub fn admit(&self, identity: &str) {
        self.known
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(identity.to_owned());
    }

    /// The server's admission policy for "known chargers only": the identities registered in
    /// the database (through the API) or admitted with [`Backend::admit`], checked live.
    pub fn known_only_admission(&self) -> ocpp_central::Admission {
        let known = self.known.clone();
        ocpp_central::Admission::Custom(Arc::new(move |id: &str| {
            known.read().map(|k| k.contains(id)).unwrap_or(false)
        }))
    }

    /// Records a central call's outcome in the event log and the live feed.
    pub async fn log_call(&self, charger: &str, action: &str, status: Option<&str>) {
        let detail = serde_json::json!({ "action": action, "status": status });
        self.record(charger, "call", detail, true).await;
    }

    /// The chargers' passwords ([`secrets`]).
    pub fn passwords(&self) -> &Arc<secrets::Passwords> {
        &self.passwords
    }

    /// Stores a security event a charger reported and shows it on the live feed.
    async fn security_event(
        &self,
        charger: &str,
        kind: &str,
        at: DateTime<Utc>,
        tech_info: Option<&str>,
    ) -> Result<(), CallFailure> {
        if let Err(e) = secrets::store_security_event(&self.db, charger, kind, at, tech_info).await
        {
            self.db_failed("security event", &e);
            return Err(CallFailure::internal(
                "the central system could not store the security event; send it again",
            ));
        }
        let detail = serde_json::json!({ "type": kind, "techInfo": tech_info });
        self.record(charger, "security_event", detail, true).await;
        Ok(())
    }

    /// Sites and their load balancer.
    pub fn sites(&self) -> &Arc<sites::Sites> {
        &self.sites
    }

    /// Reservations ([`reservations`]).
    pub fn reservations(&self) -> &Arc<reservations::Reservations> {
        &self.reservations
    }

    /// Firmware images and rollouts ([`firmware`]).
    pub fn firmware(&self) -> &Arc<firmware::Firmware> {
        &self.firmware
    }

    /// Log requests and uploaded files ([`uploads`]).
    pub fn uploads(&self) -> &Arc<uploads::Uploads> {
        &self.uploads
    }

    /// The device model, desired configuration and monitoring ([`device_model`]).
    pub fn device_model(&self) -> &Arc<device_model::DeviceModel> {
        &self.device_model
    }

    /// The chargers' local lists.
    pub fn local_lists(&self) -> &Arc<local_list::LocalLists> {
        &self.local_lists
    }

    /// DER events ([`der`]).
    pub fn der(&self) -> &Arc<der::Der> {
        &self.der
    }

    /// Periodic event streams ([`streams`]).
    pub fn streams(&self) -> &Arc<streams::Streams> {
        &self.streams
    }

    /// 2.1 tariffs ([`tariffs`]).
    pub fn tariffs(&self) -> &tariffs::Tariffs {
        &self.tariffs
    }

    /// Display messages ([`display`]).
    pub fn displays(&self) -> &Arc<display::Displays> {
        &self.displays
    }

    /// Customer information ([`customers`]).
    pub fn customers(&self) -> &Arc<customers::Customers> {
        &self.customers
    }

    /// The running cost's settings ([`cost`]).
    pub fn costs(&self) -> &cost::Costs {
        &self.costs
    }

    /// Signed meter values and meter keys ([`signed`]).
    pub fn signed(&self) -> &Arc<signed::Signed> {
        &self.signed
    }

    /// Stores the signed values among a transaction message's `samples` ([`signed`]); values
    /// over the session's bound are an event and a metric.
    async fn store_signed(
        &self,
        charger: &str,
        session: Option<i64>,
        transaction_id: Option<&str>,
        samples: &[ocpp_central::MeterSample],
    ) -> Result<(), DbError> {
        let stored = self
            .signed
            .store(charger, session, transaction_id, samples)
            .await?;
        if stored.over_bound > 0 {
            self.metrics.error("limit_reached", "signed_values");
            let detail = serde_json::json!({
                "limit": "signed_values", "bound": self.signed.max_per_session(),
                "sessionId": session, "transactionId": transaction_id,
                "detail": format!("{} signed values not kept as rows (the journal keeps the message)", stored.over_bound),
            });
            self.record(charger, "limit_reached", detail, true).await;
        }
        Ok(())
    }

    /// Driver accounts, tokens and fleets ([`accounts`]).
    pub fn accounts(&self) -> &Arc<accounts::Accounts> {
        &self.accounts
    }

    /// Billing: ledger, payments, provider ([`payments`]).
    pub fn billing(&self) -> payments::Billing {
        self.billing
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Notified when a session ends (at most one wake-up is kept while nobody waits).
    pub fn session_ended(&self) -> Arc<tokio::sync::Notify> {
        self.session_ended.clone()
    }

    /// The health alerts ([`alerts`]).
    pub fn alerts(&self) -> Arc<alerts::Alerts> {
        self.alerts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the alert settings.
    pub fn set_alerts(&self, config: alerts::AlertConfig) {
        *self
            .alerts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            alerts::Alerts::new(self.db.clone(), config);
    }

    /// Replaces the payment provider and billing settings.
    pub fn set_billing(
        &self,
        provider: Arc<dyn payments::PaymentProvider>,
        config: payments::BillingConfig,
    ) {
        *self
            .billing
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            payments::Billing::new(self.db.clone(), self.accounts.clone(), provider, config);
    }

    /// The certificate authority and issued certificates ([`pki`]).
    pub fn certs(&self) -> &pki::Certs {
        &self.certs
    }

    /// A charger's SignCertificate ([`pki`]): the answer of its version.
    async fn sign_certificate<R: serde::de::DeserializeOwned>(
        &self,
        charger: &ChargerHandle,
        request: AnyRequest,
    ) -> Result<R, CallFailure> {
        let Some(request) = ocpp_central::certificates::SignRequest::of(&request) else {
            return Err(CallFailure::internal("not a SignCertificate"));
        };
        let accepted = self
            .certs
            .on_sign_request(&self.db, charger.identity(), &request)
            .await
            .map_err(|e| {
                self.db_failed("sign certificate", &e);
                CallFailure::internal("the central system could not record the certificate")
            })?;
        ocpp_central::certificates::sign_response(accepted)
            .map_err(|e| CallFailure::internal(e.to_string()))
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The connected chargers.
    pub fn chargers(&self) -> &Chargers {
        &self.chargers
    }

    /// The tariff.
    pub fn tariff(&self) -> &Tariff {
        &self.tariff
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Subscribes to the live feed.
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.live.subscribe()
    }

    /// The authorization status for `id_token`: from the token table, else by the policy for
    /// unknown tokens.
    pub async fn decide(&self, id_token: &str) -> &'static str {
        // A token linked to a driver account: blocked with its account; otherwise accepted
        // unless the operator's token table says otherwise.
        let owner = match self.accounts.token_owner(id_token).await {
            Ok(o) => o,
            Err(e) => {
                tracing::error!("driver token lookup failed, answering Invalid: {e}");
                self.metrics.error("database", "token_lookup");
                return "Invalid";
            }
        };
        if owner.as_ref().is_some_and(|o| o.blocked) {
            return "Blocked";
        }
        match self.db.token(id_token).await {
            Ok(Some(t)) => match t.status.as_str() {
                "Accepted" => "Accepted",
                "Blocked" => "Blocked",
                "Expired" => "Expired",
                _ => "Invalid",
            },
            Ok(None) if owner.is_some() => "Accepted",
            Ok(None) => match self.unknown_tokens {
                UnknownTokens::Accept => "Accepted",
                UnknownTokens::Reject => "Invalid",
            },
            Err(e) => {
                tracing::error!("token lookup failed, answering Invalid: {e}");
                self.metrics.error("database", "token_lookup");
                "Invalid"
            }
        }
    }

    /// Whether anyone follows the live feed: entries that are not stored (heartbeats, meter
    /// updates: the frequent ones) are not even built when nobody does.
    fn live_followed(&self) -> bool {
        // Other nodes' followers are not counted here: a cluster node always publishes.
        self.live.receiver_count() > 0 || self.cluster.get().is_some()
    }

    async fn record(&self, charger: &str, kind: &str, detail: serde_json::Value, store: bool) {
        let at = Utc::now();
        let mut id = 0;
        if store {
            id = self.next_event_id().await;
            self.writer
                .write(writer::Write::Event {
                    id,
                    at,
                    charger: charger.to_owned(),
                    kind: kind.to_owned(),
                    detail: detail.to_string(),
                })
                .await;
        }
        let event = LiveEvent {
            id,
            at,
            charger: charger.to_owned(),
            kind: kind.to_owned(),
            detail,
        };
        if let Some(node) = self.cluster.get() {
            node.cluster.publish(&event);
        }
        let _ = self.live.send(event);
    }

    /// The next event-log id: from the in-process counter on a single node (seeded from the
    /// database at start), from the database's sequence on a cluster node (unique across
    /// the nodes, in time order).
    async fn next_event_id(&self) -> i64 {
        if self.cluster.get().is_none() {
            return self
                .event_ids
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1;
        }
        match retry(|| self.db.next_event_id()).await {
            Ok(id) => id,
            Err(e) => {
                // Never stored under a guessed id: this entry goes to the live feed only.
                self.db_failed("event ids", &e);
                0
            }
        }
    }

    /// Makes this backend a node of `cluster` (once, before chargers connect): presence,
    /// routed commands, the shared live feed and database event ids. `call_timeout` is the
    /// OCPP call timeout: a routed API request waits that and some more.
    pub async fn join_cluster(
        &self,
        cluster: Arc<dyn cluster::Cluster>,
        call_timeout: std::time::Duration,
    ) -> Result<(), DbError> {
        self.db.seed_event_ids().await?;
        let node = cluster.node_id().to_owned();
        self.pending
            .join(&node, self.db.journal_node_mark(&node).await?);
        let route_timeout = call_timeout + std::time::Duration::from_secs(5);
        self.sites.join_cluster(cluster.clone(), route_timeout);
        let _ = self.cluster.set(ClusterNode {
            cluster,
            route_timeout,
        });
        Ok(())
    }

    /// The cluster of this node, if it is one.
    pub fn cluster(&self) -> Option<&Arc<dyn cluster::Cluster>> {
        self.cluster.get().map(|n| &n.cluster)
    }

    /// How long a routed API request may wait for its answer.
    pub fn route_timeout(&self) -> std::time::Duration {
        self.cluster
            .get()
            .map_or(std::time::Duration::from_secs(35), |n| n.route_timeout)
    }

    /// The name of a connection in the `owner` column: `<node>|<connection>`.
    fn owner_of(&self, charger: &ChargerHandle) -> String {
        match self.cluster.get() {
            Some(n) => format!(
                "{}|{}",
                n.cluster.node_id(),
                n.cluster.connection(charger.connection_id())
            ),
            None => format!("local|{}", charger.connection_id()),
        }
    }

    /// At the start of a cluster node, instead of marking every charger offline: marks
    /// offline those whose connection is gone (no presence on a live node, or a presence of
    /// this node's earlier process). Run periodically too ([`Backend::reap`]): a node that
    /// died leaves its chargers marked connected until its lease ends; then the first node
    /// to notice marks them offline (and says so on the live feed), once.
    ///
    /// `startup`: this node's own start (always runs); otherwise only the node leading the
    /// `reaper` task does it, so one query per lease runs in the cluster, not one per node.
    pub async fn reap(&self, startup: bool) -> Result<usize, DbError> {
        let Some(node) = self.cluster.get() else {
            return Ok(0);
        };
        if !startup {
            match node.cluster.lead("reaper").await {
                Ok(true) => {}
                Ok(false) => return Ok(0),
                Err(e) => {
                    tracing::error!("cluster: reaper lead not known: {e}");
                    return Ok(0);
                }
            }
        }
        let rows = self.db.connected_owners().await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let ids: Vec<String> = rows.iter().map(|(i, _)| i.clone()).collect();
        let found = match node.cluster.lookup_many(&ids).await {
            Ok(f) => f,
            Err(e) => {
                tracing::error!("cluster: presence lookup failed: {e}");
                return Ok(0);
            }
        };
        let me = node.cluster.node_id();
        let mut reaped = 0;
        for ((identity, owner), present) in rows.iter().zip(found) {
            let local = self
                .chargers
                .get(identity)
                .is_some_and(|h| h.is_connected());
            let gone = match &present {
                None => true,
                // An earlier process of this node id.
                Some(o) => o.node == me && !local,
            };
            if !gone || local {
                continue;
            }
            if self.db.disconnected_if(identity, owner.as_deref()).await? {
                reaped += 1;
                let detail = serde_json::json!({ "reason": "its node is gone" });
                self.record(identity, "disconnected", detail, true).await;
            }
        }
        if reaped > 0 {
            tracing::warn!(reaped, "cluster: chargers of a lost node marked offline");
        }
        Ok(reaped)
    }

    /// Closes the local connection `connection` of `identity`: a newer one was accepted on
    /// node `by` (the newest connection of an identity wins across the cluster).
    pub fn taken_over(&self, identity: &str, connection: &str, by: &str) {
        let Some(node) = self.cluster.get() else {
            return;
        };
        if let Some(h) = self.chargers.get(identity) {
            if node.cluster.connection(h.connection_id()) == connection {
                tracing::info!(
                    charger = identity,
                    node = by,
                    "cluster: closing this connection, a newer one is on node {by}"
                );
                h.close(Some(format!(
                    "taken over by a newer connection on node {by}"
                )));
            }
        }
    }

    /// A live-feed entry of another node, shown on this node's feed.
    pub fn remote_event(&self, event: LiveEvent) {
        let _ = self.live.send(event);
    }

    fn db_failed(&self, what: &str, e: &DbError) {
        tracing::error!("database write ({what}) failed: {e}");
        self.metrics.error("database", what);
    }

    async fn session_id(
        &self,
        conn: Option<&Conn>,
        charger: &str,
        tx: &Transaction,
    ) -> Result<i64, DbError> {
        if let Some(s) = conn.and_then(|c| c.session(&tx.id)) {
            return Ok(s);
        }
        let open = lock(&self.open)
            .get(charger)
            .and_then(|open| open.get(&tx.id))
            .copied();
        if let Some(s) = open {
            if let Some(c) = conn {
                c.remember(&tx.id, s);
            }
            return Ok(s);
        }
        // Not opened on this process (e.g. a transaction seen first as an update): open it.
        let (evse, connector) = place(tx);
        let id = retry(|| {
            self.db.session_started(
                charger,
                &tx.id,
                evse,
                connector,
                tx.id_token.as_deref(),
                tx.started_at,
                tx.meter_start_wh,
                self.tariff.currency(),
            )
        })
        .await?;
        lock(&self.open)
            .entry(charger.to_owned())
            .or_default()
            .insert(tx.id.clone(), id);
        if let Some(c) = conn {
            c.remember(&tx.id, id);
        }
        Ok(id)
    }

    /// Stores a transaction's new state (the samples its message brought are in the
    /// message's journal row, linked to the session). With `lazy`, the write is put there
    /// for the caller to queue with the message's journal link and mark (a meter update);
    /// without, it is queued now (a start or an end, whose other writes follow it).
    async fn progress(
        &self,
        conn: Option<&Conn>,
        charger: &str,
        tx: &Transaction,
        lazy: Option<&mut Vec<writer::Write>>,
    ) -> Result<i64, DbError> {
        let id = self.session_id(conn, charger, tx).await?;
        let end = tx.ended_at.unwrap_or_else(Utc::now);
        // A session priced by a 2.1 tariff keeps that cost (the meter's rounded total).
        let cost = match self.tariffs.total_held(charger, &tx.id) {
            Some(c) => Some(c),
            None => self.tariff.cost(tx.energy_wh, tx.started_at, end),
        };
        if cost.is_none() {
            self.metrics.error("tariff", "cost_out_of_range");
        }
        let write = writer::Write::SessionProgress(writer::Progress {
            charger: charger.to_owned(),
            session_id: id,
            meter_start_wh: tx.meter_start_wh,
            meter_last_wh: tx.meter_last_wh,
            energy_wh: tx.energy_wh,
            power_w: tx.power_w,
            cost,
        });
        match lazy {
            Some(lazy) => lazy.push(write),
            None => self.writer.write(write).await,
        }
        Ok(id)
    }

    async fn on_event_inner(&self, charger: &ChargerHandle, event: &Event) {
        let request = match event {
            Event::TransactionStarted { request, .. }
            | Event::TransactionUpdated { request, .. }
            | Event::TransactionEnded { request, .. }
            | Event::MeterValues { request, .. } => Some(request),
            _ => None,
        };
        let rows = request
            .map(|q| Self::journal_rows_of(Conn::of(charger), q))
            .unwrap_or_default();
        let mut lazy = Vec::new();
        match self.project(charger, event, &mut lazy).await {
            Ok(session) => match rows.iter().map(|j| j.id).max() {
                Some(upto) => {
                    let ids = rows.iter().map(|j| j.id).collect();
                    self.journal_projected(charger.identity(), upto, ids, session, lazy)
                        .await;
                }
                None => self.writer.write_all(lazy).await,
            },
            Err(e) => {
                self.writer.write_all(lazy).await;
                // Not marked projected, from here on: the journal rows are projected again at
                // the next start.
                lock(&self.stalled).insert(charger.identity().to_owned());
                self.db_failed("session", &e);
                let detail = serde_json::json!({ "error": e.to_string() });
                self.record(charger.identity(), "storage_failed", detail, false)
                    .await;
            }
        }
    }

    /// Stores what `event` changes (chargers, connectors, sessions, event log, live feed);
    /// returns the session of a transaction event. Session writes are retried a few times; a
    /// database error that remains is returned. A meter update's session progress is put in
    /// `lazy` for the caller to queue with the message's journal link and mark.
    async fn project(
        &self,
        charger: &ChargerHandle,
        event: &Event,
        lazy: &mut Vec<writer::Write>,
    ) -> Result<Option<i64>, DbError> {
        let id = charger.identity();
        let conn = Conn::of(charger);
        let now = Utc::now();
        match event {
            Event::Connected { version, .. } => {
                self.metrics.connected(*version, charger.compressed());
                if let Some(node) = self.cluster.get() {
                    match node.cluster.claim(id, charger.connection_id()).await {
                        Ok(Some(old)) if old.node != node.cluster.node_id() => {
                            tracing::debug!(
                                charger = id,
                                old = %old.node,
                                "cluster: newer connection here; the old node closes its own"
                            );
                            if let Err(e) = node.cluster.takeover(id, &old).await {
                                tracing::error!(charger = id, "cluster: takeover not sent: {e}");
                            }
                        }
                        Ok(_) => {}
                        Err(e) => {
                            tracing::error!(charger = id, "cluster: presence not claimed: {e}")
                        }
                    }
                }
                self.writer
                    .write(writer::Write::ChargerConnected {
                        owner: self.owner_of(charger),
                        identity: id.to_owned(),
                        version: version.as_str(),
                        at: now,
                    })
                    .await;
                lock(&self.last_seen_written).insert(id.to_owned(), now);
                let detail = serde_json::json!({ "version": version.as_str() });
                self.record(id, "connected", detail, true).await;
            }
            Event::Booted { info, state, .. } => {
                self.writer
                    .write(writer::Write::ChargerBooted {
                        identity: id.to_owned(),
                        vendor: info.vendor.clone(),
                        model: info.model.clone(),
                        serial_number: info.serial_number.clone(),
                        firmware_version: info.firmware_version.clone(),
                        boot_state: state.as_str(),
                        at: now,
                    })
                    .await;
                let detail = serde_json::json!({
                    "vendor": info.vendor, "model": info.model,
                    "firmwareVersion": info.firmware_version, "bootState": state.as_str(),
                });
                self.record(id, "booted", detail, true).await;
            }
            Event::Heartbeat { at } => {
                let due = {
                    let mut seen = lock(&self.last_seen_written);
                    let due = seen
                        .get(id)
                        .is_none_or(|last| now - *last >= LAST_SEEN_EVERY);
                    if due {
                        seen.insert(id.to_owned(), now);
                    }
                    due
                };
                if due {
                    self.writer
                        .write(writer::Write::ChargerSeen {
                            identity: id.to_owned(),
                            at: now,
                        })
                        .await;
                }
                if self.live_followed() {
                    self.record(id, "heartbeat", serde_json::json!({ "at": at }), false)
                        .await;
                }
            }
            Event::StatusChanged {
                connector,
                previous,
                status,
                ..
            } => {
                let since = charger
                    .state()
                    .connectors
                    .get(connector)
                    .map(|c| c.since)
                    .unwrap_or(now);
                let error_code = charger
                    .state()
                    .connectors
                    .get(connector)
                    .and_then(|c| c.error_code.clone());
                self.writer
                    .write(writer::Write::ConnectorStatus {
                        charger: id.to_owned(),
                        evse: i64::from(connector.evse),
                        connector: connector.connector.map(i64::from),
                        status: status.as_str().to_owned(),
                        error_code: error_code.clone(),
                        since,
                    })
                    .await;
                let detail = serde_json::json!({
                    "evse": connector.evse, "connector": connector.connector,
                    "previous": previous.as_ref().map(|p| p.as_str().to_owned()),
                    "status": status.as_str(), "errorCode": error_code,
                });
                self.record(id, "status", detail, true).await;
            }
            Event::Authorized {
                id_token, status, ..
            } => {
                let detail = serde_json::json!({ "idToken": id_token, "status": status.as_str() });
                self.record(id, "authorized", detail, true).await;
            }
            Event::TransactionStarted {
                transaction,
                samples,
                ..
            } => {
                let session = self.progress(conn, id, transaction, None).await?;
                self.store_signed(id, Some(session), Some(&transaction.id), samples)
                    .await?;
                let detail = tx_detail(transaction, Some(session));
                self.record(id, "transaction_started", detail, true).await;
                return Ok(Some(session));
            }
            Event::TransactionUpdated {
                transaction,
                samples,
                ..
            } => {
                let session = self.progress(conn, id, transaction, Some(lazy)).await?;
                self.store_signed(id, Some(session), Some(&transaction.id), samples)
                    .await?;
                // Meter updates go to the live feed; the samples are in the session's rows.
                if self.live_followed() {
                    let detail = tx_detail(transaction, Some(session));
                    self.record(id, "transaction_updated", detail, false).await;
                }
                return Ok(Some(session));
            }
            Event::TransactionEnded {
                transaction,
                samples,
                ..
            } => {
                let session = self.progress(conn, id, transaction, None).await?;
                self.store_signed(id, Some(session), Some(&transaction.id), samples)
                    .await?;
                let ended = transaction.ended_at.unwrap_or(now);
                self.writer
                    .write(writer::Write::SessionEnded {
                        charger: id.to_owned(),
                        session_id: session,
                        ended_at: ended,
                        stop_reason: transaction.stop_reason.clone(),
                    })
                    .await;
                if let Some(open) = lock(&self.open).get_mut(id) {
                    open.remove(&transaction.id);
                }
                if let Some(c) = conn {
                    c.forget(&transaction.id);
                }
                let detail = tx_detail(transaction, Some(session));
                self.record(id, "transaction_ended", detail, true).await;
                // Billing settles it (payments::spawn_settlement).
                self.session_ended.notify_one();
                return Ok(Some(session));
            }
            Event::LimitReached {
                limit,
                bound,
                detail,
            } => {
                self.metrics.error("limit_reached", limit.as_str());
                let detail = serde_json::json!({
                    "limit": limit.as_str(), "bound": bound, "detail": detail,
                });
                self.record(id, "limit_reached", detail, true).await;
            }
            Event::OutOfRange {
                transaction_id,
                detail,
            } => {
                self.metrics.error("out_of_range", "value");
                let detail = serde_json::json!({
                    "transactionId": transaction_id, "detail": detail,
                });
                self.record(id, "out_of_range", detail, true).await;
            }
            Event::MeterValues {
                transaction_id,
                samples,
                ..
            } if samples.iter().any(|s| s.signed.is_some()) => {
                // Signed values outside a transaction this session knows: with the session
                // still open here for that id, if any.
                let session = transaction_id.as_ref().and_then(|t| {
                    lock(&self.open)
                        .get(id)
                        .and_then(|open| open.get(t).copied())
                });
                self.store_signed(id, session, transaction_id.as_deref(), samples)
                    .await?;
                return Ok(session);
            }
            Event::MeterValues {
                connector,
                transaction_id,
                samples,
                ..
            } if self.live_followed() => {
                let detail = serde_json::json!({
                    "evse": connector.evse, "connector": connector.connector,
                    "transactionId": transaction_id, "samples": samples.len(),
                });
                self.record(id, "meter_values", detail, false).await;
            }
            Event::DuplicateMessage { request } => {
                let detail = serde_json::json!({ "action": request.action() });
                self.record(id, "duplicate", detail, true).await;
            }
            Event::SequenceGap {
                transaction_id,
                expected,
                received,
            } => {
                let detail = serde_json::json!({
                    "transactionId": transaction_id, "expected": expected, "received": received,
                });
                self.record(id, "sequence_gap", detail, true).await;
            }
            Event::Repaired { action, repairs } => {
                self.metrics.error("repaired", action);
                let detail = serde_json::json!({
                    "action": action,
                    "repairs": repairs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                });
                self.record(id, "repaired", detail, true).await;
            }
            Event::Refused {
                action,
                code,
                reason,
            } => {
                self.metrics
                    .error("refused", code.as_str(charger.version()));
                let detail = serde_json::json!({
                    "action": action, "code": code.as_str(charger.version()), "reason": reason,
                });
                self.record(id, "refused", detail, true).await;
            }
            Event::Disconnected { reason } => {
                self.metrics
                    .disconnected(charger.version(), charger.compressed());
                // A replaced connection's disconnect must not mark the new one offline.
                let still_connected = self
                    .chargers
                    .get(id)
                    .is_some_and(|h| h.connection_id() != charger.connection_id());
                if let Some(node) = self.cluster.get() {
                    if let Err(e) = node.cluster.release(id, charger.connection_id()).await {
                        tracing::error!(charger = id, "cluster: presence not released: {e}");
                    }
                }
                if !still_connected {
                    self.writer
                        .write(writer::Write::ChargerDisconnected {
                            owner: self.owner_of(charger),
                            identity: id.to_owned(),
                            at: now,
                        })
                        .await;
                }
                // Per-identity maps hold connected chargers only.
                if !still_connected {
                    lock(&self.last_seen_written).remove(id);
                    lock(&self.open).remove(id);
                }
                if conn.is_some_and(|c| !lock(&c.journaled).is_empty()) {
                    // Rows this connection answered and never projected: replayed at the
                    // next start, so later rows must not mark the journal past them.
                    lock(&self.stalled).insert(id.to_owned());
                }
                let detail = serde_json::json!({ "reason": reason });
                self.record(id, "disconnected", detail, true).await;
            }
            _ => {}
        }
        Ok(None)
    }
}

/// What [`Backend::recover`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Journal rows projected.
    pub replayed: usize,
    /// Journal rows set aside (they could not be applied).
    pub set_aside: usize,
}

/// How often a session write is tried before its error is returned.
const DB_ATTEMPTS: u32 = 3;

/// Runs `op` up to [`DB_ATTEMPTS`] times, waiting a little longer after each failure (a busy
/// or briefly unreachable database); returns the last error.
async fn retry<T, F, Fut>(mut op: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbError>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt >= DB_ATTEMPTS => return Err(e),
            Err(e) => {
                tracing::warn!("database write failed (attempt {attempt}), retrying: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                attempt += 1;
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn place(tx: &Transaction) -> (i64, Option<i64>) {
    (
        i64::from(tx.connector.evse),
        tx.connector.connector.map(i64::from),
    )
}

fn sample_row(s: &MeterSample) -> db::SampleRow {
    db::SampleRow {
        timestamp: s.timestamp,
        measurand: s.measurand.to_string(),
        value: s.value,
        unit: s.unit.as_deref().map(str::to_owned),
        phase: s.phase.as_deref().map(str::to_owned),
        context: s.context.as_deref().map(str::to_owned),
    }
}

fn tx_detail(tx: &Transaction, session: Option<i64>) -> serde_json::Value {
    serde_json::json!({
        "sessionId": session,
        "transactionId": tx.id,
        "evse": tx.connector.evse,
        "connector": tx.connector.connector,
        "idToken": tx.id_token,
        "energyWh": decimal_json(tx.energy_wh),
        "powerW": tx.power_w.map(decimal_json),
        "stopReason": tx.stop_reason,
    })
}

/// An exact decimal as a JSON number (through its shortest `f64` form, which keeps the
/// digits of every value with at most 15 significant digits, i.e. any real meter reading).
pub fn decimal_json(d: Decimal) -> serde_json::Value {
    use rust_decimal::prelude::ToPrimitive;
    d.to_f64()
        .and_then(serde_json::Number::from_f64)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

#[async_trait]
impl Handler for Backend {
    fn v16(&self) -> Option<&dyn HandleV16> {
        Some(self)
    }

    fn v201(&self) -> Option<&dyn HandleV201> {
        Some(self)
    }

    fn v21(&self) -> Option<&dyn HandleV21> {
        Some(self)
    }

    async fn on_event(&self, charger: &ChargerHandle, event: &Event) {
        self.sites.on_event(charger, event);
        self.local_lists.on_event(charger, event);
        self.displays.collectors.on_event(charger, event);
        self.final_cost_v16(charger, event);
        if let Err(e) = self.reservations.on_event(charger, event).await {
            self.db_failed("reservation", &e);
        }
        if let Err(e) = self.firmware.on_event(charger, event).await {
            self.db_failed("firmware", &e);
        }
        if let Err(e) = self.uploads.on_event(charger, event).await {
            self.db_failed("log upload", &e);
        }
        if let Err(e) = self.device_model.on_event(charger, event).await {
            self.db_failed("device_model", &e);
        }
        if let Event::Report { part, .. } = event {
            if let Err(e) = catalog::on_report(&self.db, charger.identity(), part).await {
                self.db_failed("connector specs", &e);
            }
        }
        if let Err(e) = self.streams.on_event(charger, event).await {
            self.db_failed("streams", &e);
        }
        if let Err(e) = self.der.on_event(charger, event).await {
            self.db_failed("der", &e);
        }
        self.on_event_inner(charger, event).await;
    }

    async fn after(&self, charger: &ChargerHandle, request: &AnyRequest, _: &AnyResponse) {
        self.metrics.message_in(charger.version(), request.action());
        // A signed certificate goes out once the SignCertificate answer did (pki.rs).
        self.certs.after_answer(charger);
    }

    async fn restore_transactions(&self, identity: &str, _: Version) -> Vec<Transaction> {
        // A cluster node taking a charger over from a node that died first projects what
        // that node answered and did not project (its journal rows), so the transactions
        // it started go on here.
        if self.cluster.get().is_some() {
            match self.db.journal_unprocessed_of(identity).await {
                Ok(rows) if !rows.is_empty() => {
                    let n = rows.len();
                    match self.replay(rows).await {
                        Ok(r) => tracing::info!(
                            charger = identity,
                            rows = n,
                            replayed = r.replayed,
                            "cluster: journal rows of another node projected"
                        ),
                        Err(e) => self.db_failed("takeover replay", &e),
                    }
                }
                Ok(_) => {}
                Err(e) => self.db_failed("takeover replay", &e),
            }
        }
        self.active_transactions(identity).await
    }

    async fn on_send(&self, charger: &ChargerHandle, action: &str, payload: &str) {
        // Stream samples are stored by `streams` (Event::StreamData), not logged one by one.
        if action == "NotifyPeriodicEventStream" {
            return;
        }
        let detail = serde_json::json!({ "action": action, "bytes": payload.len() });
        self.record(charger.identity(), "send", detail, false).await;
    }
}

#[async_trait]
impl HandleV16 for Backend {
    async fn authorize(
        &self,
        _: &ChargerHandle,
        request: v16::AuthorizeRequest,
    ) -> Result<v16::AuthorizeResponse, CallFailure> {
        let status = v16_status(self.decide(request.id_tag.as_str()).await)?;
        Ok(v16::AuthorizeResponse::new(v16::IdTagInfo::new(status)))
    }

    async fn start_transaction(
        &self,
        charger: &ChargerHandle,
        request: v16::StartTransactionRequest,
    ) -> Result<v16::StartTransactionResponse, CallFailure> {
        let status = v16_status(self.decide(request.id_tag.as_str()).await)?;
        let id = self.next_transaction_id().await?;
        let response = v16::StartTransactionResponse::new(v16::IdTagInfo::new(status), id);
        self.journal(charger, &request, &response).await?;
        Ok(response)
    }

    async fn stop_transaction(
        &self,
        charger: &ChargerHandle,
        request: v16::StopTransactionRequest,
    ) -> Result<v16::StopTransactionResponse, CallFailure> {
        let mut response = v16::StopTransactionResponse::new();
        if let Some(tag) = &request.id_tag {
            let status = v16_status(self.decide(tag.as_str()).await)?;
            response.id_tag_info = Some(v16::IdTagInfo::new(status));
        }
        self.journal(charger, &request, &response).await?;
        Ok(response)
    }

    async fn meter_values(
        &self,
        charger: &ChargerHandle,
        request: v16::MeterValuesRequest,
    ) -> Result<v16::MeterValuesResponse, CallFailure> {
        let response = v16::MeterValuesResponse::new();
        // Only meter values of a transaction are journaled (the others are not stored).
        if request.transaction_id.is_some() {
            self.journal(charger, &request, &response).await?;
        }
        Ok(response)
    }

    async fn security_event_notification(
        &self,
        charger: &ChargerHandle,
        request: v16::SecurityEventNotificationRequest,
    ) -> Result<v16::SecurityEventNotificationResponse, CallFailure> {
        self.security_event(
            charger.identity(),
            request.r#type.as_str(),
            request.timestamp.to_utc(),
            request.tech_info.as_ref().map(|t| t.as_str()),
        )
        .await?;
        Ok(v16::SecurityEventNotificationResponse::new())
    }

    async fn sign_certificate(
        &self,
        charger: &ChargerHandle,
        request: v16::SignCertificateRequest,
    ) -> Result<v16::SignCertificateResponse, CallFailure> {
        self.sign_certificate(charger, AnyRequest::from(v16::AnyRequest::from(request)))
            .await
    }
}

impl Backend {
    /// The next 1.6 transaction id, from the database (never reused across restarts).
    async fn next_transaction_id(&self) -> Result<i32, CallFailure> {
        match retry(|| self.db.next_transaction_id()).await {
            Ok(Some(id)) => Ok(id),
            Ok(None) => {
                tracing::error!("OCPP 1.6 transaction ids are exhausted (beyond 2147483647)");
                self.metrics.error("database", "transaction_ids_exhausted");
                Err(CallFailure::internal(
                    "the central system cannot issue further transaction ids",
                ))
            }
            Err(e) => {
                self.db_failed("transaction id", &e);
                Err(CallFailure::internal(
                    "the central system could not issue a transaction id; send it again",
                ))
            }
        }
    }
}

fn v16_status(s: &str) -> Result<v16::AuthorizationStatus, CallFailure> {
    v16::AuthorizationStatus::from_str(s)
        .map_err(|_| CallFailure::internal(format!("no 1.6 authorization status {s:?}")))
}

macro_rules! handle_2x {
    ($Trait:ident, $m:ident) => {
        #[async_trait]
        impl $Trait for Backend {
            async fn authorize(
                &self,
                _: &ChargerHandle,
                request: $m::AuthorizeRequest,
            ) -> Result<$m::AuthorizeResponse, CallFailure> {
                let status = self.decide(request.id_token.id_token.as_str()).await;
                let status = $m::AuthorizationStatusEnumType::from_str(status)
                    .map_err(|_| CallFailure::internal(format!("no status {status:?}")))?;
                Ok($m::AuthorizeResponse::new($m::IdTokenInfoType::new(status)))
            }

            async fn transaction_event(
                &self,
                charger: &ChargerHandle,
                request: $m::TransactionEventRequest,
            ) -> Result<$m::TransactionEventResponse, CallFailure> {
                // Built here rather than by `defaults().typed`, which copies the request
                // (every meter value in it) to find its default answer.
                let mut response = $m::TransactionEventResponse::new();
                if let Some(token) = &request.id_token {
                    let status = self.decide(token.id_token.as_str()).await;
                    let status = $m::AuthorizationStatusEnumType::from_str(status)
                        .map_err(|_| CallFailure::internal(format!("no status {status:?}")))?;
                    response.id_token_info = Some($m::IdTokenInfoType::new(status));
                }
                // The cost so far (cost.rs): 2.1 Updated and Ended, 2.0.1 Ended only.
                let ended = request.event_type == $m::TransactionEventEnumType::Ended;
                let updated = request.event_type == $m::TransactionEventEnumType::Updated;
                // The samples as the cost sees them: only a 2.1 session or an end is priced
                // here, so a 2.0.1 meter update builds none.
                let priced = ended || charger.version() == Version::V21;
                let samples: Vec<ocpp_central::MeterSample> = request
                    .meter_value
                    .iter()
                    .filter(|_| priced)
                    .flatten()
                    .flat_map(|mv| mv.sampled_value.iter().map(move |sv| (mv, sv)))
                    .map(|(mv, sv)| ocpp_central::MeterSample {
                        timestamp: mv.timestamp.to_utc(),
                        measurand: sv.measurand.as_ref().map_or_else(
                            || ocpp_central::model::ENERGY_IMPORT_REGISTER.into(),
                            |m| m.as_str().into(),
                        ),
                        value: sv.value,
                        unit: sv
                            .unit_of_measure
                            .as_ref()
                            .and_then(|u| u.unit.as_ref())
                            .map(|u| u.as_str().to_owned().into()),
                        multiplier: sv
                            .unit_of_measure
                            .as_ref()
                            .and_then(|u| u.multiplier)
                            .unwrap_or(0),
                        phase: sv.phase.as_ref().map(|p| p.as_str().into()),
                        context: None,
                        location: None,
                        // The cost needs the number only.
                        signed: None,
                    })
                    .collect();
                // A 2.1 session on an EVSE with a default tariff is priced by it (tariffs.rs).
                let tariffed = if charger.version() == Version::V21 {
                    match self
                        .tariffs
                        .price(
                            charger.identity(),
                            request.transaction_info.transaction_id.as_str(),
                            request.evse.as_ref().and_then(|e| u32::try_from(e.id).ok()),
                            ended,
                            request
                                .transaction_info
                                .charging_state
                                .as_ref()
                                .map(|c| c.as_str()),
                            cost::register_wh(&samples),
                            request.timestamp.to_utc(),
                        )
                        .await
                    {
                        Ok(b) => b,
                        Err(e) => {
                            tracing::warn!("tariff cost on {}: {e}", charger.identity());
                            self.metrics.error("tariff", "session_cost");
                            None
                        }
                    }
                } else {
                    None
                };
                if let Some(b) = &tariffed {
                    if ended || updated {
                        response.total_cost = Some(b.total.incl);
                        if let Some(text) = self.costs.personal_message(b.total.incl, &b.currency) {
                            if let Ok(content) = text.try_into() {
                                response.updated_personal_message =
                                    Some($m::MessageContentType::new(
                                        $m::MessageFormatEnumType::Utf8,
                                        content,
                                    ));
                            }
                        }
                    }
                } else if ended || (updated && charger.version() == Version::V21) {
                    let before = charger
                        .state()
                        .transactions
                        .get(request.transaction_info.transaction_id.as_str())
                        .cloned();
                    if let Some(total) = cost::cost_so_far(
                        &self.tariff,
                        before.as_ref(),
                        cost::register_wh(&samples),
                        request.timestamp.to_utc(),
                    ) {
                        response.total_cost = Some(total);
                        if let Some(text) =
                            self.costs.personal_message(total, self.tariff.currency())
                        {
                            if let Ok(content) = text.try_into() {
                                response.updated_personal_message =
                                    Some($m::MessageContentType::new(
                                        $m::MessageFormatEnumType::Utf8,
                                        content,
                                    ));
                            }
                        }
                    }
                }
                self.journal(charger, &request, &response).await?;
                Ok(response)
            }

            async fn security_event_notification(
                &self,
                charger: &ChargerHandle,
                request: $m::SecurityEventNotificationRequest,
            ) -> Result<$m::SecurityEventNotificationResponse, CallFailure> {
                self.security_event(
                    charger.identity(),
                    request.r#type.as_str(),
                    request.timestamp.to_utc(),
                    request.tech_info.as_ref().map(|t| t.as_str()),
                )
                .await?;
                Ok($m::SecurityEventNotificationResponse::new())
            }

            async fn sign_certificate(
                &self,
                charger: &ChargerHandle,
                request: $m::SignCertificateRequest,
            ) -> Result<$m::SignCertificateResponse, CallFailure> {
                Backend::sign_certificate(
                    self,
                    charger,
                    AnyRequest::from($m::AnyRequest::from(request)),
                )
                .await
            }
        }
    };
}

handle_2x!(HandleV201, v201);
handle_2x!(HandleV21, v21);

/// Shared state of the HTTP API and the OCPP server.
pub type Shared = Arc<Backend>;

/// Why [`wait_for`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// No matching event in time.
    #[error("no {kind} event of {charger} within {timeout:?}")]
    Timeout {
        /// The charger waited for.
        charger: String,
        /// The event kind waited for.
        kind: String,
        /// How long.
        timeout: std::time::Duration,
    },
    /// The backend is gone.
    #[error("the live feed closed")]
    Closed,
}

/// Waits on a live-feed subscription ([`Backend::subscribe`]) for the next event of `charger`
/// of `kind` whose detail satisfies `pred`, and returns that detail. Other events, and those
/// the subscriber fell behind on, are skipped.
pub async fn wait_for(
    feed: &mut broadcast::Receiver<LiveEvent>,
    charger: &str,
    kind: &str,
    timeout: std::time::Duration,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> Result<serde_json::Value, WaitError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, feed.recv()).await {
            Ok(Ok(ev)) if ev.charger == charger && ev.kind == kind && pred(&ev.detail) => {
                return Ok(ev.detail)
            }
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) => return Err(WaitError::Closed),
            Err(_) => {
                return Err(WaitError::Timeout {
                    charger: charger.to_owned(),
                    kind: kind.to_owned(),
                    timeout,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Conn, CONN_SESSIONS};

    #[test]
    fn a_connection_remembers_its_latest_open_sessions_within_its_bound() {
        let conn = Conn::default();
        for k in 0..CONN_SESSIONS + 3 {
            conn.remember(&format!("tx-{k}"), k as i64);
        }
        // The oldest three were forgotten first (found again through the backend's map).
        assert_eq!(conn.session("tx-0"), None);
        assert_eq!(conn.session("tx-2"), None);
        assert_eq!(conn.session("tx-3"), Some(3));
        let last = CONN_SESSIONS + 2;
        assert_eq!(conn.session(&format!("tx-{last}")), Some(last as i64));
        assert_eq!(super::lock(&conn.sessions).len(), CONN_SESSIONS);
        // An ended transaction is forgotten at once.
        conn.forget("tx-3");
        assert_eq!(conn.session("tx-3"), None);
    }
}
