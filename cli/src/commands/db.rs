//! `shop db`: work on the server's database file itself, on the machine
//! that holds it. Like `shop serve`, it runs in the `shop` binary, which
//! links the store; this crate declares its flags and its report.

use std::collections::BTreeMap;
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

    /// Copy the SQLite database into an empty PostgreSQL database, to move to several nodes.
    ///
    /// Reads the database the server uses (--db, SHOP_DB or the config file's `db`,
    /// as `shop serve` finds it) in one snapshot while the server goes on serving,
    /// and writes the PostgreSQL database in one transaction: its schema first, then
    /// every table, then the series that continue (order numbers, invoice numbers,
    /// event ids). Before committing it checks that every table has as many rows as
    /// the snapshot and that stock, payments, refunds, order totals and the event log
    /// add up to the same; a difference, like any error, leaves the target as it was.
    /// A target that holds any shop data is refused. Then start each node with
    /// SHOP_DATABASE_URL set to the same URL and one shared SHOP_JWT_SECRET.
    #[command(
        after_help = "Example: shop db copy --db /var/lib/shop/shop.db --to postgres://shop@db.internal/shop"
    )]
    Copy(CopyArgs),
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

#[derive(Debug, clap::Args)]
pub struct CopyArgs {
    /// The empty PostgreSQL database to fill: postgres://USER[:PASSWORD]@HOST[:PORT]/NAME.
    #[arg(long, value_name = "URL")]
    pub to: String,

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

/// What a finished copy wrote, and the figures it found equal on both sides.
#[derive(Debug, Serialize)]
pub struct CopyReport {
    pub database: PathBuf,
    /// The target's URL without its password.
    pub target: String,
    pub tables: u64,
    pub rows: u64,
    /// Rows copied per table.
    pub copied: BTreeMap<String, u64>,
    /// Sums checked equal in both databases before the commit.
    pub verified: BTreeMap<String, i64>,
    pub milliseconds: u64,
}

impl Tabular for CopyReport {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("TARGET", "target").kind(CellKind::Id),
            Column::new("DATABASE", "database"),
            Column::new("TABLES", "tables").kind(CellKind::Id),
            Column::new("ROWS", "rows").kind(CellKind::Id),
            Column::new("MS", "milliseconds").kind(CellKind::Id),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.target.clone()
    }
}
