//! The pricing steps: staff keep the shipping zones and tax rates, and
//! anyone signed in asks for a quote. Each step checks its input with the
//! pure functions of [`super::tables`], [`super::address`] and
//! [`super::rules`], then lets the store read or write.

use serde_json::json;
use shop_wire::cart::{Cart, CartId, CartStatus, LineRequest};
use shop_wire::events::EventData;
use shop_wire::pricing::{
    ApplyDiscount, Discount, DiscountId, NewDiscount, NewShippingZone, NewTaxRate, PostalAddress,
    Quote, QuoteRequest, ShippingZone, ShippingZoneId, TaxRate, TaxRateId,
};

use super::address::check_address;
use super::address_book;
use super::rules::{self, CheckoutPrice, DiscountRefusal, PricingRefusal, Unpriced, Wanted};
use super::tables::{check_country, check_discount, check_discount_code, check_rate, check_zone};
use crate::auth::AuthUser;
use crate::services::cart::domain::{check_line, not_active, refusal_error};
use crate::services::error::{DomainError, DomainResult};
use crate::services::users::domain::get_user;
use crate::state::AppState;
use crate::store::{Checkout, ClaimRefusal, DiscountKey, NewEvent, PricingQuery, StoreError, now};

/// The most lines one quote may have, as an order.
const MAX_LINES: usize = 100;

pub async fn zones(state: &AppState) -> DomainResult<Vec<ShippingZone>> {
    Ok(state
        .store
        .pricing_context(PricingQuery::default())
        .await?
        .zones)
}

pub async fn create_zone(state: &AppState, request: NewShippingZone) -> DomainResult<ShippingZone> {
    let checked = check_zone(request)?;
    let zone = ShippingZone {
        id: ShippingZoneId::generate(),
        name: checked.name,
        countries: checked.countries,
        currency: checked.currency,
        methods: checked.methods,
        created_at: now(),
    };
    let events = vec![NewEvent::now(EventData::ShippingZoneCreated(zone.clone()))];
    match state.store.insert_shipping_zone(&zone, events).await {
        Ok(()) => Ok(zone),
        Err(StoreError::Duplicate {
            field: "country", ..
        }) => Err(DomainError::Conflict {
            code: "country_in_another_zone",
            message: "a country of this zone is already shipped to by another zone; \
                      a country belongs to one zone"
                .to_owned(),
            details: json!({ "countries": zone.countries }),
        }),
        Err(err) => Err(err.into()),
    }
}

pub async fn delete_zone(state: &AppState, raw: &str) -> DomainResult<ShippingZone> {
    let not_found = || DomainError::not_found(format!("shipping zone {raw}"));
    let id: ShippingZoneId = raw.parse().map_err(|_| not_found())?;
    state
        .store
        .delete_shipping_zone(&id, |zone| {
            vec![NewEvent::now(EventData::ShippingZoneDeleted(zone.clone()))]
        })
        .await?
        .ok_or_else(not_found)
}

pub async fn rates(state: &AppState) -> DomainResult<Vec<TaxRate>> {
    Ok(state
        .store
        .pricing_context(PricingQuery::default())
        .await?
        .rates)
}

pub async fn create_rate(state: &AppState, request: NewTaxRate) -> DomainResult<TaxRate> {
    let (checked, rate_bps) = check_rate(request)?;
    let rate = TaxRate {
        id: TaxRateId::generate(),
        country: checked.country,
        region: checked.region,
        name: checked.name,
        rate_bps,
        tax_category: checked.tax_category,
        created_at: now(),
    };
    let events = vec![NewEvent::now(EventData::TaxRateCreated(rate.clone()))];
    match state.store.insert_tax_rate(&rate, events).await {
        Ok(()) => Ok(rate),
        Err(StoreError::Duplicate { .. }) => Err(DomainError::Conflict {
            code: "tax_rate_exists",
            message: "a rate for this country, region and tax category exists; remove it first"
                .to_owned(),
            details: json!({
                "country": rate.country,
                "region": rate.region,
                "tax_category": rate.tax_category,
            }),
        }),
        Err(err) => Err(err.into()),
    }
}

pub async fn delete_rate(state: &AppState, raw: &str) -> DomainResult<TaxRate> {
    let not_found = || DomainError::not_found(format!("tax rate {raw}"));
    let id: TaxRateId = raw.parse().map_err(|_| not_found())?;
    state
        .store
        .delete_tax_rate(&id, |rate| {
            vec![NewEvent::now(EventData::TaxRateDeleted(rate.clone()))]
        })
        .await?
        .ok_or_else(not_found)
}

/// The lines a quote prices: explicit items at today's prices, or a cart
/// the caller may see at the prices it froze (with the cart).
async fn wanted(
    state: &AppState,
    caller: &AuthUser,
    cart_id: Option<&CartId>,
    items: &[LineRequest],
) -> DomainResult<Vec<Wanted>> {
    match (cart_id, items.is_empty()) {
        (Some(_), false) => Err(DomainError::validation(
            "items",
            "give either cart_id or items, not both",
        )),
        (None, true) => Err(DomainError::validation(
            "items",
            "quote at least one item, or give a cart_id",
        )),
        (None, false) => {
            if items.len() > MAX_LINES {
                return Err(DomainError::validation(
                    "items",
                    format!("an order has at most {MAX_LINES} lines"),
                ));
            }
            items
                .iter()
                .map(|line| {
                    let line = check_line(&line.sku, line.quantity, false)?;
                    Ok(Wanted {
                        sku: line.sku,
                        quantity: line.quantity,
                        unit_price_cents: None,
                    })
                })
                .collect()
        }
        (Some(cart_id), true) => {
            let cart = visible_cart(state, caller, cart_id).await?;
            if cart.items.is_empty() {
                return Err(DomainError::conflict(
                    "cart_empty",
                    "the cart has no items to price",
                ));
            }
            Ok(cart
                .items
                .into_iter()
                .map(|item| Wanted {
                    sku: item.sku,
                    quantity: item.quantity,
                    unit_price_cents: Some(item.unit_price_cents),
                })
                .collect())
        }
    }
}

/// A cart its owner (or staff) may price; anyone else does not see it.
async fn visible_cart(state: &AppState, caller: &AuthUser, id: &CartId) -> DomainResult<Cart> {
    state
        .store
        .cart(id)
        .await?
        .map(|record| record.cart)
        .filter(|cart| caller.role.is_staff() || cart.user_id.as_ref() == Some(&caller.user_id))
        .ok_or_else(|| DomainError::not_found(format!("cart {id}")))
}

/// What a checkout or a quote asks besides its lines.
#[derive(Clone, Debug, Default)]
pub struct Asked {
    pub shipping_address: Option<PostalAddress>,
    /// A quote's destination without a full address: a country and region.
    pub destination: Option<(String, Option<String>)>,
    pub billing_address: Option<PostalAddress>,
    pub shipping_method: Option<String>,
    pub discount_codes: Vec<String>,
}

/// The most codes one order may give.
const MAX_CODES: usize = 10;

/// Where an order goes and how, its addresses checked, with the shop's
/// pricing settings and the tables it is priced by (read here, off the one
/// writer) for `customer_email`'s order of `skus` (from `cart`).
pub async fn checkout(
    state: &AppState,
    asked: Asked,
    skus: Vec<String>,
    cart: Option<CartId>,
    customer_email: &str,
) -> DomainResult<Checkout> {
    let address = |at: &str, given: Option<PostalAddress>| {
        given.map(|address| check_address(at, address)).transpose()
    };
    let mut shipping_address = address("shipping_address", asked.shipping_address)?;
    if let (None, Some((country, region))) = (&shipping_address, asked.destination) {
        let region = region
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        if region
            .as_ref()
            .is_some_and(|r| r.chars().count() > 100 || r.chars().any(char::is_control))
        {
            return Err(DomainError::validation(
                "region",
                "must be at most 100 characters, without control characters",
            ));
        }
        // Only what pricing looks at; it is never stored.
        shipping_address = Some(PostalAddress {
            country: check_country("country", &country)?,
            region,
            ..PostalAddress::default()
        });
    }
    let billing_address = address("billing_address", asked.billing_address)?;
    if asked.discount_codes.len() > MAX_CODES {
        return Err(DomainError::validation(
            "discount_codes",
            format!("at most {MAX_CODES} codes"),
        ));
    }
    let query = PricingQuery {
        skus,
        codes: asked.discount_codes.clone(),
        cart,
        customer_email: Some(customer_email.to_owned()),
    };
    Ok(Checkout {
        context: state.store.pricing_context(query).await?,
        discount_codes: asked.discount_codes,
        shipping_address,
        billing_address,
        shipping_method: asked.shipping_method,
        tax_inclusive: state.config.pricing.tax_inclusive_currencies.clone(),
        shipping_taxable: state.config.pricing.shipping_taxable,
    })
}

/// The error for a price that cannot be made as asked.
pub fn pricing_error(refusal: PricingRefusal) -> DomainError {
    match refusal {
        PricingRefusal::NoDestination => DomainError::rejected(
            "shipping_address_required",
            "shipping_address",
            "the order is shipped: give the address to ship to",
        ),
        PricingRefusal::NoMethod => DomainError::rejected(
            "shipping_method_required",
            "shipping_method",
            "the order is shipped: choose a shipping method (a quote lists them)",
        ),
        PricingRefusal::MethodUnavailable { code, country } => DomainError::rejected(
            "shipping_method_unavailable",
            "shipping_method",
            format!(
                "`{code}` does not ship these goods to {country}; the quote lists the methods that do"
            ),
        ),
        PricingRefusal::CurrencyMismatch { zone, order } => DomainError::Conflict {
            code: "currency_mismatch",
            message: format!(
                "shipping to this address is priced in {zone}, but the goods are in {order}"
            ),
            details: json!({ "zone_currency": zone, "currency": order }),
        },
    }
}

/// The error for a discount code that does not apply.
pub fn discount_error(refusal: DiscountRefusal) -> DomainError {
    let conflict =
        |code: &'static str, message: String, details: serde_json::Value| DomainError::Conflict {
            code,
            message,
            details,
        };
    match refusal {
        DiscountRefusal::Unknown(code) => DomainError::Missing {
            code: "unknown_discount",
            message: format!("no discount has the code {code}"),
        },
        DiscountRefusal::AppliedTwice(code) => DomainError::rejected(
            "discount_already_applied",
            "discount_codes",
            format!("{code} is applied already; a code counts once"),
        ),
        DiscountRefusal::Disabled(code) => conflict(
            "discount_disabled",
            format!("{code} was disabled"),
            json!({ "code": code }),
        ),
        DiscountRefusal::NotStarted(code) => conflict(
            "discount_not_started",
            format!("{code} is not valid yet"),
            json!({ "code": code }),
        ),
        DiscountRefusal::Expired(code) => conflict(
            "discount_expired",
            format!("{code} has expired"),
            json!({ "code": code }),
        ),
        DiscountRefusal::LimitReached(code) => conflict(
            "discount_limit_reached",
            format!("{code} has been used as often as it may be"),
            json!({ "code": code }),
        ),
        DiscountRefusal::CustomerLimitReached(code) => conflict(
            "discount_customer_limit_reached",
            format!("you have used {code} as often as one customer may"),
            json!({ "code": code }),
        ),
        DiscountRefusal::MinimumNotMet {
            code,
            min_subtotal_cents,
        } => conflict(
            "discount_minimum_not_met",
            format!("{code} needs a subtotal of at least {min_subtotal_cents} (minor units)"),
            json!({ "code": code, "min_subtotal_cents": min_subtotal_cents }),
        ),
        DiscountRefusal::CurrencyMismatch { code, currency } => conflict(
            "currency_mismatch",
            format!("{code} takes off an amount in {currency}, another currency than the order's"),
            json!({ "code": code, "discount_currency": currency }),
        ),
    }
}

/// The error for any reason a checkout cannot be priced.
pub fn unpriced_error(unpriced: Unpriced) -> DomainError {
    match unpriced {
        Unpriced::Line(refusal) => refusal_error(refusal),
        Unpriced::Pricing(refusal) => pricing_error(refusal),
        Unpriced::Discount(refusal) => discount_error(refusal),
    }
}

/// The error for a discount whose uses ran out while the order was placed.
pub fn used_up_error(refusal: ClaimRefusal) -> DomainError {
    let (code, message, id) = match refusal {
        ClaimRefusal::LimitReached(id) => (
            "discount_limit_reached",
            "a discount of the order has been used as often as it may be",
            id,
        ),
        ClaimRefusal::CustomerLimitReached(id) => (
            "discount_customer_limit_reached",
            "you have used a discount of the order as often as one customer may",
            id,
        ),
    };
    DomainError::Conflict {
        code,
        message: message.to_owned(),
        details: json!({ "discount_id": id }),
    }
}

fn quote_of(price: CheckoutPrice) -> Quote {
    let priced = price.priced;
    Quote {
        currency: price.currency,
        subtotal_cents: priced.subtotal_cents,
        discount_cents: priced.discount_cents,
        shipping_cents: priced.shipping_cents,
        tax_cents: priced.tax_cents,
        total_cents: priced.total_cents,
        prices_include_tax: price.prices_include_tax,
        tax_lines: priced.tax_lines,
        discounts: priced.discounts,
        shipping_method: priced.shipping,
        shipping_methods: priced.options,
    }
}

/// Prices an order without placing it, by the same rules and the same
/// path as the checkout: nothing is held, written or charged.
pub async fn quote(
    state: &AppState,
    caller: &AuthUser,
    request: QuoteRequest,
) -> DomainResult<Quote> {
    let wanted = wanted(state, caller, request.cart_id.as_ref(), &request.items).await?;
    let email = get_user(state, &caller.user_id).await?.email;
    let asked = Asked {
        shipping_address: request.shipping_address,
        destination: request.country.map(|country| (country, request.region)),
        billing_address: request.billing_address,
        shipping_method: request.shipping_method,
        discount_codes: request.discount_codes,
    };
    let cart_checkout = match &request.cart_id {
        Some(id) => Some(visible_cart(state, caller, id).await?.checkout),
        None => None,
    };
    let saved = [request.shipping_address_id, request.billing_address_id];
    let asked = address_book::complete(state, &caller.user_id, asked, saved, cart_checkout).await?;
    let skus = wanted.iter().map(|w| w.sku.clone()).collect();
    let checkout = checkout(state, asked, skus, request.cart_id, &email).await?;
    let price = rules::price_checkout(&checkout, &wanted, false, now()).map_err(unpriced_error)?;
    Ok(quote_of(price))
}

pub async fn discounts(state: &AppState) -> DomainResult<Vec<Discount>> {
    Ok(state.store.discounts().await?)
}

pub async fn create_discount(state: &AppState, request: NewDiscount) -> DomainResult<Discount> {
    let checked = check_discount(request)?;
    let discount = Discount {
        id: DiscountId::generate(),
        code: checked.code,
        kind: checked.kind,
        value: checked.value,
        currency: checked.currency,
        min_subtotal_cents: checked.min_subtotal_cents,
        starts_at: checked.starts_at,
        ends_at: checked.ends_at,
        usage_limit: checked.usage_limit,
        per_customer_limit: checked.per_customer_limit,
        automatic: checked.automatic,
        active: true,
        times_used: 0,
        created_at: now(),
    };
    let events = vec![NewEvent::now(EventData::DiscountCreated(discount.clone()))];
    match state.store.insert_discount(&discount, events).await {
        Ok(()) => Ok(discount),
        Err(StoreError::Duplicate { .. }) => Err(DomainError::Conflict {
            code: "discount_code_exists",
            message: "another discount has this code".to_owned(),
            details: json!({ "code": discount.code }),
        }),
        Err(err) => Err(err.into()),
    }
}

fn discount_key(raw: &str) -> DiscountKey {
    match raw.parse::<DiscountId>() {
        Ok(id) => DiscountKey::Id(id),
        Err(_) => DiscountKey::Code(raw.to_owned()),
    }
}

/// A discount by id or code.
pub async fn discount(state: &AppState, raw: &str) -> DomainResult<Discount> {
    state
        .store
        .discount(&discount_key(raw))
        .await?
        .ok_or_else(|| DomainError::not_found(format!("discount {raw}")))
}

pub async fn disable_discount(state: &AppState, raw: &str) -> DomainResult<Discount> {
    let found = discount(state, raw).await?;
    state
        .store
        .disable_discount(&found.id, |discount| {
            vec![NewEvent::now(EventData::DiscountDisabled(discount.clone()))]
        })
        .await?
        .ok_or_else(|| DomainError::not_found(format!("discount {raw}")))
}

/// Applies a code to a cart, for its checkout: refused as an order would
/// refuse it (unknown, expired, used up, minimum not met), and refused when
/// the cart has it already. Answers the cart's price with it.
pub async fn apply_to_cart(
    state: &AppState,
    caller: &AuthUser,
    raw_cart: &str,
    request: ApplyDiscount,
) -> DomainResult<Quote> {
    let not_found = || DomainError::not_found(format!("cart {raw_cart}"));
    let cart_id: CartId = raw_cart.parse().map_err(|_| not_found())?;
    let cart = visible_cart(state, caller, &cart_id).await?;
    if cart.status != CartStatus::Active {
        return Err(not_active(raw_cart, cart.status));
    }
    let code = check_discount_code("code", &request.code)?;
    let wanted = wanted(state, caller, Some(&cart_id), &[]).await?;
    let email = get_user(state, &caller.user_id).await?.email;
    let skus = wanted.iter().map(|w| w.sku.clone()).collect();
    let asked = Asked {
        discount_codes: vec![code.clone()],
        ..Asked::default()
    };
    // Priced as its checkout will be: with the address and method it keeps.
    let asked = address_book::complete(
        state,
        &caller.user_id,
        asked,
        [None, None],
        Some(cart.checkout),
    )
    .await?;
    let checkout = checkout(state, asked, skus, Some(cart_id.clone()), &email).await?;
    if checkout.context.cart_codes.contains(&code) {
        return Err(discount_error(DiscountRefusal::AppliedTwice(code)));
    }
    let price = rules::price_checkout(&checkout, &wanted, false, now()).map_err(unpriced_error)?;
    if !state.store.add_cart_discount(&cart_id, &code).await? {
        return Err(discount_error(DiscountRefusal::AppliedTwice(code)));
    }
    Ok(quote_of(price))
}
