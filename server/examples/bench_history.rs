//! The history benchmark (not a timed test): seeds N grants (default a million) into
//! a fresh database, then times the call behind both the history page and the API's
//! list endpoint (`Dashboard::history`: the reader's handle, filter parsing, the keyset
//! query, and encoding the page as JSON) for filtered pages of 50 rows, and, in the
//! same run on the same data, the bare indexed SQL query that returns the same 51 rows
//! (through sqlx, no authorization, no decoding, no JSON): the floor. It prints both
//! p50/p99 per kind of filter and their ratio.
//!
//! ```text
//! cargo run --release -p server --example bench_history -- \
//!     [--grants 1000000] [--iterations 300] [--database sqlite://…|postgres://…] \
//!     [--seed false]
//! ```
//! Without `--database`, a SQLite file in a temporary directory is used. A
//! PostgreSQL URL must name an empty database (it is migrated and filled). See
//! docs/benchmarks.md for recorded figures.

// The Leptos pages are deeply nested view types; laying them out needs more than
// the default depth.
#![recursion_limit = "256"]
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark command: a panic is its error report"
)]

use app::api::backend::Backend;
use app::api::HistoryQuery;
use app::domain::{Caller, PersonId, Role, RoleSet};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use std::sync::Arc;
use std::time::{Duration, Instant};
use timebox_server::clock::SystemClock;
use timebox_server::services::Dashboard;
use timebox_server::store::search::RARE_AT_MOST;
use timebox_server::store::{PostgresStore, SqliteStore};

#[macro_use]
#[path = "support/seed.rs"]
#[expect(
    dead_code,
    unused_macros,
    reason = "the history benchmark seeds no audit events"
)]
mod seed;
use seed::*;

struct Args {
    grants: usize,
    iterations: usize,
    database: Option<String>,
    /// Measure a database an earlier run filled (`--seed false`).
    seed: bool,
}

fn args() -> Args {
    let mut a = Args {
        grants: 1_000_000,
        iterations: 300,
        database: None,
        seed: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--grants" => a.grants = v.parse().expect("--grants N"),
            "--iterations" => a.iterations = v.parse().expect("--iterations N"),
            "--database" => a.database = Some(v),
            "--seed" => a.seed = v.parse().expect("--seed true|false"),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
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
    let start = Utc::now() - ChronoDuration::days(730);
    eprintln!("seeding {} grants into {backend} …", a.grants);
    let t = Instant::now();
    if !a.seed {
        eprintln!("not seeding: measuring the grants already there");
    } else if url.starts_with("sqlite:") {
        let store = SqliteStore::connect(&url, 2).await.expect("sqlite");
        seed_grants!(sqlx::Sqlite, store.pool(), a.grants, start);
        sqlx::query("ANALYZE").execute(store.pool()).await.unwrap();
    } else {
        let store = PostgresStore::connect(&url, 2).await.expect("postgres");
        seed_grants!(sqlx::Postgres, store.pool(), a.grants, start);
        sqlx::query("ANALYZE").execute(store.pool()).await.unwrap();
    }
    eprintln!("seeded in {:.1} s", t.elapsed().as_secs_f64());

    let mut config = timebox_server::config::Config::default();
    config.database.url = url.clone();
    config.database.max_connections = 4;
    let wiring = timebox_server::Wiring::start(config, Arc::new(SystemClock))
        .await
        .expect("services");
    let dashboard = Dashboard::new(wiring.access());
    let auditor = Caller::Person {
        id: PersonId::parse("audrey").unwrap(),
        name: "Audrey".into(),
        roles: RoleSet::of(&[Role::Auditor]),
        mfa: true,
        groups: Vec::new(),
    };

    let pool = Pool::open(&url).await;
    let few = pool.words_read_from_the_index().await;
    type Make = fn(&mut Rng) -> HistoryQuery;
    let kinds: [(&str, Make); 8] = [
        ("no filter (first page)", |_| HistoryQuery::default()),
        ("user", |r| HistoryQuery {
            user: format!("user{:03}", r.below(USERS)),
            ..HistoryQuery::default()
        }),
        ("account", |r| HistoryQuery {
            account: account(r.below(ACCOUNTS)),
            ..HistoryQuery::default()
        }),
        ("permission set", |r| HistoryQuery {
            permission_set: PERMISSION_SETS[r.below(PERMISSION_SETS.len())].into(),
            ..HistoryQuery::default()
        }),
        ("state = revoked", |_| HistoryQuery {
            state: "revoked".into(),
            ..HistoryQuery::default()
        }),
        ("user + account + time range", |r| HistoryQuery {
            user: format!("user{:03}", r.below(USERS)),
            account: account(r.below(ACCOUNTS)),
            from: (Utc::now() - ChronoDuration::days(365))
                .format("%Y-%m-%d")
                .to_string(),
            ..HistoryQuery::default()
        }),
        ("a common word", |r| HistoryQuery {
            text: WORDS[r.below(WORDS.len())].into(),
            ..HistoryQuery::default()
        }),
        ("a word in 1 grant in 100,000", |_| HistoryQuery {
            text: RARE_WORD.into(),
            ..HistoryQuery::default()
        }),
    ];
    println!(
        "history benchmark: {} grants on {backend}, {} iterations per filter, pages of 50 rows",
        a.grants, a.iterations
    );
    println!("floor: the same page's bare indexed SQL query through sqlx (no authorization, no decoding, no JSON), timed in turn with Timebox's");
    println!(
        "{:<30} {:>10} {:>10} {:>10} {:>10} {:>7} {:>7} {:>6}",
        "filter", "p50", "p99", "floor p50", "floor p99", "× p50", "× p99", "rows"
    );
    let mut r = Rng(42);
    for (name, make) in kinds {
        let mut times = Vec::with_capacity(a.iterations);
        let mut floor = Vec::with_capacity(a.iterations);
        let mut rows = 0;
        // Each iteration reads a first page and, when there is one, the next page
        // through its cursor (keyset), timing both, then the bare query for the same
        // two pages.
        for i in 0..a.iterations / 2 {
            let first = make(&mut r);
            // Whichever runs first may read pages the second finds in the cache:
            // they take turns.
            if i % 2 == 1 {
                floor_pages(&pool, &first, &few, &mut floor).await;
            }
            let mut q = first.clone();
            for _ in 0..2 {
                let t = Instant::now();
                let page = dashboard.history(&auditor, q.clone()).await.expect("page");
                let body = serde_json::to_vec(&page).expect("json");
                times.push(t.elapsed());
                std::hint::black_box(body);
                rows += page.grants.len();
                match page.next {
                    Some(n) => q.cursor = n,
                    None => break,
                }
            }
            if i % 2 == 0 {
                floor_pages(&pool, &first, &few, &mut floor).await;
            }
        }
        times.sort();
        floor.sort();
        let ratio = |p: f64| pct(&times, p).as_secs_f64() / pct(&floor, p).as_secs_f64();
        println!(
            "{:<30} {:>10} {:>10} {:>10} {:>10} {:>7.2} {:>7.2} {:>6}",
            name,
            ms(pct(&times, 0.50)),
            ms(pct(&times, 0.99)),
            ms(pct(&floor, 0.50)),
            ms(pct(&floor, 0.99)),
            ratio(0.50),
            ratio(0.99),
            rows / times.len().max(1)
        );
    }
}

/// The floor's first page of `q` and, when there is one, the next, timed.
async fn floor_pages(pool: &Pool, q: &HistoryQuery, few: &[String], floor: &mut Vec<Duration>) {
    let mut after = None;
    for _ in 0..2 {
        let t = Instant::now();
        let (n, last) = pool.page(q, after, few).await;
        floor.push(t.elapsed());
        if n < 51 {
            break;
        }
        after = last;
    }
}

/// PostgreSQL's index expression (migration 0014), before its `tsquery`.
const POSTGRES_WORDS: &str = "to_tsvector('simple', regexp_replace(justification, \
     '[^[:alnum:]]+', ' ', 'g')) @@ to_tsquery('simple', ";

/// The floor's connection: the same database, its own small pool.
enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// The bare page: the history's SQL for `q`, hand-written here (not the store's
/// code), with the plan the data calls for; returns the rows read and the keyset
/// position of the 50th.
macro_rules! bare_page {
    ($db:ty, $pool:expr, $q:expr, $after:expr, $words:expr, $fenced:expr) => {{
        let q: &HistoryQuery = $q;
        let fenced: bool = $fenced;
        let mut qb = sqlx::QueryBuilder::<$db>::new(if fenced {
            "SELECT * FROM (SELECT * FROM grants WHERE 1 = 1"
        } else {
            "SELECT * FROM grants WHERE 1 = 1"
        });
        if !q.user.is_empty() {
            qb.push(" AND requester = ").push_bind(q.user.clone());
        }
        if !q.account.is_empty() {
            qb.push(" AND account_id = ").push_bind(q.account.clone());
        }
        if !q.permission_set.is_empty() {
            qb.push(" AND permission_set = ")
                .push_bind(q.permission_set.clone());
        }
        if !q.state.is_empty() {
            qb.push(" AND state = ").push_bind(q.state.clone());
        }
        if !q.from.is_empty() {
            let day = chrono::NaiveDate::parse_from_str(&q.from, "%Y-%m-%d").unwrap();
            qb.push(" AND created_at >= ")
                .push_bind(day.and_hms_opt(0, 0, 0).unwrap().and_utc());
        }
        if let Some((open, bound, close)) = $words {
            qb.push(open).push_bind(bound).push(close);
        }
        if let Some((at, id)) = $after {
            let (at, id): (DateTime<Utc>, String) = (at, id);
            qb.push(" AND (created_at < ")
                .push_bind(at)
                .push(" OR (created_at = ")
                .push_bind(at)
                .push(" AND id < ")
                .push_bind(id)
                .push("))");
        }
        if fenced {
            qb.push(" OFFSET 0) AS grants");
        }
        qb.push(" ORDER BY created_at DESC, id DESC LIMIT 51");
        let rows = qb.build().fetch_all($pool).await.unwrap();
        let last = rows.get(49).map(|row| {
            use sqlx::Row;
            (
                row.get::<DateTime<Utc>, _>("created_at"),
                row.get::<String, _>("id"),
            )
        });
        (rows.len(), last)
    }};
}

impl Pool {
    async fn open(url: &str) -> Self {
        if url.starts_with("sqlite:") {
            Self::Sqlite(sqlx::SqlitePool::connect(url).await.unwrap())
        } else {
            Self::Postgres(sqlx::PgPool::connect(url).await.unwrap())
        }
    }

    /// The words with so few matches that the best plan reads them from the index
    /// and sorts them (counted here, before any timing).
    async fn words_read_from_the_index(&self) -> Vec<String> {
        let mut few = Vec::new();
        for w in WORDS.iter().chain([&RARE_WORD]) {
            let n: i64 = match self {
                Self::Sqlite(pool) => sqlx::query_scalar(
                    "SELECT count(*) FROM grants_text WHERE grants_text MATCH $1",
                )
                .bind(format!("\"{w}\""))
                .fetch_one(pool)
                .await
                .unwrap(),
                Self::Postgres(pool) => sqlx::query_scalar(&format!(
                    "SELECT count(*) FROM grants WHERE {POSTGRES_WORDS}$1)"
                ))
                .bind(format!("'{w}'"))
                .fetch_one(pool)
                .await
                .unwrap(),
            };
            if n <= RARE_AT_MOST {
                few.push((*w).to_owned());
            }
        }
        few
    }

    async fn page(
        &self,
        q: &HistoryQuery,
        after: Option<(DateTime<Utc>, String)>,
        few: &[String],
    ) -> (usize, Option<(DateTime<Utc>, String)>) {
        let word = (!q.text.is_empty()).then(|| q.text.to_lowercase());
        match self {
            Self::Sqlite(pool) => {
                // The plan for the word's known frequency: a rare word from the
                // index, then sorted; a common one by the newest-first walk.
                let words = word.map(|w| {
                    let rare = few.contains(&w);
                    let open = if rare {
                        " AND text_rowid IN (SELECT rowid FROM grants_text WHERE grants_text MATCH "
                    } else {
                        " AND EXISTS (SELECT 1 FROM grants_text WHERE grants_text MATCH "
                    };
                    let close = if rare {
                        ")"
                    } else {
                        " AND grants_text.rowid = grants.text_rowid)"
                    };
                    (open.to_owned(), format!("\"{w}\""), close)
                });
                bare_page!(sqlx::Sqlite, pool, q, after, words, false)
            }
            Self::Postgres(pool) => {
                // A rare word's few matches are read through the index in a subquery
                // the planner may not merge, then sorted.
                let fenced = word.as_ref().is_some_and(|w| few.contains(w));
                let words = word.map(|w| (format!(" AND {POSTGRES_WORDS}"), format!("'{w}'"), ")"));
                bare_page!(sqlx::Postgres, pool, q, after, words, fenced)
            }
        }
    }
}
