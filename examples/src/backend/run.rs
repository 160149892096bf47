//! Assembling the central system: database, backend, OCPP server and HTTP server, from
//! command-line options. Used by the `central-system` and `network` binaries and the tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ocpp_central::ocpp_types::Version;
use ocpp_central::{Auth, Chargers, Defaults, RunningServer, Server, ServerConfig};
use rust_decimal::Decimal;
use tokio::net::TcpListener;

use super::{api, Backend, Db, DbError, Metrics, Tariff, UnknownTokens};

/// The central system's options (the `central-system` command line).
#[derive(Debug, Clone, clap::Args)]
pub struct CentralArgs {
    /// Address the OCPP WebSocket server listens on. Chargers connect to
    /// ws://ADDR/ANY/PATH/IDENTITY (the identity is the last path segment).
    #[arg(long, default_value = "127.0.0.1:9000", value_name = "ADDR")]
    pub ocpp_listen: String,

    /// Address the HTTP API, dashboard, /health and /metrics listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub http_listen: String,

    /// Database: a SQLite file path (or sqlite://PATH), created and migrated on start, or
    /// postgres://USER:PASSWORD@HOST:PORT/DB.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://ocpp-central.db",
        value_name = "URL"
    )]
    pub database_url: String,

    /// Admit only chargers registered through POST /api/chargers (or with a password in
    /// the passwords file); by default any identity under any path prefix is admitted.
    #[arg(long)]
    pub known_only: bool,

    // ----- charger passwords (security profile 1): one block, see secrets.rs -----
    /// Security profile 1: a file of charger passwords, one per line, IDENTITY=PASSWORD or
    /// IDENTITY:$argon2id$... (a hash), `#` comments. The environment variable
    /// OCPP_CHARGER_PASSWORDS may hold more entries (same format, `;` between them).
    /// Passwords are stored hashed (argon2); with any entry, chargers without a password are
    /// refused with 401. Passwords never go on the command line.
    #[arg(long, value_name = "FILE")]
    pub passwords_file: Option<std::path::PathBuf>,

    /// Entries in the passwords-file format given by the embedding program (tests); the
    /// command line has no flag for it.
    #[arg(skip)]
    pub passwords: Option<String>,
    // ----- end of charger passwords -----
    /// OCPP versions offered, in order of preference (subprotocol negotiation).
    #[arg(long = "ocpp-version", value_delimiter = ',', default_value = "2.1,2.0.1,1.6", value_parser = parse_version)]
    pub versions: Vec<Version>,

    /// Heartbeat interval given to chargers at boot, seconds.
    #[arg(long, default_value_t = 300)]
    pub heartbeat_interval: i32,

    /// What to answer for an ID token not in the token table (POST /api/tokens).
    #[arg(long, value_enum, default_value = "accept")]
    pub unknown_tokens: UnknownTokens,

    /// Tariff: price per kWh.
    #[arg(long, default_value = "0.30", value_name = "PRICE")]
    pub price_per_kwh: Decimal,

    /// Tariff: price per hour of session time (pro rata per started minute).
    #[arg(long, default_value = "0", value_name = "PRICE")]
    pub price_per_hour: Decimal,

    /// Tariff: fixed fee per session.
    #[arg(long, default_value = "0", value_name = "PRICE")]
    pub session_fee: Decimal,

    /// Tariff: ISO 4217 currency.
    #[arg(long, default_value = "EUR")]
    pub currency: String,

    /// How long to wait for a charger's answer to a central call, seconds.
    #[arg(long, default_value_t = 30)]
    pub call_timeout: u64,

    /// Lenient mode: accept charger requests that break their schema in the ways field devices
    /// often do (unknown properties, timestamps without offset, numbers as strings, optional
    /// enum values outside the list), repaired and logged (`repaired` events); strict by
    /// default.
    #[arg(long)]
    pub lenient: bool,

    /// The most charger connections at once (handshakes included); beyond, 503. Keep it
    /// below the process's open-file limit.
    #[arg(long, default_value_t = 16_384)]
    pub max_connections: usize,

    /// The most charger connections from one IP address at once; beyond, 503 (chargers on
    /// cellular links share their carrier's NAT addresses: lower it only where each charger
    /// or site has its own).
    #[arg(long, default_value_t = 16_384)]
    pub max_connections_per_ip: usize,
}

fn parse_version(s: &str) -> Result<Version, String> {
    s.parse::<Version>()
        .map_err(|_| format!("{s:?} is not an OCPP version (1.6, 2.0.1, 2.1)"))
}

impl CentralArgs {
    /// The defaults of the command line, with the given database.
    pub fn with_database(database_url: impl Into<String>) -> CentralArgs {
        CentralArgs {
            ocpp_listen: "127.0.0.1:9000".into(),
            http_listen: "127.0.0.1:8080".into(),
            database_url: database_url.into(),
            known_only: false,
            passwords_file: None,
            passwords: None,
            versions: vec![Version::V21, Version::V201, Version::V16],
            heartbeat_interval: 300,
            unknown_tokens: UnknownTokens::Accept,
            price_per_kwh: Decimal::new(30, 2),
            price_per_hour: Decimal::ZERO,
            session_fee: Decimal::ZERO,
            currency: "EUR".into(),
            call_timeout: 30,
            max_connections: 16_384,
            max_connections_per_ip: 16_384,
            lenient: false,
        }
    }

    /// Both listeners on free ports of 127.0.0.1 (tests, the network demo).
    pub fn ephemeral(mut self) -> CentralArgs {
        self.ocpp_listen = "127.0.0.1:0".into();
        self.http_listen = "127.0.0.1:0".into();
        self
    }
}

/// Why the central system could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Database(#[from] DbError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// A command-line value is malformed.
    #[error("{0}")]
    Invalid(String),
}

/// A running central system.
#[derive(Debug)]
pub struct RunningCentral {
    backend: Arc<Backend>,
    ocpp: RunningServer,
    http_addr: SocketAddr,
    http_stop: Option<tokio::sync::oneshot::Sender<()>>,
    http_task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningCentral {
    /// Where chargers connect (`ws://{ocpp_addr}/ocpp/<identity>`).
    pub fn ocpp_addr(&self) -> SocketAddr {
        self.ocpp.local_addr()
    }

    /// Where the HTTP API and dashboard listen.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The backend (database, chargers, metrics).
    pub fn backend(&self) -> &Arc<Backend> {
        &self.backend
    }

    /// Stops: closes every charger connection (they see a WebSocket close and reconnect to
    /// the next instance), then the HTTP server.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.ocpp.shutdown().await?;
        self.backend.flush().await;
        if let Some(stop) = self.http_stop.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(Duration::from_secs(5), self.http_task).await {
            Ok(joined) => joined.map_err(std::io::Error::other)?,
            Err(_) => Ok(()), // long-lived SSE clients: dropped with the runtime
        }
    }
}

/// The charger passwords of `--passwords-file`, `OCPP_CHARGER_PASSWORDS` and
/// [`CentralArgs::passwords`] (see [`super::secrets::parse_passwords`]).
fn charger_passwords(
    args: &CentralArgs,
) -> Result<Vec<(String, super::secrets::Secret)>, StartError> {
    let mut sources = Vec::new();
    if let Some(path) = &args.passwords_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| StartError::Invalid(format!("cannot read {}: {e}", path.display())))?;
        sources.push((path.display().to_string(), text));
    }
    if let Ok(text) = std::env::var("OCPP_CHARGER_PASSWORDS") {
        sources.push(("OCPP_CHARGER_PASSWORDS".into(), text));
    }
    if let Some(text) = &args.passwords {
        sources.push(("the embedding program's passwords".into(), text.clone()));
    }
    let mut out = Vec::new();
    for (name, text) in sources {
        out.extend(
            super::secrets::parse_passwords(&text)
                .map_err(|e| StartError::Invalid(format!("{name}: {e}")))?,
        );
    }
    Ok(out)
}

/// Starts the central system described by `args`.
pub async fn start(args: &CentralArgs) -> Result<RunningCentral, StartError> {
    let db = Db::open(&args.database_url).await?;
    db.all_disconnected().await?;
    let passwords = charger_passwords(args)?;
    let defaults = Defaults {
        heartbeat_interval: args.heartbeat_interval,
        ..Defaults::default()
    };
    let chargers = Chargers::new();
    let tariff = Tariff {
        per_kwh: args.price_per_kwh,
        per_hour: args.price_per_hour,
        per_session: args.session_fee,
        currency: args.currency.clone(),
    };
    let backend = Arc::new(
        Backend::new(
            db.clone(),
            chargers.clone(),
            tariff,
            Metrics::new(),
            args.unknown_tokens,
        )
        .await?,
    );
    // Transaction messages answered but not projected when the last process died.
    backend.recover().await?;
    for id in db.registered_identities().await? {
        backend.admit(&id);
    }
    for (id, _) in &passwords {
        backend.admit(id);
    }
    if passwords.is_empty() {
        tracing::warn!(
            "no --passwords-file or OCPP_CHARGER_PASSWORDS: chargers without a password are \
             not authenticated (security profile 0)"
        );
    }
    backend.passwords().require(!passwords.is_empty());
    backend
        .passwords()
        .seed(passwords)
        .await
        .map_err(|e| StartError::Invalid(format!("charger passwords: {e}")))?;
    let auth = Auth::basic(backend.passwords().authenticator());
    let mut config = ServerConfig::new(auth)
        .versions(args.versions.iter().copied())
        .defaults(defaults)
        .call_timeout(Duration::from_secs(args.call_timeout.max(1)))
        .lenient(args.lenient)
        .max_connections(args.max_connections)
        .max_connections_per_address(args.max_connections_per_ip);
    if args.known_only {
        config = config.admission(backend.known_only_admission());
    }
    let ocpp_listener = TcpListener::bind(&args.ocpp_listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: args.ocpp_listen.clone(),
            source,
        })?;
    let http_listener = TcpListener::bind(&args.http_listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: args.http_listen.clone(),
            source,
        })?;
    let http_addr = http_listener
        .local_addr()
        .map_err(|source| StartError::Listen {
            addr: args.http_listen.clone(),
            source,
        })?;
    let ocpp = Server::new(config, backend.clone())
        .with_chargers(chargers)
        .start(ocpp_listener)
        .map_err(|source| StartError::Listen {
            addr: args.ocpp_listen.clone(),
            source,
        })?;
    let (http_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let app = api::router(backend.clone());
    let http_task = tokio::spawn(async move {
        axum::serve(http_listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(
        ocpp = %ocpp.local_addr(),
        http = %http_addr,
        database = ?db.backend(),
        "central system running"
    );
    Ok(RunningCentral {
        backend,
        ocpp,
        http_addr,
        http_stop: Some(http_stop),
        http_task,
    })
}
