//! `shop`: parse the command line, run the command, map errors to exit codes.

mod db;
mod serve;

use std::process::ExitCode;

use clap::FromArgMatches;
use shop_cli::commands::generate;
use shop_cli::{Cli, CliError, Command};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // `COMPLETE=bash shop` prints a completion script that asks the server
    // for SKUs, order numbers and templates; with COMPLETE unset this returns.
    clap_complete::CompleteEnv::with_factory(<Cli as clap::CommandFactory>::command).complete();
    let cli =
        Cli::from_arg_matches(&shop_cli::command().get_matches()).unwrap_or_else(|err| err.exit());
    match cli.command {
        Command::Serve(args) => shop_cli::exit_code(
            serve::run(*args).map_err(|err| CliError::Other(format!("{err:#}"))),
        ),
        Command::Dashboard(args) => shop_tui::run(cli.global, args),
        Command::Db(command) => shop_cli::exit_code(db::run(&cli.global, command)),
        Command::Remote(command) => shop_cli::run(cli.global, command),
        Command::Completions(args) => shop_cli::exit_code(generate::completions(&args)),
        Command::Man(args) => shop_cli::exit_code(generate::man(&args)),
    }
}
