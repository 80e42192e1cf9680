//! End-to-end tests: each starts the real `shop` binary on port 0 with a
//! temp database and drives it over HTTP.

// Helpers outside #[test] functions panic on purpose too: a failed request fails the test.
#![allow(clippy::unwrap_used)]

mod accounts;
mod address_book;
mod after_sale;
mod audit;
mod catalog;
mod catalog_cli;
mod cli;
mod commerce;
mod commerce_cli;
mod common;
mod dashboard;
mod db_copy;
mod deployment;
mod documents;
mod events;
mod fake_stripe;
mod gateway;
mod hardening;
mod idempotency;
mod keys;
mod lifecycle;
mod nodes;
mod notifications;
mod openapi_fuzz;
mod pricing;
mod reports;
mod search;
mod storefront;
mod users;
mod webhooks;
