//! The audit log in SQLite: rows written inside each change's transaction
//! by the store code that makes the change, read newest first.
//!
//! The writer sets the change's [`AuditContext`] on its thread while the
//! change runs ([`with_context`]); [`record`] reads it, so a store method
//! names only what changed, never who changed it.

use std::cell::RefCell;

use async_trait::async_trait;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Row, Transaction, params};
use serde_json::Value;
use shop_wire::audit::{Actor, ActorKind, AuditEntry};

use super::filter::Filter;
use super::{SqliteStore, conversion, from_millis, millis, parse_column};
use crate::store::audit::AuditContext;
use crate::store::{AuditChange, AuditQuery, AuditStore, StoreResult, now};

thread_local! {
    /// The context of the change the writer is running on this thread.
    static CONTEXT: RefCell<Option<AuditContext>> = const { RefCell::new(None) };
}

/// Runs `change` with `context` as the one its audit entries carry (the
/// system's when `None`).
pub(super) fn with_context<T>(context: Option<AuditContext>, change: impl FnOnce() -> T) -> T {
    CONTEXT.with(|current| *current.borrow_mut() = context);
    let outcome = change();
    CONTEXT.with(|current| current.borrow_mut().take());
    outcome
}

fn json_text(value: &Value) -> Option<String> {
    (!value.is_null()).then(|| value.to_string())
}

/// Writes `changes` in the running change's transaction. Changes that
/// changed nothing are skipped.
pub(super) fn record(
    tx: &Transaction<'_>,
    changes: impl IntoIterator<Item = AuditChange>,
) -> StoreResult<()> {
    let context = CONTEXT
        .with(|current| current.borrow().clone())
        .unwrap_or_else(AuditContext::system);
    let mut insert = tx.prepare_cached(
        "INSERT INTO audit_log (at, actor_kind, actor_id, actor_email, ip, action, entity,
             entity_id, before, after, request_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    let at = millis(now());
    for change in changes.into_iter().filter(AuditChange::is_change) {
        insert.execute(params![
            at,
            context.actor.kind.as_str(),
            context.actor.id,
            context.actor.email,
            context.ip,
            change.action,
            change.entity,
            change.entity_id,
            json_text(&change.before),
            json_text(&change.after),
            context.request_id,
        ])?;
    }
    Ok(())
}

fn parse_json(text: Option<String>) -> rusqlite::Result<Value> {
    text.map_or(Ok(Value::Null), |text| {
        serde_json::from_str(&text).map_err(conversion)
    })
}

fn entry_row(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: row.get::<_, i64>("id")? as u64,
        at: from_millis(row.get("at")?)?,
        actor: Actor {
            kind: parse_column::<ActorKind>(row, "actor_kind")?,
            id: row.get("actor_id")?,
            email: row.get("actor_email")?,
        },
        ip: row.get("ip")?,
        action: row.get("action")?,
        entity: row.get("entity")?,
        entity_id: row.get("entity_id")?,
        before: parse_json(row.get("before")?)?,
        after: parse_json(row.get("after")?)?,
        request_id: row.get("request_id")?,
    })
}

const COLUMNS: &str = "id, at, actor_kind, actor_id, actor_email, ip, action, entity, entity_id, \
     before, after, request_id";

#[async_trait]
impl AuditStore for SqliteStore {
    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<(Vec<AuditEntry>, u64)> {
        let query = query.clone();
        self.read(move |conn| {
            let mut filter = Filter::default();
            if let Some(actor) = &query.actor {
                if actor == ActorKind::System.as_str() {
                    filter.add_one("actor_kind = ?", "system".to_owned());
                } else if actor.starts_with("usr_") || actor.starts_with("key_") {
                    filter.add_one("actor_id = ?", actor.clone());
                } else {
                    filter.add_one("actor_email = ? COLLATE NOCASE", actor.clone());
                }
            }
            filter.add_some("entity = ?", query.entity.clone());
            filter.add_some("entity_id = ?", query.entity_id.clone());
            if let Some(action) = &query.action {
                // `product` matches every `product.*` action.
                filter.any_of(vec![
                    ("action = ?", vec![SqlValue::from(action.clone())]),
                    (
                        "action LIKE ? ESCAPE '\\'",
                        vec![SqlValue::from(format!("{}.%", super::escape_like(action)))],
                    ),
                ]);
            }
            filter.add_some("at >= ?", query.from.map(millis));
            filter.add_some("at < ?", query.to.map(millis));
            let total = filter.count(conn, "FROM audit_log")?;
            let select = format!("SELECT {COLUMNS} FROM audit_log");
            let entries = filter.page(
                conn,
                &select,
                "id DESC",
                (query.limit, query.offset),
                entry_row,
            )?;
            Ok((entries, total))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use shop_wire::audit::ActorKind;

    use super::*;
    use crate::store::StoreError;
    use crate::store::audit::AuditScope;
    use crate::store::sqlite::tests::store;

    fn change(id: &str) -> AuditChange {
        AuditChange::diff(
            "thing.updated",
            "thing",
            id,
            json!({"a": 1}),
            json!({"a": 2}),
        )
    }

    #[tokio::test]
    async fn an_aborted_change_leaves_no_entry_and_entries_cannot_be_edited() {
        let (_dir, store) = store();
        let failed = store
            .write(|tx| -> StoreResult<()> {
                record(tx, [change("t1")])?;
                Err(StoreError::Busy)
            })
            .await;
        assert!(failed.is_err());
        // A request's caller rides with its write to the writer thread.
        let scope = AuditScope::new(Some("192.0.2.1".into()), Some("req_9".into()));
        let writer = store.clone();
        scope
            .run(async move {
                crate::store::audit::set_actor(Actor {
                    kind: ActorKind::User,
                    id: Some("usr_1".into()),
                    email: Some("ops@example.com".into()),
                });
                writer.write(|tx| record(tx, [change("t2")])).await
            })
            .await
            .expect("kept");
        let (entries, total) = store
            .list_audit(&AuditQuery {
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .expect("list");
        assert_eq!(total, 1, "only the committed change: {entries:?}");
        assert_eq!(entries[0].entity_id, "t2");
        assert_eq!(entries[0].actor.email.as_deref(), Some("ops@example.com"));
        assert_eq!(entries[0].ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(entries[0].request_id.as_deref(), Some("req_9"));
        // Outside any request, the system.
        store
            .write(|tx| record(tx, [change("t3")]))
            .await
            .expect("kept");
        let (entries, _) = store
            .list_audit(&AuditQuery {
                actor: Some("system".into()),
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .expect("list");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].entity_id, "t3");
        for sql in ["UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"] {
            let refused = store.write(move |tx| Ok(tx.execute(sql, [])?)).await;
            assert!(refused.is_err(), "{sql} must be refused");
        }
    }
}
