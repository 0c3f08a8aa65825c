//! The hash-chained audit log.
//!
//! Each event stores `prev_hash` (the previous event's `hash`, 64 zeros for the first)
//! and `hash = SHA-256(prev_hash ‖ "\n" ‖ canonical)`, where `canonical` is the event's
//! content (sequence number included) serialised as JSON with a fixed field order and
//! sorted object keys. Editing any stored field breaks that event's hash; deleting an
//! event breaks the sequence and the next event's `prev_hash`; deleting the newest
//! events no longer matches the chain head.

use super::sql::{PostgresStore, SqliteStore};
use super::StoreError;
use app::domain::{AuditAction, GrantId, GrantState};
use async_trait::async_trait;
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
    pub action: AuditAction,
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

/// A stored event, exactly as stored: its fields are what the hash covers, so a
/// tampered row is still read and reported by verification (not refused as corrupt).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
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
        event.action.as_str(),
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
        action: event.action.as_str().to_owned(),
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

/// The first of the chain's two rules: `e` is the `expected_seq`-th event and points
/// at the previous event's hash.
fn follow_problem(expected_seq: i64, prev_hash: &str, e: &AuditEvent) -> Option<BrokenLink> {
    if e.seq != expected_seq {
        Some(BrokenLink {
            seq: expected_seq,
            problem: format!(
                "event {expected_seq} is missing (the next stored event is {}): events were deleted",
                e.seq
            ),
        })
    } else if e.prev_hash != prev_hash {
        Some(BrokenLink {
            seq: e.seq,
            problem: "its prev_hash does not match the previous event's hash: an earlier event was changed or removed".to_owned(),
        })
    } else {
        None
    }
}

const EDITED: &str = "its content does not match its hash: the event was edited";

/// The second rule: `e`'s stored content still hashes to its stored hash.
fn seal_problem(e: &AuditEvent) -> Option<BrokenLink> {
    (recompute(e) != e.hash).then(|| BrokenLink {
        seq: e.seq,
        problem: EDITED.to_owned(),
    })
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
    /// A verifier that resumes after the event `seq` whose hash is `hash` (a
    /// checkpoint already trusted), so only the events after it are read.
    pub fn after(seq: i64, hash: &str) -> Self {
        Self {
            expected_seq: seq + 1,
            prev_hash: hash.to_owned(),
            checked: 0,
            broken: None,
        }
    }

    /// Checks one event. Returns `false` once the chain is broken (stop reading).
    pub fn check(&mut self, e: &AuditEvent) -> bool {
        let sealed = seal_problem(e).is_none();
        self.check_sealed(e, sealed)
    }

    /// [`check`](Self::check) with the second rule already applied: `sealed` is
    /// `recompute(e) == e.hash`, worked out elsewhere (on another core, in bulk).
    pub fn check_sealed(&mut self, e: &AuditEvent, sealed: bool) -> bool {
        if self.broken.is_some() {
            return false;
        }
        self.checked += 1;
        let problem = follow_problem(self.expected_seq, &self.prev_hash, e).or_else(|| {
            (!sealed).then(|| BrokenLink {
                seq: e.seq,
                problem: EDITED.to_owned(),
            })
        });
        if let Some(broken) = problem {
            self.broken = Some(broken);
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

// --- the log in the database -------------------------------------------------------

/// What [`AuditLog::audit_page`] keeps (all given must match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub grant: Option<GrantId>,
    pub actor: Option<String>,
    pub action: Option<AuditAction>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only events before this sequence number (the keyset cursor).
    pub before_seq: Option<i64>,
}

/// The audit log: appends (each sealed onto the chain head) and reads.
#[async_trait]
pub trait AuditLog: Sync {
    /// Appends an event that is not tied to a state change (e.g. a configuration
    /// reload, a drift report).
    async fn append_audit(&self, event: NewAuditEvent) -> Result<AuditEvent, StoreError>;

    /// Events in chain order after `after_seq`, at most `limit`; only those of one
    /// grant when `grant` is given.
    async fn audit_events(
        &self,
        grant: Option<GrantId>,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError>;

    /// The events of the grants whose ids lie in `first..=last` (ids compare as
    /// text), in grant then sequence order: a page of grants' events in one query.
    async fn events_of_grants(
        &self,
        first: GrantId,
        last: GrantId,
    ) -> Result<Vec<AuditEvent>, StoreError>;

    /// The chain head: the last sequence number and hash (0 and [`GENESIS_HASH`] for
    /// an empty chain).
    async fn audit_head(&self) -> Result<(i64, String), StoreError>;

    /// A page of the log for the auditor, newest first: the events that match every
    /// filter given, before `filter.before_seq` (the previous page's last), at most
    /// `limit`.
    async fn audit_page(
        &self,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError>;

    /// The newest events whose action is one of `actions` (drift reports, …).
    async fn recent_audit_events(
        &self,
        actions: &[AuditAction],
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError>;
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    seq: i64,
    grant_id: Option<String>,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    from_state: Option<String>,
    to_state: Option<String>,
    reason: Option<String>,
    details: String,
    prev_hash: String,
    hash: String,
}

impl From<AuditRow> for AuditEvent {
    fn from(r: AuditRow) -> Self {
        AuditEvent {
            seq: r.seq,
            grant_id: r.grant_id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            from_state: r.from_state,
            to_state: r.to_state,
            reason: r.reason,
            details: r.details,
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

const AUDIT_COLUMNS: &str =
    "seq, grant_id, at, actor, action, from_state, to_state, reason, details, prev_hash, hash";
macro_rules! impl_audit_log {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Appends one event inside `tx`. Updating the head row first takes the
            /// write lock (SQLite) or the row lock (PostgreSQL), so concurrent appends
            /// are serialised and each sees the previous hash.
            pub(super) async fn append_in(
                tx: &mut sqlx::Transaction<'_, $db>,
                event: NewAuditEvent,
            ) -> Result<AuditEvent, StoreError> {
                let event = event.normalized();
                let (seq, prev_hash): (i64, String) = sqlx::query_as(
                    "UPDATE audit_head SET last_seq = last_seq + 1 WHERE id = 1 \
                     RETURNING last_seq, last_hash",
                )
                .fetch_one(&mut **tx)
                .await?;
                let sealed = seal(&event, seq, &prev_hash);
                sqlx::query(&format!(
                    "INSERT INTO audit_events ({AUDIT_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                ))
                .bind(sealed.seq)
                .bind(&sealed.grant_id)
                .bind(sealed.at)
                .bind(&sealed.actor)
                .bind(&sealed.action)
                .bind(&sealed.from_state)
                .bind(&sealed.to_state)
                .bind(&sealed.reason)
                .bind(&sealed.details)
                .bind(&sealed.prev_hash)
                .bind(&sealed.hash)
                .execute(&mut **tx)
                .await?;
                sqlx::query("UPDATE audit_head SET last_hash = $1 WHERE id = 1")
                    .bind(&sealed.hash)
                    .execute(&mut **tx)
                    .await?;
                Ok(sealed)
            }
        }

        #[async_trait]
        impl AuditLog for $store {
            async fn append_audit(&self, event: NewAuditEvent) -> Result<AuditEvent, StoreError> {
                let mut tx = self.write_tx().await?;
                let sealed = Self::append_in(&mut tx, event).await?;
                tx.commit().await?;
                Ok(sealed)
            }

            async fn audit_events(
                &self,
                grant: Option<GrantId>,
                after_seq: i64,
                limit: u32,
            ) -> Result<Vec<AuditEvent>, StoreError> {
                let limit = i64::from(limit.clamp(1, 10_000));
                let rows: Vec<AuditRow> = match grant {
                    Some(g) => {
                        sqlx::query_as(&format!(
                            "SELECT {AUDIT_COLUMNS} FROM audit_events \
                             WHERE grant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
                        ))
                        .bind(g.to_string())
                        .bind(after_seq)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?
                    }
                    None => {
                        sqlx::query_as(&format!(
                            "SELECT {AUDIT_COLUMNS} FROM audit_events \
                             WHERE seq > $1 ORDER BY seq LIMIT $2"
                        ))
                        .bind(after_seq)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?
                    }
                };
                Ok(rows.into_iter().map(AuditEvent::from).collect())
            }

            async fn events_of_grants(
                &self,
                first: GrantId,
                last: GrantId,
            ) -> Result<Vec<AuditEvent>, StoreError> {
                let rows: Vec<AuditRow> = sqlx::query_as(&format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_events \
                     WHERE grant_id >= $1 AND grant_id <= $2 ORDER BY grant_id, seq"
                ))
                .bind(first.to_string())
                .bind(last.to_string())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(AuditEvent::from).collect())
            }

            async fn audit_head(&self) -> Result<(i64, String), StoreError> {
                Ok(
                    sqlx::query_as("SELECT last_seq, last_hash FROM audit_head WHERE id = 1")
                        .fetch_one(&self.pool)
                        .await?,
                )
            }

            async fn audit_page(
                &self,
                f: &AuditFilter,
                limit: u32,
            ) -> Result<Vec<AuditEvent>, StoreError> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE 1 = 1"
                ));
                if let Some(g) = f.grant {
                    qb.push(" AND grant_id = ").push_bind(g.to_string());
                }
                if let Some(a) = &f.actor {
                    qb.push(" AND actor = ").push_bind(a.clone());
                }
                if let Some(a) = f.action {
                    qb.push(" AND action = ").push_bind(a.as_str());
                }
                if let Some(t) = f.from {
                    qb.push(" AND at >= ").push_bind(t.trunc_subsecs(6));
                }
                if let Some(t) = f.to {
                    qb.push(" AND at <= ").push_bind(t.trunc_subsecs(6));
                }
                if let Some(s) = f.before_seq {
                    qb.push(" AND seq < ").push_bind(s);
                }
                qb.push(" ORDER BY seq DESC LIMIT ")
                    .push_bind(i64::from(limit.clamp(1, 1000)));
                let rows: Vec<AuditRow> = qb.build_query_as().fetch_all(&self.pool).await?;
                Ok(rows.into_iter().map(AuditEvent::from).collect())
            }

            async fn recent_audit_events(
                &self,
                actions: &[AuditAction],
                limit: u32,
            ) -> Result<Vec<AuditEvent>, StoreError> {
                if actions.is_empty() {
                    return Ok(Vec::new());
                }
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_events WHERE action IN ("
                ));
                let mut sep = qb.separated(", ");
                for a in actions {
                    sep.push_bind(a.as_str());
                }
                qb.push(") ORDER BY seq DESC LIMIT ")
                    .push_bind(i64::from(limit.clamp(1, 1000)));
                let rows: Vec<AuditRow> = qb.build_query_as().fetch_all(&self.pool).await?;
                Ok(rows.into_iter().map(AuditEvent::from).collect())
            }
        }
    };
}

impl_audit_log!(SqliteStore, sqlx::Sqlite);
impl_audit_log!(PostgresStore, sqlx::Postgres);

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ev(n: i64) -> NewAuditEvent {
        NewAuditEvent {
            grant_id: None,
            at: Utc.timestamp_opt(1_800_000_000 + n, 123_456_789).unwrap(),
            actor: "alice".into(),
            action: AuditAction::Request,
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
    fn a_walk_resumes_after_a_trusted_event() {
        let c = chain(5);
        let mut v = ChainVerifier::after(2, &c[1].hash);
        assert!(c[2..].iter().all(|e| v.check(e)));
        let r = v.finish(5, &c[4].hash);
        assert!(r.is_intact(), "{r:?}");
        assert_eq!(r.events_checked, 3);
        let mut v = ChainVerifier::after(2, GENESIS_HASH);
        assert!(
            !v.check(&c[2]),
            "event 3 does not follow a different event 2"
        );
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
