//! `shop db`: work on the server's database file itself, on the machine
//! that holds it. Like `shop serve`, it runs in the `shop` binary, which
//! links the store; this crate declares its flags and its report.

use std::path::PathBuf;

use serde::Serialize;

use crate::output::{CellKind, Column, Tabular};

#[derive(Debug, clap::Subcommand)]
pub enum DbCommand {
    /// Copy the SQLite database while the server runs: one consistent snapshot, online.
    ///
    /// Reads the file the server uses (--db, SHOP_DB or the config file's `db`, as
    /// `shop serve` finds it) with SQLite's backup API; the server goes on serving.
    /// To restore, stop the server and put the copy in place of the database file.
    #[command(after_help = "Example: shop db backup /var/backups/shop-$(date +%F).db")]
    Backup(BackupArgs),
}

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// Where to write the copy.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,

    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,

    /// The database to copy [default: the one `shop serve` uses].
    #[arg(long, env = "SHOP_DB", hide_env_values = true, value_name = "PATH")]
    pub db: Option<PathBuf>,

    /// The server's TOML config file, for its `db` [default: shop/server.toml under the XDG config dir].
    #[arg(long, env = "SHOP_CONFIG", hide_env_values = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// What a finished backup copied.
#[derive(Debug, Serialize)]
pub struct BackupReport {
    pub database: PathBuf,
    pub file: PathBuf,
    pub pages: u64,
    pub bytes: u64,
    pub milliseconds: u64,
}

impl Tabular for BackupReport {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("FILE", "file").kind(CellKind::Id),
            Column::new("DATABASE", "database"),
            Column::new("BYTES", "bytes").kind(CellKind::Id),
            Column::new("MS", "milliseconds").kind(CellKind::Id),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.file.display().to_string()
    }
}
