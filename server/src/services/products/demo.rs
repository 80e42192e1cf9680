//! Sample data: a fixtures document (users, products with stock) loaded
//! through the same rules as the API, for `shop serve --demo`, with the
//! shipping zones, tax rates and sample code of [`crate::services::pricing::demo`].

use shop_wire::fixtures::Fixtures;
use shop_wire::products::{ImportRowError, ImportSummary, StockImport};

use super::import::{Tally, checked_row, upsert};
use crate::services::error::{DomainError, DomainResult};
use crate::services::users::domain::create_account;
use crate::state::AppState;
use crate::store::{ProductQuery, ProductStatus};

/// The sample catalog in `fixtures/catalog.json`, built into the binary so
/// that `shop serve --demo` works from any directory.
pub const CATALOG: &str = include_str!("../../../../fixtures/catalog.json");

#[derive(Debug, Default, PartialEq)]
pub struct Loaded {
    pub users: u64,
    pub products: u64,
    pub failed: Vec<ImportRowError>,
}

/// Creates the fixtures' users (skipping emails that exist) and upserts their products.
pub async fn load(state: &AppState, fixtures: Fixtures) -> DomainResult<Loaded> {
    let mut loaded = Loaded::default();
    for user in fixtures.users {
        // Without a password the account gets one nobody knows: it exists for
        // orders and notifications until an admin or a reset sets one.
        let password = user
            .password
            .unwrap_or_else(crate::auth::tokens::generate_password);
        match create_account(state, &user.email, &password, &user.name, user.role).await {
            Ok(_) => loaded.users += 1,
            Err(DomainError::Conflict { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    let batch_size = state.config.inventory.import_batch_size;
    let mut tally = Tally::new(ImportSummary::default());
    let mut requests = fixtures.products.into_iter().enumerate().peekable();
    while requests.peek().is_some() {
        let mut rows = Vec::with_capacity(batch_size);
        for (index, request) in requests.by_ref().take(batch_size) {
            match checked_row(index as u64 + 1, request, StockImport::Ignore) {
                Ok(row) => rows.push(row),
                Err(error) => tally.fail(error),
            }
        }
        upsert(state, rows, None, false, &mut tally).await?;
    }
    let summary = tally.finish().await?;
    loaded.products = summary.created + summary.updated + summary.unchanged;
    loaded.failed = summary.errors;
    Ok(loaded)
}

/// Loads the built-in sample catalog when the database has no products yet;
/// `None` when it already had some.
pub async fn load_demo_if_empty(state: &AppState) -> anyhow::Result<Option<Loaded>> {
    let probe = ProductQuery {
        status: ProductStatus::All,
        limit: 1,
        ..ProductQuery::default()
    };
    let (_, total) = state.store.list_products(&probe).await?;
    if total > 0 {
        return Ok(None);
    }
    let fixtures: Fixtures = serde_json::from_str(CATALOG)?;
    // Shipping is priced in the goods' currency, or the zones ship none of them.
    let currency = fixtures
        .products
        .first()
        .map(|product| product.currency)
        .unwrap_or_default();
    let loaded = load(state, fixtures)
        .await
        .map_err(|err| anyhow::anyhow!("loading the demo catalog: {err}"))?;
    crate::services::pricing::demo::load(state, currency)
        .await
        .map_err(|err| anyhow::anyhow!("loading the demo's shipping, tax and discounts: {err}"))?;
    Ok(Some(loaded))
}
