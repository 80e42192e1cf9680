//! `shop completions` and `shop man`: generated from the command tree, so
//! they can never disagree with it. The copies checked in under
//! `completions/` and `man/` are compared with fresh ones by a test.

use std::io::Write;
use std::path::PathBuf;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::Cli;
use crate::error::CliError;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  source <(shop completions bash)
  shop completions zsh > ~/.zfunc/_shop
  shop completions fish > ~/.config/fish/completions/shop.fish
  shop completions powershell >> $PROFILE    (PowerShell; or | Out-String | Invoke-Expression)")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, clap::Args)]
#[command(after_help = "Example: shop man ~/.local/share/man/man1 && man shop-user")]
pub struct ManArgs {
    /// Directory to write shop.1 and one page per subcommand into (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// The completion script for `shell`.
pub fn completion_script(shell: Shell) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "shop", &mut script);
    script
}

/// Every man page, as (file name, roff text): `shop.1`, `shop-user.1`, `shop-user-list.1`, ...
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>, CliError> {
    fn render(command: clap::Command, pages: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            render(sub.clone(), pages)?;
        }
        // The footer names the program and its version (`shop 0.1.0`);
        // clap_mangen's default names the subcommand (`create 0.1.0`).
        let source = format!("shop {}", env!("CARGO_PKG_VERSION"));
        let man = clap_mangen::Man::new(command).source(source);
        let mut text = Vec::new();
        man.render(&mut text)?;
        pages.push((man.get_filename(), text));
        Ok(())
    }
    // As `--help` shows it: the global options on the first page only.
    let mut command = crate::tuned(Cli::command().disable_help_subcommand(true));
    command.build();
    let mut pages = Vec::new();
    render(command, &mut pages)?;
    pages.sort();
    Ok(pages)
}

pub fn completions(args: &CompletionsArgs) -> Result<(), CliError> {
    // Generated into memory first: clap_complete panics on a failed write,
    // and a closed pipe must end quietly instead.
    let script = completion_script(args.shell);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&script)?;
    stdout.flush()?;
    Ok(())
}

pub fn man(args: &ManArgs) -> Result<(), CliError> {
    let fail = |err: std::io::Error| CliError::Other(format!("{}: {err}", args.dir.display()));
    std::fs::create_dir_all(&args.dir).map_err(fail)?;
    let pages = man_pages()?;
    for (name, text) in &pages {
        std::fs::write(args.dir.join(name), text).map_err(fail)?;
    }
    eprintln!("wrote {} man pages to {}", pages.len(), args.dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The checked-in completions and man pages must match the command tree.
    //! After changing a command, refresh them with
    //! `SHOP_BLESS=1 cargo test -p shop-cli generated`.

    use super::*;
    use std::path::Path;

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace root")
            .to_owned()
    }

    fn check(path: &Path, fresh: &[u8], stale: &mut Vec<String>) {
        if std::env::var_os("SHOP_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("create dir");
            std::fs::write(path, fresh).expect("write");
        } else if std::fs::read(path).ok().as_deref() != Some(fresh) {
            stale.push(path.display().to_string());
        }
    }

    #[test]
    fn generated_files_are_current() {
        let mut stale = Vec::new();
        for (shell, name) in [
            (Shell::Bash, "shop.bash"),
            (Shell::Zsh, "_shop"),
            (Shell::Fish, "shop.fish"),
            (Shell::PowerShell, "shop.ps1"),
        ] {
            check(
                &root().join("completions").join(name),
                &completion_script(shell),
                &mut stale,
            );
        }
        let pages = man_pages().expect("man pages");
        for (name, text) in &pages {
            check(&root().join("man").join(name), text, &mut stale);
        }
        let expected: Vec<&str> = pages.iter().map(|(name, _)| name.as_str()).collect();
        for entry in std::fs::read_dir(root().join("man")).expect("man/") {
            let name = entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            if !expected.contains(&name.as_str()) {
                if std::env::var_os("SHOP_BLESS").is_some() {
                    std::fs::remove_file(root().join("man").join(&name)).expect("remove");
                } else {
                    stale.push(format!("man/{name} (no such command any more)"));
                }
            }
        }
        assert!(
            stale.is_empty(),
            "stale generated files: {stale:?}\nrefresh them with `SHOP_BLESS=1 cargo test -p shop-cli generated`"
        );
    }

    #[test]
    fn every_man_page_footer_names_shop_and_its_version() {
        let footer = format!("\"shop {}\"", env!("CARGO_PKG_VERSION"));
        for (name, text) in man_pages().expect("man pages") {
            let text = String::from_utf8(text).expect("roff is text");
            let title = text
                .lines()
                .find(|l| l.starts_with(".TH"))
                .expect(".TH line");
            assert!(title.trim_end().ends_with(&footer), "{name}: {title}");
        }
    }
}
