//! Shopping carts: lines with a price snapshot, each holding its stock.
//!
//! A cart belongs to a user, or to an anonymous visitor who proves it with
//! the secret `token` returned once when the cart is made (sent back as the
//! `X-Cart-Token` header, and in the login body to merge the cart into the
//! user's). Every change bumps `version`; a change that names an older
//! `expected_version` is refused with 409 `version_conflict`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::enums::string_enum;
pub use crate::ids::CartId;
use crate::ids::UserId;
use crate::money::Currency;

/// The header an anonymous cart's token travels in.
pub const CART_TOKEN_HEADER: &str = "x-cart-token";

string_enum!(
    /// Where a cart is in its life. Only an `active` cart can change.
    CartStatus, "cart status" {
        Active => "active",
        CheckedOut => "checked_out",
        Merged => "merged",
        Expired => "expired",
    }
);

/// One line: a SKU, how many, and the unit price when it was added.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CartItem {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    /// The price when the line was added, kept through to checkout.
    pub unit_price_cents: i64,
    pub line_total_cents: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Cart {
    pub id: CartId,
    pub status: CartStatus,
    /// None for an anonymous cart.
    pub user_id: Option<UserId>,
    pub items: Vec<CartItem>,
    /// Units over all lines.
    pub item_count: i64,
    pub subtotal_cents: i64,
    pub currency: Currency,
    pub version: u64,
    /// Idle until then, the cart expires and its stock is released; every change extends it.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// What its checkout uses unless the order says otherwise (`PUT /api/cart/{id}/checkout`).
    #[serde(default)]
    pub checkout: crate::addresses::CartCheckout,
    /// Codes applied to it (`POST /api/cart/{id}/discounts`), used at its checkout.
    #[serde(default)]
    pub discount_codes: Vec<String>,
    /// The anonymous cart's secret, only in the response that created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `POST /api/cart`: a new cart, optionally with lines.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewCart {
    #[serde(default)]
    pub items: Vec<LineRequest>,
}

/// A SKU and a quantity, as carts and orders are asked for them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LineRequest {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = r"^[A-Z0-9][A-Z0-9._-]*$")
    )]
    pub sku: String,
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000_000))]
    pub quantity: i64,
}

/// `POST /api/cart/{id}/items`: adds `quantity` (default 1) of a SKU, to
/// its line if the cart has one.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddCartItem {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = r"^[A-Z0-9][A-Z0-9._-]*$")
    )]
    pub sku: String,
    #[serde(default = "one")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000_000))]
    pub quantity: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
}

fn one() -> i64 {
    1
}

/// `PATCH /api/cart/{id}/items/{sku}`: sets a line's quantity; 0 removes it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateCartItem {
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000_000))]
    pub quantity: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
}
