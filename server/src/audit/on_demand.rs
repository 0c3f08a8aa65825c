//! Whole-chain verification on demand: an auditor asks (the Audit page, `POST
//! /api/v1/audit/verify`), the store queues it (one open at a time), and this job
//! runs it — the same walk as `timebox audit verify`, over the checkpoints in a sink
//! (or the database) with the server's public key — reporting progress every second and
//! keeping the result. Under one lease across replicas; a replica that stopped
//! mid-run leaves its lease to run out, and the next holder starts the run again.

use super::verify::{verify_with_progress, CheckpointSource, Progress, VerifyReport};
use crate::clock::Clock;
use crate::jobs::{Job, JobError, Leases};
use crate::store::{
    Store, StoreError, StoredVerification, VerificationProgress, VerificationResult,
};
use app::domain::VerificationState;
use async_trait::async_trait;
use ed25519_dalek::VerifyingKey;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const LEASE_KEY: &str = "audit-verify";
/// How often a running verification records its progress and renews its lease.
const HEARTBEAT: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct VerificationJob {
    leases: Leases,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// The server's checkpoint key: with it the checkpoints are checked too.
    key: Option<VerifyingKey>,
    /// Where the checkpoints are read from (a sink, or the database).
    source: CheckpointSource,
}

impl VerificationJob {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        key: Option<VerifyingKey>,
        source: CheckpointSource,
    ) -> Self {
        Self {
            leases: Leases::new(
                "audit-verify",
                store.clone(),
                clock.clone(),
                Duration::from_secs(30),
            ),
            store,
            clock,
            key,
            source,
        }
    }

    /// Runs the open verification, if there is one and no other replica runs it; the
    /// verification it finished.
    pub async fn pass(&self) -> Result<Option<String>, StoreError> {
        let Some(open) = self.store.open_verification().await? else {
            return Ok(None);
        };
        self.leases
            .while_held(LEASE_KEY, async {
                self.run(&open).await?;
                Ok::<_, StoreError>(open.id.clone())
            })
            .await
    }

    async fn run(&self, v: &StoredVerification) -> Result<(), StoreError> {
        if v.state == VerificationState::Running {
            tracing::warn!(verification = %v.id, "a verification of the audit chain was left running by a server that stopped; starting it again");
        }
        self.store
            .start_verification(&v.id, self.clock.now())
            .await?;
        tracing::info!(verification = %v.id, requested_by = %v.requested_by, "verifying the whole audit chain");
        let progress = Mutex::new(Progress::default());
        let walk =
            verify_with_progress(self.store.as_ref(), &self.source, self.key.as_ref(), |p| {
                if let Ok(mut at) = progress.lock() {
                    *at = p;
                }
            });
        tokio::pin!(walk);
        let outcome = loop {
            tokio::select! {
                outcome = &mut walk => break outcome,
                () = tokio::time::sleep(HEARTBEAT) => {
                    let p = progress.lock().map(|p| *p).unwrap_or_default();
                    // A failed write is retried at the next beat; the walk goes on.
                    let _ = self
                        .store
                        .verification_progress(&v.id, p, self.clock.now())
                        .await;
                    let _ = self.leases.hold(LEASE_KEY).await;
                }
            }
        };
        let result = match outcome {
            Ok(report) => self.result_of(&report),
            Err(e) => {
                tracing::error!(verification = %v.id, error = %e, "the audit chain could not be verified");
                VerificationResult {
                    state: VerificationState::Error,
                    progress: progress.lock().map(|p| *p).unwrap_or_default(),
                    checkpoints_verified: 0,
                    first_broken_seq: None,
                    problem: Some(e.to_string()),
                    summary: format!("the audit chain could not be verified: {e}"),
                }
            }
        };
        match result.state {
            VerificationState::Passed => {
                tracing::info!(verification = %v.id, summary = %result.summary, "audit chain verified")
            }
            _ => {
                tracing::error!(verification = %v.id, summary = %result.summary, "the audit chain does NOT verify")
            }
        }
        self.store
            .finish_verification(&v.id, &result, self.clock.now())
            .await
    }

    fn result_of(&self, r: &VerifyReport) -> VerificationResult {
        let mut summary = r.summary();
        if self.key.is_none() {
            summary.push_str("; checkpoints were not checked: this server has no audit.signing_key_file, so a consistent rewrite would pass");
        }
        VerificationResult {
            state: if r.is_intact() {
                VerificationState::Passed
            } else {
                VerificationState::Failed
            },
            progress: VerificationProgress {
                head_seq: r.head_seq,
                events_verified: r.events_verified,
                grants_checked: r.grants_checked,
            },
            checkpoints_verified: i64::try_from(r.checkpoints_verified).unwrap_or(i64::MAX),
            first_broken_seq: r.first_broken.as_ref().map(|b| b.seq),
            problem: match (&r.first_broken, &r.bad_grant) {
                (Some(b), _) => Some(format!("event {}: {}", b.seq, b.problem)),
                (None, Some(g)) => Some(format!("grant {}: {}", g.grant, g.problem)),
                (None, None) => None,
            },
            summary,
        }
    }
}

#[async_trait]
impl Job for VerificationJob {
    fn leases(&self) -> &Leases {
        &self.leases
    }

    /// A verification asked for starts within two seconds.
    fn interval(&self) -> Duration {
        Duration::from_secs(2)
    }

    async fn run_once(self: Arc<Self>) -> Result<(), JobError> {
        self.pass().await?;
        Ok(())
    }
}
