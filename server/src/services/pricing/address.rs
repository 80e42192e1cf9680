//! Postal addresses as checkout takes them: trimmed, required parts present,
//! each part within its length and free of control characters, and the
//! country a real ISO 3166-1 alpha-2 code.

use shop_wire::pricing::PostalAddress;

use super::tables::check_country;
use crate::services::error::{DomainError, DomainResult};

/// The longest each part may be, in characters.
const LIMITS: [(&str, usize); 7] = [
    ("name", 200),
    ("line1", 200),
    ("line2", 200),
    ("city", 200),
    ("region", 100),
    ("postal_code", 20),
    ("phone", 40),
];

/// Checks and tidies `address`, given at `at` in the request
/// (`shipping_address`); a problem names its field (`shipping_address.city`).
pub fn check_address(at: &str, address: PostalAddress) -> DomainResult<PostalAddress> {
    let field = |part: &str| format!("{at}.{part}");
    let text = |part: &str, value: Option<String>, required: bool| {
        let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let max = LIMITS
            .iter()
            .find(|(name, _)| *name == part)
            .map_or(200, |(_, max)| *max);
        match value {
            None if required => Err(DomainError::validation(&field(part), "must not be empty")),
            Some(v) if v.chars().count() > max || v.chars().any(char::is_control) => {
                Err(DomainError::validation(
                    &field(part),
                    format!("must be at most {max} characters, without control characters"),
                ))
            }
            value => Ok(value),
        }
    };
    let required =
        |part: &str, value: String| text(part, Some(value), true).map(Option::unwrap_or_default);
    Ok(PostalAddress {
        country: check_country(&field("country"), &address.country)?,
        name: required("name", address.name)?,
        line1: required("line1", address.line1)?,
        line2: text("line2", address.line2, false)?,
        city: required("city", address.city)?,
        region: text("region", address.region, false)?,
        postal_code: required("postal_code", address.postal_code)?,
        phone: text("phone", address.phone, false)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AppError;

    fn address() -> PostalAddress {
        PostalAddress {
            name: " Erika Mustermann ".to_owned(),
            line1: "Heidestraße 17".to_owned(),
            line2: Some("  ".to_owned()),
            city: "Köln".to_owned(),
            region: None,
            postal_code: "51147".to_owned(),
            country: "de".to_owned(),
            phone: Some("+49 221 1234567".to_owned()),
        }
    }

    #[test]
    fn a_good_address_is_tidied() {
        let checked = check_address("shipping_address", address()).expect("valid");
        assert_eq!(checked.name, "Erika Mustermann");
        assert_eq!(checked.country, "DE");
        assert_eq!(checked.line2, None, "blank is none");
    }

    #[test]
    fn each_problem_names_its_field_and_code() {
        type Case = (fn(&mut PostalAddress), &'static str, &'static str);
        let cases: Vec<Case> = vec![
            (
                |a| a.country = "XX".to_owned(),
                "country",
                "unknown_country",
            ),
            (
                |a| a.country = "DEU".to_owned(),
                "country",
                "unknown_country",
            ),
            (|a| a.country = String::new(), "country", "unknown_country"),
            (|a| a.name = " ".to_owned(), "name", "validation_failed"),
            (|a| a.line1 = String::new(), "line1", "validation_failed"),
            (
                |a| a.city = "Köln\u{7}".to_owned(),
                "city",
                "validation_failed",
            ),
            (
                |a| a.postal_code = "1".repeat(21),
                "postal_code",
                "validation_failed",
            ),
            (
                |a| a.line2 = Some("x\ny".to_owned()),
                "line2",
                "validation_failed",
            ),
            (
                |a| a.phone = Some("9".repeat(41)),
                "phone",
                "validation_failed",
            ),
            (
                |a| a.region = Some("r".repeat(101)),
                "region",
                "validation_failed",
            ),
        ];
        for (spoil, field, code) in cases {
            let mut bad = address();
            spoil(&mut bad);
            let problem = AppError::from(check_address("billing_address", bad).expect_err(field));
            assert_eq!(problem.code(), code, "{field}");
            assert!(
                problem
                    .to_string()
                    .starts_with(&format!("billing_address.{field}:")),
                "{problem}"
            );
        }
    }

    #[test]
    fn countries_come_from_the_standard_list() {
        use shop_wire::pricing::is_country;
        for code in ["DE", "US", "JP", "BR", "ZA", "NZ"] {
            assert!(is_country(code), "{code}");
        }
        // Shaped like codes, but not assigned (or reserved for other uses).
        for code in ["XX", "ZZ", "UK", "EU", "de", ""] {
            assert!(!is_country(code), "{code}");
        }
    }
}
