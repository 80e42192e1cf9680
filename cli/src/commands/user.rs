//! `shop user`: accounts and roles (admin), and one's own password and
//! email address (anyone).

use std::io::{IsTerminal, Read};

use shop_wire::users::{
    ChangePasswordRequest, CreateUserRequest, PasswordResetConfirmRequest, PasswordResetRequest,
    Role, SetRoleRequest, User, VerifyEmailRequest,
};
use shop_wire::{Page, UserId};

use super::{all_pages, choice, parse_email, read_password};
use crate::client::ApiClient;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Format, Tabular};

/// The server's largest page of users.
const MAX_PAGE: u32 = 500;

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// List users, newest last; filter by role or by text in the email or name.
    #[command(after_help = "Example: shop user list --role staff -o ndjson | jq -r .email")]
    List(ListArgs),
    /// Show one user, by id (usr_...) or email.
    Get {
        /// The user's id or email.
        #[arg(value_parser = parse_user_ref)]
        user: UserRef,
    },
    /// Create a user with any role. The password is prompted for, or read from stdin.
    #[command(after_help = "\
Example: printf '%s\\n' \"$PASSWORD\" | shop user create --email kim@example.com --name Kim --role staff --password-stdin")]
    Create {
        /// The new user's email, which they log in with.
        #[arg(long, value_parser = parse_email)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        /// admin, staff or customer.
        #[arg(long, default_value = "customer", value_parser = parse_role())]
        role: Role,
    },
    /// Change a user's role (admin, staff or customer). The last admin cannot be demoted.
    Role {
        /// The user's id or email.
        #[arg(value_parser = parse_user_ref)]
        user: UserRef,
        /// The new role: admin, staff or customer.
        #[arg(value_parser = parse_role())]
        role: Role,
    },
    /// Change your own password: the current one, then the new one twice.
    /// Your other sessions end; this one stays signed in.
    #[command(after_help = "\
Example: printf '%s\\n%s\\n' \"$OLD\" \"$NEW\" | shop user password --password-stdin")]
    Password {
        /// Read the current password and the new one from the first two lines of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Prove your email address with the code from the welcome email; orders
    /// placed for the address without signing in then join your account.
    Verify {
        /// The code from the welcome email.
        token: String,
    },
    /// A forgotten password: ask for a reset email with --email, then set a
    /// new password with the code it brings (--token; it works once, for 30 minutes).
    /// Every session of the account ends.
    #[command(after_help = "\
Examples:
  shop user reset-password --email ada@example.com
  printf '%s\\n' \"$NEW\" | shop user reset-password --token CODE --password-stdin")]
    ResetPassword {
        /// The account's email; a reset email goes there if it has an account.
        #[arg(long, value_parser = parse_email, required_unless_present = "token", conflicts_with = "token")]
        email: Option<String>,
        /// The code from the reset email.
        #[arg(long)]
        token: Option<String>,
        /// Read the new password from the first line of stdin instead of prompting.
        #[arg(long, requires = "token")]
        password_stdin: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only users with this role: admin, staff or customer.
    #[arg(long, value_parser = parse_role())]
    role: Option<Role>,
    /// Only users whose email or name contains this text (case-insensitive).
    #[arg(short, long, value_name = "TEXT")]
    search: Option<String>,
    /// Users per page.
    #[arg(long, default_value_t = 50, allow_negative_numbers = true, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PAGE)))]
    limit: u32,
    /// Users to skip.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    offset: u64,
    /// Every matching user, fetching page after page.
    #[arg(long, conflicts_with_all = ["limit", "offset"])]
    all: bool,
}

/// A user named on the command line by id or by email.
#[derive(Clone, Debug)]
pub enum UserRef {
    Id(UserId),
    Email(String),
}

fn parse_user_ref(text: &str) -> Result<UserRef, String> {
    if text.starts_with("usr_") {
        text.parse()
            .map(UserRef::Id)
            .map_err(|err| format!("`{text}`: {err}"))
    } else if text.contains('@') {
        parse_email(text).map(UserRef::Email)
    } else {
        Err(format!(
            "`{text}` is neither a user id (usr_...) nor an email address"
        ))
    }
}

fn parse_role() -> impl clap::builder::TypedValueParser<Value = Role> {
    choice(Role::ALL.map(Role::as_str))
}

impl Tabular for User {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("email", "email").kind(CellKind::Id),
            Column::new("name", "name"),
            Column::new("role", "role"),
            Column::new("verified", "email_verified"),
            Column::new("age", "created_at").kind(CellKind::Age),
            Column::new("id", "id").kind(CellKind::Id).wide(),
            Column::new("created", "created_at")
                .kind(CellKind::Time)
                .wide(),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }
}

impl UserCommand {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let mut output = context.output();
        // Verifying and resetting are for people who cannot (or need not) sign in.
        let client = match self {
            UserCommand::Verify { .. } | UserCommand::ResetPassword { .. } => {
                context.client_or_anonymous().await?
            }
            _ => context.client().await?,
        };
        match self {
            UserCommand::List(args) => {
                let page = if args.all {
                    all_pages(|_, offset| list_page(&client, &args, MAX_PAGE, offset)).await?
                } else {
                    list_page(&client, &args, args.limit, args.offset).await?
                };
                output.list(&page, &page.items)?;
                let shown = page.offset + page.items.len() as u64;
                if output.format() == Format::Table && shown < page.total {
                    eprintln!(
                        "{} of {} users; see more with --offset {shown}, or all with --all",
                        page.items.len(),
                        page.total
                    );
                }
                Ok(())
            }
            UserCommand::Get { user } => {
                let user = resolve(&client, &user).await?;
                output.one(&user)
            }
            UserCommand::Create {
                email,
                name,
                password_stdin,
                role,
            } => {
                let password = read_password(password_stdin, "Password for the new user: ")?;
                let user: User = client
                    .post("/api/users")
                    .json(&CreateUserRequest {
                        email,
                        password,
                        name,
                        role,
                    })?
                    .send()
                    .await?;
                output.one(&user)
            }
            UserCommand::Role { user, role } => {
                let id = resolve(&client, &user).await?.id;
                let user: User = client
                    .put(&format!("/api/users/{id}/role"))
                    .json(&SetRoleRequest { role })?
                    .send()
                    .await?;
                output.one(&user)
            }
            UserCommand::Password { password_stdin } => {
                let (current_password, new_password) = if password_stdin {
                    let [current, new] = stdin_lines::<2>("the current password and the new one")?;
                    (current, new)
                } else {
                    let current = read_password(false, "Current password: ")?;
                    (current, prompt_new_password()?)
                };
                client
                    .post("/api/users/me/password")
                    .json(&ChangePasswordRequest {
                        current_password,
                        new_password,
                    })?
                    .send_empty()
                    .await?;
                eprintln!("Password changed; your other sessions have ended.");
                Ok(())
            }
            UserCommand::Verify { token } => {
                let user: User = client
                    .post("/api/users/verify")
                    .json(&VerifyEmailRequest { token })?
                    .send()
                    .await?;
                output.one(&user)
            }
            UserCommand::ResetPassword {
                email,
                token,
                password_stdin,
            } => match (email, token) {
                (Some(email), _) => {
                    client
                        .post("/api/users/password-reset")
                        .json(&PasswordResetRequest {
                            email: email.clone(),
                        })?
                        .send_empty()
                        .await?;
                    eprintln!(
                        "If {email} has an account, a reset email with a code is on its way; \
                         it works once, for 30 minutes."
                    );
                    Ok(())
                }
                (None, Some(token)) => {
                    let new_password = if password_stdin {
                        let [new] = stdin_lines::<1>("the new password")?;
                        new
                    } else {
                        prompt_new_password()?
                    };
                    client
                        .post("/api/users/password-reset/confirm")
                        .json(&PasswordResetConfirmRequest {
                            token,
                            new_password,
                        })?
                        .send_empty()
                        .await?;
                    eprintln!("Password reset; log in with the new one (every session has ended).");
                    Ok(())
                }
                (None, None) => Err(CliError::Usage(
                    "reset-password needs --email (to ask for a code) or --token (to use it)"
                        .into(),
                )),
            },
        }
    }
}

/// The first `N` lines of stdin (line endings trimmed), each a password.
fn stdin_lines<const N: usize>(what: &str) -> Result<[String; N], CliError> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text)?;
    let lines: Vec<String> = text
        .lines()
        .take(N)
        .map(|line| line.strip_suffix('\r').unwrap_or(line).to_owned())
        .collect();
    let lines: [String; N] = lines
        .try_into()
        .map_err(|_| CliError::Usage(format!("stdin must hold {what}, one per line")))?;
    if lines.iter().any(String::is_empty) {
        return Err(CliError::Usage(format!(
            "stdin must hold {what}, one per line, none empty"
        )));
    }
    Ok(lines)
}

/// A new password typed twice at a prompt, so a typo does not lock anyone out.
fn prompt_new_password() -> Result<String, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "no terminal to ask for the new password on; pipe it in with --password-stdin".into(),
        ));
    }
    let new = read_password(false, "New password: ")?;
    if read_password(false, "New password again: ")? != new {
        return Err(CliError::Usage("the two new passwords differ".into()));
    }
    Ok(new)
}

async fn list_page(
    client: &ApiClient,
    args: &ListArgs,
    limit: u32,
    offset: u64,
) -> Result<Page<User>, CliError> {
    client
        .get("/api/users")
        .query_opt("role", args.role)
        .query_opt("q", args.search.as_deref())
        .query("limit", limit.to_string())
        .query("offset", offset.to_string())
        .send()
        .await
}

/// A user by id, or by exact email (the list's text search, then an exact match).
async fn resolve(client: &ApiClient, user: &UserRef) -> Result<User, CliError> {
    match user {
        UserRef::Id(id) => client.get(&format!("/api/users/{id}")).send().await,
        UserRef::Email(email) => {
            let page: Page<User> = client
                .get("/api/users")
                .query("q", email.clone())
                .query("limit", MAX_PAGE.to_string())
                .send()
                .await?;
            page.items
                .into_iter()
                .find(|user| user.email.eq_ignore_ascii_case(email))
                .ok_or_else(|| CliError::NotFound(format!("no user has the email {email}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_named_by_id_or_email() {
        assert!(matches!(
            parse_user_ref("usr_01JD0000000000000000000000"),
            Ok(UserRef::Id(_))
        ));
        assert!(matches!(
            parse_user_ref("a@example.com"),
            Ok(UserRef::Email(_))
        ));
        assert!(parse_user_ref("usr_nope").is_err());
        assert!(parse_user_ref("bob").is_err());
    }
}
