//! The HTTP/JSON API (axum), its OpenAPI document, the live feed and the dashboard.
//!
//! Every error is JSON: `{"error": {"code": "...", "message": "..."}}` with a 4xx status for
//! a bad request (malformed JSON, a field the charger's version does not accept, an unknown
//! charger or session) and 502 / 504 when the charger answered with an error or not at all.
//!
//! Every route needs a role ([`ROUTES`]; the mechanics in [`super::auth`]): 401 without
//! credentials, 403 for too small a role or a failed CSRF check, 421 for a `Host` not served,
//! 413 for a body over [`MAX_BODY_BYTES`].

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures::Stream;
use ocpp_central::ocpp_types::Version;
use ocpp_central::{AnyRequest, CallError, ChargerHandle, ResetKind};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::db::{SampleRow, SessionFilter, SessionRow};
use super::{decimal_json, LiveEvent, Shared};

// ------------------------------------------------------------------ errors and extractors

/// An API error: status, a stable machine-readable code and a message for humans.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Option<Value>,
}

/// The JSON body of every error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code: `invalid_body`, `invalid_query`, `invalid_path`, `invalid_request`,
    /// `unknown_charger`, `charger_offline`, `unknown_session`, `unknown_token`,
    /// `unsupported_for_version`, `charger_error`, `charger_timeout`, `invalid_answer`,
    /// `not_found`, `method_not_allowed`, `database`; authentication: `unauthenticated`,
    /// `forbidden`, `csrf`, `host_not_allowed`, `missing_host`, `wrong_credentials`,
    /// `too_many_failures`, `not_a_session`, `unknown_user`, `unknown_key`, `conflict`.
    pub code: String,
    /// A sentence for humans.
    pub message: String,
    /// More, where useful (e.g. the charger's CALLERROR).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub details: Option<Value>,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    /// Its sentence for humans.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    fn with_details(mut self, details: Value) -> ApiError {
        self.details = Some(details);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                details: self.details,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<super::DbError> for ApiError {
    fn from(e: super::DbError) -> ApiError {
        tracing::error!("API database error: {e}");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "database", e.to_string())
    }
}

/// A JSON body whose rejection is an [`ApiError`].
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(r) => {
                let status = match &r {
                    JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    JsonRejection::JsonDataError(_) => StatusCode::UNPROCESSABLE_ENTITY,
                    // 413 for a body over MAX_BODY_BYTES.
                    JsonRejection::BytesRejection(b) => b.status(),
                    _ => StatusCode::BAD_REQUEST,
                };
                Err(ApiError::new(status, "invalid_body", r.body_text()))
            }
        }
    }
}

/// Query parameters whose rejection is an [`ApiError`].
#[derive(Debug)]
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Q(q.0))
            .map_err(|r: QueryRejection| ApiError::bad("invalid_query", r.body_text()))
    }
}

/// Path parameters whose rejection is an [`ApiError`].
#[derive(Debug)]
pub struct P<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| P(p.0))
            .map_err(|r: PathRejection| ApiError::bad("invalid_path", r.body_text()))
    }
}

// ------------------------------------------------------------------ views

/// A connector / EVSE and its status.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorView {
    /// EVSE id (1.6: connector id; 0 is the whole charger).
    pub evse: i64,
    /// Connector within the EVSE (2.x).
    pub connector: Option<i64>,
    /// Status as reported (`Available`, `Preparing`, `Charging`, `Occupied`, `Faulted`, ...).
    pub status: String,
    /// Error code reported with it, if any.
    pub error_code: Option<String>,
    /// Since when.
    pub since: DateTime<Utc>,
}

/// A charger: identity, version, boot state, what it said about itself, connectors, live
/// transactions.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargerView {
    /// Identity.
    pub identity: String,
    /// OCPP version of the latest connection.
    pub version: Option<String>,
    /// Connected now.
    pub connected: bool,
    /// `Accepted`, `Pending`, `Rejected` or `Unknown`.
    pub boot_state: Option<String>,
    /// Vendor.
    pub vendor: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// Serial number.
    pub serial_number: Option<String>,
    /// Firmware version.
    pub firmware_version: Option<String>,
    /// Registered by an operator.
    pub registered: bool,
    /// First seen.
    pub first_seen: Option<DateTime<Utc>>,
    /// Last message or heartbeat.
    pub last_seen: Option<DateTime<Utc>>,
    /// Heartbeat interval given at boot, seconds.
    pub heartbeat_interval: Option<i32>,
    /// Connectors / EVSEs.
    pub connectors: Vec<ConnectorView>,
    /// Ids of the sessions running on it.
    pub active_sessions: Vec<i64>,
    /// The cluster node holding its connection (`local` on a single node), when connected.
    pub node: Option<String>,
}

/// A meter sample of a session.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SampleView {
    /// When measured.
    pub timestamp: DateTime<Utc>,
    /// Measurand.
    pub measurand: String,
    /// Value (exact decimal text, as the charger sent it).
    pub value: String,
    /// Unit.
    pub unit: Option<String>,
    /// Phase.
    pub phase: Option<String>,
    /// Reading context.
    pub context: Option<String>,
}

/// A charging session.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    /// Session id.
    pub id: i64,
    /// Charger.
    pub charger: String,
    /// OCPP transaction id.
    pub transaction_id: String,
    /// EVSE (1.6 connector).
    pub evse: i64,
    /// Connector within the EVSE (2.x).
    pub connector: Option<i64>,
    /// The id token that started it.
    pub id_tag: Option<String>,
    /// Start.
    pub started_at: DateTime<Utc>,
    /// Stop (absent while active).
    pub stopped_at: Option<DateTime<Utc>>,
    /// Energy delivered, Wh.
    #[schema(value_type = f64)]
    pub energy_wh: Value,
    /// Energy delivered, exact decimal text.
    pub energy_wh_exact: String,
    /// Current power, W (active sessions that report it).
    #[schema(value_type = Option<f64>)]
    pub power_w: Value,
    /// Energy register at the start, Wh.
    pub meter_start_wh: Option<String>,
    /// Latest energy register, Wh.
    pub meter_last_wh: Option<String>,
    /// Cost from the tariff (so far, for an active session).
    #[schema(value_type = f64)]
    pub cost: Value,
    /// Cost, exact decimal text.
    pub cost_exact: String,
    /// Currency of `cost`.
    pub currency: String,
    /// Why it stopped.
    pub stop_reason: Option<String>,
    /// `active` or `completed`.
    pub status: String,
    /// Meter samples (only in `GET /api/sessions/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub samples: Option<Vec<SampleView>>,
    /// Signed meter values per verification status (`Verified`, `Invalid`, `NoKey`,
    /// `Unsupported`; absent: none). The values: `GET /api/sessions/{id}/signed-values`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub signed_values: BTreeMap<String, i64>,
}

pub(crate) fn session_view(s: SessionRow, samples: Option<Vec<SampleRow>>) -> SessionView {
    SessionView {
        id: s.id,
        charger: s.charger,
        transaction_id: s.transaction_id,
        evse: s.evse,
        connector: s.connector,
        id_tag: s.id_token,
        started_at: s.started_at,
        stopped_at: s.ended_at,
        energy_wh: decimal_json(s.energy_wh),
        energy_wh_exact: s.energy_wh.to_string(),
        power_w: s.power_w.map(decimal_json).unwrap_or(Value::Null),
        meter_start_wh: s.meter_start_wh.map(|d| d.to_string()),
        meter_last_wh: s.meter_last_wh.map(|d| d.to_string()),
        cost: decimal_json(s.cost),
        cost_exact: s.cost.to_string(),
        currency: s.currency,
        stop_reason: s.stop_reason,
        status: s.status,
        samples: samples.map(|v| {
            v.into_iter()
                .map(|x| SampleView {
                    timestamp: x.timestamp,
                    measurand: x.measurand,
                    value: x.value.to_string(),
                    unit: x.unit,
                    phase: x.phase,
                    context: x.context,
                })
                .collect()
        }),
        signed_values: BTreeMap::new(),
    }
}

/// The charger's answer to a central call.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallAnswer {
    /// The action sent.
    pub action: String,
    /// The answer's `status`, where it has one (`Accepted`, `Rejected`, ...).
    pub status: Option<String>,
    /// The charger's whole answer payload.
    #[schema(value_type = Object)]
    pub response: Value,
}

// ------------------------------------------------------------------ requests

/// Start charging (1.6 RemoteStartTransaction, 2.x RequestStartTransaction).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartRequest {
    /// EVSE (2.x `evseId`; 1.6 `connectorId`). Optional: the charger chooses.
    pub evse: Option<i32>,
    /// 1.6 connector id (same as `evse` on 1.6).
    pub connector: Option<i32>,
    /// The driver's id token (1.6 at most 20 characters, 2.x at most 36).
    pub id_tag: String,
}

/// Stop a session (1.6 RemoteStopTransaction, 2.x RequestStopTransaction). Give one of the two.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StopRequest {
    /// The OCPP transaction id.
    pub transaction_id: Option<String>,
    /// Our session id.
    pub session_id: Option<i64>,
}

/// Reset a charger.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResetRequest {
    /// 1.6 `Soft` (default) or `Hard`; 2.x `OnIdle` (default) or `Immediate`. `Soft`/`Hard`
    /// map to `OnIdle`/`Immediate` on 2.x and back on 1.6.
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

/// Change a 1.6 configuration key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeConfigurationBody {
    /// The key.
    pub key: String,
    /// The new value.
    pub value: String,
}

/// Which 1.6 configuration keys to read.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ConfigurationQuery {
    /// Comma-separated keys (all keys when absent).
    pub keys: Option<String>,
}

/// A 2.x variable reference (and value, to set).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VariableRef {
    /// Component name (e.g. `OCPPCommCtrlr`).
    pub component: String,
    /// Component instance.
    pub component_instance: Option<String>,
    /// EVSE of the component.
    pub evse: Option<i32>,
    /// Variable name (e.g. `HeartbeatInterval`).
    pub variable: String,
    /// Variable instance.
    pub variable_instance: Option<String>,
    /// Attribute (`Actual` by default).
    pub attribute: Option<String>,
    /// The value to set (SetVariables only).
    pub value: Option<String>,
}

/// A list of 2.x variables to read or set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariablesBody {
    /// The variables.
    pub variables: Vec<VariableRef>,
}

/// Register a charger (admitted when only known chargers may connect).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterCharger {
    /// Its identity.
    pub identity: String,
}

/// An ID token.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TokenBody {
    /// The token (1.6 idTag / 2.x idToken).
    pub id_tag: String,
    /// `Accepted`, `Blocked`, `Expired` or `Invalid`.
    pub status: String,
    /// Who holds it.
    pub note: Option<String>,
}

/// Filters of `GET /api/sessions`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SessionsQuery {
    /// Only this charger's sessions.
    pub charger: Option<String>,
    /// `active` or `completed`.
    pub status: Option<String>,
    /// At most this many (default 100, at most 1000), newest first.
    pub limit: Option<i64>,
}

/// Search and paging of `GET /api/chargers` (the dashboard reads a page at a time: a network
/// of 10,000 chargers is never one table).
#[derive(Debug, Deserialize, IntoParams)]
pub struct ChargersQuery {
    /// Only chargers whose identity, vendor or model contains this (case-insensitive).
    pub search: Option<String>,
    /// `online` (connected now) or `offline`.
    pub status: Option<String>,
    /// Skip this many (in identity order; default 0).
    pub offset: Option<usize>,
    /// At most this many (default: all; at most [`MAX_CHARGERS_PAGE`] when given). The number
    /// that matched is in the `X-Total-Count` header.
    pub limit: Option<usize>,
}

/// The largest page of `GET /api/chargers?limit=`.
pub const MAX_CHARGERS_PAGE: usize = 500;

/// Counts over every charger (`GET /api/chargers/summary`): what the dashboard shows at a
/// glance instead of a table of all of them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargersSummary {
    /// Chargers ever seen or registered.
    pub total: usize,
    /// Connected now.
    pub online: usize,
    /// Sessions active now.
    pub charging: usize,
    /// Connectors whose last status is `Faulted` or `Unavailable`, on connected chargers.
    pub faulted_connectors: usize,
}

/// Filters of `GET /api/log`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct LogQuery {
    /// Only this charger's events.
    pub charger: Option<String>,
    /// At most this many (default 100, at most 1000), newest first.
    pub limit: Option<i64>,
}

// ------------------------------------------------------------------ router

/// The largest request body any route reads (JSON bodies); beyond, 413.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

use super::auth::{Access, Auth, Role};

const PUBLIC: Access = Access::Public;
const VIEWER: Access = Access::Role(Role::Viewer);
const OPERATOR: Access = Access::Role(Role::Operator);
const ADMIN: Access = Access::Role(Role::Admin);
const DRIVER: Access = Access::Driver;

/// Who may use each route: `(method, path as routed, access)`. The guard
/// ([`super::auth::access_guard`]) looks every request up here; a routed method missing from
/// the table is refused to everyone, and a test checks that every route of the OpenAPI
/// document is here. A new route gets its line here.
pub const ROUTES: &[(&str, &str, Access)] = &[
    // The dashboard page answers the login page to anyone not signed in.
    ("GET", "/", PUBLIC),
    ("GET", "/dashboard.js", PUBLIC),
    ("GET", "/dashboard.css", PUBLIC),
    ("GET", "/login.js", PUBLIC),
    // For load balancers: up or not, nothing else.
    ("GET", "/health", PUBLIC),
    ("GET", "/api/openapi.json", PUBLIC),
    ("POST", "/api/login", PUBLIC),
    ("POST", "/api/logout", VIEWER),
    ("GET", "/api/me", VIEWER),
    ("GET", "/metrics", VIEWER),
    ("GET", "/api/events", VIEWER),
    ("GET", "/api/log", VIEWER),
    ("GET", "/api/journal/set-aside", VIEWER),
    ("GET", "/api/chargers", VIEWER),
    ("GET", "/api/chargers/summary", VIEWER),
    ("POST", "/api/chargers", ADMIN),
    ("GET", "/api/chargers/{id}", VIEWER),
    ("POST", "/api/chargers/{id}/start", OPERATOR),
    ("POST", "/api/chargers/{id}/stop", OPERATOR),
    ("POST", "/api/chargers/{id}/reset", OPERATOR),
    ("GET", "/api/chargers/{id}/configuration", OPERATOR),
    ("POST", "/api/chargers/{id}/configuration", OPERATOR),
    ("POST", "/api/chargers/{id}/variables/get", OPERATOR),
    ("POST", "/api/chargers/{id}/variables/set", OPERATOR),
    ("POST", "/api/chargers/{id}/call/{action}", ADMIN),
    ("GET", "/api/sessions", VIEWER),
    ("GET", "/api/sessions/{id}", VIEWER),
    ("GET", "/api/tokens", VIEWER),
    ("POST", "/api/tokens", ADMIN),
    // Charger passwords and security events (secrets.rs).
    ("POST", "/api/chargers/{id}/password", ADMIN),
    ("GET", "/api/security-events", VIEWER),
    ("GET", "/security-events.js", PUBLIC),
    ("DELETE", "/api/tokens/{id_tag}", ADMIN),
    ("GET", "/api/users", ADMIN),
    ("POST", "/api/users", ADMIN),
    ("PUT", "/api/users/{username}", ADMIN),
    ("DELETE", "/api/users/{username}", ADMIN),
    ("GET", "/api/keys", ADMIN),
    ("POST", "/api/keys", ADMIN),
    ("DELETE", "/api/keys/{id}", ADMIN),
    // Sites and the load balancer (sites_api.rs).
    ("GET", "/api/sites", VIEWER),
    ("POST", "/api/sites", ADMIN),
    ("GET", "/api/sites/{id}", VIEWER),
    ("PUT", "/api/sites/{id}", ADMIN),
    ("DELETE", "/api/sites/{id}", ADMIN),
    ("PUT", "/api/sites/{id}/limit", OPERATOR),
    ("PUT", "/api/sites/{id}/chargers/{charger}", ADMIN),
    ("DELETE", "/api/sites/{id}/chargers/{charger}", ADMIN),
    ("GET", "/api/sites/{id}/plan", VIEWER),
    ("POST", "/api/chargers/{id}/balancer-profile", OPERATOR),
    ("GET", "/api/sites/{id}/power", VIEWER),
    ("GET", "/api/balancer", VIEWER),
    ("GET", "/sites.js", PUBLIC),
    // Chargers' certificates (certs_api.rs).
    ("GET", "/api/certificates", VIEWER),
    ("GET", "/certificates.js", PUBLIC),
    ("GET", "/api/chargers/{id}/certificates", VIEWER),
    ("POST", "/api/chargers/{id}/certificates/install", ADMIN),
    ("POST", "/api/chargers/{id}/certificates/refresh", OPERATOR),
    ("POST", "/api/chargers/{id}/certificates/delete", ADMIN),
    ("POST", "/api/chargers/{id}/certificates/renew", OPERATOR),
    // Reservations and local lists (reservations_api.rs).
    ("GET", "/api/reservations", VIEWER),
    ("GET", "/api/reservations/{id}", VIEWER),
    ("DELETE", "/api/reservations/{id}", OPERATOR),
    ("POST", "/api/chargers/{id}/reservations", OPERATOR),
    ("GET", "/api/chargers/{id}/local-list", VIEWER),
    ("POST", "/api/chargers/{id}/local-list", OPERATOR),
    ("GET", "/reservations.js", PUBLIC),
    // Firmware rollouts and log uploads (firmware_api.rs). Chargers download and upload
    // through capability URLs (a random token in the path), without an account.
    ("GET", "/api/firmware/images", VIEWER),
    ("POST", "/api/firmware/images", ADMIN),
    ("GET", "/firmware/{token}/{name}", PUBLIC),
    ("GET", "/api/firmware/rollouts", VIEWER),
    ("POST", "/api/firmware/rollouts", OPERATOR),
    ("GET", "/api/firmware/rollouts/{id}", VIEWER),
    (
        "POST",
        "/api/chargers/{id}/firmware/rollouts/{rollout}",
        OPERATOR,
    ),
    ("POST", "/api/chargers/{id}/logs", OPERATOR),
    ("GET", "/api/logs", VIEWER),
    ("GET", "/api/logs/files/{id}", VIEWER),
    ("PUT", "/uploads/{token}", PUBLIC),
    ("POST", "/uploads/{token}", PUBLIC),
    ("PUT", "/uploads/{token}/{name}", PUBLIC),
    ("POST", "/uploads/{token}/{name}", PUBLIC),
    ("GET", "/firmware.js", PUBLIC),
    // The device model, configuration and monitoring (device_model_api.rs).
    ("GET", "/api/chargers/{id}/variables", VIEWER),
    ("POST", "/api/chargers/{id}/variables", OPERATOR),
    ("GET", "/api/chargers/{id}/reports", VIEWER),
    ("POST", "/api/chargers/{id}/reports", OPERATOR),
    ("GET", "/api/desired-config", VIEWER),
    ("PUT", "/api/desired-config", OPERATOR),
    ("GET", "/api/chargers/{id}/config-diff", VIEWER),
    ("POST", "/api/chargers/{id}/config-diff/apply", OPERATOR),
    ("GET", "/api/chargers/{id}/monitors", VIEWER),
    ("POST", "/api/chargers/{id}/monitors", OPERATOR),
    ("DELETE", "/api/chargers/{id}/monitors/{monitor}", OPERATOR),
    ("GET", "/api/device-events", VIEWER),
    ("GET", "/api/alerts", VIEWER),
    ("GET", "/device-model.js", PUBLIC),
    // Display messages and customer information (display_api.rs).
    ("POST", "/api/chargers/{id}/display-messages", OPERATOR),
    ("GET", "/api/chargers/{id}/display-messages", VIEWER),
    (
        "DELETE",
        "/api/chargers/{id}/display-messages/{message}",
        OPERATOR,
    ),
    ("POST", "/api/display-messages", OPERATOR),
    ("POST", "/api/chargers/{id}/customer-information", OPERATOR),
    ("GET", "/api/customers/{id_token}", OPERATOR),
    ("DELETE", "/api/customers/{id_token}", ADMIN),
    ("GET", "/messages.js", PUBLIC),
    // Signed meter values and meter keys (signed_api.rs).
    ("GET", "/api/sessions/{id}/signed-values", VIEWER),
    ("GET", "/api/sessions/{id}/signed-values/export", VIEWER),
    ("GET", "/api/chargers/{id}/meter-keys", VIEWER),
    ("PUT", "/api/chargers/{id}/meter-keys", ADMIN),
    // Periodic event streams (streams_api.rs).
    ("GET", "/api/chargers/{id}/streams", VIEWER),
    ("POST", "/api/chargers/{id}/streams", OPERATOR),
    ("PUT", "/api/chargers/{id}/streams/{stream}", OPERATOR),
    ("DELETE", "/api/chargers/{id}/streams/{stream}", OPERATOR),
    ("GET", "/api/chargers/{id}/streams/{stream}/samples", VIEWER),
    ("GET", "/streams.js", PUBLIC),
    // DER control (der.rs).
    ("GET", "/api/der-events", VIEWER),
    ("POST", "/api/chargers/{id}/der-controls", OPERATOR),
    (
        "DELETE",
        "/api/chargers/{id}/der-controls/{control}",
        OPERATOR,
    ),
    // OCPP 2.1 tariffs (tariffs_api.rs).
    ("POST", "/api/tariffs", OPERATOR),
    ("GET", "/api/tariffs", VIEWER),
    ("GET", "/api/tariffs/{tariff_id}", VIEWER),
    ("DELETE", "/api/tariffs/{tariff_id}", OPERATOR),
    ("POST", "/api/chargers/{id}/default-tariff", OPERATOR),
    ("GET", "/api/chargers/{id}/tariffs", VIEWER),
    ("DELETE", "/api/chargers/{id}/tariffs", OPERATOR),
    (
        "POST",
        "/api/chargers/{id}/transactions/{transaction_id}/tariff",
        OPERATOR,
    ),
    (
        "GET",
        "/api/chargers/{id}/transactions/{transaction_id}/cost",
        VIEWER,
    ),
    ("GET", "/tariffs.js", PUBLIC),
    // Drivers, billing and fleets (accounts_api.rs). Driver routes need a driver session.
    ("POST", "/api/driver/signup", PUBLIC),
    ("POST", "/api/driver/login", PUBLIC),
    ("POST", "/api/driver/logout", DRIVER),
    ("GET", "/api/driver/me", DRIVER),
    ("PUT", "/api/driver/card", DRIVER),
    ("GET", "/api/driver/tokens", DRIVER),
    ("POST", "/api/driver/tokens", DRIVER),
    ("DELETE", "/api/driver/tokens/{id_token}", DRIVER),
    ("GET", "/api/driver/chargers", DRIVER),
    ("POST", "/api/driver/start", DRIVER),
    ("GET", "/api/driver/sessions", DRIVER),
    ("GET", "/api/driver/sessions/{id}", DRIVER),
    ("POST", "/api/driver/sessions/{id}/stop", DRIVER),
    ("GET", "/api/driver/sessions/{id}/receipt", DRIVER),
    ("GET", "/api/driver/sessions/{id}/receipt.pdf", DRIVER),
    ("GET", "/api/driver/payments", DRIVER),
    ("GET", "/api/accounts", VIEWER),
    ("PUT", "/api/accounts/{id}/status", ADMIN),
    ("PUT", "/api/accounts/{id}/fleet", ADMIN),
    ("GET", "/api/accounts/{id}/ledger", VIEWER),
    ("GET", "/api/fleets", VIEWER),
    ("POST", "/api/fleets", ADMIN),
    ("POST", "/api/fleets/{id}/vehicles", ADMIN),
    ("GET", "/api/fleets/{id}/invoice", VIEWER),
    ("GET", "/api/fleets/{id}/invoice.pdf", VIEWER),
    ("GET", "/api/accounts/{id}/tokens", VIEWER),
    ("POST", "/api/sessions/{id}/refund", ADMIN),
    ("GET", "/api/ledger/audit", VIEWER),
    // The payment provider's events: public, authenticated by their HMAC signature.
    ("POST", "/api/payments/webhook", PUBLIC),
    ("GET", "/api/chargers/{id}/qr", VIEWER),
    ("GET", "/api/analytics/daily", VIEWER),
    ("GET", "/api/analytics/health", VIEWER),
    ("GET", "/analytics.js", PUBLIC),
    ("GET", "/accounts.js", PUBLIC),
    ("GET", "/site-analytics.js", PUBLIC),
    // The driver app's static files (examples/driver/).
    ("GET", "/app", PUBLIC),
    ("GET", "/app/app.js", PUBLIC),
    ("GET", "/app/app.css", PUBLIC),
    // The driver's search and the operator's specs and locations (catalog_api.rs).
    ("GET", "/api/driver/sites", DRIVER),
    ("GET", "/api/chargers/{id}/specs", VIEWER),
    ("PUT", "/api/chargers/{id}/connectors/{evse}/spec", ADMIN),
    ("DELETE", "/api/chargers/{id}/connectors/{evse}/spec", ADMIN),
    ("PUT", "/api/sites/{id}/location", ADMIN),
    // Per-site and connectivity analytics (analytics_api.rs).
    ("GET", "/api/analytics/sites", VIEWER),
    ("GET", "/api/analytics/sites/{id}/power", VIEWER),
    ("GET", "/api/analytics/connectivity", VIEWER),
    ("GET", "/api/health-alerts/webhook", VIEWER),
    ("PUT", "/api/health-alerts/webhook", ADMIN),
    ("DELETE", "/api/health-alerts/webhook", ADMIN),
    ("GET", "/api/health-alerts/deliveries", VIEWER),
];

/// The access rule of `method` on `path` (as routed, e.g. `/api/chargers/{id}`).
pub fn access(method: &str, path: &str) -> Option<Access> {
    ROUTES
        .iter()
        .find(|(m, p, _)| m.eq_ignore_ascii_case(method) && *p == path)
        .map(|r| r.2)
}

/// The whole HTTP surface: API, OpenAPI document, live feed, metrics, health and dashboard,
/// behind the Host allow-list and the access table ([`ROUTES`]).
pub fn router(backend: Shared, auth: Arc<Auth>) -> Router {
    use super::auth_api as a;
    let guard = super::auth::Guard {
        auth: auth.clone(),
        routes: ROUTES,
        drivers: backend.accounts().clone(),
    };
    Router::new()
        .route("/", get(dashboard))
        .route("/dashboard.js", get(dashboard_js))
        .route("/dashboard.css", get(dashboard_css))
        .route("/login.js", get(login_js))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi))
        .route("/api/login", post(a::login))
        .route("/api/logout", post(a::logout))
        .route("/api/me", get(a::whoami))
        .route("/api/users", get(a::list_users).post(a::create_user))
        .route(
            "/api/users/{username}",
            axum::routing::put(a::update_user).delete(a::delete_user),
        )
        .route("/api/keys", get(a::list_keys).post(a::create_key))
        .route("/api/keys/{id}", axum::routing::delete(a::revoke_key))
        .route("/api/events", get(events))
        .route("/api/log", get(log))
        .route("/api/journal/set-aside", get(journal_set_aside))
        .route("/api/chargers", get(list_chargers).post(register_charger))
        .route("/api/chargers/summary", get(chargers_summary))
        .route("/api/chargers/{id}", get(get_charger))
        .route("/api/chargers/{id}/start", post(start))
        .route("/api/chargers/{id}/stop", post(stop))
        .route("/api/chargers/{id}/reset", post(reset))
        .route(
            "/api/chargers/{id}/configuration",
            get(get_configuration).post(change_configuration),
        )
        .route("/api/chargers/{id}/variables/get", post(get_variables))
        .route("/api/chargers/{id}/variables/set", post(set_variables))
        .route("/api/chargers/{id}/call/{action}", post(call_action))
        .route("/api/sessions", get(list_sessions))
        .route("/api/sessions/{id}", get(get_session))
        .route("/api/tokens", get(list_tokens).post(put_token))
        .route("/api/tokens/{id_tag}", axum::routing::delete(delete_token))
        .merge(super::secrets::routes())
        .merge(super::sites_api::routes())
        .merge(super::certs_api::routes())
        .merge(super::reservations_api::routes())
        .merge(super::firmware_api::routes())
        .merge(super::device_model_api::routes())
        .merge(super::display_api::routes())
        .merge(super::signed_api::routes())
        .merge(super::streams_api::routes())
        .merge(super::der::routes())
        .merge(super::tariffs_api::routes())
        // A cluster node routes a charger's commands to the node holding its socket
        // (inside the guard: the operator is checked here, on the node asked).
        .route_layer(axum::middleware::from_fn_with_state(
            backend.clone(),
            route_to_owner,
        ))
        .merge(super::accounts_api::routes())
        .merge(super::catalog_api::routes())
        .merge(super::analytics_api::routes())
        // Every route above: authenticated and checked against ROUTES.
        .route_layer(axum::middleware::from_fn_with_state(
            guard,
            super::auth::access_guard,
        ))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::Extension(auth.clone()))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            backend.clone(),
            count_requests,
        ))
        .layer(axum::middleware::from_fn(security_headers))
        // Outermost: a Host not served gets 421 before anything else runs.
        .layer(axum::middleware::from_fn_with_state(
            auth,
            super::auth::host_guard,
        ))
        .with_state(backend)
}

/// On a cluster node: a request under `/api/chargers/{id}/` for a charger whose socket is
/// on another live node runs there (through the broker, see `cluster.rs`), and its answer
/// (status, body) comes back as is: the same answers, timeouts and errors as on that node.
/// A charger connected here, offline everywhere, or unknown is served here. If the other
/// node does not answer within the call timeout and 5 s: 504 `charger_timeout`; with
/// [`super::cluster::MAX_WAITING`] routed requests waiting: 503 `charger_busy`; the broker
/// unreachable: 503 `cluster_unavailable`.
async fn route_to_owner(
    State(b): State<Shared>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    use super::cluster::{ClusterError, Forward};
    use axum::extract::FromRequestParts;
    let Some(cluster) = b.cluster().cloned() else {
        return next.run(req).await;
    };
    let routable = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .is_some_and(|m| m.as_str().starts_with("/api/chargers/{id}/"));
    if !routable || req.extensions().get::<super::auth::Forwarded>().is_some() {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let id = axum::extract::Path::<HashMap<String, String>>::from_request_parts(&mut parts, &b)
        .await
        .ok()
        .and_then(|p| p.0.get("id").cloned());
    let who = parts
        .extensions
        .get::<Option<super::auth::Principal>>()
        .cloned()
        .flatten();
    let req = Request::from_parts(parts, body);
    let (Some(id), Some(who)) = (id, who) else {
        return next.run(req).await;
    };
    if b.chargers().get(&id).is_some_and(|h| h.is_connected()) {
        return next.run(req).await;
    }
    let owner = match cluster.lookup(&id).await {
        Ok(Some(o)) if o.node != cluster.node_id() => o,
        Ok(_) => return next.run(req).await,
        Err(e) => {
            tracing::error!("cluster: presence lookup failed: {e}");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "cluster_unavailable",
                format!("the cluster's broker does not answer: {e}"),
            )
            .into_response();
        }
    };
    let method = req.method().to_string();
    let uri = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES).await {
        Ok(bytes) => match String::from_utf8(bytes.to_vec()) {
            Ok(s) => s,
            Err(_) => {
                return ApiError::bad("invalid_body", "the body is not UTF-8").into_response()
            }
        },
        Err(e) => {
            return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "invalid_body", e.to_string())
                .into_response()
        }
    };
    let forward = Forward {
        method,
        uri,
        content_type,
        body,
        principal: who.name,
        role: who.role,
    };
    let t0 = Instant::now();
    let answer = cluster.route(&owner.node, forward, b.route_timeout()).await;
    b.metrics().routed(&owner.node, t0.elapsed());
    match answer {
        Ok(a) => {
            let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut resp = (status, a.body).into_response();
            if let Some(ct) = a
                .content_type
                .and_then(|c| header::HeaderValue::from_str(&c).ok())
            {
                resp.headers_mut().insert(header::CONTENT_TYPE, ct);
            }
            resp
        }
        Err(ClusterError::Timeout(node)) => {
            b.metrics().error("call", "charger_timeout");
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "charger_timeout",
                format!("node {node}, which holds charger {id:?}, did not answer in time"),
            )
            .into_response()
        }
        Err(ClusterError::Busy) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "charger_busy",
            ClusterError::Busy.to_string(),
        )
        .into_response(),
        Err(e) => {
            tracing::error!("cluster: routing to {} failed: {e}", owner.node);
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "cluster_unavailable",
                format!("routing to node {}: {e}", owner.node),
            )
            .into_response()
        }
    }
}

/// Where one charger of a request over many chargers is ([`locate`]).
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// Connected to this node.
    Here(ChargerHandle),
    /// Connected to another live node of the cluster (its id).
    Node(String),
    /// Connected nowhere.
    Offline,
}

/// Finds each of `ids` for a request that fans out over many chargers (a firmware rollout,
/// a display message to a group): connected here, on another live node of the cluster (one
/// presence lookup for all of them), or nowhere. A single node finds only its own.
pub(crate) async fn locate(b: &Shared, ids: &[String]) -> Result<Vec<Target>, ApiError> {
    let mut out: Vec<Target> = ids
        .iter()
        .map(|id| {
            b.chargers()
                .get(id)
                .filter(|h| h.is_connected())
                .map_or(Target::Offline, Target::Here)
        })
        .collect();
    let Some(cluster) = b.cluster() else {
        return Ok(out);
    };
    let elsewhere: Vec<(usize, String)> = out
        .iter()
        .zip(ids)
        .enumerate()
        .filter(|(_, (t, _))| matches!(t, Target::Offline))
        .map(|(i, (_, id))| (i, id.clone()))
        .collect();
    if elsewhere.is_empty() {
        return Ok(out);
    }
    let names: Vec<String> = elsewhere.iter().map(|(_, id)| id.clone()).collect();
    let found = cluster.lookup_many(&names).await.map_err(|e| {
        tracing::error!("cluster: presence lookup failed: {e}");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "cluster_unavailable",
            format!("the cluster's broker does not answer: {e}"),
        )
    })?;
    for ((i, _), owner) in elsewhere.into_iter().zip(found) {
        if let (Some(o), Some(slot)) = (owner, out.get_mut(i)) {
            if o.node != cluster.node_id() {
                *slot = Target::Node(o.node);
            }
        }
    }
    Ok(out)
}

/// The API path of charger `id`'s `rest` (`/api/chargers/{id}{rest}`), the identity
/// percent-encoded as one path segment.
pub(crate) fn charger_path(id: &str, rest: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    format!(
        "/api/chargers/{}{rest}",
        percent_encoding::utf8_percent_encode(id, SEGMENT)
    )
}

/// On a cluster, after a token changed: the managed chargers held by other nodes get their
/// list pushed again (`POST /api/chargers/{id}/local-list` run by the node holding each: a
/// full update, where a charger here gets a differential one), in the background.
fn lists_follow_elsewhere(b: &Shared, who: Option<super::auth::Principal>) {
    let (Some(_), Some(who)) = (b.cluster(), who) else {
        return;
    };
    let b = b.clone();
    tokio::spawn(async move {
        let managed = match b.local_lists().managed_stored().await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("local lists of other nodes not updated: {e}");
                return;
            }
        };
        let located = match locate(&b, &managed).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!("local lists of other nodes not updated: {}", e.message);
                return;
            }
        };
        for (charger, target) in managed.iter().zip(located) {
            let Target::Node(node) = target else {
                continue;
            };
            let uri = charger_path(charger, "/local-list");
            match run_on_node(&b, &node, &who, "POST", uri, &Value::Null).await {
                Ok((s, _)) if s.is_success() => {}
                Ok((s, body)) => {
                    tracing::warn!(%charger, %node, %s, %body, "local list push refused")
                }
                Err(e) => tracing::warn!(%charger, %node, "local list push failed: {}", e.message),
            }
        }
    });
}

/// Runs one charger's API request (`method` `uri`, JSON `body`) on cluster node `node` for
/// `who`: the fan-out path of a request over many chargers, each target run by the node
/// holding it, exactly as [`route_to_owner`] runs a single charger's request. The answer's
/// status and JSON body; a node that does not answer in time or a broker that does not
/// answer is the same [`ApiError`] a routed single-charger request gets.
pub(crate) async fn run_on_node(
    b: &Shared,
    node: &str,
    who: &super::auth::Principal,
    method: &str,
    uri: String,
    body: &Value,
) -> Result<(StatusCode, Value), ApiError> {
    use super::cluster::{ClusterError, Forward};
    let Some(cluster) = b.cluster() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "cluster_unavailable",
            "not a cluster node",
        ));
    };
    let forward = Forward {
        method: method.to_owned(),
        uri,
        content_type: Some("application/json".to_owned()),
        body: body.to_string(),
        principal: who.name.clone(),
        role: who.role,
    };
    let t0 = Instant::now();
    let answer = cluster.route(node, forward, b.route_timeout()).await;
    b.metrics().routed(node, t0.elapsed());
    match answer {
        Ok(a) => Ok((
            StatusCode::from_u16(a.status).unwrap_or(StatusCode::BAD_GATEWAY),
            serde_json::from_str(&a.body).unwrap_or(Value::String(a.body)),
        )),
        Err(ClusterError::Timeout(node)) => {
            b.metrics().error("call", "charger_timeout");
            Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "charger_timeout",
                format!("node {node} did not answer in time"),
            ))
        }
        Err(ClusterError::Busy) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "charger_busy",
            ClusterError::Busy.to_string(),
        )),
        Err(e) => {
            tracing::error!("cluster: routing to {node} failed: {e}");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "cluster_unavailable",
                format!("routing to node {node}: {e}"),
            ))
        }
    }
}

/// What a cluster node does for the others: runs their routed API requests through this
/// node's API, closes connections taken over, shows their live-feed entries.
pub struct NodeInbound {
    backend: Shared,
    router: Router,
}

impl NodeInbound {
    /// The inbound side of `backend`'s node, running routed requests through `router`
    /// ([`router`] of the same backend).
    pub fn new(backend: Shared, router: Router) -> NodeInbound {
        NodeInbound { backend, router }
    }
}

/// The largest answer body a routed request brings back.
const MAX_ROUTED_ANSWER: usize = 16 * 1024 * 1024;

#[async_trait::async_trait]
impl super::cluster::Inbound for NodeInbound {
    async fn forward(&self, f: super::cluster::Forward) -> super::cluster::ForwardAnswer {
        use super::cluster::ForwardAnswer;
        use tower::ServiceExt;
        let mut builder = axum::http::Request::builder()
            .method(f.method.as_str())
            .uri(f.uri.as_str())
            .header(header::HOST, "localhost");
        if let Some(ct) = &f.content_type {
            builder = builder.header(header::CONTENT_TYPE, ct.as_str());
        }
        let mut req = match builder.body(axum::body::Body::from(f.body)) {
            Ok(r) => r,
            Err(e) => {
                return ForwardAnswer {
                    status: 400,
                    content_type: None,
                    body: format!("unusable routed request: {e}"),
                }
            }
        };
        req.extensions_mut()
            .insert(super::auth::Forwarded(super::auth::Principal {
                name: f.principal,
                role: f.role,
                via: super::auth::Via::Key {
                    id: "cluster".into(),
                },
            }));
        let Ok(resp) = self.router.clone().oneshot(req).await;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = match axum::body::to_bytes(resp.into_body(), MAX_ROUTED_ANSWER).await {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => {
                return ForwardAnswer {
                    status: 502,
                    content_type: None,
                    body: format!("answer unreadable: {e}"),
                }
            }
        };
        ForwardAnswer {
            status,
            content_type,
            body,
        }
    }

    fn takeover(&self, identity: &str, connection: &str, by: &str) {
        self.backend.taken_over(identity, connection, by);
    }

    fn event(&self, event: super::LiveEvent) {
        self.backend.remote_event(event);
    }
}

/// Pages may not be framed (clickjacking) nor sniffed into another type.
async fn security_headers(req: Request, next: axum::middleware::Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("same-origin"),
    );
    resp
}

async fn count_requests(
    State(b): State<Shared>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    b.metrics().http_request();
    next.run(req).await
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}

/// The OpenAPI document of this API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ocpp-rs example central system",
        description = "Chargers, sessions, ID tokens and remote commands of an OCPP 1.6 / 2.0.1 / 2.1 central system."
    ),
    paths(
        health,
        super::auth_api::login,
        super::auth_api::logout,
        super::auth_api::whoami,
        super::auth_api::list_users,
        super::auth_api::create_user,
        super::auth_api::update_user,
        super::auth_api::delete_user,
        super::auth_api::list_keys,
        super::auth_api::create_key,
        super::auth_api::revoke_key,
        metrics,
        events,
        log,
        journal_set_aside,
        list_chargers,
        chargers_summary,
        register_charger,
        get_charger,
        start,
        stop,
        reset,
        get_configuration,
        change_configuration,
        get_variables,
        set_variables,
        call_action,
        list_sessions,
        get_session,
        list_tokens,
        put_token,
        delete_token
    ),
    components(schemas(
        crate::backend::db::JournalRow,
        ChargersSummary,
        ErrorBody,
        ErrorDetail,
        ChargerView,
        ConnectorView,
        SessionView,
        SampleView,
        CallAnswer,
        StartRequest,
        StopRequest,
        ResetRequest,
        ChangeConfigurationBody,
        VariableRef,
        VariablesBody,
        RegisterCharger,
        RegisteredCharger,
        TokenBody,
        LiveEvent,
        Role,
        super::auth::UserInfo,
        super::auth::KeyInfo,
        super::auth_api::LoginRequest,
        super::auth_api::Me,
        super::auth_api::NewUser,
        super::auth_api::UserChange,
        super::auth_api::NewKey,
        super::auth_api::CreatedKey
    ))
)]
pub struct ApiDoc;

/// Declares the two ways to authenticate (`api_key`: `Authorization: Bearer <key>`;
/// `session`: the `ocpp_session` cookie) and, on each operation, which it takes, the role it
/// needs (from [`ROUTES`]) and its 401 / 403 answers.
struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        use utoipa::openapi::{RefOr, ResponseBuilder};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (POST /api/keys), `ocpp_<id>_<secret>`; no CSRF check",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::auth::SESSION_COOKIE,
                "The session cookie set by POST /api/login. Requests that change something also \
                 need a same-origin Origin (or Referer) and the X-CSRF-Token header",
            ))),
        );
        components.add_security_scheme(
            "driver_session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::accounts::DRIVER_COOKIE,
                "The driver session cookie set by POST /api/driver/login or /api/driver/signup; \
                 changes also need a same-origin Origin and the X-CSRF-Token header",
            ))),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops = [
                ("GET", item.get.as_mut()),
                ("POST", item.post.as_mut()),
                ("PUT", item.put.as_mut()),
                ("DELETE", item.delete.as_mut()),
                ("PATCH", item.patch.as_mut()),
            ];
            for (method, op) in ops {
                let Some(op) = op else { continue };
                let role = match access(method, path) {
                    Some(Access::Role(role)) => role,
                    Some(Access::Driver) => {
                        op.security = Some(vec![SecurityRequirement::new(
                            "driver_session",
                            Vec::<String>::new(),
                        )]);
                        let note = "Needs a driver session (a driver sees only its own data).";
                        op.description = Some(match op.description.take() {
                            Some(d) if !d.is_empty() => format!("{d}\n\n{note}"),
                            _ => note.to_owned(),
                        });
                        op.responses.responses.insert(
                            "401".into(),
                            RefOr::T(
                                ResponseBuilder::new()
                                    .description("No driver session")
                                    .build(),
                            ),
                        );
                        continue;
                    }
                    _ => continue,
                };
                op.security = Some(vec![
                    SecurityRequirement::new("api_key", Vec::<String>::new()),
                    SecurityRequirement::new("session", Vec::<String>::new()),
                ]);
                let note = format!("Needs the `{}` role.", role.as_str());
                op.description = Some(match op.description.take() {
                    Some(d) if !d.is_empty() => format!("{d}\n\n{note}"),
                    _ => note,
                });
                op.responses.responses.insert(
                    "401".into(),
                    RefOr::T(ResponseBuilder::new().description("Not signed in").build()),
                );
                op.responses.responses.insert(
                    "403".into(),
                    RefOr::T(
                        ResponseBuilder::new()
                            .description(
                                "The role is too small, or a cookie request failed the CSRF check",
                            )
                            .build(),
                    ),
                );
            }
        }
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}

/// The OpenAPI document: [`ApiDoc`] with the charger-secrets routes merged in, then the
/// security of every operation from [`ROUTES`] (`SecurityAddon`).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(super::secrets::SecretsDoc::openapi());
    doc.merge(super::sites_api::SitesDoc::openapi());
    doc.merge(super::certs_api::CertsDoc::openapi());
    doc.merge(super::reservations_api::ReservationsDoc::openapi());
    doc.merge(super::firmware_api::FirmwareDoc::openapi());
    doc.merge(super::device_model_api::DeviceModelDoc::openapi());
    doc.merge(super::display_api::DisplayDoc::openapi());
    doc.merge(super::signed_api::SignedDoc::openapi());
    doc.merge(super::streams_api::StreamsDoc::openapi());
    doc.merge(super::der::DerDoc::openapi());
    doc.merge(super::tariffs_api::TariffsDoc::openapi());
    doc.merge(super::accounts_api::AccountsDoc::openapi());
    doc.merge(super::catalog_api::CatalogDoc::openapi());
    doc.merge(super::analytics_api::AnalyticsDoc::openapi());
    utoipa::Modify::modify(&SecurityAddon, &mut doc);
    doc
}

/// The dashboard to a signed-in user; the login page to anyone else.
async fn dashboard(
    axum::Extension(who): axum::Extension<Option<super::auth::Principal>>,
) -> impl IntoResponse {
    let page = if who.is_some() {
        include_str!("../../dashboard/index.html")
    } else {
        include_str!("../../dashboard/login.html")
    };
    ([(header::CACHE_CONTROL, "no-store")], Html(page))
}

async fn login_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../dashboard/login.js"),
    )
}

async fn dashboard_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../dashboard/dashboard.js"),
    )
}

async fn dashboard_css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../dashboard/dashboard.css"),
    )
}

/// Liveness and database reachability.
#[utoipa::path(get, path = "/health", responses(
    (status = 200, description = "Up; the database answers", body = Object),
    (status = 503, description = "The database does not answer", body = ErrorBody),
))]
async fn health(State(b): State<Shared>) -> Result<Json<Value>, ApiError> {
    b.db()
        .ping()
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "database", e.to_string()))?;
    Ok(Json(json!({
        "status": "ok",
        "database": match b.db().backend() { super::db::Backend::Sqlite => "sqlite", super::db::Backend::Postgres => "postgres" },
        "connectedChargers": b.chargers().len(),
    })))
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text", body = String, content_type = "text/plain")))]
async fn metrics(State(b): State<Shared>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        b.metrics().render(),
    )
}

/// The live feed: every event as a server-sent event (`data:` is a LiveEvent as JSON).
#[utoipa::path(get, path = "/api/events", responses((status = 200, description = "text/event-stream of LiveEvent", body = LiveEvent, content_type = "text/event-stream")))]
async fn events(State(b): State<Shared>) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = b.subscribe();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(ev) => {
                let data = serde_json::to_string(&ev).unwrap_or_else(|_| "{}".into());
                SseEvent::default().event(ev.kind.clone()).data(data)
            }
            // The client fell behind: tell it to reload the state.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => SseEvent::default()
                .event("resync")
                .data(json!({ "missed": n }).to_string()),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(event), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// The event log, newest first.
#[utoipa::path(get, path = "/api/log", params(LogQuery), responses((status = 200, body = [LiveEvent])))]
async fn log(State(b): State<Shared>, Q(q): Q<LogQuery>) -> Result<Json<Vec<Value>>, ApiError> {
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    b.flush().await;
    let rows = b.db().events(q.charger.as_deref(), limit).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| {
                json!({
                    "id": r.id, "at": r.at, "charger": r.charger, "kind": r.kind,
                    "detail": serde_json::from_str::<Value>(&r.detail).unwrap_or(Value::Null),
                })
            })
            .collect(),
    ))
}

/// Journaled transaction messages that could not be applied when the central system started
/// (kept with why, oldest first, at most 1000): an operator's to look at.
#[utoipa::path(get, path = "/api/journal/set-aside", responses((status = 200, body = [crate::backend::db::JournalRow])))]
async fn journal_set_aside(
    State(b): State<Shared>,
) -> Result<Json<Vec<crate::backend::db::JournalRow>>, ApiError> {
    Ok(Json(b.db().journal_set_aside_rows(1000).await?))
}

/// The view of one charger. Callers flush the writer first (once per request).
async fn charger_view(b: &Shared, id: &str) -> Result<Option<ChargerView>, ApiError> {
    let row = b.db().charger(id).await?;
    let handle = b.chargers().get(id);
    let live = handle.as_ref().map(|h| h.state());
    if row.is_none() && live.is_none() {
        return Ok(None);
    }
    let mut connectors: BTreeMap<(i64, i64), ConnectorView> = BTreeMap::new();
    for c in b.db().connectors(id).await? {
        connectors.insert(
            (c.evse, c.connector.unwrap_or(-1)),
            ConnectorView {
                evse: c.evse,
                connector: c.connector,
                status: c.status,
                error_code: c.error_code,
                since: c.since,
            },
        );
    }
    if let Some(state) = &live {
        for (r, c) in &state.connectors {
            let key = (i64::from(r.evse), r.connector.map(i64::from).unwrap_or(-1));
            connectors.insert(
                key,
                ConnectorView {
                    evse: i64::from(r.evse),
                    connector: r.connector.map(i64::from),
                    status: c.status.as_str().to_owned(),
                    error_code: c.error_code.clone(),
                    since: c.since,
                },
            );
        }
    }
    let active = b
        .db()
        .sessions(&SessionFilter {
            charger: Some(id.to_owned()),
            status: Some("active".into()),
            limit: 1000,
        })
        .await?;
    // On a cluster node a charger held by another node is connected as the database says
    // (a node that dies has its chargers marked offline once its lease ends).
    let connected = live.as_ref().is_some_and(|s| s.connected)
        || (b.cluster().is_some() && live.is_none() && row.as_ref().is_some_and(|r| r.connected));
    let node = match (&live, connected) {
        (_, false) => None,
        (Some(_), true) => Some(b.cluster().map_or("local", |c| c.node_id()).to_owned()),
        (None, true) => row
            .as_ref()
            .and_then(|r| r.owner.as_deref())
            .and_then(|o| o.split_once('|'))
            .map(|(n, _)| n.to_owned()),
    };
    Ok(Some(ChargerView {
        node,
        identity: id.to_owned(),
        version: live
            .as_ref()
            .map(|s| s.version.as_str().to_owned())
            .or_else(|| row.as_ref().and_then(|r| r.version.clone())),
        connected,
        boot_state: live
            .as_ref()
            .map(|s| s.boot.as_str().to_owned())
            .or_else(|| row.as_ref().and_then(|r| r.boot_state.clone())),
        vendor: live
            .as_ref()
            .and_then(|s| s.info.as_ref().map(|i| i.vendor.clone()))
            .or_else(|| row.as_ref().and_then(|r| r.vendor.clone())),
        model: live
            .as_ref()
            .and_then(|s| s.info.as_ref().map(|i| i.model.clone()))
            .or_else(|| row.as_ref().and_then(|r| r.model.clone())),
        serial_number: live
            .as_ref()
            .and_then(|s| s.info.as_ref().and_then(|i| i.serial_number.clone()))
            .or_else(|| row.as_ref().and_then(|r| r.serial_number.clone())),
        firmware_version: live
            .as_ref()
            .and_then(|s| s.info.as_ref().and_then(|i| i.firmware_version.clone()))
            .or_else(|| row.as_ref().and_then(|r| r.firmware_version.clone())),
        registered: row.as_ref().is_some_and(|r| r.registered),
        first_seen: row.as_ref().and_then(|r| r.first_seen),
        last_seen: handle
            .as_ref()
            .and_then(|h| h.last_seen())
            .or_else(|| row.as_ref().and_then(|r| r.last_seen)),
        heartbeat_interval: live.as_ref().and_then(|s| s.heartbeat_interval),
        connectors: connectors.into_values().collect(),
        active_sessions: active.iter().map(|s| s.id).collect(),
    }))
}

/// Every charger the list and the summary count: the database's rows (read after the
/// write-behind is flushed) and the chargers connected here that are not stored yet.
struct Fleet {
    rows: Vec<super::db::ChargerRow>,
    /// Connected to this node.
    live: std::collections::HashSet<String>,
}

impl Fleet {
    async fn load(b: &Shared) -> Result<Self, ApiError> {
        b.flush().await;
        let rows = b.db().chargers().await?;
        let live = b.chargers().identities().into_iter().collect();
        Ok(Self { rows, live })
    }

    /// Each charger once: its identity, its row if stored, and whether it is online
    /// (connected here, or on another node as the database says).
    fn each(&self) -> impl Iterator<Item = (&str, Option<&super::db::ChargerRow>, bool)> {
        let stored: std::collections::HashSet<&str> =
            self.rows.iter().map(|r| r.identity.as_str()).collect();
        let rows = self.rows.iter().map(|r| {
            let online = self.live.contains(&r.identity) || r.connected;
            (r.identity.as_str(), Some(r), online)
        });
        let unstored = self
            .live
            .iter()
            .filter(move |id| !stored.contains(id.as_str()))
            .map(|id| (id.as_str(), None, true));
        rows.chain(unstored)
    }
}

/// Every charger ever seen or registered, with live state for the connected ones, in identity
/// order; `search`, `status`, `offset` and `limit` select a page (the views are built for
/// that page only), `X-Total-Count` says how many matched.
#[utoipa::path(get, path = "/api/chargers", params(ChargersQuery), responses(
    (status = 200, body = [ChargerView], headers(("X-Total-Count" = usize, description = "Chargers that matched, over all pages"))),
    (status = 400, body = ErrorBody)))]
async fn list_chargers(
    State(b): State<Shared>,
    Q(q): Q<ChargersQuery>,
) -> Result<Response, ApiError> {
    let online_only = match q.status.as_deref() {
        None => None,
        Some("online") => Some(true),
        Some("offline") => Some(false),
        Some(other) => {
            return Err(ApiError::bad(
                "invalid_query",
                format!("status must be online or offline, not {other:?}"),
            ))
        }
    };
    if q.limit.is_some_and(|l| l == 0 || l > MAX_CHARGERS_PAGE) {
        return Err(ApiError::bad(
            "invalid_query",
            format!("limit must be 1..={MAX_CHARGERS_PAGE}"),
        ));
    }
    let needle = q.search.as_deref().map(str::to_lowercase);
    let fleet = Fleet::load(&b).await?;
    let mut ids: Vec<String> = fleet
        .each()
        .filter(|(id, row, online)| {
            online_only.is_none_or(|o| o == *online)
                && needle.as_deref().is_none_or(|n| {
                    [
                        Some(*id),
                        row.and_then(|r| r.vendor.as_deref()),
                        row.and_then(|r| r.model.as_deref()),
                    ]
                    .into_iter()
                    .flatten()
                    .any(|f| f.to_lowercase().contains(n))
                })
        })
        .map(|(id, _, _)| id.to_owned())
        .collect();
    ids.sort_unstable();
    let total = ids.len();
    let offset = q.offset.unwrap_or(0).min(total);
    let end = q
        .limit
        .map_or(total, |l| offset.saturating_add(l).min(total));
    let mut out = Vec::with_capacity(end - offset);
    for id in &ids[offset..end] {
        if let Some(v) = charger_view(&b, id).await? {
            out.push(v);
        }
    }
    Ok((
        [(
            header::HeaderName::from_static("x-total-count"),
            total.to_string(),
        )],
        Json(out),
    )
        .into_response())
}

/// Counts over every charger: total, online, charging, faulted connectors.
#[utoipa::path(get, path = "/api/chargers/summary", responses((status = 200, body = ChargersSummary)))]
async fn chargers_summary(State(b): State<Shared>) -> Result<Json<ChargersSummary>, ApiError> {
    let fleet = Fleet::load(&b).await?;
    let (mut total, mut online) = (0, 0);
    for (_, _, on) in fleet.each() {
        total += 1;
        online += usize::from(on);
    }
    let faulted_connectors = fleet
        .live
        .iter()
        .filter_map(|id| b.chargers().get(id))
        .map(|h| {
            h.state()
                .connectors
                .values()
                .filter(|c| {
                    matches!(
                        c.status,
                        ocpp_central::ConnectorStatus::Faulted
                            | ocpp_central::ConnectorStatus::Unavailable
                    )
                })
                .count()
        })
        .sum();
    let charging = b.db().active_session_count().await?;
    Ok(Json(ChargersSummary {
        total,
        online,
        charging,
        faulted_connectors,
    }))
}

/// A registered charger, with the password issued for it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredCharger {
    /// The charger.
    #[serde(flatten)]
    pub charger: ChargerView,
    /// Its Basic-auth password, generated now and shown only here (install it on the
    /// charger); `null` when it had one already (registering again keeps it).
    pub password: Option<String>,
}

/// Registers a charger identity (admitted when the server accepts known chargers only) and
/// issues it a random Basic-auth password if it has none (admin).
#[utoipa::path(post, path = "/api/chargers", request_body = RegisterCharger, responses(
    (status = 201, body = RegisteredCharger), (status = 400, body = ErrorBody)))]
async fn register_charger(
    State(b): State<Shared>,
    Body(req): Body<RegisterCharger>,
) -> Result<(StatusCode, Json<RegisteredCharger>), ApiError> {
    let id = req.identity.trim();
    if let Err(e) = ocpp_codec::transport::check_identity(id) {
        return Err(ApiError::bad("invalid_request", e.to_string()));
    }
    b.db().register_charger(id).await?;
    let password = b
        .passwords()
        .issue(id)
        .await
        .map_err(|e| internal("password", e.to_string()))?;
    b.admit(id);
    b.flush().await;
    let view = charger_view(&b, id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "database",
            "registered charger not found",
        )
    })?;
    Ok((
        StatusCode::CREATED,
        Json(RegisteredCharger {
            charger: view,
            password,
        }),
    ))
}

/// One charger.
#[utoipa::path(get, path = "/api/chargers/{id}", params(("id" = String, Path, description = "Charger identity")),
    responses((status = 200, body = ChargerView), (status = 404, body = ErrorBody)))]
async fn get_charger(
    State(b): State<Shared>,
    P(id): P<String>,
) -> Result<Json<ChargerView>, ApiError> {
    b.flush().await;
    charger_view(&b, &id)
        .await?
        .map(Json)
        .ok_or_else(|| unknown_charger(&id))
}

fn unknown_charger(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_charger",
        format!("no charger {id:?} has ever connected or been registered"),
    )
}

/// Sends `action` with `payload` to charger `id` and returns its answer.
async fn central_call(
    b: &Shared,
    id: &str,
    action: &str,
    payload: Value,
) -> Result<CallAnswer, ApiError> {
    super::secrets::refuse_password_change(action, &payload)?;
    let handle = connected(b, id).await?;
    let version = handle.version();
    let request = AnyRequest::from_json(version, action, &payload.to_string()).map_err(|e| {
        ApiError::bad(
            "invalid_request",
            format!("not a valid OCPP {version} {action} request: {e}"),
        )
        .with_details(json!({ "payload": payload }))
    })?;
    let t0 = Instant::now();
    let result = handle.call_any(request).await;
    b.metrics().message_out(version, action, t0.elapsed());
    let answer = result.map_err(|e| call_failed(b, version, action, e))?;
    let response: Value = serde_json::from_str(&answer.to_json()).unwrap_or(Value::Null);
    let status = response
        .get("status")
        .and_then(Value::as_str)
        .map(str::to_owned);
    b.log_call(id, action, status.as_deref()).await;
    Ok(CallAnswer {
        action: action.to_owned(),
        status,
        response,
    })
}

/// A version-neutral command of ocpp-central ([`ChargerHandle::remote_start`] and the
/// others), which picks the message of the charger's version; `action` names that message
/// per version (for errors and metrics).
pub(crate) async fn command<F, Fut>(
    b: &Shared,
    id: &str,
    action: fn(Version) -> &'static str,
    f: F,
) -> Result<CallAnswer, ApiError>
where
    F: FnOnce(ChargerHandle) -> Fut,
    Fut: std::future::Future<Output = Result<ocpp_central::Answer, CallError>>,
{
    let handle = connected(b, id).await?;
    let version = handle.version();
    let action = action(version);
    let t0 = Instant::now();
    let result = f(handle).await;
    let answer = match result {
        Ok(answer) => answer,
        Err(e) => {
            b.metrics().message_out(version, action, t0.elapsed());
            return Err(call_failed(b, version, action, e));
        }
    };
    let action = answer.response.action();
    b.metrics().message_out(version, action, t0.elapsed());
    let response: Value = serde_json::from_str(&answer.response.to_json()).unwrap_or(Value::Null);
    b.log_call(id, action, Some(&answer.status)).await;
    Ok(CallAnswer {
        action: action.to_owned(),
        status: Some(answer.status),
        response,
    })
}

/// The handle of connected charger `id`, or 409 (known, offline) / 404 (unknown).
/// A 500 for a failure of the central system itself.
pub(crate) fn internal(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code, message)
}

pub(crate) async fn connected(b: &Shared, id: &str) -> Result<ChargerHandle, ApiError> {
    if let Some(handle) = b.chargers().get(id).filter(|h| h.is_connected()) {
        return Ok(handle);
    }
    b.flush().await;
    Err(if b.db().charger(id).await?.is_some() {
        ApiError::new(
            StatusCode::CONFLICT,
            "charger_offline",
            format!("charger {id:?} is not connected"),
        )
    } else {
        unknown_charger(id)
    })
}

/// The API error for a failed central call.
pub(crate) fn call_failed(b: &Shared, version: Version, action: &str, e: CallError) -> ApiError {
    let (status, code) = match &e {
        CallError::Timeout => (StatusCode::GATEWAY_TIMEOUT, "charger_timeout"),
        CallError::CallError { .. } => (StatusCode::BAD_GATEWAY, "charger_error"),
        CallError::InvalidResponse(_) => (StatusCode::BAD_GATEWAY, "invalid_answer"),
        CallError::Disconnected => (StatusCode::CONFLICT, "charger_offline"),
        CallError::BootRejected => (StatusCode::CONFLICT, "charger_offline"),
        CallError::Refused(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        CallError::QueueFull(_) => (StatusCode::SERVICE_UNAVAILABLE, "charger_busy"),
        _ => (StatusCode::BAD_GATEWAY, "charger_error"),
    };
    b.metrics().error("call", code);
    let mut err = ApiError::new(status, code, format!("{action}: {e}"));
    if let CallError::CallError {
        code,
        description,
        details,
    } = &e
    {
        err = err.with_details(json!({
            "errorCode": code.as_str(version),
            "errorDescription": description,
            "errorDetails": serde_json::from_str::<Value>(details).unwrap_or(Value::Null),
        }));
    }
    err
}

fn version_of(b: &Shared, id: &str) -> Option<Version> {
    b.chargers().get(id).map(|h| h.version())
}

/// Starts charging: RemoteStartTransaction (1.6) or RequestStartTransaction (2.x).
#[utoipa::path(post, path = "/api/chargers/{id}/start", params(("id" = String, Path, description = "Charger identity")),
    request_body = StartRequest, responses(
    (status = 200, description = "The charger's answer", body = CallAnswer),
    (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn start(
    State(b): State<Shared>,
    P(id): P<String>,
    Body(req): Body<StartRequest>,
) -> Result<Json<CallAnswer>, ApiError> {
    let evse = req.evse.or(req.connector);
    let token = req.id_tag;
    Ok(Json(
        command(
            &b,
            &id,
            |v| {
                if v == Version::V16 {
                    "RemoteStartTransaction"
                } else {
                    "RequestStartTransaction"
                }
            },
            |h| async move { h.remote_start(evse, &token).await },
        )
        .await?,
    ))
}

/// Stops a session: RemoteStopTransaction (1.6) or RequestStopTransaction (2.x).
#[utoipa::path(post, path = "/api/chargers/{id}/stop", params(("id" = String, Path, description = "Charger identity")),
    request_body = StopRequest, responses(
    (status = 200, description = "The charger's answer", body = CallAnswer),
    (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn stop(
    State(b): State<Shared>,
    P(id): P<String>,
    Body(req): Body<StopRequest>,
) -> Result<Json<CallAnswer>, ApiError> {
    let transaction_id = match (req.transaction_id, req.session_id) {
        (Some(t), _) => t,
        (None, Some(s)) => {
            let session = b.db().session(s).await?.ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_session",
                    format!("no session {s}"),
                )
            })?;
            if session.charger != id {
                return Err(ApiError::bad(
                    "invalid_request",
                    format!("session {s} runs on {}, not {id}", session.charger),
                ));
            }
            session.transaction_id
        }
        (None, None) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                "give transactionId or sessionId",
            ))
        }
    };
    Ok(Json(
        command(
            &b,
            &id,
            |v| {
                if v == Version::V16 {
                    "RemoteStopTransaction"
                } else {
                    "RequestStopTransaction"
                }
            },
            |h| async move { h.remote_stop(&transaction_id).await },
        )
        .await?,
    ))
}

/// Resets a charger.
#[utoipa::path(post, path = "/api/chargers/{id}/reset", params(("id" = String, Path, description = "Charger identity")),
    request_body = ResetRequest, responses((status = 200, body = CallAnswer), (status = 400, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn reset(
    State(b): State<Shared>,
    P(id): P<String>,
    Body(req): Body<ResetRequest>,
) -> Result<Json<CallAnswer>, ApiError> {
    let kind = match req.kind.as_deref() {
        None | Some("Soft") | Some("OnIdle") => ResetKind::Graceful,
        Some("Hard") | Some("Immediate") => ResetKind::Immediate,
        Some(other) => {
            return Err(ApiError::bad(
                "invalid_request",
                format!("reset type must be Soft, Hard, OnIdle or Immediate, not {other:?}"),
            ))
        }
    };
    Ok(Json(
        command(
            &b,
            &id,
            |_| "Reset",
            |h| async move { h.reset(kind, None).await },
        )
        .await?,
    ))
}

fn require_version(b: &Shared, id: &str, want_16: bool, what: &str) -> Result<(), ApiError> {
    match version_of(b, id) {
        Some(v) if (v == Version::V16) != want_16 => Err(ApiError::bad(
            "unsupported_for_version",
            format!(
                "{what} is for OCPP {} chargers; {id} speaks {v}",
                if want_16 { "1.6" } else { "2.x" }
            ),
        )),
        _ => Ok(()),
    }
}

/// Reads 1.6 configuration keys (GetConfiguration).
#[utoipa::path(get, path = "/api/chargers/{id}/configuration", params(("id" = String, Path, description = "Charger identity"), ConfigurationQuery),
    responses((status = 200, body = CallAnswer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn get_configuration(
    State(b): State<Shared>,
    P(id): P<String>,
    Q(q): Q<ConfigurationQuery>,
) -> Result<Json<CallAnswer>, ApiError> {
    require_version(&b, &id, true, "configuration (use /variables/get on 2.x)")?;
    let payload = match q.keys {
        Some(keys) => {
            json!({ "key": keys.split(',').map(str::trim).filter(|k| !k.is_empty()).collect::<Vec<_>>() })
        }
        None => json!({}),
    };
    Ok(Json(
        central_call(&b, &id, "GetConfiguration", payload).await?,
    ))
}

/// Changes a 1.6 configuration key (ChangeConfiguration).
#[utoipa::path(post, path = "/api/chargers/{id}/configuration", params(("id" = String, Path, description = "Charger identity")),
    request_body = ChangeConfigurationBody, responses((status = 200, body = CallAnswer), (status = 400, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn change_configuration(
    State(b): State<Shared>,
    P(id): P<String>,
    Body(req): Body<ChangeConfigurationBody>,
) -> Result<Json<CallAnswer>, ApiError> {
    require_version(&b, &id, true, "configuration (use /variables/set on 2.x)")?;
    Ok(Json(
        central_call(
            &b,
            &id,
            "ChangeConfiguration",
            json!({ "key": req.key, "value": req.value }),
        )
        .await?,
    ))
}

fn component_variable(v: &VariableRef) -> Value {
    strip_nulls(json!({
        "component": {
            "name": v.component,
            "instance": v.component_instance,
            "evse": v.evse.map(|id| json!({ "id": id })),
        },
        "variable": { "name": v.variable, "instance": v.variable_instance },
        "attributeType": v.attribute,
    }))
}

/// Reads 2.x variables (GetVariables).
#[utoipa::path(post, path = "/api/chargers/{id}/variables/get", params(("id" = String, Path, description = "Charger identity")),
    request_body = VariablesBody, responses((status = 200, body = CallAnswer), (status = 400, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn get_variables(
    State(b): State<Shared>,
    P(id): P<String>,
    Body(req): Body<VariablesBody>,
) -> Result<Json<CallAnswer>, ApiError> {
    require_version(&b, &id, false, "variables (use /configuration on 1.6)")?;
    let data: Vec<Value> = req.variables.iter().map(component_variable).collect();
    Ok(Json(
        central_call(&b, &id, "GetVariables", json!({ "getVariableData": data })).await?,
    ))
}

/// Sets 2.x variables (SetVariables).
#[utoipa::path(post, path = "/api/chargers/{id}/variables/set", params(("id" = String, Path, description = "Charger identity")),
    request_body = VariablesBody, responses((status = 200, body = CallAnswer), (status = 400, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn set_variables(
    State(b): State<Shared>,
    P(id): P<String>,
    Body(req): Body<VariablesBody>,
) -> Result<Json<CallAnswer>, ApiError> {
    require_version(&b, &id, false, "variables (use /configuration on 1.6)")?;
    let mut data = Vec::with_capacity(req.variables.len());
    for v in &req.variables {
        let Some(value) = &v.value else {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("{}.{} has no value to set", v.component, v.variable),
            ));
        };
        let mut cv = component_variable(v);
        if let Some(obj) = cv.as_object_mut() {
            obj.insert("attributeValue".into(), json!(value));
        }
        data.push(cv);
    }
    Ok(Json(
        central_call(&b, &id, "SetVariables", json!({ "setVariableData": data })).await?,
    ))
}

/// Sends any central-system action of the charger's version with the given payload (checked
/// against the official schema before it goes out).
#[utoipa::path(post, path = "/api/chargers/{id}/call/{action}", params(
    ("id" = String, Path, description = "Charger identity"),
    ("action" = String, Path, description = "OCPP action, e.g. TriggerMessage, ClearCache, SetChargingProfile")),
    request_body(content = Object, description = "The OCPP request payload"),
    responses((status = 200, body = CallAnswer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn call_action(
    State(b): State<Shared>,
    P((id, action)): P<(String, String)>,
    Body(payload): Body<Value>,
) -> Result<Json<CallAnswer>, ApiError> {
    if let Some(v) = version_of(&b, &id) {
        match ocpp_central::message::central_may_send(v, &action) {
            None => {
                return Err(ApiError::bad(
                    "invalid_request",
                    format!("{action:?} is not an OCPP {v} action"),
                ))
            }
            Some(false) => {
                return Err(ApiError::bad(
                    "invalid_request",
                    format!("{action} is not sent by a central system in OCPP {v}"),
                ))
            }
            Some(true) => {}
        }
    }
    Ok(Json(central_call(&b, &id, &action, payload).await?))
}

/// Sessions, newest first.
#[utoipa::path(get, path = "/api/sessions", params(SessionsQuery), responses((status = 200, body = [SessionView]), (status = 400, body = ErrorBody)))]
async fn list_sessions(
    State(b): State<Shared>,
    Q(q): Q<SessionsQuery>,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    if let Some(s) = &q.status {
        if s != "active" && s != "completed" {
            return Err(ApiError::bad(
                "invalid_query",
                format!("status must be active or completed, not {s:?}"),
            ));
        }
    }
    // Sessions and meter values are projected behind: read once what is queued is written.
    b.flush().await;
    let rows = b
        .db()
        .sessions(&SessionFilter {
            charger: q.charger,
            status: q.status,
            limit: q.limit.unwrap_or(100).clamp(1, 1000),
        })
        .await?;
    let ids: Vec<i64> = rows.iter().map(|s| s.id).collect();
    let mut signed = b.signed().summary(&ids).await?;
    Ok(Json(
        rows.into_iter()
            .map(|s| {
                let id = s.id;
                let mut v = session_view(s, None);
                v.signed_values = signed.remove(&id).unwrap_or_default();
                v
            })
            .collect(),
    ))
}

/// One session with its meter samples.
#[utoipa::path(get, path = "/api/sessions/{id}", params(("id" = i64, Path, description = "Session id")),
    responses((status = 200, body = SessionView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_session(
    State(b): State<Shared>,
    P(id): P<i64>,
) -> Result<Json<SessionView>, ApiError> {
    b.flush().await;
    let s = b.db().session(id).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_session",
            format!("no session {id}"),
        )
    })?;
    let samples = b.samples_flushed(id).await?;
    let mut v = session_view(s, Some(samples));
    v.signed_values = b
        .signed()
        .summary(&[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    Ok(Json(v))
}

/// The ID tokens.
#[utoipa::path(get, path = "/api/tokens", responses((status = 200, body = [TokenBody])))]
async fn list_tokens(State(b): State<Shared>) -> Result<Json<Vec<TokenBody>>, ApiError> {
    Ok(Json(
        b.db()
            .tokens()
            .await?
            .into_iter()
            .map(|t| TokenBody {
                id_tag: t.id_token,
                status: t.status,
                note: t.note,
            })
            .collect(),
    ))
}

/// Adds or changes an ID token.
#[utoipa::path(post, path = "/api/tokens", request_body = TokenBody, responses((status = 200, body = TokenBody), (status = 400, body = ErrorBody)))]
async fn put_token(
    State(b): State<Shared>,
    axum::Extension(who): axum::Extension<Option<super::auth::Principal>>,
    Body(t): Body<TokenBody>,
) -> Result<Json<TokenBody>, ApiError> {
    if t.id_tag.is_empty() || t.id_tag.chars().count() > 36 {
        return Err(ApiError::bad(
            "invalid_request",
            "idTag must be 1 to 36 characters (1.6 chargers accept at most 20)",
        ));
    }
    if !["Accepted", "Blocked", "Expired", "Invalid"].contains(&t.status.as_str()) {
        return Err(ApiError::bad(
            "invalid_request",
            format!(
                "status must be Accepted, Blocked, Expired or Invalid, not {:?}",
                t.status
            ),
        ));
    }
    b.db()
        .upsert_token(&t.id_tag, &t.status, t.note.as_deref())
        .await?;
    // Managed local lists follow (local_list.rs), on every node of a cluster.
    b.local_lists().token_changed(&t.id_tag, Some(&t.status));
    lists_follow_elsewhere(&b, who);
    Ok(Json(t))
}

/// Removes an ID token.
#[utoipa::path(delete, path = "/api/tokens/{id_tag}", params(("id_tag" = String, Path, description = "The token")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_token(
    State(b): State<Shared>,
    axum::Extension(who): axum::Extension<Option<super::auth::Principal>>,
    P(id_tag): P<String>,
) -> Result<StatusCode, ApiError> {
    if b.db().delete_token(&id_tag).await? {
        b.local_lists().token_changed(&id_tag, None);
        lists_follow_elsewhere(&b, who);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_token",
            format!("no token {id_tag:?}"),
        ))
    }
}

/// Removes `null` members of objects (optional fields left out rather than sent as null,
/// which the schemas refuse).
fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}
