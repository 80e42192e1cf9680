//! OpenAPI schemas that the derive cannot state: closed sets computed from
//! the code (currencies, scopes) and a range with a hole (a stock delta).
//! They keep the document as strict as the rules, so a client generator or
//! fuzzer that trusts it sends what the server accepts.

use utoipa::openapi::schema::{
    ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{KnownFormat, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::keys::Scope;
use crate::money::Currency;

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
}
