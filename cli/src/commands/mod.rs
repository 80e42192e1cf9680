//! One module per subcommand group, each with its clap arguments and its `run`.

pub mod auth;
pub mod dashboard;
pub mod events;
pub mod generate;
pub mod notification;
pub mod serve;
pub mod status;
pub mod user;

use std::io::{IsTerminal, Read};
use std::str::FromStr;

use clap::builder::{PossibleValuesParser, TypedValueParser};

use crate::error::CliError;

/// A password from stdin (`--password-stdin`) or typed at a prompt without
/// echo. Only the line ending is trimmed: spaces may be part of a password.
pub fn read_password(from_stdin: bool, prompt: &str) -> Result<String, CliError> {
    let password = if from_stdin {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        let line = text.lines().next().unwrap_or_default().to_owned();
        line.strip_suffix('\r').map(str::to_owned).unwrap_or(line)
    } else if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt)?
    } else {
        return Err(CliError::Usage(
            "no terminal to ask for the password on; pipe it in with --password-stdin".into(),
        ));
    };
    if password.is_empty() {
        return Err(CliError::Usage("the password is empty".into()));
    }
    Ok(password)
}

/// An email address, checked at parse time.
pub fn parse_email(text: &str) -> Result<String, String> {
    let text = text.trim();
    if email_address::EmailAddress::is_valid(text) {
        Ok(text.to_owned())
    } else {
        Err(format!("`{text}` is not an email address"))
    }
}

/// One of a fixed set of names (listed in help, completed by the shells),
/// parsed into its type.
pub fn choice<T>(names: impl IntoIterator<Item = &'static str>) -> impl TypedValueParser<Value = T>
where
    T: FromStr<Err = String> + Clone + Send + Sync + 'static,
{
    PossibleValuesParser::new(names).try_map(|text| text.parse::<T>())
}
