//! API answers that depend on the catalog only (the category tree, a
//! product's recommendations), kept so that a product or category page does
//! not ask the store for them on every view.
//!
//! An answer is kept with the catalog generation it was read at and is not
//! used once any product has changed since, so a page never shows a product,
//! price or category count older than the last catalog write. What else moves
//! them (views and purchases reorder recommendations) is bounded by
//! [`LIFETIME`]. Stock is never cached here: pages add it per request from
//! the search index.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::Value;

use crate::web::WebState;
use crate::web::api::Answer;
use crate::web::session::Visitor;

/// How long co-views and purchases may go unseen in recommendations.
const LIFETIME: Duration = Duration::from_secs(60);
/// Bytes of JSON kept at most: a recommendations answer is a few KB, so
/// this holds the products viewed in the last minute of a busy shop.
const CAPACITY_BYTES: u64 = 8 * 1024 * 1024;

#[derive(Clone)]
pub struct CatalogAnswers {
    answers: moka::sync::Cache<String, (u64, Arc<Value>)>,
}

impl CatalogAnswers {
    pub fn new() -> Self {
        CatalogAnswers {
            answers: moka::sync::Cache::builder()
                .max_capacity(CAPACITY_BYTES)
                // Weighed once, when an answer is kept.
                .weigher(|path: &String, (_, body): &(u64, Arc<Value>)| {
                    let bytes = path.len() + body.to_string().len();
                    u32::try_from(bytes).unwrap_or(u32::MAX)
                })
                .time_to_live(LIFETIME)
                .build(),
        }
    }
}

impl Default for CatalogAnswers {
    fn default() -> Self {
        Self::new()
    }
}

impl WebState {
    /// `GET path` from the API, or its kept answer if no product changed since
    /// it was read; a refusal comes back as the API gave it. Only for answers
    /// that are the same for every visitor.
    pub async fn catalog_get(&self, visitor: &Visitor, path: &str) -> Result<Arc<Value>, Answer> {
        let catalog = &self.app.catalog;
        let generation = catalog.generation();
        if let Some((read_at, body)) = self.catalog_answers.answers.get(path)
            && read_at == generation
        {
            return Ok(body);
        }
        let answer = self.call(visitor, Method::GET, path, None).await;
        if answer.status != StatusCode::OK {
            return Err(answer);
        }
        let body = Arc::new(answer.body);
        // A write between the read and here would make this answer older than its generation says.
        if catalog.generation() == generation {
            self.catalog_answers
                .answers
                .insert(path.to_owned(), (generation, body.clone()));
        }
        Ok(body)
    }
}
