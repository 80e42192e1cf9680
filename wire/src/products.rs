//! The product catalog: products, categories, and bulk import.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use crate::ids::ProductId;
use crate::money::Currency;

/// A catalog entry. `category` is a path such as `furniture/chairs`;
/// `active` is false once archived (kept for order history, hidden from the
/// storefront); `version` grows by one on every change, for optimistic updates.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Product {
    pub id: ProductId,
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category: Option<String>,
    /// Minor units of `currency`.
    pub price_cents: i64,
    pub currency: Currency,
    pub attributes: BTreeMap<String, String>,
    pub images: Vec<String>,
    pub active: bool,
    /// Shipping weight; per-kg shipping methods need it. `None`: not weighed.
    #[serde(default)]
    pub weight_grams: Option<i64>,
    /// Picks a tax rate of this category (e.g. `books`) where one exists;
    /// `None`: the standard rate.
    #[serde(default)]
    pub tax_category: Option<String>,
    /// False for goods nobody ships (downloads, gift cards): an order of
    /// only such goods needs no shipping address.
    #[serde(default = "yes")]
    pub requires_shipping: bool,
    pub version: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// `POST /api/products`, and one row of an import (which upserts by SKU).
/// `stock` and `low_stock_threshold`, when given, set the SKU's inventory.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProductRequest {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = r"^[A-Z0-9][A-Z0-9._-]*$")
    )]
    pub sku: String,
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 200,
            pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
        )
    )]
    pub name: String,
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 5000, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")
    )]
    pub description: String,
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 400,
            pattern = r"^(\s*|[^/\x00-\x1f\x7f-\x9f]*[^/\s\x00-\x1f\x7f-\x9f][^/\x00-\x1f\x7f-\x9f]*(/[^/\x00-\x1f\x7f-\x9f]*[^/\s\x00-\x1f\x7f-\x9f][^/\x00-\x1f\x7f-\x9f]*){0,4})$"
        )
    )]
    pub category: Option<String>,
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10_000_000_000_i64))]
    pub price_cents: i64,
    #[serde(default)]
    pub currency: Currency,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::attributes))]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::image_urls))]
    pub images: Vec<String>,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000_000))]
    pub stock: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 1_000_000_000))]
    pub low_stock_threshold: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 10_000_000))]
    pub weight_grams: Option<i64>,
    /// An empty string is no category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 40, pattern = r"^([a-z0-9][a-z0-9_-]*)?$")
    )]
    pub tax_category: Option<String>,
    /// Default true; false for goods nobody ships.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_shipping: Option<bool>,
}

fn yes() -> bool {
    true
}

/// `PATCH /api/products/{id}`: only the fields given change. With `version`
/// (or an `If-Match` header) the update applies only to that version.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProductPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 200,
            pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x08\x0b-\x1f\x7f-\x9f]*$"
        )
    )]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 5000, pattern = r"^[^\x00-\x08\x0b-\x1f\x7f-\x9f]*$")
    )]
    pub description: Option<String>,
    /// An empty string removes the category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 400,
            pattern = r"^(\s*|[^/\x00-\x1f\x7f-\x9f]*[^/\s\x00-\x1f\x7f-\x9f][^/\x00-\x1f\x7f-\x9f]*(/[^/\x00-\x1f\x7f-\x9f]*[^/\s\x00-\x1f\x7f-\x9f][^/\x00-\x1f\x7f-\x9f]*){0,4})$"
        )
    )]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10_000_000_000_i64))]
    pub price_cents: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<Currency>,
    /// Replaces all attributes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::optional_attributes))]
    pub attributes: Option<BTreeMap<String, String>>,
    /// Replaces all images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::schemas::optional_image_urls))]
    pub images: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 10_000_000))]
    pub weight_grams: Option<i64>,
    /// An empty string removes the tax category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 40, pattern = r"^([a-z0-9][a-z0-9_-]*)?$")
    )]
    pub tax_category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_shipping: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// A node of the category tree with the number of active products in it and below it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Category {
    /// The full path, e.g. `furniture/chairs`.
    pub path: String,
    /// The last segment, e.g. `chairs`.
    pub name: String,
    pub depth: u32,
    /// Active products in this category and its subcategories.
    pub product_count: u64,
}

/// The formats an import reads and an export writes.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// One JSON array of objects.
    Json,
    /// One JSON object per line.
    #[default]
    Ndjson,
    /// A header row, then one row per product; attributes and images as JSON.
    Csv,
}

impl DataFormat {
    pub const ALL: &'static [DataFormat] = &[DataFormat::Json, DataFormat::Ndjson, DataFormat::Csv];

    pub fn as_str(self) -> &'static str {
        match self {
            DataFormat::Json => "json",
            DataFormat::Ndjson => "ndjson",
            DataFormat::Csv => "csv",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            DataFormat::Json => "application/json",
            DataFormat::Ndjson => "application/x-ndjson",
            DataFormat::Csv => "text/csv",
        }
    }

    /// The Content-Type of a response in this format; CSV names its
    /// charset, which spreadsheets otherwise guess.
    pub fn response_content_type(self) -> &'static str {
        match self {
            DataFormat::Csv => "text/csv; charset=utf-8",
            other => other.content_type(),
        }
    }

    /// The format a file name implies (`catalog.csv`), if any.
    pub fn from_extension(path: &str) -> Option<DataFormat> {
        let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "json" => Some(DataFormat::Json),
            "ndjson" | "jsonl" => Some(DataFormat::Ndjson),
            "csv" => Some(DataFormat::Csv),
            _ => None,
        }
    }
}

impl std::str::FromStr for DataFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DataFormat::ALL
            .iter()
            .copied()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| format!("unknown format `{s}` (expected json, ndjson or csv)"))
    }
}

/// What an import's `stock` column does to a product that already exists.
/// A product the import creates always starts with the stock its row gives:
/// re-running an import (or `shop fixtures load`) must not undo the sales
/// made since.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StockImport {
    /// Leave the stock of existing products alone.
    #[default]
    Ignore,
    /// Make the row's `stock` the product's on-hand count.
    Set,
    /// Add the row's `stock` to the product's on-hand count (a delivery).
    Add,
}

impl StockImport {
    pub const ALL: &'static [StockImport] =
        &[StockImport::Ignore, StockImport::Set, StockImport::Add];

    pub fn as_str(self) -> &'static str {
        match self {
            StockImport::Ignore => "ignore",
            StockImport::Set => "set",
            StockImport::Add => "add",
        }
    }
}

impl std::str::FromStr for StockImport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StockImport::ALL
            .iter()
            .copied()
            .find(|mode| mode.as_str() == s)
            .ok_or_else(|| format!("unknown stock mode `{s}` (expected ignore, set or add)"))
    }
}

/// The columns of a CSV import or export, in order. `price` (a decimal) may
/// stand in for `price_cents` on import; `stock` and `low_stock_threshold` are
/// optional there and never exported.
pub const CSV_COLUMNS: &[&str] = &[
    "sku",
    "name",
    "description",
    "category",
    "price_cents",
    "currency",
    "attributes",
    "images",
    "active",
    "weight_grams",
    "tax_category",
];

/// One rejected row of an import.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportRowError {
    /// The line of the file where the row starts (1-based; the CSV header is line 1).
    pub line: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub reason: String,
}

/// What `POST /api/products/import` did (or, with `dry_run`, would do).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportSummary {
    pub dry_run: bool,
    pub rows: u64,
    pub created: u64,
    pub updated: u64,
    /// Rows identical to the stored product: nothing written.
    pub unchanged: u64,
    pub failed: u64,
    /// The first rejected rows (at most 1,000); `failed` counts them all.
    pub errors: Vec<ImportRowError>,
    pub elapsed_ms: u64,
}
