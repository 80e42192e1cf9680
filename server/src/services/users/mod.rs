//! The users service (`/api/users`): accounts, roles, login sessions and tokens.
//!
//! Passwords are argon2id hashes; access tokens are short-lived JWTs bound
//! to a session, refresh tokens rotate on every use and a replayed one ends
//! its session. Expired and long-revoked sessions are swept by a worker.

pub mod domain;
mod handlers;
pub mod rules;

use std::time::Duration;

use axum::middleware::from_fn_with_state;
use shop_wire::ServiceHealth;
use shop_wire::health::Check;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::gateway::rate_limit::{Limiters, login_middleware, register_middleware};
use crate::services::health::HealthReport;
use crate::state::AppState;
use crate::store::now;

pub const NAME: &str = "users";
pub const SESSION_SWEEPER: &str = "session_sweeper";
/// Revoked and expired sessions stay listed for audit this long before the sweeper deletes them.
const SESSION_RETENTION: time::Duration = time::Duration::days(7);

pub fn router(limiters: std::sync::Arc<Limiters>) -> OpenApiRouter<AppState> {
    let login = OpenApiRouter::new()
        .routes(routes!(handlers::login))
        // Emailed tokens are guessed like passwords, and a reset request
        // sends mail: both spend the login budget of the address.
        .routes(routes!(handlers::verify_email))
        .routes(routes!(handlers::request_password_reset))
        .routes(routes!(handlers::confirm_password_reset))
        .layer(from_fn_with_state(limiters.clone(), login_middleware));
    let register = OpenApiRouter::new()
        .routes(routes!(handlers::register))
        .layer(from_fn_with_state(limiters, register_middleware));
    OpenApiRouter::new()
        .routes(routes!(handlers::list, handlers::create))
        .routes(routes!(handlers::refresh))
        .routes(routes!(handlers::logout))
        .routes(routes!(handlers::me, handlers::update_me))
        .routes(routes!(handlers::change_password))
        .routes(routes!(handlers::sessions))
        .routes(routes!(handlers::revoke_session))
        .routes(routes!(handlers::get))
        .routes(routes!(handlers::set_role))
        .routes(routes!(handlers::health))
        .routes(routes!(
            crate::services::pricing::handlers::list_addresses,
            crate::services::pricing::handlers::save_address
        ))
        .routes(routes!(crate::services::pricing::handlers::delete_address))
        .merge(login)
        .merge(register)
}

pub fn spawn_workers(state: &AppState) {
    let sweeper_state = state.clone();
    state.workers.spawn_periodic(
        SESSION_SWEEPER,
        Duration::from_secs(state.config.sweep_interval_seconds),
        move || {
            let state = sweeper_state.clone();
            async move {
                let purged = state
                    .store
                    .purge_sessions(now() - SESSION_RETENTION)
                    .await?;
                if purged > 0 {
                    tracing::info!(purged, "swept old sessions");
                }
                let tokens = state
                    .store
                    .purge_account_tokens(now() - SESSION_RETENTION)
                    .await?;
                if tokens > 0 {
                    tracing::info!(tokens, "swept expired account tokens");
                }
                state.login_guard.prune(std::time::Instant::now());
                Ok(())
            }
        },
    );
}

pub fn health(state: &AppState, database: Check) -> ServiceHealth {
    let mut report = HealthReport::new(NAME);
    report.add("database", database);
    report.add_worker(&state.workers, SESSION_SWEEPER);
    report.finish()
}
