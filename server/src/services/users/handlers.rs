//! HTTP handlers of the users service: each translates a request to one
//! domain call and its answer back, nothing more.

use axum::Extension;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use shop_wire::users::{
    ChangePasswordRequest, CreateUserRequest, LoginRequest, PasswordResetConfirmRequest,
    PasswordResetRequest, RefreshRequest, RegisterRequest, Session, SetRoleRequest, TokenResponse,
    UpdateProfileRequest, User, VerifyEmailRequest,
};
use shop_wire::{ErrorBody, Page, ServiceHealth, SessionId, UserId};

use super::domain::{self, ClientInfo};
use crate::auth::{Admin, AuthUser};
use crate::error::{AppError, AppResult};
use crate::gateway::ClientAddr;
use crate::gateway::idempotency::CarriesSecret;
use crate::gateway::json::{ApiJson, ApiQuery, page_offset};
use crate::services::health::database_check;
use crate::state::AppState;
use crate::store::UserQuery;

const TAG: &str = "users";

fn parse_id<T: std::str::FromStr>(raw: &str, what: &str) -> AppResult<T> {
    raw.parse()
        .map_err(|_| AppError::not_found(format!("{what} {raw}")))
}

/// Register a customer account.
#[utoipa::path(post, path = "/register", tag = TAG, request_body = RegisterRequest,
    responses((status = 201, body = User), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RegisterRequest>,
) -> AppResult<(StatusCode, ApiJson<User>)> {
    Ok((
        StatusCode::CREATED,
        ApiJson(domain::register(&state, request).await?),
    ))
}

/// Log in with email and password; returns an access token and a refresh token.
#[utoipa::path(post, path = "/login", tag = TAG, request_body = LoginRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
    ApiJson(request): ApiJson<LoginRequest>,
) -> AppResult<(Extension<CarriesSecret>, ApiJson<TokenResponse>)> {
    let client = ClientInfo {
        ip: Some(peer.ip().to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(200).collect()),
    };
    let tokens = domain::login(&state, &request.email, &request.password, client).await?;
    // An anonymous cart sent along joins the user's cart.
    if let Some(cart_token) = headers
        .get(shop_wire::cart::CART_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
    {
        crate::services::cart::domain::merge_at_login(&state, cart_token.trim(), &tokens.user.id)
            .await;
    }
    Ok((Extension(CarriesSecret), ApiJson(tokens)))
}

/// Exchange a refresh token for a new token pair; the old refresh token stops working.
#[utoipa::path(post, path = "/refresh", tag = TAG, request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> AppResult<(Extension<CarriesSecret>, ApiJson<TokenResponse>)> {
    let tokens = domain::refresh(&state, &request.refresh_token).await?;
    Ok((Extension(CarriesSecret), ApiJson(tokens)))
}

/// End the session of the token used; its access and refresh tokens stop working at once.
#[utoipa::path(post, path = "/logout", tag = TAG, security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(State(state): State<AppState>, caller: AuthUser) -> AppResult<StatusCode> {
    domain::logout(&state, &caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's own account.
#[utoipa::path(get, path = "/me", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorBody)))]
pub async fn me(State(state): State<AppState>, caller: AuthUser) -> AppResult<ApiJson<User>> {
    Ok(ApiJson(domain::get_user(&state, &caller.user_id).await?))
}

/// Change the caller's name or addresses.
#[utoipa::path(patch, path = "/me", tag = TAG, security(("bearer" = [])), request_body = UpdateProfileRequest,
    responses((status = 200, body = User), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn update_me(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(request): ApiJson<UpdateProfileRequest>,
) -> AppResult<ApiJson<User>> {
    Ok(ApiJson(
        domain::update_profile(&state, &caller.user_id, request).await?,
    ))
}

/// Change the caller's password; every other session of the account ends.
#[utoipa::path(post, path = "/me/password", tag = TAG, security(("bearer" = [])), request_body = ChangePasswordRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(request): ApiJson<ChangePasswordRequest>,
) -> AppResult<StatusCode> {
    domain::change_password(
        &state,
        &caller,
        &request.current_password,
        &request.new_password,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Prove an account's email address with the token of its welcome email.
/// Orders placed for the address without the account join it from now on.
#[utoipa::path(post, path = "/verify", tag = TAG, request_body = VerifyEmailRequest,
    responses((status = 200, body = User), (status = 400, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn verify_email(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<VerifyEmailRequest>,
) -> AppResult<ApiJson<User>> {
    Ok(ApiJson(domain::verify_email(&state, &request.token).await?))
}

/// Ask for a password-reset email. Always 202, whether or not the address
/// has an account, so that accounts cannot be found out this way.
#[utoipa::path(post, path = "/password-reset", tag = TAG, request_body = PasswordResetRequest,
    responses((status = 202), (status = 400, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn request_password_reset(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<PasswordResetRequest>,
) -> AppResult<StatusCode> {
    domain::request_password_reset(&state, &request.email).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Set a new password with the token of a reset email; it works once, for
/// 30 minutes, and every session of the account ends.
#[utoipa::path(post, path = "/password-reset/confirm", tag = TAG, request_body = PasswordResetConfirmRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn confirm_password_reset(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<PasswordResetConfirmRequest>,
) -> AppResult<StatusCode> {
    domain::confirm_password_reset(&state, &request.token, &request.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's active sessions, newest first.
#[utoipa::path(get, path = "/me/sessions", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = Vec<Session>), (status = 401, body = ErrorBody)))]
pub async fn sessions(
    State(state): State<AppState>,
    caller: AuthUser,
) -> AppResult<ApiJson<Vec<Session>>> {
    Ok(ApiJson(domain::sessions(&state, &caller).await?))
}

/// End one of the caller's sessions (e.g. a lost device).
#[utoipa::path(delete, path = "/me/sessions/{id}", tag = TAG, security(("bearer" = [])),
    params(("id" = String, Path, description = "session id (ses_...)")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_session(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let session: SessionId = parse_id(&id, "active session")?;
    domain::revoke_session(&state, &caller, &session).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only users with this role.
    #[param(nullable = false)]
    role: Option<shop_wire::users::Role>,
    /// Case-insensitive text found in the email or name.
    #[param(nullable = false)]
    q: Option<String>,
    /// Page size, 1-500 (default 50).
    #[param(nullable = false, minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Items to skip (default 0).
    #[param(nullable = false, minimum = 0, maximum = 1_000_000)]
    offset: Option<u64>,
}

/// List users (admin).
#[utoipa::path(get, path = "", tag = TAG, security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = Page<User>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _: Admin,
    ApiQuery(params): ApiQuery<ListParams>,
) -> AppResult<ApiJson<Page<User>>> {
    let query = UserQuery {
        role: params.role,
        text: params.q,
        limit: params.limit.unwrap_or(50),
        offset: page_offset(params.offset)?,
    };
    Ok(ApiJson(domain::list_users(&state, query).await?))
}

/// Create a user with any role (admin).
#[utoipa::path(post, path = "", tag = TAG, security(("bearer" = [])), request_body = CreateUserRequest,
    responses((status = 201, body = User), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    _: Admin,
    ApiJson(request): ApiJson<CreateUserRequest>,
) -> AppResult<(StatusCode, ApiJson<User>)> {
    Ok((
        StatusCode::CREATED,
        ApiJson(domain::create_user(&state, request).await?),
    ))
}

/// One user by id (admin).
#[utoipa::path(get, path = "/{id}", tag = TAG, security(("bearer" = [])),
    params(("id" = String, Path, description = "user id (usr_...)")),
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<String>,
) -> AppResult<ApiJson<User>> {
    let id: UserId = parse_id(&id, "user")?;
    Ok(ApiJson(domain::get_user(&state, &id).await?))
}

/// Change a user's role (admin). The last admin cannot be demoted.
#[utoipa::path(put, path = "/{id}/role", tag = TAG, security(("bearer" = [])), request_body = SetRoleRequest,
    params(("id" = String, Path, description = "user id (usr_...)")),
    responses((status = 200, body = User), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn set_role(
    State(state): State<AppState>,
    Admin(caller): Admin,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<SetRoleRequest>,
) -> AppResult<ApiJson<User>> {
    let id: UserId = parse_id(&id, "user")?;
    Ok(ApiJson(
        domain::set_role(&state, &caller, &id, request.role).await?,
    ))
}

/// The users service's health.
#[utoipa::path(get, path = "/health", tag = TAG, responses((status = 200, body = ServiceHealth), (status = 503, body = ServiceHealth)))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, ApiJson<ServiceHealth>) {
    let health = super::health(&state, database_check(&state).await);
    crate::services::health::respond(health.status, health)
}
