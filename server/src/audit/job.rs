//! The checkpoint job: under one lease (so replicas write one checkpoint per
//! sequence), it checks the events since the last checkpoint, signs a checkpoint at
//! the head when enough events or time have passed, and publishes every checkpoint a
//! sink has not got yet. A sink that fails is counted and tried again next pass.

use super::checkpoint::{Checkpoint, CheckpointSigner, SignedCheckpoint};
use super::sinks::CheckpointSink;
use crate::clock::Clock;
use crate::jobs::{Job, JobError, Leases};
use crate::metrics::Metrics;
use crate::store::audit::ChainVerifier;
use crate::store::{BrokenLink, Store, StoreError, StoredCheckpoint};
use async_trait::async_trait;
use chrono::SubsecRound;
use std::sync::Arc;
use std::time::Duration;

/// The lease key: one checkpoint writer at a time across replicas.
const LEASE_KEY: &str = "audit-checkpoint";
/// Checkpoints published per sink per pass (a new sink catches up over passes).
const PUBLISH_BATCH: u32 = 200;
/// Events read per page while checking the events since the last checkpoint.
const PAGE: u32 = 1000;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the audit chain is broken at event {}: {}; no checkpoint is signed over it. Run `timebox audit verify` and restore the database from a backup", .0.seq, .0.problem)]
    Broken(BrokenLink),
    #[error("the latest stored checkpoint (sequence {0}) is not signed by this server's key: it was forged or the key changed; no checkpoint is signed after it until it is explained (docs/audit.md)")]
    ForeignCheckpoint(i64),
}

/// When a checkpoint is due.
#[derive(Debug, Clone)]
pub struct CheckpointSettings {
    /// After this many new events.
    pub every: u64,
    /// Or after this long, when there is at least one new event.
    pub interval: Duration,
}

impl CheckpointSettings {
    pub fn from_config(c: &crate::config::AuditConfig) -> Self {
        Self {
            every: c.checkpoint_every,
            interval: c.checkpoint_interval,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointPass {
    /// The checkpoint this pass signed, if one was due.
    pub written: Option<i64>,
    /// Checkpoints published, over all sinks.
    pub published: usize,
    /// Sinks that failed this pass (tried again next pass).
    pub failed_sinks: Vec<&'static str>,
    /// False when another replica held the lease.
    pub held: bool,
}

#[derive(Debug)]
pub struct CheckpointJob {
    leases: Leases,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    signer: CheckpointSigner,
    sinks: Vec<Arc<dyn CheckpointSink>>,
    settings: CheckpointSettings,
}

impl CheckpointJob {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        signer: CheckpointSigner,
        sinks: Vec<Arc<dyn CheckpointSink>>,
        settings: CheckpointSettings,
    ) -> Self {
        Self {
            leases: Leases::new(
                "audit-checkpoint",
                store.clone(),
                clock.clone(),
                Duration::from_secs(60),
            ),
            store,
            clock,
            metrics,
            signer,
            sinks,
            settings,
        }
    }

    /// One pass: write the checkpoint that is due, then publish what is unpublished.
    pub async fn pass(&self) -> Result<CheckpointPass, CheckpointError> {
        let outcome = self
            .leases
            .while_held(LEASE_KEY, async {
                let written = self.write_due().await?;
                let mut pass = self.publish().await?;
                pass.written = written;
                pass.held = true;
                Ok::<_, CheckpointError>(pass)
            })
            .await?;
        Ok(outcome.unwrap_or_default())
    }

    /// Signs a checkpoint at the chain head when one is due; its sequence number.
    async fn write_due(&self) -> Result<Option<i64>, CheckpointError> {
        let (head_seq, head_hash) = self.store.audit_head().await?;
        let latest = self.store.latest_checkpoint().await?;
        // To the microsecond, as both databases store it and as the signed text says.
        let now = self.clock.now().trunc_subsecs(6);
        let due = match &latest {
            None => head_seq > 0,
            Some(c) => {
                let grown = u64::try_from(head_seq - c.seq).unwrap_or(0);
                grown > 0
                    && (grown >= self.settings.every
                        || now - c.at >= crate::jobs::to_chrono(self.settings.interval))
            }
        };
        if !due {
            return Ok(None);
        }
        // Never sign over a broken chain: check the events since the last checkpoint
        // (itself checked against this key, so a forged row is not built upon).
        let (mut verifier, mut after, events_before) = match latest {
            None => (ChainVerifier::default(), 0, 0),
            Some(c) => {
                let signed = SignedCheckpoint::from(c);
                if signed.verify(&self.signer.verifying_key()).is_err() {
                    return Err(CheckpointError::ForeignCheckpoint(signed.seq));
                }
                let verifier = ChainVerifier::after(signed.seq, &signed.hash);
                (verifier, signed.seq, signed.events)
            }
        };
        'pages: while after < head_seq {
            let page = self.store.audit_events(None, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for e in page.iter().take_while(|e| e.seq <= head_seq) {
                if !verifier.check(e) {
                    break 'pages;
                }
            }
        }
        let checked = verifier.finish(head_seq, &head_hash);
        if let Some(b) = checked.first_broken {
            return Err(CheckpointError::Broken(b));
        }
        let signed = self.signer.sign(Checkpoint {
            seq: head_seq,
            hash: head_hash,
            at: now,
            events: events_before + checked.events_checked,
        });
        if self
            .store
            .record_checkpoint(&StoredCheckpoint::from(&signed))
            .await?
        {
            self.metrics.audit_checkpoints.inc();
            Ok(Some(signed.seq))
        } else {
            Ok(None)
        }
    }

    /// Publishes to each sink what it has not got, oldest first; a failing sink
    /// stops there until the next pass.
    async fn publish(&self) -> Result<CheckpointPass, CheckpointError> {
        let mut pass = CheckpointPass::default();
        for sink in &self.sinks {
            let name = sink.name();
            for c in self
                .store
                .unpublished_checkpoints(name, PUBLISH_BATCH)
                .await?
            {
                let c = SignedCheckpoint::from(c);
                if let Err(e) = sink.publish(&c).await {
                    self.metrics
                        .audit_checkpoint_publish_failures
                        .with_label_values(&[name])
                        .inc();
                    tracing::error!(sink = name, seq = c.seq, error = %e, "an audit checkpoint could not be published; trying again next pass");
                    pass.failed_sinks.push(name);
                    break;
                }
                self.store
                    .mark_checkpoint_published(c.seq, name, self.clock.now())
                    .await?;
                pass.published += 1;
            }
        }
        Ok(pass)
    }
}

#[async_trait]
impl Job for CheckpointJob {
    fn leases(&self) -> &Leases {
        &self.leases
    }

    /// Often enough that `checkpoint_interval` is kept to within ten seconds.
    fn interval(&self) -> Duration {
        self.settings.interval.min(Duration::from_secs(10))
    }

    fn started(&self) {
        tracing::info!(
            public_key = %self.signer.public_key_hex(),
            every = self.settings.every,
            interval = ?self.settings.interval,
            sinks = ?self.sinks.iter().map(|s| s.name()).collect::<Vec<_>>(),
            "audit checkpoints are signed; verify them with this public key"
        );
    }

    async fn run_once(self: Arc<Self>) -> Result<(), JobError> {
        self.pass().await?;
        Ok(())
    }
}
