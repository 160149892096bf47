//! The HTTP routes of [`super::catalog`]: what a driver searches and the operator's part of
//! it.
//!
//! | route | role | what |
//! |---|---|---|
//! | `GET /api/driver/chargers` | driver | one page of chargers with each connector's status, power, type and phases; filters `minPowerKw`, `connectorType`, `available`, `site`, `search`, `offset`, `limit` |
//! | `GET /api/driver/sites` | driver | every site with its location and available/total connectors per type |
//! | `GET /api/chargers/{id}/specs` | viewer | a charger's stored specs |
//! | `PUT`/`DELETE /api/chargers/{id}/connectors/{evse}/spec` | admin | sets (or removes) a connector's specs |
//! | `PUT /api/sites/{id}/location` | admin | sets a site's latitude, longitude and address |

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::api::{ApiError, Body, ErrorBody, P, Q};
use super::catalog::{
    self, FoundCharger, FoundConnector, Location, SiteSummary, Source, Spec, SpecRow, TypeCount,
};
use super::Shared;

/// The routes, merged into [`super::api::router`] (access in [`super::api::ROUTES`]).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/driver/chargers", get(chargers))
        .route("/api/driver/sites", get(sites))
        .route("/api/chargers/{id}/specs", get(specs))
        .route(
            "/api/chargers/{id}/connectors/{evse}/spec",
            put(set_spec).delete(delete_spec),
        )
        .route("/api/sites/{id}/location", put(set_location))
}

/// The filter of `GET /api/driver/chargers`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(rename_all = "camelCase")]
pub struct ChargerQuery {
    /// Identity or site name contains this (case-insensitive).
    pub search: Option<String>,
    /// Only chargers with a connector `Available` now.
    pub available: Option<bool>,
    /// Only chargers with a connector of at least this many kW (0 to 1,000,000).
    #[param(value_type = Option<String>)]
    pub min_power_kw: Option<Decimal>,
    /// Only chargers with a connector of this type (`cCCS2`, `cType2`, ...; case-insensitive).
    pub connector_type: Option<String>,
    /// Only chargers of this site.
    pub site: Option<i64>,
    /// Skip this many.
    pub offset: Option<usize>,
    /// At most this many (1 to 200, default 50).
    pub limit: Option<usize>,
}

/// Chargers with each connector's availability and specs, in one database query
/// ([`catalog::find`]); a connector filter (power, type, available) keeps chargers with one
/// connector meeting all of them.
#[utoipa::path(get, path = "/api/driver/chargers", params(ChargerQuery),
    responses((status = 200, body = [FoundCharger]), (status = 400, body = ErrorBody)))]
async fn chargers(
    State(b): State<Shared>,
    Q(q): Q<ChargerQuery>,
) -> Result<Json<Vec<FoundCharger>>, ApiError> {
    let min_power_w = match q.min_power_kw {
        None => None,
        Some(kw) => Some(
            kw.checked_mul(Decimal::from(1000))
                .filter(|w| *w >= Decimal::ZERO)
                .and_then(|w| w.ceil().to_i64())
                .filter(|w| *w <= catalog::MAX_POWER_W)
                .ok_or_else(|| {
                    ApiError::bad("invalid_query", "minPowerKw must be 0 to 1,000,000")
                })?,
        ),
    };
    if let Some(t) = q.connector_type.as_deref() {
        if !catalog::valid_type(t) {
            return Err(ApiError::bad(
                "invalid_query",
                "connectorType: 1 to 32 letters, digits, '-', '_' or '.'",
            ));
        }
    }
    if q.search.as_ref().is_some_and(|s| s.len() > 100) {
        return Err(ApiError::bad("invalid_query", "search: at most 100 bytes"));
    }
    b.flush().await;
    let filter = catalog::Filter {
        text: q.search,
        min_power_w,
        connector_type: q.connector_type,
        available: q.available.unwrap_or(false),
        site: q.site,
        offset: q.offset.unwrap_or(0),
        limit: q.limit.unwrap_or(50),
    };
    Ok(Json(catalog::find(b.db(), &filter).await?))
}

/// Every site with its location and its connectors available/total per type
/// ([`catalog::site_overview`]).
#[utoipa::path(get, path = "/api/driver/sites", responses((status = 200, body = [SiteSummary])))]
async fn sites(State(b): State<Shared>) -> Result<Json<Vec<SiteSummary>>, ApiError> {
    b.flush().await;
    Ok(Json(catalog::site_overview(b.db()).await?))
}

/// A charger's stored connector specs (reported or set by the operator).
#[utoipa::path(get, path = "/api/chargers/{id}/specs", params(("id" = String, Path, description = "Charger identity")),
    responses((status = 200, body = [SpecRow])))]
async fn specs(State(b): State<Shared>, P(id): P<String>) -> Result<Json<Vec<SpecRow>>, ApiError> {
    b.flush().await;
    Ok(Json(catalog::specs(b.db(), &id).await?))
}

/// A connector's specs as the operator sets them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpecBody {
    /// The connector within the EVSE (2.x); absent: the whole EVSE (and a 1.6 connector).
    pub connector: Option<i64>,
    /// The most power, kW (0 to 1,000,000).
    #[schema(value_type = Option<String>)]
    pub max_power_kw: Option<Decimal>,
    /// The connector type (1 to 32 letters, digits, `-`, `_`, `.`), e.g. `cCCS2`.
    pub connector_type: Option<String>,
    /// Supply phases, 0 (DC) to 3.
    pub phases: Option<i64>,
}

fn spec_of(body: &SpecBody) -> Result<Spec, ApiError> {
    let max_power_w = match body.max_power_kw {
        None => None,
        Some(kw) => Some(
            kw.checked_mul(Decimal::from(1000))
                .filter(|w| *w >= Decimal::ZERO && w.fract().is_zero())
                .and_then(|w| w.to_i64())
                .filter(|w| *w <= catalog::MAX_POWER_W)
                .ok_or_else(|| {
                    ApiError::bad(
                        "invalid_body",
                        "maxPowerKw must be 0 to 1,000,000 with at most 3 decimals",
                    )
                })?,
        ),
    };
    if let Some(t) = body.connector_type.as_deref() {
        if !catalog::valid_type(t) {
            return Err(ApiError::bad(
                "invalid_body",
                "connectorType: 1 to 32 letters, digits, '-', '_' or '.'",
            ));
        }
    }
    if body.phases.is_some_and(|p| !(0..=3).contains(&p)) {
        return Err(ApiError::bad("invalid_body", "phases must be 0 to 3"));
    }
    Ok(Spec {
        max_power_w,
        connector_type: body.connector_type.clone(),
        phases: body.phases,
    })
}

async fn known_charger(b: &Shared, id: &str) -> Result<(), ApiError> {
    if b.db().charger(id).await?.is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_charger",
            format!("no charger {id:?} has ever connected or been registered"),
        ));
    }
    Ok(())
}

fn check_evse(evse: i64, connector: Option<i64>) -> Result<i64, ApiError> {
    if !(1..=1000).contains(&evse) || connector.is_some_and(|c| !(1..=1000).contains(&c)) {
        return Err(ApiError::bad(
            "invalid_path",
            "the EVSE and the connector are 1 to 1000",
        ));
    }
    Ok(connector.unwrap_or(-1))
}

/// Sets a connector's specs (they win over what the charger reports until removed).
#[utoipa::path(put, path = "/api/chargers/{id}/connectors/{evse}/spec",
    params(("id" = String, Path, description = "Charger identity"), ("evse" = i64, Path, description = "EVSE (1.6 connector) id")),
    request_body = SpecBody,
    responses((status = 200, body = [SpecRow]), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn set_spec(
    State(b): State<Shared>,
    P((id, evse)): P<(String, i64)>,
    Body(body): Body<SpecBody>,
) -> Result<Json<Vec<SpecRow>>, ApiError> {
    let connector = check_evse(evse, body.connector)?;
    let spec = spec_of(&body)?;
    b.flush().await;
    known_charger(&b, &id).await?;
    catalog::set_spec(b.db(), &id, evse, connector, &spec, Source::Operator).await?;
    Ok(Json(catalog::specs(b.db(), &id).await?))
}

/// Which connector's specs to remove.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ConnectorParam {
    /// The connector within the EVSE; absent: the EVSE's row.
    pub connector: Option<i64>,
}

/// Removes a connector's specs (the charger's next report fills them again).
#[utoipa::path(delete, path = "/api/chargers/{id}/connectors/{evse}/spec",
    params(("id" = String, Path, description = "Charger identity"), ("evse" = i64, Path, description = "EVSE id"), ConnectorParam),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_spec(
    State(b): State<Shared>,
    P((id, evse)): P<(String, i64)>,
    Q(q): Q<ConnectorParam>,
) -> Result<StatusCode, ApiError> {
    let connector = check_evse(evse, q.connector)?;
    if catalog::delete_spec(b.db(), &id, evse, connector).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no specs for {id} EVSE {evse}"),
        ))
    }
}

/// A site's location.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocationBody {
    /// Latitude, -90 to 90.
    #[schema(value_type = String)]
    pub lat: Decimal,
    /// Longitude, -180 to 180.
    #[schema(value_type = String)]
    pub lon: Decimal,
    /// A street address (at most 200 characters).
    pub address: Option<String>,
}

/// Sets a site's location (the driver app's map places it there).
#[utoipa::path(put, path = "/api/sites/{id}/location", params(("id" = i64, Path, description = "Site id")),
    request_body = LocationBody,
    responses((status = 200, body = Location), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn set_location(
    State(b): State<Shared>,
    P(id): P<i64>,
    Body(body): Body<LocationBody>,
) -> Result<Json<Location>, ApiError> {
    if body.lat.abs() > Decimal::from(90) || body.lon.abs() > Decimal::from(180) {
        return Err(ApiError::bad(
            "invalid_body",
            "lat must be -90 to 90 and lon -180 to 180",
        ));
    }
    if body
        .address
        .as_ref()
        .is_some_and(|a| a.chars().count() > 200)
    {
        return Err(ApiError::bad(
            "invalid_body",
            "address: at most 200 characters",
        ));
    }
    if b.sites().get(id).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_site",
            format!("no site {id}"),
        ));
    }
    let at = Location {
        lat: body.lat.round_dp(7).normalize(),
        lon: body.lon.round_dp(7).normalize(),
        address: body.address,
    };
    catalog::set_location(b.db(), id, &at).await?;
    Ok(Json(at))
}

/// The OpenAPI paths of these routes.
#[derive(OpenApi)]
#[openapi(
    paths(chargers, sites, specs, set_spec, delete_spec, set_location),
    components(schemas(
        FoundCharger,
        FoundConnector,
        Spec,
        SpecRow,
        SpecBody,
        SiteSummary,
        TypeCount,
        Location,
        LocationBody
    ))
)]
pub struct CatalogDoc;
