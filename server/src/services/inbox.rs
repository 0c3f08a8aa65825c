//! The approver's inbox: the pending requests the approver may decide now, by the
//! same rule the grant page shows (never their own, never one they decided, only
//! where the deciding policy names them), oldest first, each with what deciding
//! well needs (the approvals so far, recent use, the sessions of its real window).

use super::access::{AccessError, Core, GrantFacts, Person};
use super::detail::approval_views;
use crate::store::{Cursor, GrantFilter};
use app::api::{InboxItem, RecentUse};
use app::domain::{Grant, GrantState};

/// Pending grants read per query.
const PAGE: u32 = 200;

/// The pending requests `p` may decide, oldest first, with their facts.
pub(super) async fn to_decide(p: &Person<'_>) -> Result<Vec<(Grant, GrantFacts)>, AccessError> {
    let filter = GrantFilter {
        states: vec![GrantState::Pending],
        ..GrantFilter::default()
    };
    let mut out = Vec::new();
    let mut after: Option<Cursor> = None;
    loop {
        let page = p.core.store().list_grants(&filter, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(Cursor {
            created_at: last.created_at,
            id: last.id,
        });
        let full = page.len() == usize::try_from(PAGE).unwrap_or(usize::MAX);
        for g in page {
            // The policy and the roles first (no read), then the decisions so far.
            if !p.actions(&g, &p.facts(&g, false).await?).can_decide {
                continue;
            }
            let facts = p.facts(&g, true).await?;
            if p.actions(&g, &facts).can_decide {
                out.push((g, facts));
            }
        }
        if !full {
            break;
        }
    }
    out.sort_by_key(|(g, _)| (g.created_at, g.id));
    Ok(out)
}

/// The inbox as the page shows it.
pub(super) async fn items(p: &Person<'_>) -> Result<Vec<InboxItem>, AccessError> {
    let pending = to_decide(p).await?;
    let sessions = super::catalog::sessions(p.core).await?;
    let names = super::catalog::account_names(p.core).await?;
    let mut out = Vec::with_capacity(pending.len());
    for (grant, facts) in pending {
        out.push(InboxItem {
            recent: recent_use(p.core, &grant).await?,
            permission_set_session_seconds: sessions
                .get(grant.request.permission_set.as_str())
                .copied(),
            portal_session_seconds: p.core.portal_seconds(),
            approvals: approval_views(facts.approvals),
            account_name: names.get(grant.request.account_id.as_str()).cloned(),
            grant,
        });
    }
    Ok(out)
}

/// How often the requester had this permission set in this account in the last 30
/// days, and how many of those grants carry an evidence flag.
async fn recent_use(core: &Core, g: &Grant) -> Result<RecentUse, AccessError> {
    let store = core.store();
    let filter = GrantFilter {
        requester: Some(g.request.requester.to_string()),
        account_id: Some(g.request.account_id.to_string()),
        permission_set: Some(g.request.permission_set.to_string()),
        created_from: Some(core.now() - chrono::Duration::days(30)),
        ..GrantFilter::default()
    };
    let grants = store.list_grants(&filter, None, 500).await?;
    let used: Vec<&Grant> = grants
        .iter()
        .filter(|x| x.id != g.id && x.activated_at.is_some())
        .collect();
    let mut flagged = 0;
    for x in &used {
        let summary = store
            .grant_evidence(x.id)
            .await?
            .and_then(|e| e.summary)
            .and_then(|s| serde_json::from_str::<app::domain::EvidenceSummary>(&s).ok());
        if summary.is_some_and(|s| !s.flags.is_empty()) {
            flagged += 1;
        }
    }
    Ok(RecentUse {
        grants_30d: used.len() as u32,
        flagged_30d: flagged,
    })
}
