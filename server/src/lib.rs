//! The shop platform: every service of `shop serve` behind one gateway, on
//! one embedded database.
//!
//! [`serve`] runs a server on a listener until a shutdown signal, which is
//! all the binary does and all a test needs (bind port 0, pass the listener).
//! Layout: [`store`] holds all SQL behind traits; [`services`] hold the
//! domain rules and their routes; [`gateway`] is the middleware every route
//! shares; [`events`] and [`workers`] are the machinery services build on.

pub(crate) mod auth;
pub(crate) mod breaker;
pub mod config;
pub(crate) mod error;
pub(crate) mod events;
pub(crate) mod gateway;
pub(crate) mod services;
pub(crate) mod state;
pub(crate) mod store;
pub mod telemetry;
pub(crate) mod web;
pub(crate) mod workers;

/// What `examples/search_bench.rs` measures: the search index on its own,
/// outside a server.
pub mod search_bench {
    pub use crate::services::products::domain::product_from;
    pub use crate::services::search::index::{Filters, Index};
    pub use crate::services::search::suggest::{Phrases, Suggester};
    pub use crate::services::search::text;
    pub use crate::store::SearchDocument;
}

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio_util::sync::CancellationToken;

pub use config::Config;
/// `shop db copy`: a live SQLite shop copied into an empty PostgreSQL database.
pub use store::copy::{CopyDone, CopyError, copy as copy_to_postgres};
/// A throwaway PostgreSQL for the end-to-end suite on PostgreSQL.
#[cfg(feature = "postgres-tests")]
pub use store::postgres::testing as postgres_testing;
/// `shop db backup`: an online copy of the SQLite database, taken from outside the server.
pub use store::sqlite::backup::{BackupDone, BackupError, backup as backup_sqlite};

use crate::auth::tokens::load_or_create_secret;
use crate::config::Database;
use crate::services::users::domain::{Bootstrap, bootstrap_admin};
use crate::state::AppState;
use crate::store::postgres::PgStore;
use crate::store::{SqliteStore, Store};

/// Serves on `listener` until `shutdown` resolves, then stops accepting,
/// lets in-flight requests and running background jobs finish (up to the
/// configured grace period), and returns.
pub async fn serve(
    config: Config,
    listener: std::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let started = Instant::now();
    config.validate()?;
    raise_open_file_limit();
    let config = Arc::new(config);
    let database = config.database()?;
    let (store, secret) = open_store(&config, &database).await?;
    gateway::metrics::handle();
    // Certificate problems stop the start, before anything else happens.
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => Some(gateway::tls::load_config(cert, key)?),
        _ => None,
    };

    let payments = services::payments::provider::Providers::from_config(&config.commerce)?;
    let shutdown_token = CancellationToken::new();
    let state = AppState::new(
        config.clone(),
        store,
        &secret,
        payments,
        started,
        shutdown_token.clone(),
    );

    match bootstrap_admin(&state)
        .await
        .map_err(|err| anyhow::anyhow!("creating the first admin: {err}"))?
    {
        Bootstrap::Existing => {}
        Bootstrap::Configured { email } => {
            tracing::info!(%email, "created the first admin from SHOP_ADMIN_EMAIL")
        }
        Bootstrap::Generated { email, password } => {
            tracing::warn!(%email, "created the first admin with a generated password (printed once on stderr)");
            eprintln!(
                "shop: created the first admin account\n  email:    {email}\n  password: {password}\n\
                 shop: this password is shown only this once; log in and change it"
            );
        }
    }

    if config.inventory.demo {
        match services::products::demo::load_demo_if_empty(&state).await? {
            Some(loaded) => {
                tracing::info!(
                    products = loaded.products,
                    users = loaded.users,
                    "loaded the demo catalog"
                );
                eprintln!(
                    "shop: loaded the demo catalog: {} products, {} sample customers",
                    loaded.products, loaded.users
                );
                for failed in &loaded.failed {
                    tracing::warn!(line = failed.line, sku = ?failed.sku, reason = %failed.reason, "demo product refused");
                }
            }
            None => tracing::info!("--demo: the database already has products; left as it is"),
        }
    }
    services::users::spawn_workers(&state);
    services::notifications::spawn_workers(&state);
    services::inventory::spawn_workers(&state);
    services::cart::spawn_workers(&state);
    services::orders::spawn_workers(&state);
    services::search::spawn_workers(&state);
    services::webhooks::spawn_workers(&state);
    // The storefront and status page in front; every other path is the API's.
    let app = web::app(state.clone(), gateway::app(state.clone()))?;
    let limits = gateway::connections::ConnectionLimits {
        header_read_timeout: Duration::from_secs(config.header_read_timeout_seconds),
        max_per_address: config.max_connections_per_address,
        trusted_proxies: config.trusted_proxies.clone(),
    };

    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%addr, db = %database.describe(), startup_ms = started.elapsed().as_millis() as u64, "listening");
    eprintln!("shop: listening on {scheme}://{addr}");

    let token = shutdown_token.clone();
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing in-flight requests and background work");
        token.cancel();
    });
    let grace = Duration::from_secs(config.shutdown_grace_seconds);
    let grace_over = {
        let token = shutdown_token.clone();
        async move {
            token.cancelled().await;
            tokio::time::sleep(grace).await;
        }
    };

    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let stop = shutdown_token.clone();
    let server = async {
        match tls {
            None => gateway::connections::serve(listener, app, limits, stop).await,
            Some(tls) => {
                let listener = gateway::tls::TlsListener::new(listener, tls)?;
                gateway::connections::serve(listener, app, limits, stop).await
            }
        }
        anyhow::Ok(())
    };
    let served = tokio::select! {
        result = server => result,
        () = grace_over => {
            tracing::warn!(?grace, "grace period over; dropping the remaining connections");
            Ok(())
        }
    };
    state.workers.shutdown().await;
    // The analytics worker has stopped: write what it buffered since its last round.
    if let Err(err) = services::search::domain::flush_analytics(&state).await {
        tracing::error!(error = %err, "cannot write the last searches and views");
    }
    tracing::info!("stopped");
    served
}

/// Opens the configured database, applying its pending migrations, and
/// the secret that signs access tokens.
async fn open_store(
    config: &Config,
    database: &Database,
) -> anyhow::Result<(Arc<dyn Store>, Vec<u8>)> {
    let configured = config.jwt_secret.clone();
    match database {
        Database::Sqlite(path) => {
            let (path, durability) = (path.clone(), config.durability);
            // Opening the file and reading the secret file block: keep them off the reactor.
            tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let store = SqliteStore::open(&path, durability)
                    .with_context(|| format!("opening the database {}", path.display()))?;
                let secret_file = path.with_extension("jwt-secret");
                let secret = load_or_create_secret(configured.as_deref(), &secret_file)
                    .context("loading the JWT secret")?;
                Ok((Arc::new(store) as Arc<dyn Store>, secret))
            })
            .await?
        }
        Database::Postgres(url) => {
            let store = PgStore::connect(url, config.durability)
                .await
                .with_context(|| format!("opening the database {}", database.describe()))?;
            // Never generated here: every node must sign with the same one.
            let secret = configured
                .context("on PostgreSQL every node needs SHOP_JWT_SECRET")?
                .into_bytes();
            Ok((Arc::new(store), secret))
        }
    }
}

/// Raises the soft limit on open files to the hard limit: every connection
/// is a descriptor, and a default soft limit of 1024 is exhausted by a
/// single client long before the server is busy.
fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        match getrlimit(Resource::RLIMIT_NOFILE) {
            Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
            {
                Ok(()) => tracing::debug!(from = soft, to = hard, "raised the open-file limit"),
                Err(err) => tracing::warn!(error = %err, soft, "cannot raise the open-file limit"),
            },
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "cannot read the open-file limit"),
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
