//! `central-system`: the ocpp-rs example central system. An OCPP 1.6 / 2.0.1 / 2.1 WebSocket
//! server with a backend: HTTP/JSON API (OpenAPI at /api/openapi.json), a live dashboard,
//! SQLite (embedded, default) or PostgreSQL persistence, Prometheus metrics.

use clap::Parser;
use ocpp_examples::backend::run::{start, CentralArgs};

/// mimalloc, not glibc's allocator. Chargers in transactions make the central system
/// allocate from one thread and free from another (the journal's rows, the database thread's
/// buffers, the write-behind's batches) in sizes from a few bytes to kilobytes; glibc's free
/// lists fragment under that (consolidation and `unlink_chunk` took 11 µs more per call in
/// transactions than without, mimalloc 2 µs: BENCHMARKS.md). The libraries leave the choice
/// to the application, as this one makes it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The ocpp-rs example central system (CSMS) for OCPP 1.6, 2.0.1 and 2.1.
///
/// Chargers connect to ws://OCPP_LISTEN/ANY/PATH/IDENTITY (wss:// with --tls-cert); the
/// dashboard and the API are at http://HTTP_LISTEN/. Logs go to stderr (RUST_LOG=debug for
/// more); Ctrl-C stops it gracefully; SIGHUP reads the TLS certificate and key again.
#[derive(Debug, Parser)]
#[command(name = "central-system", version)]
struct Cli {
    #[command(flatten)]
    central: CentralArgs,

    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,

    /// Worker threads (0: one per CPU; 1: a single-threaded runtime, the fairest choice for a
    /// process pinned to one core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = if cli.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if cli.threads > 1 {
            b.worker_threads(cli.threads);
        }
        b.enable_all().build()
    };
    match runtime {
        Ok(rt) => rt.block_on(run(cli)),
        Err(e) => {
            eprintln!("central-system: cannot start the runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> std::process::ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    let running = match start(&cli.central).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("central-system: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!(
        "central-system: OCPP on {}://{}/ocpp/<identity>, dashboard and API on http://{}/",
        running.ocpp_scheme(),
        running.ocpp_addr(),
        running.http_addr()
    );
    if let Some(pw) = running.initial_admin_password() {
        println!(
            "central-system: first run: created the dashboard account \"admin\" with password {}\n\
             central-system: (shown only now; change it with PUT /api/users/admin, or give \
             OCPP_ADMIN_PASSWORD / --admin-password-file before the first run)",
            pw.expose()
        );
    }
    wait_for_ctrl_c(&running).await;
    tracing::info!("shutting down");
    if let Err(e) = running.shutdown().await {
        eprintln!("central-system: shutdown: {e}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

/// Waits for Ctrl-C; on SIGHUP (Unix) reads the TLS certificate and key again.
async fn wait_for_ctrl_c(running: &ocpp_examples::backend::run::RunningCentral) {
    #[cfg(unix)]
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("central-system: cannot watch SIGHUP: {e}");
            None
        }
    };
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(s) => s.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<Option<()>>();
        tokio::select! {
            result = &mut ctrl_c => {
                if let Err(e) = result {
                    eprintln!("central-system: cannot wait for Ctrl-C: {e}");
                }
                return;
            }
            Some(()) = hup => match running.reload_tls() {
                Ok(true) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                Ok(false) => tracing::info!("SIGHUP: no TLS certificate to reload"),
                Err(e) => tracing::error!("SIGHUP: TLS certificate not reloaded, the old one stays: {e}"),
            },
        }
    }
}
