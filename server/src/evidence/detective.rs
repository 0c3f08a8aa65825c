//! Amazon Detective investigations of a grant's role: `StartInvestigation` with the
//! `AWSReservedSSO_<PermissionSet>_<hash>` role as the entity and the real window as
//! the scope, `GetInvestigation` until it is no longer `RUNNING`, then
//! `ListIndicators`. The role is shared by everyone holding the permission set in the
//! account, which the summary says next to the result.

use super::EvidenceError;
use crate::aws::Calls;
use app::domain::{Indicator, Interval, InvestigationSeverity, InvestigationStatus};
use async_trait::async_trait;
use aws_sdk_detective::types::IndicatorDetail;
use chrono::{DateTime, Utc};

/// What `GetInvestigation` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvestigationState {
    pub status: InvestigationStatus,
    pub severity: Option<InvestigationSeverity>,
    pub state: Option<String>,
}

/// Detective, behind a trait (the collector never sees the SDK).
#[async_trait]
pub trait Investigations: Send + Sync + std::fmt::Debug + 'static {
    /// The behavior graph's ARN.
    fn graph_arn(&self) -> &str;
    /// The graph's region (for console links).
    fn region(&self) -> &str;
    /// Starts an investigation of `entity_arn` over `scope`; returns its id.
    async fn start(&self, entity_arn: &str, scope: Interval) -> Result<String, EvidenceError>;
    async fn get(&self, investigation_id: &str) -> Result<InvestigationState, EvidenceError>;
    /// Every indicator of the investigation (all pages).
    async fn indicators(&self, investigation_id: &str) -> Result<Vec<Indicator>, EvidenceError>;
}

/// [`Investigations`] over the AWS SDK.
#[derive(Debug)]
pub struct SdkDetective {
    client: aws_sdk_detective::Client,
    graph_arn: String,
    region: String,
    aws: Calls,
}

fn smithy_time(t: DateTime<Utc>) -> aws_smithy_types::DateTime {
    aws_smithy_types::DateTime::from_secs(t.timestamp())
}

fn detail(details: &mut Vec<(String, String)>, name: &str, value: Option<impl ToString>) {
    if let Some(v) = value {
        let v = v.to_string();
        if !v.is_empty() {
            details.push((name.to_owned(), v));
        }
    }
}

/// One indicator in plain words, with its fields.
pub fn indicator_from(kind: &str, d: Option<&IndicatorDetail>) -> Indicator {
    let mut details = Vec::new();
    let mut summary = String::new();
    if let Some(d) = d {
        if let Some(t) = d.ttps_observed_detail() {
            detail(&mut details, "tactic", t.tactic());
            detail(&mut details, "technique", t.technique());
            detail(&mut details, "procedure", t.procedure());
            detail(&mut details, "ip_address", t.ip_address());
            detail(&mut details, "api_name", t.api_name());
            detail(
                &mut details,
                "api_success_count",
                Some(t.api_success_count()),
            );
            detail(
                &mut details,
                "api_failure_count",
                Some(t.api_failure_count()),
            );
            summary = format!(
                "{} / {}{}",
                t.tactic().unwrap_or("tactic unknown"),
                t.technique().unwrap_or("technique unknown"),
                t.api_name()
                    .map(|a| format!(" via {a}"))
                    .unwrap_or_default()
            );
        }
        if let Some(t) = d.impossible_travel_detail() {
            detail(&mut details, "starting_ip_address", t.starting_ip_address());
            detail(&mut details, "ending_ip_address", t.ending_ip_address());
            detail(&mut details, "starting_location", t.starting_location());
            detail(&mut details, "ending_location", t.ending_location());
            detail(&mut details, "hourly_time_delta", t.hourly_time_delta());
            summary = format!(
                "from {} to {} in {} hour(s)",
                t.starting_location().unwrap_or("?"),
                t.ending_location().unwrap_or("?"),
                t.hourly_time_delta().unwrap_or_default()
            );
        }
        if let Some(t) = d.flagged_ip_address_detail() {
            detail(&mut details, "ip_address", t.ip_address());
            detail(
                &mut details,
                "reason",
                t.reason().map(|r| r.as_str().to_owned()),
            );
            summary = format!(
                "{} flagged by {}",
                t.ip_address().unwrap_or("an address"),
                t.reason()
                    .map(|r| r.as_str())
                    .unwrap_or("threat intelligence")
            );
        }
        if let Some(t) = d.new_geolocation_detail() {
            detail(&mut details, "location", t.location());
            detail(&mut details, "ip_address", t.ip_address());
            detail(
                &mut details,
                "is_new_for_entire_account",
                Some(t.is_new_for_entire_account()),
            );
            summary = format!("new location {}", t.location().unwrap_or("?"));
        }
        if let Some(t) = d.new_aso_detail() {
            detail(&mut details, "aso", t.aso());
            detail(
                &mut details,
                "is_new_for_entire_account",
                Some(t.is_new_for_entire_account()),
            );
            summary = format!("new network (ASO) {}", t.aso().unwrap_or("?"));
        }
        if let Some(t) = d.new_user_agent_detail() {
            detail(&mut details, "user_agent", t.user_agent());
            detail(
                &mut details,
                "is_new_for_entire_account",
                Some(t.is_new_for_entire_account()),
            );
            summary = format!("new user agent {}", t.user_agent().unwrap_or("?"));
        }
        if let Some(t) = d.related_finding_detail() {
            detail(&mut details, "arn", t.arn());
            detail(&mut details, "type", t.r#type());
            detail(&mut details, "ip_address", t.ip_address());
            summary = format!("related finding {}", t.r#type().unwrap_or("?"));
        }
        if let Some(t) = d.related_finding_group_detail() {
            detail(&mut details, "id", t.id());
            summary = format!("related finding group {}", t.id().unwrap_or("?"));
        }
    }
    Indicator {
        kind: kind.to_owned(),
        summary,
        details,
    }
}

impl SdkDetective {
    /// `graph_arn` is `arn:aws:detective:<region>:<account>:graph:<id>`; the client must
    /// be for that region.
    pub fn new(client: aws_sdk_detective::Client, graph_arn: String, aws: Calls) -> Self {
        let region = graph_arn
            .split(':')
            .nth(3)
            .unwrap_or("us-east-1")
            .to_owned();
        Self {
            client,
            graph_arn,
            region,
            aws,
        }
    }
}

#[async_trait]
impl Investigations for SdkDetective {
    fn graph_arn(&self) -> &str {
        &self.graph_arn
    }

    fn region(&self) -> &str {
        &self.region
    }

    async fn start(&self, entity_arn: &str, scope: Interval) -> Result<String, EvidenceError> {
        let request = self
            .client
            .start_investigation()
            .graph_arn(&self.graph_arn)
            .entity_arn(entity_arn)
            .scope_start_time(smithy_time(scope.start))
            .scope_end_time(smithy_time(scope.end));
        let out = self.aws.call("StartInvestigation", request.send()).await?;
        out.investigation_id.ok_or_else(|| {
            EvidenceError::Invalid("StartInvestigation answered no InvestigationId".into())
        })
    }

    async fn get(&self, investigation_id: &str) -> Result<InvestigationState, EvidenceError> {
        let request = self
            .client
            .get_investigation()
            .graph_arn(&self.graph_arn)
            .investigation_id(investigation_id);
        let out = self.aws.call("GetInvestigation", request.send()).await?;
        let status = out
            .status()
            .and_then(|s| InvestigationStatus::parse(s.as_str()))
            // A status this build does not know: keep asking.
            .unwrap_or(InvestigationStatus::Running);
        Ok(InvestigationState {
            status,
            severity: out
                .severity()
                .and_then(|s| InvestigationSeverity::parse(s.as_str())),
            state: out.state().map(|s| s.as_str().to_owned()),
        })
    }

    async fn indicators(&self, investigation_id: &str) -> Result<Vec<Indicator>, EvidenceError> {
        // aws-sdk-detective has no paginator for ListIndicators: the token is followed
        // here, each page one call.
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = self
                .client
                .list_indicators()
                .graph_arn(&self.graph_arn)
                .investigation_id(investigation_id)
                .max_results(100)
                .set_next_token(token.take());
            let out = self.aws.call("ListIndicators", request.send()).await?;
            all.extend(out.indicators().iter().map(|i| {
                let kind = i.indicator_type().map_or("UNKNOWN", |t| t.as_str());
                indicator_from(kind, i.indicator_detail())
            }));
            match out.next_token {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => return Ok(all),
            }
        }
    }
}
