//! Card checks that need no provider: the number's shape and Luhn checksum,
//! the expiry, the CVC's shape, and the brand by its number prefix.
//!
//! The payments domain runs them before any order is created, so a typo is
//! a 400 naming the field instead of a pending order and a decline; the
//! simulated provider runs them again as a real network would. "Today" is a
//! parameter so the expiry rules are tested on fixed dates.

use time::Date;

/// Card networks, told apart by their number ranges (IIN prefixes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardBrand {
    Visa,
    Mastercard,
    Amex,
    Discover,
    Unknown,
}

impl CardBrand {
    /// Stripe's names for the brands, which payments also record.
    pub fn as_str(self) -> &'static str {
        match self {
            CardBrand::Visa => "visa",
            CardBrand::Mastercard => "mastercard",
            CardBrand::Amex => "amex",
            CardBrand::Discover => "discover",
            CardBrand::Unknown => "unknown",
        }
    }

    /// The brand of a number made of digits only.
    pub fn detect(digits: &str) -> CardBrand {
        let prefix = |n: usize| digits.get(..n).and_then(|p| p.parse::<u32>().ok());
        let in_range =
            |n: usize, lo: u32, hi: u32| prefix(n).is_some_and(|p| (lo..=hi).contains(&p));
        if digits.starts_with('4') {
            CardBrand::Visa
        } else if in_range(2, 51, 55) || in_range(4, 2221, 2720) {
            CardBrand::Mastercard
        } else if in_range(2, 34, 34) || in_range(2, 37, 37) {
            CardBrand::Amex
        } else if in_range(4, 6011, 6011)
            || in_range(3, 644, 649)
            || in_range(2, 65, 65)
            || in_range(6, 622_126, 622_925)
        {
            CardBrand::Discover
        } else {
            CardBrand::Unknown
        }
    }
}

/// A card that passed the checks. Holds the number (digits only) because the
/// provider needs it; its Debug shows the last four digits only.
#[derive(Clone, PartialEq, Eq)]
pub struct CheckedCard {
    pub number: String,
    pub brand: CardBrand,
    pub last4: String,
    pub exp_month: u32,
    /// Four digits, also when given as two.
    pub exp_year: i32,
}

impl std::fmt::Debug for CheckedCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedCard")
            .field("brand", &self.brand)
            .field("last4", &self.last4)
            .field("exp_month", &self.exp_month)
            .field("exp_year", &self.exp_year)
            .finish_non_exhaustive()
    }
}

/// Why a card is refused. Messages never repeat the number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("the card number may contain only digits, spaces and dashes")]
    NumberNotDigits,
    #[error("the card number has {0} digits; card numbers have 12 to 19")]
    NumberLength(usize),
    #[error("the card number is not valid (check the digits for a typo)")]
    NumberChecksum,
    #[error("the expiry month must be 1 to 12, not {0}")]
    ExpMonth(u32),
    #[error("the expiry year {0} is not a year (use four digits, e.g. 2030)")]
    ExpYear(i32),
    #[error("the card expired at the end of {month:02}/{year}")]
    Expired {
        month: u32,
        year: i32,
        /// The field to correct: `exp_year` when the year is past, else `exp_month`.
        field: &'static str,
    },
    #[error("the CVC must be 3 or 4 digits")]
    Cvc,
}

impl CardError {
    /// The request field at fault, for a 400's field details.
    pub fn field(&self) -> &'static str {
        match self {
            CardError::NumberNotDigits | CardError::NumberLength(_) | CardError::NumberChecksum => {
                "card_number"
            }
            CardError::ExpMonth(_) => "exp_month",
            CardError::ExpYear(_) => "exp_year",
            CardError::Expired { field, .. } => field,
            CardError::Cvc => "cvc",
        }
    }

    /// Stripe's decline code for the same refusal, for a provider's `Declined`.
    pub fn decline_code(&self) -> &'static str {
        match self {
            CardError::NumberNotDigits | CardError::NumberLength(_) | CardError::NumberChecksum => {
                "incorrect_number"
            }
            // Stripe answers a month of 13 or a year long past with
            // `invalid_expiry_*`; both say "this expiry cannot be charged".
            CardError::ExpMonth(_) | CardError::ExpYear(_) | CardError::Expired { .. } => {
                "expired_card"
            }
            CardError::Cvc => "invalid_cvc",
        }
    }
}

/// Cards further in the future than this are typos, not cards.
const MAX_YEARS_AHEAD: i32 = 50;

/// Checks a card as typed: spaces and dashes in the number are dropped;
/// a two-digit year means 20YY. The number is checked first, then the
/// expiry, then the CVC, so the first error is the first field to fix.
pub fn check_card(
    number: &str,
    exp_month: u32,
    exp_year: i32,
    cvc: Option<&str>,
    today: Date,
) -> Result<CheckedCard, CardError> {
    let number = normalize_number(number)?;
    if !luhn_valid(&number) {
        return Err(CardError::NumberChecksum);
    }
    let exp_year = check_expiry(exp_month, exp_year, today)?;
    if let Some(cvc) = cvc
        && !((3..=4).contains(&cvc.len()) && cvc.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(CardError::Cvc);
    }
    Ok(CheckedCard {
        brand: CardBrand::detect(&number),
        last4: number[number.len() - 4..].to_owned(),
        number,
        exp_month,
        exp_year,
    })
}

/// The digits of a number typed with spaces or dashes, if it has 12 to 19.
pub fn normalize_number(number: &str) -> Result<String, CardError> {
    let mut digits = String::with_capacity(number.len());
    for c in number.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' => {}
            _ => return Err(CardError::NumberNotDigits),
        }
    }
    if !(12..=19).contains(&digits.len()) {
        return Err(CardError::NumberLength(digits.len()));
    }
    Ok(digits)
}

/// The Luhn checksum of a string of ASCII digits: from the right, every
/// second digit is doubled (minus 9 past 9) and the sum must end in 0.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// Checks month and year (a card is valid to the end of its month) and
/// returns the four-digit year.
fn check_expiry(month: u32, year: i32, today: Date) -> Result<i32, CardError> {
    if !(1..=12).contains(&month) {
        return Err(CardError::ExpMonth(month));
    }
    let full_year = match year {
        0..=99 => 2000 + year,
        1000..=9999 => year,
        _ => return Err(CardError::ExpYear(year)),
    };
    if full_year > today.year() + MAX_YEARS_AHEAD {
        return Err(CardError::ExpYear(year));
    }
    let this_month = u32::from(u8::from(today.month()));
    if full_year < today.year() || (full_year == today.year() && month < this_month) {
        return Err(CardError::Expired {
            month,
            year: full_year,
            field: if full_year < today.year() {
                "exp_year"
            } else {
                "exp_month"
            },
        });
    }
    Ok(full_year)
}

/// Today in UTC, for callers outside tests.
pub fn today() -> Date {
    time::OffsetDateTime::now_utc().date()
}

/// A date for tests: `date(2026, 11, 30)`.
#[cfg(test)]
pub(crate) fn date(year: i32, month: u8, day: u8) -> Option<Date> {
    Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(year: i32, month: u8) -> Date {
        date(year, month, 15).expect("a real date")
    }

    #[test]
    fn luhn_table() {
        for valid in [
            "4242424242424242",
            "4000000000000002",
            "4000000000009995",
            "4000000000000069",
            "4000000000000127",
            "4000000000000119",
            "5555555555554444",
            "2223003122003222",
            "378282246310005",
            "6011111111111117",
            "79927398713",
        ] {
            assert!(luhn_valid(valid), "{valid} should pass Luhn");
        }
        for invalid in [
            "4242424242424241",
            "4000000000000001",
            "79927398710",
            "1234567812345678",
            "",
            "42a2",
        ] {
            assert!(!luhn_valid(invalid), "{invalid} should fail Luhn");
        }
    }

    #[test]
    fn numbers_are_normalized_and_measured() {
        let today = on(2026, 11);
        let card = check_card("4242 4242-4242 4242", 12, 2030, Some("123"), today).expect("valid");
        assert_eq!(card.number, "4242424242424242");
        assert_eq!(card.last4, "4242");
        assert_eq!(card.brand, CardBrand::Visa);

        let err = check_card("4242 4242 4242 424x", 12, 2030, None, today).unwrap_err();
        assert_eq!(err, CardError::NumberNotDigits);
        assert_eq!(
            (err.field(), err.decline_code()),
            ("card_number", "incorrect_number")
        );
        // 11 digits (Luhn-valid) and 20 digits are both out of range.
        assert_eq!(
            check_card("79927398713", 12, 2030, None, today),
            Err(CardError::NumberLength(11))
        );
        assert_eq!(
            check_card("42424242424242424242", 12, 2030, None, today),
            Err(CardError::NumberLength(20))
        );
        assert_eq!(
            check_card("4242424242424241", 12, 2030, None, today),
            Err(CardError::NumberChecksum)
        );
        // 12 digits, Luhn-valid: the shortest number accepted.
        assert!(check_card("4000 0000 0002", 12, 2030, None, today).is_ok());
        assert!(luhn_valid("400000000002"));
    }

    #[test]
    fn expiry_edges() {
        let today = on(2026, 11);
        // Valid through the end of its month.
        assert_eq!(
            check_card("4242424242424242", 11, 2026, None, today).map(|c| c.exp_year),
            Ok(2026)
        );
        let last_month = check_card("4242424242424242", 10, 2026, None, today).unwrap_err();
        assert_eq!(last_month.field(), "exp_month");
        assert_eq!(last_month.decline_code(), "expired_card");
        let last_year = check_card("4242424242424242", 12, 2025, None, today).unwrap_err();
        assert_eq!(last_year.field(), "exp_year");
        // December rolls into January: a January card next year is fine.
        assert!(check_card("4242424242424242", 1, 2027, None, on(2026, 12)).is_ok());
        // Two-digit years are 20YY.
        assert_eq!(
            check_card("4242424242424242", 1, 27, None, today).map(|c| c.exp_year),
            Ok(2027)
        );
        assert_eq!(
            check_card("4242424242424242", 1, 25, None, today)
                .unwrap_err()
                .field(),
            "exp_year"
        );
        for month in [0, 13] {
            let err = check_card("4242424242424242", month, 2030, None, today).unwrap_err();
            assert_eq!(err, CardError::ExpMonth(month));
            assert_eq!(err.field(), "exp_month");
        }
        for year in [-1, 100, 999, 10_000, 2077] {
            let err = check_card("4242424242424242", 1, year, None, today).unwrap_err();
            assert_eq!(err.field(), "exp_year", "{year}");
        }
        assert!(check_card("4242424242424242", 1, 2076, None, today).is_ok());
    }

    #[test]
    fn cvc_shape() {
        let today = on(2026, 11);
        for ok in ["123", "1234"] {
            assert!(check_card("4242424242424242", 12, 2030, Some(ok), today).is_ok());
        }
        for bad in ["", "12", "12345", "12a", " 123"] {
            let err = check_card("4242424242424242", 12, 2030, Some(bad), today).unwrap_err();
            assert_eq!(
                (err.field(), err.decline_code()),
                ("cvc", "invalid_cvc"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn brands() {
        for (number, brand) in [
            ("4242424242424242", CardBrand::Visa),
            ("5555555555554444", CardBrand::Mastercard),
            ("5105105105105100", CardBrand::Mastercard),
            ("2223003122003222", CardBrand::Mastercard),
            ("2720990000000007", CardBrand::Mastercard),
            ("378282246310005", CardBrand::Amex),
            ("371449635398431", CardBrand::Amex),
            ("6011111111111117", CardBrand::Discover),
            ("6445644564456445", CardBrand::Discover),
            ("6500000000000002", CardBrand::Discover),
            ("6221260000000000", CardBrand::Discover),
            ("3566002020360505", CardBrand::Unknown),
            ("2721000000000000", CardBrand::Unknown),
            ("5600000000000000", CardBrand::Unknown),
        ] {
            assert_eq!(CardBrand::detect(number), brand, "{number}");
        }
    }

    #[test]
    fn debug_hides_the_number() {
        let card = check_card("4242424242424242", 12, 2030, None, on(2026, 11)).expect("valid");
        let shown = format!("{card:?}");
        assert!(!shown.contains("424242424242"), "{shown}");
        assert!(shown.contains("4242"));
    }
}
