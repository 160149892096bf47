//! The application API: the handler traits an embedding central system implements, the
//! cloneable [`ChargerHandle`] that sends central calls from any task, and the [`Chargers`]
//! registry of connected chargers.
//!
//! Each version has one trait (`HandleV16`, `HandleV201`, `HandleV21`) with one method
//! per charger-initiated action, in the order of the specification's functional blocks /
//! profiles (each method's doc names its block). Every method has a default from
//! [`Defaults`]: boot `Accepted` with the interval, Authorize `Accepted`, 1.6 transaction ids
//! issued, DataTransfer `UnknownVendorId`, empty answers to notifications, `NotSupported` where
//! an answer needs a decision. [`Handler`] holds the version-neutral hooks: model events and
//! the `after` hook, which runs after the reply went out, so it may call the charger itself.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::Waker;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::channel::oneshot;
use ocpp_types::Version;

use crate::defaults::{CallFailure, Defaults};
use crate::message::{AnyRequest, AnyResponse};
use crate::model::{ChargerState, Event};
use crate::session::CallError;
use crate::smart_charging::ReportCollectors;

/// Version-neutral hooks of the application. All methods have empty defaults.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// A model event of `charger` (connected, booted, status changed, transaction started /
    /// updated / ended, disconnected, ...). Events of one charger are delivered in order, one
    /// at a time, beside the connection's other work: a slow handler delays only later events
    /// of that charger (and, once 16 wait, reading from it), and may call the charger.
    async fn on_event(&self, charger: &ChargerHandle, event: &Event) {
        let _ = (charger, event);
    }

    /// Runs after the answer to a charger request was sent (mobilityhouse's `@after`): the
    /// place for follow-up calls to the charger (e.g. configure it after boot).
    async fn after(&self, charger: &ChargerHandle, request: &AnyRequest, response: &AnyResponse) {
        let _ = (charger, request, response);
    }

    /// The transactions of this charger still running as far as the application knows
    /// (persisted before a restart or a reconnect), to seed its new session before the first
    /// message is read, so their meter values and end are attributed and their energy computed.
    /// Called by `Connection` (and so the server) for every connection.
    async fn restore_transactions(
        &self,
        identity: &str,
        version: Version,
    ) -> Vec<crate::Transaction> {
        let _ = (identity, version);
        Vec::new()
    }

    /// (2.1) A SEND message from the charger (no answer goes back).
    async fn on_send(&self, charger: &ChargerHandle, action: &str, payload: &str) {
        let _ = (charger, action, payload);
    }

    /// The application's OCPP 1.6 handler: return `Some(self)` when it implements
    /// [`HandleV16`]. `None` (the default) answers 1.6 chargers with the [`Defaults`].
    #[cfg(feature = "v16")]
    fn v16(&self) -> Option<&dyn HandleV16> {
        None
    }

    /// The application's OCPP 2.0.1 handler: return `Some(self)` when it implements
    /// [`HandleV201`]. `None` (the default) answers 2.0.1 chargers with the [`Defaults`].
    #[cfg(feature = "v201")]
    fn v201(&self) -> Option<&dyn HandleV201> {
        None
    }

    /// The application's OCPP 2.1 handler: return `Some(self)` when it implements
    /// [`HandleV21`]. `None` (the default) answers 2.1 chargers with the [`Defaults`].
    #[cfg(feature = "v21")]
    fn v21(&self) -> Option<&dyn HandleV21> {
        None
    }
}

macro_rules! version_handler {
    (
        $(#[$tdoc:meta])*
        $Trait:ident, $m:ident, $feature:literal;
        $( $block:literal { $( $method:ident => $Action:ident($Req:ident, $Resp:ident), )* } )*
    ) => {
        $(#[$tdoc])*
        #[cfg(feature = $feature)]
        #[async_trait]
        pub trait $Trait: Send + Sync + 'static {
            $( $(
                #[doc = concat!("`", stringify!($Action), "` (", $block, "). Default: [`Defaults`] (`charger.defaults()`).")]
                async fn $method(
                    &self,
                    charger: &ChargerHandle,
                    request: ocpp_types::$m::$Req,
                ) -> Result<ocpp_types::$m::$Resp, CallFailure> {
                    charger.defaults().typed(&request)
                }
            )* )*
        }

        #[cfg(feature = $feature)]
        pub(crate) mod $m {
            use super::*;
            /// Routes a typed request to its method.
            pub(crate) async fn dispatch<H: $Trait + ?Sized>(
                h: &H,
                charger: &ChargerHandle,
                request: ocpp_types::$m::AnyRequest,
            ) -> Result<ocpp_types::$m::AnyResponse, CallFailure> {
                use ocpp_types::$m::{AnyRequest as Q, AnyResponse as R};
                match request {
                    // `into`: the payload as the method takes it, unboxed when the enum boxes it.
                    $( $( Q::$Action(r) => h.$method(charger, r.into()).await.map(R::from), )* )*
                    #[allow(unreachable_patterns)]
                    other => Err(CallFailure::not_supported(other.action().as_str())),
                }
            }
        }
    };
}

version_handler! {
    /// The OCPP 1.6 charger-initiated actions (with the security whitepaper's).
    HandleV16, v16, "v16";
        "Core profile" {
            authorize => Authorize(AuthorizeRequest, AuthorizeResponse),
            boot_notification => BootNotification(BootNotificationRequest, BootNotificationResponse),
            data_transfer => DataTransfer(DataTransferRequest, DataTransferResponse),
            heartbeat => Heartbeat(HeartbeatRequest, HeartbeatResponse),
            meter_values => MeterValues(MeterValuesRequest, MeterValuesResponse),
            start_transaction => StartTransaction(StartTransactionRequest, StartTransactionResponse),
            status_notification => StatusNotification(StatusNotificationRequest, StatusNotificationResponse),
            stop_transaction => StopTransaction(StopTransactionRequest, StopTransactionResponse),
        }
        "Firmware Management profile" {
            diagnostics_status_notification => DiagnosticsStatusNotification(DiagnosticsStatusNotificationRequest, DiagnosticsStatusNotificationResponse),
            firmware_status_notification => FirmwareStatusNotification(FirmwareStatusNotificationRequest, FirmwareStatusNotificationResponse),
        }
        "Security whitepaper" {
            log_status_notification => LogStatusNotification(LogStatusNotificationRequest, LogStatusNotificationResponse),
            security_event_notification => SecurityEventNotification(SecurityEventNotificationRequest, SecurityEventNotificationResponse),
            sign_certificate => SignCertificate(SignCertificateRequest, SignCertificateResponse),
            signed_firmware_status_notification => SignedFirmwareStatusNotification(SignedFirmwareStatusNotificationRequest, SignedFirmwareStatusNotificationResponse),
        }
}

version_handler! {
    /// The OCPP 2.0.1 charger-initiated actions, by functional block.
    HandleV201, v201, "v201";
        "A Security" {
            security_event_notification => SecurityEventNotification(SecurityEventNotificationRequest, SecurityEventNotificationResponse),
            sign_certificate => SignCertificate(SignCertificateRequest, SignCertificateResponse),
        }
        "B Provisioning" {
            boot_notification => BootNotification(BootNotificationRequest, BootNotificationResponse),
            notify_report => NotifyReport(NotifyReportRequest, NotifyReportResponse),
        }
        "C Authorization" {
            authorize => Authorize(AuthorizeRequest, AuthorizeResponse),
        }
        "E Transactions" {
            transaction_event => TransactionEvent(TransactionEventRequest, TransactionEventResponse),
        }
        "G Availability" {
            heartbeat => Heartbeat(HeartbeatRequest, HeartbeatResponse),
            status_notification => StatusNotification(StatusNotificationRequest, StatusNotificationResponse),
        }
        "H Reservation" {
            reservation_status_update => ReservationStatusUpdate(ReservationStatusUpdateRequest, ReservationStatusUpdateResponse),
        }
        "J MeterValues" {
            meter_values => MeterValues(MeterValuesRequest, MeterValuesResponse),
        }
        "K SmartCharging" {
            cleared_charging_limit => ClearedChargingLimit(ClearedChargingLimitRequest, ClearedChargingLimitResponse),
            notify_charging_limit => NotifyChargingLimit(NotifyChargingLimitRequest, NotifyChargingLimitResponse),
            notify_ev_charging_needs => NotifyEVChargingNeeds(NotifyEVChargingNeedsRequest, NotifyEVChargingNeedsResponse),
            notify_ev_charging_schedule => NotifyEVChargingSchedule(NotifyEVChargingScheduleRequest, NotifyEVChargingScheduleResponse),
            report_charging_profiles => ReportChargingProfiles(ReportChargingProfilesRequest, ReportChargingProfilesResponse),
        }
        "L FirmwareManagement" {
            firmware_status_notification => FirmwareStatusNotification(FirmwareStatusNotificationRequest, FirmwareStatusNotificationResponse),
            publish_firmware_status_notification => PublishFirmwareStatusNotification(PublishFirmwareStatusNotificationRequest, PublishFirmwareStatusNotificationResponse),
        }
        "M ISO 15118 CertificateManagement" {
            get_15118_ev_certificate => Get15118EVCertificate(Get15118EVCertificateRequest, Get15118EVCertificateResponse),
            get_certificate_status => GetCertificateStatus(GetCertificateStatusRequest, GetCertificateStatusResponse),
        }
        "N Diagnostics" {
            log_status_notification => LogStatusNotification(LogStatusNotificationRequest, LogStatusNotificationResponse),
            notify_customer_information => NotifyCustomerInformation(NotifyCustomerInformationRequest, NotifyCustomerInformationResponse),
            notify_event => NotifyEvent(NotifyEventRequest, NotifyEventResponse),
            notify_monitoring_report => NotifyMonitoringReport(NotifyMonitoringReportRequest, NotifyMonitoringReportResponse),
        }
        "O DisplayMessage" {
            notify_display_messages => NotifyDisplayMessages(NotifyDisplayMessagesRequest, NotifyDisplayMessagesResponse),
        }
        "P DataTransfer" {
            data_transfer => DataTransfer(DataTransferRequest, DataTransferResponse),
        }
}

version_handler! {
    /// The OCPP 2.1 charger-initiated actions (CALLs), by functional block. SEND messages go to
    /// [`Handler::on_send`].
    HandleV21, v21, "v21";
        "A Security" {
            security_event_notification => SecurityEventNotification(SecurityEventNotificationRequest, SecurityEventNotificationResponse),
            sign_certificate => SignCertificate(SignCertificateRequest, SignCertificateResponse),
        }
        "B Provisioning" {
            boot_notification => BootNotification(BootNotificationRequest, BootNotificationResponse),
            notify_report => NotifyReport(NotifyReportRequest, NotifyReportResponse),
        }
        "C Authorization" {
            authorize => Authorize(AuthorizeRequest, AuthorizeResponse),
            vat_number_validation => VatNumberValidation(VatNumberValidationRequest, VatNumberValidationResponse),
        }
        "E Transactions" {
            transaction_event => TransactionEvent(TransactionEventRequest, TransactionEventResponse),
        }
        "G Availability" {
            heartbeat => Heartbeat(HeartbeatRequest, HeartbeatResponse),
            status_notification => StatusNotification(StatusNotificationRequest, StatusNotificationResponse),
        }
        "H Reservation" {
            reservation_status_update => ReservationStatusUpdate(ReservationStatusUpdateRequest, ReservationStatusUpdateResponse),
        }
        "J MeterValues" {
            meter_values => MeterValues(MeterValuesRequest, MeterValuesResponse),
        }
        "K SmartCharging" {
            cleared_charging_limit => ClearedChargingLimit(ClearedChargingLimitRequest, ClearedChargingLimitResponse),
            notify_charging_limit => NotifyChargingLimit(NotifyChargingLimitRequest, NotifyChargingLimitResponse),
            notify_ev_charging_needs => NotifyEVChargingNeeds(NotifyEVChargingNeedsRequest, NotifyEVChargingNeedsResponse),
            notify_ev_charging_schedule => NotifyEVChargingSchedule(NotifyEVChargingScheduleRequest, NotifyEVChargingScheduleResponse),
            notify_priority_charging => NotifyPriorityCharging(NotifyPriorityChargingRequest, NotifyPriorityChargingResponse),
            pull_dynamic_schedule_update => PullDynamicScheduleUpdate(PullDynamicScheduleUpdateRequest, PullDynamicScheduleUpdateResponse),
            report_charging_profiles => ReportChargingProfiles(ReportChargingProfilesRequest, ReportChargingProfilesResponse),
        }
        "L FirmwareManagement" {
            firmware_status_notification => FirmwareStatusNotification(FirmwareStatusNotificationRequest, FirmwareStatusNotificationResponse),
            publish_firmware_status_notification => PublishFirmwareStatusNotification(PublishFirmwareStatusNotificationRequest, PublishFirmwareStatusNotificationResponse),
        }
        "M ISO 15118 CertificateManagement" {
            get_15118_ev_certificate => Get15118EVCertificate(Get15118EVCertificateRequest, Get15118EVCertificateResponse),
            get_certificate_chain_status => GetCertificateChainStatus(GetCertificateChainStatusRequest, GetCertificateChainStatusResponse),
            get_certificate_status => GetCertificateStatus(GetCertificateStatusRequest, GetCertificateStatusResponse),
        }
        "N Diagnostics" {
            close_periodic_event_stream => ClosePeriodicEventStream(ClosePeriodicEventStreamRequest, ClosePeriodicEventStreamResponse),
            log_status_notification => LogStatusNotification(LogStatusNotificationRequest, LogStatusNotificationResponse),
            notify_customer_information => NotifyCustomerInformation(NotifyCustomerInformationRequest, NotifyCustomerInformationResponse),
            notify_event => NotifyEvent(NotifyEventRequest, NotifyEventResponse),
            notify_monitoring_report => NotifyMonitoringReport(NotifyMonitoringReportRequest, NotifyMonitoringReportResponse),
            open_periodic_event_stream => OpenPeriodicEventStream(OpenPeriodicEventStreamRequest, OpenPeriodicEventStreamResponse),
        }
        "O DisplayMessage" {
            notify_display_messages => NotifyDisplayMessages(NotifyDisplayMessagesRequest, NotifyDisplayMessagesResponse),
        }
        "P DataTransfer" {
            data_transfer => DataTransfer(DataTransferRequest, DataTransferResponse),
        }
        "R DER Control" {
            notify_der_alarm => NotifyDERAlarm(NotifyDERAlarmRequest, NotifyDERAlarmResponse),
            notify_der_start_stop => NotifyDERStartStop(NotifyDERStartStopRequest, NotifyDERStartStopResponse),
            report_der_control => ReportDERControl(ReportDERControlRequest, ReportDERControlResponse),
        }
        "S Battery Swapping" {
            battery_swap => BatterySwap(BatterySwapRequest, BatterySwapResponse),
        }
        "U Payment" {
            notify_settlement => NotifySettlement(NotifySettlementRequest, NotifySettlementResponse),
        }
}

/// A complete central system: any [`Handler`]. The per-version handlers are reached through
/// `Handler::v16`, `Handler::v201` and `Handler::v21`, so enabling another version's
/// feature anywhere in the build adds a method with a default and never breaks an
/// application that implements only the versions it speaks.
pub trait CentralSystem: Handler {}
impl<T: Handler + ?Sized> CentralSystem for T {}

/// The answers of the [`Defaults`] for a version the application does not handle.
struct DefaultsOnly;
#[cfg(feature = "v16")]
impl HandleV16 for DefaultsOnly {}
#[cfg(feature = "v201")]
impl HandleV201 for DefaultsOnly {}
#[cfg(feature = "v21")]
impl HandleV21 for DefaultsOnly {}

/// Routes a charger request of any version to the handler method of its action (the
/// [`Defaults`] for a version whose handler the application does not give).
pub async fn dispatch<H: CentralSystem + ?Sized>(
    handler: &H,
    charger: &ChargerHandle,
    request: AnyRequest,
) -> Result<AnyResponse, CallFailure> {
    let _ = (handler, charger);
    crate::smart_charging::collect(charger, &request);
    match request {
        #[cfg(feature = "v16")]
        AnyRequest::V16(r) => {
            let h: &dyn HandleV16 = handler.v16().unwrap_or(&DefaultsOnly);
            v16::dispatch(h, charger, r).await.map(AnyResponse::from)
        }
        #[cfg(feature = "v201")]
        AnyRequest::V201(r) => {
            let h: &dyn HandleV201 = handler.v201().unwrap_or(&DefaultsOnly);
            v201::dispatch(h, charger, r).await.map(AnyResponse::from)
        }
        #[cfg(feature = "v21")]
        AnyRequest::V21(r) => {
            let h: &dyn HandleV21 = handler.v21().unwrap_or(&DefaultsOnly);
            v21::dispatch(h, charger, r).await.map(AnyResponse::from)
        }
    }
}

/// What a [`ChargerHandle`] asks of the task that drives the connection.
#[derive(Debug)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // a call carries its typed request; sent once, by value
pub enum Command {
    /// Send a central call and report its answer.
    Call {
        /// The request (boxed: a typed request is large, and each queued command is a node
        /// of the command's size).
        request: Box<AnyRequest>,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<AnyResponse, CallError>>,
    },
    /// Close the connection.
    Close {
        /// Why.
        reason: Option<String>,
    },
}

/// How many central calls may wait for one charger in its handle's queue (beyond those the
/// driver already handed to the session): further calls fail at once with
/// [`CallError::QueueFull`].
pub const MAX_QUEUED_COMMANDS: usize = 64;

/// The receiving end of a [`ChargerHandle`]'s commands, for the driver: a stream of
/// [`Command`]s in which a close request comes before any queued call. Its queue is bounded
/// ([`MAX_QUEUED_COMMANDS`]). Dropping it fails the queued calls with
/// [`CallError::Disconnected`], as later ones.
#[derive(Debug)]
pub struct CommandReceiver {
    inner: Arc<HandleInner>,
}

/// The commands waiting for the driver, kept in the handle itself (no channel of its own):
/// an idle charger's queue holds no memory.
#[derive(Debug, Default)]
struct Commands {
    calls: VecDeque<Command>,
    /// The close request (its reason), until the driver takes it.
    close: Option<Option<String>>,
    /// A close was asked for (the first reason given wins).
    close_asked: bool,
    /// The driver takes no more commands.
    closed: bool,
    /// The driver's task, waiting for a command.
    waker: Option<Waker>,
}

impl Commands {
    fn next_call(&mut self) -> Option<Command> {
        let call = self.calls.pop_front();
        if self.calls.is_empty() && self.calls.capacity() > 0 {
            self.calls = VecDeque::new();
        }
        call
    }
}

impl CommandReceiver {
    /// Stops accepting commands; those already queued can still be taken with
    /// [`CommandReceiver::try_next`].
    pub fn close(&mut self) {
        let mut commands = self.inner.commands();
        commands.closed = true;
        commands.close = None;
        commands.waker = None;
        drop(commands);
        // GetChargingProfiles waiting for reports fail with `Disconnected`.
        self.inner.reports().clear();
    }

    /// The next queued call without waiting, if any.
    pub fn try_next(&mut self) -> Option<Command> {
        self.inner.commands().next_call()
    }
}

impl Drop for CommandReceiver {
    fn drop(&mut self) {
        self.close();
        // Their reply senders dropped: the callers get `Disconnected`.
        let queued = std::mem::take(&mut self.inner.commands().calls);
        drop(queued);
    }
}

impl futures::Stream for CommandReceiver {
    type Item = Command;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Command>> {
        use std::task::Poll;
        let mut commands = self.inner.commands();
        if let Some(reason) = commands.close.take() {
            return Poll::Ready(Some(Command::Close { reason }));
        }
        if let Some(call) = commands.next_call() {
            return Poll::Ready(Some(call));
        }
        if commands.closed {
            return Poll::Ready(None);
        }
        match &mut commands.waker {
            Some(waker) => waker.clone_from(cx.waker()),
            None => commands.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

struct HandleInner {
    identity: String,
    version: Version,
    connection: u64,
    defaults: Defaults,
    commands: Mutex<Commands>,
    /// The published state; `None` only while a driver's step changes it in place
    /// ([`ChargerHandle::update_in_place`], under the write lock).
    state: RwLock<Option<Arc<ChargerState>>>,
    /// Milliseconds since the Unix epoch of the last message, `i64::MIN` before the first.
    last_seen: AtomicI64,
    /// GetChargingProfiles waiting for their reports.
    reports: Mutex<ReportCollectors>,
    /// Whether the WebSocket negotiated `permessage-deflate` (set by the server).
    compressed: std::sync::atomic::AtomicBool,
    /// The application's own data of this connection ([`ChargerHandle::app_data`]).
    app: std::sync::OnceLock<Box<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for HandleInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandleInner")
            .field("identity", &self.identity)
            .field("connection", &self.connection)
            .finish_non_exhaustive()
    }
}

impl HandleInner {
    fn reports(&self) -> std::sync::MutexGuard<'_, ReportCollectors> {
        self.reports.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn commands(&self) -> std::sync::MutexGuard<'_, Commands> {
        self.commands.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a call for the driver and wakes it; `Err(full)` when the driver takes no more
    /// (`false`) or the queue is full (`true`), and the call (with its reply) is dropped.
    fn queue_call(&self, call: Command) -> Result<(), bool> {
        let waker = {
            let mut commands = self.commands();
            if commands.closed {
                return Err(false);
            }
            if commands.calls.len() >= MAX_QUEUED_COMMANDS {
                return Err(true);
            }
            commands.calls.push_back(call);
            commands.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }
}

/// A cloneable handle to one connected charger: sends central calls of the charger's version
/// from any task and reads its current state. Cheap to clone.
#[derive(Clone)]
pub struct ChargerHandle {
    inner: Arc<HandleInner>,
}

impl std::fmt::Debug for ChargerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChargerHandle")
            .field("identity", &self.inner.identity)
            .field("version", &self.inner.version)
            .field("connection", &self.inner.connection)
            .finish()
    }
}

impl ChargerHandle {
    /// A handle and the receiving end of its commands, for a driver of your own. The driver
    /// must answer every [`Command`] and publish the state with
    /// [`ChargerHandle::set_state`] whenever [`Session::generation`](crate::Session::generation)
    /// changed.
    pub fn new(state: ChargerState, defaults: Defaults) -> (ChargerHandle, CommandReceiver) {
        ChargerHandle::with_shared_state(Arc::new(state), defaults)
    }

    /// [`ChargerHandle::new`] publishing `state` as it is (shared with the session).
    pub(crate) fn with_shared_state(
        state: Arc<ChargerState>,
        defaults: Defaults,
    ) -> (ChargerHandle, CommandReceiver) {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let handle = ChargerHandle {
            inner: Arc::new(HandleInner {
                identity: state.identity.to_string(),
                version: state.version,
                connection: NEXT.fetch_add(1, Ordering::Relaxed),
                defaults,
                commands: Mutex::new(Commands::default()),
                state: RwLock::new(Some(state)),
                last_seen: AtomicI64::new(i64::MIN),
                reports: Mutex::new(ReportCollectors::default()),
                compressed: std::sync::atomic::AtomicBool::new(false),
                app: std::sync::OnceLock::new(),
            }),
        };
        let commands = CommandReceiver {
            inner: handle.inner.clone(),
        };
        (handle, commands)
    }

    /// The charger identity.
    pub fn identity(&self) -> &str {
        &self.inner.identity
    }

    /// Whether the connection's WebSocket uses compression (RFC 7692 `permessage-deflate`,
    /// see `ServerConfig::compression`); always `false` for a driver of your own unless it
    /// calls [`ChargerHandle::set_compressed`].
    pub fn compressed(&self) -> bool {
        self.inner.compressed.load(Ordering::Relaxed)
    }

    /// Records that the connection's WebSocket negotiated compression (for a driver of your
    /// own; the server does it itself).
    pub fn set_compressed(&self, compressed: bool) {
        self.inner.compressed.store(compressed, Ordering::Relaxed);
    }

    /// The application's own data of this connection, made by `init` on first use: what an
    /// application keeps per connection (its pending rows, a cache of open sessions) without
    /// a map from identity to data that every message looks up. One value per connection,
    /// for as long as the connection's handles live; `None` when a value of another type was
    /// made first.
    ///
    /// ```
    /// use ocpp_central::ocpp_types::Version;
    /// use ocpp_central::{ChargerHandle, ChargerState, Defaults};
    /// use std::sync::atomic::{AtomicU64, Ordering};
    ///
    /// #[derive(Default)]
    /// struct Seen(AtomicU64);
    ///
    /// let state = ChargerState::new("CP-1".into(), Version::V16, chrono::Utc::now());
    /// let (handle, _commands) = ChargerHandle::new(state, Defaults::default());
    /// handle.app_data(Seen::default).map(|s| s.0.fetch_add(1, Ordering::Relaxed));
    /// let seen = handle.clone().app_data(Seen::default).map(|s| s.0.load(Ordering::Relaxed));
    /// assert_eq!(seen, Some(1));
    /// // Another type finds the slot taken.
    /// assert!(handle.app_data(String::new).is_none());
    /// ```
    pub fn app_data<T: std::any::Any + Send + Sync>(&self, init: impl FnOnce() -> T) -> Option<&T> {
        self.inner
            .app
            .get_or_init(|| Box::new(init()))
            .downcast_ref::<T>()
    }

    /// The connection's version.
    pub fn version(&self) -> Version {
        self.inner.version
    }

    /// A number unique to this connection in the process (a reconnect gets a new one).
    pub fn connection_id(&self) -> u64 {
        self.inner.connection
    }

    /// The default answers (for handler methods that fall back to them).
    pub fn defaults(&self) -> &Defaults {
        &self.inner.defaults
    }

    /// The charger's version-neutral state as last published (after every change; shared,
    /// not copied).
    pub fn state(&self) -> Arc<ChargerState> {
        let published = self.published();
        // Empty only if a step that changed the state in place panicked, until the driver
        // publishes the last good state: an empty state of this charger meanwhile.
        published.unwrap_or_else(|| {
            Arc::new(ChargerState::new(
                self.inner.identity.clone(),
                self.inner.version,
                Utc::now(),
            ))
        })
    }

    /// The state as last published; `None` while (or if a panic interrupted) a step that
    /// changes it in place ([`ChargerHandle::update_in_place`]).
    pub(crate) fn published(&self) -> Option<Arc<ChargerState>> {
        self.inner
            .state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Publishes a new state (drivers call this when the session's state changed).
    pub fn set_state(&self, state: &ChargerState) {
        self.publish(Arc::new(state.clone()));
    }

    /// Publishes a state shared with the session (`Session::shared_state`), without copying.
    pub(crate) fn publish(&self, state: Arc<ChargerState>) {
        let old = self
            .inner
            .state
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .replace(state);
        // The old state is freed after the lock is released.
        drop(old);
    }

    /// Runs `step` (a driver's step that changes the session's state, e.g. answering a
    /// call) with the published state unshared, then publishes the session's state.
    ///
    /// The handle lets go of its reference to the state it shares with the session while
    /// it holds its write lock, so the session's copy-on-write ([`Arc::make_mut`]) changes
    /// the state in place instead of copying every connector and transaction of the charger
    /// for each message that changes it (every meter value). Readers of
    /// [`ChargerHandle::state`] wait for the step; one that still holds an earlier snapshot
    /// keeps it, and the session copies the state as before. `step` must not read the
    /// handle's state (the write lock is held).
    #[cfg(feature = "tokio")]
    pub(crate) fn update_in_place<R>(
        &self,
        session: &mut crate::Session,
        step: impl FnOnce(&mut crate::Session) -> R,
    ) -> R {
        let mut slot = self.inner.state.write().unwrap_or_else(|e| e.into_inner());
        // Dropped with the lock held: nobody can read the empty slot.
        drop(slot.take());
        let out = step(session);
        *slot = Some(session.shared_state());
        out
    }

    /// When the charger last sent anything (wall clock).
    pub fn last_seen(&self) -> Option<DateTime<Utc>> {
        match self.inner.last_seen.load(Ordering::Relaxed) {
            i64::MIN => None,
            ms => DateTime::from_timestamp_millis(ms),
        }
    }

    /// Records that the charger sent something at `at` (drivers call this per message).
    pub fn touch(&self, at: DateTime<Utc>) {
        self.inner
            .last_seen
            .store(at.timestamp_millis(), Ordering::Relaxed);
    }

    /// Whether the connection is still open.
    pub fn is_connected(&self) -> bool {
        let closed = self.inner.commands().closed;
        !closed && self.state().connected
    }

    /// Sends a central call of the charger's version and awaits the typed answer, a
    /// CALLERROR, a timeout or the disconnection.
    ///
    /// ```no_run
    /// # async fn f(charger: ocpp_central::ChargerHandle) -> Result<(), ocpp_central::CallError> {
    /// use ocpp_types::v16::{RemoteStartTransactionRequest, RemoteStartStopStatus};
    /// let answer = charger
    ///     .call(RemoteStartTransactionRequest::new("TAG1".parse().unwrap()))
    ///     .await?;
    /// assert_eq!(answer.status, RemoteStartStopStatus::Accepted);
    /// # Ok(()) }
    /// ```
    pub async fn call<R: ocpp_types::Request>(&self, request: R) -> Result<R::Response, CallError> {
        if R::VERSION != self.inner.version {
            return Err(CallError::Refused(format!(
                "an OCPP {} request cannot be sent to an OCPP {} charger",
                R::VERSION,
                self.inner.version
            )));
        }
        let any =
            AnyRequest::from_message(request).map_err(|e| CallError::Refused(e.to_string()))?;
        let answer = self.call_any(any).await?;
        answer
            .into_message()
            .map_err(|e| CallError::InvalidResponse(e.to_string()))
    }

    /// [`ChargerHandle::call`] with a request of any version (it must be the charger's).
    /// With [`MAX_QUEUED_COMMANDS`] calls already waiting for this charger it fails at once
    /// with [`CallError::QueueFull`].
    pub async fn call_any(&self, request: AnyRequest) -> Result<AnyResponse, CallError> {
        let (tx, rx) = oneshot::channel();
        let command = Command::Call {
            request: Box::new(request),
            reply: tx,
        };
        if let Err(full) = self.inner.queue_call(command) {
            return Err(if full {
                CallError::QueueFull(MAX_QUEUED_COMMANDS)
            } else {
                CallError::Disconnected
            });
        }
        rx.await.map_err(|_| CallError::Disconnected)?
    }

    /// Asks the driver to close the connection (the first reason given wins).
    pub fn close(&self, reason: Option<String>) {
        let waker = {
            let mut commands = self.inner.commands();
            if commands.closed || std::mem::replace(&mut commands.close_asked, true) {
                return;
            }
            commands.close = Some(reason);
            commands.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The GetChargingProfiles of this connection waiting for their reports.
    pub(crate) fn reports(&self) -> std::sync::MutexGuard<'_, ReportCollectors> {
        self.inner.reports()
    }

    fn same_connection(&self, other: &ChargerHandle) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// The registry of connected chargers, shared by the server and the application (cheap to
/// clone).
#[derive(Clone, Default)]
pub struct Chargers {
    inner: Arc<RwLock<HashMap<String, ChargerHandle>>>,
}

impl std::fmt::Debug for Chargers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.identities()).finish()
    }
}

impl Chargers {
    /// An empty registry.
    pub fn new() -> Chargers {
        Chargers::default()
    }

    /// The handle of a connected charger.
    pub fn get(&self, identity: &str) -> Option<ChargerHandle> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(identity)
            .cloned()
    }

    /// The identities of the connected chargers, sorted.
    pub fn identities(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// The state of every connected charger, sorted by identity.
    pub fn list(&self) -> Vec<ChargerState> {
        let mut v: Vec<ChargerState> = self
            .inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|h| ChargerState::clone(&h.state()))
            .collect();
        v.sort_by(|a, b| a.identity.cmp(&b.identity));
        v
    }

    /// How many chargers are connected.
    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no charger is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registers a connection; returns the handle it replaced, if any (close that one).
    pub fn insert(&self, handle: ChargerHandle) -> Option<ChargerHandle> {
        self.inner
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(handle.identity().to_owned(), handle)
    }

    /// Removes a connection, unless its identity has since been taken by a newer one.
    pub fn remove(&self, handle: &ChargerHandle) {
        let mut map = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if map
            .get(handle.identity())
            .is_some_and(|h| h.same_connection(handle))
        {
            map.remove(handle.identity());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn handle() -> (ChargerHandle, CommandReceiver) {
        ChargerHandle::new(
            ChargerState::new("CP1".into(), Version::V16, Utc::now()),
            Defaults::default(),
        )
    }

    fn clear_cache() -> AnyRequest {
        AnyRequest::from_message(ocpp_types::v16::ClearCacheRequest::new()).unwrap()
    }

    #[tokio::test]
    async fn commands_are_bounded_a_close_comes_first_and_an_idle_queue_holds_nothing() {
        let (handle, mut rx) = handle();
        let mut waiting = Vec::new();
        for _ in 0..MAX_QUEUED_COMMANDS {
            let h = handle.clone();
            waiting.push(tokio::spawn(async move { h.call_any(clear_cache()).await }));
        }
        tokio::task::yield_now().await;
        while handle.inner.commands().calls.len() < MAX_QUEUED_COMMANDS {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            handle.call_any(clear_cache()).await,
            Err(CallError::QueueFull(MAX_QUEUED_COMMANDS))
        );
        handle.close(Some("first".into()));
        handle.close(Some("second".into()));
        let Some(Command::Close { reason }) = rx.next().await else {
            panic!("the close comes before the queued calls")
        };
        assert_eq!(reason.as_deref(), Some("first"));
        for _ in 0..MAX_QUEUED_COMMANDS {
            let Some(Command::Call { reply, .. }) = rx.next().await else {
                panic!("a queued call")
            };
            let _ = reply.send(Err(CallError::Timeout));
        }
        for w in waiting {
            assert_eq!(w.await.unwrap(), Err(CallError::Timeout));
        }
        assert_eq!(handle.inner.commands().calls.capacity(), 0);
    }

    #[tokio::test]
    async fn calls_fail_with_disconnected_once_the_driver_is_gone() {
        let (handle, rx) = handle();
        let h = handle.clone();
        let queued = tokio::spawn(async move { h.call_any(clear_cache()).await });
        while handle.inner.commands().calls.is_empty() {
            tokio::task::yield_now().await;
        }
        drop(rx);
        assert_eq!(queued.await.unwrap(), Err(CallError::Disconnected));
        assert_eq!(
            handle.call_any(clear_cache()).await,
            Err(CallError::Disconnected)
        );
        assert!(!handle.is_connected());
    }
}
