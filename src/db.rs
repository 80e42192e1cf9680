//! `shop db`: commands on the database file itself, run beside it (see
//! `shop_cli::commands::db` for why not through the server).

use std::path::{Path, PathBuf};

use shop_cli::commands::db::{BackupArgs, BackupReport, CopyArgs, CopyReport, DbCommand};
use shop_cli::output::Output;
use shop_cli::{CliError, GlobalArgs};
use shop_server::config::Database;
use shop_server::{BackupError, Config, CopyError};

pub fn run(global: &GlobalArgs, command: DbCommand) -> Result<(), CliError> {
    match command {
        DbCommand::Backup(args) => backup(global, args),
        DbCommand::Copy(args) => copy(global, args),
    }
}

/// The database `shop serve` would open with the same `--db`, `--config`,
/// environment and config file.
fn database(db: Option<&Path>, config: Option<&Path>) -> Result<Database, CliError> {
    let file = config.map(Path::to_owned).or_else(Config::default_file);
    let mut config = match &file {
        Some(path) => Config::from_file(path).map_err(|err| CliError::Usage(err.to_string()))?,
        None => Config::default(),
    };
    // A file named with --db or SHOP_DB is the one to work on; without one,
    // SHOP_DATABASE_URL says where the shop is, as it does for `shop serve`.
    let url = std::env::var("SHOP_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty());
    match (db, url) {
        (Some(db), _) => {
            config.db = Some(db.to_owned());
            config.database_url = None;
        }
        (None, Some(url)) => {
            config.database_url = Some(url);
            config.db = None;
        }
        (None, None) => {}
    }
    config
        .database()
        .map_err(|err| CliError::Usage(err.to_string()))
}

fn backup(global: &GlobalArgs, args: BackupArgs) -> Result<(), CliError> {
    let database = match database(args.db.as_deref(), args.config.as_deref())? {
        Database::Sqlite(path) => path,
        Database::Postgres(_) => {
            return Err(CliError::Usage(
                "the server's database is PostgreSQL: back it up with pg_dump; \
                 shop db backup copies an SQLite file"
                    .to_owned(),
            ));
        }
    };
    let show = shop_cli::progress::wanted(global.quiet);
    let bar = shop_cli::progress::count(show, 0, "pages copied");
    let done = shop_server::backup_sqlite(&database, &args.file, args.force, |done, all| {
        bar.set_length(all);
        bar.set_position(done);
    })
    .map_err(|err| match err {
        BackupError::TargetExists(_) => CliError::Conflict(err.to_string()),
        BackupError::NoDatabase(_) => CliError::NotFound(err.to_string()),
        _ => CliError::Other(err.to_string()),
    })?;
    bar.finish_and_clear();
    let report = BackupReport {
        database,
        file: args.file,
        pages: done.pages,
        bytes: done.bytes,
        milliseconds: u64::try_from(done.elapsed.as_millis()).unwrap_or(u64::MAX),
    };
    Output::stdout(global.output, global.no_color).one(&report)
}

fn copy(global: &GlobalArgs, args: CopyArgs) -> Result<(), CliError> {
    let url = match Database::parse(&args.to).map_err(CliError::Usage)? {
        Database::Postgres(url) => url,
        Database::Sqlite(_) => {
            return Err(CliError::Usage(
                "--to must be a PostgreSQL URL such as postgres://shop@db.internal/shop; \
                 to copy into an SQLite file, use shop db backup"
                    .to_owned(),
            ));
        }
    };
    let database: PathBuf = match database(args.db.as_deref(), args.config.as_deref())? {
        Database::Sqlite(path) => path,
        Database::Postgres(_) => {
            return Err(CliError::Usage(
                "the server's database is already PostgreSQL: copy it with pg_dump; \
                 shop db copy moves an SQLite database to PostgreSQL"
                    .to_owned(),
            ));
        }
    };
    // Messages and the report name the target without its password.
    let target = Database::Postgres(url.clone()).describe();
    let show = shop_cli::progress::wanted(global.quiet);
    let bar = shop_cli::progress::count(show, 0, "rows copied");
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|err| CliError::Other(format!("cannot start the async runtime: {err}")))?;
    let done = runtime
        .block_on(shop_server::copy_to_postgres(
            &database,
            &url,
            |done, all| {
                bar.set_length(all);
                bar.set_position(done);
            },
        ))
        .map_err(|err| {
            let message = format!("copying {} to {target}: {err}", database.display());
            match err {
                CopyError::NotEmpty(_) | CopyError::Mismatch { .. } => CliError::Conflict(message),
                CopyError::NoDatabase(_) => CliError::NotFound(message),
                CopyError::NotShop(_) => CliError::Usage(message),
                _ => CliError::Other(message),
            }
        })?;
    bar.finish_and_clear();
    let report = CopyReport {
        database,
        target,
        tables: done.tables.len() as u64,
        rows: done.tables.iter().map(|(_, rows)| rows).sum(),
        copied: done.tables.into_iter().collect(),
        verified: done.figures.into_iter().collect(),
        milliseconds: u64::try_from(done.elapsed.as_millis()).unwrap_or(u64::MAX),
    };
    Output::stdout(global.output, global.no_color).one(&report)
}
