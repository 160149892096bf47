//! Sites and their load balancer: chargers belong to a site; a site has a grid limit (W or
//! A per phase) that the operator changes at any time; the balancer shares it among the
//! site's active sessions ([`balancer::plan`]) and sends each charger
//! its share as a `TxProfile`.
//!
//! - **State.** Sites and the charger → site assignment are tables of the migration
//!   [`MIGRATION`], mirrored in memory; sessions are followed from the model's events
//!   (`TransactionStarted` / `Updated` / `Ended`: the EVSE, the transaction id, the measured
//!   power of the last meter values) and kept only in memory: after a restart a running
//!   transaction becomes a session again at its next meter values.
//! - **When it plans.** A site is marked for a new plan when a session starts or ends, when a
//!   meter value shows an EV drawing clearly less than it was given (or, once capped, close
//!   to its cap again), when its limit or its chargers change, and when a send failed. One
//!   task plans the marked sites at most once per [`BalancerConfig::replan_interval`]
//!   (changes in between are coalesced), so the work is bounded whatever the chargers send.
//! - **What it sends.** Only changed limits (hysteresis): a lower limit always, a higher one
//!   only when it rises by more than [`BalancerConfig::hysteresis`]; decreases first, then
//!   increases, so the site stays under its limit while the profiles go out; at most
//!   [`BalancerConfig::send_concurrency`] at once. A session's `TxProfile` has id
//!   [`TX_PROFILE_ID`] and stack level [`STACK_LEVEL`]; each charger of a site gets, when it
//!   boots or joins the site, a `TxDefaultProfile` on EVSE 0 at the site's minimum rate, so
//!   a transaction starts at that rate until its share arrives (the only instant the sum may
//!   pass the limit, by at most one minimum per new arrival, until the next plan).
//! - **Bounds.** [`BalancerConfig::max_sessions_per_site`] sessions per site (more are not
//!   balanced, and counted), [`BalancerConfig::history`] points of measured power per site.
//! - Numbers are exact decimals; powers in W convert to A per phase at
//!   [`BalancerConfig::nominal_voltage`] on [`BalancerConfig::phases`] phases.
//! - **On a cluster** ([`Sites::join_cluster`]) one node plans every site: the holder of
//!   the fenced leader lease [`PLANNER`] (`cluster.rs`). Each round every node reloads the
//!   sites and their chargers from the database (any node may change them); the planner
//!   replaces its sessions with the cluster-wide view (the active sessions of the sites'
//!   chargers in the shared database, with their last measured power, of the chargers
//!   connected to a live node), plans each site with its whole limit, and sends each
//!   profile as a [`ProfileOrder`] with its fencing token to the node holding the charger
//!   (`POST /api/chargers/{id}/balancer-profile`, [`Sites::apply_order`]), which refuses a
//!   token that is not the current lease's. The other nodes send only their own chargers'
//!   default profiles. A new planner starts from no plan and sends every share once.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::str::FromStr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use ocpp_central::smart_charging::{ChargingProfile, ClearProfiles, Purpose, RateUnit};
use ocpp_central::{BootState, ChargerHandle, Chargers, Event};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::balancer::{self, Demand, Queued};
use super::cluster::{Cluster, ClusterError, Forward};
use super::db::{self, Db, DbError};

/// The tables: sites (limit as exact decimal text) and the charger → site assignment.
pub const MIGRATION: &str = "CREATE TABLE sites (
        id {ID},
        name TEXT NOT NULL,
        limit_value TEXT NOT NULL,
        limit_unit TEXT NOT NULL,
        min_rate TEXT NOT NULL,
        evse_max TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE site_chargers (
        charger TEXT PRIMARY KEY,
        site_id BIGINT NOT NULL
    );
    CREATE INDEX site_chargers_site ON site_chargers (site_id)";

/// The id of the `TxProfile` the balancer sets on an EVSE (one per EVSE: a new one replaces
/// it).
pub const TX_PROFILE_ID: i32 = 7_000;
/// The id of the `TxDefaultProfile` the balancer sets on EVSE 0.
pub const TX_DEFAULT_PROFILE_ID: i32 = 7_001;
/// The stack level of the balancer's profiles.
pub const STACK_LEVEL: i32 = 5;

/// The unit of a site's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum SiteUnit {
    /// Watts.
    W,
    /// Amperes per phase.
    A,
}

impl SiteUnit {
    fn as_str(self) -> &'static str {
        match self {
            SiteUnit::W => "W",
            SiteUnit::A => "A",
        }
    }

    fn rate_unit(self) -> RateUnit {
        match self {
            SiteUnit::W => RateUnit::W,
            SiteUnit::A => RateUnit::A,
        }
    }

    /// The granularity of the limits sent: 1 W, 0.1 A.
    fn step(self) -> Decimal {
        match self {
            SiteUnit::W => Decimal::ONE,
            SiteUnit::A => Decimal::new(1, 1),
        }
    }
}

impl FromStr for SiteUnit {
    type Err = ();
    fn from_str(s: &str) -> Result<SiteUnit, ()> {
        match s {
            "W" => Ok(SiteUnit::W),
            "A" => Ok(SiteUnit::A),
            _ => Err(()),
        }
    }
}

/// The balancer's parameters.
#[derive(Debug, Clone)]
pub struct BalancerConfig {
    /// The shortest time between two plans of one site (default 200 ms).
    pub replan_interval: Duration,
    /// How much a limit must rise to be sent (default 100 W, or 0.5 A for a site in A).
    pub hysteresis: Decimal,
    /// The same for sites in A.
    pub hysteresis_a: Decimal,
    /// Profiles in flight at once (default 32).
    pub send_concurrency: usize,
    /// Sessions balanced per site (default 10,000).
    pub max_sessions_per_site: usize,
    /// Points of measured power kept per site (default 600).
    pub history: usize,
    /// Volts between a phase and neutral (default 230).
    pub nominal_voltage: Decimal,
    /// Phases (default 3).
    pub phases: u32,
}

impl Default for BalancerConfig {
    fn default() -> Self {
        BalancerConfig {
            replan_interval: Duration::from_millis(200),
            hysteresis: Decimal::from(100),
            hysteresis_a: Decimal::new(5, 1),
            send_concurrency: 32,
            max_sessions_per_site: 10_000,
            history: 600,
            nominal_voltage: Decimal::from(230),
            phases: 3,
        }
    }
}

impl BalancerConfig {
    fn to_watts(&self, unit: SiteUnit, x: Decimal) -> Decimal {
        match unit {
            SiteUnit::W => x,
            SiteUnit::A => x * self.nominal_voltage * Decimal::from(self.phases),
        }
    }

    fn watts_in(&self, unit: SiteUnit, w: Decimal) -> Decimal {
        match unit {
            SiteUnit::W => w,
            SiteUnit::A => {
                let per_amp = self.nominal_voltage * Decimal::from(self.phases);
                if per_amp.is_zero() {
                    Decimal::ZERO
                } else {
                    w / per_amp
                }
            }
        }
    }
}

/// A site as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRow {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// The grid limit, in `unit`.
    pub limit: Decimal,
    /// W or A per phase.
    pub unit: SiteUnit,
    /// The lowest rate a session is given (else it is queued), in `unit`.
    pub min_rate: Decimal,
    /// The most one EVSE can draw, in `unit`.
    pub evse_max: Decimal,
}

/// A site's settings as the API sets them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteSettings {
    /// Name.
    pub name: String,
    /// The grid limit, in `unit`.
    pub limit: Decimal,
    /// W or A per phase.
    pub unit: SiteUnit,
    /// The lowest rate given, in `unit`.
    pub min_rate: Decimal,
    /// The most one EVSE can draw, in `unit`.
    pub evse_max: Decimal,
}

/// One session of the current plan.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedSession {
    /// Charger identity.
    pub charger: String,
    /// EVSE (1.6: connector).
    pub evse: i32,
    /// The transaction.
    pub transaction_id: String,
    /// Arrival order on the site (smaller: earlier).
    pub arrival: u64,
    /// Its share, in the site's unit (0 when queued).
    #[schema(value_type = String)]
    pub limit: Decimal,
    /// The limit last sent and accepted, if any.
    #[schema(value_type = Option<String>)]
    pub sent: Option<Decimal>,
    /// Measured power of its last meter values, W.
    #[schema(value_type = Option<String>)]
    pub measured_w: Option<Decimal>,
    /// `below_minimum` or `behind` when queued.
    pub queued: Option<Queued>,
    /// Why it is queued, for humans.
    pub reason: Option<String>,
}

/// A point of a site's measured power.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PowerPoint {
    /// When.
    pub at: DateTime<Utc>,
    /// Sum of the sessions' measured power, W.
    #[schema(value_type = String)]
    pub measured_w: Decimal,
    /// The site's limit then, W.
    #[schema(value_type = String)]
    pub limit_w: Decimal,
}

/// The balancer's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BalancerStats {
    /// Plans computed.
    pub plans: u64,
    /// Profiles sent.
    pub profiles_sent: u64,
    /// Profiles refused, failed or timed out.
    pub profiles_failed: u64,
    /// Transaction events of sessions not balanced because their site's session bound was
    /// reached (one per event).
    pub sessions_dropped: u64,
}

#[derive(Debug)]
struct Session {
    arrival: u64,
    transaction_id: String,
    measured_w: Option<Decimal>,
    /// When the charger took the reading behind `measured_w`, if it said.
    measured_at: Option<DateTime<Utc>>,
    planned: Decimal,
    queued: Option<Queued>,
    /// The limit last sent (set when sent, cleared when refused).
    sent: Option<Decimal>,
    /// When `sent` was planned, and the limit before it.
    sent_at: Option<DateTime<Utc>>,
    sent_before: Option<Decimal>,
    /// The cap of the last plan, in the site's unit.
    cap: Decimal,
}

impl Session {
    fn new(
        arrival: u64,
        transaction_id: String,
        measured_w: Option<Decimal>,
        measured_at: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            arrival,
            transaction_id,
            measured_w,
            measured_at,
            planned: Decimal::ZERO,
            queued: None,
            sent: None,
            sent_at: None,
            sent_before: None,
            cap: Decimal::ZERO,
        }
    }

    /// The limit the EV was under when its latest reading was taken: a reading taken
    /// before the last limit was sent says how it drew under the limit before, not
    /// whether it can use the new one (judged against the new one, an EV still ramping
    /// to a raise would look EV-limited and be capped back down). A reading without a
    /// time is taken as current.
    fn given_at_measurement(&self) -> Option<Decimal> {
        match (self.measured_at, self.sent_at) {
            (Some(m), Some(s)) if m < s => self.sent_before,
            _ => self.sent,
        }
    }

    /// The limit `limit` is being sent now.
    fn mark_sent(&mut self, limit: Decimal) {
        self.sent_before = self.sent;
        self.sent = Some(limit);
        self.sent_at = Some(Utc::now());
    }
}

#[derive(Debug)]
struct Site {
    row: SiteRow,
    /// By charger and EVSE.
    sessions: BTreeMap<(String, i32), Session>,
    dirty: bool,
    history: VecDeque<PowerPoint>,
}

#[derive(Debug, Default)]
struct State {
    sites: BTreeMap<i64, Site>,
    charger_site: HashMap<String, i64>,
    /// Chargers to give the site's TxDefaultProfile.
    defaults: HashSet<String>,
    /// Chargers whose balancer profiles to clear (they left their site).
    clears: HashSet<String>,
    arrivals: u64,
    stats: BalancerStats,
}

impl State {
    /// The TxDefaultProfiles to send (charger, its site's unit, the site's minimum rate
    /// within the EVSE maximum) and the chargers whose balancer profiles to clear, taken
    /// off their queues.
    fn take_local(&mut self) -> (Vec<(String, SiteUnit, Decimal)>, Vec<String>) {
        let defaults = self
            .defaults
            .drain()
            .filter_map(|c| {
                let site = self.sites.get(self.charger_site.get(&c)?)?;
                Some((c, site.row.unit, site.row.min_rate.min(site.row.evse_max)))
            })
            .collect();
        let clears = self.clears.drain().collect();
        (defaults, clears)
    }
}

/// One profile to send.
#[derive(Debug, Clone)]
struct Send {
    site: i64,
    charger: String,
    evse: i32,
    transaction_id: String,
    unit: SiteUnit,
    limit: Decimal,
}

/// What one round sends.
struct Round {
    /// Lower limits (and first ones no higher than the minimum).
    down: Vec<Send>,
    /// Higher limits, after.
    up: Vec<Send>,
    /// TxDefaultProfiles: charger, unit, limit.
    defaults: Vec<(String, SiteUnit, Decimal)>,
    /// Chargers whose balancer profiles to clear.
    clears: Vec<String>,
}

/// Sites, their chargers and the balancer (shared by the backend and the API).
pub struct Sites {
    db: Db,
    chargers: Chargers,
    cfg: BalancerConfig,
    state: Mutex<State>,
    wake: tokio::sync::Notify,
    /// On a cluster: how the planner reaches the other nodes ([`Sites::join_cluster`]).
    cluster: std::sync::OnceLock<ClusterLink>,
    /// The fencing token of the planner lease while this node plans every site (0: it does
    /// not).
    token: std::sync::atomic::AtomicU64,
}

/// The name of the site planner's leader lease (`cluster.rs`).
pub const PLANNER: &str = "sites";

/// How the site planner of a cluster reaches the other nodes.
struct ClusterLink {
    cluster: Arc<dyn Cluster>,
    /// How long an order routed to another node may take.
    route_timeout: Duration,
}

/// What an order of the site planner does on the node holding the charger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum OrderKind {
    /// A session's share: a `TxProfile` on `evse` for `transactionId` at `limit`.
    Tx,
    /// The site's minimum as the charger's `TxDefaultProfile` on EVSE 0.
    Default,
    /// Clear the balancer's profiles (the charger left its site).
    Clear,
}

/// A balancer profile for one charger, sent by the site planner (on a cluster, the node
/// holding the planner lease) to the node holding the charger
/// (`POST /api/chargers/{id}/balancer-profile`).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileOrder {
    /// The planner's fencing token (required for `tx`): refused unless it is the current
    /// planner lease's, so a planner that lost its lease changes nothing.
    pub fence: Option<u64>,
    /// What to do.
    pub kind: OrderKind,
    /// The EVSE (`tx`).
    pub evse: Option<i32>,
    /// The transaction (`tx`).
    pub transaction_id: Option<String>,
    /// The unit of `limit`.
    pub unit: SiteUnit,
    /// The limit (`tx`, `default`).
    #[schema(value_type = Option<String>)]
    pub limit: Option<Decimal>,
}

/// Why an order was not carried out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OrderError {
    /// The order's fencing token is not the current planner lease's.
    #[error("the order's planner lease ({0:?}) is not the current one ({1:?})")]
    Stale(Option<u64>, Option<u64>),
    /// The charger is not connected to this node.
    #[error("charger {0:?} is not connected to this node")]
    Offline(String),
    /// The order lacks what its kind needs.
    #[error("{0}")]
    Invalid(&'static str),
    /// The broker did not answer.
    #[error("cluster: {0}")]
    Cluster(#[from] ClusterError),
}

impl std::fmt::Debug for Sites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sites")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn dec(column: &'static str, s: String) -> Result<Decimal, DbError> {
    Decimal::from_str(&s).map_err(|_| DbError::Corrupt { column, value: s })
}

impl Sites {
    /// Loads the sites and starts the balancer's task on the current runtime (it ends when
    /// the returned value is dropped).
    pub async fn start(
        db: Db,
        chargers: Chargers,
        cfg: BalancerConfig,
    ) -> Result<Arc<Sites>, DbError> {
        let mut state = State::default();
        let rows = sqlx::query(
            "SELECT id, name, limit_value, limit_unit, min_rate, evse_max FROM sites ORDER BY id",
        )
        .fetch_all(db.reader())
        .await?;
        for r in rows {
            let row = site_row(&r)?;
            state.sites.insert(
                row.id,
                Site {
                    row,
                    sessions: BTreeMap::new(),
                    dirty: false,
                    history: VecDeque::new(),
                },
            );
        }
        for r in sqlx::query("SELECT charger, site_id FROM site_chargers")
            .fetch_all(db.reader())
            .await?
        {
            state
                .charger_site
                .insert(r.try_get("charger")?, r.try_get("site_id")?);
        }
        let sites = Arc::new(Sites {
            db,
            chargers,
            cfg,
            state: Mutex::new(state),
            wake: tokio::sync::Notify::new(),
            cluster: std::sync::OnceLock::new(),
            token: std::sync::atomic::AtomicU64::new(0),
        });
        tokio::spawn(run(Arc::downgrade(&sites)));
        Ok(sites)
    }

    /// Makes this the site balancer of a cluster node (once, before chargers connect): the
    /// node holding the planner lease plans every site from the cluster-wide view (the
    /// active sessions in the shared database of the chargers connected to a live node)
    /// with the site's whole limit, and sends each profile through the node holding the
    /// charger; the other nodes plan nothing (see the module's docs).
    pub fn join_cluster(&self, cluster: Arc<dyn Cluster>, route_timeout: Duration) {
        let _ = self.cluster.set(ClusterLink {
            cluster,
            route_timeout,
        });
        self.wake.notify_one();
    }

    /// Whether this node plans the sites: always on a single node; on a cluster while it
    /// holds the planner lease.
    pub fn plans(&self) -> bool {
        self.cluster.get().is_none() || self.token.load(std::sync::atomic::Ordering::Relaxed) != 0
    }

    /// The node planning the sites on a cluster, if one does now.
    pub async fn planner(&self) -> Result<Option<String>, ClusterError> {
        match self.cluster.get() {
            Some(link) => link.cluster.leader(PLANNER).await,
            None => Ok(None),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The balancer's parameters.
    pub fn config(&self) -> &BalancerConfig {
        &self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> BalancerStats {
        self.state().stats
    }

    // ------------------------------------------------------------ sites

    /// Every site.
    pub fn list(&self) -> Vec<SiteRow> {
        self.state().sites.values().map(|s| s.row.clone()).collect()
    }

    /// One site.
    pub fn get(&self, id: i64) -> Option<SiteRow> {
        self.state().sites.get(&id).map(|s| s.row.clone())
    }

    /// The chargers of a site, sorted.
    pub fn chargers_of(&self, id: i64) -> Vec<String> {
        let mut v: Vec<String> = self
            .state()
            .charger_site
            .iter()
            .filter(|(_, s)| **s == id)
            .map(|(c, _)| c.clone())
            .collect();
        v.sort();
        v
    }

    /// Creates a site.
    pub async fn create(&self, s: &SiteSettings) -> Result<SiteRow, DbError> {
        let now = db::ts(Utc::now());
        let row = sqlx::query(
            "INSERT INTO sites (name, limit_value, limit_unit, min_rate, evse_max, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&s.name)
        .bind(s.limit.to_string())
        .bind(s.unit.as_str())
        .bind(s.min_rate.to_string())
        .bind(s.evse_max.to_string())
        .bind(now)
        .fetch_one(self.db.writer())
        .await?;
        let id: i64 = row.try_get("id")?;
        let row = SiteRow {
            id,
            name: s.name.clone(),
            limit: s.limit,
            unit: s.unit,
            min_rate: s.min_rate,
            evse_max: s.evse_max,
        };
        self.state().sites.insert(
            id,
            Site {
                row: row.clone(),
                sessions: BTreeMap::new(),
                dirty: false,
                history: VecDeque::new(),
            },
        );
        Ok(row)
    }

    /// On a cluster, a site this node does not know yet (made through another node since
    /// its last round) is read from the database now.
    pub async fn catch_up(&self, id: i64) -> Result<(), DbError> {
        if self.cluster.get().is_some() && self.get(id).is_none() {
            self.reload().await?;
        }
        Ok(())
    }

    /// On a cluster, the sites and assignments as stored now (any node may have changed
    /// them since this node's last round); nothing to do on a single node.
    pub async fn catch_up_all(&self) -> Result<(), DbError> {
        if self.cluster.get().is_some() {
            self.reload().await?;
        }
        Ok(())
    }

    /// Replaces a site's settings; `None` when there is no such site.
    pub async fn update(&self, id: i64, s: &SiteSettings) -> Result<Option<SiteRow>, DbError> {
        self.catch_up(id).await?;
        let done = sqlx::query(
            "UPDATE sites SET name = $1, limit_value = $2, limit_unit = $3, min_rate = $4,
             evse_max = $5, updated_at = $6 WHERE id = $7",
        )
        .bind(&s.name)
        .bind(s.limit.to_string())
        .bind(s.unit.as_str())
        .bind(s.min_rate.to_string())
        .bind(s.evse_max.to_string())
        .bind(db::ts(Utc::now()))
        .bind(id)
        .execute(self.db.writer())
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let row = {
            let mut st = self.state();
            let st = &mut *st;
            let Some(site) = st.sites.get_mut(&id) else {
                return Ok(None);
            };
            let unit_changed = site.row.unit != s.unit;
            site.row = SiteRow {
                id,
                name: s.name.clone(),
                limit: s.limit,
                unit: s.unit,
                min_rate: s.min_rate,
                evse_max: s.evse_max,
            };
            if unit_changed {
                // Limits sent in the old unit no longer compare.
                for sess in site.sessions.values_mut() {
                    sess.sent = None;
                }
            }
            site.dirty = true;
            let row = site.row.clone();
            Self::point(&self.cfg, site, Utc::now());
            // The minimum rate is the TxDefaultProfile's limit.
            for (c, s) in &st.charger_site {
                if *s == id {
                    st.defaults.insert(c.clone());
                }
            }
            row
        };
        self.wake.notify_one();
        Ok(Some(row))
    }

    /// Sets a site's limit (in its unit); `None` when there is no such site.
    pub async fn set_limit(&self, id: i64, limit: Decimal) -> Result<Option<SiteRow>, DbError> {
        self.catch_up(id).await?;
        if self.get(id).is_none() {
            return Ok(None);
        }
        let done = sqlx::query("UPDATE sites SET limit_value = $1, updated_at = $2 WHERE id = $3")
            .bind(limit.to_string())
            .bind(db::ts(Utc::now()))
            .bind(id)
            .execute(self.db.writer())
            .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let row = {
            let mut st = self.state();
            let Some(site) = st.sites.get_mut(&id) else {
                return Ok(None);
            };
            site.row.limit = limit;
            site.dirty = true;
            Self::point(&self.cfg, site, Utc::now());
            site.row.clone()
        };
        self.wake.notify_one();
        Ok(Some(row))
    }

    /// Deletes a site (its chargers leave it); whether it existed.
    pub async fn delete(&self, id: i64) -> Result<bool, DbError> {
        let mut tx = self.db.begin_write().await?;
        sqlx::query("DELETE FROM site_chargers WHERE site_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM sites WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        {
            let mut st = self.state();
            let st = &mut *st;
            st.sites.remove(&id);
            let gone: Vec<String> = st
                .charger_site
                .iter()
                .filter(|(_, s)| **s == id)
                .map(|(c, _)| c.clone())
                .collect();
            for c in gone {
                st.charger_site.remove(&c);
                st.defaults.remove(&c);
                st.clears.insert(c);
            }
        }
        self.wake.notify_one();
        Ok(done.rows_affected() > 0)
    }

    /// Puts `charger` on site `id` (leaving its previous site); `false` when there is no such
    /// site.
    pub async fn assign(&self, id: i64, charger: &str) -> Result<bool, DbError> {
        self.catch_up(id).await?;
        if self.get(id).is_none() {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO site_chargers (charger, site_id) VALUES ($1, $2)
             ON CONFLICT (charger) DO UPDATE SET site_id = excluded.site_id",
        )
        .bind(charger)
        .bind(id)
        .execute(self.db.writer())
        .await?;
        {
            let mut st = self.state();
            let st = &mut *st;
            let previous = st.charger_site.insert(charger.to_owned(), id);
            if let Some(p) = previous.filter(|p| *p != id) {
                move_sessions(st, p, id, charger);
            } else if previous.is_none() {
                // Its running sessions are not known to a site: learn them from the model.
                if let Some(h) = self.chargers.get(charger) {
                    let arrivals = &mut st.arrivals;
                    if let Some(site) = st.sites.get_mut(&id) {
                        for tx in h.state().transactions.values() {
                            *arrivals += 1;
                            site.sessions
                                .entry((charger.to_owned(), tx.connector.evse))
                                .or_insert(Session::new(
                                    *arrivals,
                                    tx.id.clone(),
                                    tx.power_w,
                                    tx.meter_last_at,
                                ));
                        }
                    }
                }
            }
            if let Some(site) = st.sites.get_mut(&id) {
                site.dirty = true;
            }
            st.clears.remove(charger);
            st.defaults.insert(charger.to_owned());
        }
        self.wake.notify_one();
        Ok(true)
    }

    /// Takes `charger` off site `id`; whether it was on it.
    pub async fn unassign(&self, id: i64, charger: &str) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM site_chargers WHERE charger = $1 AND site_id = $2")
            .bind(charger)
            .bind(id)
            .execute(self.db.writer())
            .await?;
        {
            let mut st = self.state();
            let st = &mut *st;
            if st.charger_site.get(charger) == Some(&id) {
                st.charger_site.remove(charger);
            }
            if let Some(site) = st.sites.get_mut(&id) {
                site.sessions.retain(|(c, _), _| c != charger);
                site.dirty = true;
            }
            st.defaults.remove(charger);
            st.clears.insert(charger.to_owned());
        }
        self.wake.notify_one();
        Ok(done.rows_affected() > 0)
    }

    /// The current plan of a site, by arrival.
    pub fn plan_of(&self, id: i64) -> Option<Vec<PlannedSession>> {
        let st = self.state();
        let site = st.sites.get(&id)?;
        let mut v: Vec<PlannedSession> = site
            .sessions
            .iter()
            .map(|((charger, evse), s)| PlannedSession {
                charger: charger.clone(),
                evse: *evse,
                transaction_id: s.transaction_id.clone(),
                arrival: s.arrival,
                limit: s.planned,
                sent: s.sent,
                measured_w: s.measured_w,
                queued: s.queued,
                reason: s.queued.map(|q| q.reason().to_owned()),
            })
            .collect();
        v.sort_by_key(|p| p.arrival);
        Some(v)
    }

    /// A site's measured power over time (oldest first).
    pub fn power_of(&self, id: i64) -> Option<Vec<PowerPoint>> {
        let st = self.state();
        Some(st.sites.get(&id)?.history.iter().cloned().collect())
    }

    /// The sum of the measured power of a site's sessions, W.
    pub fn measured_w(&self, id: i64) -> Option<Decimal> {
        let st = self.state();
        Some(measured(st.sites.get(&id)?))
    }

    /// The site's limit in W.
    pub fn limit_w(&self, row: &SiteRow) -> Decimal {
        self.cfg.to_watts(row.unit, row.limit)
    }

    // ------------------------------------------------------------ events

    /// Follows the model's events of `charger` (the backend calls this for every event).
    pub fn on_event(&self, charger: &ChargerHandle, event: &Event) {
        let id = charger.identity();
        let wake = {
            let mut st = self.state();
            let st = &mut *st;
            let Some(site_id) = st.charger_site.get(id).copied() else {
                return;
            };
            if let Event::Booted {
                state: BootState::Accepted,
                ..
            } = event
            {
                st.defaults.insert(id.to_owned());
                true
            } else if self.cluster.get().is_some() {
                // On a cluster the planner reads the sessions of every node from the shared
                // database; here a transaction wakes the round.
                matches!(
                    event,
                    Event::TransactionStarted { .. } | Event::TransactionEnded { .. }
                )
            } else {
                self.follow(st, site_id, id, event)
            }
        };
        if wake {
            self.wake.notify_one();
        }
    }

    /// On a single node: follows a transaction event of charger `id` on site `site_id` into
    /// the site's sessions; true when the site needs planning again.
    fn follow(&self, st: &mut State, site_id: i64, id: &str, event: &Event) -> bool {
        let mut wake = false;
        let max = self.cfg.max_sessions_per_site;
        match event {
            // A transaction started, or one running before this process knew it (a
            // restart, a reconnect): a session of the site from now on.
            Event::TransactionStarted { transaction, .. }
            | Event::TransactionUpdated { transaction, .. }
                if st.sites.get(&site_id).is_some_and(|site| {
                    site.sessions
                        .get(&(id.to_owned(), transaction.connector.evse))
                        .is_none_or(|s| s.transaction_id != transaction.id)
                }) =>
            {
                st.arrivals += 1;
                let arrival = st.arrivals;
                if let Some(site) = st.sites.get_mut(&site_id) {
                    let key = (id.to_owned(), transaction.connector.evse);
                    if site.sessions.len() >= max && !site.sessions.contains_key(&key) {
                        st.stats.sessions_dropped += 1;
                    } else {
                        site.sessions.insert(
                            key,
                            Session::new(
                                arrival,
                                transaction.id.clone(),
                                transaction.power_w,
                                transaction.meter_last_at,
                            ),
                        );
                        site.dirty = true;
                        wake = true;
                    }
                }
            }
            Event::TransactionUpdated { transaction, .. } => {
                if let Some(site) = st.sites.get_mut(&site_id) {
                    let unit = site.row.unit;
                    let hysteresis = self.hysteresis(unit);
                    let evse_max = site.row.evse_max;
                    let key = (id.to_owned(), transaction.connector.evse);
                    if let Some(s) = site.sessions.get_mut(&key) {
                        s.measured_w = transaction.power_w;
                        s.measured_at = transaction.meter_last_at;
                        let m = transaction.power_w.map(|w| self.cfg.watts_in(unit, w));
                        let cap = balancer::cap_from_measurement(
                            evse_max,
                            s.given_at_measurement(),
                            m,
                            unit.step(),
                        );
                        // Drawing clearly less than planned for, or capped before and
                        // now drawing what it was given: plan again.
                        let less = cap + hysteresis < s.cap;
                        let more = s.cap < evse_max && cap >= evse_max && s.queued.is_none();
                        if less || more {
                            site.dirty = true;
                            wake = true;
                        }
                    }
                    Self::point(&self.cfg, site, Utc::now());
                }
            }
            Event::TransactionEnded { transaction, .. } => {
                if let Some(site) = st.sites.get_mut(&site_id) {
                    let key = (id.to_owned(), transaction.connector.evse);
                    if site
                        .sessions
                        .get(&key)
                        .is_some_and(|s| s.transaction_id == transaction.id)
                    {
                        site.sessions.remove(&key);
                        site.dirty = true;
                        wake = true;
                    }
                    Self::point(&self.cfg, site, Utc::now());
                }
            }
            _ => {}
        }
        wake
    }

    /// Records the site's measured power now (one point per second at most: a later one in
    /// the same second replaces it).
    fn point(cfg: &BalancerConfig, site: &mut Site, at: DateTime<Utc>) {
        let p = PowerPoint {
            at,
            measured_w: measured(site),
            limit_w: cfg.to_watts(site.row.unit, site.row.limit),
        };
        if site
            .history
            .back()
            .is_some_and(|b| b.at.timestamp() == at.timestamp())
        {
            site.history.pop_back();
        }
        site.history.push_back(p);
        while site.history.len() > cfg.history.max(1) {
            site.history.pop_front();
        }
    }

    // ------------------------------------------------------------ planning

    /// Plans every marked site and returns what to send (decreases first).
    fn plan_marked(&self) -> Round {
        let mut st = self.state();
        let st = &mut *st;
        let mut sends = Vec::new();
        for site in st.sites.values_mut().filter(|s| s.dirty) {
            site.dirty = false;
            st.stats.plans += 1;
            let unit = site.row.unit;
            let step = unit.step();
            let hysteresis = self.hysteresis(unit);
            let demands: Vec<Demand<(String, i32)>> = site
                .sessions
                .iter()
                .map(|(k, s)| Demand {
                    key: k.clone(),
                    arrival: s.arrival,
                    cap: balancer::cap_from_measurement(
                        site.row.evse_max,
                        s.given_at_measurement(),
                        s.measured_w.map(|w| self.cfg.watts_in(unit, w)),
                        step,
                    ),
                    min: site.row.min_rate,
                })
                .collect();
            let caps: HashMap<(String, i32), Decimal> =
                demands.iter().map(|d| (d.key.clone(), d.cap)).collect();
            let limit = site.row.limit;
            for a in balancer::plan(&demands, limit, step) {
                let Some(s) = site.sessions.get_mut(&a.key) else {
                    continue;
                };
                s.planned = a.limit;
                s.queued = a.queued;
                s.cap = caps.get(&a.key).copied().unwrap_or(Decimal::ZERO);
                let previous = s.sent;
                if balancer::should_send(previous, a.limit, hysteresis) {
                    s.mark_sent(a.limit);
                    // A lower limit goes out first; so does a first one no higher than
                    // the TxDefaultProfile the session started with.
                    let first = previous.map_or(a.limit <= site.row.min_rate, |p| a.limit < p);
                    sends.push((
                        !first,
                        Send {
                            site: site.row.id,
                            charger: a.key.0.clone(),
                            evse: a.key.1,
                            transaction_id: s.transaction_id.clone(),
                            unit,
                            limit: a.limit,
                        },
                    ));
                }
            }
        }
        // Decreases (false) before increases (true).
        sends.sort_by_key(|(up, _)| *up);
        let split = sends.iter().position(|(up, _)| *up).unwrap_or(sends.len());
        let mut sends: Vec<Send> = sends.into_iter().map(|(_, s)| s).collect();
        let up = sends.split_off(split);
        let (defaults, clears) = st.take_local();
        Round {
            down: sends,
            up,
            defaults,
            clears,
        }
    }

    fn hysteresis(&self, unit: SiteUnit) -> Decimal {
        match unit {
            SiteUnit::W => self.cfg.hysteresis,
            SiteUnit::A => self.cfg.hysteresis_a,
        }
    }
}

fn measured(site: &Site) -> Decimal {
    site.sessions.values().filter_map(|s| s.measured_w).sum()
}

fn move_sessions(st: &mut State, from: i64, to: i64, charger: &str) {
    let moved: Vec<((String, i32), Session)> = match st.sites.get_mut(&from) {
        Some(site) => {
            let keys: Vec<(String, i32)> = site
                .sessions
                .keys()
                .filter(|(c, _)| c == charger)
                .cloned()
                .collect();
            site.dirty = true;
            keys.into_iter()
                .filter_map(|k| site.sessions.remove(&k).map(|s| (k, s)))
                .collect()
        }
        None => Vec::new(),
    };
    if let Some(site) = st.sites.get_mut(&to) {
        for (k, mut s) in moved {
            s.sent = None;
            site.sessions.insert(k, s);
        }
    }
}

fn site_row(r: &sqlx::any::AnyRow) -> Result<SiteRow, DbError> {
    let unit: String = r.try_get("limit_unit")?;
    Ok(SiteRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        limit: dec("limit_value", r.try_get("limit_value")?)?,
        unit: unit.parse().map_err(|_| DbError::Corrupt {
            column: "limit_unit",
            value: unit.clone(),
        })?,
        min_rate: dec("min_rate", r.try_get("min_rate")?)?,
        evse_max: dec("evse_max", r.try_get("evse_max")?)?,
    })
}

/// The balancer's task: plans the marked sites at most once per interval, then sends.
async fn run(sites: Weak<Sites>) {
    loop {
        let (interval, wake) = {
            let Some(s) = sites.upgrade() else { return };
            let interval = s.cfg.replan_interval;
            // Wake at a change, or every second to retry what failed.
            let notified = async move {
                let _ = tokio::time::timeout(Duration::from_secs(1), s.wake.notified()).await;
            };
            (interval, notified)
        };
        wake.await;
        let Some(s) = sites.upgrade() else { return };
        s.round().await;
        drop(s);
        tokio::time::sleep(interval).await;
    }
}

impl Sites {
    /// One round: plan the marked sites, send the profiles, decreases first. On a cluster
    /// only the node holding the planner lease plans ([`Sites::cluster_round`]).
    async fn round(&self) {
        let mut fence = None;
        if let Some(link) = self.cluster.get() {
            match self.cluster_round(link).await {
                Some(token) => fence = Some(token),
                None => {
                    // Not the planner: only this node's chargers' defaults and clears.
                    let (defaults, clears) = self.take_local();
                    self.send_defaults(defaults, clears, None).await;
                    return;
                }
            }
        }
        let Round {
            down,
            up,
            defaults,
            clears,
        } = self.plan_marked();
        self.send_all(down, fence).await;
        self.send_all(up, fence).await;
        self.send_defaults(defaults, clears, fence).await;
    }

    /// The TxDefaultProfiles and clears of chargers that booted, joined or left a site.
    async fn send_defaults(
        &self,
        defaults: Vec<(String, SiteUnit, Decimal)>,
        clears: Vec<String>,
        fence: Option<u64>,
    ) {
        use futures::StreamExt;
        let n = self.cfg.send_concurrency.max(1);
        futures::stream::iter(defaults)
            .for_each_concurrent(n, |(charger, unit, limit)| async move {
                let order = ProfileOrder {
                    fence,
                    kind: OrderKind::Default,
                    evse: None,
                    transaction_id: None,
                    unit,
                    limit: Some(limit),
                };
                if let Some(ok) = self.deliver(&charger, &order).await {
                    self.count(ok);
                }
            })
            .await;
        futures::stream::iter(clears)
            .for_each_concurrent(n, |charger| async move {
                let order = ProfileOrder {
                    fence,
                    kind: OrderKind::Clear,
                    evse: None,
                    transaction_id: None,
                    unit: SiteUnit::W,
                    limit: None,
                };
                if let Some(ok) = self.deliver(&charger, &order).await {
                    self.count(ok);
                }
            })
            .await;
    }

    /// The defaults and clears queued (a node that does not plan sends its own chargers'
    /// only: the planner does not follow their boots).
    fn take_local(&self) -> (Vec<(String, SiteUnit, Decimal)>, Vec<String>) {
        self.state().take_local()
    }

    /// A cluster node's part of a round: reloads the sites and assignments (any node may
    /// change them), takes or keeps the planner lease and, when this node plans, replaces
    /// the sessions with the cluster-wide view. The fencing token when it plans.
    async fn cluster_round(&self, link: &ClusterLink) -> Option<u64> {
        use std::sync::atomic::Ordering;
        if let Err(e) = self.reload().await {
            tracing::error!("sites: reloading the sites failed: {e}");
        }
        let token = match link.cluster.lead_fenced(PLANNER).await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("sites: the planner lease is not known: {e}");
                None
            }
        };
        let was = self.token.swap(token.unwrap_or(0), Ordering::Relaxed);
        if was != token.unwrap_or(0) {
            // A new planner sends every share again; one that lost the lease forgets its plan.
            let mut st = self.state();
            for site in st.sites.values_mut() {
                site.sessions.clear();
                site.dirty = true;
            }
            match token {
                Some(t) => tracing::info!(token = t, "sites: this node plans every site"),
                None => tracing::info!("sites: another node plans the sites"),
            }
        }
        let token = token?;
        if let Err(e) = self.refresh_sessions(link).await {
            tracing::error!("sites: the cluster's sessions are not known: {e}");
            return None;
        }
        Some(token)
    }

    /// Reads the sites and the charger assignments as stored.
    async fn reload(&self) -> Result<(), DbError> {
        let rows = sqlx::query(
            "SELECT id, name, limit_value, limit_unit, min_rate, evse_max FROM sites ORDER BY id",
        )
        .fetch_all(self.db.reader())
        .await?;
        let rows = rows.iter().map(site_row).collect::<Result<Vec<_>, _>>()?;
        let assigned = sqlx::query("SELECT charger, site_id FROM site_chargers")
            .fetch_all(self.db.reader())
            .await?
            .iter()
            .map(|r| Ok((r.try_get("charger")?, r.try_get("site_id")?)))
            .collect::<Result<HashMap<String, i64>, DbError>>()?;
        let mut st = self.state();
        let ids: HashSet<i64> = rows.iter().map(|r| r.id).collect();
        st.sites.retain(|id, _| ids.contains(id));
        for row in rows {
            match st.sites.get_mut(&row.id) {
                Some(site) if site.row != row => {
                    site.row = row;
                    site.dirty = true;
                }
                Some(_) => {}
                None => {
                    st.sites.insert(
                        row.id,
                        Site {
                            row,
                            sessions: BTreeMap::new(),
                            dirty: true,
                            history: VecDeque::new(),
                        },
                    );
                }
            }
        }
        st.charger_site = assigned;
        Ok(())
    }

    /// The planner's view: the active sessions (shared database) of every site's chargers
    /// connected to a live node (presence), with their last measured power. A session
    /// keeps its arrival and what was sent to it while it goes on.
    async fn refresh_sessions(&self, link: &ClusterLink) -> Result<(), OrderError> {
        let rows = sqlx::query(
            "SELECT s.charger, s.evse, s.transaction_id, s.power_w FROM sessions s
             JOIN site_chargers sc ON sc.charger = s.charger
             WHERE s.status = 'active' ORDER BY s.id",
        )
        .fetch_all(self.db.reader())
        .await
        .map_err(|e| OrderError::Cluster(ClusterError::Encoding(e.to_string())))?;
        let mut found: Vec<(String, i32, String, Option<Decimal>)> = Vec::with_capacity(rows.len());
        for r in &rows {
            let evse: i64 = r.try_get("evse").unwrap_or(0);
            let power: Option<String> = r.try_get("power_w").unwrap_or(None);
            let (Ok(charger), Ok(tx)) = (
                r.try_get::<String, _>("charger"),
                r.try_get::<String, _>("transaction_id"),
            ) else {
                continue;
            };
            found.push((
                charger,
                i32::try_from(evse).unwrap_or(0),
                tx,
                power.and_then(|p| Decimal::from_str(&p).ok()),
            ));
        }
        let mut names: Vec<String> = found.iter().map(|f| f.0.clone()).collect();
        names.sort();
        names.dedup();
        let present = link.cluster.lookup_many(&names).await?;
        let connected: HashSet<&String> = names
            .iter()
            .zip(&present)
            .filter(|(c, p)| p.is_some() || self.chargers.get(c).is_some_and(|h| h.is_connected()))
            .map(|(c, _)| c)
            .collect();
        let max = self.cfg.max_sessions_per_site;
        let mut st = self.state();
        let st = &mut *st;
        let mut seen: HashMap<i64, HashSet<(String, i32)>> = HashMap::new();
        for (charger, evse, tx, power) in &found {
            if !connected.contains(charger) {
                continue;
            }
            let Some(site_id) = st.charger_site.get(charger).copied() else {
                continue;
            };
            let Some(site) = st.sites.get_mut(&site_id) else {
                continue;
            };
            let key = (charger.clone(), *evse);
            match site.sessions.get_mut(&key) {
                Some(s) if s.transaction_id == *tx => {
                    if s.measured_w != *power {
                        s.measured_w = *power;
                        s.measured_at = None;
                        site.dirty = true;
                    }
                }
                _ => {
                    if site.sessions.len() >= max && !site.sessions.contains_key(&key) {
                        st.stats.sessions_dropped += 1;
                        continue;
                    }
                    st.arrivals += 1;
                    site.sessions.insert(
                        key.clone(),
                        Session::new(st.arrivals, tx.clone(), *power, None),
                    );
                    site.dirty = true;
                }
            }
            seen.entry(site_id).or_default().insert(key);
        }
        let now = Utc::now();
        for (id, site) in &mut st.sites {
            let keep = seen.remove(id).unwrap_or_default();
            let before = site.sessions.len();
            site.sessions.retain(|k, _| keep.contains(k));
            if site.sessions.len() != before {
                site.dirty = true;
            }
            Self::point(&self.cfg, site, now);
        }
        Ok(())
    }

    fn count(&self, ok: bool) {
        let mut st = self.state();
        st.stats.profiles_sent += 1;
        if !ok {
            st.stats.profiles_failed += 1;
        }
    }

    async fn send_all(&self, sends: Vec<Send>, fence: Option<u64>) {
        use futures::StreamExt;
        let n = self.cfg.send_concurrency.max(1);
        futures::stream::iter(sends)
            .for_each_concurrent(n, |s| async move { self.send_one(s, fence).await })
            .await;
    }

    async fn send_one(&self, s: Send, fence: Option<u64>) {
        let order = ProfileOrder {
            fence,
            kind: OrderKind::Tx,
            evse: Some(s.evse),
            transaction_id: Some(s.transaction_id.clone()),
            unit: s.unit,
            limit: Some(s.limit),
        };
        let ok = self.deliver(&s.charger, &order).await.unwrap_or(false);
        self.count(ok);
        if !ok {
            // Not applied: send again at the next plan.
            let mut st = self.state();
            if let Some(site) = st.sites.get_mut(&s.site) {
                if let Some(sess) = site.sessions.get_mut(&(s.charger.clone(), s.evse)) {
                    if sess.transaction_id == s.transaction_id {
                        sess.sent = None;
                        site.dirty = true;
                    }
                }
            }
        }
    }

    /// Carries `order` out for `charger`: here when it is connected here, else (on a
    /// cluster) on the node holding it. Whether the charger accepted; `None` when it is
    /// connected nowhere (nothing sent).
    async fn deliver(&self, charger: &str, order: &ProfileOrder) -> Option<bool> {
        if let Some(h) = self.chargers.get(charger).filter(|h| h.is_connected()) {
            if self.cluster.get().is_some() && order.kind == OrderKind::Tx {
                // The planner's own chargers check its fencing token like any node's.
                return match self.apply_order(charger, order).await {
                    Ok(accepted) => Some(accepted),
                    Err(e) => {
                        tracing::warn!(charger, "balancer profile not sent: {e}");
                        Some(false)
                    }
                };
            }
            return Some(self.apply_local(&h, order).await);
        }
        let link = self.cluster.get()?;
        let owner = match link.cluster.lookup(charger).await {
            Ok(Some(o)) if o.node != link.cluster.node_id() => o,
            Ok(_) => return None,
            Err(e) => {
                tracing::warn!(charger, "balancer profile not sent: {e}");
                return Some(false);
            }
        };
        let body = match serde_json::to_string(order) {
            Ok(b) => b,
            Err(_) => return Some(false),
        };
        let forward = Forward {
            method: "POST".into(),
            uri: super::api::charger_path(charger, "/balancer-profile"),
            content_type: Some("application/json".into()),
            body,
            principal: "cluster:site-planner".into(),
            role: super::auth::Role::Operator,
        };
        match link
            .cluster
            .route(&owner.node, forward, link.route_timeout)
            .await
        {
            Ok(a) if a.status == 200 => Some(
                serde_json::from_str::<serde_json::Value>(&a.body)
                    .ok()
                    .and_then(|v| v["accepted"].as_bool())
                    .unwrap_or(false),
            ),
            Ok(a) => {
                tracing::warn!(charger, node = %owner.node, status = a.status, body = %a.body, "balancer profile refused by its node");
                Some(false)
            }
            Err(e) => {
                tracing::warn!(charger, node = %owner.node, "balancer profile not routed: {e}");
                Some(false)
            }
        }
    }

    /// Carries out an order of the site planner for a charger connected here (`POST
    /// /api/chargers/{id}/balancer-profile`): a `tx` order only with the current planner
    /// lease's fencing token. Whether the charger accepted.
    pub async fn apply_order(
        &self,
        charger: &str,
        order: &ProfileOrder,
    ) -> Result<bool, OrderError> {
        if order.kind == OrderKind::Tx {
            if let Some(link) = self.cluster.get() {
                let current = link.cluster.fence(PLANNER).await?;
                if order.fence.is_none() || order.fence != current {
                    return Err(OrderError::Stale(order.fence, current));
                }
            }
            if order.evse.is_none() || order.transaction_id.is_none() || order.limit.is_none() {
                return Err(OrderError::Invalid(
                    "a tx order needs evse, transactionId and limit",
                ));
            }
        }
        if order.kind == OrderKind::Default && order.limit.is_none() {
            return Err(OrderError::Invalid("a default order needs a limit"));
        }
        let Some(h) = self.chargers.get(charger).filter(|h| h.is_connected()) else {
            return Err(OrderError::Offline(charger.to_owned()));
        };
        Ok(self.apply_local(&h, order).await)
    }

    /// Sends the profile of `order` to a charger connected here; whether it accepted.
    async fn apply_local(&self, h: &ChargerHandle, order: &ProfileOrder) -> bool {
        let charger = h.identity();
        match order.kind {
            OrderKind::Tx => {
                let (Some(evse), Some(tx), Some(limit)) =
                    (order.evse, order.transaction_id.as_ref(), order.limit)
                else {
                    return false;
                };
                let mut p = ChargingProfile::constant(
                    TX_PROFILE_ID,
                    STACK_LEVEL,
                    Purpose::Tx,
                    order.unit.rate_unit(),
                    limit,
                    Utc::now(),
                );
                p.transaction_id = Some(tx.clone());
                match h.set_charging_profile(evse, &p).await {
                    Ok(a) if a.is_accepted() => true,
                    Ok(a) => {
                        tracing::warn!(charger = %charger, evse, status = %a.status, "balancer profile refused");
                        false
                    }
                    Err(e) => {
                        tracing::warn!(charger = %charger, evse, "balancer profile not sent: {e}");
                        false
                    }
                }
            }
            OrderKind::Default => {
                let Some(limit) = order.limit else {
                    return false;
                };
                let p = ChargingProfile::constant(
                    TX_DEFAULT_PROFILE_ID,
                    STACK_LEVEL,
                    Purpose::TxDefault,
                    order.unit.rate_unit(),
                    limit,
                    Utc::now(),
                );
                matches!(h.set_charging_profile(0, &p).await, Ok(a) if a.is_accepted())
            }
            OrderKind::Clear => h
                .clear_charging_profiles(&ClearProfiles {
                    stack_level: Some(STACK_LEVEL),
                    ..ClearProfiles::default()
                })
                .await
                .is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reading_is_judged_against_the_limit_in_force_when_it_was_taken() {
        let t0 = Utc::now();
        let mut s = Session::new(1, "7".into(), Some(Decimal::from(1_430)), Some(t0));
        assert_eq!(s.given_at_measurement(), None, "nothing sent yet");
        s.mark_sent(Decimal::from(1_430));
        s.sent_at = Some(t0 - chrono::Duration::seconds(5));
        assert_eq!(s.given_at_measurement(), Some(Decimal::from(1_430)));
        // Raised to 4 kW after the reading was taken: the reading says nothing of the
        // new limit, so the EV is not taken as EV-limited.
        s.mark_sent(Decimal::from(4_000));
        s.sent_at = Some(t0 + chrono::Duration::milliseconds(1));
        assert_eq!(s.given_at_measurement(), Some(Decimal::from(1_430)));
        let cap = balancer::cap_from_measurement(
            Decimal::from(11_000),
            s.given_at_measurement(),
            s.measured_w,
            Decimal::ONE,
        );
        assert_eq!(cap, Decimal::from(11_000));
        // A reading taken after it is judged against it.
        s.measured_at = Some(t0 + chrono::Duration::seconds(1));
        assert_eq!(s.given_at_measurement(), Some(Decimal::from(4_000)));
        // A reading without a time is taken as current.
        s.measured_at = None;
        assert_eq!(s.given_at_measurement(), Some(Decimal::from(4_000)));
    }
}
