//! The store contract: what every backend guarantees, as tests any backend runs.
//!
//! Each check is a function generic over the store traits it needs (an
//! `Arc<dyn Store>` has them all); [`store_contract!`] instantiates one
//! `#[tokio::test]` per check for a backend, given a function that opens a
//! fresh, empty store (and a guard that keeps it alive). Every backend
//! (SQLite, PostgreSQL) passes the whole list.
//!
//! The races spawn many tasks on a multi-threaded runtime, so the calls really
//! overlap in the backend.

use std::collections::BTreeSet;
use std::sync::Arc;

use shop_wire::cart::CartId;
use shop_wire::notifications::{Channel, Priority};
use shop_wire::orders::{FinancialStatus, Order, OrderId, OrderStatus};
use shop_wire::payments::{MethodKind, PaymentId, RefundId};
use shop_wire::products::ProductRequest;
use time::Duration;

use super::{AddressStore, SessionStore, UserStore};
use super::{
    BeginPayment, CartChange, CartWrite, ChangeContext, ChargeResult, FinishRefund,
    IdempotencyBegin, InitialStock, NewCartRecord, NewEvent, OrderCreate, OrderDraft, OrderKey,
    OrderQuery, OrderSource, PaymentDone, PaymentDraft, ProductKey, ProductWrite, RefundDraft,
    RefundResult, ReserveItem, ReserveOutcome, StartRefund, StockChange, StockOperation,
    StockWrite, Store, StoredResponse, TransitionOutcome, TransitionRequest, now,
};
use super::{
    CartStore, CatalogStore, DocumentStore, EventStore, IdempotencyStore, InventoryStore,
    InvoiceIssue, NotificationStore, OrderStore, PaymentStore, PricingStore, SearchStore,
    StoreHealth, WebhookStore,
};
use crate::services::cart::rules::QuantityLimits;
use crate::services::notifications::domain::new_notification;
use crate::services::orders::events::COMMERCE_EVENTS;

/// The shop's default caps, which no contract case comes near.
const LIMITS: QuantityLimits = QuantityLimits {
    per_line: 100,
    per_cart: 500,
};

/// How many tasks race in each concurrent check.
const RACERS: usize = 32;

/// No events: these checks look at the state, not at how it is announced.
fn no_events(_: &super::StockEffect) -> Vec<NewEvent> {
    Vec::new()
}

pub(crate) async fn add_product<S: CatalogStore + ?Sized + 'static>(
    store: &Arc<S>,
    sku: &str,
    on_hand: i64,
) {
    let request = ProductRequest {
        sku: sku.to_owned(),
        name: format!("Product {sku}"),
        ..ProductRequest::default()
    };
    add_request(store, request, on_hand).await;
}

async fn reserve_one<S: InventoryStore + ?Sized + 'static>(
    store: &Arc<S>,
    sku: &str,
    quantity: i64,
) -> ReserveOutcome {
    store
        .reserve(
            vec![ReserveItem {
                sku: sku.to_owned(),
                quantity,
            }],
            now() + Duration::minutes(15),
            None,
            None,
            no_events,
        )
        .await
        .expect("reserve")
}

/// Event ids increase in commit order, and `events_after(n)` returns exactly
/// the events after `n`, none skipped, even when many writers append at once.
pub(crate) async fn event_ids_increase_and_a_cursor_sees_every_event_before_it<
    S: EventStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    let mut racers = Vec::new();
    for _ in 0..RACERS {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store
                .append_events(vec![NewEvent::example(), NewEvent::example()])
                .await
                .expect("append")
        }));
    }
    let mut appended = BTreeSet::new();
    for racer in racers {
        let events = racer.await.expect("task");
        assert_eq!(events.len(), 2);
        assert!(
            events[0].id < events[1].id,
            "one transaction's events keep their order"
        );
        appended.extend(events.iter().map(|event| event.id));
    }
    assert_eq!(appended.len(), 2 * RACERS, "every id is given once");

    let all = store.events_after(0, 10_000).await.expect("read");
    let ids: Vec<u64> = all.iter().map(|event| event.id).collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "oldest first");
    assert_eq!(ids.iter().copied().collect::<BTreeSet<_>>(), appended);
    assert_eq!(
        store.latest_event_id().await.expect("latest"),
        *ids.last().expect("some")
    );

    let cursor = ids[ids.len() / 2];
    let after = store.events_after(cursor, 10_000).await.expect("read");
    let expected: Vec<u64> = ids.iter().copied().filter(|id| *id > cursor).collect();
    assert_eq!(
        after.iter().map(|event| event.id).collect::<Vec<_>>(),
        expected
    );
}

/// A transaction that commits late never lets a reader skip its events:
/// while a slow append holds its transaction open and a fast one races it,
/// every read of the log is the start of the log as it ends up, and the
/// ids are in the order the two committed.
pub(crate) async fn a_reader_never_skips_an_event_committed_late<
    S: EventStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    slow_and_fast_appends_never_let_a_reader_skip(store.clone(), store).await;
}

/// [`a_reader_never_skips_an_event_committed_late`] with the slow append on
/// `slow` and the fast one and the reads on `store`: two handles on one log
/// (two nodes on one database) keep the order between them too.
pub(crate) async fn slow_and_fast_appends_never_let_a_reader_skip<
    S: EventStore + ?Sized + 'static,
>(
    slow: Arc<S>,
    store: Arc<S>,
) {
    let hold = std::time::Duration::from_millis(400);
    let slow = {
        let store = slow;
        tokio::spawn(async move {
            store
                .append_events_holding(vec![NewEvent::example()], hold)
                .await
                .expect("slow append")
        })
    };
    tokio::time::sleep(hold / 4).await;
    let fast = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .append_events(vec![NewEvent::example()])
                .await
                .expect("fast append")
        })
    };
    let mut reads = Vec::new();
    while !(slow.is_finished() && fast.is_finished()) {
        let read = store.events_after(0, 100).await.expect("read");
        reads.push(read.iter().map(|event| event.id).collect::<Vec<_>>());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (slow, fast) = (slow.await.expect("task"), fast.await.expect("task"));
    let log: Vec<u64> = store
        .events_after(0, 100)
        .await
        .expect("read")
        .iter()
        .map(|event| event.id)
        .collect();
    assert_eq!(log, vec![slow[0].id, fast[0].id], "ids in commit order");
    assert!(reads.len() > 10, "the reads overlapped the appends");
    for read in reads {
        assert_eq!(read, log[..read.len()], "a read skipped an event");
    }
}

/// A ping answers while many writes race (busy is not stuck), and a
/// thousand of them change nothing: health checks poll it every second.
pub(crate) async fn ping_answers_under_racing_writes_and_changes_nothing<
    S: StoreHealth + EventStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    store.ping().await.expect("a fresh store answers");
    let before = store.latest_event_id().await.expect("latest");
    for _ in 0..1000 {
        store.ping().await.expect("ping");
    }
    assert_eq!(store.latest_event_id().await.expect("latest"), before);
    let mut racers = Vec::new();
    for _ in 0..RACERS {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            for _ in 0..20 {
                store
                    .append_events(vec![NewEvent::example()])
                    .await
                    .expect("append");
            }
        }));
    }
    loop {
        store.ping().await.expect("a busy store still answers");
        if racers.iter().all(tokio::task::JoinHandle::is_finished) {
            break;
        }
    }
    for racer in racers {
        racer.await.expect("task");
    }
}

/// Of many concurrent claims of one fresh key exactly one starts; the
/// others see it in progress, and once completed it replays, and refuses
/// another request under the same key.
pub(crate) async fn exactly_one_concurrent_idempotency_claim_starts<
    S: IdempotencyStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    let mut racers = Vec::new();
    for _ in 0..RACERS {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store
                .begin_idempotent("key-1", "fingerprint-a", Duration::minutes(5))
                .await
                .expect("claim")
        }));
    }
    let mut started = 0;
    for racer in racers {
        match racer.await.expect("task") {
            IdempotencyBegin::Started => started += 1,
            IdempotencyBegin::InProgress => {}
            other => panic!("a racing claim got {other:?}"),
        }
    }
    assert_eq!(started, 1, "exactly one claim starts");

    let response = StoredResponse {
        status: 201,
        content_type: Some("application/json".to_owned()),
        body: b"{}".to_vec(),
    };
    store
        .complete_idempotent("key-1", &response)
        .await
        .expect("complete");
    assert_eq!(
        store
            .begin_idempotent("key-1", "fingerprint-a", Duration::minutes(5))
            .await
            .expect("replay"),
        IdempotencyBegin::Replay(response)
    );
    assert_eq!(
        store
            .begin_idempotent("key-1", "fingerprint-b", Duration::minutes(5))
            .await
            .expect("mismatch"),
        IdempotencyBegin::Mismatch
    );
}

/// Many buyers racing for the last units: exactly as many reservations as
/// there are units succeed, and stock is never held twice.
pub(crate) async fn reservations_for_the_last_units_never_oversell<
    S: CatalogStore + InventoryStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    const UNITS: i64 = 5;
    add_product(&store, "LAST-1", UNITS).await;
    let mut racers = Vec::new();
    for _ in 0..RACERS {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            reserve_one(&store, "LAST-1", 1).await
        }));
    }
    let mut reserved = 0;
    for racer in racers {
        match racer.await.expect("task") {
            ReserveOutcome::Reserved(reservations) => {
                assert_eq!(reservations.len(), 1);
                reserved += 1;
            }
            ReserveOutcome::Insufficient { available, .. } => assert_eq!(available, 0),
            ReserveOutcome::UnknownSku(sku) => panic!("{sku} exists"),
        }
    }
    assert_eq!(reserved, UNITS, "exactly the units on hand are reserved");
    let stock = store.stock("LAST-1").await.expect("read").expect("stock");
    assert_eq!(
        (stock.on_hand, stock.reserved, stock.available),
        (UNITS, UNITS, 0)
    );
}

/// A reservation of several items holds all of them or none.
pub(crate) async fn a_reservation_holds_every_item_or_none<
    S: CatalogStore + InventoryStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    add_product(&store, "PLENTY-1", 10).await;
    add_product(&store, "SCARCE-1", 2).await;
    let outcome = store
        .reserve(
            vec![
                ReserveItem {
                    sku: "PLENTY-1".to_owned(),
                    quantity: 3,
                },
                ReserveItem {
                    sku: "SCARCE-1".to_owned(),
                    quantity: 5,
                },
            ],
            now() + Duration::minutes(15),
            None,
            None,
            no_events,
        )
        .await
        .expect("reserve");
    assert!(
        matches!(
            outcome,
            ReserveOutcome::Insufficient { ref sku, available: 2, requested: 5 } if sku == "SCARCE-1"
        ),
        "{outcome:?}"
    );
    let plenty = store.stock("PLENTY-1").await.expect("read").expect("stock");
    assert_eq!(plenty.reserved, 0, "the item that fit was not held either");
    assert!(matches!(
        reserve_one(&store, "NO-SUCH-SKU", 1).await,
        ReserveOutcome::UnknownSku(sku) if sku == "NO-SUCH-SKU"
    ));
}

/// Stock on hand never goes below what is reserved, nor below zero.
pub(crate) async fn stock_on_hand_never_goes_below_what_is_reserved<
    S: CatalogStore + InventoryStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    add_product(&store, "HELD-1", 5).await;
    assert!(matches!(
        reserve_one(&store, "HELD-1", 3).await,
        ReserveOutcome::Reserved(..)
    ));
    let change = |operation| StockChange {
        sku: "HELD-1".to_owned(),
        operation,
        low_stock_threshold: None,
        reason: "stocktake".to_owned(),
        actor: None,
    };
    let refused = store
        .change_stock(change(StockOperation::Set(2)), no_events)
        .await
        .expect("change");
    assert!(
        matches!(
            refused,
            StockWrite::Insufficient {
                on_hand: 5,
                reserved: 3
            }
        ),
        "{refused:?}"
    );
    let refused = store
        .change_stock(change(StockOperation::Adjust(-3)), no_events)
        .await
        .expect("change");
    assert!(
        matches!(refused, StockWrite::Insufficient { .. }),
        "{refused:?}"
    );
    let allowed = store
        .change_stock(change(StockOperation::Adjust(-2)), no_events)
        .await
        .expect("change");
    assert!(matches!(allowed, StockWrite::Changed(..)), "{allowed:?}");
    let stock = store.stock("HELD-1").await.expect("read").expect("stock");
    assert_eq!((stock.on_hand, stock.reserved, stock.available), (3, 3, 0));
    assert!(matches!(
        store
            .change_stock(
                StockChange {
                    sku: "NO-SUCH-SKU".to_owned(),
                    ..change(StockOperation::Set(1))
                },
                no_events
            )
            .await
            .expect("change"),
        StockWrite::NotFound
    ));
}

/// Racing changes to one cart at one version: exactly one applies, the
/// others are told the version moved, and the stock held matches the cart.
pub(crate) async fn racing_cart_changes_at_one_version_apply_once<
    S: CatalogStore + InventoryStore + CartStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    add_product(&store, "CART-1", 100).await;
    let cart = match store
        .create_cart(
            NewCartRecord {
                id: CartId::generate(),
                user_id: None,
                token_hash: Some("token-hash".to_owned()),
                lines: vec![ReserveItem {
                    sku: "CART-1".to_owned(),
                    quantity: 1,
                }],
                expires_at: now() + Duration::minutes(30),
                limits: LIMITS,
                client: None,
            },
            None,
            COMMERCE_EVENTS,
        )
        .await
        .expect("create cart")
    {
        CartWrite::Written(record, ..) => record.cart,
        other => panic!("cart not created: {other:?}"),
    };
    let mut racers = Vec::new();
    for _ in 0..RACERS {
        let store = store.clone();
        let id = cart.id.clone();
        let version = cart.version;
        racers.push(tokio::spawn(async move {
            store
                .change_cart(
                    &id,
                    CartChange::Add {
                        sku: "CART-1".to_owned(),
                        quantity: 1,
                    },
                    Some(version),
                    ChangeContext {
                        actor: None,
                        expires_at: now() + Duration::minutes(30),
                        limits: LIMITS,
                    },
                    COMMERCE_EVENTS,
                )
                .await
                .expect("change cart")
        }));
    }
    let mut applied = 0;
    for racer in racers {
        match racer.await.expect("task") {
            CartWrite::Written(..) => applied += 1,
            CartWrite::VersionConflict { current } => assert!(current > cart.version),
            other => panic!("a racing change got {other:?}"),
        }
    }
    assert_eq!(applied, 1, "exactly one change at the version applies");
    let stored = store.cart(&cart.id).await.expect("read").expect("cart");
    assert_eq!(stored.cart.version, cart.version + 1);
    assert_eq!(stored.cart.items[0].quantity, 2);
    let stock = store.stock("CART-1").await.expect("read").expect("stock");
    assert_eq!(stock.reserved, 2, "the cart holds exactly its units");
}

/// Racing updates of a product at one version: exactly one is written.
pub(crate) async fn racing_product_updates_at_one_version_write_once<
    S: CatalogStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    add_product(&store, "EDIT-1", 1).await;
    let product = store
        .product(&ProductKey::Sku("EDIT-1".to_owned()))
        .await
        .expect("read")
        .expect("product");
    let mut racers = Vec::new();
    for racer in 0..RACERS {
        let store = store.clone();
        let mut edited = product.clone();
        edited.name = format!("Edited by {racer}");
        edited.version = product.version + 1;
        racers.push(tokio::spawn(async move {
            store
                .update_product(&edited, product.version, Vec::new())
                .await
                .expect("update")
        }));
    }
    let mut written = Vec::new();
    for racer in racers {
        match racer.await.expect("task") {
            ProductWrite::Written(product, ..) => written.push(product.name),
            ProductWrite::VersionConflict { current } => {
                assert_eq!(current, product.version + 1);
            }
            ProductWrite::NotFound => panic!("the product exists"),
        }
    }
    assert_eq!(
        written.len(),
        1,
        "exactly one update at the version is written"
    );
    let stored = store
        .product(&ProductKey::Sku("EDIT-1".to_owned()))
        .await
        .expect("read")
        .expect("product");
    assert_eq!(stored.name, written[0]);
}

/// Racing claims of the notification queue never hand one notification to
/// two senders, and between them they claim every due one.
pub(crate) async fn racing_queue_claims_never_hand_out_one_twice<
    S: NotificationStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    const QUEUED: usize = 50;
    let items = (0..QUEUED)
        .map(|i| {
            new_notification(
                Channel::Email,
                format!("customer{i}@example.com"),
                "welcome".to_owned(),
                serde_json::json!({"name": "Customer"}),
                Priority::Normal,
                now(),
                None,
            )
        })
        .collect();
    store
        .enqueue_notifications(items, None)
        .await
        .expect("enqueue");
    let mut racers = Vec::new();
    for _ in 0..RACERS {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store
                .claim_notifications(
                    now() + Duration::seconds(1),
                    now() + Duration::minutes(5),
                    vec![(Channel::Email, 3)],
                )
                .await
                .expect("claim")
        }));
    }
    let mut claimed = Vec::new();
    for racer in racers {
        claimed.extend(racer.await.expect("task").into_iter().map(|n| n.id));
    }
    let distinct: BTreeSet<_> = claimed.iter().cloned().collect();
    assert_eq!(
        distinct.len(),
        claimed.len(),
        "no notification claimed twice"
    );
    assert_eq!(claimed.len(), QUEUED, "every due notification was claimed");
}

/// Webhook deliveries: queued once per (endpoint, event) however often the
/// feeder reads the log; racing claims never hand one out twice; a
/// completion under a lapsed lease is dropped and the delivery is claimable
/// again; a replay queues a finished one again under the same id.
pub(crate) async fn webhook_deliveries_are_queued_once_claimed_once_and_replayable<
    S: WebhookStore + EventStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    use shop_wire::webhooks::{DeliveryStatus, Webhook, WebhookId, WebhookStatus};
    const QUEUED: usize = 40;
    let at = now();
    let webhook = Webhook {
        id: WebhookId::generate(),
        url: "https://example.com/hooks".to_owned(),
        events: vec!["*".to_owned()],
        description: None,
        status: WebhookStatus::Active,
        disabled_reason: None,
        secret: None,
        previous_secret_expires_at: None,
        failing_since: None,
        created_at: at - Duration::hours(1),
        updated_at: at,
    };
    let record = super::WebhookRecord {
        webhook: webhook.clone(),
        secret: "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0".to_owned(),
        previous_secret: None,
    };
    store
        .insert_webhook(&record, vec![])
        .await
        .expect("webhook");
    let events: Vec<_> = store
        .append_events((0..QUEUED).map(|_| NewEvent::example()).collect())
        .await
        .expect("events")
        .into_iter()
        .map(std::sync::Arc::new)
        .collect();
    let plan =
        || crate::services::webhooks::domain::plan(std::slice::from_ref(&webhook), &events, at);
    assert_eq!(
        store
            .enqueue_deliveries(
                plan(),
                Some(super::CursorMove {
                    consumer: "webhooks",
                    // A fresh store's feeder starts at the log's end, then empty.
                    from: 0,
                    to: 7,
                }),
            )
            .await
            .expect("enqueue"),
        QUEUED as u64
    );
    assert_eq!(
        store.enqueue_deliveries(plan(), None).await.expect("again"),
        0,
        "read twice, queued once"
    );
    let lease = at + Duration::minutes(5);
    let mut racers = Vec::new();
    for _ in 0..RACERS {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            store
                .claim_deliveries(at + Duration::seconds(1), lease, 3, vec![])
                .await
                .expect("claim")
        }));
    }
    let mut claimed = Vec::new();
    for racer in racers {
        claimed.extend(racer.await.expect("task"));
    }
    let distinct: BTreeSet<_> = claimed.iter().map(|c| c.delivery.id.clone()).collect();
    assert_eq!(distinct.len(), claimed.len(), "no delivery claimed twice");
    assert_eq!(claimed.len(), QUEUED, "every due delivery was claimed");
    let first = claimed[0].clone();
    assert!(
        first
            .body
            .contains(&format!("\"id\":{}", first.delivery.event_id)),
        "{}",
        first.body
    );
    assert_eq!(first.secrets.len(), 1);
    assert_eq!(first.delivery.attempts, 1);

    // Nothing is due while leased; after the lease anyone may claim it again,
    // and the first worker's late completion is dropped.
    let again = store
        .claim_deliveries(
            at + Duration::minutes(1),
            at + Duration::minutes(9),
            100,
            vec![],
        )
        .await
        .expect("claim");
    assert!(again.is_empty());
    let retaken = store
        .claim_deliveries(
            at + Duration::minutes(6),
            at + Duration::minutes(20),
            1,
            vec![],
        )
        .await
        .expect("claim");
    assert_eq!(retaken.len(), 1);
    assert_eq!(retaken[0].delivery.attempts, 2);
    let done = |claim: &super::ClaimedDelivery| super::DeliveryCompletion {
        id: claim.delivery.id.clone(),
        webhook_id: claim.delivery.webhook_id.clone(),
        lease_until: claim.lease_until,
        finished_at: at,
        duration_ms: 3,
        outcome: super::DeliveryOutcome::Succeeded { status: 204 },
        endpoint: super::EndpointEffect::Answered,
        events: vec![],
    };
    let late = claimed
        .iter()
        .find(|c| c.delivery.id == retaken[0].delivery.id)
        .expect("claimed before");
    assert_eq!(
        store
            .complete_deliveries(vec![done(late)])
            .await
            .expect("late"),
        0
    );
    assert_eq!(
        store
            .complete_deliveries(vec![done(&retaken[0])])
            .await
            .expect("done"),
        1
    );
    let id = retaken[0].delivery.id.clone();
    let stored = store
        .webhook_delivery(&webhook.id, &id)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(stored.status, DeliveryStatus::Succeeded);
    assert_eq!(stored.response_status, Some(204));

    let replayed = store
        .replay_deliveries(
            &webhook.id,
            super::ReplaySelection::One(id.clone()),
            at + Duration::minutes(30),
            Box::new(|_| vec![]),
        )
        .await
        .expect("replay");
    let replayed: Vec<_> = replayed.into_iter().map(|d| (d.id, d.attempts)).collect();
    assert_eq!(replayed, vec![(id.clone(), 0)]);
    let stored = store
        .webhook_delivery(&webhook.id, &id)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(
        (stored.status, stored.attempts),
        (DeliveryStatus::Pending, 0)
    );
    // A disabled endpoint's deliveries wait.
    let mut off = webhook.clone();
    off.status = WebhookStatus::Disabled;
    assert!(store.update_webhook(&off, vec![]).await.expect("disable"));
    let none = store
        .claim_deliveries(
            at + Duration::hours(2),
            at + Duration::hours(3),
            100,
            vec![],
        )
        .await
        .expect("claim");
    assert!(none.is_empty(), "a disabled endpoint gets nothing");
}

/// A due notification of `priority` on `channel` to `recipient`, with its
/// `notification.queued` event.
fn due_notification(
    channel: Channel,
    recipient: String,
    priority: Priority,
    send_at: time::OffsetDateTime,
    event_id: Option<u64>,
) -> (shop_wire::notifications::Notification, Vec<NewEvent>) {
    new_notification(
        channel,
        recipient,
        "welcome".to_owned(),
        serde_json::json!({"name": "Customer"}),
        priority,
        send_at,
        event_id,
    )
}

/// The end of a sent attempt on a claimed notification, with an event and
/// a local sink's delivery, as a worker writes it.
fn sent_completion(n: &shop_wire::notifications::Notification) -> super::Completion {
    let rendered = shop_wire::notifications::Rendered {
        subject: Some("Welcome".to_owned()),
        body: "Hello".to_owned(),
        html: None,
    };
    super::Completion {
        id: n.id.clone(),
        attempt: n.attempts,
        finished_at: now(),
        duration_ms: 2,
        rendered: Some(rendered.clone()),
        outcome: super::AttemptOutcome::Sent,
        delivery: Some(shop_wire::notifications::Delivery {
            seq: 0,
            notification_id: n.id.clone(),
            channel: n.channel,
            recipient: n.recipient.clone(),
            template: n.template.clone(),
            subject: rendered.subject,
            body: rendered.body,
            html: None,
            delivered_at: now(),
        }),
        events: vec![NewEvent::example()],
    }
}

/// Racing claimers, each claiming until it finds nothing due, claim every
/// due notification of every channel exactly once and none that is not due.
pub(crate) async fn racing_notification_claimers_claim_each_due_one_once<
    S: NotificationStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    racing_notification_claims_on_two_nodes(store.clone(), store).await;
}

/// [`racing_notification_claimers_claim_each_due_one_once`] with the
/// claimers split between `a` and `b`: two nodes' workers on one queue.
pub(crate) async fn racing_notification_claims_on_two_nodes<
    S: NotificationStore + ?Sized + 'static,
>(
    a: Arc<S>,
    b: Arc<S>,
) {
    const DUE: usize = 90;
    let at = now();
    let priorities = [
        Priority::Low,
        Priority::Urgent,
        Priority::Normal,
        Priority::High,
    ];
    let mut items: Vec<_> = (0..DUE)
        .map(|i| {
            due_notification(
                Channel::ALL[i % Channel::ALL.len()],
                format!("customer{i}@example.com"),
                priorities[i % priorities.len()],
                at,
                None,
            )
        })
        .collect();
    let later: Vec<_> = (0..10)
        .map(|i| {
            due_notification(
                Channel::Email,
                format!("later{i}@example.com"),
                Priority::Urgent,
                at + Duration::hours(1),
                None,
            )
        })
        .collect();
    let not_due: BTreeSet<_> = later.iter().map(|(n, _)| n.id.clone()).collect();
    items.extend(later);
    assert_eq!(
        a.enqueue_notifications(items, None).await.expect("enqueue"),
        (DUE + not_due.len()) as u64
    );
    let mut racers = Vec::new();
    for racer in 0..RACERS {
        let store = if racer % 2 == 0 { a.clone() } else { b.clone() };
        racers.push(tokio::spawn(async move {
            let mut claimed = Vec::new();
            loop {
                let limits = Channel::ALL.iter().map(|c| (*c, 2)).collect();
                let batch = store
                    .claim_notifications(now(), now() + Duration::minutes(5), limits)
                    .await
                    .expect("claim");
                if batch.is_empty() {
                    return claimed;
                }
                claimed.extend(batch);
            }
        }));
    }
    let mut claimed = Vec::new();
    for racer in racers {
        claimed.extend(racer.await.expect("task"));
    }
    let distinct: BTreeSet<_> = claimed.iter().map(|n| n.id.clone()).collect();
    assert_eq!(
        distinct.len(),
        claimed.len(),
        "no notification claimed twice"
    );
    assert_eq!(claimed.len(), DUE, "every due notification was claimed");
    assert!(distinct.is_disjoint(&not_due), "none before its time");
    assert!(
        claimed.iter().all(
            |n| n.status == shop_wire::notifications::NotificationStatus::Sending
                && n.attempts == 1
        ),
        "each claimed once, as one attempt"
    );
    let depth = b.queue_depth().await.expect("depth");
    assert_eq!(depth.values().sum::<u64>(), not_due.len() as u64);
}

/// One reaction enqueued by many tasks at once (a reaction sent again, or
/// planned twice) is queued once, with one event.
pub(crate) async fn racing_enqueues_of_one_reaction_queue_it_once<
    S: NotificationStore + EventStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    let before = store.latest_event_id().await.expect("latest");
    let mut racers = Vec::new();
    for _ in 0..RACERS {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            let reaction = due_notification(
                Channel::Email,
                "buyer@example.com".to_owned(),
                Priority::High,
                now(),
                Some(7),
            );
            store
                .enqueue_notifications(vec![reaction], None)
                .await
                .expect("enqueue")
        }));
    }
    let mut queued = 0;
    for racer in racers {
        queued += racer.await.expect("task");
    }
    assert_eq!(queued, 1, "the reaction is queued once");
    let (listed, total) = store
        .list_notifications(&super::NotificationQuery {
            limit: 100,
            ..super::NotificationQuery::default()
        })
        .await
        .expect("list");
    assert_eq!((listed.len(), total), (1, 1));
    assert_eq!(
        store.latest_event_id().await.expect("latest"),
        before + 1,
        "the skipped ones' events are dropped with them"
    );
}

/// A consumer's event cursor moves only from where its follower read it:
/// of racing moves from one position, by the notification reactor's and
/// the webhook feeder's writes, one moves it and the others write nothing;
/// a move from where it is now goes through, and it never moves back.
pub(crate) async fn racing_cursor_moves_from_one_position_move_it_once<
    S: NotificationStore + WebhookStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    assert_eq!(store.event_cursor("reader").await.expect("cursor"), 0);
    let mut racers = Vec::new();
    for racer in 0..RACERS {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            let cursor = Some(super::CursorMove {
                consumer: "reader",
                from: 0,
                to: 1 + racer as u64,
            });
            let moved = if racer % 2 == 0 {
                store.enqueue_notifications(Vec::new(), cursor).await
            } else {
                store.enqueue_deliveries(Vec::new(), cursor).await
            };
            match moved {
                Ok(_) => Some(1 + racer as u64),
                Err(super::StoreError::CursorMoved { consumer: "reader" }) => None,
                Err(err) => panic!("a racer failed: {err}"),
            }
        }));
    }
    let mut winners = Vec::new();
    for racer in racers {
        winners.extend(racer.await.expect("task"));
    }
    assert_eq!(
        winners.len(),
        1,
        "one move from 0 went through: {winners:?}"
    );
    let at = store.event_cursor("reader").await.expect("cursor");
    assert_eq!(at, winners[0]);
    let slow = super::CursorMove {
        consumer: "reader",
        from: 0,
        to: 1000,
    };
    assert!(matches!(
        store.enqueue_deliveries(Vec::new(), Some(slow)).await,
        Err(super::StoreError::CursorMoved { .. })
    ));
    let next = super::CursorMove {
        consumer: "reader",
        from: at,
        to: at + 5,
    };
    store
        .enqueue_notifications(Vec::new(), Some(next))
        .await
        .expect("a move from where it is");
    assert_eq!(store.event_cursor("reader").await.expect("cursor"), at + 5);
}

/// A worker whose lease ran out and was taken back changes nothing when it
/// completes late: no status, history, delivery or event. And when the
/// completions of expired claims race sweeps of expired leases, each
/// notification is either completed or put back, never both.
pub(crate) async fn a_completion_after_its_lease_was_released_changes_nothing<
    S: NotificationStore + EventStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    use shop_wire::notifications::NotificationStatus;
    const RACED: usize = 40;
    let items = (0..=RACED)
        .map(|i| {
            due_notification(
                Channel::Email,
                format!("c{i}@example.com"),
                Priority::Normal,
                now(),
                None,
            )
        })
        .collect();
    store
        .enqueue_notifications(items, None)
        .await
        .expect("enqueue");
    // After the enqueue: every one is due by then.
    let at = now();
    let lease = at + Duration::milliseconds(1);
    let limits = vec![(Channel::Email, 100)];
    let mut claimed = store
        .claim_notifications(at, lease, limits)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), RACED + 1);
    let after = at + Duration::seconds(1);

    // Every lease runs out and is swept; then one worker completes late.
    let late = claimed.pop().expect("one");
    assert_eq!(
        store.release_expired_leases(at).await.expect("early"),
        0,
        "not yet"
    );
    let swept = store.release_expired_leases(after).await.expect("sweep");
    assert_eq!(swept, RACED as u64 + 1);
    let logged = store.latest_event_id().await.expect("latest");
    assert_eq!(
        store
            .complete_attempts(vec![sent_completion(&late)])
            .await
            .expect("late"),
        0
    );
    let stored = store
        .notification(&late.id)
        .await
        .expect("read")
        .expect("there");
    assert_eq!(stored.status, NotificationStatus::Queued);
    assert!(stored.history.is_empty() && stored.rendered.is_none());
    assert_eq!(
        store.latest_event_id().await.expect("latest"),
        logged,
        "no event"
    );
    let (deliveries, _) = store
        .deliveries(&super::DeliveryQuery {
            limit: 100,
            ..super::DeliveryQuery::default()
        })
        .await
        .expect("deliveries");
    assert!(deliveries.is_empty(), "no delivery");

    // All claimed once more, with a lease that is out by the sweeps' time;
    // all but the late one's are completed while the sweeps race them.
    let lease = after + Duration::seconds(2);
    let racing: Vec<_> = store
        .claim_notifications(
            lease - Duration::milliseconds(500),
            lease,
            vec![(Channel::Email, 100)],
        )
        .await
        .expect("claim for the race")
        .into_iter()
        .filter(|n| n.id != late.id)
        .collect();
    assert_eq!(racing.len(), RACED);
    let mut completions = Vec::new();
    for n in &racing {
        let store = store.clone();
        let completion = sent_completion(n);
        completions.push(tokio::spawn(async move {
            store
                .complete_attempts(vec![completion])
                .await
                .expect("complete")
        }));
    }
    let mut sweeps = Vec::new();
    for _ in 0..RACERS / 4 {
        let store = store.clone();
        sweeps.push(tokio::spawn(async move {
            store
                .release_expired_leases(lease + Duration::seconds(1))
                .await
                .expect("sweep")
        }));
    }
    let mut recorded = 0;
    for completion in completions {
        recorded += completion.await.expect("task");
    }
    let mut released = 0;
    for sweep in sweeps {
        released += sweep.await.expect("task");
    }
    // The one left alone above was claimed too, and is swept with them.
    assert_eq!(
        recorded + released,
        RACED as u64 + 1,
        "each completed or put back, once"
    );
    for n in &racing {
        let stored = store
            .notification(&n.id)
            .await
            .expect("read")
            .expect("there");
        match stored.status {
            NotificationStatus::Sent => assert_eq!(stored.history.len(), 1),
            NotificationStatus::Queued => assert!(stored.history.is_empty()),
            other => panic!("{other:?}"),
        }
    }
    let (_, delivered) = store
        .deliveries(&super::DeliveryQuery {
            limit: 1,
            ..super::DeliveryQuery::default()
        })
        .await
        .expect("deliveries");
    assert_eq!(delivered, recorded, "a delivery per recorded attempt");
}

/// Racing delivery claimers, each claiming until it finds nothing due,
/// claim every due webhook delivery exactly once.
pub(crate) async fn racing_webhook_claimers_claim_each_delivery_once<
    S: WebhookStore + EventStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    racing_webhook_claims_on_two_nodes(store.clone(), store).await;
}

/// [`racing_webhook_claimers_claim_each_delivery_once`] with the claimers
/// split between `a` and `b`: two nodes' dispatchers on one queue.
pub(crate) async fn racing_webhook_claims_on_two_nodes<
    S: WebhookStore + EventStore + ?Sized + 'static,
>(
    a: Arc<S>,
    b: Arc<S>,
) {
    use shop_wire::webhooks::{Webhook, WebhookId, WebhookStatus};
    const EVENTS: usize = 30;
    let at = now();
    let webhooks: Vec<Webhook> = (0..3)
        .map(|i| Webhook {
            id: WebhookId::generate(),
            url: format!("https://example.com/hooks/{i}"),
            events: vec!["*".to_owned()],
            description: None,
            status: WebhookStatus::Active,
            disabled_reason: None,
            secret: None,
            previous_secret_expires_at: None,
            failing_since: None,
            created_at: at,
            updated_at: at,
        })
        .collect();
    for webhook in &webhooks {
        let record = super::WebhookRecord {
            webhook: webhook.clone(),
            secret: "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0".to_owned(),
            previous_secret: None,
        };
        a.insert_webhook(&record, vec![]).await.expect("webhook");
    }
    let events: Vec<_> = a
        .append_events((0..EVENTS).map(|_| NewEvent::example()).collect())
        .await
        .expect("events")
        .into_iter()
        .map(Arc::new)
        .collect();
    let plan = crate::services::webhooks::domain::plan(&webhooks, &events, at);
    let queued = b.enqueue_deliveries(plan, None).await.expect("enqueue");
    assert_eq!(queued, (EVENTS * webhooks.len()) as u64);
    let mut racers = Vec::new();
    for racer in 0..RACERS {
        let store = if racer % 2 == 0 { a.clone() } else { b.clone() };
        racers.push(tokio::spawn(async move {
            let mut claimed = Vec::new();
            loop {
                let due = now() + Duration::seconds(1);
                let batch = store
                    .claim_deliveries(due, due + Duration::minutes(5), 2, vec![])
                    .await
                    .expect("claim");
                if batch.is_empty() {
                    return claimed;
                }
                claimed.extend(batch);
            }
        }));
    }
    let mut claimed = Vec::new();
    for racer in racers {
        claimed.extend(racer.await.expect("task"));
    }
    let distinct: BTreeSet<_> = claimed.iter().map(|c| c.delivery.id.clone()).collect();
    assert_eq!(distinct.len(), claimed.len(), "no delivery claimed twice");
    assert_eq!(
        claimed.len(),
        queued as usize,
        "every due delivery was claimed"
    );
    assert!(claimed.iter().all(|c| c.delivery.attempts == 1));
    assert_eq!(
        a.webhook_backlog().await.expect("backlog"),
        queued,
        "leased, not finished"
    );
}

/// An order of `quantity` units of `sku`, placed and paid by card.
pub(crate) async fn paid_order<S: OrderStore + PaymentStore + PricingStore + ?Sized + 'static>(
    store: &Arc<S>,
    sku: &str,
    quantity: i64,
) -> (Order, PaymentId) {
    let payment_id = PaymentId::generate();
    let created = store
        .create_order(
            OrderDraft {
                id: OrderId::generate(),
                customer_email: "buyer@example.com".to_owned(),
                user_id: None,
                source: OrderSource::Items(vec![ReserveItem {
                    sku: sku.to_owned(),
                    quantity,
                }]),
                idempotency_key: None,
                pay_by: now() + Duration::minutes(15),
                payment: Some(PaymentDraft {
                    id: payment_id.clone(),
                    method: MethodKind::Card,
                    provider: "simulated",
                    card_brand: None,
                    card_last4: None,
                }),
                actor: "contract".to_owned(),
                limits: LIMITS,
                max_unpaid: None,
                checkout: checkout_of(&**store, sku).await,
            },
            COMMERCE_EVENTS,
        )
        .await
        .expect("create order");
    assert!(
        matches!(created, OrderCreate::Created { .. }),
        "order not created: {created:?}"
    );
    let paid = store
        .complete_payment(
            &payment_id,
            ChargeResult::Succeeded {
                provider_ref: "ch_contract".to_owned(),
                card_brand: None,
                card_last4: None,
            },
            "contract".to_owned(),
            COMMERCE_EVENTS,
        )
        .await
        .expect("complete payment");
    let PaymentDone::Paid { order, .. } = paid else {
        panic!("not paid: {paid:?}");
    };
    (*order, payment_id)
}

/// A product that stock is held for, or that an order names, is not
/// deleted and stays as it was; one that neither holds goes, with its stock.
pub(crate) async fn a_held_or_ordered_product_is_not_deleted<
    S: CatalogStore + InventoryStore + OrderStore + PaymentStore + PricingStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    for sku in ["DEL-HELD", "DEL-SOLD", "DEL-FREE"] {
        add_product(&store, sku, 5).await;
    }
    reserve_one(&store, "DEL-HELD", 1).await;
    paid_order(&store, "DEL-SOLD", 1).await;
    let key = |sku: &str| ProductKey::Sku(sku.to_owned());
    let delete = |sku: &'static str| {
        let store = store.clone();
        async move {
            store
                .delete_product(&key(sku), |_| Vec::new())
                .await
                .expect("delete")
        }
    };
    assert!(matches!(
        delete("DEL-HELD").await,
        super::ProductDelete::InUse {
            active_reservations: 1
        }
    ));
    assert!(matches!(
        delete("DEL-SOLD").await,
        super::ProductDelete::Ordered { orders: 1 }
    ));
    assert!(matches!(
        delete("DEL-FREE").await,
        super::ProductDelete::Deleted(_)
    ));
    for (sku, kept) in [("DEL-HELD", true), ("DEL-SOLD", true), ("DEL-FREE", false)] {
        let found = store.product(&key(sku)).await.expect("read");
        assert_eq!(found.is_some(), kept, "{sku}");
    }
}

async fn refund<S: PaymentStore + ?Sized + 'static>(
    store: &Arc<S>,
    payment: &PaymentId,
    amount_cents: i64,
) {
    let refund = match store
        .start_refund(
            payment,
            RefundDraft {
                id: RefundId::generate(),
                amount_cents: Some(amount_cents),
                reason: None,
                cancels_order: false,
                actor: "contract".to_owned(),
            },
        )
        .await
        .expect("start refund")
    {
        StartRefund::Started { refund, .. } => refund.id,
        other => panic!("refund not started: {other:?}"),
    };
    refund_succeeded(store, &refund).await;
}

/// The provider says the refund went through.
async fn refund_succeeded<S: PaymentStore + ?Sized + 'static>(store: &Arc<S>, refund: &RefundId) {
    let finished = store
        .finish_refund(
            refund,
            RefundResult::Succeeded {
                provider_ref: format!("re_{refund}"),
            },
            COMMERCE_EVENTS,
        )
        .await
        .expect("finish refund");
    assert!(
        matches!(finished, FinishRefund::Done { .. }),
        "{finished:?}"
    );
}

async fn stored_order<S: OrderStore + ?Sized + 'static>(store: &Arc<S>, id: &OrderId) -> Order {
    store
        .order(&OrderKey::Id(id.clone()))
        .await
        .expect("read")
        .expect("order")
}

/// Asks the store to ship the order, as the orders service would.
async fn ask_to_ship<S: OrderStore + ?Sized + 'static>(
    store: &Arc<S>,
    id: &OrderId,
) -> TransitionOutcome {
    ask_to_move(store, id, OrderStatus::Shipped).await
}

/// Asks the store to move the order to `to`, as the orders service would.
async fn ask_to_move<S: OrderStore + ?Sized + 'static>(
    store: &Arc<S>,
    id: &OrderId,
    to: OrderStatus,
) -> TransitionOutcome {
    store
        .transition_order(
            id,
            TransitionRequest {
                to,
                actor: "contract".to_owned(),
                note: None,
                tracking_number: None,
            },
            COMMERCE_EVENTS,
        )
        .await
        .expect("transition")
}

/// Racing refunds of one payment never return more than was captured:
/// each counts the ones still in flight against the ceiling.
pub(crate) async fn racing_refunds_never_exceed_the_capture<
    S: CatalogStore + OrderStore + PaymentStore + PricingStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    add_product(&store, "PAID-1", 10).await;
    let (order, payment_id) = paid_order(&store, "PAID-1", 2).await;
    let captured = order.total_cents;
    let each = captured / 3 + 1;
    let mut racers = Vec::new();
    for _ in 0..RACERS {
        let store = store.clone();
        let payment_id = payment_id.clone();
        racers.push(tokio::spawn(async move {
            store
                .start_refund(
                    &payment_id,
                    RefundDraft {
                        id: RefundId::generate(),
                        amount_cents: Some(each),
                        reason: None,
                        cancels_order: false,
                        actor: "contract".to_owned(),
                    },
                )
                .await
                .expect("start refund")
        }));
    }
    let mut started = Vec::new();
    for racer in racers {
        match racer.await.expect("task") {
            StartRefund::Started { refund, .. } => started.push(refund.id),
            StartRefund::Exceeds { refundable } => assert!(refundable < each),
            other => panic!("a racing refund got {other:?}"),
        }
    }
    assert_eq!(started.len(), 2, "only what fits under the capture starts");
    for refund in &started {
        refund_succeeded(&store, refund).await;
    }
    let payment = store
        .payment(&payment_id)
        .await
        .expect("read")
        .expect("payment");
    assert_eq!(payment.refunded_cents, 2 * each);
    assert!(payment.refunded_cents <= captured);
}

/// An order's financial status follows its payment and refunds, lists
/// filter on it, and an order refunded in full is not shipped.
pub(crate) async fn an_order_refunded_in_full_is_not_shipped<
    S: CatalogStore + OrderStore + PaymentStore + PricingStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    add_product(&store, "BACK-1", 10).await;
    let (order, payment) = paid_order(&store, "BACK-1", 3).await;
    assert_eq!(order.financial_status, FinancialStatus::Paid);
    refund(&store, &payment, 100).await;
    let partly = stored_order(&store, &order.id).await;
    assert_eq!(partly.financial_status, FinancialStatus::PartiallyRefunded);
    refund(&store, &payment, order.total_cents - 100).await;
    let refunded = stored_order(&store, &order.id).await;
    assert_eq!(
        (refunded.status, refunded.financial_status),
        (OrderStatus::Paid, FinancialStatus::Refunded)
    );
    let (listed, total) = store
        .list_orders(&OrderQuery {
            financial_status: Some(FinancialStatus::Refunded),
            limit: 10,
            ..OrderQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(total, 1);
    assert_eq!(listed[0].id, order.id);
    let ship = ask_to_ship(&store, &order.id).await;
    assert!(matches!(ship, TransitionOutcome::Refunded), "{ship:?}");
    let after = stored_order(&store, &order.id).await;
    assert_eq!(
        after.status,
        OrderStatus::Paid,
        "a refused move changes nothing"
    );
    let (_, voided) = store
        .list_orders(&OrderQuery {
            financial_status: Some(FinancialStatus::Voided),
            limit: 10,
            ..OrderQuery::default()
        })
        .await
        .expect("list");
    assert_eq!(voided, 0);
}

/// A shipment of `items` (`None`: everything left) of the order.
async fn ship_items<S: OrderStore + ?Sized + 'static>(
    store: &Arc<S>,
    id: &OrderId,
    items: Option<Vec<shop_wire::orders::FulfillmentItem>>,
) -> super::ShipOutcome {
    store
        .ship_order(
            id,
            super::ShipmentDraft {
                id: shop_wire::orders::FulfillmentId::generate(),
                items,
                carrier: Some("ups".to_owned()),
                tracking_number: Some("1Z".to_owned()),
                tracking_url: None,
                actor: "contract".to_owned(),
                note: None,
            },
            COMMERCE_EVENTS,
        )
        .await
        .expect("ship")
}

/// Partial shipments that race never ship more of a line than was ordered:
/// of many asking for two of five units, two get them and every other one
/// is told one unit is left. The last unit ships the order; delivering it
/// marks every shipment delivered; a partly shipped order is not cancelled.
pub(crate) async fn racing_partial_shipments_never_ship_a_unit_twice<
    S: CatalogStore + OrderStore + PaymentStore + PricingStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    use crate::services::orders::fulfilment::ShipRefusal;
    use shop_wire::orders::{FulfillmentItem, FulfillmentStatus};
    add_product(&store, "SHIP-1", 10).await;
    let (order, _) = paid_order(&store, "SHIP-1", 5).await;
    let two = vec![FulfillmentItem {
        sku: "SHIP-1".to_owned(),
        quantity: 2,
    }];
    let mut racers = Vec::new();
    for _ in 0..RACERS {
        let store = store.clone();
        let (id, two) = (order.id.clone(), two.clone());
        racers.push(tokio::spawn(async move {
            ship_items(&store, &id, Some(two)).await
        }));
    }
    let mut shipped = 0;
    for racer in racers {
        match racer.await.expect("task") {
            super::ShipOutcome::Shipped(_) => shipped += 1,
            super::ShipOutcome::Refused(ShipRefusal::Exceeds { asked, left, .. }) => {
                assert_eq!((asked, left), (2, 1));
            }
            other => panic!("a racing shipment got {other:?}"),
        }
    }
    assert_eq!(shipped, 2, "two shipments of two fit in five units");
    let partly = stored_order(&store, &order.id).await;
    assert_eq!(
        (partly.status, partly.fulfillment_status),
        (OrderStatus::Paid, FulfillmentStatus::PartiallyShipped)
    );
    assert_eq!(partly.fulfillments.len(), 2);
    let cancel = ask_to_move(&store, &order.id, OrderStatus::Cancelled).await;
    assert!(
        matches!(cancel, TransitionOutcome::PartlyShipped),
        "{cancel:?}"
    );
    let rest = ship_items(&store, &order.id, None).await;
    let super::ShipOutcome::Shipped(done) = rest else {
        panic!("the rest did not ship: {rest:?}");
    };
    assert_eq!(done.status, OrderStatus::Shipped);
    let units: i64 = done
        .fulfillments
        .iter()
        .flat_map(|f| &f.items)
        .map(|item| item.quantity)
        .sum();
    assert_eq!((done.fulfillments.len(), units), (3, 5));
    let again = ship_items(&store, &order.id, None).await;
    assert!(
        matches!(
            again,
            super::ShipOutcome::Refused(ShipRefusal::Illegal {
                from: OrderStatus::Shipped
            })
        ),
        "{again:?}"
    );
    let delivered = ask_to_move(&store, &order.id, OrderStatus::Delivered).await;
    let TransitionOutcome::Done(delivered) = delivered else {
        panic!("not delivered: {delivered:?}");
    };
    assert_eq!(delivered.fulfillment_status, FulfillmentStatus::Delivered);
    assert!(
        delivered
            .fulfillments
            .iter()
            .all(|f| f.delivered_at.is_some())
    );
}

/// A return of `quantity` units of `sku` of the order, asked now.
async fn ask_to_return<S: super::ReturnStore + ?Sized + 'static>(
    store: &Arc<S>,
    order: &OrderId,
    sku: &str,
    quantity: i64,
) -> super::ReturnCreate {
    store
        .create_return(
            super::ReturnDraft {
                id: shop_wire::returns::ReturnId::generate(),
                order: order.clone(),
                items: vec![shop_wire::returns::NewReturnItem {
                    sku: sku.to_owned(),
                    quantity,
                    reason: "too big".to_owned(),
                }],
                note: None,
                window_days: 30,
                now: now(),
            },
            crate::services::returns::return_event,
        )
        .await
        .expect("create return")
}

/// Returns that race never return a shipped unit twice: of many asking for
/// two of five shipped units, two are opened and every other one is told
/// one unit is left; a rejected return gives its units back, and receiving
/// without restocking leaves the stock as it is while restocking adds to it.
pub(crate) async fn racing_returns_never_return_a_unit_twice<
    S: CatalogStore
        + InventoryStore
        + OrderStore
        + PaymentStore
        + PricingStore
        + super::ReturnStore
        + ?Sized
        + 'static,
>(
    store: Arc<S>,
) {
    use super::{ReturnCreate, ReturnMove, ReturnStep};
    use crate::services::returns::return_event;
    use crate::services::returns::rules::ReturnRefusal;
    use shop_wire::returns::ReturnStatus;
    add_product(&store, "RET-1", 10).await;
    let (order, _) = paid_order(&store, "RET-1", 5).await;
    let early = ask_to_return(&store, &order.id, "RET-1", 1).await;
    assert!(
        matches!(early, ReturnCreate::Refused(ReturnRefusal::NothingShipped)),
        "{early:?}"
    );
    assert!(matches!(
        ship_items(&store, &order.id, None).await,
        super::ShipOutcome::Shipped(_)
    ));
    let mut racers = Vec::new();
    for _ in 0..RACERS {
        let store = store.clone();
        let id = order.id.clone();
        racers.push(tokio::spawn(async move {
            ask_to_return(&store, &id, "RET-1", 2).await
        }));
    }
    let mut opened = Vec::new();
    for racer in racers {
        match racer.await.expect("task") {
            ReturnCreate::Created(created) => opened.push(created.id),
            ReturnCreate::Refused(ReturnRefusal::Exceeds { asked, left, .. }) => {
                assert_eq!((asked, left), (2, 1));
            }
            other => panic!("a racing return got {other:?}"),
        }
    }
    assert_eq!(
        opened.len(),
        2,
        "two returns of two fit in five shipped units"
    );
    let step = |id: &shop_wire::returns::ReturnId, step: ReturnStep| {
        let store = store.clone();
        let id = id.clone();
        async move {
            match store
                .move_return(&id, step, "contract".to_owned(), None, return_event)
                .await
                .expect("move return")
            {
                ReturnMove::Done(moved) => *moved,
                other => panic!("not moved: {other:?}"),
            }
        }
    };
    let rejected = step(&opened[0], ReturnStep::Reject).await;
    assert_eq!(rejected.status, ReturnStatus::Rejected);
    let again = ask_to_return(&store, &order.id, "RET-1", 3).await;
    assert!(
        matches!(again, ReturnCreate::Created(_)),
        "a rejection gives its units back: {again:?}"
    );
    let illegal = store
        .move_return(
            &opened[1],
            ReturnStep::Receive {
                all: None,
                lines: Vec::new(),
            },
            "contract".to_owned(),
            None,
            return_event,
        )
        .await
        .expect("move return");
    assert!(
        matches!(
            illegal,
            ReturnMove::Illegal {
                from: ReturnStatus::Requested
            }
        ),
        "{illegal:?}"
    );
    let on_hand = |store: Arc<S>| async move {
        store
            .stock("RET-1")
            .await
            .expect("stock")
            .expect("a stock row")
            .on_hand
    };
    let before = on_hand(store.clone()).await;
    step(&opened[1], ReturnStep::Approve).await;
    let kept = ReturnStep::Receive {
        all: Some(false),
        lines: Vec::new(),
    };
    let received = step(&opened[1], kept).await;
    assert_eq!(received.status, ReturnStatus::Received);
    assert_eq!(received.items[0].restocked, Some(false));
    assert_eq!(
        on_hand(store.clone()).await,
        before,
        "damaged goods stay off"
    );
    let ReturnCreate::Created(third) = again else {
        unreachable!("checked above");
    };
    step(&third.id, ReturnStep::Approve).await;
    let restocked = step(
        &third.id,
        ReturnStep::Receive {
            all: None,
            lines: vec![("RET-1".to_owned(), true)],
        },
    )
    .await;
    assert_eq!(restocked.items[0].restocked, Some(true));
    assert_eq!(on_hand(store.clone()).await, before + 3);
    let (open, total) = store
        .list_returns(&super::ReturnQuery {
            open: true,
            limit: 10,
            ..super::ReturnQuery::default()
        })
        .await
        .expect("list");
    assert_eq!((open.len(), total), (2, 2));
}

/// Refunds of several returns of one order that race, each asking to give
/// the order's shipping back too: one gets it, every other is told which
/// return did and claims nothing; claimed again without the shipping, it
/// takes its refund alone.
pub(crate) async fn racing_shipping_refunds_give_the_shipping_back_once<
    S: CatalogStore + OrderStore + PaymentStore + PricingStore + super::ReturnStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    use super::{ReturnCreate, ReturnMove, ReturnStep};
    use crate::services::returns::return_event;
    const RETURNS: usize = 8;
    const SHIPPING: i64 = 500;
    add_product(&store, "SHIPBACK-1", 10).await;
    let (order, _) = paid_order(&store, "SHIPBACK-1", RETURNS as i64).await;
    assert!(matches!(
        ship_items(&store, &order.id, None).await,
        super::ShipOutcome::Shipped(_)
    ));
    let step = |id: shop_wire::returns::ReturnId, step: ReturnStep| {
        let store = store.clone();
        async move {
            store
                .move_return(&id, step, "contract".to_owned(), None, return_event)
                .await
                .expect("move return")
        }
    };
    let mut received = Vec::new();
    for _ in 0..RETURNS {
        let ReturnCreate::Created(opened) = ask_to_return(&store, &order.id, "SHIPBACK-1", 1).await
        else {
            panic!("a return of one shipped unit was refused");
        };
        step(opened.id.clone(), ReturnStep::Approve).await;
        let receive = ReturnStep::Receive {
            all: Some(false),
            lines: Vec::new(),
        };
        step(opened.id.clone(), receive).await;
        received.push(opened.id);
    }
    let claim = |shipping_cents| ReturnStep::ClaimRefund {
        refund: RefundId::generate(),
        shipping_cents,
    };
    let mut racers = Vec::new();
    for id in &received {
        racers.push(tokio::spawn(step(id.clone(), claim(SHIPPING))));
    }
    let mut winners = Vec::new();
    let mut told = Vec::new();
    for racer in racers {
        match racer.await.expect("task") {
            ReturnMove::Done(claimed) => {
                assert_eq!(claimed.shipping_refund_cents, SHIPPING);
                winners.push(claimed.id);
            }
            ReturnMove::ShippingRefunded(other) => told.push(other),
            other => panic!("a racing claim got {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "one return gives the shipping back");
    assert!(
        told.iter().all(|other| *other == winners[0]),
        "the others are told which: {told:?}"
    );
    let loser = received
        .iter()
        .find(|id| **id != winners[0])
        .expect("a return that lost");
    let unclaimed = store
        .return_by_id(loser)
        .await
        .expect("read")
        .expect("return");
    assert_eq!(
        (unclaimed.refund_id, unclaimed.shipping_refund_cents),
        (None, 0)
    );
    let ReturnMove::Done(alone) = step(loser.clone(), claim(0)).await else {
        panic!("a claim without the shipping was refused");
    };
    assert_eq!(alone.shipping_refund_cents, 0);
    assert!(alone.refund_id.is_some());
}

/// An order unpaid past its time is cancelled once, however many sweepers
/// race, and its stock is released; it can then be neither paid nor shipped.
pub(crate) async fn an_unpaid_order_expires_once_and_releases_its_stock<
    S: CatalogStore + InventoryStore + OrderStore + PaymentStore + PricingStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    add_product(&store, "LAPSE-1", 3).await;
    let order = match store
        .create_order(
            OrderDraft {
                id: OrderId::generate(),
                customer_email: "late@example.com".to_owned(),
                user_id: None,
                source: OrderSource::Items(vec![ReserveItem {
                    sku: "LAPSE-1".to_owned(),
                    quantity: 3,
                }]),
                idempotency_key: None,
                pay_by: now() - Duration::seconds(1),
                payment: None,
                actor: "contract".to_owned(),
                limits: LIMITS,
                max_unpaid: None,
                checkout: checkout_of(&*store, "LAPSE-1").await,
            },
            COMMERCE_EVENTS,
        )
        .await
        .expect("create order")
    {
        OrderCreate::Created { order, .. } => order,
        other => panic!("order not created: {other:?}"),
    };
    let held = store.stock("LAPSE-1").await.expect("read").expect("stock");
    assert_eq!(held.reserved, 3);
    let mut sweepers = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        sweepers.push(tokio::spawn(async move {
            store
                .expire_orders(now(), 100, COMMERCE_EVENTS)
                .await
                .expect("expire")
        }));
    }
    let mut expired = 0;
    for sweeper in sweepers {
        expired += sweeper.await.expect("task");
    }
    assert_eq!(expired, 1, "one sweeper cancels the order");
    let stock = store.stock("LAPSE-1").await.expect("read").expect("stock");
    assert_eq!(
        (stock.on_hand, stock.reserved),
        (3, 0),
        "its hold is released"
    );
    let stored = stored_order(&store, &order.id).await;
    assert_eq!(stored.status, OrderStatus::Cancelled);
    let ship = ask_to_ship(&store, &order.id).await;
    assert!(
        matches!(
            ship,
            TransitionOutcome::Illegal {
                from: OrderStatus::Cancelled
            }
        ),
        "{ship:?}"
    );
    let pay = store
        .begin_payment(
            &order.id,
            PaymentDraft {
                id: PaymentId::generate(),
                method: MethodKind::Card,
                provider: "simulated",
                card_brand: None,
                card_last4: None,
            },
            now() + Duration::minutes(15),
            "contract".to_owned(),
            COMMERCE_EVENTS,
        )
        .await
        .expect("begin payment");
    assert!(
        matches!(pay, BeginPayment::WrongStatus(OrderStatus::Cancelled)),
        "{pay:?}"
    );
}

/// A change to `cart` at no expected version, as the cart service makes it.
async fn change<S: CartStore + ?Sized + 'static>(
    store: &Arc<S>,
    cart: &CartId,
    change: CartChange,
) -> CartWrite {
    let context = ChangeContext {
        actor: None,
        expires_at: now() + Duration::minutes(30),
        limits: LIMITS,
    };
    store
        .change_cart(cart, change, None, context, COMMERCE_EVENTS)
        .await
        .expect("change cart")
}

/// The units of `sku` on hand and reserved.
async fn counts<S: InventoryStore + ?Sized + 'static>(store: &Arc<S>, sku: &str) -> (i64, i64) {
    let stock = store.stock(sku).await.expect("read").expect("stock");
    (stock.on_hand, stock.reserved)
}

/// The whole money path through one cart: lines added all or none, an
/// anonymous cart merged into its customer's, checked out into an order
/// that takes over its holds, a declined payment and a paid retry, and a
/// refund that cancels the order and restocks it. The stock matches each step.
pub(crate) async fn a_cart_becomes_a_paid_order_and_a_cancelling_refund_restocks_it<
    S: CatalogStore
        + InventoryStore
        + CartStore
        + OrderStore
        + PaymentStore
        + PricingStore
        + UserStore
        + ?Sized
        + 'static,
>(
    store: Arc<S>,
) {
    add_product(&store, "PATH-A", 10).await;
    add_product(&store, "PATH-B", 10).await;
    let line = |sku: &str, quantity| ReserveItem {
        sku: sku.to_owned(),
        quantity,
    };
    let new_cart = |user_id, token_hash: Option<&str>, lines| NewCartRecord {
        id: CartId::generate(),
        user_id,
        token_hash: token_hash.map(str::to_owned),
        lines,
        expires_at: now() + Duration::minutes(30),
        limits: LIMITS,
        client: None,
    };
    let created = |write: CartWrite| match write {
        CartWrite::Written(record) => record.cart,
        other => panic!("cart not written: {other:?}"),
    };
    let anonymous = created(
        store
            .create_cart(
                new_cart(None, Some("path-token"), vec![line("PATH-A", 2)]),
                None,
                COMMERCE_EVENTS,
            )
            .await
            .expect("create cart"),
    );
    let refused = change(
        &store,
        &anonymous.id,
        CartChange::AddAll(vec![line("PATH-B", 3), line("PATH-NONE", 1)]),
    )
    .await;
    assert!(
        matches!(
            refused,
            CartWrite::Refused(super::LineRefusal::UnknownSku(_))
        ),
        "{refused:?}"
    );
    assert_eq!(
        counts(&store, "PATH-B").await,
        (10, 0),
        "a refused change holds nothing"
    );

    let customer = add_customer(&store, "path@example.com").await;
    created(
        store
            .create_cart(
                new_cart(Some(customer.clone()), None, vec![line("PATH-B", 3)]),
                None,
                COMMERCE_EVENTS,
            )
            .await
            .expect("create the customer's cart"),
    );
    let context = ChangeContext {
        actor: None,
        expires_at: now() + Duration::minutes(30),
        limits: LIMITS,
    };
    let merged = created(
        store
            .merge_cart(&anonymous.id, &customer, context, COMMERCE_EVENTS)
            .await
            .expect("merge"),
    );
    assert_eq!(merged.user_id.as_ref(), Some(&customer));
    assert_eq!((merged.item_count, merged.items.len()), (5, 2));
    assert_eq!(counts(&store, "PATH-A").await, (10, 2));
    assert_eq!(counts(&store, "PATH-B").await, (10, 3));

    let first_payment = PaymentId::generate();
    let order = match store
        .create_order(
            OrderDraft {
                id: OrderId::generate(),
                customer_email: "path@example.com".to_owned(),
                user_id: Some(customer.clone()),
                source: OrderSource::Cart(merged.id.clone()),
                idempotency_key: Some("path-key".to_owned()),
                pay_by: now() + Duration::minutes(15),
                payment: Some(PaymentDraft {
                    id: first_payment.clone(),
                    method: MethodKind::Card,
                    provider: "simulated",
                    card_brand: None,
                    card_last4: None,
                }),
                actor: "contract".to_owned(),
                limits: LIMITS,
                max_unpaid: Some(3),
                checkout: super::Checkout {
                    context: store
                        .pricing_context(super::PricingQuery {
                            skus: vec!["PATH-A".to_owned(), "PATH-B".to_owned()],
                            cart: Some(merged.id.clone()),
                            ..super::PricingQuery::default()
                        })
                        .await
                        .expect("pricing context"),
                    ..super::Checkout::default()
                },
            },
            COMMERCE_EVENTS,
        )
        .await
        .expect("create order")
    {
        OrderCreate::Created { order, .. } => order,
        other => panic!("order not created: {other:?}"),
    };
    assert_eq!(
        (order.item_count, order.cart_id.as_ref()),
        (5, Some(&merged.id))
    );
    let checked_out = store.cart(&merged.id).await.expect("read").expect("cart");
    assert_eq!(
        checked_out.cart.status,
        shop_wire::cart::CartStatus::CheckedOut
    );
    assert_eq!(
        counts(&store, "PATH-A").await,
        (10, 2),
        "the order took over the holds"
    );

    let declined = store
        .complete_payment(
            &first_payment,
            ChargeResult::Failed {
                code: "card_declined".to_owned(),
                message: "declined".to_owned(),
                provider_ref: None,
            },
            "contract".to_owned(),
            COMMERCE_EVENTS,
        )
        .await
        .expect("decline");
    assert!(
        matches!(declined, PaymentDone::Failed { .. }),
        "{declined:?}"
    );
    let retry = PaymentId::generate();
    let begun = store
        .begin_payment(
            &order.id,
            PaymentDraft {
                id: retry.clone(),
                method: MethodKind::Card,
                provider: "simulated",
                card_brand: None,
                card_last4: None,
            },
            now() + Duration::minutes(15),
            "contract".to_owned(),
            COMMERCE_EVENTS,
        )
        .await
        .expect("begin payment");
    assert!(matches!(begun, BeginPayment::Started { .. }), "{begun:?}");
    let paid = store
        .complete_payment(
            &retry,
            ChargeResult::Succeeded {
                provider_ref: "ch_path".to_owned(),
                card_brand: Some("visa".to_owned()),
                card_last4: Some("4242".to_owned()),
            },
            "contract".to_owned(),
            COMMERCE_EVENTS,
        )
        .await
        .expect("pay");
    let PaymentDone::Paid { order: paid, .. } = paid else {
        panic!("not paid: {paid:?}");
    };
    assert_eq!(paid.status, OrderStatus::Paid);
    assert_eq!(
        counts(&store, "PATH-A").await,
        (8, 0),
        "the holds were committed"
    );
    assert_eq!(counts(&store, "PATH-B").await, (7, 0));

    let refund = match store
        .start_refund(
            &retry,
            RefundDraft {
                id: RefundId::generate(),
                amount_cents: None,
                reason: Some("changed their mind".to_owned()),
                cancels_order: true,
                actor: "contract".to_owned(),
            },
        )
        .await
        .expect("start refund")
    {
        StartRefund::Started { refund, .. } => refund,
        other => panic!("refund not started: {other:?}"),
    };
    assert_eq!(refund.amount_cents, paid.total_cents, "all that is left");
    refund_succeeded(&store, &refund.id).await;
    let cancelled = stored_order(&store, &order.id).await;
    assert_eq!(
        (cancelled.status, cancelled.financial_status),
        (OrderStatus::Cancelled, FinancialStatus::Refunded)
    );
    assert_eq!(
        counts(&store, "PATH-A").await,
        (10, 0),
        "the refund restocked"
    );
    assert_eq!(counts(&store, "PATH-B").await, (10, 0));
    let payment = store.payment(&retry).await.expect("read").expect("payment");
    assert_eq!(
        (payment.refunded_cents, payment.refunds.len()),
        (paid.total_cents, 1)
    );
    let (mine, total) = store
        .list_orders(&OrderQuery {
            owner: Some((customer, None)),
            limit: 10,
            ..OrderQuery::default()
        })
        .await
        .expect("list");
    assert_eq!((total, mine[0].id.clone()), (1, order.id));
}

/// What an order of `sku` is priced with, read as the orders service reads it.
pub(crate) async fn checkout_of(
    store: &(impl super::PricingStore + ?Sized),
    sku: &str,
) -> super::Checkout {
    let query = super::PricingQuery {
        skus: vec![sku.to_owned()],
        ..super::PricingQuery::default()
    };
    super::Checkout {
        context: store.pricing_context(query).await.expect("pricing context"),
        ..super::Checkout::default()
    }
}

/// Zones added at the same time that all claim one country: exactly one
/// is written, and the others leave nothing behind (not even their other
/// countries). A country's zone can be removed and claimed again.
pub(crate) async fn a_country_is_shipped_to_by_one_zone_even_when_zones_race<
    S: PricingStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    use shop_wire::pricing::{ShippingMethod, ShippingRate, ShippingZone, ShippingZoneId};
    let others: Vec<&str> = shop_wire::pricing::countries()
        .into_iter()
        .filter(|c| *c != "DE")
        .take(RACERS)
        .collect();
    let zone = |other: &str| ShippingZone {
        id: ShippingZoneId::generate(),
        name: format!("DE and {other}"),
        // Sorted, as a zone is read back.
        countries: {
            let mut countries = vec!["DE".to_owned(), other.to_owned()];
            countries.sort();
            countries
        },
        currency: "EUR".parse().expect("currency"),
        methods: vec![ShippingMethod {
            code: "std".to_owned(),
            name: "Standard".to_owned(),
            rate: ShippingRate::Flat { amount_cents: 490 },
            estimated_days: None,
        }],
        created_at: now(),
    };
    let mut racers = Vec::new();
    for other in &others {
        let store = store.clone();
        let zone = zone(other);
        racers.push(tokio::spawn(async move {
            let result = store.insert_shipping_zone(&zone, Vec::new()).await;
            (zone, result)
        }));
    }
    let mut written = Vec::new();
    for racer in racers {
        match racer.await.expect("task") {
            (zone, Ok(())) => written.push(zone),
            (_, Err(super::StoreError::Duplicate { field, .. })) => assert_eq!(field, "country"),
            (_, Err(err)) => panic!("unexpected: {err}"),
        }
    }
    assert_eq!(written.len(), 1, "exactly one zone claims DE");
    let stored = store
        .pricing_context(super::PricingQuery::default())
        .await
        .expect("read")
        .zones;
    assert_eq!(stored, written, "the refused zones left nothing behind");

    let removed = store
        .delete_shipping_zone(&written[0].id, |_| Vec::new())
        .await
        .expect("delete");
    assert_eq!(removed.as_ref(), Some(&written[0]));
    store
        .insert_shipping_zone(&zone(others[0]), Vec::new())
        .await
        .expect("DE is free again");
}

/// One tax rate per country, region and category; removing it frees the
/// place. A quote's read sees rates, zones and the products' weights and
/// tax categories together.
pub(crate) async fn tax_rates_are_one_per_scope_and_read_with_the_products<
    S: CatalogStore + PricingStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    use shop_wire::pricing::{TaxRate, TaxRateId};
    let rate = |region: Option<&str>, category: Option<&str>| TaxRate {
        id: TaxRateId::generate(),
        country: "US".to_owned(),
        region: region.map(str::to_owned),
        name: "Sales tax".to_owned(),
        rate_bps: 725,
        tax_category: category.map(str::to_owned),
        created_at: now(),
    };
    let first = rate(Some("CA"), None);
    store
        .insert_tax_rate(&first, Vec::new())
        .await
        .expect("first");
    for other in [
        rate(None, None),
        rate(Some("NY"), None),
        rate(Some("CA"), Some("books")),
    ] {
        store
            .insert_tax_rate(&other, Vec::new())
            .await
            .expect("another scope");
    }
    assert!(matches!(
        store
            .insert_tax_rate(&rate(Some("CA"), None), Vec::new())
            .await,
        Err(super::StoreError::Duplicate { .. })
    ));
    let removed = store
        .delete_tax_rate(&first.id, |_| Vec::new())
        .await
        .expect("delete");
    assert_eq!(removed.as_ref(), Some(&first));
    assert_eq!(
        store
            .delete_tax_rate(&first.id, |_| Vec::new())
            .await
            .expect("again"),
        None
    );
    store
        .insert_tax_rate(&rate(Some("CA"), None), Vec::new())
        .await
        .expect("the place is free again");

    let (product, ..) = crate::services::products::domain::product_from(ProductRequest {
        sku: "BOOK-1".to_owned(),
        name: "A book".to_owned(),
        price_cents: 1999,
        active: true,
        weight_grams: Some(450),
        tax_category: Some("books".to_owned()),
        ..ProductRequest::default()
    })
    .expect("valid product");
    let stock = InitialStock {
        on_hand: 1,
        low_stock_threshold: 0,
    };
    store
        .insert_product(&product, stock, None, Vec::new())
        .await
        .expect("insert product");
    let query = super::PricingQuery {
        skus: vec!["BOOK-1".to_owned(), "NONE".to_owned()],
        ..super::PricingQuery::default()
    };
    let context = store.pricing_context(query).await.expect("read");
    assert_eq!(context.rates.len(), 4);
    assert_eq!(context.products.len(), 1, "unknown SKUs are left out");
    let facts = &context.products[0];
    assert_eq!(
        (
            facts.price_cents,
            facts.weight_grams,
            facts.tax_category.as_deref()
        ),
        (1999, Some(450), Some("books"))
    );
}

/// Fifty checkouts race for a discount that may be used ten times: exactly
/// ten orders get it, the others are refused with nothing written, and a
/// cancelled order gives its use back.
pub(crate) async fn racing_checkouts_never_use_a_discount_past_its_limit<
    S: CatalogStore + InventoryStore + OrderStore + PricingStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    use shop_wire::pricing::{Discount, DiscountId, DiscountKind};
    add_product(&store, "DEAL-1", 1000).await;
    let discount = Discount {
        id: DiscountId::generate(),
        code: Some("TEN".to_owned()),
        kind: DiscountKind::Percent,
        value: 1000,
        currency: None,
        min_subtotal_cents: None,
        starts_at: None,
        ends_at: None,
        usage_limit: Some(10),
        per_customer_limit: None,
        automatic: false,
        active: true,
        times_used: 0,
        created_at: now(),
    };
    store
        .insert_discount(&discount, Vec::new())
        .await
        .expect("discount");
    let query = super::PricingQuery {
        skus: vec!["DEAL-1".to_owned()],
        codes: vec!["TEN".to_owned()],
        ..super::PricingQuery::default()
    };
    // Read once, before the race: every racer believes a use is left.
    let context = store.pricing_context(query).await.expect("read");
    let mut racers = Vec::new();
    for racer in 0..50 {
        let store = store.clone();
        let checkout = super::Checkout {
            context: context.clone(),
            discount_codes: vec!["TEN".to_owned()],
            ..super::Checkout::default()
        };
        racers.push(tokio::spawn(async move {
            store
                .create_order(
                    OrderDraft {
                        id: OrderId::generate(),
                        customer_email: format!("racer{racer}@example.com"),
                        user_id: None,
                        source: OrderSource::Items(vec![ReserveItem {
                            sku: "DEAL-1".to_owned(),
                            quantity: 1,
                        }]),
                        idempotency_key: None,
                        pay_by: now() + Duration::minutes(15),
                        payment: None,
                        actor: "contract".to_owned(),
                        limits: LIMITS,
                        max_unpaid: None,
                        checkout,
                    },
                    COMMERCE_EVENTS,
                )
                .await
                .expect("create")
        }));
    }
    let mut placed = Vec::new();
    for racer in racers {
        match racer.await.expect("task") {
            OrderCreate::Created { order, .. } => {
                assert_eq!(order.pricing.discount_cents, 10, "10 % of 1.00");
                placed.push(order.id);
            }
            OrderCreate::DiscountUsedUp(_) => {}
            other => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(placed.len(), 10, "exactly the limit's worth of orders");
    let used = |store: Arc<S>| async move {
        store
            .discount(&super::DiscountKey::Code("TEN".to_owned()))
            .await
            .expect("read")
            .expect("discount")
            .times_used
    };
    assert_eq!(used(store.clone()).await, 10);
    let stock = store.stock("DEAL-1").await.expect("read").expect("stock");
    assert_eq!(stock.reserved, 10, "the refused checkouts hold nothing");

    let cancelled = store
        .transition_order(
            &placed[0],
            TransitionRequest {
                to: OrderStatus::Cancelled,
                actor: "contract".to_owned(),
                note: None,
                tracking_number: None,
            },
            COMMERCE_EVENTS,
        )
        .await
        .expect("cancel");
    assert!(
        matches!(cancelled, TransitionOutcome::Done(_)),
        "{cancelled:?}"
    );
    assert_eq!(
        used(store.clone()).await,
        9,
        "the cancelled order gave its use back"
    );
    // Cancelling gives back once: a second release finds nothing to give.
    let again = store
        .transition_order(
            &placed[0],
            TransitionRequest {
                to: OrderStatus::Cancelled,
                actor: "contract".to_owned(),
                note: None,
                tracking_number: None,
            },
            COMMERCE_EVENTS,
        )
        .await
        .expect("cancel again");
    assert!(
        matches!(again, TransitionOutcome::Illegal { .. }),
        "{again:?}"
    );
    assert_eq!(used(store).await, 9);
}

async fn account<S: UserStore + ?Sized + 'static>(
    store: &Arc<S>,
    email: &str,
) -> shop_wire::UserId {
    let at = now();
    let user = shop_wire::users::User {
        id: shop_wire::UserId::generate(),
        email: email.to_owned(),
        name: "Ada".to_owned(),
        role: shop_wire::users::Role::Customer,
        addresses: vec![],
        email_verified: false,
        created_at: at,
        updated_at: at,
    };
    let record = super::UserRecord {
        user: user.clone(),
        password_hash: "old-hash".to_owned(),
    };
    store.insert_user(&record, Vec::new()).await.expect("user");
    user.id
}

fn account_token(
    user: &shop_wire::UserId,
    hash: &str,
    purpose: super::TokenPurpose,
    life: Duration,
) -> super::AccountToken {
    super::AccountToken {
        hash: hash.to_owned(),
        user_id: user.clone(),
        purpose,
        created_at: now(),
        expires_at: now() + life,
        used_at: None,
    }
}

/// A session of `user`, active for a day, whose refresh secret hashes to `refresh_hash`.
fn session_of(user: &shop_wire::UserId, refresh_hash: &str) -> super::SessionRecord {
    super::SessionRecord {
        id: shop_wire::SessionId::generate(),
        user_id: user.clone(),
        refresh_hash: refresh_hash.to_owned(),
        user_agent: None,
        ip: None,
        created_at: now(),
        last_used_at: now(),
        expires_at: now() + Duration::days(1),
        revoked_at: None,
    }
}

/// An emailed token is spent once: of many password resets racing with
/// one token exactly one sets its password; it ends every session, spends
/// the other reset tokens and proves the address. A token works only for
/// its purpose and before it expires, and verifying an address works once.
pub(crate) async fn racing_resets_spend_an_emailed_token_once<
    S: UserStore + SessionStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    use super::TokenPurpose::{PasswordReset, VerifyEmail};
    use crate::services::users::rules::TokenRefusal;

    let user = account(&store, "ada@example.com").await;
    let session = session_of(&user, "refresh");
    store
        .insert_session(&session, Vec::new())
        .await
        .expect("session");
    store
        .insert_account_tokens(vec![
            account_token(&user, "reset-1", PasswordReset, Duration::minutes(30)),
            account_token(&user, "reset-2", PasswordReset, Duration::minutes(30)),
            account_token(&user, "stale", PasswordReset, Duration::seconds(-1)),
            account_token(&user, "verify", VerifyEmail, Duration::days(7)),
        ])
        .await
        .expect("tokens");

    assert_eq!(
        store
            .reset_password("stale", "stale-hash", now(), Vec::new())
            .await
            .expect("reset"),
        Err(TokenRefusal::Expired)
    );
    assert_eq!(
        store
            .reset_password("verify", "wrong-hash", now(), Vec::new())
            .await
            .expect("reset"),
        Err(TokenRefusal::Unknown)
    );
    assert_eq!(
        store
            .reset_password("nothing", "wrong-hash", now(), Vec::new())
            .await
            .expect("reset"),
        Err(TokenRefusal::Unknown)
    );

    let mut racers = Vec::new();
    for racer in 0..RACERS {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            let hash = format!("new-hash-{racer}");
            let outcome = store
                .reset_password("reset-1", &hash, now(), Vec::new())
                .await
                .expect("reset");
            (hash, outcome)
        }));
    }
    let mut winners = Vec::new();
    for racer in racers {
        match racer.await.expect("task") {
            (hash, Ok(id)) => {
                assert_eq!(id, user);
                winners.push(hash);
            }
            (_, Err(refusal)) => assert_eq!(refusal, TokenRefusal::Used),
        }
    }
    assert_eq!(winners.len(), 1, "one reset wins: {winners:?}");
    let stored = store.user(&user).await.expect("read").expect("user");
    assert_eq!(stored.password_hash, winners[0]);
    assert!(stored.user.email_verified, "the reset proved the address");
    assert!(
        store
            .active_sessions(&user, now())
            .await
            .expect("sessions")
            .is_empty(),
        "every session ended"
    );
    assert_eq!(
        store
            .reset_password("reset-2", "late-hash", now(), Vec::new())
            .await
            .expect("reset"),
        Err(TokenRefusal::Used),
        "the other reset tokens were spent with it"
    );

    let verified = store
        .verify_email("verify", now(), Vec::new())
        .await
        .expect("verify")
        .expect("a fresh verification token");
    assert!(verified.email_verified);
    assert_eq!(
        store
            .verify_email("verify", now(), Vec::new())
            .await
            .expect("verify")
            .map(|user| user.id),
        Err(TokenRefusal::Used)
    );
}

/// A customer to own an address book, made from the wire shape so that
/// fields added to users later need no change here.
async fn add_customer<S: UserStore + ?Sized + 'static>(
    store: &Arc<S>,
    email: &str,
) -> shop_wire::UserId {
    let user: shop_wire::users::User = serde_json::from_value(serde_json::json!({
        "id": shop_wire::UserId::generate(),
        "email": email,
        "name": email,
        "role": "customer",
        "addresses": [],
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }))
    .expect("a user");
    let record = super::UserRecord {
        user: user.clone(),
        password_hash: "not a hash".to_owned(),
    };
    store
        .insert_user(&record, Vec::new())
        .await
        .expect("insert user");
    user.id
}

fn saved_address(default_shipping: bool) -> shop_wire::addresses::SavedAddress {
    shop_wire::addresses::SavedAddress {
        id: shop_wire::addresses::AddressId::generate(),
        address: shop_wire::pricing::PostalAddress {
            name: "Erika Mustermann".to_owned(),
            line1: "Heidestraße 17".to_owned(),
            city: "Köln".to_owned(),
            postal_code: "51147".to_owned(),
            country: "DE".to_owned(),
            ..shop_wire::pricing::PostalAddress::default()
        },
        default_shipping,
        default_billing: false,
        created_at: now(),
    }
}

/// A book never holds more than its limit, even when saves race; a
/// default flag moves to the address saved with it; an address is read and
/// deleted only by its owner.
pub(crate) async fn an_address_book_keeps_its_limit_and_its_owner<
    S: UserStore + AddressStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    const MAX: usize = 5;
    let owner = add_customer(&store, "erika@example.com").await;
    let other = add_customer(&store, "max@example.com").await;
    let mut racers = Vec::new();
    for _ in 0..RACERS {
        let (store, owner) = (store.clone(), owner.clone());
        racers.push(tokio::spawn(async move {
            store
                .insert_address(&owner, &saved_address(true), MAX, Vec::new())
                .await
                .expect("insert address")
        }));
    }
    let mut saved = 0;
    for racer in racers {
        match racer.await.expect("racer") {
            super::AddressSave::Saved => saved += 1,
            super::AddressSave::Full { max } => assert_eq!(max, MAX),
        }
    }
    assert_eq!(saved, MAX);
    let book = store.addresses(&owner).await.expect("addresses");
    assert_eq!(book.len(), MAX);
    assert_eq!(book.iter().filter(|a| a.default_shipping).count(), 1);

    let first = &book[0];
    assert_eq!(
        store
            .address(&owner, &first.id)
            .await
            .expect("read")
            .as_ref(),
        Some(first)
    );
    assert_eq!(store.address(&other, &first.id).await.expect("read"), None);
    assert_eq!(
        store
            .delete_address(&other, &first.id, Vec::new())
            .await
            .expect("delete"),
        None
    );
    assert_eq!(
        store
            .delete_address(&owner, &first.id, Vec::new())
            .await
            .expect("delete")
            .map(|a| a.id),
        Some(first.id.clone())
    );
    assert_eq!(
        store.addresses(&owner).await.expect("addresses").len(),
        MAX - 1
    );
    assert!(store.addresses(&other).await.expect("addresses").is_empty());
}

/// A product with `request`'s fields (and a price of 100 unless given),
/// with `on_hand` units.
async fn add_request<S: CatalogStore + ?Sized + 'static>(
    store: &Arc<S>,
    request: ProductRequest,
    on_hand: i64,
) -> shop_wire::products::Product {
    let (product, ..) = crate::services::products::domain::product_from(ProductRequest {
        price_cents: request.price_cents.max(100),
        active: true,
        ..request
    })
    .expect("valid product");
    store
        .insert_product(
            &product,
            InitialStock {
                on_hand,
                low_stock_threshold: 0,
            },
            None,
            Vec::new(),
        )
        .await
        .expect("insert product");
    product
}

/// A SKU names one product: a second insert with it is refused as a
/// duplicate and writes nothing, even when the two race.
pub(crate) async fn a_taken_sku_is_refused_and_writes_nothing<
    S: CatalogStore + InventoryStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    let mut racers = Vec::new();
    for racer in 0..RACERS {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            let (product, ..) = crate::services::products::domain::product_from(ProductRequest {
                sku: "TWICE-1".to_owned(),
                name: format!("Product {racer}"),
                price_cents: 100,
                active: true,
                ..ProductRequest::default()
            })
            .expect("valid product");
            let stock = InitialStock {
                on_hand: 1 + racer as i64,
                low_stock_threshold: 0,
            };
            store
                .insert_product(&product, stock, None, Vec::new())
                .await
                .map(|()| product)
        }));
    }
    let mut inserted = Vec::new();
    for racer in racers {
        match racer.await.expect("task") {
            Ok(product) => inserted.push(product),
            Err(super::StoreError::Duplicate { entity, field }) => {
                assert_eq!((entity, field), ("product", "sku"));
            }
            Err(err) => panic!("{err:?}"),
        }
    }
    assert_eq!(inserted.len(), 1, "one insert of the SKU wins");
    let stored = store
        .product(&ProductKey::Sku("TWICE-1".to_owned()))
        .await
        .expect("read")
        .expect("product");
    assert_eq!(stored.id, inserted[0].id);
    let stock = store.stock("TWICE-1").await.expect("read").expect("stock");
    let winner: i64 = inserted[0].name["Product ".len()..].parse().expect("racer");
    assert_eq!(stock.on_hand, 1 + winner, "the winner's stock, no other");
    let (movements, total) = store.movements("TWICE-1", 10, 0).await.expect("ledger");
    assert_eq!((movements.len(), total), (1, 1));
}

/// List filters: a category covers its subtree and nothing that only starts
/// like it, text matches SKU, name or description case-insensitively with
/// `%` and `_` taken literally, prices and stock bound, archived products
/// are listed only when asked, and the total counts every match.
pub(crate) async fn product_lists_filter_by_category_price_text_and_stock<
    S: CatalogStore + InventoryStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    let product = |sku: &str, category: &str, price_cents: i64, name: &str| ProductRequest {
        sku: sku.to_owned(),
        name: name.to_owned(),
        category: Some(category.to_owned()),
        price_cents,
        ..ProductRequest::default()
    };
    add_request(&store, product("F-1", "furniture", 500, "Oak table"), 3).await;
    add_request(
        &store,
        product("F-2", "furniture/chairs", 300, "Oak chair"),
        0,
    )
    .await;
    add_request(&store, product("F-3", "furniture-x", 200, "Lookalike"), 1).await;
    add_request(&store, product("A_B", "garden", 100, "100% cotton"), 1).await;
    let archived = add_request(&store, product("F-4", "furniture", 900, "Old oak"), 1).await;
    let mut archive = archived.clone();
    archive.active = false;
    archive.version += 1;
    let written = store
        .update_product(&archive, archived.version, Vec::new())
        .await
        .expect("archive");
    assert!(matches!(written, ProductWrite::Written(..)), "{written:?}");

    let list = |query: super::ProductQuery| {
        let store = store.clone();
        async move {
            let (products, total) = store
                .list_products(&super::ProductQuery {
                    limit: 100,
                    ..query
                })
                .await
                .expect("list");
            assert_eq!(products.len() as u64, total, "one page holds them all");
            products.into_iter().map(|p| p.sku).collect::<Vec<_>>()
        }
    };
    let by_price = |query| super::ProductQuery {
        order: super::ProductOrder::Price,
        ..query
    };
    let category = |path: &str| super::ProductQuery {
        category: Some(path.to_owned()),
        ..super::ProductQuery::default()
    };
    assert_eq!(list(by_price(category("furniture"))).await, ["F-2", "F-1"]);
    assert_eq!(list(category("furniture/chairs")).await, ["F-2"]);
    assert_eq!(list(category("furniture-x")).await, ["F-3"]);
    assert!(list(category("furn")).await.is_empty());
    let text = |text: &str| super::ProductQuery {
        text: Some(text.to_owned()),
        ..super::ProductQuery::default()
    };
    assert_eq!(list(by_price(text("OAK"))).await, ["F-2", "F-1"]);
    assert_eq!(list(text("100%")).await, ["A_B"]);
    assert!(list(text("1%0")).await.is_empty(), "% is literal");
    assert_eq!(list(text("a_b")).await, ["A_B"]);
    assert!(list(text("F_1")).await.is_empty(), "_ is literal");
    let prices = super::ProductQuery {
        min_price: Some(200),
        max_price: Some(300),
        descending: true,
        ..by_price(super::ProductQuery::default())
    };
    assert_eq!(list(prices).await, ["F-2", "F-3"]);
    let stocked = |in_stock| super::ProductQuery {
        in_stock: Some(in_stock),
        category: Some("furniture".to_owned()),
        ..super::ProductQuery::default()
    };
    assert_eq!(list(stocked(true)).await, ["F-1"]);
    assert_eq!(list(stocked(false)).await, ["F-2"]);
    let status = |status| super::ProductQuery {
        status,
        ..category("furniture")
    };
    assert_eq!(list(status(super::ProductStatus::Archived)).await, ["F-4"]);
    assert_eq!(
        list(by_price(status(super::ProductStatus::All))).await,
        ["F-2", "F-1", "F-4"]
    );
    let (page, total) = store
        .list_products(&super::ProductQuery {
            order: super::ProductOrder::Name,
            limit: 2,
            offset: 1,
            ..super::ProductQuery::default()
        })
        .await
        .expect("page");
    let names: Vec<String> = page.into_iter().map(|p| p.name).collect();
    assert_eq!(
        (names, total),
        (vec!["Lookalike".into(), "Oak chair".into()], 4)
    );
    assert_eq!(
        store.category_counts().await.expect("categories"),
        [
            ("furniture".to_owned(), 1),
            ("furniture-x".to_owned(), 1),
            ("furniture/chairs".to_owned(), 1),
            ("garden".to_owned(), 1),
        ]
    );
}

/// An import upserts by SKU: a new SKU is created with its stock, a known
/// one updated at its next version, an identical one left alone, and a
/// stock below what is reserved fails its row only; a dry run reports the
/// same and writes nothing.
pub(crate) async fn an_import_upserts_by_sku_and_a_dry_run_writes_nothing<
    S: CatalogStore + InventoryStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    use super::{ExistingStock, ImportOutcome, ImportRow};
    let request = |sku: &str, name: &str| ProductRequest {
        sku: sku.to_owned(),
        name: name.to_owned(),
        price_cents: 100,
        active: true,
        ..ProductRequest::default()
    };
    let kept = add_request(&store, request("KEEP-1", "Kept"), 4).await;
    let renamed = add_request(&store, request("RENAME-1", "Old name"), 4).await;
    add_request(&store, request("HELD-2", "Held"), 4).await;
    assert!(matches!(
        reserve_one(&store, "HELD-2", 3).await,
        ReserveOutcome::Reserved(..)
    ));
    let row = |line, sku: &str, name: &str, existing_stock| ImportRow {
        line,
        product: crate::services::products::domain::product_from(request(sku, name))
            .expect("valid")
            .0,
        stock: Some(7),
        existing_stock,
        low_stock_threshold: None,
    };
    let rows = vec![
        row(1, "NEW-1", "New", ExistingStock::Keep),
        row(2, "RENAME-1", "New name", ExistingStock::Add(2)),
        row(3, "KEEP-1", "Kept", ExistingStock::Keep),
        row(4, "HELD-2", "Held", ExistingStock::Set(1)),
    ];
    let no_product_events = |_: super::ProductChange, _: &shop_wire::products::Product| Vec::new();
    let expected = [
        ImportOutcome::Created,
        ImportOutcome::Updated,
        ImportOutcome::Unchanged,
        ImportOutcome::Failed("stock 1 is below the 3 units reserved for HELD-2".to_owned()),
    ];
    let (outcomes, logged) = store
        .import_products(rows.clone(), 0, None, true, (no_product_events, no_events))
        .await
        .expect("dry run");
    assert_eq!(outcomes, expected);
    assert!(logged.is_empty());
    assert_eq!(
        store
            .product(&ProductKey::Sku("NEW-1".to_owned()))
            .await
            .expect("read"),
        None,
        "a dry run creates nothing"
    );
    let stock = store.stock("RENAME-1").await.expect("read").expect("stock");
    assert_eq!(stock.on_hand, 4, "nor changes stock");

    let (outcomes, _) = store
        .import_products(rows, 0, None, false, (no_product_events, no_events))
        .await
        .expect("import");
    assert_eq!(outcomes, expected);
    let created = store
        .product(&ProductKey::Sku("NEW-1".to_owned()))
        .await
        .expect("read")
        .expect("created");
    assert_eq!((created.name.as_str(), created.version), ("New", 1));
    assert_eq!(
        store
            .stock("NEW-1")
            .await
            .expect("read")
            .expect("stock")
            .on_hand,
        7
    );
    let updated = store
        .product(&ProductKey::Sku("RENAME-1".to_owned()))
        .await
        .expect("read")
        .expect("updated");
    assert_eq!(
        (updated.id, updated.name.as_str(), updated.version),
        (renamed.id, "New name", renamed.version + 1)
    );
    assert_eq!(
        store
            .stock("RENAME-1")
            .await
            .expect("read")
            .expect("stock")
            .on_hand,
        6
    );
    let unchanged = store
        .product(&ProductKey::Sku("KEEP-1".to_owned()))
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(unchanged, kept);
    let held = store.stock("HELD-2").await.expect("read").expect("stock");
    assert_eq!((held.on_hand, held.reserved), (4, 3));
}

/// Reservations of two SKUs made in opposite orders race (the case where
/// rows locked in the order of the lines would deadlock): none fails,
/// exactly the units there are get held, each reservation holds both lines
/// or neither, and reconcile finds nothing to fix.
pub(crate) async fn reservations_of_the_same_skus_in_opposite_orders_never_deadlock<
    S: CatalogStore + InventoryStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    let units = (RACERS / 4) as i64;
    add_product(&store, "CROSS-A", units).await;
    add_product(&store, "CROSS-B", units).await;
    let mut racers = Vec::new();
    for racer in 0..RACERS {
        let store = store.clone();
        let mut skus = ["CROSS-A", "CROSS-B"];
        if racer % 2 == 1 {
            skus.reverse();
        }
        racers.push(tokio::spawn(async move {
            let items = skus
                .iter()
                .map(|sku| ReserveItem {
                    sku: (*sku).to_owned(),
                    quantity: 1,
                })
                .collect();
            store
                .reserve(items, now() + Duration::minutes(15), None, None, no_events)
                .await
                .expect("a reservation is answered, never failed by a deadlock")
        }));
    }
    let mut reserved = 0;
    for racer in racers {
        match racer.await.expect("task") {
            ReserveOutcome::Reserved(reservations) => {
                assert_eq!(reservations.len(), 2, "both lines held");
                reserved += 1;
            }
            ReserveOutcome::Insufficient { available, .. } => assert_eq!(available, 0),
            ReserveOutcome::UnknownSku(sku) => panic!("{sku} exists"),
        }
    }
    assert_eq!(reserved, units, "exactly the units there are");
    for sku in ["CROSS-A", "CROSS-B"] {
        let stock = store.stock(sku).await.expect("read").expect("stock");
        assert_eq!((stock.on_hand, stock.reserved), (units, units), "{sku}");
    }
    let report = store
        .reconcile(false, None, no_events)
        .await
        .expect("reconcile");
    assert!(report.consistent, "{report:?}");
}

/// Sweepers racing over due reservations expire each exactly once and give
/// its stock back once; a due reservation that is finished before a sweep
/// reaches it is expired, not committed.
pub(crate) async fn racing_sweeps_expire_each_reservation_once<
    S: CatalogStore + InventoryStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    use shop_wire::inventory::ReservationStatus;
    const DUE: usize = 24;
    add_product(&store, "DUE-1", DUE as i64).await;
    let mut ids = Vec::new();
    for _ in 0..DUE {
        let outcome = store
            .reserve(
                vec![ReserveItem {
                    sku: "DUE-1".to_owned(),
                    quantity: 1,
                }],
                now() - Duration::seconds(1),
                None,
                None,
                no_events,
            )
            .await
            .expect("reserve");
        let ReserveOutcome::Reserved(reservations) = outcome else {
            panic!("{outcome:?}")
        };
        ids.push(reservations[0].id.clone());
    }
    let finished = store
        .finish_reservation(&ids[0], ReservationStatus::Committed, None, no_events)
        .await
        .expect("finish");
    assert!(
        matches!(
            finished,
            super::ReservationWrite::NotActive(ReservationStatus::Expired)
        ),
        "{finished:?}"
    );
    let mut sweepers = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        sweepers.push(tokio::spawn(async move {
            let mut swept = 0;
            loop {
                let n = store
                    .expire_reservations(now(), 3, no_events)
                    .await
                    .expect("sweep");
                if n == 0 {
                    return swept;
                }
                swept += n;
            }
        }));
    }
    let mut swept = 0;
    for sweeper in sweepers {
        swept += sweeper.await.expect("task");
    }
    assert_eq!(swept, (DUE - 1) as u64, "each due reservation once");
    let stock = store.stock("DUE-1").await.expect("read").expect("stock");
    assert_eq!((stock.on_hand, stock.reserved), (DUE as i64, 0));
    let (expired, total) = store
        .reservations(&super::ReservationQuery {
            sku: Some("DUE-1".to_owned()),
            status: Some(ReservationStatus::Expired),
            limit: 100,
            ..super::ReservationQuery::default()
        })
        .await
        .expect("reservations");
    assert_eq!((expired.len(), total), (DUE, DUE as u64));
    let report = store
        .reconcile(false, None, no_events)
        .await
        .expect("reconcile");
    assert!(report.consistent, "{report:?}");
}

/// An email names one account whatever its case: a second insert is
/// refused as a duplicate, and a lookup in any case finds the first.
pub(crate) async fn a_taken_email_is_refused_whatever_its_case<S: UserStore + ?Sized + 'static>(
    store: Arc<S>,
) {
    let first = account(&store, "Ada.Lovelace@Example.com").await;
    let user = shop_wire::users::User {
        id: shop_wire::UserId::generate(),
        ..store.user(&first).await.expect("read").expect("user").user
    };
    let again = super::UserRecord {
        user: shop_wire::users::User {
            email: "ada.lovelace@example.COM".to_owned(),
            ..user
        },
        password_hash: "other".to_owned(),
    };
    let refused = store.insert_user(&again, Vec::new()).await;
    assert!(
        matches!(
            refused,
            Err(super::StoreError::Duplicate {
                entity: "user",
                field: "email"
            })
        ),
        "{refused:?}"
    );
    let found = store
        .user_by_email("ADA.LOVELACE@example.com")
        .await
        .expect("read")
        .expect("found in another case");
    assert_eq!(found.user.id, first);
    assert_eq!(
        store
            .user(&again.user.id)
            .await
            .expect("read")
            .map(|r| r.user.id),
        None
    );
}

/// Demotions of every admin racing each other leave exactly one admin: no
/// two of them can each count the other as the admin who remains.
pub(crate) async fn racing_demotions_never_leave_the_shop_without_an_admin<
    S: UserStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    use shop_wire::users::Role;
    const ADMINS: usize = 8;
    let mut admins = Vec::new();
    for n in 0..ADMINS {
        let id = account(&store, &format!("admin{n}@example.com")).await;
        let promoted = store
            .set_role(&id, Role::Admin, Vec::new())
            .await
            .expect("promote");
        assert!(
            matches!(promoted, super::RoleChange::Changed(..)),
            "{promoted:?}"
        );
        admins.push(id);
    }
    let mut racers = Vec::new();
    for racer in 0..RACERS {
        let (store, id) = (store.clone(), admins[racer % ADMINS].clone());
        racers.push(tokio::spawn(async move {
            store
                .set_role(&id, Role::Staff, Vec::new())
                .await
                .expect("set role")
        }));
    }
    let (mut demoted, mut refused) = (0, 0);
    for racer in racers {
        match racer.await.expect("task") {
            super::RoleChange::Changed(user) => {
                assert_eq!(user.role, Role::Staff);
                demoted += 1;
            }
            super::RoleChange::LastAdmin => refused += 1,
            super::RoleChange::NotFound => panic!("every admin exists"),
        }
    }
    // Demoting one already demoted (staff to staff) is allowed: what the
    // rule guards is who is left.
    assert!(refused >= 1, "the last admin's demotions were refused");
    assert_eq!(demoted + refused, RACERS);
    assert_eq!(
        store
            .count_users_with_role(Role::Admin)
            .await
            .expect("count"),
        1,
        "one admin remains"
    );
    assert!(matches!(
        store
            .set_role(&shop_wire::UserId::generate(), Role::Staff, Vec::new())
            .await
            .expect("set role"),
        super::RoleChange::NotFound
    ));
}

/// Refreshes racing with one secret rotate it once: one gets the new
/// secret, every other is a replay (or finds the session revoked by one),
/// and the session ends revoked, so the new secret refreshes nothing.
pub(crate) async fn racing_refreshes_with_one_secret_rotate_once<
    S: UserStore + SessionStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    use super::RefreshOutcome;
    let user = account(&store, "grace@example.com").await;
    let session = session_of(&user, "secret-0");
    store
        .insert_session(&session, Vec::new())
        .await
        .expect("session");
    let auth = store
        .session_auth(&session.id)
        .await
        .expect("read")
        .expect("auth");
    assert_eq!((auth.user_id.clone(), auth.revoked), (user.clone(), false));

    let rotated = store
        .rotate_refresh(
            &session.id,
            "secret-0",
            "secret-1",
            now() + Duration::days(2),
        )
        .await
        .expect("rotate");
    assert!(matches!(rotated, RefreshOutcome::Rotated(ref s) if s.refresh_hash == "secret-1"));
    let mut racers = Vec::new();
    for racer in 0..RACERS {
        let (store, id) = (store.clone(), session.id.clone());
        racers.push(tokio::spawn(async move {
            let next = format!("secret-2-{racer}");
            store
                .rotate_refresh(&id, "secret-1", &next, now() + Duration::days(2))
                .await
                .expect("rotate")
        }));
    }
    let mut outcomes = (0, 0, 0);
    for racer in racers {
        match racer.await.expect("task") {
            RefreshOutcome::Rotated(_) => outcomes.0 += 1,
            RefreshOutcome::ReuseDetected => outcomes.1 += 1,
            RefreshOutcome::Inactive => outcomes.2 += 1,
        }
    }
    assert_eq!(
        outcomes.0, 1,
        "one refresh rotates the secret: {outcomes:?}"
    );
    assert!(outcomes.1 >= 1, "a replay is detected: {outcomes:?}");
    let auth = store
        .session_auth(&session.id)
        .await
        .expect("read")
        .expect("auth");
    assert!(auth.revoked, "the replay revoked the session");
    assert!(
        store
            .active_sessions(&user, now())
            .await
            .expect("sessions")
            .is_empty()
    );
    assert!(matches!(
        store
            .rotate_refresh(
                &session.id,
                "secret-2-0",
                "secret-3",
                now() + Duration::days(2)
            )
            .await
            .expect("rotate"),
        RefreshOutcome::Inactive
    ));
}

/// Invoices for many orders, each asked for many times at once: every
/// order gets one number, and the numbers are 1..=N with no gap or repeat.
pub(crate) async fn racing_invoices_take_one_gapless_number_each<
    S: CatalogStore
        + OrderStore
        + PaymentStore
        + PricingStore
        + DocumentStore
        + EventStore
        + ?Sized
        + 'static,
>(
    store: Arc<S>,
) {
    const ORDERS: usize = 6;
    add_product(&store, "INV-1", 100).await;
    let mut orders = Vec::new();
    for _ in 0..ORDERS {
        orders.push(paid_order(&store, "INV-1", 1).await.0);
    }
    let mut racers = Vec::new();
    for racer in 0..RACERS {
        let store = store.clone();
        let order = orders[racer % ORDERS].clone();
        racers.push(tokio::spawn(async move {
            let issued = store
                .issue_invoice(InvoiceIssue {
                    order_id: order.id.clone(),
                    prefix: "INV-".to_owned(),
                    event: Box::new(move |invoice| {
                        crate::services::documents::domain::invoice_event(&order, invoice)
                    }),
                })
                .await
                .expect("issue invoice");
            (racer % ORDERS, issued)
        }));
    }
    let mut by_order = vec![BTreeSet::new(); ORDERS];
    let mut fresh = 0;
    for racer in racers {
        let (order, (invoice, issued)) = racer.await.expect("task");
        by_order[order].insert((invoice.sequence, invoice.number));
        fresh += usize::from(issued);
    }
    assert_eq!(fresh, ORDERS, "each order's invoice is issued once");
    let mut sequences: Vec<i64> = by_order
        .iter()
        .map(|numbers| {
            assert_eq!(numbers.len(), 1, "an order has one number: {numbers:?}");
            let (sequence, number) = numbers.first().expect("one");
            assert_eq!(number, &format!("INV-{sequence:06}"));
            *sequence
        })
        .collect();
    sequences.sort_unstable();
    assert_eq!(
        sequences,
        (1..=ORDERS as i64).collect::<Vec<_>>(),
        "no gap, no repeat"
    );
    let (events, _) = store
        .list_events(&super::EventQuery {
            after: 0,
            types: vec!["invoice.issued".to_owned()],
            excluded: Vec::new(),
            limit: 100,
            offset: 0,
        })
        .await
        .expect("events");
    assert_eq!(events.len(), ORDERS, "one invoice.issued per order");
}

/// Followers of the event log of one name racing on several nodes, each
/// from the cursor it read: one moves the cursor and counts its orders,
/// every other writes nothing, so no paid order is counted twice.
pub(crate) async fn racing_followers_move_a_cursor_once<
    S: CatalogStore + SearchStore + NotificationStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    add_product(&store, "CAS-A", 1).await;
    add_product(&store, "CAS-B", 1).await;
    let from = store.event_cursor("search").await.expect("cursor");
    let mut racers = Vec::new();
    for _ in 0..RACERS {
        let store = store.clone();
        racers.push(tokio::spawn(async move {
            let order = vec!["CAS-A".to_owned(), "CAS-B".to_owned()];
            let cursor = super::CursorMove {
                consumer: "search",
                from,
                to: from + 10,
            };
            store.record_purchases(vec![order], cursor).await
        }));
    }
    let mut counted = Vec::new();
    for racer in racers {
        match racer.await.expect("task") {
            Ok(counts) => counted.push(counts),
            Err(super::StoreError::CursorMoved { consumer: "search" }) => {}
            Err(err) => panic!("a racer failed: {err}"),
        }
    }
    assert_eq!(counted.len(), 1, "one follower moved the cursor");
    assert!(
        counted[0].iter().all(|count| count.purchases == 1),
        "{:?}",
        counted[0]
    );
    assert_eq!(
        store.event_cursor("search").await.expect("cursor"),
        from + 10
    );
    let stale = super::CursorMove {
        consumer: "search",
        from,
        to: from + 20,
    };
    assert!(matches!(
        store
            .record_purchases(vec![vec!["CAS-A".to_owned()]], stale)
            .await,
        Err(super::StoreError::CursorMoved { .. })
    ));
}

/// A key of `user` whose secret hashes to `hash`, created now.
fn key_of(user: &shop_wire::UserId, hash: &str) -> super::KeyRecord {
    use shop_wire::keys::{Access, ApiKey, Resource, Scope};
    super::KeyRecord {
        key: ApiKey {
            id: shop_wire::KeyId::generate(),
            name: format!("key {hash}"),
            scopes: vec![Scope::new(Resource::Products, Access::Read)],
            prefix: "shop_sk_test".to_owned(),
            created_by: user.clone(),
            created_at: now(),
            last_used_at: None,
            expires_at: None,
            revoked_at: None,
        },
        secret_hash: hash.to_owned(),
    }
}

/// A key authenticates by its secret's hash, as its creator; revoked, it
/// still reads (so the caller can tell why it is refused) but as revoked.
/// Of revokes racing on one key, exactly one revokes: one event, one audit
/// entry, and every racer gets the key as that one revoked it.
pub(crate) async fn racing_revokes_revoke_a_key_once<
    S: super::KeyStore + super::AuditStore + UserStore + EventStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    let user = account(&store, "keys@example.com").await;
    let record = key_of(&user, "hash-1");
    let id = record.key.id.clone();
    store
        .insert_key(&record, Vec::new())
        .await
        .expect("insert key");
    let auth = store
        .key_auth("hash-1")
        .await
        .expect("auth")
        .expect("the key authenticates");
    assert_eq!((&auth.id, &auth.user_id), (&id, &user));
    assert_eq!(auth.email, "keys@example.com");
    assert_eq!(auth.role, shop_wire::users::Role::Customer);
    assert_eq!(auth.scopes, record.key.scopes);
    assert!(!auth.revoked);
    assert!(store.key_auth("hash-2").await.expect("auth").is_none());
    let taken = store.insert_key(&key_of(&user, "hash-1"), Vec::new()).await;
    assert!(taken.is_err(), "a secret names one key");
    let base = now();
    let mut racers = Vec::new();
    for racer in 0..RACERS {
        let (store, id) = (store.clone(), id.clone());
        racers.push(tokio::spawn(async move {
            store
                .revoke_key(
                    &id,
                    base + Duration::milliseconds(racer as i64),
                    vec![NewEvent::example()],
                )
                .await
                .expect("revoke")
                .expect("the key exists")
        }));
    }
    let mut revoked_at = BTreeSet::new();
    for racer in racers {
        revoked_at.insert(racer.await.expect("task").revoked_at);
    }
    assert_eq!(revoked_at.len(), 1, "one revocation: {revoked_at:?}");
    assert!(revoked_at.first().is_some_and(Option::is_some));
    assert_eq!(
        store.events_after(0, 100).await.expect("events").len(),
        1,
        "one revoke logged"
    );
    let (entries, total) = store
        .list_audit(&super::AuditQuery {
            action: Some("key.revoked".to_owned()),
            limit: 100,
            ..super::AuditQuery::default()
        })
        .await
        .expect("audit");
    assert_eq!(total, 1, "one revoke audited: {entries:?}");
    let auth = store.key_auth("hash-1").await.expect("auth").expect("key");
    assert!(auth.revoked, "a revoked key no longer authenticates");
    let listed = store.list_keys(Some(&user)).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].revoked_at, *revoked_at.first().expect("one"));
    let missing = store
        .revoke_key(&shop_wire::KeyId::generate(), now(), Vec::new())
        .await
        .expect("revoke");
    assert!(missing.is_none(), "no such key");
}

/// A key's last use only moves forward: an older use flushed late, by a
/// batch or by racing flushes, never moves it back.
pub(crate) async fn touching_keys_never_moves_their_last_use_back<
    S: super::KeyStore + UserStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    let user = account(&store, "touch@example.com").await;
    let (a, b) = (key_of(&user, "hash-a"), key_of(&user, "hash-b"));
    for key in [&a, &b] {
        store.insert_key(key, Vec::new()).await.expect("insert");
    }
    let (a, b) = (a.key.id, b.key.id);
    let base = now();
    let at = |ms: i64| base + Duration::milliseconds(ms);
    let last_used = |id: shop_wire::KeyId| {
        let store = store.clone();
        async move {
            store
                .key(&id)
                .await
                .expect("read")
                .expect("key")
                .last_used_at
        }
    };
    store
        .touch_keys(vec![(a.clone(), at(50)), (a.clone(), at(20))])
        .await
        .expect("touch");
    assert_eq!(
        last_used(a.clone()).await,
        Some(at(50)),
        "the latest of a batch"
    );
    assert_eq!(
        last_used(b.clone()).await,
        None,
        "an unused key stays unused"
    );
    store
        .touch_keys(vec![(a.clone(), at(10)), (b.clone(), at(30))])
        .await
        .expect("touch");
    assert_eq!(last_used(a.clone()).await, Some(at(50)), "never back");
    assert_eq!(last_used(b.clone()).await, Some(at(30)));
    let mut racers = Vec::new();
    for racer in 0..RACERS as i64 {
        let (store, a, b) = (store.clone(), a.clone(), b.clone());
        // Racers flush in both key orders, with uses newer and older.
        let batch = if racer % 2 == 0 {
            vec![(a, at(100 + racer)), (b, at(1000 - racer))]
        } else {
            vec![(b, at(1000 - racer)), (a, at(100 + racer))]
        };
        racers.push(tokio::spawn(async move {
            store.touch_keys(batch).await.expect("touch")
        }));
    }
    for racer in racers {
        racer.await.expect("task");
    }
    assert_eq!(last_used(a).await, Some(at(100 + RACERS as i64 - 1)));
    assert_eq!(last_used(b).await, Some(at(1000)));
}

/// Paid orders recorded from many tasks at once (as by several nodes)
/// count every purchase and every pair exactly: nothing is lost to a race.
pub(crate) async fn racing_recorded_purchases_count_every_pair_exactly<
    S: super::SearchStore + CatalogStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    let skus = ["CO-A", "CO-B", "CO-C", "CO-D"];
    let mut ids = Vec::new();
    for sku in skus {
        let request = ProductRequest {
            sku: sku.to_owned(),
            name: format!("Product {sku}"),
            ..ProductRequest::default()
        };
        ids.push(add_request(&store, request, 5).await.id);
    }
    let mut racers = Vec::new();
    for racer in 0..RACERS {
        let store = store.clone();
        // A repeated SKU counts once; an unknown one not at all.
        let orders = vec![
            vec!["CO-A".to_owned(), "CO-B".to_owned(), "CO-C".to_owned()],
            vec![
                "CO-D".to_owned(),
                "CO-C".to_owned(),
                "CO-B".to_owned(),
                "CO-D".to_owned(),
                "GONE".to_owned(),
            ],
        ];
        // Followers of different names, so that none waits for another's
        // cursor: the race is between their counts. (Leaked: a test's few
        // names must be 'static as the followers' own are.)
        let consumer: &'static str = Box::leak(format!("co-racer-{racer}").into_boxed_str());
        racers.push(tokio::spawn(async move {
            let cursor = super::CursorMove {
                consumer,
                from: 0,
                to: 1,
            };
            store
                .record_purchases(orders, cursor)
                .await
                .expect("record purchases")
        }));
    }
    for racer in racers {
        let counts = racer.await.expect("task");
        assert_eq!(counts.len(), 4, "the products involved: {counts:?}");
    }
    let n = RACERS as u64;
    // Per racer: A once, B and C twice, D once; pairs AB, AC, BD, CD once, BC twice.
    let purchases = [n, 2 * n, 2 * n, n];
    let documents = store
        .search_documents(ids.clone())
        .await
        .expect("documents");
    for (id, bought) in ids.iter().zip(purchases) {
        let document = documents
            .iter()
            .find(|d| &d.product.id == id)
            .expect("document");
        assert_eq!(
            document.popularity,
            super::ProductPopularity::score(bought, 0),
            "{id}"
        );
    }
    let pairs = [(0, 1, n), (0, 2, n), (1, 2, 2 * n), (1, 3, n), (2, 3, n)];
    let mut recorded = 0;
    for (i, id) in ids.iter().enumerate() {
        let related = store.related_products(id, 10).await.expect("related");
        for other in &related {
            let j = ids.iter().position(|x| x == &other.id).expect("known");
            let expected = pairs
                .iter()
                .find(|(a, b, _)| (*a, *b) == (i.min(j), i.max(j)))
                .map_or(0, |p| p.2);
            assert_eq!(other.co_purchases, expected, "{i} with {j}");
            assert_eq!(other.co_views, 0);
            recorded += other.co_purchases;
        }
    }
    let expected: u64 = pairs.iter().map(|p| 2 * p.2).sum();
    assert_eq!(
        recorded, expected,
        "every pair in both directions, once each"
    );
}

/// An order of `quantity` units of `sku` placed for `email` (its total
/// checked: the figures below are counted by hand), paid unless `pay` is false.
async fn order_for<S: OrderStore + PaymentStore + PricingStore + ?Sized + 'static>(
    store: &Arc<S>,
    email: &str,
    quantity: i64,
    pay: bool,
) -> (Order, PaymentId) {
    // Orders a few milliseconds apart: customers are listed newest first.
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    let payment_id = PaymentId::generate();
    let created = store
        .create_order(
            OrderDraft {
                id: OrderId::generate(),
                customer_email: email.to_owned(),
                user_id: None,
                source: OrderSource::Items(vec![ReserveItem {
                    sku: "AN-1".to_owned(),
                    quantity,
                }]),
                idempotency_key: None,
                pay_by: now() + Duration::minutes(15),
                payment: Some(PaymentDraft {
                    id: payment_id.clone(),
                    method: MethodKind::Card,
                    provider: "simulated",
                    card_brand: None,
                    card_last4: None,
                }),
                actor: "contract".to_owned(),
                limits: LIMITS,
                max_unpaid: None,
                checkout: checkout_of(&**store, "AN-1").await,
            },
            COMMERCE_EVENTS,
        )
        .await
        .expect("create order");
    let OrderCreate::Created { order, .. } = created else {
        panic!("order not created: {created:?}");
    };
    assert_eq!(
        order.total_cents,
        1000 * quantity,
        "1000 a unit, nothing added"
    );
    if !pay {
        return (*order, payment_id);
    }
    let paid = store
        .complete_payment(
            &payment_id,
            ChargeResult::Succeeded {
                provider_ref: "ch_contract".to_owned(),
                card_brand: None,
                card_last4: None,
            },
            "contract".to_owned(),
            COMMERCE_EVENTS,
        )
        .await
        .expect("complete payment");
    let PaymentDone::Paid { order, .. } = paid else {
        panic!("not paid: {paid:?}");
    };
    (*order, payment_id)
}

/// Customers, sales and the order and payment analytics of a few orders,
/// against figures counted by hand: a refunded order still makes a
/// customer and a sale, but no net revenue; an unpaid one counts nowhere.
pub(crate) async fn customers_and_sales_add_up_to_a_hand_count<
    S: OrderStore
        + PaymentStore
        + PricingStore
        + CatalogStore
        + super::AnalyticsStore
        + ?Sized
        + 'static,
>(
    store: Arc<S>,
) {
    use shop_wire::reports::ReportGroup;
    let request = ProductRequest {
        sku: "AN-1".to_owned(),
        name: "Analysed".to_owned(),
        price_cents: 1000,
        ..ProductRequest::default()
    };
    add_request(&store, request, 100).await;
    let (first, _) = order_for(&store, "buyer@example.com", 2, true).await;
    let (second, second_payment) = order_for(&store, "buyer@example.com", 1, true).await;
    refund(&store, &second_payment, 300).await;
    let (other, _) = order_for(&store, "other@example.com", 3, true).await;
    order_for(&store, "unpaid@example.com", 1, false).await;
    let (gone, gone_payment) = order_for(&store, "refunded@example.com", 1, true).await;
    refund(&store, &gone_payment, 1000).await;
    let currency = first.currency;

    // Newest buyer first: the refunded one, then other, then buyer.
    let page = |text: Option<&str>, limit, offset| super::CustomerQuery {
        text: text.map(str::to_owned),
        limit,
        offset,
    };
    let (listed, total) = store.customers(&page(None, 2, 0)).await.expect("customers");
    assert_eq!(total, 3, "the unpaid order makes no customer");
    let emails: Vec<&str> = listed.iter().map(|c| c.email.as_str()).collect();
    assert_eq!(emails, ["refunded@example.com", "other@example.com"]);
    assert_eq!(listed[0].total_spent_cents, 0, "refunded in full");
    assert_eq!(listed[0].last_order_at, gone.created_at);
    assert_eq!(listed[1].total_spent_cents, 3000);
    let (rest, total) = store.customers(&page(None, 2, 2)).await.expect("customers");
    assert_eq!(total, 3);
    assert_eq!(rest.len(), 1);
    let buyer = &rest[0];
    assert_eq!(buyer.email, "buyer@example.com");
    assert_eq!(buyer.orders_count, 2);
    assert_eq!(buyer.total_spent_cents, 2000 + 1000 - 300);
    assert_eq!(buyer.currency, currency);
    assert_eq!(buyer.spent.len(), 1);
    assert_eq!(buyer.spent[0].amount_cents, 2700);
    assert_eq!(buyer.first_order_at, first.created_at);
    assert_eq!(buyer.last_order_at, second.created_at);
    assert_eq!(buyer.user_id, None, "no account has the email");
    let (past, total) = store.customers(&page(None, 2, 5)).await.expect("customers");
    assert!(past.is_empty());
    assert_eq!(total, 3, "counted past the last page too");
    let (found, total) = store
        .customers(&page(Some("OTHER@"), 10, 0))
        .await
        .expect("customers");
    assert_eq!(total, 1);
    assert_eq!(found[0].email, "other@example.com");
    assert_eq!(found[0].first_order_at, other.created_at);
    let one = store
        .customer("buyer@example.com")
        .await
        .expect("customer")
        .expect("a buyer");
    assert_eq!((one.orders_count, one.total_spent_cents), (2, 2700));
    assert!(
        store
            .customer("unpaid@example.com")
            .await
            .expect("customer")
            .is_none()
    );

    // Sales: four orders took money (gross 2000 + 1000 + 3000 + 1000).
    let (from, to) = (
        first.created_at - Duration::days(1),
        now() + Duration::days(1),
    );
    let day = |at: time::OffsetDateTime| {
        format!(
            "{:04}-{:02}-{:02}",
            at.year(),
            u8::from(at.month()),
            at.day()
        )
    };
    for (group, period) in [
        (ReportGroup::Day, day(first.created_at)),
        (ReportGroup::Month, day(first.created_at)[..7].to_owned()),
    ] {
        let rows = store
            .sales(&super::SalesQuery { from, to, group })
            .await
            .expect("sales");
        let periods: BTreeSet<&str> = rows.iter().map(|r| r.period.as_str()).collect();
        // Orders placed either side of a UTC midnight span two periods.
        assert!(periods.contains(period.as_str()), "{rows:?}");
        assert_eq!(rows.iter().map(|r| r.orders).sum::<u64>(), 4);
        assert_eq!(rows.iter().map(|r| r.gross_cents).sum::<i64>(), 7000);
        assert_eq!(rows.iter().map(|r| r.refunds_cents).sum::<i64>(), 1300);
        assert_eq!(rows.iter().map(|r| r.net_cents).sum::<i64>(), 5700);
        assert_eq!(rows.iter().map(|r| r.discount_cents).sum::<i64>(), 0);
    }
    let none = store
        .sales(&super::SalesQuery {
            from: to,
            to: to + Duration::days(1),
            group: ReportGroup::Week,
        })
        .await
        .expect("sales");
    assert!(none.is_empty(), "no order in the range");

    // Net revenue counts sold orders only: 2000 + 700 + 3000.
    let net = store.net_revenue().await.expect("net revenue");
    assert_eq!(net.len(), 1);
    assert_eq!((net[0].currency, net[0].amount_cents), (currency, 5700));
    let orders = store.order_analytics().await.expect("order analytics");
    assert_eq!(
        orders.counts_by_status.iter().map(|c| c.count).sum::<u64>(),
        5
    );
    assert_eq!(orders.average_order_value[0].amount_cents, 5700 / 3);
    assert_eq!(
        orders
            .revenue_by_day
            .iter()
            .map(|d| d.revenue_cents)
            .sum::<i64>(),
        5700
    );
    assert_eq!(orders.top_products.len(), 1);
    assert_eq!(
        (
            orders.top_products[0].quantity,
            orders.top_products[0].revenue_cents
        ),
        (6, 6000)
    );
    let payments = store.payment_analytics().await.expect("payment analytics");
    assert_eq!(
        (payments.attempts, payments.succeeded, payments.failed),
        (5, 4, 0)
    );
    assert_eq!(payments.volume.len(), 1);
    assert_eq!(
        (
            payments.volume[0].captured_cents,
            payments.volume[0].refunded_cents
        ),
        (7000, 1300)
    );
    assert!((payments.refund_rate - 1300.0 / 7000.0).abs() < 1e-9);
}

/// The audit log's filters (actor by kind, id or email in any case; an
/// action or its family; an entity; a time range) and its pages pick the
/// same entries on every backend, newest first.
pub(crate) async fn audit_filters_and_pages_pick_the_right_entries<
    S: super::KeyStore + super::AuditStore + UserStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    use shop_wire::audit::{Actor, ActorKind};
    let owner = account(&store, "owner@example.com").await;
    let ops = Actor {
        kind: ActorKind::User,
        id: Some(owner.to_string()),
        email: Some("Ops@Example.com".to_owned()),
    };
    let as_ops = |record: super::KeyRecord| {
        let (store, ops) = (store.clone(), ops.clone());
        super::audit::AuditScope::new(Some("192.0.2.7".to_owned()), Some("req_1".to_owned())).run(
            async move {
                super::audit::set_actor(ops);
                store.insert_key(&record, Vec::new()).await.expect("insert");
                record.key.id
            },
        )
    };
    // Before `middle`: ops creates k1 and k2, the system creates k3.
    let k1 = as_ops(key_of(&owner, "audit-1")).await;
    let k2 = as_ops(key_of(&owner, "audit-2")).await;
    let k3 = key_of(&owner, "audit-3");
    store.insert_key(&k3, Vec::new()).await.expect("insert");
    let k3 = k3.key.id;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let middle = now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    // After: the system revokes k1, ops creates k4.
    store
        .revoke_key(&k1, now(), Vec::new())
        .await
        .expect("revoke")
        .expect("key");
    let k4 = as_ops(key_of(&owner, "audit-4")).await;
    let list = |query: super::AuditQuery| {
        let store = store.clone();
        async move {
            let (entries, total) = store.list_audit(&query).await.expect("audit");
            let found: Vec<(String, String)> = entries
                .into_iter()
                .map(|e| (e.action, e.entity_id))
                .collect();
            (found, total)
        }
    };
    let all = || super::AuditQuery {
        limit: 100,
        ..super::AuditQuery::default()
    };
    let created = |id: &shop_wire::KeyId| ("key.created".to_owned(), id.to_string());
    let revoked = |id: &shop_wire::KeyId| ("key.revoked".to_owned(), id.to_string());
    // The account's own creation may or may not be audited: count keys only.
    let (everything, _) = list(super::AuditQuery {
        entity: Some("key".to_owned()),
        ..all()
    })
    .await;
    assert_eq!(
        everything,
        [
            created(&k4),
            revoked(&k1),
            created(&k3),
            created(&k2),
            created(&k1)
        ],
        "newest first"
    );
    for actor in ["ops@example.com", "OPS@EXAMPLE.COM", owner.as_str()] {
        let (by_ops, total) = list(super::AuditQuery {
            actor: Some(actor.to_owned()),
            ..all()
        })
        .await;
        assert_eq!(
            by_ops,
            [created(&k4), created(&k2), created(&k1)],
            "{actor}"
        );
        assert_eq!(total, 3);
    }
    let (by_system, _) = list(super::AuditQuery {
        actor: Some("system".to_owned()),
        entity: Some("key".to_owned()),
        ..all()
    })
    .await;
    assert_eq!(by_system, [revoked(&k1), created(&k3)]);
    let (family, _) = list(super::AuditQuery {
        action: Some("key".to_owned()),
        ..all()
    })
    .await;
    assert_eq!(family, everything, "`key` is every key.* action");
    let (exact, _) = list(super::AuditQuery {
        action: Some("key.revoked".to_owned()),
        ..all()
    })
    .await;
    assert_eq!(exact, [revoked(&k1)]);
    let (none, total) = list(super::AuditQuery {
        action: Some("ke%".to_owned()),
        ..all()
    })
    .await;
    assert!(none.is_empty() && total == 0, "a wildcard is a character");
    let (one, _) = list(super::AuditQuery {
        entity: Some("key".to_owned()),
        entity_id: Some(k1.to_string()),
        ..all()
    })
    .await;
    assert_eq!(one, [revoked(&k1), created(&k1)]);
    let (before, _) = list(super::AuditQuery {
        entity: Some("key".to_owned()),
        to: Some(middle),
        ..all()
    })
    .await;
    assert_eq!(before, [created(&k3), created(&k2), created(&k1)]);
    let (after, _) = list(super::AuditQuery {
        entity: Some("key".to_owned()),
        from: Some(middle),
        ..all()
    })
    .await;
    assert_eq!(after, [created(&k4), revoked(&k1)]);
    let (page, total) = list(super::AuditQuery {
        entity: Some("key".to_owned()),
        limit: 2,
        offset: 1,
        ..all()
    })
    .await;
    assert_eq!(page, everything[1..3]);
    assert_eq!(total, 5, "the total ignores the page");
    let (entries, _) = store
        .list_audit(&super::AuditQuery {
            entity_id: Some(k4.to_string()),
            ..all()
        })
        .await
        .expect("audit");
    let entry = &entries[0];
    assert_eq!(entry.actor.kind, ActorKind::User);
    assert_eq!(entry.ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(entry.request_id.as_deref(), Some("req_1"));
    assert_eq!(entry.before, serde_json::Value::Null, "a creation");
    assert!(entry.after.get("secret_hash").is_none(), "never the hash");
}

/// The start-up build pages through every product once, in id order,
/// each with its stock.
pub(crate) async fn search_documents_page_through_every_product_once<
    S: super::SearchStore + CatalogStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    let mut ids = BTreeSet::new();
    for n in 0..7 {
        let request = ProductRequest {
            sku: format!("DOC-{n}"),
            name: format!("Document {n}"),
            ..ProductRequest::default()
        };
        ids.insert(add_request(&store, request, n).await.id);
    }
    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = Vec::new();
    loop {
        let page = store
            .search_documents_after(after.clone(), 3)
            .await
            .expect("page");
        pages.push(page.len());
        let Some(last) = page.last() else { break };
        after = Some(last.product.id.clone());
        for document in page {
            let n: i64 = document.product.sku["DOC-".len()..].parse().expect("n");
            assert_eq!(document.available, n, "its stock");
            assert_eq!(document.popularity, 0.0);
            seen.push(document.product.id);
        }
    }
    assert_eq!(pages, [3, 3, 1, 0]);
    assert_eq!(
        seen,
        ids.iter().cloned().collect::<Vec<_>>(),
        "each once, in id order"
    );
    let some: Vec<_> = ids.iter().take(2).cloned().collect();
    let mut asked = some.clone();
    asked.push(shop_wire::products::ProductId::generate());
    assert_eq!(
        store
            .search_documents(asked.clone())
            .await
            .expect("documents")
            .len(),
        2
    );
    assert_eq!(
        store.products_by_ids(asked).await.expect("products").len(),
        2
    );
    assert!(
        store
            .products_by_ids(Vec::new())
            .await
            .expect("none")
            .is_empty()
    );
}

/// Searches are counted per hour and query: analytics leave browsing (the
/// empty query) out of the lists, popular queries count distinct clients,
/// and pruning removes the searches and their hourly counts.
pub(crate) async fn searches_are_counted_per_hour_and_query<
    S: super::SearchStore + EventStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    use shop_wire::search::QueryCount;
    let at = now();
    let record = |query: &str, results: u64| super::SearchRecord {
        query: query.to_owned(),
        raw: query.to_owned(),
        filters: serde_json::json!({}),
        result_count: results,
        latency_us: 500,
        cache_hit: false,
        at,
        client: Some(format!("client-{results}")),
    };
    store
        .record_searches(
            vec![
                record("oak", 3),
                record("oak", 3),
                record("zzz", 0),
                record("", 9),
            ],
            vec![NewEvent::example()],
        )
        .await
        .expect("record");
    store
        .record_searches(vec![record("oak", 3)], Vec::new())
        .await
        .expect("record again");
    assert_eq!(store.events_after(0, 10).await.expect("events").len(), 1);
    let analytics = store
        .search_analytics(at - Duration::hours(1), 10)
        .await
        .expect("analytics");
    assert_eq!(analytics.total_queries, 5);
    assert_eq!(analytics.zero_result_total, 1);
    assert_eq!(
        analytics.top_queries,
        [
            QueryCount {
                query: "oak".into(),
                count: 3
            },
            QueryCount {
                query: "zzz".into(),
                count: 1
            }
        ]
    );
    assert_eq!(analytics.zero_result_queries.len(), 1);
    assert_eq!(analytics.volume.iter().map(|v| v.count).sum::<u64>(), 5);
    assert!((analytics.avg_latency_ms - 0.5).abs() < 1e-9);
    let popular = store
        .popular_queries(at - Duration::hours(1), 10)
        .await
        .expect("popular");
    assert_eq!(
        popular,
        [super::PopularQuery {
            query: "oak".to_owned(),
            searches: 3,
            clients: 1
        }]
    );
    assert_eq!(
        store
            .prune_search_history(at + Duration::hours(2))
            .await
            .expect("prune"),
        8,
        "5 searches and 3 hourly counts"
    );
}

/// Views by one viewer pair two products once, however often; a client
/// past its cap pairs nothing; each viewed product's counts come back once.
pub(crate) async fn views_by_one_viewer_pair_once<
    S: super::SearchStore + CatalogStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    use super::{ProductView, ViewPairing};
    let mut products = Vec::new();
    for sku in ["VW-A", "VW-B"] {
        let request = ProductRequest {
            sku: sku.to_owned(),
            name: format!("Product {sku}"),
            ..ProductRequest::default()
        };
        products.push(add_request(&store, request, 1).await.id);
    }
    let (a, b) = (&products[0], &products[1]);
    let at = now();
    let pairing = |viewer: &str, per_client: u32| {
        Some(ViewPairing {
            viewer: viewer.to_owned(),
            client: "c1".to_owned(),
            per_client,
        })
    };
    let view = |product: &shop_wire::products::ProductId, pairing, at| ProductView {
        product: product.clone(),
        pairing,
        at,
    };
    let mut views: Vec<ProductView> = [a, b, a, b]
        .into_iter()
        .map(|product| view(product, pairing("s1", 0), at))
        .collect();
    // The same viewer again after the window: still one co-view.
    let later = at + Duration::hours(2);
    views.extend([a, b].map(|product| view(product, pairing("s1", 0), later)));
    // A client past its cap pairs nothing, however many viewers it names.
    for viewer in ["s2", "s3"] {
        views.extend([a, b].map(|product| view(product, pairing(viewer, 2), later)));
    }
    views.push(view(a, None, at));
    let counts = store
        .record_views(views, Duration::hours(1), 10)
        .await
        .expect("views");
    assert_eq!(
        counts.iter().map(|c| (&c.id, c.views)).collect::<Vec<_>>(),
        [(a, 6), (b, 5)],
        "each viewed product once, with all its views"
    );
    let related = store.related_products(a, 5).await.expect("related");
    assert_eq!(related.len(), 1, "{related:?}");
    assert_eq!((related[0].co_views, related[0].co_purchases), (1, 0));
}

/// One viewer's views recorded from many tasks at once (as by several
/// nodes) count every view, and the viewer once for the pair.
pub(crate) async fn racing_views_by_one_viewer_count_one_co_view<
    S: super::SearchStore + CatalogStore + ?Sized + 'static,
>(
    store: Arc<S>,
) {
    use super::{ProductView, ViewPairing};
    let mut products = Vec::new();
    for sku in ["RV-A", "RV-B"] {
        let request = ProductRequest {
            sku: sku.to_owned(),
            name: format!("Product {sku}"),
            ..ProductRequest::default()
        };
        products.push(add_request(&store, request, 1).await.id);
    }
    let mut racers = Vec::new();
    for racer in 0..RACERS {
        let (store, products) = (store.clone(), products.clone());
        racers.push(tokio::spawn(async move {
            let views = products
                .into_iter()
                .map(|product| ProductView {
                    product,
                    pairing: Some(ViewPairing {
                        viewer: "usr_racer".to_owned(),
                        client: format!("client-{racer}"),
                        per_client: 0,
                    }),
                    at: now(),
                })
                .collect();
            store
                .record_views(views, Duration::hours(1), 10)
                .await
                .expect("record views")
        }));
    }
    for racer in racers {
        racer.await.expect("task");
    }
    let documents = store
        .search_documents(products.clone())
        .await
        .expect("documents");
    for document in &documents {
        assert_eq!(
            document.popularity,
            super::ProductPopularity::score(0, RACERS as u64),
            "every view counted"
        );
    }
    for (product, other) in [(&products[0], &products[1]), (&products[1], &products[0])] {
        let related = store.related_products(product, 5).await.expect("related");
        assert_eq!(related.len(), 1, "{related:?}");
        assert_eq!(&related[0].id, other);
        assert_eq!(related[0].co_views, 1, "one viewer, one co-view");
    }
}

/// One `#[tokio::test]` per contract check for a backend: `$open` is an
/// async function returning a guard (kept alive for the test) and a fresh
/// store.
macro_rules! store_contract {
    ($backend:ident, $open:path) => {
        mod $backend {
            store_contract!(@tests $open;
                event_ids_increase_and_a_cursor_sees_every_event_before_it,
                a_reader_never_skips_an_event_committed_late,
                ping_answers_under_racing_writes_and_changes_nothing,
                exactly_one_concurrent_idempotency_claim_starts,
                reservations_for_the_last_units_never_oversell,
                a_reservation_holds_every_item_or_none,
                stock_on_hand_never_goes_below_what_is_reserved,
                racing_cart_changes_at_one_version_apply_once,
                racing_product_updates_at_one_version_write_once,
                racing_queue_claims_never_hand_out_one_twice,
                racing_refunds_never_exceed_the_capture,
                an_order_refunded_in_full_is_not_shipped,
                a_cart_becomes_a_paid_order_and_a_cancelling_refund_restocks_it,
                racing_partial_shipments_never_ship_a_unit_twice,
                racing_returns_never_return_a_unit_twice,
                racing_shipping_refunds_give_the_shipping_back_once,
                an_unpaid_order_expires_once_and_releases_its_stock,
                webhook_deliveries_are_queued_once_claimed_once_and_replayable,
                racing_notification_claimers_claim_each_due_one_once,
                racing_enqueues_of_one_reaction_queue_it_once,
                racing_cursor_moves_from_one_position_move_it_once,
                a_completion_after_its_lease_was_released_changes_nothing,
                racing_webhook_claimers_claim_each_delivery_once,
                a_country_is_shipped_to_by_one_zone_even_when_zones_race,
                tax_rates_are_one_per_scope_and_read_with_the_products,
                racing_checkouts_never_use_a_discount_past_its_limit,
                racing_resets_spend_an_emailed_token_once,
                an_address_book_keeps_its_limit_and_its_owner,
                a_taken_sku_is_refused_and_writes_nothing,
                product_lists_filter_by_category_price_text_and_stock,
                an_import_upserts_by_sku_and_a_dry_run_writes_nothing,
                reservations_of_the_same_skus_in_opposite_orders_never_deadlock,
                racing_sweeps_expire_each_reservation_once,
                a_taken_email_is_refused_whatever_its_case,
                racing_demotions_never_leave_the_shop_without_an_admin,
                racing_refreshes_with_one_secret_rotate_once,
                racing_invoices_take_one_gapless_number_each,
                a_held_or_ordered_product_is_not_deleted,
                racing_followers_move_a_cursor_once,
                racing_revokes_revoke_a_key_once,
                touching_keys_never_moves_their_last_use_back,
                racing_recorded_purchases_count_every_pair_exactly,
                customers_and_sales_add_up_to_a_hand_count,
                audit_filters_and_pages_pick_the_right_entries,
                search_documents_page_through_every_product_once,
                searches_are_counted_per_hour_and_query,
                views_by_one_viewer_pair_once,
                racing_views_by_one_viewer_count_one_co_view,
            );
        }
    };
    (@tests $open:path; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let (_guard, store) = $open().await;
                super::$check(store).await;
            }
        )*
    };
}

/// A fresh SQLite store on a file in a temp dir.
async fn open_sqlite() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = super::SqliteStore::open(
        &dir.path().join("shop.db"),
        crate::config::Durability::Process,
    )
    .expect("open");
    (dir, Arc::new(store))
}

store_contract!(sqlite, super::open_sqlite);

store_contract!(postgres, crate::store::postgres::testing::open);
