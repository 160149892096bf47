//! The HTTP routes of the per-site and connectivity analytics ([`super::analytics`]), all
//! for viewers:
//!
//! | route | what |
//! |---|---|
//! | `GET /api/analytics/sites?days=` | sessions and energy per day per site |
//! | `GET /api/analytics/sites/{id}/power?hours=&bucketMinutes=` | a site's power over time (from the stored meter values) against its limit |
//! | `GET /api/analytics/connectivity?hours=&limit=` | heartbeat gaps and reconnect storms per charger |
//!
//! And the health alerts' webhook ([`super::alerts`]): `GET` (viewer), `PUT` and `DELETE`
//! (admin) `/api/health-alerts/webhook`, and the delivery log
//! `GET /api/health-alerts/deliveries?limit=` (viewer).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::alerts::{Delivery, Target};
use super::analytics::{self, Connectivity, PowerBucket, SiteDay, SiteDays, SitePower, Storm};
use super::api::{ApiError, Body, ErrorBody, P, Q};
use super::Shared;

/// The routes, merged into [`super::api::router`] (access in [`super::api::ROUTES`]).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/analytics/sites", get(sites))
        .route("/api/analytics/sites/{id}/power", get(site_power))
        .route("/api/analytics/connectivity", get(connectivity))
        .route(
            "/api/health-alerts/webhook",
            get(webhook).put(set_webhook).delete(delete_webhook),
        )
        .route("/api/health-alerts/deliveries", get(deliveries))
        .route("/site-analytics.js", get(panel_js))
}

/// The dashboard's panel (`dashboard/site-analytics.js`).
async fn panel_js() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/javascript; charset=utf-8",
        )],
        include_str!("../../dashboard/site-analytics.js"),
    )
}

/// The alert webhook as the API shows it (never the secret).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    /// The URL, if set.
    pub url: Option<String>,
}

/// The alert webhook to set.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookBody {
    /// `http://` or `https://` URL (at most 500 characters).
    pub url: String,
    /// The HMAC key the `Alert-Signature` header is made with (16 to 200 characters).
    pub secret: String,
}

/// The alert webhook.
#[utoipa::path(get, path = "/api/health-alerts/webhook", responses((status = 200, body = WebhookView)))]
async fn webhook(State(b): State<Shared>) -> Result<Json<WebhookView>, ApiError> {
    Ok(Json(WebhookView {
        url: b.alerts().target().await?.map(|t| t.url),
    }))
}

/// Sets the alert webhook: from now on each change of a charger's health flag is posted there
/// once ([`super::alerts`]).
#[utoipa::path(put, path = "/api/health-alerts/webhook", request_body = WebhookBody,
    responses((status = 200, body = WebhookView), (status = 400, body = ErrorBody)))]
async fn set_webhook(
    State(b): State<Shared>,
    Body(body): Body<WebhookBody>,
) -> Result<Json<WebhookView>, ApiError> {
    let url_ok = (body.url.starts_with("http://") || body.url.starts_with("https://"))
        && body.url.len() <= 500
        && reqwest::Url::parse(&body.url).is_ok();
    if !url_ok {
        return Err(ApiError::bad(
            "invalid_body",
            "url: an http:// or https:// URL of at most 500 characters",
        ));
    }
    if !(16..=200).contains(&body.secret.chars().count()) {
        return Err(ApiError::bad(
            "invalid_body",
            "secret: 16 to 200 characters",
        ));
    }
    b.alerts()
        .set_target(Some(&Target {
            url: body.url.clone(),
            secret: body.secret,
        }))
        .await?;
    Ok(Json(WebhookView {
        url: Some(body.url),
    }))
}

/// Removes the alert webhook (no more deliveries are queued).
#[utoipa::path(delete, path = "/api/health-alerts/webhook", responses((status = 204)))]
async fn delete_webhook(State(b): State<Shared>) -> Result<StatusCode, ApiError> {
    b.alerts().set_target(None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The size of `GET /api/health-alerts/deliveries`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// At most this many, newest first (1 to 500, default 50).
    pub limit: Option<i64>,
}

/// The delivery log of the health alerts, newest first.
#[utoipa::path(get, path = "/api/health-alerts/deliveries", params(DeliveriesQuery),
    responses((status = 200, body = [Delivery])))]
async fn deliveries(
    State(b): State<Shared>,
    Q(q): Q<DeliveriesQuery>,
) -> Result<Json<Vec<Delivery>>, ApiError> {
    Ok(Json(b.alerts().deliveries(q.limit.unwrap_or(50)).await?))
}

/// The window of `GET /api/analytics/sites`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SiteDaysQuery {
    /// Days back, 1 to 366 (default 14).
    pub days: Option<i64>,
}

/// Sessions and energy per day per site ([`analytics::site_daily`]).
#[utoipa::path(get, path = "/api/analytics/sites", params(SiteDaysQuery),
    responses((status = 200, body = [SiteDays])))]
async fn sites(
    State(b): State<Shared>,
    Q(q): Q<SiteDaysQuery>,
) -> Result<Json<Vec<SiteDays>>, ApiError> {
    b.flush().await;
    Ok(Json(
        analytics::site_daily(b.db(), q.days.unwrap_or(14), Utc::now()).await?,
    ))
}

/// The window of `GET /api/analytics/sites/{id}/power`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(rename_all = "camelCase")]
pub struct PowerQuery {
    /// Hours back, 1 to 168 (default 24).
    pub hours: Option<i64>,
    /// Bucket length, 1 to 1440 minutes (default 15).
    pub bucket_minutes: Option<i64>,
}

/// A site's power over time against its limit ([`analytics::site_power`]).
#[utoipa::path(get, path = "/api/analytics/sites/{id}/power", params(("id" = i64, Path, description = "Site id"), PowerQuery),
    responses((status = 200, body = SitePower), (status = 404, body = ErrorBody)))]
async fn site_power(
    State(b): State<Shared>,
    P(id): P<i64>,
    Q(q): Q<PowerQuery>,
) -> Result<Json<SitePower>, ApiError> {
    let site = b.sites().get(id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_site",
            format!("no site {id}"),
        )
    })?;
    b.flush().await;
    let now = Utc::now();
    let hours = q.hours.unwrap_or(24).clamp(1, 168);
    let mut sessions = Vec::new();
    for s in analytics::site_sessions(b.db(), id, now - Duration::hours(hours)).await? {
        sessions.push(b.samples_flushed(s).await?);
    }
    Ok(Json(analytics::site_power(
        id,
        b.sites().limit_w(&site),
        &sessions,
        hours,
        q.bucket_minutes.unwrap_or(15),
        now,
    )))
}

/// The window of `GET /api/analytics/connectivity`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConnectivityQuery {
    /// Hours back, 1 to 168 (default 24).
    pub hours: Option<i64>,
    /// At most this many chargers (1 to 500, default 50).
    pub limit: Option<usize>,
}

/// Heartbeat gaps and reconnect storms per charger ([`analytics::connectivity`]).
#[utoipa::path(get, path = "/api/analytics/connectivity", params(ConnectivityQuery),
    responses((status = 200, body = [Connectivity])))]
async fn connectivity(
    State(b): State<Shared>,
    Q(q): Q<ConnectivityQuery>,
) -> Result<Json<Vec<Connectivity>>, ApiError> {
    b.flush().await;
    Ok(Json(
        analytics::connectivity(
            b.db(),
            q.hours.unwrap_or(24),
            q.limit.unwrap_or(50),
            Utc::now(),
        )
        .await?,
    ))
}

/// The OpenAPI paths of these routes.
#[derive(OpenApi)]
#[openapi(
    paths(
        sites,
        site_power,
        connectivity,
        webhook,
        set_webhook,
        delete_webhook,
        deliveries
    ),
    components(schemas(
        SiteDays,
        SiteDay,
        SitePower,
        PowerBucket,
        Connectivity,
        Storm,
        WebhookView,
        WebhookBody,
        Delivery
    ))
)]
pub struct AnalyticsDoc;
