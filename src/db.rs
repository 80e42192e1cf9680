//! `shop db`: commands on the database file itself, run beside it (see
//! `shop_cli::commands::db` for why not through the server).

use shop_cli::commands::db::{BackupArgs, BackupReport, DbCommand};
use shop_cli::output::Output;
use shop_cli::{CliError, GlobalArgs};
use shop_server::config::Database;
use shop_server::{BackupError, Config};

pub fn run(global: &GlobalArgs, command: DbCommand) -> Result<(), CliError> {
    match command {
        DbCommand::Backup(args) => backup(global, args),
    }
}

/// The database `shop serve` would open with the same flags, environment and config file.
fn database(args: &BackupArgs) -> Result<std::path::PathBuf, CliError> {
    let file = args.config.clone().or_else(Config::default_file);
    let mut config = match &file {
        Some(path) => Config::from_file(path).map_err(|err| CliError::Usage(err.to_string()))?,
        None => Config::default(),
    };
    if args.db.is_some() {
        config.db.clone_from(&args.db);
        config.database_url = None;
    }
    match config
        .database()
        .map_err(|err| CliError::Usage(err.to_string()))?
    {
        Database::Sqlite(path) => Ok(path),
        Database::Postgres(_) => Err(CliError::Usage(
            "the server's database is PostgreSQL: back it up with pg_dump; \
             shop db backup copies an SQLite file"
                .to_owned(),
        )),
    }
}

fn backup(global: &GlobalArgs, args: BackupArgs) -> Result<(), CliError> {
    let database = database(&args)?;
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
