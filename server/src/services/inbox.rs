//! The approver's inbox: the pending requests the approver may decide now, by the
//! same rule the grant page shows (never their own, never one they decided, only
//! where the deciding policy names them), oldest first, each with what deciding
//! well needs (the approvals so far, recent use, the sessions of its real window).

use super::access::{AccessError, Core, GrantFacts, Person};
use super::detail::approval_views;
use crate::store::evidence::RecentUseRow;
use crate::store::{Approval, Cursor, GrantFilter};
use app::api::{InboxItem, RecentUse};
use app::domain::{Grant, GrantId, GrantState};
use std::collections::HashMap;

/// Pending grants read per query.
const PAGE: u32 = 200;

/// The pending requests `p` may decide, oldest first, with their facts: the policy
/// and the roles first (no read), then the decisions so far of those left, read for
/// a whole page of grants at once.
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
        let candidates: Vec<Grant> = page
            .into_iter()
            .filter(|g| p.actions(g, &p.facts_with(g, Vec::new())).can_decide)
            .collect();
        let ids: Vec<GrantId> = candidates.iter().map(|g| g.id).collect();
        let mut decided: HashMap<GrantId, Vec<Approval>> = HashMap::new();
        for a in p.core.store().approvals_of(&ids).await? {
            decided.entry(a.grant_id).or_default().push(a);
        }
        for g in candidates {
            let facts = p.facts_with(&g, decided.remove(&g.id).unwrap_or_default());
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
    let mut recent = recent_use(p.core, &pending).await?;
    let mut out = Vec::with_capacity(pending.len());
    for (grant, facts) in pending {
        out.push(InboxItem {
            recent: recent.remove(&grant.id).unwrap_or_default(),
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

/// For each of `pending`: how often its requester had the same permission set in
/// the same account in the last 30 days, and how many of those grants carry an
/// evidence flag; one read for all of them.
async fn recent_use(
    core: &Core,
    pending: &[(Grant, GrantFacts)],
) -> Result<HashMap<GrantId, RecentUse>, AccessError> {
    let mut accesses: Vec<(String, String, String)> = pending
        .iter()
        .map(|(g, _)| {
            (
                g.request.requester.to_string(),
                g.request.account_id.to_string(),
                g.request.permission_set.to_string(),
            )
        })
        .collect();
    accesses.sort();
    accesses.dedup();
    let rows = core
        .store()
        .recent_uses(&accesses, core.now() - chrono::Duration::days(30))
        .await?;
    let mut by_access: HashMap<(&str, &str, &str), Vec<&RecentUseRow>> = HashMap::new();
    for r in rows.iter().filter(|r| r.activated) {
        by_access
            .entry((&r.requester, &r.account_id, &r.permission_set))
            .or_default()
            .push(r);
    }
    Ok(pending
        .iter()
        .map(|(g, _)| {
            let id = g.id.to_string();
            let key = (
                g.request.requester.as_str(),
                g.request.account_id.as_str(),
                g.request.permission_set.as_str(),
            );
            let used: Vec<&&RecentUseRow> = by_access
                .get(&key)
                .map(|rows| rows.iter().filter(|r| r.id != id).collect())
                .unwrap_or_default();
            let flagged = used
                .iter()
                .filter_map(|r| r.summary.as_deref())
                .filter_map(|s| serde_json::from_str::<app::domain::EvidenceSummary>(s).ok())
                .filter(|s| !s.flags.is_empty())
                .count();
            (
                g.id,
                RecentUse {
                    grants_30d: u32::try_from(used.len()).unwrap_or(u32::MAX),
                    flagged_30d: u32::try_from(flagged).unwrap_or(u32::MAX),
                },
            )
        })
        .collect())
}
