//! Evidence: CloudTrail activity and Detective investigations.
//!
//! - `aws-smithy-mocks` stands in for CloudTrail and Detective (the emulator has
//!   neither with data): `LookupEvents` paging and throttling, Lake query states, every
//!   Detective call. The real SDK clients parse every answer; the bodies follow the AWS
//!   API references' examples.
//! - Collection timing runs through the reaper, against the AWS emulator for the
//!   assignments, with a manual clock, on both backends.
//! - The demo double (`end2end/doubles/aws_evidence_double.py`) is checked against the
//!   real SDK clients too, behind STS `AssumeRole` from the emulator.
//! - The evidence pack over HTTP, signed in at the real OpenID provider.

use crate::helpers::{browser_like_client, free_listener, TestApp, TestDb};
use crate::reaper::{approved_grant, rig, settings};
use app::domain::{ActivityFlag, GrantState, InvestigationSeverity, InvestigationStatus};
use aws_sdk_cloudtrail::operation::get_query_results::GetQueryResultsOutput;
use aws_sdk_cloudtrail::operation::lookup_events::{LookupEventsInput, LookupEventsOutput};
use aws_sdk_cloudtrail::operation::start_query::StartQueryOutput;
use aws_sdk_cloudtrail::types::{Event, QueryStatus, Resource};
use aws_sdk_detective::operation::get_investigation::GetInvestigationOutput;
use aws_sdk_detective::operation::list_indicators::ListIndicatorsOutput;
use aws_sdk_detective::operation::start_investigation::StartInvestigationOutput;
use aws_sdk_detective::types::{
    FlaggedIpAddressDetail, ImpossibleTravelDetail, Indicator, IndicatorDetail, IndicatorType,
    NewAsoDetail, NewGeolocationDetail, NewUserAgentDetail, Reason, RelatedFindingDetail,
    RelatedFindingGroupDetail, Severity, State, Status, TtPsObservedDetail,
};
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::collections::HashMap;
use std::sync::Arc;
use timebox_server::aws::{AwsSetup, Calls};
use timebox_server::clock::ManualClock;
use timebox_server::evidence::cloudtrail::{CloudTrailLookup, FixedClients, ThrottleRetry};
use timebox_server::evidence::collect::{Collector, EvidenceSettings};
use timebox_server::evidence::detective::{Investigations, SdkDetective};
use timebox_server::evidence::lake::{LakePolling, LakeSource};
use timebox_server::evidence::{
    ActivityQuery, ActivitySink, ActivitySource, EvidenceError, MatchTarget,
};
use timebox_server::metrics::Metrics;
use timebox_server::reaper::Reaper;
use timebox_server::store::Store;

const GRAPH: &str =
    "arn:aws:detective:us-east-1:111122223333:graph:0123456789abcdef0123456789abcdef";
const ROLE_ID: &str = "AROA123456789EXAMPLE";

fn role_name(ps: &str) -> String {
    format!("AWSReservedSSO_{ps}_0123456789abcdef")
}

fn role_arn(account: &str, ps: &str) -> String {
    format!(
        "arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/{}",
        role_name(ps)
    )
}

/// One CloudTrail record as `LookupEvents` returns it: the `Event` fields and its
/// `CloudTrailEvent` JSON, shaped like the CloudTrail user guide's `AssumedRole`
/// record example.
fn trail_event(
    id: &str,
    at: DateTime<Utc>,
    account: &str,
    ps: &str,
    user: &str,
    ip: &str,
    error: Option<&str>,
) -> Event {
    let role = role_name(ps);
    let mut record = serde_json::json!({
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": format!("{ROLE_ID}:{user}"),
            "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{user}"),
            "accountId": account,
            "accessKeyId": "ASIAIOSFODNN7EXAMPLE",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": ROLE_ID,
                    "arn": role_arn(account, ps),
                    "accountId": account,
                    "userName": role
                },
                "attributes": {
                    "creationDate": (at - Duration::minutes(5)).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    "mfaAuthenticated": "false"
                }
            }
        },
        "eventTime": at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "eventSource": "ec2.amazonaws.com",
        "eventName": "StopInstances",
        "awsRegion": "us-east-1",
        "sourceIPAddress": ip,
        "userAgent": "aws-cli/2.13.5 Python/3.11.4 Linux/4.14.255-314-253.539.amzn2.x86_64",
        "requestParameters": { "instancesSet": { "items": [{ "instanceId": "i-EXAMPLE56126103cb" }] }, "force": false },
        "responseElements": null,
        "requestID": "c4a4b4b0-EXAMPLE",
        "eventID": id,
        "readOnly": false,
        "resources": [{ "accountId": account, "type": "AWS::EC2::Instance", "ARN": format!("arn:aws:ec2:us-east-1:{account}:instance/i-EXAMPLE56126103cb") }],
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": account,
        "eventCategory": "Management"
    });
    if let Some(code) = error {
        record["errorCode"] = code.into();
        record["errorMessage"] = "You are not authorized to perform this operation.".into();
    }
    Event::builder()
        .event_id(id)
        .event_name("StopInstances")
        .read_only("false")
        .access_key_id("ASIAIOSFODNN7EXAMPLE")
        .event_time(aws_smithy_types::DateTime::from_secs(at.timestamp()))
        .event_source("ec2.amazonaws.com")
        .username(user)
        .resources(
            Resource::builder()
                .resource_type("AWS::EC2::Instance")
                .resource_name("i-EXAMPLE56126103cb")
                .build(),
        )
        .cloud_trail_event(record.to_string())
        .build()
}

fn t(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).unwrap()
}

/// Collects into a vector (no database).
#[derive(Default)]
struct VecSink(Vec<app::domain::ActivityEvent>, usize);

#[async_trait::async_trait]
impl ActivitySink for VecSink {
    async fn accept(
        &mut self,
        events: Vec<app::domain::ActivityEvent>,
    ) -> Result<(), EvidenceError> {
        self.1 += 1;
        self.0.extend(events);
        Ok(())
    }
}

fn cloudtrail_client(rules: &[&Rule]) -> aws_sdk_cloudtrail::Client {
    mock_client!(aws_sdk_cloudtrail, RuleMode::MatchAny, rules, |c| c
        .retry_config(
            aws_sdk_cloudtrail::config::retry::RetryConfig::disabled()
        ))
}

fn detective_client(rules: &[&Rule]) -> aws_sdk_detective::Client {
    mock_client!(aws_sdk_detective, RuleMode::MatchAny, rules, |c| c
        .retry_config(
            aws_sdk_detective::config::retry::RetryConfig::disabled()
        ))
}

fn lookup(client: aws_sdk_cloudtrail::Client) -> CloudTrailLookup {
    CloudTrailLookup::new(
        Arc::new(FixedClients {
            cloudtrail: client,
            iam: None,
        }),
        vec!["us-east-1".into()],
        // Fast enough for a test, still paced.
        50,
        Calls::new(Arc::new(Metrics::new())),
    )
    .with_retry(ThrottleRetry {
        attempts: 3,
        first_delay: std::time::Duration::from_millis(10),
    })
}

fn query(account: &str, ps: &str, user: &str) -> ActivityQuery {
    ActivityQuery {
        target: MatchTarget {
            account_id: account.into(),
            permission_set: ps.into(),
            user_name: user.into(),
        },
        start: t(8, 0),
        end: t(20, 0),
    }
}

const ACCOUNT: &str = "111122223333";

#[tokio::test]
async fn lookup_events_pages_are_followed_and_only_exact_matches_kept() {
    let first = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .match_requests(|r: &LookupEventsInput| r.next_token().is_none())
        .then_output(|| {
            LookupEventsOutput::builder()
                .events(trail_event("e-1", t(9, 10), ACCOUNT, "Admin", "bob", "192.0.2.10", None))
                // LookupEvents matches the user name exactly, but never trust it: these
                // are someone else's, another permission set's, another account's.
                .events(trail_event("e-2", t(9, 11), ACCOUNT, "Admin", "bobby", "192.0.2.10", None))
                .events(trail_event("e-3", t(9, 12), ACCOUNT, "AdminRO", "bob", "192.0.2.10", None))
                .events(trail_event("e-4", t(9, 13), "444455556666", "Admin", "bob", "192.0.2.10", None))
                .next_token("kbOt5LlZe++mErCebpy2TgaMgmDvF1kYGFcH64JSjIbZFjsuvrSqg66b5YGssKutDYIyII4lrP4IDbeQdiObkp9YAlju3oXd12juy3CIZW8=")
                .build()
        });
    let second = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .match_requests(|r: &LookupEventsInput| {
            r.next_token().is_some_and(|t| t.starts_with("kbOt5"))
        })
        .then_output(|| {
            LookupEventsOutput::builder()
                .events(trail_event(
                    "e-5",
                    t(10, 30),
                    ACCOUNT,
                    "Admin",
                    "bob",
                    "203.0.113.5",
                    Some("Client.UnauthorizedOperation"),
                ))
                .events(trail_event(
                    "e-6",
                    t(10, 31),
                    ACCOUNT,
                    "Admin_RO",
                    "bob",
                    "203.0.113.5",
                    None,
                ))
                .build()
        });
    let client = cloudtrail_client(&[&first, &second]);
    let source = lookup(client);
    let mut sink = VecSink::default();
    let stats = source
        .collect(&query(ACCOUNT, "Admin", "bob"), &mut sink)
        .await
        .unwrap();
    assert_eq!(stats.pages, 2);
    assert_eq!(stats.seen, 6);
    assert_eq!(stats.matched, 2);
    assert_eq!(first.num_calls(), 1);
    assert_eq!(second.num_calls(), 1);
    let ids: Vec<&str> = sink.0.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, vec!["e-1", "e-5"]);
    let denied = &sink.0[1];
    assert!(denied.is_access_denied());
    assert_eq!(denied.source_ip.as_deref(), Some("203.0.113.5"));
    assert_eq!(denied.read_only, Some(false));
    assert_eq!(
        denied.session_issuer_arn.as_deref(),
        Some(role_arn(ACCOUNT, "Admin").as_str())
    );
    assert_eq!(
        denied.resources,
        vec![format!(
            "arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-EXAMPLE56126103cb"
        )]
    );
}

const THROTTLED: &str = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;

#[tokio::test]
async fn a_throttled_page_is_retried_then_reported_as_retryable() {
    let rule = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .http_status(400, Some(THROTTLED.into()))
        .output(|| {
            LookupEventsOutput::builder()
                .events(trail_event(
                    "e-1",
                    t(9, 10),
                    ACCOUNT,
                    "Admin",
                    "bob",
                    "192.0.2.10",
                    None,
                ))
                .build()
        })
        .build();
    let source = lookup(cloudtrail_client(&[&rule]));
    let mut sink = VecSink::default();
    let stats = source
        .collect(&query(ACCOUNT, "Admin", "bob"), &mut sink)
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 3, "two throttled answers, then the page");
    assert_eq!(stats.matched, 1);

    let always = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .repeatedly()
        .build();
    let source = lookup(cloudtrail_client(&[&always]));
    let err = source
        .collect(&query(ACCOUNT, "Admin", "bob"), &mut VecSink::default())
        .await
        .unwrap_err();
    assert_eq!(
        always.num_calls(),
        3,
        "bounded retries inside one collection"
    );
    match &err {
        EvidenceError::Aws(e) => assert_eq!(e.code, "ThrottlingException"),
        other => panic!("expected a throttling error, got {other:?}"),
    }
    assert!(err.is_retryable(), "the reaper tries again later");
}

fn lake_row(pairs: &[(&str, &str)]) -> Vec<HashMap<String, String>> {
    pairs
        .iter()
        .map(|(k, v)| HashMap::from([((*k).to_owned(), (*v).to_owned())]))
        .collect()
}

fn lake_record(id: &str, user: &str, ps: &str) -> Vec<HashMap<String, String>> {
    let role = role_name(ps);
    let principal = format!("{ROLE_ID}:{user}");
    let arn = role_arn(ACCOUNT, ps);
    lake_row(&[
        ("eventID", id),
        ("eventTime", "2026-03-02 09:10:00.000"),
        ("eventName", "GetObject"),
        ("eventSource", "s3.amazonaws.com"),
        ("awsRegion", "us-east-1"),
        ("sourceIPAddress", "192.0.2.10"),
        ("userAgent", "[aws-cli/2.13.5]"),
        ("readOnly", "true"),
        ("resources", "[{accountId=111122223333, type=AWS::S3::Object, arn=arn:aws:s3:::DOC-EXAMPLE-BUCKET/report.csv}]"),
        ("recipientAccountId", ACCOUNT),
        ("identityType", "AssumedRole"),
        ("identityAccountId", ACCOUNT),
        ("principalId", &principal),
        ("issuerUserName", &role),
        ("issuerArn", &arn),
        ("sessionCreationDate", "2026-03-02 09:05:00.000"),
    ])
}

const QUERY_ID: &str = "EXAMPLEd-17a7-47c3-a9a1-eccf7EXAMPLE";

fn query_results(status: QueryStatus) -> GetQueryResultsOutput {
    GetQueryResultsOutput::builder()
        .query_status(status)
        .build()
}

#[tokio::test]
async fn a_lake_query_is_polled_through_its_states_and_its_pages_read() {
    let start = mock!(aws_sdk_cloudtrail::Client::start_query)
        .match_requests(|r| {
            r.query_statement().is_some_and(|q| {
                q.contains("split_part(userIdentity.principalId, ':', 2) = 'bob'")
                    && !q.to_uppercase().contains(" LIKE ")
            })
        })
        .then_output(|| StartQueryOutput::builder().query_id(QUERY_ID).build());
    let results = mock!(aws_sdk_cloudtrail::Client::get_query_results)
        .match_requests(|r| r.query_id() == Some(QUERY_ID))
        .sequence()
        .output(|| query_results(QueryStatus::Queued))
        .output(|| query_results(QueryStatus::Running))
        .output(|| {
            GetQueryResultsOutput::builder()
                .query_status(QueryStatus::Finished)
                .query_result_rows(lake_record("lake-1", "bob", "Admin"))
                // The SQL is exact, but rows are checked again anyway.
                .query_result_rows(lake_record("lake-2", "bobby", "Admin"))
                .next_token("page-2")
                .build()
        })
        .output(|| {
            GetQueryResultsOutput::builder()
                .query_status(QueryStatus::Finished)
                .query_result_rows(lake_record("lake-3", "bob", "Admin"))
                .build()
        })
        .build();
    let client = cloudtrail_client(&[&start, &results]);
    let source = LakeSource::new(
        client,
        "arn:aws:cloudtrail:us-east-1:111122223333:eventdatastore/EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE",
        Calls::new(Arc::new(Metrics::new())),
    )
    .with_polling(LakePolling {
        initial: std::time::Duration::from_millis(5),
        max: std::time::Duration::from_millis(20),
        budget: std::time::Duration::from_secs(5),
    });
    let mut sink = VecSink::default();
    let stats = source
        .collect(&query(ACCOUNT, "Admin", "bob"), &mut sink)
        .await
        .unwrap();
    assert_eq!(start.num_calls(), 1);
    assert_eq!(
        results.num_calls(),
        4,
        "QUEUED, RUNNING, then two FINISHED pages"
    );
    assert_eq!(stats.pages, 2);
    let ids: Vec<&str> = sink.0.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, vec!["lake-1", "lake-3"]);
    assert_eq!(
        sink.0[0].resources,
        vec!["arn:aws:s3:::DOC-EXAMPLE-BUCKET/report.csv"]
    );
}

#[tokio::test]
async fn a_failed_lake_query_is_an_error_with_its_reason() {
    let start = mock!(aws_sdk_cloudtrail::Client::start_query)
        .then_output(|| StartQueryOutput::builder().query_id(QUERY_ID).build());
    let results = mock!(aws_sdk_cloudtrail::Client::get_query_results)
        .sequence()
        .output(|| query_results(QueryStatus::Running))
        .output(|| {
            GetQueryResultsOutput::builder()
                .query_status(QueryStatus::Failed)
                .error_message("Query failed: the event data store is being deleted")
                .build()
        })
        .build();
    let source = LakeSource::new(
        cloudtrail_client(&[&start, &results]),
        "EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE",
        Calls::new(Arc::new(Metrics::new())),
    )
    .with_polling(LakePolling {
        initial: std::time::Duration::from_millis(5),
        max: std::time::Duration::from_millis(20),
        budget: std::time::Duration::from_secs(5),
    });
    let err = source
        .collect(&query(ACCOUNT, "Admin", "bob"), &mut VecSink::default())
        .await
        .unwrap_err();
    match err {
        EvidenceError::Query {
            status,
            reason,
            query_id,
        } => {
            assert_eq!(status, "FAILED");
            assert_eq!(query_id, QUERY_ID);
            assert!(reason.contains("being deleted"), "{reason}");
        }
        other => panic!("expected a query error, got {other:?}"),
    }
}

const INVESTIGATION: &str = "000000000000000000001";

fn get_investigation(status: Status, scope_end: DateTime<Utc>) -> GetInvestigationOutput {
    GetInvestigationOutput::builder()
        .graph_arn(GRAPH)
        .investigation_id(INVESTIGATION)
        .entity_arn(role_arn(ACCOUNT, "Admin"))
        .entity_type(aws_sdk_detective::types::EntityType::IamRole)
        .created_time(aws_smithy_types::DateTime::from_secs(t(10, 1).timestamp()))
        .scope_start_time(aws_smithy_types::DateTime::from_secs(t(9, 0).timestamp()))
        .scope_end_time(aws_smithy_types::DateTime::from_secs(scope_end.timestamp()))
        .status(status)
        .severity(Severity::High)
        .state(State::Active)
        .build()
}

fn indicators_page_one() -> ListIndicatorsOutput {
    ListIndicatorsOutput::builder()
        .graph_arn(GRAPH)
        .investigation_id(INVESTIGATION)
        .indicators(
            Indicator::builder()
                .indicator_type(IndicatorType::TtpObserved)
                .indicator_detail(
                    IndicatorDetail::builder()
                        .ttps_observed_detail(
                            TtPsObservedDetail::builder()
                                .tactic("Discovery")
                                .technique("Cloud Infrastructure Discovery")
                                .procedure("Discovery:IAMUser/AnomalousBehavior")
                                .ip_address("203.0.113.5")
                                .api_name("ListRoles")
                                .api_success_count(34)
                                .api_failure_count(2)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .indicators(
            Indicator::builder()
                .indicator_type(IndicatorType::ImpossibleTravel)
                .indicator_detail(
                    IndicatorDetail::builder()
                        .impossible_travel_detail(
                            ImpossibleTravelDetail::builder()
                                .starting_ip_address("192.0.2.10")
                                .ending_ip_address("203.0.113.5")
                                .starting_location("Frankfurt, DE")
                                .ending_location("Sao Paulo, BR")
                                .hourly_time_delta(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .indicators(
            Indicator::builder()
                .indicator_type(IndicatorType::FlaggedIpAddress)
                .indicator_detail(
                    IndicatorDetail::builder()
                        .flagged_ip_address_detail(
                            FlaggedIpAddressDetail::builder()
                                .ip_address("203.0.113.5")
                                .reason(Reason::AwsThreatIntelligence)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .next_token("indicators-2")
        .build()
}

fn indicators_page_two() -> ListIndicatorsOutput {
    let one = |kind: IndicatorType, detail: IndicatorDetail| {
        Indicator::builder()
            .indicator_type(kind)
            .indicator_detail(detail)
            .build()
    };
    ListIndicatorsOutput::builder()
        .graph_arn(GRAPH)
        .investigation_id(INVESTIGATION)
        .indicators(one(
            IndicatorType::NewGeolocation,
            IndicatorDetail::builder()
                .new_geolocation_detail(
                    NewGeolocationDetail::builder()
                        .location("Sao Paulo, BR")
                        .ip_address("203.0.113.5")
                        .is_new_for_entire_account(true)
                        .build(),
                )
                .build(),
        ))
        .indicators(one(
            IndicatorType::NewAso,
            IndicatorDetail::builder()
                .new_aso_detail(
                    NewAsoDetail::builder()
                        .aso("EXAMPLE-ASN-64496")
                        .is_new_for_entire_account(false)
                        .build(),
                )
                .build(),
        ))
        .indicators(one(
            IndicatorType::NewUserAgent,
            IndicatorDetail::builder()
                .new_user_agent_detail(
                    NewUserAgentDetail::builder()
                        .user_agent("python-requests/2.31")
                        .is_new_for_entire_account(true)
                        .build(),
                )
                .build(),
        ))
        .indicators(one(
            IndicatorType::RelatedFinding,
            IndicatorDetail::builder()
                .related_finding_detail(
                    RelatedFindingDetail::builder()
                        .arn("arn:aws:guardduty:us-east-1:111122223333:detector/12abc34d567e8fa901bc2d34eexample/finding/3ac12bfe2b7a1c4e4f6bb5eexample")
                        .r#type("Recon:IAMUser/MaliciousIPCaller")
                        .ip_address("203.0.113.5")
                        .build(),
                )
                .build(),
        ))
        .indicators(one(
            IndicatorType::RelatedFindingGroup,
            IndicatorDetail::builder()
                .related_finding_group_detail(
                    RelatedFindingGroupDetail::builder()
                        .id("fg-0123456789abcdef")
                        .build(),
                )
                .build(),
        ))
        .build()
}

/// Every Detective call the collector makes: start, RUNNING then SUCCESSFUL, and the
/// indicators in two pages.
fn detective_rules() -> Vec<Rule> {
    vec![
        mock!(aws_sdk_detective::Client::start_investigation)
            .match_requests(|r| r.graph_arn() == Some(GRAPH) && r.entity_arn().is_some())
            .sequence()
            .output(|| {
                StartInvestigationOutput::builder()
                    .investigation_id(INVESTIGATION)
                    .build()
            })
            .repeatedly()
            .build(),
        mock!(aws_sdk_detective::Client::get_investigation)
            .match_requests(|r| r.investigation_id() == Some(INVESTIGATION))
            .sequence()
            .output(|| get_investigation(Status::Running, t(10, 0)))
            .output(|| get_investigation(Status::Successful, t(10, 0)))
            .repeatedly()
            .build(),
        mock!(aws_sdk_detective::Client::list_indicators)
            .match_requests(|r| r.next_token().is_none())
            .sequence()
            .output(indicators_page_one)
            .repeatedly()
            .build(),
        mock!(aws_sdk_detective::Client::list_indicators)
            .match_requests(|r| r.next_token() == Some("indicators-2"))
            .sequence()
            .output(indicators_page_two)
            .repeatedly()
            .build(),
    ]
}

/// The real binary in `dir` as the local demo runs it: on `db`, listening on `port`,
/// Identity Center and Organizations from the emulator at `moto`, CloudTrail and
/// Detective from the evidence double at `double`, a reaper pass every second; its
/// log (warnings) on the test's stderr. The caller adds settings and spawns it.
pub(crate) fn demo_binary(
    dir: &std::path::Path,
    db: &TestDb,
    port: u16,
    moto: &str,
    double: &str,
) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_timebox"));
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TIMEBOX_DATABASE__URL", db.url())
        .env("TIMEBOX_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("TIMEBOX_REAPER__INTERVAL", "1s")
        .env("TIMEBOX_AWS__ENDPOINT_URL", moto)
        .env("TIMEBOX_AWS__CLOUDTRAIL_ENDPOINT_URL", double)
        .env("TIMEBOX_AWS__DETECTIVE_ENDPOINT_URL", double)
        .env("TIMEBOX_EVIDENCE__SOURCE", "cloudtrail")
        .env("TIMEBOX_EVIDENCE__COLLECT_INTERVAL", "10s")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("TIMEBOX_LOG__LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit());
    command
}

#[tokio::test]
async fn every_detective_call_is_understood() {
    let rules = detective_rules();
    let refs: Vec<&Rule> = rules.iter().collect();
    let d = SdkDetective::new(
        detective_client(&refs),
        GRAPH.into(),
        Calls::new(Arc::new(Metrics::new())),
    );
    assert_eq!(d.region(), "us-east-1");
    let scope = app::domain::Interval {
        start: t(9, 0),
        end: t(10, 0),
    };
    let id = d.start(&role_arn(ACCOUNT, "Admin"), scope).await.unwrap();
    assert_eq!(id, INVESTIGATION);
    let first = d.get(&id).await.unwrap();
    assert_eq!(first.status, InvestigationStatus::Running);
    let done = d.get(&id).await.unwrap();
    assert_eq!(done.status, InvestigationStatus::Successful);
    assert_eq!(done.severity, Some(InvestigationSeverity::High));
    assert_eq!(done.state.as_deref(), Some("ACTIVE"));
    let indicators = d.indicators(&id).await.unwrap();
    let kinds: Vec<&str> = indicators.iter().map(|i| i.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "TTP_OBSERVED",
            "IMPOSSIBLE_TRAVEL",
            "FLAGGED_IP_ADDRESS",
            "NEW_GEOLOCATION",
            "NEW_ASO",
            "NEW_USER_AGENT",
            "RELATED_FINDING",
            "RELATED_FINDING_GROUP"
        ]
    );
    assert!(indicators[0].summary.contains("Discovery"));
    assert!(indicators[0]
        .details
        .contains(&("api_success_count".into(), "34".into())));
    assert!(indicators[1].summary.contains("Sao Paulo, BR"));
    assert!(indicators[2].summary.contains("AWS_THREAT_INTELLIGENCE"));

    let missing = mock!(aws_sdk_detective::Client::get_investigation).then_http_response(|| {
        aws_sdk_detective::config::http::HttpResponse::new(
            404.try_into().unwrap(),
            aws_smithy_types::body::SdkBody::from(
                r#"{"Message":"The investigation was not found"}"#,
            ),
        )
    });
    let d = SdkDetective::new(
        detective_client(&[&missing]),
        GRAPH.into(),
        Calls::new(Arc::new(Metrics::new())),
    );
    assert!(d.get("000000000000000000009").await.is_err());
}

/// `LookupEvents` answered from a fixed history, as CloudTrail would: the events in
/// the asked range, newest first.
fn history_rule(account: String) -> Rule {
    mock!(aws_sdk_cloudtrail::Client::lookup_events).then_compute_output(move |r| {
        let start = r.start_time().map_or(0, |t| t.secs());
        let end = r.end_time().map_or(i64::MAX, |t| t.secs());
        let history = [
            trail_event(
                "ev-0910",
                t(9, 10),
                &account,
                "AdministratorAccess",
                "alice",
                "192.0.2.10",
                None,
            ),
            trail_event(
                "ev-0920",
                t(9, 20),
                &account,
                "AdministratorAccess",
                "alice",
                "192.0.2.10",
                Some("AccessDenied"),
            ),
            trail_event(
                "ev-0921",
                t(9, 21),
                &account,
                "AdministratorAccess",
                "alicea",
                "192.0.2.10",
                None,
            ),
            trail_event(
                "ev-1030",
                t(10, 30),
                &account,
                "AdministratorAccess",
                "alice",
                "203.0.113.5",
                None,
            ),
        ];
        let mut events: Vec<Event> = history
            .into_iter()
            .filter(|e| {
                e.event_time()
                    .is_some_and(|t| t.secs() >= start && t.secs() <= end)
            })
            .collect();
        events.reverse();
        LookupEventsOutput::builder()
            .set_events(Some(events))
            .build()
    })
}

fn evidence_settings() -> EvidenceSettings {
    let mut s = EvidenceSettings::from_config(&timebox_server::config::Config::default());
    s.backoff_base = Duration::seconds(1);
    s.backoff_cap = Duration::seconds(10);
    s
}

async fn evidence_row(
    store: &Arc<dyn Store>,
    id: app::domain::GrantId,
) -> timebox_server::store::GrantEvidence {
    store.grant_evidence(id).await.unwrap().unwrap_or_default()
}

async fn all_events(store: &Arc<dyn Store>, id: app::domain::GrantId) -> Vec<String> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        // A small page, so keyset paging is exercised.
        let page = store.activity_page(id, after.as_ref(), 2).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(timebox_server::store::ActivityCursor::after(last));
        out.extend(page.iter().map(|e| e.event_id.clone()));
    }
    out
}

async fn collection_follows_the_grant_through_the_reaper(db: &TestDb) {
    let r = rig(db, &[]).await;
    let account = r.org.accounts[0].clone();
    let lookups = history_rule(account.clone());
    let detective = detective_rules();
    let detective_refs: Vec<&Rule> = detective.iter().collect();
    let metrics = Arc::new(Metrics::new());
    let source: Arc<dyn ActivitySource> = Arc::new(lookup(cloudtrail_client(&[&lookups])));
    let investigations: Arc<dyn Investigations> = Arc::new(SdkDetective::new(
        detective_client(&detective_refs),
        GRAPH.into(),
        Calls::new(metrics.clone()),
    ));
    let make_reaper = || {
        Reaper::new(
            r.grants.clone(),
            r.ic.clone(),
            Arc::new(r.clock.clone()),
            metrics.clone(),
            settings(),
        )
        .with_evidence(Collector::new(
            r.grants.clone(),
            source.clone(),
            Some(investigations.clone()),
            Arc::new(r.clock.clone()),
            metrics.clone(),
            evidence_settings(),
        ))
    };
    let reaper = make_reaper();
    let store = r.store.clone();

    // 09:00: provisioned; collected at once while active.
    let g = approved_grant(&r.grants, "alice", &account, "AdministratorAccess", 60).await;
    reaper.tick().await.unwrap();
    let grant = store.get_grant(g.id).await.unwrap().unwrap();
    assert_eq!(grant.state, GrantState::Active);
    let ev = evidence_row(&store, g.id).await;
    assert_eq!(ev.collections, 1);
    assert_eq!(ev.next_collection_at, Some(t(9, 5)));
    assert!(all_events(&store, g.id).await.is_empty());

    // 09:02: not due yet.
    r.clock.set(t(9, 2));
    reaper.tick().await.unwrap();
    assert_eq!(evidence_row(&store, g.id).await.collections, 1);

    // 09:30: collected again; alice's two calls, never "alicea"'s.
    r.clock.set(t(9, 30));
    reaper.tick().await.unwrap();
    assert_eq!(all_events(&store, g.id).await, vec!["ev-0910", "ev-0920"]);
    let ev = evidence_row(&store, g.id).await;
    assert_eq!(ev.collections, 2);

    // 10:00: the end. Revoked through the emulator, collected at once (though the
    // next periodic collection was later), and the investigation started.
    r.clock.set(t(10, 0));
    reaper.tick().await.unwrap();
    let grant = store.get_grant(g.id).await.unwrap().unwrap();
    assert_eq!(grant.state, GrantState::Revoked);
    let ev = evidence_row(&store, g.id).await;
    assert_eq!(ev.collections, 3);
    assert_eq!(ev.investigation_id.as_deref(), Some(INVESTIGATION));
    assert_eq!(ev.investigation_status.as_deref(), Some("RUNNING"));
    assert_eq!(
        ev.role_arn.as_deref(),
        Some(role_arn(&account, "AdministratorAccess").as_str()),
        "the role comes from CloudTrail's session issuer"
    );

    // Another replica holding the grant's evidence lease: this one does nothing.
    r.clock.set(t(10, 31));
    let key = format!("evidence|{}", g.id);
    assert!(store
        .lease_target(&key, "other-replica", t(10, 31), t(10, 41))
        .await
        .unwrap());
    reaper.tick().await.unwrap();
    assert_eq!(evidence_row(&store, g.id).await.collections, 3);
    store.release_target(&key, "other-replica").await.unwrap();

    // 10:31, after a restart (a new reaper, resuming from the database): the call at
    // 10:30 came after revocation; the investigation has finished.
    drop(reaper);
    let reaper = make_reaper();
    reaper.tick().await.unwrap();
    let ev = evidence_row(&store, g.id).await;
    assert_eq!(ev.collections, 4);
    let summary: app::domain::EvidenceSummary =
        serde_json::from_str(ev.summary.as_deref().unwrap()).unwrap();
    assert_eq!(summary.event_count, 3);
    assert_eq!(summary.error_count, 1);
    assert_eq!(summary.access_denied_count, 1);
    assert_eq!(summary.distinct_source_ips, 2);
    assert_eq!(summary.first_activity, Some(t(9, 10)));
    assert_eq!(summary.last_activity, Some(t(10, 30)));
    assert!(
        summary
            .flags
            .iter()
            .any(|f| matches!(f, ActivityFlag::AfterRevocation { count: 1, .. })),
        "{:?}",
        summary.flags
    );
    assert!(!summary.covers_tail);
    let inv: app::domain::InvestigationSummary =
        serde_json::from_str(ev.investigation.as_deref().unwrap()).unwrap();
    assert_eq!(inv.status, InvestigationStatus::Successful);
    assert_eq!(inv.severity, Some(InvestigationSeverity::High));
    assert_eq!(inv.indicators.len(), 8);
    assert!(inv.shared_role_note.contains("shared by everyone"));
    assert_eq!(
        inv.links.role_session.as_deref(),
        Some(format!(
            "https://console.aws.amazon.com/detective/home?region=us-east-1#entities/AwsRoleSession/{ROLE_ID}:alice?scopeStart={}&scopeEnd={}",
            t(9, 0).timestamp(),
            t(10, 0).timestamp()
        ).as_str())
    );

    // The real window: 10:00 + 8h portal + 2h session = 20:00. Closed at 20:00, final
    // collection 20 minutes later, then the grant is closed.
    let real_end = store
        .get_grant(g.id)
        .await
        .unwrap()
        .unwrap()
        .real_end
        .unwrap();
    assert_eq!(real_end, t(20, 0));
    r.clock.set(t(20, 0));
    reaper.tick().await.unwrap();
    let ev = evidence_row(&store, g.id).await;
    assert_eq!(ev.window_close_collected_at, Some(t(20, 0)));
    assert_eq!(ev.next_collection_at, Some(t(20, 20)));
    r.clock.set(t(20, 19));
    reaper.tick().await.unwrap();
    assert_eq!(
        store.get_grant(g.id).await.unwrap().unwrap().state,
        GrantState::Revoked
    );
    r.clock.set(t(20, 20));
    reaper.tick().await.unwrap();
    let grant = store.get_grant(g.id).await.unwrap().unwrap();
    assert_eq!(grant.state, GrantState::Closed);
    let ev = evidence_row(&store, g.id).await;
    assert_eq!(ev.final_collected_at, Some(t(20, 20)));
    let summary: app::domain::EvidenceSummary =
        serde_json::from_str(ev.summary.as_deref().unwrap()).unwrap();
    assert!(summary.covers_tail);
    // Collected six times, stored once each.
    assert_eq!(
        all_events(&store, g.id).await,
        vec!["ev-0910", "ev-0920", "ev-1030"]
    );
    // The final investigation covers the whole real window.
    let inv: app::domain::InvestigationSummary =
        serde_json::from_str(ev.investigation.as_deref().unwrap()).unwrap();
    assert_eq!(inv.scope.end, t(20, 0));
    let close = store
        .audit_events(Some(g.id), 0, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == "close")
        .expect("a close event");
    assert!(
        close.details.contains("activity after revocation"),
        "{}",
        close.details
    );
    // The final summary is in the chain: its counts, and the digest of the three
    // stored events it was made from (the same digest the summary keeps).
    let chained: serde_json::Value = serde_json::from_str(
        &store
            .audit_events(Some(g.id), 0, 100)
            .await
            .unwrap()
            .into_iter()
            .find(|e| e.action == "evidence_summarized")
            .expect("an evidence_summarized event")
            .details,
    )
    .unwrap();
    assert_eq!(chained["events"], 3, "{chained}");
    let digest = summary.events_sha256.clone().expect("a digest");
    assert_eq!(digest.len(), 64);
    assert_eq!(chained["events_sha256"], digest);
    let close_details: serde_json::Value = serde_json::from_str(&close.details).unwrap();
    assert_eq!(close_details["events_sha256"], digest);
    assert_eq!(
        close_details["investigation_id"],
        inv.investigation_id.as_str()
    );
    // The evidence narrows the real window: last issuance 10:25 + 2h session.
    let w = app::domain::Windows::compute(&app::domain::WindowInputs {
        activated_at: grant.activated_at.unwrap(),
        revoked_at: grant.revoked_at,
        planned_end: grant.ends_at.unwrap(),
        portal_session: grant.portal_session.unwrap(),
        permission_set_session: grant.permission_set_session.unwrap(),
        observed: summary.observed(),
        sessions_closed_at: None,
    })
    .unwrap();
    assert_eq!(w.evidence_bound, Some(t(12, 25)));

    // Closed grants are not collected again.
    r.clock.set(t(23, 0));
    reaper.tick().await.unwrap();
    assert_eq!(evidence_row(&store, g.id).await.collections, ev.collections);
}

async fn a_failed_collection_backs_off_and_is_stored(db: &TestDb) {
    let r = rig(db, &[]).await;
    let account = r.org.accounts[0].clone();
    let throttled = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .repeatedly()
        .build();
    let metrics = Arc::new(Metrics::new());
    let reaper = Reaper::new(
        r.grants.clone(),
        r.ic.clone(),
        Arc::new(r.clock.clone()),
        metrics.clone(),
        settings(),
    )
    .with_evidence(Collector::new(
        r.grants.clone(),
        Arc::new(lookup(cloudtrail_client(&[&throttled]))),
        None,
        Arc::new(r.clock.clone()),
        metrics.clone(),
        evidence_settings(),
    ));
    let g = approved_grant(&r.grants, "alice", &account, "AdministratorAccess", 60).await;
    reaper.tick().await.unwrap();
    let ev = evidence_row(&r.store, g.id).await;
    assert_eq!(ev.collections, 0);
    assert_eq!(ev.attempts, 1);
    assert!(ev
        .last_error
        .as_deref()
        .unwrap()
        .contains("ThrottlingException"));
    let next = ev.next_collection_at.unwrap();
    assert!(
        next > t(9, 0) && next <= t(9, 0) + Duration::seconds(10),
        "{next}"
    );
    // Access itself is untouched by evidence failures.
    assert_eq!(
        r.store.get_grant(g.id).await.unwrap().unwrap().state,
        GrantState::Active
    );
    assert!(metrics.render().contains("step=\"evidence\""));
}

crate::on_both_backends!(
    collection_follows_the_grant_through_the_reaper,
    a_failed_collection_backs_off_and_is_stored
);

/// The demo double (`end2end/doubles/aws_evidence_double.py`), killed on drop.
pub(crate) struct Double {
    child: std::process::Child,
    pub(crate) url: String,
}

impl Drop for Double {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Double {
    fn start(accounts: &[String], permission_sets: &[&str]) -> Double {
        Self::start_every(accounts, permission_sets, 60)
    }

    /// `every`: seconds between two demo calls.
    pub(crate) fn start_every(accounts: &[String], permission_sets: &[&str], every: u32) -> Double {
        Self::start_with(accounts, permission_sets, every, None)
    }

    /// As the local demo runs it: with `moto`, calls a service control policy in the
    /// emulator denies answer `AccessDenied`.
    pub(crate) fn start_with(
        accounts: &[String],
        permission_sets: &[&str],
        every: u32,
        moto: Option<&str>,
    ) -> Double {
        use std::io::BufRead;
        let moto_args: Vec<String> = moto
            .map(|m| vec!["--moto".to_owned(), m.to_owned()])
            .unwrap_or_default();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../end2end/doubles/aws_evidence_double.py"
        );
        let mut child = std::process::Command::new("python3")
            .args([
                script,
                "--port",
                "0",
                "--accounts",
                &accounts.join(","),
                "--permission-sets",
                &permission_sets.join(","),
                "--every",
                &every.to_string(),
                "--graph-arn",
                GRAPH,
            ])
            .args(&moto_args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs the demo double");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&line).expect("the double says where it listens");
        Double {
            child,
            url: v["listening"].as_str().unwrap().to_owned(),
        }
    }
}

/// The double follows the published wire protocols: the real SDK clients, with
/// credentials from STS `AssumeRole` (the emulator), read its activity and its
/// investigation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_double_answers_the_real_clients_behind_assume_role() {
    let moto = crate::moto::Moto::start().await;
    let accounts = vec![ACCOUNT.to_owned(), "444455556666".to_owned()];
    let double = Double::start(&accounts, &["AdministratorAccess", "ReadOnlyAccess"]);
    let shared = moto.sdk_config().await;
    let metrics = Arc::new(Metrics::new());
    let endpoints = timebox_server::config::AwsConfig {
        cloudtrail_endpoint_url: Some(double.url.clone()),
        ..Default::default()
    };
    let clients = timebox_server::evidence::cloudtrail::AssumedRoleClients::new(
        AwsSetup::new(shared.clone(), &endpoints),
        "TimeboxEvidenceReader".into(),
    );
    assert_eq!(
        clients.role_arn(ACCOUNT),
        "arn:aws:iam::111122223333:role/TimeboxEvidenceReader"
    );
    let source = CloudTrailLookup::new(
        Arc::new(clients),
        vec!["us-east-1".into()],
        10,
        Calls::new(metrics.clone()),
    );
    let now = Utc::now();
    // Timebox reads from an hour before the activation: "activated" ten minutes ago.
    let q = ActivityQuery {
        target: MatchTarget {
            account_id: ACCOUNT.into(),
            permission_set: "AdministratorAccess".into(),
            user_name: "alice".into(),
        },
        start: now - Duration::minutes(70),
        end: now,
    };
    let mut sink = VecSink::default();
    let stats = source.collect(&q, &mut sink).await.unwrap();
    assert!((9..=11).contains(&stats.matched), "{stats:?}");
    assert_eq!(
        stats.seen,
        stats.matched * 4,
        "four account × permission-set pairs"
    );
    assert!(stats.pages >= 1);
    assert!(sink.0.iter().all(|e| e
        .principal_id
        .as_deref()
        .is_some_and(|p| p.ends_with(":alice"))));
    assert!(sink.0.iter().any(|e| e.is_access_denied()));
    assert!(sink
        .0
        .iter()
        .all(|e| e.event_time >= now - Duration::minutes(11)));

    let detective_conf = aws_sdk_detective::config::Builder::from(&shared)
        .endpoint_url(&double.url)
        .build();
    let d = SdkDetective::new(
        aws_sdk_detective::Client::from_conf(detective_conf),
        GRAPH.into(),
        Calls::new(metrics),
    );
    let scope = app::domain::Interval {
        start: now - Duration::minutes(10),
        end: now,
    };
    let id = d
        .start(&role_arn(ACCOUNT, "AdministratorAccess"), scope)
        .await
        .unwrap();
    assert_eq!(id.len(), 21);
    assert_eq!(
        d.get(&id).await.unwrap().status,
        InvestigationStatus::Running
    );
    let done = d.get(&id).await.unwrap();
    assert_eq!(done.status, InvestigationStatus::Successful);
    assert_eq!(done.severity, Some(InvestigationSeverity::High));
    assert_eq!(d.indicators(&id).await.unwrap().len(), 5);
    assert!(d.get("000000000000000000000").await.is_err());
}

/// A revoked grant of `requester` with stored activity (one call after revocation,
/// one with a hostile user agent) and its summary.
async fn grant_with_evidence(store: &Arc<dyn Store>, requester: &str) -> app::domain::GrantId {
    use app::domain::{Action, Actor};
    use timebox_server::store::GrantPatch;
    let clock = ManualClock::new(t(9, 0));
    let grants = crate::helpers::grant_service(store.clone(), Arc::new(clock.clone()));
    let g = approved_grant(&grants, requester, ACCOUNT, "Admin", 60).await;
    let act = |action: Action, patch: GrantPatch| {
        let grants = grants.clone();
        async move {
            grants
                .act(
                    g.id,
                    action,
                    &Actor::System,
                    None,
                    patch,
                    serde_json::json!({}),
                )
                .await
                .unwrap()
        }
    };
    act(Action::StartProvisioning, GrantPatch::default()).await;
    act(
        Action::ProvisionSucceeded,
        GrantPatch {
            activated_at: Some(t(9, 0)),
            ends_at: Some(t(10, 0)),
            permission_set_session_seconds: Some(3600),
            portal_session_seconds: Some(8 * 3600),
            ..GrantPatch::default()
        },
    )
    .await;
    act(
        Action::Revoke(app::domain::RevokeCause::EndReached),
        GrantPatch::default(),
    )
    .await;
    act(
        Action::RevokeSucceeded,
        GrantPatch {
            revoked_at: Some(t(10, 0)),
            real_end: Some(t(19, 0)),
            ..GrantPatch::default()
        },
    )
    .await;
    let record = |id: &str, at, ua: &str| {
        let e = trail_event(id, at, ACCOUNT, "Admin", requester, "192.0.2.10", None);
        let mut r =
            timebox_server::evidence::TrailRecord::from_json(e.cloud_trail_event().unwrap())
                .unwrap()
                .into_event()
                .unwrap();
        r.user_agent = Some(ua.to_owned());
        r
    };
    store
        .insert_activity(
            g.id,
            &[
                record("pack-1", t(9, 15), "aws-cli/2.13.5"),
                record("pack-2", t(10, 20), "<script>alert(1)</script>"),
            ],
        )
        .await
        .unwrap();
    let grant = store.get_grant(g.id).await.unwrap().unwrap();
    let windows = grant.windows().unwrap().unwrap();
    let summary = timebox_server::evidence::collect::summarise(store.as_ref(), &grant, &windows, 1)
        .await
        .unwrap();
    store
        .save_grant_evidence(
            g.id,
            &timebox_server::store::GrantEvidence {
                collections: 1,
                last_collected_at: Some(t(10, 21)),
                summary: Some(serde_json::to_string(&summary).unwrap()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    g.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_evidence_pack_is_served_to_those_who_may_read_the_grant() {
    let db = TestDb::sqlite().await;
    let listener = free_listener().await;
    let url = format!("http://{}", listener.local_addr().unwrap());
    let provider = crate::provider::TestProvider::start(&url).await;
    let oidc = provider.config(&url);
    let app = TestApp::spawn_on(
        listener,
        &db,
        move |c| c.oidc = Some(oidc),
        Arc::new(timebox_server::clock::SystemClock),
    )
    .await;
    let store = db.store();
    let own = grant_with_evidence(&store, "rita").await;
    let other = grant_with_evidence(&store, "bob").await;
    let sign_in = |client: reqwest::Client, user: &'static str| {
        let app_url = app.url.clone();
        let issuer = provider.issuer.clone();
        async move {
            let authorize = crate::provider::start_sign_in(&client, &app_url).await;
            let callback = crate::provider::sign_in_at_provider(&authorize, &issuer, user).await;
            client.get(callback).send().await.unwrap();
            client
        }
    };

    // Anonymous: 401 in the API's error shape, whatever the id.
    let anonymous = browser_like_client();
    for path in [
        format!("/grants/{own}/evidence.json"),
        "/grants/not-a-uuid/evidence.html".to_owned(),
    ] {
        let r = anonymous
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "sign_in_required");
    }

    let rita = sign_in(browser_like_client(), "rita").await;
    // Her own grant: the whole pack.
    let r = rita
        .get(format!("{}/grants/{own}/evidence.json", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let pack: serde_json::Value = r.json().await.unwrap();
    assert_eq!(pack["format"], "timebox-evidence-pack/1");
    assert_eq!(pack["grant"]["id"], own.to_string());
    assert_eq!(pack["grant"]["state"], "revoked");
    assert_eq!(pack["events"].as_array().unwrap().len(), 2);
    assert_eq!(pack["events"][1]["event_id"], "pack-2");
    assert_eq!(pack["summary"]["event_count"], 2);
    assert_eq!(pack["flags"][0]["title"], "activity after revocation");
    assert!(pack["windows"]["real_why"]
        .as_str()
        .unwrap()
        .contains("portal session"));
    assert!(
        pack["audit"]["verdict"]
            .as_str()
            .unwrap()
            .starts_with("verified"),
        "{}",
        pack["audit"]
    );
    assert_eq!(pack["audit"]["events"].as_array().unwrap().len(), 6);
    assert!(pack["investigation"].is_null());
    // Someone else's grant: 403. No such grant, or not an id: 404.
    let r = rita
        .get(format!("{}/grants/{other}/evidence.json", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        "forbidden"
    );
    let missing = app::domain::GrantId(uuid::Uuid::new_v4());
    for path in [
        format!("/grants/{missing}/evidence.json"),
        "/grants/not-a-uuid/evidence.json".to_owned(),
    ] {
        let r = rita.get(format!("{}{path}", app.url)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["error"]["code"],
            "not_found"
        );
    }

    // An auditor reads anyone's, and the printable page escapes what AWS recorded.
    let audrey = sign_in(browser_like_client(), "audrey").await;
    let r = audrey
        .get(format!("{}/grants/{other}/evidence.html", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = r.text().await.unwrap();
    assert!(html.contains("<h1>Evidence pack</h1>"));
    assert!(html.contains("activity after revocation"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script>alert(1)"));
    assert!(html.contains("pack-1") || html.contains("StopInstances"));
    assert!(html.trim_end().ends_with("</html>"));
    app.stop().await.unwrap();
}

/// The local demo's path, in real time: the `timebox` binary configured only through
/// `TIMEBOX_*` variables (as `.ci/dev` does), STS `AssumeRole` from the emulator, the
/// evidence double for CloudTrail and Detective (evaluating the emulator's SCPs, as in
/// the demo). A one-minute grant ends, its sessions are closed (the SCP), its activity
/// after the close is refused — never a call that went through — and its role is
/// investigated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_collects_evidence_as_in_the_local_demo() {
    use std::time::{Duration as StdDuration, Instant};
    let db = TestDb::sqlite().await;
    let moto = crate::moto::Moto::start().await;
    let org = crate::moto::seed(&moto, &[]).await;
    let account = org.accounts[0].clone();
    let double = Double::start_with(
        std::slice::from_ref(&account),
        &["AdministratorAccess"],
        5,
        Some(&moto.url),
    );
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = demo_binary(dir.path(), &db, port, &moto.url, &double.url)
        .env("TIMEBOX_EVIDENCE__DETECTIVE_GRAPH_ARN", GRAPH)
        .spawn()
        .expect("start the timebox binary");

    let store = db.store();
    let grants =
        crate::helpers::grant_service(store.clone(), Arc::new(timebox_server::clock::SystemClock));
    let g = approved_grant(&grants, "alice", &account, "AdministratorAccess", 1).await;
    let deadline = Instant::now() + StdDuration::from_secs(180);
    let (summary, investigation) = loop {
        let ev = store
            .grant_evidence(g.id)
            .await
            .unwrap()
            .unwrap_or_default();
        let summary: Option<app::domain::EvidenceSummary> = ev
            .summary
            .as_deref()
            .map(|s| serde_json::from_str(s).unwrap());
        let inv: Option<app::domain::InvestigationSummary> = ev
            .investigation
            .as_deref()
            .map(|s| serde_json::from_str(s).unwrap());
        let flagged = summary.as_ref().is_some_and(|s| s.refused_after_close > 0);
        let investigated = inv
            .as_ref()
            .is_some_and(|i| i.status == InvestigationStatus::Successful);
        if flagged && investigated {
            break (summary.unwrap(), inv.unwrap());
        }
        assert!(
            Instant::now() < deadline,
            "no call refused after the close and finished investigation in time: {ev:?}"
        );
        tokio::time::sleep(StdDuration::from_millis(500)).await;
    };
    let _ = server.kill();
    let _ = server.wait();
    let grant = store.get_grant(g.id).await.unwrap().unwrap();
    assert_eq!(grant.state, GrantState::Revoked);
    assert_eq!(
        grant.sessions_close,
        Some(app::domain::SessionsClose::ClosedScp)
    );
    assert!(
        !summary
            .flags
            .iter()
            .any(|f| matches!(f, app::domain::ActivityFlag::AfterSessionsClosed { .. })),
        "no call went through after the close: {summary:?}"
    );
    assert!(summary.event_count >= 2, "{summary:?}");
    assert!(summary.access_denied_count <= summary.error_count);
    assert_eq!(
        summary
            .role_arn
            .as_deref()
            .map(|a| a.contains("AWSReservedSSO_AdministratorAccess_")),
        Some(true)
    );
    assert_eq!(investigation.severity, Some(InvestigationSeverity::High));
    assert_eq!(investigation.indicators.len(), 5);
    assert!(investigation
        .links
        .role_session
        .as_deref()
        .is_some_and(|l| l.contains("#entities/AwsRoleSession/")
            && l.ends_with(&format!(
                "&scopeEnd={}",
                investigation.scope.end.timestamp()
            ))));
    assert!(investigation.shared_role_note.contains(&account));
}

async fn the_evidence_service_answers_behind_read_grant(db: &TestDb) {
    use app::domain::{AccessPolicy, Caller, Denied, Operation, PersonId, Role, RoleSet};
    use timebox_server::services::AccessError;
    let store = db.store();
    let id = grant_with_evidence(&store, "rita").await;
    let grants =
        crate::helpers::grant_service(store.clone(), Arc::new(timebox_server::clock::SystemClock));
    let access = crate::helpers::access(grants, AccessPolicy::default()).await;
    // Evidence is a read of the grant: through the reader's handle.
    struct Evidence(timebox_server::services::Access);
    impl Evidence {
        async fn summary(
            &self,
            c: &Caller,
            id: app::domain::GrantId,
        ) -> Result<Option<app::domain::EvidenceSummary>, AccessError> {
            let reader = self.0.reader(c, Operation::ReadGrant)?;
            Ok(reader.evidence(id).await?.summary)
        }
        async fn events(
            &self,
            c: &Caller,
            id: app::domain::GrantId,
            after: Option<timebox_server::store::ActivityCursor>,
            limit: u32,
        ) -> Result<Vec<app::domain::ActivityEvent>, AccessError> {
            self.0
                .reader(c, Operation::ReadGrant)?
                .evidence_events(id, after, limit)
                .await
        }
        async fn investigation(
            &self,
            c: &Caller,
            id: app::domain::GrantId,
        ) -> Result<Option<app::domain::InvestigationSummary>, AccessError> {
            let reader = self.0.reader(c, Operation::ReadGrant)?;
            Ok(reader.evidence(id).await?.investigation)
        }
    }
    let service = Evidence(access);
    let person = |id: &str, role: Role| Caller::Person {
        id: PersonId::parse(id).unwrap(),
        name: id.to_owned(),
        roles: RoleSet::of(&[role]),
        mfa: false,
        groups: Vec::new(),
    };
    let rita = person("rita", Role::Requester);
    let summary = service.summary(&rita, id).await.unwrap().unwrap();
    assert_eq!(summary.event_count, 2);
    assert!(summary.has_flag_after_revocation());
    // Keyset pages: one event, then the next, then none.
    let first = service.events(&rita, id, None, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    let after = timebox_server::store::ActivityCursor::after(&first[0]);
    let second = service.events(&rita, id, Some(after), 1).await.unwrap();
    assert_eq!(second[0].event_id, "pack-2");
    let after = timebox_server::store::ActivityCursor::after(&second[0]);
    assert!(service
        .events(&rita, id, Some(after), 1)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(service.investigation(&rita, id).await.unwrap(), None);
    // An auditor may read it; another requester may not; nobody anonymous.
    let audrey = person("audrey", Role::Auditor);
    assert!(service.summary(&audrey, id).await.unwrap().is_some());
    let other = person("bob", Role::Requester);
    assert!(matches!(
        service.events(&other, id, None, 10).await,
        Err(AccessError::Denied(Denied::Forbidden { .. }))
    ));
    assert!(matches!(
        service.investigation(&Caller::Anonymous, id).await,
        Err(AccessError::Denied(Denied::SignInRequired))
    ));
    let missing = app::domain::GrantId(uuid::Uuid::new_v4());
    assert!(matches!(
        service.summary(&audrey, missing).await,
        Err(AccessError::Grant(
            timebox_server::services::grants::GrantError::NotFound(_)
        ))
    ));
}

mod service {
    crate::on_both_backends!(the_evidence_service_answers_behind_read_grant);
    use super::the_evidence_service_answers_behind_read_grant;
}

fn iam_role(account: &str, name: &str) -> aws_sdk_iam::types::Role {
    aws_sdk_iam::types::Role::builder()
        .path("/aws-reserved/sso.amazonaws.com/")
        .role_name(name)
        .role_id("AROA123456789EXAMPLE")
        .arn(format!(
            "arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/{name}"
        ))
        .create_date(aws_smithy_types::DateTime::from_secs(1_700_000_000))
        .build()
        .unwrap()
}

/// Without activity naming the role, `iam:ListRoles` under the Identity Center path
/// finds it, exactly (`Admin`, not `AdminRO`), across pages.
#[tokio::test]
async fn the_role_is_found_with_list_roles_when_no_activity_names_it() {
    let first = mock!(aws_sdk_iam::Client::list_roles)
        .match_requests(|r| {
            r.path_prefix() == Some("/aws-reserved/sso.amazonaws.com/") && r.marker().is_none()
        })
        .then_output(|| {
            aws_sdk_iam::operation::list_roles::ListRolesOutput::builder()
                .roles(iam_role(ACCOUNT, "AWSReservedSSO_AdminRO_0123456789abcdef"))
                .roles(iam_role(
                    ACCOUNT,
                    "AWSReservedSSO_Admin_RO_0123456789abcdef",
                ))
                .is_truncated(true)
                .marker("page-2")
                .build()
                .unwrap()
        });
    let second = mock!(aws_sdk_iam::Client::list_roles)
        .match_requests(|r| r.marker() == Some("page-2"))
        .then_output(|| {
            aws_sdk_iam::operation::list_roles::ListRolesOutput::builder()
                .roles(iam_role(ACCOUNT, "AWSReservedSSO_Admin_fedcba9876543210"))
                .is_truncated(false)
                .build()
                .unwrap()
        });
    let iam = mock_client!(aws_sdk_iam, RuleMode::MatchAny, &[&first, &second], |c| c
        .retry_config(aws_sdk_iam::config::retry::RetryConfig::disabled()));
    let unused = mock!(aws_sdk_cloudtrail::Client::lookup_events)
        .then_output(|| LookupEventsOutput::builder().build());
    let source = CloudTrailLookup::new(
        Arc::new(FixedClients {
            cloudtrail: cloudtrail_client(&[&unused]),
            iam: Some(iam),
        }),
        vec!["us-east-1".into()],
        2,
        Calls::new(Arc::new(Metrics::new())),
    );
    let target = query(ACCOUNT, "Admin", "bob").target;
    let arn = source.find_role_arn(ACCOUNT, &target).await.unwrap();
    assert_eq!(
        arn.as_deref(),
        Some("arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_fedcba9876543210")
    );
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    let target = query(ACCOUNT, "Nobody", "bob").target;
    assert_eq!(source.find_role_arn(ACCOUNT, &target).await.unwrap(), None);
}
