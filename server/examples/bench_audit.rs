//! The audit verification benchmark (not a timed test): seeds N audit events (default
//! a million) into a fresh SQLite database, with a signed checkpoint every 1000 events
//! written to a checkpoint file, then runs the verification behind `timebox audit
//! verify` (the whole chain in pages, every hash, link, the head, and every
//! checkpoint's signature and hash) and prints events per second.
//!
//! ```text
//! cargo build --profile server-release -p server --example bench_audit
//! target/server-release/examples/bench_audit [--events 1000000]
//! ```
//! See docs/benchmarks.md for recorded figures.

#![recursion_limit = "256"]
#![expect(
    clippy::expect_used,
    reason = "a benchmark command: a panic is its error report"
)]

use app::domain::{AuditAction, GrantState};
use chrono::{Duration, TimeZone, Utc};
use std::io::Write;
use std::time::Instant;
use timebox_server::audit::checkpoint::{Checkpoint, CheckpointSigner};
use timebox_server::audit::{verify, CheckpointSource};
use timebox_server::store::audit::{seal, GENESIS_HASH};
use timebox_server::store::{NewAuditEvent, SqliteStore};

const CHUNK: usize = 500;

#[tokio::main]
async fn main() {
    let mut events: i64 = 1_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--events" => {
                events = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--events N")
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("audit.db").display());
    let store = SqliteStore::connect(&url, 2).await.expect("store");
    let signer = CheckpointSigner::from_seed(&[1; 32]);
    let checkpoints = dir.path().join("checkpoints.jsonl");
    let mut file = std::fs::File::create(&checkpoints).expect("checkpoint file");

    let seeding = Instant::now();
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut prev = GENESIS_HASH.to_owned();
    let mut seq = 0;
    let mut tx = store.pool().begin().await.expect("begin");
    while seq < events {
        let mut rows = Vec::with_capacity(CHUNK);
        while rows.len() < CHUNK && seq < events {
            seq += 1;
            let e = NewAuditEvent {
                grant_id: Some(app::domain::GrantId(uuid::Uuid::new_v4())),
                at: start + Duration::seconds(seq),
                actor: format!("person-{}", seq % 500),
                action: AuditAction::Request,
                from_state: None,
                to_state: Some(GrantState::Pending),
                reason: Some("incident 4711: restart the payment workers".to_owned()),
                details: serde_json::json!({"account": "123456789012", "n": seq}),
            }
            .normalized();
            let sealed = seal(&e, seq, &prev);
            prev.clone_from(&sealed.hash);
            if seq % 1000 == 0 {
                let c = signer.sign(Checkpoint {
                    seq,
                    hash: sealed.hash.clone(),
                    at: sealed.at,
                    events: seq,
                });
                writeln!(file, "{}", c.to_json_line()).expect("write checkpoint");
            }
            rows.push(sealed);
        }
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO audit_events (seq, grant_id, at, actor, action, from_state, to_state, reason, details, prev_hash, hash) ",
        );
        qb.push_values(rows, |mut b, e| {
            b.push_bind(e.seq)
                .push_bind(e.grant_id)
                .push_bind(e.at)
                .push_bind(e.actor)
                .push_bind(e.action)
                .push_bind(e.from_state)
                .push_bind(e.to_state)
                .push_bind(e.reason)
                .push_bind(e.details)
                .push_bind(e.prev_hash)
                .push_bind(e.hash);
        });
        qb.build().execute(&mut *tx).await.expect("insert");
    }
    sqlx::query("UPDATE audit_head SET last_seq = $1, last_hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(&prev)
        .execute(&mut *tx)
        .await
        .expect("head");
    tx.commit().await.expect("commit");
    file.sync_all().expect("sync");
    println!(
        "seeded {events} events in {:.1}s",
        seeding.elapsed().as_secs_f64()
    );

    let key = signer.verifying_key();
    let report = verify(&store, &CheckpointSource::File(checkpoints), Some(&key))
        .await
        .expect("verify");
    println!("{}", report.summary());
    assert!(report.is_intact());
}
