//! The storage interface of the audit log, and the context a change carries.
//!
//! Who made a change travels with it to the store: the gateway scopes each
//! request in an [`AuditScope`] (its address and request id), the auth
//! extractors name the actor in it once they know the caller, and a write
//! submitted from the request's task takes a copy ([`current`]). A store
//! writes the change's [`AuditChange`]s with that copy, in the change's own
//! transaction, so an aborted change leaves no entry. Work done outside any
//! request (sweepers, recovery, event reactions) has no scope: its actor is
//! the system.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Map, Value};
use shop_wire::audit::{Actor, AuditEntry};
use time::OffsetDateTime;

use super::StoreResult;

/// Who, from where and in which request: what a change carries to the store.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditContext {
    pub actor: Actor,
    pub ip: Option<String>,
    pub request_id: Option<String>,
}

impl AuditContext {
    pub fn system() -> Self {
        AuditContext {
            actor: Actor::system(),
            ip: None,
            request_id: None,
        }
    }
}

/// A request's context, filled in as the request learns who its caller is.
#[derive(Clone, Debug)]
pub struct AuditScope(Arc<Mutex<AuditContext>>);

tokio::task_local! {
    static REQUEST: AuditScope;
}

impl AuditScope {
    /// A request from `ip`, with no caller known yet (the system acts for
    /// anonymous callers: a guest checkout's stock change is the shop's own).
    pub fn new(ip: Option<String>, request_id: Option<String>) -> Self {
        AuditScope(Arc::new(Mutex::new(AuditContext {
            actor: Actor::system(),
            ip,
            request_id,
        })))
    }

    /// Runs `request` in this scope: every write it submits carries it.
    pub async fn run<F: std::future::Future>(self, request: F) -> F::Output {
        REQUEST.scope(self, request).await
    }
}

/// Names the caller of the running request, if one is being handled.
pub fn set_actor(actor: Actor) {
    let _ = REQUEST.try_with(|scope| {
        if let Ok(mut context) = scope.0.lock() {
            context.actor = actor;
        }
    });
}

/// The context of the running request, or `None` outside one (the system).
pub fn current() -> Option<AuditContext> {
    REQUEST
        .try_with(|scope| scope.0.lock().ok().map(|context| context.clone()))
        .ok()
        .flatten()
}

/// One change to record: before and after hold only what changed.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditChange {
    pub action: String,
    pub entity: &'static str,
    pub entity_id: String,
    pub before: Value,
    pub after: Value,
}

/// Fields that say when or at which version something changed, not what:
/// every update changes them, so they would only bury the real change.
const BOOKKEEPING: &[&str] = &["version", "updated_at"];

impl AuditChange {
    /// A change from `before` to `after` (objects), keeping only the
    /// top-level fields whose values differ. `Null` on one side is a
    /// creation or a deletion and is kept whole.
    pub fn diff(
        action: impl Into<String>,
        entity: &'static str,
        entity_id: impl Into<String>,
        before: Value,
        after: Value,
    ) -> Self {
        let (before, after) = changed_fields(before, after);
        AuditChange {
            action: action.into(),
            entity,
            entity_id: entity_id.into(),
            before,
            after,
        }
    }

    /// Whether anything changed (an update that set every field to its value did not).
    pub fn is_change(&self) -> bool {
        self.before != self.after
    }
}

/// The fields of two objects that differ, as two objects; anything that is
/// not a pair of objects is returned as it is.
pub fn changed_fields(before: Value, after: Value) -> (Value, Value) {
    let (Value::Object(mut before), Value::Object(mut after)) = (before.clone(), after.clone())
    else {
        return (before, after);
    };
    let keys: Vec<String> = before.keys().chain(after.keys()).cloned().collect();
    let (mut was, mut is) = (Map::new(), Map::new());
    for key in keys {
        if BOOKKEEPING.contains(&key.as_str()) || was.contains_key(&key) || is.contains_key(&key) {
            continue;
        }
        let old = before.remove(&key).unwrap_or(Value::Null);
        let new = after.remove(&key).unwrap_or(Value::Null);
        if old != new {
            was.insert(key.clone(), old);
            is.insert(key, new);
        }
    }
    (Value::Object(was), Value::Object(is))
}

/// What the audit log keeps of a stock row: what a person sets, not the
/// reserved count, which every cart changes.
pub fn audited_stock(stock: &shop_wire::inventory::Stock) -> Value {
    serde_json::json!({
        "on_hand": stock.on_hand,
        "available": stock.available,
        "low_stock_threshold": stock.low_stock_threshold,
    })
}

/// What the audit log keeps of an account: never its password hash, and
/// of its addresses only how many there are (they are personal).
pub fn audited_user(user: &shop_wire::users::User) -> Value {
    serde_json::json!({
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "addresses": user.addresses.len(),
        "email_verified": user.email_verified,
    })
}

/// What the audit log keeps of an order's state.
pub fn order_state(order: &shop_wire::orders::Order) -> Value {
    serde_json::json!({
        "status": order.status,
        "financial_status": order.financial_status,
        "tracking_number": order.tracking_number,
        "refunded_cents": order.refunded_cents,
        "fulfillment_status": order.fulfillment_status,
        "fulfillments": order.fulfillments.iter().map(|f| &f.id).collect::<Vec<_>>(),
    })
}

/// An order's move from the state `was` to `now`, named by where it went.
pub fn order_change(was: Value, now: &shop_wire::orders::Order) -> AuditChange {
    AuditChange::diff(
        format!("order.{}", now.status.as_str()),
        "order",
        now.id.as_str(),
        was,
        order_state(now),
    )
}

/// A value as the audit log keeps it.
pub fn snapshot<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// The actor's email (people and keys' creators) or id (`usr_...`, `key_...`), or `system`.
    pub actor: Option<String>,
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    /// An action (`product.updated`) or a family (`product.*`... given as `product`).
    pub action: Option<String>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    pub limit: u32,
    pub offset: u64,
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Entries matching `query`, newest first, and how many match in all.
    /// There is no method to change or remove one: the log is append-only.
    async fn list_audit(&self, query: &AuditQuery) -> StoreResult<(Vec<AuditEntry>, u64)>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shop_wire::audit::ActorKind;

    #[test]
    fn a_diff_keeps_only_changed_fields() {
        let (before, after) = changed_fields(
            json!({"price_cents": 100, "name": "a", "version": 1, "gone": 1}),
            json!({"price_cents": 150, "name": "a", "version": 2, "new": true}),
        );
        assert_eq!(before, json!({"price_cents": 100, "gone": 1, "new": null}));
        assert_eq!(
            after,
            json!({"price_cents": 150, "gone": null, "new": true})
        );
        let created = AuditChange::diff("x.created", "x", "1", Value::Null, json!({"a": 1}));
        assert_eq!(created.before, Value::Null);
        assert_eq!(created.after, json!({"a": 1}));
        assert!(!AuditChange::diff("x", "x", "1", json!({"a": 1}), json!({"a": 1})).is_change());
    }

    #[tokio::test]
    async fn a_request_scope_carries_its_actor_to_writes() {
        assert_eq!(current(), None, "outside a request, the system acts");
        let scope = AuditScope::new(Some("10.0.0.1".into()), Some("req_1".into()));
        let seen = scope
            .run(async {
                set_actor(Actor {
                    kind: ActorKind::User,
                    id: Some("usr_1".into()),
                    email: Some("a@example.com".into()),
                });
                current()
            })
            .await
            .expect("inside a request");
        assert_eq!(seen.actor.kind, ActorKind::User);
        assert_eq!(seen.ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(seen.request_id.as_deref(), Some("req_1"));
    }
}
