//! Carts in SQLite: each line holds its stock through one reservation,
//! resized with the line in the same transaction, so a cart's lines and the
//! inventory never disagree.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use shop_wire::UserId;
use shop_wire::cart::{Cart, CartId, CartItem, CartStatus};
use shop_wire::events::{CartEvent, EventData, MakeEvent};
use shop_wire::inventory::ReservationStatus;
use shop_wire::money::Currency;
use time::OffsetDateTime;

use super::inventory::{
    Hold, active_reservation, check_available, extend_reservations, finish_active, reserve_checked,
    reserve_one, resize_reservation,
};
use super::{SqliteStore, append, backend, from_millis, millis, parse_column};
use crate::services::cart::rules::{self, ProductFacts};
use crate::services::inventory::rules::demand_per_sku;
use crate::store::{
    CartChange, CartRecord, CartStore, CartWrite, ChangeContext, CommerceEvents, LineRefusal,
    NewCartRecord, NewEvent, ReserveItem, StockEffect, StoreResult, now,
};

const CART_COLUMNS: &str = "id, user_id, token_hash, status, currency, version, expires_at, \
     created_at, updated_at, checkout";

pub(super) fn product_info(conn: &Connection, sku: &str) -> rusqlite::Result<Option<ProductFacts>> {
    conn.prepare_cached(
        "SELECT name, price_cents, currency, active,
                json_extract(attributes, '$.' || ?2) AS max_per_cart
         FROM products WHERE sku = ?1",
    )?
    .query_row(params![sku, rules::MAX_PER_CART_ATTRIBUTE], |row| {
        let cap: Option<String> = row.get("max_per_cart")?;
        Ok(ProductFacts {
            name: row.get(0)?,
            price_cents: row.get(1)?,
            currency: parse_column(row, "currency")?,
            active: row.get(3)?,
            // Checked when the product is written; an unreadable one caps nothing.
            max_per_cart: cap.and_then(|c| rules::parse_max_per_cart(&c).ok()),
        })
    })
    .optional()
}

/// Checks new lines before anything is written: every product exists, is
/// active and is priced in one currency (the cart's, when it has lines),
/// and the stock covers them. Returns the products, in line order.
pub(super) fn check_lines(
    conn: &Connection,
    lines: &[ReserveItem],
    currency: Option<Currency>,
) -> StoreResult<Result<Vec<ProductFacts>, LineRefusal>> {
    let mut products = Vec::with_capacity(lines.len());
    for line in lines {
        products.push(product_info(conn, &line.sku)?);
    }
    if let Err(refusal) = rules::check_products(
        lines.iter().zip(products.iter().map(Option::as_ref)),
        currency,
    ) {
        return Ok(Err(refusal));
    }
    if let Err(refusal) = check_available(conn, lines)? {
        return Ok(Err(refusal.into()));
    }
    Ok(Ok(products.into_iter().flatten().collect()))
}

struct Line {
    item: CartItem,
    reservation_id: String,
    position: i64,
}

fn load_lines(conn: &Connection, cart: &str) -> rusqlite::Result<Vec<Line>> {
    conn.prepare_cached(
        "SELECT sku, name, quantity, unit_price_cents, reservation_id, position
         FROM cart_items WHERE cart_id = ?1 ORDER BY position",
    )?
    .query_map([cart], |row| {
        let quantity: i64 = row.get(2)?;
        let unit: i64 = row.get(3)?;
        Ok(Line {
            item: CartItem {
                sku: row.get(0)?,
                name: row.get(1)?,
                quantity,
                unit_price_cents: unit,
                line_total_cents: quantity * unit,
            },
            reservation_id: row.get(4)?,
            position: row.get(5)?,
        })
    })?
    .collect()
}

fn cart_row(row: &Row<'_>) -> rusqlite::Result<CartRecord> {
    Ok(CartRecord {
        cart: Cart {
            id: parse_column(row, "id")?,
            status: parse_column(row, "status")?,
            user_id: row
                .get::<_, Option<String>>("user_id")?
                .map(|id| id.parse::<UserId>())
                .transpose()
                .map_err(super::conversion)?,
            items: Vec::new(),
            item_count: 0,
            subtotal_cents: 0,
            currency: parse_column(row, "currency")?,
            version: row.get::<_, i64>("version")? as u64,
            expires_at: from_millis(row.get("expires_at")?)?,
            created_at: from_millis(row.get("created_at")?)?,
            updated_at: from_millis(row.get("updated_at")?)?,
            checkout: row
                .get::<_, Option<String>>("checkout")?
                .map(|json| serde_json::from_str(&json))
                .transpose()
                .map_err(super::conversion)?
                .unwrap_or_default(),
            discount_codes: Vec::new(),
            token: None,
        },
        token_hash: row.get("token_hash")?,
    })
}

fn with_lines(conn: &Connection, mut record: CartRecord) -> rusqlite::Result<CartRecord> {
    let lines = load_lines(conn, record.cart.id.as_str())?;
    let cart = &mut record.cart;
    cart.item_count = lines.iter().map(|l| l.item.quantity).sum();
    cart.subtotal_cents = lines.iter().map(|l| l.item.line_total_cents).sum();
    cart.items = lines.into_iter().map(|l| l.item).collect();
    cart.discount_codes = super::pricing::cart_codes(conn, cart.id.as_str())?;
    Ok(record)
}

fn find_cart(conn: &Connection, filter: &str, key: &str) -> rusqlite::Result<Option<CartRecord>> {
    let found = conn
        .prepare_cached(&format!("SELECT {CART_COLUMNS} FROM carts WHERE {filter}"))?
        .query_row([key], cart_row)
        .optional()?;
    found.map(|record| with_lines(conn, record)).transpose()
}

pub(super) fn read_cart(conn: &Connection, id: &str) -> rusqlite::Result<Option<CartRecord>> {
    find_cart(conn, "id = ?1", id)
}

fn set_cart_state(
    tx: &Transaction<'_>,
    id: &str,
    status: CartStatus,
    expires_at: Option<OffsetDateTime>,
) -> StoreResult<()> {
    tx.prepare_cached(
        "UPDATE carts SET status = ?2, version = version + 1,
                expires_at = coalesce(?3, expires_at), updated_at = ?4
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        status.as_str(),
        expires_at.map(millis),
        millis(now())
    ])?;
    Ok(())
}

/// Ends an active cart whose time ran out: its stock goes back and it is `expired`.
fn expire_cart(
    tx: &Transaction<'_>,
    record: &CartRecord,
    events: CommerceEvents,
    pending: &mut Vec<NewEvent>,
) -> StoreResult<()> {
    for line in load_lines(tx, record.cart.id.as_str())? {
        if let Some(effect) =
            finish_active(tx, &line.reservation_id, ReservationStatus::Expired, None)?
        {
            pending.extend((events.stock)(&effect));
        }
    }
    set_cart_state(tx, record.cart.id.as_str(), CartStatus::Expired, None)?;
    if let Some(expired) = read_cart(tx, record.cart.id.as_str())? {
        pending.push((events.cart)(EventData::CartExpired, &expired.cart));
    }
    Ok(())
}

/// Marks a cart `checked_out` once an order has taken over its lines and
/// their reservations.
pub(super) fn check_out_cart(
    tx: &Transaction<'_>,
    id: &str,
    events: CommerceEvents,
    pending: &mut Vec<NewEvent>,
) -> StoreResult<()> {
    set_cart_state(tx, id, CartStatus::CheckedOut, None)?;
    if let Some(record) = read_cart(tx, id)? {
        pending.push((events.cart)(EventData::CartCheckedOut, &record.cart));
    }
    Ok(())
}

/// Gives a cart's lines today's prices, as a new version of the cart, and
/// logs the change: the customer sees the new prices before they pay them.
pub(super) fn reprice_cart(
    tx: &Transaction<'_>,
    id: &str,
    changes: &[rules::PriceChange],
    events: CommerceEvents,
) -> StoreResult<()> {
    for change in changes {
        tx.prepare_cached(
            "UPDATE cart_items SET unit_price_cents = ?3 WHERE cart_id = ?1 AND sku = ?2",
        )?
        .execute(params![id, change.sku, change.now_cents])?;
    }
    set_cart_state(tx, id, CartStatus::Active, None)?;
    let record = read_cart(tx, id)?
        .ok_or_else(|| crate::store::StoreError::Backend("cart vanished mid-change".into()))?;
    append(
        tx,
        vec![(events.cart)(EventData::CartUpdated, &record.cart)],
    )?;
    Ok(())
}

/// A cart's lines with their reservation ids, for a checkout to take over.
pub(super) fn cart_lines(conn: &Connection, id: &str) -> rusqlite::Result<Vec<(CartItem, String)>> {
    Ok(load_lines(conn, id)?
        .into_iter()
        .map(|l| (l.item, l.reservation_id))
        .collect())
}

/// Whether every line of the cart still holds its stock.
pub(super) fn lines_held(tx: &Transaction<'_>, id: &str) -> StoreResult<bool> {
    for line in load_lines(tx, id)? {
        if active_reservation(tx, &line.reservation_id)?.is_none() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Checks that an existing cart can change now: `Err` with the answer when not.
fn check_changeable(
    tx: &Transaction<'_>,
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
            expire_cart(tx, record, events, pending)?;
            Ok(Err(CartWrite::NotActive(CartStatus::Expired)))
        }
        Err(rules::Unchangeable::VersionConflict { current }) => {
            Ok(Err(CartWrite::VersionConflict { current }))
        }
    }
}

fn insert_line(
    tx: &Transaction<'_>,
    cart: &str,
    item: &ReserveItem,
    product: &ProductFacts,
    reservation_id: &str,
    position: i64,
) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO cart_items (cart_id, sku, name, quantity, unit_price_cents, reservation_id, position)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        cart,
        item.sku,
        product.name,
        item.quantity,
        product.price_cents,
        reservation_id,
        position
    ])?;
    Ok(())
}

/// Checks that `sku`'s line at `quantity` keeps the cart within its limits.
fn check_limits(
    tx: &Transaction<'_>,
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
    let cap = product_info(tx, sku)?.and_then(|p| p.max_per_cart);
    Ok(rules::check_quantities(
        sku,
        quantity,
        cap,
        others + quantity,
        context.limits,
    ))
}

/// Applies one change to an active cart's lines and their stock: `Ok(true)`
/// when it changed something, `Err` with the refusal when it cannot apply.
/// A refusal may come after part of an [`CartChange::AddAll`] was written;
/// the caller rolls that back.
fn apply_change(
    tx: &Transaction<'_>,
    record: &CartRecord,
    change: CartChange,
    context: &ChangeContext,
    effects: &mut Vec<StockEffect>,
) -> StoreResult<Result<bool, LineRefusal>> {
    let cart = record.cart.id.as_str();
    let lines = load_lines(tx, cart)?;
    let line_of = |sku: &str| lines.iter().find(|l| l.item.sku == sku);
    let hold = || Hold {
        expires_at: context.expires_at,
        reference: Some(cart.to_owned()),
        actor: context.actor.clone(),
    };
    match change {
        CartChange::AddAll(items) => {
            for item in items {
                let add = CartChange::Add {
                    sku: item.sku,
                    quantity: item.quantity,
                };
                if let Err(refusal) = apply_change(tx, record, add, context, effects)? {
                    return Ok(Err(refusal));
                }
            }
            return Ok(Ok(true));
        }
        CartChange::Add { sku, quantity } => {
            if let Some(line) = line_of(&sku) {
                let total = line.item.quantity.saturating_add(quantity);
                if let Err(refusal) = check_limits(tx, &lines, &sku, total, context)? {
                    return Ok(Err(refusal));
                }
                return set_quantity(tx, cart, line, total, context, effects);
            }
            if let Err(refusal) = rules::check_room(lines.len()) {
                return Ok(Err(refusal));
            }
            if let Err(refusal) = check_limits(tx, &lines, &sku, quantity, context)? {
                return Ok(Err(refusal));
            }
            let item = ReserveItem { sku, quantity };
            let currency = (!lines.is_empty()).then_some(record.cart.currency);
            let products = match check_lines(tx, std::slice::from_ref(&item), currency)? {
                Ok(products) => products,
                Err(refusal) => return Ok(Err(refusal)),
            };
            let product = &products[0];
            let effect = reserve_checked(tx, &item, hold())?;
            let reservation = effect
                .reservation
                .as_ref()
                .expect("a reservation's effect carries it")
                .id
                .to_string();
            let position = lines.iter().map(|l| l.position).max().unwrap_or(0) + 1;
            insert_line(tx, cart, &item, product, &reservation, position)?;
            if lines.is_empty() {
                tx.prepare_cached("UPDATE carts SET currency = ?2 WHERE id = ?1")?
                    .execute(params![cart, product.currency.code()])?;
            }
            effects.push(effect);
        }
        CartChange::Set { sku, quantity } => {
            let Some(line) = line_of(&sku) else {
                return Ok(Err(LineRefusal::NoLine(sku)));
            };
            if quantity == 0 {
                remove_line(tx, cart, line, context, effects)?;
            } else {
                if quantity > line.item.quantity
                    && let Err(refusal) = check_limits(tx, &lines, &sku, quantity, context)?
                {
                    return Ok(Err(refusal));
                }
                return set_quantity(tx, cart, line, quantity, context, effects);
            }
        }
        CartChange::Remove { sku } => {
            let Some(line) = line_of(&sku) else {
                return Ok(Err(LineRefusal::NoLine(sku)));
            };
            remove_line(tx, cart, line, context, effects)?;
        }
        CartChange::Clear => {
            for line in &lines {
                remove_line(tx, cart, line, context, effects)?;
            }
            return Ok(Ok(!lines.is_empty()));
        }
        CartChange::Checkout(checkout) => {
            if *checkout == record.cart.checkout {
                return Ok(Ok(false));
            }
            tx.prepare_cached("UPDATE carts SET checkout = ?2 WHERE id = ?1")?
                .execute(params![
                    cart,
                    serde_json::to_string(&checkout).map_err(backend)?
                ])?;
        }
    }
    Ok(Ok(true))
}

fn set_quantity(
    tx: &Transaction<'_>,
    cart: &str,
    line: &Line,
    quantity: i64,
    context: &ChangeContext,
    effects: &mut Vec<StockEffect>,
) -> StoreResult<Result<bool, LineRefusal>> {
    if quantity == line.item.quantity {
        return Ok(Ok(false));
    }
    let effect = match active_reservation(tx, &line.reservation_id)? {
        Some(reservation) => {
            match resize_reservation(tx, &reservation, quantity, context.actor.clone())? {
                Ok(effect) => effect,
                Err(refusal) => return Ok(Err(refusal.into())),
            }
        }
        // The hold ran out under a live cart (a sweep raced a change): hold the line anew.
        None => {
            let item = ReserveItem {
                sku: line.item.sku.clone(),
                quantity,
            };
            let hold = Hold {
                expires_at: context.expires_at,
                reference: Some(cart.to_owned()),
                actor: context.actor.clone(),
            };
            match reserve_one(tx, &item, hold)? {
                Ok(effect) => effect,
                Err(refusal) => return Ok(Err(refusal.into())),
            }
        }
    };
    let reservation = effect
        .reservation
        .as_ref()
        .expect("a reservation's effect carries it")
        .id
        .to_string();
    tx.prepare_cached(
        "UPDATE cart_items SET quantity = ?3, reservation_id = ?4 WHERE cart_id = ?1 AND sku = ?2",
    )?
    .execute(params![cart, line.item.sku, quantity, reservation])?;
    effects.push(effect);
    Ok(Ok(true))
}

fn remove_line(
    tx: &Transaction<'_>,
    cart: &str,
    line: &Line,
    context: &ChangeContext,
    effects: &mut Vec<StockEffect>,
) -> StoreResult<()> {
    if let Some(effect) = finish_active(
        tx,
        &line.reservation_id,
        ReservationStatus::Released,
        context.actor.clone(),
    )? {
        effects.push(effect);
    }
    tx.prepare_cached("DELETE FROM cart_items WHERE cart_id = ?1 AND sku = ?2")?
        .execute(params![cart, line.item.sku])?;
    Ok(())
}

/// Bumps the version, extends the cart's life and its lines' holds, and
/// logs the change with the stock events it caused.
fn finish_change(
    tx: &Transaction<'_>,
    id: &str,
    kind: MakeEvent<CartEvent>,
    context: &ChangeContext,
    effects: Vec<StockEffect>,
    events: CommerceEvents,
    mut pending: Vec<NewEvent>,
) -> StoreResult<CartWrite> {
    set_cart_state(tx, id, CartStatus::Active, Some(context.expires_at))?;
    let reservations: Vec<String> = load_lines(tx, id)?
        .into_iter()
        .map(|l| l.reservation_id)
        .collect();
    extend_reservations(tx, &reservations, context.expires_at, id)?;
    let record = read_cart(tx, id)?
        .ok_or_else(|| crate::store::StoreError::Backend("cart vanished mid-change".into()))?;
    for effect in &effects {
        pending.extend((events.stock)(effect));
    }
    pending.push((events.cart)(kind, &record.cart));
    append(tx, pending)?;
    Ok(CartWrite::Written(Box::new(record)))
}

#[async_trait]
impl CartStore for SqliteStore {
    async fn create_cart(
        &self,
        new: NewCartRecord,
        actor: Option<String>,
        events: CommerceEvents,
    ) -> StoreResult<CartWrite> {
        self.write(move |tx| {
            let lines = demand_per_sku(&new.lines);
            if let Err(refusal) = rules::check_line_count(lines.len()) {
                return Ok(CartWrite::Refused(refusal));
            }
            if let Some((address, max)) = &new.client {
                let held: i64 = tx
                    .prepare_cached(
                        "SELECT count(*) FROM carts
                         WHERE client_ip = ?1 AND status = 'active' AND expires_at > ?2",
                    )?
                    .query_row(params![address, millis(now())], |row| row.get(0))?;
                if let Err(refusal) = rules::check_carts_per_address(held.unsigned_abs(), *max) {
                    return Ok(CartWrite::Refused(refusal));
                }
            }
            let products = match check_lines(tx, &lines, None)? {
                Ok(products) => products,
                Err(refusal) => return Ok(CartWrite::Refused(refusal)),
            };
            if let Err(refusal) = rules::check_all_quantities(&lines, &products, new.limits) {
                return Ok(CartWrite::Refused(refusal));
            }
            let currency = rules::currency_of(products.first().map(|p| p.currency));
            let at = now();
            let id = new.id.as_str();
            tx.prepare_cached(
                "INSERT INTO carts (id, user_id, token_hash, status, currency, version, expires_at,
                     created_at, updated_at, client_ip)
                 VALUES (?1, ?2, ?3, 'active', ?4, 0, ?5, ?6, ?6, ?7)",
            )?
            .execute(params![
                id,
                new.user_id.as_ref().map(UserId::as_str),
                new.token_hash,
                currency.code(),
                millis(new.expires_at),
                millis(at),
                new.client.as_ref().map(|(address, _)| address)
            ])
            .map_err(|err| {
                if super::is_unique_violation(&err) {
                    crate::store::StoreError::Duplicate {
                        entity: "active cart",
                        field: "user",
                    }
                } else {
                    err.into()
                }
            })?;
            let mut effects = Vec::with_capacity(lines.len());
            for (position, (line, product)) in lines.iter().zip(&products).enumerate() {
                let hold = Hold {
                    expires_at: new.expires_at,
                    reference: Some(id.to_owned()),
                    actor: actor.clone(),
                };
                let effect = reserve_checked(tx, line, hold)?;
                let reservation = effect
                    .reservation
                    .as_ref()
                    .expect("a reservation's effect carries it")
                    .id
                    .to_string();
                insert_line(tx, id, line, product, &reservation, position as i64 + 1)?;
                effects.push(effect);
            }
            let context = ChangeContext {
                actor,
                expires_at: new.expires_at,
                limits: new.limits,
            };
            finish_change(
                tx,
                id,
                EventData::CartCreated,
                &context,
                effects,
                events,
                Vec::new(),
            )
        })
        .await
    }

    async fn cart(&self, id: &CartId) -> StoreResult<Option<CartRecord>> {
        let id = id.clone();
        self.read(move |conn| read_cart(conn, id.as_str())).await
    }

    async fn active_cart_of(&self, user: &UserId) -> StoreResult<Option<CartRecord>> {
        let user = user.clone();
        self.read(move |conn| find_cart(conn, "user_id = ?1 AND status = 'active'", user.as_str()))
            .await
    }

    async fn cart_by_token(&self, token_hash: &str) -> StoreResult<Option<CartRecord>> {
        let hash = token_hash.to_owned();
        self.read(move |conn| find_cart(conn, "token_hash = ?1", &hash))
            .await
    }

    async fn change_cart(
        &self,
        id: &CartId,
        change: CartChange,
        expected_version: Option<u64>,
        context: ChangeContext,
        events: CommerceEvents,
    ) -> StoreResult<CartWrite> {
        let id = id.clone();
        self.write(move |tx| {
            let Some(record) = read_cart(tx, id.as_str())? else {
                return Ok(CartWrite::NotFound);
            };
            let mut pending = Vec::new();
            if let Err(answer) =
                check_changeable(tx, &record, expected_version, events, &mut pending)?
            {
                append(tx, pending)?;
                return Ok(answer);
            }
            let mut effects = Vec::new();
            // A change of several lines is all or nothing: a refusal of a
            // later line undoes the earlier ones and their holds.
            tx.execute_batch("SAVEPOINT cart_change")?;
            let changed = match apply_change(tx, &record, change, &context, &mut effects)? {
                Ok(changed) => changed,
                Err(refusal) => {
                    tx.execute_batch("ROLLBACK TO cart_change; RELEASE cart_change")?;
                    return Ok(CartWrite::Refused(refusal));
                }
            };
            tx.execute_batch("RELEASE cart_change")?;
            if !changed {
                // Nothing changed: no new version, and the holds are not
                // extended (a no-op repeated must not keep stock forever).
                return Ok(CartWrite::Unchanged(Box::new(record)));
            }
            finish_change(
                tx,
                id.as_str(),
                EventData::CartUpdated,
                &context,
                effects,
                events,
                pending,
            )
        })
        .await
    }

    async fn merge_cart(
        &self,
        from: &CartId,
        user: &UserId,
        context: ChangeContext,
        events: CommerceEvents,
    ) -> StoreResult<CartWrite> {
        let (from, user) = (from.clone(), user.clone());
        self.write(move |tx| {
            let Some(source) = read_cart(tx, from.as_str())? else {
                return Ok(CartWrite::NotFound);
            };
            let mut pending = Vec::new();
            if let Err(answer) = check_changeable(tx, &source, None, events, &mut pending)? {
                append(tx, pending)?;
                return Ok(answer);
            }
            let target = find_cart(tx, "user_id = ?1 AND status = 'active'", user.as_str())?;
            let Some(target) = target.filter(|t| t.cart.id != source.cart.id) else {
                // No cart of their own: the anonymous cart becomes theirs.
                tx.prepare_cached(
                    "UPDATE carts SET user_id = ?2, token_hash = NULL WHERE id = ?1",
                )?
                .execute(params![from.as_str(), user.as_str()])?;
                return finish_change(
                    tx,
                    from.as_str(),
                    EventData::CartMerged,
                    &context,
                    Vec::new(),
                    events,
                    pending,
                );
            };
            let into = target.cart.id.as_str();
            if let Err(refusal) = rules::check_merge(
                (target.cart.currency, target.cart.items.is_empty()),
                (source.cart.currency, source.cart.items.is_empty()),
                source.cart.items.first().map(|item| item.sku.as_str()),
            ) {
                return Ok(CartWrite::Refused(refusal));
            }
            // The merged cart keeps the caps too, or two carts at the cap
            // would make one over it.
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
                let cap = product_info(tx, &line.sku)?.and_then(|p| p.max_per_cart);
                if let Err(refusal) =
                    rules::check_quantities(&line.sku, line.quantity, cap, total, context.limits)
                {
                    return Ok(CartWrite::Refused(refusal));
                }
            }
            let target_lines = load_lines(tx, into)?;
            let mut position = target_lines.iter().map(|l| l.position).max().unwrap_or(0);
            let mut effects = Vec::new();
            for line in load_lines(tx, from.as_str())? {
                match target_lines.iter().find(|t| t.item.sku == line.item.sku) {
                    Some(existing) => {
                        // Release first: the units come back to available, so the
                        // target's hold can always grow by them.
                        if let Some(effect) = finish_active(
                            tx,
                            &line.reservation_id,
                            ReservationStatus::Released,
                            context.actor.clone(),
                        )? {
                            effects.push(effect);
                        }
                        tx.prepare_cached(
                            "DELETE FROM cart_items WHERE cart_id = ?1 AND sku = ?2",
                        )?
                        .execute(params![from.as_str(), line.item.sku])?;
                        let total = existing.item.quantity + line.item.quantity;
                        if let Err(refusal) =
                            set_quantity(tx, into, existing, total, &context, &mut effects)?
                        {
                            return Err(crate::store::StoreError::Backend(
                                format!("merging a released line failed: {refusal:?}").into(),
                            ));
                        }
                    }
                    None => {
                        position += 1;
                        tx.prepare_cached(
                            "UPDATE cart_items SET cart_id = ?3, position = ?4
                             WHERE cart_id = ?1 AND sku = ?2",
                        )?
                        .execute(params![
                            from.as_str(),
                            line.item.sku,
                            into,
                            position
                        ])?;
                    }
                }
            }
            if target.cart.items.is_empty() {
                tx.prepare_cached("UPDATE carts SET currency = ?2 WHERE id = ?1")?
                    .execute(params![into, source.cart.currency.code()])?;
            }
            set_cart_state(tx, from.as_str(), CartStatus::Merged, None)?;
            finish_change(
                tx,
                into,
                EventData::CartMerged,
                &context,
                effects,
                events,
                pending,
            )
        })
        .await
    }

    async fn expire_carts(
        &self,
        now: OffsetDateTime,
        limit: u32,
        events: CommerceEvents,
    ) -> StoreResult<u64> {
        self.write(move |tx| {
            let due = tx
                .prepare_cached(&format!(
                    "SELECT {CART_COLUMNS} FROM carts
                     WHERE status = 'active' AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2"
                ))?
                .query_map(params![millis(now), limit], cart_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut pending = Vec::new();
            for record in &due {
                expire_cart(tx, record, events, &mut pending)?;
            }
            append(tx, pending)?;
            Ok(due.len() as u64)
        })
        .await
    }
}
