//! `network`: a whole charging network in one command (the README's run command).
//!
//! Starts the example central system on its embedded SQLite database with the dashboard, 10
//! simulated chargers of mixed OCPP versions, and plays the charging flow through the HTTP
//! API, narrating it: the chargers boot and report status, drivers plug in and start
//! charging from the app (the API's remote start), meter values flow, the drivers stop, and
//! each session is stored with its energy and cost. The network then stays up (Ctrl-C to
//! stop) with the other chargers played by random drivers, so the dashboard stays live.

use std::time::Duration;

use clap::Parser;
use ocpp_central::ocpp_types::Version;
use ocpp_examples::backend::auth::Role;
use ocpp_examples::backend::run::{start, CentralArgs};
use ocpp_examples::backend::sites::{SiteSettings, SiteUnit};
use ocpp_examples::backend::{wait_for, LiveEvent};
use ocpp_examples::sim::{Fleet, Scenario, SimConfig, VersionMix};
use serde_json::{json, Value};
use tokio::sync::broadcast;

/// A whole OCPP charging network on this machine: central system with database, API and
/// dashboard, plus 10 simulated chargers (1.6, 2.0.1 and 2.1) playing the charging flow.
#[derive(Debug, Parser)]
#[command(name = "network", version)]
struct Cli {
    /// Address of the OCPP WebSocket server.
    #[arg(long, default_value = "127.0.0.1:9000", value_name = "ADDR")]
    ocpp_listen: String,

    /// Address of the dashboard and HTTP API.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    http_listen: String,

    /// Database (SQLite file path or postgres:// URL).
    #[arg(long, default_value = "sqlite://ocpp-network.db", value_name = "URL")]
    database_url: String,

    /// Simulated chargers in all (at least 3: one of each version plays the narrated flow,
    /// the others get random drivers).
    #[arg(long, default_value_t = 10)]
    chargers: usize,

    /// How long each narrated session charges, seconds.
    #[arg(long, default_value_t = 20)]
    charge_secs: u64,

    /// Seconds between meter values of the simulated chargers.
    #[arg(long, default_value_t = 2)]
    meter_interval: u64,

    /// Exit once the narrated flow is done (instead of running until Ctrl-C).
    #[arg(long)]
    exit_after_demo: bool,

    /// A file holding the dashboard's `admin` password, used when the database has no
    /// operator account yet (else OCPP_ADMIN_PASSWORD, else a random one, printed once).
    #[arg(long, value_name = "FILE")]
    admin_password_file: Option<std::path::PathBuf>,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

const WAIT: Duration = Duration::from_secs(60);

/// The site the simulated chargers share (created at the first run, found again after).
const DEMO_SITE: &str = "Depot";

/// Who the demo's API key is created by (so a leftover one is found and revoked).
const DEMO_KEY_OWNER: &str = "network";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("network: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn say(line: impl AsRef<str>) {
    println!("{}", line.as_ref());
}

async fn run(cli: Cli) -> Result<(), Error> {
    if cli.chargers < 3 {
        return Err("--chargers must be at least 3".into());
    }
    let mut args = CentralArgs::with_database(cli.database_url.clone());
    args.ocpp_listen = cli.ocpp_listen.clone();
    args.http_listen = cli.http_listen.clone();
    args.heartbeat_interval = 60;
    // The running cost on every charger: CostUpdated / California Pricing every 30 s, and a
    // personal message in the TransactionEvent answers.
    args.cost_update_interval = 30;
    args.personal_message = Some("Cost so far: {cost} {currency}".into());
    args.v16_cost_messages = true;
    args.admin_password_file = cli.admin_password_file.clone();
    let central = start(&args).await?;
    let mut feed = central.backend().subscribe();
    let http = format!("http://{}", central.http_addr());
    let ocpp = format!("ws://{}/ocpp", central.ocpp_addr());
    say(format!(
        "Central system up: OCPP at {ocpp}/<identity>, database {}",
        cli.database_url
    ));
    say(format!(
        "Dashboard: {http}/   (API: {http}/api/openapi.json)"
    ));
    match central.initial_admin_password() {
        Some(pw) => say(format!(
            "Sign in to the dashboard as admin, password {}   (first run: shown only now)",
            pw.expose()
        )),
        None => say(
            "Sign in to the dashboard as admin (its password was printed on the first run, \
             or came from OCPP_ADMIN_PASSWORD / --admin-password-file)",
        ),
    }
    // The narrated flow drives the API like any program: with an operator API key, revoked
    // when the demo ends (and, if a previous run died first, at the next start).
    for key in central.auth().api_keys().await? {
        if key.created_by == DEMO_KEY_OWNER {
            central.auth().revoke_api_key(&key.id).await?;
        }
    }
    let (demo_key, key) = central
        .auth()
        .create_api_key("network demo", Role::Operator, DEMO_KEY_OWNER)
        .await?;
    let mut bearer = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.expose()))?;
    bearer.set_sensitive(true);
    let client = reqwest::Client::builder()
        .default_headers(reqwest::header::HeaderMap::from_iter([(
            reqwest::header::AUTHORIZATION,
            bearer,
        )]))
        .build()?;

    // Three narrated chargers, one per version, driven through the API...
    let mut demo = SimConfig::new(ocpp.clone());
    demo.count = 3;
    demo.prefix = "DEMO".into();
    demo.versions = VersionMix::mixed();
    demo.scenario = Scenario::Idle;
    demo.meter_interval = Duration::from_secs(cli.meter_interval.max(1));
    demo.power_w = 22_000;
    demo.vendor = "ACME".into();
    demo.model = "Volt 22".into();
    let demo_fleet = Fleet::start(demo.clone()).await?;
    // ... and the rest with random drivers, so the dashboard keeps moving.
    let mut others = SimConfig::new(ocpp.clone());
    others.count = cli.chargers - 3;
    others.prefix = "SIM".into();
    others.versions = VersionMix::mixed();
    others.scenario = Scenario::Random;
    others.meter_interval = Duration::from_secs(cli.meter_interval.max(1));
    others.seed = 42;
    let other_fleet = if others.count > 0 {
        Some(Fleet::start(others).await?)
    } else {
        None
    };
    let want_others = cli.chargers - 3;
    demo_fleet
        .wait_stats(|s| s.booted == 3, WAIT)
        .await
        .map_err(|e| format!("the demo chargers did not boot: {e}"))?;
    if let Some(f) = &other_fleet {
        f.wait_stats(|s| s.booted == want_others, WAIT)
            .await
            .map_err(|e| format!("the simulated chargers did not boot: {e}"))?;
    }
    // The simulated chargers share one depot's grid connection, half of what they could
    // draw together: the balancer divides it among the sessions (the dashboard's site chart
    // shows the site's power against its limit). The narrated chargers stay off it.
    if let Some(f) = &other_fleet {
        let sites = central.backend().sites();
        let limit_w = (want_others as u64 * 11_000 / 2).max(11_000);
        let site = match sites.list().into_iter().find(|s| s.name == DEMO_SITE) {
            Some(site) => site,
            None => {
                sites
                    .create(&SiteSettings {
                        name: DEMO_SITE.into(),
                        limit: rust_decimal::Decimal::from(limit_w),
                        unit: SiteUnit::W,
                        min_rate: rust_decimal::Decimal::from(4_140),
                        evse_max: rust_decimal::Decimal::from(22_000),
                    })
                    .await?
            }
        };
        for id in f.identities() {
            sites.assign(site.id, &id).await?;
        }
        say(format!(
            "The {want_others} simulated chargers share the site {DEMO_SITE:?}: {} kW for all of them, divided by the balancer",
            (site.limit / rust_decimal::Decimal::from(1_000)).normalize()
        ));
    }
    let mut by_version = [0usize; 3];
    for i in 0..cli.chargers {
        let v = VersionMix::mixed().version_of(if i < 3 { i } else { i - 3 });
        by_version[Version::ALL.iter().position(|x| *x == v).unwrap_or(0)] += 1;
    }
    say(format!(
        "{} chargers booted and reported their connectors: {} on OCPP 1.6, {} on 2.0.1, {} on 2.1",
        cli.chargers, by_version[0], by_version[1], by_version[2]
    ));

    let identities = demo_fleet.identities();
    let mut sessions = Vec::new();
    for (n, id) in identities.iter().enumerate() {
        let version = demo_fleet.version_of(id).unwrap_or(Version::V16);
        let driver = format!("DRIVER-{:03}", n + 1);
        demo_fleet.plug_in(id, 1)?;
        let status = wait(&mut feed, id, "status", |d| {
            d["evse"] == 1 && d["status"] != "Available"
        })
        .await?;
        say(format!(
            "{id} (OCPP {version}): a driver plugs in on EVSE 1 -> {}",
            status["status"].as_str().unwrap_or("?")
        ));
        let answer = post(
            &client,
            &format!("{http}/api/chargers/{id}/start"),
            json!({ "evse": 1, "idTag": driver }),
        )
        .await?;
        say(format!(
            "{id}: {driver} taps Start in the app -> POST /api/chargers/{id}/start -> {} {}",
            answer["action"].as_str().unwrap_or("?"),
            answer["status"].as_str().unwrap_or("?")
        ));
        let started = wait(&mut feed, id, "transaction_started", |_| true).await?;
        let session = started["sessionId"].as_i64().unwrap_or(0);
        say(format!(
            "{id}: transaction {} started, session #{session}",
            started["transactionId"].as_str().unwrap_or("?")
        ));
        sessions.push((id.clone(), session));
    }

    say(format!(
        "Charging for {} s; meter values every {} s (watch the dashboard)...",
        cli.charge_secs, cli.meter_interval
    ));
    let until = tokio::time::Instant::now() + Duration::from_secs(cli.charge_secs);
    let mut last_report = tokio::time::Instant::now();
    while tokio::time::Instant::now() < until {
        let left = until - tokio::time::Instant::now();
        if let Ok(Ok(ev)) = tokio::time::timeout(left, feed.recv()).await {
            if ev.kind == "transaction_updated"
                && sessions.iter().any(|(id, _)| *id == ev.charger)
                && last_report.elapsed() >= Duration::from_secs(5)
            {
                last_report = tokio::time::Instant::now();
                say(format!(
                    "  {}: {} Wh so far at {} W",
                    ev.charger, ev.detail["energyWh"], ev.detail["powerW"]
                ));
            }
        }
    }

    for (id, session) in &sessions {
        let answer = post(
            &client,
            &format!("{http}/api/chargers/{id}/stop"),
            json!({ "sessionId": session }),
        )
        .await?;
        say(format!(
            "{id}: the driver taps Stop -> {} {}",
            answer["action"].as_str().unwrap_or("?"),
            answer["status"].as_str().unwrap_or("?")
        ));
        wait(&mut feed, id, "transaction_ended", |_| true).await?;
        let s: Value = client
            .get(format!("{http}/api/sessions/{session}"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        say(format!(
            "{id}: session #{session} stored: {} Wh ({} meter samples), {} -> {}, cost {} {}",
            s["energyWhExact"].as_str().unwrap_or("?"),
            s["samples"].as_array().map_or(0, Vec::len),
            s["startedAt"].as_str().unwrap_or("?"),
            s["stoppedAt"].as_str().unwrap_or("?"),
            s["costExact"].as_str().unwrap_or("?"),
            s["currency"].as_str().unwrap_or("?"),
        ));
        demo_fleet.unplug(id, 1)?;
    }
    say("The whole flow is done: boot, status, remote start, meter values, remote stop, stored sessions with energy and cost.");
    central.auth().revoke_api_key(&demo_key.id).await?;

    if !cli.exit_after_demo {
        say(format!(
            "The network keeps running with random drivers. Dashboard: {http}/  (Ctrl-C to stop)"
        ));
        tokio::signal::ctrl_c().await?;
    }
    say("Stopping...");
    demo_fleet.shutdown().await;
    if let Some(f) = other_fleet {
        f.shutdown().await;
    }
    central.shutdown().await?;
    Ok(())
}

async fn post(client: &reqwest::Client, url: &str, body: Value) -> Result<Value, Error> {
    let r = client.post(url).json(&body).send().await?;
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!("POST {url} -> {status}: {v}").into());
    }
    Ok(v)
}

async fn wait(
    feed: &mut broadcast::Receiver<LiveEvent>,
    charger: &str,
    kind: &str,
    pred: impl Fn(&Value) -> bool,
) -> Result<Value, Error> {
    Ok(wait_for(feed, charger, kind, WAIT, pred).await?)
}
