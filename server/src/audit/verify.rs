//! `timebox audit verify`: the whole chain, read in pages in sequence order (memory
//! does not grow with the log; only the checkpoints are held), checked against the
//! chain's two rules and its head, and, given the public key, against every signed
//! checkpoint: each signature holds, and the chain passes through each checkpoint
//! (the event at its sequence has its hash, and the count matches). Checkpoints read
//! from S3 are also checked to be under a compliance-mode Object Lock.

use super::checkpoint::SignedCheckpoint;
use super::rows::{check_rows, BadGrant, RowsReport};
use crate::store::audit::{recompute, ChainVerifier};
use crate::store::{BrokenLink, Store, StoreError};
use ed25519_dalek::VerifyingKey;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Events read per page.
const PAGE: u32 = 5000;

/// Where the checkpoints to check come from.
#[derive(Debug, Clone)]
pub enum CheckpointSource {
    /// None: only the chain's own rules and head are checked.
    Nothing,
    /// The checkpoints stored in the database being verified.
    Database,
    /// A file of JSON lines, as the `audit.checkpoint_file` sink writes it, or a
    /// directory of such files (read in name order; the same checkpoint twice is one).
    File(PathBuf),
    /// The objects of the `audit.checkpoint_s3` sink; each must be locked too.
    S3(super::s3::S3Checkpoints),
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot read the checkpoint file {path}: {source}")]
    CheckpointFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}, line {line}: not a checkpoint ({message}); each line must be one JSON checkpoint as Timebox writes them")]
    CheckpointLine {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("cannot read the checkpoints in {location}: {source}; the verifier needs s3:ListBucket, s3:GetObject and s3:GetObjectRetention there, and [aws] (--config) must reach the bucket's region")]
    S3 {
        location: String,
        source: crate::aws::AwsError,
    },
    #[error("checkpoints were given without a public key; add --public-key FILE (`timebox audit keygen` printed it)")]
    NoPublicKey,
    #[error("the hashing task failed: {0}")]
    Worker(String),
    #[error(transparent)]
    Key(#[from] super::checkpoint::KeyError),
    #[error("cannot open the database {url}: {source}")]
    Open { url: String, source: StoreError },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The outcome of one verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events that were read and held.
    pub events_verified: i64,
    /// The chain head's sequence number when the walk started.
    pub head_seq: i64,
    /// Signed checkpoints the chain passed through.
    pub checkpoints_verified: usize,
    /// Checkpoints read (file or database).
    pub checkpoints_read: usize,
    pub elapsed: Duration,
    /// The first event that does not hold, and what is wrong.
    pub first_broken: Option<BrokenLink>,
    /// Grant rows checked against their events (after an intact chain only).
    pub grants_checked: i64,
    /// Of those, grants requested before their facts were recorded (checked on the
    /// facts later events recorded).
    pub grants_partial: i64,
    /// The first grant row its events do not give.
    pub bad_grant: Option<BadGrant>,
    /// What is wrong with the checkpoints' store itself, whatever the chain says
    /// (S3: an object that is not locked in compliance mode), one line each.
    pub source_problems: Vec<String>,
}

/// How far a verification is, for a caller showing progress (as stored for the
/// dashboard's verifications).
pub use crate::store::VerificationProgress as Progress;

impl VerifyReport {
    /// The chain holds and nothing is wrong with where its checkpoints are kept.
    pub fn is_intact(&self) -> bool {
        self.first_broken.is_none() && self.bad_grant.is_none() && self.source_problems.is_empty()
    }

    pub fn events_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.events_verified as f64 / secs
        } else {
            0.0
        }
    }

    /// What the command prints.
    pub fn summary(&self) -> String {
        let mut text = self.chain_summary();
        if !self.source_problems.is_empty() {
            text.push_str(&format!(
                "\nthe checkpoints are NOT all safely kept: {} problem(s):",
                self.source_problems.len()
            ));
            for p in &self.source_problems {
                text.push_str(&format!("\n  {p}"));
            }
        }
        text
    }

    fn chain_summary(&self) -> String {
        if let Some(g) = &self.bad_grant {
            return format!(
                "the audit record does NOT verify: grant {}: {}\n(the chain's {} events verified; {} grant rows matched their events before it)",
                g.grant, g.problem, self.events_verified, self.grants_checked.saturating_sub(1)
            );
        }
        match &self.first_broken {
            Some(b) => format!(
                "the audit chain does NOT verify: event {}: {}\n({} events verified before it, {} of {} checkpoints passed)",
                b.seq, b.problem, self.events_verified, self.checkpoints_verified, self.checkpoints_read
            ),
            None => format!(
                "the audit chain verifies: {} events verified, {} checkpoints verified, {} grant rows match their events{}, in {:.2}s ({:.0} events/s)",
                self.events_verified,
                self.checkpoints_verified,
                self.grants_checked,
                match self.grants_partial {
                    0 => String::new(),
                    n => format!(" ({n} of them requested before their facts were recorded, checked on the later facts)"),
                },
                self.elapsed.as_secs_f64(),
                self.events_per_second()
            ),
        }
    }
}

/// Reads a checkpoint file, or every file in a directory of them (such as the
/// files of several replicas, or a day's rotated copies).
pub fn read_checkpoints(path: &Path) -> Result<Vec<SignedCheckpoint>, VerifyError> {
    if !path.is_dir() {
        return read_checkpoint_file(path);
    }
    let unreadable = |source| VerifyError::CheckpointFile {
        path: path.to_owned(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(unreadable)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(unreadable)?;
    files.retain(|f| f.is_file());
    files.sort();
    let mut all = Vec::new();
    for f in files {
        all.extend(read_checkpoint_file(&f)?);
    }
    Ok(all)
}

/// Reads a checkpoint file (one JSON checkpoint per line; blank lines skipped).
pub fn read_checkpoint_file(path: &Path) -> Result<Vec<SignedCheckpoint>, VerifyError> {
    let text = std::fs::read_to_string(path).map_err(|source| VerifyError::CheckpointFile {
        path: path.to_owned(),
        source,
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| VerifyError::CheckpointLine {
                path: path.to_owned(),
                line: i + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

/// Every checkpoint stored in the database, in sequence order.
pub async fn database_checkpoints(store: &dyn Store) -> Result<Vec<SignedCheckpoint>, StoreError> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = store.checkpoints(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        all.extend(page.into_iter().map(SignedCheckpoint::from));
    }
    Ok(all)
}

/// Verifies the chain in `store`, and the checkpoints from `source` with `key`.
pub async fn verify(
    store: &dyn Store,
    source: &CheckpointSource,
    key: Option<&VerifyingKey>,
) -> Result<VerifyReport, VerifyError> {
    verify_with_progress(store, source, key, |_| {}).await
}

/// [`verify`], telling `progress` how far it is after each page; then, when the
/// chain holds, every grant row is checked against its events (`rows`).
pub async fn verify_with_progress(
    store: &dyn Store,
    source: &CheckpointSource,
    key: Option<&VerifyingKey>,
    mut progress: impl FnMut(Progress),
) -> Result<VerifyReport, VerifyError> {
    let started = Instant::now();
    // Checkpoints first, the head after: a checkpoint written meanwhile is then at or
    // below the head, so one past it means the head was moved back.
    let mut source_problems = Vec::new();
    let mut checkpoints = match source {
        CheckpointSource::Nothing => Vec::new(),
        CheckpointSource::Database => database_checkpoints(store).await?,
        CheckpointSource::File(path) => read_checkpoints(path)?,
        CheckpointSource::S3(bucket) => {
            // The command's own time: whether a lock still holds today.
            let read = bucket
                .read_all(chrono::Utc::now())
                .await
                .map_err(|source| VerifyError::S3 {
                    location: bucket.location().to_string(),
                    source,
                })?;
            source_problems = read.problems;
            read.checkpoints
        }
    };
    let key = match (key, checkpoints.is_empty(), source) {
        (Some(k), _, _) => Some(k),
        (None, _, CheckpointSource::File(_) | CheckpointSource::S3(_)) => {
            return Err(VerifyError::NoPublicKey)
        }
        (None, true, _) => None,
        (None, false, _) => return Err(VerifyError::NoPublicKey),
    };
    checkpoints.sort_by_key(|c| c.seq);
    // A sink may hold a line twice (published again after a crash); the same
    // checkpoint twice is one.
    checkpoints.dedup();
    let checkpoints_read = checkpoints.len();
    let (checkpoints, forged) = match key {
        Some(k) => signed_only(checkpoints, k),
        None => (Vec::new(), None),
    };
    let (head_seq, head_hash) = store.audit_head().await?;

    let mut verifier = ChainVerifier::default();
    let mut waypoints = Waypoints::new(&checkpoints);
    let mut passed = 0;
    let mut off_checkpoint = None;
    // While one page is hashed on a blocking thread, the next is read: the two
    // halves of the walk's cost run on two cores.
    let mut page = if head_seq > 0 {
        store.audit_events(None, 0, PAGE).await?
    } else {
        Vec::new()
    };
    'pages: while let Some(last) = page.last() {
        let after = last.seq;
        let hashing = tokio::task::spawn_blocking(move || {
            let sealed: Vec<bool> = page.iter().map(|e| recompute(e) == e.hash).collect();
            (page, sealed)
        });
        let reading = async {
            if after < head_seq {
                store.audit_events(None, after, PAGE).await
            } else {
                Ok(Vec::new())
            }
        };
        let (hashed, next) = tokio::join!(hashing, reading);
        let (current, sealed) = hashed.map_err(|e| VerifyError::Worker(e.to_string()))?;
        for (e, sealed) in current.iter().zip(sealed) {
            if e.seq > head_seq {
                break 'pages;
            }
            if !verifier.check_sealed(e, sealed) {
                break 'pages;
            }
            passed += 1;
            if let Some(b) = waypoints.pass(e.seq, &e.hash, passed) {
                off_checkpoint = Some(b);
                break 'pages;
            }
        }
        progress(Progress {
            events_verified: passed,
            head_seq,
            grants_checked: 0,
        });
        page = next?;
    }
    let first_broken = match off_checkpoint {
        Some(b) => Some(b),
        None => verifier
            .finish(head_seq, &head_hash)
            .first_broken
            .or_else(|| waypoints.beyond(passed)),
    };
    // A forged checkpoint is reported when nothing in the chain broke before it.
    let first_broken = match (first_broken, forged) {
        (Some(b), Some(f)) => Some(if f.seq < b.seq { f } else { b }),
        (b, f) => b.or(f),
    };
    let rows = match first_broken {
        Some(_) => RowsReport::default(),
        None => {
            check_rows(store, |grants_checked| {
                progress(Progress {
                    events_verified: passed,
                    head_seq,
                    grants_checked,
                })
            })
            .await?
        }
    };
    Ok(VerifyReport {
        events_verified: passed,
        head_seq,
        checkpoints_verified: waypoints.verified,
        checkpoints_read,
        elapsed: started.elapsed(),
        first_broken,
        grants_checked: rows.grants_checked,
        grants_partial: rows.grants_partial,
        bad_grant: rows.first_bad,
        source_problems,
    })
}

/// The checkpoints whose signature holds, and the first (lowest) that does not.
fn signed_only(
    all: Vec<SignedCheckpoint>,
    key: &VerifyingKey,
) -> (Vec<SignedCheckpoint>, Option<BrokenLink>) {
    let mut forged = None;
    let mut good = Vec::with_capacity(all.len());
    for c in all {
        match c.verify(key) {
            Ok(()) => good.push(c),
            Err(why) if forged.is_none() => {
                forged = Some(BrokenLink {
                    seq: c.seq,
                    problem: format!(
                        "the checkpoint at sequence {} (signed at {}): {why}",
                        c.seq, c.at
                    ),
                });
            }
            Err(_) => {}
        }
    }
    (good, forged)
}

/// The signed checkpoints the walk must pass through, in order.
struct Waypoints<'a> {
    checkpoints: &'a [SignedCheckpoint],
    next: usize,
    /// The last checkpoint passed: where a rewrite found at the next one began.
    last_passed: i64,
    verified: usize,
}

impl<'a> Waypoints<'a> {
    fn new(checkpoints: &'a [SignedCheckpoint]) -> Self {
        Self {
            checkpoints,
            next: 0,
            last_passed: 0,
            verified: 0,
        }
    }

    /// The walk has reached event `seq` with `hash`, the `count`-th event held.
    fn pass(&mut self, seq: i64, hash: &str, count: i64) -> Option<BrokenLink> {
        while let Some(c) = self.checkpoints.get(self.next) {
            if c.seq > seq {
                return None;
            }
            self.next += 1;
            if c.seq < seq {
                // Only for a sequence number no event can have (0 or below).
                return Some(BrokenLink {
                    seq: c.seq,
                    problem: format!(
                        "a signed checkpoint names sequence {}, which no event has",
                        c.seq
                    ),
                });
            }
            if c.hash != hash || c.events != count {
                return Some(BrokenLink {
                    seq,
                    problem: format!(
                        "the chain up to here is not the one signed at {}: the checkpoint records hash {} and {} events, the stored chain has hash {} and {} events; an event after sequence {} and up to {seq} was rewritten, and the chain re-hashed to hide it",
                        c.at, c.hash, c.events, hash, count, self.last_passed
                    ),
                });
            }
            // Two disagreeing checkpoints for one sequence cannot both match.
            if self.last_passed != seq {
                self.verified += 1;
            }
            self.last_passed = seq;
        }
        None
    }

    /// After the whole chain held (`count` events): a checkpoint beyond its end.
    fn beyond(&self, count: i64) -> Option<BrokenLink> {
        self.checkpoints.get(self.next).map(|c| BrokenLink {
            seq: count + 1,
            problem: format!(
                "event {} is missing: the checkpoint signed at {} records {} events up to sequence {}, but the chain ends at {count}; the newest events were deleted and the chain head rewritten to match",
                count + 1,
                c.at,
                c.events,
                c.seq
            ),
        })
    }
}

/// `timebox audit verify`: opens the database at `url` as it is (not created, not
/// migrated: a copy is verified as it was handed over) and verifies it.
pub async fn verify_database(
    url: &str,
    source: &CheckpointSource,
    public_key: Option<&Path>,
) -> Result<VerifyReport, VerifyError> {
    let key = public_key
        .map(super::checkpoint::read_public_key)
        .transpose()?;
    let store = crate::store::open_existing(url)
        .await
        .map_err(|source| VerifyError::Open {
            url: crate::store::redact_url(url),
            source,
        })?;
    verify(store.as_ref(), source, key.as_ref()).await
}
