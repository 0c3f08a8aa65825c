//! The browser session: tower-sessions with its records in Timebox's own database
//! (SQLite or PostgreSQL, whichever `database.url` names), so a restart keeps people
//! signed in and several replicas share sessions. The cookie carries only a random
//! session id: there is no signing key to generate or lose.
//!
//! A session holds at most a [`PendingLogin`] (between `/auth/login` and the
//! callback, taken out once) and then a [`SignedIn`] person.

use super::AuthStartError;
use crate::clock::Clock;
use crate::config::{DatabaseConfig, SessionConfig};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tower_sessions::cookie::{time, SameSite};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

/// Session key of the sign-in in progress.
pub const LOGIN_KEY: &str = "timebox.login";
/// Session key of the signed-in person.
pub const PERSON_KEY: &str = "timebox.person";
/// The session cookie's name.
pub const COOKIE_NAME: &str = "timebox_session";

/// A sign-in between the redirect to the provider and its callback. Single use: the
/// callback removes it before looking at anything else.
#[derive(Clone, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub started_at: DateTime<Utc>,
    /// A local path to return to after signing in.
    pub return_to: String,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("started_at", &self.started_at)
            .field("return_to", &self.return_to)
            .finish_non_exhaustive()
    }
}

/// The signed-in person, as the verified ID token described them. Roles are not
/// stored: they are mapped from `groups` on every request, so a configuration change
/// applies at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedIn {
    /// The person id: the `oidc.person_claim` claim (default `sub`).
    pub subject: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub signed_in_at: DateTime<Utc>,
    /// When the provider last authenticated the person (`auth_time`), which MFA's
    /// age counts from; `None` when the provider did not say (then `signed_in_at`).
    #[serde(default)]
    pub auth_time: Option<DateTime<Utc>>,
    /// The provider's refresh token, to re-check the person's groups every
    /// `session.refresh` without a sign-in. Kept only in the session's row, deleted
    /// with it; never logged.
    #[serde(default)]
    pub refresh_token: Option<RefreshSecret>,
    /// When the provider last confirmed the groups (`None`: at `signed_in_at`).
    #[serde(default)]
    pub checked_at: Option<DateTime<Utc>>,
}

impl SignedIn {
    /// When the provider last confirmed this person: the last group re-check, else
    /// the sign-in.
    pub fn confirmed_at(&self) -> DateTime<Utc> {
        self.checked_at.unwrap_or(self.signed_in_at)
    }
}

/// A refresh token: its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RefreshSecret(pub String);

impl std::fmt::Debug for RefreshSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RefreshSecret(…)")
    }
}

/// The session store on whichever database Timebox uses.
///
/// Saving only updates a session that still exists (the crate's stores upsert): a
/// request still in flight when its session was ended (logout, timeout) cannot write
/// it back, so a cookie never works again after its session ended. New sessions are
/// made only by `create`, at sign-in.
#[derive(Debug, Clone)]
pub struct DbSessionStore {
    backend: Backend,
    clock: Arc<dyn Clock>,
    /// `session.refresh`: a saved person confirmed more recently than this cannot
    /// have been re-checked by another request meanwhile.
    refresh: chrono::TimeDelta,
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqliteStore, sqlx::SqlitePool),
    Postgres(PostgresStore, sqlx::PgPool),
}

impl DbSessionStore {
    /// Opens a small pool of its own on the configured database and creates the
    /// session table if needed; `session.refresh` and `clock` tell a save when a
    /// re-check may have happened under it.
    pub async fn connect(
        database: &DatabaseConfig,
        session: &SessionConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthStartError> {
        let url = database.connect_url();
        let err = |source| AuthStartError::SessionStore {
            url: database.redacted_url(),
            source,
        };
        let store = if database.is_sqlite() {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url.expose())
                .map_err(err)?
                .create_if_missing(true)
                .busy_timeout(Duration::from_secs(5));
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(2)
                .connect_with(options)
                .await
                .map_err(err)?;
            let store = SqliteStore::new(pool.clone());
            store.migrate().await.map_err(err)?;
            Backend::Sqlite(store, pool)
        } else {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(4)
                .connect(url.expose())
                .await
                .map_err(err)?;
            let store = PostgresStore::new(pool.clone());
            store.migrate().await.map_err(err)?;
            Backend::Postgres(store, pool)
        };
        Ok(Self {
            backend: store,
            clock,
            refresh: chrono::TimeDelta::from_std(session.refresh).unwrap_or(chrono::TimeDelta::MAX),
        })
    }

    /// The session middleware: `HttpOnly`, `SameSite=Lax`, `Secure` (and so
    /// `__Host-`-prefixed: bound to this host and path `/`) unless configured off for
    /// plain-HTTP local use, expiring after `idle_timeout` without a request (the
    /// expiry is pushed back on every request). An anonymous visit writes nothing: a
    /// session is stored once it holds something (a sign-in started).
    pub fn layer(&self, config: &SessionConfig) -> SessionManagerLayer<DbSessionStore> {
        let idle = time::Duration::seconds(
            i64::try_from(config.idle_timeout.as_secs()).unwrap_or(i64::MAX),
        );
        SessionManagerLayer::new(self.clone())
            .with_name(cookie_name(config.secure_cookie))
            .with_secure(config.secure_cookie)
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_path("/")
            .with_always_save(true)
            .with_expiry(Expiry::OnInactivity(idle))
    }

    /// Purges expired sessions every `period`, until the process stops.
    pub fn spawn_purge(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                if let Err(e) = store.delete_expired().await {
                    tracing::warn!(error = %e, "could not purge expired sessions");
                }
            }
        })
    }
}

impl DbSessionStore {
    /// The backend's own store, which every [`SessionStore`] call goes to.
    fn backend(&self) -> &dyn SessionStore {
        match &self.backend {
            Backend::Sqlite(s, _) => s,
            Backend::Postgres(s, _) => s,
        }
    }

    /// The signed-in person of the stored session `id`, as the store has it now
    /// (not as a request loaded it); `None` when the session has ended (deleted,
    /// expired) or holds nobody signed in.
    pub async fn person(&self, id: &Id) -> session_store::Result<Option<SignedIn>> {
        let Some(record) = self.load(id).await? else {
            return Ok(None);
        };
        if record.expiry_date < time::OffsetDateTime::now_utc() {
            return Ok(None);
        }
        Ok(record
            .data
            .get(PERSON_KEY)
            .and_then(|v| serde_json::from_value::<SignedIn>(v.clone()).ok()))
    }

    /// `record` with the person as the store holds them now, when that is a later
    /// confirmation of the same person than the record's (a group re-check that
    /// another request of the session made while this one ran): a request that
    /// loaded the session before the re-check must not write the older copy, and its
    /// spent refresh token, back. `None`: `record` is written as it is.
    async fn with_newest_confirmation(&self, record: &Record) -> Option<Record> {
        let mine: SignedIn = serde_json::from_value(record.data.get(PERSON_KEY)?.clone()).ok()?;
        // Not due for a re-check yet: nobody can have made one, nothing to read.
        if self.clock.now() - mine.confirmed_at() < self.refresh {
            return None;
        }
        let stored = self.person(&record.id).await.ok()??;
        if stored.subject != mine.subject || stored.confirmed_at() <= mine.confirmed_at() {
            return None;
        }
        let mut kept = record.clone();
        kept.data
            .insert(PERSON_KEY.to_owned(), serde_json::to_value(&stored).ok()?);
        Some(kept)
    }

    /// Stores `person` as session `id`'s signed-in person at once (not at the end of
    /// the request), so other requests and replicas see a re-check as soon as it is
    /// made. False when the session has ended.
    pub async fn put_person(&self, id: &Id, person: &SignedIn) -> session_store::Result<bool> {
        let Some(mut record) = self.load(id).await? else {
            return Ok(false);
        };
        let value = serde_json::to_value(person)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        record.data.insert(PERSON_KEY.to_owned(), value);
        self.update(&record)
            .await
            .map_err(|e| session_store::Error::Backend(e.to_string()))
    }

    /// Writes `record` over the stored session with its id, if there still is one;
    /// whether there was.
    async fn update(&self, record: &Record) -> Result<bool, sqlx::Error> {
        let data = rmp_serde::to_vec(record).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let done = match &self.backend {
            Backend::Sqlite(_, pool) => {
                sqlx::query("UPDATE tower_sessions SET data = ?, expiry_date = ? WHERE id = ?")
                    .bind(data)
                    .bind(record.expiry_date)
                    .bind(record.id.to_string())
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
            Backend::Postgres(_, pool) => sqlx::query(
                "UPDATE \"tower_sessions\".\"session\" SET data = $1, expiry_date = $2 \
                     WHERE id = $3",
            )
            .bind(data)
            .bind(record.expiry_date)
            .bind(record.id.to_string())
            .execute(pool)
            .await?
            .rows_affected(),
        };
        Ok(done > 0)
    }
}

/// The session cookie's name: `__Host-` + [`COOKIE_NAME`] when the cookie is
/// `Secure` (browsers then refuse it unless it is host-only with path `/`).
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-timebox_session"
    } else {
        COOKIE_NAME
    }
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.backend().create(record).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let kept = self.with_newest_confirmation(record).await;
        match self.update(kept.as_ref().unwrap_or(record)).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                tracing::debug!("a request ended after its session did; not written back");
                Ok(())
            }
            Err(e) => Err(session_store::Error::Backend(e.to_string())),
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        self.backend().load(id).await
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.backend().delete(id).await
    }
}

#[async_trait]
impl ExpiredDeletion for DbSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match &self.backend {
            Backend::Sqlite(s, _) => s.delete_expired().await,
            Backend::Postgres(s, _) => s.delete_expired().await,
        }
    }
}
