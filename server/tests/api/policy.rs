//! Policy through the services people and the reaper use, on both backends: refusals
//! that name the field, automatic approval, break-glass and its review, pending
//! expiry, approver eligibility and the inbox, the per-person cap, and the reload of
//! the policy file (a bad file keeps the previous policy).

use crate::helpers::TestDb;
use app::domain::{
    AccessPolicy, AccountId, Caller, Comment, Denied, Grant, GrantDuration, GrantId, GrantRequest,
    GrantState, Justification, Operation, PermissionSetName, PersonId, PolicyRefusal, Reason,
    ReviewComment, Role, RoleSet, TicketRef,
};
use chrono::{Duration, TimeZone, Utc};
use std::sync::Arc;
use timebox_server::clock::{Clock, ManualClock};
use timebox_server::metrics::Metrics;
use timebox_server::policy::PolicyService;
use timebox_server::reaper::{Reaper, ReaperSettings};
use timebox_server::services::grants::{Applied, GrantError, GrantService};
use timebox_server::services::{Access, AccessError};
use timebox_server::store::{
    CatalogNode, CatalogPermissionSet, GrantFilter, NewAuditEvent, NodeKind, PolicyStamp, Store,
};

crate::on_both_backends!(
    a_request_the_policy_does_not_allow_is_refused_naming_the_field,
    automatic_approval_happens_in_the_same_call,
    break_glass_starts_now_and_is_reviewed_once_by_someone_else,
    pending_requests_expire_once_even_with_two_reapers,
    only_named_approvers_decide_and_see_the_request_in_their_inbox,
    the_inbox_tells_each_requests_recent_use,
    the_per_person_cap_holds_under_concurrent_requests,
    a_bad_reload_keeps_the_previous_policy_and_says_why,
    ous_resolve_through_the_synced_catalog,
);

const POLICY: &str = r#"
[[policy]]
name = "prod-admin"
requesters = ["group:sre"]
accounts = ["111122223333"]
permission_sets = ["AdministratorAccess"]
max_duration = "2h"
approvers = ["group:sre-leads", "user:mia"]
approvals_required = 1
ticket = "required"
ticket_pattern = "INC-[0-9]+"
min_justification = 20
pending_ttl = "30m"
max_active_per_user = 2

[[policy]]
name = "read-only"
requesters = ["*"]
accounts = ["*"]
permission_sets = ["ReadOnlyAccess"]
max_duration = "8h"
approval = "auto"

[[policy]]
name = "prod-break-glass"
requesters = ["group:sre"]
accounts = ["111122223333"]
permission_sets = ["AdministratorAccess"]
max_duration = "1h"
break_glass = true
approvers = ["user:mia"]
"#;

fn clock() -> ManualClock {
    ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap())
}

struct Rig {
    clock: ManualClock,
    grants: GrantService,
    access: People,
    store: Arc<dyn Store>,
}

/// The role-scoped handles, each call through the handle the dashboard's backend
/// picks for the caller.
#[derive(Clone)]
struct People(Access);

impl People {
    async fn request(&self, c: &Caller, request: GrantRequest) -> Result<Grant, AccessError> {
        self.0
            .requester(c, Operation::RequestGrant)?
            .ask(request)
            .await
    }

    async fn request_break_glass(
        &self,
        c: &Caller,
        request: GrantRequest,
    ) -> Result<Grant, AccessError> {
        self.0
            .requester(c, Operation::RequestGrant)?
            .ask_break_glass(request)
            .await
    }

    async fn review(
        &self,
        c: &Caller,
        id: GrantId,
        comment: Option<String>,
    ) -> Result<Grant, AccessError> {
        let op = Operation::ReviewGrant;
        let comment = ReviewComment::parse_optional(comment.as_deref())?;
        if c.roles().contains(Role::Auditor) || c.roles().contains(Role::Admin) {
            self.0.auditor(c, op)?.review(id, comment).await
        } else {
            self.0.approver(c, op)?.review(id, comment).await
        }
    }

    async fn approve(
        &self,
        c: &Caller,
        id: GrantId,
        comment: Option<String>,
    ) -> Result<Applied, AccessError> {
        let comment = Comment::parse_optional(comment.as_deref())?;
        self.0
            .approver(c, Operation::ApproveGrant)?
            .approve(id, comment)
            .await
    }

    async fn deny(
        &self,
        c: &Caller,
        id: GrantId,
        comment: Option<String>,
    ) -> Result<Applied, AccessError> {
        let comment = Comment::parse_optional(comment.as_deref())?;
        self.0
            .approver(c, Operation::DenyGrant)?
            .deny(id, comment)
            .await
    }

    async fn cancel(
        &self,
        c: &Caller,
        id: GrantId,
        reason: Option<String>,
    ) -> Result<Applied, AccessError> {
        let reason = Reason::parse_optional(reason.as_deref())?;
        self.0
            .requester(c, Operation::CancelGrant)?
            .cancel(id, reason)
            .await
    }

    async fn inbox(&self, c: &Caller) -> Result<Vec<Grant>, AccessError> {
        match self.0.approver(c, Operation::ReadInbox) {
            Ok(approver) => approver.inbox().await,
            // A signed-in person who decides nothing holds no approver's handle: their
            // inbox is empty.
            Err(AccessError::Denied(Denied::Forbidden { .. })) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// Whether the grant page offers `c` to decide `grant`.
    async fn may_decide(&self, c: &Caller, grant: &Grant) -> bool {
        let reader = self.0.reader(c, Operation::ReadGrant).unwrap();
        reader.detail(grant.id).await.unwrap().actions.can_decide
    }
}

async fn rig(db: &TestDb, text: &str) -> Rig {
    let clock = clock();
    let store = db.store();
    let c: Arc<dyn Clock> = Arc::new(clock.clone());
    let policy = PolicyService::from_text(text, store.clone(), c.clone()).unwrap();
    let grants = GrantService::new(store.clone(), c, policy);
    let access = People(crate::helpers::access(grants.clone(), AccessPolicy::default()).await);
    Rig {
        clock,
        grants,
        access,
        store,
    }
}

fn person(id: &str, roles: &[Role], groups: &[&str]) -> Caller {
    Caller::Person {
        id: PersonId::parse(id).unwrap(),
        name: id.to_owned(),
        roles: RoleSet::of(roles),
        mfa: true,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

fn sam() -> Caller {
    person("sam", &[Role::Requester], &["sre"])
}

fn ask(
    who: &str,
    permission_set: &str,
    minutes: i64,
    ticket: Option<&str>,
    justification: &str,
) -> GrantRequest {
    GrantRequest {
        requester: PersonId::parse(who).unwrap(),
        account_id: AccountId::parse("111122223333").unwrap(),
        permission_set: PermissionSetName::parse(permission_set).unwrap(),
        justification: Justification::parse_with_min(justification, 1).unwrap(),
        ticket: ticket.map(|t| TicketRef::parse(t).unwrap()),
        duration: GrantDuration::from_minutes(minutes, None).unwrap(),
        requested_start: None,
        // The policy decides; this value is replaced.
        approvals_required: 7,
        extends: None,
    }
}

const WHY: &str = "the payments API is down, see the incident";

fn admin_ask(who: &str) -> GrantRequest {
    ask(who, "AdministratorAccess", 60, Some("INC-42"), WHY)
}

fn refusal<T: std::fmt::Debug>(r: Result<T, AccessError>) -> PolicyRefusal {
    match r {
        Err(AccessError::Grant(GrantError::Policy(p))) => p,
        other => panic!("expected a policy refusal, got {other:?}"),
    }
}

async fn a_request_the_policy_does_not_allow_is_refused_naming_the_field(db: &TestDb) {
    let r = rig(db, POLICY).await;
    let cases: Vec<(Caller, GrantRequest, Option<&str>, &str)> = vec![
        (
            person("dave", &[Role::Requester], &["dev"]),
            admin_ask("dave"),
            Some("permission_set"),
            "no policy lets you ask for access to AdministratorAccess in account 111122223333; \
             it is covered by policy \"prod-admin\" for group:sre, which you are not",
        ),
        (
            sam(),
            ask("sam", "DatabaseAdmin", 60, None, WHY),
            Some("permission_set"),
            "no policy covers them",
        ),
        (
            sam(),
            ask("sam", "AdministratorAccess", 180, Some("INC-42"), WHY),
            Some("duration"),
            "duration: policy \"prod-admin\" allows at most 2h (asked for 3h)",
        ),
        (
            sam(),
            ask("sam", "AdministratorAccess", 60, None, WHY),
            Some("ticket"),
            "ticket: policy \"prod-admin\" requires a ticket reference",
        ),
        (
            sam(),
            ask("sam", "AdministratorAccess", 60, Some("CHG-1"), WHY),
            Some("ticket"),
            "ticket: \"CHG-1\" does not match the pattern \"INC-[0-9]+\" that policy \"prod-admin\" requires",
        ),
        (
            sam(),
            ask("sam", "AdministratorAccess", 60, Some("INC-1"), "fix it now"),
            Some("justification"),
            "justification: policy \"prod-admin\" asks for at least 20 characters (has 10)",
        ),
    ];
    for (caller, request, field, message) in cases {
        let p = refusal(r.access.request(&caller, request).await);
        assert_eq!(p.field(), field, "{p}");
        assert!(p.to_string().contains(message), "{p}");
    }
    // Nothing was stored, nothing was audited.
    let all = r
        .store
        .list_grants(&GrantFilter::default(), None, 100)
        .await
        .unwrap();
    assert!(all.is_empty());
    assert!(r.store.audit_events(None, 0, 10).await.unwrap().is_empty());

    // Without a policy file nobody may ask.
    let none = PolicyService::start(
        &timebox_server::config::PolicyConfig::default(),
        r.store.clone(),
        Arc::new(r.clock.clone()),
    )
    .await
    .unwrap();
    let grants = GrantService::new(r.store.clone(), Arc::new(r.clock.clone()), none);
    let e = grants
        .request(ask("sam", "ReadOnlyAccess", 60, None, WHY), &["sre".into()])
        .await
        .expect_err("no policy file");
    assert!(
        matches!(e, GrantError::Policy(PolicyRefusal::NoPolicyFile)),
        "{e}"
    );
}

async fn automatic_approval_happens_in_the_same_call(db: &TestDb) {
    let r = rig(db, POLICY).await;
    let dave = person("dave", &[Role::Requester], &[]);
    let g = r
        .access
        .request(&dave, ask("dave", "ReadOnlyAccess", 240, None, WHY))
        .await
        .unwrap();
    assert_eq!(g.state, GrantState::Approved);
    assert_eq!(g.policy.as_deref(), Some("read-only"));
    assert_eq!(g.request.approvals_required, 0, "replaced by the policy");
    assert!(!g.break_glass && !g.review_required);
    let events = r.store.audit_events(Some(g.id), 0, 10).await.unwrap();
    let actions: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        actions,
        vec![("request", "dave"), ("auto_approve", "timebox")]
    );
    assert!(
        events[0].details.contains("\"policy\":\"read-only\""),
        "{}",
        events[0].details
    );
    // A request that needs approval stays pending, with the policy's quorum and expiry.
    let p = r.access.request(&sam(), admin_ask("sam")).await.unwrap();
    assert_eq!(p.state, GrantState::Pending);
    assert_eq!(p.request.approvals_required, 1);
    assert_eq!(p.expires_at, Some(r.clock.now() + Duration::minutes(30)));
    assert_eq!(r.store.get_grant(p.id).await.unwrap().unwrap(), p);
}

async fn break_glass_starts_now_and_is_reviewed_once_by_someone_else(db: &TestDb) {
    let r = rig(db, POLICY).await;
    // Break-glass only when asked for: an ordinary request stays pending.
    let normal = r.access.request(&sam(), admin_ask("sam")).await.unwrap();
    assert_eq!(normal.state, GrantState::Pending);
    assert!(!normal.break_glass);

    let mut req = ask("sam", "AdministratorAccess", 60, None, WHY);
    req.requested_start = Some(r.clock.now() + Duration::hours(3));
    let g = r.access.request_break_glass(&sam(), req).await.unwrap();
    assert_eq!(g.state, GrantState::Approved, "no approval");
    assert!(g.break_glass && g.review_required && g.awaits_review());
    assert_eq!(g.policy.as_deref(), Some("prod-break-glass"));
    assert_eq!(g.request.requested_start, None, "starts now");
    // Its own terms still hold.
    let long = ask("sam", "AdministratorAccess", 90, None, WHY);
    let p = refusal(r.access.request_break_glass(&sam(), long).await);
    assert_eq!(p.field(), Some("duration"));
    // No break-glass policy for this: refused, naming break-glass.
    let ro = ask("sam", "ReadOnlyAccess", 60, None, WHY);
    let p = refusal(r.access.request_break_glass(&sam(), ro).await);
    assert!(p.to_string().contains("break-glass access"), "{p}");

    // The requester cannot review their own use, whatever their roles.
    let own = person(
        "sam",
        &[Role::Requester, Role::Auditor, Role::Admin],
        &["sre"],
    );
    assert!(matches!(
        r.access.review(&own, g.id, None).await,
        Err(AccessError::Denied(Denied::OwnRequest))
    ));
    // An approver the policy does not name may not; a requester may not at all.
    let arno = person("arno", &[Role::Approver], &[]);
    assert!(matches!(
        r.access.review(&arno, g.id, None).await,
        Err(AccessError::Denied(Denied::NotAnApprover { .. }))
    ));
    let dave = person("dave", &[Role::Requester], &[]);
    assert!(matches!(
        r.access.review(&dave, g.id, None).await,
        Err(AccessError::Denied(Denied::Forbidden { .. }))
    ));
    // An auditor may; once.
    r.clock.advance(Duration::minutes(5));
    let audrey = person("audrey", &[Role::Auditor], &[]);
    let reviewed = r
        .access
        .review(&audrey, g.id, Some("incident INC-42, justified".into()))
        .await
        .unwrap();
    assert_eq!(reviewed.reviewed_by.as_deref(), Some("audrey"));
    assert_eq!(reviewed.reviewed_at, Some(r.clock.now()));
    assert_eq!(
        reviewed.review_comment.as_deref(),
        Some("incident INC-42, justified")
    );
    assert!(!reviewed.awaits_review());
    let mia = person("mia", &[Role::Approver], &[]);
    assert!(matches!(
        r.access.review(&mia, g.id, None).await,
        Err(AccessError::Grant(GrantError::NoReviewOwed(_)))
    ));
    // A grant that is not break-glass owes no review.
    assert!(matches!(
        r.access.review(&audrey, normal.id, None).await,
        Err(AccessError::Grant(GrantError::NoReviewOwed(_)))
    ));
    let events = r.store.audit_events(Some(g.id), 0, 10).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(
        (last.action.as_str(), last.actor.as_str()),
        ("review", "audrey")
    );
    assert!(crate::helpers::chain_of(r.store.as_ref()).await.is_intact());
}

async fn reaper_for(r: &Rig, store: Arc<dyn Store>) -> Reaper {
    let mut config = timebox_server::config::Config::default();
    // Never called: the test drives only the pending sweep.
    config.aws.endpoint_url = Some("http://127.0.0.1:1".into());
    let metrics = Arc::new(Metrics::new());
    let ic = Arc::new(
        timebox_server::identity_center::sdk::SdkIdentityCenter::from_config(
            &config.aws,
            &config.identity_center,
            metrics.clone(),
        )
        .await,
    );
    let policy = r.grants.policy().clone();
    Reaper::new(
        GrantService::new(store, Arc::new(r.clock.clone()), policy),
        ic,
        Arc::new(r.clock.clone()),
        metrics,
        ReaperSettings::from_config(&config),
    )
}

async fn pending_requests_expire_once_even_with_two_reapers(db: &TestDb) {
    let r = rig(db, POLICY).await;
    let mut ids = Vec::new();
    for who in ["sam", "sue"] {
        let c = person(who, &[Role::Requester], &["sre"]);
        ids.push(r.access.request(&c, admin_ask(who)).await.unwrap().id);
    }
    // A request that needs no approval but was left pending (a crash between the
    // request and its automatic approval) is approved by the sweep.
    let mut left = ask("dave", "ReadOnlyAccess", 60, None, WHY);
    left.approvals_required = 0;
    let left_id = GrantId(uuid::Uuid::new_v4());
    r.store
        .create_policy_grant(
            left_id,
            &left,
            &PolicyStamp {
                policy: "read-only".into(),
                expires_at: Some(r.clock.now() + Duration::minutes(30)),
                ..PolicyStamp::default()
            },
            r.clock.now(),
            NewAuditEvent {
                grant_id: Some(left_id),
                at: r.clock.now(),
                actor: "dave".into(),
                action: app::domain::AuditAction::Request,
                from_state: None,
                to_state: Some(GrantState::Pending),
                reason: None,
                details: serde_json::json!({}),
            },
            Vec::new(),
        )
        .await
        .unwrap();

    let first = reaper_for(&r, db.store()).await;
    let second = reaper_for(&r, db.store()).await;
    // Before the TTL only the left-over automatic approval happens.
    r.clock.advance(Duration::minutes(29));
    assert_eq!(first.settle_pending(r.clock.now()).await.unwrap(), (0, 1));
    assert_eq!(
        r.store.get_grant(left_id).await.unwrap().unwrap().state,
        GrantState::Approved
    );
    r.clock.advance(Duration::minutes(2));
    let (a, b) = tokio::join!(
        first.settle_pending(r.clock.now()),
        second.settle_pending(r.clock.now())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.0 + b.0,
        2,
        "each request expired exactly once: {a:?} {b:?}"
    );
    assert_eq!(a.1 + b.1, 0);
    for id in &ids {
        let g = r.store.get_grant(*id).await.unwrap().unwrap();
        assert_eq!(g.state, GrantState::Expired);
        let events = r.store.audit_events(Some(*id), 0, 10).await.unwrap();
        let expire: Vec<_> = events.iter().filter(|e| e.action == "expire").collect();
        assert_eq!(expire.len(), 1);
        assert_eq!(expire[0].actor, "timebox");
    }
    // Idempotent: again, nothing.
    assert_eq!(first.settle_pending(r.clock.now()).await.unwrap(), (0, 0));
    // An expired request can no longer be approved.
    let mia = person("mia", &[Role::Approver], &[]);
    assert!(r.access.approve(&mia, ids[0], None).await.is_err());
}

/// The inbox's items say how often each requester had the same access in the last
/// 30 days and how many of those grants were flagged (read for all items at once).
async fn the_inbox_tells_each_requests_recent_use(db: &TestDb) {
    let r = rig(db, POLICY).await;
    let now = r.clock.now();
    // Sam's earlier grants: two activated in the last 30 days of the same access (one
    // flagged), one activated 40 days ago, one never activated, one in another account;
    // Sue's one of the same access.
    let earlier = [
        ("sam", "111122223333", 3, true, true),
        ("sam", "111122223333", 10, true, false),
        ("sam", "111122223333", 40, true, false),
        ("sam", "111122223333", 5, false, false),
        ("sam", "444455556666", 5, true, false),
        ("sue", "111122223333", 5, true, false),
    ];
    for (i, (who, account, days_ago, activated, flagged)) in earlier.into_iter().enumerate() {
        let at =
            (now - Duration::days(days_ago)).to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let id = format!("00000000-0000-4000-8000-{i:012}");
        let activated_at = if activated {
            format!("'{at}'")
        } else {
            "NULL".to_owned()
        };
        db.exec(&format!(
            "INSERT INTO grants (id, requester, account_id, permission_set, justification, \
             duration_minutes, approvals_required, state, created_at, updated_at, version, \
             activated_at) VALUES ('{id}', '{who}', '{account}', 'AdministratorAccess', \
             'earlier work', 60, 0, 'closed', '{at}', '{at}', 1, {activated_at})"
        ))
        .await;
        if flagged {
            let summary = app::domain::EvidenceSummary {
                flags: vec![app::domain::ActivityFlag::AfterRevocation {
                    count: 1,
                    first_at: now,
                    last_at: now,
                }],
                ..app::domain::EvidenceSummary::default()
            };
            let json = serde_json::to_string(&summary).unwrap().replace('\'', "''");
            db.exec(&format!(
                "INSERT INTO grant_evidence (grant_id, summary) VALUES ('{id}', '{json}')"
            ))
            .await;
        }
    }
    let first = r.access.request(&sam(), admin_ask("sam")).await.unwrap();
    r.clock.advance(Duration::minutes(1));
    let sue = person("sue", &[Role::Requester], &["sre"]);
    let second = r.access.request(&sue, admin_ask("sue")).await.unwrap();
    let mia = person("mia", &[Role::Approver], &[]);
    let items = r
        .access
        .0
        .approver(&mia, Operation::ReadInbox)
        .unwrap()
        .inbox_items()
        .await
        .unwrap();
    let seen: Vec<_> = items
        .iter()
        .map(|i| (i.grant.id, i.recent.grants_30d, i.recent.flagged_30d))
        .collect();
    assert_eq!(seen, vec![(first.id, 2, 1), (second.id, 1, 0)]);
}

async fn only_named_approvers_decide_and_see_the_request_in_their_inbox(db: &TestDb) {
    let r = rig(db, POLICY).await;
    let first = r.access.request(&sam(), admin_ask("sam")).await.unwrap();
    r.clock.advance(Duration::minutes(1));
    let sue = person("sue", &[Role::Requester], &["sre"]);
    let second = r.access.request(&sue, admin_ask("sue")).await.unwrap();

    let arno = person("arno", &[Role::Approver], &["other"]);
    let lead = person("lena", &[Role::Approver], &["sre-leads"]);
    let mia = person("mia", &[Role::Approver], &[]);
    // An admin is not an approver unless the policy names them.
    let ada = person("ada", &[Role::Admin], &[]);
    for (c, expected) in [(&arno, false), (&ada, false), (&lead, true), (&mia, true)] {
        assert_eq!(r.access.may_decide(c, &first).await, expected, "{c:?}");
    }
    let e = r
        .access
        .approve(&arno, first.id, None)
        .await
        .expect_err("not named");
    match &e {
        AccessError::Denied(Denied::NotAnApprover { policy, approvers }) => {
            assert_eq!(policy.as_deref(), Some("prod-admin"));
            assert_eq!(
                approvers,
                &vec!["group:sre-leads".to_owned(), "user:mia".to_owned()]
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("you are not one of them"), "{e}");
    assert!(matches!(
        r.access.deny(&ada, first.id, None).await,
        Err(AccessError::Denied(Denied::NotAnApprover { .. }))
    ));
    assert_eq!(
        r.store.get_grant(first.id).await.unwrap().unwrap().state,
        GrantState::Pending
    );
    // The inbox: oldest first; nothing for someone not named or not deciding.
    let inbox: Vec<_> = r
        .access
        .inbox(&mia)
        .await
        .unwrap()
        .iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(inbox, vec![first.id, second.id]);
    assert!(r.access.inbox(&arno).await.unwrap().is_empty());
    assert!(r.access.inbox(&sam()).await.unwrap().is_empty());
    assert!(matches!(
        r.access.inbox(&Caller::Anonymous).await,
        Err(AccessError::Denied(Denied::SignInRequired))
    ));
    // A named approver who is also in sre never sees their own request.
    let lead_sre = person(
        "sam",
        &[Role::Approver, Role::Requester],
        &["sre", "sre-leads"],
    );
    let own: Vec<_> = r
        .access
        .inbox(&lead_sre)
        .await
        .unwrap()
        .iter()
        .map(|g| g.id)
        .collect();
    assert_eq!(own, vec![second.id]);

    let applied = r.access.approve(&lead, first.id, None).await.unwrap();
    assert_eq!(applied.grant.state, GrantState::Approved);
    r.access
        .deny(&mia, second.id, Some("not now".into()))
        .await
        .unwrap();
    assert!(r.access.inbox(&mia).await.unwrap().is_empty());
}

async fn the_per_person_cap_holds_under_concurrent_requests(db: &TestDb) {
    let r = rig(db, POLICY).await;
    // Five at once, cap 2: exactly two are recorded.
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let access = r.access.clone();
        tasks.push(tokio::spawn(async move {
            access.request(&sam(), admin_ask("sam")).await
        }));
    }
    let mut ok = Vec::new();
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(g) => ok.push(g),
            Err(AccessError::Grant(GrantError::Policy(PolicyRefusal::CapReached {
                policy,
                cap,
                active,
            }))) => {
                assert_eq!((policy.as_str(), cap, active), ("prod-admin", 2, 2));
                refused += 1;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!((ok.len(), refused), (2, 3));
    // The cap is per person: sue is not affected.
    let sue = person("sue", &[Role::Requester], &["sre"]);
    r.access.request(&sue, admin_ask("sue")).await.unwrap();
    // Ending one frees a place; the message says what to do.
    let e = r
        .access
        .request(&sam(), admin_ask("sam"))
        .await
        .expect_err("capped");
    assert!(
        e.to_string().contains("wait for one to end or cancel one"),
        "{e}"
    );
    r.access.cancel(&sam(), ok[0].id, None).await.unwrap();
    r.access.request(&sam(), admin_ask("sam")).await.unwrap();
}

async fn sync_catalog(store: &Arc<dyn Store>, at: chrono::DateTime<Utc>) {
    let node = |id: &str, kind, name: &str, parent: Option<&str>| CatalogNode {
        id: id.into(),
        kind,
        name: name.into(),
        parent_id: parent.map(Into::into),
    };
    let ps = |name: &str| CatalogPermissionSet {
        arn: format!("arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-{name}"),
        name: name.into(),
        description: None,
        session_duration_seconds: 3600,
    };
    store
        .replace_catalog(
            &[ps("AdministratorAccess"), ps("ReadOnlyAccess")],
            &[
                node("r-abcd", NodeKind::Root, "Root", None),
                node(
                    "ou-abcd-prod0001",
                    NodeKind::Ou,
                    "Production",
                    Some("r-abcd"),
                ),
                node(
                    "ou-prod-payments",
                    NodeKind::Ou,
                    "Payments",
                    Some("ou-abcd-prod0001"),
                ),
                node(
                    "111122223333",
                    NodeKind::Account,
                    "payments-prod",
                    Some("ou-prod-payments"),
                ),
                node("444455556666", NodeKind::Account, "sandbox", Some("r-abcd")),
            ],
            at,
        )
        .await
        .unwrap();
}

async fn a_bad_reload_keeps_the_previous_policy_and_says_why(db: &TestDb) {
    let clock = clock();
    let store = db.store();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, POLICY).unwrap();
    let config = timebox_server::config::PolicyConfig {
        file: Some(file.clone()),
        poll_interval: std::time::Duration::from_millis(100),
    };
    let policy = PolicyService::start(&config, store.clone(), Arc::new(clock.clone()))
        .await
        .unwrap();
    assert_eq!(policy.current().len(), 3);
    let status = policy.reload_status();
    assert_eq!(
        status.file.as_deref(),
        Some(file.display().to_string().as_str())
    );
    assert_eq!(status.policies, 3);
    assert_eq!(status.last_error, None);

    // A broken file: refused, the three policies stay, the status says why.
    clock.advance(Duration::minutes(1));
    std::fs::write(
        &file,
        POLICY.replace("max_duration = \"2h\"", "max_duration = \"13h\""),
    )
    .unwrap();
    let e = policy.reload().await.expect_err("refused");
    assert!(
        e.to_string()
            .contains("policy \"prod-admin\": max_duration:"),
        "{e}"
    );
    assert_eq!(policy.current().len(), 3);
    let status = policy.reload_status();
    assert_eq!(status.loaded_at, Some(clock.now() - Duration::minutes(1)));
    assert_eq!(status.last_attempt_at, Some(clock.now()));
    let last = status.last_error.unwrap();
    assert!(
        last.contains("max_duration") && last.contains(&file.display().to_string()),
        "{last}"
    );
    // The previous policy still decides requests.
    let grants = GrantService::new(store.clone(), Arc::new(clock.clone()), policy.clone());
    let g = grants
        .request(admin_ask("sam"), &["sre".into()])
        .await
        .unwrap();
    assert_eq!(g.policy.as_deref(), Some("prod-admin"));

    // Once the catalog is synced, a permission set it does not have is refused too.
    sync_catalog(&store, clock.now()).await;
    std::fs::write(
        &file,
        POLICY.replace("\"ReadOnlyAccess\"", "\"ReadOnlyAcess\""),
    )
    .unwrap();
    let e = policy.reload().await.expect_err("unknown permission set");
    assert!(
        e.to_string().contains("policy \"read-only\": permission_sets: permission set \"ReadOnlyAcess\" is not in IAM Identity Center's synced catalog"),
        "{e}"
    );
    assert_eq!(policy.current().len(), 3);

    // A good file, picked up by the watcher on its own (file change).
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let watcher = policy.spawn_watcher(stop_rx);
    let fixed = format!(
        "{POLICY}\n[[policy]]\nname = \"sandbox\"\nrequesters = [\"*\"]\naccounts = [\"444455556666\"]\n\
         permission_sets = [\"AdministratorAccess\"]\nmax_duration = \"1h\"\napproval = \"auto\"\n"
    );
    std::fs::write(&file, fixed).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while policy.current().len() != 4 {
        assert!(
            std::time::Instant::now() < deadline,
            "the watcher did not reload"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let status = policy.reload_status();
    assert_eq!(status.policies, 4);
    assert_eq!(status.last_error, None);
    stop_tx.send(true).unwrap();
    watcher.await.unwrap();

    // Each file put in force is in the audit chain with its SHA-256 (the refused
    // ones are not: they were never in force); the request names the version that
    // decided it, and a restart on the same file records nothing new.
    let loads = || async {
        let mut all: Vec<serde_json::Value> = store
            .audit_events(None, 0, 10_000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "policy_loaded")
            .map(|e| serde_json::from_str(&e.details).unwrap())
            .collect();
        all.reverse();
        all
    };
    let sha = |text: &str| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(text.as_bytes()))
    };
    let recorded = loads().await;
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    assert_eq!(
        recorded[0]["sha256"],
        sha(&std::fs::read_to_string(&file).unwrap())
    );
    assert_eq!(recorded[0]["previous_sha256"], sha(POLICY));
    assert_eq!(recorded[1]["sha256"], sha(POLICY));
    let request = store.audit_events(Some(g.id), 0, 10).await.unwrap();
    let details: serde_json::Value = serde_json::from_str(&request[0].details).unwrap();
    assert_eq!(details["policy_file_sha256"], sha(POLICY));
    PolicyService::start(&config, store.clone(), Arc::new(clock.clone()))
        .await
        .unwrap();
    assert_eq!(loads().await.len(), 2, "the same file again: nothing new");

    // Start-up against a catalog that lacks something: starts, and says so.
    std::fs::write(&file, POLICY.replace("111122223333", "999988887777")).unwrap();
    let started = PolicyService::start(&config, store.clone(), Arc::new(clock.clone()))
        .await
        .unwrap();
    let problems = started.reload_status().catalog_problems;
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].contains("account 999988887777 is not in the organisation's synced catalog")
    );
    // Start-up with a broken file does not start.
    std::fs::write(&file, "[[policy]]\nname = \"x\"\n").unwrap();
    let e = PolicyService::start(&config, store.clone(), Arc::new(clock.clone()))
        .await
        .expect_err("bad file");
    assert!(
        e.to_string()
            .contains("policy \"x\": requesters: is missing"),
        "{e}"
    );
}

async fn ous_resolve_through_the_synced_catalog(db: &TestDb) {
    let text = r#"
[[policy]]
name = "production"
requesters = ["group:sre"]
accounts = ["ou-abcd-prod0001"]
permission_sets = ["AdministratorAccess"]
max_duration = "1h"
approvers = ["group:sre-leads"]
"#;
    let r = rig(db, text).await;
    // Before the catalog is synced the OU cannot be resolved, and the message says so.
    let p = refusal(r.access.request(&sam(), admin_ask("sam")).await);
    assert!(
        p.to_string()
            .contains("the catalog has not been synced yet"),
        "{p}"
    );
    sync_catalog(&r.store, r.clock.now()).await;
    // The account sits in a nested OU of Production.
    let g = r.access.request(&sam(), admin_ask("sam")).await.unwrap();
    assert_eq!(g.policy.as_deref(), Some("production"));
    // What sam may ask for, and who can request what.
    let catalog = r.grants.policy().catalog().await.unwrap();
    let mine = r.grants.policy().entitlements_for(&sam(), &catalog);
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (mine[0].account_id.as_str(), mine[0].account_name.as_str()),
        ("111122223333", "payments-prod")
    );
    assert!(
        r.grants
            .policy()
            .entitlements_for(&person("ann", &[Role::Auditor], &["sre"]), &catalog)
            .is_empty(),
        "an auditor may not ask for access"
    );
    let rows = r
        .grants
        .policy()
        .explain(Some("group:sre"), None, None)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].via, "ou-abcd-prod0001");
    assert!(r
        .grants
        .policy()
        .explain(Some("group:dev"), None, None)
        .await
        .unwrap()
        .is_empty());
}
