//! The price of an order as one plain function, [`price`], over plain data:
//! its lines, where it goes, the shop's zones and rates, the discounts that
//! were admitted ([`admit`]), and whether prices include tax. Integer minor
//! units and basis points throughout; no floats.
//!
//! The rules, in the order they apply:
//! 1. `subtotal` is the sum of the lines (`quantity * unit_price_cents`).
//! 2. Discounts on goods (percent, fixed) are taken off the subtotal, at most
//!    all of it; a percent is rounded half up to the minor unit. The amount
//!    is spread over the lines in proportion to their totals, largest
//!    remainder first, so the shares add up exactly.
//! 3. Shipping is priced by the chosen method of the zone that holds the
//!    destination's country; `free_over` compares the goods after discounts
//!    with its threshold. A free-shipping discount then takes the whole
//!    shipping price off (it shows in `discount`, not as a lower shipping).
//! 4. Tax: each line gets the rates of its destination (country-wide and
//!    the region's, each level preferring a rate of the line's tax category
//!    over the standard one). Lines with the same rates form a group, and
//!    shipping (when taxed) joins the group of the standard rates. Tax is
//!    computed **once per group and rate, on the group's discounted amount,
//!    rounded half up** (never per line), and the tax lines add the groups up.
//!    Exclusive prices: `tax = base * bps / 10000`. Inclusive prices: the
//!    tax inside the group is `base * Σbps / (10000 + Σbps)`, shared among
//!    the group's rates by largest remainder.
//! 5. Exclusive: `total = subtotal - discount + shipping + tax`.
//!    Inclusive: `total = subtotal - discount + shipping`, of which `tax` is tax.

use std::collections::BTreeMap;

use shop_wire::money::Currency;
use shop_wire::pricing::{
    AppliedDiscount, ChosenShipping, Discount, DiscountKind, OrderPricing, PostalAddress,
    ShippingOption, ShippingRate, ShippingZone, TaxLine, TaxRate,
};

use shop_wire::orders::{Order, OrderStatus};
use time::OffsetDateTime;

use crate::store::{Checkout, DiscountUse, LineRefusal, ProductFacts};

/// One line of the order, with what pricing needs of its product.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub quantity: i64,
    pub unit_price_cents: i64,
    /// `None`: the product has no weight, so per-kg methods do not ship it.
    pub weight_grams: Option<i64>,
    pub tax_category: Option<String>,
    /// False for goods nobody ships.
    pub requires_shipping: bool,
}

impl Line {
    fn total(&self) -> i64 {
        self.quantity.saturating_mul(self.unit_price_cents)
    }
}

/// A line asked for: a SKU, how many, and the unit price a cart froze for
/// it (`None`: today's price).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub sku: String,
    pub quantity: i64,
    pub unit_price_cents: Option<i64>,
}

/// The lines to price from what was asked and the products as they are now,
/// with their one currency. An unknown or archived product, or one priced in
/// another currency than the first, is refused.
pub fn goods(
    wanted: &[Wanted],
    products: &[ProductFacts],
) -> Result<(Currency, Vec<Line>), LineRefusal> {
    let mut currency = None;
    let mut lines = Vec::with_capacity(wanted.len());
    for want in wanted {
        let product = products
            .iter()
            .find(|p| p.sku == want.sku)
            .ok_or_else(|| LineRefusal::UnknownSku(want.sku.clone()))?;
        if !product.active {
            return Err(LineRefusal::Archived(want.sku.clone()));
        }
        let expected = *currency.get_or_insert(product.currency);
        if product.currency != expected {
            return Err(LineRefusal::CurrencyMismatch {
                sku: want.sku.clone(),
                expected,
                found: product.currency,
            });
        }
        lines.push(Line {
            quantity: want.quantity,
            unit_price_cents: want.unit_price_cents.unwrap_or(product.price_cents),
            weight_grams: product.weight_grams,
            tax_category: product.tax_category.clone(),
            requires_shipping: product.requires_shipping,
        });
    }
    Ok((currency.unwrap_or_default(), lines))
}

/// Where the order goes: taxes and shipping follow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Destination<'a> {
    pub country: &'a str,
    pub region: Option<&'a str>,
}

/// The shop's settings that change a price.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Settings {
    /// Prices (of products and of shipping) already contain tax.
    pub prices_include_tax: bool,
    /// Shipping is taxed at the destination's standard rates.
    pub shipping_taxable: bool,
}

/// Everything an order's price depends on.
#[derive(Clone, Copy, Debug)]
pub struct Pricing<'a> {
    pub currency: Currency,
    pub lines: &'a [Line],
    /// Where the goods go: shipping follows it, and tax.
    pub ship_to: Option<Destination<'a>>,
    /// Who pays: tax follows it when nothing is shipped. With neither
    /// address, no tax is charged.
    pub bill_to: Option<Destination<'a>>,
    /// The code of the chosen shipping method.
    pub method: Option<&'a str>,
    /// A checkout, not a quote: when the shop ships at all (it has a
    /// zone) and a line must be shipped, the order must say where to and how.
    pub require_shipping: bool,
    pub zones: &'a [ShippingZone],
    pub rates: &'a [TaxRate],
    /// The discounts admitted, in the order they apply.
    pub offers: &'a [Discount],
    pub settings: Settings,
}

/// The price of an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Priced {
    pub subtotal_cents: i64,
    pub discount_cents: i64,
    pub shipping_cents: i64,
    pub tax_cents: i64,
    pub total_cents: i64,
    pub tax_lines: Vec<TaxLine>,
    pub discounts: Vec<AppliedDiscount>,
    pub shipping: Option<ChosenShipping>,
    /// Every method that ships the order to its destination.
    pub options: Vec<ShippingOption>,
}

/// Why an order cannot be priced as asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PricingRefusal {
    /// A method was chosen, or the shop ships and this is a checkout, but
    /// there is no address to ship to.
    NoDestination,
    /// The shop ships and this is a checkout, but no method was chosen.
    NoMethod,
    /// The method does not ship these goods to this address (no such code
    /// in the destination's zone, no zone at all, or a per-kg method for a
    /// product without a weight).
    MethodUnavailable { code: String, country: String },
    /// The zone of the destination prices shipping in another currency.
    CurrencyMismatch { zone: Currency, order: Currency },
}

/// Rounds `numerator / denominator` half up; both are non-negative here.
fn div_round(numerator: i128, denominator: i128) -> i64 {
    debug_assert!(numerator >= 0 && denominator > 0);
    let rounded = (numerator * 2 + denominator) / (denominator * 2);
    i64::try_from(rounded).unwrap_or(i64::MAX)
}

/// Splits `amount` in proportion to `weights` so that the shares add up to
/// exactly `amount`: each gets its floor, and the units left go to the
/// largest remainders (the earlier one on a tie).
pub fn allocate(amount: i64, weights: &[i64]) -> Vec<i64> {
    let sum: i128 = weights.iter().map(|w| i128::from(*w)).sum();
    if sum <= 0 || amount <= 0 {
        return vec![0; weights.len()];
    }
    let exact: Vec<(i64, i128)> = weights
        .iter()
        .map(|w| {
            let product = i128::from(amount) * i128::from(*w);
            (
                i64::try_from(product / sum).unwrap_or(i64::MAX),
                product % sum,
            )
        })
        .collect();
    let mut shares: Vec<i64> = exact.iter().map(|(floor, _)| *floor).collect();
    let left = amount - shares.iter().sum::<i64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|a, b| exact[*b].1.cmp(&exact[*a].1).then(a.cmp(b)));
    for index in order.into_iter().take(usize::try_from(left).unwrap_or(0)) {
        shares[index] += 1;
    }
    shares
}

/// The price of one method for these lines, or `None` when it cannot ship
/// them (per kg, and a product has no weight).
fn method_price(rate: &ShippingRate, lines: &[Line], goods_cents: i64) -> Option<i64> {
    match *rate {
        ShippingRate::Flat { amount_cents } => Some(amount_cents),
        ShippingRate::PerKg { amount_cents } => {
            let grams = lines.iter().try_fold(0_i64, |sum, line| {
                line.weight_grams
                    .map(|w| sum.saturating_add(w.saturating_mul(line.quantity)))
            })?;
            // Carriers bill every started kilogram.
            let kilos = (grams + 999) / 1000;
            Some(amount_cents.saturating_mul(kilos))
        }
        ShippingRate::FreeOver {
            amount_cents,
            threshold_cents,
        } => Some(if goods_cents >= threshold_cents {
            0
        } else {
            amount_cents
        }),
    }
}

/// The zone that ships to `country`, if any.
pub fn zone_for<'z>(zones: &'z [ShippingZone], country: &str) -> Option<&'z ShippingZone> {
    zones
        .iter()
        .find(|zone| zone.countries.iter().any(|c| c == country))
}

/// The methods of `zone` that ship `lines`, priced.
fn options(zone: Option<&ShippingZone>, lines: &[Line], goods_cents: i64) -> Vec<ShippingOption> {
    let Some(zone) = zone else {
        return Vec::new();
    };
    zone.methods
        .iter()
        .filter_map(|method| {
            Some(ShippingOption {
                code: method.code.clone(),
                name: method.name.clone(),
                price_cents: method_price(&method.rate, lines, goods_cents)?,
                estimated_days: method.estimated_days,
            })
        })
        .collect()
}

/// The rates that apply at `destination` to a product of `category`
/// (`None`: the standard rates, which shipping also gets), as indexes into
/// `rates`. At each level (the whole country, then the region) a rate of
/// the category replaces the standard ones.
fn rates_for(
    rates: &[TaxRate],
    destination: Destination<'_>,
    category: Option<&str>,
) -> Vec<usize> {
    let region = destination.region.map(str::trim);
    let mut applied = Vec::new();
    for regional in [false, true] {
        let level: Vec<usize> = rates
            .iter()
            .enumerate()
            .filter(|(_, rate)| {
                rate.country == destination.country
                    && match (&rate.region, region) {
                        (None, _) => !regional,
                        (Some(r), Some(d)) => regional && r.eq_ignore_ascii_case(d),
                        (Some(_), None) => false,
                    }
            })
            .map(|(index, _)| index)
            .collect();
        let of_category: Vec<usize> = level
            .iter()
            .copied()
            .filter(|i| category.is_some() && rates[*i].tax_category.as_deref() == category)
            .collect();
        if of_category.is_empty() {
            applied.extend(
                level
                    .into_iter()
                    .filter(|i| rates[*i].tax_category.is_none()),
            );
        } else {
            applied.extend(of_category);
        }
    }
    applied
}

/// The tax of one group of amounts that share `rates`, per rate.
fn group_tax(base: i64, bps: &[u32], inclusive: bool) -> Vec<i64> {
    if inclusive {
        let total_bps: i64 = bps.iter().map(|b| i64::from(*b)).sum();
        let inside = div_round(
            i128::from(base) * i128::from(total_bps),
            10_000 + i128::from(total_bps),
        );
        let weights: Vec<i64> = bps.iter().map(|b| i64::from(*b)).collect();
        allocate(inside, &weights)
    } else {
        bps.iter()
            .map(|b| div_round(i128::from(base) * i128::from(*b), 10_000))
            .collect()
    }
}

/// Why a discount code is refused for an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscountRefusal {
    Unknown(String),
    /// The same code was given twice.
    AppliedTwice(String),
    Disabled(String),
    NotStarted(String),
    Expired(String),
    /// Used as often as its `usage_limit` allows.
    LimitReached(String),
    /// The customer used it as often as its `per_customer_limit` allows.
    CustomerLimitReached(String),
    MinimumNotMet {
        code: String,
        min_subtotal_cents: i64,
    },
    /// A fixed amount in another currency than the order's.
    CurrencyMismatch {
        code: String,
        currency: Currency,
    },
}

/// Whether `discount` may apply to an order of `subtotal` in `currency` at
/// `now`, by a customer who used it `customer_uses` times.
pub fn check_discount(
    discount: &Discount,
    customer_uses: i64,
    subtotal: i64,
    currency: Currency,
    now: OffsetDateTime,
) -> Result<(), DiscountRefusal> {
    let code = || discount.code.clone().unwrap_or_default();
    if !discount.active {
        return Err(DiscountRefusal::Disabled(code()));
    }
    if discount.starts_at.is_some_and(|at| now < at) {
        return Err(DiscountRefusal::NotStarted(code()));
    }
    if discount.ends_at.is_some_and(|at| now >= at) {
        return Err(DiscountRefusal::Expired(code()));
    }
    if discount
        .usage_limit
        .is_some_and(|limit| discount.times_used >= limit)
    {
        return Err(DiscountRefusal::LimitReached(code()));
    }
    if discount
        .per_customer_limit
        .is_some_and(|limit| customer_uses >= limit)
    {
        return Err(DiscountRefusal::CustomerLimitReached(code()));
    }
    if let Some(min) = discount.min_subtotal_cents
        && subtotal < min
    {
        return Err(DiscountRefusal::MinimumNotMet {
            code: code(),
            min_subtotal_cents: min,
        });
    }
    if discount.kind == DiscountKind::Fixed
        && let Some(own) = discount.currency
        && own != currency
    {
        return Err(DiscountRefusal::CurrencyMismatch {
            code: code(),
            currency: own,
        });
    }
    Ok(())
}

/// The discounts an order gets: every code asked for (each once, case
/// aside; one refused refuses the order), then the codes already on its
/// cart, then every automatic promotion whose conditions it meets (one
/// that does not is left out, silently).
pub fn admit(
    codes: &[String],
    cart_codes: &[String],
    known: &[DiscountUse],
    subtotal: i64,
    currency: Currency,
    now: OffsetDateTime,
) -> Result<Vec<Discount>, DiscountRefusal> {
    let mut asked: Vec<String> = Vec::new();
    for code in codes {
        let code = code.trim().to_uppercase();
        if asked.contains(&code) {
            return Err(DiscountRefusal::AppliedTwice(code));
        }
        asked.push(code);
    }
    for code in cart_codes {
        if !asked.contains(code) {
            asked.push(code.clone());
        }
    }
    let mut admitted = Vec::new();
    for code in asked {
        let known = known
            .iter()
            .find(|k| k.discount.code.as_deref() == Some(code.as_str()))
            .ok_or(DiscountRefusal::Unknown(code))?;
        check_discount(
            &known.discount,
            known.customer_uses,
            subtotal,
            currency,
            now,
        )?;
        admitted.push(known.discount.clone());
    }
    admitted.extend(
        known
            .iter()
            .filter(|k| k.discount.automatic)
            .filter(|k| {
                check_discount(&k.discount, k.customer_uses, subtotal, currency, now).is_ok()
            })
            .map(|k| k.discount.clone()),
    );
    Ok(admitted)
}

/// Why a checkout cannot be priced.
#[derive(Clone, Debug, PartialEq)]
pub enum Unpriced {
    Line(LineRefusal),
    Pricing(PricingRefusal),
    Discount(DiscountRefusal),
}

/// A checkout priced, with the discounts it uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckoutPrice {
    pub currency: Currency,
    pub priced: Priced,
    pub prices_include_tax: bool,
    /// The discounts admitted, whose uses the order claims.
    pub uses: Vec<Discount>,
}

impl CheckoutPrice {
    /// The breakdown an order keeps, with where it goes.
    pub fn freeze(self, checkout: &Checkout) -> OrderPricing {
        OrderPricing {
            subtotal_cents: self.priced.subtotal_cents,
            discount_cents: self.priced.discount_cents,
            shipping_cents: self.priced.shipping_cents,
            tax_cents: self.priced.tax_cents,
            prices_include_tax: self.prices_include_tax,
            tax_lines: self.priced.tax_lines,
            discounts: self.priced.discounts,
            shipping_address: checkout.shipping_address.clone(),
            billing_address: checkout.billing_address.clone(),
            shipping_method: self.priced.shipping,
        }
    }
}

/// Prices `wanted` (at the unit prices given, else today's) as `checkout`
/// asks, by its tables: the one path of both a quote and an order, so the
/// two agree to the cent. A checkout (`require_shipping`) in a shop that
/// ships must name the address and method.
pub fn price_checkout(
    checkout: &Checkout,
    wanted: &[Wanted],
    require_shipping: bool,
    now: OffsetDateTime,
) -> Result<CheckoutPrice, Unpriced> {
    let context = &checkout.context;
    let (currency, lines) = goods(wanted, &context.products).map_err(Unpriced::Line)?;
    let subtotal = lines.iter().map(Line::total).sum();
    let uses = admit(
        &checkout.discount_codes,
        &context.cart_codes,
        &context.discounts,
        subtotal,
        currency,
        now,
    )
    .map_err(Unpriced::Discount)?;
    fn destination(a: &PostalAddress) -> Destination<'_> {
        Destination {
            country: &a.country,
            region: a.region.as_deref(),
        }
    }
    let prices_include_tax = checkout.tax_inclusive.contains(&currency);
    let priced = price(&Pricing {
        currency,
        lines: &lines,
        ship_to: checkout.shipping_address.as_ref().map(destination),
        bill_to: checkout.billing_address.as_ref().map(destination),
        method: checkout.shipping_method.as_deref(),
        require_shipping,
        zones: &context.zones,
        rates: &context.rates,
        offers: &uses,
        settings: Settings {
            prices_include_tax,
            shipping_taxable: checkout.shipping_taxable,
        },
    })
    .map_err(Unpriced::Pricing)?;
    Ok(CheckoutPrice {
        currency,
        priced,
        prices_include_tax,
        uses,
    })
}

/// Whether an order gives its discounts' uses back: it had some, and it was
/// cancelled or all of what it was charged was refunded.
pub fn gives_back_discounts(order: &Order) -> bool {
    !order.pricing.discounts.is_empty()
        && (order.status == OrderStatus::Cancelled
            || (order.total_cents > 0 && order.refunded_cents >= order.total_cents))
}

/// What an order priced so is charged: `subtotal - discount + shipping`,
/// plus the tax when prices do not already include it.
pub fn order_total(pricing: &OrderPricing) -> i64 {
    let added_tax = if pricing.prices_include_tax {
        0
    } else {
        pricing.tax_cents
    };
    pricing.subtotal_cents - pricing.discount_cents + pricing.shipping_cents + added_tax
}

/// Prices an order; see the module's documentation for the rules.
pub fn price(input: &Pricing<'_>) -> Result<Priced, PricingRefusal> {
    let totals: Vec<i64> = input.lines.iter().map(Line::total).collect();
    let subtotal: i64 = totals.iter().sum();

    // Discounts on the goods, in the order given, never more than the subtotal.
    let mut discounts = Vec::new();
    let mut goods_discount = 0_i64;
    let mut free_shipping: Option<&Discount> = None;
    for offer in input.offers {
        let wanted = match offer.kind {
            DiscountKind::Percent => {
                div_round(i128::from(subtotal) * i128::from(offer.value), 10_000)
            }
            DiscountKind::Fixed => offer.value.max(0),
            DiscountKind::FreeShipping => {
                free_shipping.get_or_insert(offer);
                continue;
            }
        };
        let amount = wanted.min(subtotal - goods_discount);
        goods_discount += amount;
        discounts.push(AppliedDiscount {
            code: offer.code.clone(),
            amount_cents: amount,
        });
    }
    let goods = subtotal - goods_discount;

    // Shipping.
    let ships = input.lines.iter().any(|line| line.requires_shipping);
    if input.require_shipping && ships && !input.zones.is_empty() {
        if input.ship_to.is_none() {
            return Err(PricingRefusal::NoDestination);
        }
        if input.method.is_none() {
            return Err(PricingRefusal::NoMethod);
        }
    }
    let zone = match input.ship_to {
        Some(destination) => {
            let zone = zone_for(input.zones, destination.country);
            if let Some(zone) = zone
                && zone.currency != input.currency
            {
                return Err(PricingRefusal::CurrencyMismatch {
                    zone: zone.currency,
                    order: input.currency,
                });
            }
            zone
        }
        None => None,
    };
    let offered = options(zone, input.lines, goods);
    let shipping = match input.method {
        None => None,
        Some(code) => {
            let destination = input.ship_to.ok_or(PricingRefusal::NoDestination)?;
            let option = offered
                .iter()
                .find(|option| option.code == code)
                .ok_or_else(|| PricingRefusal::MethodUnavailable {
                    code: code.to_owned(),
                    country: destination.country.to_owned(),
                })?;
            Some(ChosenShipping {
                code: option.code.clone(),
                name: option.name.clone(),
                price_cents: option.price_cents,
            })
        }
    };
    let shipping_cents = shipping.as_ref().map_or(0, |s| s.price_cents);
    let mut shipping_discount = 0;
    if let Some(offer) = free_shipping {
        shipping_discount = shipping_cents;
        discounts.push(AppliedDiscount {
            code: offer.code.clone(),
            amount_cents: shipping_discount,
        });
    }
    let discount_cents = goods_discount + shipping_discount;

    // Tax, once per group of amounts that share their rates.
    let mut groups: BTreeMap<Vec<usize>, i64> = BTreeMap::new();
    if let Some(destination) = input.ship_to.or(input.bill_to) {
        let shares = allocate(goods_discount, &totals);
        for ((line, total), share) in input.lines.iter().zip(&totals).zip(shares) {
            let applied = rates_for(input.rates, destination, line.tax_category.as_deref());
            *groups.entry(applied).or_default() += total - share;
        }
        if input.settings.shipping_taxable && shipping_cents > shipping_discount {
            let applied = rates_for(input.rates, destination, None);
            *groups.entry(applied).or_default() += shipping_cents - shipping_discount;
        }
    }
    let mut per_rate: BTreeMap<usize, i64> = BTreeMap::new();
    for (applied, base) in &groups {
        let bps: Vec<u32> = applied.iter().map(|i| input.rates[*i].rate_bps).collect();
        for (index, tax) in
            applied
                .iter()
                .zip(group_tax(*base, &bps, input.settings.prices_include_tax))
        {
            *per_rate.entry(*index).or_default() += tax;
        }
    }
    let tax_lines: Vec<TaxLine> = per_rate
        .into_iter()
        .map(|(index, amount)| TaxLine {
            name: input.rates[index].name.clone(),
            rate_bps: input.rates[index].rate_bps,
            amount_cents: amount,
        })
        .collect();
    let tax_cents: i64 = tax_lines.iter().map(|t| t.amount_cents).sum();
    Ok(Priced {
        subtotal_cents: subtotal,
        discount_cents,
        shipping_cents,
        tax_cents,
        total_cents: order_total(&OrderPricing {
            subtotal_cents: subtotal,
            discount_cents,
            shipping_cents,
            tax_cents,
            prices_include_tax: input.settings.prices_include_tax,
            ..OrderPricing::default()
        }),
        tax_lines,
        discounts,
        shipping,
        options: offered,
    })
}

#[cfg(test)]
mod tests {
    use shop_wire::pricing::{DiscountId, ShippingMethod, ShippingZoneId, TaxRateId};

    use super::*;

    fn currency(code: &str) -> Currency {
        code.parse().expect("a known currency")
    }

    fn rate(
        country: &str,
        region: Option<&str>,
        name: &str,
        bps: u32,
        category: Option<&str>,
    ) -> TaxRate {
        TaxRate {
            id: TaxRateId::generate(),
            country: country.to_owned(),
            region: region.map(str::to_owned),
            name: name.to_owned(),
            rate_bps: bps,
            tax_category: category.map(str::to_owned),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn method(code: &str, rate: ShippingRate) -> ShippingMethod {
        ShippingMethod {
            code: code.to_owned(),
            name: code.to_uppercase(),
            rate,
            estimated_days: Some(3),
        }
    }

    fn zone(code: &str, countries: &[&str], methods: Vec<ShippingMethod>) -> ShippingZone {
        ShippingZone {
            id: ShippingZoneId::generate(),
            name: countries.join(","),
            countries: countries.iter().map(|c| (*c).to_owned()).collect(),
            currency: currency(code),
            methods,
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn line(quantity: i64, unit: i64) -> Line {
        Line {
            quantity,
            unit_price_cents: unit,
            weight_grams: None,
            tax_category: None,
            requires_shipping: true,
        }
    }

    fn book(quantity: i64, unit: i64) -> Line {
        Line {
            tax_category: Some("books".to_owned()),
            ..line(quantity, unit)
        }
    }

    fn weighing(grams: i64, l: Line) -> Line {
        Line {
            weight_grams: Some(grams),
            ..l
        }
    }

    fn code(code: &str, kind: DiscountKind, value: i64) -> Discount {
        Discount {
            id: DiscountId::generate(),
            code: Some(code.to_owned()),
            kind,
            value,
            currency: None,
            min_subtotal_cents: None,
            starts_at: None,
            ends_at: None,
            usage_limit: None,
            per_customer_limit: None,
            automatic: false,
            active: true,
            times_used: 0,
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    /// The shop of the examples: Germany (VAT 19 %, books 7 %, prices with
    /// VAT, shipping taxed), the US (California 7.25 %, prices without tax,
    /// shipping untaxed), Canada (Ontario's HST 13 % on goods and shipping),
    /// Japan (consumption tax 10 %, prices with it).
    fn shop() -> (Vec<ShippingZone>, Vec<TaxRate>) {
        let zones = vec![
            zone(
                "EUR",
                &["DE", "AT"],
                vec![
                    method("dhl", ShippingRate::Flat { amount_cents: 490 }),
                    method("parcel", ShippingRate::PerKg { amount_cents: 400 }),
                    method(
                        "free50",
                        ShippingRate::FreeOver {
                            amount_cents: 590,
                            threshold_cents: 5000,
                        },
                    ),
                ],
            ),
            zone(
                "USD",
                &["US"],
                vec![method("ground", ShippingRate::Flat { amount_cents: 500 })],
            ),
            zone(
                "CAD",
                &["CA"],
                vec![method("post", ShippingRate::Flat { amount_cents: 1500 })],
            ),
            zone(
                "JPY",
                &["JP"],
                vec![method("yamato", ShippingRate::Flat { amount_cents: 800 })],
            ),
        ];
        let rates = vec![
            rate("DE", None, "MwSt 19%", 1900, None),
            rate("DE", None, "MwSt 7%", 700, Some("books")),
            rate("US", Some("CA"), "California sales tax", 725, None),
            rate("CA", None, "GST", 500, None),
            rate("CA", Some("ON"), "HST (provincial part)", 800, None),
            rate("JP", None, "Consumption tax", 1000, None),
        ];
        (zones, rates)
    }

    struct Case {
        name: &'static str,
        currency: &'static str,
        lines: Vec<Line>,
        to: Option<(&'static str, Option<&'static str>)>,
        method: Option<&'static str>,
        offers: Vec<Discount>,
        settings: Settings,
        /// subtotal, discount, shipping, tax, total.
        expect: [i64; 5],
        tax_lines: Vec<(&'static str, i64)>,
    }

    const EU: Settings = Settings {
        prices_include_tax: true,
        shipping_taxable: true,
    };
    const US: Settings = Settings {
        prices_include_tax: false,
        shipping_taxable: false,
    };
    const CANADA: Settings = Settings {
        prices_include_tax: false,
        shipping_taxable: true,
    };

    #[test]
    fn real_examples_add_up_to_the_cent() {
        let (zones, rates) = shop();
        let cases = vec![
            Case {
                // 5488 / 1.19 = 4611.76: the net is 4612 and the VAT 876.
                name: "EU VAT inside the prices, shipping taxed",
                currency: "EUR",
                lines: vec![line(2, 2499)],
                to: Some(("DE", None)),
                method: Some("dhl"),
                offers: vec![],
                settings: EU,
                expect: [4998, 0, 490, 876, 5488],
                tax_lines: vec![("MwSt 19%", 876)],
            },
            Case {
                // A book at 7 % (2000 * 7/107 = 130.84) and a mug at 19 % (1190 * 19/119 = 190).
                name: "EU reduced rate for the book category",
                currency: "EUR",
                lines: vec![book(1, 2000), line(1, 1190)],
                to: Some(("DE", None)),
                method: None,
                offers: vec![],
                settings: EU,
                expect: [3190, 0, 0, 321, 3190],
                tax_lines: vec![("MwSt 19%", 190), ("MwSt 7%", 131)],
            },
            Case {
                // 5997 * 7.25 % = 434.78 on the goods only; shipping is not taxed.
                name: "US state rate on top of the prices",
                currency: "USD",
                lines: vec![line(3, 1999)],
                to: Some(("US", Some("CA"))),
                method: Some("ground"),
                offers: vec![],
                settings: US,
                expect: [5997, 0, 500, 435, 6932],
                tax_lines: vec![("California sales tax", 435)],
            },
            Case {
                name: "US address in a state without a rate pays no tax",
                currency: "USD",
                lines: vec![line(3, 1999)],
                to: Some(("US", Some("OR"))),
                method: Some("ground"),
                offers: vec![],
                settings: US,
                expect: [5997, 0, 500, 0, 6497],
                tax_lines: vec![],
            },
            Case {
                // (2000 + 1500) * 5 % = 175 and * 8 % = 280: federal and provincial stack.
                name: "country and region rates stack, shipping taxed",
                currency: "CAD",
                lines: vec![line(2, 1000)],
                to: Some(("CA", Some("on"))),
                method: Some("post"),
                offers: vec![],
                settings: CANADA,
                expect: [2000, 0, 1500, 455, 3955],
                tax_lines: vec![("GST", 175), ("HST (provincial part)", 280)],
            },
            Case {
                name: "free over the threshold",
                currency: "EUR",
                lines: vec![line(1, 5000)],
                to: Some(("DE", None)),
                method: Some("free50"),
                offers: vec![],
                settings: EU,
                expect: [5000, 0, 0, 798, 5000],
                tax_lines: vec![("MwSt 19%", 798)],
            },
            Case {
                // 4900 + 590 = 5490, VAT inside 876.55 -> 877.
                name: "under the threshold shipping is charged, and taxed",
                currency: "EUR",
                lines: vec![line(1, 4900)],
                to: Some(("DE", None)),
                method: Some("free50"),
                offers: vec![],
                settings: EU,
                expect: [4900, 0, 590, 877, 5490],
                tax_lines: vec![("MwSt 19%", 877)],
            },
            Case {
                name: "without an address nothing is shipped or taxed",
                currency: "USD",
                lines: vec![line(2, 1999)],
                to: None,
                method: None,
                offers: vec![],
                settings: US,
                expect: [3998, 0, 0, 0, 3998],
                tax_lines: vec![],
            },
            Case {
                // 2 * 1200 g = 2.4 kg: three started kilograms at 4.00.
                name: "per kg by every started kilogram",
                currency: "EUR",
                lines: vec![weighing(1200, line(2, 1000))],
                to: Some(("AT", None)),
                method: Some("parcel"),
                offers: vec![],
                settings: EU,
                expect: [2000, 0, 1200, 0, 3200],
                tax_lines: vec![],
            },
            Case {
                name: "yen have no minor unit: 1100 with 10 % inside is 100",
                currency: "JPY",
                lines: vec![line(1, 1100)],
                to: Some(("JP", None)),
                method: None,
                offers: vec![],
                settings: EU,
                expect: [1100, 0, 0, 100, 1100],
                tax_lines: vec![("Consumption tax", 100)],
            },
            Case {
                // 10 % of 2997 is 299.7 -> 300; VAT inside 2697 + 490: 3187 * 19/119 = 508.85.
                name: "percent code rounds half up, VAT on the discounted amount",
                currency: "EUR",
                lines: vec![line(3, 999)],
                to: Some(("DE", None)),
                method: Some("dhl"),
                offers: vec![code("TENOFF", DiscountKind::Percent, 1000)],
                settings: EU,
                expect: [2997, 300, 490, 509, 3187],
                tax_lines: vec![("MwSt 19%", 509)],
            },
            Case {
                // The 5.00 comes off the goods: 5497 * 7.25 % = 398.53.
                name: "fixed discount lowers the taxable amount",
                currency: "USD",
                lines: vec![line(3, 1999)],
                to: Some(("US", Some("CA"))),
                method: Some("ground"),
                offers: vec![code("FIVE", DiscountKind::Fixed, 500)],
                settings: US,
                expect: [5997, 500, 500, 399, 6396],
                tax_lines: vec![("California sales tax", 399)],
            },
            Case {
                // The discount is spread 2000:1190 over the book and the mug
                // (200 and 119 of 319), each taxed at its own rate.
                name: "a discount is shared among lines of different rates",
                currency: "EUR",
                lines: vec![book(1, 2000), line(1, 1190)],
                to: Some(("DE", None)),
                method: None,
                offers: vec![code("TENOFF", DiscountKind::Percent, 1000)],
                settings: EU,
                // 1800 * 7/107 = 117.76 and 1071 * 19/119 = 171.
                expect: [3190, 319, 0, 289, 2871],
                tax_lines: vec![("MwSt 19%", 171), ("MwSt 7%", 118)],
            },
            Case {
                name: "free shipping shows as a discount of the whole shipping price",
                currency: "EUR",
                lines: vec![line(1, 2380)],
                to: Some(("DE", None)),
                method: Some("dhl"),
                offers: vec![code("SHIPFREE", DiscountKind::FreeShipping, 0)],
                settings: EU,
                expect: [2380, 490, 490, 380, 2380],
                tax_lines: vec![("MwSt 19%", 380)],
            },
            Case {
                name: "under the free-shipping threshold once the discount is taken",
                currency: "EUR",
                lines: vec![line(1, 5000)],
                to: Some(("DE", None)),
                method: Some("free50"),
                offers: vec![code("ONE", DiscountKind::Fixed, 100)],
                settings: EU,
                // 4900 + 590 = 5490, VAT inside 876.55 -> 877.
                expect: [5000, 100, 590, 877, 5490],
                tax_lines: vec![("MwSt 19%", 877)],
            },
            Case {
                name: "discounts never take more than the goods",
                currency: "USD",
                lines: vec![line(1, 300)],
                to: Some(("US", Some("CA"))),
                method: Some("ground"),
                offers: vec![
                    code("FIVE", DiscountKind::Fixed, 500),
                    code("TENOFF", DiscountKind::Percent, 1000),
                ],
                settings: US,
                expect: [300, 300, 500, 0, 500],
                tax_lines: vec![("California sales tax", 0)],
            },
        ];
        for case in cases {
            let priced = price(&Pricing {
                currency: currency(case.currency),
                lines: &case.lines,
                ship_to: case
                    .to
                    .map(|(country, region)| Destination { country, region }),
                bill_to: None,
                method: case.method,
                require_shipping: false,
                zones: &zones,
                rates: &rates,
                offers: &case.offers,
                settings: case.settings,
            })
            .unwrap_or_else(|refusal| panic!("{}: {refusal:?}", case.name));
            assert_eq!(
                [
                    priced.subtotal_cents,
                    priced.discount_cents,
                    priced.shipping_cents,
                    priced.tax_cents,
                    priced.total_cents
                ],
                case.expect,
                "{}",
                case.name
            );
            let lines: Vec<(&str, i64)> = priced
                .tax_lines
                .iter()
                .map(|t| (t.name.as_str(), t.amount_cents))
                .collect();
            assert_eq!(lines, case.tax_lines, "{}", case.name);
            let discounts: i64 = priced.discounts.iter().map(|d| d.amount_cents).sum();
            assert_eq!(discounts, priced.discount_cents, "{}", case.name);
            let added = if case.settings.prices_include_tax {
                0
            } else {
                priced.tax_cents
            };
            assert_eq!(
                priced.total_cents,
                priced.subtotal_cents - priced.discount_cents + priced.shipping_cents + added,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn rounding_is_once_per_rate_not_per_line() {
        // Three lines of 0.05 at 10 %: per line each would round 0.5 up to
        // 1 (3 in all); once on the 15 cents it is 1.5 -> 2.
        let (zones, _) = shop();
        let rates = vec![rate("US", None, "Ten", 1000, None)];
        let lines = vec![line(1, 5), line(1, 5), line(1, 5)];
        let priced = price(&Pricing {
            currency: Currency::USD,
            lines: &lines,
            ship_to: None,
            bill_to: Some(Destination {
                country: "US",
                region: None,
            }),
            method: None,
            require_shipping: false,
            zones: &zones,
            rates: &rates,
            offers: &[],
            settings: US,
        })
        .expect("priced");
        assert_eq!(priced.tax_cents, 2, "taxed where it is billed");
    }

    #[test]
    fn the_methods_listed_are_those_that_ship_the_goods() {
        let (zones, rates) = shop();
        let to_de = Some(Destination {
            country: "DE",
            region: None,
        });
        let base = |lines: &'static [Line]| Pricing {
            currency: currency("EUR"),
            lines,
            ship_to: to_de,
            bill_to: None,
            method: None,
            require_shipping: false,
            zones: &zones,
            rates: &rates,
            offers: &[],
            settings: EU,
        };
        static WEIGHTLESS: [Line; 1] = [Line {
            quantity: 1,
            unit_price_cents: 1000,
            weight_grams: None,
            tax_category: None,
            requires_shipping: true,
        }];
        let codes = |p: Priced| p.options.into_iter().map(|o| o.code).collect::<Vec<_>>();
        assert_eq!(
            codes(price(&base(&WEIGHTLESS)).expect("priced")),
            ["dhl", "free50"],
            "per kg needs every product's weight"
        );
        static WEIGHED: [Line; 1] = [Line {
            quantity: 1,
            unit_price_cents: 1000,
            weight_grams: Some(500),
            tax_category: None,
            requires_shipping: true,
        }];
        assert_eq!(
            codes(price(&base(&WEIGHED)).expect("priced")),
            ["dhl", "parcel", "free50"]
        );
        assert_eq!(
            price(&Pricing {
                method: Some("parcel"),
                ..base(&WEIGHTLESS)
            }),
            Err(PricingRefusal::MethodUnavailable {
                code: "parcel".to_owned(),
                country: "DE".to_owned()
            })
        );
        assert_eq!(
            price(&Pricing {
                method: Some("dhl"),
                ship_to: Some(Destination {
                    country: "FR",
                    region: None
                }),
                ..base(&WEIGHTLESS)
            }),
            Err(PricingRefusal::MethodUnavailable {
                code: "dhl".to_owned(),
                country: "FR".to_owned()
            }),
            "no zone ships to France"
        );
        assert_eq!(
            price(&Pricing {
                currency: Currency::USD,
                ..base(&WEIGHTLESS)
            }),
            Err(PricingRefusal::CurrencyMismatch {
                zone: currency("EUR"),
                order: Currency::USD
            })
        );
        assert_eq!(
            price(&Pricing {
                method: Some("dhl"),
                ship_to: None,
                ..base(&WEIGHTLESS)
            }),
            Err(PricingRefusal::NoDestination)
        );
        // A checkout in a shop that ships must say where to and how.
        let checkout = |ship_to, method| Pricing {
            ship_to,
            method,
            require_shipping: true,
            ..base(&WEIGHTLESS)
        };
        assert_eq!(
            price(&checkout(None, None)),
            Err(PricingRefusal::NoDestination)
        );
        assert_eq!(price(&checkout(to_de, None)), Err(PricingRefusal::NoMethod));
        assert!(price(&checkout(to_de, Some("dhl"))).is_ok());
        assert!(
            price(&Pricing {
                zones: &[],
                ..checkout(None, None)
            })
            .is_ok(),
            "a shop without zones ships nothing"
        );
        static DOWNLOAD: [Line; 1] = [Line {
            quantity: 1,
            unit_price_cents: 1000,
            weight_grams: None,
            tax_category: None,
            requires_shipping: false,
        }];
        assert!(
            price(&Pricing {
                lines: &DOWNLOAD,
                ..checkout(None, None)
            })
            .is_ok(),
            "goods nobody ships need no address"
        );
    }

    #[test]
    fn goods_are_priced_from_the_products_in_one_currency() {
        let facts = |sku: &str, code: &str, active: bool| ProductFacts {
            sku: sku.to_owned(),
            price_cents: 1000,
            currency: currency(code),
            active,
            weight_grams: Some(250),
            tax_category: None,
            requires_shipping: true,
        };
        let want = |sku: &str, frozen: Option<i64>| Wanted {
            sku: sku.to_owned(),
            quantity: 2,
            unit_price_cents: frozen,
        };
        let products = [
            facts("A", "EUR", true),
            facts("B", "EUR", true),
            facts("C", "USD", true),
            facts("OLD", "EUR", false),
        ];
        let (code, lines) =
            goods(&[want("A", None), want("B", Some(900))], &products).expect("priced");
        assert_eq!(code, currency("EUR"));
        assert_eq!(
            lines.iter().map(|l| l.unit_price_cents).collect::<Vec<_>>(),
            [1000, 900],
            "a cart's frozen price wins"
        );
        assert_eq!(lines[0].weight_grams, Some(250));
        assert!(matches!(
            goods(&[want("A", None), want("C", None)], &products),
            Err(LineRefusal::CurrencyMismatch { .. })
        ));
        assert!(matches!(
            goods(&[want("NONE", None)], &products),
            Err(LineRefusal::UnknownSku(_))
        ));
        assert!(matches!(
            goods(&[want("OLD", None)], &products),
            Err(LineRefusal::Archived(_))
        ));
    }

    #[test]
    fn each_refused_code_says_why_and_automatic_ones_apply_when_they_may() {
        let at = |day: u8| {
            time::Date::from_calendar_date(2026, time::Month::December, day)
                .expect("date")
                .midnight()
                .assume_utc()
        };
        let now = at(7);
        let known = |d: Discount, uses: i64| DiscountUse {
            discount: d,
            customer_uses: uses,
        };
        let mut window = code("WINTER", DiscountKind::Percent, 1000);
        window.starts_at = Some(at(1));
        window.ends_at = Some(at(24));
        let mut early = window.clone();
        early.code = Some("EARLY".to_owned());
        early.starts_at = Some(at(8));
        let mut over = window.clone();
        over.code = Some("OVER".to_owned());
        over.ends_at = Some(at(7));
        let mut spent = code("SPENT", DiscountKind::Fixed, 100);
        spent.usage_limit = Some(10);
        spent.times_used = 10;
        let mut once = code("ONCE", DiscountKind::Fixed, 100);
        once.per_customer_limit = Some(1);
        let mut big = code("BIG", DiscountKind::Fixed, 100);
        big.min_subtotal_cents = Some(5000);
        let mut euro = code("EURO", DiscountKind::Fixed, 100);
        euro.currency = Some(currency("EUR"));
        let mut off = code("OFF", DiscountKind::FreeShipping, 0);
        off.active = false;
        let mut auto = code("", DiscountKind::FreeShipping, 0);
        auto.code = None;
        auto.automatic = true;
        auto.min_subtotal_cents = Some(2000);
        let table = vec![
            known(window, 0),
            known(early, 0),
            known(over, 0),
            known(spent, 0),
            known(once, 1),
            known(big, 0),
            known(euro, 0),
            known(off, 0),
            known(auto, 0),
        ];
        let admit_one = |c: &str, subtotal: i64| {
            admit(&[c.to_owned()], &[], &table, subtotal, Currency::USD, now)
        };
        let codes = |admitted: Vec<Discount>| {
            admitted
                .into_iter()
                .map(|d| d.code.unwrap_or_default())
                .collect::<Vec<_>>()
        };
        assert_eq!(codes(admit_one("winter", 1000).expect("valid")), ["WINTER"]);
        assert_eq!(
            codes(admit_one("winter", 3000).expect("valid")),
            ["WINTER", ""],
            "the automatic promotion applies once its minimum is met"
        );
        let refusals = [
            ("NOPE", DiscountRefusal::Unknown("NOPE".to_owned())),
            ("EARLY", DiscountRefusal::NotStarted("EARLY".to_owned())),
            ("OVER", DiscountRefusal::Expired("OVER".to_owned())),
            ("SPENT", DiscountRefusal::LimitReached("SPENT".to_owned())),
            (
                "ONCE",
                DiscountRefusal::CustomerLimitReached("ONCE".to_owned()),
            ),
            (
                "BIG",
                DiscountRefusal::MinimumNotMet {
                    code: "BIG".to_owned(),
                    min_subtotal_cents: 5000,
                },
            ),
            (
                "EURO",
                DiscountRefusal::CurrencyMismatch {
                    code: "EURO".to_owned(),
                    currency: currency("EUR"),
                },
            ),
            ("OFF", DiscountRefusal::Disabled("OFF".to_owned())),
        ];
        for (given, refusal) in refusals {
            assert_eq!(admit_one(given, 1000), Err(refusal), "{given}");
        }
        assert_eq!(
            admit(
                &["WINTER".to_owned(), "Winter".to_owned()],
                &[],
                &table,
                1000,
                Currency::USD,
                now
            ),
            Err(DiscountRefusal::AppliedTwice("WINTER".to_owned()))
        );
        assert_eq!(
            codes(
                admit(
                    &["WINTER".to_owned()],
                    &["WINTER".to_owned()],
                    &table,
                    1000,
                    Currency::USD,
                    now
                )
                .expect("a cart's code given again counts once")
            ),
            ["WINTER"]
        );
    }

    #[test]
    fn allocation_adds_up_exactly() {
        assert_eq!(allocate(100, &[1, 1, 1]), [34, 33, 33]);
        assert_eq!(allocate(10, &[3, 7]), [3, 7]);
        assert_eq!(allocate(5, &[0, 0]), [0, 0]);
        assert_eq!(allocate(0, &[4, 6]), [0, 0]);
        assert_eq!(allocate(7, &[1, 2]), [2, 5]);
        let shares = allocate(999_999, &[3, 5, 7, 11, 13]);
        assert_eq!(shares.iter().sum::<i64>(), 999_999);
    }
}
