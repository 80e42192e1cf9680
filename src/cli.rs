//! The command tree.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Terminal-first commerce operations: run the shop server and drive it from the command line.
#[derive(Debug, Parser)]
#[command(name = "shop", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the shop server: every service behind one HTTP gateway, on an embedded SQLite database.
    Serve(ServeArgs),
}

/// Flags of `shop serve`. Each has an environment variable; a flag beats the
/// variable, which beats the config file, which beats the default.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Secrets are read from the environment only, never from flags:
  SHOP_JWT_SECRET      HMAC secret for access tokens (>= 32 chars); default: generated once
                       and kept beside the database in <db>.jwt-secret (mode 0600)
  SHOP_ADMIN_EMAIL     with SHOP_ADMIN_PASSWORD: the first admin, created on first start;
  SHOP_ADMIN_PASSWORD  without them a password is generated and printed once
  SHOP_LOG             log filter, e.g. `debug` or `shop_server=debug,info`")]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "SHOP_ADDR", value_name = "HOST:PORT")]
    pub addr: Option<SocketAddr>,

    /// SQLite database file [default: shop/shop.db under the XDG data dir].
    #[arg(long, env = "SHOP_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// TOML config file [default: shop/server.toml under the XDG config dir, if present].
    #[arg(long, env = "SHOP_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Log format: `pretty` for a terminal, `json` for collectors.
    #[arg(long, env = "SHOP_LOG_FORMAT", value_parser = ["pretty", "json"])]
    pub log_format: Option<String>,

    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, env = "SHOP_TLS_CERT", value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key for --tls-cert.
    #[arg(long, env = "SHOP_TLS_KEY", value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Requests per second allowed from one client address (0: no limit).
    #[arg(long, env = "SHOP_RATE_LIMIT_IP", value_name = "N")]
    pub rate_limit_ip: Option<u32>,

    /// Requests per second allowed with one token (0: no limit).
    #[arg(long, env = "SHOP_RATE_LIMIT_TOKEN", value_name = "N")]
    pub rate_limit_token: Option<u32>,

    /// Login attempts per minute allowed from one client address (0: no limit).
    #[arg(long, env = "SHOP_RATE_LIMIT_LOGIN", value_name = "N")]
    pub rate_limit_login: Option<u32>,

    /// Lifetime of access tokens.
    #[arg(long, env = "SHOP_ACCESS_TOKEN_TTL", value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub access_token_ttl: Option<u64>,

    /// Lifetime of a login session (its refresh token), extended on each refresh.
    #[arg(long, env = "SHOP_SESSION_TTL", value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub session_ttl: Option<u64>,

    /// Largest request body accepted.
    #[arg(long, env = "SHOP_BODY_LIMIT", value_name = "BYTES")]
    pub body_limit: Option<usize>,

    /// Longest a request may take before it is answered 504.
    #[arg(long, env = "SHOP_REQUEST_TIMEOUT", value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout: Option<u64>,

    /// Browser origins allowed to call the API (CORS); repeat or separate with commas.
    #[arg(
        long = "cors-origin",
        env = "SHOP_CORS_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// `process`: commits survive a crash or kill -9; `power`: also a power cut (an fsync per commit).
    #[arg(long, env = "SHOP_DURABILITY", value_parser = ["process", "power"])]
    pub durability: Option<String>,

    /// How often sweepers remove expired sessions and idempotency keys.
    #[arg(long, env = "SHOP_SWEEP_INTERVAL", value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub sweep_interval: Option<u64>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn command_tree_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
