//! `shop login`, `shop logout` and `shop whoami`.

use std::io::{BufRead, IsTerminal, Write};

use serde::Serialize;
use shop_wire::UserId;
use shop_wire::users::{LoginRequest, Role, TokenResponse, User};

use super::{parse_email, read_password};
use crate::context::{Context, login_from};
use crate::credentials::StoreKind;
use crate::error::CliError;
use crate::output::{CellKind, Column, Tabular};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  shop login                                        # asks for email and password
  shop login --url https://shop.example.com --profile prod
  printf '%s\\n' \"$PASSWORD\" | shop login --email ops@example.com --password-stdin")]
pub struct LoginArgs {
    /// Account email [default: asked for, offering the profile's last one].
    #[arg(long, value_parser = parse_email)]
    pub email: Option<String>,

    /// Read the password from the first line of stdin instead of prompting (for scripts).
    #[arg(long)]
    pub password_stdin: bool,
}

pub async fn login(context: &Context, args: LoginArgs) -> Result<(), CliError> {
    let email = match args.email {
        Some(email) => email,
        None if args.password_stdin => context.settings.email.clone().ok_or_else(|| {
            CliError::Usage("--password-stdin needs --email (stdin holds the password)".into())
        })?,
        None => prompt_email(context.settings.email.as_deref())?,
    };
    let password = read_password(args.password_stdin, "Password: ")?;
    // An anonymous cart (SHOP_CART_TOKEN) joins the user's cart at login.
    let cart_token = std::env::var("SHOP_CART_TOKEN")
        .ok()
        .filter(|t| !t.trim().is_empty());
    let client = context.anonymous()?;
    let mut call = client.post("/api/users/login").once();
    if let Some(token) = &cart_token {
        call = call.header(shop_wire::cart::CART_TOKEN_HEADER, token.trim().to_owned());
    }
    let tokens: TokenResponse = call
        .json(&LoginRequest {
            email: email.clone(),
            password,
        })?
        .send()
        .await?;
    if cart_token.is_some() {
        eprintln!(
            "shop: the anonymous cart of SHOP_CART_TOKEN joins your cart (see `shop cart show`)"
        );
    }
    let user = tokens.user.clone();
    let login = login_from(&context.server(), &user.email, tokens);
    let credentials = context.credentials.clone();
    let profile = context.profile().to_owned();
    let saved = tokio::task::spawn_blocking(move || credentials.save(&profile, &login))
        .await
        .map_err(|err| CliError::Other(format!("saving the login: {err}")))??;
    if let Some(notice) = saved.notice {
        eprintln!("shop: note: {notice}");
    }
    let place = match saved.store {
        StoreKind::Keyring => "the OS keyring".to_owned(),
        StoreKind::File => context.credentials.credentials_file().display().to_string(),
    };
    eprintln!(
        "Logged in to {} as {} ({}), profile `{}`; the login is kept in {place}.",
        context.server(),
        user.email,
        user.role,
        context.profile()
    );
    Ok(())
}

fn prompt_email(last: Option<&str>) -> Result<String, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "no terminal to ask for the email on; pass --email".into(),
        ));
    }
    let mut stderr = std::io::stderr();
    match last {
        Some(last) => write!(stderr, "Email [{last}]: ")?,
        None => write!(stderr, "Email: ")?,
    }
    stderr.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let typed = line.trim();
    let email = match (typed, last) {
        ("", Some(last)) => last,
        (typed, _) => typed,
    };
    parse_email(email).map_err(CliError::Usage)
}

pub async fn logout(context: &Context) -> Result<(), CliError> {
    let Some((login, store)) = context.credentials.load(context.profile())? else {
        eprintln!(
            "Not logged in (profile `{}`); nothing to do.",
            context.profile()
        );
        return Ok(());
    };
    let server = login.url.clone();
    // Revoke the session on the server that issued it first; the tokens are
    // forgotten locally whatever the server says, and a failure there is reported.
    let revoked = match context.stored_session(login, store).await {
        Ok(session) => {
            session
                .client
                .post("/api/users/logout")
                .once()
                .send_empty()
                .await
        }
        Err(err) => Err(err),
    };
    let credentials = context.credentials.clone();
    let profile = context.profile().to_owned();
    tokio::task::spawn_blocking(move || credentials.forget(&profile))
        .await
        .map_err(|err| CliError::Other(format!("forgetting the login: {err}")))??;
    match revoked {
        Ok(()) => {
            eprintln!(
                "Logged out of {server} (profile `{}`); the session is revoked.",
                context.profile()
            );
            Ok(())
        }
        Err(err) => {
            eprintln!(
                "shop: the stored login is forgotten, but its session could not be revoked on the server"
            );
            Err(err)
        }
    }
}

/// `shop whoami`: the user behind the token, and where the token came from.
#[derive(Debug, Serialize)]
struct WhoAmI {
    id: UserId,
    email: String,
    name: String,
    role: Role,
    email_verified: bool,
    profile: String,
    url: String,
    token_source: &'static str,
    #[serde(with = "time::serde::rfc3339::option")]
    token_expires_at: Option<time::OffsetDateTime>,
}

impl Tabular for WhoAmI {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("id", "id").kind(CellKind::Id),
            Column::new("email", "email"),
            Column::new("role", "role"),
            Column::new("url", "url"),
            Column::new("token expires", "token_expires_at").kind(CellKind::Time),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }
}

pub async fn whoami(context: &Context) -> Result<(), CliError> {
    let session = context.session().await?;
    let user: User = session.client.get("/api/users/me").send().await?;
    context.output().one(&WhoAmI {
        id: user.id,
        email: user.email,
        name: user.name,
        role: user.role,
        email_verified: user.email_verified,
        profile: context.profile().to_owned(),
        url: context.server(),
        token_source: session.source.describe(),
        token_expires_at: session.expires_at,
    })
}
