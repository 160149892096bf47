//! Injected time and ids, and the default answer to every charger request.

use std::fmt;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use ocpp_codec::ErrorCode;

use ocpp_types::{Response as _, TypedRequest, TypedResponse};

use crate::message::{AnyRequest, AnyResponse};

/// The wall clock for timestamps in messages (`currentTime`) and the model. Inject a
/// [`ManualClock`] in tests.
pub trait WallClock: Send + Sync {
    /// The current UTC time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl WallClock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to (for tests).
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// A clock showing `at`.
    pub fn new(at: DateTime<Utc>) -> ManualClock {
        ManualClock(Mutex::new(at))
    }

    /// Sets the time.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    /// Moves the time forward.
    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += by;
    }
}

impl WallClock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Issues OCPP 1.6 transaction ids (StartTransaction.conf `transactionId`). Share one source
/// across all connections of a central system so ids stay unique; back it by your database
/// sequence in production.
pub trait TransactionIdSource: Send + Sync {
    /// The next id.
    fn next_transaction_id(&self) -> i32;
}

/// Ids from an in-memory counter (1, 2, 3, ... by default).
#[derive(Debug)]
pub struct CounterTransactionIds(AtomicI32);

impl CounterTransactionIds {
    /// A counter whose first id is `first`.
    pub fn starting_at(first: i32) -> CounterTransactionIds {
        CounterTransactionIds(AtomicI32::new(first))
    }
}

impl Default for CounterTransactionIds {
    fn default() -> Self {
        CounterTransactionIds::starting_at(1)
    }
}

impl TransactionIdSource for CounterTransactionIds {
    fn next_transaction_id(&self) -> i32 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// A refusal to answer a charger request: sent as a CALLERROR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFailure {
    /// The error code (spelled for the charger's version when sent).
    pub code: ErrorCode,
    /// The description.
    pub description: String,
}

impl CallFailure {
    /// A refusal with `code`.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> CallFailure {
        CallFailure {
            code,
            description: description.into(),
        }
    }

    /// `NotSupported`: the action is known but not handled here.
    pub fn not_supported(action: &str) -> CallFailure {
        CallFailure::new(
            ErrorCode::NotSupported,
            format!("{action} is not supported by this central system"),
        )
    }

    /// `InternalError`.
    pub fn internal(description: impl Into<String>) -> CallFailure {
        CallFailure::new(ErrorCode::InternalError, description)
    }
}

impl fmt::Display for CallFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

/// The default answers of a central system, shared by the sans-IO session and the handler
/// traits' default methods.
///
/// - BootNotification: `Accepted` (configurable) with the heartbeat interval (300 s) and the
///   current time; Heartbeat: the current time.
/// - Authorize, and the id token of 1.6 StartTransaction / 2.x TransactionEvent: `Accepted`.
/// - 1.6 StartTransaction: a fresh id from the [`TransactionIdSource`].
/// - DataTransfer: `UnknownVendorId`.
/// - (2.x) NotifyEVChargingNeeds and NotifyEVChargingSchedule: `Accepted`; the other
///   smart-charging notifications (NotifyChargingLimit, ClearedChargingLimit,
///   ReportChargingProfiles): the empty answer.
/// - Every notification whose response has no required field: the empty response.
/// - Anything else (a response that needs a decision, e.g. SignCertificate,
///   Get15118EVCertificate): CALLERROR `NotSupported`.
#[derive(Clone)]
pub struct Defaults {
    /// The heartbeat interval sent in boot answers, in seconds.
    pub heartbeat_interval: i32,
    /// The boot answer: `"Accepted"`, `"Pending"` or `"Rejected"`.
    pub boot_status: &'static str,
    /// The wall clock.
    pub clock: Arc<dyn WallClock>,
    /// The 1.6 transaction id source.
    pub transaction_ids: Arc<dyn TransactionIdSource>,
}

impl fmt::Debug for Defaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Defaults")
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("boot_status", &self.boot_status)
            .finish_non_exhaustive()
    }
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            heartbeat_interval: 300,
            boot_status: "Accepted",
            clock: Arc::new(SystemClock),
            transaction_ids: Arc::new(CounterTransactionIds::default()),
        }
    }
}

fn now_dt(clock: &dyn WallClock) -> ocpp_types::DateTime {
    ocpp_types::DateTime::from_utc(clock.now())
}

macro_rules! defaults_2x {
    ($fn_name:ident, $m:ident, $Variant:ident) => {
        fn $fn_name(
            &self,
            req: &ocpp_types::$m::AnyRequest,
        ) -> Option<ocpp_types::$m::AnyResponse> {
            use ocpp_types::$m as m;
            use ocpp_types::$m::AnyRequest as Q;
            use ocpp_types::$m::AnyResponse as R;
            Some(match req {
                Q::BootNotification(_) => R::from(m::BootNotificationResponse::new(
                    now_dt(&*self.clock),
                    self.heartbeat_interval,
                    self.boot_status.parse().ok()?,
                )),
                Q::Heartbeat(_) => R::from(m::HeartbeatResponse::new(now_dt(&*self.clock))),
                Q::Authorize(_) => R::from(m::AuthorizeResponse::new(m::IdTokenInfoType::new(
                    m::AuthorizationStatusEnumType::Accepted,
                ))),
                Q::TransactionEvent(r) => {
                    let mut resp = m::TransactionEventResponse::new();
                    if r.id_token.is_some() {
                        resp.id_token_info = Some(m::IdTokenInfoType::new(
                            m::AuthorizationStatusEnumType::Accepted,
                        ));
                    }
                    R::from(resp)
                }
                Q::DataTransfer(_) => R::from(m::DataTransferResponse::new(
                    m::DataTransferStatusEnumType::UnknownVendorId,
                )),
                Q::NotifyEVChargingNeeds(_) => R::from(m::NotifyEVChargingNeedsResponse::new(
                    m::NotifyEVChargingNeedsStatusEnumType::Accepted,
                )),
                Q::NotifyEVChargingSchedule(_) => R::from(
                    m::NotifyEVChargingScheduleResponse::new(m::GenericStatusEnumType::Accepted),
                ),
                other => R::from_json(other.action(), "{}").ok()?,
            })
        }
    };
}

impl Defaults {
    /// The default answer to `request`, or the refusal to send instead.
    pub fn response(&self, request: &AnyRequest) -> Result<AnyResponse, CallFailure> {
        let answer = match request {
            #[cfg(feature = "v16")]
            AnyRequest::V16(r) => self.v16(r).map(AnyResponse::from),
            #[cfg(feature = "v201")]
            AnyRequest::V201(r) => self.v201(r).map(AnyResponse::from),
            #[cfg(feature = "v21")]
            AnyRequest::V21(r) => self
                .v21_only(r)
                .or_else(|| self.v21(r))
                .map(AnyResponse::from),
        };
        answer.ok_or_else(|| CallFailure::not_supported(request.action()))
    }

    /// The default answer to a concrete typed request (typed all the way: no JSON).
    pub fn typed<Q: ocpp_types::Request>(&self, request: &Q) -> Result<Q::Response, CallFailure> {
        let typed = request.clone().into_typed();
        let answer = match &typed {
            #[cfg(feature = "v16")]
            TypedRequest::V16(r) => self.v16(r).map(TypedResponse::from),
            #[cfg(feature = "v201")]
            TypedRequest::V201(r) => self.v201(r).map(TypedResponse::from),
            #[cfg(feature = "v21")]
            TypedRequest::V21(r) => self
                .v21_only(r)
                .or_else(|| self.v21(r))
                .map(TypedResponse::from),
            #[allow(unreachable_patterns)]
            _ => None,
        };
        let answer = answer.ok_or_else(|| CallFailure::not_supported(Q::ACTION))?;
        Q::Response::try_from_typed(answer)
            .map_err(|e| CallFailure::internal(format!("default answer: {e}")))
    }

    #[cfg(feature = "v16")]
    fn v16(&self, req: &ocpp_types::v16::AnyRequest) -> Option<ocpp_types::v16::AnyResponse> {
        use ocpp_types::v16 as m;
        use ocpp_types::v16::AnyRequest as Q;
        use ocpp_types::v16::AnyResponse as R;
        Some(match req {
            Q::BootNotification(_) => R::from(m::BootNotificationResponse::new(
                self.boot_status.parse().ok()?,
                now_dt(&*self.clock),
                self.heartbeat_interval,
            )),
            Q::Heartbeat(_) => R::from(m::HeartbeatResponse::new(now_dt(&*self.clock))),
            Q::Authorize(_) => R::from(m::AuthorizeResponse::new(m::IdTagInfo::new(
                m::AuthorizationStatus::Accepted,
            ))),
            Q::StartTransaction(_) => R::from(m::StartTransactionResponse::new(
                m::IdTagInfo::new(m::AuthorizationStatus::Accepted),
                self.transaction_ids.next_transaction_id(),
            )),
            Q::StopTransaction(r) => {
                let mut resp = m::StopTransactionResponse::new();
                if r.id_tag.is_some() {
                    resp.id_tag_info = Some(m::IdTagInfo::new(m::AuthorizationStatus::Accepted));
                }
                R::from(resp)
            }
            Q::DataTransfer(_) => R::from(m::DataTransferResponse::new(
                m::DataTransferStatus::UnknownVendorId,
            )),
            other => R::from_json(other.action(), "{}").ok()?,
        })
    }

    #[cfg(feature = "v201")]
    defaults_2x!(v201, v201, V201);
    #[cfg(feature = "v21")]
    defaults_2x!(v21, v21, V21);

    /// The answers only 2.1 needs beyond the shared 2.x ones: OpenPeriodicEventStream
    /// `Accepted` (the samples become [`crate::Event::StreamData`]).
    #[cfg(feature = "v21")]
    fn v21_only(&self, req: &ocpp_types::v21::AnyRequest) -> Option<ocpp_types::v21::AnyResponse> {
        use ocpp_types::v21 as m;
        match req {
            m::AnyRequest::OpenPeriodicEventStream(_) => Some(m::AnyResponse::from(
                m::OpenPeriodicEventStreamResponse::new(m::GenericStatusEnumType::Accepted),
            )),
            _ => None,
        }
    }
}
