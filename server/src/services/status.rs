//! Read models of the whole installation: the grants active now and those still in
//! their tail (every role), and the admin's view: the catalog, the reaper's health,
//! drift reports, the policies in force and the catalog sync on request.

use super::access::{AccessError, Core, LIST_LIMIT};
use super::catalog::CatalogSnapshot;
use crate::store::GrantFilter;
use app::api::{
    ActiveItem, AdminStatus, AuditStatus, CatalogStatus, CheckpointView, DriftReport, PoliciesView,
    PolicyQuery, ReaperProblem, ReaperStatus, SessionsOpen, SessionsStatus,
};
use app::domain::{AuditAction, Grant, GrantState, SessionsClose};
use chrono::{DateTime, Utc};

/// Grants in force (ending first), then revoked grants whose sessions may still be
/// alive, the tail (ending first).
pub(super) async fn active_now(core: &Core) -> Result<Vec<ActiveItem>, AccessError> {
    let store = core.store();
    let now = core.now();
    let mut live = store
        .list_grants(
            &GrantFilter {
                states: vec![GrantState::Active, GrantState::Revoking],
                ..GrantFilter::default()
            },
            None,
            LIST_LIMIT,
        )
        .await?;
    live.sort_by_key(|g| g.ends_at);
    let mut out: Vec<ActiveItem> = live
        .into_iter()
        .map(|grant| ActiveItem {
            grant,
            phase: "active".into(),
        })
        .collect();
    // Revoked grants whose sessions may still be alive: the tail.
    let tail_filter = GrantFilter {
        states: vec![GrantState::Revoked],
        created_from: Some(now - chrono::Duration::days(8)),
        ..GrantFilter::default()
    };
    let mut tails: Vec<Grant> = store
        .list_grants(&tail_filter, None, LIST_LIMIT)
        .await?
        .into_iter()
        .filter(|g| g.real_end.is_some_and(|e| e > now))
        .collect();
    tails.sort_by_key(|g| g.real_end);
    out.extend(tails.into_iter().map(|grant| ActiveItem {
        grant,
        phase: "tail".into(),
    }));
    Ok(out)
}

/// The admin page: catalog, reaper health, drift, active grants.
pub(super) async fn admin_status(core: &Core) -> Result<AdminStatus, AccessError> {
    let store = core.store();
    let now = core.now();
    let catalog = CatalogSnapshot::read(core).await?.status();
    let oldest_due = store.reaper_due(now, 1).await?;
    let lag_seconds = oldest_due
        .first()
        .and_then(due_since)
        .map_or(0, |since| (now - since).num_seconds().max(0));
    let problems = store
        .grant_aws_in_states(&[
            GrantState::Approved,
            GrantState::Provisioning,
            GrantState::Active,
            GrantState::Revoking,
        ])
        .await?
        .into_iter()
        .filter_map(|(g, w)| {
            w.last_error.map(|last_error| ReaperProblem {
                grant_id: g.id.to_string(),
                state: g.state,
                attempts: w.attempts,
                last_error,
                next_attempt_at: w.next_attempt_at,
            })
        })
        .collect();
    let drift = store
        .recent_audit_events(&AuditAction::DRIFT, 50)
        .await?
        .into_iter()
        .map(report_of)
        .collect();
    let active = store
        .list_grants(
            &GrantFilter {
                states: vec![GrantState::Active],
                ..GrantFilter::default()
            },
            None,
            LIST_LIMIT,
        )
        .await?;
    let r = &core.config.revocation;
    let sessions = SessionsStatus {
        mode: r.close_sessions.map_or_else(
            || "scp (when permitted)".to_owned(),
            |m| m.as_str().to_owned(),
        ),
        policy_slots: u32::try_from(r.policy_slots).unwrap_or(u32::MAX),
        inline_fallback: r.inline_fallback,
        management_account: store.management_account().await?,
        open: store
            .session_denies(now)
            .await?
            .into_iter()
            .filter(|d| !d.close.is_closed() && d.close != SessionsClose::Pending)
            .map(|d| SessionsOpen {
                grant_id: d.grant.to_string(),
                account_id: d.account_id,
                permission_set: d.permission_set,
                outcome: d.close,
                until: d.until,
            })
            .collect(),
        edited: store
            .recent_audit_events(&[AuditAction::SessionPolicyEdited], 20)
            .await?
            .into_iter()
            .map(report_of)
            .collect(),
    };
    let audit = audit_status(core).await?;
    let reaper = &core.config.reaper;
    Ok(AdminStatus {
        audit,
        sessions,
        catalog,
        reaper: ReaperStatus {
            enabled: reaper.enabled,
            interval_seconds: reaper.interval.as_secs(),
            queue_depth: store.reaper_queue_depth(now).await?,
            lag_seconds,
            problems,
        },
        drift,
        active,
    })
}

/// Whether the chain is signed here, and its latest checkpoint with where it went.
pub(super) async fn audit_status(core: &Core) -> Result<AuditStatus, AccessError> {
    let latest = match core.store().latest_checkpoint().await? {
        Some(c) => Some(checkpoint_view(core, c).await?),
        None => None,
    };
    Ok(AuditStatus {
        signing: core.config.audit.signing_key_file.is_some(),
        latest,
    })
}

/// A stored checkpoint with the sinks it was published to.
pub(super) async fn checkpoint_view(
    core: &Core,
    c: crate::store::StoredCheckpoint,
) -> Result<CheckpointView, AccessError> {
    Ok(CheckpointView {
        published: core
            .store()
            .checkpoint_publications(c.seq)
            .await?
            .into_iter()
            .map(|p| (p.sink, p.published_at))
            .collect(),
        seq: c.seq,
        hash: c.hash,
        events: c.events,
        at: c.at,
        public_key: c.public_key,
    })
}

/// An audit event (a drift finding, an edited policy) as the admin page lists it.
fn report_of(e: crate::store::AuditEvent) -> DriftReport {
    DriftReport {
        at: e.at,
        kind: e.action,
        details: serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null),
    }
}

/// When a due grant's work became due.
fn due_since(g: &Grant) -> Option<DateTime<Utc>> {
    match g.state {
        GrantState::Approved => Some(g.request.requested_start.unwrap_or(g.updated_at)),
        GrantState::Active => g.ends_at,
        _ => Some(g.updated_at),
    }
}

/// The policies in force, the file's reload status, and "who can request what,
/// approved by whom" for the query.
pub(super) async fn policies(core: &Core, query: PolicyQuery) -> Result<PoliciesView, AccessError> {
    let given = |s: &str| Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned);
    let (user, account, ps) = (
        given(&query.user),
        given(&query.account),
        given(&query.permission_set),
    );
    if let Some(a) = &account {
        app::domain::AccountId::parse(a)?;
    }
    let policy = core.grants.policy();
    let rows = policy
        .explain(user.as_deref(), account.as_deref(), ps.as_deref())
        .await?;
    Ok(PoliciesView {
        reload: policy.reload_status(),
        policies: policy
            .current()
            .policies
            .iter()
            .map(|p| p.rule.clone())
            .collect(),
        rows,
    })
}

/// Re-reads the catalog from Identity Center now (the admin's "refresh"; the reaper
/// also refreshes it every `identity_center.catalog_refresh`), then checks the
/// policy against it.
pub(super) async fn sync_catalog(core: &Core) -> Result<CatalogStatus, AccessError> {
    let synced = crate::identity_center::catalog::sync(
        core.identity_center.as_ref(),
        core.store().as_ref(),
        core.now(),
    )
    .await;
    match synced {
        Ok(report) => tracing::info!(?report, "catalog synced on request"),
        Err(e) => {
            tracing::warn!(error = %e, "catalog sync on request failed");
            return Err(AccessError::Unavailable(format!(
                "the catalog could not be synced: {e}"
            )));
        }
    }
    if let Err(e) = core.grants.policy().recheck_catalog().await {
        tracing::warn!(error = %e, "could not check the policy against the new catalog");
    }
    Ok(CatalogSnapshot::read(core).await?.status())
}
