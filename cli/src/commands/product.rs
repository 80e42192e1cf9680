//! `shop product`: the catalog (staff). Add, list, show, change, archive and
//! delete products; the category tree; bulk import and export.
//!
//! Prices are typed and shown as decimals (`19.99`) and travel as integer
//! minor units, converted exactly by the currency's own decimals. Imports
//! stream the file to the server chunk by chunk, so a gigabyte costs no more
//! memory than a kilobyte; exports stream the answer straight to the output.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use serde::Serialize;
use shop_wire::Page;
use shop_wire::inventory::Stock;
use shop_wire::money::{Currency, format_amount, parse_amount};
use shop_wire::products::{
    Category, DataFormat, ImportRowError, ImportSummary, Product, ProductId, ProductPatch,
    ProductRequest, StockImport,
};

use super::{PageArgs, all_pages, choice, confirm, more_hint, parse_sku};
use crate::client::ApiClient;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Format, Output, Tabular};
use crate::progress;

#[derive(Debug, clap::Subcommand)]
pub enum ProductCommand {
    /// Add a product, and with --stock its stock on hand.
    #[command(after_help = "\
Example: shop product add --sku CHAIR-01 --name 'Oak chair' --price 129.00 \\
           --category furniture/chairs --stock 40 --attr colour=natural --attr material=oak")]
    Add(Box<AddArgs>),
    /// List products, filtered by category, price, text and stock, sorted and paged.
    #[command(after_help = "\
Prices are decimals like 19.99. --category furniture also lists furniture/chairs.
Example: shop product list --category furniture --max-price 200 --sort price -o csv")]
    List(ListArgs),
    /// Show one product, by id (prd_...) or SKU.
    Get {
        /// The product's id (prd_...) or SKU.
        #[arg(add = crate::complete::skus(), value_parser = parse_product_ref)]
        product: String,
        /// Show the product's audit log (who changed what, newest first; admin) instead.
        #[arg(long)]
        history: bool,
    },
    /// Change some fields of a product; the others stay as they are.
    #[command(
        after_help = "\
--attr merges into the product's attributes (KEY= removes one); --image replaces the images.
Without --version the change applies to the version just read, so a concurrent edit is a
conflict (exit 5), never silently overwritten.
Example: shop product update CHAIR-01 --price 119.00 --attr colour=walnut",
        // --version is the product's version here, not shop's.
        disable_version_flag = true
    )]
    Update(Box<UpdateArgs>),
    /// Archive a product: hidden from the storefront and search, kept for order history.
    Archive {
        /// The product's id (prd_...) or SKU.
        #[arg(add = crate::complete::skus(), value_parser = parse_product_ref)]
        product: String,
    },
    /// Delete a product for good; refused while orders or carts refer to it (archive it instead).
    Delete {
        /// The product's id (prd_...) or SKU.
        #[arg(add = crate::complete::skus(), value_parser = parse_product_ref)]
        product: String,
        /// Do not ask for confirmation (needed when not on a terminal).
        #[arg(short, long)]
        yes: bool,
    },
    /// List the category tree with the number of active products in and below each.
    Categories,
    /// Create or update products in bulk from a JSON, NDJSON or CSV file, matched by SKU.
    #[command(after_help = "\
Rows are matched by SKU: new SKUs are created, known ones updated, identical ones left alone.
Bad rows are reported by line and skipped; the good rows still land, and the exit code is 1.
A row's stock is the stock of a product it creates. The stock of an existing product is
left alone (it has moved with sales since the file was written) unless --stock set or add.
CSV columns are matched by the header row's names, in any order: sku, name, description,
category, price_cents, currency, attributes and images (as JSON), active, stock,
low_stock_threshold. sku, name and a price are needed; `price` as a decimal may stand in
for price_cents.
Example: shop product import catalog.csv --dry-run
         shop product import delivery.csv --stock add
         generate-products | shop product import - --format ndjson")]
    Import(ImportArgs),
    /// Write the catalog as NDJSON, JSON or CSV, in the form `product import` reads back.
    #[command(after_help = "Example: shop product export --format csv --output-file catalog.csv")]
    Export(ExportArgs),
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// Stock keeping unit: upper-case letters, digits, `.`, `_` and `-`, like CHAIR-01.
    #[arg(long, value_parser = parse_sku)]
    sku: String,
    /// The product's name.
    #[arg(long, value_parser = parse_name)]
    name: String,
    /// The price as a decimal in the currency, like 19.99.
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true, value_parser = parse_price)]
    price: Amount,
    /// ISO 4217 currency of the price.
    #[arg(long, default_value = "USD", value_parser = parse_currency)]
    currency: Currency,
    /// Category path, like furniture/chairs.
    #[arg(long, value_parser = parse_category)]
    category: Option<String>,
    /// Units on hand to start with.
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..))]
    stock: Option<i64>,
    /// Alert when this many or fewer units are available.
    #[arg(long, value_name = "N", allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(0..))]
    low_stock: Option<i64>,
    /// Longer text for the product page and search.
    #[arg(long)]
    description: Option<String>,
    /// An attribute, KEY=VALUE (colour=red); repeat for more.
    #[arg(long = "attr", value_name = "KEY=VALUE", value_parser = parse_attr)]
    attrs: Vec<(String, String)>,
    /// An image URL (https://...); repeat for more, in display order.
    #[arg(long = "image", value_name = "URL", value_parser = parse_image)]
    images: Vec<String>,
    /// Shipping weight in grams; per-kg shipping methods need it.
    #[arg(long, value_name = "GRAMS", value_parser = clap::value_parser!(i64).range(0..=10_000_000))]
    weight_grams: Option<i64>,
    /// Tax category for reduced rates, like books (none: the standard rate).
    #[arg(long, value_name = "CATEGORY")]
    tax_category: Option<String>,
    /// Goods nobody ships (a download, a gift card): orders of only these need no address.
    #[arg(long)]
    no_shipping: bool,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this category and the categories under it.
    #[arg(long, value_parser = parse_category)]
    category: Option<String>,
    /// Only products priced at least this much (a decimal, like 10.00).
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true, value_parser = parse_price)]
    min_price: Option<Amount>,
    /// Only products priced at most this much (a decimal, like 99.99).
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true, value_parser = parse_price)]
    max_price: Option<Amount>,
    /// Only products whose SKU, name or description contains this text.
    #[arg(short, long, value_name = "TEXT")]
    search: Option<String>,
    /// Only products with stock available.
    #[arg(long)]
    in_stock: bool,
    /// Only archived products (instead of active ones).
    #[arg(long, conflicts_with = "all_statuses")]
    archived: bool,
    /// Active and archived products alike.
    #[arg(long)]
    all_statuses: bool,
    /// Order: price, -price, name, -name, created_at or -created_at (- for descending).
    #[arg(long, allow_hyphen_values = true, value_parser = ["price", "-price", "name", "-name", "created_at", "-created_at"])]
    sort: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// The product's id (prd_...) or SKU.
    #[arg(add = crate::complete::skus(), value_parser = parse_product_ref)]
    product: String,
    /// New name.
    #[arg(long, value_parser = parse_name)]
    name: Option<String>,
    /// New price as a decimal, like 19.99 (in --currency, else the product's currency).
    #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true, value_parser = parse_price)]
    price: Option<Amount>,
    /// New ISO 4217 currency.
    #[arg(long, value_parser = parse_currency)]
    currency: Option<Currency>,
    /// New category path; an empty one ("") removes the category.
    #[arg(long, value_parser = parse_category)]
    category: Option<String>,
    /// New description.
    #[arg(long)]
    description: Option<String>,
    /// Set an attribute, KEY=VALUE, or remove one, KEY=; repeat for more.
    #[arg(long = "attr", value_name = "KEY=VALUE", value_parser = parse_attr)]
    attrs: Vec<(String, String)>,
    /// The new image URLs, replacing all images; repeat for more.
    #[arg(long = "image", value_name = "URL", value_parser = parse_image)]
    images: Vec<String>,
    /// Make an archived product active again.
    #[arg(long)]
    activate: bool,
    /// New shipping weight in grams.
    #[arg(long, value_name = "GRAMS", value_parser = clap::value_parser!(i64).range(0..=10_000_000))]
    weight_grams: Option<i64>,
    /// New tax category; an empty one ("") gives the standard rate again.
    #[arg(long, value_name = "CATEGORY")]
    tax_category: Option<String>,
    /// Apply only if the product is still at this version (else exit 5).
    #[arg(long)]
    version: Option<u64>,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The file to import; `-` reads stdin (then --format is needed).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// json, ndjson or csv [default: from the file's extension].
    #[arg(long, value_parser = data_format())]
    format: Option<DataFormat>,
    /// Check every row and report what would change, changing nothing.
    #[arg(long)]
    dry_run: bool,
    /// What a row's stock does to a product that exists: ignore it, set the
    /// on-hand count to it, or add it to the on-hand count (a delivery).
    #[arg(long, value_name = "MODE", default_value = "ignore", value_parser = stock_import())]
    stock: StockImport,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// ndjson, json or csv.
    #[arg(long, default_value = "ndjson", value_parser = data_format())]
    format: DataFormat,
    /// Write to this file instead of stdout (replaced only once the export is complete).
    #[arg(long, value_name = "FILE")]
    output_file: Option<PathBuf>,
    /// Which products: active, archived or all.
    #[arg(long, default_value = "all", value_parser = ["active", "archived", "all"])]
    status: String,
}

/// A decimal amount as typed, checked for shape; turned into minor units
/// once the currency (and so the number of decimals) is known.
#[derive(Clone, Debug, PartialEq)]
pub struct Amount(String);

impl Amount {
    pub(crate) fn minor_units(&self, currency: Currency, flag: &str) -> Result<i64, CliError> {
        parse_amount(&self.0, currency).map_err(|err| CliError::Usage(format!("{flag}: {err}")))
    }
}

/// Digits with an optional decimal part: `19.99`, `20`, `0.5`.
pub(crate) fn parse_price(text: &str) -> Result<Amount, String> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if digits(whole) && digits(fraction) {
        Ok(Amount(text.to_owned()))
    } else {
        Err(format!(
            "`{text}` is not a price (expected a decimal like 19.99, without sign or thousands separators)"
        ))
    }
}

fn parse_currency(text: &str) -> Result<Currency, String> {
    text.parse()
}

fn parse_name(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        Err("a name cannot be empty".to_owned())
    } else {
        Ok(text.to_owned())
    }
}

/// A category path: segments separated by `/`, none empty. An empty text
/// stays empty (to remove a product's category).
pub(crate) fn parse_category(text: &str) -> Result<String, String> {
    let text = text.trim();
    if !text.is_empty() && text.split('/').any(|segment| segment.trim().is_empty()) {
        return Err(format!(
            "`{text}` is not a category path (like furniture/chairs, no empty parts)"
        ));
    }
    Ok(text.to_owned())
}

/// `KEY=VALUE`, the key not empty; the value may be (to remove the key on update).
fn parse_attr(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE (like colour=red)"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("`{text}` has no key before the `=`"));
    }
    Ok((key.to_owned(), value.trim().to_owned()))
}

fn parse_image(text: &str) -> Result<String, String> {
    match reqwest::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(text.to_owned())
        }
        _ => Err(format!(
            "`{text}` is not an image URL (like https://images.example.com/chair.jpg)"
        )),
    }
}

/// A product by id (prd_...) or SKU, checked before it goes into a URL path.
pub(crate) fn parse_product_ref(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.starts_with("prd_") {
        text.parse::<ProductId>()
            .map(|id| id.as_str().to_owned())
            .map_err(|err| format!("`{text}`: {err}"))
    } else {
        parse_sku(text)
    }
}

fn data_format() -> impl clap::builder::TypedValueParser<Value = DataFormat> {
    choice(DataFormat::ALL.iter().map(|f| f.as_str()))
}

fn stock_import() -> impl clap::builder::TypedValueParser<Value = StockImport> {
    choice(StockImport::ALL.iter().map(|mode| mode.as_str()))
}

impl Tabular for Product {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("sku", "sku").kind(CellKind::Id),
            Column::new("name", "name"),
            Column::new("category", "category"),
            Column::new("price", "price").kind(CellKind::Id),
            Column::new("active", "active"),
            Column::new("id", "id").kind(CellKind::Id).wide(),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }

    fn display_fields(&self) -> Vec<(&'static str, String)> {
        vec![("price", price_text(self.price_cents, self.currency))]
    }
}

/// A product as a detail view shows it: the price as money, its stock,
/// and attributes and images written for people rather than as JSON.
#[derive(Serialize)]
struct ProductView<'a> {
    sku: &'a str,
    name: &'a str,
    price: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    stock: Option<String>,
    category: Option<&'a str>,
    active: bool,
    description: &'a str,
    #[serde(skip_serializing_if = "String::is_empty")]
    attributes: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    images: String,
    id: &'a ProductId,
    version: u64,
    #[serde(with = "time::serde::rfc3339")]
    created_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: time::OffsetDateTime,
}

impl<'a> ProductView<'a> {
    fn new(product: &'a Product, stock: Option<&Stock>) -> Self {
        let attributes = product
            .attributes
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join(", ");
        ProductView {
            sku: &product.sku,
            name: &product.name,
            price: price_text(product.price_cents, product.currency),
            stock: stock.map(stock_text),
            category: product.category.as_deref(),
            active: product.active,
            description: &product.description,
            attributes,
            images: product.images.join("\n"),
            id: &product.id,
            version: product.version,
            created_at: product.created_at,
            updated_at: product.updated_at,
        }
    }
}

/// `12 available (14 on hand, 2 reserved)`, saying when it is out or low.
fn stock_text(stock: &Stock) -> String {
    let level = if stock.available <= 0 {
        " - out of stock"
    } else if stock.is_low() {
        " - low"
    } else {
        ""
    };
    format!(
        "{} available ({} on hand, {} reserved){level}",
        stock.available, stock.on_hand, stock.reserved
    )
}

impl Tabular for ProductView<'_> {
    fn columns() -> &'static [Column] {
        &[]
    }

    fn id(&self) -> String {
        self.id.to_string()
    }
}

/// `1999` USD as `19.99 USD`.
pub(crate) fn price_text(cents: i64, currency: Currency) -> String {
    format!("{} {currency}", format_amount(cents, currency))
}

impl Tabular for Category {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("category", "path").kind(CellKind::Id),
            Column::new("products", "product_count"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.path.clone()
    }
}

impl Tabular for ImportSummary {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("rows", "rows"),
            Column::new("created", "created"),
            Column::new("updated", "updated"),
            Column::new("unchanged", "unchanged"),
            Column::new("failed", "failed"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.rows.to_string()
    }
}

impl Tabular for ImportRowError {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("line", "line").kind(CellKind::Id),
            Column::new("sku", "sku").kind(CellKind::Id),
            Column::new("field", "field"),
            Column::new("reason", "reason"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.line.to_string()
    }
}

/// An import summary as a table shows it: the counts, without the errors,
/// which get a table of their own.
#[derive(Debug, Serialize)]
struct ImportCounts {
    dry_run: bool,
    rows: u64,
    created: u64,
    updated: u64,
    unchanged: u64,
    failed: u64,
    elapsed_ms: u64,
}

impl Tabular for ImportCounts {
    fn columns() -> &'static [Column] {
        ImportSummary::columns()
    }

    fn id(&self) -> String {
        self.rows.to_string()
    }
}

/// Prints what an import did: on a terminal the counts and a table of the
/// rejected rows; `-o id` the lines that failed; otherwise the whole summary.
pub fn print_import(output: &mut Output, summary: &ImportSummary) -> Result<(), CliError> {
    match output.format() {
        Format::Table => {
            output.one(&ImportCounts {
                dry_run: summary.dry_run,
                rows: summary.rows,
                created: summary.created,
                updated: summary.updated,
                unchanged: summary.unchanged,
                failed: summary.failed,
                elapsed_ms: summary.elapsed_ms,
            })?;
            if !summary.errors.is_empty() {
                let shown = summary.errors.len() as u64;
                if shown < summary.failed {
                    eprintln!("\nrejected rows (the first {shown} of {}):", summary.failed);
                } else {
                    eprintln!("\nrejected rows:");
                }
                output.list(&(), &summary.errors)?;
            }
            Ok(())
        }
        Format::Id => output.list(&(), &summary.errors),
        Format::Json | Format::Ndjson | Format::Csv => output.one(summary),
    }
}

/// The error for an import whose bad rows were skipped: exit 1, the rest landed.
pub fn import_failures(summary: &ImportSummary) -> Result<(), CliError> {
    if summary.failed == 0 {
        return Ok(());
    }
    let landed = if summary.dry_run {
        "nothing was changed (dry run)"
    } else {
        "the other rows were imported"
    };
    Err(CliError::Other(format!(
        "{} of {} rows failed; {landed}",
        summary.failed, summary.rows
    )))
}

impl ProductCommand {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let public = matches!(
            self,
            ProductCommand::List(_) | ProductCommand::Get { .. } | ProductCommand::Categories
        );
        let client = if public {
            context.client_or_anonymous().await?
        } else {
            context.client().await?
        };
        let mut output = context.output();
        match self {
            ProductCommand::Add(args) => {
                let request = ProductRequest {
                    price_cents: args.price.minor_units(args.currency, "--price")?,
                    sku: args.sku,
                    name: args.name,
                    description: args.description.unwrap_or_default(),
                    category: args.category.filter(|c| !c.is_empty()),
                    currency: args.currency,
                    attributes: args.attrs.into_iter().collect(),
                    images: args.images,
                    active: true,
                    stock: args.stock,
                    low_stock_threshold: args.low_stock,
                    weight_grams: args.weight_grams,
                    tax_category: args.tax_category,
                    requires_shipping: args.no_shipping.then_some(false),
                };
                let product: Product = client.post("/api/products").json(&request)?.send().await?;
                output.one(&product)
            }
            ProductCommand::List(args) => {
                let page = if args.page.all {
                    all_pages(|limit, offset| list_page(&client, &args, limit, offset)).await?
                } else {
                    list_page(&client, &args, args.page.limit, args.page.offset).await?
                };
                output.list(&page, &page.items)?;
                more_hint(&output, &page, "products");
                Ok(())
            }
            ProductCommand::Get { product, history } => {
                let product: Product = client
                    .get(&format!("/api/products/{product}"))
                    .send()
                    .await?;
                if history {
                    // Its own entries, and those of its stock row (kept by SKU).
                    let mut query = vec![
                        ("entity", "product".to_owned()),
                        ("entity_id", product.id.to_string()),
                    ];
                    super::audit::print(&client, &mut output, &query).await?;
                    query = vec![("entity", "stock".to_owned()), ("entity_id", product.sku)];
                    return super::audit::print(&client, &mut output, &query).await;
                }
                if !output.is_table() {
                    return output.one(&product);
                }
                // Stock is staff's to see: a customer's view goes without it.
                let stock: Option<Stock> = client
                    .get(&format!("/api/inventory/{}", product.sku))
                    .send()
                    .await
                    .ok();
                output.one(&ProductView::new(&product, stock.as_ref()))
            }
            ProductCommand::Update(args) => {
                let product = update(&client, *args).await?;
                output.one(&product)
            }
            ProductCommand::Archive { product } => {
                let product: Product = client
                    .post(&format!("/api/products/{product}/archive"))
                    .send()
                    .await?;
                output.one(&product)
            }
            ProductCommand::Delete { product, yes } => {
                let path = format!("/api/products/{product}");
                let found: Product = client.get(&path).send().await?;
                if !yes {
                    let question = format!(
                        "Delete {} ({}) for good? Archiving keeps it for order history.",
                        found.sku, found.name
                    );
                    if !confirm(&question, "--yes")? {
                        return Err(CliError::Other("cancelled; nothing was deleted".into()));
                    }
                }
                client.delete(&path).send_empty().await?;
                if output.is_table() {
                    eprintln!("deleted {} ({}, {})", found.sku, found.name, found.id);
                }
                Ok(())
            }
            ProductCommand::Categories => {
                let page: Page<Category> = client.get("/api/products/categories").send().await?;
                output.list(&page, &page.items)
            }
            ProductCommand::Import(args) => {
                let summary =
                    import(&client, &args, progress::wanted(context.global.quiet)).await?;
                print_import(&mut output, &summary)?;
                import_failures(&summary)
            }
            ProductCommand::Export(args) => {
                let quiet = context.global.quiet;
                let count = export(&client, &args, progress::wanted(quiet)).await?;
                if let (Some(count), Some(path), false) = (count, &args.output_file, quiet) {
                    let noun = if count == 1 { "product" } else { "products" };
                    eprintln!("exported {count} {noun} to {}", path.display());
                }
                Ok(())
            }
        }
    }
}

async fn list_page(
    client: &ApiClient,
    args: &ListArgs,
    limit: u32,
    offset: u64,
) -> Result<Page<Product>, CliError> {
    // The filter is in minor units; a decimal typed here is read as the
    // catalog's usual two decimals (USD, EUR...).
    let cents = |amount: &Option<Amount>, flag: &str| {
        amount
            .as_ref()
            .map(|a| a.minor_units(Currency::USD, flag))
            .transpose()
    };
    let status = if args.archived {
        Some("archived")
    } else if args.all_statuses {
        Some("all")
    } else {
        None
    };
    client
        .get("/api/products")
        .query_opt("category", args.category.as_deref())
        .query_opt("min_price", cents(&args.min_price, "--min-price")?)
        .query_opt("max_price", cents(&args.max_price, "--max-price")?)
        .query_opt("q", args.search.as_deref())
        .query_opt("in_stock", args.in_stock.then_some("true"))
        .query_opt("status", status)
        .query_opt("sort", args.sort.as_deref())
        .query("limit", limit.to_string())
        .query("offset", offset.to_string())
        .send()
        .await
}

/// Builds the patch. Merging attributes, or a price in the product's own
/// currency, needs the product as it is now: it is read first, and its
/// version sent along, so an edit made in between is a conflict, not lost.
async fn update(client: &ApiClient, args: UpdateArgs) -> Result<Product, CliError> {
    let needs_current = !args.attrs.is_empty() || (args.price.is_some() && args.currency.is_none());
    let nothing = args.name.is_none()
        && args.price.is_none()
        && args.currency.is_none()
        && args.category.is_none()
        && args.description.is_none()
        && args.attrs.is_empty()
        && args.images.is_empty()
        && !args.activate;
    if nothing {
        return Err(CliError::Usage(
            "nothing to change; give at least one of --name, --price, --currency, --category, \
             --description, --attr, --image or --activate"
                .into(),
        ));
    }
    let path = format!("/api/products/{}", args.product);
    let current: Option<Product> = if needs_current {
        Some(client.get(&path).send().await?)
    } else {
        None
    };
    let currency = args
        .currency
        .or(current.as_ref().map(|p| p.currency))
        .unwrap_or_default();
    let attributes = match &current {
        Some(product) if !args.attrs.is_empty() => {
            Some(merge_attributes(product.attributes.clone(), args.attrs))
        }
        _ => None,
    };
    let patch = ProductPatch {
        name: args.name,
        description: args.description,
        category: args.category,
        price_cents: args
            .price
            .map(|price| price.minor_units(currency, "--price"))
            .transpose()?,
        currency: args.currency,
        attributes,
        images: (!args.images.is_empty()).then_some(args.images),
        active: args.activate.then_some(true),
        weight_grams: args.weight_grams,
        tax_category: args.tax_category,
        requires_shipping: None,
        version: args.version.or(current.map(|p| p.version)),
    };
    client.patch(&path).json(&patch)?.send().await
}

/// `KEY=VALUE` sets a key, `KEY=` removes it.
fn merge_attributes(
    mut attributes: BTreeMap<String, String>,
    changes: Vec<(String, String)>,
) -> BTreeMap<String, String> {
    for (key, value) in changes {
        if value.is_empty() {
            attributes.remove(&key);
        } else {
            attributes.insert(key, value);
        }
    }
    attributes
}

/// The format of an import: --format, else the file's extension.
fn import_format(file: &Path, format: Option<DataFormat>) -> Result<DataFormat, CliError> {
    if let Some(format) = format {
        return Ok(format);
    }
    if file.as_os_str() == "-" {
        return Err(CliError::Usage(
            "reading stdin needs --format json, ndjson or csv".into(),
        ));
    }
    DataFormat::from_extension(&file.to_string_lossy()).ok_or_else(|| {
        CliError::Usage(format!(
            "cannot tell the format of {} from its extension; pass --format json, ndjson or csv",
            file.display()
        ))
    })
}

async fn import(
    client: &ApiClient,
    args: &ImportArgs,
    show_progress: bool,
) -> Result<ImportSummary, CliError> {
    let format = import_format(&args.file, args.format)?;
    let message = if args.dry_run {
        "checking"
    } else {
        "importing"
    };
    let (body, bar) = if args.file.as_os_str() == "-" {
        let bar = progress::bytes(show_progress, None, message);
        (progress::upload_body(tokio::io::stdin(), bar.clone()), bar)
    } else {
        let file = tokio::fs::File::open(&args.file).await.map_err(|err| {
            CliError::Usage(format!("cannot read {}: {err}", args.file.display()))
        })?;
        let size = file.metadata().await.ok().map(|m| m.len());
        let bar = progress::bytes(show_progress, size, message);
        (progress::upload_body(file, bar.clone()), bar)
    };
    let result = client
        .post("/api/products/import")
        .query("format", format.as_str())
        .query("dry_run", args.dry_run.to_string())
        .query("stock", args.stock.as_str())
        .upload(format.content_type(), body)
        .send()
        .await;
    bar.finish_and_clear();
    result
}

/// Streams the export to stdout, or to a temporary file beside the target
/// that replaces it only when the export is complete.
/// Streams the export to stdout or `--output-file`; for a file, returns how
/// many products it holds.
async fn export(
    client: &ApiClient,
    args: &ExportArgs,
    show_progress: bool,
) -> Result<Option<usize>, CliError> {
    let response = client
        .get("/api/products/export")
        .query("format", args.format.as_str())
        .query("status", args.status.clone())
        .streaming()
        .response()
        .await?;
    let mut body = response.bytes_stream();
    let read_error = |err: reqwest::Error| CliError::Other(format!("the export broke off: {err}"));
    match &args.output_file {
        None => {
            let mut out = std::io::stdout();
            while let Some(chunk) = body.next().await {
                out.write_all(&chunk.map_err(read_error)?)?;
            }
            out.flush()?;
            Ok(None)
        }
        Some(path) => {
            let fail = |err: std::io::Error| CliError::Other(format!("{}: {err}", path.display()));
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
                _ => PathBuf::from("."),
            };
            // tempfile names its own file in the error; the user gave `path`.
            let mut file = tempfile::NamedTempFile::new_in(&dir).map_err(|err| {
                fail(err.raw_os_error().map_or(
                    std::io::Error::from(err.kind()),
                    std::io::Error::from_raw_os_error,
                ))
            })?;
            let bar = progress::bytes(show_progress, None, "exporting");
            let written: Result<(), CliError> = async {
                while let Some(chunk) = body.next().await {
                    let chunk = chunk.map_err(read_error)?;
                    file.write_all(&chunk).map_err(fail)?;
                    bar.inc(chunk.len() as u64);
                }
                file.flush().map_err(fail)
            }
            .await;
            bar.finish_and_clear();
            written?;
            let count = count_records(file.path(), args.format)?;
            file.persist(path).map_err(|err| fail(err.error))?;
            Ok(Some(count))
        }
    }
}

/// How many products an export file holds, read back as its format is read.
fn count_records(path: &Path, format: DataFormat) -> Result<usize, CliError> {
    let bad = |err: String| CliError::Other(format!("cannot read the export back: {err}"));
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    match format {
        DataFormat::Ndjson => {
            let mut count = 0;
            for line in std::io::BufRead::lines(file) {
                if !line?.trim().is_empty() {
                    count += 1;
                }
            }
            Ok(count)
        }
        DataFormat::Csv => Ok(csv::Reader::from_reader(file).records().count()),
        DataFormat::Json => serde_json::from_reader::<_, Vec<serde::de::IgnoredAny>>(file)
            .map(|items| items.len())
            .map_err(|err| bad(err.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Output;

    fn product() -> Product {
        serde_json::from_value(serde_json::json!({
            "id": "prd_01JDQ6Z5R3K8V2N4M7P9T0W1XY",
            "sku": "CHAIR-01",
            "name": "Oak chair, \"Nordic\"",
            "description": "Solid oak\nwaxed",
            "category": "furniture/chairs",
            "price_cents": 12999,
            "currency": "USD",
            "attributes": {"colour": "natural"},
            "images": ["https://images.example.com/chair.jpg"],
            "active": true,
            "version": 3,
            "created_at": "2026-11-23T14:05:09Z",
            "updated_at": "2026-11-23T14:05:09Z"
        }))
        .expect("a product")
    }

    #[test]
    fn prices_are_plain_decimals() {
        assert_eq!(parse_price("19.99"), Ok(Amount("19.99".into())));
        assert_eq!(parse_price("20"), Ok(Amount("20".into())));
        for bad in ["", "-3", "1,299.50", "1.", ".5", "1e3", "abc", "$5"] {
            assert!(parse_price(bad).is_err(), "{bad} was accepted");
        }
        let usd = Currency::USD;
        assert_eq!(
            Amount("19.99".into()).minor_units(usd, "--price").ok(),
            Some(1999)
        );
        let jpy: Currency = "JPY".parse().expect("JPY");
        let err = Amount("19.99".into())
            .minor_units(jpy, "--price")
            .expect_err("JPY has no decimals");
        assert!(err.to_string().starts_with("--price: "), "{err}");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn attributes_images_categories_and_refs_are_checked() {
        assert_eq!(
            parse_attr("colour=red"),
            Ok(("colour".into(), "red".into()))
        );
        assert_eq!(parse_attr("size=a=b"), Ok(("size".into(), "a=b".into())));
        assert_eq!(parse_attr("colour="), Ok(("colour".into(), String::new())));
        assert!(parse_attr("colour").is_err());
        assert!(parse_attr("=red").is_err());

        assert!(parse_image("https://images.example.com/a.jpg").is_ok());
        assert!(parse_image("ftp://x/a.jpg").is_err());
        assert!(parse_image("a.jpg").is_err());

        assert_eq!(
            parse_category("furniture/chairs").as_deref(),
            Ok("furniture/chairs")
        );
        assert_eq!(parse_category("").as_deref(), Ok(""));
        assert!(parse_category("furniture//chairs").is_err());
        assert!(parse_category("/chairs").is_err());

        assert!(parse_product_ref("prd_01JDQ6Z5R3K8V2N4M7P9T0W1XY").is_ok());
        assert!(parse_product_ref("prd_nope").is_err());
        assert_eq!(parse_product_ref("CHAIR-01").as_deref(), Ok("CHAIR-01"));
        assert_eq!(parse_product_ref("chair-01").as_deref(), Ok("CHAIR-01"));
        use clap::Parser;
        let negative = crate::Cli::try_parse_from([
            "shop", "product", "add", "--sku", "A", "--name", "a", "--price", "-5",
        ])
        .expect_err("a negative price");
        assert_eq!(negative.exit_code(), 2);
        assert!(
            negative.to_string().contains("`-5` is not a price"),
            "our message, not clap's unexpected argument: {negative}"
        );
        assert!(parse_name("  ").is_err());
    }

    #[test]
    fn attributes_merge_and_an_empty_value_removes() {
        let current = BTreeMap::from([
            ("colour".to_owned(), "red".to_owned()),
            ("size".to_owned(), "L".to_owned()),
        ]);
        let merged = merge_attributes(
            current,
            vec![
                ("colour".into(), "blue".into()),
                ("size".into(), String::new()),
                ("material".into(), "oak".into()),
            ],
        );
        assert_eq!(
            merged,
            BTreeMap::from([
                ("colour".to_owned(), "blue".to_owned()),
                ("material".to_owned(), "oak".to_owned()),
            ])
        );
    }

    #[test]
    fn the_import_format_comes_from_the_flag_or_the_extension() {
        let format = |file: &str, flag| import_format(Path::new(file), flag);
        assert_eq!(format("a.csv", None).ok(), Some(DataFormat::Csv));
        assert_eq!(format("a.JSONL", None).ok(), Some(DataFormat::Ndjson));
        assert_eq!(
            format("a.txt", Some(DataFormat::Json)).ok(),
            Some(DataFormat::Json)
        );
        assert_eq!(
            format("a.txt", None).map_err(|e| e.exit_code()).err(),
            Some(2)
        );
        assert_eq!(format("-", None).map_err(|e| e.exit_code()).err(), Some(2));
    }

    #[test]
    fn a_product_table_shows_the_price_as_a_decimal_and_csv_keeps_cents() {
        let products = vec![product()];
        let table = Output::render_for_test(Format::Table, |o| o.list(&(), &products));
        let header = table.lines().next().expect("a header");
        for column in ["SKU", "NAME", "CATEGORY", "PRICE", "ACTIVE"] {
            assert!(header.contains(column), "{table}");
        }
        assert!(!table.contains("prd_"), "ids only in -o wide: {table}");
        let wide =
            Output::render_sized_for_test(Format::Table, None, true, |o| o.list(&(), &products));
        assert!(wide.contains("prd_"), "{wide}");
        assert!(table.contains("129.99 USD"), "{table}");
        assert!(table.contains("furniture/chairs"), "{table}");

        let csv_text = Output::render_for_test(Format::Csv, |o| o.list(&(), &products));
        let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
        let header = reader.headers().expect("header").clone();
        assert!(header.iter().any(|h| h == "price_cents"), "{csv_text}");
        assert!(
            !header.iter().any(|h| h == "price"),
            "no display field in CSV: {csv_text}"
        );
        let row = reader.records().next().expect("a row").expect("a record");
        assert_eq!(&row[2], "Oak chair, \"Nordic\"");
        assert_eq!(&row[3], "Solid oak\nwaxed");

        let ids = Output::render_for_test(Format::Id, |o| o.list(&(), &products));
        assert_eq!(ids, "prd_01JDQ6Z5R3K8V2N4M7P9T0W1XY\n");

        let stock: Stock = serde_json::from_value(serde_json::json!({
            "sku": "CHAIR-01", "on_hand": 3, "reserved": 3, "available": 0,
            "low_stock_threshold": 2, "updated_at": "2026-11-23T14:05:09Z"
        }))
        .expect("stock");
        let product = product();
        let one = Output::render_for_test(Format::Table, |o| {
            o.one(&ProductView::new(&product, Some(&stock)))
        });
        assert!(
            one.contains("129.99 USD") && !one.contains("PRICE CENTS") && !one.contains("12999"),
            "the price once, as money: {one}"
        );
        assert!(
            one.contains("0 available (3 on hand, 3 reserved) - out of stock"),
            "{one}"
        );
        assert!(
            one.contains("colour=natural") && !one.contains('{'),
            "{one}"
        );
    }

    #[test]
    fn an_import_summary_shows_counts_then_rejected_rows() {
        let summary = ImportSummary {
            dry_run: false,
            rows: 3,
            created: 1,
            updated: 1,
            unchanged: 0,
            failed: 1,
            errors: vec![ImportRowError {
                line: 4,
                sku: Some("BAD-1".into()),
                field: Some("price_cents".into()),
                reason: "must not be negative".into(),
            }],
            elapsed_ms: 12,
        };
        let table = Output::render_for_test(Format::Table, |o| print_import(o, &summary));
        assert!(
            table.contains("CREATED") && table.contains("REASON"),
            "{table}"
        );
        assert!(table.contains("must not be negative"), "{table}");
        let ids = Output::render_for_test(Format::Id, |o| print_import(o, &summary));
        assert_eq!(ids, "4\n");
        let line = Output::render_for_test(Format::Ndjson, |o| print_import(o, &summary));
        let parsed: ImportSummary = serde_json::from_str(&line).expect("the summary");
        assert_eq!(parsed, summary);
        let err = import_failures(&summary).expect_err("a row failed");
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("1 of 3 rows failed"), "{err}");
        assert!(import_failures(&ImportSummary::default()).is_ok());
    }

    #[test]
    fn categories_list_by_path() {
        let categories = vec![Category {
            path: "furniture/chairs".into(),
            name: "chairs".into(),
            depth: 2,
            product_count: 12,
        }];
        let table = Output::render_for_test(Format::Table, |o| o.list(&(), &categories));
        assert!(
            table.contains("CATEGORY") && table.contains("12"),
            "{table}"
        );
        let ids = Output::render_for_test(Format::Id, |o| o.list(&(), &categories));
        assert_eq!(ids, "furniture/chairs\n");
    }
}
