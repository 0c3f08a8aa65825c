//! What the pages and the JSON API exchange with the server. Plain serializable data,
//! compiled into the browser bundle too; every list is already authorized for the
//! caller that asked.

pub use crate::domain::OtherPath;
use crate::domain::{
    AccessChain, ActivityEvent, EvidenceSummary, ExplainRow, FieldError, Grant, GrantActions,
    GrantState, InvestigationSummary, Policy, ReloadStatus,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A request as typed into the form or posted to `POST /api/v1/grants`. Strings,
/// parsed on the server by the same domain rules the form runs while typing.
/// Missing keys read as empty, so the answer names the first wrong field (after the
/// caller is checked) instead of refusing the body as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RequestForm {
    pub account_id: String,
    pub permission_set: String,
    /// `1h`, `90m`, `1h30m`.
    pub duration: String,
    /// Empty: as soon as approved. Otherwise RFC 3339 (the form converts the local
    /// time the person chose).
    #[serde(default)]
    pub start_at: String,
    pub justification: String,
    #[serde(default)]
    pub ticket: String,
    /// Break-glass: under a break-glass policy, approved at once, everyone notified,
    /// reviewed afterwards.
    #[serde(default)]
    pub break_glass: bool,
}

/// An account offered in the request form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AccountChoice {
    pub id: String,
    pub name: String,
    /// `Root / Workloads / Prod`, for searching and for context.
    pub path: String,
}

/// A permission set offered in the request form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PermissionSetChoice {
    pub name: String,
    pub description: Option<String>,
    /// `SessionDuration` as synced (seconds).
    pub session_seconds: i64,
}

/// One thing the caller may ask for: a permission set in an account, under the
/// limits of the policy that allows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Offer {
    pub account_id: String,
    pub account_name: String,
    pub permission_set: String,
    pub policy: String,
    pub max_duration_minutes: u32,
    /// 0: approved automatically.
    pub approvals_required: u32,
    /// Who approves (`group:…`, `user:…`), empty for automatic approval.
    pub approvers: Vec<String>,
    pub ticket_required: bool,
    pub ticket_pattern: Option<String>,
    pub min_justification: u32,
    pub break_glass: bool,
}

/// Everything the request form needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RequestOptions {
    pub accounts: Vec<AccountChoice>,
    pub permission_sets: Vec<PermissionSetChoice>,
    pub offers: Vec<Offer>,
    /// The configured access-portal session (seconds): part of the real window.
    pub portal_session_seconds: i64,
    pub catalog_synced_at: Option<DateTime<Utc>>,
    /// The organisation's management account, as the last catalog sync read it:
    /// service control policies do not govern it, so a grant there keeps its
    /// sessions after revocation unless the inline fallback closes them.
    #[serde(default)]
    pub management_account: Option<String>,
}

/// One approver's recorded decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ApprovalView {
    pub approver: String,
    /// `approve` or `deny`.
    pub decision: String,
    pub comment: Option<String>,
    pub decided_at: DateTime<Utc>,
}

/// How often the requester had this permission set in this account recently.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RecentUse {
    /// Grants of the last 30 days that became active.
    pub grants_30d: u32,
    /// Of those, how many carry an evidence flag (activity after revocation, …).
    pub flagged_30d: u32,
}

/// A pending request in an approver's inbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct InboxItem {
    pub grant: Grant,
    pub approvals: Vec<ApprovalView>,
    pub recent: RecentUse,
    /// The permission set's session (seconds) from the catalog, for the real-window
    /// preview; `None` when the catalog does not know the permission set.
    pub permission_set_session_seconds: Option<i64>,
    pub portal_session_seconds: i64,
    /// The account's display name from the synced catalog.
    #[serde(default)]
    pub account_name: Option<String>,
}

/// One event of a grant's audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub seq: i64,
    /// The grant the event is about (`None`: a configuration reload, a drift report, …).
    #[serde(default)]
    pub grant_id: Option<String>,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub reason: Option<String>,
    /// Canonical JSON, as hashed.
    pub details: String,
    pub hash: String,
}

/// Result of checking the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ChainCheck {
    pub ok: bool,
    pub events_checked: u64,
    /// Why the grant's record does not verify, when it does not (the chain broken,
    /// or the grant's row changed without an event).
    pub problem: Option<String>,
    /// The chain was checked from the grant's first event through this one.
    #[serde(default)]
    pub through: i64,
    /// The signed checkpoint the check ended at, if one covers the grant.
    #[serde(default)]
    pub checkpoint: Option<i64>,
}

/// A grant with everything its page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct GrantDetail {
    pub grant: Grant,
    pub approvals: Vec<ApprovalView>,
    pub audit: Vec<AuditEntry>,
    pub chain: ChainCheck,
    pub other_paths: Vec<OtherPath>,
    pub portal_session_seconds: i64,
    pub permission_set_session_seconds: Option<i64>,
    /// What this viewer may do with it now (`can_decide`, `can_cancel`, … at the
    /// top level of the JSON), by the domain rule.
    #[serde(flatten)]
    pub actions: GrantActions,
    /// What CloudTrail showed, once activity was collected.
    pub evidence: Option<EvidenceSummary>,
    /// The first events (the evidence pack has them all).
    pub events: Vec<ActivityEvent>,
    /// The Amazon Detective investigation of the role over the real window.
    pub investigation: Option<InvestigationSummary>,
    /// With extensions (or as one): the grants of the access, shown as one.
    #[serde(default)]
    pub access: Option<AccessChain>,
    /// The account's display name from the synced catalog.
    #[serde(default)]
    pub account_name: Option<String>,
    /// Display names (of their last sign-in) of the people the page names, by person
    /// id: the requester, the deciders, the audit trail's actors.
    #[serde(default)]
    pub names: std::collections::BTreeMap<String, String>,
    /// The grant is in the organisation's management account, which service control
    /// policies do not govern.
    #[serde(default)]
    pub management_account: bool,
}

/// Filters of the history (all optional; all given must match).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct HistoryQuery {
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub permission_set: String,
    /// A state name (`active`, `revoked`, …) or empty for all.
    #[serde(default)]
    pub state: String,
    /// RFC 3339 or `YYYY-MM-DD` (inclusive, UTC): grants created from then on.
    #[serde(default)]
    pub from: String,
    /// RFC 3339 or `YYYY-MM-DD` (inclusive, UTC): grants created until then.
    #[serde(default)]
    pub to: String,
    /// Words the justification must have, each as a whole word, case-insensitive.
    /// Words are runs of letters and digits; anything else only separates them.
    #[serde(default)]
    pub text: String,
    /// The opaque position returned as `next` by the previous page.
    #[serde(default)]
    pub cursor: String,
    /// Rows per page (1–500, default 50).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Filters of the audit log (all optional; all given must match).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct AuditQuery {
    /// A grant id: its events only.
    #[serde(default)]
    pub grant: String,
    /// Who acted: a person id, or `timebox` for the system.
    #[serde(default)]
    pub actor: String,
    /// An action name (`approve`, `revoke_succeeded`, `sessions_closed`, …).
    #[serde(default)]
    pub action: String,
    /// RFC 3339 or `YYYY-MM-DD` (inclusive, UTC).
    #[serde(default)]
    pub from: String,
    /// RFC 3339 or `YYYY-MM-DD` (inclusive, UTC).
    #[serde(default)]
    pub to: String,
    /// Events before this sequence number: the `next` of the previous page.
    #[serde(default)]
    pub before: Option<i64>,
    /// Events per page (1–500, default 50).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// One page of the audit log, newest first, with the chain's latest checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub events: Vec<AuditEntry>,
    /// Pass as `before` for the next page; `None` on the last page.
    pub next: Option<i64>,
    pub audit: AuditStatus,
    /// The newest signed checkpoints (up to 10), newest first, with where each was
    /// published.
    #[serde(default)]
    pub checkpoints: Vec<CheckpointView>,
    /// The last whole-chain verification asked for, if any.
    #[serde(default)]
    pub verification: Option<VerificationView>,
}

/// A whole-chain verification asked for on demand: who asked, how far it is, and
/// what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct VerificationView {
    pub id: String,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub state: crate::domain::VerificationState,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The chain head when the walk started: the events to verify.
    pub head_seq: i64,
    pub events_verified: i64,
    /// Grant rows checked against their events (after the chain held).
    pub grants_checked: i64,
    pub checkpoints_verified: i64,
    /// The first event that does not hold, when one does not.
    pub first_broken_seq: Option<i64>,
    /// What does not hold: the first broken event or grant row, or why it could not
    /// be checked.
    pub problem: Option<String>,
    /// The result in one line, as `timebox audit verify` prints it.
    pub summary: Option<String>,
}

/// One page of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct HistoryPage {
    pub grants: Vec<Grant>,
    /// Pass as `cursor` for the next page; `None` on the last page.
    pub next: Option<String>,
}

/// A grant that is active now or whose sessions may still be alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ActiveItem {
    pub grant: Grant,
    /// `active` (time left until `ends_at`) or `tail` (revoked; sessions may live on
    /// until `real_end`).
    pub phase: String,
}

/// The catalog's state for admins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CatalogStatus {
    pub synced_at: Option<DateTime<Utc>>,
    pub accounts: u32,
    pub permission_sets: u32,
}

/// A grant the reaper is struggling with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReaperProblem {
    pub grant_id: String,
    pub state: GrantState,
    pub attempts: i64,
    pub last_error: String,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// The reaper's health for admins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ReaperStatus {
    pub enabled: bool,
    pub interval_seconds: u64,
    /// Grants with work due now.
    pub queue_depth: i64,
    /// Seconds between the oldest due deadline and now (0 when nothing is late).
    pub lag_seconds: i64,
    pub problems: Vec<ReaperProblem>,
}

/// An assignment that did not match the database (see the reaper's drift check).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct DriftReport {
    pub at: DateTime<Utc>,
    /// `drift_removed` (Timebox's own leftover, removed) or `drift_unmanaged`
    /// (made outside Timebox, reported only).
    pub kind: String,
    pub details: serde_json::Value,
}

/// The admin page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AdminStatus {
    pub catalog: CatalogStatus,
    pub reaper: ReaperStatus,
    pub drift: Vec<DriftReport>,
    pub active: Vec<Grant>,
    /// Closing revoked grants' sessions: how, and what could not be closed.
    #[serde(default)]
    pub sessions: SessionsStatus,
    /// The audit chain's signed checkpoints.
    #[serde(default)]
    pub audit: AuditStatus,
}

/// Whether the audit chain is signed here, and its latest checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditStatus {
    /// `audit.signing_key_file` is set: checkpoints are written.
    pub signing: bool,
    /// The latest checkpoint, if any, with the sinks it was published to.
    pub latest: Option<CheckpointView>,
}

/// A signed checkpoint of the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CheckpointView {
    pub seq: i64,
    pub hash: String,
    pub events: i64,
    pub at: DateTime<Utc>,
    /// The Ed25519 public key that verifies it (hex): give it to the auditor.
    pub public_key: String,
    /// Where it was published (`log`, `file`, …) and when.
    pub published: Vec<(String, DateTime<Utc>)>,
}

/// How revoked grants' sessions are closed here, and the ones that are not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SessionsStatus {
    /// `scp`, `inline`, `off`, or `scp (when permitted)` when not configured.
    pub mode: String,
    pub policy_slots: u32,
    pub inline_fallback: bool,
    /// The organisation's management account (not governed by SCPs), as synced.
    pub management_account: Option<String>,
    /// Revoked grants in their tail whose sessions could not be closed (yet).
    pub open: Vec<SessionsOpen>,
    /// Policies Timebox owns that someone else edited (reported, not overwritten).
    pub edited: Vec<DriftReport>,
}

/// A revoked grant whose sessions stay open, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct SessionsOpen {
    pub grant_id: String,
    pub account_id: String,
    pub permission_set: String,
    pub outcome: crate::domain::SessionsClose,
    /// The worst case: they can last until then.
    pub until: DateTime<Utc>,
}

/// How far ahead a start may be chosen.
pub const MAX_START_AHEAD_DAYS: i64 = 30;

impl RequestForm {
    /// Parses the form with the limits of the offer that allows it (the policy's
    /// maximum duration, minimum justification and ticket rule). The browser runs it
    /// while the person types; the server runs it again on submit. The first wrong
    /// field is the error; [`RequestForm::field_errors`] lists them all.
    pub fn parse(
        &self,
        requester: &crate::domain::PersonId,
        offer: Option<&Offer>,
        now: DateTime<Utc>,
    ) -> Result<crate::domain::GrantRequest, FieldError> {
        let p = self.parts(offer, now);
        Ok(crate::domain::GrantRequest {
            requester: requester.clone(),
            account_id: p.account_id?,
            permission_set: p.permission_set?,
            duration: p.duration?,
            justification: p.justification?,
            ticket: p.ticket?,
            requested_start: p.requested_start?,
            approvals_required: offer.map_or(1, |o| o.approvals_required),
            extends: None,
        })
    }

    /// Every wrong field with its reason, in form order (the form shows them all at
    /// once).
    pub fn field_errors(&self, offer: Option<&Offer>, now: DateTime<Utc>) -> Vec<FieldError> {
        let p = self.parts(offer, now);
        [
            p.account_id.err(),
            p.permission_set.err(),
            p.duration.err(),
            p.requested_start.err(),
            p.justification.err(),
            p.ticket.err(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Each field parsed on its own.
    fn parts(&self, offer: Option<&Offer>, now: DateTime<Utc>) -> Parts {
        use crate::domain::{
            AccountId, GrantDuration, Justification, PermissionSetName, TicketRef,
        };
        let max = offer
            .map(|o| GrantDuration::from_minutes(i64::from(o.max_duration_minutes), None))
            .transpose();
        let min_chars = offer.map_or(Justification::MIN_CHARS, |o| {
            Justification::MIN_CHARS.max(o.min_justification as usize)
        });
        Parts {
            account_id: AccountId::parse(&self.account_id),
            permission_set: PermissionSetName::parse(&self.permission_set),
            duration: max.and_then(|max| GrantDuration::parse(&self.duration, max)),
            justification: Justification::parse_with_min(&self.justification, min_chars),
            ticket: match (self.ticket.trim(), offer) {
                ("", Some(o)) if o.ticket_required => Err(FieldError::new(
                    "ticket",
                    format!("is required by the policy {:?}", o.policy),
                )),
                ("", _) => Ok(None),
                (t, _) => TicketRef::parse(t).map(Some),
            },
            requested_start: start_at(&self.start_at, now),
        }
    }
}

/// The form's fields, each parsed on its own.
struct Parts {
    account_id: Result<crate::domain::AccountId, FieldError>,
    permission_set: Result<crate::domain::PermissionSetName, FieldError>,
    duration: Result<crate::domain::GrantDuration, FieldError>,
    justification: Result<crate::domain::Justification, FieldError>,
    ticket: Result<Option<crate::domain::TicketRef>, FieldError>,
    requested_start: Result<Option<DateTime<Utc>>, FieldError>,
}

/// Empty: as soon as approved. Otherwise RFC 3339, not in the past (5 minutes of
/// slack for clocks) and at most [`MAX_START_AHEAD_DAYS`] ahead.
fn start_at(text: &str, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, FieldError> {
    let s = text.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let at = DateTime::parse_from_rfc3339(s)
        .map_err(|_| FieldError::new("start_at", "is not a date and time (RFC 3339)"))?
        .with_timezone(&Utc);
    if at < now - chrono::Duration::minutes(5) {
        return Err(FieldError::new(
            "start_at",
            "is in the past: leave it empty to start as soon as approved",
        ));
    }
    if at > now + chrono::Duration::days(MAX_START_AHEAD_DAYS) {
        return Err(FieldError::new(
            "start_at",
            format!("must be within {MAX_START_AHEAD_DAYS} days"),
        ));
    }
    Ok(Some(at))
}

/// "Who can request what, approved by whom": filters of the admin's policy page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema, utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct PolicyQuery {
    /// `user:<id>`, `group:<name>` or a bare person id.
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub permission_set: String,
}

/// The policies in force, the state of the file, and the answer to a query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PoliciesView {
    pub reload: ReloadStatus,
    pub policies: Vec<Policy>,
    pub rows: Vec<ExplainRow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer() -> Offer {
        Offer {
            account_id: "111122223333".into(),
            account_name: "payments".into(),
            permission_set: "AdministratorAccess".into(),
            policy: "prod".into(),
            max_duration_minutes: 120,
            approvals_required: 1,
            approvers: vec!["group:leads".into()],
            ticket_required: true,
            ticket_pattern: None,
            min_justification: 20,
            break_glass: false,
        }
    }

    #[test]
    fn every_wrong_field_is_named_at_once() {
        let now = Utc::now();
        let form = RequestForm {
            account_id: "111122223333".into(),
            permission_set: "AdministratorAccess".into(),
            duration: "3h".into(),
            justification: "too short".into(),
            start_at: "yesterday".into(),
            ..RequestForm::default()
        };
        let fields: Vec<&str> = form
            .field_errors(Some(&offer()), now)
            .iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["duration", "start_at", "justification", "ticket"]);
        // parse reports the first, and the policy's limits apply.
        let me = crate::domain::PersonId::parse("rita").expect("id");
        assert_eq!(
            form.parse(&me, Some(&offer()), now)
                .expect_err("wrong")
                .field,
            "duration"
        );
        let ok = RequestForm {
            duration: "2h".into(),
            justification: "the payments database is failing over".into(),
            ticket: "INC-42".into(),
            start_at: String::new(),
            ..form
        };
        let request = ok.parse(&me, Some(&offer()), now).expect("valid");
        assert_eq!(request.approvals_required, 1);
        assert!(ok.field_errors(Some(&offer()), now).is_empty());
    }
}
