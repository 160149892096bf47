//! DER control (OCPP 2.1): the chargers' DER alarms and start/stop notices are stored in
//! `der_events` (migration 17, [`super::streams::MIGRATION`]), newest
//! [`MAX_DER_EVENTS_PER_CHARGER`] per charger, and listed; the operator sets and clears DER
//! controls on a charger.
//!
//! | route | role | what |
//! |---|---|---|
//! | `GET /api/der-events` | viewer | the newest DER events (`?charger=`, `?limit=` 1 to 1,000, default 100), newest first |
//! | `POST /api/chargers/{id}/der-controls` | operator | SetDERControl with the body (a `SetDERControlRequest`; 400 when it is not one) |
//! | `DELETE /api/chargers/{id}/der-controls/{control}` | operator | ClearDERControl of that control id (`?default=true` for a default control) |

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use ocpp_central::der::DerNotice;
use ocpp_central::ocpp_types::Version;
use ocpp_central::{ChargerHandle, Event};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::api::{self, ApiError, Body, ErrorBody, P, Q};
use super::db::{self, Db, DbError};
use super::Shared;

/// The DER events kept per charger.
pub const MAX_DER_EVENTS_PER_CHARGER: i64 = 1000;

/// One DER event of a charger.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DerEventRow {
    /// The charger.
    pub charger: String,
    /// `Alarm`, `Started` or `Stopped`.
    pub kind: String,
    /// The control type (alarms) or the control id (start / stop).
    pub control: String,
    /// The grid event of an alarm.
    pub grid_event_fault: Option<String>,
    /// The alarm ended.
    pub ended: bool,
    /// The charger's extra text, or the superseded ids.
    pub detail: Option<String>,
    /// When it happened (the charger's time).
    pub at: DateTime<Utc>,
    /// When it was received.
    pub received_at: DateTime<Utc>,
}

/// The DER event store.
#[derive(Debug)]
pub struct Der {
    db: Db,
}

impl Der {
    /// Over `db`.
    pub fn new(db: Db) -> std::sync::Arc<Der> {
        std::sync::Arc::new(Der { db })
    }

    /// Stores a DER alarm or start/stop notice (reports are not stored).
    pub async fn on_event(&self, charger: &ChargerHandle, event: &Event) -> Result<(), DbError> {
        let Event::Der { notice, .. } = event else {
            return Ok(());
        };
        let (kind, control, fault, ended, detail, at) = match notice {
            DerNotice::Alarm {
                control_type,
                grid_event_fault,
                ended,
                at,
                extra_info,
            } => (
                "Alarm",
                control_type.clone(),
                grid_event_fault.clone(),
                *ended,
                extra_info.clone(),
                *at,
            ),
            DerNotice::StartStop {
                control_id,
                started,
                at,
                superseded,
            } => (
                if *started { "Started" } else { "Stopped" },
                control_id.clone(),
                None,
                false,
                (!superseded.is_empty()).then(|| superseded.join(",")),
                *at,
            ),
            DerNotice::Report { .. } => return Ok(()),
        };
        let id = charger.identity();
        sqlx::query(
            "INSERT INTO der_events (charger, kind, control, grid_event_fault, ended, detail, at, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(id)
        .bind(kind)
        .bind(control)
        .bind(fault)
        .bind(i64::from(ended))
        .bind(detail)
        .bind(db::ts(at))
        .bind(db::ts(Utc::now()))
        .execute(self.db.writer())
        .await?;
        sqlx::query(&format!(
            "DELETE FROM der_events WHERE charger = $1 AND id <= (
                 SELECT id FROM der_events WHERE charger = $1 ORDER BY id DESC LIMIT 1 OFFSET {MAX_DER_EVENTS_PER_CHARGER})"
        ))
        .bind(id)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// The newest `limit` events, of one charger or all.
    pub async fn list(
        &self,
        charger: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DerEventRow>, DbError> {
        let cols = "charger, kind, control, grid_event_fault, ended, detail, at, received_at";
        let rows = match charger {
            Some(c) => {
                sqlx::query(&format!(
                "SELECT {cols} FROM der_events WHERE charger = $1 ORDER BY id DESC LIMIT {limit}"
            ))
                .bind(c)
                .fetch_all(self.db.writer())
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {cols} FROM der_events ORDER BY id DESC LIMIT {limit}"
                ))
                .fetch_all(self.db.writer())
                .await?
            }
        };
        rows.iter()
            .map(|r| {
                Ok(DerEventRow {
                    charger: r.try_get("charger")?,
                    kind: r.try_get("kind")?,
                    control: r.try_get("control")?,
                    grid_event_fault: r.try_get("grid_event_fault")?,
                    ended: r.try_get::<i64, _>("ended")? != 0,
                    detail: r.try_get("detail")?,
                    at: db::parse_ts("at", r.try_get("at")?)?,
                    received_at: db::parse_ts("received_at", r.try_get("received_at")?)?,
                })
            })
            .collect()
    }
}

/// The filters of `GET /api/der-events`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DerEventsQuery {
    /// One charger's.
    pub charger: Option<String>,
    /// The newest this many (1 to 1,000; default 100).
    pub limit: Option<i64>,
}

/// Options of a clear.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ClearDerQuery {
    /// A default control (default `false`: a scheduled one).
    pub default: Option<bool>,
}

/// A charger's answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DerAnswer {
    /// The charger's status word.
    pub status: String,
    /// The whole response.
    pub response: Value,
}

/// The routes, merged into [`api::router`] (roles in [`api::ROUTES`]).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/der-events", get(list_events))
        .route("/api/chargers/{id}/der-controls", post(set_control))
        .route(
            "/api/chargers/{id}/der-controls/{control}",
            delete(clear_control),
        )
}

/// The OpenAPI paths of these routes.
#[derive(OpenApi)]
#[openapi(
    paths(list_events, set_control, clear_control),
    components(schemas(DerEventRow, DerAnswer))
)]
pub struct DerDoc;

/// The newest DER events, newest first.
#[utoipa::path(get, path = "/api/der-events", params(DerEventsQuery),
    responses((status = 200, body = [DerEventRow]), (status = 400, body = ErrorBody)))]
async fn list_events(
    State(b): State<Shared>,
    Q(q): Q<DerEventsQuery>,
) -> Result<Json<Vec<DerEventRow>>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad("invalid_query", "limit must be 1 to 1000"));
    }
    Ok(Json(b.der().list(q.charger.as_deref(), limit).await?))
}

async fn v21(b: &Shared, id: &str) -> Result<ChargerHandle, ApiError> {
    let h = api::connected(b, id).await?;
    if h.version() != Version::V21 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "unsupported_version",
            format!("DER control needs OCPP 2.1; {id:?} speaks {}", h.version()),
        ));
    }
    Ok(h)
}

fn answer(a: ocpp_central::Answer) -> DerAnswer {
    DerAnswer {
        status: a.status,
        response: serde_json::from_str(&a.response.to_json()).unwrap_or(Value::Null),
    }
}

/// Sets a DER control (SetDERControl with the body).
#[utoipa::path(post, path = "/api/chargers/{id}/der-controls", params(("id" = String, Path, description = "Charger identity")),
    request_body = Object, responses(
    (status = 200, body = DerAnswer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn set_control(
    State(b): State<Shared>,
    P(id): P<String>,
    Body(body): Body<Value>,
) -> Result<Json<DerAnswer>, ApiError> {
    if let Err(e) =
        ocpp_central::AnyRequest::from_json(Version::V21, "SetDERControl", &body.to_string())
    {
        return Err(ApiError::bad(
            "invalid_body",
            format!("not a SetDERControlRequest: {e}"),
        ));
    }
    let h = v21(&b, &id).await?;
    h.set_der_control(&body)
        .await
        .map(|a| Json(answer(a)))
        .map_err(|e| api::call_failed(&b, h.version(), "SetDERControl", e))
}

/// Clears a DER control (ClearDERControl of that id).
#[utoipa::path(delete, path = "/api/chargers/{id}/der-controls/{control}", params(
    ("id" = String, Path, description = "Charger identity"), ("control" = String, Path, description = "Control id"), ClearDerQuery),
    responses((status = 200, body = DerAnswer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn clear_control(
    State(b): State<Shared>,
    P((id, control)): P<(String, String)>,
    Q(q): Q<ClearDerQuery>,
) -> Result<Json<DerAnswer>, ApiError> {
    if control.is_empty() || control.chars().count() > 36 {
        return Err(ApiError::bad(
            "invalid_path",
            "a control id is 1 to 36 characters",
        ));
    }
    let h = v21(&b, &id).await?;
    h.clear_der_control(q.default.unwrap_or(false), None, Some(&control))
        .await
        .map(|a| Json(answer(a)))
        .map_err(|e| api::call_failed(&b, h.version(), "ClearDERControl", e))
}
