//! Provisioning: who and what resolved once and kept, the assignment shared with an
//! active grant of the same target, adopted after a crash, used when standing, or
//! created and polled; then activation (the real window from the permission set's
//! session duration) with the other paths to the same access recorded.

use super::target::{self, Provide};
use super::{Polled, Reaper, ReaperError, Step, STANDING};
use crate::identity_center::{catalog, Assignment, IcError, IdentityError};
use crate::policy::PolicyDecisionError;
use crate::store::{GrantAws, GrantPatch};
use app::domain::{
    Action, Actor, Grant, GrantState, IdentityUser, SessionDuration, WindowInputs, Windows,
};
use chrono::{DateTime, Utc};

/// Why the entitlement could not be checked again.
enum Recheck {
    Aws(IcError),
    Store(crate::store::StoreError),
}

impl Reaper {
    async fn fail_provisioning(
        &self,
        g: &Grant,
        mut w: GrantAws,
        reason: String,
    ) -> Result<Step, ReaperError> {
        w.last_error = Some(reason.clone());
        w.next_attempt_at = None;
        self.store.save_grant_aws(g.id, &w).await?;
        self.metrics
            .reaper_failures
            .with_label_values(&["provision", "failed"])
            .inc();
        tracing::error!(grant = %g.id, reason = %reason, "provisioning failed");
        self.grants
            .act(
                g.id,
                Action::ProvisionFailed,
                &Actor::System,
                Some(reason.clone()),
                GrantPatch {
                    failure_reason: Some(reason),
                    ..GrantPatch::default()
                },
                serde_json::json!({ "attempts": w.attempts }),
            )
            .await?;
        Ok(Step::Failed)
    }

    pub(super) async fn provision(&self, target: &str, g: Grant) -> Result<Step, ReaperError> {
        let mut w = self.store.grant_aws(g.id).await?.unwrap_or_default();
        let attempts_left = w.attempts < self.settings.provision_attempts;
        let grant = &g;
        let retry_or_fail = |w: GrantAws, e: &IcError| {
            let e = e.clone();
            async move {
                if e.is_retryable() && w.attempts + 1 < self.settings.provision_attempts {
                    self.retry_later(grant, w, "provision", &e.to_string(), "aws")
                        .await
                } else {
                    self.fail_provisioning(grant, w, e.to_string()).await
                }
            }
        };
        if !attempts_left {
            let reason = w
                .last_error
                .clone()
                .unwrap_or_else(|| "too many failed attempts".into());
            return self.fail_provisioning(&g, w, reason).await;
        }
        // Who and what, resolved once and kept.
        if w.principal_id.is_none() {
            // Resolved when the request was sent, where Identity Center could be asked.
            let resolved = match &g.identity {
                Some(u) => Ok(u.clone()),
                None => {
                    self.ic
                        .find_user(&self.settings.user_match, g.request.requester.as_str())
                        .await
                }
            };
            match resolved {
                Ok(u) => w.principal_id = Some(u.user_id),
                Err(IdentityError::Aws(e)) => return retry_or_fail(w, &e).await,
                Err(e) => return self.fail_provisioning(&g, w, e.to_string()).await,
            }
        }
        if w.permission_set_arn.is_none() {
            let name = g.request.permission_set.as_str();
            let mut found = catalog::permission_set_by_name(self.store.as_ref(), name).await?;
            if found.is_none() {
                // The catalog may be older than the permission set: refresh once. If
                // AWS could not be asked, that is not "the set does not exist".
                match catalog::sync(self.ic.as_ref(), self.store.as_ref(), self.clock.now()).await {
                    Ok(_) => {}
                    Err(catalog::CatalogError::Aws(e)) => return retry_or_fail(w, &e).await,
                    Err(catalog::CatalogError::Store(e)) => return Err(e.into()),
                }
                found = catalog::permission_set_by_name(self.store.as_ref(), name).await?;
            }
            match found {
                Some(p) => w.permission_set_arn = Some(p.arn),
                None => {
                    return self
                        .fail_provisioning(
                            &g,
                            w,
                            format!("the permission set {name:?} is not in IAM Identity Center"),
                        )
                        .await
                }
            }
        }
        let (Some(principal_id), Some(ps_arn)) =
            (w.principal_id.clone(), w.permission_set_arn.clone())
        else {
            return Ok(Step::Nothing);
        };
        let assignment = Assignment {
            account_id: g.request.account_id.to_string(),
            permission_set_arn: ps_arn.clone(),
            principal_type: "USER".into(),
            principal_id: principal_id.clone(),
        };
        self.store.save_grant_aws(g.id, &w).await?;

        if w.create_request_id.is_none() && w.shared_with.is_none() {
            // A later start is given only if the requester is still entitled to it.
            if g.request.requested_start.is_some() && w.create_started_at.is_none() {
                match self.no_longer_entitled(&g, &principal_id).await {
                    Ok(None) => {}
                    Ok(Some(why)) => return self.fail_provisioning(&g, w, why).await,
                    Err(Recheck::Aws(e)) => return retry_or_fail(w, &e).await,
                    Err(Recheck::Store(e)) => return Err(e.into()),
                }
            }
            let siblings = self.siblings(&g).await?;
            match target::provide(&siblings) {
                Provide::Wait { grant, why } => {
                    // Decided again once the sibling's request is final (this pass, or
                    // the next: it is due again at once).
                    tracing::debug!(grant = %g.id, sibling = %grant, why, "provisioning waits for a sibling");
                    w.next_attempt_at = Some(self.clock.now());
                    self.store.save_grant_aws(g.id, &w).await?;
                    return Ok(Step::Blocked);
                }
                Provide::Share {
                    with,
                    taken_over,
                    standing,
                } => {
                    // Other grants hold the assignment: ride on it (and if it is a
                    // standing assignment, so does this grant). A revoking holder
                    // whose delete was not sent keeps it for this grant.
                    let ids: Vec<String> = with.iter().map(ToString::to_string).collect();
                    w.shared_with = Some(if standing {
                        STANDING.to_owned()
                    } else {
                        serde_json::json!(ids).to_string()
                    });
                    self.store.save_grant_aws(g.id, &w).await?;
                    let how = if taken_over.is_empty() {
                        "shared"
                    } else {
                        "taken_over"
                    };
                    return self.activate(g, w, &assignment, how).await;
                }
                Provide::Create => {}
            }
            // Does the user already hold this assignment? After a crash between
            // sending a create and storing its answer, that is ours: adopt it. Before
            // any create, it is a standing assignment Timebox did not make: use it for
            // the grant, record it, and never delete it.
            match self
                .ic
                .list_assignments(&assignment.account_id, &ps_arn)
                .await
            {
                Ok(list) => {
                    let present = list
                        .iter()
                        .any(|a| a.principal_type == "USER" && a.principal_id == principal_id);
                    if present && w.create_started_at.is_some() {
                        return self.activate(g, w, &assignment, "adopted").await;
                    }
                    if present {
                        w.shared_with = Some(STANDING.to_owned());
                        self.store.save_grant_aws(g.id, &w).await?;
                        return self.activate(g, w, &assignment, "standing").await;
                    }
                }
                Err(e) => return retry_or_fail(w, &e).await,
            }
            if !self.hold(target).await? {
                return Ok(Step::Nothing);
            }
            if !self.outstanding.take(g.id) {
                return super::no_slot(self, &g, &mut w).await;
            }
            w.create_started_at = Some(self.clock.now());
            self.store.save_grant_aws(g.id, &w).await?;
            match self.ic.create_assignment(&assignment).await {
                Ok(op) => {
                    w.create_request_id = Some(op.request_id);
                    self.store.save_grant_aws(g.id, &w).await?;
                }
                Err(e) => {
                    self.outstanding.release(g.id);
                    return retry_or_fail(w, &e).await;
                }
            }
        }
        let Some(request_id) = w.create_request_id.clone() else {
            return self.activate(g, w, &assignment, "shared").await;
        };
        match self.poll(target, &g, &mut w, &request_id, false).await? {
            Polled::Succeeded => self.activate(g, w, &assignment, "created").await,
            Polled::Waiting => Ok(Step::Waiting),
            Polled::Failed(reason) => {
                // FAILED is final for this request; a new request may succeed (AWS
                // reports transient internal failures this way), a few times.
                w.create_request_id = None;
                w.create_started_at = None;
                let reason = format!("CreateAccountAssignment FAILED: {reason}");
                if w.attempts + 1 < self.settings.provision_attempts {
                    self.retry_later(&g, w, "provision", &reason, "aws_failed")
                        .await
                } else {
                    w.attempts += 1;
                    self.fail_provisioning(&g, w, reason).await
                }
            }
            Polled::Unreachable(e) => retry_or_fail(w, &e).await,
        }
    }

    /// Provisioning SUCCEEDED (or the assignment is shared/adopted): the grant becomes
    /// active now, with the permission set's session duration read now.
    async fn activate(
        &self,
        g: Grant,
        mut w: GrantAws,
        assignment: &Assignment,
        how: &'static str,
    ) -> Result<Step, ReaperError> {
        let ps = match self
            .ic
            .describe_permission_set(&assignment.permission_set_arn)
            .await
        {
            Ok(ps) => ps,
            Err(e) => {
                return self
                    .retry_later(&g, w, "activate", &e.to_string(), "aws")
                    .await
            }
        };
        // No or an unreadable SessionDuration means AWS's default, one hour.
        let session = ps
            .session_duration
            .as_deref()
            .and_then(|s| SessionDuration::parse(s).ok())
            .or_else(|| SessionDuration::parse("PT1H").ok());
        let Some(session) = session else {
            return self
                .retry_later(&g, w, "activate", "no session duration", "internal")
                .await;
        };
        let standing = w.shared_with.as_deref() == Some(STANDING);
        let other_paths = self
            .other_paths(assignment, standing, g.request.requester.as_str())
            .await;
        w.other_paths = other_paths.clone();
        w.next_attempt_at = None;
        w.last_error = None;
        w.attempts = 0;
        self.store.save_grant_aws(g.id, &w).await?;
        // A request recorded while Identity Center could not be asked gets its user
        // recorded now, so evidence matches the right UserName.
        let identity = match &g.identity {
            Some(_) => None,
            None => match self.ic.user_contact(&assignment.principal_id).await {
                Ok(c) => Some(IdentityUser {
                    user_id: assignment.principal_id.clone(),
                    user_name: c.user_name,
                }),
                Err(e) => {
                    tracing::warn!(grant = %g.id, error = %e, "the user's name could not be read; evidence falls back to the person id");
                    None
                }
            },
        };
        let activated_at = self.clock.now();
        // An extension continues the access it extends: its time counts from the
        // latest end among the user's active grants of the same target (never from
        // earlier than now). When that access has ended, it is a new grant.
        let continues = match g.request.extends {
            Some(_) => self.access_end(&g).await?.filter(|end| *end > activated_at),
            None => None,
        };
        let ends_at = continues.unwrap_or(activated_at) + g.request.duration.as_duration();
        let real_end = Windows::compute(&WindowInputs {
            activated_at,
            revoked_at: None,
            planned_end: ends_at,
            portal_session: self.settings.portal_session,
            permission_set_session: session,
            observed: None,
            sessions_closed_at: None,
        })
        .ok()
        .map(|w| w.real.end);
        self.grants
            .act(
                g.id,
                Action::ProvisionSucceeded,
                &Actor::System,
                None,
                GrantPatch {
                    activated_at: Some(activated_at),
                    ends_at: Some(ends_at),
                    permission_set_session_seconds: Some(session.seconds()),
                    portal_session_seconds: Some(self.settings.portal_session.seconds()),
                    real_end,
                    identity: identity.clone(),
                    ..GrantPatch::default()
                },
                serde_json::json!({
                    "assignment": how,
                    "identity": identity,
                    "request_id": w.create_request_id,
                    "principal_id": assignment.principal_id,
                    "permission_set_arn": assignment.permission_set_arn,
                    "shared_with": w.shared_with,
                    "other_paths": other_paths.and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok()),
                    "extends": g.request.extends,
                    "continues_from": continues,
                }),
            )
            .await?;
        Ok(Step::Activated)
    }

    /// Whether extension `g` must wait for the grant it extends, which has not
    /// started yet (its time counts from that grant's end, so it may not start
    /// first); if so it is due again at that grant's start.
    pub(super) async fn extension_waits(&self, g: &Grant) -> Result<bool, ReaperError> {
        let Some(extended) = g.request.extends else {
            return Ok(false);
        };
        let Some(e) = self.store.get_grant(extended).await? else {
            return Ok(false);
        };
        if !matches!(e.state, GrantState::Approved | GrantState::Provisioning) {
            return Ok(false);
        }
        let now = self.clock.now();
        let mut w = self.store.grant_aws(g.id).await?.unwrap_or_default();
        w.next_attempt_at = Some(e.request.requested_start.map_or(now, |s| s.max(now)));
        self.store.save_grant_aws(g.id, &w).await?;
        Ok(true)
    }

    /// Why the requester of `g` may no longer have it (`None`: they still may): the
    /// policy in force now decides the request again, with the requester's groups as
    /// the identity store has them now (display names and external ids). A grant
    /// decided before policies existed, or without a policy file, is not re-checked.
    async fn no_longer_entitled(
        &self,
        g: &Grant,
        principal_id: &str,
    ) -> Result<Option<String>, Recheck> {
        let policy = self.grants.policy();
        if g.policy.is_none() || !policy.is_configured() {
            return Ok(None);
        }
        let mut groups = Vec::new();
        for id in self
            .ic
            .user_groups(principal_id)
            .await
            .map_err(Recheck::Aws)?
        {
            let info = self.ic.describe_group(&id).await.map_err(Recheck::Aws)?;
            groups.extend(info.names().map(str::to_owned));
        }
        match policy.decide(&g.request, &groups, g.break_glass).await {
            Ok(_) => Ok(None),
            Err(PolicyDecisionError::Refused(r)) => Ok(Some(format!(
                "at its start the requester was no longer entitled to it: {r}"
            ))),
            Err(PolicyDecisionError::Store(e)) => Err(Recheck::Store(e)),
        }
    }

    /// The latest end among the other active grants of `g`'s target: the end of the
    /// access an extension continues.
    async fn access_end(&self, g: &Grant) -> Result<Option<DateTime<Utc>>, ReaperError> {
        Ok(self
            .siblings(g)
            .await?
            .iter()
            .filter(|s| s.grant.state == GrantState::Active)
            .filter_map(|s| s.grant.ends_at)
            .max())
    }

    /// Group assignments of the same permission set in the same account that include
    /// the user (named by their display names), and a standing direct assignment:
    /// other paths to the same access. `None` when they could not be read
    /// (logged; the grant still activates).
    async fn other_paths(&self, a: &Assignment, standing: bool, user_name: &str) -> Option<String> {
        let groups = match self.ic.user_groups(&a.principal_id).await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read group memberships for other-path detection");
                return None;
            }
        };
        let list = match self
            .ic
            .list_assignments(&a.account_id, &a.permission_set_arn)
            .await
        {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list assignments for other-path detection");
                return None;
            }
        };
        // A standing assignment (the user held it before the grant) is another path.
        let paths = crate::identity_center::other_paths(
            self.ic.as_ref(),
            &list,
            &groups,
            &a.principal_id,
            user_name,
            standing,
        )
        .await;
        serde_json::to_string(&paths).ok()
    }
}
