//! The HTTP routes of drivers ([`super::accounts`]), billing ([`super::ledger`],
//! [`super::payments`]) and fleets.
//!
//! Driver routes (a driver session; a driver sees and controls only its own sessions and
//! tokens: anyone else's session answers 404, as if it did not exist):
//!
//! | route | what |
//! |---|---|
//! | `POST /api/driver/signup` | public: a new account (and its session) |
//! | `POST /api/driver/login` | public: signs in (cookie `ocpp_driver`) |
//! | `POST /api/driver/logout` | signs out |
//! | `GET /api/driver/me` | the account and the session's CSRF token |
//! | `PUT /api/driver/card` | puts a payment card on file (`null` removes it) |
//! | `GET`/`POST /api/driver/tokens`, `DELETE /api/driver/tokens/{id_token}` | the account's tokens |
//! | `GET /api/driver/chargers`, `GET /api/driver/sites` | in [`super::catalog_api`] |
//! | `POST /api/driver/start` | a hold on the card, then a remote start with the app token |
//! | `GET /api/driver/sessions`, `GET /api/driver/sessions/{id}` | own sessions with the cost so far, power and energy over time |
//! | `POST /api/driver/sessions/{id}/stop` | remote stop of an own session |
//! | `GET /api/driver/sessions/{id}/receipt`, `.../receipt.pdf` | a printable HTML receipt, the same as PDF |
//! | `GET /api/driver/payments` | own payments |
//!
//! Operator routes: `GET /api/accounts` (viewer; `?search=&offset=&limit=`),
//! `PUT /api/accounts/{id}/status` (admin; block or unblock), `PUT /api/accounts/{id}/fleet`
//! (admin), `GET /api/accounts/{id}/ledger` and `GET /api/accounts/{id}/tokens` (viewer), `GET`/`POST /api/fleets`,
//! `POST /api/fleets/{id}/vehicles` (admin), `GET /api/fleets/{id}/invoice?month=YYYY-MM`
//! (viewer; printable HTML) and `GET /api/fleets/{id}/invoice.pdf?month=YYYY-MM` (PDF), `POST /api/sessions/{id}/refund` (admin),
//! `GET /api/ledger/audit` (viewer), and the provider's `POST /api/payments/webhook`
//! (public, HMAC-signed).

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Extension, Json, Router};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use ocpp_central::ocpp_types::Version;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::accounts::{AccountInfo, AccountsError, Driver, DriverToken, Fleet, Vehicle};
use super::api::{self, ApiError, Body, CallAnswer, ErrorBody, P, Q};
use super::auth::{ClientAddr, Secret};
use super::db::{SessionRow, SESSION_COLUMNS};
use super::ledger::Journal;
use super::payments::{BillingError, PaymentRow, ProviderError};
use super::Shared;

/// The routes, merged into [`api::router`] (access in [`api::ROUTES`]).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/driver/signup", post(signup))
        .route("/api/driver/login", post(login))
        .route("/api/driver/logout", post(logout))
        .route("/api/driver/me", get(me))
        .route("/api/driver/card", put(set_card))
        .route("/api/driver/tokens", get(tokens).post(add_token))
        .route("/api/driver/tokens/{id_token}", delete(remove_token))
        .route("/api/driver/start", post(start))
        .route("/api/driver/sessions", get(sessions))
        .route("/api/driver/sessions/{id}", get(session))
        .route("/api/driver/sessions/{id}/stop", post(stop))
        .route("/api/driver/sessions/{id}/receipt", get(receipt))
        .route("/api/driver/sessions/{id}/receipt.pdf", get(receipt_pdf))
        .route("/api/driver/payments", get(payments))
        .route("/api/accounts", get(list_accounts))
        .route("/api/accounts/{id}/status", put(set_status))
        .route("/api/accounts/{id}/fleet", put(set_fleet))
        .route("/api/accounts/{id}/ledger", get(account_ledger))
        .route("/api/fleets", get(fleets).post(create_fleet))
        .route("/api/fleets/{id}/vehicles", post(add_vehicle))
        .route("/api/fleets/{id}/invoice", get(invoice))
        .route("/api/fleets/{id}/invoice.pdf", get(invoice_pdf))
        .route("/api/accounts/{id}/tokens", get(account_tokens))
        .route("/api/sessions/{id}/refund", post(refund))
        .route("/api/ledger/audit", get(audit))
        .route("/api/payments/webhook", post(webhook))
        .route("/api/chargers/{id}/qr", get(qr_sheet))
        .route("/api/analytics/daily", get(analytics_daily))
        .route("/api/analytics/health", get(analytics_health))
        .route("/analytics.js", get(analytics_js))
        .route("/accounts.js", get(accounts_js))
        .route("/app", get(app_page))
        .route("/app/app.js", get(app_js))
        .route("/app/app.css", get(app_css))
}

/// A printable sheet of QR codes, one per connector of charger `id` (its last known
/// connectors; at least connector 1), each the driver app's deep link
/// `http://<host>/app#charger=<id>&evse=<n>` on the `Host` the request came to.
#[utoipa::path(get, path = "/api/chargers/{id}/qr", params(("id" = String, Path, description = "Charger identity")),
    responses((status = 200, description = "HTML with inline SVG", content_type = "text/html"), (status = 404, body = ErrorBody)))]
async fn qr_sheet(
    State(b): State<Shared>,
    P(id): P<String>,
    headers: HeaderMap,
) -> Result<Html<String>, ApiError> {
    b.flush().await;
    if b.db().charger(&id).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_charger",
            format!("no charger {id:?}"),
        ));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let mut evses: Vec<i64> = b
        .db()
        .connectors(&id)
        .await?
        .into_iter()
        .map(|c| c.evse)
        .filter(|e| *e > 0)
        .collect();
    evses.dedup();
    if evses.is_empty() {
        evses.push(1);
    }
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=en><meta charset=utf-8><title>QR codes {0}</title><style>{PRINT_CSS}\
         .qr{{display:inline-block;text-align:center;margin:1rem;page-break-inside:avoid}}.qr svg{{width:12rem;height:12rem}}</style>\
         <h1>Charge here: {0}</h1>",
        esc(&id)
    );
    for evse in evses {
        let url = format!("http://{host}/app#charger={}&evse={evse}", urlencode(&id));
        let code =
            qrcode::QrCode::new(url.as_bytes()).map_err(|e| api::internal("qr", e.to_string()))?;
        let svg = code
            .render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .build();
        let _ = write!(
            h,
            "<div class=qr data-evse={evse}>{svg}<p>Connector {evse}<br><small>{}</small></p></div>",
            esc(&url)
        );
    }
    h.push_str("<p><button onclick=print()>Print</button></p></html>");
    Ok(Html(h))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The window of `GET /api/analytics/daily`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DaysQuery {
    /// Days back, 1 to 366 (default 14).
    pub days: Option<i64>,
}

/// Sessions, energy and revenue per day ([`super::analytics::daily`]).
#[utoipa::path(get, path = "/api/analytics/daily", params(DaysQuery),
    responses((status = 200, body = [super::analytics::DayStat])))]
async fn analytics_daily(
    State(b): State<Shared>,
    Q(q): Q<DaysQuery>,
) -> Result<Json<Vec<super::analytics::DayStat>>, ApiError> {
    b.flush().await;
    Ok(Json(
        super::analytics::daily(b.db(), q.days.unwrap_or(14), Utc::now()).await?,
    ))
}

/// The filter of `GET /api/analytics/health`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HealthQuery {
    /// Identity contains this.
    pub search: Option<String>,
    /// Skip this many.
    pub offset: Option<usize>,
    /// At most this many (1 to 500, default 50).
    pub limit: Option<usize>,
}

/// Charger health: counts of online, down and degrading chargers and one page of chargers,
/// worst first ([`super::analytics::health`]).
#[utoipa::path(get, path = "/api/analytics/health", params(HealthQuery),
    responses((status = 200, body = super::analytics::Health)))]
async fn analytics_health(
    State(b): State<Shared>,
    Q(q): Q<HealthQuery>,
) -> Result<Json<super::analytics::Health>, ApiError> {
    b.flush().await;
    Ok(Json(
        super::analytics::health(
            b.db(),
            Utc::now(),
            q.search.as_deref().unwrap_or(""),
            q.offset.unwrap_or(0),
            q.limit.unwrap_or(50),
        )
        .await?,
    ))
}

/// The driver app (`examples/driver/`): static, mobile-first, no build step.
async fn app_page() -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "no-cache")],
        Html(include_str!("../../driver/index.html")),
    )
}

async fn accounts_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../dashboard/accounts.js"),
    )
}

async fn analytics_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../dashboard/analytics.js"),
    )
}

async fn app_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../driver/app.js"),
    )
}

async fn app_css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../driver/app.css"),
    )
}

/// The OpenAPI paths of these routes.
#[derive(OpenApi)]
#[openapi(
    paths(
        signup,
        login,
        logout,
        me,
        set_card,
        tokens,
        add_token,
        remove_token,
        start,
        sessions,
        session,
        stop,
        receipt,
        payments,
        list_accounts,
        set_status,
        set_fleet,
        account_ledger,
        fleets,
        create_fleet,
        add_vehicle,
        invoice,
        invoice_pdf,
        receipt_pdf,
        account_tokens,
        refund,
        audit,
        webhook,
        qr_sheet,
        analytics_daily,
        analytics_health
    ),
    components(schemas(
        SignUp,
        SignIn,
        DriverMe,
        CardBody,
        NewToken,
        StartBody,
        Started,
        DriverSession,
        Point,
        AccountPage,
        StatusBody,
        FleetBody,
        NewFleet,
        NewVehicle,
        RefundBody,
        Audit,
        AccountInfo,
        DriverToken,
        Fleet,
        Vehicle,
        PaymentRow,
        Journal
    ))
)]
pub struct AccountsDoc;

// ------------------------------------------------------------------ errors

impl From<AccountsError> for ApiError {
    fn from(e: AccountsError) -> ApiError {
        use AccountsError as E;
        let (status, code) = match &e {
            E::Db(_) | E::Auth(_) => {
                tracing::error!("accounts: {e}");
                (StatusCode::INTERNAL_SERVER_ERROR, "database")
            }
            E::InvalidEmail
            | E::InvalidName
            | E::InvalidToken
            | E::InvalidStatus
            | E::Invalid(_)
            | E::TooManyTokens
            | E::AppToken => (StatusCode::BAD_REQUEST, "invalid_request"),
            E::EmailTaken | E::FleetExists(_) | E::TokenTaken(_) => {
                (StatusCode::CONFLICT, "conflict")
            }
            E::UnknownAccount(_) | E::UnknownFleet(_) | E::UnknownToken(_) => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            E::Wrong => (StatusCode::UNAUTHORIZED, "wrong_credentials"),
            E::TooMany(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_failures"),
        };
        // Password rules come through `Auth`: a bad password is the client's fault.
        if let E::Auth(super::auth::AuthError::InvalidPassword) = &e {
            return ApiError::bad("invalid_request", e.to_string());
        }
        ApiError::new(status, code, e.to_string())
    }
}

impl From<BillingError> for ApiError {
    fn from(e: BillingError) -> ApiError {
        match e {
            BillingError::Accounts(e) => e.into(),
            BillingError::Db(e) => e.into(),
            BillingError::Provider(ProviderError::Declined(code)) => ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "payment_declined",
                format!("the card was declined: {code}"),
            ),
            BillingError::Provider(ProviderError::Timeout) => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "payment_timeout",
                "the payment provider did not answer",
            ),
            BillingError::Provider(ProviderError::Invalid(m)) => {
                ApiError::bad("invalid_request", m)
            }
            BillingError::NoCard => ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "no_card",
                "put a payment card on file first (PUT /api/driver/card)",
            ),
            BillingError::Blocked => ApiError::new(
                StatusCode::FORBIDDEN,
                "account_blocked",
                "this account is blocked",
            ),
            BillingError::Unknown(what) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no {what}"))
            }
            BillingError::Ledger(e) => ApiError::bad("invalid_request", e.to_string()),
        }
    }
}

fn no_session(id: i64) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_session",
        format!("no session {id}"),
    )
}

// ------------------------------------------------------------------ sign-up and sign-in

/// A new driver account.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignUp {
    /// E-mail address (the sign-in name).
    pub email: String,
    /// Display name.
    pub name: String,
    /// 12 to 1024 characters.
    #[schema(value_type = String, format = Password)]
    pub password: Secret,
}

/// A driver's sign-in.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignIn {
    /// E-mail address.
    pub email: String,
    /// Password.
    #[schema(value_type = String, format = Password)]
    pub password: Secret,
}

/// The signed-in driver.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriverMe {
    /// The account.
    pub account: AccountInfo,
    /// The session's CSRF token (send it as `X-CSRF-Token` with every change).
    pub csrf_token: String,
}

fn with_cookie(body: impl IntoResponse, cookie: &str) -> Result<Response, ApiError> {
    let cookie =
        HeaderValue::from_str(cookie).map_err(|_| api::internal("internal", "bad cookie"))?;
    let mut resp = body.into_response();
    resp.headers_mut().insert(header::SET_COOKIE, cookie);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

async fn signed_in(
    b: &Shared,
    addr: ClientAddr,
    email: &str,
    pw: &Secret,
) -> Result<Response, ApiError> {
    let login = b.accounts().sign_in(addr.0, email, pw).await?;
    let account = b.accounts().account(login.driver.account_id).await?;
    with_cookie(
        Json(DriverMe {
            account,
            csrf_token: login.driver.csrf.expose().to_owned(),
        }),
        &b.accounts().session_cookie(&login.token),
    )
}

/// Signs a driver up and in.
#[utoipa::path(post, path = "/api/driver/signup", request_body = SignUp, responses(
    (status = 200, body = DriverMe), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn signup(
    State(b): State<Shared>,
    addr: ClientAddr,
    Body(req): Body<SignUp>,
) -> Result<Response, ApiError> {
    b.accounts()
        .sign_up(&req.email, &req.name, &req.password)
        .await?;
    signed_in(&b, addr, &req.email, &req.password).await
}

/// Signs a driver in (sets the `ocpp_driver` cookie).
#[utoipa::path(post, path = "/api/driver/login", request_body = SignIn, responses(
    (status = 200, body = DriverMe), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn login(
    State(b): State<Shared>,
    addr: ClientAddr,
    Body(req): Body<SignIn>,
) -> Result<Response, ApiError> {
    signed_in(&b, addr, &req.email, &req.password).await
}

/// Signs the driver out.
#[utoipa::path(post, path = "/api/driver/logout", responses((status = 204)))]
async fn logout(
    State(b): State<Shared>,
    Extension(d): Extension<Driver>,
) -> Result<Response, ApiError> {
    b.accounts().sign_out(&d.session_id).await?;
    with_cookie(StatusCode::NO_CONTENT, &b.accounts().clear_cookie())
}

/// The signed-in driver.
#[utoipa::path(get, path = "/api/driver/me", responses((status = 200, body = DriverMe)))]
async fn me(
    State(b): State<Shared>,
    Extension(d): Extension<Driver>,
) -> Result<Json<DriverMe>, ApiError> {
    Ok(Json(DriverMe {
        account: b.accounts().account(d.account_id).await?,
        csrf_token: d.csrf.expose().to_owned(),
    }))
}

/// A payment card.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CardBody {
    /// The card number (12 to 19 digits); `null` removes the card.
    pub number: Option<String>,
}

/// Puts a payment card on file.
#[utoipa::path(put, path = "/api/driver/card", request_body = CardBody, responses(
    (status = 200, body = AccountInfo), (status = 400, body = ErrorBody)))]
async fn set_card(
    State(b): State<Shared>,
    Extension(d): Extension<Driver>,
    Body(req): Body<CardBody>,
) -> Result<Json<AccountInfo>, ApiError> {
    b.accounts()
        .set_card(d.account_id, req.number.as_deref())
        .await?;
    Ok(Json(b.accounts().account(d.account_id).await?))
}

// ------------------------------------------------------------------ tokens

/// An RFID token to link.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewToken {
    /// The token (1 to 36 printable ASCII characters; 20 for 1.6 chargers).
    pub id_token: String,
    /// A label.
    pub label: Option<String>,
}

/// The driver's tokens.
#[utoipa::path(get, path = "/api/driver/tokens", responses((status = 200, body = [DriverToken])))]
async fn tokens(
    State(b): State<Shared>,
    Extension(d): Extension<Driver>,
) -> Result<Json<Vec<DriverToken>>, ApiError> {
    Ok(Json(b.accounts().tokens(d.account_id).await?))
}

/// Links an RFID token to the driver's account.
#[utoipa::path(post, path = "/api/driver/tokens", request_body = NewToken, responses(
    (status = 201, body = DriverToken), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn add_token(
    State(b): State<Shared>,
    Extension(d): Extension<Driver>,
    Body(req): Body<NewToken>,
) -> Result<(StatusCode, Json<DriverToken>), ApiError> {
    let t = b
        .accounts()
        .add_token(d.account_id, &req.id_token, req.label.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(t)))
}

/// Unlinks one of the driver's RFID tokens.
#[utoipa::path(delete, path = "/api/driver/tokens/{id_token}", params(("id_token" = String, Path, description = "The token")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn remove_token(
    State(b): State<Shared>,
    Extension(d): Extension<Driver>,
    P(id_token): P<String>,
) -> Result<StatusCode, ApiError> {
    b.accounts().remove_token(d.account_id, &id_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------ start and stop

/// Where to charge.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartBody {
    /// The charger.
    pub charger: String,
    /// The EVSE (1.6 connector); absent: the charger chooses.
    pub evse: Option<i64>,
}

/// A start sent.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    /// The charger's answer.
    pub answer: CallAnswer,
    /// The pre-authorization hold, if one was put.
    pub payment: Option<PaymentRow>,
}

/// Starts charging with the app token: a pre-authorization hold on the card on file (a
/// fleet member without a card charges on the fleet's invoice), then RemoteStartTransaction
/// (1.6) / RequestStartTransaction (2.x). A refused start releases the hold.
#[utoipa::path(post, path = "/api/driver/start", request_body = StartBody, responses(
    (status = 200, body = Started), (status = 402, body = ErrorBody), (status = 403, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn start(
    State(b): State<Shared>,
    Extension(d): Extension<Driver>,
    Body(req): Body<StartBody>,
) -> Result<Json<Started>, ApiError> {
    let account = b.accounts().account(d.account_id).await?;
    if account.status != "active" {
        return Err(BillingError::Blocked.into());
    }
    if req
        .evse
        .is_some_and(|e| !(1..=i64::from(i32::MAX)).contains(&e))
    {
        return Err(ApiError::bad("invalid_request", "an EVSE is 1 to 2^31-1"));
    }
    let token = account
        .app_token
        .clone()
        .ok_or_else(|| api::internal("database", "the account has no app token"))?;
    // The charger must be there before any money is held.
    api::connected(&b, &req.charger).await?;
    let billing = b.billing();
    let payment = if account.card_last4.is_some() || account.fleet_id.is_none() {
        Some(
            billing
                .hold(d.account_id, &req.charger, &token, b.tariff().currency())
                .await?,
        )
    } else {
        None
    };
    let evse = req.evse.and_then(|e| i32::try_from(e).ok());
    let t = token.clone();
    let answer = api::command(
        &b,
        &req.charger,
        |v| {
            if v == Version::V16 {
                "RemoteStartTransaction"
            } else {
                "RequestStartTransaction"
            }
        },
        |h| async move { h.remote_start(evse, &t).await },
    )
    .await;
    let accepted = answer
        .as_ref()
        .is_ok_and(|a| a.status.as_deref() == Some("Accepted"));
    if !accepted {
        if let Some(p) = &payment {
            billing.cancel_hold(p).await?;
        }
    }
    let payment = match payment {
        Some(p) => Some(billing.payment(p.id).await?),
        None => None,
    };
    Ok(Json(Started {
        answer: answer?,
        payment,
    }))
}

/// A point of a session's chart.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Point {
    /// When.
    pub at: DateTime<Utc>,
    /// Power (W), if measured then.
    #[schema(value_type = Option<String>)]
    pub power_w: Option<Decimal>,
    /// Energy delivered since the start (Wh), if measured then.
    #[schema(value_type = Option<String>)]
    pub energy_wh: Option<Decimal>,
}

/// A driver's session.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriverSession {
    /// The session (cost so far while active).
    #[schema(value_type = Object)]
    pub session: serde_json::Value,
    /// Power and energy over time (only for one session).
    pub points: Vec<Point>,
    /// The payment, if any.
    pub payment: Option<PaymentRow>,
}

fn session_json(s: &SessionRow) -> serde_json::Value {
    serde_json::json!({
        "id": s.id,
        "charger": s.charger,
        "transactionId": s.transaction_id,
        "evse": s.evse,
        "connector": s.connector,
        "idToken": s.id_token,
        "startedAt": s.started_at,
        "endedAt": s.ended_at,
        "energyWh": super::decimal_json(s.energy_wh),
        "powerW": s.power_w.map(super::decimal_json),
        "cost": super::decimal_json(s.cost),
        "currency": s.currency,
        "status": s.status,
        "stopReason": s.stop_reason,
    })
}

/// The driver's own sessions, newest first (at most 100).
async fn own_sessions(b: &Shared, account: i64) -> Result<Vec<SessionRow>, ApiError> {
    b.flush().await;
    let rows = sqlx::query(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE id_token IN
         (SELECT id_token FROM driver_tokens WHERE account_id = $1) ORDER BY id DESC LIMIT 100"
    ))
    .bind(account)
    .fetch_all(b.db().reader())
    .await
    .map_err(|e| ApiError::from(super::DbError::from(e)))?;
    rows.into_iter()
        .map(|r| super::db::session_row(r).map_err(ApiError::from))
        .collect()
}

/// One of the driver's sessions, or 404 (also for anyone else's).
async fn own_session(b: &Shared, d: &Driver, id: i64) -> Result<SessionRow, ApiError> {
    b.flush().await;
    let s = b.db().session(id).await?.ok_or_else(|| no_session(id))?;
    let owner = match s.id_token.as_deref() {
        Some(t) => b.accounts().token_owner(t).await?,
        None => None,
    };
    if owner.is_some_and(|o| o.account_id == d.account_id) {
        Ok(s)
    } else {
        Err(no_session(id))
    }
}

/// The driver's sessions, newest first (at most 100), with the cost so far.
#[utoipa::path(get, path = "/api/driver/sessions", responses((status = 200, body = [DriverSession])))]
async fn sessions(
    State(b): State<Shared>,
    Extension(d): Extension<Driver>,
) -> Result<Json<Vec<DriverSession>>, ApiError> {
    let billing = b.billing();
    let mut out = Vec::new();
    for s in own_sessions(&b, d.account_id).await? {
        out.push(DriverSession {
            session: session_json(&s),
            points: Vec::new(),
            payment: billing.payment_of_session(s.id).await?,
        });
    }
    Ok(Json(out))
}

/// One of the driver's sessions with its power and energy over time.
#[utoipa::path(get, path = "/api/driver/sessions/{id}", params(("id" = i64, Path, description = "Session id")),
    responses((status = 200, body = DriverSession), (status = 404, body = ErrorBody)))]
async fn session(
    State(b): State<Shared>,
    Extension(d): Extension<Driver>,
    P(id): P<i64>,
) -> Result<Json<DriverSession>, ApiError> {
    let s = own_session(&b, &d, id).await?;
    let mut points: Vec<Point> = Vec::new();
    let start = s.meter_start_wh;
    for sample in b.samples(id).await? {
        if sample.phase.is_some() {
            continue;
        }
        let kilo = sample.unit.as_deref().is_some_and(|u| u.starts_with('k'));
        let value = if kilo {
            sample.value.checked_mul(Decimal::from(1000))
        } else {
            Some(sample.value)
        };
        let Some(value) = value else { continue };
        let point = match points.last_mut() {
            Some(p) if p.at == sample.timestamp => p,
            _ => {
                points.push(Point {
                    at: sample.timestamp,
                    power_w: None,
                    energy_wh: None,
                });
                let n = points.len() - 1;
                &mut points[n]
            }
        };
        match sample.measurand.as_str() {
            "Power.Active.Import" => point.power_w = Some(value),
            "Energy.Active.Import.Register" => {
                point.energy_wh = Some(match start {
                    Some(s0) => value.checked_sub(s0).unwrap_or(value),
                    None => value,
                })
            }
            _ => {}
        }
        if points.len() > 10_000 {
            break;
        }
    }
    Ok(Json(DriverSession {
        session: session_json(&s),
        points,
        payment: b.billing().payment_of_session(id).await?,
    }))
}

/// Stops one of the driver's running sessions.
#[utoipa::path(post, path = "/api/driver/sessions/{id}/stop", params(("id" = i64, Path, description = "Session id")),
    responses((status = 200, body = CallAnswer), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn stop(
    State(b): State<Shared>,
    Extension(d): Extension<Driver>,
    P(id): P<i64>,
) -> Result<Json<CallAnswer>, ApiError> {
    let s = own_session(&b, &d, id).await?;
    if s.status != "active" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "session_ended",
            format!("session {id} has ended"),
        ));
    }
    let tx = s.transaction_id.clone();
    Ok(Json(
        api::command(
            &b,
            &s.charger,
            |v| {
                if v == Version::V16 {
                    "RemoteStopTransaction"
                } else {
                    "RequestStopTransaction"
                }
            },
            |h| async move { h.remote_stop(&tx).await },
        )
        .await?,
    ))
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const PRINT_CSS: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}\
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ccc;padding:.4rem;text-align:left}\
.r{text-align:right}@media print{button{display:none}}";

fn kwh(wh: Decimal) -> String {
    (wh / Decimal::from(1000)).round_dp(3).to_string()
}

/// A printable HTML receipt of one of the driver's sessions.
#[utoipa::path(get, path = "/api/driver/sessions/{id}/receipt", params(("id" = i64, Path, description = "Session id")),
    responses((status = 200, description = "HTML", content_type = "text/html"), (status = 404, body = ErrorBody)))]
async fn receipt(
    State(b): State<Shared>,
    Extension(d): Extension<Driver>,
    P(id): P<i64>,
) -> Result<Html<String>, ApiError> {
    let s = own_session(&b, &d, id).await?;
    let account = b.accounts().account(d.account_id).await?;
    let payment = b.billing().payment_of_session(id).await?;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=en><meta charset=utf-8><title>Receipt {id}</title><style>{PRINT_CSS}</style>\
         <h1>Charging receipt</h1><p>Receipt no. <b id=receipt-no>S-{id}</b><br>{}<br>{}</p><table>\
         <tr><th>Charger</th><td>{} (EVSE {})</td></tr>\
         <tr><th>Started</th><td>{}</td></tr><tr><th>Ended</th><td>{}</td></tr>\
         <tr><th>Energy</th><td class=r>{} kWh</td></tr>\
         <tr><th>Total</th><td class=r id=total>{} {}</td></tr>",
        esc(&account.name),
        esc(&account.email),
        esc(&s.charger),
        s.evse,
        s.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
        s.ended_at
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| "charging".into()),
        kwh(s.energy_wh),
        s.cost,
        esc(&s.currency),
    );
    if let Some(p) = payment {
        let _ = write!(
            h,
            "<tr><th>Payment</th><td id=payment-status>{} (card held {}, captured {}, refunded {})</td></tr>",
            esc(&p.status),
            p.held,
            p.captured,
            p.refunded
        );
    }
    h.push_str("</table><p><button onclick=print()>Print</button></p></html>");
    Ok(Html(h))
}

/// The driver's payments, newest first.
#[utoipa::path(get, path = "/api/driver/payments", responses((status = 200, body = [PaymentRow])))]
async fn payments(
    State(b): State<Shared>,
    Extension(d): Extension<Driver>,
) -> Result<Json<Vec<PaymentRow>>, ApiError> {
    Ok(Json(b.billing().payments_of(d.account_id).await?))
}

// ------------------------------------------------------------------ operators

/// The filter of `GET /api/accounts`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AccountQuery {
    /// E-mail or name contains this.
    pub search: Option<String>,
    /// Only the members of this fleet.
    pub fleet: Option<i64>,
    /// Skip this many.
    pub offset: Option<i64>,
    /// At most this many (1 to 500, default 50).
    pub limit: Option<i64>,
}

/// A page of accounts.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountPage {
    /// The accounts.
    pub accounts: Vec<AccountInfo>,
    /// How many match in all.
    pub total: i64,
}

/// Driver accounts (search and paging).
#[utoipa::path(get, path = "/api/accounts", params(AccountQuery), responses((status = 200, body = AccountPage)))]
async fn list_accounts(
    State(b): State<Shared>,
    Q(q): Q<AccountQuery>,
) -> Result<Json<AccountPage>, ApiError> {
    let (accounts, total) = b
        .accounts()
        .accounts_in(
            q.search.as_deref().unwrap_or(""),
            q.fleet,
            q.offset.unwrap_or(0),
            q.limit.unwrap_or(50),
        )
        .await?;
    Ok(Json(AccountPage { accounts, total }))
}

/// An account's tokens (app and cards), as the operator sees them.
#[utoipa::path(get, path = "/api/accounts/{id}/tokens", params(("id" = i64, Path, description = "Account id")),
    responses((status = 200, body = [DriverToken]), (status = 404, body = ErrorBody)))]
async fn account_tokens(
    State(b): State<Shared>,
    P(id): P<i64>,
) -> Result<Json<Vec<DriverToken>>, ApiError> {
    b.accounts().account(id).await?;
    Ok(Json(b.accounts().tokens(id).await?))
}

/// A status change.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusBody {
    /// `active` or `blocked`.
    pub status: String,
}

/// Blocks or unblocks a driver account (a blocked account's tokens are answered `Blocked`).
#[utoipa::path(put, path = "/api/accounts/{id}/status", params(("id" = i64, Path, description = "Account id")),
    request_body = StatusBody, responses((status = 200, body = AccountInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn set_status(
    State(b): State<Shared>,
    P(id): P<i64>,
    Body(req): Body<StatusBody>,
) -> Result<Json<AccountInfo>, ApiError> {
    Ok(Json(b.accounts().set_status(id, &req.status).await?))
}

/// A fleet membership.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FleetBody {
    /// The fleet; `null`: none.
    pub fleet_id: Option<i64>,
}

/// Puts a driver account in a fleet (or none).
#[utoipa::path(put, path = "/api/accounts/{id}/fleet", params(("id" = i64, Path, description = "Account id")),
    request_body = FleetBody, responses((status = 200, body = AccountInfo), (status = 404, body = ErrorBody)))]
async fn set_fleet(
    State(b): State<Shared>,
    P(id): P<i64>,
    Body(req): Body<FleetBody>,
) -> Result<Json<AccountInfo>, ApiError> {
    b.accounts().set_fleet(id, req.fleet_id).await?;
    Ok(Json(b.accounts().account(id).await?))
}

/// A driver account's ledger journals.
#[utoipa::path(get, path = "/api/accounts/{id}/ledger", params(("id" = i64, Path, description = "Account id")),
    responses((status = 200, body = [Journal])))]
async fn account_ledger(
    State(b): State<Shared>,
    P(id): P<i64>,
) -> Result<Json<Vec<Journal>>, ApiError> {
    b.accounts().account(id).await?;
    let j = b
        .billing()
        .ledger()
        .journals(None, Some(id))
        .await
        .map_err(BillingError::from)?;
    Ok(Json(j))
}

/// A new fleet.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewFleet {
    /// Name.
    pub name: String,
    /// Invoice currency (ISO 4217).
    pub currency: String,
}

/// The fleets.
#[utoipa::path(get, path = "/api/fleets", responses((status = 200, body = [Fleet])))]
async fn fleets(State(b): State<Shared>) -> Result<Json<Vec<Fleet>>, ApiError> {
    Ok(Json(b.accounts().fleets().await?))
}

/// Creates a fleet.
#[utoipa::path(post, path = "/api/fleets", request_body = NewFleet, responses(
    (status = 201, body = Fleet), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_fleet(
    State(b): State<Shared>,
    Body(req): Body<NewFleet>,
) -> Result<(StatusCode, Json<Fleet>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(b.accounts().create_fleet(&req.name, &req.currency).await?),
    ))
}

/// A vehicle.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewVehicle {
    /// Licence plate.
    pub plate: String,
    /// Label.
    pub label: Option<String>,
}

/// Adds a vehicle to a fleet.
#[utoipa::path(post, path = "/api/fleets/{id}/vehicles", params(("id" = i64, Path, description = "Fleet id")),
    request_body = NewVehicle, responses((status = 201, body = Vehicle), (status = 404, body = ErrorBody)))]
async fn add_vehicle(
    State(b): State<Shared>,
    P(id): P<i64>,
    Body(req): Body<NewVehicle>,
) -> Result<(StatusCode, Json<Vehicle>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(
            b.accounts()
                .add_vehicle(id, &req.plate, req.label.as_deref())
                .await?,
        ),
    ))
}

/// The month of an invoice.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MonthQuery {
    /// `YYYY-MM`.
    pub month: String,
}

/// A fleet's monthly invoice as printable HTML: every session of its drivers' tokens that
/// ended in the month, and the total per currency.
#[utoipa::path(get, path = "/api/fleets/{id}/invoice", params(("id" = i64, Path, description = "Fleet id"), MonthQuery),
    responses((status = 200, description = "HTML", content_type = "text/html"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn invoice(
    State(b): State<Shared>,
    P(id): P<i64>,
    Q(q): Q<MonthQuery>,
) -> Result<Html<String>, ApiError> {
    let InvoiceData {
        fleet,
        first,
        sessions,
        totals,
    } = invoice_data(&b, id, &q.month).await?;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=en><meta charset=utf-8><title>Invoice {}</title><style>{PRINT_CSS}</style>\
         <h1>Invoice</h1><p>Fleet <b>{}</b>, {}<br>Invoice no. F{id}-{}</p>\
         <table><tr><th>Session</th><th>Charger</th><th>Ended</th><th class=r>kWh</th><th class=r>Amount</th></tr>",
        esc(&fleet.name),
        esc(&fleet.name),
        esc(&q.month),
        first.format("%Y%m"),
    );
    for s in &sessions {
        let _ =
            write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=r>{}</td><td class=r>{} {}</td></tr>",
            s.id,
            esc(&s.charger),
            s.ended_at.map(|t| t.format("%Y-%m-%d").to_string()).unwrap_or_default(),
            kwh(s.energy_wh),
            s.cost,
            esc(&s.currency)
        );
    }
    for (cur, total) in &totals {
        let _ = write!(
            h,
            "<tr><th colspan=4>Total</th><th class=r id=total-{0}>{1} {0}</th></tr>",
            esc(cur),
            total
        );
    }
    h.push_str("</table><p><button onclick=print()>Print</button></p></html>");
    Ok(Html(h))
}

/// What a fleet's monthly invoice holds: its completed sessions ended in the month (at most
/// 10,000) and the total per currency.
struct InvoiceData {
    fleet: Fleet,
    first: NaiveDate,
    sessions: Vec<SessionRow>,
    totals: std::collections::BTreeMap<String, Decimal>,
}

async fn invoice_data(b: &Shared, id: i64, month: &str) -> Result<InvoiceData, ApiError> {
    let first = NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
        .map_err(|_| ApiError::bad("invalid_query", "month is YYYY-MM"))?;
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    }
    .ok_or_else(|| ApiError::bad("invalid_query", "month out of range"))?;
    let from = Utc.from_utc_datetime(&first.and_hms_opt(0, 0, 0).unwrap_or_default());
    let to = Utc.from_utc_datetime(&next.and_hms_opt(0, 0, 0).unwrap_or_default());
    let fleet = b.accounts().fleet(id).await?;
    b.flush().await;
    let rows = sqlx::query(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE status = 'completed'
         AND ended_at >= $2 AND ended_at < $3 AND id_token IN
         (SELECT t.id_token FROM driver_tokens t JOIN driver_accounts a ON a.id = t.account_id
          WHERE a.fleet_id = $1) ORDER BY ended_at, id LIMIT 10000"
    ))
    .bind(id)
    .bind(super::db::ts(from))
    .bind(super::db::ts(to))
    .fetch_all(b.db().reader())
    .await
    .map_err(|e| ApiError::from(super::DbError::from(e)))?;
    let mut totals: std::collections::BTreeMap<String, Decimal> = Default::default();
    let mut sessions = Vec::with_capacity(rows.len());
    for r in rows {
        let s = super::db::session_row(r)?;
        let t = totals.entry(s.currency.clone()).or_default();
        *t = t
            .checked_add(s.cost)
            .ok_or_else(|| api::internal("overflow", "invoice total overflows"))?;
        sessions.push(s);
    }
    Ok(InvoiceData {
        fleet,
        first,
        sessions,
        totals,
    })
}

fn pdf_response(bytes: Vec<u8>, file: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{file}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// A fleet's monthly invoice as PDF (the same content as the HTML invoice).
#[utoipa::path(get, path = "/api/fleets/{id}/invoice.pdf", params(("id" = i64, Path, description = "Fleet id"), MonthQuery),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn invoice_pdf(
    State(b): State<Shared>,
    P(id): P<i64>,
    Q(q): Q<MonthQuery>,
) -> Result<Response, ApiError> {
    use super::pdf::Line;
    let d = invoice_data(&b, id, &q.month).await?;
    let mut lines = vec![
        Line::Heading("Invoice".into()),
        Line::Text(format!("Fleet {}, {}", d.fleet.name, q.month)),
        Line::Text(format!("Invoice no. F{id}-{}", d.first.format("%Y%m"))),
        Line::Blank,
        Line::Row(vec![
            (0.0, "Session".into()),
            (70.0, "Charger".into()),
            (200.0, "Ended".into()),
            (290.0, "kWh".into()),
            (370.0, "Amount".into()),
        ]),
    ];
    for s in &d.sessions {
        lines.push(Line::Row(vec![
            (0.0, s.id.to_string()),
            (70.0, s.charger.clone()),
            (
                200.0,
                s.ended_at
                    .map(|t| t.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
            ),
            (290.0, kwh(s.energy_wh)),
            (370.0, format!("{} {}", s.cost, s.currency)),
        ]));
    }
    lines.push(Line::Blank);
    for (cur, total) in &d.totals {
        lines.push(Line::Row(vec![
            (0.0, "Total".into()),
            (370.0, format!("{total} {cur}")),
        ]));
    }
    let bytes = super::pdf::document(&format!("Invoice {} {}", d.fleet.name, q.month), &lines);
    Ok(pdf_response(
        bytes,
        &format!("invoice-F{id}-{}.pdf", d.first.format("%Y%m")),
    ))
}

/// A session's receipt as PDF (the same content as the HTML receipt).
#[utoipa::path(get, path = "/api/driver/sessions/{id}/receipt.pdf", params(("id" = i64, Path, description = "Session id")),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>), (status = 404, body = ErrorBody)))]
async fn receipt_pdf(
    State(b): State<Shared>,
    Extension(d): Extension<Driver>,
    P(id): P<i64>,
) -> Result<Response, ApiError> {
    use super::pdf::Line;
    let s = own_session(&b, &d, id).await?;
    let account = b.accounts().account(d.account_id).await?;
    let payment = b.billing().payment_of_session(id).await?;
    let row = |k: &str, v: String| Line::Row(vec![(0.0, k.to_owned()), (120.0, v)]);
    let mut lines = vec![
        Line::Heading("Charging receipt".into()),
        Line::Text(format!("Receipt no. S-{id}")),
        Line::Text(format!("{} <{}>", account.name, account.email)),
        Line::Blank,
        row("Charger", format!("{} (EVSE {})", s.charger, s.evse)),
        row(
            "Started",
            s.started_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        ),
        row(
            "Ended",
            s.ended_at
                .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_else(|| "charging".into()),
        ),
        row("Energy", format!("{} kWh", kwh(s.energy_wh))),
        row("Total", format!("{} {}", s.cost, s.currency)),
    ];
    if let Some(p) = payment {
        lines.push(row(
            "Payment",
            format!(
                "{} (card held {}, captured {}, refunded {})",
                p.status, p.held, p.captured, p.refunded
            ),
        ));
    }
    Ok(pdf_response(
        super::pdf::document(&format!("Receipt S-{id}"), &lines),
        &format!("receipt-S-{id}.pdf"),
    ))
}

/// A refund.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefundBody {
    /// How much (at most what was captured and not refunded).
    #[schema(value_type = String)]
    pub amount: Decimal,
}

/// Refunds part or all of a captured session.
#[utoipa::path(post, path = "/api/sessions/{id}/refund", params(("id" = i64, Path, description = "Session id")),
    request_body = RefundBody, responses((status = 200, body = PaymentRow), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn refund(
    State(b): State<Shared>,
    P(id): P<i64>,
    Body(req): Body<RefundBody>,
) -> Result<Json<PaymentRow>, ApiError> {
    Ok(Json(b.billing().refund(id, req.amount).await?))
}

/// The ledger audit.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Audit {
    /// Journals whose entries do not sum to zero (none when the books balance).
    pub unbalanced: Vec<String>,
}

/// Checks that every journal of the ledger balances.
#[utoipa::path(get, path = "/api/ledger/audit", responses((status = 200, body = Audit)))]
async fn audit(State(b): State<Shared>) -> Result<Json<Audit>, ApiError> {
    let unbalanced = b
        .billing()
        .ledger()
        .unbalanced()
        .await
        .map_err(BillingError::from)?;
    Ok(Json(Audit { unbalanced }))
}

/// The payment provider's events, signed (`Payment-Signature`, see [`super::payments`]);
/// each stored once by its id.
#[utoipa::path(post, path = "/api/payments/webhook", request_body = Object, responses(
    (status = 204), (status = 400, body = ErrorBody)))]
async fn webhook(
    State(b): State<Shared>,
    headers: HeaderMap,
    body: String,
) -> Result<StatusCode, ApiError> {
    let billing = b.billing();
    let Some(secret) = billing.config().webhook_secret.clone() else {
        return Err(ApiError::bad(
            "invalid_signature",
            "no webhook secret is configured",
        ));
    };
    let sig = headers
        .get("payment-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !super::payments::verify_webhook(&secret, sig, &body, Utc::now()) {
        tracing::warn!("payment webhook with a bad signature refused");
        return Err(ApiError::bad(
            "invalid_signature",
            "bad or stale Payment-Signature",
        ));
    }
    let v: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| ApiError::bad("invalid_body", e.to_string()))?;
    let id = v.get("id").and_then(|x| x.as_str()).unwrap_or("");
    let kind = v.get("type").and_then(|x| x.as_str()).unwrap_or("");
    if id.is_empty() || id.len() > 100 || kind.is_empty() || kind.len() > 100 {
        return Err(ApiError::bad(
            "invalid_body",
            "an event has an id and a type",
        ));
    }
    billing.webhook_received(id, kind, &body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reads the count of stored webhook events (tests and the dashboard).
pub async fn webhook_count(b: &Shared) -> Result<i64, ApiError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM payment_webhooks")
        .fetch_one(b.db().reader())
        .await
        .map_err(|e| ApiError::from(super::DbError::from(e)))?;
    row.try_get("n")
        .map_err(|e| ApiError::from(super::DbError::from(e)))
}
