//! Opening the store: URL handling, connection pool and migrations.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use tokio::sync::broadcast;

use super::JobStore;
use crate::Error;

static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");

/// SQL dialect behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

impl JobStore {
    /// Connects to `postgres://…` or `sqlite://PATH` and applies pending migrations.
    ///
    /// A SQLite file and its folder are created when missing; SQLite runs in WAL
    /// mode so readers do not block the writer.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an unsupported URL scheme, [`Error::Database`]
    /// when the database cannot be reached, [`Error::Migration`] when a migration fails.
    pub async fn connect(database_url: &str) -> Result<Self, Error> {
        sqlx::any::install_default_drivers();
        let (dialect, url) = prepare_url(database_url)?;
        let options = AnyConnectOptions::from_str(&url)?;

        let pool_options = match dialect {
            // SQLite allows one writer at a time; a few connections serve readers.
            Dialect::Sqlite => AnyPoolOptions::new().max_connections(4).after_connect(|connection, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *connection).await?;
                    Ok(())
                })
            }),
            Dialect::Postgres => AnyPoolOptions::new().max_connections(16),
        };
        let pool = pool_options.acquire_timeout(Duration::from_secs(10)).connect_with(options).await?;

        let migrator = match dialect {
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
        };
        migrator.run(&pool).await?;
        tracing::info!(dialect = ?dialect, "job store ready");

        let (appended, _) = broadcast::channel(1024);
        Ok(JobStore {
            pool,
            dialect,
            appended,
            assignments_version: std::sync::Arc::new(tokio::sync::watch::channel(0).0),
            scheduling_wanted: std::sync::Arc::default(),
        })
    }
}

/// Tells the dialect from the URL scheme and, for SQLite, asks for the file to be
/// created and creates its folder.
fn prepare_url(database_url: &str) -> Result<(Dialect, String), Error> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        return Ok((Dialect::Postgres, database_url.to_owned()));
    }
    let Some(path) = database_url.strip_prefix("sqlite://") else {
        return Err(Error::InvalidArgument(format!(
            "unsupported database URL scheme in `{}`; use postgres://… or sqlite://PATH",
            redact_url(database_url)
        )));
    };

    let file = path.split('?').next().unwrap_or_default();
    if let Some(parent) = std::path::Path::new(file).parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|error| {
            Error::InvalidArgument(format!("cannot create the database folder `{}`: {error}", parent.display()))
        })?;
    }
    let url = if path.contains("mode=") {
        database_url.to_owned()
    } else if path.contains('?') {
        format!("{database_url}&mode=rwc")
    } else {
        format!("{database_url}?mode=rwc")
    };
    Ok((Dialect::Sqlite, url))
}

/// Hides the password of a URL such as `postgres://user:secret@host/db`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((credentials, host)) = rest.split_once('@') else { return url.to_owned() };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_url_gets_create_mode() {
        let (dialect, url) = prepare_url("sqlite:///tmp/ssl-test-url/jobs.db").unwrap();
        assert_eq!(dialect, Dialect::Sqlite);
        assert_eq!(url, "sqlite:///tmp/ssl-test-url/jobs.db?mode=rwc");
    }

    #[test]
    fn unknown_scheme_rejected() {
        let error = prepare_url("mysql://root:hunter2@127.0.0.1/db").unwrap_err().to_string();
        assert!(error.contains("mysql://root:***@127.0.0.1/db"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}
