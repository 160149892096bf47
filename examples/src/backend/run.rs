//! Assembling the central system: database, backend, OCPP server and HTTP server, from
//! command-line options. Used by the `central-system` and `network` binaries and the tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ocpp_central::ocpp_types::Version;
use ocpp_central::tls::{ServerTls, TlsAcceptorHandle};
use ocpp_central::{Auth, Chargers, Compression, Defaults, RunningServer, Server, ServerConfig};
use rust_decimal::Decimal;
use tokio::net::TcpListener;

use super::auth::{Auth as OperatorAuth, AuthConfig, AuthError, Secret};
use super::cluster::{ClusterConfig, RedisCluster};
use super::{api, http, Backend, Db, DbError, Metrics, Tariff, UnknownTokens};

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

    // ----- the running cost (cost.rs) -----
    /// Send running transactions their cost so far (2.x CostUpdated; 1.6 the California
    /// Pricing RunningCost with --v16-cost-messages) every this many seconds; 0: never.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub cost_update_interval: u64,

    /// The personal message of TransactionEvent answers (2.x `updatedPersonalMessage`,
    /// 1.6 FinalCost `priceText`): `{cost}` and `{currency}` are replaced; none by default.
    #[arg(long, value_name = "TEXT")]
    pub personal_message: Option<String>,

    /// Send 1.6 chargers the California Pricing DataTransfers (vendorId
    /// org.openchargealliance.costmsg: RunningCost, FinalCost).
    #[arg(long)]
    pub v16_cost_messages: bool,
    // ----- end of the running cost -----
    // ----- billing (payments.rs) -----
    /// The pre-authorization hold of a session a driver starts from the app (in the tariff's
    /// currency).
    #[arg(long, default_value = "50", value_name = "AMOUNT")]
    pub payment_hold: Decimal,
    /// Capture attempts before a hold is released and the cost left to the invoice.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub payment_attempts: i64,
    /// How often the billing sweeper settles ended sessions and retries captures, seconds.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub payment_sweep_interval: u64,
    /// The HMAC secret of the local payment provider's webhooks (random when not given).
    #[arg(
        long,
        env = "OCPP_PAYMENT_WEBHOOK_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub payment_webhook_secret: Option<String>,
    // ----- end of billing -----
    // ----- health alerts (alerts.rs) -----
    /// How often charger health flags are checked and alert webhooks sent, milliseconds.
    #[arg(long, default_value_t = 15_000, value_name = "MS")]
    pub alert_interval_ms: u64,
    /// The wait after an alert webhook's first failed attempt (doubled per attempt, at most
    /// an hour), milliseconds.
    #[arg(long, default_value_t = 5_000, value_name = "MS")]
    pub alert_backoff_ms: u64,
    /// Attempts of an alert webhook before it is `failed`.
    #[arg(long, default_value_t = 6, value_name = "N")]
    pub alert_attempts: i64,
    // ----- end of health alerts -----
    /// Signed meter values kept as rows per session (signed.rs); past it each message's
    /// extra values are a `limit_reached` event and an `errors` metric (the journal keeps
    /// the message verbatim).
    #[arg(long, default_value_t = super::signed::MAX_PER_SESSION, value_name = "N")]
    pub max_signed_per_session: usize,
    /// How long to wait for a charger's answer to a central call, seconds.
    #[arg(long, default_value_t = 30)]
    pub call_timeout: u64,

    /// Lenient mode: accept charger requests that break their schema in the ways field devices
    /// often do (unknown properties, timestamps without offset, numbers as strings, optional
    /// enum values outside the list), repaired and logged (`repaired` events); strict by
    /// default.
    #[arg(long)]
    pub lenient: bool,

    /// WebSocket compression (RFC 7692 permessage-deflate): `on` accepts a charger's offer
    /// (messages of 256 bytes and more are sent compressed; a compressed message inflates
    /// up to the same limit as an uncompressed one is read, beyond which the connection is
    /// closed with 1009), `off` declines every offer.
    #[arg(long, value_enum, default_value = "on")]
    pub compression: Switch,

    /// Keep the compression context between messages (better ratios, about 300 KiB more per
    /// compressed connection for its whole life); without it each message is compressed on
    /// its own and an idle connection holds no compression state.
    #[arg(long)]
    pub compression_context_takeover: bool,

    /// Messages shorter than this many bytes are sent uncompressed on a compressed
    /// connection.
    #[arg(long, default_value_t = 256, value_name = "BYTES")]
    pub compression_min_size: usize,

    /// The most charger connections at once (handshakes included); beyond, 503. Keep it
    /// below the process's open-file limit.
    #[arg(long, default_value_t = 16_384)]
    pub max_connections: usize,

    /// The most charger connections from one IP address at once; beyond, 503 (chargers on
    /// cellular links share their carrier's NAT addresses: lower it only where each charger
    /// or site has its own).
    #[arg(long, default_value_t = 16_384)]
    pub max_connections_per_ip: usize,

    /// Behind a load balancer in TCP mode (HAProxy with `send-proxy-v2`): the balancers'
    /// addresses (comma-separated or repeated), trusted to send a PROXY protocol header
    /// (version 2 or 1) ahead of each charger connection; the charger's address in it is the
    /// one --max-connections-per-ip, the logs and the API see. A connection from another
    /// address is served with its own address, but refused if it sends a header; a missing,
    /// malformed or slow header from a balancer refuses the connection (logged, counted on
    /// /metrics as `ocpp_errors_total{kind="proxy_protocol"}`). Off by default.
    #[arg(long = "proxy-protocol", value_name = "ADDR", value_delimiter = ',')]
    pub proxy_protocol: Vec<std::net::IpAddr>,

    /// A Host name (NAME for any port, NAME:PORT for one) the HTTP API and dashboard answer
    /// to, besides localhost, 127.0.0.1, ::1 and the --http-listen address (repeatable);
    /// requests for any other Host get 421 (DNS rebinding reaches nothing).
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,

    /// A file holding the password of the `admin` account created on first run (when the
    /// database has no operator account); else OCPP_ADMIN_PASSWORD, else a random password
    /// printed once.
    #[arg(long, value_name = "FILE")]
    pub admin_password_file: Option<std::path::PathBuf>,

    /// A dashboard session ends after this many seconds without a request.
    #[arg(long, default_value_t = 1800, value_name = "SECS")]
    pub session_idle_timeout: u64,

    /// A dashboard session ends this many seconds after login.
    #[arg(long, default_value_t = 43_200, value_name = "SECS")]
    pub session_max_age: u64,

    /// Mark the session cookie Secure (when the dashboard is reached over https, e.g. through
    /// a TLS-terminating proxy).
    #[arg(long)]
    pub secure_cookie: bool,

    /// An HTTP client that has not sent its whole request head within this many milliseconds
    /// is disconnected (slowloris).
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub http_header_timeout_ms: u64,

    /// TLS certificate chain (PEM, server certificate first) of the OCPP listener, which then
    /// speaks wss:// only (TLS 1.2 and 1.3). Security profile 2 with --passwords-file, 3 with
    /// --client-ca. On SIGHUP the certificate and key are read again from their files: new
    /// handshakes get the new certificate, connected chargers stay (file changes alone are
    /// not watched).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Security profile 3: the CA certificate(s) (PEM) of the chargers' client certificates.
    /// A charger without a valid certificate is refused during TLS; one whose certificate's
    /// subject CN is not its identity gets 403.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,

    /// The security profile required: 2 (TLS + Basic auth: --tls-cert, --tls-key and
    /// --passwords-file) or 3 (TLS with client certificates: --tls-cert, --tls-key and
    /// --client-ca). Without it, the options given decide.
    #[arg(long, value_name = "2|3", value_parser = clap::value_parser!(u8).range(2..=3))]
    pub security_profile: Option<u8>,

    /// The directory of the central system's certificate authority (`ca.pem`, `ca.key`),
    /// generated there at first run; it signs the chargers' CSRs (SignCertificate) and, with
    /// --client-ca, is trusted for client certificates too.
    #[arg(long, value_name = "DIR")]
    pub pki_dir: Option<PathBuf>,

    /// The certificate authority's certificate (PEM), instead of --pki-dir.
    #[arg(long, value_name = "FILE", requires = "ca_key")]
    pub ca_cert: Option<PathBuf>,

    /// The certificate authority's private key (PEM) of --ca-cert.
    #[arg(long, value_name = "FILE", requires = "ca_cert")]
    pub ca_key: Option<PathBuf>,

    // ----- the cluster (cluster.rs) -----
    /// Makes this process a node of a cluster: redis://HOST:PORT of the Redis that carries
    /// the chargers' presence, commands routed between nodes and the live feed. Needs a
    /// PostgreSQL --database-url shared by every node. Without it: a single node.
    #[arg(long, env = "OCPP_REDIS_URL", value_name = "URL")]
    pub redis_url: Option<String>,

    /// This node's id in the cluster (1 to 64 of A-Z a-z 0-9 - _ .); by default the host
    /// name and the OCPP port.
    #[arg(long, value_name = "ID", requires = "redis_url")]
    pub node_id: Option<String>,

    /// The lease of the node's liveness and its chargers' presence, milliseconds (renewed
    /// every third of it): a node that dies shows its chargers offline after at most this.
    #[arg(long, default_value_t = 10_000, value_name = "MS")]
    pub cluster_lease_ms: u64,

    /// The cluster's name: every Redis key of its nodes starts with it (several clusters,
    /// e.g. test runs, can share one Redis).
    #[arg(long, default_value = "ocpp", value_name = "NAME")]
    pub cluster_name: String,
    // ----- end of the cluster -----
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
            cost_update_interval: 60,
            personal_message: None,
            v16_cost_messages: false,
            payment_hold: Decimal::from(50),
            payment_attempts: 5,
            payment_sweep_interval: 30,
            payment_webhook_secret: None,
            alert_interval_ms: 15_000,
            alert_backoff_ms: 5_000,
            alert_attempts: 6,
            max_signed_per_session: super::signed::MAX_PER_SESSION,
            price_per_hour: Decimal::ZERO,
            session_fee: Decimal::ZERO,
            currency: "EUR".into(),
            call_timeout: 30,
            max_connections: 16_384,
            max_connections_per_ip: 16_384,
            proxy_protocol: Vec::new(),
            lenient: false,
            compression: Switch::On,
            compression_context_takeover: false,
            compression_min_size: 256,
            allowed_hosts: Vec::new(),
            admin_password_file: None,
            session_idle_timeout: 1800,
            session_max_age: 43_200,
            secure_cookie: false,
            http_header_timeout_ms: 10_000,
            tls_cert: None,
            tls_key: None,
            client_ca: None,
            security_profile: None,
            pki_dir: None,
            ca_cert: None,
            ca_key: None,
            redis_url: None,
            node_id: None,
            cluster_lease_ms: 10_000,
            cluster_name: "ocpp".into(),
        }
    }

    /// Both listeners on free ports of 127.0.0.1 (tests, the network demo).
    pub fn ephemeral(mut self) -> CentralArgs {
        self.ocpp_listen = "127.0.0.1:0".into();
        self.http_listen = "127.0.0.1:0".into();
        self
    }
}

/// A feature switched on or off on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
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
    /// The operator accounts could not be set up.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// A running central system.
#[derive(Debug)]
pub struct RunningCentral {
    backend: Arc<Backend>,
    ocpp: RunningServer,
    http_addr: SocketAddr,
    auth: Arc<OperatorAuth>,
    admin_password: Option<Secret>,
    http_stop: Option<tokio::sync::oneshot::Sender<()>>,
    http_task: tokio::task::JoinHandle<std::io::Result<()>>,
    tls: Option<Reloadable>,
    cluster: Option<Arc<RedisCluster>>,
}

/// The OCPP listener's certificate and where it was read from.
#[derive(Debug)]
struct Reloadable {
    handle: TlsAcceptorHandle,
    cert: PathBuf,
    key: PathBuf,
}

impl RunningCentral {
    /// Where chargers connect (`ws://{ocpp_addr}/ocpp/<identity>`, `wss://` with TLS).
    pub fn ocpp_addr(&self) -> SocketAddr {
        self.ocpp.local_addr()
    }

    /// `wss` with --tls-cert, `ws` otherwise.
    pub fn ocpp_scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "wss"
        } else {
            "ws"
        }
    }

    /// Reads the OCPP listener's certificate and key again from --tls-cert and --tls-key (on
    /// SIGHUP): new handshakes get them, connected chargers stay. `Ok(false)` without TLS;
    /// on an error the certificate in use stays.
    pub fn reload_tls(&self) -> Result<bool, ocpp_central::tls::TlsError> {
        match &self.tls {
            Some(t) => t.handle.reload_from_files(&t.cert, &t.key).map(|()| true),
            None => Ok(false),
        }
    }

    /// Where the HTTP API and dashboard listen.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The backend (database, chargers, metrics).
    pub fn backend(&self) -> &Arc<Backend> {
        &self.backend
    }

    /// Operator accounts, API keys and sessions.
    pub fn auth(&self) -> &Arc<OperatorAuth> {
        &self.auth
    }

    /// The random password of the `admin` account, when this start created it (first run,
    /// no password given): to show the operator once.
    pub fn initial_admin_password(&self) -> Option<&Secret> {
        self.admin_password.as_ref()
    }

    /// Stops: closes every charger connection (they see a WebSocket close and reconnect to
    /// the next instance), then the HTTP server.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.ocpp.shutdown().await?;
        self.backend.flush().await;
        if let Some(cluster) = &self.cluster {
            cluster.leave().await;
        }
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
    let cluster = match &args.redis_url {
        Some(url) => {
            if db.backend() != super::db::Backend::Postgres {
                return Err(StartError::Invalid(
                    "--redis-url (a cluster node) needs a PostgreSQL --database-url shared by the nodes"
                        .into(),
                ));
            }
            let node_id = match &args.node_id {
                Some(id) => id.clone(),
                None => default_node_id(&args.ocpp_listen),
            };
            let config = ClusterConfig {
                url: url.clone(),
                node_id,
                name: args.cluster_name.clone(),
                lease: Duration::from_millis(args.cluster_lease_ms.max(300)),
            };
            Some(
                RedisCluster::connect(config)
                    .await
                    .map_err(|e| StartError::Invalid(format!("cluster: {e}")))?,
            )
        }
        None => {
            // A single node: no connection survives a restart.
            db.all_disconnected().await?;
            None
        }
    };
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
    backend.costs().configure(super::cost::CostConfig {
        interval: Duration::from_secs(args.cost_update_interval),
        personal_message: args.personal_message.clone(),
        v16_cost_messages: args.v16_cost_messages,
    });
    if let Some(c) = &cluster {
        backend
            .join_cluster(c.clone(), Duration::from_secs(args.call_timeout.max(1)))
            .await?;
    }
    super::cost::spawn_updates(&backend);
    backend.signed().configure(super::signed::SignedConfig {
        max_per_session: args.max_signed_per_session,
    });
    // Transaction messages answered but not projected when the last process died.
    backend.recover().await?;
    for id in db.registered_identities().await? {
        backend.admit(&id);
    }
    for (id, _) in &passwords {
        backend.admit(id);
    }
    let has_passwords = !passwords.is_empty();
    // Security profile 3 (--client-ca) authenticates chargers by their certificates.
    if !has_passwords && args.client_ca.is_none() {
        tracing::warn!(
            "no --passwords-file or OCPP_CHARGER_PASSWORDS: chargers without a password are \
             not authenticated (security profile 0)"
        );
    }
    backend.passwords().require(has_passwords);
    backend
        .passwords()
        .seed(passwords)
        .await
        .map_err(|e| StartError::Invalid(format!("charger passwords: {e}")))?;
    let auth = Auth::basic(backend.passwords().authenticator());
    // The certificate authority (pki.rs): signs CSRs, trusted for client certificates.
    let ca = super::pki::ca_from_args(
        args.ca_cert.as_ref(),
        args.ca_key.as_ref(),
        args.pki_dir.as_ref(),
    )
    .map_err(|e| StartError::Invalid(e.to_string()))?
    .map(Arc::new);
    if let Some(ca) = &ca {
        backend.certs().set_ca(ca.clone());
    }
    let tls = server_tls(args, has_passwords, ca.as_ref().map(|c| c.cert_pem()))?;
    let mut config = ServerConfig::new(auth)
        .versions(args.versions.iter().copied())
        .defaults(defaults)
        .call_timeout(Duration::from_secs(args.call_timeout.max(1)))
        .lenient(args.lenient)
        .max_connections(args.max_connections)
        .max_connections_per_address(args.max_connections_per_ip)
        .compression(match args.compression {
            Switch::On => Compression {
                context_takeover: args.compression_context_takeover,
                min_size: args.compression_min_size,
                ..Compression::default()
            },
            Switch::Off => Compression::off(),
        });
    if args.known_only {
        config = config.admission(backend.known_only_admission());
    }
    if !args.proxy_protocol.is_empty() {
        let metrics = backend.metrics().clone();
        config = config.proxy_protocol(
            ocpp_central::proxy::ProxyProtocol::new(args.proxy_protocol.iter().copied())
                .on_refused(move |why| metrics.error("proxy_protocol", why.code())),
        );
    }
    let reloadable = match tls {
        Some((tls, cert, key)) => {
            let handle = tls.handle();
            config = config.tls(tls);
            Some(Reloadable { handle, cert, key })
        }
        None => None,
    };
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
    // Operator authentication: accounts, keys, sessions, the Host allow-list (before the
    // OCPP server starts, so the charger events of this start all come after it).
    let mut auth_config = AuthConfig::new();
    if !http_addr.ip().is_unspecified() {
        auth_config.allowed_hosts.push(http_addr.to_string());
    } else if args.allowed_hosts.is_empty() {
        tracing::warn!(
            "the HTTP API listens on all addresses but answers only to localhost: give \
             --allowed-host NAME for each name it is reached by"
        );
    }
    auth_config
        .allowed_hosts
        .extend(args.allowed_hosts.iter().cloned());
    auth_config.session_idle = Duration::from_secs(args.session_idle_timeout.max(1));
    auth_config.session_max = Duration::from_secs(args.session_max_age.max(1));
    auth_config.secure_cookie = args.secure_cookie;
    backend.accounts().configure(auth_config.clone());
    let auth = Arc::new(OperatorAuth::new(db.clone(), auth_config)?);
    let given = match &args.admin_password_file {
        Some(path) => Some(Secret::new(
            std::fs::read_to_string(path)
                .map_err(|source| AuthError::PasswordFile {
                    path: path.display().to_string(),
                    source,
                })?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
        )),
        None => std::env::var("OCPP_ADMIN_PASSWORD").ok().map(Secret::new),
    };
    let admin_password = auth.bootstrap_admin(given).await?;
    // The local payment provider posts its (signed) events to this server's webhook.
    let webhook_secret = match &args.payment_webhook_secret {
        Some(s) => s.clone(),
        None => super::auth::random_hex(32)?,
    };
    let provider = super::payments::LocalProvider::with_webhook(
        db.clone(),
        super::payments::WebhookTarget {
            url: format!("http://127.0.0.1:{}/api/payments/webhook", http_addr.port()),
            secret: webhook_secret.clone(),
        },
    )
    .await
    .map_err(|e| StartError::Invalid(format!("payment provider: {e}")))?;
    backend.set_billing(
        Arc::new(provider),
        super::payments::BillingConfig {
            hold: args.payment_hold,
            max_attempts: args.payment_attempts.max(1),
            sweep_every: Duration::from_secs(args.payment_sweep_interval.max(1)),
            webhook_secret: Some(webhook_secret),
            ..super::payments::BillingConfig::default()
        },
    );
    super::payments::spawn_settlement(&backend);
    backend.set_alerts(super::alerts::AlertConfig {
        every: Duration::from_millis(args.alert_interval_ms.max(10)),
        backoff: Duration::from_millis(args.alert_backoff_ms.max(10)),
        max_attempts: args.alert_attempts.clamp(1, 100),
    });
    super::alerts::spawn(&backend);
    let app = api::router(backend.clone(), auth.clone());
    if let Some(c) = &cluster {
        // Before chargers are accepted: the lease, the command reader, the live feed.
        c.serve(Arc::new(api::NodeInbound::new(
            backend.clone(),
            app.clone(),
        )))
        .await
        .map_err(|e| StartError::Invalid(format!("cluster: {e}")))?;
        // Chargers a dead node or this node's earlier process left marked connected.
        backend.reap(true).await?;
        spawn_reaper(
            &backend,
            Duration::from_millis(args.cluster_lease_ms.max(300)),
        );
    }
    let ocpp = Server::new(config, backend.clone())
        .with_chargers(chargers)
        .start(ocpp_listener)
        .map_err(|source| StartError::Listen {
            addr: args.ocpp_listen.clone(),
            source,
        })?;
    let (http_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limits = http::HttpLimits {
        header_timeout: Duration::from_millis(args.http_header_timeout_ms.max(1)),
    };
    let http_task = tokio::spawn(http::serve(http_listener, app, limits, async move {
        let _ = stopped.await;
    }));
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
        auth,
        admin_password,
        http_stop: Some(http_stop),
        http_task,
        tls: reloadable,
        cluster,
    })
}

/// The default node id: the host name and the OCPP port.
fn default_node_id(ocpp_listen: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "node".into());
    let port = ocpp_listen.rsplit(':').next().unwrap_or("0");
    format!("{}-{port}", host.trim())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect()
}

/// Every lease, marks offline the chargers of nodes that died (see [`Backend::reap`]).
fn spawn_reaper(backend: &Arc<Backend>, lease: Duration) {
    let weak = Arc::downgrade(backend);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(lease);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(backend) = weak.upgrade() else {
                return;
            };
            if let Err(e) = backend.reap(false).await {
                tracing::error!("cluster: marking lost chargers offline failed: {e}");
            }
        }
    });
}

/// The OCPP listener's TLS from the command line (`None` without --tls-cert), checked
/// against --security-profile.
fn server_tls(
    args: &CentralArgs,
    has_passwords: bool,
    own_ca: Option<&str>,
) -> Result<Option<(ServerTls, PathBuf, PathBuf)>, StartError> {
    let invalid = |s: &str| StartError::Invalid(s.to_owned());
    match args.security_profile {
        Some(2) if args.client_ca.is_some() => {
            return Err(invalid("--security-profile 2 takes no --client-ca"))
        }
        Some(2) if !has_passwords => {
            return Err(invalid(
                "--security-profile 2 (TLS + Basic auth) needs --passwords-file or OCPP_CHARGER_PASSWORDS",
            ))
        }
        Some(3) if args.client_ca.is_none() => {
            return Err(invalid(
                "--security-profile 3 (TLS with client certificates) needs --client-ca",
            ))
        }
        Some(_) if args.tls_cert.is_none() => {
            return Err(invalid(
                "--security-profile 2 and 3 need --tls-cert and --tls-key",
            ))
        }
        _ => {}
    }
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let tls_error = |e: ocpp_central::tls::TlsError| StartError::Invalid(format!("TLS: {e}"));
    let mut builder = ServerTls::from_pem_files(cert, key).map_err(tls_error)?;
    if let Some(ca) = &args.client_ca {
        let mut pem = std::fs::read_to_string(ca)
            .map_err(|e| StartError::Invalid(format!("cannot read {}: {e}", ca.display())))?;
        // Chargers renewed through SignCertificate hold certificates of our own CA.
        if let Some(own) = own_ca {
            pem.push('\n');
            pem.push_str(own);
        }
        builder = builder.client_ca_pem(pem.as_bytes()).map_err(tls_error)?;
    }
    let tls = builder.build().map_err(tls_error)?;
    Ok(Some((tls, cert.clone(), key.clone())))
}
