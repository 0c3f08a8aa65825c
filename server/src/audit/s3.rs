//! Checkpoints in an S3 bucket under Object Lock: each checkpoint is one object,
//! `<prefix>/<seq, 20 digits>.json`, whose body is exactly its JSON line, written
//! with a compliance-mode retention that nobody (not the bucket's owner, not the
//! account's root user) can shorten or remove. The sink writes them ([`S3Sink`]); `timebox audit
//! verify --checkpoints s3://…` reads every version back ([`S3Checkpoints::read_all`])
//! and reports every one that is not under such a lock, and any key deleted (a
//! delete marker) or written again.
//!
//! The bucket must have Object Lock enabled (when it is created, or later on a
//! versioned bucket); start-up checks it ([`S3Checkpoints::check_lock`]).

use super::checkpoint::SignedCheckpoint;
use super::sinks::{CheckpointSink, SinkError};
use crate::aws::{paginators, AwsError, AwsErrorKind, AwsSetup, Calls, Pacer};
use crate::clock::Clock;
use crate::config::{AwsConfig, S3Location};
use crate::metrics::Metrics;
use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ObjectLockEnabled, ObjectLockMode, ObjectLockRetentionMode,
};
use chrono::{DateTime, SubsecRound, Utc};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A checkpoint is a few hundred bytes; anything much larger under the prefix is not
/// one, and is not read into memory.
const MAX_OBJECT_BYTES: i64 = 64 * 1024;

/// Why the bucket cannot hold checkpoints: start-up stops with the fix.
#[derive(Debug, thiserror::Error)]
pub enum S3SetupError {
    #[error("audit.checkpoint_s3: the bucket {bucket} does not have Object Lock enabled, so its checkpoints could be deleted or replaced and would not anchor the audit chain. Create a bucket with Object Lock (aws s3api create-bucket --bucket NAME --object-lock-enabled-for-bucket) and point audit.checkpoint_s3 at it, or enable it on this one (versioning on, then aws s3api put-object-lock-configuration)")]
    NotLocked { bucket: String },
    #[error("audit.checkpoint_s3: the bucket {bucket} does not exist (or is in another region: set audit.checkpoint_s3_region); create it with Object Lock enabled, or fix the name")]
    NoBucket { bucket: String },
    #[error("audit.checkpoint_s3: Timebox may not read the Object Lock configuration of {bucket} ({source}); give its role s3:GetBucketObjectLockConfiguration and the other permissions in docs/operations.md (\"Audit checkpoints in S3\")")]
    Denied { bucket: String, source: AwsError },
    #[error(
        "audit.checkpoint_s3: cannot check the Object Lock configuration of {bucket}: {source}"
    )]
    Failed { bucket: String, source: AwsError },
}

/// One object as read back.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub body: Vec<u8>,
    /// The object's lock, when S3 told (it tells callers with s3:GetObjectRetention).
    pub lock_mode: Option<ObjectLockMode>,
    pub retain_until: Option<DateTime<Utc>>,
}

/// What [`S3Checkpoints::read_all`] found.
#[derive(Debug, Clone, Default)]
pub struct S3Read {
    pub checkpoints: Vec<SignedCheckpoint>,
    /// Objects that are not as Timebox writes them (unlocked, unreadable, misnamed),
    /// each naming the object and what is wrong.
    pub problems: Vec<String>,
}

/// What the version listing says of one key.
#[derive(Debug, Default)]
struct KeyHistory {
    /// Version ids, newest first (as listed).
    versions: Vec<Option<String>>,
    delete_markers: usize,
}

/// The checkpoints' bucket and prefix, and how calls to it are made. Cheap to clone.
#[derive(Debug, Clone)]
pub struct S3Checkpoints {
    client: aws_sdk_s3::Client,
    calls: Calls,
    location: S3Location,
}

fn to_chrono(d: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(d.secs(), d.subsec_nanos())
}

impl S3Checkpoints {
    pub fn new(client: aws_sdk_s3::Client, calls: Calls, location: S3Location) -> Self {
        Self {
            client,
            calls,
            location,
        }
    }

    /// From `[aws]` (endpoints, call timeout, call rate) in `region` (else the SDK's).
    pub async fn from_config(
        aws: &AwsConfig,
        region: Option<String>,
        location: S3Location,
        metrics: Arc<Metrics>,
    ) -> Self {
        let setup = AwsSetup::load(aws, region).await;
        let calls = setup
            .calls(metrics)
            .paced(Arc::new(Pacer::limit(aws.max_calls_per_second)));
        Self::new(setup.s3(), calls, location)
    }

    pub fn location(&self) -> &S3Location {
        &self.location
    }

    /// `s3://bucket/key`, for messages.
    fn object(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.location.bucket)
    }

    /// Start-up: the bucket must have Object Lock enabled. A definite answer that it
    /// has not (or that the bucket is missing, or the check is refused) stops
    /// start-up; a failure that may pass (a timeout, a 5xx) is logged and start-up
    /// goes on, since the sink is retried and PutObject with a lock fails on a bucket
    /// without one.
    pub async fn check_lock(&self) -> Result<(), S3SetupError> {
        let bucket = self.location.bucket.clone();
        let answer = self
            .calls
            .call(
                "GetObjectLockConfiguration",
                self.client
                    .get_object_lock_configuration()
                    .bucket(&bucket)
                    .send(),
            )
            .await;
        match answer {
            Ok(out) => {
                let config = out.object_lock_configuration();
                if config.and_then(|c| c.object_lock_enabled()) != Some(&ObjectLockEnabled::Enabled)
                {
                    return Err(S3SetupError::NotLocked { bucket });
                }
                let default = config
                    .and_then(|c| c.rule())
                    .and_then(|r| r.default_retention())
                    .and_then(|d| d.mode())
                    .map_or("none", |m| m.as_str());
                tracing::info!(location = %self.location, default_retention = default, "audit checkpoints go to an S3 bucket with Object Lock; each object is locked in compliance mode");
                Ok(())
            }
            Err(e) if e.code == "ObjectLockConfigurationNotFoundError" => {
                Err(S3SetupError::NotLocked { bucket })
            }
            Err(e) if e.code == "NoSuchBucket" => Err(S3SetupError::NoBucket { bucket }),
            Err(e) if e.is_access_denied() => Err(S3SetupError::Denied { bucket, source: e }),
            Err(e) if e.is_retryable() => {
                tracing::error!(location = %self.location, error = %e, "cannot check the audit checkpoint bucket's Object Lock now; publishing is tried every pass");
                Ok(())
            }
            Err(e) => Err(S3SetupError::Failed { bucket, source: e }),
        }
    }

    /// The object at `key` (its newest version, or `version`), or `None` when there
    /// is none.
    pub async fn get(
        &self,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<StoredObject>, AwsError> {
        const OP: &str = "GetObject";
        let request = self
            .client
            .get_object()
            .bucket(&self.location.bucket)
            .key(key)
            // "null" is the version of an object written while versioning was off.
            .set_version_id(version.filter(|v| *v != "null").map(str::to_owned))
            .send();
        let out = match self.calls.call(OP, request).await {
            Ok(out) => out,
            Err(e) if e.kind == AwsErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if out.content_length().unwrap_or(0) > MAX_OBJECT_BYTES {
            return Err(AwsError {
                operation: OP,
                kind: AwsErrorKind::Permanent,
                code: "TooLarge".to_owned(),
                message: format!(
                    "{} is over {MAX_OBJECT_BYTES} bytes: not a checkpoint",
                    self.object(key)
                ),
            });
        }
        let lock_mode = out.object_lock_mode().cloned();
        let retain_until = out.object_lock_retain_until_date().and_then(to_chrono);
        let body = out.body.collect().await.map_err(|e| AwsError {
            operation: OP,
            kind: AwsErrorKind::Retryable,
            code: "ResponseError".to_owned(),
            message: format!("the object's body could not be read: {e}"),
        })?;
        Ok(Some(StoredObject {
            body: body.into_bytes().to_vec(),
            lock_mode,
            retain_until,
        }))
    }

    /// Writes `body` at `key`, locked in compliance mode until `until`. S3 requires
    /// an integrity checksum on a put with a lock: the SHA-256 is sent with it.
    pub async fn put_locked(
        &self,
        key: &str,
        body: String,
        until: DateTime<Utc>,
    ) -> Result<(), AwsError> {
        let checksum = aws_smithy_types::base64::encode(Sha256::digest(body.as_bytes()));
        let request = self
            .client
            .put_object()
            .bucket(&self.location.bucket)
            .key(key)
            .content_type("application/json")
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .checksum_sha256(checksum)
            .object_lock_mode(ObjectLockMode::Compliance)
            // Whole seconds: the header is an ISO 8601 date-time, read that way everywhere.
            .object_lock_retain_until_date(aws_smithy_types::DateTime::from_secs(
                until.trunc_subsecs(0).timestamp(),
            ))
            .body(ByteStream::from(body.into_bytes()))
            .send();
        self.calls.call("PutObject", request).await.map(|_| ())
    }

    /// Every version of every checkpoint object under the prefix, in key (=
    /// sequence) order, each read and checked: parsed, named after its sequence
    /// number, and locked in compliance mode past `now`. Versions, not just the
    /// listing's current objects: a delete marker (which Object Lock allows) hides
    /// an object from `ListObjectsV2` while its locked version stays, and a later
    /// version shadows the first; both are reported, and every version is read. A
    /// failing listing or read is an error; an object that is not as Timebox writes
    /// it is a problem in the answer.
    pub async fn read_all(&self, now: DateTime<Utc>) -> Result<S3Read, AwsError> {
        let mut history: BTreeMap<String, KeyHistory> = BTreeMap::new();
        let mut pages = self.calls.pages(
            "ListObjectVersions",
            paginators::object_versions(
                self.client.clone(),
                self.location.bucket.clone(),
                self.location.list_prefix(),
            ),
            paginators::versions_next_marker,
        );
        while let Some(page) = pages.next().await? {
            for v in page.versions.unwrap_or_default() {
                if let Some(key) = v.key {
                    history.entry(key).or_default().versions.push(v.version_id);
                }
            }
            for m in page.delete_markers.unwrap_or_default() {
                if let Some(key) = m.key {
                    history.entry(key).or_default().delete_markers += 1;
                }
            }
        }
        let mut read = S3Read::default();
        for (key, mut h) in history {
            let Some(seq) = self.location.seq_of(&key) else {
                continue; // not a checkpoint's name: something else under the prefix
            };
            let object = self.object(&key);
            if h.delete_markers > 0 {
                read.problems.push(format!(
                    "{object}: a delete marker hides it from listings (DeleteObject without a version id); its versions were read here"
                ));
            }
            if h.versions.len() > 1 {
                read.problems.push(format!(
                    "{object}: has {} versions: it was written again after the first; each was checked",
                    h.versions.len()
                ));
            }
            // Listed newest first: read the first-written version first.
            h.versions.reverse();
            for version in &h.versions {
                self.check_version(&key, seq, version.as_deref(), now, &mut read)
                    .await?;
            }
        }
        Ok(read)
    }

    /// Reads one version of the checkpoint object `key` into `read`.
    async fn check_version(
        &self,
        key: &str,
        seq: i64,
        version: Option<&str>,
        now: DateTime<Utc>,
        read: &mut S3Read,
    ) -> Result<(), AwsError> {
        let object = match version {
            Some(v) if v != "null" => format!("{} (version {v})", self.object(key)),
            _ => self.object(key),
        };
        let stored = match self.get(key, version).await {
            Ok(Some(s)) => s,
            // Listed, then gone (its retention over, and deleted meanwhile).
            Ok(None) => {
                read.problems
                    .push(format!("{object}: listed but not found when read"));
                return Ok(());
            }
            Err(e) if e.code == "TooLarge" => {
                read.problems.push(format!("{object}: {}", e.message));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        if let Some(problem) = self.lock_problem(key, version, &stored, now).await {
            read.problems.push(format!(
                "{object}: not under a COMPLIANCE-mode Object Lock ({problem}); whoever may write to the bucket could delete or replace it"
            ));
        }
        match serde_json::from_slice::<SignedCheckpoint>(&stored.body) {
            Ok(c) => {
                if c.seq != seq {
                    read.problems.push(format!(
                        "{object}: holds the checkpoint at sequence {}, not {seq}",
                        c.seq
                    ));
                }
                read.checkpoints.push(c);
            }
            Err(e) => read
                .problems
                .push(format!("{object}: not a checkpoint ({e})")),
        }
        Ok(())
    }

    /// Why `stored` is not locked in compliance mode past `now`, if it is not. S3
    /// sends the lock with the object to callers allowed s3:GetObjectRetention; when
    /// it did not, GetObjectRetention tells a missing lock from a missing permission.
    async fn lock_problem(
        &self,
        key: &str,
        version: Option<&str>,
        stored: &StoredObject,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let (mode, until) = match &stored.lock_mode {
            Some(ObjectLockMode::Compliance) => (Ok(()), stored.retain_until),
            Some(other) => (Err(other.as_str().to_owned()), stored.retain_until),
            None => {
                let answer = self
                    .calls
                    .call(
                        "GetObjectRetention",
                        self.client
                            .get_object_retention()
                            .bucket(&self.location.bucket)
                            .key(key)
                            .set_version_id(version.filter(|v| *v != "null").map(str::to_owned))
                            .send(),
                    )
                    .await;
                match answer {
                    Ok(out) => {
                        let retention = out.retention();
                        let mode = match retention.and_then(|r| r.mode()) {
                            Some(ObjectLockRetentionMode::Compliance) => Ok(()),
                            Some(other) => Err(other.as_str().to_owned()),
                            None => Err("none".to_owned()),
                        };
                        let until = retention
                            .and_then(|r| r.retain_until_date())
                            .and_then(to_chrono);
                        (mode, until)
                    }
                    Err(e) if e.kind == AwsErrorKind::NotFound => {
                        return Some("it has no retention".to_owned())
                    }
                    Err(e) if e.is_access_denied() => {
                        return Some(format!(
                            "its retention cannot be read: give the verifier s3:GetObjectRetention ({e})"
                        ))
                    }
                    Err(e) => return Some(format!("its retention cannot be read: {e}")),
                }
            }
        };
        match (mode, until) {
            (Err(mode), _) => Some(format!("its lock mode is {mode}")),
            (Ok(()), Some(until)) if until > now => None,
            (Ok(()), Some(until)) => Some(format!("its retention ended at {until}")),
            (Ok(()), None) => Some("it has no retain-until date".to_owned()),
        }
    }
}

/// `audit.checkpoint_s3`: each checkpoint one object, locked in compliance mode for
/// `audit.checkpoint_s3_retention_days` from when it is written.
#[derive(Debug, Clone)]
pub struct S3Sink {
    bucket: S3Checkpoints,
    retention: chrono::Duration,
    clock: Arc<dyn Clock>,
}

impl S3Sink {
    pub fn new(bucket: S3Checkpoints, retention_days: u32, clock: Arc<dyn Clock>) -> Self {
        Self {
            bucket,
            retention: chrono::Duration::days(i64::from(retention_days)),
            clock,
        }
    }
}

#[async_trait]
impl CheckpointSink for S3Sink {
    fn name(&self) -> &'static str {
        "s3"
    }

    /// Reads the object first: already there with the same body (published before a
    /// crash) is done; there with another body is an error naming it, never
    /// overwritten.
    async fn publish(&self, c: &SignedCheckpoint) -> Result<(), SinkError> {
        let key = self.bucket.location.key_for(c.seq);
        let object = self.bucket.object(&key);
        let failed = |source| SinkError::S3 {
            object: object.clone(),
            source,
        };
        let body = c.to_json_line();
        match self.bucket.get(&key, None).await.map_err(failed)? {
            Some(existing) if existing.body == body.as_bytes() => return Ok(()),
            Some(_) => return Err(SinkError::S3Conflict { object }),
            None => {}
        }
        let until = self.clock.now() + self.retention;
        self.bucket
            .put_locked(&key, body, until)
            .await
            .map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_sdk_s3::operation::get_object_lock_configuration::{
        GetObjectLockConfigurationError, GetObjectLockConfigurationOutput,
    };
    use aws_sdk_s3::operation::put_object::PutObjectOutput;
    use aws_sdk_s3::types::ObjectLockConfiguration;
    use aws_sdk_s3::Client;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_types::body::SdkBody;
    use chrono::TimeZone;

    fn bucket(rules: &[&Rule]) -> S3Checkpoints {
        let client = mock_client!(aws_sdk_s3, RuleMode::MatchAny, rules);
        S3Checkpoints::new(
            client,
            Calls::new(Arc::new(Metrics::new())),
            S3Location::parse("s3://audit-checkpoints/timebox").unwrap(),
        )
    }

    fn lock_error(code: &str) -> Rule {
        let code = code.to_owned();
        mock!(Client::get_object_lock_configuration).then_error(move || {
            GetObjectLockConfigurationError::generic(ErrorMetadata::builder().code(&code).build())
        })
    }

    #[tokio::test]
    async fn start_up_refuses_a_bucket_it_cannot_show_is_locked() {
        let enabled = mock!(Client::get_object_lock_configuration).then_output(|| {
            GetObjectLockConfigurationOutput::builder()
                .object_lock_configuration(
                    ObjectLockConfiguration::builder()
                        .object_lock_enabled(ObjectLockEnabled::Enabled)
                        .build(),
                )
                .build()
        });
        assert!(bucket(&[&enabled]).check_lock().await.is_ok());
        let empty = mock!(Client::get_object_lock_configuration)
            .then_output(|| GetObjectLockConfigurationOutput::builder().build());
        let refused = [
            (empty, "does not have Object Lock enabled"),
            (
                lock_error("ObjectLockConfigurationNotFoundError"),
                "does not have Object Lock enabled",
            ),
            (lock_error("NoSuchBucket"), "does not exist"),
            (
                lock_error("AccessDenied"),
                "give its role s3:GetBucketObjectLockConfiguration",
            ),
        ];
        for (rule, says) in refused {
            let e = bucket(&[&rule]).check_lock().await.unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
            assert!(e.starts_with("audit.checkpoint_s3: "), "{e}");
        }
        // S3 unavailable for a moment: start-up goes on (the sink is retried).
        let unavailable = mock!(Client::get_object_lock_configuration)
            .then_http_response(|| HttpResponse::new(503.try_into().unwrap(), SdkBody::empty()));
        assert!(bucket(&[&unavailable]).check_lock().await.is_ok());
    }

    fn checkpoint() -> SignedCheckpoint {
        super::super::CheckpointSigner::from_seed(&[3; 32]).sign(
            super::super::checkpoint::Checkpoint {
                seq: 7,
                hash: "ab".repeat(32),
                at: Utc.with_ymd_and_hms(2026, 5, 1, 9, 0, 0).unwrap(),
                events: 7,
            },
        )
    }

    #[tokio::test]
    async fn the_sink_puts_a_locked_object_once_and_names_it_on_failure() {
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 5, 1, 9, 0, 0).unwrap(),
        ));
        let missing = mock!(Client::get_object).then_error(|| {
            GetObjectError::generic(ErrorMetadata::builder().code("NoSuchKey").build())
        });
        let body = checkpoint().to_json_line();
        let put = mock!(Client::put_object)
            .match_requests(|r| {
                r.key() == Some("timebox/00000000000000000007.json")
                    && r.object_lock_mode() == Some(&ObjectLockMode::Compliance)
                    && r.object_lock_retain_until_date().map(|d| d.secs())
                        == Some(
                            Utc.with_ymd_and_hms(2026, 5, 31, 9, 0, 0)
                                .unwrap()
                                .timestamp(),
                        )
                    && r.checksum_sha256().is_some()
            })
            .then_output(|| PutObjectOutput::builder().build());
        let sink = S3Sink::new(bucket(&[&missing, &put]), 30, clock.clone());
        sink.publish(&checkpoint()).await.unwrap();
        assert_eq!(put.num_calls(), 1, "the put asked for the lock");

        let same = mock!(Client::get_object).then_output(move || {
            aws_sdk_s3::operation::get_object::GetObjectOutput::builder()
                .body(ByteStream::from(body.clone().into_bytes()))
                .build()
        });
        let never = mock!(Client::put_object).then_output(|| PutObjectOutput::builder().build());
        let sink = S3Sink::new(bucket(&[&same, &never]), 30, clock.clone());
        sink.publish(&checkpoint()).await.unwrap();
        assert_eq!(never.num_calls(), 0, "already there: nothing written");

        let denied = mock!(Client::get_object).then_error(|| {
            GetObjectError::generic(ErrorMetadata::builder().code("AccessDenied").build())
        });
        let sink = S3Sink::new(bucket(&[&denied]), 30, clock);
        let e = sink.publish(&checkpoint()).await.unwrap_err().to_string();
        assert!(
            e.contains("s3://audit-checkpoints/timebox/00000000000000000007.json"),
            "{e}"
        );
        assert!(e.contains("AccessDenied"), "{e}");
    }
}
