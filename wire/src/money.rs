//! Money: integer minor units plus an ISO 4217 currency, never floats.
//!
//! Prices travel as `price_cents` (minor units: cents for USD, yen for JPY,
//! fils for KWD). People type and read decimals, so this module converts
//! between the two exactly, by the currency's own number of decimals.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An ISO 4217 currency code such as `USD` or `JPY`, checked against the standard.
/// Its OpenAPI schema, the list of codes, is in `schemas.rs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(iso_currency::Currency);

impl Currency {
    pub const USD: Currency = Currency(iso_currency::Currency::USD);

    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Digits after the decimal point in a written amount: 2 for USD, 0 for JPY, 3 for KWD.
    pub fn decimals(self) -> u32 {
        self.0.exponent().map_or(0, u32::from)
    }
}

impl Default for Currency {
    fn default() -> Self {
        Currency::USD
    }
}

impl FromStr for Currency {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let code = s.trim();
        iso_currency::Currency::from_code(&code.to_ascii_uppercase())
            // Funds codes and metals (XAU, XDR...) have no minor unit to price in.
            .filter(|c| c.exponent().is_some())
            .map(Currency)
            .ok_or_else(|| {
                format!(
                    "unknown currency `{code}` (expected an ISO 4217 code such as USD, EUR or JPY)"
                )
            })
    }
}

impl TryFrom<String> for Currency {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.code().to_owned()
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Parses a written amount (`19.99`, `20`, `1,299.50` is refused) into minor
/// units of `currency`, exactly: more decimals than the currency has is an
/// error, not a rounding.
pub fn parse_amount(text: &str, currency: Currency) -> Result<i64, String> {
    let text = text.trim();
    let invalid = || format!("`{text}` is not an amount (expected digits like 19.99)");
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || !digits(whole)
        || !digits(fraction)
        || (text.contains('.') && fraction.is_empty())
    {
        return Err(invalid());
    }
    let decimals = currency.decimals();
    if fraction.len() > decimals as usize {
        return Err(format!(
            "`{text}` has more decimals than {currency} allows ({decimals})"
        ));
    }
    let scale = 10_i64.pow(decimals);
    let padded = format!("{fraction:0<width$}", width = decimals as usize);
    let whole: i64 = whole.parse().map_err(|_| invalid())?;
    let fraction: i64 = if padded.is_empty() {
        0
    } else {
        padded.parse().map_err(|_| invalid())?
    };
    whole
        .checked_mul(scale)
        .and_then(|w| w.checked_add(fraction))
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Writes minor units as a decimal in `currency`: 1999 USD is `19.99`.
pub fn format_amount(minor: i64, currency: Currency) -> String {
    let decimals = currency.decimals();
    if decimals == 0 {
        return minor.to_string();
    }
    let scale = 10_i64.pow(decimals);
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let scale = scale.unsigned_abs();
    format!(
        "{sign}{}.{:0width$}",
        abs / scale,
        abs % scale,
        width = decimals as usize
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn currency(code: &str) -> Currency {
        code.parse().expect("a known currency")
    }

    #[test]
    fn amounts_convert_exactly_by_the_currency_decimals() {
        let usd = currency("USD");
        assert_eq!(parse_amount("19.99", usd), Ok(1999));
        assert_eq!(parse_amount("20", usd), Ok(2000));
        assert_eq!(parse_amount("0.5", usd), Ok(50));
        assert_eq!(parse_amount("1200", currency("JPY")), Ok(1200));
        assert_eq!(parse_amount("1.234", currency("KWD")), Ok(1234));
        assert_eq!(format_amount(1999, usd), "19.99");
        assert_eq!(format_amount(5, usd), "0.05");
        assert_eq!(format_amount(-150, usd), "-1.50");
        assert_eq!(format_amount(1200, currency("JPY")), "1200");
        assert_eq!(format_amount(1234, currency("KWD")), "1.234");
    }

    #[test]
    fn amounts_that_would_round_or_are_not_numbers_are_refused() {
        let usd = currency("USD");
        for bad in [
            "19.999",
            "1.5",
            "abc",
            "",
            "-3",
            "1,299.50",
            "1.",
            ".5",
            "1e3",
            "99999999999999999999",
        ] {
            let result = parse_amount(bad, if bad == "1.5" { currency("JPY") } else { usd });
            assert!(result.is_err(), "{bad} was accepted as {result:?}");
        }
    }

    #[test]
    fn currencies_are_iso_codes_with_a_minor_unit() {
        assert_eq!(currency("EUR").code(), "EUR");
        assert_eq!(
            currency(" usd ").code(),
            "USD",
            "written in any case, kept upper"
        );
        assert!("XAU".parse::<Currency>().is_err());
        assert!("ABC".parse::<Currency>().is_err());
        let json = serde_json::to_string(&currency("GBP")).expect("serializes");
        assert_eq!(json, "\"GBP\"");
        assert!(serde_json::from_str::<Currency>("\"GBPX\"").is_err());
    }
}
