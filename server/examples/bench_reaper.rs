//! The reaper benchmark (not a timed test): seeds N active grants whose ends fall
//! within the same minute, with their assignments in the AWS emulator, runs the
//! reaper in real time, and prints the lag from each grant's end to its
//! `DeleteAccountAssignment` call (p50, p99, max) and the throughput.
//!
//! ```text
//! cargo run --release -p server --example bench_reaper -- \
//!     [--grants 10000] [--rate 0] [--interval-ms 250] [--concurrency 32] \
//!     [--database sqlite://…|postgres://…] [--moto-url http://127.0.0.1:5000] \
//!     [--contend 0] [--drift-history 0 --drift-passes 5] \
//!     [--identity-center emulator|at-once] [--spread-ms 60000]
//! ```
//! `--identity-center at-once` revokes against an in-process Identity Center that
//! answers `DeleteAccountAssignment` and its status at once (the emulator still serves
//! the catalog): the revocations per second are then Timebox's own ceiling, and the
//! CPU time per revocation its own cost. `--spread-ms 0` makes every grant end at the
//! same moment, so the throughput is not bounded by the arrivals.
//! `--drift-history H` measures the drift pass instead of the revocations: after
//! seeding, it times `--drift-passes` passes (`Reaper::reconcile`), adds H closed
//! grants of the same users and permission sets to the database (one SQL statement),
//! times the same passes again and prints both, their ratio, and the AWS calls and
//! grants read per pass; then it stops.
//! `--contend N` runs N clients that loop the other-paths lookup (`FindUser`,
//! `ListGroupMembershipsForMember`, `ListAccountAssignments`: what
//! `GET /api/v1/other-paths` asks Identity Center on a cache miss) as fast as they
//! can through the same paced Identity Center, for as long as the reaper runs.
//! `--rate` is the AWS call rate limit (`aws.max_calls_per_second`, 0 = none). Without
//! `--moto-url` a `moto_server` is started on a free port. See docs/benchmarks.md.

// The Leptos pages are deeply nested view types; laying them out needs more than
// the default depth.
#![recursion_limit = "256"]
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark command: a panic is its error report"
)]

use app::domain::{
    AccountId, Action, Actor, GrantDuration, GrantRequest, GrantState, Justification,
    PermissionSetName, PersonId, PortalSession,
};
use chrono::Utc;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use timebox_server::aws::{Calls, Pacer};
use timebox_server::clock::SystemClock;
use timebox_server::identity_center::sdk::{Clients, SdkIdentityCenter};
use timebox_server::identity_center::{
    Assignment, GroupInfo, IcError, IdentityCenter, IdentityError, IdentityUser, Instance,
    Operation, OperationStatus, PermissionSetInfo, UserContact, UserKey,
};
use timebox_server::metrics::Metrics;
use timebox_server::reaper::{Reaper, ReaperSettings};
use timebox_server::services::grants::GrantService;
use timebox_server::store::{GrantAws, GrantPatch};

struct Args {
    grants: usize,
    rate: u32,
    interval_ms: u64,
    concurrency: usize,
    database: Option<String>,
    moto_url: Option<String>,
    contend: usize,
    drift_history: u64,
    drift_passes: usize,
    /// Revoke against an in-process Identity Center that answers at once
    /// (`--identity-center at-once`): Timebox's own ceiling.
    at_once: bool,
    /// The grants' ends are spread evenly over this many milliseconds (0: all at once).
    spread_ms: i64,
}

fn args() -> Args {
    let mut a = Args {
        grants: 10_000,
        rate: 0,
        interval_ms: 250,
        concurrency: 32,
        database: None,
        moto_url: None,
        contend: 0,
        drift_history: 0,
        drift_passes: 5,
        at_once: false,
        spread_ms: 60_000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--grants" => a.grants = v.parse().expect("--grants N"),
            "--rate" => a.rate = v.parse().expect("--rate N"),
            "--interval-ms" => a.interval_ms = v.parse().expect("--interval-ms N"),
            "--concurrency" => a.concurrency = v.parse().expect("--concurrency N"),
            "--database" => a.database = Some(v),
            "--moto-url" => a.moto_url = Some(v),
            "--identity-center" => {
                a.at_once = match v.as_str() {
                    "emulator" => false,
                    "at-once" => true,
                    other => panic!("--identity-center emulator|at-once, not {other}"),
                }
            }
            "--spread-ms" => a.spread_ms = v.parse().expect("--spread-ms N"),
            "--contend" => a.contend = v.parse().expect("--contend N"),
            "--drift-history" => a.drift_history = v.parse().expect("--drift-history N"),
            "--drift-passes" => a.drift_passes = v.parse().expect("--drift-passes N"),
            other => panic!("unknown option {other}"),
        }
    }
    a
}

/// CPU time this process has used (user + system), from `/proc/self/stat`: the
/// reaper, the database driver and SQLite; not moto, nor a PostgreSQL server.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the name;
    // Linux counts them in 1/100 s (USER_HZ).
    (ticks(11) + ticks(12)) / 100.0
}

/// An in-process Identity Center that creates and deletes assignments at once
/// (answering `SUCCEEDED`, as moto does, with no call made); everything else goes
/// to the emulator. With it the reaper's throughput is Timebox's own ceiling.
#[derive(Debug)]
struct AtOnce {
    emulator: Arc<SdkIdentityCenter>,
    ops: std::sync::atomic::AtomicU64,
}

impl AtOnce {
    fn new(emulator: Arc<SdkIdentityCenter>) -> Self {
        Self {
            emulator,
            ops: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn done(&self) -> Operation {
        let n = self.ops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Operation {
            request_id: format!("at-once-{n}"),
            status: OperationStatus::Succeeded,
        }
    }
}

#[async_trait::async_trait]
impl IdentityCenter for AtOnce {
    async fn instance(&self) -> Result<Instance, IcError> {
        self.emulator.instance().await
    }
    async fn list_permission_sets(&self) -> Result<Vec<PermissionSetInfo>, IcError> {
        self.emulator.list_permission_sets().await
    }
    async fn describe_permission_set(&self, arn: &str) -> Result<PermissionSetInfo, IcError> {
        self.emulator.describe_permission_set(arn).await
    }
    async fn organization_tree(&self) -> Result<Vec<timebox_server::store::CatalogNode>, IcError> {
        self.emulator.organization_tree().await
    }
    async fn find_user(&self, by: &UserKey, value: &str) -> Result<IdentityUser, IdentityError> {
        self.emulator.find_user(by, value).await
    }
    async fn user_groups(&self, user_id: &str) -> Result<Vec<String>, IcError> {
        self.emulator.user_groups(user_id).await
    }
    async fn describe_group(&self, group_id: &str) -> Result<GroupInfo, IcError> {
        self.emulator.describe_group(group_id).await
    }
    async fn create_assignment(&self, _: &Assignment) -> Result<Operation, IcError> {
        Ok(self.done())
    }
    async fn creation_status(&self, _: &str) -> Result<OperationStatus, IcError> {
        Ok(OperationStatus::Succeeded)
    }
    async fn delete_assignment(&self, _: &Assignment) -> Result<Operation, IcError> {
        Ok(self.done())
    }
    async fn deletion_status(&self, _: &str) -> Result<OperationStatus, IcError> {
        Ok(OperationStatus::Succeeded)
    }
    async fn list_assignments(
        &self,
        account_id: &str,
        permission_set_arn: &str,
    ) -> Result<Vec<Assignment>, IcError> {
        self.emulator
            .list_assignments(account_id, permission_set_arn)
            .await
    }
    async fn group_members(&self, display_name: &str) -> Result<Vec<String>, IcError> {
        self.emulator.group_members(display_name).await
    }
    async fn user_contact(&self, user_id: &str) -> Result<UserContact, IcError> {
        self.emulator.user_contact(user_id).await
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    let (moto_url, _moto) = match &a.moto_url {
        Some(u) => (u.clone(), None),
        None => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = std::process::Command::new(
                std::env::var("TIMEBOX_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into()),
            )
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server (pip install 'moto[server]')");
            let url = format!("http://127.0.0.1:{port}");
            for _ in 0..200 {
                if reqwest::get(format!("{url}/moto-api/data.json"))
                    .await
                    .is_ok()
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (url, Some(KillOnDrop(child)))
        }
    };
    let db_url = a
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let store = timebox_server::store::connect(&db_url, 16)
        .await
        .expect("database");
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&moto_url)
        .credentials_provider(aws_sdk_ssoadmin::config::Credentials::new(
            "testing", "testing", None, None, "bench",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let clients = Clients {
        sso_admin: aws_sdk_ssoadmin::Client::new(&conf),
        identity_store: aws_sdk_identitystore::Client::new(&conf),
        organizations: aws_sdk_organizations::Client::new(&conf),
    };
    let metrics = Arc::new(Metrics::new());
    let ic = Arc::new(SdkIdentityCenter::new(
        clients.clone(),
        None,
        None,
        Calls::new(metrics.clone()).paced(Arc::new(Pacer::limit(Some(a.rate)))),
    ));
    let instance = ic.instance().await.expect("ListInstances");

    // The targets: 10 permission sets × 10 accounts × as many users as needed.
    eprintln!("seeding {} grants…", a.grants);
    let seed_started = Instant::now();
    let mut sets = Vec::new();
    for i in 0..10 {
        let out = clients
            .sso_admin
            .create_permission_set()
            .instance_arn(&instance.instance_arn)
            .name(format!("Bench{i}"))
            .session_duration("PT1H")
            .send()
            .await
            .unwrap();
        sets.push((
            format!("Bench{i}"),
            out.permission_set()
                .unwrap()
                .permission_set_arn()
                .unwrap()
                .to_owned(),
        ));
    }
    timebox_server::identity_center::catalog::sync(ic.as_ref(), store.as_ref(), Utc::now())
        .await
        .ok();
    let accounts: Vec<String> = (0..10)
        .map(|i| format!("{:012}", 100_000_000_000u64 + i))
        .collect();
    // Everyone may ask for anything and nobody approves: the benchmark measures the reaper.
    let policy = timebox_server::policy::PolicyService::from_text(
        "[[policy]]\nname = \"bench\"\nrequesters = [\"*\"]\naccounts = [\"*\"]\n\
         permission_sets = [\"*\"]\nmax_duration = \"12h\"\napproval = \"auto\"\n",
        store.clone(),
        Arc::new(SystemClock),
    )
    .unwrap();
    let grants = GrantService::new(store.clone(), Arc::new(SystemClock), policy);
    // Seeding runs at roughly 80 grants/s against moto: leave it time to finish.
    let ends_from = Utc::now() + chrono::Duration::milliseconds(20_000 + (a.grants as i64) * 15);
    let plan: Vec<(usize, String, String, String, String)> = (0..a.grants)
        .map(|n| {
            let (ps, arn) = sets[n % 10].clone();
            let account = accounts[(n / 10) % 10].clone();
            let user = format!("bench-user-{}", n / 100);
            (n, user, account, ps, arn)
        })
        .collect();
    let seeded: Vec<()> =
        futures_util::stream::iter(plan.into_iter().map(|(n, user, account, ps, arn)| {
            let grants = grants.clone();
            let sso = clients.sso_admin.clone();
            let instance_arn = instance.instance_arn.clone();
            let (at_once, spread_ms) = (a.at_once, a.spread_ms);
            async move {
                let principal = format!("principal-{user}");
                // In-process, the assignment exists only in the adapter's answers.
                if !at_once {
                    sso.create_account_assignment()
                        .instance_arn(&instance_arn)
                        .target_id(&account)
                        .target_type(aws_sdk_ssoadmin::types::TargetType::AwsAccount)
                        .permission_set_arn(&arn)
                        .principal_type(aws_sdk_ssoadmin::types::PrincipalType::User)
                        .principal_id(&principal)
                        .send()
                        .await
                        .unwrap();
                }
                let g = grants
                    .request(
                        GrantRequest {
                            requester: PersonId::parse(&user).unwrap(),
                            account_id: AccountId::parse(&account).unwrap(),
                            permission_set: PermissionSetName::parse(&ps).unwrap(),
                            justification: Justification::parse("benchmark of the reaper").unwrap(),
                            ticket: None,
                            duration: GrantDuration::from_minutes(60, None).unwrap(),
                            requested_start: None,
                            approvals_required: 0,
                            extends: None,
                        },
                        &[],
                    )
                    .await
                    .unwrap();
                let j = serde_json::json!({});
                grants
                    .act(
                        g.id,
                        Action::StartProvisioning,
                        &Actor::System,
                        None,
                        GrantPatch::default(),
                        j.clone(),
                    )
                    .await
                    .unwrap();
                grants
                    .store()
                    .save_grant_aws(
                        g.id,
                        &GrantAws {
                            principal_id: Some(principal),
                            permission_set_arn: Some(arn),
                            create_request_id: Some("seeded".into()),
                            ..GrantAws::default()
                        },
                    )
                    .await
                    .unwrap();
                // Ends spread evenly over `--spread-ms` (one minute by default).
                let end = ends_from
                    + chrono::Duration::milliseconds((n as i64 * spread_ms) / a.grants as i64);
                grants
                    .act(
                        g.id,
                        Action::ProvisionSucceeded,
                        &Actor::System,
                        None,
                        GrantPatch {
                            activated_at: Some(end - chrono::Duration::hours(1)),
                            ends_at: Some(end),
                            permission_set_session_seconds: Some(3600),
                            portal_session_seconds: Some(8 * 3600),
                            ..GrantPatch::default()
                        },
                        j,
                    )
                    .await
                    .unwrap();
            }
        }))
        .buffer_unordered(16)
        .collect()
        .await;
    eprintln!(
        "seeded {} grants in {:.1}s; ends fall in [{ends_from}, +60s)",
        seeded.len(),
        seed_started.elapsed().as_secs_f64()
    );
    if Utc::now() >= ends_from {
        eprintln!("warning: seeding overran the first end; lags of the first grants include it");
    }

    let reaper_ic: Arc<dyn IdentityCenter> = if a.at_once {
        Arc::new(AtOnce::new(ic.clone()))
    } else {
        ic.clone()
    };
    let reaper = Arc::new(Reaper::new(
        grants.clone(),
        reaper_ic,
        Arc::new(SystemClock),
        metrics.clone(),
        ReaperSettings {
            interval: Duration::from_millis(a.interval_ms),
            lease: Duration::from_secs(30),
            batch: 5000,
            concurrency: a.concurrency,
            poll_initial: Duration::from_millis(50),
            poll_max: Duration::from_secs(1),
            poll_budget: Duration::from_secs(5),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(30),
            provision_attempts: 5,
            portal_session: PortalSession::DEFAULT,
            user_match: UserKey::UserName,
            catalog_refresh: Duration::from_secs(3600),
            reconcile_every: 0,
            max_in_flight: timebox_server::reaper::AWS_MAX_IN_FLIGHT,
        },
    ));
    if a.drift_history > 0 {
        drift(
            &reaper,
            &store,
            &metrics,
            &db_url,
            a.drift_history,
            a.drift_passes,
            &sets[0].1,
        )
        .await;
        return;
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // Clients looping the other-paths lookup through the same paced Identity Center.
    let lookups = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut clients_running = Vec::new();
    for c in 0..a.contend {
        let (ic, stopped, lookups) = (ic.clone(), stop.subscribe(), lookups.clone());
        let (account, arn) = (accounts[c % 10].clone(), sets[c % 10].1.clone());
        clients_running.push(tokio::spawn(async move {
            while !*stopped.borrow() {
                let _ = ic.find_user(&UserKey::UserName, "bench-user-0").await;
                let _ = ic.user_groups("principal-bench-user-0").await;
                let _ = ic.list_assignments(&account, &arn).await;
                lookups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    // The server's loop (Reaper::run): a task per due target, passes every interval.
    let task = tokio::spawn(reaper.clone().run(stopped));
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let counts = store.grant_counts().await.unwrap();
        let revoked = counts
            .iter()
            .find(|(s, _)| *s == GrantState::Revoked)
            .map_or(0, |c| c.1);
        if revoked as usize >= a.grants || started.elapsed() > Duration::from_secs(900) {
            break;
        }
    }
    let cpu = cpu_seconds() - cpu_before;
    let _ = stop.send(true);
    let _ = task.await;
    for c in clients_running {
        let _ = c.await;
    }

    // Lag: from each grant's end to the moment its DeleteAccountAssignment was sent.
    let mut lags = Vec::new();
    let mut first_delete = None;
    let mut last_delete = None;
    let mut after = None;
    loop {
        let page = store
            .list_grants(&Default::default(), after, 1000)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(timebox_server::store::Cursor {
            created_at: last.created_at,
            id: last.id,
        });
        for g in &page {
            let w = store.grant_aws(g.id).await.unwrap().unwrap();
            if let (Some(end), Some(sent)) = (g.ends_at, w.delete_started_at) {
                lags.push((sent - end).num_microseconds().unwrap_or(0) as f64 / 1e6);
                first_delete =
                    Some(first_delete.map_or(sent, |f: chrono::DateTime<Utc>| f.min(sent)));
                last_delete =
                    Some(last_delete.map_or(sent, |l: chrono::DateTime<Utc>| l.max(sent)));
            }
        }
    }
    lags.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let span = match (first_delete, last_delete) {
        (Some(f), Some(l)) => (l - f).num_milliseconds() as f64 / 1000.0,
        _ => f64::NAN,
    };
    let aws_calls: u64 = ["DeleteAccountAssignment"]
        .iter()
        .map(|op| {
            metrics
                .aws_call_seconds
                .with_label_values(&[op])
                .get_sample_count()
        })
        .sum();
    println!(
        "grants: {}  revoked: {}  deletes sent: {aws_calls}",
        a.grants,
        lags.len()
    );
    println!(
        "reaper interval: {} ms  concurrency: {}  AWS rate limit: {}",
        a.interval_ms,
        a.concurrency,
        if a.rate == 0 {
            "none".to_owned()
        } else {
            format!("{}/s", a.rate)
        }
    );
    println!(
        "contending clients: {}  other-paths lookups they made: {}",
        a.contend,
        lookups.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "lag end → DeleteAccountAssignment: p50 {:.3}s  p99 {:.3}s  max {:.3}s",
        percentile(&lags, 50.0),
        percentile(&lags, 99.0),
        lags.last().copied().unwrap_or(f64::NAN)
    );
    for op in [
        "DeleteAccountAssignment",
        "DescribeAccountAssignmentDeletionStatus",
    ] {
        let h = metrics.aws_call_seconds.with_label_values(&[op]);
        println!(
            "{op}: {} calls, mean {:.1} ms",
            h.get_sample_count(),
            1000.0 * h.get_sample_sum() / (h.get_sample_count().max(1) as f64)
        );
    }
    // The ends arrive evenly over one minute, so this is the arrival rate the reaper
    // kept up with (lags stay flat) or fell behind (lags grow towards the end).
    println!(
        "throughput: {:.0} revocations/s (first to last delete over {span:.1}s)",
        lags.len() as f64 / span.max(0.001)
    );
    println!(
        "Identity Center: {}",
        if a.at_once {
            "in-process, answering at once (Timebox's own ceiling; no call counted above)"
        } else {
            "the emulator"
        }
    );
    println!(
        "CPU time of this process while revoking: {cpu:.2} s, {:.3} ms per revocation \
         (the reaper, sqlx and SQLite; not the emulator, nor a PostgreSQL server)",
        1000.0 * cpu / lags.len().max(1) as f64
    );
}

/// Identity Center calls made so far (every operation).
fn aws_calls(metrics: &Metrics) -> u64 {
    [
        "ListAccountAssignments",
        "ListPermissionSets",
        "DescribePermissionSet",
        "ListInstances",
        "GetUserId",
    ]
    .iter()
    .map(|op| {
        metrics
            .aws_call_seconds
            .with_label_values(&[op])
            .get_sample_count()
    })
    .sum()
}

/// Times `passes` drift passes (milliseconds, sorted) and the AWS calls per pass.
async fn drift_passes(reaper: &Reaper, metrics: &Metrics, passes: usize) -> (Vec<f64>, u64) {
    let calls_before = aws_calls(metrics);
    let mut times = Vec::new();
    for _ in 0..passes {
        let t = Instant::now();
        let findings = reaper.reconcile().await.expect("drift pass");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(findings, 0, "a seeded organisation has no drift");
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let per_pass = (aws_calls(metrics) - calls_before) / passes.max(1) as u64;
    (times, per_pass)
}

/// The drift pass with no history, then with `history` closed grants added.
async fn drift(
    reaper: &Reaper,
    store: &Arc<dyn timebox_server::store::Store>,
    metrics: &Metrics,
    db_url: &str,
    history: u64,
    passes: usize,
    arn: &str,
) {
    let (bare, calls) = drift_passes(reaper, metrics, passes).await;
    eprintln!("adding {history} closed grants…");
    let t = Instant::now();
    // Closed grants of the benchmark's users on the first permission set, each with the
    // AWS row a revoked grant keeps (what `grant_that_made` would search).
    let at = Utc::now() - chrono::Duration::days(30);
    let (id, user) = if db_url.starts_with("postgres") {
        (
            "'00000000-0000-4000-8000-' || lpad(i::text, 12, '0')",
            "'bench-user-' || (i % 10)::text",
        )
    } else {
        (
            "printf('00000000-0000-4000-8000-%012d', i)",
            "'bench-user-' || (i % 10)",
        )
    };
    let grants = format!(
        "INSERT INTO grants (id, requester, account_id, permission_set, justification, \
         duration_minutes, approvals_required, state, created_at, updated_at, activated_at, \
         ends_at, revoked_at, version) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2) \
         SELECT {id}, {user}, '100000000000', 'Bench0', 'history', 60, 0, 'revoked', \
         $1, $1, $1, $1, $1, 3 FROM n"
    );
    let aws = format!(
        "INSERT INTO grant_aws (grant_id, principal_id, permission_set_arn, create_request_id, \
         delete_request_id) \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
         SELECT {id}, 'principal-' || {user}, $2, 'seeded', 'seeded' FROM n"
    );
    let history = i64::try_from(history).unwrap();
    // The same statements on either backend (SQLite binds the time as its text).
    macro_rules! add {
        ($pool:ty, $at:expr) => {{
            let pool = <$pool>::connect(db_url).await.unwrap();
            sqlx::query(&grants)
                .bind($at)
                .bind(history)
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query(&aws)
                .bind(history)
                .bind(arn)
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query("ANALYZE").execute(&pool).await.unwrap();
        }};
    }
    if db_url.starts_with("postgres") {
        add!(sqlx::PgPool, at);
    } else {
        add!(
            sqlx::SqlitePool,
            at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        );
    }
    eprintln!("added in {:.1}s", t.elapsed().as_secs_f64());
    let (full, calls_full) = drift_passes(reaper, metrics, passes).await;
    let live = reaper_live(db_url).await;
    // What the first version of the pass read every time: every grant ever made.
    let t = Instant::now();
    let every = store
        .grant_aws_in_states(&GrantState::ALL)
        .await
        .unwrap()
        .len();
    let read_all = t.elapsed().as_secs_f64() * 1000.0;
    println!("drift pass, {live} live grants, {passes} passes each:");
    println!(
        "  no history:            p50 {:.1} ms  max {:.1} ms  AWS calls/pass {calls}",
        percentile(&bare, 50.0),
        bare.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "  + {history} closed grants: p50 {:.1} ms  max {:.1} ms  AWS calls/pass {calls_full}",
        percentile(&full, 50.0),
        full.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "  ratio (with history / without): p50 {:.2}",
        percentile(&full, 50.0) / percentile(&bare, 50.0)
    );
    println!(
        "  reading every grant ({every}), as the first version of the pass did: {read_all:.1} ms"
    );
}

/// The grants a drift pass reads (provisioning, active, revoking).
async fn reaper_live(db_url: &str) -> i64 {
    let q = "SELECT COUNT(*) FROM grants WHERE state IN ('provisioning', 'active', 'revoking')";
    if db_url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(db_url).await.unwrap();
        return sqlx::query_scalar(q).fetch_one(&pool).await.unwrap();
    }
    let pool = sqlx::SqlitePool::connect(db_url).await.unwrap();
    sqlx::query_scalar(q).fetch_one(&pool).await.unwrap()
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
