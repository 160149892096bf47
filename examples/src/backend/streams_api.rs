//! The HTTP routes of periodic event streams ([`super::streams`], OCPP 2.1 chargers):
//!
//! | route | role | what |
//! |---|---|---|
//! | `GET /api/chargers/{id}/streams` | viewer | the charger's streams (stored rows) |
//! | `POST /api/chargers/{id}/streams` | operator | opens a stream: SetVariableMonitoring with `periodicEventStream` |
//! | `PUT /api/chargers/{id}/streams/{stream}` | operator | AdjustPeriodicEventStream |
//! | `DELETE /api/chargers/{id}/streams/{stream}` | operator | closes it: ClearVariableMonitoring of its monitor |
//! | `GET /api/chargers/{id}/streams/{stream}/samples` | viewer | the newest samples (`?limit=`, default 500, at most 5,000), oldest first |
//!
//! Bad input is 400 before anything is sent: an empty or longer than 50 characters
//! component or variable, a monitor kind outside the 2.1 words, a severity outside 0 to 9,
//! a monitor value that is not a decimal (or, periodic, not 1 to 86,400 s), an interval
//! above 86,400 s. A charger that does not speak 2.1 is 409 `unsupported_version`; one
//! with [`MAX_STREAMS_PER_CHARGER`] streams is 409 `too_many_streams`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use ocpp_central::device_model::{Component, Monitor, Variable};
use ocpp_central::ocpp_types::Version;
use ocpp_central::streams::StreamParams;
use ocpp_central::ChargerHandle;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::api::{self, ApiError, Body, ErrorBody, P, Q};
use super::streams::{SampleRow, StreamRow, MAX_READ, MAX_STREAMS_PER_CHARGER};
use super::Shared;

/// A stream to open.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpenStreamBody {
    /// The component (`EVSE`, `ChargingStation`, ...).
    pub component: String,
    /// The component's EVSE.
    pub evse: Option<i32>,
    /// The component's connector (with `evse`).
    pub connector: Option<i32>,
    /// The variable (`Power`, ...).
    pub variable: String,
    /// The monitor's kind: `Periodic` (default), `PeriodicClockAligned`, `Delta`,
    /// `UpperThreshold`, `LowerThreshold`, `TargetDelta`, `TargetDeltaRelative`.
    pub kind: Option<String>,
    /// The monitor's value as decimal text (a periodic monitor's seconds between samples;
    /// default 1).
    pub value: Option<String>,
    /// The monitor's severity, 0 to 9 (default 9).
    pub severity: Option<i32>,
    /// Seconds between the charger's sends.
    pub interval: Option<u32>,
    /// Samples per send.
    pub values: Option<u32>,
}

/// New parameters of a stream.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdjustBody {
    /// Seconds between the charger's sends.
    pub interval: Option<u32>,
    /// Samples per send.
    pub values: Option<u32>,
}

/// A charger's answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StreamAnswer {
    /// The charger's status word.
    pub status: String,
    /// The stream's row now.
    pub stream: Option<StreamRow>,
}

/// How many samples to read.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SamplesQuery {
    /// The newest this many (default 500, at most 5,000).
    pub limit: Option<i64>,
}

/// The routes, merged into [`api::router`] (roles in [`api::ROUTES`]).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/api/chargers/{id}/streams",
            get(list_streams).post(open_stream),
        )
        .route(
            "/api/chargers/{id}/streams/{stream}",
            axum::routing::put(adjust_stream).delete(close_stream),
        )
        .route("/api/chargers/{id}/streams/{stream}/samples", get(samples))
        .route("/streams.js", get(panel_js))
}

/// The OpenAPI paths of these routes.
#[derive(OpenApi)]
#[openapi(
    paths(list_streams, open_stream, adjust_stream, close_stream, samples),
    components(schemas(OpenStreamBody, AdjustBody, StreamAnswer, StreamRow, SampleRow))
)]
pub struct StreamsDoc;

async fn panel_js() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/javascript; charset=utf-8",
        )],
        include_str!("../../dashboard/streams.js"),
    )
}

const KINDS: [&str; 7] = [
    "Periodic",
    "PeriodicClockAligned",
    "Delta",
    "UpperThreshold",
    "LowerThreshold",
    "TargetDelta",
    "TargetDeltaRelative",
];

/// Checks an open body and makes the monitor and the parameters.
pub fn monitor_of(body: &OpenStreamBody) -> Result<(Monitor, StreamParams), ApiError> {
    let bad = |m: String| ApiError::bad("invalid_body", m);
    for (name, v) in [("component", &body.component), ("variable", &body.variable)] {
        let n = v.chars().count();
        if n == 0 || n > 50 {
            return Err(bad(format!("{name} must be 1 to 50 characters")));
        }
    }
    let kind = body.kind.clone().unwrap_or_else(|| "Periodic".into());
    if !KINDS.contains(&kind.as_str()) {
        return Err(bad(format!("kind must be one of {KINDS:?}")));
    }
    let severity = body.severity.unwrap_or(9);
    if !(0..=9).contains(&severity) {
        return Err(bad("severity must be 0 to 9".into()));
    }
    let value = body.value.clone().unwrap_or_else(|| "1".into());
    let number: Decimal = value
        .trim()
        .parse()
        .map_err(|_| bad(format!("value {value:?} is not a decimal")))?;
    if kind.starts_with("Periodic") && !(Decimal::ONE..=Decimal::from(86_400)).contains(&number) {
        return Err(bad(
            "a periodic monitor's value is 1 to 86400 seconds".into()
        ));
    }
    if body.interval.is_some_and(|i| i > 86_400) {
        return Err(bad("interval must be at most 86400 seconds".into()));
    }
    if body.evse.is_some_and(|e| e < 0) || body.connector.is_some_and(|c| c < 0) {
        return Err(bad("evse and connector are 0 or more".into()));
    }
    if body.connector.is_some() && body.evse.is_none() {
        return Err(bad("a connector needs its evse".into()));
    }
    Ok((
        Monitor {
            id: None,
            component: Component {
                name: body.component.clone(),
                instance: None,
                evse: body.evse,
                connector: body.connector,
            },
            variable: Variable {
                name: body.variable.clone(),
                instance: None,
            },
            kind,
            value: number.normalize().to_string(),
            severity,
            transaction: false,
        },
        StreamParams {
            interval: body.interval,
            values: body.values,
        },
    ))
}

fn component_text(c: &Component) -> String {
    match (c.evse, c.connector) {
        (Some(e), Some(n)) => format!("{}/{e}/{n}", c.name),
        (Some(e), None) => format!("{}/{e}", c.name),
        _ => c.name.clone(),
    }
}

async fn v21(b: &Shared, id: &str) -> Result<ChargerHandle, ApiError> {
    let h = api::connected(b, id).await?;
    if h.version() != Version::V21 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "unsupported_version",
            format!(
                "periodic event streams need OCPP 2.1; {id:?} speaks {}",
                h.version()
            ),
        ));
    }
    Ok(h)
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

fn unknown_stream(id: &str, stream: i64) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_stream",
        format!("charger {id:?} has no stream {stream}"),
    )
}

/// The charger's streams, newest first.
#[utoipa::path(get, path = "/api/chargers/{id}/streams", params(("id" = String, Path, description = "Charger identity")),
    responses((status = 200, body = [StreamRow]), (status = 404, body = ErrorBody)))]
async fn list_streams(
    State(b): State<Shared>,
    P(id): P<String>,
) -> Result<Json<Vec<StreamRow>>, ApiError> {
    known(&b, &id).await?;
    Ok(Json(b.streams().list(&id).await?))
}

/// Opens a stream: SetVariableMonitoring with `periodicEventStream`; the row is
/// `Requested` until the charger's OpenPeriodicEventStream.
#[utoipa::path(post, path = "/api/chargers/{id}/streams", params(("id" = String, Path, description = "Charger identity")),
    request_body = OpenStreamBody, responses(
    (status = 200, body = StreamAnswer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn open_stream(
    State(b): State<Shared>,
    P(id): P<String>,
    Body(body): Body<OpenStreamBody>,
) -> Result<Json<StreamAnswer>, ApiError> {
    let (monitor, params) = monitor_of(&body)?;
    let h = v21(&b, &id).await?;
    if !b.streams().has_room(&id).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_streams",
            format!("{id:?} has {MAX_STREAMS_PER_CHARGER} streams requested or open"),
        ));
    }
    let r = h
        .open_event_stream(&monitor, params)
        .await
        .map_err(|e| api::call_failed(&b, h.version(), "SetVariableMonitoring", e))?;
    let stream = match (r.status.as_str(), r.id) {
        ("Accepted", Some(monitor_id)) => Some(
            b.streams()
                .requested(
                    &id,
                    i64::from(monitor_id),
                    &component_text(&monitor.component),
                    &monitor.variable.name,
                    params.interval.map(i64::from),
                    params.values.map(i64::from),
                )
                .await?,
        ),
        _ => None,
    };
    Ok(Json(StreamAnswer {
        status: r.status,
        stream,
    }))
}

/// New parameters for a stream (AdjustPeriodicEventStream).
#[utoipa::path(put, path = "/api/chargers/{id}/streams/{stream}", params(
    ("id" = String, Path, description = "Charger identity"), ("stream" = i64, Path, description = "Stream id")),
    request_body = AdjustBody, responses(
    (status = 200, body = StreamAnswer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn adjust_stream(
    State(b): State<Shared>,
    P((id, stream)): P<(String, i64)>,
    Body(body): Body<AdjustBody>,
) -> Result<Json<StreamAnswer>, ApiError> {
    let Ok(sid) = i32::try_from(stream) else {
        return Err(ApiError::bad("invalid_path", "stream must be a 32-bit id"));
    };
    if body.interval.is_some_and(|i| i > 86_400) {
        return Err(ApiError::bad(
            "invalid_body",
            "interval must be at most 86400 seconds",
        ));
    }
    let h = v21(&b, &id).await?;
    if b.streams().get(&id, stream).await?.is_none() {
        return Err(unknown_stream(&id, stream));
    }
    let params = StreamParams {
        interval: body.interval,
        values: body.values,
    };
    let a = h
        .adjust_event_stream(sid, params)
        .await
        .map_err(|e| api::call_failed(&b, h.version(), "AdjustPeriodicEventStream", e))?;
    if a.is_accepted() {
        b.streams()
            .set_params(
                &id,
                stream,
                body.interval.map(i64::from),
                body.values.map(i64::from),
            )
            .await?;
    }
    Ok(Json(StreamAnswer {
        status: a.status,
        stream: b.streams().get(&id, stream).await?,
    }))
}

/// Closes a stream: ClearVariableMonitoring of its monitor; the row is `Closing` until the
/// charger's ClosePeriodicEventStream.
#[utoipa::path(delete, path = "/api/chargers/{id}/streams/{stream}", params(
    ("id" = String, Path, description = "Charger identity"), ("stream" = i64, Path, description = "Stream id")),
    responses((status = 200, body = StreamAnswer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn close_stream(
    State(b): State<Shared>,
    P((id, stream)): P<(String, i64)>,
) -> Result<Json<StreamAnswer>, ApiError> {
    let h = v21(&b, &id).await?;
    let Some(row) = b.streams().get(&id, stream).await? else {
        return Err(unknown_stream(&id, stream));
    };
    let Ok(monitor) = i32::try_from(row.monitor_id) else {
        return Err(unknown_stream(&id, stream));
    };
    let status = h
        .close_event_stream(monitor)
        .await
        .map_err(|e| api::call_failed(&b, h.version(), "ClearVariableMonitoring", e))?;
    if status == "Accepted" {
        b.streams().closing(&id, stream).await?;
    }
    Ok(Json(StreamAnswer {
        status,
        stream: b.streams().get(&id, stream).await?,
    }))
}

/// The newest samples of a stream, oldest first.
#[utoipa::path(get, path = "/api/chargers/{id}/streams/{stream}/samples", params(
    ("id" = String, Path, description = "Charger identity"), ("stream" = i64, Path, description = "Stream id"), SamplesQuery),
    responses((status = 200, body = [SampleRow]), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn samples(
    State(b): State<Shared>,
    P((id, stream)): P<(String, i64)>,
    Q(q): Q<SamplesQuery>,
) -> Result<Json<Vec<SampleRow>>, ApiError> {
    let limit = q.limit.unwrap_or(500);
    if !(1..=MAX_READ).contains(&limit) {
        return Err(ApiError::bad(
            "invalid_query",
            format!("limit must be 1 to {MAX_READ}"),
        ));
    }
    known(&b, &id).await?;
    if b.streams().get(&id, stream).await?.is_none() {
        return Err(unknown_stream(&id, stream));
    }
    Ok(Json(b.streams().samples(&id, stream, limit).await?))
}
