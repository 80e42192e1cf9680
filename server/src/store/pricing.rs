//! The storage interface of pricing: shipping zones, tax rates, and what a
//! quote reads of them and of the products in one go.

use async_trait::async_trait;
use shop_wire::cart::CartId;
use shop_wire::money::Currency;
use shop_wire::pricing::{Discount, DiscountId, ShippingZone, ShippingZoneId, TaxRate, TaxRateId};

use super::{NewEvent, StoreResult};

/// What pricing needs of one product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductFacts {
    pub sku: String,
    pub price_cents: i64,
    pub currency: Currency,
    pub active: bool,
    pub weight_grams: Option<i64>,
    pub tax_category: Option<String>,
    pub requires_shipping: bool,
}

/// What a price is read for.
#[derive(Clone, Debug, Default)]
pub struct PricingQuery {
    pub skus: Vec<String>,
    /// Discount codes asked for, as given.
    pub codes: Vec<String>,
    /// The cart checked out, whose codes apply too.
    pub cart: Option<CartId>,
    /// Whose uses of each discount count against its per-customer limit.
    pub customer_email: Option<String>,
}

/// A discount with how often the customer asking used it (uses given back
/// not counted), counted only for a discount with a per-customer limit (0
/// otherwise): a code without one is used by the same customers again and
/// again, and counting all their uses on every quote grows with the shop's
/// history. With a limit the count stays below it, as claims are guarded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscountUse {
    pub discount: Discount,
    pub customer_uses: i64,
}

/// Everything a quote or a checkout is priced by, as of one moment.
#[derive(Clone, Debug, Default)]
pub struct PricingContext {
    /// The products asked for that exist, in no particular order.
    pub products: Vec<ProductFacts>,
    /// Oldest first.
    pub zones: Vec<ShippingZone>,
    /// Oldest first.
    pub rates: Vec<TaxRate>,
    /// The discounts of the codes asked for and of the cart's codes (codes
    /// compared in upper case), and every automatic promotion.
    pub discounts: Vec<DiscountUse>,
    /// The codes applied to the cart, in the order they were applied.
    pub cart_codes: Vec<String>,
}

/// How a discount is named: `dsc_...` or its code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscountKey {
    Id(DiscountId),
    Code(String),
}

/// Why the uses of an order's discounts could not be claimed; nothing was claimed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimRefusal {
    /// The discount was used as often as its `usage_limit` allows (or was disabled).
    LimitReached(DiscountId),
    /// The customer used it as often as its `per_customer_limit` allows.
    CustomerLimitReached(DiscountId),
}

#[async_trait]
pub trait PricingStore: Send + Sync {
    /// The zones, rates, products and discounts `query` names, read from one snapshot.
    async fn pricing_context(&self, query: PricingQuery) -> StoreResult<PricingContext>;

    /// Adds a zone and logs `events`. A country belongs to at most one
    /// zone, even when zones are added at the same time: when one of its
    /// countries already has a zone nothing is written and the answer is
    /// [`super::StoreError::Duplicate`] with `field` `country`.
    async fn insert_shipping_zone(
        &self,
        zone: &ShippingZone,
        events: Vec<NewEvent>,
    ) -> StoreResult<()>;
    /// Removes a zone (its countries are then shipped to by none) and logs
    /// the events `events` makes of it; `None` when there is no such zone.
    async fn delete_shipping_zone(
        &self,
        id: &ShippingZoneId,
        events: for<'a> fn(&'a ShippingZone) -> Vec<NewEvent>,
    ) -> StoreResult<Option<ShippingZone>>;

    /// Adds a rate and logs `events`. One rate per country, region and tax
    /// category: a second is [`super::StoreError::Duplicate`] and nothing is written.
    async fn insert_tax_rate(&self, rate: &TaxRate, events: Vec<NewEvent>) -> StoreResult<()>;
    /// Removes a rate and logs the events `events` makes of it; `None` when
    /// there is no such rate.
    async fn delete_tax_rate(
        &self,
        id: &TaxRateId,
        events: for<'a> fn(&'a TaxRate) -> Vec<NewEvent>,
    ) -> StoreResult<Option<TaxRate>>;

    /// Adds a discount and logs `events`; a code already used by another
    /// discount is [`super::StoreError::Duplicate`] and nothing is written.
    async fn insert_discount(&self, discount: &Discount, events: Vec<NewEvent>) -> StoreResult<()>;
    /// Every discount, newest first.
    async fn discounts(&self) -> StoreResult<Vec<Discount>>;
    async fn discount(&self, key: &DiscountKey) -> StoreResult<Option<Discount>>;
    /// Disables a discount (no order gets it any more; orders that have it
    /// keep it) and logs the events `events` makes of it; `None` when there
    /// is no such discount. One already disabled is answered as it is.
    async fn disable_discount(
        &self,
        id: &DiscountId,
        events: for<'a> fn(&'a Discount) -> Vec<NewEvent>,
    ) -> StoreResult<Option<Discount>>;
    /// Applies `code` to a cart; false when the cart has it already (nothing
    /// is written then).
    async fn add_cart_discount(&self, cart: &CartId, code: &str) -> StoreResult<bool>;
}
