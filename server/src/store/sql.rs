//! The two backends: their pools, how each is opened and migrated, and the little
//! that differs between their dialects ([`Dialect`]). Every statement is written once,
//! in the repository's own file, and expanded for both stores by that file's macro
//! (placeholders are `$n`, which both accept; times bind as `DateTime<Utc>`, which
//! SQLite stores as RFC 3339 text and PostgreSQL as `timestamptz`).

use super::search::Backend;
use super::StoreError;
use chrono::{DateTime, SubsecRound, Utc};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

/// The SQLite store: a file, created and migrated at first start.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
}

impl SqliteStore {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            // WAL lets readers proceed while the reaper writes; writers queue on the
            // busy timeout instead of failing at once.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(options)
            .await?;
        sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Opens an existing database as it is: not created, not migrated (for
    /// `timebox audit verify` on a copy, which must not change what it checks).
    pub async fn open_existing(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(false)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    /// The pool, for tests that inspect or tamper with rows directly.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// A transaction that writes: `BEGIN IMMEDIATE`, which takes the write lock
    /// first (waiting out the busy timeout). A deferred one that reads and then
    /// writes fails at once with "database is locked" when another connection has
    /// committed since its read, whatever the timeout: concurrent requests did.
    pub(super) async fn write_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }
}

/// The PostgreSQL store, for several replicas sharing one database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(super) pool: PgPool,
}

impl PostgresStore {
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        // The migrator takes an advisory lock, so replicas starting together are safe.
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Opens the database as it is, not migrated (see [`SqliteStore::open_existing`]).
    pub async fn open_existing(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(Self { pool })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A transaction that writes (row locks and conditional updates serialise them).
    pub(super) async fn write_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin().await
    }
}

/// What differs between the backends' SQL.
pub(super) trait Dialect {
    /// Appended to the outbox claim's subquery.
    const CLAIM_LOCK: &'static str;
    /// Whose full-text index the history's word search asks (`store::search`).
    const SEARCH: Backend;
}

impl Dialect for SqliteStore {
    // SQLite has one writer at a time: the UPDATE is atomic as it stands.
    const CLAIM_LOCK: &'static str = "";
    const SEARCH: Backend = Backend::Sqlite;
}

impl Dialect for PostgresStore {
    const CLAIM_LOCK: &'static str = " FOR UPDATE SKIP LOCKED";
    const SEARCH: Backend = Backend::Postgres;
}

/// Times are stored to the microsecond, as PostgreSQL keeps them.
pub(super) fn micros(t: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    t.map(|t| t.trunc_subsecs(6))
}

/// `a, b` → `t.a, t.b`, for a column list in a join.
pub(super) fn qualified(table: &str, columns: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("{table}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

pub(super) fn parse_uuid(what: &str, s: &str) -> Result<uuid::Uuid, StoreError> {
    uuid::Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("{what} {s:?}: {e}")))
}
