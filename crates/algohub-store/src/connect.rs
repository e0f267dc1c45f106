//! Opening a store from a URL: the backend is picked from the scheme, the pool is
//! configured per dialect, and the embedded migrations are run on request.
//!
//! Design choice: SQLite settings (WAL, foreign keys, busy timeout, synchronous)
//! are applied per connection in `after_connect`, because the `Any` driver builds
//! SQLite options from the URL alone and the URL cannot carry pragmas.

use crate::SqlStore;
use crate::db::db_err;
use algohub_core::store::{StoreError, StoreResult};
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use std::sync::Arc;
use std::time::Duration;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The SQL dialect behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Picks the dialect from a database URL's scheme.
    pub fn from_url(url: &str) -> StoreResult<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::Other(format!(
                "unsupported database URL {:?}: use sqlite:PATH or postgres://...",
                redact(url)
            )))
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    /// The embedded migrations for this dialect.
    pub fn migrator(self) -> &'static Migrator {
        match self {
            Self::Sqlite => &SQLITE_MIGRATIONS,
            Self::Postgres => &POSTGRES_MIGRATIONS,
        }
    }
}

/// Connects to `sqlite:PATH` (the file and its directory are created when
/// missing; `sqlite::memory:` gives a private in-memory database) or
/// `postgres://...` / `postgresql://...`. Does not run migrations: call
/// [`SqlStore::migrate`].
pub async fn connect(url: &str) -> Result<Arc<SqlStore>, StoreError> {
    sqlx::any::install_default_drivers();
    let dialect = Dialect::from_url(url)?;
    let mut sqlite_file = None;
    let pool = match dialect {
        Dialect::Sqlite => {
            let (normalized, in_memory) = sqlite_url(url)?;
            if !in_memory {
                sqlite_file = normalized
                    .strip_prefix("sqlite:")
                    .and_then(|rest| rest.split('?').next())
                    .map(std::path::PathBuf::from);
            }
            connect_sqlite(url).await?
        }
        Dialect::Postgres => AnyPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(30))
            .connect(url)
            .await
            .map_err(db_err)?,
    };
    Ok(Arc::new(SqlStore {
        pool,
        dialect,
        write_lock: tokio::sync::Mutex::new(()),
        max_orgs_per_user: std::sync::atomic::AtomicU32::new(0),
        sqlite_file,
        usage_conn: Default::default(),
        durable_usage: Default::default(),
    }))
}

const SQLITE_PRAGMAS: [&str; 4] = [
    // First, so the others wait for a lock instead of failing.
    "PRAGMA busy_timeout = 5000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = NORMAL",
];

async fn connect_sqlite(url: &str) -> StoreResult<sqlx::AnyPool> {
    let (url, in_memory) = sqlite_url(url)?;
    let options = AnyPoolOptions::new().after_connect(|conn, _meta| {
        Box::pin(async move {
            for pragma in SQLITE_PRAGMAS {
                sqlx::query(pragma).execute(&mut *conn).await?;
            }
            Ok(())
        })
    });
    // An in-memory database lives as long as its one connection: keep exactly one.
    let options = if in_memory {
        options
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
    } else {
        options.max_connections(8)
    };
    options
        .acquire_timeout(Duration::from_secs(30))
        .connect(&url)
        .await
        .map_err(db_err)
}

/// Normalizes a SQLite URL to `sqlite:PATH?mode=rwc...`, creating the parent
/// directory of a file database. Returns the URL and whether it is in memory.
fn sqlite_url(url: &str) -> StoreResult<(String, bool)> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, params) = match rest.split_once('?') {
        Some((p, q)) => (p, q),
        None => (rest, ""),
    };
    let in_memory =
        path.is_empty() || path == ":memory:" || params.split('&').any(|p| p == "mode=memory");
    if in_memory {
        return Ok((url.to_string(), true));
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            StoreError::Other(format!("cannot create directory {}: {e}", parent.display()))
        })?;
    }
    let mut params: Vec<&str> = params.split('&').filter(|p| !p.is_empty()).collect();
    if !params.iter().any(|p| p.starts_with("mode=")) {
        params.push("mode=rwc");
    }
    Ok((format!("sqlite:{path}?{}", params.join("&")), false))
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl SqlStore {
    /// Runs the embedded migrations for this dialect (idempotent).
    pub async fn migrate(&self) -> StoreResult<()> {
        self.dialect
            .migrator()
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Other(format!("migration failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_are_normalized() {
        let dir = std::env::temp_dir().join(format!("algohub-url-{}", uuid::Uuid::new_v4()));
        let file = dir.join("sub").join("db.sqlite");
        let url = format!("sqlite://{}", file.display());
        let (normalized, mem) = sqlite_url(&url).unwrap_or_else(|e| panic!("{e}"));
        assert!(!mem);
        assert_eq!(normalized, format!("sqlite:{}?mode=rwc", file.display()));
        assert!(file.parent().is_some_and(|p| p.is_dir()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(sqlite_url("sqlite::memory:").is_ok_and(|(_, mem)| mem));
        assert!(sqlite_url("sqlite:x.db?mode=ro").is_ok_and(|(u, _)| u == "sqlite:x.db?mode=ro"));
    }

    #[test]
    fn dialects_and_redaction() {
        assert_eq!(
            Dialect::from_url("postgresql://h/db").ok(),
            Some(Dialect::Postgres)
        );
        assert_eq!(Dialect::from_url("sqlite:x.db").ok(), Some(Dialect::Sqlite));
        assert!(Dialect::from_url("mysql://h/db").is_err());
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
    }
}
