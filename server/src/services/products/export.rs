//! Export: the catalog streamed out in the import formats, a page of
//! products at a time, so that an export of any size runs in constant memory
//! and importing it back changes nothing.
//!
//! Each product is written as an import row (no id, version or times: those
//! belong to the database it came from), so an export moves a catalog
//! between shops as well as backing one up.

use axum::body::{Body, Bytes};
use shop_wire::csv_cell;
use shop_wire::products::{CSV_COLUMNS, DataFormat, Product, ProductId, ProductRequest};

use crate::services::error::DomainError;
use crate::state::AppState;
use crate::store::ProductStatus;

const PAGE: u32 = 500;

fn row(product: Product) -> ProductRequest {
    ProductRequest {
        sku: product.sku,
        name: product.name,
        description: product.description,
        category: product.category,
        price_cents: product.price_cents,
        currency: product.currency,
        attributes: product.attributes,
        images: product.images,
        active: product.active,
        stock: None,
        low_stock_threshold: None,
        weight_grams: product.weight_grams,
        tax_category: product.tax_category,
        requires_shipping: Some(product.requires_shipping),
    }
}

/// One product as CSV cells, each guarded against formula injection.
fn csv_record(product: &ProductRequest) -> Result<Vec<String>, serde_json::Error> {
    let cells = [
        product.sku.clone(),
        product.name.clone(),
        product.description.clone(),
        product.category.clone().unwrap_or_default(),
        product.price_cents.to_string(),
        product.currency.to_string(),
        serde_json::to_string(&product.attributes)?,
        serde_json::to_string(&product.images)?,
        product.active.to_string(),
        product
            .weight_grams
            .map(|g| g.to_string())
            .unwrap_or_default(),
        product.tax_category.clone().unwrap_or_default(),
    ];
    Ok(cells
        .iter()
        .map(|cell| csv_cell::guard(cell).into_owned())
        .collect())
}

/// Serializes one page; `first` says whether anything was written before it.
fn encode(format: DataFormat, products: Vec<Product>, first: bool) -> Result<Vec<u8>, DomainError> {
    let mut out = Vec::with_capacity(products.len() * 512);
    match format {
        DataFormat::Ndjson => {
            for product in products {
                serde_json::to_writer(&mut out, &row(product)).map_err(DomainError::internal)?;
                out.push(b'\n');
            }
        }
        DataFormat::Json => {
            for (i, product) in products.into_iter().enumerate() {
                out.extend_from_slice(if first && i == 0 { b"\n  " } else { b",\n  " });
                serde_json::to_writer(&mut out, &row(product)).map_err(DomainError::internal)?;
            }
        }
        DataFormat::Csv => {
            let mut writer = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(&mut out);
            if first {
                writer
                    .write_record(CSV_COLUMNS)
                    .map_err(DomainError::internal)?;
            }
            for product in products {
                let record = csv_record(&row(product)).map_err(DomainError::internal)?;
                writer
                    .write_record(&record)
                    .map_err(DomainError::internal)?;
            }
            writer.flush().map_err(DomainError::internal)?;
        }
    }
    Ok(out)
}

/// The whole catalog (filtered by `status`) as a streamed body.
pub fn export(state: AppState, format: DataFormat, status: ProductStatus) -> Body {
    let stream = async_stream::try_stream! {
        if format == DataFormat::Json {
            yield Bytes::from_static(b"[");
        }
        let mut after: Option<ProductId> = None;
        let mut first = true;
        loop {
            let page = state.store.products_after(after.clone(), status, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            let full = page.len() == PAGE as usize;
            let chunk = encode(format, page, first)?;
            first = false;
            yield Bytes::from(chunk);
            if !full {
                break;
            }
        }
        match (format, first) {
            (DataFormat::Json, true) => yield Bytes::from_static(b"]\n"),
            (DataFormat::Json, false) => yield Bytes::from_static(b"\n]\n"),
            (DataFormat::Csv, true) => yield Bytes::from(encode(format, Vec::new(), true)?),
            _ => {}
        }
    };
    Body::from_stream(futures::StreamExt::map(
        stream,
        |chunk: Result<Bytes, DomainError>| {
            chunk.map_err(|err| {
                tracing::error!(error = %err, "export failed part-way");
                std::io::Error::other("the export failed part-way")
            })
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(sku: &str) -> Product {
        crate::services::products::domain::product_from(ProductRequest {
            sku: sku.to_owned(),
            name: "Chair, \"oak\"".to_owned(),
            description: "two\nlines".to_owned(),
            price_cents: 1999,
            attributes: [("colour".to_owned(), "red".to_owned())].into(),
            active: true,
            ..ProductRequest::default()
        })
        .expect("valid")
        .0
    }

    #[test]
    fn csv_quotes_what_needs_quoting_and_writes_the_header_once() {
        let first = encode(DataFormat::Csv, vec![product("A")], true).expect("encodes");
        let second = encode(DataFormat::Csv, vec![product("B")], false).expect("encodes");
        let text = String::from_utf8([first, second].concat()).expect("utf-8");
        assert_eq!(
            text,
            "sku,name,description,category,price_cents,currency,attributes,images,active,weight_grams,tax_category\n\
             A,\"Chair, \"\"oak\"\"\",\"two\nlines\",,1999,USD,\"{\"\"colour\"\":\"\"red\"\"}\",[],true,,\n\
             B,\"Chair, \"\"oak\"\"\",\"two\nlines\",,1999,USD,\"{\"\"colour\"\":\"\"red\"\"}\",[],true,,\n"
        );
    }
}
