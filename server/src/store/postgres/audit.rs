//! The audit log in PostgreSQL: entries written inside each change's
//! transaction by the store code that makes the change.
//!
//! A change runs on the task that asked for it (there is no writer thread
//! to hand the request's context to), so [`record`] reads the request's
//! [`AuditContext`] from the task itself.
//!
//! The log is read newest first by its identity column, with the filters
//! SQLite's has; an actor's email matches in any case.

use async_trait::async_trait;
use serde_json::Value;
use shop_wire::audit::{Actor, ActorKind, AuditEntry};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::filter::Filter;
use super::{PgStore, backend, parse};
use crate::store::audit::{AuditContext, current};
use crate::store::{AuditChange, AuditQuery, AuditStore, StoreResult, escape_like, now};

/// Writes `changes` in the running change's transaction, as the running
/// request's caller (the system's outside a request). Changes that changed
/// nothing are skipped.
pub(super) async fn record(
    tx: &mut PgConnection,
    changes: impl IntoIterator<Item = AuditChange>,
) -> StoreResult<()> {
    let changes: Vec<AuditChange> = changes.into_iter().filter(AuditChange::is_change).collect();
    if changes.is_empty() {
        return Ok(());
    }
    let context = current().unwrap_or_else(AuditContext::system);
    let json = |value: &serde_json::Value| (!value.is_null()).then(|| value.to_string());
    let actions: Vec<&str> = changes.iter().map(|c| c.action.as_str()).collect();
    let entities: Vec<&str> = changes.iter().map(|c| c.entity).collect();
    let ids: Vec<&str> = changes.iter().map(|c| c.entity_id.as_str()).collect();
    let befores: Vec<Option<String>> = changes.iter().map(|c| json(&c.before)).collect();
    let afters: Vec<Option<String>> = changes.iter().map(|c| json(&c.after)).collect();
    // One statement for the whole batch: a sweep's entries cost one round trip.
    sqlx::query(
        "INSERT INTO audit_log (at, actor_kind, actor_id, actor_email, ip, action, entity,
             entity_id, before, after, request_id)
         SELECT $1, $2, $3, $4, $5, c.action, c.entity, c.entity_id, c.before::jsonb,
                c.after::jsonb, $6
         FROM unnest($7::text[], $8::text[], $9::text[], $10::text[], $11::text[])
             WITH ORDINALITY AS c(action, entity, entity_id, before, after, n)
         ORDER BY c.n",
    )
    .bind(now())
    .bind(context.actor.kind.as_str())
    .bind(context.actor.id)
    .bind(context.actor.email)
    .bind(context.ip)
    .bind(context.request_id)
    .bind(actions)
    .bind(entities)
    .bind(ids)
    .bind(befores)
    .bind(afters)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn entry_row(row: &PgRow) -> StoreResult<AuditEntry> {
    let json = |column: &str| -> StoreResult<Value> {
        let text: Option<String> = row.try_get(column)?;
        text.map_or(Ok(Value::Null), |text| {
            serde_json::from_str(&text).map_err(backend)
        })
    };
    Ok(AuditEntry {
        id: row.try_get::<i64, _>("id")? as u64,
        at: row.try_get("at")?,
        actor: Actor {
            kind: parse::<ActorKind>(row, "actor_kind")?,
            id: row.try_get("actor_id")?,
            email: row.try_get("actor_email")?,
        },
        ip: row.try_get("ip")?,
        action: row.try_get("action")?,
        entity: row.try_get("entity")?,
        entity_id: row.try_get("entity_id")?,
        before: json("before")?,
        after: json("after")?,
        request_id: row.try_get("request_id")?,
    })
}

const COLUMNS: &str = "id, at, actor_kind, actor_id, actor_email, ip, action, entity, entity_id, \
     before::text AS before, after::text AS after, request_id";

/// `select` filtered by `query`, as SQLite filters it.
fn filter(select: &str, query: &AuditQuery) -> Filter {
    let mut filter = Filter::new(select);
    if let Some(actor) = &query.actor {
        if actor == ActorKind::System.as_str() {
            filter.add_some("actor_kind = ", Some(actor.clone()));
        } else if actor.starts_with("usr_") || actor.starts_with("key_") {
            filter.add_some("actor_id = ", Some(actor.clone()));
        } else {
            // Any case, as SQLite's NOCASE; served by `audit_log_actor_email`.
            filter
                .and()
                .push("lower(actor_email) = lower(")
                .push_bind(actor.clone())
                .push(")");
        }
    }
    filter.add_some("entity = ", query.entity.clone());
    filter.add_some("entity_id = ", query.entity_id.clone());
    if let Some(action) = &query.action {
        // `product` matches every `product.*` action.
        filter
            .and()
            .push("(action = ")
            .push_bind(action.clone())
            .push(" OR action LIKE ")
            .push_bind(format!("{}.%", escape_like(action)))
            .push(" ESCAPE '\\')");
    }
    filter.add_some("at >= ", query.from);
    filter.add_some("at < ", query.to);
    filter
}

#[async_trait]
impl AuditStore for PgStore {
    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<(Vec<AuditEntry>, u64)> {
        let total: i64 = filter("SELECT count(*) FROM audit_log", query)
            .query()
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await?;
        let entries = filter(&format!("SELECT {COLUMNS} FROM audit_log"), query)
            .page("id DESC", (query.limit, query.offset))
            .build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(entry_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((entries, total as u64))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::audit::{AuditScope, set_actor};
    use crate::store::postgres::testing;

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
        let (_database, store) = testing::open().await;
        let failed = store
            .write(|tx| {
                Box::pin(async move {
                    record(tx, [change("t1")]).await?;
                    Err::<((), _), _>(backend(std::io::Error::other("the change fails")))
                })
            })
            .await;
        assert!(failed.is_err());
        // A request's caller rides with its write, on the request's task.
        let scope = AuditScope::new(Some("192.0.2.1".into()), Some("req_9".into()));
        let writer = store.clone();
        scope
            .run(async move {
                set_actor(Actor {
                    kind: ActorKind::User,
                    id: Some("usr_1".into()),
                    email: Some("ops@example.com".into()),
                });
                writer
                    .write(|tx| {
                        Box::pin(async move {
                            record(tx, [change("t2")]).await?;
                            Ok(((), Vec::new()))
                        })
                    })
                    .await
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
        assert_eq!(entries[0].before, json!({"a": 1}));
        for sql in ["UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"] {
            let refused = sqlx::query(sql).execute(&store.pool).await;
            assert!(refused.is_err(), "{sql} must be refused");
        }
    }
}
