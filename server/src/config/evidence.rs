//! `[evidence]`: where each grant's CloudTrail activity comes from, when it is
//! collected, and the Amazon Detective behavior graph its investigation runs in.
//!
//! `source = "none"` (the default) turns evidence off: grants stay `revoked` (nothing
//! is collected, so nothing closes them).

use std::time::Duration;

use figment::value::Value;

use super::kit::{
    expect_str, hours, is_region, kind_of, mins, one_of, parse_list, secs, whole_number, Keys,
    Problem,
};

/// Where activity is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvidenceSource {
    /// No collection.
    None,
    /// CloudTrail `LookupEvents` in each member account, through an assumed role.
    CloudTrail,
    /// CloudTrail Lake `StartQuery`/`GetQueryResults` against an event data store.
    Lake,
}

impl EvidenceSource {
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceSource::None => "none",
            EvidenceSource::CloudTrail => "cloudtrail",
            EvidenceSource::Lake => "lake",
        }
    }
}

/// `[evidence]`.
#[derive(Debug, Clone)]
pub struct EvidenceConfig {
    pub source: EvidenceSource,
    /// The read-only role Timebox assumes in each member account (`source =
    /// "cloudtrail"`, and for `iam:ListRoles`). Default `TimeboxEvidenceReader`.
    pub role_name: String,
    /// Regions whose CloudTrail is read. Default: `identity_center.region`, else
    /// `us-east-1`.
    pub regions: Vec<String>,
    /// `LookupEvents` calls per second per account and region (CloudTrail allows 2).
    pub requests_per_second: u32,
    /// The CloudTrail Lake event data store (its ARN or id), for `source = "lake"`.
    pub event_data_store: Option<String>,
    /// Region of the event data store. Default: from its ARN, else the first region.
    pub lake_region: Option<String>,
    /// How long CloudTrail may take to deliver an event. Default 20m.
    pub delivery_delay: Duration,
    /// How often activity is collected while a grant is active or in its tail.
    /// Default 5m.
    pub collect_interval: Duration,
    /// `arn:aws:detective:<region>:<account>:graph:<id>`; `None` = no investigations.
    pub detective_graph_arn: Option<String>,
}

impl EvidenceConfig {
    /// The region of the behavior graph, read from its ARN.
    pub fn detective_region(&self) -> Option<&str> {
        self.detective_graph_arn
            .as_deref()
            .and_then(|a| a.split(':').nth(3))
    }

    /// `[evidence]`; `ic_region` is `identity_center.region`, the default region.
    pub(super) fn read(keys: &mut Keys<'_, '_>, ic_region: Option<&str>) -> Self {
        let source = keys.value("source", EvidenceSource::None, |v| {
            let text = expect_str(v, "\"cloudtrail\"")?;
            let text = if text.trim().is_empty() { "none" } else { text };
            let all = [
                EvidenceSource::None,
                EvidenceSource::CloudTrail,
                EvidenceSource::Lake,
            ];
            one_of(text, &all, EvidenceSource::as_str).ok_or_else(|| {
                Problem::new(
                    "not an activity source",
                    "activity comes from CloudTrail in each account, or from a CloudTrail Lake \
                     event data store",
                    "use \"cloudtrail\", \"lake\" or \"none\"",
                )
            })
        });
        let role_name = keys.value("role_name", "TimeboxEvidenceReader".to_owned(), |v| {
            let s = expect_str(v, "\"TimeboxEvidenceReader\"")?.trim();
            let ok = !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
            if ok {
                return Ok(s.to_owned());
            }
            Err(Problem::new(
                "not an IAM role name",
                "a role name is 1 to 64 letters, digits and +=,.@_-",
                "set it to the name of the read-only role Timebox assumes in each member \
                 account, such as \"TimeboxEvidenceReader\"",
            ))
        });
        let regions = keys.value("regions", Vec::new(), |v| {
            let items = match v {
                Value::Array(..) | Value::String(..) => parse_list(v, "\"us-east-1\"")?,
                other => {
                    return Err(Problem::new(
                        "not a list",
                        format!("found {}", kind_of(other)),
                        "write a list such as [\"us-east-1\", \"eu-west-1\"], or in an \
                         environment variable \"us-east-1,eu-west-1\"",
                    ))
                }
            };
            if items.iter().all(|r| is_region(r)) {
                Ok(items)
            } else {
                Err(region_problem())
            }
        });
        let regions = if regions.is_empty() {
            vec![ic_region.unwrap_or("us-east-1").to_owned()]
        } else {
            regions
        };
        let requests_per_second = keys.value("requests_per_second", 2, |v| {
            whole_number(v)
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| {
                    Problem::new(
                        "not a whole number from 1 to 100",
                        "CloudTrail allows 2 LookupEvents calls per second per account and \
                         region",
                        "write a number such as 2",
                    )
                })
        });
        let event_data_store = keys.optional(
            "event_data_store",
            "\"arn:aws:cloudtrail:us-east-1:111122223333:eventdatastore/EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE\"",
            |s| {
                let id = s.rsplit('/').next().unwrap_or(s);
                if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    return Ok(());
                }
                Err(Problem::new(
                    "not an event data store",
                    "it is the ARN of a CloudTrail Lake event data store, or the id at its end",
                    "copy the ARN from the CloudTrail console (Lake → Event data stores)",
                ))
            },
        );
        let lake_region = keys.optional("lake_region", "\"us-east-1\"", |s| {
            is_region(s).then_some(()).ok_or_else(region_problem)
        });
        let delivery_delay = keys.duration(
            "delivery_delay",
            mins(20),
            Duration::ZERO..=hours(24),
            "CloudTrail's delivery delay",
            "pick how long after the real window closes activity is collected a last time, \
             such as \"20m\"",
        );
        let collect_interval = keys.duration(
            "collect_interval",
            mins(5),
            secs(10)..=hours(1),
            "the collection interval",
            "pick how often activity is collected while a grant is active or in its tail, \
             such as \"5m\"",
        );
        let detective_graph_arn = keys.optional(
            "detective_graph_arn",
            "\"arn:aws:detective:us-east-1:111122223333:graph:0123456789abcdef0123456789abcdef\"",
            |s| {
                is_graph_arn(s).then_some(()).ok_or_else(|| {
                    Problem::new(
                        "not a behavior graph ARN",
                        "it looks like arn:aws:detective:us-east-1:111122223333:graph:<32 \
                         hexadecimal digits>",
                        "copy it from the Detective console (Settings → General), or from \
                         `aws detective list-graphs`",
                    )
                })
            },
        );
        if source == EvidenceSource::Lake && event_data_store.is_none() {
            keys.inconsistent(
                "event_data_store",
                "is not set, but evidence.source is \"lake\"",
                "set evidence.event_data_store to your CloudTrail Lake event data store's ARN, \
                 or use evidence.source = \"cloudtrail\"",
            );
        }
        EvidenceConfig {
            source,
            role_name,
            regions,
            requests_per_second,
            event_data_store,
            lake_region,
            delivery_delay,
            collect_interval,
            detective_graph_arn,
        }
    }
}

fn region_problem() -> Problem {
    Problem::new(
        "not an AWS region",
        "a region code is lowercase words and a number joined by dashes",
        "use region codes such as \"us-east-1\" or \"eu-west-1\"",
    )
}

/// `arn:<partition>:detective:<region>:<12 digits>:graph:<32 hex>` (the API's pattern).
pub fn is_graph_arn(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    matches!(parts.as_slice(),
        ["arn", partition, "detective", region, account, "graph", id]
            if partition.starts_with("aws")
            && is_region(region)
            && account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
            && id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

#[cfg(test)]
mod tests {
    use super::is_graph_arn;

    #[test]
    fn graph_arns_follow_the_api_pattern() {
        assert!(is_graph_arn(
            "arn:aws:detective:us-east-1:111122223333:graph:0123456789abcdef0123456789abcdef"
        ));
        assert!(!is_graph_arn(
            "arn:aws:detective:us-east-1:111122223333:graph:0123456789ABCDEF0123456789abcdef"
        ));
        assert!(!is_graph_arn(
            "arn:aws:detective:us-east-1:1111:graph:0123456789abcdef0123456789abcdef"
        ));
        assert!(!is_graph_arn("graph:0123456789abcdef0123456789abcdef"));
    }
}
