//! The HTTP routes of firmware ([`super::firmware`]) and log uploads ([`super::uploads`]):
//!
//! | route | role | what |
//! |---|---|---|
//! | `POST /api/firmware/images?name=&version=&signed=` | admin | upload an image (the raw body, at most 8 MiB: 413 beyond) |
//! | `GET /api/firmware/images` | viewer | the images, with size, SHA-256 and download path |
//! | `GET /firmware/{token}/{name}` | public (capability URL) | the image, for chargers |
//! | `POST /api/firmware/rollouts` | operator | UpdateFirmware to one or many chargers |
//! | `GET /api/firmware/rollouts` | viewer | the newest rollouts with each charger's status |
//! | `GET /api/firmware/rollouts/{id}` | viewer | one rollout |
//! | `POST /api/chargers/{id}/firmware/rollouts/{rollout}` | operator | send a rollout's update to one of its chargers (again): how a rollout reaches the chargers of other cluster nodes |
//! | `POST /api/chargers/{id}/logs` | operator | GetLog (1.6: GetLog, or GetDiagnostics with `diagnostics`) |
//! | `GET /api/logs` | viewer | the log requests with their status and files (`?charger=`) |
//! | `GET /api/logs/files/{id}` | viewer | a file a charger uploaded |
//! | `PUT`/`POST /uploads/{token}` (and `/uploads/{token}/{name}`) | public (capability URL) | where chargers upload (raw body, at most 1 MiB: 413 beyond, nothing stored) |
//!
//! Download and upload URLs carry a random 128-bit token: chargers have no operator account,
//! and a URL nobody was given is 404. The address in them is the `Host` the operator's
//! request came to (`http://`).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use ocpp_central::firmware::LogType;
use ocpp_central::ocpp_types::Version;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::api::{self, ApiError, Body, ErrorBody, P, Q};
use super::firmware::{
    FirmwareError, ImageRow, RolloutRow, TargetRow, MAX_IMAGE_BYTES, MAX_ROLLOUT_CHARGERS,
};
use super::uploads::{LogFileRow, LogRequestRow, UploadError, MAX_LOG_BYTES};
use super::Shared;

/// The image's name and version (`POST /api/firmware/images`).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImageQuery {
    /// The file name: 1 to 100 of `A-Z a-z 0-9 . _ -`.
    pub name: String,
    /// The firmware version it installs: 1 to 50 characters (BootNotification's limit).
    pub version: String,
    /// Sign it with the backend's key (default true).
    pub signed: Option<bool>,
}

/// A rollout to start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutBody {
    /// The image.
    pub image_id: i64,
    /// The chargers (1 to 1,000, registered).
    pub chargers: Vec<String>,
    /// Send a signed update (1.6 SignedUpdateFirmware; 2.x with the signature); default:
    /// when the image is signed.
    pub signed: Option<bool>,
    /// Download retries (0 to 10).
    pub retries: Option<i32>,
    /// Seconds between retries (0 to 3600).
    pub retry_interval: Option<i32>,
    /// Install not before (signed 1.6, 2.x).
    pub install_at: Option<DateTime<Utc>>,
}

/// A log to ask for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogBody {
    /// `DiagnosticsLog` (default) or `SecurityLog`.
    pub log_type: Option<String>,
    /// (1.6) Use GetDiagnostics instead of GetLog.
    pub diagnostics: Option<bool>,
}

/// The filter of `GET /api/logs`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Only this charger's.
    pub charger: Option<String>,
}

/// The routes, merged into [`api::router`] (roles in [`api::ROUTES`]).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/api/firmware/images",
            get(images)
                .post(upload_image)
                .layer(DefaultBodyLimit::max(MAX_IMAGE_BYTES)),
        )
        .route("/firmware/{token}/{name}", get(download))
        .route("/api/firmware/rollouts", get(rollouts).post(start_rollout))
        .route("/api/firmware/rollouts/{id}", get(rollout))
        .route(
            "/api/chargers/{id}/firmware/rollouts/{rollout}",
            post(send_rollout),
        )
        .route("/api/chargers/{id}/logs", post(request_log))
        .route("/api/logs", get(logs))
        .route("/api/logs/files/{id}", get(log_file))
        .route(
            "/uploads/{token}",
            axum::routing::put(upload)
                .post(upload)
                .layer(DefaultBodyLimit::max(MAX_LOG_BYTES)),
        )
        .route(
            "/uploads/{token}/{name}",
            axum::routing::put(upload_named)
                .post(upload_named)
                .layer(DefaultBodyLimit::max(MAX_LOG_BYTES)),
        )
        .route("/firmware.js", get(panel_js))
}

/// The OpenAPI paths of these routes.
#[derive(OpenApi)]
#[openapi(
    paths(
        images,
        upload_image,
        download,
        rollouts,
        start_rollout,
        rollout,
        send_rollout,
        request_log,
        logs,
        log_file,
        upload,
        upload_named
    ),
    components(schemas(
        ImageRow,
        RolloutRow,
        TargetRow,
        RolloutBody,
        LogBody,
        LogRequestRow,
        LogFileRow
    ))
)]
pub struct FirmwareDoc;

async fn panel_js() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/javascript; charset=utf-8",
        )],
        include_str!("../../dashboard/firmware.js"),
    )
}

/// `http://{Host}` of the operator's request: where chargers reach this backend.
fn base(headers: &HeaderMap) -> Result<String, ApiError> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
        .map(|h| format!("http://{h}"))
        .ok_or_else(|| ApiError::bad("invalid_request", "no Host header"))
}

fn not_found(what: String) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no {what}"))
}

fn firmware_failed(e: FirmwareError) -> ApiError {
    match e {
        FirmwareError::Db(e) => e.into(),
        FirmwareError::Unknown(w) => not_found(w),
        e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

fn body_failed(r: BytesRejection) -> ApiError {
    // 413 for a body over the route's limit.
    ApiError::new(r.status(), "invalid_body", r.body_text())
}

/// The firmware images.
#[utoipa::path(get, path = "/api/firmware/images", responses((status = 200, body = [ImageRow])))]
async fn images(State(b): State<Shared>) -> Result<Json<Vec<ImageRow>>, ApiError> {
    Ok(Json(b.firmware().images().await?))
}

/// Uploads a firmware image (the raw body, at most 8 MiB); stores its SHA-256 and, unless
/// `signed=false`, the backend's signature.
#[utoipa::path(post, path = "/api/firmware/images", params(ImageQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = ImageRow), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn upload_image(
    State(b): State<Shared>,
    Q(q): Q<ImageQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ImageRow>, ApiError> {
    let data = body.map_err(body_failed)?;
    let name_ok = (1..=100).contains(&q.name.len())
        && q.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !name_ok || q.name.starts_with('.') {
        return Err(ApiError::bad(
            "invalid_query",
            "name must be 1 to 100 of A-Z a-z 0-9 . _ - (not starting with .)",
        ));
    }
    let n = q.version.chars().count();
    if n == 0 || n > 50 || q.version.chars().any(char::is_control) {
        return Err(ApiError::bad(
            "invalid_query",
            "version must be 1 to 50 characters",
        ));
    }
    if data.is_empty() {
        return Err(ApiError::bad("invalid_body", "the image is empty"));
    }
    b.firmware()
        .add_image(&q.name, &q.version, &data, q.signed.unwrap_or(true))
        .await
        .map(Json)
        .map_err(firmware_failed)
}

/// A firmware image, for chargers (the path of an image's `path`).
#[utoipa::path(get, path = "/firmware/{token}/{name}",
    params(("token" = String, Path, description = "The image's download token"), ("name" = String, Path, description = "Its file name")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 404, body = ErrorBody)))]
async fn download(
    State(b): State<Shared>,
    P((token, name)): P<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let data = b
        .firmware()
        .download(&token, &name)
        .await?
        .ok_or_else(|| not_found("such image".into()))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], data))
}

/// The newest rollouts, with each charger's status and the progress.
#[utoipa::path(get, path = "/api/firmware/rollouts", responses((status = 200, body = [RolloutRow])))]
async fn rollouts(State(b): State<Shared>) -> Result<Json<Vec<RolloutRow>>, ApiError> {
    Ok(Json(b.firmware().rollouts().await?))
}

/// One rollout.
#[utoipa::path(get, path = "/api/firmware/rollouts/{id}", params(("id" = i64, Path, description = "Rollout id")),
    responses((status = 200, body = RolloutRow), (status = 404, body = ErrorBody)))]
async fn rollout(State(b): State<Shared>, P(id): P<i64>) -> Result<Json<RolloutRow>, ApiError> {
    b.firmware()
        .get_rollout(id)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(format!("rollout {id}")))
}

/// Starts a rollout: UpdateFirmware (1.6 signed: SignedUpdateFirmware) to each charger; a
/// charger that is not connected or does not accept is recorded so. On a cluster each
/// charger's update is sent by the node holding it (`POST
/// /api/chargers/{id}/firmware/rollouts/{rollout}` run there), so a rollout started on one
/// node reaches every node's chargers; a node that does not answer in time is recorded as
/// the charger's `Failed` with why.
#[utoipa::path(post, path = "/api/firmware/rollouts", request_body = RolloutBody,
    responses((status = 200, body = RolloutRow), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 503, body = ErrorBody)))]
async fn start_rollout(
    State(b): State<Shared>,
    headers: HeaderMap,
    axum::Extension(who): axum::Extension<Option<super::auth::Principal>>,
    Body(body): Body<RolloutBody>,
) -> Result<Json<RolloutRow>, ApiError> {
    let base = base(&headers)?;
    if body.chargers.is_empty() || body.chargers.len() > MAX_ROLLOUT_CHARGERS {
        return Err(ApiError::bad(
            "invalid_body",
            format!("chargers must name 1 to {MAX_ROLLOUT_CHARGERS} chargers"),
        ));
    }
    if body.retries.is_some_and(|r| !(0..=10).contains(&r))
        || body
            .retry_interval
            .is_some_and(|r| !(0..=3600).contains(&r))
    {
        return Err(ApiError::bad(
            "invalid_body",
            "retries must be 0 to 10, retryInterval 0 to 3600",
        ));
    }
    let image = b
        .firmware()
        .image(body.image_id)
        .await?
        .ok_or_else(|| not_found(format!("image {}", body.image_id)))?;
    let mut targets: Vec<String> = Vec::with_capacity(body.chargers.len());
    for c in &body.chargers {
        if targets.contains(c) {
            continue;
        }
        if b.chargers().get(c).is_none() && b.db().charger(c).await?.is_none() {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_charger",
                format!("no charger {c:?}"),
            ));
        }
        targets.push(c.clone());
    }
    let located = api::locate(&b, &targets).await?;
    let signed = body.signed.unwrap_or(image.signed) && image.signed;
    let (id, update) = b
        .firmware()
        .create_rollout(
            image.id,
            &targets,
            &base,
            signed,
            body.retries,
            body.retry_interval,
            body.install_at,
        )
        .await
        .map_err(firmware_failed)?;
    let update = std::sync::Arc::new(update);
    // At most ROLLOUT_CONCURRENCY UpdateFirmware calls (here or routed) wait at once.
    let results: Vec<Result<(), super::DbError>> =
        futures::stream::iter(targets.into_iter().zip(located))
            .map(|(charger, target)| {
                let (b, update, who) = (b.clone(), update.clone(), who.clone());
                async move {
                    let firmware = b.firmware();
                    match target {
                        api::Target::Here(h) => {
                            firmware.send(id, &update, &charger, Some(&h)).await
                        }
                        api::Target::Offline => firmware.send(id, &update, &charger, None).await,
                        api::Target::Node(node) => {
                            let Some(who) = who else {
                                return firmware
                                    .failed(id, &charger, "no authenticated operator to act for")
                                    .await;
                            };
                            let uri =
                                api::charger_path(&charger, &format!("/firmware/rollouts/{id}"));
                            let answer = api::run_on_node(
                                &b,
                                &node,
                                &who,
                                "POST",
                                uri,
                                &serde_json::Value::Null,
                            )
                            .await;
                            match answer {
                                // The node holding it sent it and recorded its answer.
                                Ok((status, _)) if status.is_success() => Ok(()),
                                Ok((_, e)) => {
                                    let why = e["error"]["message"]
                                        .as_str()
                                        .map_or_else(|| e.to_string(), str::to_owned);
                                    firmware.failed(id, &charger, &why).await
                                }
                                Err(e) => firmware.failed(id, &charger, e.message()).await,
                            }
                        }
                    }
                }
            })
            .buffer_unordered(super::firmware::ROLLOUT_CONCURRENCY)
            .collect()
            .await;
    for r in results {
        r?;
    }
    b.firmware()
        .get_rollout(id)
        .await?
        .map(Json)
        .ok_or_else(|| not_found(format!("rollout {id}")))
}

/// Sends rollout `rollout`'s UpdateFirmware to one of its chargers (again) and records the
/// answer: how a rollout reaches the chargers another cluster node holds (the node asked
/// runs this on the node holding each), and a retry of one target. The charger must be a
/// target of the rollout (404 otherwise); not connected: 409 `charger_offline`, recorded
/// `Failed`.
#[utoipa::path(post, path = "/api/chargers/{id}/firmware/rollouts/{rollout}", params(
    ("id" = String, Path, description = "Charger identity"), ("rollout" = i64, Path, description = "Rollout id")),
    responses((status = 200, body = TargetRow), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn send_rollout(
    State(b): State<Shared>,
    P((charger, rollout)): P<(String, i64)>,
) -> Result<Json<TargetRow>, ApiError> {
    let firmware = b.firmware();
    if !firmware.is_target(rollout, &charger).await? {
        return Err(not_found(format!(
            "charger {charger:?} in rollout {rollout}"
        )));
    }
    let update = firmware
        .update_of(rollout)
        .await
        .map_err(firmware_failed)?
        .ok_or_else(|| not_found(format!("rollout {rollout}")))?;
    let handle = b.chargers().get(&charger).filter(|h| h.is_connected());
    firmware
        .send(rollout, &update, &charger, handle.as_ref())
        .await?;
    if handle.is_none() {
        return Err(api::connected(&b, &charger).await.err().unwrap_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "charger_offline",
                format!("charger {charger:?} is not connected"),
            )
        }));
    }
    firmware
        .get_rollout(rollout)
        .await?
        .and_then(|r| r.targets.into_iter().find(|t| t.charger == charger))
        .map(Json)
        .ok_or_else(|| not_found(format!("rollout {rollout}")))
}

fn upload_failed(b: &Shared, version: Version, action: &str, e: UploadError) -> ApiError {
    match e {
        UploadError::Db(e) => e.into(),
        UploadError::Call(e) => api::call_failed(b, version, action, e),
        UploadError::UnknownToken => not_found("upload expected here".into()),
        UploadError::TooMany => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
        e => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

/// Asks a charger for a log: GetLog (`DiagnosticsLog` or `SecurityLog`), or on 1.6 with
/// `diagnostics` GetDiagnostics. The row carries the charger's answer as its status.
#[utoipa::path(post, path = "/api/chargers/{id}/logs", params(("id" = String, Path, description = "Charger identity")),
    request_body = LogBody, responses((status = 200, body = LogRequestRow), (status = 400, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn request_log(
    State(b): State<Shared>,
    headers: HeaderMap,
    P(id): P<String>,
    Body(body): Body<LogBody>,
) -> Result<Json<LogRequestRow>, ApiError> {
    let base = base(&headers)?;
    let h = api::connected(&b, &id).await?;
    let log_type = match body.log_type.as_deref() {
        None | Some("DiagnosticsLog") => LogType::Diagnostics,
        Some("SecurityLog") => LogType::Security,
        Some(other) => {
            return Err(ApiError::bad(
                "invalid_body",
                format!("logType {other:?}: DiagnosticsLog or SecurityLog"),
            ))
        }
    };
    let diagnostics = body.diagnostics.unwrap_or(false);
    if diagnostics && (h.version() != Version::V16 || log_type == LogType::Security) {
        return Err(ApiError::bad(
            "invalid_body",
            "diagnostics (GetDiagnostics) is 1.6 only and uploads the diagnostics log",
        ));
    }
    let action = if diagnostics {
        "GetDiagnostics"
    } else {
        "GetLog"
    };
    b.uploads()
        .request(&h, log_type, diagnostics, &base)
        .await
        .map(Json)
        .map_err(|e| upload_failed(&b, h.version(), action, e))
}

/// The log requests with their status and the files received.
#[utoipa::path(get, path = "/api/logs", params(LogQuery), responses((status = 200, body = [LogRequestRow])))]
async fn logs(
    State(b): State<Shared>,
    Q(q): Q<LogQuery>,
) -> Result<Json<Vec<LogRequestRow>>, ApiError> {
    Ok(Json(b.uploads().list(q.charger.as_deref()).await?))
}

/// A file a charger uploaded.
#[utoipa::path(get, path = "/api/logs/files/{id}", params(("id" = i64, Path, description = "File id")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>), (status = 404, body = ErrorBody)))]
async fn log_file(State(b): State<Shared>, P(id): P<i64>) -> Result<impl IntoResponse, ApiError> {
    let (name, data) = b
        .uploads()
        .file(id)
        .await?
        .ok_or_else(|| not_found(format!("file {id}")))?;
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{safe}\""),
            ),
        ],
        data,
    ))
}

async fn receive(
    b: &Shared,
    token: &str,
    name: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<LogFileRow>, ApiError> {
    let data = body.map_err(body_failed)?;
    b.uploads()
        .receive(token, name, &data)
        .await
        .map(Json)
        .map_err(|e| upload_failed(b, Version::V16, "upload", e))
}

/// Where a charger uploads the file of a log request (the raw body, at most 1 MiB).
#[utoipa::path(method(put, post), path = "/uploads/{token}", params(("token" = String, Path, description = "The request's upload token")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = LogFileRow), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn upload(
    State(b): State<Shared>,
    P(token): P<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<LogFileRow>, ApiError> {
    receive(&b, &token, "upload.log", body).await
}

/// Where a charger uploads the file of a log request, under its own file name.
#[utoipa::path(method(put, post), path = "/uploads/{token}/{name}",
    params(("token" = String, Path, description = "The request's upload token"), ("name" = String, Path, description = "The file name")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = LogFileRow), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
async fn upload_named(
    State(b): State<Shared>,
    P((token, name)): P<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<LogFileRow>, ApiError> {
    let name: String = name.chars().take(255).collect();
    receive(&b, &token, &name, body).await
}
