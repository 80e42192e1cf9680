//! A customer's address book, and what a cart keeps for its checkout.
//!
//! Saved addresses are copied, not linked: an order or a cart that names one
//! by id takes its fields as they are then, so editing or deleting the book
//! later never changes where a placed order goes.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use crate::ids::AddressId;
use crate::pricing::PostalAddress;

/// One address of the caller's book (`GET /api/users/me/addresses`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SavedAddress {
    pub id: AddressId,
    pub address: PostalAddress,
    /// Offered first for shipping; at most one address of a book has it.
    pub default_shipping: bool,
    /// Offered first for billing; at most one address of a book has it.
    pub default_billing: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `POST /api/users/me/addresses`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewSavedAddress {
    pub address: PostalAddress,
    /// Makes it the default for shipping, taking the flag from another.
    #[serde(default)]
    pub default_shipping: bool,
    /// Makes it the default for billing, taking the flag from another.
    #[serde(default)]
    pub default_billing: bool,
}

/// What a cart keeps for its checkout, so that an order from it (or a
/// quote of it) needs nothing else: where it goes, who pays, and how it is
/// shipped. The cart's discount codes are kept beside it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CartCheckout {
    #[serde(default)]
    pub shipping_address: Option<PostalAddress>,
    #[serde(default)]
    pub billing_address: Option<PostalAddress>,
    /// A method's `code` from the zone of the shipping address.
    #[serde(default)]
    pub shipping_method: Option<String>,
}

/// `PUT /api/cart/{id}/checkout`: replaces what the cart keeps for its
/// checkout. An address is given in full or as the id of one of the
/// caller's saved addresses (not both).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetCartCheckout {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<PostalAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address_id: Option<AddressId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<PostalAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address_id: Option<AddressId>,
    /// A method's `code`; a quote of the cart lists those that ship it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 40, pattern = r"^[a-z0-9][a-z0-9_-]*$")
    )]
    pub shipping_method: Option<String>,
    /// Refused with 409 `version_conflict` when the cart has moved on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
}
