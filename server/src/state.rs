//! What every handler and worker shares; cheap to clone.

use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use crate::auth::SessionCache;
use crate::auth::login_guard::LoginGuard;
use crate::auth::passwords::Passwords;
use crate::auth::tokens::TokenKeys;
use crate::config::Config;
use crate::events::EventBus;
use crate::store::Store;
use crate::workers::Supervisor;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub events: EventBus,
    pub tokens: TokenKeys,
    pub passwords: Passwords,
    pub sessions: SessionCache,
    /// Users by id for the hot read paths (`/me`); every write in this process updates it.
    pub users: moka::sync::Cache<shop_wire::UserId, shop_wire::users::User>,
    pub login_guard: Arc<LoginGuard>,
    pub workers: Supervisor,
    pub started: Instant,
    /// Cancelled when the server begins to shut down; long-lived responses (SSE) end on it.
    pub shutdown: CancellationToken,
}
