//! Scale-out: several central-system nodes on one PostgreSQL database, behind a load
//! balancer, sharing presence, command routing and the live feed through a broker.
//!
//! [`Cluster`] is the small interface the backend needs from the broker; [`Local`] is the
//! single node (nothing shared, nothing to do) and [`RedisCluster`] is the implementation we
//! ship and test. Another broker (NATS, Kafka) implements the same trait.
//!
//! What Redis holds (every key under the cluster's name, `ocpp` by default):
//!
//! - `ocpp:node:<node>`: the node's liveness, a lease of [`ClusterConfig::lease`] renewed
//!   every third of it. A node killed with `kill -9` loses it within one lease.
//! - `ocpp:presence:<identity>`: `<node>|<connection>` of the connection holding the charger's
//!   socket, with the same lease, renewed by one task per node for all its chargers (a Lua
//!   script per batch of [`RENEW_BATCH`] keys that extends only the keys still its own). A
//!   lookup believes a presence only while its node's liveness key exists, so a dead node's
//!   chargers read offline at once, not after their own lease (no zombie presence).
//! - `ocpp:cmd:<node>`: a stream of what other nodes ask this node: an API request for a
//!   charger it holds (run through its own API, so the answer, its status code, timeouts and
//!   errors are exactly those of a local request), or a takeover (a newer connection of one of
//!   its chargers was accepted elsewhere: it closes its socket).
//! - `ocpp:reply:<node>`: a stream of answers to the requests this node routed, read by one
//!   task that hands each to its waiting request.
//! - `ocpp:leader:<task>`: `<node>|<token>` of the node leading a cluster-wide task (the
//!   site planner, `sites.rs`), a lease renewed by the leader; `ocpp:leader:<task>:token`
//!   the fencing token counter, raised by every new leader, so the nodes refuse the orders
//!   of a leader that lost its lease ([`Cluster::lead_fenced`], [`Cluster::fence`]).
//! - the `ocpp:events` channel: every node's live-feed entries, so the dashboard and the SSE
//!   feed of any node show every charger.
//!
//! Streams are trimmed (`MAXLEN ~` [`STREAM_MAX`]); requests carry a deadline and are dropped
//! unanswered past it (the caller has answered 504 by then), so a restarted node never runs
//! an old command.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use redis::aio::ConnectionManager;
use redis::streams::StreamReadReply;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::auth::Role;
use super::LiveEvent;

/// Presence keys renewed by one script call.
pub const RENEW_BATCH: usize = 500;
/// The approximate length past which the command and reply streams are trimmed.
pub const STREAM_MAX: usize = 10_000;
/// Routed requests waiting for their answer on one node at once; beyond, 503.
pub const MAX_WAITING: usize = 10_000;
/// Routed requests run at once on one node for the other nodes (each is one API request).
pub const MAX_RUNNING: usize = 1_024;
/// Live-feed entries queued for publishing; beyond, entries are dropped (and counted).
pub const PUBLISH_QUEUE: usize = 8_192;

/// Where a charger's socket is: the node and the connection on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The node id.
    pub node: String,
    /// The connection on that node (`<node start>.<connection id>`).
    pub connection: String,
}

impl Owner {
    fn encode(&self) -> String {
        format!("{}|{}", self.node, self.connection)
    }

    fn decode(s: &str) -> Option<Owner> {
        let (node, connection) = s.split_once('|')?;
        Some(Owner {
            node: node.to_owned(),
            connection: connection.to_owned(),
        })
    }
}

/// An API request routed to the node holding the charger (the operator was authenticated
/// and authorized on the node that received it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Forward {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// The `Content-Type` of the body.
    pub content_type: Option<String>,
    /// The body (the API takes JSON: UTF-8).
    pub body: String,
    /// Who asked.
    pub principal: String,
    /// Their role.
    pub role: Role,
}

/// The answer to a [`Forward`]: the HTTP response of the node holding the charger.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForwardAnswer {
    /// HTTP status.
    pub status: u16,
    /// Its `Content-Type`.
    pub content_type: Option<String>,
    /// Its body.
    pub body: String,
}

/// Why a cluster operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// The broker failed or is unreachable.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// The node holding the charger answered nothing in time.
    #[error("node {0} did not answer in time")]
    Timeout(String),
    /// Too many routed requests wait for an answer on this node.
    #[error("{MAX_WAITING} routed requests already wait for their answers")]
    Busy,
    /// A message between nodes could not be encoded or decoded.
    #[error("cluster message: {0}")]
    Encoding(String),
    /// This node is not part of a cluster.
    #[error("not in a cluster")]
    NotClustered,
    /// Another live process holds this node id (two nodes under one id would read each
    /// other's commands).
    #[error("node id {0} is held by another live process (its lease did not end)")]
    NodeIdInUse(String),
}

/// What a node does for the others (implemented by the backend with its API router).
#[async_trait]
pub trait Inbound: Send + Sync + 'static {
    /// Runs an API request routed here.
    async fn forward(&self, request: Forward) -> ForwardAnswer;
    /// A newer connection of `identity` was accepted on node `by`: close the local one if it
    /// is `connection` (`<node start>.<connection id>`).
    fn takeover(&self, identity: &str, connection: &str, by: &str);
    /// A live-feed entry of another node.
    fn event(&self, event: LiveEvent);
}

/// The broker of a cluster of central-system nodes.
#[async_trait]
pub trait Cluster: Send + Sync + fmt::Debug + 'static {
    /// This node's id.
    fn node_id(&self) -> &str;
    /// Whether other nodes may exist (false: [`Local`]).
    fn is_clustered(&self) -> bool;
    /// The connection name of local connection `connection_id` (`<node start>.<id>`).
    fn connection(&self, connection_id: u64) -> String;
    /// Claims `identity` for a new local connection (the newest connection wins); returns the
    /// previous owner when it was another connection.
    async fn claim(
        &self,
        identity: &str,
        connection_id: u64,
    ) -> Result<Option<Owner>, ClusterError>;
    /// Releases `identity` if `connection_id` still holds it.
    async fn release(&self, identity: &str, connection_id: u64) -> Result<(), ClusterError>;
    /// Where `identity` is connected, if on a live node.
    async fn lookup(&self, identity: &str) -> Result<Option<Owner>, ClusterError>;
    /// [`Cluster::lookup`] of many (one round trip per few hundred).
    async fn lookup_many(&self, identities: &[String]) -> Result<Vec<Option<Owner>>, ClusterError>;
    /// Asks node `old.node` to close connection `old` of `identity` (taken over here).
    async fn takeover(&self, identity: &str, old: &Owner) -> Result<(), ClusterError>;
    /// Runs `request` on `node` and returns its answer, or fails after `timeout`.
    async fn route(
        &self,
        node: &str,
        request: Forward,
        timeout: Duration,
    ) -> Result<ForwardAnswer, ClusterError>;
    /// Sends a live-feed entry of this node to the other nodes (never blocks; dropped when
    /// the queue is full).
    fn publish(&self, event: &LiveEvent);
    /// Whether this node leads `task` (one node at a time does cluster-wide chores): taken
    /// when free, kept while this node asks again within the lease.
    async fn lead(&self, task: &str) -> Result<bool, ClusterError>;
    /// How many nodes hold a lease now (1 for [`Local`]).
    async fn live_nodes(&self) -> Result<u32, ClusterError>;
    /// Takes or keeps the leader lease of `task` with a fencing token: `Some(token)` while
    /// this node leads (the token is the same while it keeps the lease and grows with every
    /// new leader), `None` while another live node does. A leader that does not ask again
    /// within the lease loses it to the next node that asks.
    async fn lead_fenced(&self, task: &str) -> Result<Option<u64>, ClusterError>;
    /// The fencing token of `task`'s current leader lease (`None`: no leader now). Whoever
    /// acts on a leader's order checks the order's token against this, so a stale leader's
    /// orders are refused.
    async fn fence(&self, task: &str) -> Result<Option<u64>, ClusterError>;
    /// The node leading `task` now, if any.
    async fn leader(&self, task: &str) -> Result<Option<String>, ClusterError>;
}

/// A single node: nothing shared.
#[derive(Debug, Default)]
pub struct Local;

#[async_trait]
impl Cluster for Local {
    fn node_id(&self) -> &str {
        "local"
    }
    fn is_clustered(&self) -> bool {
        false
    }
    fn connection(&self, connection_id: u64) -> String {
        connection_id.to_string()
    }
    async fn claim(&self, _: &str, _: u64) -> Result<Option<Owner>, ClusterError> {
        Ok(None)
    }
    async fn release(&self, _: &str, _: u64) -> Result<(), ClusterError> {
        Ok(())
    }
    async fn lookup(&self, _: &str) -> Result<Option<Owner>, ClusterError> {
        Ok(None)
    }
    async fn lookup_many(&self, ids: &[String]) -> Result<Vec<Option<Owner>>, ClusterError> {
        Ok(vec![None; ids.len()])
    }
    async fn takeover(&self, _: &str, _: &Owner) -> Result<(), ClusterError> {
        Ok(())
    }
    async fn route(&self, _: &str, _: Forward, _: Duration) -> Result<ForwardAnswer, ClusterError> {
        Err(ClusterError::NotClustered)
    }
    fn publish(&self, _: &LiveEvent) {}
    async fn lead(&self, _: &str) -> Result<bool, ClusterError> {
        Ok(true)
    }
    async fn live_nodes(&self) -> Result<u32, ClusterError> {
        Ok(1)
    }
    async fn lead_fenced(&self, _: &str) -> Result<Option<u64>, ClusterError> {
        Ok(Some(1))
    }
    async fn fence(&self, _: &str) -> Result<Option<u64>, ClusterError> {
        Ok(Some(1))
    }
    async fn leader(&self, _: &str) -> Result<Option<String>, ClusterError> {
        Ok(Some("local".to_owned()))
    }
}

/// The settings of a [`RedisCluster`].
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `redis://HOST:PORT`.
    pub url: String,
    /// This node's id: 1 to 64 of `A-Z a-z 0-9 - _ .`.
    pub node_id: String,
    /// The cluster's name, the first part of every key (several clusters can share one
    /// Redis); same rule as node ids.
    pub name: String,
    /// The lease of the node's liveness and its chargers' presence; renewed every third.
    pub lease: Duration,
}

/// Checks a node id (it is part of Redis keys and of presence values).
pub fn valid_node_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The Redis implementation of [`Cluster`].
pub struct RedisCluster {
    config: ClusterConfig,
    client: redis::Client,
    conn: ConnectionManager,
    /// This process's start (ms since the epoch): connections of an earlier process of the
    /// same node id are other connections.
    started: u64,
    /// The presence this node claimed: identity -> encoded owner.
    claimed: Mutex<HashMap<String, String>>,
    /// Routed requests waiting for their answer, by request id.
    waiting: Mutex<HashMap<String, oneshot::Sender<ForwardAnswer>>>,
    next_request: AtomicU64,
    events: mpsc::Sender<String>,
    events_rx: Mutex<Option<mpsc::Receiver<String>>>,
    /// Live-feed entries dropped because the publish queue was full.
    dropped: AtomicU64,
    /// Set by [`RedisCluster::leave`]: every task of the node ends (none renews a lease or
    /// runs a command of a node that left).
    left: tokio::sync::watch::Sender<bool>,
    /// The tasks whose fenced leader lease this node asked for (given up on leaving).
    leads: Mutex<std::collections::HashSet<String>>,
}

impl fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCluster")
            .field("node", &self.config.node_id)
            .field("lease", &self.config.lease)
            .finish_non_exhaustive()
    }
}

const RENEW: &str = r"
local lost = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if v == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[1])
  elseif not v then
    redis.call('SET', key, ARGV[i + 1], 'PX', ARGV[1])
  else
    table.insert(lost, i)
  end
end
return lost
";

const LEAD: &str = r"
local v = redis.call('GET', KEYS[1])
if not v or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
";

/// KEYS[1] the lease (`<node>|<token>`), KEYS[2] the token counter; ARGV[1] the node,
/// ARGV[2] the lease in ms. Returns the token while this node leads, else 0.
const LEAD_FENCED: &str = r"
local v = redis.call('GET', KEYS[1])
if v then
  local node, token = string.match(v, '^(.*)|(%d+)$')
  if node == ARGV[1] and token then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(token)
  end
  return 0
end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. t, 'PX', ARGV[2])
return t
";

/// KEYS[1] a fenced leader lease; ARGV[1] the node: deleted if the node holds it.
const RESIGN: &str = r"
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '|' then
  return redis.call('DEL', KEYS[1])
end
return 0
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn lease_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// A live-feed entry between nodes.
#[derive(Serialize, Deserialize)]
struct Published {
    node: String,
    event: LiveEvent,
}

impl RedisCluster {
    fn node_key(&self, node: &str) -> String {
        format!("{}:node:{node}", self.config.name)
    }
    fn presence_key(&self, identity: &str) -> String {
        format!("{}:presence:{identity}", self.config.name)
    }
    fn cmd_key(&self, node: &str) -> String {
        format!("{}:cmd:{node}", self.config.name)
    }
    fn reply_key(&self, node: &str) -> String {
        format!("{}:reply:{node}", self.config.name)
    }
    fn events_channel(&self) -> String {
        format!("{}:events", self.config.name)
    }

    /// Connects to Redis. Nothing is claimed until [`RedisCluster::serve`].
    pub async fn connect(config: ClusterConfig) -> Result<Arc<RedisCluster>, ClusterError> {
        for (what, id) in [("node id", &config.node_id), ("cluster name", &config.name)] {
            if !valid_node_id(id) {
                return Err(ClusterError::Encoding(format!(
                    "{what} {id:?}: 1 to 64 of A-Z a-z 0-9 - _ ."
                )));
            }
        }
        let client = redis::Client::open(config.url.as_str())?;
        let conn = ConnectionManager::new(client.clone()).await?;
        let (events, events_rx) = mpsc::channel(PUBLISH_QUEUE);
        Ok(Arc::new(RedisCluster {
            config,
            client,
            conn,
            started: now_ms(),
            claimed: Mutex::new(HashMap::new()),
            waiting: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
            events,
            events_rx: Mutex::new(Some(events_rx)),
            dropped: AtomicU64::new(0),
            left: tokio::sync::watch::channel(false).0,
            leads: Mutex::new(std::collections::HashSet::new()),
        }))
    }

    /// The node and fencing token of `task`'s leader lease, if one lives.
    async fn leader_lease(&self, task: &str) -> Result<Option<(String, u64)>, ClusterError> {
        let mut conn = self.conn.clone();
        let v: Option<String> = redis::cmd("GET")
            .arg(format!("{}:leader:{task}", self.config.name))
            .query_async(&mut conn)
            .await?;
        Ok(v.as_deref()
            .and_then(|v| v.rsplit_once('|'))
            .and_then(|(node, token)| Some((node.to_owned(), token.parse().ok()?))))
    }

    /// Live-feed entries dropped so far because the publish queue was full.
    pub fn dropped_events(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Takes this node's lease and starts its tasks: the lease and presence renewal, the
    /// command and reply readers, the live-feed publisher and subscriber. Call once, before
    /// chargers are accepted.
    pub async fn serve(self: &Arc<Self>, inbound: Arc<dyn Inbound>) -> Result<(), ClusterError> {
        let mut conn = self.conn.clone();
        let lease = lease_ms(self.config.lease);
        // The node id must be free: a process of it that died lets go within one lease.
        let deadline = tokio::time::Instant::now() + self.config.lease + Duration::from_secs(1);
        loop {
            let taken: Option<String> = redis::cmd("SET")
                .arg(self.node_key(&self.config.node_id))
                .arg(self.started)
                .arg("PX")
                .arg(lease)
                .arg("NX")
                .query_async(&mut conn)
                .await?;
            if taken.is_some() {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError::NodeIdInUse(self.config.node_id.clone()));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Commands from here on (an earlier process's are its own).
        let last_cmd = last_stream_id(&mut conn, &self.cmd_key(&self.config.node_id)).await?;
        let last_reply = last_stream_id(&mut conn, &self.reply_key(&self.config.node_id)).await?;
        let cmd_conn = ConnectionManager::new(self.client.clone()).await?;
        let reply_conn = ConnectionManager::new(self.client.clone()).await?;
        let pubsub = self.client.get_async_pubsub().await?;
        let rx = self
            .events_rx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let me = self.clone();
        let inb = inbound.clone();
        self.spawn(async move { me.renew_loop(inb).await });
        let me = self.clone();
        let inb = inbound.clone();
        self.spawn(async move { me.command_loop(cmd_conn, last_cmd, inb).await });
        let me = self.clone();
        self.spawn(async move { me.reply_loop(reply_conn, last_reply).await });
        if let Some(rx) = rx {
            let me = self.clone();
            self.spawn(async move { me.publish_loop(rx).await });
        }
        let me = self.clone();
        self.spawn(async move { me.subscribe_loop(pubsub, inbound).await });
        tracing::info!(node = %self.config.node_id, url = %self.config.url, "cluster node up");
        Ok(())
    }

    /// Runs one of the node's tasks until the node leaves.
    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut left = self.left.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                () = task => {}
                _ = left.wait_for(|l| *l) => {}
            }
        });
    }

    /// Gives up this node's lease and its chargers' presence (a clean stop: the other nodes
    /// see them offline at once instead of after the lease), and ends the node's tasks.
    pub async fn leave(&self) {
        self.left.send_replace(true);
        let mut conn = self.conn.clone();
        let claimed: Vec<(String, String)> = self
            .claimed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        let script = redis::Script::new(RELEASE);
        for (identity, value) in claimed {
            let _: Result<i64, _> = script
                .key(self.presence_key(&identity))
                .arg(value)
                .invoke_async(&mut conn)
                .await;
        }
        let _: Result<i64, _> = redis::cmd("DEL")
            .arg(self.node_key(&self.config.node_id))
            .query_async(&mut conn)
            .await;
        // The tasks it leads go to the next node that asks, without waiting for the lease.
        let leads: Vec<String> = self
            .leads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        for task in leads {
            let _: Result<i64, _> = redis::Script::new(RESIGN)
                .key(format!("{}:leader:{task}", self.config.name))
                .arg(&self.config.node_id)
                .invoke_async(&mut conn)
                .await;
        }
    }

    async fn renew_loop(self: Arc<Self>, inbound: Arc<dyn Inbound>) {
        let period = self.config.lease / 3;
        let lease = lease_ms(self.config.lease);
        let script = redis::Script::new(RENEW);
        let mut tick = tokio::time::interval(period.max(Duration::from_millis(50)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut conn = self.conn.clone();
        loop {
            tick.tick().await;
            let node: Result<(), _> = redis::cmd("SET")
                .arg(self.node_key(&self.config.node_id))
                .arg(self.started)
                .arg("PX")
                .arg(lease)
                .query_async(&mut conn)
                .await;
            if let Err(e) = node {
                tracing::error!("cluster: cannot renew the node lease: {e}");
                continue;
            }
            let claimed: Vec<(String, String)> = self
                .claimed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for batch in claimed.chunks(RENEW_BATCH) {
                let mut inv = script.prepare_invoke();
                inv.arg(lease);
                for (identity, value) in batch {
                    inv.key(self.presence_key(identity)).arg(value);
                }
                match inv.invoke_async::<Vec<usize>>(&mut conn).await {
                    Ok(lost) => {
                        for i in lost {
                            // Taken by a newer connection elsewhere: its takeover closes ours;
                            // should that message be lost, this does (no zombie socket).
                            let Some((identity, value)) =
                                i.checked_sub(1).and_then(|i| batch.get(i))
                            else {
                                continue;
                            };
                            self.forget(identity, value);
                            if let Some(mine) = Owner::decode(value) {
                                inbound.takeover(identity, &mine.connection, "another node");
                            }
                        }
                    }
                    Err(e) => tracing::error!("cluster: cannot renew presence: {e}"),
                }
            }
        }
    }

    /// Stops renewing `identity` if `value` is still what this node claimed for it.
    fn forget(&self, identity: &str, value: &str) {
        let mut claimed = self.claimed.lock().unwrap_or_else(|e| e.into_inner());
        if claimed.get(identity).map(String::as_str) == Some(value) {
            claimed.remove(identity);
        }
    }

    async fn command_loop(
        self: Arc<Self>,
        mut conn: ConnectionManager,
        mut last: String,
        inbound: Arc<dyn Inbound>,
    ) {
        let key = self.cmd_key(&self.config.node_id);
        let running = Arc::new(Semaphore::new(MAX_RUNNING));
        loop {
            let read: Result<Option<StreamReadReply>, _> = redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(2000)
                .arg("COUNT")
                .arg(256)
                .arg("STREAMS")
                .arg(&key)
                .arg(&last)
                .query_async(&mut conn)
                .await;
            let reply = match read {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!("cluster: reading commands: {e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            for entry in reply.keys.into_iter().flat_map(|k| k.ids) {
                last.clone_from(&entry.id);
                let kind: Option<String> = entry.get("k");
                match kind.as_deref() {
                    Some("takeover") => {
                        let (Some(identity), Some(connection), Some(by)) = (
                            entry.get::<String>("identity"),
                            entry.get::<String>("connection"),
                            entry.get::<String>("by"),
                        ) else {
                            continue;
                        };
                        inbound.takeover(&identity, &connection, &by);
                    }
                    Some("fwd") => {
                        let (Some(id), Some(from), Some(deadline), Some(body)) = (
                            entry.get::<String>("id"),
                            entry.get::<String>("from"),
                            entry.get::<u64>("deadline"),
                            entry.get::<String>("body"),
                        ) else {
                            continue;
                        };
                        if now_ms() > deadline {
                            continue; // the caller answered 504 already
                        }
                        let request = match serde_json::from_str::<Forward>(&body) {
                            Ok(r) => r,
                            Err(e) => {
                                tracing::warn!("cluster: unreadable routed request: {e}");
                                continue;
                            }
                        };
                        let Ok(permit) = running.clone().acquire_owned().await else {
                            return;
                        };
                        let inbound = inbound.clone();
                        let mut conn = self.conn.clone();
                        let reply_to = self.reply_key(&from);
                        tokio::spawn(async move {
                            let answer = inbound.forward(request).await;
                            drop(permit);
                            let Ok(body) = serde_json::to_string(&answer) else {
                                return;
                            };
                            let sent: Result<String, _> = redis::cmd("XADD")
                                .arg(&reply_to)
                                .arg("MAXLEN")
                                .arg("~")
                                .arg(STREAM_MAX)
                                .arg("*")
                                .arg("id")
                                .arg(&id)
                                .arg("body")
                                .arg(body)
                                .query_async(&mut conn)
                                .await;
                            if let Err(e) = sent {
                                tracing::error!("cluster: cannot send an answer to {from}: {e}");
                            }
                        });
                    }
                    _ => {}
                }
            }
        }
    }

    async fn reply_loop(self: Arc<Self>, mut conn: ConnectionManager, mut last: String) {
        let key = self.reply_key(&self.config.node_id);
        loop {
            let read: Result<Option<StreamReadReply>, _> = redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(2000)
                .arg("COUNT")
                .arg(256)
                .arg("STREAMS")
                .arg(&key)
                .arg(&last)
                .query_async(&mut conn)
                .await;
            let reply = match read {
                Ok(Some(r)) => r,
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!("cluster: reading answers: {e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            for entry in reply.keys.into_iter().flat_map(|k| k.ids) {
                last.clone_from(&entry.id);
                let (Some(id), Some(body)) =
                    (entry.get::<String>("id"), entry.get::<String>("body"))
                else {
                    continue;
                };
                let Ok(answer) = serde_json::from_str::<ForwardAnswer>(&body) else {
                    tracing::warn!("cluster: unreadable answer {id}");
                    continue;
                };
                let waiter = self
                    .waiting
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                if let Some(tx) = waiter {
                    let _ = tx.send(answer);
                }
            }
        }
    }

    /// Follows the other nodes' live-feed entries; subscribes again after Redis went away.
    async fn subscribe_loop(self: Arc<Self>, first: redis::aio::PubSub, inbound: Arc<dyn Inbound>) {
        let node = self.config.node_id.clone();
        let channel = self.events_channel();
        let mut next = Some(first);
        loop {
            let pubsub = match next.take() {
                Some(p) => Ok(p),
                None => self.client.get_async_pubsub().await,
            };
            let mut pubsub = match pubsub {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!("cluster: cannot follow the live feed: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if let Err(e) = pubsub.subscribe(&channel).await {
                tracing::error!("cluster: cannot follow the live feed: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            let mut messages = pubsub.into_on_message();
            while let Some(msg) = messages.next().await {
                let Ok(text) = msg.get_payload::<String>() else {
                    continue;
                };
                match serde_json::from_str::<Published>(&text) {
                    Ok(p) if p.node != node => inbound.event(p.event),
                    Ok(_) => {}
                    Err(e) => tracing::warn!("cluster: unreadable live-feed entry: {e}"),
                }
            }
            tracing::error!("cluster: the live-feed subscription ended; following it again");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn publish_loop(self: Arc<Self>, mut rx: mpsc::Receiver<String>) {
        let mut conn = self.conn.clone();
        let channel = self.events_channel();
        let mut batch = Vec::with_capacity(256);
        while rx.recv_many(&mut batch, 256).await > 0 {
            let mut pipe = redis::pipe();
            for text in batch.drain(..) {
                pipe.cmd("PUBLISH").arg(&channel).arg(text).ignore();
            }
            if let Err(e) = pipe.query_async::<()>(&mut conn).await {
                tracing::error!("cluster: cannot publish live-feed entries: {e}");
            }
        }
    }
}

async fn last_stream_id(conn: &mut ConnectionManager, key: &str) -> Result<String, ClusterError> {
    let last: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
        .arg(key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await?;
    Ok(last
        .ids
        .first()
        .map_or_else(|| "0-0".to_owned(), |e| e.id.clone()))
}

#[async_trait]
impl Cluster for RedisCluster {
    fn node_id(&self) -> &str {
        &self.config.node_id
    }

    fn is_clustered(&self) -> bool {
        true
    }

    fn connection(&self, connection_id: u64) -> String {
        format!("{}.{connection_id}", self.started)
    }

    async fn claim(
        &self,
        identity: &str,
        connection_id: u64,
    ) -> Result<Option<Owner>, ClusterError> {
        let mine = Owner {
            node: self.config.node_id.clone(),
            connection: self.connection(connection_id),
        };
        let value = mine.encode();
        self.claimed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(identity.to_owned(), value.clone());
        let mut conn = self.conn.clone();
        let old: Option<String> = redis::cmd("SET")
            .arg(self.presence_key(identity))
            .arg(&value)
            .arg("PX")
            .arg(lease_ms(self.config.lease))
            .arg("GET")
            .query_async(&mut conn)
            .await?;
        Ok(old
            .as_deref()
            .and_then(Owner::decode)
            .filter(|o| *o != mine))
    }

    async fn release(&self, identity: &str, connection_id: u64) -> Result<(), ClusterError> {
        let value = Owner {
            node: self.config.node_id.clone(),
            connection: self.connection(connection_id),
        }
        .encode();
        self.forget(identity, &value);
        let mut conn = self.conn.clone();
        let _: i64 = redis::Script::new(RELEASE)
            .key(self.presence_key(identity))
            .arg(value)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn lookup(&self, identity: &str) -> Result<Option<Owner>, ClusterError> {
        let mut found = self.lookup_many(&[identity.to_owned()]).await?;
        Ok(found.pop().flatten())
    }

    async fn lookup_many(&self, identities: &[String]) -> Result<Vec<Option<Owner>>, ClusterError> {
        let mut conn = self.conn.clone();
        let mut out = Vec::with_capacity(identities.len());
        let mut alive: HashMap<String, bool> = HashMap::new();
        for chunk in identities.chunks(RENEW_BATCH) {
            let keys: Vec<String> = chunk.iter().map(|i| self.presence_key(i)).collect();
            let values: Vec<Option<String>> =
                redis::cmd("MGET").arg(keys).query_async(&mut conn).await?;
            for v in values {
                let owner = v.as_deref().and_then(Owner::decode);
                let owner = match owner {
                    Some(o) => {
                        let live = match alive.get(&o.node) {
                            Some(l) => *l,
                            None => {
                                let l: bool = redis::cmd("EXISTS")
                                    .arg(self.node_key(&o.node))
                                    .query_async(&mut conn)
                                    .await?;
                                alive.insert(o.node.clone(), l);
                                l
                            }
                        };
                        live.then_some(o)
                    }
                    None => None,
                };
                out.push(owner);
            }
        }
        Ok(out)
    }

    async fn takeover(&self, identity: &str, old: &Owner) -> Result<(), ClusterError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("XADD")
            .arg(self.cmd_key(&old.node))
            .arg("MAXLEN")
            .arg("~")
            .arg(STREAM_MAX)
            .arg("*")
            .arg("k")
            .arg("takeover")
            .arg("identity")
            .arg(identity)
            .arg("connection")
            .arg(&old.connection)
            .arg("by")
            .arg(&self.config.node_id)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn route(
        &self,
        node: &str,
        request: Forward,
        timeout: Duration,
    ) -> Result<ForwardAnswer, ClusterError> {
        let body =
            serde_json::to_string(&request).map_err(|e| ClusterError::Encoding(e.to_string()))?;
        let id = format!(
            "{}.{}",
            self.started,
            self.next_request.fetch_add(1, Ordering::Relaxed)
        );
        let (tx, rx) = oneshot::channel();
        {
            let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
            if waiting.len() >= MAX_WAITING {
                return Err(ClusterError::Busy);
            }
            waiting.insert(id.clone(), tx);
        }
        let deadline = now_ms().saturating_add(lease_ms(timeout));
        let mut conn = self.conn.clone();
        let sent: Result<String, _> = redis::cmd("XADD")
            .arg(self.cmd_key(node))
            .arg("MAXLEN")
            .arg("~")
            .arg(STREAM_MAX)
            .arg("*")
            .arg("k")
            .arg("fwd")
            .arg("id")
            .arg(&id)
            .arg("from")
            .arg(&self.config.node_id)
            .arg("deadline")
            .arg(deadline)
            .arg("body")
            .arg(body)
            .query_async(&mut conn)
            .await;
        let forget = || {
            self.waiting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        };
        if let Err(e) = sent {
            forget();
            return Err(e.into());
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            _ => {
                forget();
                Err(ClusterError::Timeout(node.to_owned()))
            }
        }
    }

    async fn lead(&self, task: &str) -> Result<bool, ClusterError> {
        let mut conn = self.conn.clone();
        let led: i64 = redis::Script::new(LEAD)
            .key(format!("{}:lead:{task}", self.config.name))
            .arg(&self.config.node_id)
            .arg(lease_ms(self.config.lease))
            .invoke_async(&mut conn)
            .await?;
        Ok(led == 1)
    }

    async fn live_nodes(&self) -> Result<u32, ClusterError> {
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut n: u32 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(self.node_key("*"))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await?;
            n = n.saturating_add(u32::try_from(keys.len()).unwrap_or(u32::MAX));
            if next == 0 {
                return Ok(n.max(1));
            }
            cursor = next;
        }
    }

    async fn lead_fenced(&self, task: &str) -> Result<Option<u64>, ClusterError> {
        if *self.left.borrow() {
            return Ok(None);
        }
        self.leads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(task.to_owned());
        let mut conn = self.conn.clone();
        let token: u64 = redis::Script::new(LEAD_FENCED)
            .key(format!("{}:leader:{task}", self.config.name))
            .key(format!("{}:leader:{task}:token", self.config.name))
            .arg(&self.config.node_id)
            .arg(lease_ms(self.config.lease))
            .invoke_async(&mut conn)
            .await?;
        Ok((token > 0).then_some(token))
    }

    async fn fence(&self, task: &str) -> Result<Option<u64>, ClusterError> {
        Ok(self.leader_lease(task).await?.map(|(_, token)| token))
    }

    async fn leader(&self, task: &str) -> Result<Option<String>, ClusterError> {
        Ok(self.leader_lease(task).await?.map(|(node, _)| node))
    }

    fn publish(&self, event: &LiveEvent) {
        let published = Published {
            node: self.config.node_id.clone(),
            event: event.clone(),
        };
        let Ok(text) = serde_json::to_string(&published) else {
            return;
        };
        if self.events.try_send(text).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_round_trip_and_node_ids_are_checked() {
        let o = Owner {
            node: "n1".into(),
            connection: "1700000000000.42".into(),
        };
        assert_eq!(Owner::decode(&o.encode()), Some(o));
        assert_eq!(Owner::decode("no separator"), None);
        assert!(valid_node_id("node-1.a_b"));
        assert!(!valid_node_id(""));
        assert!(!valid_node_id("a|b"));
        assert!(!valid_node_id("a:b"));
        assert!(!valid_node_id(&"x".repeat(65)));
    }
}
