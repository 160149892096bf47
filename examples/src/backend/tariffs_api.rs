//! The HTTP routes of OCPP 2.1 tariffs ([`super::tariffs`]):
//!
//! | route | role | what |
//! |---|---|---|
//! | `POST /api/tariffs` | operator | stores a tariff (the OCPP 2.1 `TariffType` JSON) in the catalog |
//! | `GET /api/tariffs` | viewer | the catalog |
//! | `GET /api/tariffs/{tariff_id}` | viewer | one tariff |
//! | `DELETE /api/tariffs/{tariff_id}` | operator | removes a tariff no charger has as default |
//! | `POST /api/chargers/{id}/default-tariff` | operator | SetDefaultTariff; stored when Accepted |
//! | `GET /api/chargers/{id}/tariffs` | viewer | GetTariffs (the charger's answer) and the stored defaults |
//! | `DELETE /api/chargers/{id}/tariffs` | operator | ClearTariffs (`?tariffId=`, `?evseId=`) |
//! | `POST /api/chargers/{id}/transactions/{transaction_id}/tariff` | operator | ChangeTransactionTariff |
//! | `GET /api/chargers/{id}/transactions/{transaction_id}/cost` | viewer | the session's cost breakdown by its tariff |
//!
//! Bad input is 400 before anything is sent: a tariff that does not decode as `TariffType`
//! (422), one [`Tariff::new`](ocpp_central::ocpp_types::tariff::Tariff::new) refuses (more
//! than [`MAX_ELEMENTS`] elements, negative
//! prices, malformed conditions: `invalid_tariff`), an EVSE id outside 0 to 2³¹−1, a
//! charger that does not speak 2.1 (`unsupported_for_version`, 409), an unknown tariff
//! (404 `unknown_tariff`); a body above the API's body limit is 413.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use ocpp_central::ocpp_types::tariff::{Amount, Tariff, MAX_ELEMENTS};
use ocpp_central::ocpp_types::v21::TariffType;
use ocpp_central::ocpp_types::Version;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::api::{self, ApiError, Body, ErrorBody, P, Q};
use super::tariffs::{AssignmentRow, TariffRow, TariffsError};
use super::Shared;

/// A tariff to make a charger's default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DefaultBody {
    /// The catalog tariff.
    pub tariff_id: String,
    /// The EVSE (0, the default: all).
    pub evse_id: Option<i64>,
}

/// A tariff for a running transaction.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeBody {
    /// The catalog tariff.
    pub tariff_id: String,
}

/// What a ClearTariffs clears.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClearQuery {
    /// This tariff only.
    pub tariff_id: Option<String>,
    /// On this EVSE only.
    pub evse_id: Option<i64>,
}

/// What GetTariffs asks.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GetQuery {
    /// The EVSE (0, the default: all).
    pub evse_id: Option<i64>,
}

/// A charger's answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargerAnswer {
    /// The status word.
    pub status: String,
    /// The whole answer, as the charger sent it.
    #[schema(value_type = Object)]
    pub answer: Value,
}

/// A charger's tariffs.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChargerTariffs {
    /// The charger's GetTariffs answer.
    #[schema(value_type = Object)]
    pub answer: Value,
    /// The defaults the backend stored.
    pub stored: Vec<AssignmentRow>,
}

/// An amount without and with taxes, exact, as text.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AmountView {
    /// Without taxes.
    pub excl_tax: String,
    /// With taxes.
    pub incl_tax: String,
}

impl From<Amount> for AmountView {
    fn from(a: Amount) -> Self {
        AmountView {
            excl_tax: a.excl.to_string(),
            incl_tax: a.incl.to_string(),
        }
    }
}

/// A session's cost by its tariff, rounded to cents (each component, the total their sum
/// within the tariff's minimum and maximum).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CostView {
    /// The tariff in force (the last one, after a change).
    pub tariff_id: String,
    /// Currency.
    pub currency: String,
    /// Energy.
    pub energy: AmountView,
    /// Charging time.
    pub charging_time: AmountView,
    /// Idle time.
    pub idle_time: AmountView,
    /// Fixed fee.
    pub fixed: AmountView,
    /// Taxes of the total.
    pub tax: String,
    /// The total.
    pub total: AmountView,
    /// Energy, Wh.
    pub energy_wh: String,
    /// Seconds charging.
    pub charging_seconds: i64,
    /// Seconds idle.
    pub idle_seconds: i64,
    /// Whether the session ended (the cost is final).
    #[serde(rename = "final")]
    pub is_final: bool,
}

/// The routes, merged into [`api::router`] (roles in [`api::ROUTES`]).
pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/api/tariffs", get(list).post(create))
        .route("/api/tariffs/{tariff_id}", get(one).delete(remove))
        .route("/api/chargers/{id}/default-tariff", post(set_default))
        .route(
            "/api/chargers/{id}/tariffs",
            get(charger_tariffs).delete(clear),
        )
        .route(
            "/api/chargers/{id}/transactions/{transaction_id}/tariff",
            post(change),
        )
        .route(
            "/api/chargers/{id}/transactions/{transaction_id}/cost",
            get(cost),
        )
        .route("/tariffs.js", get(panel_js))
}

/// The OpenAPI paths of these routes.
#[derive(OpenApi)]
#[openapi(
    paths(
        list,
        create,
        one,
        remove,
        set_default,
        charger_tariffs,
        clear,
        change,
        cost
    ),
    components(schemas(
        DefaultBody,
        ChangeBody,
        ChargerAnswer,
        ChargerTariffs,
        AmountView,
        CostView,
        TariffRow,
        AssignmentRow
    ))
)]
pub struct TariffsDoc;

async fn panel_js() -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/javascript; charset=utf-8",
        )],
        include_str!("../../dashboard/tariffs.js"),
    )
}

fn failed(b: &Shared, version: Version, action: &str, e: TariffsError) -> ApiError {
    match e {
        TariffsError::Db(e) => e.into(),
        TariffsError::Call(e) => api::call_failed(b, version, action, e),
        TariffsError::UnknownTariff(id) => ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_tariff",
            format!("no tariff {id:?}"),
        ),
        TariffsError::Corrupt(id, e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "database",
            format!("stored tariff {id:?}: {e}"),
        ),
    }
}

async fn v21(b: &Shared, id: &str) -> Result<ocpp_central::ChargerHandle, ApiError> {
    let h = api::connected(b, id).await?;
    if h.version() != Version::V21 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "unsupported_for_version",
            format!(
                "tariffs are OCPP 2.1; charger {id:?} speaks {}",
                h.version()
            ),
        ));
    }
    Ok(h)
}

fn evse(v: Option<i64>) -> Result<u32, ApiError> {
    let v = v.unwrap_or(0);
    u32::try_from(v)
        .ok()
        .filter(|e| i32::try_from(*e).is_ok())
        .ok_or_else(|| ApiError::bad("invalid_body", format!("evseId {v} is not 0 to 2147483647")))
}

fn answer_of<T: Serialize>(a: &T) -> ChargerAnswer {
    let answer = serde_json::to_value(a).unwrap_or(Value::Null);
    ChargerAnswer {
        status: answer["status"].as_str().unwrap_or_default().to_owned(),
        answer,
    }
}

/// Stores a tariff (the OCPP 2.1 `TariffType`) in the catalog.
#[utoipa::path(post, path = "/api/tariffs", request_body = Object, responses(
    (status = 201, body = TariffRow), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create(
    State(b): State<Shared>,
    Body(wire): Body<TariffType>,
) -> Result<(StatusCode, Json<TariffRow>), ApiError> {
    Tariff::new(&wire, MAX_ELEMENTS).map_err(|e| ApiError::bad("invalid_tariff", e.to_string()))?;
    let id = wire.tariff_id.as_str().to_owned();
    if !b
        .tariffs()
        .create(&wire)
        .await
        .map_err(|e| failed(&b, Version::V21, "", e))?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "tariff_exists",
            format!("tariff {id:?} exists; tariffs are immutable, store it under a new id"),
        ));
    }
    let row = b
        .tariffs()
        .get(&id)
        .await
        .map_err(|e| failed(&b, Version::V21, "", e))?
        .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "database", "lost"))?;
    Ok((StatusCode::CREATED, Json(row)))
}

/// The catalog.
#[utoipa::path(get, path = "/api/tariffs", responses((status = 200, body = [TariffRow])))]
async fn list(State(b): State<Shared>) -> Result<Json<Vec<TariffRow>>, ApiError> {
    b.tariffs()
        .list()
        .await
        .map(Json)
        .map_err(|e| failed(&b, Version::V21, "", e))
}

/// One tariff.
#[utoipa::path(get, path = "/api/tariffs/{tariff_id}", params(("tariff_id" = String, Path, description = "Tariff id")),
    responses((status = 200, body = TariffRow), (status = 404, body = ErrorBody)))]
async fn one(State(b): State<Shared>, P(id): P<String>) -> Result<Json<TariffRow>, ApiError> {
    b.tariffs()
        .get(&id)
        .await
        .map_err(|e| failed(&b, Version::V21, "", e))?
        .map(Json)
        .ok_or_else(|| failed(&b, Version::V21, "", TariffsError::UnknownTariff(id)))
}

/// Removes a tariff that no charger has as its default.
#[utoipa::path(delete, path = "/api/tariffs/{tariff_id}", params(("tariff_id" = String, Path, description = "Tariff id")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove(State(b): State<Shared>, P(id): P<String>) -> Result<StatusCode, ApiError> {
    match b
        .tariffs()
        .delete(&id)
        .await
        .map_err(|e| failed(&b, Version::V21, "", e))?
    {
        Some(true) => Ok(StatusCode::NO_CONTENT),
        Some(false) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "tariff_in_use",
            format!("tariff {id:?} is a charger's default; clear it first"),
        )),
        None => Err(failed(
            &b,
            Version::V21,
            "",
            TariffsError::UnknownTariff(id),
        )),
    }
}

/// Makes a catalog tariff a charger's default (SetDefaultTariff).
#[utoipa::path(post, path = "/api/chargers/{id}/default-tariff", params(("id" = String, Path, description = "Charger identity")),
    request_body = DefaultBody, responses((status = 200, body = ChargerAnswer), (status = 400, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn set_default(
    State(b): State<Shared>,
    P(id): P<String>,
    Body(body): Body<DefaultBody>,
) -> Result<Json<ChargerAnswer>, ApiError> {
    let e = evse(body.evse_id)?;
    let h = v21(&b, &id).await?;
    b.tariffs()
        .set_default(&h, e, &body.tariff_id)
        .await
        .map(|a| Json(answer_of(&a)))
        .map_err(|e| failed(&b, h.version(), "SetDefaultTariff", e))
}

/// The charger's tariffs (GetTariffs) and the defaults the backend stored.
#[utoipa::path(get, path = "/api/chargers/{id}/tariffs", params(("id" = String, Path, description = "Charger identity"), GetQuery),
    responses((status = 200, body = ChargerTariffs), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn charger_tariffs(
    State(b): State<Shared>,
    P(id): P<String>,
    Q(q): Q<GetQuery>,
) -> Result<Json<ChargerTariffs>, ApiError> {
    let e = evse(q.evse_id)?;
    let h = v21(&b, &id).await?;
    let a = h
        .get_tariffs(i32::try_from(e).unwrap_or(0))
        .await
        .map_err(|err| api::call_failed(&b, h.version(), "GetTariffs", err))?;
    let stored = b
        .tariffs()
        .assignments(&id)
        .await
        .map_err(|e| failed(&b, h.version(), "", e))?;
    Ok(Json(ChargerTariffs {
        answer: serde_json::to_value(&a).unwrap_or(Value::Null),
        stored,
    }))
}

/// Clears a charger's default tariffs (ClearTariffs).
#[utoipa::path(delete, path = "/api/chargers/{id}/tariffs", params(("id" = String, Path, description = "Charger identity"), ClearQuery),
    responses((status = 200, body = ChargerAnswer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn clear(
    State(b): State<Shared>,
    P(id): P<String>,
    Q(q): Q<ClearQuery>,
) -> Result<Json<ChargerAnswer>, ApiError> {
    let e = q.evse_id.map(|v| evse(Some(v))).transpose()?;
    let h = v21(&b, &id).await?;
    let a = b
        .tariffs()
        .clear(&h, q.tariff_id.map(|t| vec![t]), e)
        .await
        .map_err(|e| failed(&b, h.version(), "ClearTariffs", e))?;
    let answer = serde_json::to_value(&a).unwrap_or(Value::Null);
    let status = answer["clearTariffsResult"][0]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok(Json(ChargerAnswer { status, answer }))
}

/// Puts a catalog tariff in force for a running transaction (ChangeTransactionTariff).
#[utoipa::path(post, path = "/api/chargers/{id}/transactions/{transaction_id}/tariff", params(
    ("id" = String, Path, description = "Charger identity"), ("transaction_id" = String, Path, description = "Transaction id")),
    request_body = ChangeBody, responses((status = 200, body = ChargerAnswer), (status = 400, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 502, body = ErrorBody), (status = 504, body = ErrorBody)))]
async fn change(
    State(b): State<Shared>,
    P((id, tx)): P<(String, String)>,
    Body(body): Body<ChangeBody>,
) -> Result<Json<ChargerAnswer>, ApiError> {
    let h = v21(&b, &id).await?;
    b.tariffs()
        .change(&h, &tx, &body.tariff_id)
        .await
        .map(|a| Json(answer_of(&a)))
        .map_err(|e| failed(&b, h.version(), "ChangeTransactionTariff", e))
}

/// A session's cost by its tariff.
#[utoipa::path(get, path = "/api/chargers/{id}/transactions/{transaction_id}/cost", params(
    ("id" = String, Path, description = "Charger identity"), ("transaction_id" = String, Path, description = "Transaction id")),
    responses((status = 200, body = CostView), (status = 404, body = ErrorBody)))]
async fn cost(
    State(b): State<Shared>,
    P((id, tx)): P<(String, String)>,
) -> Result<Json<CostView>, ApiError> {
    let Some((c, is_final)) = b
        .tariffs()
        .session_cost(&id, &tx)
        .await
        .map_err(|e| failed(&b, Version::V21, "", e))?
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_session",
            format!("no session {tx:?} of {id:?} priced by a tariff"),
        ));
    };
    Ok(Json(CostView {
        tariff_id: c.tariff_id.clone(),
        currency: c.currency.clone(),
        tax: c.tax().to_string(),
        energy: c.energy.into(),
        charging_time: c.charging_time.into(),
        idle_time: c.idle_time.into(),
        fixed: c.fixed.into(),
        total: c.total.into(),
        energy_wh: c.energy_wh.to_string(),
        charging_seconds: c.charging_s,
        idle_seconds: c.idle_s,
        is_final,
    }))
}
