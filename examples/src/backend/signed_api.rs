//! The HTTP routes of signed meter values ([`super::signed`]):
//!
//! | route | role | what |
//! |---|---|---|
//! | `GET /api/sessions/{id}/signed-values` | viewer | the session's signed values with their verification status, the signed energy next to the unsigned one |
//! | `GET /api/sessions/{id}/signed-values/export` | viewer | `?format=xml` (default): the S.A.F.E. Transparenzsoftware's XML; `?format=ocmf`: one OCMF string per line |
//! | `GET /api/chargers/{id}/meter-keys` | viewer | the meter keys of a charger (registered and learned) |
//! | `PUT /api/chargers/{id}/meter-keys` | admin | registers a meter's public key (the trust anchor), then re-checks the charger's `NoKey` values |
//!
//! Bad input is 400: an unknown export format, a key that is not a P-256/P-384 public key
//! (`invalid_key`, with the reason), a meter serial over [`MAX_SERIAL`] characters, a charger
//! identity over [`MAX_IDENTITY`]; an unknown session is 404.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::api::{ApiError, Body, ErrorBody, P, Q};
use super::signed::{self, MeterKey, SignedRow};
use super::Shared;

/// The longest meter serial accepted.
pub const MAX_SERIAL: usize = 64;
/// The longest charger identity accepted (OCPP's identity limit).
pub const MAX_IDENTITY: usize = 48;

/// A meter key to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyBody {
    /// The meter serial (OCMF `MS`) it is for; absent or empty: any meter of the charger.
    #[serde(default)]
    pub meter_serial: String,
    /// The public key: DER SubjectPublicKeyInfo (or a bare uncompressed point) of a P-256 or
    /// P-384 key, as hex (the OCMF convention), base64 or PEM.
    pub public_key: String,
}

/// The answer to a key registration.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyAnswer {
    /// The charger's keys now.
    pub keys: Vec<MeterKey>,
    /// How many `NoKey` values were checked again with it.
    pub rechecked: usize,
}

/// The export's format.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `xml` (default, S.A.F.E. Transparenzsoftware) or `ocmf` (one OCMF string per line).
    pub format: Option<String>,
}

/// The routes, merged into [`super::api::router`] (roles in [`super::api::ROUTES`]).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/sessions/{id}/signed-values", get(list))
        .route("/api/sessions/{id}/signed-values/export", get(export))
        .route("/api/chargers/{id}/meter-keys", get(keys).put(put_key))
}

/// The OpenAPI paths of these routes.
#[derive(OpenApi)]
#[openapi(
    paths(list, export, keys, put_key),
    components(schemas(SignedRow, MeterKey, KeyBody, KeyAnswer))
)]
pub struct SignedDoc;

async fn known_session(b: &Shared, id: i64) -> Result<(), ApiError> {
    b.flush().await;
    match b.db().session(id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_session",
            format!("no session {id}"),
        )),
    }
}

/// A session's signed meter values, in arrival order, each with its verification status.
#[utoipa::path(get, path = "/api/sessions/{id}/signed-values", params(("id" = i64, Path, description = "Session id")),
    responses((status = 200, body = [SignedRow]), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list(State(b): State<Shared>, P(id): P<i64>) -> Result<Json<Vec<SignedRow>>, ApiError> {
    known_session(&b, id).await?;
    Ok(Json(b.signed().list(id).await?))
}

/// A session's OCMF values for a transparency tool: the S.A.F.E. Transparenzsoftware's XML
/// (`format=xml`, `application/xml`), or one OCMF string per line (`format=ocmf`,
/// `text/plain`). Values in other encodings are left out.
#[utoipa::path(get, path = "/api/sessions/{id}/signed-values/export", params(("id" = i64, Path, description = "Session id"), ExportQuery),
    responses((status = 200, description = "The export", content_type = "application/xml", body = String),
    (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn export(
    State(b): State<Shared>,
    P(id): P<i64>,
    Q(q): Q<ExportQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let format = q.format.unwrap_or_else(|| "xml".to_owned());
    if format != "xml" && format != "ocmf" {
        return Err(ApiError::bad(
            "invalid_query",
            format!("format must be xml or ocmf, not {format:.20?}"),
        ));
    }
    known_session(&b, id).await?;
    let rows = b.signed().list(id).await?;
    let disposition = format!("attachment; filename=\"session-{id}.{format}\"");
    Ok(if format == "xml" {
        (
            [
                (
                    header::CONTENT_TYPE,
                    "application/xml; charset=utf-8".to_owned(),
                ),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            signed::export_xml(&rows),
        )
    } else {
        (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            signed::export_ocmf(&rows),
        )
    })
}

fn identity(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.chars().count() > MAX_IDENTITY {
        return Err(ApiError::bad(
            "invalid_path",
            format!("a charger identity has 1 to {MAX_IDENTITY} characters"),
        ));
    }
    Ok(())
}

/// The meter keys of a charger: registered by the operator and learned from its messages.
#[utoipa::path(get, path = "/api/chargers/{id}/meter-keys", params(("id" = String, Path, description = "Charger identity")),
    responses((status = 200, body = [MeterKey]), (status = 400, body = ErrorBody)))]
async fn keys(State(b): State<Shared>, P(id): P<String>) -> Result<Json<Vec<MeterKey>>, ApiError> {
    identity(&id)?;
    Ok(Json(b.signed().keys(&id).await?))
}

/// Registers the public key of a charger's meter (or of all its meters): values are checked
/// against it before any key a message brings. The charger's `NoKey` values are checked
/// again.
#[utoipa::path(put, path = "/api/chargers/{id}/meter-keys", params(("id" = String, Path, description = "Charger identity")),
    request_body = KeyBody, responses((status = 200, body = KeyAnswer), (status = 400, body = ErrorBody)))]
async fn put_key(
    State(b): State<Shared>,
    P(id): P<String>,
    Body(body): Body<KeyBody>,
) -> Result<Json<KeyAnswer>, ApiError> {
    identity(&id)?;
    if body.meter_serial.chars().count() > MAX_SERIAL {
        return Err(ApiError::bad(
            "invalid_body",
            format!("a meter serial has at most {MAX_SERIAL} characters"),
        ));
    }
    let key = body.public_key.trim();
    ocpp_central::signed::check_public_key(key)
        .map_err(|e| ApiError::bad("invalid_key", e.to_string()))?;
    b.flush().await;
    let rechecked = b
        .signed()
        .register_key(&id, body.meter_serial.trim(), key)
        .await?;
    Ok(Json(KeyAnswer {
        keys: b.signed().keys(&id).await?,
        rechecked,
    }))
}
