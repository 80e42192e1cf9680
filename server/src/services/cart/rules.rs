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
