//! Checkpoints published where the database's writers have no hand (issue 14): an S3
//! bucket under Object Lock (moto's S3: the objects are read back, their locks
//! checked, a delete refused, and `verify` reads every version of them as its
//! checkpoint source, a delete marker or a replacement reported) and
//! a signed webhook (a local receiver that checks the signature).

use crate::audit_proof::{append, clock, rewrite_consistently, signer};
use crate::helpers::TestDb;
use crate::moto::Moto;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled,
    ObjectLockMode, ObjectLockRetentionMode, ObjectLockRule,
};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use timebox_server::audit::checkpoint::{Checkpoint, SignedCheckpoint};
use timebox_server::audit::{
    verify, CheckpointJob, CheckpointSettings, CheckpointSink, CheckpointSource, LogSink,
    S3Checkpoints, S3SetupError, S3Sink, SinkError, WebhookSink,
};
use timebox_server::aws::{AwsSetup, Calls};
use timebox_server::clock::Clock;
use timebox_server::config::{AwsConfig, CheckpointWebhookConfig, S3Location, Secret};
use timebox_server::metrics::Metrics;
use timebox_server::store::Store;

const LOCKED: &str = "timebox-audit";
const PLAIN: &str = "timebox-plain";

/// moto's S3, through Timebox's own client (path-style: the endpoint is overridden).
async fn s3(moto: &Moto) -> aws_sdk_s3::Client {
    AwsSetup::new(moto.sdk_config().await, &AwsConfig::default()).s3()
}

/// A bucket with Object Lock and a default compliance retention of one day, and
/// one without.
async fn buckets(client: &aws_sdk_s3::Client) {
    client
        .create_bucket()
        .bucket(LOCKED)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    client
        .put_object_lock_configuration()
        .bucket(LOCKED)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Compliance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    client.create_bucket().bucket(PLAIN).send().await.unwrap();
}

fn bucket_at(client: &aws_sdk_s3::Client, location: &str) -> S3Checkpoints {
    S3Checkpoints::new(
        client.clone(),
        Calls::new(Arc::new(Metrics::new())),
        S3Location::parse(location).unwrap(),
    )
}

fn job(
    store: Arc<dyn Store>,
    clock: &timebox_server::clock::ManualClock,
    metrics: Arc<Metrics>,
    sink: Arc<dyn CheckpointSink>,
) -> CheckpointJob {
    CheckpointJob::new(
        store,
        Arc::new(clock.clone()),
        metrics,
        signer(),
        vec![sink, Arc::new(LogSink)],
        CheckpointSettings {
            every: 10,
            interval: std::time::Duration::from_secs(15 * 60),
        },
    )
}

async fn body_of(client: &aws_sdk_s3::Client, bucket: &str, key: &str) -> String {
    let out = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    String::from_utf8(out.body.collect().await.unwrap().to_vec()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_locked_objects_that_verify_reads_back() {
    let moto = Moto::start().await;
    let client = s3(&moto).await;
    buckets(&client).await;
    let db = TestDb::sqlite().await;
    let store = db.store();
    let clock = clock();
    let metrics = Arc::new(Metrics::new());
    let bucket = bucket_at(&client, "s3://timebox-audit/timebox/prod/");
    bucket
        .check_lock()
        .await
        .expect("the bucket has Object Lock");
    let sink = Arc::new(S3Sink::new(bucket.clone(), 2557, Arc::new(clock.clone())));
    let job = job(store.clone(), &clock, metrics.clone(), sink.clone());
    append(&store, &clock, 10).await;
    assert_eq!(job.pass().await.unwrap().written, Some(10));
    append(&store, &clock, 10).await;
    let pass = job.pass().await.unwrap();
    assert_eq!(pass.written, Some(20));
    assert!(pass.failed_sinks.is_empty(), "{pass:?}");

    // One object per checkpoint, named by its sequence, holding exactly its line.
    let listed = client
        .list_objects_v2()
        .bucket(LOCKED)
        .prefix("timebox/prod/")
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    let first = "timebox/prod/00000000000000000010.json";
    let second = "timebox/prod/00000000000000000020.json";
    assert_eq!(keys, [first, second]);
    let stored = timebox_server::audit::verify::database_checkpoints(store.as_ref())
        .await
        .unwrap();
    assert_eq!(
        body_of(&client, LOCKED, first).await,
        stored[0].to_json_line()
    );
    let sinks: Vec<String> = store
        .checkpoint_publications(10)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.sink)
        .collect();
    assert_eq!(sinks, ["log", "s3"]);

    // Locked in compliance mode for the retention, from the job's clock.
    let head = client
        .head_object()
        .bucket(LOCKED)
        .key(first)
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Compliance));
    let until = head.object_lock_retain_until_date().unwrap().secs();
    let want = (clock.now() + chrono::Duration::days(2557)).timestamp();
    assert!((until - want).abs() <= 60, "{until} vs {want}");
    let version = head.version_id().unwrap().to_owned();
    let deleted = client
        .delete_object()
        .bucket(LOCKED)
        .key(first)
        .version_id(&version)
        .send()
        .await;
    let refused = deleted.expect_err("a locked version cannot be deleted");
    use aws_sdk_s3::error::ProvideErrorMetadata;
    assert_eq!(refused.code(), Some("AccessDenied"), "{refused:?}");

    // Publishing again is harmless; another checkpoint for the same sequence is
    // refused, naming the object, and nothing is overwritten.
    sink.publish(&stored[0]).await.unwrap();
    let versions = client
        .list_object_versions()
        .bucket(LOCKED)
        .prefix(first)
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 1, "no second version");
    let other = signer().sign(Checkpoint {
        seq: 10,
        hash: "00".repeat(32),
        at: stored[0].at,
        events: 10,
    });
    match sink.publish(&other).await {
        Err(e @ SinkError::S3Conflict { .. }) => {
            assert!(
                e.to_string()
                    .contains("s3://timebox-audit/timebox/prod/00000000000000000010.json"),
                "{e}"
            );
        }
        other => panic!("expected a conflict: {other:?}"),
    }

    // verify reads the bucket: the chain passes through both checkpoints.
    let key = signer().verifying_key();
    let source = CheckpointSource::S3(bucket.clone());
    let r = verify(store.as_ref(), &source, Some(&key)).await.unwrap();
    assert!(r.is_intact(), "{}", r.summary());
    assert_eq!((r.checkpoints_read, r.checkpoints_verified), (2, 2));
    // The command, as the auditor runs it: [aws] from the environment.
    let dir = tempfile::tempdir().unwrap();
    let public = dir.path().join("audit.pub");
    std::fs::write(&public, signer().public_key_hex()).unwrap();
    let run = |location: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_timebox"))
            .args(["audit", "verify", "--database", db.url()])
            .args(["--checkpoints", location, "--public-key"])
            .arg(&public)
            .env_remove("TIMEBOX_CONFIG")
            .env("TIMEBOX_AWS__ENDPOINT_URL", &moto.url)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", crate::moto::REGION)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, text) = run("s3://timebox-audit/timebox/prod");
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("20 events verified, 2 checkpoints verified"),
        "{text}"
    );
    let (code, text) = run("s3://Timebox-Audit");
    assert_eq!(
        code,
        Some(2),
        "a malformed location is a usage error: {text}"
    );

    // Someone who can write to the bucket replaces the newest checkpoint with one
    // matching a rewritten chain: without the key it does not verify, and the
    // locked original is still there.
    rewrite_consistently(&db, &store, 12).await;
    let events = store.audit_events(None, 0, 100).await.unwrap();
    let forged = timebox_server::audit::CheckpointSigner::from_seed(&[7; 32]).sign(Checkpoint {
        seq: 20,
        hash: events[19].hash.clone(),
        at: stored[1].at,
        events: 20,
    });
    client
        .put_object()
        .bucket(LOCKED)
        .key(second)
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .body(forged.to_json_line().into_bytes().into())
        .send()
        .await
        .unwrap();
    let r = verify(store.as_ref(), &source, Some(&key)).await.unwrap();
    let b = r.first_broken.clone().expect("caught");
    assert_eq!(b.seq, 20, "{}", b.problem);
    assert_eq!(r.checkpoints_read, 3, "every version is read");
    assert!(
        r.source_problems
            .iter()
            .any(|p| p.contains(&format!("{second}: has 2 versions"))),
        "{:?}",
        r.source_problems
    );
    let versions = client
        .list_object_versions()
        .bucket(LOCKED)
        .prefix(second)
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 2, "the original version stays");

    // A consistent rewrite with the genuine objects in place is caught too (a fresh
    // prefix: the forged version above is itself under the bucket's default
    // compliance retention, and stays the key's newest).
    let fresh = bucket_at(&client, "s3://timebox-audit/timebox/fresh");
    let fresh_sink = S3Sink::new(fresh.clone(), 2557, Arc::new(clock.clone()));
    for c in &stored {
        fresh_sink.publish(c).await.unwrap();
    }
    // A delete marker (allowed under Object Lock) hides the first from a listing:
    // verify reads the versions, so it still counts, and says so.
    client
        .delete_object()
        .bucket(LOCKED)
        .key("timebox/fresh/00000000000000000010.json")
        .send()
        .await
        .unwrap();
    let r = verify(store.as_ref(), &CheckpointSource::S3(fresh), Some(&key))
        .await
        .unwrap();
    let b = r.first_broken.clone().expect("caught");
    assert_eq!(b.seq, 20, "{}", b.problem);
    assert!(
        b.problem.contains("after sequence 10 and up to 20"),
        "{}",
        b.problem
    );
    assert_eq!(
        r.checkpoints_verified, 1,
        "the hidden one at 10 still holds"
    );
    assert_eq!(r.source_problems.len(), 1, "{:?}", r.source_problems);
    assert!(
        r.source_problems[0].contains("00000000000000000010.json: a delete marker hides it"),
        "{:?}",
        r.source_problems
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_without_object_lock_is_refused_and_reported() {
    let moto = Moto::start().await;
    let client = s3(&moto).await;
    buckets(&client).await;
    let plain = bucket_at(&client, "s3://timebox-plain/timebox");
    match plain.check_lock().await {
        Err(e @ S3SetupError::NotLocked { .. }) => {
            let m = e.to_string();
            assert!(
                m.contains("timebox-plain does not have Object Lock enabled"),
                "{m}"
            );
            assert!(m.contains("audit.checkpoint_s3"), "{m}");
        }
        other => panic!("expected a refusal: {other:?}"),
    }
    match bucket_at(&client, "s3://timebox-nowhere")
        .check_lock()
        .await
    {
        Err(S3SetupError::NoBucket { .. }) => {}
        other => panic!("expected no bucket: {other:?}"),
    }
    // A lock cannot be asked for there: the sink fails (and is retried), it never
    // writes an unlocked object as if it were anchored.
    let db = TestDb::sqlite().await;
    let store = db.store();
    let clock = clock();
    let metrics = Arc::new(Metrics::new());
    let sink = Arc::new(S3Sink::new(plain.clone(), 2557, Arc::new(clock.clone())));
    let job = job(store.clone(), &clock, metrics.clone(), sink);
    append(&store, &clock, 10).await;
    let pass = job.pass().await.unwrap();
    assert_eq!(pass.failed_sinks, ["s3"]);
    assert_eq!(
        metrics
            .audit_checkpoint_publish_failures
            .with_label_values(&["s3"])
            .get(),
        1
    );
    // Checkpoints copied there by hand are read, and each reported as unlocked.
    let stored = timebox_server::audit::verify::database_checkpoints(store.as_ref())
        .await
        .unwrap();
    client
        .put_object()
        .bucket(PLAIN)
        .key("timebox/00000000000000000010.json")
        .body(stored[0].to_json_line().into_bytes().into())
        .send()
        .await
        .unwrap();
    let key = signer().verifying_key();
    let r = verify(store.as_ref(), &CheckpointSource::S3(plain), Some(&key))
        .await
        .unwrap();
    assert!(r.first_broken.is_none(), "the chain itself holds: {r:?}");
    assert!(!r.is_intact());
    assert_eq!(r.checkpoints_verified, 1);
    assert_eq!(r.source_problems.len(), 1, "{:?}", r.source_problems);
    let p = &r.source_problems[0];
    assert!(
        p.starts_with("s3://timebox-plain/timebox/00000000000000000010.json: not under a COMPLIANCE-mode Object Lock"),
        "{p}"
    );
    assert!(
        r.summary().contains("NOT all safely kept"),
        "{}",
        r.summary()
    );
    // moto (5.2) has no GetObjectRetention, so here the reason is that the retention
    // "cannot be read"; real S3 answers that the bucket has no Object Lock.
    // The control: without a lock, S3 lets that version be deleted.
    let head = client
        .head_object()
        .bucket(PLAIN)
        .key("timebox/00000000000000000010.json")
        .send()
        .await
        .unwrap();
    let mut delete = client
        .delete_object()
        .bucket(PLAIN)
        .key("timebox/00000000000000000010.json");
    if let Some(v) = head.version_id() {
        delete = delete.version_id(v);
    }
    delete
        .send()
        .await
        .expect("an unlocked object can be deleted");
}

/// The binary as an operator starts it: a bucket without Object Lock stops start-up,
/// saying so and how to fix it; with a locked bucket the server publishes there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_checks_the_bucket_and_publishes_to_it() {
    let moto = Moto::start().await;
    let client = s3(&moto).await;
    buckets(&client).await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("audit.key");
    timebox_server::audit::checkpoint::generate_key(&key).unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = timebox_server::store::connect(&url, 2).await.unwrap();
    append(&store, &clock(), 12).await;
    let port = crate::helpers::free_listener()
        .await
        .local_addr()
        .unwrap()
        .port();
    let timebox = |bucket: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_timebox"));
        for (k, _) in std::env::vars() {
            if k.starts_with("TIMEBOX_") || k.starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("TIMEBOX_SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("TIMEBOX_DATABASE__URL", &url)
            .env("TIMEBOX_REAPER__ENABLED", "false")
            .env("TIMEBOX_AUDIT__SIGNING_KEY_FILE", &key)
            .env(
                "TIMEBOX_AUDIT__CHECKPOINT_S3",
                format!("s3://{bucket}/timebox"),
            )
            .env("TIMEBOX_AWS__ENDPOINT_URL", &moto.url)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", crate::moto::REGION)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        cmd
    };
    let out = timebox(PLAIN).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "audit.checkpoint_s3: the bucket timebox-plain does not have Object Lock enabled"
        ),
        "{err}"
    );

    let mut child = timebox(LOCKED)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let object = "timebox/00000000000000000012.json";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let head = client.head_object().bucket(LOCKED).key(object).send().await;
        if let Ok(head) = head {
            assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Compliance));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint object was published"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let stopped = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(child.wait().unwrap().success());
    let c: SignedCheckpoint =
        serde_json::from_str(&body_of(&client, LOCKED, object).await).unwrap();
    assert_eq!((c.seq, c.events), (12, 12));
}

/// What the test receiver saw: the headers and body of each request.
type Seen = Arc<Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

/// A receiver on a free port answering `status` (changeable) to every POST.
async fn receiver(status: Arc<AtomicU16>) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let (s, st) = (seen.clone(), status);
    let app = axum::Router::new().route(
        "/checkpoints",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (s, st) = (s.clone(), st.clone());
                async move {
                    s.lock().unwrap().push((headers, body.to_vec()));
                    axum::http::StatusCode::from_u16(st.load(Ordering::SeqCst)).unwrap()
                }
            },
        ),
    );
    let listener = crate::helpers::free_listener().await;
    let url = format!("http://{}/checkpoints", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_gets_each_checkpoint_signed_and_a_refusal_is_retried() {
    let status = Arc::new(AtomicU16::new(503));
    let (url, seen) = receiver(status.clone()).await;
    let secret = "a-webhook-signing-key-0123456789";
    let db = TestDb::sqlite().await;
    let store = db.store();
    let clock = clock();
    let metrics = Arc::new(Metrics::new());
    let sink = WebhookSink::new(
        CheckpointWebhookConfig {
            url,
            secret: Secret::new(secret),
        },
        Arc::new(clock.clone()),
    )
    .unwrap();
    let job = job(store.clone(), &clock, metrics.clone(), Arc::new(sink));
    append(&store, &clock, 10).await;
    let pass = job.pass().await.unwrap();
    assert_eq!(pass.failed_sinks, ["webhook"], "a 503 is a failure");
    let failures = metrics
        .audit_checkpoint_publish_failures
        .with_label_values(&["webhook"]);
    assert_eq!(failures.get(), 1);
    status.store(204, Ordering::SeqCst);
    let pass = job.pass().await.unwrap();
    assert!(pass.failed_sinks.is_empty(), "{pass:?}");
    assert_eq!(failures.get(), 1);
    let sinks: Vec<String> = store
        .checkpoint_publications(10)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.sink)
        .collect();
    assert_eq!(sinks, ["log", "webhook"]);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "the refused attempt and the retry");
    let stored = timebox_server::audit::verify::database_checkpoints(store.as_ref())
        .await
        .unwrap();
    for (headers, body) in &seen {
        let h = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
        // The receiver's check, written as docs/audit.md tells a receiver to.
        use hmac::{Hmac, Mac};
        let ts = h("x-timebox-timestamp");
        assert_eq!(ts, clock.now().timestamp().to_string());
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{ts}.").as_bytes());
        mac.update(body);
        let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(h("x-timebox-signature"), want);
        assert_eq!(h("x-timebox-checkpoint-seq"), "10");
        assert_eq!(h("idempotency-key"), "audit-checkpoint-10");
        assert_eq!(h("content-type"), "application/json");
        let c: SignedCheckpoint = serde_json::from_slice(body).unwrap();
        assert_eq!(c, stored[0]);
        assert_eq!(c.verify(&signer().verifying_key()), Ok(()));
        assert_eq!(body, stored[0].to_json_line().as_bytes());
    }
}
