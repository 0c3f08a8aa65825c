//! `[evidence]`: where each grant's CloudTrail activity comes from, when it is
//! collected, and the Amazon Detective behavior graph its investigation runs in. Kept
//! apart from the other sections so the evidence issue owns it in one place.
//!
//! `source = "none"` (the default) turns evidence off: grants stay `revoked` (nothing
//! is collected, so nothing closes them).

use super::{duration_in, expect_str, is_region, kind_of, Checker, ConfigError, Problem};
use figment::value::Value;
use serde::Deserialize;
use std::time::Duration;

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

impl Default for EvidenceConfig {
    fn default() -> Self {
        Self {
            source: EvidenceSource::None,
            role_name: "TimeboxEvidenceReader".to_owned(),
            regions: vec!["us-east-1".to_owned()],
            requests_per_second: 2,
            event_data_store: None,
            lake_region: None,
            delivery_delay: Duration::from_secs(20 * 60),
            collect_interval: Duration::from_secs(5 * 60),
            detective_graph_arn: None,
        }
    }
}

impl EvidenceConfig {
    /// The region of the behavior graph, read from its ARN.
    pub fn detective_region(&self) -> Option<&str> {
        self.detective_graph_arn
            .as_deref()
            .and_then(|a| a.split(':').nth(3))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawEvidence {
    source: Option<Value>,
    role_name: Option<Value>,
    regions: Option<Value>,
    requests_per_second: Option<Value>,
    event_data_store: Option<Value>,
    lake_region: Option<Value>,
    delivery_delay: Option<Value>,
    collect_interval: Option<Value>,
    detective_graph_arn: Option<Value>,
}

pub(super) const EVIDENCE_KEYS: &[&str] = &[
    "source",
    "role_name",
    "regions",
    "requests_per_second",
    "event_data_store",
    "lake_region",
    "delivery_delay",
    "collect_interval",
    "detective_graph_arn",
];

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

impl Checker<'_> {
    pub(super) fn evidence(&mut self, raw: RawEvidence, ic_region: Option<&str>) -> EvidenceConfig {
        let d = EvidenceConfig::default();
        let source = self.value("evidence.source", raw.source, d.source, |v| {
            match expect_str(v, "\"cloudtrail\"")?.trim() {
                "none" | "" => Ok(EvidenceSource::None),
                "cloudtrail" => Ok(EvidenceSource::CloudTrail),
                "lake" => Ok(EvidenceSource::Lake),
                _ => Err(Problem::new(
                    "not an activity source",
                    "activity comes from CloudTrail in each account, or from a CloudTrail Lake event data store",
                    "use \"cloudtrail\", \"lake\" or \"none\"",
                )),
            }
        });
        let role_name = self.value("evidence.role_name", raw.role_name, d.role_name, |v| {
            let s = expect_str(v, "\"TimeboxEvidenceReader\"")?.trim();
            let ok = !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
            if ok {
                Ok(s.to_owned())
            } else {
                Err(Problem::new(
                    "not an IAM role name",
                    "a role name is 1 to 64 letters, digits and +=,.@_-",
                    "set it to the name of the read-only role Timebox assumes in each member account, such as \"TimeboxEvidenceReader\"",
                ))
            }
        });
        let regions = self.value("evidence.regions", raw.regions, Vec::new(), |v| {
            let items: Vec<String> = match v {
                Value::Array(_, items) => items
                    .iter()
                    .map(|i| expect_str(i, "\"us-east-1\"").map(|s| s.trim().to_owned()))
                    .collect::<Result<_, _>>()?,
                Value::String(_, s) => s.split(',').map(|s| s.trim().to_owned()).collect(),
                other => {
                    return Err(Problem::new(
                        "not a list",
                        format!("found {}", kind_of(other)),
                        "write a list such as [\"us-east-1\", \"eu-west-1\"], or in an environment variable \"us-east-1,eu-west-1\"",
                    ))
                }
            };
            let items: Vec<String> = items.into_iter().filter(|s| !s.is_empty()).collect();
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
        let requests_per_second = self.value(
            "evidence.requests_per_second",
            raw.requests_per_second,
            d.requests_per_second,
            |v| {
                let problem = || {
                    Problem::new(
                        "not a whole number from 1 to 100",
                        "CloudTrail allows 2 LookupEvents calls per second per account and region",
                        "write a number such as 2",
                    )
                };
                let n = match v {
                    Value::Num(_, n) => n.to_i128().ok_or_else(problem)?,
                    Value::String(_, s) => s.trim().parse::<i128>().map_err(|_| problem())?,
                    _ => return Err(problem()),
                };
                u32::try_from(n)
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(problem)
            },
        );
        let event_data_store = self.optional(
            "evidence.event_data_store",
            raw.event_data_store,
            "\"arn:aws:cloudtrail:us-east-1:111122223333:eventdatastore/EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE\"",
            |s| {
                let id = s.rsplit('/').next().unwrap_or(s);
                if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    Ok(())
                } else {
                    Err(Problem::new(
                        "not an event data store",
                        "it is the ARN of a CloudTrail Lake event data store, or the id at its end",
                        "copy the ARN from the CloudTrail console (Lake → Event data stores)",
                    ))
                }
            },
        );
        let lake_region = self.optional(
            "evidence.lake_region",
            raw.lake_region,
            "\"us-east-1\"",
            |s| {
                if is_region(s) {
                    Ok(())
                } else {
                    Err(region_problem())
                }
            },
        );
        let delivery_delay = self.value(
            "evidence.delivery_delay",
            raw.delivery_delay,
            d.delivery_delay,
            |v| {
                duration_in(
                    v,
                    "\"20m\"",
                    (Duration::ZERO, Duration::from_secs(24 * 3600)),
                    "CloudTrail's delivery delay",
                    "pick how long after the real window closes activity is collected a last time, such as \"20m\"",
                )
            },
        );
        let collect_interval = self.value(
            "evidence.collect_interval",
            raw.collect_interval,
            d.collect_interval,
            |v| {
                duration_in(
                    v,
                    "\"5m\"",
                    (Duration::from_secs(10), Duration::from_secs(3600)),
                    "the collection interval",
                    "pick how often activity is collected while a grant is active or in its tail, such as \"5m\"",
                )
            },
        );
        let detective_graph_arn = self.optional(
            "evidence.detective_graph_arn",
            raw.detective_graph_arn,
            "\"arn:aws:detective:us-east-1:111122223333:graph:0123456789abcdef0123456789abcdef\"",
            |s| {
                if is_graph_arn(s) {
                    Ok(())
                } else {
                    Err(Problem::new(
                        "not a behavior graph ARN",
                        "it looks like arn:aws:detective:us-east-1:111122223333:graph:<32 hexadecimal digits>",
                        "copy it from the Detective console (Settings → General), or from `aws detective list-graphs`",
                    ))
                }
            },
        );
        let config = EvidenceConfig {
            source,
            role_name,
            regions,
            requests_per_second,
            event_data_store,
            lake_region,
            delivery_delay,
            collect_interval,
            detective_graph_arn,
        };
        if config.source == EvidenceSource::Lake && config.event_data_store.is_none() {
            self.errors.push(ConfigError::Inconsistent {
                key: "evidence.event_data_store".to_owned(),
                detail: "is not set, but evidence.source is \"lake\"".to_owned(),
                fix:
                    "set evidence.event_data_store to your CloudTrail Lake event data store's ARN, \
                      or use evidence.source = \"cloudtrail\""
                        .to_owned(),
            });
        }
        config
    }
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
