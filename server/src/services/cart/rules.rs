//! The cart's rules as plain functions over plain data: which lines a cart
//! may take, when a cart may change, and when it can be checked out.
//!
//! A store loads the cart and the products a change names, asks these, and
//! writes only what they allow; their tests need no database.

use shop_wire::cart::CartStatus;
use shop_wire::money::Currency;
use time::OffsetDateTime;

use crate::services::inventory::rules::StockRefusal;
use crate::store::{LineRefusal, ReserveItem};

/// The most lines a cart may have.
pub const MAX_LINES: usize = 100;

/// The currency of a cart or order with no priced line yet.
pub const DEFAULT_CURRENCY: Currency = Currency::USD;

/// What a line needs to know about its product.
#[derive(Clone, Debug, PartialEq)]
pub struct ProductFacts {
    pub name: String,
    pub price_cents: i64,
    pub currency: Currency,
    pub active: bool,
    /// The product's own cap on units per cart or order (its `max_per_cart`
    /// attribute), below the shop-wide one.
    pub max_per_cart: Option<i64>,
}

/// How much one cart or order may hold: per line and in all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantityLimits {
    pub per_line: i64,
    pub per_cart: i64,
}

/// The attribute of a product that caps its units per cart or order.
pub const MAX_PER_CART_ATTRIBUTE: &str = "max_per_cart";

/// Reads a product's `max_per_cart` attribute: a whole number of at least 1.
pub fn parse_max_per_cart(value: &str) -> Result<i64, String> {
    match value.trim().parse::<i64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "{MAX_PER_CART_ATTRIBUTE} must be a whole number of at least 1, not `{value}`"
        )),
    }
}

/// Whether a line of `quantity` units of `sku` (whose product caps it at
/// `product_cap`, if it does) and a cart of `cart_total` units in all,
/// this line included, stay within the limits. Without caps one visitor
/// could hold a product's whole stock, renewing the hold forever.
pub fn check_quantities(
    sku: &str,
    quantity: i64,
    product_cap: Option<i64>,
    cart_total: i64,
    limits: QuantityLimits,
) -> Result<(), LineRefusal> {
    let per_line = product_cap.map_or(limits.per_line, |cap| cap.min(limits.per_line));
    if quantity > per_line {
        return Err(LineRefusal::LineLimit {
            sku: sku.to_owned(),
            max: per_line,
            requested: quantity,
        });
    }
    if cart_total > limits.per_cart {
        return Err(LineRefusal::CartLimit {
            max: limits.per_cart,
            requested: cart_total,
        });
    }
    Ok(())
}

/// Checks each line (one per SKU) of a new cart or order against the
/// limits, with the products in line order.
pub fn check_all_quantities(
    lines: &[ReserveItem],
    products: &[ProductFacts],
    limits: QuantityLimits,
) -> Result<(), LineRefusal> {
    let total = lines.iter().map(|l| l.quantity).sum::<i64>();
    for (line, product) in lines.iter().zip(products) {
        check_quantities(&line.sku, line.quantity, product.max_per_cart, 0, limits)?;
    }
    if total > limits.per_cart {
        return Err(LineRefusal::CartLimit {
            max: limits.per_cart,
            requested: total,
        });
    }
    Ok(())
}

/// Checks new lines against their products (`None`: no such SKU), in line
/// order: every product exists, is active, and all are priced in one
/// currency — the cart's, when it already has lines (`currency`).
pub fn check_products<'a>(
    lines: impl IntoIterator<Item = (&'a ReserveItem, Option<&'a ProductFacts>)>,
    currency: Option<Currency>,
) -> Result<(), LineRefusal> {
    let mut currency = currency;
    for (line, product) in lines {
        check_orderable(&line.sku, product)?;
        let Some(product) = product else {
            continue;
        };
        match currency {
            Some(expected) if expected != product.currency => {
                return Err(LineRefusal::CurrencyMismatch {
                    sku: line.sku.clone(),
                    expected,
                    found: product.currency,
                });
            }
            _ => currency = Some(product.currency),
        }
    }
    Ok(())
}

/// Whether a SKU can be sold: its product exists (`None`: it does not) and is active.
pub fn check_orderable(sku: &str, product: Option<&ProductFacts>) -> Result<(), LineRefusal> {
    match product {
        None => Err(LineRefusal::UnknownSku(sku.to_owned())),
        Some(product) if !product.active => Err(LineRefusal::Archived(sku.to_owned())),
        Some(_) => Ok(()),
    }
}

/// A cart's currency: its first line's, or the default for an empty one.
pub fn currency_of(first_line: Option<Currency>) -> Currency {
    first_line.unwrap_or(DEFAULT_CURRENCY)
}

/// Whether a cart of `lines` lines may take one more.
pub fn check_room(lines: usize) -> Result<(), LineRefusal> {
    if lines >= MAX_LINES {
        return Err(LineRefusal::TooManyLines(MAX_LINES));
    }
    Ok(())
}

/// Whether a client address holding `held` active anonymous carts may start
/// another (`max` 0: no cap).
pub fn check_carts_per_address(held: u64, max: u32) -> Result<(), LineRefusal> {
    if max > 0 && held >= u64::from(max) {
        return Err(LineRefusal::TooManyCarts(max));
    }
    Ok(())
}

/// Whether a new cart's lines (repeated SKUs already summed) fit one cart.
pub fn check_line_count(lines: usize) -> Result<(), LineRefusal> {
    if lines > MAX_LINES {
        return Err(LineRefusal::TooManyLines(MAX_LINES));
    }
    Ok(())
}

/// Turns a refusal of the inventory into the refusal of a line.
impl From<StockRefusal> for LineRefusal {
    fn from(refusal: StockRefusal) -> Self {
        match refusal {
            StockRefusal::UnknownSku(sku) => LineRefusal::UnknownSku(sku),
            StockRefusal::Insufficient {
                sku,
                available,
                requested,
            } => LineRefusal::Insufficient {
                sku,
                available,
                requested,
            },
        }
    }
}

/// The state of a cart that decides whether it may change.
#[derive(Clone, Copy, Debug)]
pub struct CartState {
    pub status: CartStatus,
    pub version: u64,
    pub expires_at: OffsetDateTime,
}

/// Why a cart cannot change now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unchangeable {
    NotActive(CartStatus),
    /// Its time ran out though no sweep has seen it yet: the store expires
    /// it now (releasing its stock), and the caller is told it expired.
    Lapsed,
    /// The caller changed an older version than the current one.
    VersionConflict {
        current: u64,
    },
}

/// Whether a cart may change at `now`, given the version the caller saw
/// (`None`: the caller did not say). Expiry is checked on every touch, so a
/// cart never outlives its time just because the sweeper is behind.
pub fn check_changeable(
    cart: CartState,
    expected_version: Option<u64>,
    now: OffsetDateTime,
) -> Result<(), Unchangeable> {
    if cart.status != CartStatus::Active {
        return Err(Unchangeable::NotActive(cart.status));
    }
    if cart.expires_at <= now {
        return Err(Unchangeable::Lapsed);
    }
    if let Some(expected) = expected_version
        && expected != cart.version
    {
        return Err(Unchangeable::VersionConflict {
            current: cart.version,
        });
    }
    Ok(())
}

/// Whether two carts' lines can become one: both priced in one currency, or
/// one of them empty. `first_source_sku` names the line that would not fit.
pub fn check_merge(
    target: (Currency, bool),
    source: (Currency, bool),
    first_source_sku: Option<&str>,
) -> Result<(), LineRefusal> {
    let ((into, into_empty), (from, from_empty)) = (target, source);
    if !into_empty && !from_empty && into != from {
        return Err(LineRefusal::CurrencyMismatch {
            sku: first_source_sku.unwrap_or_default().to_owned(),
            expected: into,
            found: from,
        });
    }
    Ok(())
}

/// A cart line whose price is not the product's any more.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriceChange {
    pub sku: String,
    pub was_cents: i64,
    pub now_cents: i64,
}

/// The lines, `(sku, price in the cart, the product's price now)`, whose
/// price changed since they were added. A checkout charges today's price,
/// so a customer is shown a change before paying it, and a cart held for
/// a long time cannot buy at an old price.
pub fn price_changes<'a>(lines: impl IntoIterator<Item = (&'a str, i64, i64)>) -> Vec<PriceChange> {
    lines
        .into_iter()
        .filter(|(_, was, now)| was != now)
        .map(|(sku, was, now)| PriceChange {
            sku: sku.to_owned(),
            was_cents: was,
            now_cents: now,
        })
        .collect()
}

/// Why a cart cannot be checked out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckoutRefusal {
    NotActive(CartStatus),
    Empty,
}

/// Whether a cart can become an order at `now`: active, with lines, unexpired,
/// and every line still holding its stock (`lines_held`).
pub fn check_checkout(
    cart: CartState,
    lines: usize,
    lines_held: bool,
    now: OffsetDateTime,
) -> Result<(), CheckoutRefusal> {
    if cart.status != CartStatus::Active {
        return Err(CheckoutRefusal::NotActive(cart.status));
    }
    if lines == 0 {
        return Err(CheckoutRefusal::Empty);
    }
    if cart.expires_at <= now || !lines_held {
        return Err(CheckoutRefusal::NotActive(CartStatus::Expired));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    fn eur() -> Currency {
        "EUR".parse().unwrap()
    }

    fn line(sku: &str) -> ReserveItem {
        ReserveItem {
            sku: sku.to_owned(),
            quantity: 1,
        }
    }

    fn product(currency: Currency, active: bool) -> ProductFacts {
        ProductFacts {
            name: "Mug".to_owned(),
            price_cents: 500,
            currency,
            active,
            max_per_cart: None,
        }
    }

    #[test]
    fn lines_need_known_active_products_in_one_currency() {
        let (a, b) = (line("A"), line("B"));
        let usd = product(Currency::USD, true);
        let euro = product(eur(), true);
        let archived = product(Currency::USD, false);
        assert_eq!(
            check_products([(&a, Some(&usd)), (&b, Some(&usd))], None),
            Ok(())
        );
        assert_eq!(
            check_products([(&a, Some(&usd)), (&b, None)], None),
            Err(LineRefusal::UnknownSku("B".to_owned()))
        );
        assert_eq!(
            check_products([(&a, Some(&archived))], None),
            Err(LineRefusal::Archived("A".to_owned()))
        );
        assert_eq!(
            check_products([(&a, Some(&usd)), (&b, Some(&euro))], None),
            Err(LineRefusal::CurrencyMismatch {
                sku: "B".to_owned(),
                expected: Currency::USD,
                found: eur()
            })
        );
        // A cart with lines keeps its currency.
        assert_eq!(
            check_products([(&a, Some(&usd))], Some(eur())),
            Err(LineRefusal::CurrencyMismatch {
                sku: "A".to_owned(),
                expected: eur(),
                found: Currency::USD
            })
        );
    }

    #[test]
    fn a_cart_holds_at_most_its_line_cap() {
        assert_eq!(check_room(MAX_LINES - 1), Ok(()));
        assert_eq!(
            check_room(MAX_LINES),
            Err(LineRefusal::TooManyLines(MAX_LINES))
        );
        assert_eq!(check_line_count(MAX_LINES), Ok(()));
        assert_eq!(
            check_line_count(MAX_LINES + 1),
            Err(LineRefusal::TooManyLines(MAX_LINES))
        );
    }

    #[test]
    fn lines_and_carts_stay_within_their_quantity_caps() {
        let limits = QuantityLimits {
            per_line: 10,
            per_cart: 15,
        };
        assert_eq!(check_quantities("A", 10, None, 15, limits), Ok(()));
        assert_eq!(
            check_quantities("A", 11, None, 11, limits),
            Err(LineRefusal::LineLimit {
                sku: "A".to_owned(),
                max: 10,
                requested: 11
            })
        );
        // A product's own cap is lower; a higher one does not lift the shop's.
        assert_eq!(
            check_quantities("A", 3, Some(2), 3, limits),
            Err(LineRefusal::LineLimit {
                sku: "A".to_owned(),
                max: 2,
                requested: 3
            })
        );
        assert_eq!(
            check_quantities("A", 11, Some(50), 11, limits),
            Err(LineRefusal::LineLimit {
                sku: "A".to_owned(),
                max: 10,
                requested: 11
            })
        );
        assert_eq!(
            check_quantities("A", 5, None, 16, limits),
            Err(LineRefusal::CartLimit {
                max: 15,
                requested: 16
            })
        );
        let (a, b) = (
            ReserveItem {
                sku: "A".to_owned(),
                quantity: 9,
            },
            ReserveItem {
                sku: "B".to_owned(),
                quantity: 9,
            },
        );
        let usd = product(Currency::USD, true);
        assert_eq!(
            check_all_quantities(std::slice::from_ref(&a), std::slice::from_ref(&usd), limits),
            Ok(())
        );
        assert_eq!(
            check_all_quantities(&[a, b], &[usd.clone(), usd], limits),
            Err(LineRefusal::CartLimit {
                max: 15,
                requested: 18
            })
        );
        assert_eq!(check_carts_per_address(19, 20), Ok(()));
        assert_eq!(
            check_carts_per_address(20, 20),
            Err(LineRefusal::TooManyCarts(20))
        );
        assert_eq!(check_carts_per_address(1000, 0), Ok(()));
        assert_eq!(parse_max_per_cart(" 2 "), Ok(2));
        assert!(parse_max_per_cart("0").is_err());
        assert!(parse_max_per_cart("two").is_err());
    }

    #[test]
    fn a_line_whose_price_moved_either_way_is_a_change() {
        assert_eq!(
            price_changes([("A", 1000, 1000), ("B", 1000, 99_999), ("C", 500, 400)]),
            [
                PriceChange {
                    sku: "B".to_owned(),
                    was_cents: 1000,
                    now_cents: 99_999
                },
                PriceChange {
                    sku: "C".to_owned(),
                    was_cents: 500,
                    now_cents: 400
                }
            ]
        );
        assert!(price_changes([("A", 1, 1)]).is_empty());
    }

    #[test]
    fn an_empty_cart_is_priced_in_the_default_currency() {
        assert_eq!(currency_of(None), DEFAULT_CURRENCY);
        assert_eq!(currency_of(Some(eur())), eur());
    }

    fn state(status: CartStatus, version: u64, expires_at: OffsetDateTime) -> CartState {
        CartState {
            status,
            version,
            expires_at,
        }
    }

    #[test]
    fn a_cart_changes_only_while_active_unexpired_and_at_the_version_seen() {
        let now = crate::store::now();
        let later = now + Duration::minutes(5);
        let live = state(CartStatus::Active, 3, later);
        assert_eq!(check_changeable(live, None, now), Ok(()));
        assert_eq!(check_changeable(live, Some(3), now), Ok(()));
        assert_eq!(
            check_changeable(live, Some(2), now),
            Err(Unchangeable::VersionConflict { current: 3 })
        );
        assert_eq!(
            check_changeable(state(CartStatus::Active, 3, now), Some(3), now),
            Err(Unchangeable::Lapsed)
        );
        assert_eq!(
            check_changeable(state(CartStatus::CheckedOut, 3, later), Some(3), now),
            Err(Unchangeable::NotActive(CartStatus::CheckedOut))
        );
    }

    #[test]
    fn carts_merge_in_one_currency_unless_one_is_empty() {
        assert_eq!(
            check_merge((Currency::USD, false), (eur(), false), Some("A")),
            Err(LineRefusal::CurrencyMismatch {
                sku: "A".to_owned(),
                expected: Currency::USD,
                found: eur()
            })
        );
        assert_eq!(
            check_merge((Currency::USD, true), (eur(), false), Some("A")),
            Ok(())
        );
        assert_eq!(
            check_merge((Currency::USD, false), (Currency::USD, false), Some("A")),
            Ok(())
        );
    }

    #[test]
    fn checkout_needs_a_live_cart_with_held_lines() {
        let now = crate::store::now();
        let later = now + Duration::minutes(5);
        let live = state(CartStatus::Active, 0, later);
        assert_eq!(check_checkout(live, 2, true, now), Ok(()));
        assert_eq!(
            check_checkout(live, 0, true, now),
            Err(CheckoutRefusal::Empty)
        );
        assert_eq!(
            check_checkout(live, 2, false, now),
            Err(CheckoutRefusal::NotActive(CartStatus::Expired))
        );
        assert_eq!(
            check_checkout(state(CartStatus::Active, 0, now), 2, true, now),
            Err(CheckoutRefusal::NotActive(CartStatus::Expired))
        );
        assert_eq!(
            check_checkout(state(CartStatus::Merged, 0, later), 2, true, now),
            Err(CheckoutRefusal::NotActive(CartStatus::Merged))
        );
    }
}
