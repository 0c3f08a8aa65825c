//! The audit log's read model for auditors: a filtered page of events, newest
//! first, with the chain's newest signed checkpoints and the last whole-chain
//! verification; and asking for one.

use super::access::{AccessError, Core};
use super::history::parse_bound;
use crate::store::{AuditEvent, AuditFilter, StoredVerification};
use app::api::{AuditEntry, AuditPage, AuditQuery, VerificationView};
use app::domain::{AuditAction, FieldError, GrantId};

/// Events per page unless asked otherwise, and at most.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;
/// Signed checkpoints the page lists.
const RECENT_CHECKPOINTS: u32 = 10;

/// The page `q` asks for; a wrong filter is a field error naming it.
pub(super) async fn page(core: &Core, q: AuditQuery) -> Result<AuditPage, AccessError> {
    let filter = filter_of(&q)?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let mut rows = core.store().audit_page(&filter, limit + 1).await?;
    let next = (rows.len() > limit as usize)
        .then(|| rows.get(limit as usize - 1).map(|e| e.seq))
        .flatten();
    rows.truncate(limit as usize);
    let mut checkpoints = Vec::new();
    for c in core.store().recent_checkpoints(RECENT_CHECKPOINTS).await? {
        checkpoints.push(super::status::checkpoint_view(core, c).await?);
    }
    Ok(AuditPage {
        events: rows.into_iter().map(entry_of).collect(),
        next,
        audit: super::status::audit_status(core).await?,
        checkpoints,
        verification: latest_verification(core).await?,
    })
}

/// Asks for a verification of the whole chain by `by`; the `audit-verify` job runs
/// it within seconds. One at a time: a second while one is open is refused with
/// `verification_running`.
pub(super) async fn request_verification(
    core: &Core,
    by: &str,
) -> Result<VerificationView, AccessError> {
    let id = uuid::Uuid::new_v4().to_string();
    let v = core
        .store()
        .request_verification(&id, by, core.now())
        .await?;
    tracing::info!(verification = %v.id, requested_by = by, "a verification of the whole audit chain was asked for");
    Ok(view_of(v))
}

/// The last verification asked for.
pub(super) async fn latest_verification(
    core: &Core,
) -> Result<Option<VerificationView>, AccessError> {
    Ok(core.store().latest_verification().await?.map(view_of))
}

fn view_of(v: StoredVerification) -> VerificationView {
    VerificationView {
        id: v.id,
        requested_by: v.requested_by,
        requested_at: v.requested_at,
        state: v.state,
        started_at: v.started_at,
        finished_at: v.finished_at,
        head_seq: v.head_seq,
        events_verified: v.events_verified,
        grants_checked: v.grants_checked,
        checkpoints_verified: v.checkpoints_verified,
        first_broken_seq: v.first_broken_seq,
        problem: v.problem,
        summary: v.summary,
    }
}

/// A stored event as pages and the API show it.
pub(super) fn entry_of(e: AuditEvent) -> AuditEntry {
    AuditEntry {
        seq: e.seq,
        grant_id: e.grant_id,
        at: e.at,
        actor: e.actor,
        action: e.action,
        from_state: e.from_state,
        to_state: e.to_state,
        reason: e.reason,
        details: e.details,
        hash: e.hash,
    }
}

fn filter_of(q: &AuditQuery) -> Result<AuditFilter, FieldError> {
    let text = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    let grant = text(&q.grant)
        .map(|g| GrantId::parse(&g).map_err(|_| FieldError::new("grant", "is not a grant id")))
        .transpose()?;
    let action = text(&q.action)
        .map(|a| {
            AuditAction::parse(&a)
                .ok_or_else(|| FieldError::new("action", "is not an action Timebox records"))
        })
        .transpose()?;
    let actor = text(&q.actor);
    if actor.as_ref().is_some_and(|a| a.chars().count() > 256) {
        return Err(FieldError::new("actor", "must be at most 256 characters"));
    }
    let from = parse_bound("from", &q.from, false)?;
    let to = parse_bound("to", &q.to, true)?;
    if let (Some(f), Some(t)) = (from, to) {
        if t < f {
            return Err(FieldError::new("to", "is before from"));
        }
    }
    if q.before.is_some_and(|b| b < 1) {
        return Err(FieldError::new(
            "before",
            "is not a sequence number this server returned",
        ));
    }
    Ok(AuditFilter {
        grant,
        actor,
        action,
        from,
        to,
        before_seq: q.before,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_filters_name_the_wrong_field() {
        let field = |f: fn(&mut AuditQuery)| {
            let mut q = AuditQuery::default();
            f(&mut q);
            filter_of(&q)
                .err()
                .map(|e| app::api::ApiError::from(e).field)
        };
        assert_eq!(
            field(|q| q.grant = "nope".into()),
            Some(Some("grant".into()))
        );
        assert_eq!(
            field(|q| q.action = "approved".into()),
            Some(Some("action".into()))
        );
        assert_eq!(
            field(|q| q.from = "yesterday".into()),
            Some(Some("from".into()))
        );
        assert_eq!(
            field(|q| {
                q.from = "2026-02-01".into();
                q.to = "2026-01-01".into();
            }),
            Some(Some("to".into()))
        );
        assert_eq!(field(|q| q.before = Some(0)), Some(Some("before".into())));
        let ok = filter_of(&AuditQuery {
            action: "sessions_closed".into(),
            actor: " timebox ".into(),
            ..AuditQuery::default()
        })
        .unwrap();
        assert_eq!(ok.action, Some(AuditAction::SessionsClosed));
        assert_eq!(ok.actor.as_deref(), Some("timebox"));
    }
}
