//! The storage interface of the catalog.

use async_trait::async_trait;

use shop_wire::Event;
use shop_wire::products::{Product, ProductId};

use super::{NewEvent, StockEvents, StoreResult};

/// How a product is named in a request: `prd_...` or its SKU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProductKey {
    Id(ProductId),
    Sku(String),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProductStatus {
    #[default]
    Active,
    Archived,
    All,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProductOrder {
    #[default]
    CreatedAt,
    Price,
    Name,
}

#[derive(Clone, Debug, Default)]
pub struct ProductQuery {
    /// A category path; matches it and every category below it.
    pub category: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    /// Case-insensitive substring of the SKU, name or description.
    pub text: Option<String>,
    /// Only products with stock available (`Some(true)`) or without (`Some(false)`).
    pub in_stock: Option<bool>,
    pub status: ProductStatus,
    pub order: ProductOrder,
    pub descending: bool,
    pub limit: u32,
    pub offset: u64,
}

/// The stock a new product starts with.
#[derive(Clone, Copy, Debug)]
pub struct InitialStock {
    pub on_hand: i64,
    pub low_stock_threshold: i64,
}

#[derive(Clone, Debug)]
pub enum ProductWrite {
    Written(Box<Product>),
    NotFound,
    /// The stored product is at another version than the one the change was made to.
    VersionConflict {
        current: u64,
    },
}

#[derive(Clone, Debug)]
pub enum ProductDelete {
    Deleted(Box<Product>),
    NotFound,
    /// Refused: stock is held for it.
    InUse {
        active_reservations: u64,
    },
    /// Refused: orders name it, and their history must keep it.
    Ordered {
        orders: u64,
    },
}

/// One valid row of an import, by its line in the file.
#[derive(Clone, Debug)]
pub struct ImportRow {
    pub line: u64,
    /// The product as the row describes it; `id`, `version` and the times are
    /// filled from the stored product when the SKU exists.
    pub product: Product,
    /// The on-hand count of a product the row creates.
    pub stock: Option<i64>,
    /// What the row does to the on-hand count of a product that exists.
    pub existing_stock: ExistingStock,
    pub low_stock_threshold: Option<i64>,
}

/// The change to an existing product's on-hand count that the service
/// decided for an import row; the store only applies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExistingStock {
    Keep,
    Set(i64),
    Add(i64),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ImportOutcome {
    Created,
    Updated,
    Unchanged,
    /// The row was valid on its own but cannot apply, e.g. a stock below what is reserved.
    Failed(String),
}

/// Builds the events of one committed product change.
pub type ProductEvents = fn(ProductChange, &Product) -> Vec<NewEvent>;

/// Builds the events of a deleted product.
pub type DeletedEvents = fn(&Product) -> Vec<NewEvent>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProductChange {
    Created,
    Updated,
}

#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// Inserts a product and its stock row. Fails with [`StoreError::Duplicate`] on a taken SKU.
    async fn insert_product(
        &self,
        product: &Product,
        stock: InitialStock,
        actor: Option<String>,
        events: Vec<NewEvent>,
    ) -> StoreResult<()>;
    async fn product(&self, key: &ProductKey) -> StoreResult<Option<Product>>;
    async fn list_products(&self, query: &ProductQuery) -> StoreResult<(Vec<Product>, u64)>;
    /// Replaces a product if it is still at `expected_version`; the stored
    /// version becomes `expected_version + 1`.
    async fn update_product(
        &self,
        product: &Product,
        expected_version: u64,
        events: Vec<NewEvent>,
    ) -> StoreResult<ProductWrite>;
    /// Deletes a product with its stock and ledger, unless stock is reserved
    /// for it or an order names it.
    async fn delete_product(
        &self,
        key: &ProductKey,
        events: DeletedEvents,
    ) -> StoreResult<ProductDelete>;
    /// Active products per category path (only paths that hold products directly).
    async fn category_counts(&self) -> StoreResult<Vec<(String, u64)>>;
    /// Upserts a batch of rows by SKU in one transaction (or, with `dry_run`,
    /// works out what it would do and rolls back). One outcome per row, in order.
    async fn import_products(
        &self,
        rows: Vec<ImportRow>,
        default_threshold: i64,
        actor: Option<String>,
        dry_run: bool,
        events: (ProductEvents, StockEvents),
    ) -> StoreResult<(Vec<ImportOutcome>, Vec<Event>)>;
    /// Every product matching `status`, in id order, `batch` at a time from after `after`.
    async fn products_after(
        &self,
        after: Option<ProductId>,
        status: ProductStatus,
        batch: u32,
    ) -> StoreResult<Vec<Product>>;
}
