//! The HTTP routes of the chargers' certificates ([`super::pki`]):
//!
//! | route | role | what |
//! |---|---|---|
//! | `GET /api/certificates` | viewer | every charger's certificates with a known expiry, soonest first |
//! | `GET /api/chargers/{id}/certificates` | viewer | issued and installed certificates, with days left |
//! | `POST /api/chargers/{id}/certificates/install` | admin | InstallCertificate of a CA certificate |
//! | `POST /api/chargers/{id}/certificates/refresh` | operator | GetInstalledCertificateIds; replaces the installed rows |
//! | `POST /api/chargers/{id}/certificates/delete` | admin | DeleteCertificate by hash data |
//! | `POST /api/chargers/{id}/certificates/renew` | operator | trigger of a new SignCertificate |
//!
//! The charger's answer is returned as `{"status": ...}` (200) whatever it says; a request
//! the version cannot carry (an unknown kind, a certificate over 5500 characters) is 400
//! before anything is sent.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use ocpp_central::certificates::CertificateKind;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::api::{self, ApiError, ErrorBody, P};
use super::pki::{self, CertRecord, ExpiringRecord, HashJson};
use super::Shared;

/// The routes, merged into [`api::router`] (roles in [`api::ROUTES`]).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/certificates", get(expiring))
        .route("/certificates.js", get(panel_js))
        .route("/api/chargers/{id}/certificates", get(list))
        .route("/api/chargers/{id}/certificates/install", post(install))
        .route("/api/chargers/{id}/certificates/refresh", post(refresh))
        .route("/api/chargers/{id}/certificates/delete", post(delete))
        .route("/api/chargers/{id}/certificates/renew", post(renew))
}

/// The OpenAPI paths of these routes.
#[derive(OpenApi)]
#[openapi(
    paths(expiring, list, install, refresh, delete, renew),
    components(schemas(
        CertRecord,
        ExpiringRecord,
        HashJson,
        InstallBody,
        CertAnswer,
        Refreshed
    ))
)]
pub struct CertsDoc;

/// A CA certificate to install.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstallBody {
    /// `CSMSRootCertificate` (1.6: `CentralSystemRootCertificate`),
    /// `ManufacturerRootCertificate`, 2.x `V2GRootCertificate`, `MORootCertificate`.
    pub kind: String,
    /// The certificate, PEM (at most 5500 characters).
    pub certificate: String,
}

/// The charger's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CertAnswer {
    /// The status the charger sent.
    pub status: String,
}

/// The answer to a refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct Refreshed {
    /// `Accepted` or `NotFound`.
    pub status: String,
    /// What the charger reported.
    pub certificates: Vec<CertRecord>,
}

fn kind(s: &str) -> Result<CertificateKind, ApiError> {
    CertificateKind::parse(s)
        .ok_or_else(|| ApiError::bad("invalid_kind", format!("no certificate kind {s:?}")))
}

fn refused(
    b: &Shared,
    version: ocpp_central::ocpp_types::Version,
    action: &str,
    e: ocpp_central::CallError,
) -> ApiError {
    api::call_failed(b, version, action, e)
}

/// How many certificates `GET /api/certificates` lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ExpiringQuery {
    /// At most this many (default 100, at most 1,000).
    pub limit: Option<i64>,
}

/// Every charger's certificates with a known expiry, the soonest first (viewer): what to
/// renew next (`daysLeft` negative: expired).
#[utoipa::path(get, path = "/api/certificates", params(ExpiringQuery),
    responses((status = 200, body = [ExpiringRecord])))]
async fn expiring(
    State(b): State<Shared>,
    axum::extract::Query(q): axum::extract::Query<ExpiringQuery>,
) -> Result<Json<Vec<ExpiringRecord>>, ApiError> {
    Ok(Json(pki::expiring(b.db(), q.limit.unwrap_or(100)).await?))
}

/// The dashboard's certificate panel.
async fn panel_js() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/javascript; charset=utf-8",
        )],
        include_str!("../../dashboard/certificates.js"),
    )
}

/// A charger's certificates (viewer): issued to it and installed on it, newest first.
#[utoipa::path(get, path = "/api/chargers/{id}/certificates", params(("id" = String, Path, description = "Charger identity")),
    responses((status = 200, body = [CertRecord])))]
async fn list(
    State(b): State<Shared>,
    P(id): P<String>,
) -> Result<Json<Vec<CertRecord>>, ApiError> {
    Ok(Json(pki::list(b.db(), &id).await?))
}

/// Installs a CA certificate on a connected charger (admin).
#[utoipa::path(post, path = "/api/chargers/{id}/certificates/install", params(("id" = String, Path, description = "Charger identity")),
    request_body = InstallBody,
    responses((status = 200, body = CertAnswer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn install(
    State(b): State<Shared>,
    P(id): P<String>,
    Json(body): Json<InstallBody>,
) -> Result<Json<CertAnswer>, ApiError> {
    let k = kind(&body.kind)?;
    let handle = api::connected(&b, &id).await?;
    let answer = handle
        .install_certificate(k, &body.certificate)
        .await
        .map_err(|e| refused(&b, handle.version(), "InstallCertificate", e))?;
    b.log_call(&id, "InstallCertificate", Some(&answer.status))
        .await;
    if answer.status == "Accepted" {
        if let Some(r) = CertRecord::of(&body.certificate, None, k.as_str()) {
            pki::store(b.db(), &id, "installed", &r).await?;
        }
    }
    Ok(Json(CertAnswer {
        status: answer.status,
    }))
}

/// Asks a connected charger for its installed certificates and stores them (operator).
#[utoipa::path(post, path = "/api/chargers/{id}/certificates/refresh", params(("id" = String, Path, description = "Charger identity")),
    responses((status = 200, body = Refreshed), (status = 404, body = ErrorBody)))]
async fn refresh(State(b): State<Shared>, P(id): P<String>) -> Result<Json<Refreshed>, ApiError> {
    let handle = api::connected(&b, &id).await?;
    let got = handle
        .get_installed_certificate_ids(&[])
        .await
        .map_err(|e| refused(&b, handle.version(), "GetInstalledCertificateIds", e))?;
    b.log_call(&id, "GetInstalledCertificateIds", Some(&got.status))
        .await;
    let records: Vec<CertRecord> = got
        .certificates
        .iter()
        .map(|c| CertRecord {
            kind: c.kind.as_str().to_owned(),
            serial: c
                .hash
                .serial_number
                .trim_start_matches('0')
                .to_ascii_lowercase(),
            subject: String::new(),
            not_after: None,
            days_left: None,
            hash: Some(HashJson::from(&c.hash)),
        })
        .collect();
    pki::replace_installed(b.db(), &id, &records).await?;
    Ok(Json(Refreshed {
        status: got.status,
        certificates: pki::list(b.db(), &id)
            .await?
            .into_iter()
            .filter(|r| r.kind != "ChargingStationCertificate")
            .collect(),
    }))
}

/// Deletes a certificate from a connected charger by its hash data (admin).
#[utoipa::path(post, path = "/api/chargers/{id}/certificates/delete", params(("id" = String, Path, description = "Charger identity")),
    request_body = HashJson,
    responses((status = 200, body = CertAnswer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete(
    State(b): State<Shared>,
    P(id): P<String>,
    Json(hash): Json<HashJson>,
) -> Result<Json<CertAnswer>, ApiError> {
    let handle = api::connected(&b, &id).await?;
    let answer = handle
        .delete_certificate(&(&hash).into())
        .await
        .map_err(|e| refused(&b, handle.version(), "DeleteCertificate", e))?;
    b.log_call(&id, "DeleteCertificate", Some(&answer.status))
        .await;
    if answer.status == "Accepted" {
        pki::remove_installed(b.db(), &id, &hash.serial_number).await?;
    }
    Ok(Json(CertAnswer {
        status: answer.status,
    }))
}

/// Asks a connected charger to renew its certificate: it sends a new CSR, which the
/// central system's CA signs (operator).
#[utoipa::path(post, path = "/api/chargers/{id}/certificates/renew", params(("id" = String, Path, description = "Charger identity")),
    responses((status = 200, body = CertAnswer), (status = 404, body = ErrorBody)))]
async fn renew(State(b): State<Shared>, P(id): P<String>) -> Result<Json<CertAnswer>, ApiError> {
    let handle = api::connected(&b, &id).await?;
    let action = if handle.version() == ocpp_central::ocpp_types::Version::V16 {
        "ExtendedTriggerMessage"
    } else {
        "TriggerMessage"
    };
    let answer = handle
        .trigger_certificate_signing()
        .await
        .map_err(|e| refused(&b, handle.version(), action, e))?;
    b.log_call(&id, action, Some(&answer.status)).await;
    Ok(Json(CertAnswer {
        status: answer.status,
    }))
}
