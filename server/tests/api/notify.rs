//! Notifications against real receivers: a local SMTP server (PyPI `aiosmtpd`, a
//! Maildir the test reads back), an HTTP receiver (axum, here) that verifies the
//! webhook's HMAC signature and checks the Slack payload against Slack's documented
//! webhook format, and the outbox on both backends: written with the change, delivered
//! once, retried with backoff, delivered later after a crash.

use crate::helpers::TestDb;
use app::domain::{
    AccountId, Action, Actor, Grant, GrantDuration, GrantRequest, GrantState, Justification,
    PermissionSetName, PersonId, PortalSession, RoleSet,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{Duration, TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use timebox_server::clock::{Clock, ManualClock};
use timebox_server::config::{EmailConfig, Secret, SlackConfig, SmtpTls, WebhookConfig};
use timebox_server::identity_center::{IdentityCenter, UserKey, UserMatch};
use timebox_server::metrics::Metrics;
use timebox_server::notify::channels::Channels;
use timebox_server::notify::{
    self, DirectoryRecipients, NotificationEvent, NotifyWorker, Recipients, WorkerSettings,
};
use timebox_server::services::grants::GrantService;
use timebox_server::store::{GrantPatch, Store};

const WEBHOOK_SECRET: &str = "0123456789abcdef-test-signing-key";

// --- the SMTP server ---------------------------------------------------------------

/// `python3 -m aiosmtpd` with the Maildir handler, on a free port; killed on drop.
pub struct Smtpd {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
    l.local_addr().expect("address").port()
}

impl Smtpd {
    pub async fn start() -> Smtpd {
        let python = std::env::var("TIMEBOX_SMTPD_PYTHON").unwrap_or_else(|_| "python3".into());
        let dir = tempfile::tempdir().expect("maildir");
        let port = free_port();
        let child = Command::new(&python)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(dir.path().join("Maildir"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {python} -m aiosmtpd (pip install aiosmtpd, or run .ci/setup): {e}")
            });
        let smtpd = Smtpd { child, port, dir };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return smtpd;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("aiosmtpd did not listen on {port} within 10s (is aiosmtpd installed for {python}? .ci/setup installs it)");
    }

    /// Every message received, raw (headers and body).
    pub fn messages(&self) -> Vec<String> {
        let new = self.dir.path().join("Maildir").join("new");
        let Ok(entries) = std::fs::read_dir(&new) else {
            return Vec::new();
        };
        let mut out: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect();
        out.sort();
        out
    }
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A header's value (first occurrence, unfolded).
fn header(raw: &str, name: &str) -> Option<String> {
    let head = raw
        .split("\r\n\r\n")
        .next()
        .or_else(|| raw.split("\n\n").next())?;
    let mut out: Option<String> = None;
    for line in head.lines() {
        if let Some(v) = &mut out {
            if line.starts_with(' ') || line.starts_with('\t') {
                v.push_str(line.trim_start());
                continue;
            }
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case(name) {
                out = Some(v.trim().to_owned());
            }
        }
    }
    out
}

/// The text of a quoted-printable or plain body, soft line breaks removed.
fn unfold_qp(raw: &str) -> String {
    raw.replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

// --- the HTTP receiver ---------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Clone)]
struct ReceiverState {
    slack: Arc<Mutex<Vec<Received>>>,
    webhook: Arc<Mutex<Vec<Received>>>,
    /// Webhook requests refused for a bad signature.
    rejected: Arc<Mutex<usize>>,
    /// Answer 500 to this many requests first.
    fail_next: Arc<Mutex<usize>>,
    clock: ManualClock,
}

pub struct Receiver {
    pub url: String,
    state: ReceiverState,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start(clock: ManualClock) -> Receiver {
        let state = ReceiverState {
            slack: Arc::default(),
            webhook: Arc::default(),
            rejected: Arc::default(),
            fail_next: Arc::default(),
            clock,
        };
        let app = axum::Router::new()
            .route("/slack", axum::routing::post(slack_hook))
            .route("/webhook", axum::routing::post(webhook_hook))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, state, task }
    }

    pub fn slack(&self) -> Vec<Received> {
        self.state.slack.lock().unwrap().clone()
    }
    pub fn webhook(&self) -> Vec<Received> {
        self.state.webhook.lock().unwrap().clone()
    }
    pub fn rejected(&self) -> usize {
        *self.state.rejected.lock().unwrap()
    }
    pub fn fail_next(&self, n: usize) {
        *self.state.fail_next.lock().unwrap() = n;
    }
}

fn take_failure(s: &ReceiverState) -> bool {
    let mut n = s.fail_next.lock().unwrap();
    if *n > 0 {
        *n -= 1;
        true
    } else {
        false
    }
}

/// The receiver's check of Slack's documented incoming-webhook payload: `text` (the
/// notification fallback) and Block Kit `blocks` within Slack's limits.
pub fn check_slack_payload(p: &Value) -> Result<(), String> {
    let obj = p.as_object().ok_or("not a JSON object")?;
    for k in obj.keys() {
        if !["text", "blocks"].contains(&k.as_str()) {
            return Err(format!("unexpected top-level key {k}"));
        }
    }
    let text = obj.get("text").and_then(Value::as_str).ok_or("no text")?;
    if text.is_empty() {
        return Err("empty text".into());
    }
    let blocks = obj
        .get("blocks")
        .and_then(Value::as_array)
        .ok_or("no blocks")?;
    if blocks.is_empty() || blocks.len() > 50 {
        return Err(format!("{} blocks (1..=50)", blocks.len()));
    }
    let text_obj = |t: &Value, max: usize, types: &[&str]| -> Result<(), String> {
        let ty = t
            .get("type")
            .and_then(Value::as_str)
            .ok_or("text object without type")?;
        if !types.contains(&ty) {
            return Err(format!("text type {ty}"));
        }
        let s = t
            .get("text")
            .and_then(Value::as_str)
            .ok_or("text object without text")?;
        if s.is_empty() || s.chars().count() > max {
            return Err(format!(
                "text of {} characters (max {max})",
                s.chars().count()
            ));
        }
        Ok(())
    };
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("header") => text_obj(&b["text"], 150, &["plain_text"])?,
            Some("section") => {
                let has_text = b.get("text").is_some();
                if has_text {
                    text_obj(&b["text"], 3000, &["mrkdwn", "plain_text"])?;
                }
                match b.get("fields").and_then(Value::as_array) {
                    Some(f) => {
                        if f.len() > 10 {
                            return Err("more than 10 fields".into());
                        }
                        for x in f {
                            text_obj(x, 2000, &["mrkdwn", "plain_text"])?;
                        }
                    }
                    None if !has_text => return Err("section without text or fields".into()),
                    None => {}
                }
            }
            Some("actions") => {
                let els = b["elements"].as_array().ok_or("actions without elements")?;
                for e in els {
                    if e["type"] != "button" {
                        return Err("non-button action".into());
                    }
                    text_obj(&e["text"], 75, &["plain_text"])?;
                    let url = e["url"].as_str().ok_or("button without url")?;
                    if url.len() > 3000 || !url.starts_with("http") {
                        return Err(format!("bad button url {url}"));
                    }
                }
            }
            Some("context") => {
                let els = b["elements"].as_array().ok_or("context without elements")?;
                if els.is_empty() || els.len() > 10 {
                    return Err("context elements".into());
                }
                for e in els {
                    text_obj(e, 3000, &["mrkdwn", "plain_text"])?;
                }
            }
            Some("divider") => {}
            other => return Err(format!("unexpected block type {other:?}")),
        }
    }
    Ok(())
}

async fn slack_hook(
    State(s): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    if take_failure(&s) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "internal_error");
    }
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "invalid_payload");
    };
    if let Err(e) = check_slack_payload(&json) {
        eprintln!("slack payload refused: {e}");
        return (StatusCode::BAD_REQUEST, "invalid_blocks");
    }
    s.slack.lock().unwrap().push(Received {
        headers,
        body: json,
    });
    (StatusCode::OK, "ok")
}

/// What a SIEM does with Timebox's webhook: recompute the signature over
/// `timestamp + "." + body` and compare in constant time, and refuse stale timestamps.
pub fn verify_signature(secret: &[u8], headers: &HeaderMap, body: &[u8], now: i64) -> bool {
    let Some(ts) = headers
        .get("x-timebox-timestamp")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
    else {
        return false;
    };
    if (now - ts).abs() > 300 {
        return false;
    }
    let Some(sig) = headers
        .get("x-timebox-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|v| hex::decode(v).ok())
    else {
        return false;
    };
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

async fn webhook_hook(
    State(s): State<ReceiverState>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if !verify_signature(
        WEBHOOK_SECRET.as_bytes(),
        &headers,
        &body,
        s.clock.now().timestamp(),
    ) {
        *s.rejected.lock().unwrap() += 1;
        return StatusCode::UNAUTHORIZED;
    }
    if take_failure(&s) {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    s.webhook.lock().unwrap().push(Received {
        headers,
        body: json,
    });
    StatusCode::NO_CONTENT
}

// --- the rig ---------------------------------------------------------------------------

pub fn start_time() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

fn settings(public_url: &str) -> WorkerSettings {
    WorkerSettings {
        interval: std::time::Duration::from_secs(1),
        lease: std::time::Duration::from_secs(60),
        batch: 100,
        concurrency: 4,
        backoff_base: std::time::Duration::from_secs(5),
        backoff_cap: std::time::Duration::from_secs(60),
        retry_for: std::time::Duration::from_secs(3600),
        ending_soon: std::time::Duration::from_secs(600),
        public_url: public_url.to_owned(),
        portal_session: PortalSession::DEFAULT,
    }
}

pub struct Rig {
    pub smtpd: Smtpd,
    pub receiver: Receiver,
    pub clock: ManualClock,
    pub store: Arc<dyn Store>,
    pub grants: GrantService,
    pub channels: Channels,
    pub recipients: Arc<dyn Recipients>,
    pub metrics: Arc<Metrics>,
}

const PUBLIC_URL: &str = "https://timebox.example.com";

impl Rig {
    pub async fn new(db: &TestDb) -> Rig {
        Self::with_webhook_secret(db, WEBHOOK_SECRET).await
    }

    pub async fn with_webhook_secret(db: &TestDb, secret: &str) -> Rig {
        let smtpd = Smtpd::start().await;
        let clock = ManualClock::new(start_time());
        let receiver = Receiver::start(clock.clone()).await;
        let mut config = timebox_server::config::Config::default();
        config.notify.email = Some(EmailConfig {
            smtp_host: "127.0.0.1".into(),
            smtp_port: smtpd.port,
            tls: SmtpTls::None,
            username: None,
            password: None,
            from: "Timebox <timebox@example.com>".into(),
            approvers_to: vec!["leads@example.com".into()],
            auditors_to: vec!["audit@example.com".into()],
            events: Vec::new(),
        });
        config.notify.slack = Some(SlackConfig {
            webhook_url: Secret::new(format!("{}/slack", receiver.url)),
            events: Vec::new(),
        });
        config.notify.webhook = Some(WebhookConfig {
            url: format!("{}/webhook", receiver.url),
            secret: Secret::new(secret),
            events: Vec::new(),
        });
        config.identity_center.user_match = UserMatch::Email;
        let channels = Channels::from_config(&config).expect("channels");
        let metrics = Arc::new(Metrics::new());
        // Matching by email needs no directory call for a person; no groups are set,
        // so the identity store is never asked here (the moto test covers it).
        let ic: Arc<dyn IdentityCenter> = Arc::new(
            timebox_server::identity_center::sdk::SdkIdentityCenter::from_config(
                &config.aws,
                &config.identity_center,
                metrics.clone(),
            )
            .await,
        );
        let recipients: Arc<dyn Recipients> =
            Arc::new(DirectoryRecipients::from_config(&config, ic));
        let store = db.store();
        let grants = crate::helpers::grant_service(store.clone(), Arc::new(clock.clone()));
        Rig {
            smtpd,
            receiver,
            clock,
            store,
            grants,
            channels,
            recipients,
            metrics,
        }
    }

    pub fn worker(&self) -> NotifyWorker {
        NotifyWorker::new(
            self.store.clone(),
            Arc::new(self.clock.clone()),
            self.metrics.clone(),
            self.channels.clone(),
            self.recipients.clone(),
            settings(PUBLIC_URL),
        )
    }

    pub async fn request(&self, approvals: u32) -> Grant {
        self.grants
            .request(
                GrantRequest {
                    requester: PersonId::parse("rita@example.com").unwrap(),
                    account_id: AccountId::parse("111122223333").unwrap(),
                    // The test policy approves ReadOnlyAccess automatically and asks one
                    // approval for the rest.
                    permission_set: PermissionSetName::parse(if approvals == 0 {
                        "ReadOnlyAccess"
                    } else {
                        "AdministratorAccess"
                    })
                    .unwrap(),
                    justification: Justification::parse("INC-7 <b>checkout</b> is down & paging")
                        .unwrap(),
                    ticket: None,
                    duration: GrantDuration::from_minutes(60, None).unwrap(),
                    requested_start: None,
                    approvals_required: approvals,
                    extends: None,
                },
                &[],
            )
            .await
            .unwrap()
    }

    async fn kinds(&self, g: &Grant) -> Vec<(String, String, String, String)> {
        self.store
            .grant_deliveries(g.id)
            .await
            .unwrap()
            .into_iter()
            .map(|d| {
                (
                    d.kind.as_str().to_owned(),
                    d.channel,
                    d.recipient,
                    d.state.as_str().to_owned(),
                )
            })
            .collect()
    }
}

fn approver() -> Actor {
    Actor::Person {
        id: PersonId::parse("mia").unwrap(),
        roles: RoleSet::of(&[app::domain::Role::Approver]),
    }
}

async fn seed_catalog(store: &Arc<dyn Store>) {
    store
        .replace_catalog(
            &[timebox_server::store::CatalogPermissionSet {
                arn: "arn:aws:sso:::permissionSet/ssoins-1/ps-1".into(),
                name: "AdministratorAccess".into(),
                description: None,
                session_duration_seconds: 3600,
            }],
            &[],
            start_time(),
        )
        .await
        .unwrap();
}

// --- the tests ---------------------------------------------------------------------

/// A new request reaches the approvers by email (with the approve link and the real
/// window's preview), Slack (a payload in Slack's format) and the signed webhook;
/// another pass sends nothing again.
async fn new_request_reaches_every_channel_once(db: &TestDb) {
    let rig = Rig::new(db).await;
    seed_catalog(&rig.store).await;
    let g = rig.request(1).await;
    // Written with the request, before any worker ran.
    let stats = rig.store.outbox_stats().await.unwrap();
    assert_eq!(stats.unfanned_events, 1);

    let report = rig.worker().pass().await.unwrap();
    assert_eq!(report.fanned_out, 1);
    assert_eq!(report.delivered, 3, "{report:?}");

    let mail = rig.smtpd.messages();
    assert_eq!(mail.len(), 1, "{mail:?}");
    let m = &mail[0];
    let link = format!("{PUBLIC_URL}/grants/{}", g.id);
    assert!(
        header(m, "Subject").unwrap().contains("Approval needed"),
        "{m}"
    );
    assert_eq!(header(m, "To").unwrap(), "leads@example.com");
    assert!(header(m, "From").unwrap().contains("timebox@example.com"));
    let deliveries = rig.store.grant_deliveries(g.id).await.unwrap();
    let email = deliveries.iter().find(|d| d.channel == "email").unwrap();
    assert_eq!(
        header(m, "Message-ID").unwrap(),
        format!("<{}@example.com>", email.id)
    );
    assert_eq!(
        header(m, "X-Timebox-Event-Id").unwrap(),
        email.event_id.to_string()
    );
    assert_eq!(
        header(m, "X-Timebox-Delivery-Id").unwrap(),
        email.id.to_string()
    );
    let body = unfold_qp(m);
    assert!(body.contains(&link), "the approve link: {body}");
    assert!(body.contains("Review and approve"));
    assert!(body.contains("text/plain") && body.contains("text/html"));
    assert!(body.contains("Real window if approved now"), "{body}");
    // 1h grant + 8h portal + 1h permission-set session.
    assert!(body.contains("19:00 UTC"), "{body}");
    // People's text is escaped in the HTML part.
    assert!(body.contains("&lt;b&gt;checkout&lt;/b&gt;"), "{body}");

    let slack = rig.receiver.slack();
    assert_eq!(slack.len(), 1);
    check_slack_payload(&slack[0].body).unwrap();
    let s = slack[0].body.to_string();
    assert!(s.contains(&link), "{s}");
    assert!(s.contains("&lt;b&gt;checkout"), "mrkdwn is escaped: {s}");
    assert!(!s.contains("<b>"), "{s}");

    let hooks = rig.receiver.webhook();
    assert_eq!(hooks.len(), 1);
    assert_eq!(rig.receiver.rejected(), 0);
    let h = &hooks[0];
    assert_eq!(h.body["kind"], "new_request");
    assert_eq!(h.body["grant"]["id"], g.id.to_string());
    assert_eq!(h.body["url"], link);
    assert_eq!(h.body["real_window"]["preview"], true);
    let webhook = deliveries.iter().find(|d| d.channel == "webhook").unwrap();
    assert_eq!(
        h.headers["idempotency-key"],
        webhook.id.to_string().as_str()
    );
    assert_eq!(
        h.headers["x-timebox-event-id"],
        webhook.event_id.to_string().as_str()
    );

    // Nothing is sent twice.
    let again = rig.worker().pass().await.unwrap();
    assert_eq!((again.fanned_out, again.delivered), (0, 0));
    assert_eq!(rig.smtpd.messages().len(), 1);
    assert_eq!(rig.receiver.slack().len(), 1);
    assert_eq!(rig.receiver.webhook().len(), 1);
    assert!(deliveries.iter().all(|d| d.state.as_str() == "delivered"));
    let metrics = rig.metrics.render();
    assert!(
        metrics.contains("timebox_notifications_delivered_total{channel=\"email\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("timebox_notification_outbox_depth 0"));
}

/// Each lifecycle step tells the right people; non-transition events are enqueued
/// once whatever the number of calls.
async fn every_event_reaches_its_audience(db: &TestDb) {
    let rig = Rig::new(db).await;
    let g = rig.request(1).await;
    rig.grants
        .act(
            g.id,
            Action::Approve,
            &approver(),
            Some("ok, go".into()),
            GrantPatch::default(),
            serde_json::json!({}),
        )
        .await
        .unwrap();
    rig.grants
        .act(
            g.id,
            Action::StartProvisioning,
            &Actor::System,
            None,
            GrantPatch::default(),
            serde_json::json!({}),
        )
        .await
        .unwrap();
    let now = rig.clock.now();
    rig.grants
        .act(
            g.id,
            Action::ProvisionSucceeded,
            &Actor::System,
            None,
            GrantPatch {
                activated_at: Some(now),
                ends_at: Some(now + Duration::minutes(60)),
                permission_set_session_seconds: Some(3600),
                portal_session_seconds: Some(8 * 3600),
                real_end: Some(now + Duration::hours(10)),
                ..GrantPatch::default()
            },
            serde_json::json!({}),
        )
        .await
        .unwrap();
    let w = rig.worker();
    w.pass().await.unwrap();
    // Ending soon: not yet; then exactly once however often the scan runs.
    assert_eq!(w.pass().await.unwrap().ending_soon_enqueued, 0);
    rig.clock.advance(Duration::minutes(51));
    assert_eq!(w.pass().await.unwrap().ending_soon_enqueued, 1);
    assert_eq!(w.pass().await.unwrap().ending_soon_enqueued, 0);
    // The reaper's alert, break-glass and the evidence events, through `enqueue`.
    let at = rig.clock.now();
    for _ in 0..2 {
        notify::enqueue(
            rig.store.as_ref(),
            g.id,
            NotificationEvent::RevocationFailing {
                attempts: 3,
                error: "ThrottlingException".into(),
            },
            at,
        )
        .await
        .unwrap();
        notify::enqueue(
            rig.store.as_ref(),
            g.id,
            NotificationEvent::BreakGlassUsed,
            at,
        )
        .await
        .unwrap();
        notify::enqueue(
            rig.store.as_ref(),
            g.id,
            NotificationEvent::ActivityAfterRevocation {
                first_at: at,
                last_at: at,
                events: 4,
            },
            at,
        )
        .await
        .unwrap();
        notify::enqueue(
            rig.store.as_ref(),
            g.id,
            NotificationEvent::InvestigationSevere {
                investigation_id: "inv-1".into(),
                severity: "CRITICAL".into(),
            },
            at,
        )
        .await
        .unwrap();
    }
    w.pass().await.unwrap();

    let emails: Vec<(String, String)> = rig
        .kinds(&g)
        .await
        .into_iter()
        .filter(|(_, c, _, _)| c == "email")
        .map(|(k, _, r, s)| {
            assert_eq!(s, "delivered");
            (k, r)
        })
        .collect();
    let want = [
        ("new_request", "leads@example.com"),
        ("decision", "rita@example.com"),
        ("grant_active", "rita@example.com"),
        ("ending_soon", "rita@example.com"),
        ("revocation_failing", "audit@example.com"),
        ("revocation_failing", "leads@example.com"),
        ("break_glass_used", "audit@example.com"),
        ("break_glass_used", "leads@example.com"),
        ("activity_after_revocation", "audit@example.com"),
        ("investigation_severe", "audit@example.com"),
    ];
    for (k, r) in want {
        assert_eq!(
            emails.iter().filter(|(ek, er)| ek == k && er == r).count(),
            1,
            "{k} to {r}: {emails:?}"
        );
    }
    assert_eq!(emails.len(), want.len(), "{emails:?}");
    // Slack and the webhook carry every event once.
    assert_eq!(rig.receiver.slack().len(), 8);
    assert_eq!(rig.receiver.webhook().len(), 8);
    let mail = rig.smtpd.messages();
    assert_eq!(mail.len(), want.len());
    let decision = mail
        .iter()
        .find(|m| header(m, "Subject").unwrap().starts_with("Approved"))
        .unwrap();
    assert!(
        unfold_qp(decision).contains("approved by mia"),
        "{decision}"
    );
    let active = mail
        .iter()
        .find(|m| header(m, "Subject").unwrap().starts_with("Active now"))
        .unwrap();
    assert!(
        unfold_qp(active).contains("Real window (worst case)"),
        "{active}"
    );
}

/// A receiver error (500) is retried with backoff, then delivered, once; the retry
/// carries the same delivery id.
async fn a_failed_delivery_is_retried_with_backoff(db: &TestDb) {
    let rig = Rig::new(db).await;
    let g = rig.request(1).await;
    rig.receiver.fail_next(1);
    let w = rig.worker();
    let first = w.pass().await.unwrap();
    assert_eq!(first.failed, 1, "{first:?}");
    let failed: Vec<_> = rig
        .store
        .grant_deliveries(g.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.state.as_str() == "pending")
        .collect();
    assert_eq!(failed.len(), 1);
    let f = &failed[0];
    assert_eq!(f.attempts, 1);
    assert!(f.last_error.as_deref().unwrap().contains("500"), "{f:?}");
    assert!(f.next_attempt_at >= start_time() + Duration::seconds(5));
    assert!(f.next_attempt_at <= start_time() + Duration::seconds(10));
    // Not before its time.
    assert_eq!(w.pass().await.unwrap().delivered, 0);
    rig.clock.advance(Duration::seconds(11));
    let second = w.pass().await.unwrap();
    assert_eq!(second.delivered, 1, "{second:?}");
    assert_eq!(w.pass().await.unwrap().delivered, 0);
    assert_eq!(rig.smtpd.messages().len(), 1);
    assert_eq!(rig.receiver.slack().len() + rig.receiver.webhook().len(), 2);
    assert!(rig
        .store
        .grant_deliveries(g.id)
        .await
        .unwrap()
        .iter()
        .all(|d| d.state.as_str() == "delivered"));
    assert!(rig
        .metrics
        .render()
        .lines()
        .any(|l| l.starts_with("timebox_notifications_failed_total") && l.ends_with(" 1")));
}

/// A wrong signing key is refused by the receiver; Timebox keeps retrying (the
/// delivery stays pending) until `retry_for`, then gives it up.
async fn a_bad_signature_is_refused_and_eventually_abandoned(db: &TestDb) {
    let rig = Rig::with_webhook_secret(db, "not-the-key-the-receiver-knows").await;
    let g = rig.request(1).await;
    let w = rig.worker();
    w.pass().await.unwrap();
    assert_eq!(rig.receiver.rejected(), 1);
    assert!(rig.receiver.webhook().is_empty());
    let hook = |ds: Vec<timebox_server::store::DeliveryStatus>| {
        ds.into_iter().find(|d| d.channel == "webhook").unwrap()
    };
    let d = hook(rig.store.grant_deliveries(g.id).await.unwrap());
    assert_eq!((d.state.as_str(), d.attempts), ("pending", 1));
    assert!(d.last_error.unwrap().contains("401"));
    rig.clock.advance(Duration::hours(2));
    let r = w.pass().await.unwrap();
    assert_eq!(r.abandoned, 1, "{r:?}");
    let d = hook(rig.store.grant_deliveries(g.id).await.unwrap());
    assert_eq!(d.state.as_str(), "abandoned");
    rig.clock.advance(Duration::hours(2));
    w.pass().await.unwrap();
    assert_eq!(
        rig.receiver.rejected(),
        2,
        "an abandoned delivery is not sent again"
    );
}

/// A crash between the change and the delivery: the change is committed and no
/// worker ran (or one claimed the delivery and died). A later worker delivers it,
/// once.
async fn a_crash_between_change_and_delivery_delivers_later_once(db: &TestDb) {
    let rig = Rig::new(db).await;
    let g = rig.request(1).await;
    // "Crash" 1: the process died right after the commit; nothing was fanned out.
    assert_eq!(rig.store.outbox_stats().await.unwrap().unfanned_events, 1);
    // "Crash" 2: a worker fanned out and claimed the email, then died holding it.
    let events = rig
        .store
        .notification_events_to_fan_out(rig.clock.now(), 10)
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    rig.store
        .fan_out_notification(
            events[0].id,
            &[timebox_server::store::NewDelivery {
                channel: "email".into(),
                recipient: "leads@example.com".into(),
            }],
            rig.clock.now(),
            false,
        )
        .await
        .unwrap();
    let now = rig.clock.now();
    let claimed = rig
        .store
        .claim_deliveries("dead-worker", now, now + Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);

    // A new process: the channel-wide deliveries go out; the leased email waits.
    let w = rig.worker();
    let r = w.pass().await.unwrap();
    assert_eq!(r.fanned_out, 1);
    assert_eq!(r.delivered, 2, "{r:?}");
    assert!(
        rig.smtpd.messages().is_empty(),
        "the dead worker's lease holds"
    );
    // A second claimer cannot take it either.
    assert!(rig
        .store
        .claim_deliveries("other", now, now + Duration::seconds(60), 10)
        .await
        .unwrap()
        .is_empty());
    rig.clock.advance(Duration::seconds(61));
    let r = w.pass().await.unwrap();
    assert_eq!(r.delivered, 1, "{r:?}");
    // The dead worker cannot record a failure over it any more.
    rig.store
        .record_delivery_failure(claimed[0].id, "dead-worker", now, "late", false)
        .await
        .unwrap();
    rig.clock.advance(Duration::hours(1));
    assert_eq!(w.pass().await.unwrap().delivered, 0);
    assert_eq!(rig.smtpd.messages().len(), 1);
    assert_eq!(rig.receiver.slack().len(), 1);
    assert_eq!(rig.receiver.webhook().len(), 1);
    let ds = rig.store.grant_deliveries(g.id).await.unwrap();
    assert_eq!(ds.len(), 3);
    assert!(ds.iter().all(|d| d.state.as_str() == "delivered"), "{ds:?}");
}

/// Two workers (two replicas) on one database: every delivery is sent exactly once.
async fn two_workers_send_each_delivery_once(db: &TestDb) {
    let rig = Rig::new(db).await;
    for _ in 0..12 {
        rig.request(1).await;
    }
    let (a, b) = (rig.worker(), rig.worker());
    for _ in 0..3 {
        let (ra, rb) = tokio::join!(a.pass(), b.pass());
        ra.unwrap();
        rb.unwrap();
    }
    assert_eq!(rig.smtpd.messages().len(), 12);
    assert_eq!(rig.receiver.slack().len(), 12);
    assert_eq!(rig.receiver.webhook().len(), 12);
    let ids: std::collections::HashSet<String> = rig
        .receiver
        .webhook()
        .iter()
        .map(|r| r.body["delivery_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 12, "no delivery twice");
    let stats = rig.store.outbox_stats().await.unwrap();
    assert_eq!((stats.pending_deliveries, stats.unfanned_events), (0, 0));
}

/// Notifications commit or roll back with their change.
async fn a_rolled_back_change_announces_nothing(db: &TestDb) {
    let rig = Rig::new(db).await;
    let g = rig.request(0).await;
    // Approved automatically by the test policy: no request for approvers, only the
    // decision for the requester.
    let before = rig.store.outbox_stats().await.unwrap().unfanned_events;
    assert_eq!(
        before, 1,
        "auto-approved: the decision only, no request to approve"
    );
    let g = rig.store.get_grant(g.id).await.unwrap().unwrap();
    let n = NotificationEvent::BreakGlassUsed.into_notification(g.id, rig.clock.now());
    let stale = timebox_server::store::Change {
        grant_id: g.id,
        expected_version: g.version + 7,
        from: GrantState::Pending,
        to: GrantState::Approved,
        at: rig.clock.now(),
        patch: GrantPatch::default(),
        decision: None,
        event: timebox_server::store::NewAuditEvent {
            grant_id: Some(g.id),
            at: rig.clock.now(),
            actor: "timebox".into(),
            action: app::domain::AuditAction::Step(app::domain::Action::AutoApprove),
            from_state: Some(GrantState::Pending),
            to_state: Some(GrantState::Approved),
            reason: None,
            details: serde_json::json!({}),
        },
        notifications: vec![n],
    };
    assert!(rig.store.apply(stale).await.is_err());
    assert_eq!(
        rig.store.outbox_stats().await.unwrap().unfanned_events,
        before,
        "the rolled-back change left no event"
    );
    assert!(rig.store.grant_deliveries(g.id).await.unwrap().is_empty());
}

crate::on_both_backends!(
    new_request_reaches_every_channel_once,
    every_event_reaches_its_audience,
    a_failed_delivery_is_retried_with_backoff,
    a_bad_signature_is_refused_and_eventually_abandoned,
    a_crash_between_change_and_delivery_delivers_later_once,
    a_rolled_back_change_announces_nothing,
    the_real_server_delivers_after_a_restart_once,
    two_workers_send_each_delivery_once,
);

/// `run` delivers in the background and stops when asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_runs_in_the_background_and_stops() {
    let db = TestDb::sqlite().await;
    let rig = Rig::new(&db).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(Arc::new(rig.worker()).run(stopped));
    rig.request(1).await;
    for _ in 0..100 {
        if !rig.smtpd.messages().is_empty() && rig.receiver.webhook().len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(rig.smtpd.messages().len(), 1);
    assert_eq!(rig.receiver.slack().len(), 1);
    assert_eq!(rig.receiver.webhook().len(), 1);
    stop.send(true).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), handle)
        .await
        .expect("the worker stops")
        .unwrap();
}

/// The real binary: a request committed while no server runs is delivered when one
/// starts; a restart sends nothing again.
async fn the_real_server_delivers_after_a_restart_once(db: &TestDb) {
    let rig = Rig::new(db).await;
    rig.clock.set(Utc::now());
    let g = rig.request(1).await;
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        let port = free_port();
        Command::new(env!("CARGO_BIN_EXE_timebox"))
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TIMEBOX_DATABASE__URL", db.url())
            .env("TIMEBOX_SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("TIMEBOX_SERVER__PUBLIC_URL", PUBLIC_URL)
            .env("TIMEBOX_REAPER__ENABLED", "false")
            .env("TIMEBOX_NOTIFY__INTERVAL", "1s")
            .env("TIMEBOX_NOTIFY__EMAIL__SMTP_HOST", "127.0.0.1")
            .env(
                "TIMEBOX_NOTIFY__EMAIL__SMTP_PORT",
                rig.smtpd.port.to_string(),
            )
            .env("TIMEBOX_NOTIFY__EMAIL__TLS", "none")
            .env(
                "TIMEBOX_NOTIFY__EMAIL__FROM",
                "Timebox <timebox@example.com>",
            )
            .env(
                "TIMEBOX_NOTIFY__EMAIL__APPROVERS_TO",
                "leads@example.com, oncall@example.com",
            )
            .env(
                "TIMEBOX_NOTIFY__WEBHOOK__URL",
                format!("{}/webhook", rig.receiver.url),
            )
            .env("TIMEBOX_NOTIFY__WEBHOOK__SECRET", WEBHOOK_SECRET)
            .env("TIMEBOX_LOG__LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the timebox binary")
    };
    let mut server = start();
    for _ in 0..150 {
        if rig.smtpd.messages().len() == 2 && rig.receiver.webhook().len() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(rig.smtpd.messages().len(), 2, "one per approver address");
    assert_eq!(rig.receiver.webhook().len(), 1);
    assert!(unfold_qp(&rig.smtpd.messages()[0]).contains(&format!("{PUBLIC_URL}/grants/{}", g.id)));
    let mut server = start();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(rig.smtpd.messages().len(), 2, "nothing is sent twice");
    assert_eq!(rig.receiver.webhook().len(), 1);
    assert_eq!(rig.receiver.rejected(), 0);
}

/// Addresses from the identity store (moto): group members by display name, a
/// requester never among their own approvers, a person by userName, a missing group
/// ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recipients_come_from_the_identity_store() {
    let moto = crate::moto::Moto::start().await;
    let _org = crate::moto::seed(&moto, &[]).await;
    let ic: Arc<dyn IdentityCenter> = moto.identity_center(Arc::new(Metrics::new())).await;
    let r = DirectoryRecipients::new(
        ic,
        UserKey::UserName,
        vec!["sre".into(), "no-such-group".into()],
        vec![],
        vec!["leads@example.com".into()],
        vec![],
    );
    let mut all: Vec<String> = r
        .all_approvers()
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.email)
        .collect();
    all.sort();
    assert_eq!(
        all,
        ["alice@example.com", "bob@example.com", "leads@example.com"]
    );
    let db = TestDb::sqlite().await;
    let grants =
        crate::helpers::grant_service(db.store(), Arc::new(ManualClock::new(start_time())));
    let g = grants
        .request(
            GrantRequest {
                requester: PersonId::parse("alice").unwrap(),
                account_id: AccountId::parse("111122223333").unwrap(),
                permission_set: PermissionSetName::parse("AdministratorAccess").unwrap(),
                justification: Justification::parse("INC-9 database failover").unwrap(),
                ticket: None,
                duration: GrantDuration::from_minutes(30, None).unwrap(),
                requested_start: None,
                approvals_required: 1,
                extends: None,
            },
            &[],
        )
        .await
        .unwrap();
    let mut of: Vec<String> = r
        .approvers_of(&g)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.email)
        .collect();
    of.sort();
    assert_eq!(
        of,
        ["bob@example.com", "leads@example.com"],
        "alice never approves her own request"
    );
    let carol = r.person(&PersonId::parse("carol").unwrap()).await.unwrap();
    assert_eq!(carol.len(), 1);
    assert_eq!(carol[0].email, "carol@example.com");
    assert!(r
        .person(&PersonId::parse("nobody").unwrap())
        .await
        .unwrap()
        .is_empty());
}
