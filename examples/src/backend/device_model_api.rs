//! The HTTP routes of the device model, the desired configuration and monitoring
//! ([`super::device_model`]):
//!
//! | route | role | what |
//! |---|---|---|
//! | `GET /api/chargers/{id}/variables` | viewer | the variables the charger reported (`?search=` filters `Component.Variable`) |
//! | `POST /api/chargers/{id}/variables` | operator | sets values now (2.x SetVariables, 1.6 ChangeConfiguration): one status per value |
//! | `GET /api/chargers/{id}/reports` | viewer | the reports asked for and received, with their status |
//! | `POST /api/chargers/{id}/reports` | operator | asks for a report (2.x GetBaseReport `base`; 1.6 GetConfiguration) |
//! | `GET /api/desired-config` | viewer | the desired configuration of `?scope=` (a charger, or `*` for all: the default) |
//! | `PUT /api/desired-config` | operator | replaces the desired configuration of a scope |
//! | `GET /api/chargers/{id}/config-diff` | viewer | desired against reported: `same`, `differs`, `unreported` |
//! | `POST /api/chargers/{id}/config-diff/apply` | operator | writes what differs; one status per value |
//! | `GET /api/chargers/{id}/monitors` | viewer | the monitors set or reported |
//! | `POST /api/chargers/{id}/monitors` | operator | SetVariableMonitoring: one status per monitor |
//! | `DELETE /api/chargers/{id}/monitors/{monitor}` | operator | ClearVariableMonitoring |
//! | `GET /api/device-events` | viewer | the newest NotifyEvent events (`?charger=`) |
//! | `GET /api/alerts` | viewer | alerts: open ones first, most severe first |
//!
//! Bad input is 400 before anything is sent: more than [`MAX_WRITE`] values or monitors in
//! one request, a severity outside 0 to 9, a scope that is neither `*` nor a known charger.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use ocpp_central::device_model::ReportBase;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::api::{self, ApiError, Body, ErrorBody, P};
use super::device_model::{
    AlertRow, DeviceModelError, DiffRow, EventRow, MonitorRow, NamedValue, ReportRow, VarName,
    VariableRow, WriteRow,
};
use super::Shared;

/// The most values or monitors in one request.
pub const MAX_WRITE: usize = 200;

/// A report to ask for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportBody {
    /// (2.x) `FullInventory` (default), `ConfigurationInventory` or `SummaryInventory`;
    /// 1.6 always reads every key.
    pub base: Option<String>,
}

/// The desired configuration of a scope.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DesiredBody {
    /// A charger's identity, or `*` for all chargers.
    pub scope: String,
    /// Variable → value.
    pub entries: Vec<NamedValue>,
}

/// `?search=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Only variables whose `Component.Variable` contains this (case-insensitive).
    pub search: Option<String>,
}

/// `?scope=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ScopeQuery {
    /// A charger's identity, or `*` (default).
    pub scope: Option<String>,
}

/// `?charger=`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ChargerQuery {
    /// Only this charger's.
    pub charger: Option<String>,
}

/// The routes, merged into [`api::router`] (roles in [`api::ROUTES`]).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/api/chargers/{id}/variables",
            get(variables).post(write_variables),
        )
        .route(
            "/api/chargers/{id}/reports",
            get(reports).post(request_report),
        )
        .route("/api/desired-config", get(desired).put(set_desired))
        .route("/api/chargers/{id}/config-diff", get(diff))
        .route("/api/chargers/{id}/config-diff/apply", post(apply))
        .route(
            "/api/chargers/{id}/monitors",
            get(monitors).post(set_monitors),
        )
        .route(
            "/api/chargers/{id}/monitors/{monitor}",
            delete(clear_monitor),
        )
        .route("/api/device-events", get(events))
        .route("/api/alerts", get(alerts))
        .route("/device-model.js", get(panel_js))
}

/// The OpenAPI paths of these routes.
#[derive(OpenApi)]
#[openapi(
    paths(
        variables,
        write_variables,
        reports,
        request_report,
        desired,
        set_desired,
        diff,
        apply,
        monitors,
        set_monitors,
        clear_monitor,
        events,
        alerts
    ),
    components(schemas(
        ReportBody,
        DesiredBody,
        VarName,
        VariableRow,
        ReportRow,
        NamedValue,
        WriteRow,
        DiffRow,
        MonitorRow,
        EventRow,
        AlertRow
    ))
)]
pub struct DeviceModelDoc;

async fn panel_js() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/javascript; charset=utf-8",
        )],
        include_str!("../../dashboard/device-model.js"),
    )
}

fn failed(
    b: &Shared,
    h: &ocpp_central::ChargerHandle,
    action: &str,
    e: DeviceModelError,
) -> ApiError {
    match e {
        DeviceModelError::Db(e) => e.into(),
        DeviceModelError::Call(e) => api::call_failed(b, h.version(), action, e),
        DeviceModelError::TooMany(m) => ApiError::bad("invalid_body", m),
    }
}

async fn known(b: &Shared, id: &str) -> Result<(), ApiError> {
    if b.chargers().get(id).is_none() && b.db().charger(id).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_charger",
            format!("no charger {id:?}"),
        ));
    }
    Ok(())
}

fn query<T>(
    q: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    q.map(|axum::extract::Query(q)| q)
        .map_err(|e| ApiError::bad("invalid_query", e.body_text()))
}

/// The variables the charger reported (at most 5,000), every attribute and characteristic.
#[utoipa::path(get, path = "/api/chargers/{id}/variables",
    params(("id" = String, Path, description = "Charger identity"), SearchQuery),
    responses((status = 200, body = [VariableRow]), (status = 404, body = ErrorBody)))]
async fn variables(
    State(b): State<Shared>,
    P(id): P<String>,
    q: Result<axum::extract::Query<SearchQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<VariableRow>>, ApiError> {
    let q = query(q)?;
    known(&b, &id).await?;
    Ok(Json(
        b.device_model().variables(&id, q.search.as_deref()).await?,
    ))
}

/// Sets values now: 2.x SetVariables, 1.6 ChangeConfiguration; the statuses are recorded.
#[utoipa::path(post, path = "/api/chargers/{id}/variables", params(("id" = String, Path, description = "Charger identity")),
    request_body = [NamedValue], responses((status = 200, body = [WriteRow]), (status = 400, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn write_variables(
    State(b): State<Shared>,
    P(id): P<String>,
    Body(values): Body<Vec<NamedValue>>,
) -> Result<Json<Vec<WriteRow>>, ApiError> {
    if values.is_empty() || values.len() > MAX_WRITE {
        return Err(ApiError::bad(
            "invalid_body",
            format!("1 to {MAX_WRITE} values per request"),
        ));
    }
    let h = api::connected(&b, &id).await?;
    b.device_model()
        .write(&h, &values)
        .await
        .map(Json)
        .map_err(|e| failed(&b, &h, "SetVariables", e))
}

/// The reports asked for and received (newest first).
#[utoipa::path(get, path = "/api/chargers/{id}/reports", params(("id" = String, Path, description = "Charger identity")),
    responses((status = 200, body = [ReportRow]), (status = 404, body = ErrorBody)))]
async fn reports(
    State(b): State<Shared>,
    P(id): P<String>,
) -> Result<Json<Vec<ReportRow>>, ApiError> {
    known(&b, &id).await?;
    Ok(Json(b.device_model().reports(&id).await?))
}

/// Asks for a report: 2.x GetBaseReport (the parts arrive as NotifyReports and are
/// assembled by `requestId`), 1.6 GetConfiguration of every key.
#[utoipa::path(post, path = "/api/chargers/{id}/reports", params(("id" = String, Path, description = "Charger identity")),
    request_body = ReportBody, responses((status = 200, body = ReportRow), (status = 400, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn request_report(
    State(b): State<Shared>,
    P(id): P<String>,
    Body(body): Body<ReportBody>,
) -> Result<Json<ReportRow>, ApiError> {
    let base = match body.base.as_deref().unwrap_or("FullInventory") {
        "FullInventory" => ReportBase::FullInventory,
        "ConfigurationInventory" => ReportBase::ConfigurationInventory,
        "SummaryInventory" => ReportBase::SummaryInventory,
        other => {
            return Err(ApiError::bad(
                "invalid_body",
                format!("no report base {other:?}"),
            ))
        }
    };
    let h = api::connected(&b, &id).await?;
    b.device_model()
        .request_report(&h, base)
        .await
        .map(Json)
        .map_err(|e| failed(&b, &h, "GetBaseReport", e))
}

/// The desired configuration of a scope.
#[utoipa::path(get, path = "/api/desired-config", params(ScopeQuery),
    responses((status = 200, body = [NamedValue]), (status = 400, body = ErrorBody)))]
async fn desired(
    State(b): State<Shared>,
    q: Result<axum::extract::Query<ScopeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<NamedValue>>, ApiError> {
    let q = query(q)?;
    Ok(Json(
        b.device_model()
            .desired(q.scope.as_deref().unwrap_or("*"))
            .await?,
    ))
}

/// Replaces the desired configuration of a scope (at most 500 entries).
#[utoipa::path(put, path = "/api/desired-config", request_body = DesiredBody,
    responses((status = 200, body = [NamedValue]), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn set_desired(
    State(b): State<Shared>,
    Body(body): Body<DesiredBody>,
) -> Result<Json<Vec<NamedValue>>, ApiError> {
    if body.scope != "*" {
        known(&b, &body.scope).await?;
    }
    if body.entries.iter().any(|e| e.name.variable.is_empty()) {
        return Err(ApiError::bad(
            "invalid_body",
            "every entry needs a variable",
        ));
    }
    b.device_model()
        .set_desired(&body.scope, &body.entries)
        .await
        .map_err(|e| match e {
            DeviceModelError::Db(e) => e.into(),
            other => ApiError::bad("invalid_body", other.to_string()),
        })?;
    Ok(Json(b.device_model().desired(&body.scope).await?))
}

/// The desired configuration of the charger (its own entries over those for all) against
/// what it reported.
#[utoipa::path(get, path = "/api/chargers/{id}/config-diff", params(("id" = String, Path, description = "Charger identity")),
    responses((status = 200, body = [DiffRow]), (status = 404, body = ErrorBody)))]
async fn diff(State(b): State<Shared>, P(id): P<String>) -> Result<Json<Vec<DiffRow>>, ApiError> {
    known(&b, &id).await?;
    Ok(Json(b.device_model().diff(&id).await?))
}

/// Writes every desired value that differs or was not reported; the statuses are recorded.
#[utoipa::path(post, path = "/api/chargers/{id}/config-diff/apply", params(("id" = String, Path, description = "Charger identity")),
    responses((status = 200, body = [WriteRow]), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn apply(State(b): State<Shared>, P(id): P<String>) -> Result<Json<Vec<WriteRow>>, ApiError> {
    let h = api::connected(&b, &id).await?;
    b.device_model()
        .apply(&h)
        .await
        .map(Json)
        .map_err(|e| failed(&b, &h, "SetVariables", e))
}

/// The monitors set through the API or reported by the charger.
#[utoipa::path(get, path = "/api/chargers/{id}/monitors", params(("id" = String, Path, description = "Charger identity")),
    responses((status = 200, body = [MonitorRow]), (status = 404, body = ErrorBody)))]
async fn monitors(
    State(b): State<Shared>,
    P(id): P<String>,
) -> Result<Json<Vec<MonitorRow>>, ApiError> {
    known(&b, &id).await?;
    Ok(Json(b.device_model().monitors(&id).await?))
}

/// Sets monitors (2.x SetVariableMonitoring); one status per monitor.
#[utoipa::path(post, path = "/api/chargers/{id}/monitors", params(("id" = String, Path, description = "Charger identity")),
    request_body = [MonitorRow], responses((status = 200, body = [MonitorRow]), (status = 400, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn set_monitors(
    State(b): State<Shared>,
    P(id): P<String>,
    Body(list): Body<Vec<MonitorRow>>,
) -> Result<Json<Vec<MonitorRow>>, ApiError> {
    if list.is_empty() || list.len() > MAX_WRITE {
        return Err(ApiError::bad(
            "invalid_body",
            format!("1 to {MAX_WRITE} monitors per request"),
        ));
    }
    if list.iter().any(|m| !(0..=9).contains(&m.severity)) {
        return Err(ApiError::bad("invalid_body", "severity must be 0 to 9"));
    }
    let h = api::connected(&b, &id).await?;
    b.device_model()
        .set_monitors(&h, &list)
        .await
        .map(Json)
        .map_err(|e| failed(&b, &h, "SetVariableMonitoring", e))
}

/// Clears a monitor (2.x ClearVariableMonitoring); answers the charger's status.
#[utoipa::path(delete, path = "/api/chargers/{id}/monitors/{monitor}",
    params(("id" = String, Path, description = "Charger identity"), ("monitor" = i32, Path, description = "Monitor id")),
    responses((status = 200, body = String), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn clear_monitor(
    State(b): State<Shared>,
    P((id, monitor)): P<(String, i32)>,
) -> Result<Json<String>, ApiError> {
    let h = api::connected(&b, &id).await?;
    b.device_model()
        .clear_monitor(&h, monitor)
        .await
        .map(Json)
        .map_err(|e| failed(&b, &h, "ClearVariableMonitoring", e))
}

/// The newest device events (at most 1,000).
#[utoipa::path(get, path = "/api/device-events", params(ChargerQuery),
    responses((status = 200, body = [EventRow]), (status = 400, body = ErrorBody)))]
async fn events(
    State(b): State<Shared>,
    q: Result<axum::extract::Query<ChargerQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<EventRow>>, ApiError> {
    let q = query(q)?;
    Ok(Json(b.device_model().events(q.charger.as_deref()).await?))
}

/// The alerts: open first, most severe first.
#[utoipa::path(get, path = "/api/alerts", responses((status = 200, body = [AlertRow])))]
async fn alerts(State(b): State<Shared>) -> Result<Json<Vec<AlertRow>>, ApiError> {
    Ok(Json(b.device_model().alerts().await?))
}
