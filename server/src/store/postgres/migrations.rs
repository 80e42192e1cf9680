//! The schema: the PostgreSQL migrations in order, and running them at connect.
//!
//! Several nodes may start at once on one database, so the migrations run
//! under an advisory lock: the first node applies them, the others wait and
//! then find them applied.

use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};

use crate::store::{StoreError, StoreResult};

/// Migrations in order; `schema_version` holds how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/postgres/0001_platform.sql"),
    include_str!("../migrations/postgres/0002_catalog.sql"),
    include_str!("../migrations/postgres/0003_accounts.sql"),
    include_str!("../migrations/postgres/0004_pricing.sql"),
    include_str!("../migrations/postgres/0005_carts.sql"),
    include_str!("../migrations/postgres/0006_orders.sql"),
    include_str!("../migrations/postgres/0007_documents.sql"),
    include_str!("../migrations/postgres/0008_returns.sql"),
    include_str!("../migrations/postgres/0009_notifications_webhooks.sql"),
    include_str!("../migrations/postgres/0010_keys_analytics_search.sql"),
    include_str!("../migrations/postgres/0011_event_notify.sql"),
];

/// The advisory lock that lets one node at a time migrate.
const MIGRATION_LOCK: i64 = 0x73_686f_705f_6d69; // "shop_mi"

pub(super) async fn migrate(pool: &PgPool) -> StoreResult<()> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    let migrated = apply(&mut conn).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await;
    migrated?;
    unlocked?;
    Ok(())
}

/// Applies pending migrations inside `tx`, a transaction the caller
/// commits or rolls back with its own work: `shop db copy` migrates its
/// target in the transaction that fills it, so a failed copy leaves even
/// the schema as it was. The lock is the transaction's, held to its end.
pub(crate) async fn migrate_in(tx: &mut PgConnection) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    apply(tx).await
}

/// Each migration in a transaction of its own, or a savepoint of the
/// caller's when `conn` is already in one (sqlx nests `begin` so).
async fn apply(conn: &mut PgConnection) -> StoreResult<()> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_version (
             only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
             version  integer NOT NULL
         );
         INSERT INTO schema_version (version) VALUES (0) ON CONFLICT DO NOTHING;",
    )
    .execute(&mut *conn)
    .await?;
    let found: i32 = sqlx::query_scalar("SELECT version FROM schema_version")
        .fetch_one(&mut *conn)
        .await?;
    let known = MIGRATIONS.len() as i64;
    if i64::from(found) > known {
        return Err(StoreError::SchemaTooNew {
            found: i64::from(found),
            known,
        });
    }
    for (done, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(AssertSqlSafe(*sql)).execute(&mut *tx).await?;
        sqlx::query("UPDATE schema_version SET version = $1")
            .bind(done as i32 + 1)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Durability;
    use crate::store::postgres::{PgStore, testing};

    #[tokio::test]
    async fn a_schema_newer_than_this_build_is_refused() {
        let (database, url) = testing::database().await;
        let store = PgStore::connect(&url, Durability::Process)
            .await
            .expect("first connect migrates");
        sqlx::query("UPDATE schema_version SET version = version + 1")
            .execute(&store.pool)
            .await
            .expect("bump");
        let refused = PgStore::connect(&url, Durability::Process)
            .await
            .expect_err("refused");
        let known = MIGRATIONS.len() as i64;
        assert!(
            matches!(refused, StoreError::SchemaTooNew { found, known: k } if found == known + 1 && k == known),
            "{refused:?}"
        );
        drop(database);
    }
}
