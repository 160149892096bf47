//! The HTTP routes of authentication: login, logout, who am I, accounts and API keys. The
//! rules (who may call what) are in [`super::api::ROUTES`]; the mechanics in [`super::auth`].

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::api::{ApiError, Body, ErrorBody, P};
use super::auth::{
    Auth, AuthError, ClientAddr, KeyInfo, LoginError, Principal, Role, Secret, UserInfo, Via,
};

/// The signed-in principal the guard found (routes that need a role always have one).
type Who = Extension<Option<Principal>>;

fn who(p: Option<Principal>) -> Result<Principal, ApiError> {
    p.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in (POST /api/login) or send Authorization: Bearer <API key>",
        )
    })
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> ApiError {
        match e {
            AuthError::InvalidUsername | AuthError::InvalidKeyName | AuthError::InvalidPassword => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.to_string())
            }
            AuthError::UserExists(_) | AuthError::LastAdmin => {
                ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            AuthError::UnknownUser(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_user", e.to_string())
            }
            other => {
                tracing::error!("authentication store: {other}");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "database",
                    "the account store failed",
                )
            }
        }
    }
}

/// A login.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// User name.
    pub username: String,
    /// Password.
    #[schema(value_type = String, format = Password)]
    pub password: Secret,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .field("password", &self.password)
            .finish()
    }
}

/// Who is signed in.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    /// User name (`key:<name>` for an API key).
    pub username: String,
    /// Role.
    pub role: Role,
    /// `session` or `key`.
    pub via: String,
    /// The session's CSRF token, to send as `X-CSRF-Token` with every request that changes
    /// something (sessions only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

fn me(p: &Principal) -> Me {
    Me {
        username: p.name.clone(),
        role: p.role,
        via: match p.via {
            Via::Session { .. } => "session".into(),
            Via::Key { .. } => "key".into(),
        },
        csrf_token: match &p.via {
            Via::Session { csrf, .. } => Some(csrf.expose().to_owned()),
            Via::Key { .. } => None,
        },
    }
}

/// Signs in: sets the session cookie and returns who and the CSRF token. 401 for a wrong
/// user name or password (which one is not said); 429 after too many failures from one
/// address.
#[utoipa::path(post, path = "/api/login", request_body = LoginRequest, responses(
    (status = 200, description = "Signed in; `Set-Cookie: ocpp_session=...`", body = Me),
    (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    Extension(auth): Extension<Arc<Auth>>,
    ClientAddr(addr): ClientAddr,
    Body(body): Body<LoginRequest>,
) -> Result<Response, ApiError> {
    match auth.login(addr, &body.username, &body.password).await {
        Ok(login) => {
            let cookie =
                HeaderValue::from_str(&auth.session_cookie(&login.token)).map_err(|_| {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "bad cookie")
                })?;
            let mut resp = Json(me(&login.principal)).into_response();
            resp.headers_mut().insert(header::SET_COOKIE, cookie);
            resp.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(resp)
        }
        Err(LoginError::Wrong) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong_credentials",
            "wrong user name or password",
        )),
        Err(LoginError::TooMany(wait)) => {
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_failures",
                format!("too many failed logins; try again in {} s", wait.as_secs()),
            )
            .into_response();
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(wait.as_secs().max(1)),
            );
            Ok(resp)
        }
        Err(LoginError::Failed(e)) => Err(e.into()),
    }
}

/// Signs out: ends the session and clears the cookie (sessions only: revoke a key with
/// `DELETE /api/keys/{id}`).
#[utoipa::path(post, path = "/api/logout", responses((status = 204, description = "Signed out"), (status = 400, body = ErrorBody)))]
pub async fn logout(
    Extension(auth): Extension<Arc<Auth>>,
    Extension(p): Who,
) -> Result<Response, ApiError> {
    let p = who(p)?;
    let Via::Session { id, .. } = &p.via else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "not_a_session",
            "an API key is not signed out; revoke it instead",
        ));
    };
    auth.logout(id).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&auth.clear_cookie()) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// Who is signed in (and, for a session, its CSRF token).
#[utoipa::path(get, path = "/api/me", responses((status = 200, body = Me)))]
pub async fn whoami(Extension(p): Who) -> Result<Json<Me>, ApiError> {
    Ok(Json(me(&who(p)?)))
}

/// A new account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// 1 to 64 letters, digits, `.`, `_`, `-`, `@`.
    pub username: String,
    /// 12 to 1024 characters.
    #[schema(value_type = String, format = Password)]
    pub password: Secret,
    /// `viewer`, `operator` or `admin`.
    pub role: Role,
}

/// A change to an account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    /// A new password (ends the account's sessions).
    #[schema(value_type = Option<String>, format = Password)]
    pub password: Option<Secret>,
    /// A new role.
    pub role: Option<Role>,
}

/// The operator accounts.
#[utoipa::path(get, path = "/api/users", responses((status = 200, body = [UserInfo])))]
pub async fn list_users(
    Extension(auth): Extension<Arc<Auth>>,
) -> Result<Json<Vec<UserInfo>>, ApiError> {
    Ok(Json(auth.users().await?))
}

/// Creates an account.
#[utoipa::path(post, path = "/api/users", request_body = NewUser, responses(
    (status = 201, body = UserInfo), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_user(
    Extension(auth): Extension<Arc<Auth>>,
    Body(u): Body<NewUser>,
) -> Result<(StatusCode, Json<UserInfo>), ApiError> {
    let info = auth.create_user(&u.username, &u.password, u.role).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// Changes an account's password or role (the last admin keeps its role).
#[utoipa::path(put, path = "/api/users/{username}", params(("username" = String, Path, description = "User name")),
    request_body = UserChange, responses((status = 200, body = UserInfo), (status = 400, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_user(
    Extension(auth): Extension<Arc<Auth>>,
    P(username): P<String>,
    Body(c): Body<UserChange>,
) -> Result<Json<UserInfo>, ApiError> {
    Ok(Json(
        auth.update_user(&username, c.password.as_ref(), c.role)
            .await?,
    ))
}

/// Removes an account and ends its sessions (never the last admin).
#[utoipa::path(delete, path = "/api/users/{username}", params(("username" = String, Path, description = "User name")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_user(
    Extension(auth): Extension<Arc<Auth>>,
    P(username): P<String>,
) -> Result<StatusCode, ApiError> {
    auth.delete_user(&username).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new API key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// What it is for (1 to 100 characters).
    pub name: String,
    /// `viewer`, `operator` or `admin`.
    pub role: Role,
}

/// A created API key: the only time the key is shown.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedKey {
    /// The key's public id.
    pub id: String,
    /// What it is for.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// The key, for `Authorization: Bearer <key>`; not stored, shown only now.
    pub key: String,
}

impl std::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKey")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// The API keys (never their secrets).
#[utoipa::path(get, path = "/api/keys", responses((status = 200, body = [KeyInfo])))]
pub async fn list_keys(
    Extension(auth): Extension<Arc<Auth>>,
) -> Result<Json<Vec<KeyInfo>>, ApiError> {
    Ok(Json(auth.api_keys().await?))
}

/// Creates an API key; the answer holds the key, shown this once.
#[utoipa::path(post, path = "/api/keys", request_body = NewKey, responses(
    (status = 201, body = CreatedKey), (status = 400, body = ErrorBody)))]
pub async fn create_key(
    Extension(auth): Extension<Arc<Auth>>,
    Extension(p): Who,
    Body(k): Body<NewKey>,
) -> Result<Response, ApiError> {
    let p = who(p)?;
    let (info, key) = auth.create_api_key(&k.name, k.role, &p.name).await?;
    let mut resp = (
        StatusCode::CREATED,
        Json(CreatedKey {
            id: info.id,
            name: info.name,
            role: info.role,
            created_at: info.created_at,
            key: key.expose().to_owned(),
        }),
    )
        .into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Revokes an API key (it stops working at once).
#[utoipa::path(delete, path = "/api/keys/{id}", params(("id" = String, Path, description = "The key's public id")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_key(
    Extension(auth): Extension<Arc<Auth>>,
    P(id): P<String>,
) -> Result<StatusCode, ApiError> {
    if auth.revoke_api_key(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_key",
            format!("no API key {id:?}"),
        ))
    }
}
