//! Real identities: people as Entra ID, Okta and Google sign them in (the test
//! provider's profiles: opaque `sub`, groups as object ids, no groups at all), mapped
//! once (`oidc.person_claim`, `[oidc.group_names]`, `identity_center.user_match`) to
//! the Identity Store user a grant is made for; sessions that end for good at logout;
//! a sign-in limiter that forged callbacks cannot turn against others.

use crate::helpers::{browser_like_client, free_listener, TestApp, TestDb};
use crate::paths::{access, person};
use crate::provider::{sign_in_at_provider, start_sign_in, TestProvider};
use crate::reaper::{request, settings};
use crate::timing::rig_with;
use app::domain::{Caller, GrantState, IdentityUser, Operation, Role};
use std::sync::Arc;
use timebox_server::clock::SystemClock;
use timebox_server::config::{Config, OidcConfig};
use timebox_server::evidence::{MatchTarget, TrailRecord};
use timebox_server::services::access::AccessError;
use timebox_server::store::GrantFilter;

/// Entra's object ids of the demo groups (end2end/oidc/provider.mjs, ENTRA_GROUP_IDS).
const ENTRA_REQUESTERS: &str = "5f1c6a1e-0b7d-4c5e-9a51-3d2f7e8a9b01";
const ENTRA_APPROVERS: &str = "8a3e2b7c-4d1f-4e6a-b2c9-6f0d1e2a3b02";
const ENTRA_AUDITORS: &str = "2c9d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e03";

struct Site {
    app: TestApp,
    provider: TestProvider,
    db: TestDb,
}

/// Timebox signing people in at a provider shaped like `profile`, its `[oidc]`
/// changed by `oidc` and the rest by `rest`.
async fn site(
    profile: &str,
    oidc: impl FnOnce(&mut OidcConfig),
    rest: impl FnOnce(&mut Config),
) -> Site {
    site_on(profile, oidc, rest, Arc::new(SystemClock)).await
}

/// [`site`] on `clock`.
async fn site_on(
    profile: &str,
    oidc: impl FnOnce(&mut OidcConfig),
    rest: impl FnOnce(&mut Config),
    clock: Arc<dyn timebox_server::clock::Clock>,
) -> Site {
    let db = TestDb::sqlite().await;
    let listener = free_listener().await;
    let url = format!("http://{}", listener.local_addr().unwrap());
    let provider = TestProvider::start_as(&url, profile).await;
    let mut config = provider.config(&url);
    oidc(&mut config);
    let app = TestApp::spawn_on(
        listener,
        &db,
        move |c| {
            c.oidc = Some(config);
            rest(c);
        },
        clock,
    )
    .await;
    Site { app, provider, db }
}

impl Site {
    /// A new browser that went through the whole sign-in as `user`; the callback's
    /// answer.
    async fn sign_in(&self, user: &str) -> (reqwest::Client, reqwest::Response) {
        let client = browser_like_client();
        let authorize = start_sign_in(&client, &self.app.url).await;
        let callback = sign_in_at_provider(&authorize, &self.provider.issuer, user).await;
        let r = client.get(callback).send().await.unwrap();
        (client, r)
    }

    async fn viewer(&self, client: &reqwest::Client) -> serde_json::Value {
        let r = client
            .post(format!("{}/api/viewer", self.app.url))
            .header("origin", &self.app.url)
            .header("content-type", "application/x-www-form-urlencoded")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    async fn page(&self, client: &reqwest::Client) -> String {
        client
            .get(format!("{}/", self.app.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn entra_people_are_known_by_the_configured_claim_and_groups_by_id_or_name() {
    let s = site(
        "entra",
        |o| {
            o.person_claim = "preferred_username".into();
            // Requesters and approvers by name through the table; auditors by id.
            o.group_names = vec![
                (ENTRA_REQUESTERS.into(), "timebox-requesters".into()),
                (ENTRA_APPROVERS.into(), "timebox-approvers".into()),
            ];
            o.role_groups
                .retain(|(r, _)| *r != Role::Auditor && *r != Role::Admin);
            o.role_groups
                .push((Role::Auditor, vec![ENTRA_AUDITORS.into()]));
        },
        |_| {},
    )
    .await;
    let rita_claims = s.provider.claims("rita");
    assert_ne!(rita_claims["sub"], "rita", "Entra's sub is opaque");

    let (rita, r) = s.sign_in("rita").await;
    assert_eq!(r.status(), 303);
    let viewer = s.viewer(&rita).await;
    assert_eq!(viewer["caller"]["id"], "rita@corp.example", "{viewer}");
    assert_eq!(viewer["caller"]["name"], "Rita Requester");
    // Pages show her by the name her sign-in gave, next to the id.
    let names =
        s.db.store()
            .display_names(&["rita@corp.example".to_owned(), "nobody".to_owned()])
            .await
            .unwrap();
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        [("rita@corp.example".to_owned(), "Rita Requester".to_owned())]
    );
    let groups = viewer["caller"]["groups"].as_array().unwrap();
    assert!(groups.iter().any(|g| g == ENTRA_REQUESTERS), "{groups:?}");
    assert!(
        groups.iter().any(|g| g == "timebox-requesters"),
        "the id's name from [oidc.group_names]: {groups:?}"
    );
    let html = s.page(&rita).await;
    assert!(html.contains("data-testid=\"section-request\""));
    assert!(!html.contains("data-testid=\"section-approve\""));

    // An auditor by the group's object id, with no name configured.
    let (audrey, _) = s.sign_in("audrey").await;
    let html = s.page(&audrey).await;
    assert!(html.contains("data-testid=\"section-audit\""), "{html}");
    assert!(!html.contains("data-testid=\"section-request\""));

    // Entra's second factor (amr "mfa") counts.
    let (mia, _) = s.sign_in("mia").await;
    let viewer = s.viewer(&mia).await;
    assert_eq!(viewer["caller"]["id"], "mia@corp.example");
    assert_eq!(viewer["caller"]["mfa"], true);
    assert!(s
        .page(&mia)
        .await
        .contains("data-testid=\"section-approve\""));
}

#[tokio::test]
async fn any_claim_can_name_the_person_and_a_missing_one_says_which() {
    // Entra's object id (oid), an extra claim.
    let s = site(
        "entra",
        |o| {
            o.person_claim = "oid".into();
            o.group_names = vec![(ENTRA_REQUESTERS.into(), "timebox-requesters".into())];
        },
        |_| {},
    )
    .await;
    let (rita, r) = s.sign_in("rita").await;
    assert_eq!(r.status(), 303);
    let oid = s.provider.claims("rita")["oid"].clone();
    assert_eq!(s.viewer(&rita).await["caller"]["id"], oid);

    // Google sends no groups claim and no preferred_username: a person_claim it does
    // not send stops the sign-in with a page that names the claim.
    let s = site(
        "google",
        |o| o.person_claim = "preferred_username".into(),
        |_| {},
    )
    .await;
    let (client, r) = s.sign_in("rita").await;
    assert_eq!(r.status(), 403);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("no &quot;preferred_username&quot; claim"),
        "{page}"
    );
    assert!(page.contains("oidc.person_claim"), "{page}");
    assert_eq!(s.viewer(&client).await["caller"]["kind"], "anonymous");

    // With its email claim, the Google person is known (case-insensitively). Google
    // sends no groups: roles come from the configured people.
    let s = site(
        "google",
        |o| {
            o.person_claim = "email".into();
            o.role_people = vec![
                (Role::Requester, vec!["rita@corp.example".into()]),
                (Role::Approver, vec!["mia@corp.example".into()]),
            ];
        },
        |_| {},
    )
    .await;
    let (client, r) = s.sign_in("rita").await;
    assert_eq!(r.status(), 303);
    assert_eq!(s.viewer(&client).await["caller"]["id"], "rita@corp.example");
    let sections = |html: String| {
        ["section-request", "section-approve"]
            .into_iter()
            .filter(|t| html.contains(&format!("data-testid=\"{t}\"")))
            .collect::<Vec<_>>()
    };
    assert_eq!(sections(s.page(&client).await), ["section-request"]);
    let (mia, _) = s.sign_in("mia").await;
    assert_eq!(sections(s.page(&mia).await), ["section-approve"]);
    let (audrey, _) = s.sign_in("audrey").await;
    assert!(sections(s.page(&audrey).await).is_empty());
    // And Okta's opaque 00u… sub is only a sub.
    let s = site("okta", |_| {}, |_| {}).await;
    let (client, _) = s.sign_in("rita").await;
    let id = s.viewer(&client).await["caller"]["id"].clone();
    assert!(id.as_str().unwrap().starts_with("00u"), "{id}");
}

#[tokio::test]
async fn a_group_overage_stops_sign_in_with_the_fix() {
    let s = site("entra", |o| o.person_claim = "upn".into(), |_| {}).await;
    let (client, r) = s.sign_in("olga").await;
    assert_eq!(r.status(), 403);
    let page = r.text().await.unwrap();
    assert!(page.contains("_claim_names"), "{page}");
    assert!(page.contains("docs/identity.md"), "{page}");
    assert_eq!(s.viewer(&client).await["caller"]["kind"], "anonymous");
    // Everyone else signs in.
    let (client, r) = s.sign_in("rita").await;
    assert_eq!(r.status(), 303);
    assert_eq!(s.viewer(&client).await["caller"]["id"], "rita@corp.example");
}

/// `who`'s grants, as stored.
async fn grants_of(
    store: &Arc<dyn timebox_server::store::Store>,
    who: &str,
) -> Vec<app::domain::Grant> {
    let filter = GrantFilter {
        requester: Some(who.into()),
        ..GrantFilter::default()
    };
    store.list_grants(&filter, None, 10).await.unwrap()
}

/// Entra's people are `rita@corp.example` in the identity store (SCIM sets userName
/// to the UPN). A request records the Identity Store user it is for; the reaper
/// assigns that user; CloudTrail's sessions are matched by that user's `UserName`
/// and a look-alike name is not. A person the identity store does not know is
/// refused when asking, and nothing is stored.
/// A person who maps to no Identity Store user is told so at sign-in, with the claim,
/// the value and the settings; only once Identity Center has answered Timebox (the
/// catalog is synced), so a sign-in never waits on an Identity Center never reached.
#[tokio::test]
async fn a_sign_in_that_maps_to_nobody_says_which_claim_value_and_setting() {
    let db = TestDb::sqlite().await;
    let r = rig_with(&db, settings(), &["rita@corp.example".into()]).await;
    let access = access(&r).await;
    let nobody = app::domain::PersonId::parse("nobody@corp.example").unwrap();
    let rita = app::domain::PersonId::parse("rita@corp.example").unwrap();
    assert_eq!(
        access.sign_in_notice(&nobody).await,
        None,
        "Identity Center has not answered yet"
    );
    timebox_server::identity_center::catalog::sync(
        r.slow.as_ref(),
        r.store.as_ref(),
        timebox_server::clock::Clock::now(&r.clock),
    )
    .await
    .unwrap();
    let notice = access.sign_in_notice(&nobody).await.expect("told");
    for part in [
        "nobody@corp.example",
        "\"sub\"",
        "oidc.person_claim",
        "identity_center.user_match",
    ] {
        assert!(notice.contains(part), "{part} in {notice}");
    }
    assert_eq!(access.sign_in_notice(&rita).await, None, "Rita is known");
}

async fn a_request_is_made_for_the_identity_store_user(db: &TestDb) {
    let r = rig_with(
        db,
        settings(),
        &["rita@corp.example".into(), "rita@corp.example.evil".into()],
    )
    .await;
    timebox_server::identity_center::catalog::sync(
        r.slow.as_ref(),
        r.store.as_ref(),
        timebox_server::clock::Clock::now(&r.clock),
    )
    .await
    .unwrap();
    let prod = r.org.accounts[0].clone();
    let access = access(&r).await;
    let ask = |who: &str| {
        let access = &access;
        let who = who.to_owned();
        let prod = prod.clone();
        async move {
            access
                .requester(&person(&who, &[Role::Requester]), Operation::RequestGrant)
                .unwrap()
                .ask(request(&who, &prod, "AdministratorAccess", 60))
                .await
        }
    };
    // The sign-in gave the email in another case: the same person.
    let g = ask("Rita@Corp.Example").await.unwrap();
    assert_eq!(g.request.requester.as_str(), "rita@corp.example");
    let rita = IdentityUser {
        user_id: r.org.user("rita@corp.example"),
        user_name: "rita@corp.example".into(),
    };
    assert_eq!(g.identity, Some(rita.clone()));
    let stored = r.get(&g).await;
    assert_eq!(stored.identity, Some(rita.clone()));
    let audit = r.actions(&g).await;
    assert!(
        audit
            .iter()
            .any(|(a, d)| a == "request" && d.contains(&rita.user_id)),
        "{audit:?}"
    );

    // Somebody the identity store does not know: refused, naming the person and
    // the settings, and nothing stored.
    let err = ask("nobody@corp.example").await.unwrap_err();
    assert!(matches!(err, AccessError::UnknownIdentity(_)), "{err:?}");
    let message = err.to_string();
    for part in [
        "nobody@corp.example",
        "oidc.person_claim",
        "identity_center.user_match",
    ] {
        assert!(message.contains(part), "{part} in {message}");
    }
    let api: app::api::ApiError = err.into();
    assert_eq!(api.code.as_str(), "unknown_identity");
    assert_eq!(api.code.status(), 422);
    let theirs = grants_of(&r.store, "nobody@corp.example").await;
    assert!(theirs.is_empty(), "nothing stored: {theirs:?}");

    // Approved and provisioned: the assignment is Rita's user, not the look-alike.
    let g = r
        .grants
        .act(
            g.id,
            app::domain::Action::AutoApprove,
            &app::domain::Actor::System,
            None,
            timebox_server::store::GrantPatch::default(),
            serde_json::json!({}),
        )
        .await
        .unwrap()
        .grant;
    r.reaper.tick().await.unwrap();
    let active = r.get(&g).await;
    assert_eq!(active.state, GrantState::Active);
    let admin = r.org.permission_set("AdministratorAccess");
    assert_eq!(
        r.assignments(&prod, &admin).await,
        vec![rita.user_id.clone()]
    );

    // CloudTrail names the role session after the UserName.
    let target = MatchTarget {
        account_id: prod.clone(),
        permission_set: "AdministratorAccess".into(),
        user_name: active.user_name().to_owned(),
    };
    let record = |session: &str| {
        TrailRecord::from_json(
            &serde_json::json!({
                "userIdentity": {
                    "type": "AssumedRole",
                    "principalId": format!("AROAEXAMPLEROLEID:{session}"),
                    "accountId": prod,
                    "sessionContext": { "sessionIssuer": {
                        "type": "Role",
                        "userName": "AWSReservedSSO_AdministratorAccess_0123456789abcdef"
                    } }
                },
                "eventTime": "2026-03-02T09:10:00Z",
                "eventSource": "s3.amazonaws.com",
                "eventName": "ListBuckets",
                "eventID": format!("e-{session}"),
                "recipientAccountId": prod
            })
            .to_string(),
        )
        .unwrap()
    };
    assert!(target.matches(&record("rita@corp.example")));
    // A request recorded without its user (Identity Center could not be asked then)
    // gets it recorded when the reaper provisions it.
    let later = crate::reaper::approved_grant(
        &r.grants,
        "rita@corp.example",
        &r.org.accounts[1],
        "AdministratorAccess",
        60,
    )
    .await;
    assert_eq!(later.identity, None);
    r.reaper.tick().await.unwrap();
    let later = r.get(&later).await;
    assert_eq!(later.state, GrantState::Active);
    assert_eq!(later.identity, Some(rita.clone()));
    assert_eq!(later.user_name(), "rita@corp.example");
    for look_alike in ["rita@corp.example.evil", "rita", "xrita@corp.example"] {
        assert!(
            !target.matches(&record(look_alike)),
            "{look_alike} is somebody else"
        );
    }
}

/// The store under the session middleware: a request still in flight when its
/// session was deleted (logout) saves it on its way out; that save must not bring the
/// session back.
async fn an_ended_session_is_not_written_back(db: &TestDb) {
    use tower_sessions::session::{Id, Record};
    use tower_sessions::session_store::SessionStore;
    let mut database = Config::default().database;
    database.url = db.url().to_owned();
    let store = timebox_server::auth::session::DbSessionStore::connect(
        &database,
        &Config::default().session,
        Arc::new(SystemClock),
    )
    .await
    .unwrap();
    let mut record = Record {
        id: Id::default(),
        data: [(
            "timebox.person".to_owned(),
            serde_json::json!({"subject": "ada"}),
        )]
        .into_iter()
        .collect(),
        expiry_date: tower_sessions::cookie::time::OffsetDateTime::now_utc()
            + tower_sessions::cookie::time::Duration::hours(1),
    };
    store.create(&mut record).await.unwrap();
    let loaded = store.load(&record.id).await.unwrap().expect("stored");
    // Saving a live session updates it.
    let mut changed = loaded.clone();
    changed.data.insert("seen".into(), serde_json::json!(true));
    store.save(&changed).await.unwrap();
    assert_eq!(store.load(&record.id).await.unwrap(), Some(changed.clone()));
    // A group re-check stores the person again (a later confirmation, a new refresh
    // token); a request that loaded the session before it saves its older copy at the
    // end: the re-check stays, the rest of the request's changes are kept.
    let signed_in = |minutes: i64, token: &str| {
        serde_json::json!({
            "subject": "ada", "name": null, "email": null, "groups": ["timebox-admins"],
            "amr": [], "acr": null,
            "signed_in_at": "2026-12-04T10:00:00Z",
            "checked_at": (chrono::DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z").unwrap()
                + chrono::Duration::minutes(minutes)).to_rfc3339(),
            "refresh_token": token,
        })
    };
    let mut before = changed.clone();
    before
        .data
        .insert("timebox.person".into(), signed_in(0, "spent"));
    store.save(&before).await.unwrap();
    let fresh: timebox_server::auth::session::SignedIn =
        serde_json::from_value(signed_in(61, "new")).unwrap();
    assert!(store.put_person(&record.id, &fresh).await.unwrap());
    let mut stale = before.clone();
    stale.data.insert("late".into(), serde_json::json!(1));
    store.save(&stale).await.unwrap();
    let now = store.load(&record.id).await.unwrap().expect("stored");
    assert_eq!(
        now.data["timebox.person"]["refresh_token"], "new",
        "{now:?}"
    );
    assert_eq!(now.data["late"], 1);
    assert_eq!(
        store
            .person(&record.id)
            .await
            .unwrap()
            .map(|p| p.confirmed_at()),
        Some(fresh.confirmed_at())
    );

    // Logout deletes it; the request in flight saves what it loaded before.
    store.delete(&record.id).await.unwrap();
    store.save(&changed).await.unwrap();
    assert_eq!(
        store.load(&record.id).await.unwrap(),
        None,
        "the ended session stays ended"
    );
}

crate::on_both_backends!(
    a_request_is_made_for_the_identity_store_user,
    an_ended_session_is_not_written_back
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_holds_while_a_request_on_the_session_is_in_flight() {
    let s = site("plain", |_| {}, |_| {}).await;
    let (ada, r) = s.sign_in("ada").await;
    assert_eq!(r.status(), 303);
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("timebox_session="))
        .expect("the session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    // A live event stream on the session.
    let mut events = reqwest::Client::new()
        .get(format!("{}/api/v1/events", s.app.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    // Requests let in before the logout that end after it.
    let stream = {
        let url = format!("{}/api/v1/grants?limit=1", s.app.url);
        let cookie = cookie.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut joins = Vec::new();
            for _ in 0..20 {
                joins.push(client.get(&url).header("cookie", &cookie).send());
            }
            for j in joins {
                let _ = j.await;
            }
        })
    };
    let r = ada
        .post(format!("{}/auth/logout", s.app.url))
        .header("origin", &s.app.url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    stream.await.unwrap();
    // Whatever the requests in flight wrote on their way out, the old cookie is
    // worth nothing now.
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/grants", s.app.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "the cookie no longer signs anyone in");
    assert_eq!(s.viewer(&ada).await["caller"]["kind"], "anonymous");
    // The live stream ends with its session.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Ok(Some(_)) = events.chunk().await {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the event stream closed when its session ended"
    );
    // A signed-in page is never cached.
    let (rita, _) = s.sign_in("rita").await;
    let r = rita.get(format!("{}/", s.app.url)).send().await.unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn forged_callbacks_do_not_stop_anyone_elses_sign_in() {
    let s = site(
        "plain",
        |_| {},
        |c| c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()],
    )
    .await;
    let forge = |from: &'static str| {
        let url = format!("{}/auth/callback?code=x&state=y", s.app.url);
        async move {
            reqwest::Client::new()
                .get(url)
                .header("x-forwarded-for", from)
                .send()
                .await
                .unwrap()
        }
    };
    // Many callbacks with no sign-in in progress, through the proxy: each is
    // refused, none counts.
    for _ in 0..(3 * timebox_server::auth::limiter::MAX_FAILURES) {
        assert_eq!(forge("198.51.100.66").await.status(), 400);
    }
    // Real failures (a sign-in started, then a wrong state) from one client behind
    // the proxy...
    let attacker = browser_like_client();
    let start_from = |client: &reqwest::Client, from: &'static str| {
        client
            .get(format!("{}/auth/login", s.app.url))
            .header("x-forwarded-for", from)
            .send()
    };
    for _ in 0..timebox_server::auth::limiter::MAX_FAILURES {
        assert_eq!(
            start_from(&attacker, "198.51.100.66")
                .await
                .unwrap()
                .status(),
            303
        );
        let r = attacker
            .get(format!("{}/auth/callback?code=x&state=wrong", s.app.url))
            .header("x-forwarded-for", "198.51.100.66")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    }
    assert_eq!(
        start_from(&attacker, "198.51.100.66")
            .await
            .unwrap()
            .status(),
        429,
        "that client starts no new sign-in for a while"
    );
    // ...do not stop another person behind the same proxy.
    let client = browser_like_client();
    let r = start_from(&client, "198.51.100.7").await.unwrap();
    assert_eq!(r.status(), 303);
    let authorize = r.headers()["location"].to_str().unwrap().to_owned();
    let callback = sign_in_at_provider(&authorize, &s.provider.issuer, "rita").await;
    let r = client
        .get(callback)
        .header("x-forwarded-for", "198.51.100.7")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    assert_eq!(s.viewer(&client).await["caller"]["id"], "rita");
}

/// Approving needs an MFA sign-in no older than `oidc.mfa_max_age` (15 minutes by
/// default), counted from the provider's `auth_time`: an older one is refused with
/// `mfa_required`, and a step-up sign-in (`/auth/login?mfa=1`: `prompt=login`,
/// `max_age`) makes the same approval succeed. Break-glass needs it too.
#[tokio::test]
async fn an_old_mfa_sign_in_must_step_up_before_approving() {
    let s = site("plain", |_| {}, |_| {}).await;
    let grants = crate::helpers::grant_service(s.db.store(), Arc::new(SystemClock));
    let g = grants
        .request(
            request("rita", "111122223333", "AdministratorAccess", 60),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(g.state, GrantState::Pending);
    // Mia used MFA, but twenty minutes ago.
    s.provider
        .control("mia", serde_json::json!({ "auth_age_seconds": 20 * 60 }))
        .await;
    let (mia, r) = s.sign_in("mia").await;
    assert_eq!(r.status(), 303);
    assert_eq!(s.viewer(&mia).await["caller"]["mfa"], false, "too old");
    let approve = |client: &reqwest::Client| {
        client
            .post(format!("{}/api/v1/grants/{}/approve", s.app.url, g.id))
            .header("origin", &s.app.url)
            .json(&serde_json::json!({}))
            .send()
    };
    let r = approve(&mia).await.unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "mfa_required", "{body}");
    let still = s.db.store().get_grant(g.id).await.unwrap().unwrap();
    assert_eq!(still.state, GrantState::Pending);

    // The step-up: the provider is told to authenticate again, now.
    let back_to = format!("/grants/{}", g.id);
    let r = mia
        .get(format!(
            "{}/auth/login?mfa=1&return_to={back_to}",
            s.app.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let authorize = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(authorize.contains("prompt=login"), "{authorize}");
    assert!(authorize.contains("max_age=900"), "{authorize}");
    let callback = sign_in_at_provider(&authorize, &s.provider.issuer, "mia").await;
    let r = mia.get(callback).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        back_to.as_str(),
        "back to the grant"
    );
    assert_eq!(s.viewer(&mia).await["caller"]["mfa"], true);
    let r = approve(&mia).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let approved = s.db.store().get_grant(g.id).await.unwrap().unwrap();
    assert_eq!(approved.state, GrantState::Approved);

    // Break-glass approves itself: without a recent MFA sign-in it is refused, and
    // nothing is stored.
    let access = crate::helpers::access(
        grants.clone(),
        app::domain::AccessPolicy {
            approvers_need_mfa: true,
        },
    )
    .await;
    let mut rita = person("rita", &[Role::Requester]);
    if let Caller::Person { mfa, .. } = &mut rita {
        *mfa = false;
    }
    let err = access
        .requester(&rita, Operation::RequestGrant)
        .unwrap()
        .ask_break_glass(request("rita", "111122223333", "AdministratorAccess", 60))
        .await
        .unwrap_err();
    assert!(
        matches!(err, AccessError::Denied(app::domain::Denied::MfaRequired)),
        "{err:?}"
    );
    let mine = grants_of(&s.db.store(), "rita").await;
    assert_eq!(mine.len(), 1, "only the first request: {mine:?}");
}

/// Groups are confirmed with the provider every `session.refresh` (its refresh
/// token, no sign-in): a person removed from the approvers group keeps the role no
/// longer than that, then cannot approve.
/// Two replicas on one database and one session whose group re-check is due, asked
/// at the same moment: one spends the refresh token (single-use at the test provider,
/// as with rotation at Entra ID and Okta), the other waits for its answer in the
/// session instead of spending it again, which the provider would answer by ending
/// the session. The person stays signed in with their roles on both, re-check after
/// re-check.
#[tokio::test]
async fn replicas_re_check_a_session_once_with_a_single_use_refresh_token() {
    let clock = timebox_server::clock::ManualClock::new(chrono::Utc::now());
    let every = std::time::Duration::from_secs(5 * 60);
    let s = site_on(
        "plain",
        |_| {},
        |c| c.session.refresh = every,
        Arc::new(clock.clone()),
    )
    .await;
    let listener = free_listener().await;
    let other_url = format!("http://{}", listener.local_addr().unwrap());
    let oidc = s.provider.config(&s.app.url);
    let _other = TestApp::spawn_on(
        listener,
        &s.db,
        move |c| {
            c.oidc = Some(oidc);
            c.session.refresh = every;
        },
        Arc::new(clock.clone()),
    )
    .await;
    let (mia, r) = s.sign_in("mia").await;
    assert_eq!(r.status(), 303);
    let page_at = |url: String| {
        let mia = mia.clone();
        async move {
            mia.get(format!("{url}/"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    for round in 0..3 {
        clock.advance(chrono::Duration::minutes(6));
        let (here, there) = tokio::join!(page_at(s.app.url.clone()), page_at(other_url.clone()));
        for (which, html) in [("this replica", &here), ("the other", &there)] {
            let state = if html.contains("data-testid=\"anonymous\"") {
                "signed out"
            } else if html.contains("data-testid=\"roles\" class=\"error\"") {
                "signed in without roles"
            } else {
                "signed in"
            };
            assert!(
                html.contains("data-testid=\"section-approve\""),
                "round {round}, {which}: {state}, not an approver"
            );
        }
    }
}

#[tokio::test]
async fn a_person_removed_from_the_approvers_stops_approving_after_the_refresh() {
    let clock = timebox_server::clock::ManualClock::new(chrono::Utc::now());
    let s = site_on(
        "plain",
        |_| {},
        |c| c.session.refresh = std::time::Duration::from_secs(5 * 60),
        Arc::new(clock.clone()),
    )
    .await;
    let grants = crate::helpers::grant_service(s.db.store(), Arc::new(clock.clone()));
    let g = grants
        .request(
            request("rita", "111122223333", "AdministratorAccess", 60),
            &[],
        )
        .await
        .unwrap();
    let (mia, r) = s.sign_in("mia").await;
    assert_eq!(r.status(), 303);
    assert!(s
        .page(&mia)
        .await
        .contains("data-testid=\"section-approve\""));
    // The directory removes her from the approvers.
    s.provider
        .control(
            "mia",
            serde_json::json!({ "groups": ["timebox-requesters"] }),
        )
        .await;
    // Within the refresh interval the roles of the sign-in stand.
    clock.advance(chrono::Duration::minutes(4));
    assert!(s
        .page(&mia)
        .await
        .contains("data-testid=\"section-approve\""));
    // After it, the provider is asked again: she is a requester now.
    clock.advance(chrono::Duration::minutes(2));
    let r = mia
        .post(format!("{}/api/v1/grants/{}/approve", s.app.url, g.id))
        .header("origin", &s.app.url)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    let still = s.db.store().get_grant(g.id).await.unwrap().unwrap();
    assert_eq!(still.state, GrantState::Pending);
    let viewer = s.viewer(&mia).await;
    assert_eq!(viewer["caller"]["id"], "mia", "still signed in: {viewer}");
    let groups = viewer["caller"]["groups"].as_array().unwrap().clone();
    assert_eq!(groups, vec![serde_json::json!("timebox-requesters")]);
    let html = s.page(&mia).await;
    assert!(!html.contains("data-testid=\"section-approve\""));
    assert!(html.contains("data-testid=\"section-request\""));
}

/// The whole story for a person Entra ID signs in (opaque `sub`, groups as object
/// ids), through the real binary: Timebox knows her by `preferred_username`, her
/// request is made for her Identity Store user (`rita@corp.example`, not the
/// look-alike `rita@corp.example.evil`), an approver who signed in with Entra's MFA
/// approves it, the reaper creates the assignment in the emulator for her user, "I'm
/// done" deletes it, and her CloudTrail activity is matched to that user's name.
#[tokio::test]
async fn the_whole_story_of_an_entra_person() {
    use std::time::{Duration as StdDuration, Instant};
    let db = TestDb::sqlite().await;
    let moto = crate::moto::Moto::start().await;
    let org = crate::moto::seed(
        &moto,
        &[
            "rita@corp.example".into(),
            "rita@corp.example.evil".into(),
            "mia@corp.example".into(),
        ],
    )
    .await;
    let account = org.accounts[0].clone();
    let admin_arn = org
        .permission_sets
        .iter()
        .find(|(n, _)| n == "AdministratorAccess")
        .map(|(_, a)| a.clone())
        .expect("seeded");
    let double = crate::evidence::Double::start_every(
        std::slice::from_ref(&account),
        &["AdministratorAccess"],
        5,
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let provider = TestProvider::start_as(&url, "entra").await;
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, crate::helpers::TEST_POLICY).unwrap();
    let group_names =
        format!("{ENTRA_REQUESTERS}=timebox-requesters, {ENTRA_APPROVERS}=timebox-approvers");
    /// The binary, killed however the test ends.
    struct Server(std::process::Child);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Server(
        crate::evidence::demo_binary(dir.path(), &db, port, &moto.url, &double.url)
            .env("TIMEBOX_SERVER__PUBLIC_URL", &url)
            .env("TIMEBOX_POLICY__FILE", &policy)
            .env("TIMEBOX_OIDC__ISSUER", &provider.issuer)
            .env("TIMEBOX_OIDC__CLIENT_ID", crate::provider::CLIENT_ID)
            .env(
                "TIMEBOX_OIDC__CLIENT_SECRET",
                crate::provider::CLIENT_SECRET,
            )
            .env("TIMEBOX_OIDC__PERSON_CLAIM", "preferred_username")
            .env("TIMEBOX_OIDC__GROUP_NAMES", group_names)
            .env("TIMEBOX_OIDC__REQUESTER_GROUPS", "timebox-requesters")
            .env("TIMEBOX_OIDC__APPROVER_GROUPS", "timebox-approvers")
            .env("TIMEBOX_SESSION__SECURE_COOKIE", "false")
            .spawn()
            .expect("start the timebox binary"),
    );
    let deadline = Instant::now() + StdDuration::from_secs(120);
    let sign_in = |user: &'static str| {
        let (url, issuer) = (url.clone(), provider.issuer.clone());
        async move {
            let client = browser_like_client();
            let authorize = start_sign_in(&client, &url).await;
            let callback = sign_in_at_provider(&authorize, &issuer, user).await;
            let r = client.get(callback).send().await.unwrap();
            assert_eq!(r.status(), 303, "{user} is signed in and known");
            client
        }
    };
    let post = |client: reqwest::Client, path: String, body: serde_json::Value| {
        let url = url.clone();
        async move {
            let r = client
                .post(format!("{url}{path}"))
                .header("origin", &url)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (
                status,
                r.json::<serde_json::Value>().await.unwrap_or_default(),
            )
        }
    };
    // Ready, with the catalog synced (the request names an account of it).
    loop {
        let ready = reqwest::get(format!("{url}/readyz")).await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(Instant::now() < deadline, "the binary never became ready");
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
    let rita = sign_in("rita").await;
    let ask = serde_json::json!({
        "account_id": account, "permission_set": "AdministratorAccess",
        "duration": "1h", "justification": "Investigating the payments outage",
    });
    let grant = loop {
        let (status, body) = post(rita.clone(), "/api/v1/grants".into(), ask.clone()).await;
        if status == 201 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the request was never accepted: {body}"
        );
        tokio::time::sleep(StdDuration::from_millis(500)).await;
    };
    let id = grant["id"].as_str().unwrap().to_owned();
    assert_eq!(
        grant["request"]["requester"], "rita@corp.example",
        "{grant}"
    );
    let rita_user = org.user("rita@corp.example");
    assert_eq!(grant["identity"]["user_id"], rita_user.as_str(), "{grant}");

    // Mia signs in with Entra's MFA and approves.
    let mia = sign_in("mia").await;
    let (status, body) = post(
        mia,
        format!("/api/v1/grants/{id}/approve"),
        serde_json::json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The reaper assigns Rita's Identity Store user, never the look-alike.
    let evil = org.user("rita@corp.example.evil");
    loop {
        let users = crate::moto::user_assignments(&moto, &org, &account, &admin_arn).await;
        if users.contains(&rita_user) {
            assert!(!users.contains(&evil), "{users:?}");
            break;
        }
        assert!(Instant::now() < deadline, "never assigned: {users:?}");
        tokio::time::sleep(StdDuration::from_millis(300)).await;
    }
    // Active (the reaper recorded it), then "I'm done": the assignment goes.
    loop {
        let detail: serde_json::Value = rita
            .get(format!("{url}/api/v1/grants/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if detail["grant"]["state"] == "active" {
            break;
        }
        assert!(Instant::now() < deadline, "never active: {detail}");
        tokio::time::sleep(StdDuration::from_millis(300)).await;
    }
    let (status, body) = post(
        rita.clone(),
        format!("/api/v1/grants/{id}/revoke"),
        serde_json::json!({ "reason": "done" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    loop {
        let users = crate::moto::user_assignments(&moto, &org, &account, &admin_arn).await;
        if !users.contains(&rita_user) {
            break;
        }
        assert!(Instant::now() < deadline, "never removed: {users:?}");
        tokio::time::sleep(StdDuration::from_millis(300)).await;
    }
    // Her activity, as CloudTrail names her role sessions (the UserName), is hers.
    let store = db.store();
    let gid = app::domain::GrantId::parse(&id).unwrap();
    let summary = loop {
        let ev = store.grant_evidence(gid).await.unwrap().unwrap_or_default();
        let summary: Option<app::domain::EvidenceSummary> = ev
            .summary
            .as_deref()
            .map(|s| serde_json::from_str(s).unwrap());
        if let Some(found) = summary.filter(|found| found.event_count > 0) {
            break found;
        }
        assert!(
            Instant::now() < deadline + StdDuration::from_secs(60),
            "no activity matched: {ev:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(500)).await;
    };
    assert!(
        summary
            .role_arn
            .as_deref()
            .is_some_and(|a| a.contains("AWSReservedSSO_AdministratorAccess_")),
        "{summary:?}"
    );
    let stored = store.get_grant(gid).await.unwrap().unwrap();
    assert_eq!(stored.user_name(), "rita@corp.example");
}
