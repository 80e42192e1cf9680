//! One module per subcommand group, each with its clap arguments and its `run`.

pub mod address;
pub mod audit;
pub mod auth;
pub mod cart;
pub mod customer;
pub mod dashboard;
pub mod db;
pub mod discount;
pub mod document;
pub mod events;
pub mod fixtures;
pub mod generate;
pub mod inventory;
pub mod key;
pub mod listen;
pub mod notification;
pub mod order;
pub mod payment;
pub mod product;
pub mod recommend;
pub mod report;
pub mod returns;
pub mod search;
pub mod serve;
pub mod shipping;
pub mod status;
pub mod tax;
pub mod user;
pub mod webhook;

use std::future::Future;
use std::io::{IsTerminal, Read};
use std::str::FromStr;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use shop_wire::Page;

use crate::error::CliError;
use crate::output::{Format, Output};

/// The largest page the catalog and inventory lists are asked for with `--all`.
pub const MAX_PAGE: u32 = 500;

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

/// A SKU as the server accepts it: 1-64 of `A-Z 0-9 . _ -`, upper case,
/// starting with a letter or digit. SKUs are upper case, so `mug-01` can
/// only mean MUG-01: it is taken as that, not refused.
pub fn parse_sku(text: &str) -> Result<String, String> {
    let text = text.trim().to_ascii_uppercase();
    let text = text.as_str();
    let allowed = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || ".-_".contains(c);
    if text.is_empty() || text.len() > 64 {
        return Err(format!("`{text}`: a SKU is 1 to 64 characters"));
    }
    if !text.chars().all(allowed) {
        return Err(format!(
            "`{text}`: a SKU has only upper-case letters, digits, `.`, `_` and `-` (like CHAIR-01)"
        ));
    }
    if !text.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "`{text}`: a SKU starts with a letter or digit (like CHAIR-01)"
        ));
    }
    Ok(text.to_owned())
}

/// Asks a yes/no question on the terminal; anything but y or yes is no.
/// Without a terminal to ask on, the caller must have been told to go ahead.
pub fn confirm(question: &str, yes_flag: &str) -> Result<bool, CliError> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(CliError::Usage(format!(
            "no terminal to confirm on; pass {yes_flag} to go ahead"
        )));
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Paging of a list: one page, or with --all every page.
#[derive(Debug, clap::Args)]
pub struct PageArgs {
    /// Rows per page.
    #[arg(long, default_value_t = 50, allow_negative_numbers = true,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_PAGE)))]
    pub limit: u32,
    /// Rows to skip.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub offset: u64,
    /// Every matching row, fetching page after page.
    #[arg(long, conflicts_with_all = ["limit", "offset"])]
    pub all: bool,
}

/// Every item of a list, fetched page after page until the total is reached
/// (or a page comes back empty, should the total change meanwhile).
pub async fn all_pages<T, F, Fut>(mut fetch: F) -> Result<Page<T>, CliError>
where
    F: FnMut(u32, u64) -> Fut,
    Fut: Future<Output = Result<Page<T>, CliError>>,
{
    let mut items = Vec::new();
    loop {
        let page = fetch(MAX_PAGE, items.len() as u64).await?;
        let empty = page.items.is_empty();
        items.extend(page.items);
        if empty || items.len() as u64 >= page.total {
            let total = items.len() as u64;
            return Ok(Page {
                limit: u32::try_from(total).unwrap_or(u32::MAX),
                items,
                total,
                offset: 0,
            });
        }
    }
}

/// Under a table, says how to see the rest of a list that did not fit one page.
pub fn more_hint<T>(output: &Output, page: &Page<T>, noun: &str) {
    let shown = page.offset + page.items.len() as u64;
    if output.format() == Format::Table && shown < page.total {
        eprintln!(
            "{} of {} {noun}; see more with --offset {shown}, or all with --all",
            page.items.len(),
            page.total
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_are_upper_case_codes() {
        for good in ["CHAIR-01", "A", "9.5_X-2", &"X".repeat(64)] {
            assert_eq!(parse_sku(good).as_deref(), Ok(good), "{good}");
        }
        assert_eq!(
            parse_sku(" chair-01").as_deref(),
            Ok("CHAIR-01"),
            "any case"
        );
        for bad in [
            "",
            "-CHAIR",
            ".X",
            "CHA IR",
            "CHAIR/1",
            "ÄPFEL",
            "äpfel",
            &"X".repeat(65),
        ] {
            assert!(parse_sku(bad).is_err(), "{bad} was accepted");
        }
    }
}
