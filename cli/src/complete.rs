//! Completions that ask the server: SKUs, order numbers and template names,
//! for shells set up with `source <(COMPLETE=bash shop)` (clap_complete's
//! dynamic completion; `COMPLETE=zsh|fish|powershell|elvish` likewise).
//!
//! They use the stored login of `SHOP_PROFILE` (else `default`) and
//! `SHOP_URL`/`SHOP_TOKEN` as any command does, wait at most two seconds,
//! and offer nothing, quietly, when there is no login or no server: a
//! completion must never print an error into the shell's prompt.

use std::ffi::OsStr;
use std::time::Duration;

use clap::{Args, FromArgMatches};
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use serde::Deserialize;
use shop_wire::Page;

use crate::context::{Context, GlobalArgs};

/// The longest a completion waits for the server.
const WAIT: Duration = Duration::from_secs(2);
/// The most candidates asked for.
const LIMIT: &str = "50";

/// Product SKUs starting with what is typed (in any case), with their names.
pub fn skus() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| {
        let typed = current.to_string_lossy().to_ascii_uppercase();
        #[derive(Deserialize)]
        struct Product {
            sku: String,
            name: String,
        }
        let mut query = vec![("limit", LIMIT.to_owned())];
        if !typed.is_empty() {
            query.push(("q", typed.clone()));
        }
        fetch::<Page<Product>>("/api/products", &query)
            .map(|page| page.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|product| product.sku.starts_with(&typed))
            .map(|product| (product.sku, product.name))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .map(|(sku, name)| CompletionCandidate::new(sku).help(Some(name.into())))
            .collect()
    })
}

/// Order numbers (`ORD-001042`) starting with what is typed, newest first,
/// with their status and customer.
pub fn orders() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| {
        let typed = current.to_string_lossy().to_ascii_uppercase();
        #[derive(Deserialize)]
        struct Order {
            number: String,
            status: String,
            customer_email: String,
        }
        fetch::<Page<Order>>("/api/orders", &[("limit", LIMIT.to_owned())])
            .map(|page| page.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|order| order.number.starts_with(&typed))
            .map(|order| {
                let help = format!("{} {}", order.status, order.customer_email);
                CompletionCandidate::new(order.number).help(Some(help.into()))
            })
            .collect()
    })
}

/// Notification template names starting with what is typed, with their channel.
pub fn templates() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| {
        let typed = current.to_string_lossy().into_owned();
        #[derive(Deserialize)]
        struct Template {
            name: String,
            channel: String,
        }
        fetch::<Page<Template>>("/api/notifications/templates", &[])
            .map(|page| page.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|template| template.name.starts_with(&typed))
            .map(|template| {
                CompletionCandidate::new(template.name).help(Some(template.channel.into()))
            })
            .collect()
    })
}

/// One GET with the login a command would use; None on any failure.
fn fetch<T: serde::de::DeserializeOwned>(path: &str, query: &[(&str, String)]) -> Option<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    runtime.block_on(async {
        tokio::time::timeout(WAIT, async {
            // The global options from the environment (SHOP_URL, SHOP_PROFILE...).
            let matches = GlobalArgs::augment_args(clap::Command::new("shop"))
                .try_get_matches_from(["shop"])
                .ok()?;
            let global = GlobalArgs::from_arg_matches(&matches).ok()?;
            let context = Context::new(global).ok()?;
            let client = context.client_or_anonymous().await.ok()?;
            let mut request = client.get(path);
            for (key, value) in query {
                request = request.query(key, value.clone());
            }
            request.send::<T>().await.ok()
        })
        .await
        .ok()
        .flatten()
    })
}
