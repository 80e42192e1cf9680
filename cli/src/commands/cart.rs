//! `shop cart`: the shopping cart of the login, or of an anonymous visitor
//! who holds the cart's token.
//!
//! Commands act on the active cart, found with `GET /api/cart`; `add` makes
//! one when there is none. Without a login the cart is anonymous: the server
//! hands out its secret token once, which this prints on stderr with the way
//! to use it again (`SHOP_CART_TOKEN` or `--cart-token`). Changes apply to
//! whatever version the cart is at, unless `--expected-version` pins one.

use serde::Serialize;
use shop_wire::cart::UpdateCartItem;
use shop_wire::cart::{AddCartItem, CART_TOKEN_HEADER, Cart, CartId, CartStatus, NewCart};
use time::OffsetDateTime;

use super::order::{PricedLine, money, parse_cart_id, parse_quantity};
use super::parse_sku;
use crate::client::{ApiClient, Call};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Format, Output, Tabular};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Logged in, the cart is your login's. Without a login, `shop cart add` makes an anonymous cart
and prints its token once; pass it as --cart-token or SHOP_CART_TOKEN to use that cart again.
Example: shop cart add CHAIR-01 2 && shop order create --cart \"$(shop cart show -q)\" --pay card:4242424242424242")]
pub struct CartArgs {
    /// The token of an anonymous cart (printed once when it was made); used when not logged in.
    #[arg(long, global = true, env = "SHOP_CART_TOKEN", hide_env_values = true, value_name = "TOKEN",
          value_parser = parse_token)]
    cart_token: Option<String>,
    /// Act on this cart (crt_...) instead of the active one.
    #[arg(long, global = true, value_name = "CART", value_parser = parse_cart_id)]
    cart: Option<CartId>,
    #[command(subcommand)]
    command: CartCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CartCommand {
    /// Show the cart: its lines, subtotal, version and when it expires.
    Show,
    /// Add units of a SKU, to its line if the cart has one; makes the cart on first use.
    #[command(after_help = "Example: shop cart add CHAIR-01 2")]
    Add {
        /// The SKU.
        #[arg(add = crate::complete::skus(), value_parser = parse_sku)]
        sku: String,
        /// Units to add.
        #[arg(value_name = "QTY", default_value_t = 1, value_parser = at_least_one)]
        quantity: i64,
        /// Apply only if the cart is still at this version (else exit 5).
        #[arg(long, value_name = "N")]
        expected_version: Option<u64>,
    },
    /// Set a line's quantity; 0 removes the line.
    #[command(after_help = "Example: shop cart update CHAIR-01 3")]
    Update {
        /// The SKU of the line.
        #[arg(add = crate::complete::skus(), value_parser = parse_sku)]
        sku: String,
        /// The new quantity.
        #[arg(value_name = "QTY", value_parser = zero_or_more)]
        quantity: i64,
        /// Apply only if the cart is still at this version (else exit 5).
        #[arg(long, value_name = "N")]
        expected_version: Option<u64>,
    },
    /// Remove a SKU's line.
    Remove {
        /// The SKU of the line.
        #[arg(add = crate::complete::skus(), value_parser = parse_sku)]
        sku: String,
        /// Apply only if the cart is still at this version (else exit 5).
        #[arg(long, value_name = "N")]
        expected_version: Option<u64>,
    },
    /// Remove every line; the cart itself stays.
    Clear {
        /// Apply only if the cart is still at this version (else exit 5).
        #[arg(long, value_name = "N")]
        expected_version: Option<u64>,
    },
}

fn at_least_one(text: &str) -> Result<i64, String> {
    parse_quantity(text, 1)
}

fn zero_or_more(text: &str) -> Result<i64, String> {
    parse_quantity(text, 0)
}

fn parse_token(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic()) {
        Err("a cart token is the text printed when the cart was made".to_owned())
    } else {
        Ok(text.to_owned())
    }
}

impl Tabular for Cart {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("id", "id").kind(CellKind::Id),
            Column::new("status", "status").kind(CellKind::Status),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }
}

/// Under the lines of a cart: what it adds up to and where it stands.
#[derive(Serialize)]
struct CartView<'a> {
    id: &'a CartId,
    status: CartStatus,
    items: i64,
    subtotal: String,
    version: u64,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

impl Tabular for CartView<'_> {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("id", "id").kind(CellKind::Id),
            Column::new("status", "status").kind(CellKind::Status),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }
}

/// On a terminal the lines, then subtotal, count, version and expiry; as
/// CSV the lines; otherwise the cart as the server sent it (`-q`: its id).
fn print_cart(output: &mut Output, cart: &Cart) -> Result<(), CliError> {
    let lines: Vec<PricedLine<'_>> = cart
        .items
        .iter()
        .map(|item| {
            PricedLine::new(
                (&item.sku, &item.name),
                item.quantity,
                item.unit_price_cents,
                item.line_total_cents,
                cart.currency,
            )
        })
        .collect();
    match output.format() {
        Format::Table => {
            if lines.is_empty() {
                eprintln!("the cart is empty");
            } else {
                output.list(&(), &lines)?;
            }
            eprintln!();
            output.one(&CartView {
                id: &cart.id,
                status: cart.status,
                items: cart.item_count,
                subtotal: money(cart.subtotal_cents, cart.currency),
                version: cart.version,
                expires_at: cart.expires_at,
            })
        }
        Format::Csv => output.list(cart, &lines),
        Format::Json | Format::Ndjson | Format::Id => output.one(cart),
    }
}

/// Who the cart belongs to, and so how requests about it are made.
struct CartApi {
    client: ApiClient,
    /// A login's cart is found by the login; an anonymous one by this token.
    logged_in: bool,
    token: Option<String>,
    /// The user's --idempotency-key, from which the key of each request is derived.
    key: Option<String>,
}

impl CartApi {
    /// A login wins over a cart token: the token is for visitors without one.
    async fn new(context: &Context, token: Option<String>) -> Result<Self, CliError> {
        let explicit_token = context.global.token.is_some()
            || std::env::var("SHOP_TOKEN").is_ok_and(|t| !t.trim().is_empty());
        let logged_in = explicit_token || context.stored_login()?.is_some();
        let key = context.global.idempotency_key.clone();
        if logged_in {
            if token.is_some() {
                eprintln!(
                    "note: logged in, so the cart is your login's; the cart token is not used"
                );
            }
            return Ok(CartApi {
                client: context.client().await?,
                logged_in,
                token: None,
                key,
            });
        }
        Ok(CartApi {
            client: context.anonymous()?,
            logged_in,
            token,
            key,
        })
    }

    fn call<'a>(&self, call: Call<'a>) -> Call<'a> {
        match &self.token {
            Some(token) => call.header(CART_TOKEN_HEADER, token.clone()),
            None => call,
        }
    }

    /// `cart` itself, or the active cart; `None` when there is none.
    async fn active(&self, cart: Option<&CartId>) -> Result<Option<Cart>, CliError> {
        if let Some(id) = cart {
            let cart = self
                .call(self.client.get(&format!("/api/cart/{id}")))
                .send()
                .await?;
            return Ok(Some(cart));
        }
        if !self.logged_in && self.token.is_none() {
            return Ok(None);
        }
        match self.call(self.client.get("/api/cart")).send().await {
            Ok(cart) => Ok(Some(cart)),
            Err(CliError::Api(api)) if api.status == 404 => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The active cart, or the error saying there is none and how to start one.
    async fn existing(&self, cart: Option<&CartId>) -> Result<Cart, CliError> {
        self.active(cart).await?.ok_or_else(|| {
            CliError::NotFound(match (self.logged_in, &self.token) {
                (true, _) => "you have no active cart; `shop cart add SKU` starts one".to_owned(),
                (false, None) => "not logged in and no --cart-token (SHOP_CART_TOKEN): no cart \
                     to act on; `shop cart add SKU` starts an anonymous cart, or `shop login` first"
                    .to_owned(),
                (false, Some(_)) => "the cart of this cart token is no longer active (it expired \
                     or was checked out); `shop cart add SKU` starts a new one"
                    .to_owned(),
            })
        })
    }

    /// Makes a cart. An anonymous one's token comes only in this answer: it
    /// is kept for the next request and shown once, with how to reuse it.
    async fn create(&mut self) -> Result<Cart, CliError> {
        let mut call = self.client.post("/api/cart");
        if let Some(key) = &self.key {
            call = call.idempotency_key(format!("{key}-cart"));
        }
        let cart: Cart = call.json(&NewCart::default())?.send().await?;
        if let Some(token) = &cart.token {
            eprintln!(
                "shop: made an anonymous cart; its token is shown only this once. \
                 To use the cart again:\n  export SHOP_CART_TOKEN={token}\n\
                 (or pass --cart-token {token}); log in to check out as yourself"
            );
            self.token = Some(token.clone());
        }
        Ok(cart)
    }

    /// A mutating request with the user's idempotency key, if any.
    fn keyed<'a>(&'a self, call: Call<'a>) -> Call<'a> {
        let call = self.call(call);
        match &self.key {
            Some(key) => call.idempotency_key(key.clone()),
            None => call,
        }
    }
}

/// `If-Match` for the DELETE routes, which have no body to name a version in.
fn if_match(call: Call<'_>, version: Option<u64>) -> Call<'_> {
    match version {
        Some(version) => call.header("if-match", version.to_string()),
        None => call,
    }
}

/// Adds what to do next to a stale version or a cart that can no longer change.
fn explain(err: CliError) -> CliError {
    let CliError::Api(mut api) = err else {
        return err;
    };
    let details = &api.detail.details;
    let hint = match api.detail.code.as_str() {
        "version_conflict" => details
            .get("current_version")
            .and_then(serde_json::Value::as_u64)
            .map(|version| {
                format!(
                    "the cart is at version {version} now; look with `shop cart show`, \
                     then retry with --expected-version {version}"
                )
            }),
        "cart_not_active" => Some(match details.get("status").and_then(|s| s.as_str()) {
            Some(status) => format!("the cart is {status}; `shop cart add SKU` starts a new one"),
            None => "`shop cart add SKU` starts a new cart".to_owned(),
        }),
        _ => None,
    };
    if let Some(hint) = hint {
        api.detail.message = format!("{}; {hint}", api.detail.message.trim_end_matches('.'));
    }
    CliError::Api(api)
}

impl CartArgs {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let mut api = CartApi::new(context, self.cart_token).await?;
        let mut output = context.output();
        let chosen = self.cart.as_ref();
        let cart = match self.command {
            CartCommand::Show => api.existing(chosen).await?,
            CartCommand::Add {
                sku,
                quantity,
                expected_version,
            } => {
                let (id, made_token) = match chosen {
                    Some(id) => (id.clone(), None),
                    None => match api.active(None).await? {
                        Some(cart) => (cart.id, None),
                        None => {
                            let made = api.create().await?;
                            (made.id, made.token)
                        }
                    },
                };
                let mut cart: Cart = api
                    .keyed(api.client.post(&format!("/api/cart/{id}/items")))
                    .json(&AddCartItem {
                        sku,
                        quantity,
                        expected_version,
                    })?
                    .send()
                    .await
                    .map_err(explain)?;
                // A cart made just now: its one showing of the token is this answer.
                cart.token = made_token;
                cart
            }
            CartCommand::Update {
                sku,
                quantity,
                expected_version,
            } => {
                let id = cart_id(&api, chosen).await?;
                api.keyed(api.client.patch(&format!("/api/cart/{id}/items/{sku}")))
                    .json(&UpdateCartItem {
                        quantity,
                        expected_version,
                    })?
                    .send()
                    .await
                    .map_err(explain)?
            }
            CartCommand::Remove {
                sku,
                expected_version,
            } => {
                let id = cart_id(&api, chosen).await?;
                let call = api.call(api.client.delete(&format!("/api/cart/{id}/items/{sku}")));
                if_match(call, expected_version)
                    .send()
                    .await
                    .map_err(explain)?
            }
            CartCommand::Clear { expected_version } => {
                let id = cart_id(&api, chosen).await?;
                let call = api.call(api.client.delete(&format!("/api/cart/{id}/items")));
                if_match(call, expected_version)
                    .send()
                    .await
                    .map_err(explain)?
            }
        };
        print_cart(&mut output, &cart)
    }
}

/// The cart to change: the one named, without a round trip, else the active one.
async fn cart_id(api: &CartApi, chosen: Option<&CartId>) -> Result<CartId, CliError> {
    match chosen {
        Some(id) => Ok(id.clone()),
        None => Ok(api.existing(None).await?.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cart() -> Cart {
        serde_json::from_value(serde_json::json!({
            "id": "crt_01JDQ6Z5R3K8V2N4M7P9T0W1XY",
            "status": "active",
            "user_id": null,
            "items": [
                {"sku": "CHAIR-01", "name": "Oak chair", "quantity": 2,
                 "unit_price_cents": 12999, "line_total_cents": 25998}
            ],
            "item_count": 2,
            "subtotal_cents": 25998,
            "currency": "USD",
            "version": 4,
            "expires_at": "2026-11-23T14:35:09Z",
            "created_at": "2026-11-23T14:05:09Z",
            "updated_at": "2026-11-23T14:05:09Z"
        }))
        .expect("a cart")
    }

    fn parse(args: &[&str]) -> Result<CartArgs, clap::Error> {
        let cli = crate::Cli::try_parse_from(["shop", "cart"].iter().chain(args))?;
        match cli.command {
            crate::Command::Remote(crate::RemoteCommand::Cart(args)) => Ok(args),
            other => panic!("not a cart command: {other:?}"),
        }
    }

    #[test]
    fn quantities_default_to_one_and_only_update_takes_zero() {
        let args = parse(&["add", "CHAIR-01"]).expect("add");
        assert!(matches!(
            args.command,
            CartCommand::Add {
                quantity: 1,
                expected_version: None,
                ..
            }
        ));
        let args = parse(&["add", "CHAIR-01", "3", "--expected-version", "4"]).expect("add");
        assert!(matches!(
            args.command,
            CartCommand::Add {
                quantity: 3,
                expected_version: Some(4),
                ..
            }
        ));
        let args = parse(&["update", "CHAIR-01", "0"]).expect("update to 0");
        assert!(matches!(
            args.command,
            CartCommand::Update { quantity: 0, .. }
        ));
        for bad in [
            &["add", "CHAIR-01", "0"][..],
            &["add", "CHAIR-01", "-2"],
            &["update", "CHAIR-01"],
            &["update", "CHAIR-01", "x"],
            &["remove"],
        ] {
            let err = parse(bad).expect_err(&format!("{bad:?}"));
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }

    #[test]
    fn the_cart_token_and_cart_go_before_or_after_the_subcommand() {
        let args = parse(&["show", "--cart-token", "tok_abc"]).expect("show");
        assert_eq!(args.cart_token.as_deref(), Some("tok_abc"));
        let args = parse(&[
            "--cart",
            "crt_01JDQ6Z5R3K8V2N4M7P9T0W1XY",
            "clear",
            "--expected-version",
            "2",
        ])
        .expect("clear");
        assert!(args.cart.is_some());
        assert!(parse(&["show", "--cart", "ord_01JDQ6Z5R3K8V2N4M7P9T0W1XY"]).is_err());
        assert!(parse(&["show", "--cart-token", " "]).is_err());
    }

    #[test]
    fn a_cart_shows_its_lines_then_its_totals_and_scripts_get_the_document() {
        let table = Output::render_for_test(Format::Table, |o| print_cart(o, &cart()));
        let lines: Vec<&str> = table.lines().collect();
        for column in ["SKU", "NAME", "QTY", "UNIT PRICE", "LINE TOTAL"] {
            assert!(lines[0].contains(column), "{table}");
        }
        assert!(lines[1].contains("129.99 USD") && lines[1].contains("259.98 USD"));
        for text in [
            "SUBTOTAL",
            "259.98 USD",
            "VERSION",
            "EXPIRES AT",
            "2026-11-23 14:35:09",
        ] {
            assert!(table.contains(text), "{text}: {table}");
        }
        let id = Output::render_for_test(Format::Id, |o| print_cart(o, &cart()));
        assert_eq!(id, "crt_01JDQ6Z5R3K8V2N4M7P9T0W1XY\n");
        let json = Output::render_for_test(Format::Ndjson, |o| print_cart(o, &cart()));
        let parsed: Cart = serde_json::from_str(&json).expect("a cart");
        assert_eq!(parsed, cart());
        assert!(!json.contains("\"token\""), "no token unless just made");
        let csv_text = Output::render_for_test(Format::Csv, |o| print_cart(o, &cart()));
        assert_eq!(
            csv_text,
            "sku,name,quantity,unit_price_cents,line_total_cents\nCHAIR-01,Oak chair,2,12999,25998\n"
        );
    }

    #[test]
    fn stale_versions_and_closed_carts_say_what_to_do() {
        use crate::error::ApiError;
        let api = |code: &str, details| {
            CliError::Api(Box::new(ApiError {
                status: 409,
                detail: shop_wire::ErrorDetail {
                    code: code.into(),
                    message: "Conflict.".into(),
                    request_id: "r".into(),
                    details,
                },
            }))
        };
        let stale = explain(api(
            "version_conflict",
            serde_json::json!({"current_version": 7}),
        ));
        assert_eq!(stale.exit_code(), 5);
        assert!(
            stale.to_string().contains("--expected-version 7"),
            "{stale}"
        );
        let closed = explain(api(
            "cart_not_active",
            serde_json::json!({"status": "checked_out"}),
        ));
        assert!(
            closed.to_string().contains("the cart is checked_out"),
            "{closed}"
        );
        let stock = explain(api("insufficient_stock", serde_json::json!({})));
        assert_eq!(stock.to_string(), "Conflict.");
    }
}
