//! What the storefront says: one message catalogue (English first; another
//! language is another catalogue file with the same keys) and money written
//! the way the locale writes it, in the currency's own minor units.

use std::collections::HashMap;
use std::sync::OnceLock;

use shop_wire::money::{Currency, format_amount};

/// The English catalogue: `key = "text"`, with `{name}` where a value goes.
const EN: &str = include_str!("messages/en.toml");

pub fn catalogue() -> &'static HashMap<String, String> {
    static MESSAGES: OnceLock<HashMap<String, String>> = OnceLock::new();
    MESSAGES.get_or_init(|| toml::from_str(EN).expect("the English catalogue is valid TOML"))
}

/// The message `key` with its `{placeholders}` filled; an unknown key shows itself, so a
/// missing message is visible on the page and in tests rather than blank.
pub fn message(key: &str, values: &[(&str, String)]) -> String {
    let Some(text) = catalogue().get(key) else {
        return key.to_owned();
    };
    let mut text = text.clone();
    for (name, value) in values {
        text = text.replace(&format!("{{{name}}}"), value);
    }
    text
}

/// `1299.50` as English writes an amount of `currency`: `$1,299.50`, `¥1,300`, `KWD 1.500`.
pub fn money(minor: i64, currency: Currency) -> String {
    let plain = format_amount(minor.abs(), currency);
    let (whole, fraction) = match plain.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (plain.as_str(), None),
    };
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if let Some(fraction) = fraction {
        grouped.push('.');
        grouped.push_str(fraction);
    }
    let sign = if minor < 0 { "-" } else { "" };
    match symbol(currency) {
        Some(symbol) => format!("{sign}{symbol}{grouped}"),
        None => format!("{sign}{} {grouped}", currency.code()),
    }
}

/// The symbols English readers know without a code beside them.
fn symbol(currency: Currency) -> Option<&'static str> {
    Some(match currency.code() {
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        "JPY" => "¥",
        "INR" => "₹",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn currency(code: &str) -> Currency {
        code.parse().expect("a known currency")
    }

    #[test]
    fn money_follows_each_currencys_minor_units() {
        assert_eq!(money(129_950, currency("USD")), "$1,299.50");
        assert_eq!(money(5, currency("USD")), "$0.05");
        assert_eq!(money(1_300, currency("JPY")), "¥1,300");
        assert_eq!(money(1_500, currency("KWD")), "KWD 1.500");
        assert_eq!(money(-250, currency("EUR")), "-€2.50");
        assert_eq!(money(100_000_000, currency("GBP")), "£1,000,000.00");
    }

    #[test]
    fn every_message_a_template_names_is_in_the_catalogue() {
        let (mut missing, mut checked) = (Vec::new(), 0);
        for (template, source) in crate::web::TEMPLATES {
            for quote in ['"', '\''] {
                let call = format!("t({quote}");
                for (at, _) in source.match_indices(&call) {
                    // `asset('shop.css')` ends in `t(` too.
                    if source[..at]
                        .chars()
                        .next_back()
                        .is_some_and(|c| c.is_alphanumeric() || c == '_')
                    {
                        continue;
                    }
                    let rest = &source[at + call.len()..];
                    let key = &rest[..rest.find(quote).expect("a closed string")];
                    // `t("status." ~ s.status)` is completed at render time.
                    if key.ends_with('.') {
                        continue;
                    }
                    checked += 1;
                    if !catalogue().contains_key(key) {
                        missing.push(format!("{template}: {key}"));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "not in en.toml: {missing:?}");
        assert!(
            checked > 50,
            "only {checked} messages found: is the search broken?"
        );
    }

    #[test]
    fn messages_fill_their_placeholders() {
        assert_eq!(message("product.left", &[("count", "3".into())]), "3 left");
        assert_eq!(message("no.such.key", &[]), "no.such.key");
    }
}
