//! The grant page's read model: a grant the reader may see, with its approvals, its
//! audit trail and the chain check around it, the sessions its windows need, other
//! paths to the same access, its evidence, and what the reader may do with it now
//! (the domain rule, [`app::domain::GrantActions`]).

use super::access::{AccessError, Person};
use super::evidence;
use crate::store::AuditEvent;
use app::api::{ApprovalView, ChainCheck, GrantDetail, OtherPath};
use app::domain::{AccessChain, Grant};

/// Activity events shown on a grant's page (the evidence pack has them all).
const GRANT_PAGE_EVENTS: u32 = 100;
/// Audit events of one grant shown at most (a grant has a handful).
const AUDIT_LIMIT: u32 = 1000;

/// Everything the page of `grant` shows, for `p` (who may read it).
pub(super) async fn detail(p: &Person<'_>, grant: Grant) -> Result<GrantDetail, AccessError> {
    let store = p.core.store();
    let id = grant.id;
    let grant_account = grant.request.account_id.to_string();
    let facts = p.facts(&grant, true).await?;
    let events = store.audit_events(Some(id), 0, AUDIT_LIMIT).await?;
    let chain = check_grant_chain(p, &grant, &events).await?;
    // What the reaper found at activation; before that, what the request found.
    let other_paths = match store.grant_aws(id).await?.and_then(|w| w.other_paths) {
        Some(json) => paths_of(&json),
        None => grant.paths_at_request.clone().unwrap_or_default(),
    };
    let access = AccessChain::of(&super::extensions::chain(store.as_ref(), &grant).await?);
    let found = evidence::of_grant(p.core, id).await?;
    let first_events = evidence::events(p.core, id, None, GRANT_PAGE_EVENTS).await?;
    // Who the page names (the requester, the deciders, the audit trail's actors), by
    // the display names their sign-ins gave.
    let mut named: Vec<String> = std::iter::once(grant.request.requester.to_string())
        .chain(facts.approvals.iter().map(|a| a.approver.clone()))
        .chain(events.iter().map(|e| e.actor.clone()))
        .collect();
    named.sort_unstable();
    named.dedup();
    let names = store.display_names(&named).await?;
    let permission_set_session_seconds = match grant.permission_set_session {
        Some(s) => Some(s.as_duration().num_seconds()),
        None => session_seconds_of(p, grant.request.permission_set.as_str()).await?,
    };
    Ok(GrantDetail {
        permission_set_session_seconds,
        portal_session_seconds: grant
            .portal_session
            .map_or(p.core.portal_seconds(), |s| s.as_duration().num_seconds()),
        actions: p.actions(&grant, &facts),
        audit: events.into_iter().map(super::audit_log::entry_of).collect(),
        approvals: approval_views(facts.approvals),
        grant,
        chain,
        other_paths,
        evidence: found.summary,
        events: first_events,
        investigation: found.investigation,
        access,
        management_account: store.management_account().await?.as_deref()
            == Some(grant_account.as_str()),
        account_name: super::catalog::account_names(p.core)
            .await?
            .remove(grant_account.as_str()),
        names,
    })
}

/// The approvals as the pages show them.
pub(super) fn approval_views(approvals: Vec<crate::store::Approval>) -> Vec<ApprovalView> {
    approvals
        .into_iter()
        .map(|a| ApprovalView {
            approver: a.approver,
            decision: a.decision.as_str().to_owned(),
            comment: a.comment,
            decided_at: a.decided_at,
        })
        .collect()
}

/// The permission set's session (seconds) as synced, for a grant not active yet.
async fn session_seconds_of(
    p: &Person<'_>,
    permission_set: &str,
) -> Result<Option<i64>, AccessError> {
    Ok(p.core
        .store()
        .catalog_permission_sets()
        .await?
        .into_iter()
        .find(|s| s.name == permission_set)
        .map(|s| s.session_duration_seconds))
}

/// The grant's proof (`audit::grant`): its events, the chain from them to the next
/// signed checkpoint, and its row against its events. The whole-chain walk is the
/// auditors' `verify`.
async fn check_grant_chain(
    p: &Person<'_>,
    grant: &Grant,
    events: &[AuditEvent],
) -> Result<ChainCheck, AccessError> {
    let proof = crate::audit::grant::prove(
        p.core.store().as_ref(),
        grant,
        events,
        p.core.checkpoint_key.as_ref(),
    )
    .await?;
    Ok(ChainCheck {
        ok: proof.holds(),
        events_checked: proof.events_checked as u64,
        problem: proof.problem(),
        through: proof.chain.last_seq,
        checkpoint: proof.checkpoint,
    })
}

/// The other paths the reaper recorded (JSON; rows written before names were kept
/// carry only the id).
fn paths_of(json: &str) -> Vec<OtherPath> {
    serde_json::from_str::<Vec<serde_json::Value>>(json)
        .unwrap_or_default()
        .into_iter()
        .map(|v| {
            let id = v["principal_id"].as_str().unwrap_or_default().to_owned();
            OtherPath {
                principal_type: v["principal_type"].as_str().unwrap_or("GROUP").to_owned(),
                principal: v["principal"]
                    .as_str()
                    .map_or_else(|| id.clone(), str::to_owned),
                principal_id: id,
            }
        })
        .collect()
}
