//! Test databases and a server on a random port, each test with its own database.

use app::domain::AccessPolicy;
use std::sync::Arc;
use timebox_server::clock::Clock;
use timebox_server::metrics::Metrics;
use timebox_server::policy::PolicyService;
use timebox_server::services::grants::GrantService;
use timebox_server::services::{Access, AccessParts};
use timebox_server::store::{PostgresStore, SqliteStore, Store};

/// The permissive policy the integration tests run with (unless a test brings its
/// own): anyone may ask for anything in any account; the permission set decides how
/// it is approved. `ReadOnlyAccess` is approved automatically, `QuorumAccess` needs two
/// approvals, everything else one; break-glass is allowed for everything. The test
/// approvers are named.
pub const TEST_POLICY: &str = r#"
[[policy]]
name = "test-auto"
requesters = ["*"]
accounts = ["*"]
permission_sets = ["ReadOnlyAccess"]
max_duration = "12h"
approval = "auto"

[[policy]]
name = "test-quorum"
requesters = ["*"]
accounts = ["*"]
permission_sets = ["QuorumAccess"]
max_duration = "12h"
approvers = ["group:timebox-approvers", "user:arno", "user:ada", "user:bob", "user:carol", "user:dave", "user:someone-else"]
approvals_required = 2

[[policy]]
name = "test-one-approval"
requesters = ["*"]
accounts = ["*"]
permission_sets = ["*"]
max_duration = "12h"
approvers = ["group:timebox-approvers", "user:arno", "user:ada", "user:bob", "user:carol", "user:dave", "user:someone-else"]
approvals_required = 1

[[policy]]
name = "test-break-glass"
requesters = ["*"]
accounts = ["*"]
permission_sets = ["*"]
max_duration = "2h"
break_glass = true
approvers = ["group:timebox-approvers", "user:arno", "user:ada"]
"#;

/// [`TEST_POLICY`] over `store`.
pub fn test_policy(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> PolicyService {
    PolicyService::from_text(TEST_POLICY, store, clock).expect("the test policy is valid")
}

/// A grant service under [`TEST_POLICY`].
pub fn grant_service(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> GrantService {
    let policy = test_policy(store.clone(), clock.clone());
    GrantService::new(store, clock, policy)
}

/// The role-scoped handles over `grants` (default configuration; Identity Center
/// clients are built but never called), and the metrics they count refusals in.
pub async fn access_with_metrics(
    grants: GrantService,
    policy: AccessPolicy,
) -> (Access, Arc<Metrics>) {
    let config = Arc::new(timebox_server::config::Config::default());
    let metrics = Arc::new(Metrics::new());
    let identity_center = Arc::new(
        timebox_server::identity_center::sdk::SdkIdentityCenter::from_config(
            &config.aws,
            &config.identity_center,
            metrics.clone(),
        )
        .await,
    );
    let access = Access::new(AccessParts {
        grants,
        policy,
        config,
        identity_center,
        metrics: metrics.clone(),
        checkpoint_key: None,
    });
    (access, metrics)
}

/// [`access_with_metrics`] without the metrics.
pub async fn access(grants: GrantService, policy: AccessPolicy) -> Access {
    access_with_metrics(grants, policy).await.0
}

/// The PostgreSQL server tests create their databases on. There is no silent skip:
/// if it is unreachable, the PostgreSQL half of the suite fails and says why.
pub fn postgres_admin_url() -> String {
    std::env::var("TIMEBOX_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh, empty database of one backend.
pub enum TestDb {
    Sqlite {
        store: SqliteStore,
        _dir: tempfile::TempDir,
        url: String,
    },
    Postgres {
        store: PostgresStore,
        url: String,
        name: String,
    },
}

impl TestDb {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("timebox.db").display());
        let store = SqliteStore::connect(&url, 5).await.expect("sqlite store");
        TestDb::Sqlite {
            store,
            _dir: dir,
            url,
        }
    }

    pub async fn postgres() -> Self {
        let name = format!("timebox_test_{}", uuid::Uuid::new_v4().simple());
        let admin_url = postgres_admin_url();
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL at {admin_url} is needed for the postgres half of the suite \
                     (set TIMEBOX_TEST_POSTGRES_URL): {e}"
                )
            });
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .expect("create test database");
        // The admin URL names a database (`…/postgres`); the test's own replaces it.
        let (base, _) = admin_url
            .rsplit_once('/')
            .expect("TIMEBOX_TEST_POSTGRES_URL must end with /<database>");
        let url = format!("{base}/{name}");
        let store = PostgresStore::connect(&url, 5)
            .await
            .expect("postgres store");
        TestDb::Postgres { store, url, name }
    }

    pub fn store(&self) -> Arc<dyn Store> {
        match self {
            TestDb::Sqlite { store, .. } => Arc::new(store.clone()),
            TestDb::Postgres { store, .. } => Arc::new(store.clone()),
        }
    }

    pub fn url(&self) -> &str {
        match self {
            TestDb::Sqlite { url, .. } | TestDb::Postgres { url, .. } => url,
        }
    }

    /// Runs raw SQL as someone with direct database access would (tampering tests).
    pub async fn exec(&self, sql: &str) -> u64 {
        match self {
            TestDb::Sqlite { store, .. } => sqlx::query(sql)
                .execute(store.pool())
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .rows_affected(),
            TestDb::Postgres { store, .. } => sqlx::query(sql)
                .execute(store.pool())
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .rows_affected(),
        }
    }

    /// Like [`exec`](Self::exec) but returns the error text.
    pub async fn try_exec(&self, sql: &str) -> Result<u64, String> {
        match self {
            TestDb::Sqlite { store, .. } => sqlx::query(sql)
                .execute(store.pool())
                .await
                .map(|r| r.rows_affected())
                .map_err(|e| e.to_string()),
            TestDb::Postgres { store, .. } => sqlx::query(sql)
                .execute(store.pool())
                .await
                .map(|r| r.rows_affected())
                .map_err(|e| e.to_string()),
        }
    }

    /// Lets a test edit or delete audit rows, as an attacker with database access could.
    pub async fn disable_append_only_guard(&self) {
        match self {
            TestDb::Sqlite { .. } => {
                self.exec("DROP TRIGGER audit_events_no_update").await;
                self.exec("DROP TRIGGER audit_events_no_delete").await;
            }
            TestDb::Postgres { .. } => {
                self.exec("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change")
                    .await;
            }
        }
    }

    /// Drops the PostgreSQL database (and its connections). SQLite's temp dir goes
    /// away with the value.
    pub async fn drop_database(&self) {
        if let TestDb::Postgres { store, name, .. } = self {
            store.pool().close().await;
            if let Ok(mut admin) =
                <sqlx::PgConnection as sqlx::Connection>::connect(&postgres_admin_url()).await
            {
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut admin)
                    .await;
            }
        }
    }
}

/// Generates `sqlite::$name` and `postgres::$name` for each async test function
/// `$name(db: &TestDb)` in the invoking module.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::helpers::TestDb::sqlite().await;
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::helpers::TestDb::postgres().await;
                    super::$name(&db).await;
                    db.drop_database().await;
                }
            )*
        }
    };
}

/// A Timebox server on a random local port, on its own database.
pub struct TestApp {
    pub url: String,
    /// Keeps cookies (the session) and never follows redirects, so tests see each step.
    pub client: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<Result<(), timebox_server::StartError>>>,
    /// Holds the policy file the server was started with.
    _policy_dir: tempfile::TempDir,
}

/// A listener on a free local port.
pub async fn free_listener() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
}

/// A client with a cookie store that does not follow redirects.
pub fn browser_like_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

impl TestApp {
    pub async fn spawn(db: &TestDb) -> TestApp {
        Self::spawn_with(db, |_| {}, Arc::new(timebox_server::clock::SystemClock)).await
    }

    /// Binds a free port first, so `server.public_url` is the real address, then lets
    /// `configure` change the configuration.
    pub async fn spawn_with(
        db: &TestDb,
        configure: impl FnOnce(&mut timebox_server::config::Config),
        clock: Arc<dyn timebox_server::clock::Clock>,
    ) -> TestApp {
        Self::spawn_on(free_listener().await, db, configure, clock).await
    }

    /// Like [`spawn_with`](Self::spawn_with) on a listener the test bound (so it
    /// knows Timebox's address before Timebox starts).
    pub async fn spawn_on(
        listener: tokio::net::TcpListener,
        db: &TestDb,
        configure: impl FnOnce(&mut timebox_server::config::Config),
        clock: Arc<dyn timebox_server::clock::Clock>,
    ) -> TestApp {
        let addr = listener.local_addr().expect("address");
        let url = format!("http://{addr}");
        let mut config = timebox_server::config::Config::default();
        config.database.url = db.url().to_owned();
        config.database.max_connections = 4;
        config.server.bind = addr;
        config.server.public_url = url.clone();
        config.server.shutdown_grace = std::time::Duration::from_secs(5);
        config.session.secure_cookie = false;
        // The permissive test policy, from a file as in production; `configure` may
        // point policy.file elsewhere.
        let policy_dir = tempfile::tempdir().expect("temp dir");
        let policy_file = policy_dir.path().join("policy.toml");
        std::fs::write(&policy_file, TEST_POLICY).expect("write the test policy");
        config.policy.file = Some(policy_file);
        configure(&mut config);
        let services = timebox_server::Wiring::start(config, clock)
            .await
            .expect("services start");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(timebox_server::serve(services, listener, async move {
            let _ = rx.await;
        }));
        TestApp {
            url,
            client: browser_like_client(),
            shutdown: Some(tx),
            handle: Some(handle),
            _policy_dir: policy_dir,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("request")
    }

    /// Asks the server to stop and waits for it; returns how it ended.
    pub async fn stop(mut self) -> Result<(), timebox_server::StartError> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.handle.take() {
            Some(h) => h.await.expect("server task"),
            None => Ok(()),
        }
    }
}

/// The whole chain verified as `timebox audit verify` does, without checkpoints.
pub async fn chain_of(store: &dyn Store) -> timebox_server::audit::VerifyReport {
    timebox_server::audit::verify(
        store,
        &timebox_server::audit::CheckpointSource::Nothing,
        None,
    )
    .await
    .expect("the chain could be read")
}
