//! Customers' address books in PostgreSQL.
//!
//! A save locks its customer's row first: saves of one customer then run
//! one after another, so the count that keeps a book within its limit is
//! never read by two saves at once (a guarded `INSERT ... WHERE (SELECT
//! count(*) ...) < $max` alone would let racing saves each count the book
//! without the others' rows under `READ COMMITTED`).

use async_trait::async_trait;
use shop_wire::UserId;
use shop_wire::addresses::{AddressId, SavedAddress};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};

use super::{PgStore, audit, backend, parse};
use crate::store::audit::snapshot;
use crate::store::{AddressSave, AddressStore, AuditChange, NewEvent, StoreResult};

const COLUMNS: &str = "id, address::text AS address, default_shipping, default_billing, created_at";

fn address_row(row: &PgRow) -> StoreResult<SavedAddress> {
    let address: String = row.try_get("address")?;
    Ok(SavedAddress {
        id: parse(row, "id")?,
        address: serde_json::from_str(&address).map_err(backend)?,
        default_shipping: row.try_get("default_shipping")?,
        default_billing: row.try_get("default_billing")?,
        created_at: row.try_get("created_at")?,
    })
}

async fn find(
    conn: &mut PgConnection,
    user: &UserId,
    id: &AddressId,
) -> StoreResult<Option<SavedAddress>> {
    let sql = format!("SELECT {COLUMNS} FROM user_addresses WHERE id = $1 AND user_id = $2");
    sqlx::query(AssertSqlSafe(sql))
        .bind(id.as_str())
        .bind(user.as_str())
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(address_row)
        .transpose()
}

/// Saves `saved` unless the book holds `max`; each default flag it has is
/// taken from the address that had it first (the unique indexes allow one
/// of each at every moment, not only at commit).
async fn insert(
    tx: &mut PgConnection,
    user: &UserId,
    saved: &SavedAddress,
    max: usize,
) -> StoreResult<AddressSave> {
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
        .bind(user.as_str())
        .execute(&mut *tx)
        .await?;
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM user_addresses WHERE user_id = $1")
        .bind(user.as_str())
        .fetch_one(&mut *tx)
        .await?;
    if held >= i64::try_from(max).map_err(backend)? {
        return Ok(AddressSave::Full { max });
    }
    for (flag, wanted) in [
        ("default_shipping", saved.default_shipping),
        ("default_billing", saved.default_billing),
    ] {
        if wanted {
            let sql =
                format!("UPDATE user_addresses SET {flag} = false WHERE user_id = $1 AND {flag}");
            sqlx::query(AssertSqlSafe(sql))
                .bind(user.as_str())
                .execute(&mut *tx)
                .await?;
        }
    }
    sqlx::query(
        "INSERT INTO user_addresses (id, user_id, address, default_shipping, default_billing,
             created_at)
         VALUES ($1, $2, $3::jsonb, $4, $5, $6)",
    )
    .bind(saved.id.as_str())
    .bind(user.as_str())
    .bind(serde_json::to_string(&saved.address).map_err(backend)?)
    .bind(saved.default_shipping)
    .bind(saved.default_billing)
    .bind(saved.created_at)
    .execute(&mut *tx)
    .await?;
    audit::record(
        tx,
        [AuditChange::diff(
            "address.created",
            "address",
            saved.id.as_str(),
            serde_json::Value::Null,
            snapshot(saved),
        )],
    )
    .await?;
    Ok(AddressSave::Saved)
}

#[async_trait]
impl AddressStore for PgStore {
    async fn addresses(&self, user: &UserId) -> StoreResult<Vec<SavedAddress>> {
        let sql = format!("SELECT {COLUMNS} FROM user_addresses WHERE user_id = $1 ORDER BY id");
        sqlx::query(AssertSqlSafe(sql))
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(address_row)
            .collect()
    }

    async fn address(&self, user: &UserId, id: &AddressId) -> StoreResult<Option<SavedAddress>> {
        let mut conn = self.pool.acquire().await?;
        find(&mut conn, user, id).await
    }

    async fn insert_address(
        &self,
        user: &UserId,
        address: &SavedAddress,
        max: usize,
        events: Vec<NewEvent>,
    ) -> StoreResult<AddressSave> {
        let (save, _) = self
            .write(move |tx| {
                let (user, saved, events) = (user.clone(), address.clone(), events.clone());
                Box::pin(async move {
                    let save = insert(tx, &user, &saved, max).await?;
                    let events = if save == AddressSave::Saved {
                        events
                    } else {
                        Vec::new()
                    };
                    Ok((save, events))
                })
            })
            .await?;
        Ok(save)
    }

    async fn delete_address(
        &self,
        user: &UserId,
        id: &AddressId,
        events: Vec<NewEvent>,
    ) -> StoreResult<Option<SavedAddress>> {
        let (deleted, _) = self
            .write(move |tx| {
                let (user, id, events) = (user.clone(), id.clone(), events.clone());
                Box::pin(async move {
                    let sql = format!(
                        "DELETE FROM user_addresses WHERE id = $1 AND user_id = $2
                         RETURNING {COLUMNS}"
                    );
                    let Some(row) = sqlx::query(AssertSqlSafe(sql))
                        .bind(id.as_str())
                        .bind(user.as_str())
                        .fetch_optional(&mut *tx)
                        .await?
                    else {
                        return Ok((None, Vec::new()));
                    };
                    let found = address_row(&row)?;
                    audit::record(
                        tx,
                        [AuditChange::diff(
                            "address.deleted",
                            "address",
                            id.as_str(),
                            snapshot(&found),
                            serde_json::Value::Null,
                        )],
                    )
                    .await?;
                    Ok((Some(found), events))
                })
            })
            .await?;
        Ok(deleted)
    }
}
