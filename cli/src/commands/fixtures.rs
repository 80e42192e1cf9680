//! `shop fixtures load`: a sample shop from one JSON document (admin).
//!
//! Users are created through the admin API, those that exist already are
//! skipped; products go through the bulk import as one NDJSON stream, which
//! upserts by SKU. So loading the same file twice changes nothing the second
//! time and fails nowhere: it is safe to run on every start of a demo.

use std::path::PathBuf;

use rand::Rng;
use serde::Serialize;
use shop_wire::Page;
use shop_wire::fixtures::{FixtureUser, Fixtures};
use shop_wire::products::{DataFormat, ImportRowError, ImportSummary};
use shop_wire::users::{CreateUserRequest, User};

use crate::client::ApiClient;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Format, Output, Tabular};
use crate::progress;

/// Products per chunk of the NDJSON stream (and per step of the bar).
const PRODUCTS_PER_CHUNK: usize = 100;

#[derive(Debug, clap::Subcommand)]
pub enum FixturesCommand {
    /// Load users and products (with stock) from a fixtures file; safe to run again.
    #[command(after_help = "\
The file is {\"users\": [{email, name, role, password?}], \"products\": [product requests]}.
Existing users (by email) are skipped; products are upserted by SKU, with their stock.
A user without a password gets a random one that is not shown: the account exists for
orders and notifications, and nobody can log in as it until a password is set.
Example: shop fixtures load fixtures/catalog.json")]
    Load {
        /// The fixtures JSON file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Report what would be created and updated, changing nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// One thing of a fixtures file that could not be loaded.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FixtureError {
    /// `user` or `product`.
    pub kind: &'static str,
    /// The user's email or the product's SKU.
    pub key: String,
    pub reason: String,
}

impl Tabular for FixtureError {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("kind", "kind"),
            Column::new("user or sku", "key").kind(CellKind::Id),
            Column::new("reason", "reason"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.key.clone()
    }
}

/// What a load did (or, with --dry-run, would do).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FixturesSummary {
    pub dry_run: bool,
    pub users_created: u64,
    pub users_skipped: u64,
    pub users_failed: u64,
    pub products_created: u64,
    pub products_updated: u64,
    pub products_unchanged: u64,
    pub products_failed: u64,
    pub errors: Vec<FixtureError>,
}

impl FixturesSummary {
    fn failed(&self) -> u64 {
        self.users_failed + self.products_failed
    }

    fn add_products(&mut self, summary: ImportSummary, products: &Fixtures) {
        self.products_created = summary.created;
        self.products_updated = summary.updated;
        self.products_unchanged = summary.unchanged;
        self.products_failed = summary.failed;
        self.errors.extend(
            summary
                .errors
                .into_iter()
                .map(|error| product_error(error, products)),
        );
    }
}

/// An import error names a line of the NDJSON stream: line N is product N.
fn product_error(error: ImportRowError, fixtures: &Fixtures) -> FixtureError {
    let index = usize::try_from(error.line.saturating_sub(1)).unwrap_or(usize::MAX);
    let key = error
        .sku
        .clone()
        .or_else(|| fixtures.products.get(index).map(|p| p.sku.clone()))
        .unwrap_or_else(|| format!("product #{}", error.line));
    let reason = match &error.field {
        Some(field) => format!("{field}: {}", error.reason),
        None => error.reason,
    };
    FixtureError {
        kind: "product",
        key,
        reason,
    }
}

impl Tabular for FixturesSummary {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("users created", "users_created"),
            Column::new("users skipped", "users_skipped"),
            Column::new("products created", "products_created"),
            Column::new("products updated", "products_updated"),
            Column::new("products failed", "products_failed"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        String::new()
    }
}

/// The summary as a table shows it: the counts; the errors get a table of their own.
#[derive(Serialize)]
struct FixturesCounts {
    dry_run: bool,
    users_created: u64,
    users_skipped: u64,
    users_failed: u64,
    products_created: u64,
    products_updated: u64,
    products_unchanged: u64,
    products_failed: u64,
}

impl From<&FixturesSummary> for FixturesCounts {
    fn from(s: &FixturesSummary) -> Self {
        FixturesCounts {
            dry_run: s.dry_run,
            users_created: s.users_created,
            users_skipped: s.users_skipped,
            users_failed: s.users_failed,
            products_created: s.products_created,
            products_updated: s.products_updated,
            products_unchanged: s.products_unchanged,
            products_failed: s.products_failed,
        }
    }
}

impl Tabular for FixturesCounts {
    fn columns() -> &'static [Column] {
        FixturesSummary::columns()
    }

    fn id(&self) -> String {
        String::new()
    }
}

/// On a terminal the counts and a table of what failed; `-o id` the keys
/// (emails, SKUs) that failed; otherwise the whole summary as one record.
fn print_summary(output: &mut Output, summary: &FixturesSummary) -> Result<(), CliError> {
    match output.format() {
        Format::Table => {
            output.one(&FixturesCounts::from(summary))?;
            if !summary.errors.is_empty() {
                eprintln!("\nnot loaded:");
                output.list(&(), &summary.errors)?;
            }
            Ok(())
        }
        Format::Id => output.list(&(), &summary.errors),
        Format::Json | Format::Ndjson | Format::Csv => output.one(summary),
    }
}

impl FixturesCommand {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let FixturesCommand::Load { file, dry_run } = self;
        let fixtures = read_fixtures(&file)?;
        let client = context.client().await?;
        let show = progress::wanted(context.global.quiet);
        let mut summary = FixturesSummary {
            dry_run,
            ..FixturesSummary::default()
        };

        let bar = progress::count(show, fixtures.users.len() as u64, "users");
        let users = load_users(&client, &fixtures.users, dry_run, &mut summary, &bar).await;
        bar.finish_and_clear();
        users?;

        if !fixtures.products.is_empty() {
            let products = load_products(&client, &fixtures, dry_run, show).await?;
            summary.add_products(products, &fixtures);
        }

        let mut output = context.output();
        print_summary(&mut output, &summary)?;
        match summary.failed() {
            0 => Ok(()),
            failed => Err(CliError::Other(format!(
                "{failed} of {} users and products could not be loaded",
                fixtures.users.len() + fixtures.products.len()
            ))),
        }
    }
}

fn read_fixtures(file: &PathBuf) -> Result<Fixtures, CliError> {
    let text = std::fs::read(file)
        .map_err(|err| CliError::Usage(format!("cannot read {}: {err}", file.display())))?;
    serde_json::from_slice(&text).map_err(|err| {
        CliError::Other(format!(
            "{} is not a fixtures document: {err}",
            file.display()
        ))
    })
}

/// Creates each user; one that exists already (409) is skipped. A refused
/// user is counted and the rest go on; a server that is gone or a login
/// that is not allowed ends the load.
async fn load_users(
    client: &ApiClient,
    users: &[FixtureUser],
    dry_run: bool,
    summary: &mut FixturesSummary,
    bar: &indicatif::ProgressBar,
) -> Result<(), CliError> {
    for user in users {
        let outcome = if dry_run {
            match user_exists(client, &user.email).await? {
                true => UserOutcome::Skipped,
                false => UserOutcome::Created,
            }
        } else {
            create_user(client, user).await?
        };
        match outcome {
            UserOutcome::Created => summary.users_created += 1,
            UserOutcome::Skipped => summary.users_skipped += 1,
            UserOutcome::Failed(reason) => {
                summary.users_failed += 1;
                summary.errors.push(FixtureError {
                    kind: "user",
                    key: user.email.clone(),
                    reason,
                });
            }
        }
        bar.inc(1);
    }
    Ok(())
}

enum UserOutcome {
    Created,
    Skipped,
    Failed(String),
}

async fn create_user(client: &ApiClient, user: &FixtureUser) -> Result<UserOutcome, CliError> {
    let request = CreateUserRequest {
        email: user.email.clone(),
        password: user.password.clone().unwrap_or_else(random_password),
        name: user.name.clone(),
        role: user.role,
    };
    let created: Result<User, CliError> = client.post("/api/users").json(&request)?.send().await;
    match created {
        Ok(_) => Ok(UserOutcome::Created),
        Err(CliError::Api(api)) if api.status == 409 => Ok(UserOutcome::Skipped),
        Err(CliError::Api(api)) if matches!(api.status, 400 | 422) => {
            Ok(UserOutcome::Failed(api.detail.message))
        }
        Err(other) => Err(other),
    }
}

async fn user_exists(client: &ApiClient, email: &str) -> Result<bool, CliError> {
    let page: Page<User> = client
        .get("/api/users")
        .query("q", email)
        .query("limit", super::MAX_PAGE.to_string())
        .send()
        .await?;
    Ok(page
        .items
        .iter()
        .any(|user| user.email.eq_ignore_ascii_case(email)))
}

/// A password nobody knows, strong enough for the server's strength check.
fn random_password() -> String {
    rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// The products as NDJSON, in chunks of lines, so the bar moves as they go out.
fn ndjson_chunks(fixtures: &Fixtures) -> Result<Vec<Vec<u8>>, CliError> {
    fixtures
        .products
        .chunks(PRODUCTS_PER_CHUNK)
        .map(|products| {
            let mut chunk = Vec::new();
            for product in products {
                serde_json::to_writer(&mut chunk, product).map_err(|err| {
                    CliError::Other(format!("cannot encode product {}: {err}", product.sku))
                })?;
                chunk.push(b'\n');
            }
            Ok(chunk)
        })
        .collect()
}

async fn load_products(
    client: &ApiClient,
    fixtures: &Fixtures,
    dry_run: bool,
    show: bool,
) -> Result<ImportSummary, CliError> {
    let chunks = ndjson_chunks(fixtures)?;
    let total = chunks.iter().map(|c| c.len() as u64).sum();
    let bar = progress::bytes(show, Some(total), "products");
    let sent = bar.clone();
    let stream = futures::stream::iter(chunks.into_iter().map(move |chunk| {
        sent.inc(chunk.len() as u64);
        Ok::<_, std::io::Error>(chunk)
    }));
    let result = client
        .post("/api/products/import")
        .query("format", DataFormat::Ndjson.as_str())
        .query("dry_run", dry_run.to_string())
        .upload(
            DataFormat::Ndjson.content_type(),
            reqwest::Body::wrap_stream(stream),
        )
        .send()
        .await;
    bar.finish_and_clear();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use shop_wire::products::ProductRequest;

    fn fixtures() -> Fixtures {
        Fixtures {
            users: vec![],
            products: (0..250)
                .map(|n| ProductRequest {
                    sku: format!("SKU-{n}"),
                    name: format!("Thing {n}"),
                    price_cents: 100 + n,
                    ..ProductRequest::default()
                })
                .collect(),
        }
    }

    #[test]
    fn products_go_as_ndjson_lines_in_chunks() {
        let fixtures = fixtures();
        let chunks = ndjson_chunks(&fixtures).expect("chunks");
        assert_eq!(chunks.len(), 3);
        let text: String = chunks
            .iter()
            .map(|c| String::from_utf8(c.clone()).expect("utf-8"))
            .collect();
        let lines: Vec<ProductRequest> = text
            .lines()
            .map(|line| serde_json::from_str(line).expect("a product line"))
            .collect();
        assert_eq!(lines, fixtures.products);
    }

    #[test]
    fn import_errors_name_the_product_by_sku() {
        let fixtures = fixtures();
        let error = product_error(
            ImportRowError {
                line: 3,
                sku: None,
                field: Some("price_cents".into()),
                reason: "too large".into(),
            },
            &fixtures,
        );
        assert_eq!(error.key, "SKU-2");
        assert_eq!(error.reason, "price_cents: too large");
    }

    #[test]
    fn the_checked_in_catalog_is_a_fixtures_document() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/catalog.json");
        let fixtures = read_fixtures(&path).expect("fixtures/catalog.json");
        assert!(fixtures.products.len() >= 500);
        assert!(fixtures.users.len() >= 10);
        let categories: std::collections::BTreeSet<_> = fixtures
            .products
            .iter()
            .filter_map(|p| p.category.as_deref())
            .collect();
        assert!(categories.len() >= 20, "{categories:?}");
        for product in &fixtures.products {
            assert_eq!(
                super::super::parse_sku(&product.sku).as_deref(),
                Ok(product.sku.as_str())
            );
        }
        assert!(fixtures.users.iter().all(|u| u.password.is_none()));
    }

    #[test]
    fn random_passwords_are_long_and_different() {
        let (a, b) = (random_password(), random_password());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }

    #[test]
    fn the_summary_table_has_counts_and_failures() {
        let summary = FixturesSummary {
            users_created: 9,
            users_skipped: 1,
            products_created: 500,
            products_failed: 1,
            errors: vec![FixtureError {
                kind: "product",
                key: "SKU-2".into(),
                reason: "price_cents: too large".into(),
            }],
            ..FixturesSummary::default()
        };
        let table = Output::render_for_test(Format::Table, |o| print_summary(o, &summary));
        assert!(
            table.contains("USERS CREATED") && table.contains("500"),
            "{table}"
        );
        assert!(table.contains("SKU-2"), "{table}");
        let json = Output::render_for_test(Format::Ndjson, |o| print_summary(o, &summary));
        let value: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(value["products_failed"], 1);
        assert_eq!(value["errors"][0]["key"], "SKU-2");
        let ids = Output::render_for_test(Format::Id, |o| print_summary(o, &summary));
        assert_eq!(ids, "SKU-2\n");
    }
}
