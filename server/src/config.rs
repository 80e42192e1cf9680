//! Server configuration: defaults, an optional TOML file, then environment
//! variables and flags (which the command line resolves and hands over as
//! overrides). Precedence is flag > env > file > default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::store::sqlite::Durability;

pub const DEFAULT_ADDR: &str = "127.0.0.1:7467";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    #[default]
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pretty" => Ok(LogFormat::Pretty),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "unknown log format `{other}` (expected pretty or json)"
            )),
        }
    }
}

/// Requests per second (with a burst of twice that) before a client gets 429; 0 turns a limit off.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    pub per_ip_per_second: u32,
    pub per_token_per_second: u32,
    /// Login attempts per minute from one address, successful or not.
    pub login_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_ip_per_second: 200,
            per_token_per_second: 100,
            login_per_minute: 30,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub addr: SocketAddr,
    /// The SQLite file; `None` means `shop.db` under the XDG data dir.
    pub db: Option<PathBuf>,
    pub durability: Durability,
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `shop_server=debug,info`.
    pub log_level: String,
    /// HMAC secret for access tokens; when absent one is generated and kept beside the database.
    pub jwt_secret: Option<String>,
    pub access_token_ttl_seconds: u64,
    pub session_ttl_seconds: u64,
    pub rate_limits: RateLimits,
    pub body_limit_bytes: usize,
    pub request_timeout_seconds: u64,
    /// Origins allowed to call the API from a browser; empty allows none.
    pub cors_origins: Vec<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// The first admin, created on first start when there is none.
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
    /// How often sweepers (expired sessions, old idempotency keys) run.
    pub sweep_interval_seconds: u64,
    /// How long shutdown waits for in-flight requests and workers.
    pub shutdown_grace_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: DEFAULT_ADDR.parse().expect("the default address parses"),
            db: None,
            durability: Durability::default(),
            log_format: LogFormat::default(),
            log_level: "info".to_owned(),
            jwt_secret: None,
            access_token_ttl_seconds: 15 * 60,
            session_ttl_seconds: 30 * 24 * 3600,
            rate_limits: RateLimits::default(),
            body_limit_bytes: 1024 * 1024,
            request_timeout_seconds: 30,
            cors_origins: Vec::new(),
            tls_cert: None,
            tls_key: None,
            admin_email: None,
            admin_password: None,
            sweep_interval_seconds: 60,
            shutdown_grace_seconds: 30,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Reads a TOML config file; every key is optional and unknown keys are refused.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// The default config file, `shop/server.toml` under the XDG config dir, if it exists.
    pub fn default_file() -> Option<PathBuf> {
        dirs::config_dir()
            .map(|dir| dir.join("shop").join("server.toml"))
            .filter(|p| p.exists())
    }

    pub fn db_path(&self) -> PathBuf {
        self.db.clone().unwrap_or_else(|| {
            dirs::data_dir()
                .unwrap_or_else(|| PathBuf::from("."))
                .join("shop")
                .join("shop.db")
        })
    }

    pub fn access_token_ttl(&self) -> Duration {
        Duration::from_secs(self.access_token_ttl_seconds)
    }

    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_seconds)
    }

    /// Checks the combinations a type cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: &str| Err(ConfigError::Invalid(msg.to_owned()));
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return invalid("--tls-cert and --tls-key must be given together");
        }
        if self.access_token_ttl_seconds == 0 || self.session_ttl_seconds == 0 {
            return invalid("token lifetimes must be at least one second");
        }
        if self.access_token_ttl_seconds > self.session_ttl_seconds {
            return invalid("the access token cannot outlive the session");
        }
        if self.sweep_interval_seconds == 0 {
            return invalid("the sweep interval must be at least one second");
        }
        if self.body_limit_bytes < 1024 {
            return invalid("the body limit must be at least 1024 bytes");
        }
        if self.admin_email.is_some() != self.admin_password.is_some() {
            return invalid("SHOP_ADMIN_EMAIL and SHOP_ADMIN_PASSWORD must be given together");
        }
        if let Some(secret) = &self.jwt_secret
            && secret.len() < 32
        {
            return invalid("the JWT secret must be at least 32 characters");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_override_defaults_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("server.toml");
        std::fs::write(
            &path,
            "addr = \"0.0.0.0:8080\"\n[rate_limits]\nper_ip_per_second = 5\n",
        )
        .expect("write");
        let config = Config::from_file(&path).expect("parse");
        assert_eq!(config.addr.port(), 8080);
        assert_eq!(config.rate_limits.per_ip_per_second, 5);
        assert_eq!(
            config.rate_limits.login_per_minute,
            RateLimits::default().login_per_minute
        );

        std::fs::write(&path, "adress = \"typo\"\n").expect("write");
        let err = Config::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("adress"), "{err}");
    }

    #[test]
    fn tls_needs_both_files() {
        let config = Config {
            tls_cert: Some("cert.pem".into()),
            ..Config::default()
        };
        assert!(config.validate().is_err());
        assert!(Config::default().validate().is_ok());
    }
}
