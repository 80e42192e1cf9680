//! What every handler and worker shares; cheap to clone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::auth::SessionCache;
use crate::auth::keys::KeyCache;
use crate::auth::login_guard::LoginGuard;
use crate::auth::passwords::Passwords;
use crate::auth::tokens::TokenKeys;
use crate::config::Config;
use crate::events::EventBus;
use crate::services::notifications::Notifier;
use crate::services::payments::provider::Providers;
use crate::services::products::cache::ProductCache;
use crate::services::search::SearchService;
use crate::services::users::domain::{UserCache, forget_changed};
use crate::services::webhooks::Webhooks;
use crate::store::Store;
use crate::workers::Supervisor;

/// What every handler and worker shares, behind one `Arc`: the router's
/// middleware clones the state for every request, several times, and
/// cloning and dropping the seventeen fields one by one was a twentieth of
/// the server's time under checkout load.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub events: EventBus,
    pub tokens: TokenKeys,
    pub passwords: Passwords,
    pub sessions: SessionCache,
    /// Checked API keys by the hash of their secret; emptied on every revocation and role change.
    pub keys: KeyCache,
    /// Users by id for the hot read paths (`/me`); every committed change in this process updates it.
    pub users: UserCache,
    pub login_guard: Arc<LoginGuard>,
    pub workers: Supervisor,
    /// The notifications service's queue wake-up, breakers, providers and template cache.
    pub notifications: Notifier,
    /// Products by id and SKU; every committed catalog change in this process invalidates it.
    pub catalog: ProductCache,
    /// The payment provider (simulated or Stripe) behind its timeout, retries and breaker.
    pub payments: Providers,
    /// The search index, its caches and its buffered analytics.
    pub search: Arc<SearchService>,
    /// The webhooks service's delivery client, breakers and wake-up.
    pub webhooks: Webhooks,
    pub started: Instant,
    /// Cancelled when the server begins to shut down; long-lived responses (SSE) end on it.
    pub shutdown: CancellationToken,
}

impl AppState {
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        jwt_secret: &[u8],
        payments: Providers,
        started: Instant,
        shutdown: CancellationToken,
    ) -> Self {
        let events = EventBus::new(store.clone());
        let search = Arc::new(SearchService::new(&config.search));
        let sessions = SessionCache::new();
        let users: UserCache = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(Duration::from_secs(30))
            .build();
        let catalog = ProductCache::new();
        // In-memory state follows each commit before its write answers,
        // whether or not the request that made it is still waiting.
        let observer = search.clone();
        events.observe(move |event| observer.on_event(event));
        let observer = catalog.clone();
        events.observe(move |event| observer.on_event(event));
        let (cached_users, cached_sessions) = (users.clone(), sessions.clone());
        events.observe(move |event| forget_changed(&cached_users, &cached_sessions, event));
        let keys = KeyCache::new();
        let cached_keys = keys.clone();
        events.observe(move |event| cached_keys.on_event(event));
        AppState(Arc::new(Shared {
            payments,
            notifications: Notifier::new(&config.notifications),
            webhooks: Webhooks::new(&config.webhooks),
            config,
            events,
            search,
            store,
            tokens: TokenKeys::new(jwt_secret),
            passwords: Passwords::new(),
            sessions,
            keys,
            users,
            login_guard: Arc::new(LoginGuard::default()),
            catalog,
            workers: Supervisor::new(shutdown.clone()),
            started,
            shutdown,
        }))
    }
}
