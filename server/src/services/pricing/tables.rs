//! The shop's shipping zones and tax rates as staff write them, checked and
//! tidied before they are stored. Each reason a table is refused that a
//! client may want to tell apart has its own code.

use std::collections::BTreeSet;

use shop_wire::pricing::{
    DiscountKind, NewDiscount, NewShippingZone, NewTaxRate, ShippingMethod, ShippingRate,
    is_country,
};

use crate::services::error::{DomainError, DomainResult};

const MAX_NAME: usize = 100;
const MAX_CODE: usize = 40;
const MAX_METHODS: usize = 20;
const MAX_COUNTRIES: usize = 250;
/// The most a shipping price may be (a million in major units).
const MAX_SHIPPING: i64 = 100_000_000;
/// The largest free-shipping threshold, as the largest product price.
const MAX_THRESHOLD: i64 = 10_000_000_000;
const MAX_DAYS: u32 = 365;
/// 100 % in basis points.
pub const MAX_RATE_BPS: i64 = 10_000;

/// A name people read: trimmed, 1 to [`MAX_NAME`] characters, no control characters.
fn name(field: &str, text: &str) -> DomainResult<String> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_NAME || text.chars().any(char::is_control) {
        return Err(DomainError::validation(
            field,
            format!("must be 1 to {MAX_NAME} characters, without control characters"),
        ));
    }
    Ok(text.to_owned())
}

/// A code scripts type: lower-case letters, digits, `-` and `_`, starting
/// with a letter or digit, at most [`MAX_CODE`] characters.
pub fn check_code(field: &str, code: &str) -> DomainResult<String> {
    let code = code.trim();
    let mut chars = code.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !first_ok || !rest_ok || code.len() > MAX_CODE {
        return Err(DomainError::validation(
            field,
            format!(
                "must be 1 to {MAX_CODE} of a-z, 0-9, `-` and `_`, starting with a letter or digit"
            ),
        ));
    }
    Ok(code.to_owned())
}

/// An ISO 3166-1 alpha-2 country, in upper case.
pub fn check_country(field: &str, country: &str) -> DomainResult<String> {
    let code = country.trim().to_ascii_uppercase();
    if !is_country(&code) {
        return Err(DomainError::rejected(
            "unknown_country",
            field,
            format!(
                "`{}` is not an ISO 3166-1 alpha-2 country code (e.g. DE, US)",
                country.trim()
            ),
        ));
    }
    Ok(code)
}

fn amount(field: &str, cents: i64, max: i64) -> DomainResult<()> {
    if !(0..=max).contains(&cents) {
        return Err(DomainError::rejected(
            "invalid_shipping_rate",
            field,
            format!("must be between 0 and {max} minor units"),
        ));
    }
    Ok(())
}

fn method(at: &str, method: ShippingMethod) -> DomainResult<ShippingMethod> {
    let field = |part: &str| format!("{at}.{part}");
    let rate_field = field("rate");
    match method.rate {
        ShippingRate::Flat { amount_cents } | ShippingRate::PerKg { amount_cents } => {
            amount(&rate_field, amount_cents, MAX_SHIPPING)?;
        }
        ShippingRate::FreeOver {
            amount_cents,
            threshold_cents,
        } => {
            amount(&rate_field, amount_cents, MAX_SHIPPING)?;
            amount(
                &field("rate.threshold_cents"),
                threshold_cents,
                MAX_THRESHOLD,
            )?;
        }
    }
    if method.estimated_days.is_some_and(|days| days > MAX_DAYS) {
        return Err(DomainError::validation(
            &field("estimated_days"),
            format!("must be at most {MAX_DAYS}"),
        ));
    }
    Ok(ShippingMethod {
        code: check_code(&field("code"), &method.code)?,
        name: name(&field("name"), &method.name)?,
        rate: method.rate,
        estimated_days: method.estimated_days,
    })
}

/// A zone as it will be stored: countries upper case and each once, method
/// codes unique within it.
pub fn check_zone(zone: NewShippingZone) -> DomainResult<NewShippingZone> {
    if zone.countries.is_empty() || zone.countries.len() > MAX_COUNTRIES {
        return Err(DomainError::validation(
            "countries",
            format!("give 1 to {MAX_COUNTRIES} countries"),
        ));
    }
    if zone.methods.is_empty() || zone.methods.len() > MAX_METHODS {
        return Err(DomainError::validation(
            "methods",
            format!("give 1 to {MAX_METHODS} methods"),
        ));
    }
    let mut countries = BTreeSet::new();
    for (i, country) in zone.countries.iter().enumerate() {
        let code = check_country(&format!("countries[{i}]"), country)?;
        if !countries.insert(code.clone()) {
            return Err(DomainError::validation(
                &format!("countries[{i}]"),
                format!("{code} is listed twice"),
            ));
        }
    }
    let mut codes = BTreeSet::new();
    let mut methods = Vec::with_capacity(zone.methods.len());
    for (i, given) in zone.methods.into_iter().enumerate() {
        let checked = method(&format!("methods[{i}]"), given)?;
        if !codes.insert(checked.code.clone()) {
            return Err(DomainError::validation(
                &format!("methods[{i}].code"),
                format!("{} is used twice in this zone", checked.code),
            ));
        }
        methods.push(checked);
    }
    Ok(NewShippingZone {
        name: name("name", &zone.name)?,
        countries: countries.into_iter().collect(),
        currency: zone.currency,
        methods,
    })
}

/// A rate as it will be stored; `rate_bps` is refused outside 0..=10000.
pub fn check_rate(rate: NewTaxRate) -> DomainResult<(NewTaxRate, u32)> {
    let bps = u32::try_from(rate.rate_bps)
        .ok()
        .filter(|bps| i64::from(*bps) <= MAX_RATE_BPS)
        .ok_or_else(|| {
            DomainError::rejected(
                "invalid_tax_rate",
                "rate_bps",
                format!(
                    "{} is not a rate: give basis points from 0 to {MAX_RATE_BPS} (100 %)",
                    rate.rate_bps
                ),
            )
        })?;
    let region = match rate.region.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(region) => {
            if region.chars().count() > MAX_NAME || region.chars().any(char::is_control) {
                return Err(DomainError::validation(
                    "region",
                    format!("must be at most {MAX_NAME} characters, without control characters"),
                ));
            }
            Some(region.to_uppercase())
        }
    };
    let tax_category = rate
        .tax_category
        .as_deref()
        .map(|c| check_code("tax_category", c))
        .transpose()?;
    Ok((
        NewTaxRate {
            country: check_country("country", &rate.country)?,
            region,
            name: name("name", &rate.name)?,
            rate_bps: rate.rate_bps,
            tax_category,
        },
        bps,
    ))
}

/// The largest fixed discount or minimum subtotal, as the largest product price.
const MAX_AMOUNT: i64 = 10_000_000_000;
/// The most uses a limit may count.
const MAX_USES: i64 = 1_000_000_000;

/// A discount code as stored: upper case, letters, digits, `-` and `_`.
pub fn check_discount_code(field: &str, code: &str) -> DomainResult<String> {
    let code = code.trim().to_uppercase();
    let mut chars = code.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !first_ok || !rest_ok || code.len() > MAX_CODE {
        return Err(DomainError::validation(
            field,
            format!("must be 1 to {MAX_CODE} letters, digits, `-` and `_`, like WINTER-10"),
        ));
    }
    Ok(code)
}

/// A discount as it will be stored. Each reason has its code: a window that
/// ends before it starts is `invalid_discount_window`, a value out of range
/// for the kind `invalid_discount_value`.
pub fn check_discount(discount: NewDiscount) -> DomainResult<NewDiscount> {
    let code = match (&discount.code, discount.automatic) {
        (Some(code), _) => Some(check_discount_code("code", code)?),
        (None, true) => None,
        (None, false) => {
            return Err(DomainError::validation(
                "code",
                "give a code, or make the discount automatic",
            ));
        }
    };
    let value = |min: i64, max: i64, what: &str| {
        if (min..=max).contains(&discount.value) {
            Ok(())
        } else {
            Err(DomainError::rejected(
                "invalid_discount_value",
                "value",
                format!("{what}: give {min} to {max}"),
            ))
        }
    };
    match discount.kind {
        DiscountKind::Percent => value(1, MAX_RATE_BPS, "basis points of the subtotal")?,
        DiscountKind::Fixed => {
            value(1, MAX_AMOUNT, "minor units off the subtotal")?;
            if discount.currency.is_none() {
                return Err(DomainError::validation(
                    "currency",
                    "a fixed amount needs its currency",
                ));
            }
        }
        DiscountKind::FreeShipping => value(0, 0, "free shipping takes no value")?,
    }
    if let (Some(starts), Some(ends)) = (discount.starts_at, discount.ends_at)
        && ends <= starts
    {
        return Err(DomainError::rejected(
            "invalid_discount_window",
            "ends_at",
            "the discount must end after it starts",
        ));
    }
    for (field, limit, max) in [
        (
            "min_subtotal_cents",
            discount.min_subtotal_cents,
            MAX_AMOUNT,
        ),
        ("usage_limit", discount.usage_limit, MAX_USES),
        ("per_customer_limit", discount.per_customer_limit, MAX_USES),
    ] {
        let min = i64::from(field != "min_subtotal_cents");
        if limit.is_some_and(|n| !(min..=max).contains(&n)) {
            return Err(DomainError::validation(
                field,
                format!("must be between {min} and {max}"),
            ));
        }
    }
    Ok(NewDiscount { code, ..discount })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AppError;

    fn zone() -> NewShippingZone {
        NewShippingZone {
            name: " Germany ".to_owned(),
            countries: vec!["de".to_owned(), "AT".to_owned()],
            currency: "EUR".parse().expect("currency"),
            methods: vec![ShippingMethod {
                code: "dhl".to_owned(),
                name: "DHL Paket".to_owned(),
                rate: ShippingRate::Flat { amount_cents: 490 },
                estimated_days: Some(2),
            }],
        }
    }

    fn rate(bps: i64) -> NewTaxRate {
        NewTaxRate {
            country: "us".to_owned(),
            region: Some(" ca ".to_owned()),
            name: "California".to_owned(),
            rate_bps: bps,
            tax_category: None,
        }
    }

    fn code_of(err: DomainError) -> &'static str {
        AppError::from(err).code()
    }

    #[test]
    fn tables_are_tidied() {
        let zone = check_zone(zone()).expect("valid");
        assert_eq!(zone.name, "Germany");
        assert_eq!(zone.countries, ["AT", "DE"]);
        let (rate, bps) = check_rate(rate(725)).expect("valid");
        assert_eq!(
            (rate.country.as_str(), rate.region.as_deref(), bps),
            ("US", Some("CA"), 725)
        );
    }

    #[test]
    fn each_bad_table_has_its_code() {
        let mut unknown = zone();
        unknown.countries.push("XX".to_owned());
        assert_eq!(
            code_of(check_zone(unknown).expect_err("XX")),
            "unknown_country"
        );
        let mut twice = zone();
        twice.countries.push("DE".to_owned());
        assert_eq!(
            code_of(check_zone(twice).expect_err("twice")),
            "validation_failed"
        );
        let mut negative = zone();
        negative.methods[0].rate = ShippingRate::Flat { amount_cents: -1 };
        assert_eq!(
            code_of(check_zone(negative).expect_err("negative")),
            "invalid_shipping_rate"
        );
        let mut same_code = zone();
        same_code.methods.push(same_code.methods[0].clone());
        assert_eq!(
            code_of(check_zone(same_code).expect_err("code")),
            "validation_failed"
        );
        for bps in [-1, 10_001, i64::MAX] {
            assert_eq!(
                code_of(check_rate(rate(bps)).expect_err("rate")),
                "invalid_tax_rate"
            );
        }
        assert!(check_rate(rate(0)).is_ok() && check_rate(rate(10_000)).is_ok());
        let mut country = rate(100);
        country.country = "ZZ".to_owned();
        assert_eq!(
            code_of(check_rate(country).expect_err("ZZ")),
            "unknown_country"
        );
    }

    fn discount(kind: DiscountKind, value: i64) -> NewDiscount {
        NewDiscount {
            code: Some(" winter-10 ".to_owned()),
            kind,
            value,
            currency: Some(shop_wire::money::Currency::USD),
            min_subtotal_cents: None,
            starts_at: None,
            ends_at: None,
            usage_limit: Some(10),
            per_customer_limit: None,
            automatic: false,
        }
    }

    #[test]
    fn discounts_are_checked_with_a_code_per_reason() {
        let checked = check_discount(discount(DiscountKind::Percent, 1000)).expect("valid");
        assert_eq!(checked.code.as_deref(), Some("WINTER-10"));
        let at = time::OffsetDateTime::UNIX_EPOCH;
        let mut backwards = discount(DiscountKind::Percent, 1000);
        backwards.starts_at = Some(at + time::Duration::days(2));
        backwards.ends_at = Some(at);
        assert_eq!(
            code_of(check_discount(backwards).expect_err("window")),
            "invalid_discount_window"
        );
        for (kind, value) in [
            (DiscountKind::Percent, 0),
            (DiscountKind::Percent, 10_001),
            (DiscountKind::Fixed, 0),
            (DiscountKind::FreeShipping, 5),
        ] {
            assert_eq!(
                code_of(check_discount(discount(kind, value)).expect_err("value")),
                "invalid_discount_value",
                "{kind} {value}"
            );
        }
        let mut nameless = discount(DiscountKind::FreeShipping, 0);
        nameless.code = None;
        assert_eq!(
            code_of(check_discount(nameless.clone()).expect_err("code")),
            "validation_failed"
        );
        nameless.automatic = true;
        assert!(
            check_discount(nameless).is_ok(),
            "an automatic promotion needs no code"
        );
        let mut zero = discount(DiscountKind::Fixed, 500);
        zero.usage_limit = Some(0);
        assert_eq!(
            code_of(check_discount(zero).expect_err("limit")),
            "validation_failed"
        );
    }
}
