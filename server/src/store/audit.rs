//! The hash-chained audit log.
//!
//! Each event stores `prev_hash` (the previous event's `hash`, 64 zeros for the first)
//! and `hash = SHA-256(prev_hash ‖ "\n" ‖ canonical)`, where `canonical` is the event's
//! content (sequence number included) serialised as JSON with a fixed field order and
//! sorted object keys. Editing any stored field breaks that event's hash; deleting an
//! event breaks the sequence and the next event's `prev_hash`; deleting the newest
//! events no longer matches the chain head.

use app::domain::{GrantId, GrantState};
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event to append. The store assigns `seq`, `prev_hash` and `hash`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEvent {
    pub grant_id: Option<GrantId>,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub from_state: Option<GrantState>,
    pub to_state: Option<GrantState>,
    pub reason: Option<String>,
    /// A JSON object; stored in its canonical (sorted-key) form.
    pub details: serde_json::Value,
}

impl NewAuditEvent {
    /// Times are kept to the microsecond, as PostgreSQL stores them, so that what is
    /// hashed is exactly what is read back.
    pub fn normalized(mut self) -> Self {
        self.at = self.at.trunc_subsecs(6);
        self
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub grant_id: Option<String>,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub reason: Option<String>,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The fields that are hashed, in this order.
#[derive(Serialize)]
struct Canonical<'a> {
    seq: i64,
    grant_id: Option<&'a str>,
    at: String,
    actor: &'a str,
    action: &'a str,
    from_state: Option<&'a str>,
    to_state: Option<&'a str>,
    reason: Option<&'a str>,
    details: serde_json::Value,
}

/// The canonical serialisation of `details`: object keys sorted at every level.
/// Sorted explicitly, not by relying on serde_json's default map: any dependency can
/// turn on serde_json's `preserve_order` feature (the AWS SDK's HTTP client does),
/// and a hash must not change with a feature flag.
pub fn canonical_details(details: &serde_json::Value) -> String {
    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    if let Some(child) = map.get(k) {
                        out.insert(k.clone(), sorted(child));
                    }
                }
                serde_json::Value::Object(out)
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(sorted).collect())
            }
            other => other.clone(),
        }
    }
    match details {
        serde_json::Value::Null => serde_json::Value::Object(Default::default()).to_string(),
        other => sorted(other).to_string(),
    }
}

#[allow(clippy::too_many_arguments)]
fn hash_fields(
    prev_hash: &str,
    seq: i64,
    grant_id: Option<&str>,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    from_state: Option<&str>,
    to_state: Option<&str>,
    reason: Option<&str>,
    details: &str,
) -> String {
    // A details text that is not JSON hashes as a JSON string, so a tampered row that
    // broke the JSON still gets a (mismatching) hash rather than an error.
    let details = serde_json::from_str(details)
        .unwrap_or_else(|_| serde_json::Value::String(details.to_owned()));
    let canonical = Canonical {
        seq,
        grant_id,
        at: at.to_rfc3339_opts(SecondsFormat::Micros, true),
        actor,
        action,
        from_state,
        to_state,
        reason,
        details,
    };
    // Serialising a struct of strings and a JSON value cannot fail.
    let body = serde_json::to_string(&canonical).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    hex::encode(h.finalize())
}

/// Computes the stored form of `event` as the `seq`-th event after `prev_hash`.
pub fn seal(event: &NewAuditEvent, seq: i64, prev_hash: &str) -> AuditEvent {
    let grant_id = event.grant_id.map(|g| g.to_string());
    let details = canonical_details(&event.details);
    let hash = hash_fields(
        prev_hash,
        seq,
        grant_id.as_deref(),
        event.at,
        &event.actor,
        &event.action,
        event.from_state.map(GrantState::as_str),
        event.to_state.map(GrantState::as_str),
        event.reason.as_deref(),
        &details,
    );
    AuditEvent {
        seq,
        grant_id,
        at: event.at,
        actor: event.actor.clone(),
        action: event.action.clone(),
        from_state: event.from_state.map(|s| s.as_str().to_owned()),
        to_state: event.to_state.map(|s| s.as_str().to_owned()),
        reason: event.reason.clone(),
        details,
        prev_hash: prev_hash.to_owned(),
        hash,
    }
}

/// Recomputes a stored event's hash from its stored fields.
pub fn recompute(e: &AuditEvent) -> String {
    hash_fields(
        &e.prev_hash,
        e.seq,
        e.grant_id.as_deref(),
        e.at,
        &e.actor,
        &e.action,
        e.from_state.as_deref(),
        e.to_state.as_deref(),
        e.reason.as_deref(),
        &e.details,
    )
}

/// Where and how the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenLink {
    /// The first event that does not verify (or, for a missing event, the sequence
    /// number that should be there).
    pub seq: i64,
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainVerification {
    pub events_checked: i64,
    pub last_seq: i64,
    pub first_broken: Option<BrokenLink>,
}

impl ChainVerification {
    pub fn is_intact(&self) -> bool {
        self.first_broken.is_none()
    }
}

/// Verifies events page by page; feed pages in `seq` order, then call [`finish`].
///
/// [`finish`]: ChainVerifier::finish
#[derive(Debug)]
pub struct ChainVerifier {
    expected_seq: i64,
    prev_hash: String,
    checked: i64,
    broken: Option<BrokenLink>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
            checked: 0,
            broken: None,
        }
    }
}

impl ChainVerifier {
    /// Checks one event. Returns `false` once the chain is broken (stop reading).
    pub fn check(&mut self, e: &AuditEvent) -> bool {
        if self.broken.is_some() {
            return false;
        }
        self.checked += 1;
        let problem = if e.seq != self.expected_seq {
            Some((
                self.expected_seq,
                format!(
                    "event {} is missing (the next stored event is {}): events were deleted",
                    self.expected_seq, e.seq
                ),
            ))
        } else if e.prev_hash != self.prev_hash {
            Some((
                e.seq,
                "its prev_hash does not match the previous event's hash: an earlier event was changed or removed".to_owned(),
            ))
        } else if recompute(e) != e.hash {
            Some((
                e.seq,
                "its content does not match its hash: the event was edited".to_owned(),
            ))
        } else {
            None
        };
        if let Some((seq, problem)) = problem {
            self.broken = Some(BrokenLink { seq, problem });
            return false;
        }
        self.expected_seq += 1;
        self.prev_hash.clone_from(&e.hash);
        true
    }

    /// Compares the end of the walk with the stored chain head.
    pub fn finish(mut self, head_seq: i64, head_hash: &str) -> ChainVerification {
        let last_seq = self.expected_seq - 1;
        if self.broken.is_none() && (head_seq != last_seq || head_hash != self.prev_hash) {
            self.broken = Some(BrokenLink {
                seq: last_seq + 1,
                problem: if head_seq > last_seq {
                    format!(
                        "the chain head records {head_seq} events but only {last_seq} are stored: the newest events were deleted"
                    )
                } else {
                    "the chain head does not match the last event".to_owned()
                },
            });
        }
        ChainVerification {
            events_checked: self.checked,
            last_seq,
            first_broken: self.broken,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ev(n: i64) -> NewAuditEvent {
        NewAuditEvent {
            grant_id: None,
            at: Utc.timestamp_opt(1_800_000_000 + n, 123_456_789).unwrap(),
            actor: "alice".into(),
            action: "request".into(),
            from_state: None,
            to_state: Some(GrantState::Pending),
            reason: Some(format!("event {n}")),
            details: serde_json::json!({"b": 1, "a": [n]}),
        }
        .normalized()
    }

    fn chain(n: i64) -> Vec<AuditEvent> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|i| {
                let e = seal(&ev(i), i, &prev);
                prev.clone_from(&e.hash);
                e
            })
            .collect()
    }

    fn verify(events: &[AuditEvent], head: (i64, &str)) -> ChainVerification {
        let mut v = ChainVerifier::default();
        for e in events {
            if !v.check(e) {
                break;
            }
        }
        v.finish(head.0, head.1)
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(5);
        let r = verify(&c, (5, &c[4].hash));
        assert!(r.is_intact(), "{r:?}");
        assert_eq!(r.events_checked, 5);
        assert_eq!(verify(&[], (0, GENESIS_HASH)).first_broken, None);
    }

    #[test]
    fn details_are_canonical() {
        let e = seal(&ev(1), 1, GENESIS_HASH);
        assert_eq!(e.details, r#"{"a":[1],"b":1}"#);
        assert_eq!(recompute(&e), e.hash);
        assert_eq!(e.hash.len(), 64);
    }

    #[test]
    fn edited_event_is_found() {
        let mut c = chain(5);
        c[2].reason = Some("nothing to see".into());
        let head = c[4].hash.clone();
        let r = verify(&c, (5, &head));
        assert_eq!(r.first_broken.unwrap().seq, 3);
    }

    #[test]
    fn rehashed_edit_is_found_at_the_next_event() {
        let mut c = chain(5);
        c[2].actor = "mallory".into();
        c[2].hash = recompute(&c[2]);
        let head = c[4].hash.clone();
        let broken = verify(&c, (5, &head)).first_broken.unwrap();
        assert_eq!(broken.seq, 4);
        assert!(broken.problem.contains("prev_hash"));
    }

    #[test]
    fn deleted_event_is_found() {
        let mut c = chain(5);
        c.remove(1);
        let head = c[3].hash.clone();
        let broken = verify(&c, (5, &head)).first_broken.unwrap();
        assert_eq!(broken.seq, 2);
        assert!(broken.problem.contains("missing"));
    }

    #[test]
    fn deleted_tail_is_found_by_the_head() {
        let c = chain(5);
        let head = c[4].hash.clone();
        let broken = verify(&c[..3], (5, &head)).first_broken.unwrap();
        assert_eq!(broken.seq, 4);
        assert!(broken.problem.contains("newest events were deleted"));
    }
}
