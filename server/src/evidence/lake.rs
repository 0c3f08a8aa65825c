//! Activity from a CloudTrail Lake event data store: `StartQuery`, then
//! `GetQueryResults` until the query is `FINISHED` (it is `QUEUED`, then `RUNNING`),
//! then its result pages.
//!
//! The SQL is narrowed exactly, never with a `LIKE`: the account, `AssumedRole`,
//! `starts_with(<role name>, 'AWSReservedSSO_<PermissionSetName>_')` and
//! `split_part(<principal id>, ':', 2) = '<user name>'`. Every value is checked and
//! quoted (`'` doubled) before it goes into the statement, and the rows are still
//! passed through [`MatchTarget::matches`](super::MatchTarget::matches).

use super::{
    ActivityQuery, ActivitySink, ActivitySource, CollectStats, EvidenceError, TrailRecord,
};
use crate::aws::Calls;
use async_trait::async_trait;
use aws_sdk_cloudtrail::types::QueryStatus;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How the query's status is polled.
#[derive(Debug, Clone, Copy)]
pub struct LakePolling {
    pub initial: Duration,
    pub max: Duration,
    /// After this long without `FINISHED`, the collection fails (retried later).
    pub budget: Duration,
}

impl Default for LakePolling {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(5),
            budget: Duration::from_secs(120),
        }
    }
}

/// [`ActivitySource`] over CloudTrail Lake.
#[derive(Debug)]
pub struct LakeSource {
    client: aws_sdk_cloudtrail::Client,
    /// The event data store's id (the end of its ARN).
    event_data_store: String,
    polling: LakePolling,
    aws: Calls,
}

/// A value quoted for Trino SQL: `'` doubled, and refused if it holds a control
/// character (nothing Timebox matches on can).
pub fn sql_string(s: &str) -> Result<String, EvidenceError> {
    if s.chars().any(char::is_control) {
        return Err(EvidenceError::Invalid(format!(
            "refusing to put {s:?} into a CloudTrail Lake query"
        )));
    }
    Ok(format!("'{}'", s.replace('\'', "''")))
}

fn sql_time(t: DateTime<Utc>) -> String {
    format!("'{}'", t.format("%Y-%m-%d %H:%M:%S"))
}

/// The statement for `query` against `event_data_store` (an id: letters, digits, `-`).
pub fn build_sql(event_data_store: &str, query: &ActivityQuery) -> Result<String, EvidenceError> {
    if event_data_store.is_empty()
        || !event_data_store
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(EvidenceError::Invalid(format!(
            "{event_data_store:?} is not an event data store id"
        )));
    }
    let t = &query.target;
    if t.account_id.len() != 12 || !t.account_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EvidenceError::Invalid(format!(
            "{:?} is not an account id",
            t.account_id
        )));
    }
    Ok(format!(
        "SELECT eventID, eventTime, eventName, eventSource, awsRegion, sourceIPAddress, \
         userAgent, errorCode, readOnly, resources, recipientAccountId, \
         userIdentity.type AS identityType, userIdentity.accountId AS identityAccountId, \
         userIdentity.principalId AS principalId, \
         userIdentity.sessionContext.sessionIssuer.userName AS issuerUserName, \
         userIdentity.sessionContext.sessionIssuer.arn AS issuerArn, \
         userIdentity.sessionContext.attributes.creationDate AS sessionCreationDate \
         FROM {event_data_store} \
         WHERE eventTime >= {start} AND eventTime <= {end} \
         AND recipientAccountId = {account} \
         AND userIdentity.type = 'AssumedRole' \
         AND starts_with(userIdentity.sessionContext.sessionIssuer.userName, {prefix}) \
         AND split_part(userIdentity.principalId, ':', 2) = {user} \
         ORDER BY eventTime, eventID",
        start = sql_time(query.start),
        end = sql_time(query.end),
        account = sql_string(&t.account_id)?,
        prefix = sql_string(&t.role_name_prefix())?,
        user = sql_string(&t.user_name)?,
    ))
}

/// Lake returns `resources` as text such as
/// `[{accountId=111122223333, type=AWS::S3::Bucket, arn=arn:aws:s3:::b}]`.
fn resource_arns(text: &str) -> Vec<String> {
    text.split(['{', ',', '}'])
        .filter_map(|part| part.trim().strip_prefix("arn="))
        .filter(|a| !a.is_empty() && *a != "null")
        .map(str::to_owned)
        .collect()
}

/// One result row (a list of one-entry column maps) as a [`TrailRecord`].
pub fn record_from_row(row: &[HashMap<String, String>]) -> Result<TrailRecord, String> {
    let cols: HashMap<&str, &str> = row
        .iter()
        .flat_map(|m| m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .collect();
    let get = |k: &str| {
        cols.get(k)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty() && *v != "null")
            .map(str::to_owned)
    };
    Ok(TrailRecord {
        event_id: get("eventID").ok_or("no eventID")?,
        event_time: get("eventTime").and_then(|t| super::matching::parse_time(&t)),
        event_name: get("eventName").unwrap_or_default(),
        event_source: get("eventSource").unwrap_or_default(),
        aws_region: get("awsRegion"),
        source_ip: get("sourceIPAddress"),
        user_agent: get("userAgent"),
        error_code: get("errorCode"),
        read_only: get("readOnly").and_then(|b| match b.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }),
        resources: get("resources")
            .map(|r| resource_arns(&r))
            .unwrap_or_default(),
        recipient_account_id: get("recipientAccountId"),
        identity_type: get("identityType"),
        identity_account_id: get("identityAccountId"),
        principal_id: get("principalId"),
        issuer_user_name: get("issuerUserName"),
        issuer_arn: get("issuerArn"),
        session_created_at: get("sessionCreationDate")
            .and_then(|t| super::matching::parse_time(&t)),
    })
}

impl LakeSource {
    /// `event_data_store` may be the ARN or the id.
    pub fn new(client: aws_sdk_cloudtrail::Client, event_data_store: &str, aws: Calls) -> Self {
        Self {
            client,
            event_data_store: event_data_store
                .rsplit('/')
                .next()
                .unwrap_or(event_data_store)
                .to_owned(),
            polling: LakePolling::default(),
            aws,
        }
    }

    pub fn with_polling(mut self, polling: LakePolling) -> Self {
        self.polling = polling;
        self
    }
}

#[async_trait]
impl ActivitySource for LakeSource {
    fn name(&self) -> &'static str {
        "lake"
    }

    async fn collect(
        &self,
        query: &ActivityQuery,
        sink: &mut dyn ActivitySink,
    ) -> Result<CollectStats, EvidenceError> {
        let sql = build_sql(&self.event_data_store, query)?;
        let request = self.client.start_query().query_statement(sql);
        let query_id = self
            .aws
            .call("StartQuery", request.send())
            .await?
            .query_id
            .ok_or_else(|| EvidenceError::Invalid("StartQuery answered no QueryId".into()))?;
        tracing::debug!(query_id, "CloudTrail Lake query started");

        let mut stats = CollectStats::default();
        let polling_since = Instant::now();
        let mut delay = self.polling.initial;
        // The token of the page to ask for next (none: the first). A page that is not
        // FINISHED yet is asked again, from a new paginator, after a delay.
        let mut resume: Option<String> = None;
        'poll: loop {
            const OP: &str = "GetQueryResults";
            let request = self
                .client
                .get_query_results()
                .query_id(&query_id)
                .set_next_token(resume.clone());
            let mut pages = self
                .aws
                .pages(OP, request.into_paginator().send(), |p| p.next_token());
            while let Some(page) = pages.next().await? {
                match page.query_status() {
                    Some(QueryStatus::Finished) => {}
                    Some(QueryStatus::Queued) | Some(QueryStatus::Running) | None => {
                        if polling_since.elapsed() + delay > self.polling.budget {
                            return Err(EvidenceError::Query {
                                query_id,
                                status: "still running".into(),
                                reason: format!(
                                    "not finished after {:?}; the next collection asks again",
                                    self.polling.budget
                                ),
                            });
                        }
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(self.polling.max);
                        continue 'poll;
                    }
                    Some(other) => {
                        return Err(EvidenceError::Query {
                            query_id,
                            status: other.as_str().to_owned(),
                            reason: page.error_message().unwrap_or("no reason given").to_owned(),
                        })
                    }
                }
                let rows = page.query_result_rows().iter().map(|row| {
                    record_from_row(row)
                        .inspect_err(|why| {
                            tracing::warn!(query_id, why, "skipped an unreadable Lake row");
                        })
                        .ok()
                });
                let matched = stats.page(&query.target, rows);
                if !matched.is_empty() {
                    sink.accept(matched).await?;
                }
                resume = page.next_token().map(str::to_owned);
            }
            return Ok(stats);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::MatchTarget;
    use chrono::TimeZone;

    fn query(user: &str, ps: &str) -> ActivityQuery {
        ActivityQuery {
            target: MatchTarget {
                account_id: "111122223333".into(),
                permission_set: ps.into(),
                user_name: user.into(),
            },
            start: Utc.with_ymd_and_hms(2026, 11, 28, 4, 0, 0).unwrap(),
            end: Utc.with_ymd_and_hms(2026, 11, 28, 14, 0, 0).unwrap(),
        }
    }

    #[test]
    fn the_sql_is_exact_and_has_no_like() {
        let sql = build_sql(
            "EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE",
            &query("bob", "Admin"),
        )
        .unwrap();
        assert!(!sql.to_uppercase().contains(" LIKE "), "{sql}");
        assert!(sql.contains("split_part(userIdentity.principalId, ':', 2) = 'bob'"));
        assert!(sql.contains("starts_with(userIdentity.sessionContext.sessionIssuer.userName, 'AWSReservedSSO_Admin_')"));
        assert!(sql.contains("recipientAccountId = '111122223333'"));
        assert!(sql
            .contains("eventTime >= '2026-11-28 04:00:00' AND eventTime <= '2026-11-28 14:00:00'"));
        assert!(sql.contains("FROM EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE "));
    }

    #[test]
    fn every_value_is_escaped() {
        let sql = build_sql("eds1", &query("o'brien' OR '1'='1", "Admin")).unwrap();
        assert!(sql.contains("= 'o''brien'' OR ''1''=''1'"), "{sql}");
        assert!(build_sql("eds1; DROP", &query("bob", "Admin")).is_err());
        assert!(build_sql("eds1", &query("bob\n", "Admin")).is_err());
        let mut q = query("bob", "Admin");
        q.target.account_id = "1' OR '1".into();
        assert!(build_sql("eds1", &q).is_err());
    }

    #[test]
    fn rows_become_records() {
        let row: Vec<HashMap<String, String>> = [
            ("eventID", "e-1"),
            ("eventTime", "2026-11-28 04:10:00.000"),
            ("eventName", "GetObject"),
            (
                "resources",
                "[{accountId=111122223333, type=AWS::S3::Object, arn=arn:aws:s3:::b/k}]",
            ),
            ("readOnly", "true"),
            ("principalId", "AROAEXAMPLE:bob"),
            ("errorCode", "null"),
        ]
        .into_iter()
        .map(|(k, v)| HashMap::from([(k.to_owned(), v.to_owned())]))
        .collect();
        let r = record_from_row(&row).unwrap();
        assert_eq!(r.resources, vec!["arn:aws:s3:::b/k"]);
        assert_eq!(r.read_only, Some(true));
        assert_eq!(r.error_code, None);
        assert!(r.event_time.is_some());
    }
}
