//! [`StationConfig`]: how a station is set up.

use super::*;

/// How a station is set up. Build with [`StationConfig::new`] and the setters.
pub struct StationConfig {
    pub(crate) identity: String,
    pub(crate) version: Version,
    pub(crate) vendor: String,
    pub(crate) model: String,
    pub(crate) serial_number: Option<String>,
    pub(crate) firmware_version: Option<String>,
    pub(crate) evses: u32,
    /// The connector type every EVSE's connector reports (`ConnectorType`).
    pub(crate) connector_type: String,
    pub(crate) call_timeout: Duration,
    pub(crate) boot_retry: Duration,
    pub(crate) time: Arc<dyn TimeSource>,
    pub(crate) seed: u64,
    pub(crate) boot_on_reconnect: bool,
    pub(crate) auth_cache_size: usize,
    pub(crate) local_list_max: usize,
    pub(crate) send_local_list_max: usize,
    pub(crate) validate_outgoing: bool,
    pub(crate) settings: Vec<(Setting, String)>,
    pub(crate) app: Option<Box<dyn Application>>,
    pub(crate) security_events: bool,
    pub(crate) smart: crate::smart_charging::SmartChargingConfig,
    /// The organization (O) of the station's certificate signing requests.
    pub(crate) organization: Option<String>,
    /// The application performs firmware downloads and installs and log uploads.
    pub(crate) transfers: bool,
    /// The display ([`display`]); `None`: the defaults (no allocation per station).
    pub(crate) display: Option<Box<display::DisplayConfig>>,
    /// Whether 1.6 California Pricing DataTransfers are taken ([`cost`]).
    pub(crate) cost_messages: bool,
    /// (2.1) The DER control types the station's inverter takes ([`super::der`]); `None`:
    /// no DER.
    pub(crate) der: Option<Vec<String>>,
    /// Tariffs ([`tariffs`]); `None`: the defaults.
    #[cfg(feature = "v21")]
    pub(crate) tariffs: Option<Box<tariffs::TariffConfig>>,
    #[cfg(feature = "certificates")]
    pub(crate) certs: Option<Box<dyn crate::certificates::CertificateStore>>,
}

impl fmt::Debug for StationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StationConfig")
            .field("identity", &self.identity)
            .field("version", &self.version)
            .field("evses", &self.evses)
            .finish_non_exhaustive()
    }
}

impl StationConfig {
    /// A station called `identity` speaking `version`, with one EVSE (one connector each),
    /// vendor `"ocpp-rs"`, model `"ocpp-charger"`, a 30 s call timeout, a 30 s boot retry
    /// when the central system gives no interval, the real clock ([`AnchoredClock::system`])
    /// and seed 0.
    pub fn new(identity: impl Into<String>, version: Version) -> StationConfig {
        StationConfig {
            identity: identity.into(),
            version,
            vendor: "ocpp-rs".into(),
            model: "ocpp-charger".into(),
            serial_number: None,
            firmware_version: None,
            evses: 1,
            connector_type: "cType2".into(),
            call_timeout: Duration::from_secs(30),
            boot_retry: Duration::from_secs(30),
            time: Arc::new(AnchoredClock::system()),
            seed: 0,
            boot_on_reconnect: false,
            auth_cache_size: 64,
            local_list_max: local_list::DEFAULT_LOCAL_LIST_MAX,
            send_local_list_max: local_list::DEFAULT_SEND_LOCAL_LIST_MAX,
            validate_outgoing: false,
            settings: Vec::new(),
            app: None,
            security_events: false,
            smart: crate::smart_charging::SmartChargingConfig::default(),
            organization: None,
            transfers: false,
            display: None,
            cost_messages: false,
            der: None,
            #[cfg(feature = "v21")]
            tariffs: None,
            #[cfg(feature = "certificates")]
            certs: None,
        }
    }

    /// (2.1) The station has a bidirectional inverter taking these DER control types
    /// (`LimitMaxDischarge`, `VoltVar`, ... [`super::der::DER_CONTROL_TYPES`]); without it,
    /// SetDERControl is answered `NotSupported` (see [`super::der`]).
    pub fn der(mut self, types: &[&str]) -> Self {
        self.der = Some(types.iter().map(|t| (*t).to_owned()).collect());
        self
    }

    /// Whether the application performs the firmware downloads and installs and the log
    /// uploads the station asks for ([`StationEvent::FirmwareDownload`],
    /// [`StationEvent::FirmwareInstall`], [`StationEvent::LogUpload`]), reporting with
    /// [`Station::firmware_progress`] and [`Station::log_progress`]. Off by default: the
    /// station then refuses UpdateFirmware, SignedUpdateFirmware, GetDiagnostics and GetLog
    /// (see [`super::firmware`] and [`super::logs`]).
    pub fn transfers(mut self, on: bool) -> Self {
        self.transfers = on;
        self
    }

    /// What the station's display can do (`DisplayMessageCtrlr`, [`display`]); a display
    /// with the defaults of [`display::DisplayConfig`] when not set.
    pub fn display(mut self, display: display::DisplayConfig) -> Self {
        self.display = Some(Box::new(display));
        self
    }

    /// The display's configuration.
    pub(crate) fn display_config(&self) -> &display::DisplayConfig {
        static DEFAULT: std::sync::LazyLock<display::DisplayConfig> =
            std::sync::LazyLock::new(display::DisplayConfig::default);
        self.display.as_deref().unwrap_or(&DEFAULT)
    }

    /// Takes the 1.6 California Pricing DataTransfers (vendorId
    /// `org.openchargealliance.costmsg`, messageId `RunningCost` / `FinalCost`) as the
    /// running cost ([`cost`]). Off by default: they go to the DataTransfer handler.
    pub fn cost_messages(mut self, on: bool) -> Self {
        self.cost_messages = on;
        self
    }

    /// What the station does with 2.1 tariffs and whether it computes the cost itself
    /// ([`tariffs`]); the defaults of [`tariffs::TariffConfig`] when not set.
    #[cfg(feature = "v21")]
    pub fn tariffs(mut self, tariffs: tariffs::TariffConfig) -> Self {
        self.tariffs = Some(Box::new(tariffs));
        self
    }

    /// The organization name (O) of the station's certificate signing requests (2.x
    /// `SecurityCtrlr.OrganizationName`, the 1.6 whitepaper's `CpoName`); none by default.
    pub fn organization(mut self, name: impl Into<String>) -> Self {
        self.organization = Some(name.into());
        self
    }

    /// Where the station keeps its certificates (feature `certificates`); default an empty
    /// [`MemoryCertificateStore`](crate::certificates::MemoryCertificateStore).
    #[cfg(feature = "certificates")]
    pub fn certificate_store(
        mut self,
        store: impl crate::certificates::CertificateStore + 'static,
    ) -> Self {
        self.certs = Some(Box::new(store));
        self
    }

    /// The smart-charging parameters and bounds (nominal voltage, hardware limit, profiles
    /// per EVSE, periods per schedule, ...); default
    /// [`SmartChargingConfig::default`](crate::smart_charging::SmartChargingConfig).
    pub fn smart_charging(mut self, config: crate::smart_charging::SmartChargingConfig) -> Self {
        self.smart = config;
        self
    }

    /// The application that answers the central system's calls, by functional block (see
    /// [`crate::app`]); default [`BuiltIn`](crate::app::BuiltIn), the station's own
    /// behaviour.
    pub fn application(mut self, app: impl Application + 'static) -> Self {
        self.app = Some(Box::new(app));
        self
    }

    /// Send security events to the central system (`SecurityEventNotification`, queued in the
    /// durable outbox; see [`crate::station::security`]). Off by default: a 1.6 central
    /// system without the security whitepaper answers it `NotImplemented`, and a station
    /// that should keep its traffic unchanged (simulated fleets, conformance runs) must not
    /// grow a message at start. A 2.x station in the field turns it on (use case A04: critical
    /// events SHALL be sent). The events are reported as
    /// [`StationEvent::SecurityEvent`] either way.
    pub fn security_events(mut self, yes: bool) -> Self {
        self.security_events = yes;
        self
    }

    /// Sets the factory value of a setting (1.6 configuration key / 2.x variable), e.g. a
    /// short `SampleInterval` for a demo. Values the central system changed later and that
    /// were persisted in the store take precedence after a restart.
    pub fn setting(mut self, setting: Setting, value: impl Into<String>) -> Self {
        self.settings.push((setting, value.into()));
        self
    }

    /// The identity (last URL path segment, Basic-auth user).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The OCPP version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Vendor and model sent in BootNotification (1.6: at most 20 characters each).
    pub fn vendor_model(mut self, vendor: impl Into<String>, model: impl Into<String>) -> Self {
        self.vendor = vendor.into();
        self.model = model.into();
        self
    }

    /// Serial number sent in BootNotification.
    pub fn serial_number(mut self, serial: impl Into<String>) -> Self {
        self.serial_number = Some(serial.into());
        self
    }

    /// Firmware version sent in BootNotification.
    pub fn firmware_version(mut self, version: impl Into<String>) -> Self {
        self.firmware_version = Some(version.into());
        self
    }

    /// Number of EVSEs (2.x, one connector each) or connectors (1.6), at least 1.
    pub fn evses(mut self, n: u32) -> Self {
        self.evses = n.max(1);
        self
    }

    /// The connector type of every EVSE's connector, as the 2.x device model's `Connector`
    /// `ConnectorType` reports it (a `ConnectorEnumType` name such as `cCCS2`, `cType2`,
    /// `sType2`, `cCHAdeMO`; default `cType2`).
    pub fn connector_type(mut self, kind: impl Into<String>) -> Self {
        self.connector_type = kind.into();
        self
    }

    /// How long a CALL waits for its answer.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Boot retry delay when the answer carries no positive interval, errs or times out; used
    /// within [`MIN_BOOT_RETRY`]`..=`[`MAX_BOOT_RETRY`] (a delay of 0 still waits 10 s).
    pub fn boot_retry(mut self, delay: Duration) -> Self {
        self.boot_retry = delay;
        self
    }

    /// Where wall-clock timestamps come from.
    pub fn time_source(mut self, time: Arc<dyn TimeSource>) -> Self {
        self.time = time;
        self
    }

    /// Seed of the random generator (message ids, 2.x transaction ids, jitter).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Send BootNotification again on every new connection, not only after a (re)boot.
    /// Off by default: the specifications ask for it at start-up only.
    pub fn boot_on_reconnect(mut self, yes: bool) -> Self {
        self.boot_on_reconnect = yes;
        self
    }

    /// Entries kept in the authorization cache.
    pub fn auth_cache_size(mut self, n: usize) -> Self {
        self.auth_cache_size = n;
        self
    }

    /// The bounds of the local authorization list ([`local_list`]): at most `max_entries`
    /// tokens (1.6 `LocalAuthListMaxLength`), at most `per_message` in one SendLocalList
    /// (1.6 `SendLocalListMaxLength`, 2.x `LocalAuthListCtrlr.ItemsPerMessage`); defaults
    /// [`DEFAULT_LOCAL_LIST_MAX`] and [`DEFAULT_SEND_LOCAL_LIST_MAX`]. An update beyond
    /// either is answered `Failed`.
    pub fn local_list(mut self, max_entries: usize, per_message: usize) -> Self {
        self.local_list_max = max_entries;
        self.send_local_list_max = per_message;
        self
    }

    /// Check every outgoing payload against its schema (typed decoding); a failure is
    /// reported as [`StationEvent::InvalidOutgoing`] (a response is then replaced by a
    /// CALLERROR `InternalError`). Meant for tests.
    pub fn validate_outgoing(mut self, yes: bool) -> Self {
        self.validate_outgoing = yes;
        self
    }
}
