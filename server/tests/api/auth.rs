//! Sign-in against the real OpenID provider (npm `oidc-provider`) over plain HTTP,
//! the rejection cases, sessions, the cross-site check and the security headers.

use crate::helpers::{browser_like_client, free_listener, TestApp, TestDb};
use crate::provider::{sign_in_at_provider, start_sign_in, TestProvider};
use std::sync::Arc;
use timebox_server::clock::{Clock, ManualClock, SystemClock};

struct SignInSetup {
    app: TestApp,
    provider: TestProvider,
    _db: TestDb,
}

async fn setup_on(db: TestDb, clock: Arc<dyn Clock>) -> SignInSetup {
    setup_with(db, clock, |_| {}).await
}

async fn setup_with(
    db: TestDb,
    clock: Arc<dyn Clock>,
    configure: impl FnOnce(&mut timebox_server::config::Config),
) -> SignInSetup {
    let listener = free_listener().await;
    let url = format!("http://{}", listener.local_addr().unwrap());
    let provider = TestProvider::start(&url).await;
    let oidc = provider.config(&url);
    let app = TestApp::spawn_on(
        listener,
        &db,
        move |c| {
            c.oidc = Some(oidc);
            configure(c);
        },
        clock,
    )
    .await;
    SignInSetup {
        app,
        provider,
        _db: db,
    }
}

async fn setup() -> SignInSetup {
    setup_on(TestDb::sqlite().await, Arc::new(SystemClock)).await
}

impl SignInSetup {
    /// Runs the whole sign-in for `user` with the app client's session and returns
    /// the callback's response.
    async fn sign_in(&self, user: &str) -> reqwest::Response {
        let callback = self.callback_url_for(user).await;
        self.app.client.get(callback).send().await.unwrap()
    }

    async fn callback_url_for(&self, user: &str) -> String {
        let authorize = start_sign_in(&self.app.client, &self.app.url).await;
        sign_in_at_provider(&authorize, &self.provider.issuer, user).await
    }

    /// The viewer, through the server function the pages use.
    async fn viewer(&self) -> serde_json::Value {
        viewer_of(&self.app.client, &self.app.url).await
    }
}

async fn viewer_of(client: &reqwest::Client, url: &str) -> serde_json::Value {
    let r = client
        .post(format!("{url}/api/viewer"))
        .header("origin", url)
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn cookie_value(set_cookie: &str) -> &str {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v)
        .unwrap()
}

async fn body(r: reqwest::Response) -> String {
    r.text().await.unwrap()
}

#[tokio::test]
async fn full_sign_in_over_http_resolves_roles_from_groups() {
    let s = setup().await;
    assert_eq!(s.viewer().await["caller"]["kind"], "anonymous");

    // The session cookie planted at /auth/login is replaced at sign-in.
    let login = s
        .app
        .client
        .get(format!("{}/auth/login", s.app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let before = set_cookie(&login, "timebox_session").expect("a session for the pending sign-in");
    let authorize = login.headers()["location"].to_str().unwrap().to_owned();
    assert!(authorize.starts_with(&s.provider.issuer), "{authorize}");
    for param in [
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "nonce=",
        "scope=openid",
    ] {
        assert!(authorize.contains(param), "{param} in {authorize}");
    }
    let callback = sign_in_at_provider(&authorize, &s.provider.issuer, "rita").await;
    let r = s.app.client.get(callback).send().await.unwrap();
    assert_eq!(r.status(), 303, "{}", body(r).await);
    assert_eq!(r.headers()["location"], "/");
    let after = set_cookie(&r, "timebox_session").expect("session cookie");
    assert_ne!(
        cookie_value(&before),
        cookie_value(&after),
        "the session id rotates"
    );
    let lower = after.to_ascii_lowercase();
    assert!(lower.contains("httponly"), "{after}");
    assert!(lower.contains("samesite=lax"), "{after}");
    assert!(
        !lower.contains("secure"),
        "secure_cookie = false for plain HTTP: {after}"
    );

    let viewer = s.viewer().await;
    assert_eq!(viewer["caller"]["kind"], "person", "{viewer}");
    assert_eq!(viewer["caller"]["id"], "rita");
    assert_eq!(viewer["caller"]["name"], "Rita Requester");
    assert_eq!(viewer["caller"]["mfa"], false);
    assert_eq!(viewer["policy"]["approvers_need_mfa"], true);

    // The page says who is signed in and shows only the requester's section.
    let html = body(s.app.get("/").await).await;
    assert!(html.contains("Rita Requester"), "{html}");
    assert!(html.contains("data-testid=\"section-request\""));
    assert!(!html.contains("data-testid=\"section-audit\""));
    assert!(!html.contains("data-testid=\"section-approve\""));
}

#[tokio::test]
async fn each_demo_user_sees_what_their_role_allows() {
    let s = setup().await;
    for (user, shown, hidden) in [
        (
            "audrey",
            &["section-audit", "section-all-grants"][..],
            &["section-request", "section-approve"][..],
        ),
        (
            "arno",
            &["section-approve", "mfa-notice", "section-all-grants"][..],
            &["section-audit", "section-request"][..],
        ),
        (
            "mia",
            &["section-approve", "section-all-grants"][..],
            &["mfa-notice", "section-audit"][..],
        ),
        (
            "ada",
            &["section-request", "section-approve", "section-audit"][..],
            &[][..],
        ),
    ] {
        let client = browser_like_client();
        let authorize = start_sign_in(&client, &s.app.url).await;
        let callback = sign_in_at_provider(&authorize, &s.provider.issuer, user).await;
        let r = client.get(callback).send().await.unwrap();
        assert_eq!(r.status(), 303, "{user}");
        let html = client
            .get(format!("{}/", s.app.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for id in shown {
            assert!(
                html.contains(&format!("data-testid=\"{id}\"")),
                "{user} sees {id}"
            );
        }
        for id in hidden {
            assert!(
                !html.contains(&format!("data-testid=\"{id}\"")),
                "{user} does not see {id}"
            );
        }
    }
}

#[tokio::test]
async fn tampered_state_is_rejected() {
    let s = setup().await;
    let callback = s.callback_url_for("rita").await;
    let state = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    let tampered = callback.replace(&format!("state={state}"), &format!("state={state}x"));
    assert_ne!(tampered, callback);
    let r = s.app.client.get(&tampered).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(body(r).await.contains("state mismatch"));
    assert_eq!(s.viewer().await["caller"]["kind"], "anonymous");
    // The sign-in in progress was used up by the failed attempt: the genuine answer
    // cannot be played afterwards either.
    let r = s.app.client.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(body(r).await.contains("no sign-in was in progress"));
}

#[tokio::test]
async fn replayed_state_is_rejected() {
    let s = setup().await;
    let callback = s.callback_url_for("rita").await;
    let r = s.app.client.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let r = s.app.client.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(body(r).await.contains("no sign-in was in progress"));

    // Nor in another browser: the state belongs to the session that started it.
    let other = browser_like_client();
    let _ = start_sign_in(&other, &s.app.url).await;
    let r = other.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(body(r).await.contains("state mismatch"));
}

#[tokio::test]
async fn wrong_nonce_is_rejected() {
    let s = setup().await;
    let authorize = start_sign_in(&s.app.client, &s.app.url).await;
    // The provider is asked for a token with another nonce than the session holds
    // (everything else, PKCE included, is the genuine sign-in's).
    let mut url = url::Url::parse(&authorize).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "nonce" {
                format!("{v}-forged")
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let callback = sign_in_at_provider(url.as_str(), &s.provider.issuer, "rita").await;
    let r = s.app.client.get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let text = body(r).await;
    assert!(text.contains("ID token is not valid"), "{text}");
    assert!(text.to_ascii_lowercase().contains("nonce"), "{text}");
    assert_eq!(s.viewer().await["caller"]["kind"], "anonymous");
}

#[tokio::test]
async fn expired_id_token_is_rejected() {
    // Timebox's clock runs two hours ahead of the provider's: the ID token the
    // provider issues now (valid one hour) has expired in Timebox's eyes.
    let clock = ManualClock::new(chrono::Utc::now() + chrono::TimeDelta::hours(2));
    let s = setup_on(TestDb::sqlite().await, Arc::new(clock)).await;
    let r = s.sign_in("rita").await;
    assert_eq!(r.status(), 400);
    let text = body(r).await;
    assert!(text.contains("ID token is not valid"), "{text}");
    assert!(text.to_ascii_lowercase().contains("expired"), "{text}");
}

#[tokio::test]
async fn token_from_another_issuer_is_rejected() {
    let s = setup().await;
    // Another, unrelated provider (its own keys and issuer) signs rita in; the
    // test plays the client there and keeps the ID token.
    let other = TestProvider::start(&s.app.url).await;
    let nonce = "n-0123456789abcdef";
    let verifier = "v".repeat(64);
    let challenge = {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(verifier.as_bytes());
        base64_url(&digest)
    };
    let authorize = format!(
        "{}/auth?client_id=timebox&response_type=code&scope=openid%20groups&redirect_uri={}&state=s1&nonce={nonce}&code_challenge={challenge}&code_challenge_method=S256",
        other.issuer,
        urlencode(&format!("{}/auth/callback", s.app.url)),
    );
    let callback = sign_in_at_provider(&authorize, &other.issuer, "ada").await;
    let code = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let token: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/token", other.issuer))
        .basic_auth(
            crate::provider::CLIENT_ID,
            Some(crate::provider::CLIENT_SECRET),
        )
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &format!("{}/auth/callback", s.app.url)),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_token = token["id_token"].as_str().expect("an ID token");

    let ours =
        timebox_server::auth::oidc::Oidc::new(s.provider.config(&s.app.url), Arc::new(SystemClock))
            .unwrap();
    let err = ours
        .verify_id_token(id_token, nonce)
        .await
        .expect_err("another issuer");
    assert_eq!(err.code(), "invalid_id_token", "{err}");

    // The same token is fine for the provider that issued it: the refusal above is
    // about the issuer, not a broken token.
    let theirs =
        timebox_server::auth::oidc::Oidc::new(other.config(&s.app.url), Arc::new(SystemClock))
            .unwrap();
    let person = theirs
        .verify_id_token(id_token, nonce)
        .await
        .expect("valid for its issuer");
    assert_eq!(person.subject, "ada");
    assert_eq!(person.groups, ["timebox-admins"]);
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn provider_refusal_and_malformed_callbacks_are_rejected_and_rate_limited() {
    let s = setup().await;
    let _ = start_sign_in(&s.app.client, &s.app.url).await;
    let r = s
        .app
        .client
        .get(format!("{}/auth/callback?code=x", s.app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "no state");
    // Callbacks with no sign-in in progress are refused and count nothing.
    for _ in 0..(2 * timebox_server::auth::limiter::MAX_FAILURES) {
        let r = s
            .app
            .client
            .get(format!("{}/auth/callback?code=x&state=y", s.app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert!(body(r).await.contains("no sign-in was in progress"));
    }
    // A sign-in started (in another browser, same address) before the limit is
    // reached is finished whatever happens.
    let early = browser_like_client();
    let authorize = start_sign_in(&early, &s.app.url).await;
    let started = sign_in_at_provider(&authorize, &s.provider.issuer, "rita").await;
    // Failed sign-ins from one address are counted; past the limit that address
    // starts no new sign-in.
    for _ in 1..timebox_server::auth::limiter::MAX_FAILURES {
        let _ = start_sign_in(&s.app.client, &s.app.url).await;
        let r = s
            .app
            .client
            .get(format!("{}/auth/callback?code=x&state=y", s.app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert!(body(r).await.contains("state mismatch"));
    }
    let r = s
        .app
        .client
        .get(format!("{}/auth/login", s.app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(body(r).await.contains("Too many failed sign-ins"));
    // A sign-in that succeeds is never limited.
    let r = early.get(started).send().await.unwrap();
    assert_eq!(r.status(), 303, "{}", body(r).await);
    assert_eq!(viewer_of(&early, &s.app.url).await["caller"]["id"], "rita");
}

#[tokio::test]
async fn sign_out_ends_the_session_and_the_providers() {
    let s = setup().await;
    assert_eq!(s.sign_in("ada").await.status(), 303);
    assert_eq!(s.viewer().await["caller"]["id"], "ada");
    let r = s
        .app
        .client
        .post(format!("{}/auth/logout", s.app.url))
        .header("origin", &s.app.url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to.starts_with(&format!("{}/session/end", s.provider.issuer)),
        "{to}"
    );
    assert!(to.contains("client_id=timebox"), "{to}");
    assert!(to.contains("post_logout_redirect_uri="), "{to}");
    assert_eq!(s.viewer().await["caller"]["kind"], "anonymous");
}

#[tokio::test]
async fn cross_site_posts_are_refused() {
    let s = setup().await;
    assert_eq!(s.sign_in("ada").await.status(), 303);
    for (origin, referer) in [
        (Some("http://evil.example"), None),
        (Some("null"), None),
        (None, Some("http://evil.example/page")),
        (None, None),
    ] {
        let mut req = s.app.client.post(format!("{}/auth/logout", s.app.url));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(r) = referer {
            req = req.header("referer", r);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403, "{origin:?} {referer:?}");
        let json: serde_json::Value = r.json().await.unwrap();
        assert_eq!(json["error"]["code"], "cross_site_request");
    }
    // The forged posts changed nothing: still signed in.
    assert_eq!(s.viewer().await["caller"]["id"], "ada");
    // A same-origin Referer (a browser that sends no Origin) is accepted.
    let r = s
        .app
        .client
        .post(format!("{}/auth/logout", s.app.url))
        .header("referer", format!("{}/", s.app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn sessions_survive_a_restart() {
    let db = TestDb::postgres().await;
    let listener = free_listener().await;
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}");
    let provider = TestProvider::start(&url).await;
    let oidc = provider.config(&url);
    let first = oidc.clone();
    let app = TestApp::spawn_on(
        listener,
        &db,
        move |c| c.oidc = Some(first),
        Arc::new(SystemClock),
    )
    .await;
    let client = app.client.clone();
    let authorize = start_sign_in(&client, &url).await;
    let callback = sign_in_at_provider(&authorize, &provider.issuer, "mia").await;
    assert_eq!(client.get(callback).send().await.unwrap().status(), 303);
    app.stop().await.unwrap();

    // A new server process on the same database and address knows the session.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let app = TestApp::spawn_on(
        listener,
        &db,
        move |c| c.oidc = Some(oidc),
        Arc::new(SystemClock),
    )
    .await;
    let viewer = viewer_of(&client, &url).await;
    assert_eq!(viewer["caller"]["id"], "mia", "{viewer}");
    assert_eq!(
        viewer["caller"]["mfa"], true,
        "mia signed in with a second factor"
    );
    app.stop().await.unwrap();
    db.drop_database().await;
}

#[tokio::test]
async fn security_headers_on_every_response() {
    let s = setup().await;
    for path in [
        "/",
        "/healthz",
        "/no-such-page",
        "/auth/login",
        "/pkg/timebox.css",
    ] {
        let r = s.app.get(path).await;
        let h = r.headers();
        let csp = h
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("CSP on {path}"))
            .to_str()
            .unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self' 'nonce-"), "{path}: {csp}");
        assert!(!csp.contains("'unsafe-inline'") || csp.contains("style-src-attr 'unsafe-inline'"));
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(
            h.get("strict-transport-security").is_none(),
            "no HSTS over plain HTTP"
        );
    }
    // The page's scripts carry the nonce of its own header, fresh each time.
    let r = s.app.get("/").await;
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap()
        .to_owned();
    let html = body(r).await;
    assert!(html.contains(&format!("nonce=\"{nonce}\"")), "{html}");
    let again = s.app.get("/").await;
    assert!(!again.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains(&nonce));
}

#[tokio::test]
async fn sessions_end_at_the_absolute_timeout() {
    let clock = ManualClock::new(chrono::Utc::now());
    // The groups are not re-checked in these twelve hours (that would ask the
    // provider for an ID token, which this clock sees as issued in the past).
    let s = setup_with(TestDb::sqlite().await, Arc::new(clock.clone()), |c| {
        c.session.refresh = std::time::Duration::from_secs(24 * 3600)
    })
    .await;
    assert_eq!(s.sign_in("rita").await.status(), 303);
    assert_eq!(s.viewer().await["caller"]["id"], "rita");
    // Default absolute timeout: 12 h after signing in, however active the session.
    clock.advance(chrono::TimeDelta::hours(11));
    assert_eq!(s.viewer().await["caller"]["id"], "rita");
    clock.advance(chrono::TimeDelta::hours(1) + chrono::TimeDelta::seconds(1));
    assert_eq!(s.viewer().await["caller"]["kind"], "anonymous");
    // The session is gone, not only hidden: going back does not restore it.
    clock.set(chrono::Utc::now());
    assert_eq!(s.viewer().await["caller"]["kind"], "anonymous");
}

#[tokio::test]
async fn sessions_end_after_the_idle_timeout() {
    let db = TestDb::sqlite().await;
    let listener = free_listener().await;
    let url = format!("http://{}", listener.local_addr().unwrap());
    let provider = TestProvider::start(&url).await;
    let oidc = provider.config(&url);
    // Configuration refuses less than a minute; the test sets the field directly so
    // it does not have to wait that long.
    let app = TestApp::spawn_on(
        listener,
        &db,
        move |c| {
            c.oidc = Some(oidc);
            c.session.idle_timeout = std::time::Duration::from_secs(2);
        },
        Arc::new(SystemClock),
    )
    .await;
    let s = SignInSetup {
        app,
        provider,
        _db: db,
    };
    assert_eq!(s.sign_in("rita").await.status(), 303);
    assert_eq!(s.viewer().await["caller"]["id"], "rita");
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert_eq!(
        s.viewer().await["caller"]["kind"],
        "anonymous",
        "an unused session ends after session.idle_timeout"
    );
}
