//! The proof of one grant, for its page and its evidence pack: its events recompute
//! to their hashes, the chain around them holds up to the next signed checkpoint (or
//! the head), and the grant row is what its events say (`store::projection`). Its
//! cost is the grant's span of the log, never the log's size (`timebox audit verify`
//! walks it all).

use crate::store::audit::{recompute, ChainVerifier, GENESIS_HASH};
use crate::store::projection::{self, ProjectionCheck};
use crate::store::{AuditEvent, BrokenLink, ChainVerification, Store, StoreError};
use app::domain::Grant;
use ed25519_dalek::VerifyingKey;
use serde::Serialize;

use super::checkpoint::SignedCheckpoint;

/// How many audit events are read per page of the walk.
const AUDIT_LIMIT: u32 = 1000;

/// What the grant's page and pack say about its record.
#[derive(Debug, Clone, Serialize)]
pub struct GrantProof {
    pub events_checked: usize,
    /// Every event of the grant recomputes to its stored hash.
    pub events_verify: bool,
    /// The chain around the grant: from the event before its first to the first
    /// signed checkpoint at or after its last event (or the head when none is yet).
    pub chain: ChainVerification,
    /// The signed checkpoint the walk ended at, if one covers the grant.
    pub checkpoint: Option<i64>,
    /// The chain is intact up to and including the grant's last event.
    pub covered_by_intact_chain: bool,
    /// The grant row checked against its events.
    #[serde(skip)]
    pub row: ProjectionCheck,
    /// The row matches its events.
    pub row_matches_events: bool,
}

impl GrantProof {
    pub fn holds(&self) -> bool {
        self.events_verify && self.covered_by_intact_chain && self.row_matches_events
    }

    /// The first thing that does not hold, for a person.
    pub fn problem(&self) -> Option<String> {
        if !self.events_verify {
            return Some(
                "an audit event of this grant does not match its hash (it was edited)".to_owned(),
            );
        }
        if !self.covered_by_intact_chain {
            return Some(match &self.chain.first_broken {
                Some(b) => format!("the audit chain breaks at event {}: {}", b.seq, b.problem),
                None => "the grant's events are beyond the end of the chain".to_owned(),
            });
        }
        self.row.problem()
    }

    /// One sentence: verified, and how far; or what is wrong.
    pub fn verdict(&self) -> String {
        match self.problem() {
            Some(p) => format!("NOT verified: {p}"),
            None => format!(
                "verified: the grant's {} audit event(s) recompute to their hashes, the grant's record matches them, and the chain is intact through event {}{}",
                self.events_checked,
                self.chain.last_seq,
                match self.checkpoint {
                    Some(seq) => format!(", where it matches the signed checkpoint {seq} (check the signatures offline with `timebox audit verify --public-key`)"),
                    None => " (the head; no signed checkpoint covers it yet)".to_owned(),
                }
            ),
        }
    }
}

/// Proves grant `g` from its `events` (in chain order); `key` is the server's
/// checkpoint key, when it signs checkpoints.
pub async fn prove(
    store: &dyn Store,
    g: &Grant,
    events: &[AuditEvent],
    key: Option<&VerifyingKey>,
) -> Result<GrantProof, StoreError> {
    let events_verify = events.iter().all(|e| recompute(e) == e.hash);
    let (chain, checkpoint) = chain_around(store, events, key).await?;
    let last = events.last().map_or(0, |e| e.seq);
    let covered_by_intact_chain = match &chain.first_broken {
        None => last <= chain.last_seq,
        Some(b) => last < b.seq,
    };
    let row = projection::check(g, events);
    Ok(GrantProof {
        events_checked: events.len(),
        events_verify,
        chain,
        checkpoint,
        covered_by_intact_chain,
        row_matches_events: row.holds(),
        row,
    })
}

/// Walks the chain from the event before the grant's first (`events`, in chain
/// order) to the first checkpoint at or after its last (whose hash the chain must
/// have there), or to the head: the grant page's and the evidence pack's check, whose cost is the grant's
/// span of the log, not the log. Returns the check and the checkpoint it ended at.
/// With `key` (the server's), a stored checkpoint it did not sign is reported, not
/// trusted: someone who can write the database can also write a checkpoint row.
pub async fn chain_around(
    store: &dyn Store,
    events: &[AuditEvent],
    key: Option<&VerifyingKey>,
) -> Result<(ChainVerification, Option<i64>), StoreError> {
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return Ok((
            ChainVerification {
                events_checked: 0,
                last_seq: 0,
                first_broken: None,
            },
            None,
        ));
    };
    let start = first.seq - 1;
    let mut verifier = if start == 0 {
        ChainVerifier::after(0, GENESIS_HASH)
    } else {
        match store.audit_events(None, start - 1, 1).await?.first() {
            Some(before) if before.seq == start => ChainVerifier::after(start, &before.hash),
            // The event before is gone: start at it, so it is reported.
            _ => ChainVerifier::after(start - 1, ""),
        }
    };
    let checkpoint = store.checkpoints(last.seq - 1, 1).await?.into_iter().next();
    let (head_seq, head_hash) = store.audit_head().await?;
    let end = checkpoint.as_ref().map_or(head_seq, |c| c.seq);
    let mut at = start;
    let mut last_seen: Option<AuditEvent> = None;
    'read: while at < end {
        let page = store.audit_events(None, at, AUDIT_LIMIT).await?;
        if page.is_empty() {
            break;
        }
        for e in page {
            if e.seq > end {
                break 'read;
            }
            at = e.seq;
            let ok = verifier.check(&e);
            last_seen = Some(e);
            if !ok {
                break 'read;
            }
        }
    }
    let chain = match &checkpoint {
        Some(c) => {
            let (seq, hash) = last_seen.map_or((start, String::new()), |e| (e.seq, e.hash));
            // Consistent with itself unless broken earlier; then held to the checkpoint.
            let mut v = verifier.finish(seq, &hash);
            let forged = key.and_then(|k| SignedCheckpoint::from(c.clone()).verify(k).err());
            if let (None, Some(why)) = (&v.first_broken, forged) {
                v.first_broken = Some(BrokenLink {
                    seq: c.seq,
                    problem: format!(
                        "the stored checkpoint at sequence {} is not signed by this server's key ({why}): it was forged",
                        c.seq
                    ),
                });
            } else if v.first_broken.is_none() && seq < c.seq {
                v.first_broken = Some(BrokenLink {
                    seq: seq + 1,
                    problem: "missing: events before a signed checkpoint were deleted".to_owned(),
                });
            } else if v.first_broken.is_none() && hash != c.hash {
                v.first_broken = Some(BrokenLink {
                    seq: c.seq,
                    problem:
                        "the chain does not match the signed checkpoint here: it was rewritten"
                            .to_owned(),
                });
            }
            v
        }
        None => verifier.finish(head_seq, &head_hash),
    };
    Ok((chain, checkpoint.map(|c| c.seq)))
}
