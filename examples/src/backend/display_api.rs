//! The HTTP routes of display messages ([`super::display`]), customer information
//! ([`super::customers`]) and the running cost's settings ([`super::cost`]):
//!
//! | route | role | what |
//! |---|---|---|
//! | `POST /api/chargers/{id}/display-messages` | operator | SetDisplayMessage on one charger |
//! | `GET /api/chargers/{id}/display-messages` | viewer | what the charger reports it holds (GetDisplayMessages and its report); offline: the stored rows |
//! | `DELETE /api/chargers/{id}/display-messages/{message}` | operator | ClearDisplayMessage |
//! | `POST /api/display-messages` | operator | SetDisplayMessage on many chargers (a list, or a site's) |
//! | `POST /api/chargers/{id}/customer-information` | operator | CustomerInformation: report and/or clear, the report stored |
//! | `GET /api/customers/{id_token}` | operator | the backend's data about a token: token, sessions, reservations, reports |
//! | `DELETE /api/customers/{id_token}` | admin | clears the backend's data about a token (`?chargers=true`: and on every connected 2.x charger) |
//!
//! Bad input is 400 before anything is sent: a message id outside 0 to 2³¹−1, content of
//! 0 or more than 1,024 characters (512 on a 2.0.1 charger: refused by the typed command),
//! a priority or format outside the 2.x words, an end before its start, more than
//! [`MAX_TARGETS`] chargers, a customer named by none or more than one identifier.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use ocpp_central::display::{CustomerRef, DisplayMessage};
use ocpp_central::ocpp_types::Version;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::api::{self, ApiError, Body, ErrorBody, SessionView, P, Q};
use super::customers::{customer_key, ChargerClear, ReportRow};
use super::display::{DisplayError, MessageRow};
use super::reservations::ReservationRow;
use super::Shared;

/// The most chargers one `POST /api/display-messages` addresses.
pub const MAX_TARGETS: usize = 1000;

/// The longest content accepted (2.1's bound; 2.0.1 chargers take 512).
pub const MAX_CONTENT: usize = 1024;

/// A display message to set.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageBody {
    /// The message id (0 to 2³¹−1); the same id replaces the charger's message.
    pub id: i64,
    /// `AlwaysFront`, `InFront` or `NormalCycle` (default).
    pub priority: Option<String>,
    /// Shown only in this state (`Charging`, `Faulted`, `Idle`, `Unavailable`).
    pub state: Option<String>,
    /// Shown from.
    pub starts_at: Option<DateTime<Utc>>,
    /// Shown until.
    pub ends_at: Option<DateTime<Utc>>,
    /// Shown during this transaction only.
    pub transaction_id: Option<String>,
    /// `ASCII`, `HTML`, `URI` or `UTF8` (default).
    pub format: Option<String>,
    /// The language (RFC 5646, at most 8 characters).
    pub language: Option<String>,
    /// The text.
    pub content: String,
}

/// A display message for many chargers.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BroadcastBody {
    /// These chargers.
    pub chargers: Option<Vec<String>>,
    /// The chargers of this site.
    pub site: Option<i64>,
    /// The message.
    pub message: MessageBody,
}

/// One charger's answer to a broadcast.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastResult {
    /// The charger.
    pub charger: String,
    /// Its answer word, `Offline`, or `Failed`.
    pub status: String,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// The answer to a clear.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClearAnswer {
    /// `Accepted` or `Unknown` (2.1 also `Rejected`).
    pub status: String,
    /// The stored row now.
    pub message: Option<MessageRow>,
}

/// A CustomerInformation to send: exactly one of `idToken`, `customerIdentifier`,
/// `certificate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerBody {
    /// The customer's token.
    pub id_token: Option<String>,
    /// Its type (default `ISO14443`).
    pub token_type: Option<String>,
    /// A vendor-specific customer identifier.
    pub customer_identifier: Option<String>,
    /// A certificate's hash data.
    pub certificate: Option<CertificateBody>,
    /// Ask for a report.
    pub report: bool,
    /// Ask the charger to clear what it holds.
    pub clear: bool,
}

/// A certificate's hash data.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateBody {
    /// `SHA256`, `SHA384` or `SHA512`.
    pub hash_algorithm: String,
    /// The issuer name's hash.
    pub issuer_name_hash: String,
    /// The issuer key's hash.
    pub issuer_key_hash: String,
    /// The serial number.
    pub serial_number: String,
}

/// The token row of a customer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerToken {
    /// Its status.
    pub status: String,
    /// Its note.
    pub note: Option<String>,
}

/// Everything the backend holds about a token.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerView {
    /// The token.
    pub id_token: String,
    /// Its row in the token table, if any.
    pub token: Option<CustomerToken>,
    /// The sessions it started (newest first).
    pub sessions: Vec<SessionView>,
    /// The reservations made for it (newest first).
    pub reservations: Vec<ReservationRow>,
    /// The customer-information reports stored about it (newest first).
    pub reports: Vec<ReportRow>,
}

/// What a clear did.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerCleared {
    /// The token row existed (and is gone).
    pub token_existed: bool,
    /// Each connected 2.x charger's answer (with `?chargers=true`).
    pub chargers: Vec<ChargerClear>,
}

/// The options of `DELETE /api/customers/{id_token}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ClearQuery {
    /// Also clear on every connected 2.x charger.
    pub chargers: Option<bool>,
}

/// The routes, merged into [`api::router`] (roles in [`api::ROUTES`]).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/api/chargers/{id}/display-messages",
            get(list_messages).post(set_message),
        )
        .route(
            "/api/chargers/{id}/display-messages/{message}",
            delete(clear_message),
        )
        .route("/api/display-messages", post(broadcast))
        .route(
            "/api/chargers/{id}/customer-information",
            post(customer_information),
        )
        .route(
            "/api/customers/{id_token}",
            get(customer).delete(clear_customer),
        )
        .route("/messages.js", get(panel_js))
}

/// The OpenAPI paths of these routes.
#[derive(OpenApi)]
#[openapi(
    paths(
        list_messages,
        set_message,
        clear_message,
        broadcast,
        customer_information,
        customer,
        clear_customer
    ),
    components(schemas(
        MessageBody,
        BroadcastBody,
        BroadcastResult,
        ClearAnswer,
        MessageRow,
        CustomerBody,
        CertificateBody,
        CustomerToken,
        CustomerView,
        CustomerCleared,
        ReportRow,
        ChargerClear
    ))
)]
pub struct DisplayDoc;

async fn panel_js() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/javascript; charset=utf-8",
        )],
        include_str!("../../dashboard/messages.js"),
    )
}

fn failed(b: &Shared, version: Version, action: &str, e: DisplayError) -> ApiError {
    match e {
        DisplayError::Db(e) => e.into(),
        DisplayError::Call(e) => api::call_failed(b, version, action, e),
        DisplayError::Busy => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many reports are awaited at once; try again",
        ),
        DisplayError::ReportTimeout(t) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "charger_timeout",
            format!("the charger's report did not complete within {t:?}"),
        ),
    }
}

const PRIORITIES: [&str; 3] = ["AlwaysFront", "InFront", "NormalCycle"];
const FORMATS: [&str; 5] = ["ASCII", "HTML", "URI", "UTF8", "QRCODE"];
const STATES: [&str; 6] = [
    "Charging",
    "Faulted",
    "Idle",
    "Unavailable",
    "Suspended",
    "Discharging",
];

/// Checks a message body and makes the message.
pub fn message_of(body: &MessageBody) -> Result<DisplayMessage, ApiError> {
    let bad = |m: String| ApiError::bad("invalid_body", m);
    let id = i32::try_from(body.id)
        .ok()
        .filter(|i| *i >= 0)
        .ok_or_else(|| bad("id must be 0 to 2147483647".into()))?;
    let n = body.content.chars().count();
    if n == 0 || n > MAX_CONTENT {
        return Err(bad(format!(
            "content must be 1 to {MAX_CONTENT} characters"
        )));
    }
    let priority = body
        .priority
        .clone()
        .unwrap_or_else(|| "NormalCycle".into());
    if !PRIORITIES.contains(&priority.as_str()) {
        return Err(bad(format!("priority must be one of {PRIORITIES:?}")));
    }
    let format = body.format.clone().unwrap_or_else(|| "UTF8".into());
    if !FORMATS.contains(&format.as_str()) {
        return Err(bad(format!("format must be one of {FORMATS:?}")));
    }
    if let Some(s) = &body.state {
        if !STATES.contains(&s.as_str()) {
            return Err(bad(format!("state must be one of {STATES:?}")));
        }
    }
    if let (Some(s), Some(e)) = (body.starts_at, body.ends_at) {
        if e <= s {
            return Err(bad("endsAt must be after startsAt".into()));
        }
    }
    if body
        .language
        .as_ref()
        .is_some_and(|l| l.chars().count() > 8)
    {
        return Err(bad("language must be at most 8 characters".into()));
    }
    if body
        .transaction_id
        .as_ref()
        .is_some_and(|t| t.chars().count() > 36)
    {
        return Err(bad("transactionId must be at most 36 characters".into()));
    }
    Ok(DisplayMessage {
        id,
        priority,
        state: body.state.clone(),
        start: body.starts_at,
        end: body.ends_at,
        transaction_id: body.transaction_id.clone(),
        format,
        language: body.language.clone(),
        content: body.content.clone(),
        display: None,
    })
}

/// Sets a display message on a charger (SetDisplayMessage); the row carries its answer.
#[utoipa::path(post, path = "/api/chargers/{id}/display-messages", params(("id" = String, Path, description = "Charger identity")),
    request_body = MessageBody, responses(
    (status = 200, body = MessageRow), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn set_message(
    State(b): State<Shared>,
    P(id): P<String>,
    Body(body): Body<MessageBody>,
) -> Result<Json<MessageRow>, ApiError> {
    let m = message_of(&body)?;
    let h = api::connected(&b, &id).await?;
    b.displays()
        .set(&h, &m)
        .await
        .map(Json)
        .map_err(|e| failed(&b, h.version(), "SetDisplayMessage", e))
}

/// The messages a charger holds: asked from it (GetDisplayMessages, waiting for its
/// report) when connected, else the stored rows.
#[utoipa::path(get, path = "/api/chargers/{id}/display-messages", params(("id" = String, Path, description = "Charger identity")),
    responses((status = 200, body = [MessageRow]), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody),
    (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn list_messages(
    State(b): State<Shared>,
    P(id): P<String>,
) -> Result<Json<Vec<MessageRow>>, ApiError> {
    match b.chargers().get(&id).filter(|h| h.is_connected()) {
        Some(h) if h.version() != Version::V16 => b
            .displays()
            .refresh(&h)
            .await
            .map(Json)
            .map_err(|e| failed(&b, h.version(), "GetDisplayMessages", e)),
        _ => {
            if b.chargers().get(&id).is_none() && b.db().charger(&id).await?.is_none() {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_charger",
                    format!("no charger {id:?}"),
                ));
            }
            Ok(Json(b.displays().list(&id).await?))
        }
    }
}

/// Clears a display message on a charger (ClearDisplayMessage).
#[utoipa::path(delete, path = "/api/chargers/{id}/display-messages/{message}", params(
    ("id" = String, Path, description = "Charger identity"), ("message" = i64, Path, description = "Message id")),
    responses((status = 200, body = ClearAnswer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn clear_message(
    State(b): State<Shared>,
    P((id, message)): P<(String, i64)>,
) -> Result<Json<ClearAnswer>, ApiError> {
    let Ok(message_id) = i32::try_from(message) else {
        return Err(ApiError::bad("invalid_path", "message must be a 32-bit id"));
    };
    let h = api::connected(&b, &id).await?;
    let status = b
        .displays()
        .clear(&h, message_id)
        .await
        .map_err(|e| failed(&b, h.version(), "ClearDisplayMessage", e))?;
    let message = b.displays().get(&id, message).await?;
    Ok(Json(ClearAnswer { status, message }))
}

/// Sets a display message on many chargers: those listed, or a site's; each answers on its
/// own (`Offline` when not connected). On a cluster each charger's message is set by the
/// node holding it (the charger's own `POST /api/chargers/{id}/display-messages` run there),
/// with the same answers and timeouts as here.
#[utoipa::path(post, path = "/api/display-messages", request_body = BroadcastBody, responses(
    (status = 200, body = [BroadcastResult]), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 503, body = ErrorBody)))]
async fn broadcast(
    State(b): State<Shared>,
    axum::Extension(who): axum::Extension<Option<super::auth::Principal>>,
    Body(body): Body<BroadcastBody>,
) -> Result<Json<Vec<BroadcastResult>>, ApiError> {
    let m = message_of(&body.message)?;
    let mut targets: Vec<String> = body.chargers.clone().unwrap_or_default();
    if let Some(site) = body.site {
        if b.sites().get(site).is_none() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no site {site}"),
            ));
        }
        targets.extend(b.sites().chargers_of(site));
    }
    targets.sort();
    targets.dedup();
    if targets.is_empty() || targets.len() > MAX_TARGETS {
        return Err(ApiError::bad(
            "invalid_body",
            format!("give 1 to {MAX_TARGETS} chargers (a list or a site with chargers)"),
        ));
    }
    let located = api::locate(&b, &targets).await?;
    let message = std::sync::Arc::new(serde_json::to_value(&body.message).map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    })?);
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(super::cost::MAX_PARALLEL));
    let mut tasks = tokio::task::JoinSet::new();
    for (charger, target) in targets.into_iter().zip(located) {
        let b = b.clone();
        let m = m.clone();
        let who = who.clone();
        let message = message.clone();
        let semaphore = semaphore.clone();
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await.ok();
            let failed = |error: String| BroadcastResult {
                charger: charger.clone(),
                status: "Failed".into(),
                error: Some(error),
            };
            let offline = || BroadcastResult {
                charger: charger.clone(),
                status: "Offline".into(),
                error: None,
            };
            match target {
                api::Target::Offline => offline(),
                api::Target::Here(h) => match b.displays().set(&h, &m).await {
                    Ok(row) => BroadcastResult {
                        charger: charger.clone(),
                        status: row.status,
                        error: None,
                    },
                    Err(e) => failed(e.to_string()),
                },
                api::Target::Node(node) => {
                    let Some(who) = who else {
                        return failed("no authenticated operator to act for".into());
                    };
                    let uri = api::charger_path(&charger, "/display-messages");
                    match api::run_on_node(&b, &node, &who, "POST", uri, &message).await {
                        Ok((status, row)) if status.is_success() => BroadcastResult {
                            charger: charger.clone(),
                            status: row["status"].as_str().unwrap_or("Failed").to_owned(),
                            error: None,
                        },
                        // It went away between the lookup and the call.
                        Ok((_, e)) if e["error"]["code"] == "charger_offline" => offline(),
                        Ok((_, e)) => failed(
                            e["error"]["message"]
                                .as_str()
                                .map_or_else(|| e.to_string(), str::to_owned),
                        ),
                        Err(e) => failed(e.message().to_owned()),
                    }
                }
            }
        });
    }
    let mut out = Vec::new();
    while let Some(r) = tasks.join_next().await {
        if let Ok(r) = r {
            out.push(r);
        }
    }
    out.sort_by(|a, b| a.charger.cmp(&b.charger));
    Ok(Json(out))
}

fn customer_of(body: &CustomerBody) -> Result<CustomerRef, ApiError> {
    let mut found = Vec::new();
    if let Some(t) = &body.id_token {
        let n = t.chars().count();
        if n == 0 || n > 36 {
            return Err(ApiError::bad(
                "invalid_body",
                "idToken must be 1 to 36 characters",
            ));
        }
        found.push(CustomerRef::IdToken {
            id_token: t.clone(),
            token_type: body.token_type.clone().unwrap_or_else(|| "ISO14443".into()),
        });
    }
    if let Some(i) = &body.customer_identifier {
        let n = i.chars().count();
        if n == 0 || n > 64 {
            return Err(ApiError::bad(
                "invalid_body",
                "customerIdentifier must be 1 to 64 characters",
            ));
        }
        found.push(CustomerRef::Identifier(i.clone()));
    }
    if let Some(c) = &body.certificate {
        found.push(CustomerRef::Certificate {
            hash_algorithm: c.hash_algorithm.clone(),
            issuer_name_hash: c.issuer_name_hash.clone(),
            issuer_key_hash: c.issuer_key_hash.clone(),
            serial_number: c.serial_number.clone(),
        });
    }
    if found.len() != 1 {
        return Err(ApiError::bad(
            "invalid_body",
            "name the customer by exactly one of idToken, customerIdentifier, certificate",
        ));
    }
    if !body.report && !body.clear {
        return Err(ApiError::bad(
            "invalid_body",
            "ask for a report, a clear or both",
        ));
    }
    found
        .pop()
        .ok_or_else(|| ApiError::bad("invalid_body", "no customer"))
}

/// Asks a charger what it holds about a customer and/or to clear it (CustomerInformation);
/// the report's parts are assembled and stored.
#[utoipa::path(post, path = "/api/chargers/{id}/customer-information", params(("id" = String, Path, description = "Charger identity")),
    request_body = CustomerBody, responses(
    (status = 200, body = ReportRow), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 503, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn customer_information(
    State(b): State<Shared>,
    P(id): P<String>,
    Body(body): Body<CustomerBody>,
) -> Result<Json<ReportRow>, ApiError> {
    let who = customer_of(&body)?;
    let h = api::connected(&b, &id).await?;
    b.customers()
        .request(&h, &who, body.report, body.clear)
        .await
        .map(Json)
        .map_err(|e| failed(&b, h.version(), "CustomerInformation", e))
}

/// Everything the backend holds about a token, in one answer.
#[utoipa::path(get, path = "/api/customers/{id_token}", params(("id_token" = String, Path, description = "The token")),
    responses((status = 200, body = CustomerView), (status = 400, body = ErrorBody)))]
async fn customer(
    State(b): State<Shared>,
    P(id_token): P<String>,
) -> Result<Json<CustomerView>, ApiError> {
    b.flush().await;
    let token = b.db().token(&id_token).await?.map(|t| CustomerToken {
        status: t.status,
        note: t.note,
    });
    let mut sessions = Vec::new();
    for id in b.customers().session_ids(&id_token).await? {
        if let Some(s) = b.db().session(id).await? {
            sessions.push(api::session_view(s, None));
        }
    }
    let mut reservations = Vec::new();
    for id in b.customers().reservation_ids(&id_token).await? {
        if let Some(r) = b.reservations().get(id).await? {
            reservations.push(r);
        }
    }
    let key = customer_key(&CustomerRef::IdToken {
        id_token: id_token.clone(),
        token_type: String::new(),
    });
    let reports = b.customers().reports(&key).await?;
    Ok(Json(CustomerView {
        id_token,
        token,
        sessions,
        reservations,
        reports,
    }))
}

/// Clears the backend's data about a token (the token row, the reports, the token in its
/// sessions and reservations) and, with `?chargers=true`, on every connected 2.x charger.
#[utoipa::path(delete, path = "/api/customers/{id_token}", params(("id_token" = String, Path, description = "The token"), ClearQuery),
    responses((status = 200, body = CustomerCleared), (status = 400, body = ErrorBody)))]
async fn clear_customer(
    State(b): State<Shared>,
    axum::Extension(who): axum::Extension<Option<super::auth::Principal>>,
    P(id_token): P<String>,
    Q(q): Q<ClearQuery>,
) -> Result<Json<CustomerCleared>, ApiError> {
    b.flush().await;
    let token_existed = b.customers().clear_token(&id_token).await?;
    let mut chargers = if q.chargers.unwrap_or(false) {
        b.customers()
            .clear_on_chargers(b.chargers(), &id_token)
            .await
    } else {
        Vec::new()
    };
    // On a cluster, the chargers of the other nodes too, each by its node.
    if let (true, Some(_), Some(who)) = (q.chargers.unwrap_or(false), b.cluster(), who) {
        // The connected 2.x chargers (a 1.6 charger has no CustomerInformation: skipped,
        // as here).
        let elsewhere: Vec<String> = b
            .db()
            .chargers()
            .await?
            .into_iter()
            .filter(|c| c.connected && c.version.as_deref().is_some_and(|v| v != "1.6"))
            .map(|c| c.identity)
            .filter(|id| b.chargers().get(id).is_none_or(|h| !h.is_connected()))
            .collect();
        let located = api::locate(&b, &elsewhere).await?;
        let body = serde_json::json!({ "idToken": id_token, "report": false, "clear": true });
        for (charger, target) in elsewhere.into_iter().zip(located) {
            let api::Target::Node(node) = target else {
                continue;
            };
            let uri = api::charger_path(&charger, "/customer-information");
            let status = match api::run_on_node(&b, &node, &who, "POST", uri, &body).await {
                Ok((s, row)) if s.is_success() => {
                    row["status"].as_str().unwrap_or("Failed").to_owned()
                }
                Ok((_, e)) => format!(
                    "Failed: {}",
                    e["error"]["message"].as_str().unwrap_or("no answer")
                ),
                Err(e) => format!("Failed: {}", e.message()),
            };
            chargers.push(ChargerClear { charger, status });
        }
        chargers.sort_by(|a, b| a.charger.cmp(&b.charger));
    }
    Ok(Json(CustomerCleared {
        token_existed,
        chargers,
    }))
}
