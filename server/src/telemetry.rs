//! Structured logging: pretty lines on a terminal or one JSON object per line,
//! each carrying the request id of the request it belongs to. The log goes to
//! stderr, the one stream the server writes to (with the listening line and
//! a generated admin password), so `shop serve 2>server.log` keeps it all.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; `SHOP_LOG` (a tracing filter) overrides `level`.
pub fn init_logging(format: LogFormat, level: &str) -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_env("SHOP_LOG").or_else(|_| EnvFilter::try_new(level))?;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
    result.map_err(|err| anyhow::anyhow!("installing the logger: {err}"))
}
