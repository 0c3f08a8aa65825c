//! Drift: Identity Center's assignments compared with the database, for every
//! (account, permission set) a policy can grant or a live grant holds.
//!
//! - A user assignment Timebox made whose grants are all over is removed.
//! - An active grant whose assignment is gone gets it back.
//! - A user assignment Timebox did not make is reported, never removed.
//! - A group assignment that gives an active grant's user the same access is recorded
//!   on the grant as another path.
//!
//! Every finding is an audit event, a metric (`timebox_drift_findings_total{kind}`)
//! and a notification to the admins. The pass reads only the grants that may hold an
//! assignment (provisioning, active, revoking) and looks a leftover's maker up by the
//! assignment (an index), so its cost follows the live grants and the watched pairs,
//! not the history. AWS is listed outside any lease (it is slow); before anything is
//! changed, the target's lease is taken and its grants are read again, so an
//! assignment created for a grant meanwhile is never removed.

use super::{target_key, Reaper, ReaperError};
use crate::identity_center::{Assignment, IcErrorKind};
use crate::store::{GrantAws, NewAuditEvent, StoreError};
use app::domain::{AuditAction, Grant, GrantId, GrantState};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The kinds of finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finding {
    Removed,
    Recreated,
    Unmanaged,
    GroupPath,
}

impl Finding {
    fn kind(self) -> &'static str {
        match self {
            Finding::Removed => "removed",
            Finding::Recreated => "recreated",
            Finding::Unmanaged => "unmanaged",
            Finding::GroupPath => "group_path",
        }
    }

    fn action(self) -> AuditAction {
        match self {
            Finding::Removed => AuditAction::DriftRemoved,
            Finding::Recreated => AuditAction::DriftRecreated,
            Finding::Unmanaged => AuditAction::DriftUnmanaged,
            Finding::GroupPath => AuditAction::DriftGroupPath,
        }
    }
}

/// The grants that may hold an assignment.
const LIVE: [GrantState; 3] = [
    GrantState::Provisioning,
    GrantState::Active,
    GrantState::Revoking,
];

impl Reaper {
    /// One drift pass. Returns the number of findings (an unmanaged assignment
    /// counts at every pass, but is recorded and told once per process).
    pub async fn reconcile(&self) -> Result<usize, ReaperError> {
        let live = self.store.grant_aws_in_states(&LIVE).await?;
        let mut pairs: BTreeMap<(String, String), Vec<(Grant, GrantAws)>> = BTreeMap::new();
        for (g, w) in live {
            if let (Some(_), Some(arn)) = (&w.principal_id, w.permission_set_arn.clone()) {
                pairs
                    .entry((g.request.account_id.to_string(), arn))
                    .or_default()
                    .push((g, w));
            }
        }
        let arns: HashMap<String, String> = self
            .store
            .catalog_permission_sets()
            .await?
            .into_iter()
            .map(|p| (p.name, p.arn))
            .collect();
        for (account, name) in self.grants.policy().grantable().await? {
            if let Some(arn) = arns.get(&name) {
                pairs.entry((account, arn.clone())).or_default();
            }
        }
        let mut findings = 0;
        let mut groups_of: HashMap<String, Vec<String>> = HashMap::new();
        for ((account, arn), live) in &pairs {
            let list = self.ic.list_assignments(account, arn).await?;
            let users: HashSet<&str> = list
                .iter()
                .filter(|a| a.principal_type == "USER")
                .map(|a| a.principal_id.as_str())
                .collect();
            let holders: HashSet<&str> = live
                .iter()
                .filter_map(|(_, w)| w.principal_id.as_deref())
                .collect();
            for a in list.iter().filter(|a| {
                a.principal_type == "USER" && !holders.contains(a.principal_id.as_str())
            }) {
                findings += usize::from(self.leftover(a).await?);
            }
            for (g, w) in live.iter().filter(|(g, _)| g.state == GrantState::Active) {
                let Some(p) = w.principal_id.as_deref() else {
                    continue;
                };
                if !users.contains(p) {
                    findings += usize::from(self.vanished(g).await?);
                }
            }
            let groups: Vec<&Assignment> = list
                .iter()
                .filter(|a| a.principal_type == "GROUP")
                .collect();
            if !groups.is_empty() {
                for (g, w) in live.iter().filter(|(g, _)| g.state == GrantState::Active) {
                    findings += self.group_paths(g, w, &groups, &mut groups_of).await?;
                }
            }
        }
        Ok(findings)
    }

    /// Runs `work` on `target` as the only actor: not while a task of this replica
    /// works on it, and under the target's lease. `None` when someone else is on it
    /// (the next pass looks again).
    async fn on_target<T>(
        &self,
        target: &str,
        work: impl std::future::Future<Output = Result<T, ReaperError>>,
    ) -> Result<Option<T>, ReaperError> {
        if !self.claim(target) {
            return Ok(None);
        }
        let out = self.leases.while_held(target, work).await;
        self.unclaim(target);
        out
    }

    /// A user assignment no live grant holds (as the pass read it). Timebox's own is
    /// removed, unless a grant of its target needs it now; another is reported.
    async fn leftover(&self, a: &Assignment) -> Result<bool, ReaperError> {
        let made = self
            .store
            .grant_that_made(&a.account_id, &a.permission_set_arn, &a.principal_id)
            .await?;
        let Some((g, _)) = made else {
            return self.unmanaged(a).await;
        };
        let target = target_key(&g);
        let removed = self
            .on_target(&target, async {
                // Read again under the lease: a grant may have taken the assignment
                // since the pass read the database.
                let now = self.store.get_grant(g.id).await?;
                if now.is_some_and(|n| n.state.may_hold_assignment())
                    || !self.siblings(&g).await?.is_empty()
                {
                    return Ok(None);
                }
                let removed = match self.ic.delete_assignment(a).await {
                    Ok(_) => true,
                    Err(e) if e.kind == IcErrorKind::NotFound => true,
                    Err(e) => {
                        tracing::warn!(error = %e, "drift: cannot remove a leftover assignment");
                        false
                    }
                };
                Ok(Some(removed))
            })
            .await?;
        let Some(Some(removed)) = removed else {
            return Ok(false);
        };
        tracing::warn!(grant = %g.id, account = %a.account_id, permission_set_arn = %a.permission_set_arn, removed, "drift: an assignment Timebox made should be gone");
        self.finding(
            Finding::Removed,
            Some(g.id),
            "an assignment Timebox made was still present after its grant ended",
            format!("removed:{}:{}", g.id, self.clock.now().timestamp()),
            serde_json::json!({
                "account_id": a.account_id,
                "permission_set_arn": a.permission_set_arn,
                "principal_id": a.principal_id,
                "removed": removed,
            }),
        )
        .await?;
        if removed {
            // Sessions issued from the leftover live on: close them like a revocation's.
            self.sessions_after_drift(&g).await?;
        }
        Ok(true)
    }

    /// A user assignment Timebox did not make: reported once per process, never
    /// removed.
    async fn unmanaged(&self, a: &Assignment) -> Result<bool, ReaperError> {
        let key = format!(
            "{}|{}|{}",
            a.account_id, a.permission_set_arn, a.principal_id
        );
        let first = self
            .reported
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.clone());
        if first {
            tracing::warn!(account = %a.account_id, permission_set_arn = %a.permission_set_arn, principal_id = %a.principal_id, "drift: an assignment Timebox did not make (reported, not removed)");
            self.finding(
                Finding::Unmanaged,
                None,
                "a user assignment of a managed permission set that Timebox did not make",
                format!("unmanaged:{key}"),
                serde_json::json!({
                    "account_id": a.account_id,
                    "permission_set_arn": a.permission_set_arn,
                    "principal_id": a.principal_id,
                }),
            )
            .await?;
        }
        Ok(true)
    }

    /// An active grant whose assignment is not in Identity Center: checked again
    /// under the lease, then created again (Timebox's own from now on, removed at the
    /// grant's end).
    async fn vanished(&self, g: &Grant) -> Result<bool, ReaperError> {
        let target = target_key(g);
        let done = self
            .on_target(&target, async {
                let Some(now) = self.store.get_grant(g.id).await? else {
                    return Ok(None);
                };
                let Some(mut w) = self.store.grant_aws(g.id).await? else {
                    return Ok(None);
                };
                let (Some(principal_id), Some(arn)) =
                    (w.principal_id.clone(), w.permission_set_arn.clone())
                else {
                    return Ok(None);
                };
                if now.state != GrantState::Active {
                    return Ok(None);
                }
                let assignment = Assignment {
                    account_id: g.request.account_id.to_string(),
                    permission_set_arn: arn,
                    principal_type: "USER".into(),
                    principal_id,
                };
                let present = self
                    .ic
                    .list_assignments(&assignment.account_id, &assignment.permission_set_arn)
                    .await?
                    .iter()
                    .any(|x| {
                        x.principal_type == "USER" && x.principal_id == assignment.principal_id
                    });
                if present {
                    return Ok(None);
                }
                w.create_started_at = Some(self.clock.now());
                w.create_request_id = None;
                w.shared_with = None;
                self.store.save_grant_aws(g.id, &w).await?;
                let op = self.ic.create_assignment(&assignment).await?;
                w.create_request_id = Some(op.request_id.clone());
                self.store.save_grant_aws(g.id, &w).await?;
                Ok(Some((assignment, op.request_id)))
            })
            .await?;
        let Some(Some((assignment, request_id))) = done else {
            return Ok(false);
        };
        tracing::warn!(grant = %g.id, account = %assignment.account_id, "drift: an active grant's assignment was gone; created again");
        self.finding(
            Finding::Recreated,
            Some(g.id),
            "the assignment of an active grant was gone from Identity Center; Timebox created it again",
            format!("recreated:{}:{request_id}", g.id),
            serde_json::json!({
                "account_id": assignment.account_id,
                "permission_set_arn": assignment.permission_set_arn,
                "principal_id": assignment.principal_id,
                "request_id": request_id,
            }),
        )
        .await?;
        Ok(true)
    }

    /// Group assignments of the pair that include the active grant's user and are not
    /// yet among the grant's other paths: recorded there and reported.
    async fn group_paths(
        &self,
        g: &Grant,
        w: &GrantAws,
        groups: &[&Assignment],
        groups_of: &mut HashMap<String, Vec<String>>,
    ) -> Result<usize, ReaperError> {
        let Some(p) = w.principal_id.clone() else {
            return Ok(0);
        };
        if !groups_of.contains_key(&p) {
            match self.ic.user_groups(&p).await {
                Ok(list) => {
                    groups_of.insert(p.clone(), list);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "drift: cannot read group memberships");
                    return Ok(0);
                }
            }
        }
        let member_of = groups_of.get(&p).cloned().unwrap_or_default();
        let mut known: Vec<serde_json::Value> = w
            .other_paths
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        let has = |known: &[serde_json::Value], id: &str| {
            known
                .iter()
                .any(|k| k.get("principal_id").and_then(|v| v.as_str()) == Some(id))
        };
        let new: Vec<&&Assignment> = groups
            .iter()
            .filter(|a| member_of.contains(&a.principal_id) && !has(&known, &a.principal_id))
            .collect();
        if new.is_empty() {
            return Ok(0);
        }
        for a in &new {
            known.push(
                serde_json::json!({ "principal_type": "GROUP", "principal_id": a.principal_id }),
            );
        }
        let mut fresh = self.store.grant_aws(g.id).await?.unwrap_or_default();
        fresh.other_paths = Some(serde_json::Value::Array(known).to_string());
        self.store.save_grant_aws(g.id, &fresh).await?;
        for a in &new {
            self.finding(
                Finding::GroupPath,
                Some(g.id),
                "a group assignment gives this grant's user the same access",
                format!("group_path:{}:{}", g.id, a.principal_id),
                serde_json::json!({
                    "account_id": a.account_id,
                    "permission_set_arn": a.permission_set_arn,
                    "group_id": a.principal_id,
                }),
            )
            .await?;
        }
        Ok(new.len())
    }

    /// Records a finding: the audit event (as Timebox itself), the metric and the
    /// admins' notification (told once per `key`).
    async fn finding(
        &self,
        finding: Finding,
        grant_id: Option<GrantId>,
        reason: &str,
        key: String,
        details: serde_json::Value,
    ) -> Result<(), StoreError> {
        let now = self.clock.now();
        self.store
            .append_audit(NewAuditEvent {
                grant_id,
                at: now,
                actor: "timebox".into(),
                action: finding.action(),
                from_state: None,
                to_state: None,
                reason: Some(reason.into()),
                details: details.clone(),
            })
            .await?;
        self.metrics
            .drift_findings
            .with_label_values(&[finding.kind()])
            .inc();
        let mut told = details;
        if let Some(o) = told.as_object_mut() {
            o.insert("kind".into(), finding.kind().into());
            o.insert("finding".into(), reason.into());
        }
        if let Err(e) =
            crate::notify::enqueue_drift(self.store.as_ref(), grant_id, key, told, now).await
        {
            tracing::error!(error = %e, "cannot enqueue the drift notification");
        }
        Ok(())
    }
}
