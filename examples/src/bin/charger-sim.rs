//! `charger-sim`: one to many thousands of simulated OCPP chargers (1.6, 2.0.1, 2.1 or a mix)
//! against a central system, scripted or random, and the load generator of the benchmark
//! (`--load`). A thin command line over [`ocpp_examples::sim`].

// The doc comments of the command line are its --help text, shown verbatim: `<identity>`
// there is a placeholder, not an HTML tag.
#![allow(rustdoc::invalid_html_tags)]

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use ocpp_charger::tls::ClientTls;
use ocpp_examples::sim::load::{LoadConfig, LoadMode, LoadRun};
use ocpp_examples::sim::{Fleet, Scenario, SimConfig, SimError, VersionMix};

/// Simulated OCPP chargers against a central system, and a load generator.
///
/// Every charger connects to `<URL>/<identity>` (identity = PREFIX-<zero-padded index>, e.g.
/// SIM-0001) with its version's subprotocol, boots, reports its connectors and sends
/// heartbeats; the scenario decides what its drivers do. Stop with Ctrl-C.
///
/// Load mode (--load) measures the central system instead: every charger boots, then for
/// --duration seconds does what --load-mode says, and the run ends with calls/s, latency
/// percentiles (overall and per action) and errors, as a summary and one line of JSON.
#[derive(Debug, Parser)]
#[command(name = "charger-sim")]
struct Args {
    /// Base WebSocket URL of the central system (ws://, or wss:// with --ca); each charger
    /// appends /<its identity>.
    #[arg(long, default_value = "ws://127.0.0.1:9000/ocpp")]
    url: String,

    /// Number of simulated chargers.
    #[arg(long, default_value_t = 1)]
    count: usize,

    /// OCPP version of the chargers: 1.6, 2.0.1, 2.1, mixed (1.6, 2.0.1, 2.1 in turn) or a
    /// comma-separated list used in turn.
    #[arg(long, default_value = "mixed")]
    version: VersionMix,

    /// EVSEs (2.x) / connectors (1.6) per charger.
    #[arg(long, default_value_t = 2)]
    evses: u32,

    /// Identity prefix: chargers are PREFIX-0001, PREFIX-0002, ...
    #[arg(long, default_value = "SIM")]
    prefix: String,

    /// Number of the first charger, so several simulator processes can share one central
    /// system without clashing identities (e.g. --first-index 5001 --count 5000).
    #[arg(long, default_value_t = 1)]
    first_index: usize,

    /// A file holding the Basic-auth password of every charger (security profile 1; the
    /// user is the identity), its first line; or the environment variable
    /// OCPP_CHARGER_PASSWORD. Without either no credentials are sent. Passwords never go on
    /// the command line (other users of the machine can read it).
    #[arg(long, value_name = "FILE")]
    password_file: Option<std::path::PathBuf>,

    /// CA certificate(s) (PEM) that the central system's certificate must chain to: the
    /// chargers speak wss:// (give a wss:// --url), TLS 1.2 or 1.3. Security profile 2 with
    /// --password-file, profile 3 with --client-cert. Not in load mode.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,

    /// Security profile 3: the chargers' client certificate (PEM, chain first). A central
    /// system that binds certificates to identities (the default of ocpp-central) admits
    /// only the charger whose identity is the certificate's CN, e.g. SIM-0001 with --count 1.
    #[arg(long, value_name = "FILE", requires = "ca", requires = "client_key")]
    client_cert: Option<PathBuf>,

    /// The private key (PEM) of --client-cert.
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    client_key: Option<PathBuf>,

    /// What the drivers do. idle: boot, status and heartbeats only; the central system can
    /// still start and stop sessions remotely. charge: per charger a scripted session again
    /// and again (plug in, present --id-tag, charge with meter values for --charge-secs,
    /// present the tag again, unplug, pause --pause-secs). random: seeded random drivers on
    /// every connector (arrivals, authorization, charging time, EV pauses, full batteries,
    /// stop by tag or by unplugging). Default: charge; with --load: the Heartbeat/MeterValues
    /// load, or idle connections with --scenario idle.
    #[arg(long)]
    scenario: Option<Scenario>,

    /// Seed of every random choice (message ids, timings, EV batteries): the same seed plays
    /// the same drivers.
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// New connections per second while starting up (0: all at once).
    #[arg(long, default_value_t = 500.0)]
    ramp: f64,

    /// Stop after this many seconds (default: run until Ctrl-C). In load mode: the length of
    /// the measurement window, which opens once all chargers are booted (default 30).
    #[arg(long)]
    duration: Option<f64>,

    /// Local source address(es) of the TCP connections, used in turn: a comma-separated list
    /// and/or IPv4 ranges such as 127.0.0.2-127.0.0.9, so one load generator can exceed the
    /// ephemeral ports of one source address. Default: the system's choice.
    #[arg(long, value_delimiter = ',')]
    bind_ip: Vec<String>,

    /// The id tag the scripted drivers present, and that starts the transactions of load
    /// modes tx and tx-open (at most 20 characters).
    #[arg(long, default_value = "04E1A2B3C4D5E6")]
    id_tag: String,

    /// Seconds between meter values of a running transaction (1.6 MeterValueSampleInterval,
    /// 2.x SampledDataCtrlr.TxUpdatedInterval), set in every charger; also those of load
    /// modes tx-open and calls-open (there, fractions of a second too).
    #[arg(long, default_value_t = 10.0)]
    meter_interval: f64,

    /// How long a scripted session charges, in seconds (random: 0.5 to 1.5 times this).
    #[arg(long, default_value_t = 60.0)]
    charge_secs: f64,

    /// Pause between scripted sessions, in seconds (random: 0.5 to 1.5 times this).
    #[arg(long, default_value_t = 30.0)]
    pause_secs: f64,

    /// Scenario charge: charger i (from 0) has its first driver arrive i times this many
    /// seconds after it booted (default: a random delay), for a wave of arrivals.
    #[arg(long)]
    arrival_stagger_secs: Option<f64>,

    /// Scenario charge: each charger's drivers come this many times, then it stays idle
    /// (default: again and again), so the drivers leave in the order they came.
    #[arg(long)]
    sessions: Option<u32>,

    /// Charging power of each connector in W.
    #[arg(long, default_value_t = 7400)]
    power: u32,

    /// Load mode: measure the central system (see above) and report calls/s, latency
    /// p50/p99/max and errors at the end.
    #[arg(long)]
    load: bool,

    /// What the chargers do in load mode (default: calls; --scenario idle means idle).
    /// calls: alternate Heartbeat and MeterValues (7 sampled values, no transaction), one
    /// call in flight, back to back. idle: a Heartbeat every --heartbeat-interval (default
    /// 30 s), connections otherwise idle. tx: start a transaction on EVSE 1 before the window
    /// (1.6 StartTransaction with --id-tag; 2.x TransactionEvent Started, seqNo 0), then
    /// alternate Heartbeat and the transaction's meter values (1.6 MeterValues with
    /// transactionId; 2.x TransactionEvent Updated, seqNo 1, 2, ...), back to back. tx-open:
    /// the same transaction, open loop: meter values every --meter-interval seconds (default
    /// 10) and a Heartbeat every --heartbeat-interval (default 60 s, five times as often as
    /// the example central system's 300 s, to err on the heavy side) per charger, each at a
    /// random phase, so calls arrive spread uniformly. calls-open: the same open loop without
    /// a transaction (meter values without transactionId): the same load, for comparison.
    #[arg(long, value_parser = ["calls", "idle", "tx", "tx-open", "calls-open"])]
    load_mode: Option<String>,

    /// Load modes idle, tx-open and calls-open: seconds between the heartbeats of each
    /// charger (default 30 in idle, 60 in the open modes).
    #[arg(long)]
    heartbeat_interval: Option<f64>,

    /// Load mode: the window opens at the latest this many seconds after the start, even if
    /// not all chargers are booted.
    #[arg(long, default_value_t = 120.0)]
    warmup_timeout: f64,

    /// Load mode: open the measurement window at this Unix time in seconds (not before the
    /// warm-up is over); the load runs unmeasured until then. Several generator processes
    /// given the same time measure the same window.
    #[arg(long)]
    window_at: Option<f64>,

    /// Seconds a call waits for its answer.
    #[arg(long, default_value_t = 30.0)]
    call_timeout: f64,

    /// Load mode: print only the one-line JSON report on stdout.
    #[arg(long)]
    json: bool,

    /// Load mode: put the latency histograms' buckets in the JSON report (`buckets`), so a
    /// script can merge the reports of several generator processes exactly.
    #[arg(long)]
    histograms: bool,

    /// Offer WebSocket compression (RFC 7692 permessage-deflate, no context takeover,
    /// messages of 256 bytes and more compressed); without it the chargers offer none.
    #[arg(long)]
    compression: bool,

    /// Sign every transaction and clock-aligned reading as OCMF with a fresh ECDSA P-256 key
    /// (an Eichrecht meter): 1.6 SignedData, 2.x signedMeterValue with the public key once
    /// per transaction. The public key (hex DER SubjectPublicKeyInfo) is printed on stderr
    /// and written to --meter-key-out, for the central system to register
    /// (PUT /api/chargers/{id}/meter-keys).
    #[arg(long)]
    sign_readings: bool,

    /// With --sign-readings: write the meter's public key (hex) to this file.
    #[arg(long, requires = "sign_readings", value_name = "PATH")]
    meter_key_out: Option<std::path::PathBuf>,

    /// With --compression: keep the compression context between messages.
    #[arg(long, requires = "compression")]
    compression_context_takeover: bool,

    /// With --compression: messages shorter than this many bytes are sent uncompressed.
    #[arg(long, default_value_t = 256, value_name = "BYTES")]
    compression_min_size: usize,

    /// No progress line on stderr.
    #[arg(long, short)]
    quiet: bool,

    /// Worker threads of the runtime (0: one per CPU; 1: a single-threaded runtime, e.g. for
    /// a generator pinned to one core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if args.threads > 1 {
            b.worker_threads(args.threads);
        }
        b.enable_all().build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("charger-sim: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("charger-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The password of `--password-file` (its first line) or `OCPP_CHARGER_PASSWORD`.
fn password(args: &Args) -> Result<Option<String>, SimError> {
    if let Some(path) = &args.password_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            SimError::InvalidConfig(format!("--password-file {}: {e}", path.display()))
        })?;
        let line = text
            .lines()
            .next()
            .unwrap_or_default()
            .trim_end_matches('\r');
        if line.is_empty() {
            return Err(SimError::InvalidConfig(format!(
                "--password-file {}: the first line is empty",
                path.display()
            )));
        }
        return Ok(Some(line.to_owned()));
    }
    Ok(std::env::var("OCPP_CHARGER_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty()))
}

fn secs(what: &str, s: f64) -> Result<Duration, SimError> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| SimError::InvalidConfig(format!("{what} must be a number of seconds ≥ 0")))
}

/// The chargers' TLS from --ca, --client-cert and --client-key (`None` without --ca).
fn client_tls(args: &Args) -> Result<Option<ClientTls>, SimError> {
    let Some(ca) = &args.ca else {
        return Ok(None);
    };
    let tls =
        ClientTls::from_ca_file(ca).map_err(|e| SimError::InvalidConfig(format!("--ca: {e}")))?;
    let tls = match (&args.client_cert, &args.client_key) {
        (Some(cert), Some(key)) => tls
            .with_client_certificate_files(cert, key)
            .map_err(|e| SimError::InvalidConfig(format!("--client-cert/--client-key: {e}")))?,
        _ => tls,
    };
    Ok(Some(tls))
}

/// `127.0.0.2`, `::1` or an IPv4 range `127.0.0.2-127.0.0.9`.
fn parse_bind(items: &[String]) -> Result<Vec<IpAddr>, SimError> {
    let mut out = Vec::new();
    for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let bad = || SimError::InvalidConfig(format!("--bind-ip: {item:?} is not an address"));
        if let Some((a, b)) = item.split_once('-') {
            let a: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
            let b: Ipv4Addr = b.trim().parse().map_err(|_| bad())?;
            let (a, b) = (u32::from(a), u32::from(b));
            if b < a || b - a > 65_535 {
                return Err(bad());
            }
            out.extend((a..=b).map(|n| IpAddr::V4(Ipv4Addr::from(n))));
        } else {
            out.push(item.parse().map_err(|_| bad())?);
        }
    }
    Ok(out)
}

/// The progress line: overwritten once per second on a terminal, a plain line every 5 s
/// otherwise.
struct Progress {
    tty: bool,
    quiet: bool,
    start: Instant,
    last_print: Option<Instant>,
    last_calls: u64,
    last_at: Instant,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        let now = Instant::now();
        Progress {
            tty: std::io::stderr().is_terminal(),
            quiet,
            start: now,
            last_print: None,
            last_calls: 0,
            last_at: now,
        }
    }

    fn tick(&self) -> Duration {
        if self.tty {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(5)
        }
    }

    fn show(&mut self, calls: u64, line: impl FnOnce(u64) -> String) {
        if self.quiet {
            return;
        }
        let now = Instant::now();
        if self.last_print.is_some_and(|t| now - t < self.tick()) {
            return;
        }
        let dt = (now - self.last_at).as_secs_f64();
        let rate = if self.last_print.is_none() || dt <= 0.0 {
            0
        } else {
            (calls.saturating_sub(self.last_calls) as f64 / dt).round() as u64
        };
        self.last_calls = calls;
        self.last_at = now;
        self.last_print = Some(now);
        let text = format!("[{:>5}s] {}", self.start.elapsed().as_secs(), line(rate));
        if self.tty {
            eprint!("\r\x1b[2K{text}");
        } else {
            eprintln!("{text}");
        }
    }

    fn done(&self) {
        if self.tty && !self.quiet {
            eprintln!();
        }
    }
}

async fn run(args: Args) -> Result<ExitCode, SimError> {
    let bind_ips = parse_bind(&args.bind_ip)?;
    let call_timeout = secs("--call-timeout", args.call_timeout)?;
    if args.load {
        run_load(args, bind_ips, call_timeout).await
    } else {
        run_fleet(args, bind_ips, call_timeout).await
    }
}

/// The compression the chargers offer (`--compression`, `--compression-context-takeover`).
fn compression(args: &Args) -> ocpp_charger::ws::Compression {
    if !args.compression {
        return ocpp_charger::ws::Compression::off();
    }
    ocpp_charger::ws::Compression {
        context_takeover: args.compression_context_takeover,
        min_size: args.compression_min_size,
        ..ocpp_charger::ws::Compression::default()
    }
}

async fn run_fleet(
    args: Args,
    bind_ips: Vec<IpAddr>,
    call_timeout: Duration,
) -> Result<ExitCode, SimError> {
    let mut config = SimConfig::new(args.url.clone());
    config.count = args.count;
    config.first_index = args.first_index;
    config.versions = args.version.clone();
    config.evses = args.evses;
    config.prefix = args.prefix.clone();
    config.password = password(&args)?;
    config.tls = client_tls(&args)?;
    config.scenario = args.scenario.unwrap_or(Scenario::Charge);
    config.seed = args.seed;
    config.ramp = args.ramp;
    config.bind_ips = bind_ips;
    config.id_tag = args.id_tag.clone();
    // Whole seconds, at least one: what the charger is configured with.
    config.meter_interval = secs("--meter-interval", args.meter_interval.max(1.0).round())?;
    config.charge_duration = secs("--charge-secs", args.charge_secs)?;
    config.pause = secs("--pause-secs", args.pause_secs)?;
    config.arrival_stagger = args
        .arrival_stagger_secs
        .map(|d| secs("--arrival-stagger-secs", d))
        .transpose()?;
    config.sessions = args.sessions;
    config.power_w = args.power;
    config.call_timeout = call_timeout;
    config.compression = compression(&args);
    if args.sign_readings {
        let key = ocpp_examples::sim::ocmf::MeterKey::generate()
            .map_err(|e| SimError::InvalidConfig(e.to_string()))?;
        eprintln!(
            "charger-sim: meter public key (P-256, hex SubjectPublicKeyInfo): {}",
            key.public_key_hex()
        );
        if let Some(path) = &args.meter_key_out {
            std::fs::write(path, format!("{}\n", key.public_key_hex())).map_err(|e| {
                SimError::InvalidConfig(format!("--meter-key-out {}: {e}", path.display()))
            })?;
        }
        config.sign_readings = Some(std::sync::Arc::new(key));
    }
    let duration = args.duration.map(|d| secs("--duration", d)).transpose()?;
    if !args.quiet {
        eprintln!(
            "charger-sim: {} chargers ({}), scenario {}, against {}",
            config.count, config.versions, config.scenario, config.url
        );
    }
    let fleet = Fleet::start(config).await?;
    let mut progress = Progress::new(args.quiet);
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let end = duration.map(|d| tokio::time::Instant::now() + d);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let s = fleet.stats();
                progress.show(s.calls_sent, |rate| format!(
                    "connected {}/{} booted {} charging {} | calls {} ({rate}/s) errors {}",
                    s.connected, s.chargers, s.booted, s.charging, s.calls_sent, s.errors()
                ));
            }
            _ = async { match end { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => break,
            _ = &mut ctrl_c => break,
        }
    }
    progress.done();
    let s = fleet.shutdown().await;
    println!(
        "charger-sim: {} chargers; {} calls sent, {} answered, {} call errors; {} transactions started, {} ended; {} transaction messages given up; {} connect failures, {} disconnects",
        s.chargers,
        s.calls_sent,
        s.answers,
        s.call_errors,
        s.transactions_started,
        s.transactions_ended,
        s.messages_dropped,
        s.connect_failures,
        s.disconnects
    );
    Ok(ExitCode::SUCCESS)
}

async fn run_load(
    args: Args,
    bind_ips: Vec<IpAddr>,
    call_timeout: Duration,
) -> Result<ExitCode, SimError> {
    if args.ca.is_some() {
        return Err(SimError::InvalidConfig(
            "--ca: load mode speaks ws:// only".into(),
        ));
    }
    let mut config = LoadConfig::new(args.url.clone());
    config.count = args.count;
    config.first_index = args.first_index;
    config.versions = args.version.clone();
    config.evses = args.evses;
    config.prefix = args.prefix.clone();
    config.password = password(&args)?;
    config.seed = args.seed;
    config.ramp = args.ramp;
    config.bind_ips = bind_ips;
    config.duration = secs("--duration", args.duration.unwrap_or(30.0))?;
    config.compression = compression(&args);
    config.call_timeout = call_timeout;
    config.warmup_timeout = secs("--warmup-timeout", args.warmup_timeout)?;
    config.window_at = match args.window_at {
        None => None,
        Some(t) => Some(
            std::time::UNIX_EPOCH
                .checked_add(secs("--window-at", t)?)
                .ok_or_else(|| SimError::InvalidConfig("--window-at is too far away".into()))?,
        ),
    };
    config.id_tag = args.id_tag.clone();
    config.buckets = args.histograms;
    let heartbeat = |default: f64| {
        secs(
            "--heartbeat-interval",
            args.heartbeat_interval.unwrap_or(default),
        )
    };
    let mode = match (args.scenario, args.load_mode.as_deref()) {
        (None, None) => "calls",
        (Some(Scenario::Idle), None | Some("idle")) => "idle",
        (None, Some(mode)) => mode,
        (Some(Scenario::Idle), Some(mode)) => {
            return Err(SimError::InvalidConfig(format!(
                "--scenario idle contradicts --load-mode {mode}"
            )))
        }
        (Some(other), _) => {
            return Err(SimError::InvalidConfig(format!(
                "--load takes --load-mode (calls, idle, tx, tx-open, calls-open); --scenario {other} is not a load mode"
            )))
        }
    };
    config.mode = match mode {
        "idle" => LoadMode::Idle {
            heartbeat_interval: heartbeat(30.0)?,
        },
        "tx" => LoadMode::Transactions,
        "tx-open" => LoadMode::TransactionsOpen {
            meter_interval: secs("--meter-interval", args.meter_interval)?,
            heartbeat_interval: heartbeat(60.0)?,
        },
        "calls-open" => LoadMode::CallsOpen {
            meter_interval: secs("--meter-interval", args.meter_interval)?,
            heartbeat_interval: heartbeat(60.0)?,
        },
        _ => LoadMode::Calls,
    };
    let quiet = args.quiet;
    let run = LoadRun::start(config).await?;
    let mut progress = Progress::new(quiet);
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut stopping = false;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let p = run.progress();
                if p.phase == "stop" {
                    break;
                }
                progress.show(p.calls, |rate| format!(
                    "{} connected {}/{} booted {} | calls {} ({rate}/s) errors {}",
                    p.phase, p.connected, p.chargers, p.booted, p.calls, p.errors
                ));
            }
            _ = &mut ctrl_c, if !stopping => {
                stopping = true;
                run.stop();
            }
        }
    }
    progress.done();
    let report = run.finish().await?;
    if !args.json {
        println!("{report}");
    }
    println!("{}", report.to_json());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_ranges() {
        let v = parse_bind(&["127.0.0.2-127.0.0.4".into(), "::1".into()]).unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!(v[2], "127.0.0.4".parse::<IpAddr>().unwrap());
        assert!(parse_bind(&["127.0.0.9-127.0.0.2".into()]).is_err());
        assert!(parse_bind(&["nope".into()]).is_err());
    }

    #[test]
    fn args_parse() {
        let a = Args::try_parse_from([
            "charger-sim",
            "--url",
            "ws://x:1/ocpp",
            "--count",
            "5",
            "--version",
            "2.0.1",
            "--load",
        ])
        .unwrap();
        assert_eq!(a.count, 5);
        assert_eq!(a.version, VersionMix::one(ocpp_codec::Version::V201));
        assert!(a.load);
        let a = Args::try_parse_from([
            "charger-sim",
            "--load",
            "--load-mode",
            "tx-open",
            "--heartbeat-interval",
            "90",
        ])
        .unwrap();
        assert_eq!(a.load_mode.as_deref(), Some("tx-open"));
        assert_eq!(a.heartbeat_interval, Some(90.0));
        let a = Args::try_parse_from([
            "charger-sim",
            "--load",
            "--load-mode",
            "calls-open",
            "--meter-interval",
            "0.05",
        ])
        .unwrap();
        assert_eq!(a.load_mode.as_deref(), Some("calls-open"));
        assert_eq!(a.meter_interval, 0.05);
        assert!(Args::try_parse_from(["charger-sim", "--load-mode", "nope"]).is_err());
    }
}
