//! The schema: the migrations in order, and running them at open.

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

use super::backend;
use crate::store::{StoreError, StoreResult};

/// Migrations in order; the database's `user_version` counts how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_platform.sql"),
    include_str!("../migrations/0002_notifications.sql"),
    include_str!("../migrations/0003_catalog.sql"),
    include_str!("../migrations/0004_commerce.sql"),
    include_str!("../migrations/0005_search.sql"),
    include_str!("../migrations/0006_hardening.sql"),
    include_str!("../migrations/0007_keys_audit.sql"),
    include_str!("../migrations/0008_webhooks.sql"),
    include_str!("../migrations/0009_pricing.sql"),
    include_str!("../migrations/0010_after_sale.sql"),
    include_str!("../migrations/0011_address_book.sql"),
    include_str!("../migrations/0012_accounts.sql"),
    include_str!("../migrations/0013_fulfilments.sql"),
    include_str!("../migrations/0014_returns.sql"),
    include_str!("../migrations/0015_documents.sql"),
    include_str!("../migrations/0016_return_shipping.sql"),
];

pub(super) fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    let migrations = Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect());
    migrations.to_latest(conn).map_err(backend)
}
