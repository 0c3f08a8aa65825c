//! The load benchmark (not a timed test): the server, as its binary runs it, in a
//! process of its own over a database of a million grants and ten million audit
//! events, driven over HTTP at a fixed rate (200 requests per second by default) by
//! an open-loop load generator in this process, with people signed in through the
//! real OpenID provider (`end2end/oidc`, as the tests use it). Per target it prints
//! p50/p99/max latency, the throughput reached, errors, and the server's resident
//! memory, next to the same figures for `GET /healthz` at the same rate: the floor of
//! the HTTP stack on this machine, in the same run.
//!
//! ```text
//! cargo build --profile server-release -p server --example bench_http
//! target/server-release/examples/bench_http [--grants 1000000] [--events-per-grant 10] \
//!     [--database sqlite://…|postgres://… (empty: migrated and filled)] [--seed false] \
//!     [--rate 200] [--seconds 15] [--rounds 2] [--only history|grants|inbox]
//! ```
//! Without `--database`, a SQLite file in a temporary directory is used. `--seed false`
//! measures a database an earlier run filled. Needs Node.js and `npm ci` in
//! end2end/oidc (`.ci/setup` does it). See docs/benchmarks.md.
//!
//! Open loop: request *i* is due at `start + i / rate` and its latency counts from
//! then, so a server that falls behind shows it in the latency instead of slowing the
//! generator down (no coordinated omission). The targets take turns, round by round.

#![recursion_limit = "256"]
#![expect(
    clippy::expect_used,
    reason = "a benchmark command: a panic is its error report"
)]

#[macro_use]
#[path = "support/seed.rs"]
mod seed;
use seed::*;

/// What the provider driver (shared with the tests) needs of the tests' helpers.
mod helpers {
    /// A client with a cookie store that does not follow redirects.
    pub fn browser_like_client() -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }
}

#[expect(
    dead_code,
    reason = "the tests' provider driver; the benchmark only signs people in"
)]
#[path = "../tests/api/provider.rs"]
mod provider;

use chrono::{Duration as ChronoDuration, Utc};
use std::process::Stdio;
use std::time::{Duration, Instant};
use timebox_server::store::{PostgresStore, SqliteStore};

const CHILD: &str = "--child";

/// Stack for each of the server's runtime threads, as its binary sets it.
const WORKER_STACK: usize = 16 * 1024 * 1024;

struct Args {
    grants: usize,
    events_per_grant: usize,
    database: Option<String>,
    seed: bool,
    rate: f64,
    seconds: f64,
    rounds: usize,
    /// Only the targets whose path has this in it (and the floor).
    only: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        grants: 1_000_000,
        events_per_grant: 10,
        database: None,
        seed: true,
        rate: 200.0,
        seconds: 15.0,
        rounds: 2,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--grants" => a.grants = v.parse().expect("--grants N"),
            "--events-per-grant" => a.events_per_grant = v.parse().expect("--events-per-grant N"),
            "--database" => a.database = Some(v),
            "--seed" => a.seed = v.parse().expect("--seed true|false"),
            "--rate" => a.rate = v.parse().expect("--rate N (requests per second)"),
            "--seconds" => a.seconds = v.parse().expect("--seconds N"),
            "--rounds" => a.rounds = v.parse().expect("--rounds N"),
            "--only" => a.only = Some(v),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let child = argv.get(1).map(String::as_str) == Some(CHILD);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(WORKER_STACK)
        .build()
        .expect("runtime");
    if child {
        runtime.block_on(serve(&argv[2]));
    } else {
        runtime.block_on(parent(args()));
    }
}

/// The server, as its binary starts it from a configuration file, until killed.
async fn serve(config: &str) {
    let config = timebox_server::config::load(Some(std::path::Path::new(config)))
        .expect("the benchmark's configuration");
    timebox_server::run(config, timebox_server::shutdown_signal())
        .await
        .expect("the server runs");
}

/// How many of the newest grants are set pending, for the approver's inbox (under
/// [`POLICY`], which names the approvers' group).
const PENDING: i64 = 200;

/// The policy file: every requester may ask for any of the permission sets in any
/// account, with one approval from the approvers' group.
const POLICY: &str = r#"[[policy]]
name = "bench-approval"
requesters = ["group:timebox-requesters"]
accounts = ["*"]
permission_sets = ["AdministratorAccess", "PowerUserAccess", "ReadOnlyAccess", "DatabaseAdmin",
                   "NetworkAdmin", "SecurityAudit", "Billing", "SupportUser"]
max_duration = "8h"
approvers = ["group:timebox-approvers"]
approvals_required = 1
"#;

async fn seed(url: &str, a: &Args) {
    let start = Utc::now() - ChronoDuration::days(730);
    let t = Instant::now();
    let pending = "UPDATE grants SET state = 'pending', policy = 'bench-approval' WHERE id IN \
                   (SELECT id FROM grants ORDER BY created_at DESC LIMIT $1)";
    // The same seeding on either backend: its store type and its sqlx database.
    macro_rules! seed_on {
        ($store:ty, $db:ty) => {{
            let store = <$store>::connect(url, 2).await.expect("the database");
            seed_grants!($db, store.pool(), a.grants, start);
            eprintln!(
                "  grants in {:.0} s; sealing their audit events …",
                t.elapsed().as_secs_f64()
            );
            let n = seed_events!($db, store.pool(), a.events_per_grant);
            sqlx::query(pending)
                .bind(PENDING)
                .execute(store.pool())
                .await
                .expect("the pending requests");
            sqlx::query("ANALYZE")
                .execute(store.pool())
                .await
                .expect("ANALYZE");
            n
        }};
    }
    let events = if url.starts_with("sqlite:") {
        seed_on!(SqliteStore, sqlx::Sqlite)
    } else {
        seed_on!(PostgresStore, sqlx::Postgres)
    };
    eprintln!(
        "seeded {} grants and {events} audit events in {:.0} s",
        a.grants,
        t.elapsed().as_secs_f64()
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// The configuration the server reads: the database, sign-in at the provider with
/// the demo's group → role mapping, plain-HTTP cookies, [`POLICY`], the reaper off
/// (it needs Identity Center, and does not serve pages).
fn config_file(dir: &std::path::Path, url: &str, app_url: &str, port: u16, issuer: &str) -> String {
    let path = dir.join("timebox.toml");
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, POLICY).expect("write the policy");
    let toml = format!(
        r#"[server]
bind = "127.0.0.1:{port}"
public_url = "{app_url}"

[database]
url = "{url}"

[reaper]
enabled = false

[policy]
file = "{policy}"

[session]
secure_cookie = false

[oidc]
issuer = "{issuer}"
client_id = "{id}"
client_secret = "{secret}"
requester_groups = ["timebox-requesters"]
approver_groups = ["timebox-approvers"]
auditor_groups = ["timebox-auditors"]
admin_groups = ["timebox-admins"]
"#,
        id = provider::CLIENT_ID,
        secret = provider::CLIENT_SECRET,
        policy = policy.display(),
    );
    std::fs::write(&path, toml).expect("write the configuration");
    path.display().to_string()
}

/// Signs `user` in at the provider and returns a client holding their session.
async fn signed_in(app_url: &str, issuer: &str, user: &str) -> reqwest::Client {
    let client = helpers::browser_like_client();
    let authorize = provider::start_sign_in(&client, app_url).await;
    let callback = provider::sign_in_at_provider(&authorize, issuer, user).await;
    let r = client.get(callback).send().await.expect("callback");
    assert!(
        r.status().is_redirection(),
        "{user} signed in: the callback answered {}",
        r.status()
    );
    client
}

/// The server's resident memory now and at its peak so far, in bytes.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// One target: a path, who asks for it, and a phrase its answer must hold.
struct Target {
    name: &'static str,
    path: &'static str,
    client: reqwest::Client,
    must_hold: &'static str,
    latencies: Vec<Duration>,
    errors: usize,
    bytes: usize,
    wall: Duration,
    peak_rss: u64,
}

/// Sends `n` requests for `url` on the open-loop schedule at `rate`; returns each
/// latency (from when it was due), the errors and the bytes of the last answer.
async fn drive(
    client: &reqwest::Client,
    url: &str,
    rate: f64,
    n: usize,
) -> (Vec<Duration>, usize, usize, Duration) {
    let start = tokio::time::Instant::now() + Duration::from_millis(20);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due).await;
        let (c, u) = (client.clone(), url.to_owned());
        set.spawn(async move {
            let ok = match c.get(&u).send().await {
                Ok(r) if r.status().is_success() => r.bytes().await.map(|b| b.len()).ok(),
                _ => None,
            };
            (due.elapsed(), ok)
        });
    }
    let (mut latencies, mut errors, mut bytes) = (Vec::with_capacity(n), 0, 0);
    while let Some(done) = set.join_next().await {
        let (latency, ok) = done.expect("a request task");
        latencies.push(latency);
        match ok {
            Some(b) => bytes = b,
            None => errors += 1,
        }
    }
    (latencies, errors, bytes, start.elapsed())
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn mb(b: u64) -> String {
    format!("{:.1} MB", b as f64 / 1e6)
}

async fn parent(a: Args) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let url = a
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", tmp.path().join("bench.db").display()));
    let backend = if url.starts_with("sqlite:") {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    if a.seed {
        eprintln!(
            "seeding {} grants and {} audit events each into {backend} …",
            a.grants, a.events_per_grant
        );
        seed(&url, &a).await;
    } else {
        eprintln!("not seeding: measuring the data already there");
    }

    let port = free_port();
    let app_url = format!("http://127.0.0.1:{port}");
    let provider = provider::TestProvider::start(&app_url).await;
    let config = config_file(tmp.path(), &url, &app_url, port, &provider.issuer);
    let mut server = tokio::process::Command::new(std::env::current_exe().expect("self"))
        .args([CHILD, &config])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the server");
    let pid = server.id().expect("the server's pid");
    let plain = reqwest::Client::new();
    let t = Instant::now();
    loop {
        if let Ok(r) = plain.get(format!("{app_url}/readyz")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        if let Ok(Some(status)) = server.try_wait() {
            panic!("the server exited before it was ready: {status}");
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the server never became ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let auditor = signed_in(&app_url, &provider.issuer, "audrey").await;
    let approver = signed_in(&app_url, &provider.issuer, "mia").await;

    let target = |name, path, client: &reqwest::Client, must_hold| Target {
        name,
        path,
        client: client.clone(),
        must_hold,
        latencies: Vec::new(),
        errors: 0,
        bytes: 0,
        wall: Duration::ZERO,
        peak_rss: 0,
    };
    let mut targets = vec![
        target("floor: GET /healthz", "/healthz", &plain, "ok"),
        target(
            "history page (HTML, auditor)",
            "/history",
            &auditor,
            "for ticket",
        ),
        target(
            "GET /api/v1/grants (auditor)",
            "/api/v1/grants",
            &auditor,
            "for ticket",
        ),
        target(
            "inbox page (HTML, approver)",
            "/inbox",
            &approver,
            "for ticket",
        ),
        target(
            "GET /api/v1/inbox (approver)",
            "/api/v1/inbox",
            &approver,
            "for ticket",
        ),
    ];
    if let Some(only) = &a.only {
        targets.retain(|t| t.path == "/healthz" || t.path.contains(only.as_str()));
    }
    // Each answers what it should before anything is timed (and warms the caches).
    for t in &targets {
        for _ in 0..20 {
            let r = t
                .client
                .get(format!("{app_url}{}", t.path))
                .send()
                .await
                .expect("answer");
            let status = r.status();
            let body = r.text().await.expect("body");
            assert!(
                status.is_success() && body.contains(t.must_hold),
                "{} answered {status} without {:?}: {}",
                t.path,
                t.must_hold,
                body.chars().take(600).collect::<String>()
            );
        }
    }
    if a.rounds == 0 {
        eprintln!("--rounds 0: seeded and checked, nothing timed");
        return;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (idle_rss, _) = rss(pid);

    let per_run = (a.rate * a.seconds).round() as usize;
    for _ in 0..a.rounds {
        for t in &mut targets {
            let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
            let sampler = {
                let sampling = sampling.clone();
                tokio::spawn(async move {
                    let mut peak = 0;
                    while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                        peak = peak.max(rss(pid).0);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    peak
                })
            };
            let (latencies, errors, bytes, wall) =
                drive(&t.client, &format!("{app_url}{}", t.path), a.rate, per_run).await;
            sampling.store(false, std::sync::atomic::Ordering::Relaxed);
            t.peak_rss = t.peak_rss.max(sampler.await.expect("sampler"));
            t.latencies.extend(latencies);
            t.errors += errors;
            t.bytes = bytes;
            t.wall += wall;
        }
    }
    let (after_rss, hwm) = rss(pid);
    server.kill().await.expect("stop the server");

    println!(
        "HTTP load benchmark: {} grants, {} audit events on {backend}; open loop at {} requests/s, \
         {} rounds of {} s per target, taking turns",
        a.grants,
        a.grants * a.events_per_grant,
        a.rate,
        a.rounds,
        a.seconds
    );
    println!(
        "floor: GET /healthz at the same rate, in the same run (the HTTP stack on this machine)"
    );
    println!(
        "{:<30} {:>6} {:>7} {:>4} {:>9} {:>9} {:>9} {:>6} {:>6} {:>9} {:>8}",
        "target",
        "reqs",
        "req/s",
        "err",
        "p50",
        "p99",
        "max",
        "× p50",
        "× p99",
        "peak RSS",
        "bytes"
    );
    let floor = {
        let mut f = targets[0].latencies.clone();
        f.sort();
        f
    };
    for t in &mut targets {
        t.latencies.sort();
        let l = &t.latencies;
        println!(
            "{:<30} {:>6} {:>7.1} {:>4} {:>9} {:>9} {:>9} {:>6.2} {:>6.2} {:>9} {:>8}",
            t.name,
            l.len(),
            l.len() as f64 / t.wall.as_secs_f64(),
            t.errors,
            ms(pct(l, 0.50)),
            ms(pct(l, 0.99)),
            ms(*l.last().expect("requests")),
            pct(l, 0.50).as_secs_f64() / pct(&floor, 0.50).as_secs_f64(),
            pct(l, 0.99).as_secs_f64() / pct(&floor, 0.99).as_secs_f64(),
            mb(t.peak_rss),
            t.bytes
        );
    }
    println!(
        "server resident memory: idle after warm-up {}, after the load {}, peak (VmHWM) {}",
        mb(idle_rss),
        mb(after_rss),
        mb(hwm)
    );
}
