//! The JSON API over HTTP, signed in through the real OpenID provider, on both
//! backends: who may call what, the request → approve story, self-approval and MFA
//! refusals, machine-readable 4xx for bad input, keyset pages, the CSV export, the
//! OpenAPI document and the live event stream.

use crate::helpers::{browser_like_client, free_listener, TestApp, TestDb};
use crate::provider::{sign_in_at_provider, start_sign_in, TestProvider};
use serde_json::{json, Value};
use std::sync::Arc;
use timebox_server::store::{CatalogNode, CatalogPermissionSet, NodeKind};

const ACCOUNT: &str = "111122223333";

struct Api {
    app: TestApp,
    provider: TestProvider,
}

impl Api {
    async fn start(db: &TestDb) -> Api {
        // A synced catalog, as the reaper would have left it.
        db.store()
            .replace_catalog(
                &[CatalogPermissionSet {
                    arn: "arn:aws:sso:::permissionSet/ssoins-1/ps-1".into(),
                    name: "AdministratorAccess".into(),
                    description: None,
                    session_duration_seconds: 3600,
                }],
                &[
                    CatalogNode {
                        id: "r-root".into(),
                        kind: NodeKind::Root,
                        name: "Root".into(),
                        parent_id: None,
                    },
                    CatalogNode {
                        id: ACCOUNT.into(),
                        kind: NodeKind::Account,
                        name: "payments-prod".into(),
                        parent_id: Some("r-root".into()),
                    },
                ],
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        let listener = free_listener().await;
        let url = format!("http://{}", listener.local_addr().unwrap());
        let provider = TestProvider::start(&url).await;
        let oidc = provider.config(&url);
        let app = TestApp::spawn_on(
            listener,
            db,
            move |c| c.oidc = Some(oidc),
            Arc::new(timebox_server::clock::SystemClock),
        )
        .await;
        Api { app, provider }
    }

    /// A client signed in as `user` (its own cookie jar).
    async fn client(&self, user: &str) -> reqwest::Client {
        let client = browser_like_client();
        let authorize = start_sign_in(&client, &self.app.url).await;
        let callback = sign_in_at_provider(&authorize, &self.provider.issuer, user).await;
        let r = client.get(callback).send().await.unwrap();
        assert_eq!(r.status(), 303, "{user} signs in");
        client
    }

    async fn get(&self, c: &reqwest::Client, path: &str) -> (u16, Value) {
        let r = c
            .get(format!("{}{path}", self.app.url))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, c: &reqwest::Client, path: &str, body: Value) -> (u16, Value) {
        let r = c
            .post(format!("{}{path}", self.app.url))
            .header("origin", &self.app.url)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

fn ask(duration: &str) -> Value {
    json!({
        "account_id": ACCOUNT,
        "permission_set": "AdministratorAccess",
        "duration": duration,
        "justification": "Investigating the payments outage",
    })
}

async fn who_may_call_what(db: &TestDb) {
    let api = Api::start(db).await;
    let anonymous = browser_like_client();
    // (path, [anonymous, rita, arno, audrey, ada]) — 200 allowed, 401/403 refused.
    let table: &[(&str, [u16; 5])] = &[
        ("/api/v1/grants?mine=true", [401, 200, 200, 200, 200]),
        ("/api/v1/grants", [401, 403, 200, 200, 200]),
        (
            "/api/v1/grants/export?format=json",
            [401, 403, 200, 200, 200],
        ),
        ("/api/v1/inbox", [401, 403, 200, 403, 200]),
        ("/api/v1/active", [401, 200, 200, 200, 200]),
        ("/api/v1/admin/status", [401, 403, 403, 403, 200]),
        ("/api/v1/audit", [401, 403, 403, 200, 200]),
        ("/api/v1/request-options", [401, 200, 403, 403, 200]),
    ];
    let mut clients = vec![anonymous];
    for user in ["rita", "arno", "audrey", "ada"] {
        clients.push(api.client(user).await);
    }
    for (path, expected) in table {
        for (i, c) in clients.iter().enumerate() {
            let r = c
                .get(format!("{}{path}", api.app.url))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), expected[i], "{path} as caller #{i}");
            if expected[i] >= 400 {
                let body: Value = r.json().await.unwrap();
                assert!(body["error"]["code"].is_string(), "{path}: {body}");
            }
        }
    }
    // State-changing admin call: refused for everyone but admins, and for ada, an
    // admin signed in without MFA, until she steps up.
    for (i, c) in clients.iter().enumerate().take(5) {
        let (status, body) = api.post(c, "/api/v1/admin/catalog/sync", json!({})).await;
        assert_eq!(status, if i == 0 { 401 } else { 403 }, "{body}");
        let code = body["error"]["code"].as_str();
        if i == 4 {
            assert_eq!(code, Some("mfa_required"), "{body}");
        }
    }
}

async fn request_approve_and_refusals(db: &TestDb) {
    let api = Api::start(db).await;
    let rita = api.client("rita").await;
    let (status, grant) = api.post(&rita, "/api/v1/grants", ask("1h")).await;
    assert_eq!(status, 201, "{grant}");
    assert_eq!(grant["state"], "pending");
    let id = grant["id"].as_str().unwrap().to_owned();

    // Rita has no approver role; ada has every role but the request is not hers to
    // decide only if it is hers: ada asks for one herself.
    let (status, body) = api
        .post(&rita, &format!("/api/v1/grants/{id}/approve"), json!({}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let ada = api.client("ada").await;
    let (_, own) = api.post(&ada, "/api/v1/grants", ask("30m")).await;
    let own_id = own["id"].as_str().unwrap();
    let (status, body) = api
        .post(&ada, &format!("/api/v1/grants/{own_id}/approve"), json!({}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("own_request")),
        "{body}"
    );

    // Arno signed in without MFA: approving and denying are refused, saying so.
    let arno = api.client("arno").await;
    for decision in ["approve", "deny"] {
        let (status, body) = api
            .post(&arno, &format!("/api/v1/grants/{id}/{decision}"), json!({}))
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("mfa_required")),
            "{decision}: {body}"
        );
    }

    // Inbox: mia sees rita's request with its context, never her own.
    let mia = api.client("mia").await;
    let (status, inbox) = api.get(&mia, "/api/v1/inbox").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = inbox
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["grant"]["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&id.as_str()) && ids.contains(&own_id),
        "{inbox}"
    );
    let (status, approved) = api
        .post(
            &mia,
            &format!("/api/v1/grants/{id}/approve"),
            json!({ "comment": "ok" }),
        )
        .await;
    assert_eq!(
        (status, approved["state"].as_str()),
        (200, Some("approved")),
        "{approved}"
    );
    let (status, body) = api
        .post(&mia, &format!("/api/v1/grants/{id}/approve"), json!({}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("wrong_state")),
        "{body}"
    );

    // The auditor reads it with its approvals, audit trail and a verified chain.
    let audrey = api.client("audrey").await;
    let (status, detail) = api.get(&audrey, &format!("/api/v1/grants/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(detail["approvals"][0]["approver"], "mia");
    assert_eq!(detail["chain"]["ok"], true, "{detail}");
    assert!(detail["audit"].as_array().unwrap().len() >= 2);
    assert_eq!(detail["can_decide"], false);

    // The export carries it; CSV formulas are defused.
    let csv = audrey
        .get(format!(
            "{}/api/v1/grants/export?format=csv&user=rita",
            api.app.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("id,requester,account_id"));
    assert!(
        text.contains(&id) && !text.contains(own_id),
        "filtered by user"
    );

    // Rita cancels nothing that is not hers, and ends her own.
    let (status, _) = api
        .post(&rita, &format!("/api/v1/grants/{own_id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 403);
    let (status, cancelled) = api
        .post(
            &rita,
            &format!("/api/v1/grants/{id}/cancel"),
            json!({ "reason": "not needed" }),
        )
        .await;
    assert_eq!(
        (status, cancelled["state"].as_str()),
        (200, Some("cancelled"))
    );
}

async fn bad_input_gets_a_4xx_and_changes_nothing(db: &TestDb) {
    let api = Api::start(db).await;
    let rita = api.client("rita").await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({ "account_id": "12" }), 422, "account_id"),
        (json!("not an object"), 400, ""),
        (
            json!({ "account_id": "12", "permission_set": "AdministratorAccess", "duration": "1h", "justification": "a long enough reason" }),
            422,
            "account_id",
        ),
        (
            json!({ "account_id": "999999999999", "permission_set": "AdministratorAccess", "duration": "1h", "justification": "a long enough reason" }),
            422,
            "account_id",
        ),
        (
            json!({ "account_id": ACCOUNT, "permission_set": "NoSuchSet", "duration": "1h", "justification": "a long enough reason" }),
            422,
            "permission_set",
        ),
        (ask("13h"), 422, "duration"),
        (
            json!({ "account_id": ACCOUNT, "permission_set": "AdministratorAccess", "duration": "1h", "justification": "short" }),
            422,
            "justification",
        ),
        (
            json!({ "account_id": ACCOUNT, "permission_set": "AdministratorAccess", "duration": "1h", "justification": "a long enough reason", "start_at": "2001-01-01T00:00:00Z" }),
            422,
            "start_at",
        ),
    ];
    for (body, status, field) in cases {
        let (got, answer) = api.post(&rita, "/api/v1/grants", body.clone()).await;
        assert_eq!(got, status, "{body} → {answer}");
        assert!(answer["error"]["message"].is_string(), "{answer}");
        if !field.is_empty() {
            assert_eq!(answer["error"]["field"], field, "{answer}");
        }
    }
    // Not JSON at all.
    let r = rita
        .post(format!("{}/api/v1/grants", api.app.url))
        .header("origin", &api.app.url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Nothing was stored.
    let (_, mine) = api.get(&rita, "/api/v1/grants?mine=true").await;
    assert_eq!(mine["grants"].as_array().unwrap().len(), 0);

    let audrey = api.client("audrey").await;
    for (path, status, field) in [
        ("/api/v1/grants?cursor=garbage", 422, "cursor"),
        ("/api/v1/grants?limit=0", 422, "limit"),
        ("/api/v1/grants?limit=lots", 400, ""),
        ("/api/v1/grants?state=sideways", 422, "state"),
        ("/api/v1/grants?from=yesterday", 422, "from"),
        ("/api/v1/grants/not-a-uuid", 422, "grant_id"),
        (
            "/api/v1/grants/7d1f3c52-0000-4000-8000-000000000000",
            404,
            "",
        ),
        ("/api/v1/no-such-route", 404, ""),
        ("/api/v1/grants/export?format=xml", 422, "format"),
    ] {
        let (got, body) = api.get(&audrey, path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(body["error"]["code"].is_string(), "{path}: {body}");
        if !field.is_empty() {
            assert_eq!(body["error"]["field"], field, "{path}: {body}");
        }
    }
    // A state-changing call without Timebox's Origin is refused.
    let r = rita
        .post(format!("{}/api/v1/grants", api.app.url))
        .json(&ask("1h"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// The audit log for auditors: newest first, by grant, actor and action, paged by
/// sequence number; a wrong filter names its field.
async fn the_audit_log_pages_and_filters(db: &TestDb) {
    let api = Api::start(db).await;
    let rita = api.client("rita").await;
    let mut made = Vec::new();
    for _ in 0..3 {
        let (status, g) = api.post(&rita, "/api/v1/grants", ask("1h")).await;
        assert_eq!(status, 201);
        made.push(g["id"].as_str().unwrap().to_owned());
    }
    let audrey = api.client("audrey").await;
    let (status, page) = api
        .get(&audrey, &format!("/api/v1/audit?grant={}", made[1]))
        .await;
    assert_eq!(status, 200, "{page}");
    let events = page["events"].as_array().unwrap();
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e["grant_id"] == json!(made[1])));
    assert_eq!(
        page["audit"]["signing"],
        json!(false),
        "no key in this test"
    );
    let (_, page) = api
        .get(&audrey, "/api/v1/audit?action=request&actor=rita")
        .await;
    let requests: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["grant_id"].as_str().unwrap())
        .collect();
    let mut newest_first = made.clone();
    newest_first.reverse();
    assert_eq!(requests, newest_first);
    // Pages of one: each event once, newest first, until no `next`.
    let mut seqs = Vec::new();
    let mut before = String::new();
    loop {
        let (status, page) = api
            .get(
                &audrey,
                &format!("/api/v1/audit?action=request&limit=1{before}"),
            )
            .await;
        assert_eq!(status, 200, "{page}");
        for e in page["events"].as_array().unwrap() {
            seqs.push(e["seq"].as_i64().unwrap());
        }
        match page["next"].as_i64() {
            Some(n) => before = format!("&before={n}"),
            None => break,
        }
    }
    assert_eq!(seqs.len(), 3);
    assert!(seqs.windows(2).all(|w| w[0] > w[1]));
    for (query, field) in [
        ("grant=nope", "grant"),
        ("action=approved", "action"),
        ("from=yesterday", "from"),
    ] {
        let (status, body) = api.get(&audrey, &format!("/api/v1/audit?{query}")).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["error"]["field"], json!(field), "{body}");
    }
}

/// `POST /api/v1/audit/verify`: auditors and admins, one at a time, run by the
/// `audit-verify` job; the result is kept and read back, and a grant row edited
/// without an event fails it with the grant named.
async fn the_whole_record_is_verified_on_demand(db: &TestDb) {
    use timebox_server::audit::VerificationJob;
    let api = Api::start(db).await;
    let rita = api.client("rita").await;
    let audrey = api.client("audrey").await;
    let mut made = Vec::new();
    for _ in 0..3 {
        let (status, g) = api.post(&rita, "/api/v1/grants", ask("1h")).await;
        assert_eq!(status, 201);
        made.push(g["id"].as_str().unwrap().to_owned());
    }
    let (status, none) = api.get(&audrey, "/api/v1/audit/verify").await;
    assert_eq!((status, none), (200, Value::Null));
    let (status, body) = api.post(&rita, "/api/v1/audit/verify", json!({})).await;
    assert_eq!(status, 403, "a requester may not: {body}");
    let (status, queued) = api.post(&audrey, "/api/v1/audit/verify", json!({})).await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(queued["state"], "queued");
    assert_eq!(queued["requested_by"], "audrey");
    let (status, body) = api.post(&audrey, "/api/v1/audit/verify", json!({})).await;
    assert_eq!(status, 409, "one at a time: {body}");
    assert_eq!(body["error"]["code"], "verification_running");

    let job = VerificationJob::new(
        db.store(),
        Arc::new(timebox_server::clock::SystemClock),
        None,
        timebox_server::audit::CheckpointSource::Nothing,
    );
    assert_eq!(job.pass().await.unwrap().as_deref(), queued["id"].as_str());
    assert_eq!(job.pass().await.unwrap(), None, "nothing is open any more");
    let (_, done) = api.get(&audrey, "/api/v1/audit/verify").await;
    assert_eq!(done["state"], "passed", "{done}");
    let head = db.store().audit_head().await.unwrap().0;
    assert_eq!(done["events_verified"], json!(head));
    assert_eq!(done["grants_checked"], json!(3));
    assert!(
        done["summary"]
            .as_str()
            .unwrap()
            .contains("checkpoints were not checked"),
        "{done}"
    );
    let (_, page) = api.get(&audrey, "/api/v1/audit").await;
    assert_eq!(page["verification"]["id"], done["id"]);

    db.exec(&format!(
        "UPDATE grants SET duration_minutes = 600 WHERE id = '{}'",
        made[1]
    ))
    .await;
    let (status, _) = api.post(&audrey, "/api/v1/audit/verify", json!({})).await;
    assert_eq!(status, 202);
    job.pass().await.unwrap();
    let (_, failed) = api.get(&audrey, "/api/v1/audit/verify").await;
    assert_eq!(failed["state"], "failed", "{failed}");
    let problem = failed["problem"].as_str().unwrap();
    assert!(
        problem.starts_with(&format!("grant {}: ", made[1]))
            && problem.contains("duration_minutes is 600"),
        "{problem}"
    );
}

async fn history_pages_by_keyset_and_filters(db: &TestDb) {
    let api = Api::start(db).await;
    let rita = api.client("rita").await;
    let mut made = Vec::new();
    for i in 0..7 {
        let mut body = ask("1h");
        body["justification"] = json!(format!("Reason number {i} with 100% certainty"));
        let (status, g) = api.post(&rita, "/api/v1/grants", body).await;
        assert_eq!(status, 201);
        made.push(g["id"].as_str().unwrap().to_owned());
    }
    let audrey = api.client("audrey").await;
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = api
            .get(
                &audrey,
                &format!("/api/v1/grants?limit=3&user=rita&cursor={cursor}"),
            )
            .await;
        assert_eq!(status, 200, "{page}");
        for g in page["grants"].as_array().unwrap() {
            seen.push(g["id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(n) => cursor = n.to_owned(),
            None => break,
        }
    }
    made.reverse();
    assert_eq!(seen, made, "every grant once, newest first");
    // Whole words of the justification, case-insensitive; punctuation and query
    // syntax are never operators.
    let words = |page: &serde_json::Value| page["grants"].as_array().unwrap().len();
    let (_, page) = api.get(&audrey, "/api/v1/grants?text=NUMBER%203").await;
    assert_eq!(words(&page), 1, "{page}");
    let (_, page) = api.get(&audrey, "/api/v1/grants?text=100%25").await;
    assert_eq!(words(&page), 7);
    let (_, page) = api.get(&audrey, "/api/v1/grants?text=Certainty").await;
    assert_eq!(words(&page), 7, "a word finds it");
    let (_, page) = api.get(&audrey, "/api/v1/grants?text=certain").await;
    assert_eq!(words(&page), 0, "a part of a word does not");
    let (_, page) = api
        .get(&audrey, "/api/v1/grants?text=number%20OR%20nothing")
        .await;
    assert_eq!(words(&page), 0, "OR is a word, not an operator");
    let (_, page) = api
        .get(&audrey, "/api/v1/grants?text=%22reason%22*%20NOT%204")
        .await;
    assert_eq!(words(&page), 0, "quotes, * and NOT are not syntax");
    let (status, page) = api.get(&audrey, "/api/v1/grants?text=%25%25").await;
    assert_eq!(status, 422, "{page}");
    assert_eq!(page["error"]["field"], "text");
    let (_, page) = api.get(&audrey, "/api/v1/grants?state=approved").await;
    assert_eq!(page["grants"].as_array().unwrap().len(), 0);
    let (_, page) = api
        .get(
            &audrey,
            &format!("/api/v1/grants?account={ACCOUNT}&state=pending&from=2000-01-01"),
        )
        .await;
    assert_eq!(page["grants"].as_array().unwrap().len(), 7);
}

async fn the_openapi_document_matches_the_routes(db: &TestDb) {
    let api = Api::start(db).await;
    let anonymous = browser_like_client();
    let (status, doc) = api.get(&anonymous, "/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let id = "7d1f3c52-0000-4000-8000-000000000000";
    for (path, methods) in doc["paths"].as_object().unwrap() {
        let url = format!("{}{}", api.app.url, path.replace("{id}", id));
        for method in methods.as_object().unwrap().keys() {
            let r = match method.as_str() {
                "get" => anonymous.get(&url).send().await.unwrap(),
                "post" => anonymous
                    .post(&url)
                    .header("origin", &api.app.url)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap(),
                other => panic!("unexpected method {other}"),
            };
            let status = r.status().as_u16();
            // Documented routes exist: anonymous callers get 401 (or 200 for the
            // public ones), never 404/405.
            assert!(
                [200, 401].contains(&status),
                "{method} {path} answered {status}"
            );
        }
    }
}

async fn live_events_reach_the_requester(db: &TestDb) {
    let api = Api::start(db).await;
    let rita = api.client("rita").await;
    let mut stream = rita
        .get(format!("{}/api/v1/events", api.app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(stream.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let (_, g) = api.post(&rita, "/api/v1/grants", ask("1h")).await;
    let id = g["id"].as_str().unwrap().to_owned();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !text.contains(&id) {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .expect("the stream stays open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: grant"), "{text}");
    assert!(text.contains("\"state\":\"pending\""), "{text}");
    // An anonymous visitor gets no stream.
    let (status, _) = api.get(&browser_like_client(), "/api/v1/events").await;
    assert_eq!(status, 401);
}

/// Free text is a domain value: an invisible or text-direction character, or a
/// comment past its limit, is a 422 naming the field and changes nothing. A crafted
/// self-approval is refused, and counted on `/metrics`.
async fn typed_text_is_checked_and_a_self_approval_is_counted(db: &TestDb) {
    let api = Api::start(db).await;
    let rita = api.client("rita").await;
    let mut spoofed = ask("1h");
    spoofed["justification"] = json!("Investigating the \u{202E}txt.exe outage");
    let (status, body) = api.post(&rita, "/api/v1/grants", spoofed).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("justification")),
        "{body}"
    );
    let (status, grant) = api.post(&rita, "/api/v1/grants", ask("1h")).await;
    assert_eq!(status, 201, "{grant}");
    let id = grant["id"].as_str().unwrap().to_owned();
    let mia = api.client("mia").await;
    let (status, body) = api
        .post(
            &mia,
            &format!("/api/v1/grants/{id}/deny"),
            json!({ "comment": "x".repeat(1001) }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("comment")),
        "{body}"
    );
    let (status, body) = api
        .post(
            &rita,
            &format!("/api/v1/grants/{id}/cancel"),
            json!({ "reason": "done\u{200B}" }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("reason")),
        "{body}"
    );
    let (_, still) = api.get(&rita, &format!("/api/v1/grants/{id}")).await;
    assert_eq!(still["grant"]["state"], "pending");

    let ada = api.client("ada").await;
    let (_, own) = api.post(&ada, "/api/v1/grants", ask("30m")).await;
    let own_id = own["id"].as_str().unwrap();
    let (status, body) = api
        .post(&ada, &format!("/api/v1/grants/{own_id}/approve"), json!({}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("own_request"))
    );
    let metrics = api.app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(
            "timebox_refusals_total{operation=\"approve_grant\",reason=\"own_request\"} 1"
        ),
        "{metrics}"
    );
}

crate::on_both_backends!(
    who_may_call_what,
    request_approve_and_refusals,
    bad_input_gets_a_4xx_and_changes_nothing,
    typed_text_is_checked_and_a_self_approval_is_counted,
    history_pages_by_keyset_and_filters,
    the_audit_log_pages_and_filters,
    the_whole_record_is_verified_on_demand,
    the_openapi_document_matches_the_routes,
    live_events_reach_the_requester,
);
