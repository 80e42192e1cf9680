//! The users service's rules: validation, accounts, sessions and tokens.
//! Handlers call these; these call the store; neither knows about the other's layer.

use std::time::Instant;

use shop_wire::Event;
use shop_wire::events::{
    EventData, EventKind, LoginEvent, MakeEvent, PasswordChangeEvent, ProfileUpdateEvent,
    RoleChangeEvent, SessionEvent,
};
use shop_wire::users::{
    Address, CreateUserRequest, RegisterRequest, Role, Session, TokenResponse,
    UpdateProfileRequest, User,
};
use shop_wire::{Page, SessionId, UserId};

use crate::auth::passwords::check_strength;
use crate::auth::tokens::{
    account_token_hash, new_account_token, new_refresh_token, parse_refresh_token,
};
use crate::auth::{AuthUser, SessionCache};
use crate::services::error::{DomainError, DomainResult};
use crate::state::AppState;
use crate::store::{
    AccountToken, NewEvent, ProfileUpdate, RefreshOutcome, RoleChange, SessionRecord, TokenPurpose,
    UserQuery, UserRecord, now,
};

use super::rules::{self, TokenRefusal};

const MAX_NAME: usize = 100;
const MAX_ADDRESSES: usize = 10;
const MAX_ADDRESS_FIELD: usize = 200;
pub const MAX_PAGE: u32 = 500;

/// Users by id for the hot read paths (`/me`).
pub type UserCache = moka::sync::Cache<UserId, User>;

/// Trimmed and lower-cased; refused unless it is a plausible deliverable address.
pub fn normalize_email(field: &str, raw: &str) -> DomainResult<String> {
    let email = raw.trim().to_lowercase();
    let domain_has_dot = email.rsplit_once('@').is_some_and(|(_, domain)| {
        domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
    });
    if email.len() > 254 || !domain_has_dot || !email_address::EmailAddress::is_valid(&email) {
        return Err(DomainError::validation(
            field,
            "is not a valid email address",
        ));
    }
    Ok(email)
}

fn validate_name(field: &str, raw: &str) -> DomainResult<String> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(DomainError::validation(field, "must not be empty"));
    }
    if name.chars().count() > MAX_NAME {
        return Err(DomainError::validation(
            field,
            format!("must be at most {MAX_NAME} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(DomainError::validation(
            field,
            "must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

fn validate_addresses(addresses: Vec<Address>) -> DomainResult<Vec<Address>> {
    if addresses.len() > MAX_ADDRESSES {
        return Err(DomainError::validation(
            "addresses",
            format!("at most {MAX_ADDRESSES} addresses"),
        ));
    }
    addresses
        .into_iter()
        .enumerate()
        .map(|(i, mut address)| {
            let field = |name: &str| format!("addresses[{i}].{name}");
            for (name, value, required) in [
                ("line1", &mut address.line1, true),
                ("city", &mut address.city, true),
                ("postal_code", &mut address.postal_code, true),
            ] {
                *value = value.trim().to_owned();
                if required && value.is_empty() {
                    return Err(DomainError::validation(&field(name), "must not be empty"));
                }
            }
            for (name, value) in [
                ("label", address.label.as_deref()),
                ("line1", Some(address.line1.as_str())),
                ("line2", address.line2.as_deref()),
                ("city", Some(address.city.as_str())),
                ("region", address.region.as_deref()),
                ("postal_code", Some(address.postal_code.as_str())),
            ] {
                if value.is_some_and(|v| v.chars().count() > MAX_ADDRESS_FIELD || v.chars().any(char::is_control)) {
                    return Err(DomainError::validation(
                        &field(name),
                        format!("must be at most {MAX_ADDRESS_FIELD} characters, without control characters"),
                    ));
                }
            }
            address.country = address.country.trim().to_uppercase();
            if address.country.len() != 2 || !address.country.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(DomainError::validation(&field("country"), "must be an ISO 3166-1 alpha-2 code such as DE"));
            }
            Ok(address)
        })
        .collect()
}

/// Creates an account; `user.registered` is logged with it.
pub async fn create_account(
    state: &AppState,
    email: &str,
    password: &str,
    name: &str,
    role: Role,
) -> DomainResult<User> {
    let email = normalize_email("email", email)?;
    let name = validate_name("name", name)?;
    check_strength("password", password, &email, &name)?;
    let password_hash = state.passwords.hash(password).await?;
    let at = now();
    let user = User {
        id: UserId::generate(),
        email,
        name,
        role,
        addresses: Vec::new(),
        email_verified: false,
        created_at: at,
        updated_at: at,
    };
    let event = NewEvent::now(EventData::UserRegistered((&user).into()));
    let record = UserRecord {
        user: user.clone(),
        password_hash,
    };
    state.store.insert_user(&record, vec![event]).await?;
    Ok(user)
}

pub async fn register(state: &AppState, request: RegisterRequest) -> DomainResult<User> {
    create_account(
        state,
        &request.email,
        &request.password,
        &request.name,
        Role::Customer,
    )
    .await
}

pub async fn create_user(state: &AppState, request: CreateUserRequest) -> DomainResult<User> {
    create_account(
        state,
        &request.email,
        &request.password,
        &request.name,
        request.role,
    )
    .await
}

/// Where a login came from, kept on the session so its owner can recognise it.
#[derive(Debug, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

fn invalid_credentials() -> DomainError {
    DomainError::unauthenticated(
        "invalid_credentials",
        "the email or password is not correct",
    )
}

pub async fn login(
    state: &AppState,
    email: &str,
    password: &str,
    client: ClientInfo,
) -> DomainResult<TokenResponse> {
    // A malformed email cannot have an account; answer as for any wrong login.
    let email = normalize_email("email", email).map_err(|_| invalid_credentials())?;
    // Failures count per account *and* address: a guesser elsewhere slows
    // only themselves, never the owner logging in from their own address.
    let guarded = format!(
        "{email} from {}",
        client.ip.as_deref().unwrap_or("an unknown address")
    );
    if let Err(wait) = state.login_guard.check(&guarded, Instant::now()) {
        return Err(DomainError::Throttled {
            code: "too_many_attempts",
            message: "too many failed logins for this account from this address; wait before trying again".to_owned(),
            retry_after: wait,
        });
    }
    let record = state.store.user_by_email(&email).await?;
    let verified = state
        .passwords
        .verify(password, record.as_ref().map(|r| r.password_hash.as_str()))
        .await?;
    let Some(record) = record.filter(|_| verified) else {
        state.login_guard.record_failure(&guarded, Instant::now());
        metrics::counter!("shop_logins_total", "outcome" => "failed").increment(1);
        return Err(invalid_credentials());
    };
    state.login_guard.record_success(&guarded);
    metrics::counter!("shop_logins_total", "outcome" => "ok").increment(1);

    let at = now();
    let session_id = SessionId::generate();
    let (refresh_token, refresh_hash) = new_refresh_token(&session_id);
    let session = SessionRecord {
        id: session_id.clone(),
        user_id: record.user.id.clone(),
        refresh_hash,
        user_agent: client.user_agent,
        ip: client.ip,
        created_at: at,
        last_used_at: at,
        expires_at: at + state.config.session_ttl(),
        revoked_at: None,
    };
    let event = NewEvent::now(EventData::UserLoggedIn(LoginEvent {
        user_id: record.user.id.clone(),
        session_id: session_id.clone(),
        ip: session.ip.clone(),
    }));
    state.store.insert_session(&session, vec![event]).await?;
    token_response(state, record.user, &session_id, refresh_token)
}

fn token_response(
    state: &AppState,
    user: User,
    session: &SessionId,
    refresh_token: String,
) -> DomainResult<TokenResponse> {
    let ttl = state.config.access_token_ttl();
    Ok(TokenResponse {
        access_token: state.tokens.issue(&user.id, user.role, session, ttl)?,
        refresh_token,
        token_type: "Bearer".to_owned(),
        expires_in: ttl.as_secs(),
        user,
    })
}

pub async fn refresh(state: &AppState, refresh_token: &str) -> DomainResult<TokenResponse> {
    let invalid = || {
        DomainError::unauthenticated(
            "invalid_refresh_token",
            "the refresh token is not valid; log in again",
        )
    };
    let (session_id, presented) = parse_refresh_token(refresh_token).ok_or_else(invalid)?;
    let (new_token, new_hash) = new_refresh_token(&session_id);
    let expires_at = now() + state.config.session_ttl();
    match state
        .store
        .rotate_refresh(&session_id, &presented, &new_hash, expires_at)
        .await?
    {
        RefreshOutcome::Rotated(session) => {
            let user = state
                .store
                .user(&session.user_id)
                .await?
                .ok_or_else(invalid)?
                .user;
            token_response(state, user, &session_id, new_token)
        }
        RefreshOutcome::ReuseDetected => {
            state.sessions.forget(&session_id);
            tracing::warn!(session = %session_id, "an old refresh token was replayed; session revoked");
            Err(DomainError::unauthenticated(
                "refresh_token_reused",
                "this refresh token was already used, so the session has been ended; log in again",
            ))
        }
        RefreshOutcome::Inactive => Err(invalid()),
    }
}

/// Ends `session` of the caller (their current one on logout, or another of
/// theirs), logging `kind` with it; false when it is not theirs or already ended.
async fn end_session(
    state: &AppState,
    caller: &AuthUser,
    session: &SessionId,
    kind: MakeEvent<SessionEvent>,
) -> DomainResult<bool> {
    let event = NewEvent::now(kind(SessionEvent {
        user_id: caller.user_id.clone(),
        session_id: session.clone(),
    }));
    let ended = state
        .store
        .revoke_session(session, &caller.user_id, vec![event])
        .await?;
    Ok(ended)
}

/// The session of a signed-in person: what logging out ends. API keys never
/// reach the account routes (see `auth::scopes`); this keeps it so.
fn signed_in(caller: &AuthUser) -> DomainResult<&SessionId> {
    caller.session().ok_or_else(|| DomainError::Forbidden {
        message: "API keys cannot use this route; sign in as a person".to_owned(),
    })
}

/// Forgets the cached users and sessions a committed `user.*` event
/// changed, before the write that made it answers: called by the store's
/// commit feed, so a change whose request was dropped is forgotten too.
pub fn forget_changed(users: &UserCache, sessions: &SessionCache, event: &Event) {
    if event
        .event_kind()
        .is_none_or(|kind| kind.family() != EventKind::UserRegistered.family())
    {
        return;
    }
    match event.decode() {
        Ok(EventData::UserUpdated(change)) => users.invalidate(&change.user_id),
        Ok(EventData::UserEmailVerified(verified)) => users.invalidate(&verified.user_id),
        // Both touch every session of the user: a role is carried by each.
        Ok(EventData::UserRoleChanged(RoleChangeEvent { user_id, .. }))
        | Ok(EventData::UserPasswordChanged(PasswordChangeEvent { user_id, .. })) => {
            users.invalidate(&user_id);
            sessions.forget_all();
        }
        Ok(EventData::UserLoggedOut(ended) | EventData::UserSessionRevoked(ended)) => {
            sessions.forget(&ended.session_id);
        }
        Ok(_) => {}
        // Unreadable: forget every session rather than trust a revoked one.
        Err(_) => sessions.forget_all(),
    }
}

pub async fn logout(state: &AppState, caller: &AuthUser) -> DomainResult<()> {
    let session = signed_in(caller)?;
    end_session(state, caller, session, EventData::UserLoggedOut).await?;
    Ok(())
}

pub async fn get_user(state: &AppState, id: &UserId) -> DomainResult<User> {
    if let Some(user) = state.users.get(id) {
        return Ok(user);
    }
    let user = state
        .store
        .user(id)
        .await?
        .map(|record| record.user)
        .ok_or_else(|| DomainError::not_found(format!("user {id}")))?;
    state.users.insert(id.clone(), user.clone());
    Ok(user)
}

pub async fn update_profile(
    state: &AppState,
    id: &UserId,
    request: UpdateProfileRequest,
) -> DomainResult<User> {
    let update = ProfileUpdate {
        name: request
            .name
            .as_deref()
            .map(|name| validate_name("name", name))
            .transpose()?,
        addresses: request.addresses.map(validate_addresses).transpose()?,
    };
    let mut fields = Vec::new();
    if update.name.is_some() {
        fields.push("name".to_owned());
    }
    if update.addresses.is_some() {
        fields.push("addresses".to_owned());
    }
    // An empty patch changes nothing worth telling.
    let events = (!fields.is_empty())
        .then(|| {
            NewEvent::now(EventData::UserUpdated(ProfileUpdateEvent {
                user_id: id.clone(),
                fields,
                name: update.name.clone(),
                address_count: update.addresses.as_ref().map(Vec::len),
            }))
        })
        .into_iter()
        .collect();
    let user = state
        .store
        .update_profile(id, &update, events)
        .await?
        .ok_or_else(|| DomainError::not_found(format!("user {id}")))?;
    state.users.insert(id.clone(), user.clone());
    Ok(user)
}

/// Changes the password and ends every other session of the user.
pub async fn change_password(
    state: &AppState,
    caller: &AuthUser,
    current: &str,
    new: &str,
) -> DomainResult<()> {
    let record = state
        .store
        .user(&caller.user_id)
        .await?
        .ok_or_else(|| DomainError::not_found("user"))?;
    if !state
        .passwords
        .verify(current, Some(&record.password_hash))
        .await?
    {
        return Err(DomainError::validation(
            "current_password",
            "is not correct",
        ));
    }
    if current == new {
        return Err(DomainError::validation(
            "new_password",
            "must differ from the current password",
        ));
    }
    check_strength("new_password", new, &record.user.email, &record.user.name)?;
    let hash = state.passwords.hash(new).await?;
    let event = NewEvent::now(EventData::UserPasswordChanged(PasswordChangeEvent {
        user_id: caller.user_id.clone(),
        session_id: caller.session().cloned(),
    }));
    state
        .store
        .set_password(&caller.user_id, &hash, caller.session(), vec![event])
        .await?;
    Ok(())
}

/// How long an emailed token works: the welcome email's address proof may
/// wait for a week; a password reset is for now, so that a reset email
/// found later in a leaked mailbox opens nothing.
pub fn token_ttl(purpose: TokenPurpose) -> time::Duration {
    match purpose {
        TokenPurpose::VerifyEmail => time::Duration::days(7),
        TokenPurpose::PasswordReset => time::Duration::minutes(30),
    }
}

/// A new token for `user` to email, and what the store keeps of it.
pub fn issue_token(user: &UserId, purpose: TokenPurpose) -> (String, AccountToken) {
    let (token, hash) = new_account_token();
    let at = now();
    let record = AccountToken {
        hash,
        user_id: user.clone(),
        purpose,
        created_at: at,
        expires_at: at + token_ttl(purpose),
        used_at: None,
    };
    (token, record)
}

fn token_refused(refusal: TokenRefusal) -> DomainError {
    match refusal {
        TokenRefusal::Unknown => DomainError::rejected(
            "invalid_account_token",
            "token",
            "is not a token this shop sent for this, or it was mistyped",
        ),
        TokenRefusal::Expired => DomainError::rejected(
            "account_token_expired",
            "token",
            "has expired; ask for a new one",
        ),
        TokenRefusal::Used => DomainError::rejected(
            "account_token_used",
            "token",
            "was used already; each token works once",
        ),
    }
}

/// The account an emailed token names, when it may be spent for `purpose`
/// now; checked before the slow work (a password hash) so a bad token
/// costs little, and again by the store as it spends it.
async fn token_owner(
    state: &AppState,
    hash: &str,
    purpose: TokenPurpose,
) -> DomainResult<UserRecord> {
    let token = state.store.account_token(hash).await?;
    rules::check_token(token.as_ref(), purpose, now()).map_err(token_refused)?;
    let owner = token
        .map(|t| t.user_id)
        .ok_or_else(|| token_refused(TokenRefusal::Unknown))?;
    state
        .store
        .user(&owner)
        .await?
        .ok_or_else(|| token_refused(TokenRefusal::Unknown))
}

/// Spends the token of the welcome email: the address is proved, and
/// orders placed for it without the account join the account.
pub async fn verify_email(state: &AppState, token: &str) -> DomainResult<User> {
    let hash = account_token_hash(token);
    let owner = token_owner(state, &hash, TokenPurpose::VerifyEmail).await?;
    let event = NewEvent::now(EventData::UserEmailVerified((&owner.user).into()));
    let user = state
        .store
        .verify_email(&hash, now(), vec![event])
        .await?
        .map_err(token_refused)?;
    state.users.insert(user.id.clone(), user.clone());
    Ok(user)
}

/// Asks for a reset email for the account of `email`, if there is one.
/// The caller learns nothing either way: the answer is the same, and the
/// email (with its token) goes only to the address.
pub async fn request_password_reset(state: &AppState, email: &str) -> DomainResult<()> {
    let email = normalize_email("email", email)?;
    if let Some(record) = state.store.user_by_email(&email).await? {
        let event = NewEvent::now(EventData::UserPasswordResetRequested((&record.user).into()));
        state
            .store
            .note_password_reset_request(&record.user.id, now(), vec![event])
            .await?;
    }
    Ok(())
}

/// Sets a new password with an emailed reset token; every session of the
/// account ends, since whoever knew the old password is no longer welcome.
pub async fn confirm_password_reset(
    state: &AppState,
    token: &str,
    new_password: &str,
) -> DomainResult<()> {
    let hash = account_token_hash(token);
    let owner = token_owner(state, &hash, TokenPurpose::PasswordReset).await?;
    check_strength(
        "new_password",
        new_password,
        &owner.user.email,
        &owner.user.name,
    )?;
    let password_hash = state.passwords.hash(new_password).await?;
    let event = NewEvent::now(EventData::UserPasswordChanged(PasswordChangeEvent {
        user_id: owner.user.id.clone(),
        session_id: None,
    }));
    state
        .store
        .reset_password(&hash, &password_hash, now(), vec![event])
        .await?
        .map_err(token_refused)?;
    Ok(())
}

pub async fn sessions(state: &AppState, caller: &AuthUser) -> DomainResult<Vec<Session>> {
    let records = state.store.active_sessions(&caller.user_id, now()).await?;
    Ok(records
        .into_iter()
        .map(|s| Session {
            current: caller.session() == Some(&s.id),
            id: s.id,
            user_agent: s.user_agent,
            ip: s.ip,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
        })
        .collect())
}

pub async fn revoke_session(
    state: &AppState,
    caller: &AuthUser,
    session: &SessionId,
) -> DomainResult<()> {
    if !end_session(state, caller, session, EventData::UserSessionRevoked).await? {
        return Err(DomainError::not_found(format!("active session {session}")));
    }
    Ok(())
}

pub async fn list_users(state: &AppState, mut query: UserQuery) -> DomainResult<Page<User>> {
    if query.limit == 0 || query.limit > MAX_PAGE {
        return Err(DomainError::validation(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        ));
    }
    query.text = query
        .text
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    let (items, total) = state.store.list_users(&query).await?;
    Ok(Page {
        items,
        total,
        limit: query.limit,
        offset: query.offset,
    })
}

/// Changes a user's role; the last admin cannot be demoted, so the shop is never left without one.
pub async fn set_role(
    state: &AppState,
    caller: &AuthUser,
    id: &UserId,
    role: Role,
) -> DomainResult<User> {
    let current = get_user(state, id).await?;
    let event = NewEvent::now(EventData::UserRoleChanged(RoleChangeEvent {
        user_id: id.clone(),
        from: current.role,
        to: role,
        by: caller.user_id.clone(),
    }));
    match state.store.set_role(id, role, vec![event]).await? {
        RoleChange::Changed(user) => {
            state.users.insert(user.id.clone(), user.clone());
            Ok(user)
        }
        RoleChange::NotFound => Err(DomainError::not_found(format!("user {id}"))),
        RoleChange::LastAdmin => Err(DomainError::conflict(
            "last_admin",
            "this is the only admin; make another user admin first",
        )),
    }
}

/// What the first start did about the admin account.
#[derive(Debug, PartialEq, Eq)]
pub enum Bootstrap {
    /// An admin exists already.
    Existing,
    /// Created from `SHOP_ADMIN_EMAIL`/`SHOP_ADMIN_PASSWORD`.
    Configured { email: String },
    /// Created with a generated password, to be shown once.
    Generated { email: String, password: String },
}

pub const GENERATED_ADMIN_EMAIL: &str = "admin@shop.local";

/// Makes sure the shop has an admin, without any well-known password.
pub async fn bootstrap_admin(state: &AppState) -> DomainResult<Bootstrap> {
    if state.store.count_users_with_role(Role::Admin).await? > 0 {
        return Ok(Bootstrap::Existing);
    }
    let (email, password, generated) =
        match (&state.config.admin_email, &state.config.admin_password) {
            (Some(email), Some(password)) => (email.clone(), password.clone(), false),
            _ => (
                GENERATED_ADMIN_EMAIL.to_owned(),
                crate::auth::tokens::generate_password(),
                true,
            ),
        };
    let user = create_account(state, &email, &password, "Administrator", Role::Admin).await?;
    Ok(if generated {
        Bootstrap::Generated {
            email: user.email,
            password,
        }
    } else {
        Bootstrap::Configured { email: user.email }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(
            normalize_email("email", "  Ada@Example.COM ").expect("valid"),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@localhost",
            "ada@example.",
            "a b@example.com",
        ] {
            assert!(normalize_email("email", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn addresses_are_trimmed_and_countries_checked() {
        let address = Address {
            label: Some("home".into()),
            line1: " 1 Main St ".into(),
            line2: None,
            city: "Berlin".into(),
            region: None,
            postal_code: "10115".into(),
            country: "de".into(),
        };
        let cleaned = validate_addresses(vec![address.clone()]).expect("valid");
        assert_eq!(
            (cleaned[0].line1.as_str(), cleaned[0].country.as_str()),
            ("1 Main St", "DE")
        );
        let bad = Address {
            country: "Germany".into(),
            ..address.clone()
        };
        let err = validate_addresses(vec![bad]).unwrap_err();
        assert!(err.to_string().contains("addresses[0].country"), "{err}");
        let empty = Address {
            city: " ".into(),
            ..address
        };
        assert!(validate_addresses(vec![empty]).is_err());
    }
}
