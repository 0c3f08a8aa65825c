//! Storage: one small repository trait per aggregate, two backends (SQLite by
//! default, PostgreSQL for several replicas), one SQL text for both and one test suite.
//!
//! Each aggregate's file holds its trait, its rows and its SQL (expanded for both
//! backends by that file's `impl_*!` macro; `sql.rs` holds the pools and what differs
//! between the dialects): `grants.rs` (grants and their lifecycle), `approvals.rs`,
//! `audit.rs` (the hash-chained log and its one verifier), `checkpoints.rs` (its
//! signed checkpoints and where each was published), `catalog.rs`, `reaper.rs`
//! (the reaper's queue and AWS rows), `leases.rs`, `outbox.rs` (notifications and
//! deliveries), `evidence.rs` (activity and grant evidence), `people.rs` (display
//! names of the people who signed in), `sessions.rs` (closing revoked grants'
//! sessions: the denies that stand and the policies carrying them),
//! `verifications.rs` (whole-chain verifications asked for on demand), `projection.rs`
//! (the grant row checked against its events; no SQL), `health.rs`.
//! [`Store`] is all of them: callers take `Arc<dyn Store>` (a trait object reaches
//! its supertraits' methods without imports); code holding a concrete store
//! (`SqliteStore`, in tests) uses `crate::store::prelude::*`.
//!
//! Rules:
//! - every multi-row change is one transaction;
//! - a state change is a conditional update on the grant's `version`, so two replicas
//!   (or a retry after a crash) cannot both apply it: the loser gets
//!   [`StoreError::Conflict`] and re-reads;
//! - every lifecycle change appends one event to the hash-chained audit log in the
//!   same transaction;
//! - values leave the store typed (states, kinds, decisions, JSON columns): a stored
//!   text that no longer parses is [`StoreError::Corrupt`].

pub mod approvals;
pub mod audit;
pub mod catalog;
pub mod checkpoints;
pub mod evidence;
pub mod grants;
pub mod health;
pub mod leases;
pub mod outbox;
pub mod people;
pub mod projection;
pub mod reaper;
pub mod search;
pub mod sessions;
mod sql;
pub mod verifications;

use app::domain::GrantId;
use std::sync::Arc;

pub use app::domain::{CatalogNode, CatalogPermissionSet, Decision, NodeKind};
pub use approvals::{Approval, Approvals};
pub use audit::{AuditEvent, AuditFilter, AuditLog, BrokenLink, ChainVerification, NewAuditEvent};
pub use catalog::Catalog;
pub use checkpoints::{AuditCheckpoints, Publication, StoredCheckpoint};
pub use evidence::{ActivityCursor, Evidence, GrantEvidence};
pub use grants::{Change, Cursor, GrantFilter, GrantPatch, Grants, PolicyStamp, Review};
pub use health::Health;
pub use leases::TargetLeases;
pub use outbox::{
    Delivery, DeliveryState, DeliveryStatus, NewDelivery, NewNotification, NotificationEventRecord,
    Outbox, OutboxStats,
};
pub use people::People;
pub use reaper::{GrantAws, ReaperQueue};
pub use search::SearchWords;
pub use sessions::{DenyRow, PolicyKind, SessionCloses, SessionsOutcome, StoredPolicy};
pub use sql::{PostgresStore, SqliteStore};
pub use verifications::{
    AuditVerifications, StoredVerification, VerificationProgress, VerificationResult,
};

/// Errors from storage. Database details are logged where they happen and never
/// shown to a user; the API maps these to status codes.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the grant changed since it was read (expected version {expected})")]
    Conflict { expected: i64 },
    #[error("no grant {0}")]
    NotFound(GrantId),
    #[error("{0} has already decided this request")]
    DuplicateDecision(String),
    #[error("a stored row is not valid: {0}")]
    Corrupt(String),
    #[error("the database URL {0:?} is neither sqlite: nor postgres://")]
    UnsupportedUrl(String),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    // --- policy (issue 7) ---
    #[error("the requester already has {active} live grants under this policy")]
    CapReached { active: i64 },
    #[error("grant {0} owes no review (it is not break-glass, or it was reviewed already)")]
    NoReviewOwed(GrantId),
    #[error("a verification of the audit chain is already queued or running ({0})")]
    VerificationOpen(String),
}

/// Declares [`Store`] over the repositories, with its blanket implementation (one
/// list, so a new repository is added in one place).
macro_rules! store_of {
    ($($repo:ident),+) => {
        /// The whole store: every repository. Implemented for anything that implements
        /// them all.
        pub trait Store: $($repo +)+ Send + Sync + std::fmt::Debug + 'static {}

        impl<T> Store for T where T: $($repo +)+ Send + Sync + std::fmt::Debug + 'static {}
    };
}

store_of!(
    Health,
    Grants,
    Approvals,
    AuditLog,
    AuditCheckpoints,
    Catalog,
    ReaperQueue,
    TargetLeases,
    Outbox,
    Evidence,
    People,
    SessionCloses,
    AuditVerifications
);

/// The repository traits, for calling their methods on a concrete store.
pub mod prelude {
    pub use super::{
        Approvals, AuditCheckpoints, AuditLog, AuditVerifications, Catalog, Evidence, Grants,
        Health, Outbox, People, ReaperQueue, SessionCloses, Store, StoreError, TargetLeases,
    };
}

/// Opens the store named by `url`, creating (SQLite) and migrating it.
pub async fn connect(url: &str, max_connections: u32) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, max_connections).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            PostgresStore::connect(url, max_connections).await?,
        ))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// Opens the existing database named by `url` without creating or migrating it.
pub async fn open_existing(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open_existing(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::open_existing(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let creds = &url[scheme_end + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}://{user}:***{}", &url[..scheme_end], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact_url("postgres://u:pw@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(super::redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
