//! The HTTP routes of reservations ([`super::reservations`]) and local lists
//! ([`super::local_list`]):
//!
//! | route | role | what |
//! |---|---|---|
//! | `GET /api/reservations` | viewer | the newest reservations (`?charger=` for one charger), with status |
//! | `GET /api/reservations/{id}` | viewer | one reservation |
//! | `POST /api/chargers/{id}/reservations` | operator | ReserveNow: EVSE (none: any), token, expiry |
//! | `DELETE /api/reservations/{id}` | operator | CancelReservation |
//! | `GET /api/chargers/{id}/local-list` | viewer | the stored version and the charger's |
//! | `POST /api/chargers/{id}/local-list` | operator | a full push of the token table |
//!
//! A reservation is answered with its row (200) whatever the charger said (its word is the
//! row's `status`); bad input is 400 before anything is sent: an expiry not in the future or
//! more than [`MAX_AHEAD_DAYS`] days ahead, an EVSE outside 1 to 2³¹−1, a token of 0 or more
//! than 20 (1.6) / 36 characters.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use ocpp_central::ocpp_types::Version;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::api::{self, ApiError, Body, ErrorBody, P};
use super::local_list::{ListError, ListState, Pushed};
use super::reservations::{ReservationRow, ReserveError};
use super::Shared;

/// The furthest ahead a reservation may expire: 30 days.
pub const MAX_AHEAD_DAYS: i64 = 30;

/// A reservation to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReserveBody {
    /// The EVSE (1.6 connector); absent: any EVSE.
    pub evse: Option<i64>,
    /// The token it is for.
    pub id_tag: String,
    /// When it expires (RFC 3339).
    pub expires_at: DateTime<Utc>,
}

/// The answer to a cancellation.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CancelAnswer {
    /// The charger's answer: `Accepted`, or `Rejected` (it holds no such reservation).
    pub status: String,
    /// The reservation now.
    pub reservation: ReservationRow,
}

/// The filter of `GET /api/reservations`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReservationQuery {
    /// Only this charger's.
    pub charger: Option<String>,
}

/// The routes, merged into [`api::router`] (roles in [`api::ROUTES`]).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/reservations", get(list))
        .route("/api/reservations/{id}", get(one).delete(cancel))
        .route("/api/chargers/{id}/reservations", post(reserve))
        .route(
            "/api/chargers/{id}/local-list",
            get(list_state).post(push_list),
        )
        .route("/reservations.js", get(panel_js))
}

/// The OpenAPI paths of these routes.
#[derive(OpenApi)]
#[openapi(
    paths(list, one, reserve, cancel, list_state, push_list),
    components(schemas(ReserveBody, ReservationRow, CancelAnswer, ListState, Pushed))
)]
pub struct ReservationsDoc;

async fn panel_js() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/javascript; charset=utf-8",
        )],
        include_str!("../../dashboard/reservations.js"),
    )
}

fn reserve_failed(b: &Shared, version: Version, e: ReserveError) -> ApiError {
    match e {
        ReserveError::Db(e) => e.into(),
        ReserveError::Call(e) => api::call_failed(b, version, "ReserveNow", e),
        ReserveError::Unknown(id) => unknown(id),
        ReserveError::IdRange(id) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "database",
            format!("reservation id {id} is beyond 32 bits"),
        ),
    }
}

fn unknown(id: i64) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no reservation {id}"),
    )
}

/// The newest reservations (at most 1,000), with their status.
#[utoipa::path(get, path = "/api/reservations", params(ReservationQuery),
    responses((status = 200, body = [ReservationRow]), (status = 400, body = ErrorBody)))]
async fn list(
    State(b): State<Shared>,
    q: Result<axum::extract::Query<ReservationQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<ReservationRow>>, ApiError> {
    let axum::extract::Query(q) = q.map_err(|e| ApiError::bad("invalid_query", e.body_text()))?;
    Ok(Json(b.reservations().list(q.charger.as_deref()).await?))
}

/// One reservation.
#[utoipa::path(get, path = "/api/reservations/{id}", params(("id" = i64, Path, description = "Reservation id")),
    responses((status = 200, body = ReservationRow), (status = 404, body = ErrorBody)))]
async fn one(State(b): State<Shared>, P(id): P<i64>) -> Result<Json<ReservationRow>, ApiError> {
    b.reservations()
        .get(id)
        .await?
        .map(Json)
        .ok_or_else(|| unknown(id))
}

/// Reserves an EVSE (or any EVSE) of a charger for a token (ReserveNow); the row carries the
/// charger's answer as its status.
#[utoipa::path(post, path = "/api/chargers/{id}/reservations", params(("id" = String, Path, description = "Charger identity")),
    request_body = ReserveBody, responses(
    (status = 200, body = ReservationRow), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn reserve(
    State(b): State<Shared>,
    P(id): P<String>,
    Body(body): Body<ReserveBody>,
) -> Result<Json<ReservationRow>, ApiError> {
    let h = api::connected(&b, &id).await?;
    let now = Utc::now();
    if body.expires_at <= now || body.expires_at > now + chrono::Duration::days(MAX_AHEAD_DAYS) {
        return Err(ApiError::bad(
            "invalid_body",
            format!("expiresAt must be in the future, at most {MAX_AHEAD_DAYS} days ahead"),
        ));
    }
    let evse = match body.evse {
        None => None,
        Some(e) => Some(
            i32::try_from(e)
                .ok()
                .filter(|e| *e >= 1)
                .ok_or_else(|| ApiError::bad("invalid_body", "evse must be 1 to 2147483647"))?,
        ),
    };
    let max = if h.version() == Version::V16 { 20 } else { 36 };
    let n = body.id_tag.chars().count();
    if n == 0 || n > max {
        return Err(ApiError::bad(
            "invalid_body",
            format!("idTag must be 1 to {max} characters for this charger"),
        ));
    }
    let row = b
        .reservations()
        .reserve(&h, evse, &body.id_tag, body.expires_at)
        .await
        .map_err(|e| reserve_failed(&b, h.version(), e))?;
    Ok(Json(row))
}

/// Cancels a reservation (CancelReservation).
#[utoipa::path(delete, path = "/api/reservations/{id}", params(("id" = i64, Path, description = "Reservation id")),
    responses((status = 200, body = CancelAnswer), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn cancel(State(b): State<Shared>, P(id): P<i64>) -> Result<Json<CancelAnswer>, ApiError> {
    let row = b.reservations().get(id).await?.ok_or_else(|| unknown(id))?;
    let h = api::connected(&b, &row.charger).await?;
    let (status, reservation) = b
        .reservations()
        .cancel(&h, id)
        .await
        .map_err(|e| reserve_failed(&b, h.version(), e))?;
    Ok(Json(CancelAnswer {
        status,
        reservation,
    }))
}

fn list_failed(b: &Shared, version: Version, e: ListError) -> ApiError {
    match e {
        ListError::Db(e) => e.into(),
        ListError::Call(e) => api::call_failed(b, version, "SendLocalList", e),
    }
}

/// The charger's local list: the version last accepted and, when connected, the one the
/// charger reports (GetLocalListVersion).
#[utoipa::path(get, path = "/api/chargers/{id}/local-list", params(("id" = String, Path, description = "Charger identity")),
    responses((status = 200, body = ListState), (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn list_state(
    State(b): State<Shared>,
    P(id): P<String>,
) -> Result<Json<ListState>, ApiError> {
    let h = b.chargers().get(&id);
    if h.is_none() && b.db().charger(&id).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_charger",
            format!("no charger {id:?}"),
        ));
    }
    let version = h.as_ref().map_or(Version::V16, |h| h.version());
    b.local_lists()
        .state(&id, h.as_ref())
        .await
        .map(Json)
        .map_err(|e| list_failed(&b, version, e))
}

/// Sends the token table to the charger as its local list (Full, then Differential pieces);
/// from then on token changes follow as differential updates.
#[utoipa::path(post, path = "/api/chargers/{id}/local-list", params(("id" = String, Path, description = "Charger identity")),
    responses((status = 200, body = Pushed), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn push_list(State(b): State<Shared>, P(id): P<String>) -> Result<Json<Pushed>, ApiError> {
    let h = api::connected(&b, &id).await?;
    b.local_lists()
        .push_full(&h)
        .await
        .map(Json)
        .map_err(|e| list_failed(&b, h.version(), e))
}
