//! OpenAPI schemas that the derive cannot state: closed sets computed from
//! the code (currencies, scopes), a range with a hole (a stock delta) and a
//! tagged union whose variants take no other fields (a shipping rate).
//! They keep the document as strict as the rules, so a client generator or
//! fuzzer that trusts it sends what the server accepts.

use utoipa::openapi::schema::{
    ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{KnownFormat, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::keys::Scope;
use crate::money::Currency;
use crate::pricing::ShippingRate;

/// The most units of one SKU the inventory counts (`MAX_STOCK` in the server).
const MAX_STOCK: i64 = 1_000_000_000;

fn integer(min: i64, max: i64) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(min))
        .maximum(Some(max))
}

/// A stock adjustment: up to a billion units either way, never 0.
pub fn nonzero_stock_delta() -> Schema {
    OneOfBuilder::new()
        .item(integer(-MAX_STOCK, -1))
        .item(integer(1, MAX_STOCK))
        .description(Some("Units to add (positive) or take (negative); never 0."))
        .into()
}

/// A product's attributes: at most 50, keys of 1-64 characters (not only
/// spaces), values of at most 500.
pub fn attributes() -> Schema {
    attributes_of(SchemaType::Type(Type::Object))
}

/// [`attributes`] in a patch, where null leaves them as they are.
pub fn optional_attributes() -> Schema {
    attributes_of(SchemaType::from_iter([Type::Object, Type::Null]))
}

fn attributes_of(schema_type: SchemaType) -> Schema {
    ObjectBuilder::new()
        .schema_type(schema_type)
        .max_properties(Some(50))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(64))
                .pattern(Some(r"^[\s\S]*\S[\s\S]*$")),
        ))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(500)),
        ))
        .into()
}

/// A product's images: at most 20 http(s) URLs of at most 2048 printable
/// ASCII characters (a URL with others is written percent-encoded).
pub fn image_urls() -> Schema {
    image_urls_of(SchemaType::Type(Type::Array))
}

/// [`image_urls`] in a patch, where null leaves them as they are.
pub fn optional_image_urls() -> Schema {
    image_urls_of(SchemaType::from_iter([Type::Array, Type::Null]))
}

fn image_urls_of(schema_type: SchemaType) -> Schema {
    ArrayBuilder::new()
        .schema_type(schema_type)
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(2048))
                .pattern(Some(r"^https?://[!-.0-~][!-~]*$")),
        )
        .max_items(Some(20))
        .into()
}

impl PartialSchema for Currency {
    fn schema() -> RefOr<Schema> {
        use iso_currency::IntoEnumIterator;
        let codes: Vec<&str> = iso_currency::Currency::iter()
            // As `Currency::from_str`: funds codes and metals have no minor unit.
            .filter(|c| c.exponent().is_some())
            .map(|c| c.code())
            .collect();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "An ISO 4217 currency code such as `USD`, `EUR` or `JPY`.",
            ))
            .enum_values(Some(codes))
            .into()
    }
}

impl ToSchema for Currency {}

/// An ISO 3166-1 alpha-2 country code, from the standard's list.
pub fn country() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(
            "An ISO 3166-1 alpha-2 country code such as `DE` or `US`.",
        ))
        .enum_values(Some(crate::pricing::countries()))
        .into()
}

/// [`country`] where it may be left out.
pub fn optional_country() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .description(Some(
            "An ISO 3166-1 alpha-2 country code such as `DE` or `US`.",
        ))
        .enum_values(Some(
            crate::pricing::countries()
                .into_iter()
                .map(serde_json::Value::from)
                .chain([serde_json::Value::Null]),
        ))
        .into()
}

/// The countries of a shipping zone: 1 to 250 codes, each once.
pub fn countries() -> Schema {
    ArrayBuilder::new()
        .items(RefOr::T(country()))
        .min_items(Some(1))
        .max_items(Some(250))
        .unique_items(true)
        .into()
}

/// Single-line text: no control characters (C0, DEL, C1).
const SINGLE_LINE: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";
/// [`SINGLE_LINE`] with at least one character that is not a space.
const NOT_BLANK: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

/// Text of one line and at most `max` characters: required and not blank,
/// or optional (null or any single line, blank being none).
fn line(max: usize, required: bool) -> Schema {
    let (schema_type, pattern) = if required {
        (SchemaType::Type(Type::String), NOT_BLANK)
    } else {
        (
            SchemaType::from_iter([Type::String, Type::Null]),
            SINGLE_LINE,
        )
    };
    ObjectBuilder::new()
        .schema_type(schema_type)
        .max_length(Some(max))
        .pattern(Some(pattern))
        .into()
}

/// A name or address line: one line of 1-200 characters, not blank.
pub fn line_200() -> Schema {
    line(200, true)
}

/// A name: one line of 1-100 characters, not blank.
pub fn line_100() -> Schema {
    line(100, true)
}

/// A postal code: one line of 1-20 characters, not blank.
pub fn line_20() -> Schema {
    line(20, true)
}

/// An optional address line: at most 200 characters of one line.
pub fn optional_line_200() -> Schema {
    line(200, false)
}

/// An optional region: at most 100 characters of one line.
pub fn optional_line_100() -> Schema {
    line(100, false)
}

/// An optional phone number: at most 40 characters of one line.
pub fn optional_line_40() -> Schema {
    line(40, false)
}

/// The most a shipping method charges, and the highest free-shipping threshold.
const MAX_SHIPPING_CENTS: i64 = 100_000_000;
const MAX_THRESHOLD_CENTS: i64 = 10_000_000_000;

/// One variant of [`ShippingRate`]: `kind` names it, `amount_cents` and the
/// `extra` fields are all required, and nothing else is accepted (the serde
/// enum denies unknown fields, so an open object would promise too much).
fn shipping_rate(
    kind: &str,
    description: &str,
    extra: Vec<(&str, ObjectBuilder)>,
) -> ObjectBuilder {
    let mut object = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(description))
        .property(
            "kind",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([kind])),
        )
        .required("kind")
        .property("amount_cents", integer(0, MAX_SHIPPING_CENTS))
        .required("amount_cents");
    for (name, schema) in extra {
        object = object.property(name, schema).required(name);
    }
    object.additional_properties(Some(
        utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
    ))
}

impl PartialSchema for ShippingRate {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(shipping_rate(
                "flat",
                "The same price for any parcel.",
                vec![],
            ))
            .item(shipping_rate(
                "per_kg",
                "`amount_cents` per started kilogram of the products' `weight_grams`; \
                 offered only when every product of the order has a weight.",
                vec![],
            ))
            .item(shipping_rate(
                "free_over",
                "`amount_cents`, or nothing once the goods (after discounts) cost at \
                 least `threshold_cents`.",
                vec![("threshold_cents", integer(0, MAX_THRESHOLD_CENTS))],
            ))
            .description(Some("How a shipping method prices a parcel."))
            .into()
    }
}

impl ToSchema for ShippingRate {}

impl PartialSchema for Scope {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A scope, `RESOURCE:read|write`."))
            .enum_values(Some(Scope::all().map(|scope| scope.to_string())))
            .into()
    }
}

impl ToSchema for Scope {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_currency_and_scope_parses() {
        let listed = |schema: RefOr<Schema>| match schema {
            RefOr::T(Schema::Object(object)) => object.enum_values.expect("an enum"),
            _ => panic!("an inline object schema"),
        };
        let currencies = listed(Currency::schema());
        assert!(currencies.len() > 100);
        for code in currencies {
            let code = code.as_str().expect("a string");
            assert!(code.parse::<Currency>().is_ok(), "{code}");
        }
        let scopes = listed(Scope::schema());
        assert_eq!(scopes.len(), Scope::all().count());
        for scope in scopes {
            let scope = scope.as_str().expect("a string");
            assert!(scope.parse::<Scope>().is_ok(), "{scope}");
        }
    }

    /// Each documented variant, filled with its required fields, is what serde
    /// takes, and the same with one more field is what serde refuses.
    #[test]
    fn shipping_rate_variants_are_closed_like_the_serde_enum() {
        let RefOr::T(Schema::OneOf(one_of)) = ShippingRate::schema() else {
            panic!("a oneOf");
        };
        assert_eq!(one_of.items.len(), 3);
        for item in one_of.items {
            let RefOr::T(Schema::Object(object)) = item else {
                panic!("an inline object");
            };
            let mut body = serde_json::Map::new();
            for name in &object.required {
                let value = match name.as_str() {
                    "kind" => {
                        let RefOr::T(Schema::Object(kind)) = &object.properties["kind"] else {
                            panic!("an inline kind");
                        };
                        kind.enum_values.as_ref().expect("one kind")[0].clone()
                    }
                    _ => serde_json::json!(500),
                };
                body.insert(name.clone(), value);
            }
            assert_eq!(
                body.len(),
                object.properties.len(),
                "every property required"
            );
            let rate: Result<ShippingRate, _> = serde_json::from_value(body.clone().into());
            assert!(rate.is_ok(), "{body:?}");
            body.insert("other".to_owned(), serde_json::json!(1));
            let rate: Result<ShippingRate, _> = serde_json::from_value(body.clone().into());
            assert!(rate.is_err(), "{body:?}");
        }
    }
}
