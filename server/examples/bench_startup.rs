//! The start-up benchmark (not a timed test): the time from starting the server's
//! process to `/readyz` answering 200, on a fresh database (migrations run) and on
//! one already migrated and filled (for example by `bench_history`), next to the
//! floor: the same process starting a bare HTTP server that answers `/readyz` at once
//! (the cost of exec, the runtime and a listener on this machine).
//!
//! ```text
//! cargo build --profile server-release -p server --example bench_startup
//! target/server-release/examples/bench_startup [--runs 5] \
//!     [--database sqlite://…|postgres://… (migrated, filled)] \
//!     [--fresh postgres://… (an empty database, dropped and made again each run)]
//! ```
//! Without `--fresh`, the fresh runs use a new SQLite file each. The server is started
//! as `timebox_server::run` starts it (every job on the runner), with the reaper off:
//! it needs Identity Center, which does not change how soon the server is ready.
//! See docs/benchmarks.md.

#![recursion_limit = "256"]
#![expect(
    clippy::expect_used,
    reason = "a benchmark command: a panic is its error report"
)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// What the child process is asked to start.
const CHILD: &str = "--child";
const FLOOR: &str = "--floor";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match args.get(1).map(String::as_str) {
        Some(CHILD) => runtime.block_on(child(&args[2], args[3].parse().expect("port"))),
        Some(FLOOR) => runtime.block_on(floor(args[2].parse().expect("port"))),
        _ => runtime.block_on(parent(&args[1..])),
    }
}

/// The server, as its binary starts it, until killed.
async fn child(url: &str, port: u16) {
    let mut config = timebox_server::config::Config::default();
    config.database.url = url.to_owned();
    config.server.bind = SocketAddr::from(([127, 0, 0, 1], port));
    config.reaper.enabled = false;
    timebox_server::run(config, timebox_server::shutdown_signal())
        .await
        .expect("the server runs");
}

/// The floor: a listener answering `/readyz` at once.
async fn floor(port: u16) {
    let app = axum::Router::new().route("/readyz", axum::routing::get(|| async { "ready" }));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .expect("bind");
    axum::serve(listener, app).await.expect("serve");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// Starts this program as `mode` and returns the time until `/readyz` answers 200.
async fn ready_after(mode: &str, database: Option<&str>) -> Duration {
    let port = free_port();
    let mut cmd = tokio::process::Command::new(std::env::current_exe().expect("self"));
    cmd.arg(mode);
    if let Some(db) = database {
        cmd.arg(db);
    }
    cmd.arg(port.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true);
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/readyz");
    let t = Instant::now();
    let mut process = cmd.spawn().expect("spawn");
    loop {
        if let Ok(r) = client.get(&url).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "{mode} never became ready"
        );
        if let Ok(Some(status)) = process.try_wait() {
            panic!("{mode} exited before it was ready: {status}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let took = t.elapsed();
    process.kill().await.expect("kill");
    took
}

/// Drops and creates the database `url` names, through the server's `postgres`
/// database.
async fn recreate_postgres(url: &str) {
    let (base, name) = url.rsplit_once('/').expect("postgres://…/name");
    let name = name.split('?').next().unwrap_or(name);
    let admin = sqlx::PgPool::connect(&format!("{base}/postgres"))
        .await
        .expect("postgres");
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await
        .expect("drop");
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&admin)
        .await
        .expect("create");
}

fn stats(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    (times[times.len() / 2], *times.last().expect("runs"))
}

async fn parent(args: &[String]) {
    let (mut runs, mut database, mut fresh) = (5, None, None);
    let mut it = args.iter();
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--runs" => runs = v.parse().expect("--runs N"),
            "--database" => database = Some(v.clone()),
            "--fresh" => fresh = Some(v.clone()),
            other => panic!("unknown argument {other}"),
        }
    }
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut floor = Vec::new();
    let mut fresh_times = Vec::new();
    let mut filled = Vec::new();
    // In turn, so each kind sees the same state of the machine.
    for i in 0..runs {
        floor.push(ready_after(FLOOR, None).await);
        let url = match &fresh {
            Some(url) => {
                recreate_postgres(url).await;
                url.clone()
            }
            None => format!(
                "sqlite://{}",
                tmp.path().join(format!("fresh{i}.db")).display()
            ),
        };
        fresh_times.push(ready_after(CHILD, Some(&url)).await);
        if let Some(db) = &database {
            filled.push(ready_after(CHILD, Some(db)).await);
        }
    }
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    let (floor_p50, floor_max) = stats(floor);
    println!("start-up benchmark: process start → /readyz 200, {runs} runs each");
    println!("{:<46} {:>9} {:>9} {:>10}", "", "p50", "max", "× floor");
    println!(
        "{:<46} {:>9} {:>9} {:>10}",
        "floor: a bare HTTP server in the same binary",
        ms(floor_p50),
        ms(floor_max),
        "1.00"
    );
    let row = |name: &str, times: Vec<Duration>| {
        let (p50, max) = stats(times);
        println!(
            "{:<46} {:>9} {:>9} {:>10.2}",
            name,
            ms(p50),
            ms(max),
            p50.as_secs_f64() / floor_p50.as_secs_f64()
        );
    };
    row(
        if fresh.is_some() {
            "Timebox, fresh PostgreSQL database (migrations)"
        } else {
            "Timebox, fresh SQLite file (migrations)"
        },
        fresh_times,
    );
    if !filled.is_empty() {
        row("Timebox, the --database given (migrated)", filled);
    }
}
