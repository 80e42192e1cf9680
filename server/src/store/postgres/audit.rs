//! The audit log in PostgreSQL: entries written inside each change's
//! transaction by the store code that makes the change.
//!
//! A change runs on the task that asked for it (there is no writer thread
//! to hand the request's context to), so [`record`] reads the request's
//! [`AuditContext`] from the task itself.

use sqlx::PgConnection;

use crate::store::audit::{AuditContext, current};
use crate::store::{AuditChange, StoreResult, now};

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
