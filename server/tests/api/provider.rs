//! The real OpenID provider (`end2end/oidc/provider.mjs`, the npm package
//! `oidc-provider`) started for a test, and a driver for its login form over HTTP.

use crate::helpers::browser_like_client;
use std::path::PathBuf;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const CLIENT_ID: &str = "timebox";
pub const CLIENT_SECRET: &str = "test-client-secret";

/// A running provider; stopped when dropped.
pub struct TestProvider {
    pub issuer: String,
    /// The profile's users as the provider describes them (`user`, `claims`, …).
    pub users: serde_json::Value,
    _child: Child,
}

impl TestProvider {
    /// Starts a provider on a free port whose one client (Timebox) may return to
    /// `app_url`/auth/callback.
    pub async fn start(app_url: &str) -> TestProvider {
        Self::start_as(app_url, "plain").await
    }

    /// Starts a provider that names people and groups as `profile` does (`plain`,
    /// `entra`, `okta`, `google`; see end2end/oidc/provider.mjs).
    pub async fn start_as(app_url: &str, profile: &str) -> TestProvider {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../end2end/oidc/provider.mjs");
        let modules = script.with_file_name("node_modules").join("oidc-provider");
        assert!(
            modules.exists(),
            "the test OpenID provider is not installed: run `npm ci` in end2end/oidc (.ci/setup does)"
        );
        let mut child = Command::new("node")
            .arg(&script)
            .args([
                "--port",
                "0",
                "--client-id",
                CLIENT_ID,
                "--client-secret",
                CLIENT_SECRET,
                "--profile",
                profile,
            ])
            .args(["--redirect-uri", &format!("{app_url}/auth/callback")])
            .args(["--post-logout-redirect-uri", &format!("{app_url}/")])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs the provider");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
            .await
            .expect("the provider starts within 20 s")
            .expect("read")
            .expect("the provider prints its issuer");
        let ready: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        TestProvider {
            issuer: ready["issuer"].as_str().expect("issuer").to_owned(),
            users: ready["users"].clone(),
            _child: child,
        }
    }

    /// The ID-token claims this provider gives `user`.
    pub fn claims(&self, user: &str) -> serde_json::Value {
        self.users
            .as_array()
            .and_then(|all| all.iter().find(|u| u["user"] == user))
            .map(|u| u["claims"].clone())
            .unwrap_or_else(|| panic!("no user {user} at the provider"))
    }

    /// Changes `user` at the provider through its test control (`groups`, or
    /// `auth_age_seconds` to back-date their next sign-in).
    pub async fn control(&self, user: &str, body: serde_json::Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/test-control/users/{user}", self.issuer))
            .bearer_auth(CLIENT_SECRET)
            .json(&body)
            .send()
            .await
            .expect("the provider answers");
        assert_eq!(r.status(), 200, "test control of {user}");
    }

    /// The `[oidc]` configuration for this provider with Timebox's demo mapping.
    pub fn config(&self, app_url: &str) -> timebox_server::config::OidcConfig {
        use app::domain::Role;
        timebox_server::config::OidcConfig {
            issuer: self.issuer.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: Some(timebox_server::config::Secret::new(CLIENT_SECRET)),
            redirect_url: format!("{app_url}/auth/callback"),
            scopes: vec!["profile".into(), "email".into(), "groups".into()],
            person_claim: "sub".into(),
            groups_claim: "groups".into(),
            group_names: vec![],
            role_groups: vec![
                (Role::Requester, vec!["timebox-requesters".into()]),
                (Role::Approver, vec!["timebox-approvers".into()]),
                (Role::Auditor, vec!["timebox-auditors".into()]),
                (Role::Admin, vec!["timebox-admins".into()]),
            ],
            role_people: Vec::new(),
            approvers_need_mfa: true,
            mfa_amr: vec!["otp".into(), "mfa".into()],
            mfa_acr: vec![],
            mfa_max_age: std::time::Duration::from_secs(15 * 60),
        }
    }
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .unwrap_or_else(|| panic!("a redirect from {} ({})", r.url(), r.status()))
        .to_str()
        .expect("ascii")
        .to_owned()
}

/// Signs `user` in at the provider, starting from Timebox's authorization URL, and
/// returns the URL the provider redirects back to (Timebox's callback with `code`
/// and `state`), without visiting it.
pub async fn sign_in_at_provider(authorize_url: &str, issuer: &str, user: &str) -> String {
    // The provider's own cookies live in a separate jar, as in a browser they are
    // the provider's.
    let client = browser_like_client();
    let mut url = authorize_url.to_owned();
    for _ in 0..20 {
        if !url.starts_with(issuer) {
            return url;
        }
        let r = client.get(&url).send().await.expect("provider answers");
        if r.status().is_redirection() {
            url = absolute(issuer, &location(&r));
            continue;
        }
        assert_eq!(r.status(), 200, "{url}");
        let page_url = r.url().clone();
        let html = r.text().await.expect("page");
        assert!(
            html.contains("name=\"login\""),
            "expected the login form at {url}: {html}"
        );
        let action = format!("{}/login", page_url.path());
        let r = client
            .post(format!("{issuer}{action}"))
            .form(&[("login", user), ("password", &format!("{user}-password"))])
            .send()
            .await
            .expect("login posted");
        assert!(
            r.status().is_redirection(),
            "login accepted: {}",
            r.status()
        );
        url = absolute(issuer, &location(&r));
    }
    panic!("the provider never redirected back to Timebox");
}

fn absolute(issuer: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else {
        format!("{issuer}{location}")
    }
}

/// Starts a sign-in at Timebox (`/auth/login`) with `app_client`'s session and
/// returns the provider URL Timebox redirected to.
pub async fn start_sign_in(app_client: &reqwest::Client, app_url: &str) -> String {
    let r = app_client
        .get(format!("{app_url}/auth/login"))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 303, "login redirects to the provider");
    location(&r)
}
