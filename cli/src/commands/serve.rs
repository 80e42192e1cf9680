//! `shop serve`'s flags. The server itself runs in the `shop` binary, which
//! links it; this crate only declares the flags so that help, completions and
//! man pages describe them.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Flags of `shop serve`. Each has an environment variable; a flag beats the
/// variable, which beats the config file, which beats the default.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Secrets are read from the environment only, never from flags:
  SHOP_JWT_SECRET      HMAC secret for access tokens (>= 32 chars), the same on every node
                       of one shop; required with PostgreSQL; on SQLite the default is one
                       generated once and kept beside the database in <db>.jwt-secret
                       (mode 0600), which suits a single node only
  SHOP_ADMIN_EMAIL     with SHOP_ADMIN_PASSWORD: the first admin, created on first start;
  SHOP_ADMIN_PASSWORD  without them a password is generated and printed once
  SHOP_LOG             log filter, e.g. `debug` or `shop_server=debug,info`")]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(
        long,
        env = "SHOP_ADDR",
        hide_env_values = true,
        value_name = "HOST:PORT"
    )]
    pub addr: Option<SocketAddr>,

    /// SQLite database file [default: shop/shop.db under the XDG data dir].
    #[arg(long, env = "SHOP_DB", hide_env_values = true, value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// The database as a URL, which beats --db: postgres://USER@HOST/NAME for
    /// PostgreSQL, which several nodes can share, or sqlite:PATH. A password
    /// belongs in SHOP_DATABASE_URL, PGPASSWORD or ~/.pgpass, not on a command line.
    #[arg(
        long,
        env = "SHOP_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,

    /// Load the sample catalog (560 products in 28 categories, with stock, and
    /// sample customers) into an empty database; a database with products is left alone.
    #[arg(long)]
    pub demo: bool,

    /// TOML config file [default: shop/server.toml under the XDG config dir, if present].
    #[arg(long, env = "SHOP_CONFIG", hide_env_values = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Log format: `pretty` for a terminal, `json` for collectors.
    #[arg(long, env = "SHOP_LOG_FORMAT", hide_env_values = true, value_parser = ["pretty", "json"])]
    pub log_format: Option<String>,

    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(
        long,
        env = "SHOP_TLS_CERT",
        hide_env_values = true,
        value_name = "PEM",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key for --tls-cert.
    #[arg(
        long,
        env = "SHOP_TLS_KEY",
        hide_env_values = true,
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Requests per second allowed from one client address (0: no limit).
    #[arg(
        long,
        env = "SHOP_RATE_LIMIT_IP",
        hide_env_values = true,
        value_name = "N"
    )]
    pub rate_limit_ip: Option<u32>,

    /// Requests per second allowed with one token (0: no limit).
    #[arg(
        long,
        env = "SHOP_RATE_LIMIT_TOKEN",
        hide_env_values = true,
        value_name = "N"
    )]
    pub rate_limit_token: Option<u32>,

    /// Login attempts per minute allowed from one client address (0: no limit).
    #[arg(
        long,
        env = "SHOP_RATE_LIMIT_LOGIN",
        hide_env_values = true,
        value_name = "N"
    )]
    pub rate_limit_login: Option<u32>,

    /// Lifetime of access tokens.
    #[arg(long, env = "SHOP_ACCESS_TOKEN_TTL", hide_env_values = true, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub access_token_ttl: Option<u64>,

    /// Lifetime of a login session (its refresh token), extended on each refresh.
    #[arg(long, env = "SHOP_SESSION_TTL", hide_env_values = true, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub session_ttl: Option<u64>,

    /// Largest request body accepted.
    #[arg(
        long,
        env = "SHOP_BODY_LIMIT",
        hide_env_values = true,
        value_name = "BYTES"
    )]
    pub body_limit: Option<usize>,

    /// Longest a request may take before it is answered 504.
    #[arg(long, env = "SHOP_REQUEST_TIMEOUT", hide_env_values = true, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout: Option<u64>,

    /// Browser origins allowed to call the API (CORS); repeat or separate with commas.
    #[arg(
        long = "cors-origin",
        env = "SHOP_CORS_ORIGINS",
        hide_env_values = true,
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,

    /// A proxy (address or CIDR) whose X-Forwarded-For names the client; repeat or separate with commas.
    #[arg(
        long = "trusted-proxy",
        env = "SHOP_TRUSTED_PROXIES",
        hide_env_values = true,
        value_name = "CIDR",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,

    /// `process`: commits survive a crash or kill -9; `power`: also a power cut (an fsync per commit).
    #[arg(long, env = "SHOP_DURABILITY", hide_env_values = true, value_parser = ["process", "power"])]
    pub durability: Option<String>,

    /// Serve no storefront at `/`; the API and the status page at `/status` remain.
    #[arg(long, env = "SHOP_NO_STOREFRONT", hide_env_values = true)]
    pub no_storefront: bool,

    /// The shop's name on the storefront [default: shop].
    #[arg(
        long,
        env = "SHOP_STORE_NAME",
        hide_env_values = true,
        value_name = "NAME"
    )]
    pub store_name: Option<String>,

    /// The storefront's brand colour, `#rrggbb`, readable on white [default: #1d4ed8].
    #[arg(
        long,
        env = "SHOP_STORE_COLOR",
        hide_env_values = true,
        value_name = "#RRGGBB"
    )]
    pub store_color: Option<String>,

    /// An SVG or PNG logo shown in the storefront's header.
    #[arg(
        long,
        env = "SHOP_STORE_LOGO",
        hide_env_values = true,
        value_name = "PATH"
    )]
    pub store_logo: Option<PathBuf>,

    /// How often sweepers remove expired sessions and idempotency keys.
    #[arg(long, env = "SHOP_SWEEP_INTERVAL", hide_env_values = true, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub sweep_interval: Option<u64>,

    /// A host (`HOST` or `HOST:PORT`) webhook endpoints may use although it
    /// resolves to a private or loopback address, also over http://: for local
    /// development and tests; repeat or separate with commas.
    #[arg(
        long = "webhook-allow-host",
        env = "SHOP_WEBHOOK_ALLOW_HOSTS",
        hide_env_values = true,
        value_name = "HOST[:PORT]",
        value_delimiter = ','
    )]
    pub webhook_allow_hosts: Vec<String>,
}
