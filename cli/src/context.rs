//! The global flags every command shares, and what they resolve to: the
//! server URL, the output, and an API client with the right token.
//!
//! Precedence is flag > environment > profile > default, for the URL and
//! the token alike. The token is `--token`, else `SHOP_TOKEN`, else the
//! profile's stored login, refreshed first when it is about to expire.

use std::time::Duration;

use reqwest::Url;
use shop_wire::users::{RefreshRequest, TokenResponse};
use time::OffsetDateTime;

use crate::client::{ApiClient, DEFAULT_TIMEOUT};
use crate::credentials::{Credentials, Login, ProfileSettings, StoreKind};
use crate::error::CliError;
use crate::output::{Output, OutputArg};

pub const DEFAULT_URL: &str = "http://127.0.0.1:7467";
pub const DEFAULT_PROFILE: &str = "default";
/// A stored access token this close to expiring is refreshed before use.
const REFRESH_MARGIN: time::Duration = time::Duration::seconds(60);

#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Server to talk to [default: the profile's, else http://127.0.0.1:7467].
    #[arg(long, global = true, help_heading = "Global options", env = "SHOP_URL", hide_env_values = true, value_name = "URL", value_parser = parse_url)]
    pub url: Option<Url>,

    /// Access token or API key (shop_sk_...) to use instead of the stored login [env: SHOP_TOKEN].
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        value_name = "TOKEN"
    )]
    pub token: Option<String>,

    /// Named server and login, for working with more than one server.
    #[arg(long, global = true, help_heading = "Global options", env = "SHOP_PROFILE", hide_env_values = true, value_name = "NAME",
          default_value = DEFAULT_PROFILE, value_parser = parse_profile)]
    pub profile: String,

    /// Output format; wide is a table with ids [default: table on a terminal, ndjson when piped].
    #[arg(
        short,
        long,
        global = true,
        help_heading = "Global options",
        value_enum,
        value_name = "FORMAT"
    )]
    pub output: Option<OutputArg>,

    /// Print only ids, one per line (same as -o id).
    #[arg(
        short,
        long,
        global = true,
        help_heading = "Global options",
        conflicts_with = "output"
    )]
    pub quiet: bool,

    /// No colours in tables (also off when NO_COLOR is set or output is piped).
    #[arg(long, global = true, help_heading = "Global options")]
    pub no_color: bool,

    /// Idempotency-Key sent with a mutating request, so that running the same
    /// command again with the same key cannot apply it twice [default: a new key per request].
    #[arg(long, global = true, help_heading = "Global options", value_name = "KEY", value_parser = parse_idempotency_key)]
    pub idempotency_key: Option<String>,

    /// Longest wait for one answer from the server.
    #[arg(long, global = true, help_heading = "Global options", allow_negative_numbers = true, env = "SHOP_TIMEOUT", hide_env_values = true, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: Option<u64>,

    /// Log every HTTP request and answer on stderr.
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub verbose: bool,
}

impl GlobalArgs {
    /// The ids of the global options, as clap knows them.
    pub fn group_ids() -> Vec<clap::Id> {
        use clap::Args;
        Self::augment_args(clap::Command::new("shop"))
            .get_arguments()
            .map(|arg| arg.get_id().clone())
            .collect()
    }
}

/// Where the token of a request came from, as `shop whoami` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenSource {
    Flag,
    Environment,
    Stored(StoreKind),
}

impl TokenSource {
    pub fn describe(self) -> &'static str {
        match self {
            TokenSource::Flag => "--token",
            TokenSource::Environment => "SHOP_TOKEN",
            TokenSource::Stored(StoreKind::Keyring) => "keyring",
            TokenSource::Stored(StoreKind::File) => "credentials file",
        }
    }
}

/// An authenticated client and what it knows of its login.
pub struct Session {
    pub client: ApiClient,
    pub source: TokenSource,
    /// For a stored login: when its current access token expires.
    pub expires_at: Option<OffsetDateTime>,
}

pub struct Context {
    pub global: GlobalArgs,
    pub url: Url,
    pub credentials: Credentials,
    pub settings: ProfileSettings,
}

impl Context {
    pub fn new(global: GlobalArgs) -> Result<Self, CliError> {
        if global.verbose {
            // Only this CLI's request log, never a dependency's chatter.
            let _ = tracing_subscriber::fmt()
                .with_writer(std::io::stderr)
                .with_target(false)
                .without_time()
                .with_level(false)
                .with_env_filter("shop::http=info")
                .try_init();
        }
        let credentials = Credentials::new()?;
        let settings = credentials.settings(&global.profile)?;
        let url = match (&global.url, &settings.url) {
            (Some(url), _) => url.clone(),
            (None, Some(stored)) => parse_url(stored).map_err(|err| {
                CliError::Other(format!(
                    "profile `{}` has a bad server URL: {err}",
                    global.profile
                ))
            })?,
            (None, None) => parse_url(DEFAULT_URL).map_err(CliError::Other)?,
        };
        Ok(Context {
            global,
            url,
            credentials,
            settings,
        })
    }

    pub fn profile(&self) -> &str {
        &self.global.profile
    }

    pub fn output(&self) -> Output {
        let format = if self.global.quiet {
            Some(OutputArg::Id)
        } else {
            self.global.output
        };
        Output::stdout(format, self.global.no_color)
    }

    pub fn timeout(&self) -> Duration {
        self.global
            .timeout
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs)
    }

    /// A client without a token, for public routes (health, login).
    pub fn anonymous(&self) -> Result<ApiClient, CliError> {
        self.client_for(self.url.as_str())
    }

    /// A client with the token the precedence rules pick.
    pub async fn client(&self) -> Result<ApiClient, CliError> {
        Ok(self.session().await?.client)
    }

    /// For the public reads (the catalog, search, recommendations): the
    /// login's client when there is one, else an anonymous one, so they
    /// keep working after `shop logout`.
    pub async fn client_or_anonymous(&self) -> Result<ApiClient, CliError> {
        match self.session().await {
            Ok(session) => Ok(session.client),
            Err(CliError::Auth(_)) if self.stored_login()?.is_none() => self.anonymous(),
            Err(err) => Err(err),
        }
    }

    pub async fn session(&self) -> Result<Session, CliError> {
        let explicit = match &self.global.token {
            Some(token) => Some((token.clone(), TokenSource::Flag)),
            None => std::env::var("SHOP_TOKEN")
                .ok()
                .filter(|token| !token.trim().is_empty())
                .map(|token| (token, TokenSource::Environment)),
        };
        if let Some((token, source)) = explicit {
            return Ok(Session {
                client: self.anonymous()?.with_token(Some(token.trim().to_owned())),
                source,
                expires_at: None,
            });
        }
        let Some((login, store)) = self.stored_login()? else {
            return Err(CliError::Auth(format!(
                "not logged in to {} (profile `{}`); run `shop login`, or pass --token",
                self.server(),
                self.profile()
            )));
        };
        self.stored_session(login, store).await
    }

    /// A client for a stored login, on the server that issued it, refreshing
    /// its tokens first when they are about to expire.
    pub async fn stored_session(
        &self,
        login: Login,
        store: StoreKind,
    ) -> Result<Session, CliError> {
        let login = if login.fresh_for(REFRESH_MARGIN) {
            login
        } else {
            self.refresh(login).await?
        };
        Ok(Session {
            client: self
                .client_for(&login.url)?
                .with_token(Some(login.access_token.clone())),
            source: TokenSource::Stored(store),
            expires_at: Some(login.expires_at),
        })
    }

    fn client_for(&self, url: &str) -> Result<ApiClient, CliError> {
        let url = parse_url(url).map_err(CliError::Other)?;
        Ok(ApiClient::new(url, self.timeout())?
            .with_idempotency_key(self.global.idempotency_key.clone()))
    }

    /// The profile's login, if it belongs to the server this command talks to.
    /// A token is never sent to another server than the one that issued it.
    pub fn stored_login(&self) -> Result<Option<(Login, StoreKind)>, CliError> {
        let Some((login, store)) = self.credentials.load(self.profile())? else {
            return Ok(None);
        };
        if login.url.trim_end_matches('/') != self.server() {
            return Err(CliError::Auth(format!(
                "the login of profile `{}` is for {}, not {}; run `shop login --url {}` \
                 or pick another --profile",
                self.profile(),
                login.url,
                self.server(),
                self.server()
            )));
        }
        Ok(Some((login, store)))
    }

    /// The server URL as logins record it.
    pub fn server(&self) -> String {
        self.url.as_str().trim_end_matches('/').to_owned()
    }

    /// Trades the refresh token for new tokens. Refresh tokens rotate and a
    /// replayed one ends the session, so this holds the credentials lock and
    /// first re-reads the login: another shop process may have just refreshed it.
    async fn refresh(&self, stale: Login) -> Result<Login, CliError> {
        let credentials = self.credentials.clone();
        let lock = tokio::task::spawn_blocking(move || credentials.lock())
            .await
            .map_err(|err| CliError::Other(format!("waiting for the credentials lock: {err}")))??;
        let current = match self.credentials.load(self.profile())? {
            Some((login, _)) if login.fresh_for(REFRESH_MARGIN) => return Ok(login),
            Some((login, _)) => login,
            None => stale,
        };
        let answer: Result<TokenResponse, CliError> = async {
            self.client_for(&current.url)?
                .post("/api/users/refresh")
                .once()
                .json(&RefreshRequest {
                    refresh_token: current.refresh_token.clone(),
                })?
                .send()
                .await
        }
        .await;
        let tokens = answer.map_err(|err| match err {
            CliError::Api(api) if api.status == 401 => CliError::Auth(format!(
                "the login to {} has ended ({}); run `shop login` again",
                current.url, api.detail.message
            )),
            other => other,
        })?;
        let login = login_from(&current.url, &current.email, tokens);
        self.credentials.save(self.profile(), &login)?;
        drop(lock);
        Ok(login)
    }
}

/// The login to store for a token answer.
pub fn login_from(url: &str, email: &str, tokens: TokenResponse) -> Login {
    Login {
        url: url.to_owned(),
        email: email.to_owned(),
        expires_at: OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap_or(OffsetDateTime::now_utc())
            + time::Duration::seconds(i64::try_from(tokens.expires_in).unwrap_or(i64::MAX)),
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
    }
}

fn parse_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|err| format!("`{text}` is not a URL ({err})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("`{text}` is not an http:// or https:// server URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "`{text}` has a query or fragment; give the server's base URL"
        ));
    }
    Ok(url)
}

fn parse_profile(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(text.to_owned())
    } else {
        Err("a profile name is 1-64 letters, digits, `-` or `_`".to_owned())
    }
}

fn parse_idempotency_key(text: &str) -> Result<String, String> {
    let valid = !text.is_empty() && text.len() <= 255 && text.bytes().all(|b| b.is_ascii_graphic());
    if valid {
        Ok(text.to_owned())
    } else {
        Err("an idempotency key is 1-255 visible ASCII characters".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_servers() {
        assert!(parse_url("http://127.0.0.1:7467").is_ok());
        assert!(parse_url("https://shop.example.com/base/").is_ok());
        assert!(parse_url("ftp://x").is_err());
        assert!(parse_url("localhost:7467").is_err());
        assert!(parse_url("http://x/?a=b").is_err());
    }

    #[test]
    fn profile_names_are_plain() {
        assert!(parse_profile("staging-2").is_ok());
        assert!(parse_profile("").is_err());
        assert!(parse_profile("a b").is_err());
        assert!(parse_profile("../x").is_err());
    }
}
