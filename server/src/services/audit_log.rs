//! The audit log's read model for auditors: a filtered page of events, newest
//! first, with the chain's latest signed checkpoint.

use super::access::{AccessError, Core};
use super::history::parse_bound;
use crate::store::{AuditEvent, AuditFilter};
use app::api::{AuditEntry, AuditPage, AuditQuery};
use app::domain::{AuditAction, FieldError, GrantId};

/// Events per page unless asked otherwise, and at most.
const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;

/// The page `q` asks for; a wrong filter is a field error naming it.
pub(super) async fn page(core: &Core, q: AuditQuery) -> Result<AuditPage, AccessError> {
    let filter = filter_of(&q)?;
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let mut rows = core.store().audit_page(&filter, limit + 1).await?;
    let next = (rows.len() > limit as usize)
        .then(|| rows.get(limit as usize - 1).map(|e| e.seq))
        .flatten();
    rows.truncate(limit as usize);
    Ok(AuditPage {
        events: rows.into_iter().map(entry_of).collect(),
        next,
        audit: super::status::audit_status(core).await?,
    })
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
