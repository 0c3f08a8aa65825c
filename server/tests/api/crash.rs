//! Crash safety: the real `timebox` binary is killed (SIGKILL) in the middle of
//! provisioning and of revocation and started again on the same database and
//! emulator. Nothing is provisioned or revoked twice, and everything finishes.
//! One grant starts in the worst spot a crash can leave: `CreateAccountAssignment`
//! sent (and done in AWS) but its request id never stored. And two server processes
//! on one PostgreSQL database act on each grant exactly once.

use crate::helpers::TestDb;
use crate::moto::{seed, user_assignments, Moto};
use crate::reaper::approved_grant;
use app::domain::{Action, Actor, GrantId, GrantState, RevokeCause};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use timebox_server::clock::SystemClock;
use timebox_server::store::{GrantAws, GrantPatch, Store};

fn start_server(db_url: &str, moto_url: &str, dir: &std::path::Path) -> Child {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    Command::new(env!("CARGO_BIN_EXE_timebox"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TIMEBOX_DATABASE__URL", db_url)
        .env("TIMEBOX_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("TIMEBOX_REAPER__INTERVAL", "1s")
        .env("TIMEBOX_AWS__ENDPOINT_URL", moto_url)
        .env("TIMEBOX_AWS__CALL_TIMEOUT", "2s")
        // Slow enough that a kill lands in the middle of the work.
        .env("TIMEBOX_AWS__MAX_CALLS_PER_SECOND", "15")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("TIMEBOX_LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the timebox binary")
}

fn kill(mut child: Child) {
    // SIGKILL: no graceful shutdown, exactly like a crash.
    child.kill().expect("kill");
    child.wait().expect("wait");
}

async fn count_in(store: &Arc<dyn Store>, ids: &[GrantId], state: GrantState) -> usize {
    let mut n = 0;
    for id in ids {
        if store.get_grant(*id).await.unwrap().unwrap().state == state {
            n += 1;
        }
    }
    n
}

async fn wait_for(
    store: &Arc<dyn Store>,
    ids: &[GrantId],
    state: GrantState,
    at_least: usize,
    within: Duration,
) -> usize {
    let deadline = Instant::now() + within;
    loop {
        let n = count_in(store, ids, state).await;
        if n >= at_least || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_provisioning_and_mid_revocation_resumes_without_doubles() {
    let db = TestDb::sqlite().await;
    let users: Vec<String> = (0..24).map(|i| format!("crash{i:02}")).collect();
    let moto = Moto::start().await;
    let org = seed(&moto, &users).await;
    let prod = org.accounts[0].clone();
    let admin = org.permission_set("AdministratorAccess");
    let store = db.store();
    let grants = crate::helpers::grant_service(store.clone(), Arc::new(SystemClock));
    let mut ids = Vec::new();
    for u in &users {
        ids.push(
            approved_grant(&grants, u, &prod, "AdministratorAccess", 120)
                .await
                .id,
        );
    }
    // The worst spot: the create was sent and done, the answer never stored.
    let sent = approved_grant(&grants, "carol", &prod, "AdministratorAccess", 120).await;
    grants
        .act(
            sent.id,
            Action::StartProvisioning,
            &Actor::System,
            None,
            GrantPatch::default(),
            serde_json::json!({}),
        )
        .await
        .unwrap();
    store
        .save_grant_aws(
            sent.id,
            &GrantAws {
                principal_id: Some(org.user("carol")),
                permission_set_arn: Some(admin.clone()),
                create_started_at: Some(chrono::Utc::now()),
                ..GrantAws::default()
            },
        )
        .await
        .unwrap();
    crate::moto::assign(
        &moto,
        &org,
        &prod,
        &admin,
        aws_sdk_ssoadmin::types::PrincipalType::User,
        &org.user("carol"),
    )
    .await;
    ids.push(sent.id);

    let dir = tempfile::tempdir().unwrap();
    // Provisioning: kill once a few grants are active, before all are.
    let server = start_server(db.url(), &moto.url, dir.path());
    let active = wait_for(&store, &ids, GrantState::Active, 3, Duration::from_secs(60)).await;
    kill(server);
    assert!(active >= 3, "the server provisioned nothing in a minute");
    let after_kill = count_in(&store, &ids, GrantState::Active).await;
    assert!(
        after_kill < ids.len(),
        "killed too late to test anything ({after_kill} active)"
    );

    let server = start_server(db.url(), &moto.url, dir.path());
    let active = wait_for(
        &store,
        &ids,
        GrantState::Active,
        ids.len(),
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(active, ids.len(), "every grant active after the restart");
    let mut assigned = user_assignments(&moto, &org, &prod, &admin).await;
    assigned.sort();
    let mut expected: Vec<String> = users.iter().map(|u| org.user(u)).collect();
    expected.push(org.user("carol"));
    expected.sort();
    assert_eq!(
        assigned, expected,
        "one assignment per user: none created twice"
    );

    // Revocation: end them all early, kill in the middle, restart.
    for id in &ids {
        grants
            .act(
                *id,
                Action::Revoke(RevokeCause::Early),
                &Actor::System,
                Some("incident over".into()),
                GrantPatch::default(),
                serde_json::json!({}),
            )
            .await
            .unwrap();
    }
    let revoked = wait_for(
        &store,
        &ids,
        GrantState::Revoked,
        3,
        Duration::from_secs(60),
    )
    .await;
    kill(server);
    assert!(revoked >= 3);
    assert!(
        count_in(&store, &ids, GrantState::Revoked).await < ids.len(),
        "killed too late"
    );
    let server = start_server(db.url(), &moto.url, dir.path());
    let revoked = wait_for(
        &store,
        &ids,
        GrantState::Revoked,
        ids.len(),
        Duration::from_secs(90),
    )
    .await;
    kill(server);
    assert_eq!(revoked, ids.len());
    assert!(user_assignments(&moto, &org, &prod, &admin)
        .await
        .is_empty());
    for id in &ids {
        let events = store.audit_events(Some(*id), 0, 100).await.unwrap();
        let count = |a: &str| events.iter().filter(|e| e.action == a).count();
        assert_eq!(count("provision_succeeded"), 1, "{id}");
        assert_eq!(count("revoke_succeeded"), 1, "{id}");
    }
    assert!(crate::helpers::chain_of(store.as_ref()).await.is_intact());
}

/// Two server processes on one PostgreSQL database and one emulator: every grant is
/// provisioned once and revoked once (moto accepts duplicate assignments, so a double
/// create would show in its state; the audit log shows each transition once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_on_one_postgres_act_exactly_once() {
    let db = TestDb::postgres().await;
    let users: Vec<String> = (0..20).map(|i| format!("pair{i:02}")).collect();
    let moto = Moto::start().await;
    let org = seed(&moto, &users).await;
    let staging = org.accounts[1].clone();
    let ro = org.permission_set("ReadOnlyAccess");
    let store = db.store();
    let grants = crate::helpers::grant_service(store.clone(), Arc::new(SystemClock));
    let mut ids = Vec::new();
    for u in &users {
        ids.push(
            approved_grant(&grants, u, &staging, "ReadOnlyAccess", 120)
                .await
                .id,
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let first = start_server(db.url(), &moto.url, dir.path());
    let second = start_server(db.url(), &moto.url, dir.path());
    let active = wait_for(
        &store,
        &ids,
        GrantState::Active,
        ids.len(),
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(active, ids.len());
    let mut assigned = user_assignments(&moto, &org, &staging, &ro).await;
    assigned.sort();
    let mut expected: Vec<String> = users.iter().map(|u| org.user(u)).collect();
    expected.sort();
    assert_eq!(assigned, expected, "one assignment per user");
    for id in &ids {
        grants
            .act(
                *id,
                Action::Revoke(RevokeCause::Early),
                &Actor::System,
                Some("done".into()),
                GrantPatch::default(),
                serde_json::json!({}),
            )
            .await
            .unwrap();
    }
    let revoked = wait_for(
        &store,
        &ids,
        GrantState::Revoked,
        ids.len(),
        Duration::from_secs(90),
    )
    .await;
    kill(first);
    kill(second);
    assert_eq!(revoked, ids.len());
    assert!(user_assignments(&moto, &org, &staging, &ro)
        .await
        .is_empty());
    for id in &ids {
        let events = store.audit_events(Some(*id), 0, 100).await.unwrap();
        let count = |a: &str| events.iter().filter(|e| e.action == a).count();
        assert_eq!(count("start_provisioning"), 1, "{id}");
        assert_eq!(count("provision_succeeded"), 1, "{id}");
        assert_eq!(count("revoke_succeeded"), 1, "{id}");
    }
    db.drop_database().await;
}
