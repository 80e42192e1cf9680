//! The `shop` command line: everything except running the server.
//!
//! The command tree ([`Cli`]) is declared here with clap's derive API, one
//! module per subcommand group under [`commands`]. Every command talks to the
//! server only over HTTP through [`client::ApiClient`] (shared with the
//! dashboard), prints through the one rendering path in [`output`], and finds
//! its login through [`credentials`]. Errors carry their exit code
//! ([`error::CliError`]); `main` only parses, dispatches and exits.
//!
//! `shop serve` and `shop dashboard` are part of the tree (so help,
//! completions and man pages cover them) but run in the binary, which links
//! the server and the dashboard; this crate never does.

pub mod client;
pub mod commands;
pub mod complete;
pub mod context;
pub mod credentials;
pub mod error;
pub mod output;
pub mod progress;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

pub use commands::serve::ServeArgs;
pub use context::GlobalArgs;
pub use error::CliError;

/// Terminal-first commerce operations: run the shop server and drive it from the command line.
#[derive(Debug, Parser)]
#[command(
    name = "shop",
    version,
    propagate_version = true,
    after_help = "\
Start a server with `shop serve`, then `shop login` to it. Lists print a table on a
terminal and NDJSON when piped: `shop user list | jq .email`.

Exit codes: 0 ok, 1 error, 2 usage, 3 server unreachable or unhealthy, 4 not found,
5 conflict, 6 not logged in or not allowed, 7 payment declined."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the shop server: every service behind one HTTP gateway, on an embedded SQLite database.
    Serve(Box<ServeArgs>),
    #[command(flatten)]
    Remote(RemoteCommand),
    /// Watch the server live in a terminal dashboard: service health, stock, orders and searches (staff).
    Dashboard(commands::dashboard::DashboardArgs),
    /// Work on the server's database file on this machine: online backups.
    #[command(subcommand)]
    Db(commands::db::DbCommand),
    /// Print a shell completion script to stdout.
    Completions(commands::generate::CompletionsArgs),
    /// Write man pages for shop and every subcommand into a directory.
    Man(commands::generate::ManArgs),
}

/// The commands that talk to a server.
#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Log in to a shop server and keep the login for later commands.
    Login(commands::auth::LoginArgs),
    /// End the stored login: revoke its session on the server and forget its tokens.
    Logout,
    /// Show who the current login is, on which server, and until when.
    Whoami,
    /// Show the health of every service; exit 3 when the server is unreachable or a service is down.
    Status,
    /// Manage the catalog: add, list, change, archive and delete products; import and export (staff).
    #[command(subcommand)]
    Product(commands::product::ProductCommand),
    /// Watch and change stock per SKU: counts, movements, reservations, reconcile (staff).
    #[command(subcommand)]
    Inventory(commands::inventory::InventoryCommand),
    /// Load sample users and products from a fixtures file, like `stripe fixtures` (admin).
    #[command(subcommand)]
    Fixtures(commands::fixtures::FixturesCommand),
    /// Manage user accounts and roles (admin).
    #[command(subcommand)]
    User(commands::user::UserCommand),
    /// Fill a shopping cart: add, change and remove lines; your login's cart, or an anonymous one.
    Cart(commands::cart::CartArgs),
    /// Place orders (one, or many from NDJSON on stdin) and move them along: pay, ship, deliver, cancel, refund.
    #[command(subcommand)]
    Order(commands::order::OrderCommand),
    /// Take back shipped units: open a return, approve or reject it, receive it, refund it.
    #[command(subcommand)]
    Return(commands::returns::ReturnCommand),
    /// Look into payments and their refunds; refund, settle bank transfers and see analytics (staff).
    #[command(subcommand)]
    Payment(commands::payment::PaymentCommand),
    /// Send and track emails, SMS and push notifications; manage their templates (staff).
    #[command(subcommand)]
    Notification(commands::notification::NotificationCommand),
    /// Search the catalog: ranked, typo-tolerant, with filters; suggestions; analytics.
    Search(commands::search::SearchArgs),
    /// Show products to recommend beside one: bought or viewed together, else the same category.
    Recommend(commands::recommend::RecommendArgs),
    /// Shipping zones: where the shop ships, by which methods, at what prices (staff).
    #[command(subcommand)]
    Shipping(commands::shipping::ShippingCommand),
    /// Your address book: saved addresses to ship and bill to.
    #[command(subcommand)]
    Address(commands::address::AddressCommand),
    /// Tax rates by country, region and tax category (staff).
    #[command(subcommand)]
    Tax(commands::tax::TaxCommand),
    /// Discount codes and automatic promotions: add, list, get, disable (staff).
    #[command(subcommand)]
    Discount(commands::discount::DiscountCommand),
    /// Every buyer, registered or guest: orders, net spent, first and last order (staff).
    #[command(subcommand)]
    Customer(commands::customer::CustomerCommand),
    /// Reports for the books: sales per day, week or month, as a table or CSV (staff).
    #[command(subcommand)]
    Report(commands::report::ReportCommand),
    /// The templates of invoices and packing slips: show, replace with your own, reset (staff).
    #[command(subcommand)]
    Document(commands::document::DocumentCommand),
    /// Make, list and revoke scoped API keys for other systems (staff).
    #[command(subcommand)]
    Key(commands::key::KeyCommand),
    /// Who changed what and when: the audit log (admin).
    Audit(commands::audit::AuditArgs),
    /// Print the event log (a table, or NDJSON when piped), and with --follow stream new events as they happen (staff).
    Events(commands::events::EventsArgs),
    /// Manage outbound webhook endpoints: add, list, deliveries, replay, test, rotate-secret, remove (staff).
    #[command(subcommand)]
    Webhook(commands::webhook::WebhookCommand),
    /// Forward the server's live events, signed, to a local URL, like `stripe listen` (staff).
    Listen(commands::listen::ListenArgs),
}

/// The command tree as `shop` parses and shows it. The global options are
/// listed once, in `shop --help`, as gh and kubectl do: each subcommand's
/// help points there instead of repeating them, and `serve --help`, where
/// they mean nothing, leaves them out. They are still accepted everywhere.
pub fn command() -> clap::Command {
    tuned(Cli::command())
}

/// [`command`] made from `command`, e.g. with the help subcommand disabled for man pages.
pub fn tuned(command: clap::Command) -> clap::Command {
    let mut command = command.mut_subcommand("events", |events| {
        events.after_help(commands::events::after_help())
    });
    command.build();
    let globals: Vec<clap::Id> = GlobalArgs::group_ids();
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    for name in names {
        command = command.mut_subcommand(name, |sub| hide_globals(sub, &globals));
    }
    command
}

/// Hides the global options in `command` and its subcommands, with a line saying where they are.
fn hide_globals(mut command: clap::Command, globals: &[clap::Id]) -> clap::Command {
    const NOTE: &str = "Global options (--url, --token, -o, -q, --no-color, --idempotency-key, \
                        --timeout, -v, --profile): see `shop --help`.";
    // In place: after a build, clap's index of long names points into the
    // argument list, so an argument must not move.
    command = command.mut_args(|arg| {
        if globals.contains(arg.get_id()) {
            arg.hide(true)
        } else {
            arg
        }
    });
    if command.get_name() != "serve" {
        let after = match command.get_after_help() {
            Some(text) => format!("{text}\n\n{NOTE}"),
            None => NOTE.to_owned(),
        };
        command = command.after_help(after);
    }
    let names: Vec<String> = command
        .get_subcommands()
        .map(|sub| sub.get_name().to_owned())
        .collect();
    for name in names {
        command = command.mut_subcommand(name, |sub| hide_globals(sub, globals));
    }
    command
}

/// Runs a command against the server and reports its error; returns the exit code.
pub fn run(global: GlobalArgs, command: RemoteCommand) -> ExitCode {
    let result = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(run_remote(global, command)),
        Err(err) => Err(CliError::Other(format!(
            "cannot start the async runtime: {err}"
        ))),
    };
    exit_code(result)
}

/// Reports a command's error on stderr and turns the outcome into the exit code of SPEC section 5.
pub fn exit_code(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => err.report(),
    }
}

async fn run_remote(global: GlobalArgs, command: RemoteCommand) -> Result<(), CliError> {
    let context = context::Context::new(global)?;
    match command {
        RemoteCommand::Login(args) => commands::auth::login(&context, args).await,
        RemoteCommand::Logout => commands::auth::logout(&context).await,
        RemoteCommand::Whoami => commands::auth::whoami(&context).await,
        RemoteCommand::Status => commands::status::run(&context).await,
        RemoteCommand::Product(command) => command.run(&context).await,
        RemoteCommand::Inventory(command) => command.run(&context).await,
        RemoteCommand::Fixtures(command) => command.run(&context).await,
        RemoteCommand::User(command) => command.run(&context).await,
        RemoteCommand::Cart(args) => args.run(&context).await,
        RemoteCommand::Order(command) => command.run(&context).await,
        RemoteCommand::Return(command) => command.run(&context).await,
        RemoteCommand::Payment(command) => command.run(&context).await,
        RemoteCommand::Notification(command) => command.run(&context).await,
        RemoteCommand::Search(args) => args.run(&context).await,
        RemoteCommand::Recommend(args) => args.run(&context).await,
        RemoteCommand::Events(args) => args.run(&context).await,
        RemoteCommand::Shipping(command) => command.run(&context).await,
        RemoteCommand::Tax(command) => command.run(&context).await,
        RemoteCommand::Address(command) => command.run(&context).await,
        RemoteCommand::Discount(command) => command.run(&context).await,
        RemoteCommand::Customer(command) => command.run(&context).await,
        RemoteCommand::Report(command) => command.run(&context).await,
        RemoteCommand::Document(command) => command.run(&context).await,
        RemoteCommand::Key(command) => command.run(&context).await,
        RemoteCommand::Audit(args) => args.run(&context).await,
        RemoteCommand::Webhook(command) => command.run(&context).await,
        RemoteCommand::Listen(args) => args.run(&context).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_consistent() {
        super::Cli::command().debug_assert();
        super::command().debug_assert();
    }

    fn help(args: &[&str]) -> String {
        let mut all = vec!["shop"];
        all.extend_from_slice(args);
        all.push("--help");
        let err = super::command()
            .try_get_matches_from(all)
            .expect_err("help ends the parse");
        err.render().to_string()
    }

    #[test]
    fn global_options_are_listed_once_and_not_for_serve() {
        let top = help(&[]);
        assert!(
            top.contains("--idempotency-key") && top.contains("--url"),
            "{top}"
        );
        let list = help(&["product", "list"]);
        assert!(!list.contains("--idempotency-key <KEY>"), "{list}");
        assert!(list.contains("Global options ("), "{list}");
        assert!(list.contains("--limit"), "its own options stay: {list}");
        let serve = help(&["serve"]);
        for client in [
            "--url <URL>",
            "--token <TOKEN>",
            "--output <FORMAT>",
            "--idempotency-key <KEY>",
            "Global options (",
        ] {
            assert!(!serve.contains(client), "{client} in serve --help: {serve}");
        }
        // Still accepted after a subcommand.
        let matches = super::command()
            .try_get_matches_from([
                "shop",
                "product",
                "list",
                "-o",
                "json",
                "--url",
                "http://x:1",
            ])
            .expect("globals parse after the subcommand");
        let cli = <super::Cli as clap::FromArgMatches>::from_arg_matches(&matches).expect("cli");
        assert!(cli.global.url.is_some() && cli.global.output.is_some());
    }

    /// `shop X --help` must be enough without the README: every command
    /// says what it does and every argument what it means.
    #[test]
    fn every_command_and_argument_has_help() {
        fn check(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", command.get_name());
            if command.get_about().is_none() && path != " shop" {
                missing.push(path.clone());
            }
            for arg in command.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if arg.get_help().is_none() && !builtin && !arg.is_hide_set() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                check(sub, &path, missing);
            }
        }
        let mut command = super::Cli::command();
        command.build();
        let mut missing = Vec::new();
        check(&command, "", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
    }
}
