//! Customers' address books in SQLite.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};
use shop_wire::UserId;
use shop_wire::addresses::{AddressId, SavedAddress};

use super::audit;
use super::{SqliteStore, append, backend, conversion, from_millis, millis, parse_column};
use crate::store::audit::snapshot;
use crate::store::{AddressSave, AddressStore, AuditChange, NewEvent, StoreResult};

const COLUMNS: &str = "id, address, default_shipping, default_billing, created_at";

fn address_row(row: &Row<'_>) -> rusqlite::Result<SavedAddress> {
    let address: String = row.get("address")?;
    Ok(SavedAddress {
        id: parse_column(row, "id")?,
        address: serde_json::from_str(&address).map_err(conversion)?,
        default_shipping: row.get("default_shipping")?,
        default_billing: row.get("default_billing")?,
        created_at: from_millis(row.get("created_at")?)?,
    })
}

fn find(
    conn: &Connection,
    user: &UserId,
    id: &AddressId,
) -> rusqlite::Result<Option<SavedAddress>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM user_addresses WHERE id = ?1 AND user_id = ?2"
    ))?
    .query_row([id.as_str(), user.as_str()], address_row)
    .optional()
}

#[async_trait]
impl AddressStore for SqliteStore {
    async fn addresses(&self, user: &UserId) -> StoreResult<Vec<SavedAddress>> {
        let user = user.clone();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM user_addresses WHERE user_id = ?1 ORDER BY id"
            ))?
            .query_map([user.as_str()], address_row)?
            .collect()
        })
        .await
    }

    async fn address(&self, user: &UserId, id: &AddressId) -> StoreResult<Option<SavedAddress>> {
        let (user, id) = (user.clone(), id.clone());
        self.read(move |conn| find(conn, &user, &id)).await
    }

    async fn insert_address(
        &self,
        user: &UserId,
        address: &SavedAddress,
        max: usize,
        events: Vec<NewEvent>,
    ) -> StoreResult<AddressSave> {
        let (user, saved) = (user.clone(), address.clone());
        self.write(move |tx| {
            // Saved without its flags first, guarded by the count, so a full
            // book is refused before any other address loses a flag.
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO user_addresses (id, user_id, address, created_at)
                     SELECT ?1, ?2, ?3, ?4
                     WHERE (SELECT count(*) FROM user_addresses WHERE user_id = ?2) < ?5",
                )?
                .execute(params![
                    saved.id.as_str(),
                    user.as_str(),
                    serde_json::to_string(&saved.address).map_err(backend)?,
                    millis(saved.created_at),
                    i64::try_from(max).map_err(backend)?,
                ])?;
            if inserted == 0 {
                return Ok(AddressSave::Full { max });
            }
            for (flag, wanted) in [
                ("default_shipping", saved.default_shipping),
                ("default_billing", saved.default_billing),
            ] {
                if wanted {
                    // The old default loses its flag before the new one takes
                    // it: SQLite checks the one-default index row by row, so
                    // one statement setting both failed whenever it reached
                    // the new address first.
                    tx.prepare_cached(&format!(
                        "UPDATE user_addresses SET {flag} = 0 WHERE user_id = ?1 AND {flag}"
                    ))?
                    .execute([user.as_str()])?;
                    tx.prepare_cached(&format!(
                        "UPDATE user_addresses SET {flag} = 1 WHERE id = ?1"
                    ))?
                    .execute([saved.id.as_str()])?;
                }
            }
            audit::record(
                tx,
                [AuditChange::diff(
                    "address.created",
                    "address",
                    saved.id.as_str(),
                    serde_json::Value::Null,
                    snapshot(&saved),
                )],
            )?;
            append(tx, events)?;
            Ok(AddressSave::Saved)
        })
        .await
    }

    async fn delete_address(
        &self,
        user: &UserId,
        id: &AddressId,
        events: Vec<NewEvent>,
    ) -> StoreResult<Option<SavedAddress>> {
        let (user, id) = (user.clone(), id.clone());
        self.write(move |tx| {
            let Some(found) = find(tx, &user, &id)? else {
                return Ok(None);
            };
            tx.prepare_cached("DELETE FROM user_addresses WHERE id = ?1 AND user_id = ?2")?
                .execute([id.as_str(), user.as_str()])?;
            audit::record(
                tx,
                [AuditChange::diff(
                    "address.deleted",
                    "address",
                    id.as_str(),
                    snapshot(&found),
                    serde_json::Value::Null,
                )],
            )?;
            append(tx, events)?;
            Ok(Some(found))
        })
        .await
    }
}
