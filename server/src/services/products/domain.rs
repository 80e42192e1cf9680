//! The catalog's rules: what a valid product is, how categories are written,
//! and optimistic updates. Handlers call these; these call the store.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use shop_wire::Page;
use shop_wire::events::{EventData, ProductDeletedEvent};
use shop_wire::products::{Category, Product, ProductId, ProductPatch, ProductRequest};

use super::cache::ProductCache;
use crate::auth::AuthUser;
use crate::services::actor;
use crate::services::cart::rules as cart_rules;
use crate::services::error::{DomainError, DomainResult};
use crate::services::search::domain as search;
use crate::state::AppState;
use crate::store::{
    InitialStock, NewEvent, ProductChange, ProductDelete, ProductKey, ProductQuery, ProductWrite,
    StoreError, now,
};

const MAX_SKU: usize = 64;
const MAX_NAME: usize = 200;
const MAX_DESCRIPTION: usize = 5_000;
const MAX_CATEGORY_SEGMENT: usize = 64;
const MAX_CATEGORY_DEPTH: usize = 5;
const MAX_ATTRIBUTES: usize = 50;
const MAX_ATTRIBUTE_KEY: usize = 64;
const MAX_ATTRIBUTE_VALUE: usize = 500;
const MAX_IMAGES: usize = 20;
const MAX_URL: usize = 2_048;
/// Ten billion in minor units: far above any real price, far below overflow in totals.
pub const MAX_PRICE: i64 = 10_000_000_000;
pub const MAX_STOCK: i64 = 1_000_000_000;
/// An update whose version moved under it is retried this often before giving up.
const UPDATE_ATTEMPTS: usize = 5;

/// Field-by-field problems with a product, collected so one answer names them all.
#[derive(Debug, Default)]
pub struct Problems(BTreeMap<String, String>);

impl Problems {
    fn add(&mut self, field: &str, problem: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_insert_with(|| problem.into());
    }

    /// The first problem, as an import reports it for a row.
    pub fn first(&self) -> Option<(&str, &str)> {
        self.0.iter().next().map(|(f, p)| (f.as_str(), p.as_str()))
    }

    fn into_result(self) -> DomainResult<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let message = self
            .0
            .iter()
            .map(|(field, problem)| format!("{field}: {problem}"))
            .collect::<Vec<_>>()
            .join("; ");
        Err(DomainError::Validation {
            message,
            fields: json!(self.0),
        })
    }
}

/// Checks a SKU: 1-64 of `A-Z 0-9 . _ -`, starting with a letter or digit.
/// Upper case only, so `chair-1` and `CHAIR-1` can never be two products.
pub fn check_sku(sku: &str) -> Result<(), String> {
    let valid_char = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || "._-".contains(c);
    if sku.is_empty() || sku.len() > MAX_SKU {
        return Err(format!("must be 1-{MAX_SKU} characters"));
    }
    if !sku.starts_with(|c: char| c.is_ascii_alphanumeric()) || !sku.chars().all(valid_char) {
        let upper = sku.to_ascii_uppercase();
        if upper != sku && upper.chars().all(valid_char) {
            return Err(format!("must be upper case: {upper}"));
        }
        return Err(
            "must be letters A-Z, digits and . _ - (starting with a letter or digit)".to_owned(),
        );
    }
    Ok(())
}

/// A category path written the one way it is stored: trimmed, lower-case
/// segments joined by `/` (`Furniture / Chairs` -> `furniture/chairs`).
/// An empty path means no category.
pub fn normalize_category(raw: &str) -> Result<Option<String>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let segments: Vec<String> = raw.split('/').map(|s| s.trim().to_lowercase()).collect();
    if segments.len() > MAX_CATEGORY_DEPTH {
        return Err(format!("at most {MAX_CATEGORY_DEPTH} levels"));
    }
    for segment in &segments {
        if segment.is_empty() {
            return Err("a level between slashes is empty".to_owned());
        }
        if segment.chars().count() > MAX_CATEGORY_SEGMENT {
            return Err(format!(
                "each level is at most {MAX_CATEGORY_SEGMENT} characters"
            ));
        }
        if segment.chars().any(char::is_control) {
            return Err("must not contain control characters".to_owned());
        }
    }
    Ok(Some(segments.join("/")))
}

fn check_text(problems: &mut Problems, field: &str, text: &str, max: usize, required: bool) {
    if required && text.trim().is_empty() {
        problems.add(field, "must not be empty");
    } else if text.chars().count() > max {
        problems.add(field, format!("must be at most {max} characters"));
    } else if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        problems.add(field, "must not contain control characters");
    }
}

fn check_price(problems: &mut Problems, price: i64) {
    if price <= 0 {
        problems.add("price_cents", "must be greater than 0");
    } else if price > MAX_PRICE {
        problems.add("price_cents", format!("must be at most {MAX_PRICE}"));
    }
}

fn check_attributes(problems: &mut Problems, attributes: &BTreeMap<String, String>) {
    if attributes.len() > MAX_ATTRIBUTES {
        problems.add("attributes", format!("at most {MAX_ATTRIBUTES} attributes"));
    }
    for (key, value) in attributes {
        if key.trim().is_empty() || key.chars().count() > MAX_ATTRIBUTE_KEY {
            problems.add(
                "attributes",
                format!("keys must be 1-{MAX_ATTRIBUTE_KEY} characters"),
            );
        } else if value.chars().count() > MAX_ATTRIBUTE_VALUE {
            problems.add(
                "attributes",
                format!("`{key}` must be at most {MAX_ATTRIBUTE_VALUE} characters"),
            );
        } else if key == cart_rules::MAX_PER_CART_ATTRIBUTE
            && let Err(problem) = cart_rules::parse_max_per_cart(value)
        {
            problems.add("attributes", problem);
        }
    }
}

fn check_images(problems: &mut Problems, images: &[String]) {
    if images.len() > MAX_IMAGES {
        problems.add("images", format!("at most {MAX_IMAGES} images"));
    }
    for url in images {
        let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
        let host_ok = url
            .split("://")
            .nth(1)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
        if !scheme_ok || !host_ok || url.len() > MAX_URL || url.chars().any(char::is_whitespace) {
            problems.add("images", format!("`{url}` is not an http(s) URL"));
        }
    }
}

/// The heaviest product, in grams (ten tonnes).
const MAX_WEIGHT_GRAMS: i64 = 10_000_000;

fn check_weight(problems: &mut Problems, weight: Option<i64>) {
    if weight.is_some_and(|grams| !(0..=MAX_WEIGHT_GRAMS).contains(&grams)) {
        problems.add(
            "weight_grams",
            format!("must be between 0 and {MAX_WEIGHT_GRAMS}"),
        );
    }
}

/// A tax category as given (`""` is none), checked.
fn tax_category(problems: &mut Problems, category: Option<&str>) -> Option<String> {
    let category = category.map(str::trim).filter(|c| !c.is_empty())?;
    match crate::services::pricing::tables::check_code("tax_category", category) {
        Ok(category) => Some(category),
        Err(_) => {
            problems.add(
                "tax_category",
                "must be 1 to 40 of a-z, 0-9, `-` and `_`, starting with a letter or digit",
            );
            None
        }
    }
}

fn check_stock(problems: &mut Problems, field: &str, value: Option<i64>) {
    if let Some(value) = value
        && !(0..=MAX_STOCK).contains(&value)
    {
        problems.add(field, format!("must be between 0 and {MAX_STOCK}"));
    }
}

/// True when `row` would change nothing a client can see in `stored`
/// (an import row that leaves its product alone).
pub fn same_content(stored: &Product, row: &Product) -> bool {
    stored.name == row.name
        && stored.description == row.description
        && stored.category == row.category
        && stored.price_cents == row.price_cents
        && stored.currency == row.currency
        && stored.attributes == row.attributes
        && stored.images == row.images
        && stored.active == row.active
        && stored.weight_grams == row.weight_grams
        && stored.tax_category == row.tax_category
        && stored.requires_shipping == row.requires_shipping
}

/// A request checked and normalized into the product it describes (with a
/// fresh id and times, which an upsert of an existing SKU replaces).
pub fn product_from(
    request: ProductRequest,
) -> Result<(Product, Option<i64>, Option<i64>), Problems> {
    let mut problems = Problems::default();
    if let Err(problem) = check_sku(&request.sku) {
        problems.add("sku", problem);
    }
    check_text(&mut problems, "name", &request.name, MAX_NAME, true);
    check_text(
        &mut problems,
        "description",
        &request.description,
        MAX_DESCRIPTION,
        false,
    );
    let category = match request.category.as_deref().map(normalize_category) {
        Some(Ok(category)) => category,
        Some(Err(problem)) => {
            problems.add("category", problem);
            None
        }
        None => None,
    };
    check_price(&mut problems, request.price_cents);
    check_attributes(&mut problems, &request.attributes);
    check_images(&mut problems, &request.images);
    check_stock(&mut problems, "stock", request.stock);
    check_stock(
        &mut problems,
        "low_stock_threshold",
        request.low_stock_threshold,
    );
    check_weight(&mut problems, request.weight_grams);
    let tax_category = tax_category(&mut problems, request.tax_category.as_deref());
    if !problems.0.is_empty() {
        return Err(problems);
    }
    let at = now();
    let product = Product {
        id: ProductId::generate(),
        sku: request.sku,
        name: request.name.trim().to_owned(),
        description: request.description,
        category,
        price_cents: request.price_cents,
        currency: request.currency,
        attributes: request.attributes,
        images: request.images,
        active: request.active,
        weight_grams: request.weight_grams,
        tax_category,
        requires_shipping: request.requires_shipping.unwrap_or(true),
        version: 1,
        created_at: at,
        updated_at: at,
    };
    Ok((product, request.stock, request.low_stock_threshold))
}

/// `prd_...` names a product by id; anything else is a SKU.
pub fn product_key(raw: &str) -> ProductKey {
    match raw.parse::<ProductId>() {
        Ok(id) => ProductKey::Id(id),
        Err(_) => ProductKey::Sku(raw.to_owned()),
    }
}

fn not_found(raw: &str) -> DomainError {
    DomainError::not_found(format!("product {raw}"))
}

/// The events of a product change, with the product as written.
pub fn product_events(change: ProductChange, product: &Product) -> Vec<NewEvent> {
    let kind = match change {
        ProductChange::Created => EventData::ProductCreated,
        ProductChange::Updated => EventData::ProductUpdated,
    };
    vec![NewEvent::now(kind(product.into()))]
}

fn deleted_events(product: &Product) -> Vec<NewEvent> {
    vec![NewEvent::now(EventData::ProductDeleted(
        ProductDeletedEvent {
            id: product.id.clone(),
            sku: product.sku.clone(),
        },
    ))]
}

pub async fn create(
    state: &AppState,
    caller: &AuthUser,
    request: ProductRequest,
) -> DomainResult<Product> {
    let (product, stock, threshold) = product_from(request).map_err(|p| match p.into_result() {
        Err(err) => err,
        Ok(()) => DomainError::internal(anyhow::anyhow!("validation failed without a problem")),
    })?;
    let initial = InitialStock {
        on_hand: stock.unwrap_or(0),
        low_stock_threshold: threshold.unwrap_or(state.config.inventory.low_stock_threshold),
    };
    let events = product_events(ProductChange::Created, &product);
    let actor = actor(state, caller).await?;
    match state
        .store
        .insert_product(&product, initial, actor, events)
        .await
    {
        Ok(_) => {
            search::catalog_changed(state, vec![product.id.clone()]).await;
            Ok(product)
        }
        Err(StoreError::Duplicate { .. }) => Err(DomainError::Conflict {
            code: "duplicate_sku",
            message: format!("a product with SKU {} already exists", product.sku),
            details: json!({ "sku": product.sku }),
        }),
        Err(err) => Err(err.into()),
    }
}

pub async fn get(state: &AppState, raw: &str) -> DomainResult<Product> {
    let key = product_key(raw);
    if let Some(product) = state.catalog.get(&key) {
        return Ok(product);
    }
    let generation = state.catalog.generation();
    let product = state
        .store
        .product(&key)
        .await?
        .ok_or_else(|| not_found(raw))?;
    state.catalog.fill(&product, generation);
    Ok(product)
}

/// A product as a caller may see it: an archived one is "not found" to
/// anyone but staff, as the list does not show it to them either.
pub async fn get_for(state: &AppState, raw: &str, staff: bool) -> DomainResult<Product> {
    let product = get(state, raw).await?;
    if super::rules::visible(product.active, staff) {
        Ok(product)
    } else {
        Err(not_found(raw))
    }
}

pub async fn list(state: &AppState, query: ProductQuery) -> DomainResult<Arc<Page<Product>>> {
    // A `min_price` above `max_price` is an empty range, answered with an
    // empty page: JSON Schema cannot say one parameter bounds another, so a
    // client the document guides may well send one.
    let cacheable = ProductCache::caches(&query);
    if cacheable && let Some(page) = state.catalog.page(&query) {
        return Ok(page);
    }
    let generation = state.catalog.generation();
    let (items, total) = state.store.list_products(&query).await?;
    let page = Arc::new(Page {
        items,
        total,
        limit: query.limit,
        offset: query.offset,
    });
    if cacheable {
        state.catalog.fill_page(&query, page.clone(), generation);
    }
    Ok(page)
}

/// Applies a patch with optimistic concurrency. With a version (in the body
/// or `If-Match`) the patch applies to exactly that version or fails with
/// 409; without one it applies to the newest, retrying if a concurrent
/// update slips in between the read and the write.
pub async fn update(
    state: &AppState,
    raw: &str,
    patch: ProductPatch,
    if_match: Option<u64>,
) -> DomainResult<Product> {
    let expected = match (patch.version, if_match) {
        (Some(body), Some(header)) if body != header => {
            return Err(DomainError::validation(
                "version",
                format!("the body says {body} but If-Match says {header}"),
            ));
        }
        (body, header) => body.or(header),
    };
    let key = product_key(raw);
    for _ in 0..UPDATE_ATTEMPTS {
        let stored = state
            .store
            .product(&key)
            .await?
            .ok_or_else(|| not_found(raw))?;
        let base = expected.unwrap_or(stored.version);
        if base != stored.version {
            return Err(version_conflict(&stored.sku, base, stored.version));
        }
        let product = patched(stored, &patch)?;
        let kind = if !product.active && patch.active == Some(false) {
            EventData::ProductArchived
        } else {
            EventData::ProductUpdated
        };
        let events = vec![NewEvent::now(kind((&product).into()))];
        match state.store.update_product(&product, base, events).await? {
            ProductWrite::Written(product) => {
                search::catalog_changed(state, vec![product.id.clone()]).await;
                return Ok(*product);
            }
            ProductWrite::NotFound => return Err(not_found(raw)),
            ProductWrite::VersionConflict { current } if expected.is_some() => {
                return Err(version_conflict(&product.sku, base, current));
            }
            ProductWrite::VersionConflict { .. } => continue,
        }
    }
    Err(DomainError::conflict(
        "version_conflict",
        format!("product {raw} kept changing while it was being updated; retry"),
    ))
}

fn version_conflict(sku: &str, expected: u64, current: u64) -> DomainError {
    DomainError::Conflict {
        code: "version_conflict",
        message: format!(
            "product {sku} is at version {current}, not {expected}: it changed since it was read"
        ),
        details: json!({ "current_version": current, "expected_version": expected }),
    }
}

fn patched(stored: Product, patch: &ProductPatch) -> DomainResult<Product> {
    let mut problems = Problems::default();
    let mut product = stored;
    if let Some(name) = &patch.name {
        check_text(&mut problems, "name", name, MAX_NAME, true);
        product.name = name.trim().to_owned();
    }
    if let Some(description) = &patch.description {
        check_text(
            &mut problems,
            "description",
            description,
            MAX_DESCRIPTION,
            false,
        );
        product.description = description.clone();
    }
    if let Some(category) = &patch.category {
        match normalize_category(category) {
            Ok(category) => product.category = category,
            Err(problem) => problems.add("category", problem),
        }
    }
    if let Some(price) = patch.price_cents {
        check_price(&mut problems, price);
        product.price_cents = price;
    }
    if let Some(currency) = patch.currency {
        product.currency = currency;
    }
    if let Some(attributes) = &patch.attributes {
        check_attributes(&mut problems, attributes);
        product.attributes = attributes.clone();
    }
    if let Some(images) = &patch.images {
        check_images(&mut problems, images);
        product.images = images.clone();
    }
    if let Some(active) = patch.active {
        product.active = active;
    }
    if let Some(grams) = patch.weight_grams {
        check_weight(&mut problems, Some(grams));
        product.weight_grams = Some(grams);
    }
    if let Some(category) = &patch.tax_category {
        product.tax_category = tax_category(&mut problems, Some(category));
    }
    if let Some(ships) = patch.requires_shipping {
        product.requires_shipping = ships;
    }
    problems.into_result()?;
    product.version += 1;
    product.updated_at = now();
    Ok(product)
}

pub async fn archive(state: &AppState, raw: &str) -> DomainResult<Product> {
    let patch = ProductPatch {
        active: Some(false),
        ..ProductPatch::default()
    };
    update(state, raw, patch, None).await
}

pub async fn delete(state: &AppState, raw: &str) -> DomainResult<()> {
    match state
        .store
        .delete_product(&product_key(raw), deleted_events)
        .await?
    {
        ProductDelete::Deleted(product) => {
            search::product_deleted(state, &product.id);
            Ok(())
        }
        ProductDelete::NotFound => Err(not_found(raw)),
        ProductDelete::InUse {
            active_reservations,
        } => Err(DomainError::Conflict {
            code: "product_in_use",
            message: format!(
                "product {raw} has {active_reservations} active reservation(s); archive it instead, \
                 or delete it once they are committed or released"
            ),
            details: json!({ "active_reservations": active_reservations }),
        }),
        ProductDelete::Ordered { orders } => Err(DomainError::Conflict {
            code: "product_in_use",
            message: format!(
                "product {raw} is in {orders} order(s), whose history needs it; archive it instead"
            ),
            details: json!({ "orders": orders }),
        }),
    }
}

/// The category tree: every path holding products and every ancestor of
/// one, each with the active products in its subtree, in path order.
pub async fn categories(state: &AppState) -> DomainResult<Page<Category>> {
    let counts = state.store.category_counts().await?;
    let mut tree: BTreeMap<String, u64> = BTreeMap::new();
    for (path, count) in counts {
        let mut prefix = String::new();
        for segment in path.split('/') {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(segment);
            *tree.entry(prefix.clone()).or_default() += count;
        }
    }
    let items: Vec<Category> = tree
        .into_iter()
        .map(|(path, product_count)| Category {
            name: path.rsplit('/').next().unwrap_or(&path).to_owned(),
            depth: path.matches('/').count() as u32 + 1,
            path,
            product_count,
        })
        .collect();
    Ok(Page {
        total: items.len() as u64,
        limit: items.len() as u32,
        offset: 0,
        items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_are_upper_case_with_a_hint_for_lower_case() {
        assert!(check_sku("CHAIR-01").is_ok());
        assert!(check_sku("A.B_C-9").is_ok());
        assert_eq!(
            check_sku("chair-01"),
            Err("must be upper case: CHAIR-01".to_owned())
        );
        for bad in ["", "-LEAD", "SPA CE", "É", &"X".repeat(65), "prd_01"] {
            assert!(check_sku(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn categories_are_normalized_paths() {
        assert_eq!(
            normalize_category(" Furniture / Chairs "),
            Ok(Some("furniture/chairs".to_owned()))
        );
        assert_eq!(normalize_category(""), Ok(None));
        assert!(normalize_category("a//b").is_err());
        assert!(normalize_category("a/b/c/d/e/f").is_err());
        assert!(normalize_category("/a").is_err());
    }

    fn request() -> ProductRequest {
        ProductRequest {
            sku: "LAMP-1".to_owned(),
            name: " Desk lamp ".to_owned(),
            price_cents: 1999,
            active: true,
            ..ProductRequest::default()
        }
    }

    #[test]
    fn a_valid_request_becomes_a_normalized_product() {
        let (product, stock, _) = product_from(ProductRequest {
            category: Some("Lighting/Desk".to_owned()),
            stock: Some(4),
            ..request()
        })
        .expect("valid");
        assert_eq!(product.name, "Desk lamp");
        assert_eq!(product.category.as_deref(), Some("lighting/desk"));
        assert_eq!(product.version, 1);
        assert_eq!(stock, Some(4));
    }

    #[test]
    fn every_bad_field_is_named() {
        let problems = product_from(ProductRequest {
            sku: "lamp".to_owned(),
            name: "  ".to_owned(),
            price_cents: 0,
            images: vec!["ftp://x".to_owned()],
            stock: Some(-1),
            ..request()
        })
        .expect_err("invalid");
        let fields: Vec<&str> = problems.0.keys().map(String::as_str).collect();
        assert_eq!(fields, ["images", "name", "price_cents", "sku", "stock"]);
        assert_eq!(problems.first().map(|(f, _)| f), Some("images"));
    }

    #[test]
    fn patches_change_only_what_they_name_and_bump_the_version() {
        let (stored, _, _) = product_from(request()).expect("valid");
        let product = patched(
            stored.clone(),
            &ProductPatch {
                price_cents: Some(2500),
                category: Some(String::new()),
                ..ProductPatch::default()
            },
        )
        .expect("valid patch");
        assert_eq!(product.price_cents, 2500);
        assert_eq!(product.name, stored.name);
        assert_eq!(product.category, None);
        assert_eq!(product.version, stored.version + 1);
        assert!(
            patched(
                stored,
                &ProductPatch {
                    price_cents: Some(-5),
                    ..ProductPatch::default()
                }
            )
            .is_err()
        );
    }
}
