//! The end-to-end suite on PostgreSQL: the same tests as `e2e` (the same
//! source files), each server on a database of its own on a throwaway
//! cluster (see `e2e/common.rs`).
//!
//! Left out, since they are about SQLite itself or the machine rather than
//! the backend: `lifecycle` (the database file, `--db`, durability),
//! `nodes` (backups and the secret file beside the SQLite file; several
//! nodes on PostgreSQL are `cluster`'s), `storefront` (the browser, which
//! sees only HTTP), the CLI suites, and the API fuzzer. The dashboard's
//! tests are in, for `cluster`'s dashboard on another node.

// Helpers outside #[test] functions panic on purpose too: a failed request fails the test.
#![allow(clippy::unwrap_used)]
// The helpers in common.rs also serve the modules this build leaves out.
#![allow(dead_code)]

#[path = "e2e/accounts.rs"]
mod accounts;
#[path = "e2e/address_book.rs"]
mod address_book;
#[path = "e2e/after_sale.rs"]
mod after_sale;
#[path = "e2e/audit.rs"]
mod audit;
#[path = "e2e/catalog.rs"]
mod catalog;
#[path = "e2e/cluster.rs"]
mod cluster;
#[path = "e2e/commerce.rs"]
mod commerce;
#[path = "e2e/common.rs"]
mod common;
#[path = "e2e/dashboard.rs"]
mod dashboard;
#[path = "e2e/documents.rs"]
mod documents;
#[path = "e2e/events.rs"]
mod events;
#[path = "e2e/fake_stripe.rs"]
mod fake_stripe;
#[path = "e2e/gateway.rs"]
mod gateway;
#[path = "e2e/hardening.rs"]
mod hardening;
#[path = "e2e/idempotency.rs"]
mod idempotency;
#[path = "e2e/keys.rs"]
mod keys;
#[path = "e2e/notifications.rs"]
mod notifications;
#[path = "e2e/pricing.rs"]
mod pricing;
#[path = "e2e/reports.rs"]
mod reports;
#[path = "e2e/search.rs"]
mod search;
#[path = "e2e/users.rs"]
mod users;
#[path = "e2e/webhooks.rs"]
mod webhooks;
