//! The HTTP routes of sites and the load balancer ([`super::sites`]): create, read, update
//! and delete sites (admin), change a site's limit (operator), put chargers on a site
//! (admin), read the current plan and the measured power over time (viewer), and the
//! dashboard's panel (`/sites.js`). Their roles are in [`super::api::ROUTES`].

use std::collections::HashMap;
use std::str::FromStr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use super::api::{ApiError, Body, ErrorBody, P};
use super::balancer::Queued;
use super::sites::{
    BalancerStats, OrderError, OrderKind, PlannedSession, PowerPoint, ProfileOrder, SiteRow,
    SiteSettings, SiteUnit,
};
use super::Shared;

/// The most a site's limit may be: 1,000,000,000 W (or A).
const MAX_VALUE: i64 = 1_000_000_000;
/// The longest site name.
const MAX_NAME: usize = 100;

/// A site's settings (`POST /api/sites`, `PUT /api/sites/{id}`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SiteBody {
    /// Name (1 to 100 characters).
    pub name: String,
    /// The grid limit, in `unit` (a decimal: number or string).
    #[schema(value_type = String)]
    pub limit: Decimal,
    /// `kW`, `W` or `A` (amperes per phase).
    pub unit: String,
    /// The lowest rate a session is given, else it is queued (default 1.38 kW, or 6 A).
    #[schema(value_type = Option<String>)]
    pub min_rate: Option<Decimal>,
    /// The most one EVSE draws (default 22 kW, or 32 A).
    #[schema(value_type = Option<String>)]
    pub evse_max: Option<Decimal>,
}

/// A new limit (`PUT /api/sites/{id}/limit`), in the site's unit, or in `unit` (`kW`, `W`,
/// `A`) when given: a site in W takes kW and W, a site in A takes A.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimitBody {
    /// The limit.
    #[schema(value_type = String)]
    pub limit: Decimal,
    /// Its unit.
    pub unit: Option<String>,
}

/// A site.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteView {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// The grid limit, in `unit`.
    #[schema(value_type = String)]
    pub limit: Decimal,
    /// `W` or `A` (per phase).
    pub unit: SiteUnit,
    /// The limit in W.
    #[schema(value_type = String)]
    pub limit_w: Decimal,
    /// The lowest rate a session is given, in `unit`.
    #[schema(value_type = String)]
    pub min_rate: Decimal,
    /// The most one EVSE draws, in `unit`.
    #[schema(value_type = String)]
    pub evse_max: Decimal,
    /// The site's chargers.
    pub chargers: Vec<String>,
    /// Sum of its sessions' measured power, W.
    #[schema(value_type = String)]
    pub measured_w: Decimal,
    /// Sessions balanced.
    pub sessions: usize,
    /// Of which queued.
    pub queued: usize,
}

/// The balancer's counters (all sites).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BalancerView {
    /// The counters.
    pub stats: BalancerStats,
}

fn view(b: &Shared, row: SiteRow) -> SiteView {
    let sites = b.sites();
    let plan = sites.plan_of(row.id).unwrap_or_default();
    SiteView {
        limit_w: sites.limit_w(&row),
        chargers: sites.chargers_of(row.id),
        measured_w: sites.measured_w(row.id).unwrap_or_default(),
        sessions: plan.len(),
        queued: plan.iter().filter(|p| p.queued.is_some()).count(),
        id: row.id,
        name: row.name,
        limit: row.limit,
        unit: row.unit,
        min_rate: row.min_rate,
        evse_max: row.evse_max,
    }
}

/// The views of `rows`. The settings and chargers are this node's (read from the shared
/// database); the plan's part (sessions, queued, measured power) is the planner's: a
/// cluster node that does not plan asks the planner for `uri` (`/api/sites` or
/// `/api/sites/{id}`) and takes those fields from its answer, so every node shows the one
/// plan. A site the planner does not know yet has no sessions. An answer of the planner
/// other than 200 (or none) is passed on.
async fn views(
    b: &Shared,
    who: Option<super::auth::Principal>,
    forwarded: bool,
    uri: &str,
    rows: Vec<SiteRow>,
) -> Result<Vec<SiteView>, axum::response::Response> {
    use axum::response::IntoResponse;
    let mut out: Vec<SiteView> = rows.into_iter().map(|r| view(b, r)).collect();
    let Some((status, body)) = ask_planner(b, who, forwarded, uri)
        .await
        .map_err(IntoResponse::into_response)?
    else {
        return Ok(out);
    };
    if status != StatusCode::OK {
        return Err((status, Json(body)).into_response());
    }
    let planned: HashMap<i64, &serde_json::Value> = match &body {
        serde_json::Value::Array(all) => all.iter().collect::<Vec<_>>(),
        one => vec![one],
    }
    .into_iter()
    .filter_map(|v| Some((v.get("id")?.as_i64()?, v)))
    .collect();
    for v in &mut out {
        let part = planned.get(&v.id).and_then(|p| {
            Some((
                Decimal::from_str(p.get("measuredW")?.as_str()?).ok()?,
                usize::try_from(p.get("sessions")?.as_u64()?).ok()?,
                usize::try_from(p.get("queued")?.as_u64()?).ok()?,
            ))
        });
        (v.measured_w, v.sessions, v.queued) = part.unwrap_or((Decimal::ZERO, 0, 0));
    }
    Ok(out)
}

/// The view of one site (see [`views`]).
async fn one_view(
    b: &Shared,
    who: Option<super::auth::Principal>,
    forwarded: bool,
    row: SiteRow,
) -> Result<Json<SiteView>, axum::response::Response> {
    use axum::response::IntoResponse;
    let uri = format!("/api/sites/{}", row.id);
    let id = row.id;
    views(b, who, forwarded, &uri, vec![row])
        .await?
        .pop()
        .map(Json)
        .ok_or_else(|| unknown_site(id).into_response())
}

fn unknown_site(id: i64) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_site",
        format!("no site {id}"),
    )
}

/// A value in a unit given by name, as (value in the site unit, site unit).
fn in_unit(value: Decimal, unit: &str) -> Result<(Decimal, SiteUnit), ApiError> {
    match unit {
        "kW" => Ok((value * Decimal::from(1000), SiteUnit::W)),
        "W" => Ok((value, SiteUnit::W)),
        "A" => Ok((value, SiteUnit::A)),
        other => Err(ApiError::bad(
            "invalid_body",
            format!("unit must be kW, W or A, not {other:?}"),
        )),
    }
}

fn check_value(what: &str, v: Decimal) -> Result<(), ApiError> {
    if v < Decimal::ZERO || v > Decimal::from(MAX_VALUE) {
        return Err(ApiError::bad(
            "invalid_body",
            format!("{what} must be 0 to {MAX_VALUE}"),
        ));
    }
    Ok(())
}

fn settings(body: SiteBody) -> Result<SiteSettings, ApiError> {
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(ApiError::bad(
            "invalid_body",
            format!("name must be 1 to {MAX_NAME} characters"),
        ));
    }
    let (limit, unit) = in_unit(body.limit, &body.unit)?;
    let scale = |v: Decimal| {
        if body.unit == "kW" {
            v * Decimal::from(1000)
        } else {
            v
        }
    };
    let min_rate = body.min_rate.map(scale).unwrap_or(match unit {
        SiteUnit::W => Decimal::from(1380),
        SiteUnit::A => Decimal::from(6),
    });
    let evse_max = body.evse_max.map(scale).unwrap_or(match unit {
        SiteUnit::W => Decimal::from(22_000),
        SiteUnit::A => Decimal::from(32),
    });
    check_value("limit", limit)?;
    check_value("minRate", min_rate)?;
    check_value("evseMax", evse_max)?;
    if min_rate > evse_max {
        return Err(ApiError::bad(
            "invalid_body",
            "minRate may not exceed evseMax",
        ));
    }
    Ok(SiteSettings {
        name,
        limit: limit.normalize(),
        unit,
        min_rate: min_rate.normalize(),
        evse_max: evse_max.normalize(),
    })
}

/// The routes (merged into [`super::api::router`], behind its guard).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/sites", get(list_sites).post(create_site))
        .route(
            "/api/sites/{id}",
            get(get_site).put(update_site).delete(delete_site),
        )
        .route("/api/sites/{id}/limit", put(set_limit))
        .route(
            "/api/sites/{id}/chargers/{charger}",
            put(assign_charger).delete(unassign_charger),
        )
        .route("/api/sites/{id}/plan", get(site_plan))
        .route(
            "/api/chargers/{id}/balancer-profile",
            axum::routing::post(balancer_profile),
        )
        .route("/api/sites/{id}/power", get(site_power))
        .route("/api/balancer", get(balancer_stats))
        .route("/sites.js", get(panel_js))
}

async fn panel_js() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/javascript; charset=utf-8",
        )],
        include_str!("../../dashboard/sites.js"),
    )
}

/// Every site (on a cluster node that does not plan, with the planner's sessions, queued
/// count and measured power; 503 when it cannot be asked).
#[utoipa::path(get, path = "/api/sites", responses((status = 200, body = [SiteView]), (status = 503, body = ErrorBody)))]
async fn list_sites(
    State(b): State<Shared>,
    axum::Extension(who): axum::Extension<Option<super::auth::Principal>>,
    forwarded: Option<axum::Extension<super::auth::Forwarded>>,
) -> Result<Json<Vec<SiteView>>, axum::response::Response> {
    use axum::response::IntoResponse;
    b.sites()
        .catch_up_all()
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    let rows = b.sites().list();
    views(&b, who, forwarded.is_some(), "/api/sites", rows)
        .await
        .map(Json)
}

/// Creates a site.
#[utoipa::path(post, path = "/api/sites", request_body = SiteBody,
    responses((status = 201, body = SiteView), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_site(
    State(b): State<Shared>,
    super::api::Body(body): super::api::Body<SiteBody>,
) -> Result<(StatusCode, Json<SiteView>), ApiError> {
    let s = settings(body)?;
    let row = b.sites().create(&s).await?;
    Ok((StatusCode::CREATED, Json(view(&b, row))))
}

/// One site (its plan's part from the planner on a cluster, as in the list).
#[utoipa::path(get, path = "/api/sites/{id}", params(("id" = i64, Path, description = "Site id")),
    responses((status = 200, body = SiteView), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn get_site(
    State(b): State<Shared>,
    axum::Extension(who): axum::Extension<Option<super::auth::Principal>>,
    forwarded: Option<axum::Extension<super::auth::Forwarded>>,
    P(id): P<i64>,
) -> Result<Json<SiteView>, axum::response::Response> {
    use axum::response::IntoResponse;
    b.sites()
        .catch_up(id)
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    let row = b
        .sites()
        .get(id)
        .ok_or_else(|| unknown_site(id).into_response())?;
    one_view(&b, who, forwarded.is_some(), row).await
}

/// Replaces a site's settings (and plans it again).
#[utoipa::path(put, path = "/api/sites/{id}", params(("id" = i64, Path, description = "Site id")), request_body = SiteBody,
    responses((status = 200, body = SiteView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn update_site(
    State(b): State<Shared>,
    axum::Extension(who): axum::Extension<Option<super::auth::Principal>>,
    forwarded: Option<axum::Extension<super::auth::Forwarded>>,
    P(id): P<i64>,
    super::api::Body(body): super::api::Body<SiteBody>,
) -> Result<Json<SiteView>, axum::response::Response> {
    use axum::response::IntoResponse;
    let row = async {
        let s = settings(body)?;
        b.sites()
            .update(id, &s)
            .await?
            .ok_or_else(|| unknown_site(id))
    }
    .await
    .map_err(IntoResponse::into_response)?;
    one_view(&b, who, forwarded.is_some(), row).await
}

/// Deletes a site; its chargers leave it (their balancer profiles are cleared).
#[utoipa::path(delete, path = "/api/sites/{id}", params(("id" = i64, Path, description = "Site id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_site(State(b): State<Shared>, P(id): P<i64>) -> Result<StatusCode, ApiError> {
    if b.sites().delete(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(unknown_site(id))
    }
}

/// Sets a site's grid limit: the balancer plans again at once.
#[utoipa::path(put, path = "/api/sites/{id}/limit", params(("id" = i64, Path, description = "Site id")), request_body = LimitBody,
    responses((status = 200, body = SiteView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn set_limit(
    State(b): State<Shared>,
    axum::Extension(who): axum::Extension<Option<super::auth::Principal>>,
    forwarded: Option<axum::Extension<super::auth::Forwarded>>,
    P(id): P<i64>,
    super::api::Body(body): super::api::Body<LimitBody>,
) -> Result<Json<SiteView>, axum::response::Response> {
    use axum::response::IntoResponse;
    let row = set_limit_row(&b, id, body)
        .await
        .map_err(IntoResponse::into_response)?;
    one_view(&b, who, forwarded.is_some(), row).await
}

/// Sets a site's limit: the site as stored.
async fn set_limit_row(b: &Shared, id: i64, body: LimitBody) -> Result<SiteRow, ApiError> {
    b.sites().catch_up(id).await?;
    let site = b.sites().get(id).ok_or_else(|| unknown_site(id))?;
    let limit = match body.unit.as_deref() {
        None => body.limit,
        Some(u) => {
            let (v, unit) = in_unit(body.limit, u)?;
            if unit != site.unit {
                return Err(ApiError::bad(
                    "invalid_body",
                    format!("site {id} is limited in {:?}, not {u}", site.unit),
                ));
            }
            v
        }
    };
    check_value("limit", limit)?;
    b.sites()
        .set_limit(id, limit.normalize())
        .await?
        .ok_or_else(|| unknown_site(id))
}

/// Puts a charger on a site (off its previous one).
#[utoipa::path(put, path = "/api/sites/{id}/chargers/{charger}",
    params(("id" = i64, Path, description = "Site id"), ("charger" = String, Path, description = "Charger identity")),
    responses((status = 200, body = SiteView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn assign_charger(
    State(b): State<Shared>,
    axum::Extension(who): axum::Extension<Option<super::auth::Principal>>,
    forwarded: Option<axum::Extension<super::auth::Forwarded>>,
    P((id, charger)): P<(i64, String)>,
) -> Result<Json<SiteView>, axum::response::Response> {
    use axum::response::IntoResponse;
    let row = async {
        ocpp_codec::transport::check_identity(&charger)
            .map_err(|e| ApiError::bad("invalid_path", e.to_string()))?;
        if !b.sites().assign(id, &charger).await? {
            return Err(unknown_site(id));
        }
        b.sites().get(id).ok_or_else(|| unknown_site(id))
    }
    .await
    .map_err(IntoResponse::into_response)?;
    one_view(&b, who, forwarded.is_some(), row).await
}

/// Takes a charger off a site.
#[utoipa::path(delete, path = "/api/sites/{id}/chargers/{charger}",
    params(("id" = i64, Path, description = "Site id"), ("charger" = String, Path, description = "Charger identity")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn unassign_charger(
    State(b): State<Shared>,
    P((id, charger)): P<(i64, String)>,
) -> Result<StatusCode, ApiError> {
    if b.sites().unassign(id, &charger).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("charger {charger:?} is not on site {id}"),
        ))
    }
}

/// The current plan: per session its limit, what was sent, its measured power and, when
/// queued, why.
#[utoipa::path(get, path = "/api/sites/{id}/plan", params(("id" = i64, Path, description = "Site id")),
    responses((status = 200, body = [PlannedSession]), (status = 404, body = ErrorBody)))]
async fn site_plan(
    State(b): State<Shared>,
    axum::Extension(who): axum::Extension<Option<super::auth::Principal>>,
    forwarded: Option<axum::Extension<super::auth::Forwarded>>,
    P(id): P<i64>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    if let Some(answer) = from_planner(
        &b,
        who,
        forwarded.is_some(),
        &format!("/api/sites/{id}/plan"),
    )
    .await?
    {
        return Ok(answer);
    }
    b.sites()
        .plan_of(id)
        .map(|p| Json(p).into_response())
        .ok_or_else(|| unknown_site(id))
}

/// On a cluster node that does not plan: the planner's answer to `uri` (the plan and the
/// measured power are the planner's); `None` where this node answers itself.
async fn from_planner(
    b: &Shared,
    who: Option<super::auth::Principal>,
    forwarded: bool,
    uri: &str,
) -> Result<Option<axum::response::Response>, ApiError> {
    use axum::response::IntoResponse;
    Ok(ask_planner(b, who, forwarded, uri)
        .await?
        .map(|(status, body)| (status, Json(body)).into_response()))
}

/// On a cluster node that does not plan: the planner's status and body for `GET uri`;
/// `None` where this node answers itself (it plans, the request was forwarded to it, or no
/// node plans now).
async fn ask_planner(
    b: &Shared,
    who: Option<super::auth::Principal>,
    forwarded: bool,
    uri: &str,
) -> Result<Option<(StatusCode, serde_json::Value)>, ApiError> {
    if b.sites().plans() || forwarded {
        return Ok(None);
    }
    let planner = b.sites().planner().await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "cluster_unavailable",
            format!("the cluster's broker does not answer: {e}"),
        )
    })?;
    let me = b.cluster().map(|c| c.node_id().to_owned());
    let (Some(node), Some(who)) = (planner.filter(|n| Some(n) != me.as_ref()), who) else {
        return Ok(None);
    };
    super::api::run_on_node(
        b,
        &node,
        &who,
        "GET",
        uri.to_owned(),
        &serde_json::Value::Null,
    )
    .await
    .map(Some)
}

/// Whether the charger accepted a balancer order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderAnswer {
    /// The charger accepted the profile (or cleared).
    pub accepted: bool,
}

/// Carries out an order of the site planner for a charger connected to this node: the
/// planner of a cluster (the node holding the planner lease) sends each profile of its plan
/// to the node holding the charger this way. A `tx` order whose fencing token is not the
/// current planner lease's is refused (409 `stale_plan`): a planner that lost its lease
/// changes nothing.
#[utoipa::path(post, path = "/api/chargers/{id}/balancer-profile", params(("id" = String, Path, description = "Charger identity")),
    request_body = ProfileOrder, responses((status = 200, body = OrderAnswer), (status = 400, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn balancer_profile(
    State(b): State<Shared>,
    P(id): P<String>,
    Body(order): Body<ProfileOrder>,
) -> Result<Json<OrderAnswer>, ApiError> {
    match b.sites().apply_order(&id, &order).await {
        Ok(accepted) => Ok(Json(OrderAnswer { accepted })),
        Err(e @ OrderError::Stale(..)) => {
            tracing::warn!(charger = %id, "sites: order of a stale planner refused: {e}");
            b.metrics().error("balancer", "stale_plan");
            Err(ApiError::new(
                StatusCode::CONFLICT,
                "stale_plan",
                e.to_string(),
            ))
        }
        Err(OrderError::Offline(_)) => Err(super::api::connected(&b, &id)
            .await
            .err()
            .unwrap_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "charger_offline",
                    format!("charger {id:?} is not connected"),
                )
            })),
        Err(e @ OrderError::Invalid(_)) => Err(ApiError::bad("invalid_body", e.to_string())),
        Err(e) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "cluster_unavailable",
            e.to_string(),
        )),
    }
}

/// The site's measured power over time against its limit (oldest first, one point per
/// second at most, the last 600).
#[utoipa::path(get, path = "/api/sites/{id}/power", params(("id" = i64, Path, description = "Site id")),
    responses((status = 200, body = [PowerPoint]), (status = 404, body = ErrorBody)))]
async fn site_power(
    State(b): State<Shared>,
    axum::Extension(who): axum::Extension<Option<super::auth::Principal>>,
    forwarded: Option<axum::Extension<super::auth::Forwarded>>,
    P(id): P<i64>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let uri = format!("/api/sites/{id}/power");
    if let Some(answer) = from_planner(&b, who, forwarded.is_some(), &uri).await? {
        return Ok(answer);
    }
    b.sites()
        .power_of(id)
        .map(|p| Json(p).into_response())
        .ok_or_else(|| unknown_site(id))
}

/// The balancer's counters: plans, profiles sent and failed, sessions not balanced.
#[utoipa::path(get, path = "/api/balancer", responses((status = 200, body = BalancerView)))]
async fn balancer_stats(State(b): State<Shared>) -> Json<BalancerView> {
    Json(BalancerView {
        stats: b.sites().stats(),
    })
}

/// The OpenAPI paths of these routes (merged into [`super::api::document`]).
#[derive(OpenApi)]
#[openapi(
    paths(
        list_sites,
        create_site,
        get_site,
        update_site,
        delete_site,
        set_limit,
        assign_charger,
        unassign_charger,
        site_plan,
        balancer_profile,
        site_power,
        balancer_stats
    ),
    components(schemas(
        SiteBody,
        LimitBody,
        SiteView,
        SiteUnit,
        PlannedSession,
        PowerPoint,
        Queued,
        BalancerStats,
        BalancerView,
        ProfileOrder,
        OrderKind,
        OrderAnswer
    ))
)]
pub struct SitesDoc;
