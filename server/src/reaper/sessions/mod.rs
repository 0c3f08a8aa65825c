//! The session pass: closing the role sessions revoked grants gave out (docs/sessions.md).
//!
//! At revocation a grant records what is to become of its sessions
//! ([`Reaper::sessions_at_revocation`]): `pending` when its assignment was deleted,
//! else why there is nothing to close. Each pass then derives, from the grants alone,
//! the denies that must stand (every pending or closed grant whose tail lasts), packs
//! them per account ([`super::session_deny::pack`]) and makes the policies Timebox
//! owns say exactly that:
//!
//! - **Service control policies** (`close_sessions = "scp"`): one to
//!   `revocation.policy_slots` SCPs named `timebox-sessions-<account>-<slot>`, attached
//!   to the account; a slot whose denies are all over is detached and deleted.
//! - **The inline fallback** (`"inline"`, or denies that do not fit with
//!   `inline_fallback`): the permission set's inline policy, its other statements kept,
//!   then `ProvisionPermissionSet` so the roles already in the accounts change.
//!
//! Rules it keeps:
//! - **Derived, so crash-safe.** Nothing is queued: a crash anywhere is followed by
//!   a pass that computes the same documents and finishes the writes. A policy created
//!   before a crash that left no row is found by its name and adopted.
//! - **Once across replicas.** Each account (each permission set, inline) is worked
//!   on under its lease (`sessions|<account>`, `sessions-inline|<arn>`).
//! - **Never overwrite someone else's edit.** Before a write, the policy's text in AWS
//!   must be what Timebox last wrote (or what it is about to write, after a crash);
//!   anything else is reported (audit event, metric, notification) and left alone.
//! - **Say what could not be done.** The management account (not governed by SCPs),
//!   a refused permission and a full budget are recorded on the grant with an audit
//!   event and a notification; the grant page shows the worst case with that reason.
//! - `sessions_closed_at` is when the write carrying the grant's statement
//!   succeeded; the grant's real window ends at `max(revoked_at, sessions_closed_at)`.

mod inline;
mod scp;

use super::session_deny::{SessionDeny, SID_PREFIX};
use super::{Reaper, ReaperError};
use crate::config::CloseSessions;
use crate::identity_center::policies::SessionPolicies;
use crate::identity_center::IcError;
use crate::jobs::Backoff;
use crate::store::{DenyRow, NewAuditEvent, PolicyKind, SessionsOutcome, StoredPolicy};
use app::domain::{AuditAction, Grant, GrantId, SessionsClose};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The longest permission-set session AWS allows: the tail bound when the grant's
/// own session length was never read.
const MAX_PERMISSION_SET_SESSION: chrono::Duration = chrono::Duration::hours(12);

/// How the reaper closes sessions, and what it needs to.
#[derive(Debug)]
pub struct SessionCloser {
    mode: CloseSessions,
    /// The mode was configured (not the default): never turned off by a refusal.
    explicit: bool,
    /// Whether the default mode may work here: Organizations answered the start-up
    /// check, or refused it (then sessions are not closed, and grants say so).
    available: tokio::sync::OnceCell<bool>,
    slots: usize,
    inline_fallback: bool,
    policies: Arc<dyn SessionPolicies>,
    /// The management account, once read (errors are not kept: asked again).
    management: tokio::sync::OnceCell<String>,
    /// Accounts (and permission sets) backing off after a failed write: attempts and
    /// the time before which they are not tried again.
    backoff: Mutex<HashMap<String, (i64, DateTime<Utc>)>>,
}

impl SessionCloser {
    /// `mode` must not be `Off` (a reaper without a closer records `off`).
    pub fn new(
        mode: CloseSessions,
        explicit: bool,
        slots: usize,
        inline_fallback: bool,
        policies: Arc<dyn SessionPolicies>,
    ) -> Self {
        Self {
            mode,
            explicit,
            available: tokio::sync::OnceCell::new(),
            slots: slots.max(1),
            inline_fallback,
            policies,
            management: tokio::sync::OnceCell::new(),
            backoff: Mutex::new(HashMap::new()),
        }
    }

    pub fn mode(&self) -> CloseSessions {
        self.mode
    }

    /// Whether sessions are closed at all. A configured mode always is; the default
    /// (`"scp"` when the permissions are there) asks Organizations once: a refusal
    /// turns closing off with a warning naming the fix, any other failure is asked
    /// again next time.
    pub async fn enabled(&self) -> bool {
        if self.explicit {
            return true;
        }
        let checked = self
            .available
            .get_or_try_init(|| async {
                match self.policies.check_scp_access().await {
                    Ok(()) => {
                        tracing::info!("revoked grants' sessions are closed with service control policies (revocation.close_sessions not set: Organizations answered)");
                        Ok(true)
                    }
                    Err(e) if e.is_access_denied() => {
                        tracing::warn!(error = %e, "revoked grants' sessions will not be closed: Timebox may not manage service control policies; give it the Organizations permissions in docs/operations.md, or set revocation.close_sessions = \"inline\" (or \"off\" to silence this)");
                        Ok(false)
                    }
                    Err(e) => Err(e),
                }
            })
            .await;
        checked.copied().unwrap_or(true)
    }

    /// The management account, when the organisation answers.
    async fn management_account(&self) -> Option<&str> {
        match self
            .management
            .get_or_try_init(|| self.policies.management_account())
            .await
        {
            Ok(id) => Some(id.as_str()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the organisation's management account");
                None
            }
        }
    }

    fn backing_off(&self, key: &str, now: DateTime<Utc>) -> bool {
        self.lock_backoff()
            .get(key)
            .is_some_and(|(_, until)| *until > now)
    }

    fn failed(&self, key: &str, now: DateTime<Utc>) {
        let backoff = Backoff::new(Duration::from_secs(2), Duration::from_secs(300));
        let mut all = self.lock_backoff();
        let entry = all.entry(key.to_owned()).or_insert((0, now));
        entry.0 += 1;
        entry.1 = now + backoff.delay(entry.0);
    }

    fn succeeded(&self, key: &str) {
        self.lock_backoff().remove(key);
    }

    fn lock_backoff(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, DateTime<Utc>)>> {
        self.backoff.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What one session pass did, for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionReport {
    /// Grants recorded as closed this pass.
    pub closed: Vec<GrantId>,
    /// Grants recorded as not closed this pass, with why.
    pub not_closed: Vec<(GrantId, SessionsClose)>,
    /// Policies written (created, updated, or deleted).
    pub writes: usize,
}

/// Same policy text, whatever the formatting AWS gives back.
fn same_policy(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<Value>(a),
        serde_json::from_str::<Value>(b),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The statements of a policy text (none when it is empty or not a policy).
fn statements_of(text: Option<&str>) -> Vec<Value> {
    let Some(v) = text.and_then(|t| serde_json::from_str::<Value>(t).ok()) else {
        return Vec::new();
    };
    match &v["Statement"] {
        Value::Array(all) => all.clone(),
        one @ Value::Object(_) => vec![one.clone()],
        _ => Vec::new(),
    }
}

fn is_ours(statement: &Value) -> bool {
    statement["Sid"]
        .as_str()
        .is_some_and(|s| s.starts_with(SID_PREFIX))
}

/// Only Timebox's statements: a policy Timebox could have written.
fn all_ours(text: &str) -> bool {
    let all = statements_of(Some(text));
    !all.is_empty() && all.iter().all(is_ours)
}

/// Why a write failed, as the outcome the grants record.
fn outcome_of(e: &IcError) -> Option<SessionsClose> {
    e.is_access_denied().then_some(SessionsClose::NoPermission)
}

impl Reaper {
    /// What is to become of a grant's sessions as it is revoked: `details` is what
    /// the revocation did to the assignment. Returns the outcome and, when a deny
    /// is to be written, until when it must stand.
    pub(super) async fn sessions_at_revocation(
        &self,
        g: &Grant,
        details: &Value,
        revoked_at: DateTime<Utc>,
        real_end: Option<DateTime<Utc>>,
    ) -> (SessionsClose, Option<DateTime<Utc>>) {
        let outcome = match details["assignment"].as_str() {
            Some("none") => SessionsClose::NotProvisioned,
            Some("kept" | "standing_kept") => SessionsClose::AssignmentKept,
            _ => match &self.sessions {
                None => SessionsClose::Off,
                Some(closer) if !closer.enabled().await => SessionsClose::Off,
                Some(closer) => {
                    let management = closer.mode == CloseSessions::Scp
                        && !closer.inline_fallback
                        && closer.management_account().await == Some(g.request.account_id.as_str());
                    if management {
                        SessionsClose::ManagementAccount
                    } else {
                        SessionsClose::Pending
                    }
                }
            },
        };
        let until = real_end.unwrap_or_else(|| {
            revoked_at + self.settings.portal_session.as_duration() + MAX_PERMISSION_SET_SESSION
        });
        (outcome, Some(until))
    }

    /// Drift removed a leftover assignment `g` made: sessions issued from it since
    /// the revocation live on, so the deny stands (again) for a whole tail from now.
    pub(super) async fn sessions_after_drift(&self, g: &Grant) -> Result<(), ReaperError> {
        let Some(closer) = &self.sessions else {
            return Ok(());
        };
        if !closer.enabled().await || g.revoked_at.is_none() {
            return Ok(());
        }
        let now = self.clock.now();
        let close = if g.sessions_close.is_some_and(SessionsClose::is_closed) {
            // Still carried: the longer tail keeps its statement.
            g.sessions_close.unwrap_or(SessionsClose::Pending)
        } else {
            SessionsClose::Pending
        };
        let until = now
            + self.settings.portal_session.as_duration()
            + g.permission_set_session
                .map_or(MAX_PERMISSION_SET_SESSION, |s| s.as_duration());
        self.store
            .record_sessions(SessionsOutcome {
                grant: g.id,
                close,
                closed_at: None,
                real_end: None,
                until: Some(until),
                event: NewAuditEvent {
                    grant_id: Some(g.id),
                    at: now,
                    actor: "timebox".to_owned(),
                    action: if close.is_closed() {
                        AuditAction::SessionsClosed
                    } else {
                        AuditAction::SessionsNotClosed
                    },
                    from_state: None,
                    to_state: None,
                    reason: Some("a leftover assignment was removed by the drift pass: the sessions issued from it are denied for a whole tail from now".to_owned()),
                    details: json!({ "outcome": close.as_str(), "sessions_until": until }),
                },
            })
            .await?;
        Ok(())
    }

    /// One session pass: every standing deny written where it belongs, every ended
    /// one removed, each grant's outcome recorded.
    pub async fn close_sessions(&self) -> Result<SessionReport, ReaperError> {
        let Some(closer) = self.sessions.clone() else {
            return Ok(SessionReport::default());
        };
        let now = self.clock.now();
        let rows = self.store.session_denies(now).await?;
        if !closer.enabled().await {
            let mut report = SessionReport::default();
            for r in rows.iter().filter(|r| !r.close.is_closed()) {
                self.record(&mut report, r, SessionsClose::Off, None, json!({}))
                    .await?;
            }
            return Ok(report);
        }
        self.metrics.session_denies.set(
            i64::try_from(rows.iter().filter(|r| r.close.is_closed()).count()).unwrap_or(i64::MAX),
        );
        let mut report = SessionReport::default();
        let management = closer.management_account().await.map(str::to_owned);
        let mut scp: BTreeMap<String, Vec<DenyRow>> = BTreeMap::new();
        let mut inline: Vec<DenyRow> = Vec::new();
        for r in rows {
            if r.user_id.is_none() {
                self.record(
                    &mut report,
                    &r,
                    SessionsClose::NotProvisioned,
                    None,
                    json!({}),
                )
                .await?;
                continue;
            }
            let in_management = management.as_deref() == Some(r.account_id.as_str());
            match closer.mode {
                CloseSessions::Inline => inline.push(r),
                _ if in_management && closer.inline_fallback => inline.push(r),
                _ if in_management => {
                    self.record(
                        &mut report,
                        &r,
                        SessionsClose::ManagementAccount,
                        None,
                        json!({}),
                    )
                    .await?;
                }
                _ => scp.entry(r.account_id.clone()).or_default().push(r),
            }
        }
        if closer.mode == CloseSessions::Scp {
            for account in self.store.session_policy_targets(PolicyKind::Scp).await? {
                scp.entry(account).or_default();
            }
        }
        for (account, rows) in scp {
            let key = format!("sessions|{account}");
            if closer.backing_off(&key, now) {
                continue;
            }
            let work = self.sync_scp(&closer, &account, &rows, now, &mut report);
            match self.leases.while_held(&key, work).await {
                Ok(Some(overflow)) => {
                    closer.succeeded(&key);
                    if closer.inline_fallback {
                        inline.extend(rows.into_iter().filter(|r| overflow.contains(&r.grant)));
                    } else {
                        let details = json!({ "account": account });
                        self.over_budget(&mut report, &rows, &overflow, details)
                            .await?;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    closer.failed(&key, now);
                    self.failed_write(&mut report, &rows, &e).await?;
                }
            }
        }
        let mut by_permission_set: BTreeMap<String, Vec<DenyRow>> = BTreeMap::new();
        for r in inline {
            match r.permission_set_arn.clone() {
                Some(arn) => by_permission_set.entry(arn).or_default().push(r),
                None => {
                    self.record(
                        &mut report,
                        &r,
                        SessionsClose::NotProvisioned,
                        None,
                        json!({}),
                    )
                    .await?;
                }
            }
        }
        for arn in self
            .store
            .session_policy_targets(PolicyKind::Inline)
            .await?
        {
            by_permission_set.entry(arn).or_default();
        }
        for (arn, rows) in by_permission_set {
            let key = format!("sessions-inline|{arn}");
            if closer.backing_off(&key, now) {
                continue;
            }
            let work = self.sync_inline(&closer, &arn, &rows, now, &mut report);
            match self.leases.while_held(&key, work).await {
                Ok(Some(overflow)) => {
                    closer.succeeded(&key);
                    let details = json!({ "permission_set_arn": arn });
                    self.over_budget(&mut report, &rows, &overflow, details)
                        .await?;
                }
                Ok(None) => {}
                Err(e) => {
                    closer.failed(&key, now);
                    self.failed_write(&mut report, &rows, &e).await?;
                }
            }
        }
        Ok(report)
    }

    /// The grants of `rows` that did not fit (`overflow`) keep their sessions open.
    async fn over_budget(
        &self,
        report: &mut SessionReport,
        rows: &[DenyRow],
        overflow: &[GrantId],
        details: Value,
    ) -> Result<(), ReaperError> {
        for r in rows.iter().filter(|r| overflow.contains(&r.grant)) {
            self.record(report, r, SessionsClose::OverBudget, None, details.clone())
                .await?;
        }
        Ok(())
    }

    /// A write failed: a refused permission is recorded on the grants not closed
    /// yet; anything else is logged and tried again after the backoff.
    async fn failed_write(
        &self,
        report: &mut SessionReport,
        rows: &[DenyRow],
        e: &ReaperError,
    ) -> Result<(), ReaperError> {
        let outcome = match e {
            ReaperError::Aws(aws) => outcome_of(aws),
            _ => None,
        };
        self.metrics
            .reaper_failures
            .with_label_values(&[
                "sessions",
                if outcome.is_some() {
                    "aws_permanent"
                } else {
                    "aws"
                },
            ])
            .inc();
        tracing::warn!(error = %e, "closing sessions failed; will retry");
        if let Some(outcome) = outcome {
            for r in rows.iter().filter(|r| !r.close.is_closed()) {
                self.record(report, r, outcome, None, json!({ "error": e.to_string() }))
                    .await?;
            }
        }
        Ok(())
    }

    async fn save_policy(
        &self,
        kind: PolicyKind,
        target: &str,
        slot: i64,
        policy_id: &str,
        content: &str,
    ) -> Result<(), ReaperError> {
        self.store
            .save_session_policy(
                kind,
                target,
                &StoredPolicy {
                    slot,
                    policy_id: policy_id.to_owned(),
                    content: content.to_owned(),
                    written_at: self.clock.now(),
                },
            )
            .await?;
        Ok(())
    }

    /// A policy Timebox owns holds someone else's text: reported once per policy
    /// and text, the grants not closed yet recorded as such, nothing overwritten.
    async fn hand_edited(
        &self,
        report: &mut SessionReport,
        rows: &[DenyRow],
        kind: &str,
        target: &str,
        policy_id: &str,
        slot: i64,
    ) -> Result<(), ReaperError> {
        let key = format!("session-policy-edited|{kind}|{target}|{policy_id}");
        let first = self
            .reported
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key);
        if first {
            tracing::error!(
                kind,
                target,
                policy_id,
                slot,
                "a policy Timebox owns was edited by someone else; not overwritten"
            );
            self.store
                .append_audit(NewAuditEvent {
                    grant_id: None,
                    at: self.clock.now(),
                    actor: "timebox".to_owned(),
                    action: AuditAction::SessionPolicyEdited,
                    from_state: None,
                    to_state: None,
                    reason: Some("the policy's text is not what Timebox wrote; it is reported, not overwritten: restore Timebox's text or delete the policy, and Timebox writes it again".to_owned()),
                    details: json!({ "kind": kind, "target": target, "policy_id": policy_id, "slot": slot }),
                })
                .await?;
        }
        for r in rows.iter().filter(|r| !r.close.is_closed()) {
            self.record(
                report,
                r,
                SessionsClose::HandEdited,
                None,
                json!({ "policy_id": policy_id }),
            )
            .await?;
        }
        Ok(())
    }

    /// Records that `r`'s deny took effect at `at` (kept when it had already).
    async fn closed(
        &self,
        report: &mut SessionReport,
        r: &DenyRow,
        close: SessionsClose,
        at: DateTime<Utc>,
        details: Value,
    ) -> Result<(), ReaperError> {
        if r.close == close && r.closed_at.is_some() {
            return Ok(());
        }
        let closed_at = r.closed_at.unwrap_or(at);
        self.record(report, r, close, Some(closed_at), details)
            .await
    }

    /// Records `close` on `r`'s grant with its audit event (and, for an outcome
    /// that leaves the sessions open, a notification), when it changes anything.
    async fn record(
        &self,
        report: &mut SessionReport,
        r: &DenyRow,
        close: SessionsClose,
        closed_at: Option<DateTime<Utc>>,
        mut details: Value,
    ) -> Result<(), ReaperError> {
        if r.close == close && (closed_at.is_none() || r.closed_at.is_some()) {
            return Ok(());
        }
        details["outcome"] = json!(close.as_str());
        if let Some(t) = closed_at {
            details["sessions_closed_at"] = json!(t);
            details["worst_case_end"] = json!(r.until);
        }
        let now = self.clock.now();
        let changed = self
            .store
            .record_sessions(SessionsOutcome {
                grant: r.grant,
                close,
                closed_at,
                real_end: closed_at.map(|c| c.max(r.revoked_at).min(r.until)),
                until: None,
                event: NewAuditEvent {
                    grant_id: Some(r.grant),
                    at: now,
                    actor: "timebox".to_owned(),
                    action: if close.is_closed() {
                        AuditAction::SessionsClosed
                    } else {
                        AuditAction::SessionsNotClosed
                    },
                    from_state: None,
                    to_state: None,
                    reason: Some(close.describe().to_owned()),
                    details,
                },
            })
            .await?;
        if !changed {
            return Ok(());
        }
        self.metrics
            .sessions_outcomes
            .with_label_values(&[close.as_str()])
            .inc();
        if close.is_closed() {
            report.closed.push(r.grant);
        } else {
            report.not_closed.push((r.grant, close));
            let event = crate::notify::NotificationEvent::SessionsNotClosed {
                outcome: close.as_str().to_owned(),
                why: close.describe().to_owned(),
            };
            if let Err(e) = crate::notify::enqueue(self.store.as_ref(), r.grant, event, now).await {
                tracing::error!(grant = %r.grant, error = %e, "cannot enqueue the sessions-not-closed notification");
            }
        }
        Ok(())
    }
}

fn to_denies(rows: &[DenyRow]) -> Vec<SessionDeny> {
    rows.iter()
        .filter_map(|r| {
            Some(SessionDeny {
                grant: r.grant,
                account: r.account_id.clone(),
                user_id: r.user_id.clone()?,
                permission_set: r.permission_set.clone(),
                issued_before: r.next_activated_at,
                until: r.until,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_compared_as_json_and_told_apart_by_sid() {
        assert!(same_policy(
            r#"{"Version":"2012-10-17","Statement":[]}"#,
            "{ \"Statement\": [], \"Version\": \"2012-10-17\" }"
        ));
        assert!(!same_policy(r#"{"a":1}"#, r#"{"a":2}"#));
        let ours =
            json!({"Version":"2012-10-17","Statement":[{"Sid":"TimeboxClose0x0","Effect":"Deny"}]})
                .to_string();
        assert!(all_ours(&ours));
        let mixed =
            json!({"Version":"2012-10-17","Statement":[{"Sid":"TimeboxClose0x0"},{"Sid":"Mine"}]})
                .to_string();
        assert!(!all_ours(&mixed));
        assert_eq!(statements_of(Some(&mixed)).len(), 2);
        assert!(statements_of(None).is_empty() && statements_of(Some("")).is_empty());
        assert_eq!(
            scp::scp_name("111122223333", 0),
            "timebox-sessions-111122223333-0"
        );
    }
}
