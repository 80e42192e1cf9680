//! `shop`: parse the command line, run the command, map errors to exit codes.

mod cli;
mod serve;

use std::process::ExitCode;

use clap::Parser;

/// glibc's malloc keeps the 19 MiB that each argon2 hash allocates (its mmap
/// threshold rises after the first free) and grows an arena per blocking
/// thread; mimalloc hands freed memory back, which keeps the idle server
/// small after a burst of logins (see bench/run.sh, idle RSS).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Serve(args) => serve::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("shop: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
