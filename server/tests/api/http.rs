//! The real server over HTTP.

use crate::helpers::{TestApp, TestDb};
use std::time::{Duration, Instant};

crate::on_both_backends!(ready_when_the_database_answers);

async fn ready_when_the_database_answers(db: &TestDb) {
    let app = TestApp::spawn(db).await;
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn healthz_answers() {
    let db = TestDb::sqlite().await;
    let app = TestApp::spawn(&db).await;
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"status": "ok"})
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn not_ready_when_the_database_is_gone() {
    let db = TestDb::postgres().await;
    let app = TestApp::spawn(&db).await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    // The database disappears under the running server (WITH (FORCE) ends its
    // connections): readiness must say so, liveness must not.
    db.drop_database().await;
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "database_unreachable");
    assert_eq!(app.get("/healthz").await.status(), 200);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_home_page_is_rendered_on_the_server() {
    let db = TestDb::sqlite().await;
    let app = TestApp::spawn(&db).await;
    let r = app.get("/").await;
    assert_eq!(r.status(), 200);
    assert!(r
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = r.text().await.unwrap();
    assert!(html.contains("How long does a grant really last?"));
    // The shared window function ran on the server: AWS's 10-hour example.
    assert!(html.contains(r#"data-testid="real-length">10h<"#), "{html}");
    assert!(
        html.contains("/pkg/timebox.js"),
        "hydration script is linked"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn an_unknown_page_is_a_404_page() {
    let db = TestDb::sqlite().await;
    let app = TestApp::spawn(&db).await;
    let r = app.get("/no/such/page").await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("Page not found"));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_is_graceful_and_prompt() {
    let db = TestDb::sqlite().await;
    let app = TestApp::spawn(&db).await;
    let url = app.url.clone();
    let started = Instant::now();
    app.stop().await.expect("clean stop");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stopped within the grace period"
    );
    assert!(
        reqwest::get(format!("{url}/healthz")).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn metrics_count_grants_by_state() {
    let db = TestDb::sqlite().await;
    let store = db.store();
    let grants = crate::helpers::grant_service(
        store.clone(),
        std::sync::Arc::new(timebox_server::clock::SystemClock),
    );
    for user in ["alice", "bob"] {
        crate::reaper::approved_grant(&grants, user, "111122223333", "ReadOnlyAccess", 60).await;
    }
    let app = TestApp::spawn(&db).await;
    let r = app.get("/metrics").await;
    assert_eq!(r.status(), 200);
    assert!(r
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let body = r.text().await.unwrap();
    assert!(
        body.contains("timebox_grants{state=\"approved\"} 2"),
        "{body}"
    );
    assert!(
        body.contains("timebox_grants{state=\"active\"} 0"),
        "{body}"
    );
    // Labelled families appear once they have a sample (see aws_errors.rs for the
    // AWS call and failure counters).
    for name in ["timebox_reaper_lag_seconds", "timebox_reaper_queue_depth"] {
        assert!(
            body.contains(&format!("# TYPE {name}")),
            "{name} missing:\n{body}"
        );
    }
    app.stop().await.unwrap();
}
