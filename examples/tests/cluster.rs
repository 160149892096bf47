//! The cluster end to end: three `central-system` processes on one PostgreSQL database and
//! one Redis, HAProxy in front (scripts/balancer.sh), a few hundred chargers through it.
//! Commands go through each node's API to chargers held by the other nodes; a duplicate
//! connection on another node closes the older one; then one node is killed with SIGKILL:
//! its chargers come back through the balancer on the others, their transactions go on and
//! end, every transaction message is confirmed (the chargers' outboxes are empty), sessions
//! equal the transactions started, and event ids never repeat across nodes.
//!
//! Needs OCPP_TEST_POSTGRES_URL and OCPP_TEST_REDIS_URL (scripts/test.sh starts both) and
//! HAProxy (scripts/balancer.sh installs it); skipped, saying so, without the variables.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use ocpp_charger::settings::Setting;
use ocpp_charger::ws::{self, ClientConfig, ClientHandle};
use ocpp_charger::{HardwareEvent, MemoryStore, Saved, SimulatedHardware, Station, StationConfig};
use std::sync::Arc;

use ocpp_examples::backend::auth::{Auth, AuthConfig, Role};
use ocpp_examples::backend::cluster::{
    Cluster as _, ClusterConfig, Forward, ForwardAnswer, Inbound, RedisCluster,
};
use ocpp_examples::backend::Db;
use ocpp_types::Version;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};

#[path = "support/postgres.rs"]
mod postgres;
use postgres::postgres_database;
#[path = "support/api.rs"]
mod api;
use api::Api;

/// Chargers in the test (a third on each node, give or take the balancer's choice).
const CHARGERS: usize = 240;
/// Chargers that charge (remote start through another node's API).
const CHARGING: usize = 24;
/// The whole test stays well under this.
const WAIT: Duration = Duration::from_secs(40);

/// The lease of a process node's liveness and its chargers' presence, milliseconds.
const NODE_LEASE_MS: u64 = 2000;

struct Node {
    id: String,
    child: Option<Child>,
    ocpp: SocketAddr,
    http: SocketAddr,
    api: Api,
}

/// Kills what the test started, even when it fails.
struct Cluster {
    nodes: Vec<Node>,
    balancer: SocketAddr,
    dir: PathBuf,
    /// Nodes started again.
    restarted: Vec<Child>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let children = self
            .nodes
            .iter_mut()
            .filter_map(|n| n.child.take())
            .chain(self.restarted.drain(..));
        for mut c in children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("bash")
            .arg(script("balancer.sh"))
            .arg("stop")
            .arg(self.balancer.to_string())
            .status();
        eprintln!("cluster test: node logs in {}", self.dir.display());
    }
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scripts")
        .join(name)
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// Three nodes of cluster `name` on `database` and Redis (started one after the other: the
/// first migrates the database alone), each client with an admin API key named `label`; the
/// balancer's address is picked, not started.
async fn three_nodes_with_key(
    database: &str,
    redis_url: &str,
    name: &str,
    dir: &std::path::Path,
    label: &str,
) -> Cluster {
    let mut cluster = Cluster {
        nodes: Vec::new(),
        balancer: free_addr(),
        dir: dir.to_path_buf(),
        restarted: Vec::new(),
    };
    for i in 1..=3 {
        let (child, ocpp, http) = spawn_node(i, database, redis_url, name, dir);
        until(&format!("node n{i} healthy"), || healthy(http)).await;
        cluster.nodes.push(Node {
            id: format!("n{i}"),
            child: Some(child),
            ocpp,
            http,
            api: Api::new(http),
        });
    }
    let db = Db::open(database).await.expect("database");
    let auth = Auth::new(db.clone(), AuthConfig::new()).expect("auth");
    let (_, key) = auth
        .create_api_key(label, Role::Admin, "tests")
        .await
        .expect("API key");
    for n in &mut cluster.nodes {
        n.api = Api::with_key(n.http, key.expose());
    }
    cluster
}

/// Starts HAProxy (`scripts/balancer.sh start`) with `procs` processes in front of `nodes`
/// (`ocpp=http` each), on `cluster.balancer`; returns what the script printed (the ws://
/// URL). The port was free when it was picked, but another process may take it before
/// HAProxy binds it: then the script fails and the start is tried again on a new port.
fn start_balancer(
    cluster: &mut Cluster,
    procs: usize,
    nodes: &[String],
    env: &[(&str, &str)],
) -> String {
    let mut last = String::new();
    for _ in 0..5 {
        let out = Command::new("bash")
            .arg(script("balancer.sh"))
            .arg("start")
            .arg(cluster.balancer.to_string())
            .arg(procs.to_string())
            .args(nodes)
            .envs(env.iter().copied())
            .output()
            .expect("run scripts/balancer.sh");
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).trim().to_owned();
        }
        last = String::from_utf8_lossy(&out.stderr).into_owned();
        let _ = Command::new("bash")
            .arg(script("balancer.sh"))
            .arg("stop")
            .arg(cluster.balancer.to_string())
            .status();
        cluster.balancer = free_addr();
    }
    panic!("balancer.sh failed five times: {last}");
}

fn spawn_node(
    i: usize,
    database: &str,
    redis: &str,
    name: &str,
    dir: &std::path::Path,
) -> (Child, SocketAddr, SocketAddr) {
    spawn_node_with(i, database, redis, name, dir, 16_384, &[])
}

/// [`spawn_node`] with `--max-connections-per-ip per_ip` and more arguments.
fn spawn_node_with(
    i: usize,
    database: &str,
    redis: &str,
    name: &str,
    dir: &std::path::Path,
    per_ip: usize,
    extra: &[&str],
) -> (Child, SocketAddr, SocketAddr) {
    let ocpp = free_addr();
    let http = free_addr();
    let log = std::fs::File::create(dir.join(format!("node{i}.log"))).expect("log file");
    let child = Command::new(env!("CARGO_BIN_EXE_central-system"))
        .args(["--database-url", database, "--redis-url", redis])
        .args(["--cluster-name", name, "--node-id", &format!("n{i}")])
        .args(["--ocpp-listen", &ocpp.to_string()])
        .args(["--http-listen", &http.to_string()])
        .args(["--cluster-lease-ms", &NODE_LEASE_MS.to_string()])
        .args(["--call-timeout", "10"])
        .args(["--heartbeat-interval", "60"])
        .args(["--max-connections-per-ip", &per_ip.to_string()])
        .args(extra)
        .env("OCPP_ADMIN_PASSWORD", "cluster-test-admin")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start central-system");
    (child, ocpp, http)
}

async fn healthy(http: SocketAddr) -> Option<Value> {
    let r = reqwest::get(format!("http://{http}/health")).await.ok()?;
    if r.status() != StatusCode::OK {
        return None;
    }
    r.json().await.ok()
}

async fn until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let t0 = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(t0.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn charger(url: String, identity: &str, version: Version) -> ClientHandle {
    let config = StationConfig::new(identity, version)
        .evses(1)
        .seed(7)
        .setting(Setting::SampleInterval, "1");
    let hardware = SimulatedHardware::new(1, Decimal::from(11_000));
    let station = Station::new(config, Box::new(hardware), Saved::default(), Instant::now());
    ws::spawn(
        station,
        Box::new(MemoryStore::new()),
        ClientConfig::new(url).backoff(Duration::from_millis(50), Duration::from_millis(400)),
    )
}

/// Which node holds each charger (`n1`, `n2`, `n3`), from the presence keys in Redis.
async fn presence(
    redis: &redis::aio::MultiplexedConnection,
    name: &str,
    ids: &[String],
) -> Vec<Option<String>> {
    let keys: Vec<String> = ids.iter().map(|i| format!("{name}:presence:{i}")).collect();
    let values: Vec<Option<String>> = redis::cmd("MGET")
        .arg(keys)
        .query_async(&mut redis.clone())
        .await
        .expect("MGET");
    values
        .into_iter()
        .map(|v| v.and_then(|v| v.split('|').next().map(str::to_owned)))
        .collect()
}

fn node_index(node: &str) -> usize {
    node.trim_start_matches('n')
        .parse::<usize>()
        .expect("node id n<i>")
        - 1
}

async fn connected_total(nodes: &[&Node]) -> usize {
    let mut total = 0;
    for n in nodes {
        if let Some(h) = healthy(n.http).await {
            total += h["connectedChargers"].as_u64().unwrap_or(0) as usize;
        }
    }
    total
}

async fn session_of(api: &Api, charger: &str) -> Option<Value> {
    let (_, list) = api.get(&format!("/api/sessions?charger={charger}")).await;
    list.as_array()?.first().cloned()
}

/// A fresh PostgreSQL database `db` and the Redis URL, or `None` (the test `what` is
/// skipped, said on stderr) when either is not set up (scripts/test.sh starts both, with
/// scripts/postgres.sh and scripts/redis.sh, and sets their variables).
async fn postgres_and_redis(db: &str, what: &str) -> Option<(String, String)> {
    let database = postgres_database(db).await?;
    let Ok(redis_url) = std::env::var("OCPP_TEST_REDIS_URL") else {
        eprintln!(
            "\n*** SKIPPED the {what} test: OCPP_TEST_REDIS_URL is not set (scripts/test.sh \
             starts Redis with scripts/redis.sh and sets it) ***\n"
        );
        return None;
    };
    Some((database, redis_url))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_behind_haproxy_route_commands_and_survive_a_killed_node() {
    let Some((database, redis_url)) = postgres_and_redis("cluster", "cluster").await else {
        return;
    };
    let t0 = Instant::now();
    let name = format!("test{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("ocpp-cluster-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("log dir");
    // Three nodes (the first migrates the database alone), an API key for all of them.
    let mut cluster =
        three_nodes_with_key(&database, &redis_url, &name, &dir, "cluster-test").await;

    // HAProxy in front, two processes on one port.
    let nodes: Vec<String> = cluster
        .nodes
        .iter()
        .map(|n| format!("{}={}", n.ocpp, n.http))
        .collect();
    let ws_base = start_balancer(&mut cluster, 2, &nodes, &[]);
    let all: Vec<&Node> = cluster.nodes.iter().collect();
    // HAProxy sends nothing to a node before its first check passed.
    until("the balancer", || async {
        tokio::net::TcpStream::connect(cluster.balancer).await.ok()
    })
    .await;

    // The chargers, 1.6 and 2.0.1 in turn, all through the balancer.
    let ids: Vec<String> = (0..CHARGERS).map(|i| format!("CL{i:04}")).collect();
    let mut chargers: BTreeMap<String, ClientHandle> = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        let version = if i % 2 == 0 {
            Version::V16
        } else {
            Version::V201
        };
        chargers.insert(id.clone(), charger(format!("{ws_base}/{id}"), id, version));
    }
    until("every charger connected", || async {
        (connected_total(&all).await == CHARGERS).then_some(())
    })
    .await;
    let redis = redis::Client::open(redis_url.as_str())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let owners = until("every presence", || async {
        let p = presence(&redis, &name, &ids).await;
        p.iter().all(Option::is_some).then_some(p)
    })
    .await;
    let mut per_node = [0usize; 3];
    for o in owners.iter().flatten() {
        per_node[node_index(o)] += 1;
    }
    assert!(
        per_node.iter().all(|&n| n > CHARGERS / 6),
        "the balancer spreads the chargers: {per_node:?}"
    );
    eprintln!(
        "cluster test: {CHARGERS} chargers connected through HAProxy in {:?}, per node {per_node:?}",
        t0.elapsed()
    );

    // Every node shows every charger, whichever node holds it.
    // (Other nodes write behind: within moments.)
    for n in &cluster.nodes {
        until(
            &format!("node {} sees every charger online", n.id),
            || async {
                let (status, list) = n.api.get("/api/chargers").await;
                assert_eq!(status, StatusCode::OK);
                let list = list.as_array()?;
                let online = list.iter().filter(|c| c["connected"] == true).count();
                // ... each with the node that holds it.
                let placed = list.iter().all(|c| {
                    let i = ids.iter().position(|id| c["identity"] == id.as_str());
                    i.is_some_and(|i| c["node"].as_str() == owners[i].as_deref())
                });
                (online == CHARGERS && placed).then_some(())
            },
        )
        .await;
    }

    // Remote start through the API of a node that does not hold the charger.
    let charging: Vec<usize> = (0..CHARGING).map(|k| k * (CHARGERS / CHARGING)).collect();
    let mut routed_latency = Vec::new();
    for &i in &charging {
        let id = &ids[i];
        chargers[id]
            .hardware(HardwareEvent::CablePlugged { evse: 1 })
            .expect("plug");
    }
    for &i in &charging {
        let id = &ids[i];
        let owner = node_index(owners[i].as_deref().expect("owner"));
        let via = &cluster.nodes[(owner + 1) % 3];
        let t = Instant::now();
        let (status, answer) = via
            .api
            .post(
                &format!("/api/chargers/{id}/start"),
                json!({ "evse": 1, "idTag": "DRIVER-1" }),
            )
            .await;
        routed_latency.push(t.elapsed());
        assert_eq!(
            status,
            StatusCode::OK,
            "start {id} via {}: {answer}",
            via.id
        );
        assert_eq!(answer["status"], "Accepted", "{answer}");
    }
    let api0 = &cluster.nodes[0].api;
    for &i in &charging {
        until(&format!("the session of {}", ids[i]), || async {
            session_of(api0, &ids[i])
                .await
                .filter(|s| s["status"] == "active")
        })
        .await;
    }
    routed_latency.sort();
    eprintln!(
        "cluster test: {CHARGING} remote starts routed to other nodes, p50 {:?}, max {:?}",
        routed_latency[routed_latency.len() / 2],
        routed_latency.last()
    );

    // An unknown charger and a bad body: the same answers as on one node.
    let (status, err) = cluster.nodes[1]
        .api
        .post("/api/chargers/NOPE/start", json!({ "idTag": "x" }))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    let remote = &ids[charging[1]];
    let owner = node_index(owners[charging[1]].as_deref().expect("owner"));
    let (status, err) = cluster.nodes[(owner + 1) % 3]
        .api
        .post_raw(&format!("/api/chargers/{remote}/start"), "{\"idTag\": ")
        .await;
    assert!(status.is_client_error(), "{status} {err}");
    assert_ne!(status, StatusCode::CONFLICT, "the owner answered: {err}");

    // A quarter stop through a third node's API, each once its session has energy (a meter
    // value came: the chargers sample every second), so every session ends with some.
    let (stopped_early, going_on) = charging.split_at(CHARGING / 4);
    for &i in stopped_early {
        let id = &ids[i];
        let owner = node_index(owners[i].as_deref().expect("owner"));
        let via = &cluster.nodes[(owner + 2) % 3];
        let s = until(&format!("energy in the session of {id}"), || async {
            session_of(api0, id)
                .await
                .filter(|s| s["energyWh"].as_f64().unwrap_or(0.0) > 0.0)
        })
        .await;
        let (status, answer) = via
            .api
            .post(
                &format!("/api/chargers/{id}/stop"),
                json!({ "sessionId": s["id"] }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "stop {id} via {}: {answer}", via.id);
        assert_eq!(answer["status"], "Accepted", "{answer}");
    }

    // A duplicate connection on another node: the newer wins, the older node closes its own.
    let dup = "CL-DUP";
    let first = raw_connect(cluster.nodes[0].ocpp, dup).await;
    until("the first duplicate", || async {
        presence(&redis, &name, &[dup.to_owned()])
            .await
            .pop()
            .flatten()
            .filter(|n| n == "n1")
    })
    .await;
    let second = raw_connect(cluster.nodes[1].ocpp, dup).await;
    let closed = tokio::time::timeout(WAIT, async move {
        let mut first = first;
        loop {
            match first.next().await {
                None | Some(Err(_)) => return "ended",
                Some(Ok(m)) if m.is_close() => return "closed",
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .expect("the older connection of a duplicate identity is closed");
    eprintln!("cluster test: the older duplicate connection was {closed}");
    let holder = presence(&redis, &name, &[dup.to_owned()]).await;
    assert_eq!(holder, vec![Some("n2".to_owned())]);
    drop(second);

    // kill -9 of the node holding the most ongoing transactions.
    let mut tx_per_node = [0usize; 3];
    for &i in going_on {
        tx_per_node[node_index(owners[i].as_deref().expect("owner"))] += 1;
    }
    let victim = (0..3).max_by_key(|&k| tx_per_node[k]).expect("a node");
    let before: HashMap<String, f64> = {
        let mut m = HashMap::new();
        for &i in going_on {
            let s = session_of(api0, &ids[i]).await.expect("session");
            m.insert(ids[i].clone(), s["energyWh"].as_f64().unwrap_or(0.0));
        }
        m
    };
    // A charger on the doomed node that will not come back (no reconnects).
    let gone = "CL-GONE";
    let gone_ws = raw_connect(cluster.nodes[victim].ocpp, gone).await;
    let victim_id = cluster.nodes[victim].id.clone();
    until("the charger that will not come back", || async {
        presence(&redis, &name, &[gone.to_owned()])
            .await
            .pop()
            .flatten()
            .filter(|n| *n == victim_id)
    })
    .await;
    // Garbage on a node's command stream is skipped; the node goes on.
    for fields in [
        vec![
            "k",
            "fwd",
            "id",
            "x",
            "from",
            "n1",
            "deadline",
            "99999999999999",
            "body",
            "{",
        ],
        vec!["k", "fwd"],
        vec!["k", "takeover"],
        vec!["k", "nonsense"],
    ] {
        let _: String = redis::cmd("XADD")
            .arg(format!("{name}:cmd:{}", cluster.nodes[(victim + 1) % 3].id))
            .arg("*")
            .arg(fields)
            .query_async(&mut redis.clone())
            .await
            .expect("XADD");
    }

    let killed_at = Instant::now();
    let mut child = cluster.nodes[victim].child.take().expect("child");
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let survivors: Vec<&Node> = cluster
        .nodes
        .iter()
        .enumerate()
        .filter(|(k, _)| *k != victim)
        .map(|(_, n)| n)
        .collect();
    let (alive_a, alive_b) = (survivors[0], survivors[1]);
    until("every charger back on the surviving nodes", || async {
        (connected_total(&survivors).await == CHARGERS).then_some(())
    })
    .await;
    let recovered = killed_at.elapsed();
    let owners_after = until("every presence on a survivor", || async {
        let p = presence(&redis, &name, &ids).await;
        p.iter()
            .all(|o| o.as_deref().is_some_and(|o| node_index(o) != victim))
            .then_some(p)
    })
    .await;
    eprintln!(
        "cluster test: node n{} killed holding {} chargers and {} transactions; all back in {recovered:?}",
        victim + 1,
        per_node[victim],
        tx_per_node[victim]
    );
    // ... and every node's view says so; the charger that did not come back shows offline
    // once the dead node's lease ended, with a `disconnected` entry in the log.
    until(
        "every charger online in the database, the lost one offline",
        || async {
            let (_, list) = alive_a.api.get("/api/chargers").await;
            let list = list.as_array()?;
            let online = list.iter().filter(|c| c["connected"] == true).count();
            let lost = list.iter().find(|c| c["identity"] == gone)?;
            (online == CHARGERS && lost["connected"] == false).then_some(())
        },
    )
    .await;
    let lost_after = killed_at.elapsed();
    let (_, log) = alive_b.api.get(&format!("/api/log?charger={gone}")).await;
    assert_eq!(log[0]["kind"], "disconnected", "{log}");
    // No presence left behind: the dead node's key for it expires with its lease. It is
    // renewed just after the node's liveness key on each tick, so it may outlive that key
    // (after which no lookup believes it) by a moment; it must not outlive it by a lease.
    let offline_at = Instant::now();
    until("no presence left behind", || async {
        (presence(&redis, &name, &[gone.to_owned()]).await == vec![None]).then_some(())
    })
    .await;
    assert!(
        offline_at.elapsed() < Duration::from_millis(NODE_LEASE_MS),
        "the presence outlived the node's lease by {:?}",
        offline_at.elapsed()
    );
    drop(gone_ws);
    eprintln!("cluster test: a charger that did not come back shown offline after {lost_after:?}");

    // The transactions go on: more energy than at the kill.
    for &i in going_on {
        let id = &ids[i];
        let was = before[id];
        until(&format!("{id} charging on after the kill"), || async {
            session_of(&alive_b.api, id)
                .await
                .filter(|s| s["status"] == "active")
                .filter(|s| s["energyWh"].as_f64().unwrap_or(0.0) > was)
        })
        .await;
    }
    // ... and stop through the other survivor's API.
    for &i in going_on {
        let id = &ids[i];
        let holder = node_index(owners_after[i].as_deref().expect("owner"));
        let via = if cluster.nodes[holder].id == alive_a.id {
            alive_b
        } else {
            alive_a
        };
        let s = session_of(api_of(&survivors), id).await.expect("session");
        let (status, answer) = via
            .api
            .post(
                &format!("/api/chargers/{id}/stop"),
                json!({ "sessionId": s["id"] }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "stop {id} via {}: {answer}", via.id);
        assert_eq!(answer["status"], "Accepted", "{answer}");
    }
    for &i in &charging {
        let id = &ids[i];
        until(&format!("{id}'s session completed"), || async {
            session_of(&alive_a.api, id)
                .await
                .filter(|s| s["status"] == "completed")
        })
        .await;
    }

    // The killed node starts again under its id: it marks nobody offline (every charger is
    // held by a live node) and takes new connections.
    let (child, ocpp, http) = spawn_node(victim + 1, &database, &redis_url, &name, &dir);
    cluster.restarted.push(child);
    until("the restarted node", || healthy(http)).await;
    let back = raw_connect(ocpp, "CL-BACK").await;
    until("a charger on the restarted node", || async {
        healthy(http).await.filter(|h| h["connectedChargers"] == 1)
    })
    .await;
    until(
        "the new charger online, nobody marked offline by the restart",
        || async {
            let (_, list) = alive_a.api.get("/api/chargers").await;
            let online = list
                .as_array()?
                .iter()
                .filter(|c| c["connected"] == true)
                .count();
            (online == CHARGERS + 1).then_some(())
        },
    )
    .await;
    drop(back);

    // Nothing lost: every charger's transaction messages were confirmed, sessions equal the
    // transactions started (one each, none twice), each with its energy; nothing set aside.
    for &i in &charging {
        let id = &ids[i];
        let (_, list) = alive_a
            .api
            .get(&format!("/api/sessions?charger={id}"))
            .await;
        let list = list.as_array().expect("array");
        assert_eq!(list.len(), 1, "one session for {id}: {list:?}");
        assert!(
            list[0]["energyWh"].as_f64().unwrap_or(0.0) > 0.0,
            "{list:?}"
        );
    }
    let (_, all_sessions) = alive_a.api.get("/api/sessions?limit=1000").await;
    assert_eq!(
        all_sessions.as_array().expect("array").len(),
        CHARGING,
        "sessions == transactions started"
    );
    let mut outboxes = 0;
    for (_, c) in std::mem::take(&mut chargers) {
        if let Some(station) = c.shutdown().await {
            outboxes += station.outbox_len();
        }
    }
    assert_eq!(outboxes, 0, "every transaction message was confirmed");
    let (_, aside) = alive_a.api.get("/api/journal/set-aside").await;
    assert_eq!(aside, json!([]), "no journal row set aside");

    // Event ids come from the database: never the same id twice across the nodes.
    let (_, log) = alive_b.api.get("/api/log?limit=1000").await;
    let log = log.as_array().expect("array");
    let ids_seen: HashSet<i64> = log.iter().filter_map(|e| e["id"].as_i64()).collect();
    assert_eq!(ids_seen.len(), log.len(), "event ids are unique");
    assert!(!ids_seen.contains(&0));
    eprintln!("cluster test: done in {:?}", t0.elapsed());
}

fn api_of<'a>(nodes: &[&'a Node]) -> &'a Api {
    &nodes[0].api
}

/// A bare OCPP 1.6 WebSocket to `addr` as `identity` (no reconnects: the test watches it).
async fn raw_connect(
    addr: SocketAddr,
    identity: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://{addr}/ocpp/{identity}")
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "ocpp1.6".parse().expect("header value"),
    );
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("WebSocket to a node");
    ws
}

/// What a routed request meets, recorded.
struct Echo {
    takeovers: std::sync::Mutex<Vec<(String, String, String)>>,
}

#[async_trait::async_trait]
impl Inbound for Echo {
    async fn forward(&self, request: Forward) -> ForwardAnswer {
        ForwardAnswer {
            status: 200,
            content_type: Some("application/json".into()),
            body: json!({ "uri": request.uri, "who": request.principal }).to_string(),
        }
    }
    fn takeover(&self, identity: &str, connection: &str, by: &str) {
        self.takeovers
            .lock()
            .expect("lock")
            .push((identity.into(), connection.into(), by.into()));
    }
    fn event(&self, _: ocpp_examples::backend::LiveEvent) {}
}

/// The Redis implementation of the cluster trait on its own: presence with the newest
/// connection winning, release only by the holder, a dead node's presence not believed,
/// routing with its answer, a timeout for a node that reads nothing, a takeover delivered.
#[tokio::test]
async fn redis_cluster_presence_routing_and_timeouts() {
    let Ok(url) = std::env::var("OCPP_TEST_REDIS_URL") else {
        eprintln!("\n*** SKIPPED the Redis cluster test: OCPP_TEST_REDIS_URL is not set ***\n");
        return;
    };
    let name = format!("unit{}", std::process::id());
    let config = |node: &str| ClusterConfig {
        url: url.clone(),
        node_id: node.into(),
        name: name.clone(),
        lease: Duration::from_millis(600),
    };
    let a = RedisCluster::connect(config("a")).await.expect("a");
    let b = RedisCluster::connect(config("b")).await.expect("b");
    let echo_b = Arc::new(Echo {
        takeovers: Default::default(),
    });
    a.serve(Arc::new(Echo {
        takeovers: Default::default(),
    }))
    .await
    .expect("serve a");
    b.serve(echo_b.clone()).await.expect("serve b");
    // A second live process under b's id is refused (once b's lease would have ended).
    let twin = RedisCluster::connect(config("b")).await.expect("twin");
    let refused = twin
        .serve(Arc::new(Echo {
            takeovers: Default::default(),
        }))
        .await
        .expect_err("b's id is held");
    assert!(
        matches!(refused, ocpp_examples::backend::cluster::ClusterError::NodeIdInUse(ref n) if n == "b"),
        "{refused}"
    );
    assert!(RedisCluster::connect(config("bad|id")).await.is_err());

    // Presence: b claims, a takes over (and learns b's connection), b's release is a no-op.
    assert_eq!(b.claim("CP1", 7).await.expect("claim"), None);
    let found = a.lookup("CP1").await.expect("lookup").expect("present");
    assert_eq!(found.node, "b");
    assert_eq!(found.connection, b.connection(7));
    let old = a
        .claim("CP1", 1)
        .await
        .expect("claim")
        .expect("previous owner");
    assert_eq!(old, found);
    a.takeover("CP1", &old).await.expect("takeover");
    until("the takeover on b", || async {
        let t = echo_b.takeovers.lock().expect("lock").clone();
        (!t.is_empty()).then_some(t)
    })
    .await;
    assert_eq!(
        echo_b.takeovers.lock().expect("lock")[0],
        ("CP1".to_owned(), b.connection(7), "a".to_owned())
    );
    b.release("CP1", 7).await.expect("release");
    assert_eq!(
        a.lookup("CP1").await.expect("lookup").expect("a's").node,
        "a"
    );

    // Routing: b answers; a node that reads nothing times out.
    let forward = Forward {
        method: "POST".into(),
        uri: "/api/chargers/CP2/reset".into(),
        content_type: None,
        body: String::new(),
        principal: "ops".into(),
        role: Role::Operator,
    };
    let answer = a
        .route("b", forward.clone(), Duration::from_secs(5))
        .await
        .expect("b answers");
    assert_eq!(answer.status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&answer.body).expect("json"),
        json!({ "uri": "/api/chargers/CP2/reset", "who": "ops" })
    );
    let t = Instant::now();
    let err = a
        .route("ghost", forward, Duration::from_millis(300))
        .await
        .expect_err("nobody reads ghost's stream");
    assert!(
        matches!(err, ocpp_examples::backend::cluster::ClusterError::Timeout(ref n) if n == "ghost"),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(2));

    // A presence taken behind b's back (a takeover message lost): b's renewal notices and
    // closes its own connection.
    assert_eq!(b.claim("CP9", 5).await.expect("claim"), None);
    let _: () = redis::cmd("SET")
        .arg(format!("{name}:presence:CP9"))
        .arg("c|elsewhere")
        .query_async(
            &mut redis::Client::open(url.as_str())
                .expect("url")
                .get_multiplexed_async_connection()
                .await
                .expect("redis"),
        )
        .await
        .expect("SET");
    until("b closing its lost connection", || async {
        echo_b
            .takeovers
            .lock()
            .expect("lock")
            .iter()
            .find(|t| t.0 == "CP9")
            .cloned()
    })
    .await;
    assert!(echo_b.takeovers.lock().expect("lock").contains(&(
        "CP9".to_owned(),
        b.connection(5),
        "another node".to_owned()
    )));

    // One leader per task: a holds it while it asks again, b does not get it.
    assert!(a.lead("chore").await.expect("lead"));
    assert!(a.lead("chore").await.expect("lead again"));
    assert!(!b.lead("chore").await.expect("not b"));

    assert_eq!(a.live_nodes().await.expect("live nodes"), 2);

    // A node that leaves (or whose lease ends) takes its chargers' presence with it.
    assert_eq!(b.claim("CP3", 9).await.expect("claim"), None);
    assert!(a.lookup("CP3").await.expect("lookup").is_some());
    b.leave().await;
    assert_eq!(a.lookup("CP3").await.expect("lookup"), None);
    assert_eq!(a.live_nodes().await.expect("live nodes"), 1);
    let many = a
        .lookup_many(&["CP1".into(), "CP3".into(), "NEVER".into()])
        .await
        .expect("lookup many");
    assert_eq!(
        many.iter()
            .map(|o| o.as_ref().map(|o| o.node.as_str()))
            .collect::<Vec<_>>(),
        vec![Some("a"), None, None]
    );
}

/// A node that answered a transaction message and died before storing it: the node the
/// charger reconnects to projects the journal row first, so the session holds it. Two
/// in-process nodes; the dead node's unprojected row is written as it would have left it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_taking_a_charger_over_projects_what_the_dead_node_journaled() {
    let Some((database, redis_url)) = postgres_and_redis("cluster_takeover", "takeover").await
    else {
        return;
    };
    use ocpp_examples::backend::run::start;
    let node = |id: &str| node_args(&database, &redis_url, "takeover", id);
    let a = start(&node("a")).await.expect("node a");
    let b = start(&node("b")).await.expect("node b");
    let api_b = Api::admin(&b).await;
    let id = "TK-16";
    let cp = charging_on(a.ocpp_addr(), id);
    let session = until("the session on node a", || async {
        session_of(&api_b, id)
            .await
            .filter(|s| s["status"] == "active" && s["meterStartWh"].is_string())
    })
    .await;
    let tx: i64 = session["transactionId"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("1.6 transaction id");
    let start_wh: Decimal = session["meterStartWh"]
        .as_str()
        .and_then(|m| m.parse().ok())
        .expect("meter start");
    drop(cp.shutdown().await);
    // Node a answered this MeterValues and died before projecting it: its journal row is all
    // that is left of it.
    let db = a.backend().db().clone();
    a.backend().flush().await;
    let reading = start_wh + Decimal::from(7_000);
    let request = json!({ "connectorId": 1, "transactionId": tx, "meterValue": [{
        "timestamp": "2030-01-01T10:00:00Z",
        "sampledValue": [{ "value": reading.to_string(), "measurand": "Energy.Active.Import.Register",
                           "unit": "Wh", "context": "Sample.Periodic" }] }] });
    db.journal_insert(id, "1.6", "MeterValues", &request.to_string(), "{}")
        .await
        .expect("journal row");
    // The charger comes back on node b: before its first message is read, b projects the row.
    let ws = raw_connect(b.ocpp_addr(), id).await;
    let s = until("the journaled reading in the session", || async {
        session_of(&api_b, id).await.filter(|s| {
            s["energyWhExact"]
                .as_str()
                .and_then(|e| e.parse::<Decimal>().ok())
                == Some(Decimal::from(7_000))
        })
    })
    .await;
    assert_eq!(s["status"], "active", "the transaction goes on: {s}");
    // The row's mark is stored after its projection (a later transaction of the same batch).
    until("nothing left unprojected", || async {
        db.journal_unprocessed_of(id)
            .await
            .expect("journal")
            .is_empty()
            .then_some(())
    })
    .await;
    drop(ws);
    b.shutdown().await.expect("shutdown b");
    a.shutdown().await.expect("shutdown a");
}

/// A cluster node's journal low-water mark advances as its rows are projected (it was frozen
/// at the mark the database held when the node started), so a restarted node's recovery reads
/// the journal from a recent mark: only what it journaled and did not project, nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_recovers_from_its_own_recent_journal_mark() {
    let Some((database, redis_url)) = postgres_and_redis("cluster_watermark", "watermark").await
    else {
        return;
    };
    use ocpp_examples::backend::run::start;
    let node = |id: &str| node_args(&database, &redis_url, "watermark", id);
    let a = start(&node("a")).await.expect("node a");
    let b = start(&node("b")).await.expect("node b");
    let db = a.backend().db().clone();
    let at_start = db.journal_node_mark("a").await.expect("mark of a");
    let api = Api::admin(&b).await;
    let id = "WM-16";
    let cp = charging_on(a.ocpp_addr(), id);
    // A few meter readings (one a second) journaled and projected on node a.
    let session = until("readings in the session on node a", || async {
        session_of(&api, id).await.filter(|s| {
            s["status"] == "active"
                && s["energyWhExact"]
                    .as_str()
                    .and_then(|e| e.parse::<Decimal>().ok())
                    .is_some_and(|e| e > Decimal::ZERO)
        })
    })
    .await;
    let session_id = session["id"].as_i64().expect("session id");
    drop(cp.shutdown().await);
    a.backend().flush().await;
    let written = db.session_journal(session_id).await.expect("journal");
    let last = written.iter().map(|r| r.id).max().expect("journal rows");
    assert!(written.len() >= 3, "start and readings: {written:?}");
    let mark = db.journal_node_mark("a").await.expect("mark of a");
    assert!(
        mark >= last && mark > at_start,
        "node a's mark advanced past its projected rows: {mark} (at start {at_start}, last row {last})"
    );
    // Node a answers one more reading and dies before projecting it.
    a.shutdown().await.expect("stop a");
    let tx: i64 = session["transactionId"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("1.6 transaction id");
    let start_wh: Decimal = session["meterStartWh"]
        .as_str()
        .and_then(|m| m.parse().ok())
        .expect("meter start");
    let reading = start_wh + Decimal::from(90_000);
    let request = json!({ "connectorId": 1, "transactionId": tx, "meterValue": [{
        "timestamp": "2030-01-01T10:00:00Z",
        "sampledValue": [{ "value": reading.to_string(), "measurand": "Energy.Active.Import.Register",
                           "unit": "Wh", "context": "Sample.Periodic" }] }] });
    let lost = db
        .journal_insert_by(
            Some("a"),
            id,
            "1.6",
            "MeterValues",
            &request.to_string(),
            "{}",
        )
        .await
        .expect("journal row");
    // Node b's own rows are not node a's to replay.
    let of_b = db
        .journal_insert_by(Some("b"), "WM-OTHER", "1.6", "Heartbeat", "{}", "{}")
        .await
        .expect("journal row of b");
    let to_replay = db.journal_unprocessed_node("a").await.expect("rows");
    assert_eq!(
        to_replay.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![lost],
        "recovery of node a reads from its recent mark: only the row it did not project (not {of_b})"
    );
    let a = start(&node("a")).await.expect("node a again");
    let s = until("the recovered reading in the session", || async {
        session_of(&api, id).await.filter(|s| {
            s["energyWhExact"]
                .as_str()
                .and_then(|e| e.parse::<Decimal>().ok())
                == Some(Decimal::from(90_000))
        })
    })
    .await;
    assert_eq!(s["status"], "active", "nothing lost: {s}");
    a.backend().flush().await;
    assert!(
        db.journal_node_mark("a").await.expect("mark") >= lost,
        "the replayed row settled the restarted node's mark"
    );
    a.shutdown().await.expect("stop a");
    b.shutdown().await.expect("stop b");
}

/// Three in-process nodes `a`, `b`, `c` of one cluster (a fresh name) on `database`.
async fn three_nodes(
    database: &str,
    redis_url: &str,
    name: &str,
) -> Vec<ocpp_examples::backend::run::RunningCentral> {
    let mut nodes = Vec::new();
    for id in ["a", "b", "c"] {
        let args = node_args(database, redis_url, name, id);
        nodes.push(
            ocpp_examples::backend::run::start(&args)
                .await
                .expect("node"),
        );
    }
    nodes
}

/// The arguments of in-process node `id` of cluster `name` (made unique to this process) on
/// `database`, its lease a second.
fn node_args(
    database: &str,
    redis_url: &str,
    name: &str,
    id: &str,
) -> ocpp_examples::backend::run::CentralArgs {
    let mut args =
        ocpp_examples::backend::run::CentralArgs::with_database(database.to_owned()).ephemeral();
    args.redis_url = Some(redis_url.to_owned());
    args.node_id = Some(id.into());
    args.cluster_name = format!("{name}{}", std::process::id());
    args.cluster_lease_ms = 1000;
    args
}

/// Two idle simulated chargers (`<prefix>-0001` 1.6, `<prefix>-0002` 2.0.1) on `node`.
async fn fleet_on(
    node: &ocpp_examples::backend::run::RunningCentral,
    prefix: &str,
    count: usize,
) -> ocpp_examples::sim::Fleet {
    use ocpp_examples::sim::{Fleet, Scenario, SimConfig, VersionMix};
    let mut config = SimConfig::new(format!("ws://{}/ocpp", node.ocpp_addr()));
    config.count = count;
    config.prefix = prefix.into();
    config.versions = VersionMix::cycle(vec![Version::V16, Version::V201]).expect("versions");
    config.scenario = Scenario::Idle;
    let fleet = Fleet::start(config).await.expect("fleet starts");
    fleet
        .wait_stats(|s| s.booted == count, WAIT)
        .await
        .expect("all booted");
    fleet
}

/// Requests over many chargers reach every node's chargers: a firmware rollout started on
/// node a is sent by b and c to the chargers they hold (each installs it; the progress is
/// the same from every node's API), a display message to a group sent to node b is set on
/// the chargers of a, b and c by the node holding each, and a charger connected nowhere is
/// reported as such, not skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_requests_reach_the_chargers_of_every_node() {
    let Some((database, redis_url)) = postgres_and_redis("cluster_fanout", "fan-out").await else {
        return;
    };
    let nodes = three_nodes(&database, &redis_url, "fanout").await;
    let apis = [
        Api::admin(&nodes[0]).await,
        Api::admin(&nodes[1]).await,
        Api::admin(&nodes[2]).await,
    ];
    // A charger that was connected once and is not now.
    let gone = fleet_on(&nodes[2], "FO", 1).await;
    let _ = gone.shutdown().await;
    until("FO-0001 offline", || async {
        let (_, c) = apis[0].get("/api/chargers/FO-0001").await;
        (c["connected"] == false).then_some(())
    })
    .await;
    let fleets = [
        fleet_on(&nodes[0], "FA", 2).await,
        fleet_on(&nodes[1], "FB", 2).await,
        fleet_on(&nodes[2], "FC", 2).await,
    ];
    let held: Vec<String> = fleets.iter().flat_map(|f| f.identities()).collect();
    assert_eq!(held.len(), 6);

    // A display message to the 2.0.1 chargers of every node and the offline one, asked of b.
    let group = ["FA-0002", "FB-0002", "FC-0002", "FO-0001"];
    let (s, answers) = apis[1]
        .post(
            "/api/display-messages",
            json!({ "chargers": group, "message": { "id": 7, "content": "Welcome" } }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{answers}");
    let by_charger: BTreeMap<String, String> = answers
        .as_array()
        .expect("answers")
        .iter()
        .map(|a| {
            (
                a["charger"].as_str().unwrap_or_default().to_owned(),
                a["status"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expected: BTreeMap<String, String> = [
        ("FA-0002", "Accepted"),
        ("FB-0002", "Accepted"),
        ("FC-0002", "Accepted"),
        ("FO-0001", "Offline"),
    ]
    .into_iter()
    .map(|(c, s)| (c.to_owned(), s.to_owned()))
    .collect();
    assert_eq!(by_charger, expected, "{answers}");
    // Each charger holds it: its own node asks it.
    let (s, held_messages) = apis[0].get("/api/chargers/FC-0002/display-messages").await;
    assert_eq!(s, StatusCode::OK, "{held_messages}");
    assert!(
        held_messages
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["content"] == "Welcome")),
        "{held_messages}"
    );

    // Clearing a customer on every charger, asked of node a: each node clears its own.
    let (s, cleared) = apis[0]
        .delete("/api/customers/CARD-GONE?chargers=true")
        .await;
    assert_eq!(s, StatusCode::OK, "{cleared}");
    let cleared_on: Vec<&str> = cleared["chargers"]
        .as_array()
        .expect("chargers")
        .iter()
        .filter(|c| {
            c["status"]
                .as_str()
                .is_some_and(|s| !s.starts_with("Failed"))
        })
        .filter_map(|c| c["charger"].as_str())
        .collect();
    assert_eq!(
        cleared_on,
        ["FA-0002", "FB-0002", "FC-0002"],
        "every connected 2.0.1 charger, whatever its node: {cleared}"
    );

    // A managed local list on node b follows a token changed through node a.
    let (s, pushed) = apis[0]
        .post("/api/chargers/FB-0001/local-list", json!(null))
        .await;
    assert_eq!(s, StatusCode::OK, "{pushed}");
    let entries = pushed["entries"].as_i64().expect("entries");
    let (s, t) = apis[0]
        .post(
            "/api/tokens",
            json!({ "idTag": "NEW-TAG", "status": "Accepted" }),
        )
        .await;
    assert!(s.is_success(), "{t}");
    until("FB-0001's list with the new token", || async {
        let (_, l) = apis[2].get("/api/chargers/FB-0001/local-list").await;
        (l["entries"].as_i64() == Some(entries + 1)).then_some(())
    })
    .await;

    // A firmware rollout to all of them, started on node a.
    let (s, image) = apis[0]
        .post_bytes(
            "/api/firmware/images?name=cluster-3.0.0.bin&version=3.0.0",
            b"SIMFW 3.0.0\n".to_vec(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{image}");
    let mut targets = held.clone();
    targets.push("FO-0001".into());
    let (s, r) = apis[0]
        .post(
            "/api/firmware/rollouts",
            json!({ "imageId": image["id"], "chargers": targets }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let id = r["id"].as_i64().expect("rollout id");
    let offline = r["targets"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["charger"] == "FO-0001"))
        .cloned()
        .expect("the offline target");
    assert_eq!(offline["status"], "Failed", "{r}");
    assert_eq!(offline["detail"], "not connected", "{r}");
    for t in r["targets"].as_array().expect("targets") {
        if t["charger"] != "FO-0001" {
            assert_ne!(t["status"], "Failed", "every held charger accepted it: {r}");
        }
    }
    // Every node's API follows the same rollout to its end.
    let done = until("the rollout installed everywhere", || async {
        let (_, r) = apis[2].get(&format!("/api/firmware/rollouts/{id}")).await;
        (r["installed"].as_i64() == Some(6)).then_some(r)
    })
    .await;
    assert_eq!(done["finished"], 7, "{done}");
    let (_, from_b) = apis[1].get(&format!("/api/firmware/rollouts/{id}")).await;
    assert_eq!(from_b["installed"], 6, "{from_b}");
    for f in fleets {
        let _ = f.shutdown().await;
    }
    for n in nodes {
        n.shutdown().await.expect("shutdown");
    }
}

/// A charger on the node at `ocpp` that plugs in and starts a transaction (1.6, 11 kW, a
/// reading a second).
fn charging_on(ocpp: SocketAddr, id: &str) -> ClientHandle {
    let cp = charger(format!("ws://{ocpp}/ocpp/{id}"), id, Version::V16);
    cp.hardware(HardwareEvent::CablePlugged { evse: 1 })
        .expect("plug");
    cp.hardware(HardwareEvent::IdTokenPresented {
        evse: Some(1),
        id_token: format!("CARD-{id}"),
    })
    .expect("card");
    cp
}

/// The site's plan (asked of `api`'s node: one that does not plan asks the planner) once it
/// has `sessions` sessions, each sent and accepted: charger -> limit.
async fn settled_plan(api: &Api, site: i64, sessions: usize) -> BTreeMap<String, Decimal> {
    until("the site's plan sent and accepted", || async {
        let (s, plan) = api.get(&format!("/api/sites/{site}/plan")).await;
        if s != StatusCode::OK {
            return None;
        }
        let plan = plan.as_array()?;
        if plan.len() != sessions {
            return None;
        }
        let mut out = BTreeMap::new();
        for p in plan {
            let limit: Decimal = p["limit"].as_str()?.parse().ok()?;
            if p["sent"].as_str()?.parse::<Decimal>().ok()? != limit {
                return None;
            }
            out.insert(p["charger"].as_str()?.to_owned(), limit);
        }
        Some(out)
    })
    .await
}

/// The planner lease of cluster `name`: the node holding it and its fencing token.
async fn planner_lease(
    redis: &redis::aio::MultiplexedConnection,
    name: &str,
) -> Option<(String, u64)> {
    let v: Option<String> = redis::cmd("GET")
        .arg(format!("{name}:leader:sites"))
        .query_async(&mut redis.clone())
        .await
        .ok()?;
    let (node, token) = v?
        .rsplit_once('|')
        .map(|(n, t)| (n.to_owned(), t.to_owned()))?;
    Some((node, token.parse().ok()?))
}

/// One node plans every site with the site's whole limit (not the limit divided among the
/// nodes), over the sessions of every node, and sends each share through the node holding
/// the charger; the planner's orders carry a fencing token, a stale one is refused; when the
/// planner is killed (SIGKILL), another node takes the lease over once it ends and plans
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_planner_shares_a_site_limit_across_nodes_and_fails_over() {
    let Some((database, redis_url)) = postgres_and_redis("cluster_planner", "planner").await else {
        return;
    };
    let name = format!("planner{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("ocpp-planner-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("log dir");
    let mut cluster =
        three_nodes_with_key(&database, &redis_url, &name, &dir, "planner-test").await;
    let redis = redis::Client::open(redis_url.as_str())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let (planner_id, first_token) =
        until("a planner", || async { planner_lease(&redis, &name).await }).await;
    let planner = node_index(&planner_id);
    // One charger on the planner's node, two on the next one, none on the third: each
    // node's share of the limit (limit / 3 nodes) would leave most of it unused.
    let other = (planner + 1) % 3;
    let third = (planner + 2) % 3;
    let api = &cluster.nodes[third].api;
    let (s, site) = api
        .post(
            "/api/sites",
            json!({ "name": "depot", "limit": 12000, "unit": "W", "minRate": 1000, "evseMax": 11000 }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{site}");
    let site = site["id"].as_i64().expect("site id");
    let ids = ["PL-1", "PL-2", "PL-3"];
    for id in ids {
        let (s, r) = api
            .put(&format!("/api/sites/{site}/chargers/{id}"), json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
    }
    let _c1 = charging_on(cluster.nodes[planner].ocpp, ids[0]);
    let _c2 = charging_on(cluster.nodes[other].ocpp, ids[1]);
    let _c3 = charging_on(cluster.nodes[other].ocpp, ids[2]);
    let plan = settled_plan(api, site, 3).await;
    assert_eq!(
        plan.values().copied().sum::<Decimal>(),
        Decimal::from(12_000),
        "the whole site limit is shared: {plan:?}"
    );
    assert!(
        plan.values().all(|l| *l == Decimal::from(4_000)),
        "equal shares across nodes: {plan:?}"
    );
    // The measured power too is the planner's, from any node.
    let (s, power) = api.get(&format!("/api/sites/{site}/power")).await;
    assert_eq!(s, StatusCode::OK, "{power}");
    assert!(
        power.as_array().is_some_and(|p| !p.is_empty()),
        "the planner's measurements: {power}"
    );
    // So are the site views' sessions: a node that does not plan shows the planner's.
    let (s, one) = api.get(&format!("/api/sites/{site}")).await;
    assert_eq!(s, StatusCode::OK, "{one}");
    assert_eq!(
        (one["sessions"].as_u64(), one["queued"].as_u64()),
        (Some(3), Some(0)),
        "the planner's sessions in the site's view on another node: {one}"
    );
    let (s, all) = api.get("/api/sites").await;
    assert_eq!(s, StatusCode::OK, "{all}");
    let listed = all
        .as_array()
        .and_then(|a| a.iter().find(|v| v["id"].as_i64() == Some(site)))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (listed["sessions"].as_u64(), listed["queued"].as_u64()),
        (Some(3), Some(0)),
        "the planner's sessions in the list on another node: {all}"
    );
    // A change made through a node that does not plan answers with the planner's view
    // too (12 kW: the same limit).
    let (s, changed) = api
        .put(
            &format!("/api/sites/{site}/limit"),
            json!({ "limit": 12, "unit": "kW" }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{changed}");
    assert_eq!(
        (
            changed["limitW"]
                .as_str()
                .and_then(|l| l.parse::<Decimal>().ok()),
            changed["sessions"].as_u64()
        ),
        (Some(Decimal::from(12_000)), Some(3)),
        "{changed}"
    );
    // An order whose fencing token is not the planner's is refused.
    let (s, r) = api
        .post(
            &format!("/api/chargers/{}/balancer-profile", ids[1]),
            json!({ "fence": first_token + 100, "kind": "tx", "evse": 1,
                    "transactionId": "1", "unit": "W", "limit": "11000" }),
        )
        .await;
    assert_eq!(
        (s, r["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("stale_plan")),
        "{r}"
    );
    // The planner is killed: once its lease (2 s) ends another node takes it over and
    // plans again, for the two sessions left, with the whole limit.
    let t0 = Instant::now();
    if let Some(mut c) = cluster.nodes[planner].child.take() {
        c.kill().expect("kill the planner");
        let _ = c.wait();
    }
    let (new_planner, new_token) = until("a new planner", || async {
        planner_lease(&redis, &name)
            .await
            .filter(|(n, _)| *n != planner_id)
    })
    .await;
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "taken over within the lease: {:?}",
        t0.elapsed()
    );
    assert!(new_token > first_token, "a new fencing token");
    let plan = settled_plan(&cluster.nodes[third].api, site, 2).await;
    assert_eq!(
        plan,
        BTreeMap::from([
            (ids[1].to_owned(), Decimal::from(6_000)),
            (ids[2].to_owned(), Decimal::from(6_000)),
        ]),
        "the new planner ({new_planner}) shares the whole limit again"
    );
    let (s, one) = cluster.nodes[third]
        .api
        .get(&format!("/api/sites/{site}"))
        .await;
    assert_eq!(
        (s, one["sessions"].as_u64()),
        (StatusCode::OK, Some(2)),
        "the new planner's sessions in the site's view: {one}"
    );
}

/// An OCPP 1.6 WebSocket handshake to `addr` as `identity` from the local address `source`
/// (127.0.0.x): the socket, or why it failed (`503` when refused so).
async fn connect_from(
    source: &str,
    addr: SocketAddr,
    identity: &str,
) -> Result<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, String> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(format!("{source}:0").parse().expect("source address"))
        .map_err(|e| e.to_string())?;
    let stream = socket.connect(addr).await.map_err(|e| e.to_string())?;
    let mut req = format!("ws://{addr}/ocpp/{identity}")
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "ocpp1.6".parse().expect("header value"),
    );
    let handshake = tokio_tungstenite::client_async(req, stream);
    match tokio::time::timeout(Duration::from_secs(5), handshake).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(r))) => {
            Err(r.status().as_u16().to_string())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer".into()),
    }
}

/// A node's log without its colours.
fn node_log(path: &std::path::Path) -> String {
    let raw = std::fs::read_to_string(path).expect("node log");
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // An escape sequence: up to its final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Sends `bytes` to `addr` from `source` and waits for the other side to close (the
/// connection was refused without an answer).
async fn closed_after(source: &str, addr: SocketAddr, bytes: &[u8]) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{source}:0").parse().expect("source address"))
        .expect("bind");
    let mut stream = socket.connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// `ocpp_errors_total{kind="proxy_protocol",code=...}` on the node's /metrics.
async fn proxy_refusals(api: &Api, code: &str) -> u64 {
    let text = api.text("/metrics").await;
    let series = format!("kind=\"proxy_protocol\",code=\"{code}\"}}");
    text.lines()
        .find(|l| l.starts_with("ocpp_errors_total") && l.contains(&series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// HAProxy in TCP mode with `send-proxy-v2` and a node with `--proxy-protocol`: the node sees
/// each charger's own address (its logs say so) and `--max-connections-per-ip` applies per
/// charger address, not to the balancer's; a PROXY header from an address that is not the
/// balancer's, and a connection from the balancer without a header, are refused, logged and
/// counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_haproxy_the_proxy_protocol_gives_each_client_its_own_address_limit() {
    let Some((database, redis_url)) = postgres_and_redis("cluster_proxy", "PROXY protocol").await
    else {
        return;
    };
    let name = format!("proxy{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("ocpp-proxy-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("log dir");
    let (child, ocpp, http) = spawn_node_with(
        1,
        &database,
        &redis_url,
        &name,
        &dir,
        2,
        &["--proxy-protocol", "127.0.0.1"],
    );
    let mut cluster = Cluster {
        nodes: Vec::new(),
        balancer: free_addr(),
        dir: dir.clone(),
        restarted: Vec::new(),
    };
    cluster.nodes.push(Node {
        id: "n1".into(),
        child: Some(child),
        ocpp,
        http,
        api: Api::new(http),
    });
    until("node n1 healthy", || healthy(http)).await;
    let db = Db::open(&database).await.expect("database");
    let auth = Auth::new(db.clone(), AuthConfig::new()).expect("auth");
    let (_, key) = auth
        .create_api_key("proxy-test", Role::Admin, "tests")
        .await
        .expect("API key");
    let api = Api::with_key(http, key.expose());
    start_balancer(
        &mut cluster,
        1,
        &[format!("{ocpp}={http}")],
        &[("BALANCER_SEND_PROXY", "1")],
    );
    let balancer = cluster.balancer;
    // HAProxy passes nothing on before the node's first health checks passed.
    let first = until("a connection through the balancer", || async {
        connect_from("127.0.0.2", balancer, "PX-A1").await.ok()
    })
    .await;
    let second = connect_from("127.0.0.2", balancer, "PX-A2")
        .await
        .expect("a second charger from 127.0.0.2");
    assert_eq!(
        connect_from("127.0.0.2", balancer, "PX-A3").await.err(),
        Some("503".to_owned()),
        "a third from 127.0.0.2 is over its address's limit of 2"
    );
    let others = [
        connect_from("127.0.0.3", balancer, "PX-B1")
            .await
            .expect("127.0.0.3 has its own limit"),
        connect_from("127.0.0.3", balancer, "PX-B2")
            .await
            .expect("127.0.0.3 has its own limit"),
    ];
    // Connected once the node has handled the connection's first event (not at the handshake).
    until("PX-B2 connected", || async {
        let (_, c) = api.get("/api/chargers/PX-B2").await;
        (c["connected"] == true).then_some(())
    })
    .await;
    let log = node_log(&dir.join("node1.log"));
    for source in ["127.0.0.2", "127.0.0.3"] {
        assert!(
            log.lines()
                .any(|l| l.contains("charger connected") && l.contains(&format!("peer={source}:"))),
            "the node logs the charger's own address {source}"
        );
    }
    assert!(
        !log.lines()
            .any(|l| l.contains("charger connected") && l.contains("peer=127.0.0.1:")),
        "never the balancer's"
    );

    // Straight to the node: a PROXY header from an address that is not the balancer's (it
    // would claim another address) ...
    let mut header = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    header.extend_from_slice(&[10, 9, 8, 7, 127, 0, 0, 1, 0x9c, 0x40, 0x23, 0x28]);
    header.extend_from_slice(b"GET /ocpp/PX-SPOOF HTTP/1.1\r\n\r\n");
    assert!(closed_after("127.0.0.5", ocpp, &header).await);
    // ... and a connection from the balancer's address without one.
    assert!(closed_after("127.0.0.1", ocpp, b"GET /ocpp/PX-BARE HTTP/1.1\r\n\r\n").await);
    until("the refusals counted", || async {
        (proxy_refusals(&api, "untrusted").await == 1
            && proxy_refusals(&api, "malformed").await == 1)
            .then_some(())
    })
    .await;
    let log = node_log(&dir.join("node1.log"));
    assert!(
        log.lines().any(|l| l.contains("PROXY protocol")
            && l.contains("reason=\"untrusted\"")
            && l.contains("127.0.0.5")),
        "the refusal is logged with its reason"
    );
    // A direct connection from any other address is served as before, with its address.
    let direct = connect_from("127.0.0.6", ocpp, "PX-DIRECT")
        .await
        .expect("a direct connection without a header");
    drop((first, second, others, direct));
}
