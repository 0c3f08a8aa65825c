//! The auditor's proof (issue 14): `timebox audit verify` over a real database on
//! both backends, tampered with by raw SQL as someone with full database access
//! would. Each case names the first broken event; a rewrite that recomputes every
//! hash and the head is caught only by a checkpoint signed with a key the database's
//! writers do not have.

use crate::helpers::TestDb;
use app::domain::{AuditAction, GrantState};
use chrono::{Duration, TimeZone, Utc};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use timebox_server::audit::checkpoint::{Checkpoint, CheckpointSigner, SignedCheckpoint};
use timebox_server::audit::{
    verify, CheckpointJob, CheckpointSettings, CheckpointSink, CheckpointSource, FileSink, LogSink,
    VerifyReport,
};
use timebox_server::clock::ManualClock;
use timebox_server::metrics::Metrics;
use timebox_server::store::audit::recompute;
use timebox_server::store::{AuditEvent, NewAuditEvent, Store};

crate::on_both_backends!(
    the_packs_check_ends_at_the_next_checkpoint,
    an_intact_chain_verifies_through_its_checkpoints,
    an_edited_event_is_named,
    a_deleted_event_is_named,
    a_cut_tail_with_a_rewritten_head_is_caught_by_a_checkpoint,
    a_consistent_rewrite_is_caught_only_by_a_signed_checkpoint,
    a_checkpoint_forged_without_the_key_is_refused,
    two_writers_appending_at_once_never_fork_the_chain,
    a_failing_sink_is_counted_and_retried,
    the_command_exits_non_zero_with_the_first_broken_event,
    the_dashboards_verification_checks_the_sinks_checkpoints,
    a_forged_checkpoint_row_is_not_trusted_by_the_grant_proof,
    an_export_is_verifiable_offline_with_the_public_key,
);

const SIGNING_SEED: [u8; 32] = [42; 32];

pub(crate) fn signer() -> CheckpointSigner {
    CheckpointSigner::from_seed(&SIGNING_SEED)
}

pub(crate) fn clock() -> ManualClock {
    ManualClock::new(Utc.with_ymd_and_hms(2026, 5, 1, 9, 0, 0).unwrap())
}

fn event(n: usize, at: chrono::DateTime<Utc>) -> NewAuditEvent {
    NewAuditEvent {
        grant_id: None,
        at,
        actor: format!("person-{}", n % 3),
        action: AuditAction::Request,
        from_state: None,
        to_state: Some(GrantState::Pending),
        reason: Some(format!("event {n}")),
        details: serde_json::json!({"n": n}),
    }
}

pub(crate) async fn append(store: &Arc<dyn Store>, clock: &ManualClock, n: usize) {
    use timebox_server::clock::Clock;
    for i in 0..n {
        clock.advance(Duration::seconds(1));
        store.append_audit(event(i, clock.now())).await.unwrap();
    }
}

struct Setup {
    store: Arc<dyn Store>,
    clock: ManualClock,
    job: CheckpointJob,
    metrics: Arc<Metrics>,
    file: PathBuf,
    _dir: tempfile::TempDir,
}

fn job_on(
    store: Arc<dyn Store>,
    clock: &ManualClock,
    metrics: Arc<Metrics>,
    file: &Path,
) -> CheckpointJob {
    let sinks: Vec<Arc<dyn CheckpointSink>> = vec![
        Arc::new(FileSink {
            path: file.to_owned(),
        }),
        Arc::new(LogSink),
    ];
    CheckpointJob::new(
        store,
        Arc::new(clock.clone()),
        metrics,
        signer(),
        sinks,
        CheckpointSettings {
            every: 10,
            interval: std::time::Duration::from_secs(15 * 60),
        },
    )
}

fn setup(db: &TestDb) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkpoints.jsonl");
    let store = db.store();
    let clock = clock();
    let metrics = Arc::new(Metrics::new());
    let job = job_on(store.clone(), &clock, metrics.clone(), &file);
    Setup {
        store,
        clock,
        job,
        metrics,
        file,
        _dir: dir,
    }
}

/// 25 events with signed checkpoints at 10 and 20, published to the file and the log.
async fn chain_with_checkpoints(db: &TestDb) -> Setup {
    let s = setup(db);
    append(&s.store, &s.clock, 10).await;
    assert_eq!(s.job.pass().await.unwrap().written, Some(10));
    append(&s.store, &s.clock, 9).await;
    assert_eq!(
        s.job.pass().await.unwrap().written,
        None,
        "9 new events: not due"
    );
    append(&s.store, &s.clock, 1).await;
    assert_eq!(s.job.pass().await.unwrap().written, Some(20));
    append(&s.store, &s.clock, 5).await;
    s
}

async fn check(s: &Setup, source: CheckpointSource) -> VerifyReport {
    let key = signer().verifying_key();
    verify(s.store.as_ref(), &source, Some(&key)).await.unwrap()
}

async fn check_file(s: &Setup) -> VerifyReport {
    check(s, CheckpointSource::File(s.file.clone())).await
}

/// Verification without checkpoints: the chain's own rules and head only.
async fn check_bare(s: &Setup) -> VerifyReport {
    verify(s.store.as_ref(), &CheckpointSource::Nothing, None)
        .await
        .unwrap()
}

fn broken(r: &VerifyReport) -> (i64, String) {
    let b = r
        .first_broken
        .clone()
        .unwrap_or_else(|| panic!("expected a broken chain: {r:?}"));
    (b.seq, b.problem)
}

/// `timebox audit <command> --database <db> <args…>`: its exit code, stdout, stderr.
pub(crate) fn audit_command(
    command: &str,
    db: &TestDb,
    args: &[&str],
) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_timebox"))
        .args(["audit", command, "--database", db.url()])
        .args(args)
        .env_remove("TIMEBOX_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn all_events(store: &Arc<dyn Store>) -> Vec<AuditEvent> {
    store.audit_events(None, 0, 10_000).await.unwrap()
}

async fn an_intact_chain_verifies_through_its_checkpoints(db: &TestDb) {
    let s = chain_with_checkpoints(db).await;
    for source in [
        CheckpointSource::File(s.file.clone()),
        CheckpointSource::Database,
    ] {
        let r = check(&s, source).await;
        assert!(r.is_intact(), "{r:?}");
        assert_eq!(r.events_verified, 25);
        assert_eq!(r.checkpoints_verified, 2);
        assert!(r
            .summary()
            .contains("25 events verified, 2 checkpoints verified"));
    }
    // One line per checkpoint, and where each went is recorded.
    let lines = std::fs::read_to_string(&s.file).unwrap();
    assert_eq!(lines.lines().count(), 2, "{lines}");
    let first: SignedCheckpoint = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    assert_eq!((first.seq, first.events), (10, 10));
    assert_eq!(first.public_key, signer().public_key_hex());
    let sinks: Vec<String> = s
        .store
        .checkpoint_publications(10)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.sink)
        .collect();
    assert_eq!(sinks, ["file", "log"]);
    // Time makes a checkpoint due too, and nothing new means no checkpoint.
    s.clock.advance(Duration::minutes(16));
    assert_eq!(s.job.pass().await.unwrap().written, Some(25));
    s.clock.advance(Duration::minutes(16));
    assert_eq!(s.job.pass().await.unwrap().written, None);
    assert_eq!(s.metrics.audit_checkpoints.get(), 3);
}

async fn an_edited_event_is_named(db: &TestDb) {
    let s = chain_with_checkpoints(db).await;
    db.disable_append_only_guard().await;
    db.exec("UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 7")
        .await;
    for r in [check_bare(&s).await, check_file(&s).await] {
        let (seq, problem) = broken(&r);
        assert_eq!(seq, 7, "{problem}");
        assert!(problem.contains("edited"), "{problem}");
        assert_eq!(r.events_verified, 6);
    }
}

async fn a_deleted_event_is_named(db: &TestDb) {
    let s = chain_with_checkpoints(db).await;
    db.disable_append_only_guard().await;
    assert_eq!(db.exec("DELETE FROM audit_events WHERE seq = 13").await, 1);
    let (seq, problem) = broken(&check_file(&s).await);
    assert_eq!(seq, 13, "{problem}");
    assert!(problem.contains("missing"), "{problem}");
}

async fn a_cut_tail_with_a_rewritten_head_is_caught_by_a_checkpoint(db: &TestDb) {
    let s = chain_with_checkpoints(db).await;
    db.disable_append_only_guard().await;
    assert_eq!(db.exec("DELETE FROM audit_events WHERE seq > 15").await, 10);
    let hash15 = all_events(&s.store).await[14].hash.clone();
    db.exec(&format!(
        "UPDATE audit_head SET last_seq = 15, last_hash = '{hash15}' WHERE id = 1"
    ))
    .await;
    // The chain alone cannot tell: it is a consistent, shorter chain.
    assert!(check_bare(&s).await.is_intact());
    // The checkpoint at 20 says there were at least 20 events.
    let r = check_file(&s).await;
    let (seq, problem) = broken(&r);
    assert_eq!(seq, 16, "{problem}");
    assert!(problem.contains("newest events were deleted"), "{problem}");
    assert_eq!(r.checkpoints_verified, 1, "the one at 10 still holds");
}

/// Rewrites event `seq`'s actor and every hash after it, and the head: what someone
/// with full database access (but not the key) can do.
pub(crate) async fn rewrite_consistently(db: &TestDb, store: &Arc<dyn Store>, seq: i64) {
    db.disable_append_only_guard().await;
    let mut prev = String::new();
    for mut e in all_events(store).await {
        if e.seq < seq {
            prev = e.hash;
            continue;
        }
        if e.seq == seq {
            e.actor = "mallory".into();
        }
        e.prev_hash = prev.clone();
        e.hash = recompute(&e);
        db.exec(&format!(
            "UPDATE audit_events SET actor = '{}', prev_hash = '{}', hash = '{}' WHERE seq = {}",
            e.actor, e.prev_hash, e.hash, e.seq
        ))
        .await;
        prev = e.hash;
    }
    db.exec(&format!(
        "UPDATE audit_head SET last_hash = '{prev}' WHERE id = 1"
    ))
    .await;
}

async fn a_consistent_rewrite_is_caught_only_by_a_signed_checkpoint(db: &TestDb) {
    let s = chain_with_checkpoints(db).await;
    rewrite_consistently(db, &s.store, 12).await;
    assert!(
        check_bare(&s).await.is_intact(),
        "every hash and the head agree"
    );
    for r in [
        check_file(&s).await,
        check(&s, CheckpointSource::Database).await,
    ] {
        let (seq, problem) = broken(&r);
        assert_eq!(seq, 20, "the first checkpoint after the rewrite: {problem}");
        assert!(
            problem.contains("after sequence 10 and up to 20"),
            "{problem}"
        );
        assert_eq!(r.checkpoints_verified, 1);
    }
    // The job refuses to sign over the rewritten chain.
    s.clock.advance(Duration::minutes(16));
    let e = s.job.pass().await.unwrap_err().to_string();
    assert!(e.contains("no checkpoint is signed"), "{e}");
}

/// The evidence pack's check walks only from a grant's events to the next signed
/// checkpoint, and that checkpoint catches a consistent rewrite there too.
async fn the_packs_check_ends_at_the_next_checkpoint(db: &TestDb) {
    use timebox_server::audit::grant::chain_around;
    let s = chain_with_checkpoints(db).await;
    let all = all_events(&s.store).await;
    let some: Vec<AuditEvent> = all
        .iter()
        .filter(|e| e.seq == 12 || e.seq == 14)
        .cloned()
        .collect();
    let (chain, checkpoint) = chain_around(s.store.as_ref(), &some, None).await.unwrap();
    assert_eq!(checkpoint, Some(20));
    assert!(chain.is_intact(), "{chain:?}");
    assert_eq!(chain.last_seq, 20);
    assert_eq!(chain.events_checked, 9, "events 12 to 20 only");
    rewrite_consistently(db, &s.store, 13).await;
    let (chain, _) = chain_around(s.store.as_ref(), &some, None).await.unwrap();
    let broken = chain.first_broken.expect("caught by the checkpoint");
    assert_eq!(broken.seq, 20, "{}", broken.problem);
    assert!(
        broken.problem.contains("signed checkpoint"),
        "{}",
        broken.problem
    );
}

async fn a_checkpoint_forged_without_the_key_is_refused(db: &TestDb) {
    let s = chain_with_checkpoints(db).await;
    rewrite_consistently(db, &s.store, 12).await;
    // The forger replaces the published checkpoints with ones matching the new chain,
    // signed by a key of their own.
    let forger = CheckpointSigner::from_seed(&[7; 32]);
    let events = all_events(&s.store).await;
    let mut forged = String::new();
    for seq in [10usize, 20] {
        let e = &events[seq - 1];
        let mut c = forger.sign(Checkpoint {
            seq: e.seq,
            hash: e.hash.clone(),
            at: e.at,
            events: e.seq,
        });
        // Even claiming to be the real key does not help.
        c.public_key = signer().public_key_hex();
        forged.push_str(&format!("{}\n", c.to_json_line()));
    }
    std::fs::write(&s.file, forged).unwrap();
    let (seq, problem) = broken(&check_file(&s).await);
    assert_eq!(seq, 10, "{problem}");
    assert!(problem.contains("signature does not verify"), "{problem}");
    // The same in the database, and an altered hash in a real checkpoint.
    db.exec("UPDATE audit_checkpoints SET events = 11 WHERE seq = 10")
        .await;
    let (seq, problem) = broken(&check(&s, CheckpointSource::Database).await);
    assert_eq!(seq, 10, "{problem}");
    assert!(problem.contains("signature does not verify"), "{problem}");
}

async fn two_writers_appending_at_once_never_fork_the_chain(db: &TestDb) {
    let s = setup(db);
    // A second pool on the same database: another replica.
    let other: Arc<dyn Store> = timebox_server::store::connect(db.url(), 5).await.unwrap();
    let writers = [s.store.clone(), other.clone()].map(|store| {
        let clock = s.clock.clone();
        tokio::spawn(async move { append(&store, &clock, 40).await })
    });
    // Both replicas run the checkpoint job meanwhile.
    let metrics = Arc::new(Metrics::new());
    let other_job = job_on(other.clone(), &s.clock, metrics, &s.file);
    for _ in 0..5 {
        let (a, b) = tokio::join!(s.job.pass(), other_job.pass());
        a.unwrap();
        b.unwrap();
    }
    for w in writers {
        w.await.unwrap();
    }
    s.clock.advance(Duration::minutes(16));
    s.job.pass().await.unwrap();
    let r = check_file(&s).await;
    assert!(r.is_intact(), "{r:?}");
    assert_eq!(r.events_verified, 80);
    let stored = timebox_server::audit::verify::database_checkpoints(s.store.as_ref())
        .await
        .unwrap();
    assert!(!stored.is_empty());
    assert_eq!(r.checkpoints_verified, stored.len(), "one per sequence");
    let events = all_events(&s.store).await;
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=80).collect::<Vec<_>>());
}

async fn a_failing_sink_is_counted_and_retried(db: &TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-yet").join("checkpoints.jsonl");
    let store = db.store();
    let clock = clock();
    let metrics = Arc::new(Metrics::new());
    let job = job_on(store.clone(), &clock, metrics.clone(), &file);
    append(&store, &clock, 10).await;
    let pass = job.pass().await.unwrap();
    assert_eq!(pass.written, Some(10));
    assert_eq!(pass.failed_sinks, ["file"]);
    assert_eq!(pass.published, 1, "the log got it");
    let failures = || {
        metrics
            .audit_checkpoint_publish_failures
            .with_label_values(&["file"])
            .get()
    };
    assert_eq!(failures(), 1);
    assert_eq!(job.pass().await.unwrap().failed_sinks, ["file"]);
    assert_eq!(failures(), 2, "each retry counts");
    std::fs::create_dir(dir.path().join("not-yet")).unwrap();
    let pass = job.pass().await.unwrap();
    assert!(pass.failed_sinks.is_empty());
    assert_eq!(pass.published, 1);
    assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 1);
}

async fn the_command_exits_non_zero_with_the_first_broken_event(db: &TestDb) {
    let s = chain_with_checkpoints(db).await;
    let public = s._dir.path().join("audit.pub");
    std::fs::write(&public, signer().public_key_hex()).unwrap();
    let run = |args: &[&str]| audit_command("verify", db, args);
    let file = s.file.to_str().unwrap();
    let key = public.to_str().unwrap();
    let (code, out, err) = run(&["--checkpoints", file, "--public-key", key]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("25 events verified, 2 checkpoints verified"),
        "{out}"
    );
    let (code, _, err) = run(&["--checkpoints", file]);
    assert_eq!(code, Some(2), "usage error: {err}");
    rewrite_consistently(db, &s.store, 12).await;
    let (code, out, _) = run(&[]);
    assert_eq!(code, Some(0), "without the key the rewrite passes: {out}");
    let (code, out, err) = run(&["--checkpoints", file, "--public-key", key]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("does NOT verify: event 20"), "{out}");
}

/// The binary as an operator runs it: with a signing key and a checkpoint file, the
/// server signs a checkpoint at the head and publishes it to the file and the log
/// (never the key), and `timebox audit verify` checks it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_signs_and_publishes_checkpoints() {
    use std::process::{Command, Stdio};
    use std::time::Instant;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("timebox.db");
    let url = format!("sqlite://{}", db.display());
    let store = timebox_server::store::connect(&url, 2).await.unwrap();
    append(&store, &clock(), 12).await;
    let key = dir.path().join("audit.key");
    let out = Command::new(env!("CARGO_BIN_EXE_timebox"))
        .args(["audit", "keygen", "--out", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let public_hex = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let public = dir.path().join("audit.pub");
    std::fs::write(&public, &public_hex).unwrap();
    let seed = std::fs::read_to_string(&key).unwrap().trim().to_owned();
    let checkpoints = dir.path().join("checkpoints.jsonl");
    let port = crate::helpers::free_listener()
        .await
        .local_addr()
        .unwrap()
        .port();
    let log = dir.path().join("server.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_timebox"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TIMEBOX_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .env("TIMEBOX_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("TIMEBOX_DATABASE__URL", &url)
        .env("TIMEBOX_REAPER__ENABLED", "false")
        .env("TIMEBOX_AUDIT__SIGNING_KEY_FILE", &key)
        .env("TIMEBOX_AUDIT__CHECKPOINT_FILE", &checkpoints)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_to_string(&checkpoints).map_or(true, |t| t.is_empty()) {
        assert!(Instant::now() < deadline, "no checkpoint was published");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let stopped = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(stopped.success());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "the server stopped with {status}:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let line = std::fs::read_to_string(&checkpoints).unwrap();
    let c: SignedCheckpoint = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert_eq!((c.seq, c.events), (12, 12));
    assert_eq!(c.public_key, public_hex);
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("audit checkpoint"), "{logged}");
    assert!(logged.contains(&public_hex), "the public key is logged");
    assert!(
        !logged.contains(&seed),
        "the signing key leaked into the log"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_timebox"))
        .args(["audit", "verify", "--database", &url])
        .args(["--checkpoints", checkpoints.to_str().unwrap()])
        .args(["--public-key", public.to_str().unwrap()])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("12 events verified, 1 checkpoints verified"),
        "{said}"
    );
}

/// The verification an auditor asks for from the dashboard reads the checkpoints
/// from the sink (here the file), so a consistent rewrite that also rewrote the
/// database's own checkpoint rows is still caught.
async fn the_dashboards_verification_checks_the_sinks_checkpoints(db: &TestDb) {
    use timebox_server::audit::VerificationJob;
    let s = chain_with_checkpoints(db).await;
    let job = VerificationJob::new(
        s.store.clone(),
        Arc::new(s.clock.clone()),
        Some(signer().verifying_key()),
        CheckpointSource::File(s.file.clone()),
    );
    let now = timebox_server::clock::Clock::now(&s.clock);
    s.store
        .request_verification("v-1", "audrey", now)
        .await
        .unwrap();
    assert_eq!(job.pass().await.unwrap().as_deref(), Some("v-1"));
    let v = s.store.latest_verification().await.unwrap().unwrap();
    assert_eq!(v.state, app::domain::VerificationState::Passed, "{v:?}");
    assert_eq!((v.events_verified, v.checkpoints_verified), (25, 2));

    rewrite_consistently(db, &s.store, 12).await;
    // The database's checkpoint rows are rewritten too; the file is out of reach.
    db.exec("DELETE FROM audit_checkpoint_publications").await;
    db.exec("DELETE FROM audit_checkpoints").await;
    s.store
        .request_verification("v-2", "audrey", now)
        .await
        .unwrap();
    job.pass().await.unwrap();
    let v = s.store.latest_verification().await.unwrap().unwrap();
    assert_eq!(v.id, "v-2");
    assert_eq!(v.state, app::domain::VerificationState::Failed, "{v:?}");
    assert_eq!(v.first_broken_seq, Some(20));
    assert!(v
        .problem
        .unwrap()
        .starts_with("event 20: the chain up to here is not the one signed"));
}

/// A checkpoint row written into the database without the key does not vouch for
/// a grant's span: the grant proof checks it against the server's key.
async fn a_forged_checkpoint_row_is_not_trusted_by_the_grant_proof(db: &TestDb) {
    use timebox_server::audit::grant::chain_around;
    let s = chain_with_checkpoints(db).await;
    let events = all_events(&s.store).await;
    let some = &events[11..13];
    let key = signer().verifying_key();
    let (chain, checkpoint) = chain_around(s.store.as_ref(), some, Some(&key))
        .await
        .unwrap();
    assert!(chain.is_intact(), "{chain:?}");
    assert_eq!(checkpoint, Some(20));
    db.exec("UPDATE audit_checkpoints SET signature = '00' WHERE seq = 20")
        .await;
    let (chain, _) = chain_around(s.store.as_ref(), some, Some(&key))
        .await
        .unwrap();
    let broken = chain.first_broken.expect("refused");
    assert_eq!(broken.seq, 20);
    assert!(
        broken.problem.contains("not signed by this server's key"),
        "{}",
        broken.problem
    );
}

/// `timebox audit export`: the events with their hashes as JSON lines, checked here
/// as an external auditor would with nothing but the lines, the checkpoint file and
/// the public key; a time window gives a contiguous segment; CSV has one row each.
async fn an_export_is_verifiable_offline_with_the_public_key(db: &TestDb) {
    use timebox_server::audit::export::parse_line;
    let s = chain_with_checkpoints(db).await;
    let run = |args: &[&str]| audit_command("export", db, args);
    let file = s._dir.path().join("export.jsonl");
    let (code, _, err) = run(&["--out", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("exported 25 audit events"), "{err}");
    let (code, _, err) = run(&["--out", file.to_str().unwrap()]);
    assert_eq!(code, Some(3), "never overwritten: {err}");

    let events: Vec<AuditEvent> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| parse_line(l).unwrap())
        .collect();
    assert_eq!(events.len(), 25);
    let key = signer().verifying_key();
    let checkpoints: Vec<SignedCheckpoint> = std::fs::read_to_string(&s.file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(recompute(e), e.hash, "event {} recomputes", e.seq);
        if i > 0 {
            assert_eq!(e.prev_hash, events[i - 1].hash, "event {} links", e.seq);
        }
    }
    for c in &checkpoints {
        c.verify(&key).unwrap();
        let at = events.iter().find(|e| e.seq == c.seq).unwrap();
        assert_eq!(
            at.hash, c.hash,
            "the export passes through checkpoint {}",
            c.seq
        );
    }

    // 09:00:05 to 09:00:10: the five events appended in those seconds, in order.
    let (code, out, err) = run(&[
        "--from",
        "2026-05-01T09:00:05Z",
        "--to",
        "2026-05-01T09:00:10Z",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let seqs: Vec<i64> = out.lines().map(|l| parse_line(l).unwrap().seq).collect();
    assert_eq!(seqs, [5, 6, 7, 8, 9]);
    let (code, out, _) = run(&["--format", "csv"]);
    assert_eq!(code, Some(0));
    let rows: Vec<&str> = out.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 26, "a header and one row per event");
    assert!(rows[0].starts_with("seq,at,grant_id,actor,action"));
    let (code, _, err) = run(&["--from", "last tuesday"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("neither a UTC day"), "{err}");
}
