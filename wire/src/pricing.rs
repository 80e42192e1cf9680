//! Pricing at checkout: postal addresses, shipping zones and their methods,
//! tax rates, and the quote that prices an order from them (SPEC section 9).
//!
//! Every amount is in minor units of one currency; rates are in basis points
//! (`1900` is 19 %), so nothing here is ever a float.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::cart::LineRequest;
use crate::enums::string_enum;
pub use crate::ids::{DiscountId, ShippingZoneId, TaxRateId};
use crate::money::Currency;

/// Whether `code` is an ISO 3166-1 alpha-2 country code (upper case), from
/// the standard's list rather than the shape of the letters.
pub fn is_country(code: &str) -> bool {
    code.len() == 2
        && code.bytes().all(|b| b.is_ascii_uppercase())
        && code.parse::<iso_country::Country>().is_ok()
}

/// Every ISO 3166-1 alpha-2 code, for the OpenAPI document.
pub fn countries() -> Vec<&'static str> {
    let mut codes: Vec<&'static str> = iso_country::data::all()
        .into_iter()
        .map(|c| c.alpha2)
        .filter(|code| is_country(code))
        .collect();
    codes.sort_unstable();
    codes.dedup();
    codes
}

/// Where an order goes or who pays for it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PostalAddress {
    /// The recipient.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::line_200))]
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::line_200))]
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::optional_line_200))]
    pub line2: Option<String>,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::line_200))]
    pub city: String,
    /// State, province or county; some tax rates apply by it (e.g. `CA`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::optional_line_100))]
    pub region: Option<String>,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::line_20))]
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, e.g. `DE`.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::country))]
    pub country: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::optional_line_40))]
    pub phone: Option<String>,
}

/// How a shipping method prices a parcel. Its OpenAPI schema is written by
/// hand ([`crate::schemas`]): the derived one does not close the variants.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ShippingRate {
    /// The same price for any parcel.
    Flat { amount_cents: i64 },
    /// `amount_cents` per started kilogram of the products' `weight_grams`;
    /// offered only when every product of the order has a weight.
    PerKg { amount_cents: i64 },
    /// `amount_cents`, or nothing once the goods (after discounts) cost at
    /// least `threshold_cents`.
    FreeOver {
        amount_cents: i64,
        threshold_cents: i64,
    },
}

/// One way to ship within a zone.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ShippingMethod {
    /// Chosen by it at checkout, e.g. `standard`; unique within the zone.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 40, pattern = r"^[a-z0-9][a-z0-9_-]*$")
    )]
    pub code: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::line_100))]
    pub name: String,
    pub rate: ShippingRate,
    /// Days to deliver, as told to the customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 365))]
    pub estimated_days: Option<u32>,
}

/// Countries shipped to alike, priced in one currency.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShippingZone {
    pub id: ShippingZoneId,
    pub name: String,
    pub countries: Vec<String>,
    /// The currency of its methods' prices; a cart in another is not shipped by it.
    pub currency: Currency,
    pub methods: Vec<ShippingMethod>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `POST /api/shipping/zones`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewShippingZone {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::line_100))]
    pub name: String,
    /// A country belongs to at most one zone.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::countries))]
    pub countries: Vec<String>,
    #[serde(default)]
    pub currency: Currency,
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 20))]
    pub methods: Vec<ShippingMethod>,
}

/// A tax charged in a country, or in one region of it (a US state), on every
/// product or only on those of one `tax_category`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaxRate {
    pub id: TaxRateId,
    pub country: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub name: String,
    /// Basis points: 1900 is 19 %.
    pub rate_bps: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tax_category: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `POST /api/tax/rates`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewTaxRate {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::country))]
    pub country: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::optional_line_100))]
    pub region: Option<String>,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::line_100))]
    pub name: String,
    /// 0 to 10000 (100 %).
    pub rate_bps: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 40, pattern = r"^[a-z0-9][a-z0-9_-]*$")
    )]
    pub tax_category: Option<String>,
}

/// The shipping method an order is shipped by, with its price frozen.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChosenShipping {
    pub code: String,
    pub name: String,
    pub price_cents: i64,
}

/// A method that ships to the quoted address, priced for the quoted goods.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShippingOption {
    pub code: String,
    pub name: String,
    pub price_cents: i64,
    pub estimated_days: Option<u32>,
}

/// One tax of an order: the sum of what it charges on every line (and on
/// shipping, where shipping is taxed).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaxLine {
    pub name: String,
    pub rate_bps: u32,
    pub amount_cents: i64,
}

/// A discount applied to an order and what it took off.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppliedDiscount {
    /// The code given; automatic promotions have none.
    pub code: Option<String>,
    pub amount_cents: i64,
}

/// `POST /api/orders/quote`: the goods (explicit `items` or a `cart_id`) and
/// where they go. Prices the order exactly as `POST /api/orders` would, and
/// changes nothing.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cart_id: Option<crate::cart::CartId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(max_items = 100))]
    pub items: Vec<LineRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<PostalAddress>,
    /// One of the caller's saved addresses, instead of `shipping_address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address_id: Option<crate::addresses::AddressId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<PostalAddress>,
    /// One of the caller's saved addresses, instead of `billing_address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address_id: Option<crate::addresses::AddressId>,
    /// A method's `code`; without it the quote lists the methods and charges no shipping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 40))]
    pub shipping_method: Option<String>,
    /// Discount codes, each at most once (a cart's own codes apply too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(max_items = 10))]
    pub discount_codes: Vec<String>,
    /// Without a `shipping_address`: the country to price shipping and tax
    /// for, when the full address is not known yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::optional_country))]
    pub country: Option<String>,
    /// With `country`: its region, for regional tax rates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::optional_line_100))]
    pub region: Option<String>,
}

/// The price of an order, broken down. With tax-exclusive prices
/// `total = subtotal - discount + shipping + tax`; with tax-inclusive prices
/// the tax is already inside the subtotal and shipping, so
/// `total = subtotal - discount + shipping` and `tax` is the part of it that is tax.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Quote {
    pub currency: Currency,
    pub subtotal_cents: i64,
    pub discount_cents: i64,
    pub shipping_cents: i64,
    pub tax_cents: i64,
    pub total_cents: i64,
    pub prices_include_tax: bool,
    pub tax_lines: Vec<TaxLine>,
    pub discounts: Vec<AppliedDiscount>,
    /// The method asked for, when one was.
    pub shipping_method: Option<ChosenShipping>,
    /// Every method that ships these goods to the address.
    pub shipping_methods: Vec<ShippingOption>,
}

/// What an order costs, broken down, and where it goes: priced by the same
/// rules as a quote when the order is placed, and frozen then. An order
/// placed before pricing existed has its total as its subtotal.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderPricing {
    #[serde(default)]
    pub subtotal_cents: i64,
    #[serde(default)]
    pub discount_cents: i64,
    #[serde(default)]
    pub shipping_cents: i64,
    #[serde(default)]
    pub tax_cents: i64,
    #[serde(default)]
    pub prices_include_tax: bool,
    #[serde(default)]
    pub tax_lines: Vec<TaxLine>,
    #[serde(default)]
    pub discounts: Vec<AppliedDiscount>,
    #[serde(default)]
    pub shipping_address: Option<PostalAddress>,
    #[serde(default)]
    pub billing_address: Option<PostalAddress>,
    #[serde(default)]
    pub shipping_method: Option<ChosenShipping>,
}

string_enum!(
    /// What a discount takes off.
    DiscountKind, "discount kind" {
        Percent => "percent",
        Fixed => "fixed",
        FreeShipping => "free_shipping",
    }
);

/// A discount code, or an automatic promotion (no code, applied to every
/// order that meets its conditions).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Discount {
    pub id: DiscountId,
    /// Upper case; `None` for an automatic promotion.
    pub code: Option<String>,
    pub kind: DiscountKind,
    /// `percent`: basis points of the subtotal (1000 is 10 %); `fixed`:
    /// minor units of `currency`; `free_shipping`: 0.
    pub value: i64,
    /// The currency of a `fixed` amount; others apply in any.
    pub currency: Option<Currency>,
    pub min_subtotal_cents: Option<i64>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub starts_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub ends_at: Option<OffsetDateTime>,
    /// Uses in all; a cancelled or fully refunded order gives its use back.
    pub usage_limit: Option<i64>,
    pub per_customer_limit: Option<i64>,
    pub automatic: bool,
    /// False once disabled.
    pub active: bool,
    pub times_used: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `POST /api/discounts`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewDiscount {
    /// Required unless `automatic`: letters, digits, `-` and `_`, kept upper case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 40,
            pattern = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
        )
    )]
    pub code: Option<String>,
    pub kind: DiscountKind,
    /// Basis points for `percent` (1-10000), minor units for `fixed`, 0 for `free_shipping`.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 10_000_000_000_i64))]
    pub value: i64,
    /// Required for `fixed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 10_000_000_000_i64))]
    pub min_subtotal_cents: Option<i64>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub starts_at: Option<OffsetDateTime>,
    /// After `starts_at`.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub ends_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000_000))]
    pub usage_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000_000))]
    pub per_customer_limit: Option<i64>,
    #[serde(default)]
    pub automatic: bool,
}

/// `POST /api/cart/{id}/discounts`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ApplyDiscount {
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 40,
            pattern = r"^[A-Za-z0-9][A-Za-z0-9_-]*$"
        )
    )]
    pub code: String,
}
