//! Error paths the emulator cannot produce, with `aws-smithy-mocks` standing in for
//! sso-admin: `IN_PROGRESS` then `SUCCEEDED`, `FAILED`, throttling, `ConflictException`
//! and 500s. The real SDK client parses every mocked answer; the reaper runs on a
//! real SQLite store with a manual clock.

use crate::helpers::TestDb;
use crate::reaper::{approved_grant, start_time};
use app::domain::{Grant, GrantState};
use aws_sdk_ssoadmin::operation::create_account_assignment::{
    CreateAccountAssignmentError, CreateAccountAssignmentOutput,
};
use aws_sdk_ssoadmin::operation::delete_account_assignment::{
    DeleteAccountAssignmentError, DeleteAccountAssignmentOutput,
};
use aws_sdk_ssoadmin::operation::describe_account_assignment_creation_status::DescribeAccountAssignmentCreationStatusOutput;
use aws_sdk_ssoadmin::operation::describe_account_assignment_deletion_status::DescribeAccountAssignmentDeletionStatusOutput;
use aws_sdk_ssoadmin::operation::describe_permission_set::DescribePermissionSetOutput;
use aws_sdk_ssoadmin::operation::list_account_assignments::ListAccountAssignmentsOutput;
use aws_sdk_ssoadmin::types::error::{
    AccessDeniedException, ConflictException, ThrottlingException,
};
use aws_sdk_ssoadmin::types::{AccountAssignmentOperationStatus, PermissionSet, StatusValues};
use aws_sdk_ssoadmin::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use chrono::Duration;
use std::sync::Arc;
use timebox_server::aws::Calls;
use timebox_server::clock::ManualClock;
use timebox_server::identity_center::sdk::{Clients, SdkIdentityCenter};
use timebox_server::metrics::Metrics;
use timebox_server::reaper::Reaper;
use timebox_server::services::grants::GrantService;
use timebox_server::store::{CatalogPermissionSet, GrantAws, Store};

/// An SDK configuration whose endpoint refuses connections: for the clients a test
/// does not mock (and never expects to be called).
async fn closed_sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .credentials_provider(aws_sdk_ssoadmin::config::Credentials::new(
            "t", "t", None, None, "test",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}

const INSTANCE: &str = "arn:aws:sso:::instance/ssoins-0123456789abcdef";
const PS: &str = "arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-0123456789abcdef";
const ACCOUNT: &str = "111122223333";

/// The error metadata the SDK's deserializer attaches to every service error (the
/// code comes from the response); the classifier reads it.
fn meta(code: &str) -> aws_sdk_ssoadmin::error::ErrorMetadata {
    aws_sdk_ssoadmin::error::ErrorMetadata::builder()
        .code(code)
        .build()
}

fn op_status(
    status: StatusValues,
    request_id: &str,
    reason: Option<&str>,
) -> AccountAssignmentOperationStatus {
    AccountAssignmentOperationStatus::builder()
        .status(status)
        .request_id(request_id)
        .set_failure_reason(reason.map(str::to_owned))
        .build()
}

fn created(status: StatusValues) -> CreateAccountAssignmentOutput {
    CreateAccountAssignmentOutput::builder()
        .account_assignment_creation_status(op_status(status, "req-create", None))
        .build()
}

fn creation(
    status: StatusValues,
    reason: Option<&str>,
) -> DescribeAccountAssignmentCreationStatusOutput {
    DescribeAccountAssignmentCreationStatusOutput::builder()
        .account_assignment_creation_status(op_status(status, "req-create", reason))
        .build()
}

fn deleted() -> DeleteAccountAssignmentOutput {
    DeleteAccountAssignmentOutput::builder()
        .account_assignment_deletion_status(op_status(StatusValues::InProgress, "req-delete", None))
        .build()
}

fn deletion_ok() -> DescribeAccountAssignmentDeletionStatusOutput {
    DescribeAccountAssignmentDeletionStatusOutput::builder()
        .account_assignment_deletion_status(op_status(StatusValues::Succeeded, "req-delete", None))
        .build()
}

/// Rules every scenario needs: the permission set (PT4H) and no other assignments.
fn common_rules() -> Vec<Rule> {
    vec![
        mock!(Client::describe_permission_set)
            .sequence()
            .output(|| {
                DescribePermissionSetOutput::builder()
                    .permission_set(
                        PermissionSet::builder()
                            .name("AdministratorAccess")
                            .permission_set_arn(PS)
                            .session_duration("PT4H")
                            .build(),
                    )
                    .build()
            })
            .repeatedly()
            .build(),
        mock!(Client::list_account_assignments)
            .sequence()
            .output(|| ListAccountAssignmentsOutput::builder().build())
            .repeatedly()
            .build(),
    ]
}

struct MockRig {
    _db: TestDb,
    store: Arc<dyn Store>,
    clock: ManualClock,
    grants: GrantService,
    reaper: Reaper,
    metrics: Arc<Metrics>,
}

/// A reaper whose sso-admin client answers with `rules` (plus [`common_rules`]); the
/// identity store and organizations clients point at a closed port (only the
/// best-effort other-path lookup calls them, and its failure is logged, not fatal).
async fn mock_rig(rules: Vec<Rule>) -> MockRig {
    mock_rig_with(rules, settings()).await
}

fn settings() -> timebox_server::reaper::ReaperSettings {
    let mut s = crate::reaper::settings();
    // The catalog is seeded below; no rules answer a sync.
    s.catalog_refresh = std::time::Duration::from_secs(400 * 86_400);
    s
}

async fn mock_rig_with(
    rules: Vec<Rule>,
    settings: timebox_server::reaper::ReaperSettings,
) -> MockRig {
    let db = TestDb::sqlite().await;
    let mut all = rules;
    all.extend(common_rules());
    let rule_refs: Vec<&Rule> = all.iter().collect();
    // As in production (`aws::AwsSetup::load`): the SDK does not retry,
    // the reaper does.
    let sso_admin = mock_client!(aws_sdk_ssoadmin, RuleMode::MatchAny, &rule_refs, |c| c
        .retry_config(aws_sdk_ssoadmin::config::retry::RetryConfig::disabled()));
    let closed = closed_sdk_config().await;
    let metrics = Arc::new(Metrics::new());
    let ic = Arc::new(SdkIdentityCenter::new(
        Clients {
            sso_admin,
            identity_store: aws_sdk_identitystore::Client::new(&closed),
            organizations: aws_sdk_organizations::Client::new(&closed),
        },
        Some(INSTANCE.into()),
        Some("d-0123456789".into()),
        Calls::new(metrics.clone()),
    ));
    let store = db.store();
    let clock = ManualClock::new(start_time());
    // A cached catalog, so no sync is attempted.
    store
        .replace_catalog(
            &[CatalogPermissionSet {
                arn: PS.into(),
                name: "AdministratorAccess".into(),
                description: None,
                session_duration_seconds: 4 * 3600,
            }],
            &[],
            start_time(),
        )
        .await
        .unwrap();
    let grants = crate::helpers::grant_service(store.clone(), Arc::new(clock.clone()));
    let reaper = Reaper::new(
        grants.clone(),
        ic,
        Arc::new(clock.clone()),
        metrics.clone(),
        settings,
    );
    MockRig {
        _db: db,
        store,
        clock,
        grants,
        reaper,
        metrics,
    }
}

impl MockRig {
    /// An approved grant whose requester is already mapped (no identity-store call).
    async fn grant(&self) -> Grant {
        let g = approved_grant(&self.grants, "alice", ACCOUNT, "AdministratorAccess", 60).await;
        self.store
            .save_grant_aws(
                g.id,
                &GrantAws {
                    principal_id: Some("user-alice".into()),
                    permission_set_arn: Some(PS.into()),
                    ..GrantAws::default()
                },
            )
            .await
            .unwrap();
        g
    }

    async fn state(&self, g: &Grant) -> Grant {
        self.store.get_grant(g.id).await.unwrap().unwrap()
    }

    async fn aws(&self, g: &Grant) -> GrantAws {
        self.store.grant_aws(g.id).await.unwrap().unwrap()
    }

    fn failures(&self, step: &str, kind: &str) -> u64 {
        self.metrics
            .reaper_failures
            .with_label_values(&[step, kind])
            .get()
    }
}

#[tokio::test]
async fn in_progress_is_not_success_until_succeeded() {
    let create =
        mock!(Client::create_account_assignment).then_output(|| created(StatusValues::InProgress));
    let status = mock!(Client::describe_account_assignment_creation_status)
        .sequence()
        .output(|| creation(StatusValues::InProgress, None))
        .times(2)
        .output(|| creation(StatusValues::Succeeded, None))
        .build();
    let r = mock_rig(vec![create, status.clone()]).await;
    let g = r.grant().await;
    r.reaper.tick().await.unwrap();
    let active = r.state(&g).await;
    assert_eq!(active.state, GrantState::Active);
    assert_eq!(status.num_calls(), 3, "polled through IN_PROGRESS twice");
    assert_eq!(active.permission_set_session.unwrap().seconds(), 4 * 3600);
    assert_eq!(
        r.aws(&g).await.create_request_id.as_deref(),
        Some("req-create")
    );
}

#[tokio::test]
async fn still_in_progress_after_the_budget_is_resumed_by_polling_not_creating() {
    let create =
        mock!(Client::create_account_assignment).then_output(|| created(StatusValues::InProgress));
    let status = mock!(Client::describe_account_assignment_creation_status)
        .sequence()
        .output(|| creation(StatusValues::InProgress, None))
        .times(20)
        .output(|| creation(StatusValues::Succeeded, None))
        .build();
    let mut s = settings();
    s.poll_budget = std::time::Duration::from_millis(100);
    let r = mock_rig_with(vec![create.clone(), status.clone()], s).await;
    let g = r.grant().await;
    let reaper = &r.reaper;
    reaper.tick().await.unwrap();
    assert_eq!(r.state(&g).await.state, GrantState::Provisioning);
    assert_eq!(create.num_calls(), 1);
    // Later ticks poll the stored request; CreateAccountAssignment is not sent again.
    let mut n = 0;
    while r.state(&g).await.state == GrantState::Provisioning && n < 200 {
        reaper.tick().await.unwrap();
        n += 1;
    }
    assert_eq!(r.state(&g).await.state, GrantState::Active);
    assert_eq!(create.num_calls(), 1, "created once");
}

#[tokio::test]
async fn failed_creation_is_retried_then_fails_with_the_aws_reason() {
    let create = mock!(Client::create_account_assignment)
        .sequence()
        .output(|| created(StatusValues::InProgress))
        .repeatedly()
        .build();
    let status = mock!(Client::describe_account_assignment_creation_status)
        .sequence()
        .output(|| {
            creation(
                StatusValues::Failed,
                Some("Received a 404 status error: the role could not be created"),
            )
        })
        .repeatedly()
        .build();
    let r = mock_rig(vec![create.clone(), status]).await;
    let g = r.grant().await;
    for _ in 0..6 {
        r.reaper.tick().await.unwrap();
        r.clock.advance(Duration::seconds(30));
    }
    let failed = r.state(&g).await;
    assert_eq!(failed.state, GrantState::Failed);
    assert!(failed
        .failure_reason
        .as_deref()
        .unwrap()
        .contains("the role could not be created"));
    assert_eq!(create.num_calls(), 3, "settings().provision_attempts");
    assert!(r.failures("provision", "failed") >= 1);
}

#[tokio::test]
async fn throttling_and_500s_are_retried_with_backoff() {
    let create = mock!(Client::create_account_assignment)
        .sequence()
        .error(|| {
            CreateAccountAssignmentError::ThrottlingException(
                ThrottlingException::builder()
                    .message("Rate exceeded")
                    .meta(meta("ThrottlingException"))
                    .build(),
            )
        })
        .http_status(500, None)
        .output(|| created(StatusValues::Succeeded))
        .build();
    let status = mock!(Client::describe_account_assignment_creation_status)
        .then_output(|| creation(StatusValues::Succeeded, None));
    let r = mock_rig(vec![create.clone(), status]).await;
    let g = r.grant().await;
    r.reaper.tick().await.unwrap();
    let w = r.aws(&g).await;
    assert_eq!(r.state(&g).await.state, GrantState::Provisioning);
    assert_eq!(w.attempts, 1);
    assert!(w
        .last_error
        .as_deref()
        .unwrap()
        .contains("ThrottlingException"));
    let next = w.next_attempt_at.unwrap();
    assert!(
        next >= start_time() + Duration::seconds(1) && next <= start_time() + Duration::seconds(10),
        "{next}"
    );
    // Not before the backoff.
    r.reaper.tick().await.unwrap();
    assert_eq!(create.num_calls(), 1);
    r.clock.set(next);
    r.reaper.tick().await.unwrap();
    assert_eq!(create.num_calls(), 2, "the 500");
    assert_eq!(r.aws(&g).await.attempts, 2);
    r.clock.set(r.aws(&g).await.next_attempt_at.unwrap());
    r.reaper.tick().await.unwrap();
    assert_eq!(r.state(&g).await.state, GrantState::Active);
    assert_eq!(r.failures("provision", "aws"), 2);
    assert!(
        r.metrics
            .aws_call_errors
            .with_label_values(&["CreateAccountAssignment", "ThrottlingException"])
            .get()
            >= 1
    );
}

#[tokio::test]
async fn revocation_retries_conflicts_and_never_gives_up() {
    let create =
        mock!(Client::create_account_assignment).then_output(|| created(StatusValues::Succeeded));
    let status = mock!(Client::describe_account_assignment_creation_status)
        .then_output(|| creation(StatusValues::Succeeded, None));
    let delete = mock!(Client::delete_account_assignment)
        .sequence()
        .error(|| {
            DeleteAccountAssignmentError::ConflictException(
                ConflictException::builder()
                    .message("another operation is in progress")
                    .meta(meta("ConflictException"))
                    .build(),
            )
        })
        .error(|| {
            DeleteAccountAssignmentError::AccessDeniedException(
                AccessDeniedException::builder()
                    .message("not allowed")
                    .meta(meta("AccessDeniedException"))
                    .build(),
            )
        })
        .times(8)
        .output(deleted)
        .build();
    let deletion =
        mock!(Client::describe_account_assignment_deletion_status).then_output(deletion_ok);
    let r = mock_rig(vec![create, status, delete.clone(), deletion]).await;
    let g = r.grant().await;
    r.reaper.tick().await.unwrap();
    assert_eq!(r.state(&g).await.state, GrantState::Active);
    r.clock.advance(Duration::minutes(60));
    // A conflict, then eight refusals: still revoking, retried each time after backoff.
    for _ in 0..9 {
        r.reaper.tick().await.unwrap();
        assert_eq!(r.state(&g).await.state, GrantState::Revoking);
        let w = r.aws(&g).await;
        r.clock.set(w.next_attempt_at.unwrap());
    }
    assert_eq!(r.aws(&g).await.attempts, 9);
    assert_eq!(r.failures("revoke", "aws"), 1);
    assert_eq!(r.failures("revoke", "aws_permanent"), 8);
    // People were told once, at the third failure (notifications: revocation failing).
    let failing: Vec<_> = r
        .store
        .notification_events_to_fan_out(r.clock_now(), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == timebox_server::notify::NotificationKind::RevocationFailing)
        .collect();
    assert_eq!(failing.len(), 1, "{failing:?}");
    assert_eq!(failing[0].details["attempts"], 3);
    assert_eq!(failing[0].grant_id, Some(g.id));
    r.reaper.tick().await.unwrap();
    let revoked = r.state(&g).await;
    assert_eq!(revoked.state, GrantState::Revoked);
    assert_eq!(delete.num_calls(), 10);
    assert_eq!(revoked.revoked_at, Some(r.clock_now()));
}

impl MockRig {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use timebox_server::clock::Clock;
        self.clock.now()
    }
}

/// `identity_center.user_match = "external_id"` (moto has no ExternalIds): the person
/// id is looked up with `GetUserId` and an `ExternalId` identifier of the configured
/// issuer, and the user's `UserName` read with `DescribeUser`; an unknown id is "no
/// match", not an AWS failure.
#[tokio::test]
async fn a_person_is_found_by_external_id() {
    use aws_sdk_identitystore::operation::describe_user::DescribeUserOutput;
    use aws_sdk_identitystore::operation::get_user_id::{GetUserIdError, GetUserIdOutput};
    use aws_sdk_identitystore::types::error::ResourceNotFoundException;
    use aws_sdk_identitystore::types::AlternateIdentifier;
    use timebox_server::identity_center::{IdentityCenter, IdentityError, UserKey};
    const ISSUER: &str = "https://scim.aws.com/1234abcd";
    let known = mock!(aws_sdk_identitystore::Client::get_user_id)
        .match_requests(|r| {
            matches!(
                r.alternate_identifier(),
                Some(AlternateIdentifier::ExternalId(e)) if e.issuer() == ISSUER && e.id() == "oid-rita"
            ) && r.identity_store_id() == Some("d-0123456789")
        })
        .then_output(|| {
            GetUserIdOutput::builder()
                .identity_store_id("d-0123456789")
                .user_id("u-rita")
                .user_arn("arn:aws:identitystore::111122223333:user/u-rita")
                .build()
                .unwrap()
        });
    let unknown = mock!(aws_sdk_identitystore::Client::get_user_id)
        .match_requests(|r| {
            matches!(
                r.alternate_identifier(),
                Some(AlternateIdentifier::ExternalId(e)) if e.id() != "oid-rita"
            )
        })
        .then_error(|| {
            GetUserIdError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .message("USER not found.")
                    .meta(
                        aws_sdk_identitystore::error::ErrorMetadata::builder()
                            .code("ResourceNotFoundException")
                            .build(),
                    )
                    .build(),
            )
        });
    let describe = mock!(aws_sdk_identitystore::Client::describe_user)
        .match_requests(|r| r.user_id() == Some("u-rita"))
        .then_output(|| {
            DescribeUserOutput::builder()
                .identity_store_id("d-0123456789")
                .user_id("u-rita")
                .user_name("rita@corp.example")
                .user_arn("arn:aws:identitystore::111122223333:user/u-rita")
                .revision("1")
                .build()
                .unwrap()
        });
    let identity_store = mock_client!(
        aws_sdk_identitystore,
        RuleMode::MatchAny,
        &[&known, &unknown, &describe],
        |c| c.retry_config(aws_sdk_identitystore::config::retry::RetryConfig::disabled())
    );
    let closed = closed_sdk_config().await;
    let ic = SdkIdentityCenter::new(
        Clients {
            sso_admin: Client::new(&closed),
            identity_store,
            organizations: aws_sdk_organizations::Client::new(&closed),
        },
        Some(INSTANCE.into()),
        Some("d-0123456789".into()),
        Calls::new(Arc::new(Metrics::new())),
    );
    let key = UserKey::ExternalId {
        issuer: ISSUER.into(),
    };
    let rita = ic.find_user(&key, "oid-rita").await.unwrap();
    assert_eq!(rita.user_id, "u-rita");
    assert_eq!(rita.user_name, "rita@corp.example");
    let err = ic.find_user(&key, "oid-nobody").await.unwrap_err();
    assert!(
        matches!(&err, IdentityError::NoMatch { by: "external_id", value } if value == "oid-nobody"),
        "{err:?}"
    );
    assert_eq!(known.num_calls(), 1);
    assert_eq!(describe.num_calls(), 1);
}
