//! Carts in PostgreSQL: each line holds its stock through one reservation,
//! resized with the line in the same transaction, so a cart's lines and the
//! inventory never disagree.
//!
//! Writers run at once here, so every change of a cart first locks its row
//! (`SELECT ... FOR UPDATE`): changes of one cart then queue, and the one
//! that comes second finds the version the first one left, which is how
//! racing changes at one version apply once. Below the cart, the locks are
//! taken as the inventory takes them: a line's reservation, then stock rows
//! in SKU order.

use async_trait::async_trait;
use shop_wire::UserId;
use shop_wire::cart::{Cart, CartId, CartItem, CartStatus};
use shop_wire::events::{CartEvent, EventData, MakeEvent};
use shop_wire::inventory::ReservationStatus;
use shop_wire::money::Currency;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};
use time::OffsetDateTime;

use super::inventory::{
    Hold, active_reservation, check_available, extend_reservations, finish_active, reservation_of,
    reserve_checked, reserve_one, resize_reservation,
};
use super::{PgStore, backend, parse};
use crate::services::cart::rules::{self, ProductFacts};
use crate::services::inventory::rules::demand_per_sku;
use crate::store::{
    CartChange, CartRecord, CartStore, CartWrite, ChangeContext, CommerceEvents, LineRefusal,
    NewCartRecord, NewEvent, ReserveItem, StockEffect, StoreError, StoreResult, now,
};

const CART_COLUMNS: &str = "id, user_id, token_hash, status, currency, version, expires_at, \
     created_at, updated_at, checkout::text AS checkout";

pub(super) async fn product_info(
    conn: &mut PgConnection,
    sku: &str,
) -> StoreResult<Option<ProductFacts>> {
    let row = sqlx::query(
        "SELECT name, price_cents, currency, active, attributes ->> $2 AS max_per_cart
         FROM products WHERE sku = $1",
    )
    .bind(sku)
    .bind(rules::MAX_PER_CART_ATTRIBUTE)
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        let cap: Option<String> = row.try_get("max_per_cart")?;
        Ok(ProductFacts {
            name: row.try_get("name")?,
            price_cents: row.try_get("price_cents")?,
            currency: parse(&row, "currency")?,
            active: row.try_get("active")?,
            // Checked when the product is written; an unreadable one caps nothing.
            max_per_cart: cap.and_then(|c| rules::parse_max_per_cart(&c).ok()),
        })
    })
    .transpose()
}

/// Checks new lines before anything is written: every product exists, is
/// active and is priced in one currency (the cart's, when it has lines),
/// and the stock covers them (its rows now locked). Returns the products,
/// in line order.
pub(super) async fn check_lines(
    tx: &mut PgConnection,
    lines: &[ReserveItem],
    currency: Option<Currency>,
) -> StoreResult<Result<Vec<ProductFacts>, LineRefusal>> {
    let mut products = Vec::with_capacity(lines.len());
    for line in lines {
        products.push(product_info(tx, &line.sku).await?);
    }
    if let Err(refusal) = rules::check_products(
        lines.iter().zip(products.iter().map(Option::as_ref)),
        currency,
    ) {
        return Ok(Err(refusal));
    }
    if let Err(refusal) = check_available(tx, lines).await? {
        return Ok(Err(refusal.into()));
    }
    Ok(Ok(products.into_iter().flatten().collect()))
}

struct Line {
    item: CartItem,
    reservation_id: String,
    position: i64,
}

async fn load_lines(conn: &mut PgConnection, cart: &str) -> StoreResult<Vec<Line>> {
    sqlx::query(
        "SELECT sku, name, quantity, unit_price_cents, reservation_id, position
         FROM cart_items WHERE cart_id = $1 ORDER BY position",
    )
    .bind(cart)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|row| {
        let quantity: i64 = row.try_get("quantity")?;
        let unit: i64 = row.try_get("unit_price_cents")?;
        Ok(Line {
            item: CartItem {
                sku: row.try_get("sku")?,
                name: row.try_get("name")?,
                quantity,
                unit_price_cents: unit,
                line_total_cents: quantity * unit,
            },
            reservation_id: row.try_get("reservation_id")?,
            position: row.try_get("position")?,
        })
    })
    .collect()
}

fn cart_row(row: &PgRow) -> StoreResult<CartRecord> {
    Ok(CartRecord {
        cart: Cart {
            id: parse(row, "id")?,
            status: parse(row, "status")?,
            user_id: row
                .try_get::<Option<String>, _>("user_id")?
                .map(|id| id.parse::<UserId>())
                .transpose()
                .map_err(backend)?,
            items: Vec::new(),
            item_count: 0,
            subtotal_cents: 0,
            currency: parse(row, "currency")?,
            version: row.try_get::<i64, _>("version")? as u64,
            expires_at: row.try_get("expires_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            checkout: row
                .try_get::<Option<String>, _>("checkout")?
                .map(|json| serde_json::from_str(&json))
                .transpose()
                .map_err(backend)?
                .unwrap_or_default(),
            discount_codes: Vec::new(),
            token: None,
        },
        token_hash: row.try_get("token_hash")?,
    })
}

async fn with_lines(conn: &mut PgConnection, mut record: CartRecord) -> StoreResult<CartRecord> {
    let lines = load_lines(conn, record.cart.id.as_str()).await?;
    let codes = super::pricing::cart_codes(conn, record.cart.id.as_str()).await?;
    let cart = &mut record.cart;
    cart.item_count = lines.iter().map(|l| l.item.quantity).sum();
    cart.subtotal_cents = lines.iter().map(|l| l.item.line_total_cents).sum();
    cart.items = lines.into_iter().map(|l| l.item).collect();
    cart.discount_codes = codes;
    Ok(record)
}

/// The cart `filter` (one condition on `$1`) finds, with its lines; its
/// row locked for this transaction when `lock`.
async fn find_cart(
    conn: &mut PgConnection,
    filter: &str,
    key: &str,
    lock: bool,
) -> StoreResult<Option<CartRecord>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {CART_COLUMNS} FROM carts WHERE {filter}{lock}");
    let found = sqlx::query(AssertSqlSafe(sql))
        .bind(key)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(cart_row)
        .transpose()?;
    match found {
        Some(record) => with_lines(conn, record).await.map(Some),
        None => Ok(None),
    }
}

/// A cart with its lines, read as this transaction sees it.
pub(super) async fn read_cart(
    conn: &mut PgConnection,
    id: &str,
) -> StoreResult<Option<CartRecord>> {
    find_cart(conn, "id = $1", id, false).await
}

/// A cart with its lines, its row locked for the change in progress.
pub(super) async fn lock_cart(tx: &mut PgConnection, id: &str) -> StoreResult<Option<CartRecord>> {
    find_cart(tx, "id = $1", id, true).await
}

async fn must_read_cart(tx: &mut PgConnection, id: &str) -> StoreResult<CartRecord> {
    read_cart(tx, id)
        .await?
        .ok_or_else(|| StoreError::Backend("cart vanished mid-change".into()))
}

async fn set_cart_state(
    tx: &mut PgConnection,
    id: &str,
    status: CartStatus,
    expires_at: Option<OffsetDateTime>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE carts SET status = $2, version = version + 1,
                expires_at = coalesce($3, expires_at), updated_at = $4
         WHERE id = $1",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(expires_at)
    .bind(now())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn set_currency(tx: &mut PgConnection, id: &str, currency: Currency) -> StoreResult<()> {
    sqlx::query("UPDATE carts SET currency = $2 WHERE id = $1")
        .bind(id)
        .bind(currency.code())
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Ends an active cart (locked by the caller) whose time ran out: its stock
/// goes back and it is `expired`.
async fn expire_cart(
    tx: &mut PgConnection,
    record: &CartRecord,
    events: CommerceEvents,
    pending: &mut Vec<NewEvent>,
) -> StoreResult<()> {
    let id = record.cart.id.as_str();
    for line in load_lines(tx, id).await? {
        let expired = ReservationStatus::Expired;
        if let Some(effect) = finish_active(tx, &line.reservation_id, expired, None).await? {
            pending.extend((events.stock)(&effect));
        }
    }
    set_cart_state(tx, id, CartStatus::Expired, None).await?;
    let expired = must_read_cart(tx, id).await?;
    pending.push((events.cart)(EventData::CartExpired, &expired.cart));
    Ok(())
}

/// Marks a cart `checked_out` once an order has taken over its lines and
/// their reservations.
pub(super) async fn check_out_cart(
    tx: &mut PgConnection,
    id: &str,
    events: CommerceEvents,
    pending: &mut Vec<NewEvent>,
) -> StoreResult<()> {
    set_cart_state(tx, id, CartStatus::CheckedOut, None).await?;
    let record = must_read_cart(tx, id).await?;
    pending.push((events.cart)(EventData::CartCheckedOut, &record.cart));
    Ok(())
}

/// Gives a cart's lines today's prices, as a new version of the cart; the
/// event that logs it: the customer sees the new prices before they pay them.
pub(super) async fn reprice_cart(
    tx: &mut PgConnection,
    id: &str,
    changes: &[rules::PriceChange],
    events: CommerceEvents,
) -> StoreResult<NewEvent> {
    for change in changes {
        sqlx::query("UPDATE cart_items SET unit_price_cents = $3 WHERE cart_id = $1 AND sku = $2")
            .bind(id)
            .bind(&change.sku)
            .bind(change.now_cents)
            .execute(&mut *tx)
            .await?;
    }
    set_cart_state(tx, id, CartStatus::Active, None).await?;
    let record = must_read_cart(tx, id).await?;
    Ok((events.cart)(EventData::CartUpdated, &record.cart))
}

/// A cart's lines with their reservation ids, for a checkout to take over.
pub(super) async fn cart_lines(
    conn: &mut PgConnection,
    id: &str,
) -> StoreResult<Vec<(CartItem, String)>> {
    Ok(load_lines(conn, id)
        .await?
        .into_iter()
        .map(|l| (l.item, l.reservation_id))
        .collect())
}

/// Whether every line of the cart still holds its stock (the holds locked).
pub(super) async fn lines_held(tx: &mut PgConnection, id: &str) -> StoreResult<bool> {
    for line in load_lines(tx, id).await? {
        if active_reservation(tx, &line.reservation_id)
            .await?
            .is_none()
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Checks that an existing cart (locked) can change now: `Err` with the
/// answer when not.
async fn check_changeable(
    tx: &mut PgConnection,
    record: &CartRecord,
    expected_version: Option<u64>,
    events: CommerceEvents,
    pending: &mut Vec<NewEvent>,
) -> StoreResult<Result<(), CartWrite>> {
    let state = rules::CartState {
        status: record.cart.status,
        version: record.cart.version,
        expires_at: record.cart.expires_at,
    };
    match rules::check_changeable(state, expected_version, now()) {
        Ok(()) => Ok(Ok(())),
        Err(rules::Unchangeable::NotActive(status)) => Ok(Err(CartWrite::NotActive(status))),
        Err(rules::Unchangeable::Lapsed) => {
            expire_cart(tx, record, events, pending).await?;
            Ok(Err(CartWrite::NotActive(CartStatus::Expired)))
        }
        Err(rules::Unchangeable::VersionConflict { current }) => {
            Ok(Err(CartWrite::VersionConflict { current }))
        }
    }
}

async fn insert_line(
    tx: &mut PgConnection,
    cart: &str,
    item: &ReserveItem,
    product: &ProductFacts,
    reservation_id: &str,
    position: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO cart_items (cart_id, sku, name, quantity, unit_price_cents, reservation_id,
             position)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(cart)
    .bind(&item.sku)
    .bind(&product.name)
    .bind(item.quantity)
    .bind(product.price_cents)
    .bind(reservation_id)
    .bind(position)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Checks that `sku`'s line at `quantity` keeps the cart within its limits.
async fn check_limits(
    tx: &mut PgConnection,
    lines: &[Line],
    sku: &str,
    quantity: i64,
    context: &ChangeContext,
) -> StoreResult<Result<(), LineRefusal>> {
    let others: i64 = lines
        .iter()
        .filter(|l| l.item.sku != sku)
        .map(|l| l.item.quantity)
        .sum();
    let cap = product_info(tx, sku).await?.and_then(|p| p.max_per_cart);
    Ok(rules::check_quantities(
        sku,
        quantity,
        cap,
        others + quantity,
        context.limits,
    ))
}

fn hold_for(cart: &str, context: &ChangeContext) -> Hold {
    Hold {
        expires_at: context.expires_at,
        reference: Some(cart.to_owned()),
        actor: context.actor.clone(),
    }
}

/// Adds units to the SKU's line, making the line if there is none.
async fn add(
    tx: &mut PgConnection,
    record: &CartRecord,
    item: ReserveItem,
    context: &ChangeContext,
    effects: &mut Vec<StockEffect>,
) -> StoreResult<Result<bool, LineRefusal>> {
    let cart = record.cart.id.as_str();
    let lines = load_lines(tx, cart).await?;
    if let Some(line) = lines.iter().find(|l| l.item.sku == item.sku) {
        let total = line.item.quantity.saturating_add(item.quantity);
        if let Err(refusal) = check_limits(tx, &lines, &item.sku, total, context).await? {
            return Ok(Err(refusal));
        }
        return set_quantity(tx, cart, line, total, context, effects).await;
    }
    if let Err(refusal) = rules::check_room(lines.len()) {
        return Ok(Err(refusal));
    }
    if let Err(refusal) = check_limits(tx, &lines, &item.sku, item.quantity, context).await? {
        return Ok(Err(refusal));
    }
    let currency = (!lines.is_empty()).then_some(record.cart.currency);
    let products = match check_lines(tx, std::slice::from_ref(&item), currency).await? {
        Ok(products) => products,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let product = &products[0];
    let effect = reserve_checked(tx, &item, hold_for(cart, context)).await?;
    let position = lines.iter().map(|l| l.position).max().unwrap_or(0) + 1;
    insert_line(tx, cart, &item, product, &reservation_of(&effect), position).await?;
    if lines.is_empty() {
        set_currency(tx, cart, product.currency).await?;
    }
    effects.push(effect);
    Ok(Ok(true))
}

/// Applies one change to an active cart's lines and their stock: `Ok(true)`
/// when it changed something, `Err` with the refusal when it cannot apply.
/// A refusal may come after part of an [`CartChange::AddAll`] was written;
/// the caller rolls that back.
async fn apply_change(
    tx: &mut PgConnection,
    record: &CartRecord,
    change: CartChange,
    context: &ChangeContext,
    effects: &mut Vec<StockEffect>,
) -> StoreResult<Result<bool, LineRefusal>> {
    let cart = record.cart.id.as_str();
    match change {
        CartChange::AddAll(items) => {
            for item in items {
                if let Err(refusal) = add(tx, record, item, context, effects).await? {
                    return Ok(Err(refusal));
                }
            }
            Ok(Ok(true))
        }
        CartChange::Add { sku, quantity } => {
            add(tx, record, ReserveItem { sku, quantity }, context, effects).await
        }
        CartChange::Set { sku, quantity } => {
            let lines = load_lines(tx, cart).await?;
            let Some(line) = lines.iter().find(|l| l.item.sku == sku) else {
                return Ok(Err(LineRefusal::NoLine(sku)));
            };
            if quantity == 0 {
                remove_line(tx, cart, line, context, effects).await?;
                return Ok(Ok(true));
            }
            if quantity > line.item.quantity
                && let Err(refusal) = check_limits(tx, &lines, &sku, quantity, context).await?
            {
                return Ok(Err(refusal));
            }
            set_quantity(tx, cart, line, quantity, context, effects).await
        }
        CartChange::Remove { sku } => {
            let lines = load_lines(tx, cart).await?;
            let Some(line) = lines.iter().find(|l| l.item.sku == sku) else {
                return Ok(Err(LineRefusal::NoLine(sku)));
            };
            remove_line(tx, cart, line, context, effects).await?;
            Ok(Ok(true))
        }
        CartChange::Clear => {
            let lines = load_lines(tx, cart).await?;
            for line in &lines {
                remove_line(tx, cart, line, context, effects).await?;
            }
            Ok(Ok(!lines.is_empty()))
        }
        CartChange::Checkout(checkout) => {
            if *checkout == record.cart.checkout {
                return Ok(Ok(false));
            }
            sqlx::query("UPDATE carts SET checkout = $2::jsonb WHERE id = $1")
                .bind(cart)
                .bind(serde_json::to_string(&checkout).map_err(backend)?)
                .execute(&mut *tx)
                .await?;
            Ok(Ok(true))
        }
    }
}

async fn set_quantity(
    tx: &mut PgConnection,
    cart: &str,
    line: &Line,
    quantity: i64,
    context: &ChangeContext,
    effects: &mut Vec<StockEffect>,
) -> StoreResult<Result<bool, LineRefusal>> {
    if quantity == line.item.quantity {
        return Ok(Ok(false));
    }
    let resized = match active_reservation(tx, &line.reservation_id).await? {
        Some(reservation) => {
            resize_reservation(tx, &reservation, quantity, context.actor.clone()).await?
        }
        // The hold ran out under a live cart (a sweep raced a change): hold the line anew.
        None => {
            let item = ReserveItem {
                sku: line.item.sku.clone(),
                quantity,
            };
            reserve_one(tx, &item, hold_for(cart, context)).await?
        }
    };
    let effect = match resized {
        Ok(effect) => effect,
        Err(refusal) => return Ok(Err(refusal.into())),
    };
    sqlx::query(
        "UPDATE cart_items SET quantity = $3, reservation_id = $4 WHERE cart_id = $1 AND sku = $2",
    )
    .bind(cart)
    .bind(&line.item.sku)
    .bind(quantity)
    .bind(reservation_of(&effect))
    .execute(&mut *tx)
    .await?;
    effects.push(effect);
    Ok(Ok(true))
}

async fn delete_line(tx: &mut PgConnection, cart: &str, sku: &str) -> StoreResult<()> {
    sqlx::query("DELETE FROM cart_items WHERE cart_id = $1 AND sku = $2")
        .bind(cart)
        .bind(sku)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Releases a line's hold; its effect, when the hold was still active.
async fn release_line(
    tx: &mut PgConnection,
    line: &Line,
    context: &ChangeContext,
    effects: &mut Vec<StockEffect>,
) -> StoreResult<()> {
    let released = ReservationStatus::Released;
    let actor = context.actor.clone();
    if let Some(effect) = finish_active(tx, &line.reservation_id, released, actor).await? {
        effects.push(effect);
    }
    Ok(())
}

async fn remove_line(
    tx: &mut PgConnection,
    cart: &str,
    line: &Line,
    context: &ChangeContext,
    effects: &mut Vec<StockEffect>,
) -> StoreResult<()> {
    release_line(tx, line, context, effects).await?;
    delete_line(tx, cart, &line.item.sku).await
}

/// Bumps the version, extends the cart's life and its lines' holds; the
/// cart as it now is, and the change's events with the stock events it
/// caused.
async fn finish_change(
    tx: &mut PgConnection,
    id: &str,
    kind: MakeEvent<CartEvent>,
    context: &ChangeContext,
    effects: Vec<StockEffect>,
    events: CommerceEvents,
    mut pending: Vec<NewEvent>,
) -> StoreResult<(CartWrite, Vec<NewEvent>)> {
    set_cart_state(tx, id, CartStatus::Active, Some(context.expires_at)).await?;
    let reservations: Vec<String> = load_lines(tx, id)
        .await?
        .into_iter()
        .map(|l| l.reservation_id)
        .collect();
    extend_reservations(tx, &reservations, context.expires_at, id).await?;
    let record = must_read_cart(tx, id).await?;
    for effect in &effects {
        pending.extend((events.stock)(effect));
    }
    pending.push((events.cart)(kind, &record.cart));
    Ok((CartWrite::Written(Box::new(record)), pending))
}

async fn create(
    tx: &mut PgConnection,
    new: NewCartRecord,
    actor: Option<String>,
    events: CommerceEvents,
) -> StoreResult<(CartWrite, Vec<NewEvent>)> {
    let refused = |refusal| Ok((CartWrite::Refused(refusal), Vec::new()));
    let lines = demand_per_sku(&new.lines);
    if let Err(refusal) = rules::check_line_count(lines.len()) {
        return refused(refusal);
    }
    if let Some((address, max)) = &new.client {
        // Carts of one address are counted under a lock of the address,
        // or racing creations would each count the others' carts out.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("cart client {address}"))
            .execute(&mut *tx)
            .await?;
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM carts
             WHERE client_ip = $1 AND status = 'active' AND expires_at > $2",
        )
        .bind(address)
        .bind(now())
        .fetch_one(&mut *tx)
        .await?;
        if let Err(refusal) = rules::check_carts_per_address(held.unsigned_abs(), *max) {
            return refused(refusal);
        }
    }
    let products = match check_lines(tx, &lines, None).await? {
        Ok(products) => products,
        Err(refusal) => return refused(refusal),
    };
    if let Err(refusal) = rules::check_all_quantities(&lines, &products, new.limits) {
        return refused(refusal);
    }
    let currency = rules::currency_of(products.first().map(|p| p.currency));
    let at = now();
    let id = new.id.as_str();
    // A user's second active cart is a unique violation of `carts_active_user`.
    sqlx::query(
        "INSERT INTO carts (id, user_id, token_hash, status, currency, version, expires_at,
             created_at, updated_at, client_ip)
         VALUES ($1, $2, $3, 'active', $4, 0, $5, $6, $6, $7)",
    )
    .bind(id)
    .bind(new.user_id.as_ref().map(UserId::as_str))
    .bind(&new.token_hash)
    .bind(currency.code())
    .bind(new.expires_at)
    .bind(at)
    .bind(new.client.as_ref().map(|(address, _)| address))
    .execute(&mut *tx)
    .await?;
    let context = ChangeContext {
        actor,
        expires_at: new.expires_at,
        limits: new.limits,
    };
    let mut effects = Vec::with_capacity(lines.len());
    for (position, (line, product)) in lines.iter().zip(&products).enumerate() {
        let effect = reserve_checked(tx, line, hold_for(id, &context)).await?;
        let reservation = reservation_of(&effect);
        insert_line(tx, id, line, product, &reservation, position as i64 + 1).await?;
        effects.push(effect);
    }
    let kind = EventData::CartCreated;
    finish_change(tx, id, kind, &context, effects, events, Vec::new()).await
}

async fn change(
    tx: &mut PgConnection,
    id: &CartId,
    change: CartChange,
    expected_version: Option<u64>,
    context: &ChangeContext,
    events: CommerceEvents,
) -> StoreResult<(CartWrite, Vec<NewEvent>)> {
    let Some(record) = lock_cart(tx, id.as_str()).await? else {
        return Ok((CartWrite::NotFound, Vec::new()));
    };
    let mut pending = Vec::new();
    if let Err(answer) =
        check_changeable(tx, &record, expected_version, events, &mut pending).await?
    {
        return Ok((answer, pending));
    }
    let mut effects = Vec::new();
    // A change of several lines is all or nothing: a refusal of a later
    // line undoes the earlier ones and their holds.
    sqlx::raw_sql("SAVEPOINT cart_change")
        .execute(&mut *tx)
        .await?;
    let changed = match apply_change(tx, &record, change, context, &mut effects).await? {
        Ok(changed) => changed,
        Err(refusal) => {
            sqlx::raw_sql("ROLLBACK TO SAVEPOINT cart_change; RELEASE SAVEPOINT cart_change")
                .execute(&mut *tx)
                .await?;
            return Ok((CartWrite::Refused(refusal), pending));
        }
    };
    sqlx::raw_sql("RELEASE SAVEPOINT cart_change")
        .execute(&mut *tx)
        .await?;
    if !changed {
        // Nothing changed: no new version, and the holds are not extended
        // (a no-op repeated must not keep stock forever).
        return Ok((CartWrite::Unchanged(Box::new(record)), pending));
    }
    let kind = EventData::CartUpdated;
    finish_change(tx, id.as_str(), kind, context, effects, events, pending).await
}

async fn merge(
    tx: &mut PgConnection,
    from: &CartId,
    user: &UserId,
    context: &ChangeContext,
    events: CommerceEvents,
) -> StoreResult<(CartWrite, Vec<NewEvent>)> {
    let Some(source) = lock_cart(tx, from.as_str()).await? else {
        return Ok((CartWrite::NotFound, Vec::new()));
    };
    let mut pending = Vec::new();
    if let Err(answer) = check_changeable(tx, &source, None, events, &mut pending).await? {
        return Ok((answer, pending));
    }
    let mine = "user_id = $1 AND status = 'active'";
    let target = find_cart(tx, mine, user.as_str(), true).await?;
    let Some(target) = target.filter(|t| t.cart.id != source.cart.id) else {
        // No cart of their own: the anonymous cart becomes theirs.
        sqlx::query("UPDATE carts SET user_id = $2, token_hash = NULL WHERE id = $1")
            .bind(from.as_str())
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?;
        let kind = EventData::CartMerged;
        return finish_change(
            tx,
            from.as_str(),
            kind,
            context,
            Vec::new(),
            events,
            pending,
        )
        .await;
    };
    let into = target.cart.id.as_str();
    if let Err(refusal) = rules::check_merge(
        (target.cart.currency, target.cart.items.is_empty()),
        (source.cart.currency, source.cart.items.is_empty()),
        source.cart.items.first().map(|item| item.sku.as_str()),
    ) {
        return Ok((CartWrite::Refused(refusal), pending));
    }
    // The merged cart keeps the caps too, or two carts at the cap would
    // make one over it.
    let both: Vec<ReserveItem> = target
        .cart
        .items
        .iter()
        .chain(&source.cart.items)
        .map(|item| ReserveItem {
            sku: item.sku.clone(),
            quantity: item.quantity,
        })
        .collect();
    let merged = demand_per_sku(&both);
    let total: i64 = merged.iter().map(|line| line.quantity).sum();
    for line in &merged {
        let cap = product_info(tx, &line.sku)
            .await?
            .and_then(|p| p.max_per_cart);
        if let Err(refusal) =
            rules::check_quantities(&line.sku, line.quantity, cap, total, context.limits)
        {
            return Ok((CartWrite::Refused(refusal), pending));
        }
    }
    let target_lines = load_lines(tx, into).await?;
    let mut position = target_lines.iter().map(|l| l.position).max().unwrap_or(0);
    let mut effects = Vec::new();
    for line in load_lines(tx, from.as_str()).await? {
        match target_lines.iter().find(|t| t.item.sku == line.item.sku) {
            Some(existing) => {
                // Release first: the units come back to available, so the
                // target's hold can always grow by them.
                release_line(tx, &line, context, &mut effects).await?;
                delete_line(tx, from.as_str(), &line.item.sku).await?;
                let total = existing.item.quantity + line.item.quantity;
                if let Err(refusal) =
                    set_quantity(tx, into, existing, total, context, &mut effects).await?
                {
                    return Err(StoreError::Backend(
                        format!("merging a released line failed: {refusal:?}").into(),
                    ));
                }
            }
            None => {
                position += 1;
                sqlx::query(
                    "UPDATE cart_items SET cart_id = $3, position = $4
                     WHERE cart_id = $1 AND sku = $2",
                )
                .bind(from.as_str())
                .bind(&line.item.sku)
                .bind(into)
                .bind(position)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    if target.cart.items.is_empty() {
        set_currency(tx, into, source.cart.currency).await?;
    }
    set_cart_state(tx, from.as_str(), CartStatus::Merged, None).await?;
    finish_change(
        tx,
        into,
        EventData::CartMerged,
        context,
        effects,
        events,
        pending,
    )
    .await
}

#[async_trait]
impl CartStore for PgStore {
    async fn create_cart(
        &self,
        cart: NewCartRecord,
        actor: Option<String>,
        events: CommerceEvents,
    ) -> StoreResult<CartWrite> {
        let (write, _) = self
            .write(move |tx| {
                let (cart, actor) = (cart.clone(), actor.clone());
                Box::pin(async move { create(tx, cart, actor, events).await })
            })
            .await?;
        Ok(write)
    }

    async fn cart(&self, id: &CartId) -> StoreResult<Option<CartRecord>> {
        let mut conn = self.pool.acquire().await?;
        read_cart(&mut conn, id.as_str()).await
    }

    async fn active_cart_of(&self, user: &UserId) -> StoreResult<Option<CartRecord>> {
        let mut conn = self.pool.acquire().await?;
        let mine = "user_id = $1 AND status = 'active'";
        find_cart(&mut conn, mine, user.as_str(), false).await
    }

    async fn cart_by_token(&self, token_hash: &str) -> StoreResult<Option<CartRecord>> {
        let mut conn = self.pool.acquire().await?;
        find_cart(&mut conn, "token_hash = $1", token_hash, false).await
    }

    async fn change_cart(
        &self,
        id: &CartId,
        change: CartChange,
        expected_version: Option<u64>,
        context: ChangeContext,
        events: CommerceEvents,
    ) -> StoreResult<CartWrite> {
        let (write, _) = self
            .write(move |tx| {
                let (id, change_asked, context) = (id.clone(), change.clone(), context.clone());
                Box::pin(async move {
                    self::change(tx, &id, change_asked, expected_version, &context, events).await
                })
            })
            .await?;
        Ok(write)
    }

    async fn merge_cart(
        &self,
        from: &CartId,
        user: &UserId,
        context: ChangeContext,
        events: CommerceEvents,
    ) -> StoreResult<CartWrite> {
        let (write, _) = self
            .write(move |tx| {
                let (from, user, context) = (from.clone(), user.clone(), context.clone());
                Box::pin(async move { merge(tx, &from, &user, &context, events).await })
            })
            .await?;
        Ok(write)
    }

    async fn expire_carts(
        &self,
        now: OffsetDateTime,
        limit: u32,
        events: CommerceEvents,
    ) -> StoreResult<u64> {
        let (count, _) = self
            .write(move |tx| {
                Box::pin(async move {
                    // Another node's sweep holds its batch: this one takes the next.
                    let sql = format!(
                        "SELECT {CART_COLUMNS} FROM carts
                         WHERE status = 'active' AND expires_at <= $1 ORDER BY expires_at LIMIT $2
                         FOR UPDATE SKIP LOCKED"
                    );
                    let due = sqlx::query(AssertSqlSafe(sql))
                        .bind(now)
                        .bind(i64::from(limit))
                        .fetch_all(&mut *tx)
                        .await?
                        .iter()
                        .map(cart_row)
                        .collect::<StoreResult<Vec<_>>>()?;
                    let mut pending = Vec::new();
                    for record in &due {
                        expire_cart(tx, record, events, &mut pending).await?;
                    }
                    Ok((due.len() as u64, pending))
                })
            })
            .await?;
        Ok(count)
    }
}
