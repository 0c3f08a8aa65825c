//! The handle factory and the gate. [`Access`] hands a caller the handle of a role
//! (`requester`, `approver`, `auditor`, `admin`, or a `reader` for what every role
//! reads) only when their roles allow the operation they ask for; the handle's
//! methods check each grant against the domain rule ([`app::domain::actions`]).
//! Every refusal is made by [`Core::deny`] or [`Core::refuse`]: logged with the
//! caller, the operation and the grant, and counted in `timebox_refusals_total`.

use super::grants::{Applied, GrantError, GrantService};
use crate::config::Config;
use crate::identity_center::IdentityCenter;
use crate::metrics::Metrics;
use crate::store::{Approval, Decision, GrantPatch, Store, StoreError};
use app::domain::{
    actions, authorize, authorize_role, AccessPolicy, ActionCtx, ActionRefusal, Actor, Caller,
    DecisionSoFar, Denied, FieldError, Grant, GrantAction, GrantActions, GrantId, Operation,
    PersonId,
};
use std::sync::Arc;

/// Lists that are not paged (my grants, active now, the admin's active grants) show
/// at most this many.
pub(super) const LIST_LIMIT: u32 = 200;

/// Why a handle could not do what it was asked. The web layer maps each to a status
/// and a safe message (`super::errors`).
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Identity Center could not be asked; the detail was logged where it failed.
    #[error("{0}")]
    Unavailable(String),
    /// The caller maps to no Identity Center user; the message names the person id
    /// and the settings that map it.
    #[error("{0}")]
    UnknownIdentity(String),
    /// The caller asked too often; the message says when to try again.
    #[error("{0}")]
    TooMany(String),
    /// A value the caller gave is wrong; the error names the field.
    #[error(transparent)]
    Field(#[from] FieldError),
    /// The caller may not (logged and counted where it was decided).
    #[error(transparent)]
    Denied(#[from] Denied),
    /// What the grant service refused or failed with.
    #[error(transparent)]
    Grant(#[from] GrantError),
}

impl From<StoreError> for AccessError {
    fn from(e: StoreError) -> Self {
        AccessError::Grant(e.into())
    }
}

/// What a handle's method answers.
pub type Answer<T> = Result<T, AccessError>;

/// What a lifecycle step on a grant answers.
pub type Acted = Answer<Applied>;

/// Declares a role's handle: the struct holding the person, its [`Handle`] impl
/// (who holds it, what it offers), its getter on [`Access`] and its reader.
macro_rules! role_handle {
    ($(#[$doc:meta])* $name:ident, $getter:ident, holders: $holders:ident, offers: $offers:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name<'a> {
            p: $crate::services::access::Person<'a>,
        }

        impl<'a> $crate::services::access::Handle<'a> for $name<'a> {
            const HOLDERS: app::domain::Operation = app::domain::Operation::$holders;
            const OPERATIONS: &'static [app::domain::Operation] = $offers;

            fn new(p: $crate::services::access::Person<'a>) -> Self {
                Self { p }
            }
        }

        impl<'a> $name<'a> {
            /// What the person reads: their own grants, and everybody's where their
            /// roles allow.
            pub fn reader(&self) -> $crate::services::Reader<'a> {
                <$crate::services::Reader<'a> as $crate::services::access::Handle<'a>>::new(
                    self.p,
                )
            }
        }

        impl $crate::services::Access {
            #[doc = concat!("The ", stringify!($getter), "'s handle ([`Access::handle`]).")]
            pub fn $getter<'a>(
                &'a self,
                caller: &'a app::domain::Caller,
                op: app::domain::Operation,
            ) -> Result<$name<'a>, $crate::services::AccessError> {
                self.handle(caller, op)
            }
        }
    };
}
pub(super) use role_handle;

/// What the handles are built from.
#[derive(Debug, Clone)]
pub struct AccessParts {
    pub grants: GrantService,
    /// The configuration-dependent part of the rules (MFA for approvers).
    pub policy: AccessPolicy,
    pub config: Arc<Config>,
    pub identity_center: Arc<dyn IdentityCenter>,
    pub metrics: Arc<Metrics>,
    /// The public half of `audit.signing_key_file`, when checkpoints are signed.
    pub checkpoint_key: Option<ed25519_dalek::VerifyingKey>,
}

/// What every handle shares.
#[derive(Debug)]
pub struct Core {
    pub(super) grants: GrantService,
    pub(super) policy: AccessPolicy,
    pub(super) config: Arc<Config>,
    pub(super) identity_center: Arc<dyn IdentityCenter>,
    metrics: Arc<Metrics>,
    /// Other-paths answers, cached and rate-limited per person.
    pub(super) other_paths: super::other_paths::OtherPathsCache,
    /// The public half of `audit.signing_key_file`: grant pages and packs trust a
    /// stored checkpoint only when it verifies with it.
    pub(super) checkpoint_key: Option<ed25519_dalek::VerifyingKey>,
}

/// The factory of role-scoped handles. Cheap to clone; the web layer holds one.
#[derive(Debug, Clone)]
pub struct Access {
    pub(super) core: Arc<Core>,
}

/// A role-scoped handle: the operations it offers, and who may hold it.
pub trait Handle<'a>: Sized {
    /// A caller holds this handle when [`authorize_role`] allows them this operation (one
    /// that depends on roles alone).
    const HOLDERS: Operation;
    /// Every operation the handle offers (its own methods and its reader's). A
    /// handle is only handed out for one of these.
    const OPERATIONS: &'static [Operation];

    fn new(person: Person<'a>) -> Self;
}

/// The signed-in person a handle acts for.
#[derive(Debug, Clone, Copy)]
pub struct Person<'a> {
    pub(super) core: &'a Core,
    pub(super) caller: &'a Caller,
    pub(super) id: &'a PersonId,
}

impl Access {
    pub fn new(parts: AccessParts) -> Self {
        Self {
            core: Arc::new(Core {
                grants: parts.grants,
                policy: parts.policy,
                config: parts.config,
                identity_center: parts.identity_center,
                metrics: parts.metrics,
                other_paths: super::other_paths::OtherPathsCache::default(),
                checkpoint_key: parts.checkpoint_key,
            }),
        }
    }

    /// The handle `H` for `caller`, who wants to perform `op`. Refused (and logged)
    /// when `op` is not one of the handle's, when the caller's roles do not allow
    /// holding it, or when `op` concerns no grant and the caller may not perform it;
    /// operations on a grant are checked again, per grant, by the handle.
    pub fn handle<'a, H: Handle<'a>>(
        &'a self,
        caller: &'a Caller,
        op: Operation,
    ) -> Result<H, AccessError> {
        let core = &*self.core;
        let allowed = if H::OPERATIONS.contains(&op) {
            // Holding the handle is a matter of roles; an operation that needs a
            // recent MFA sign-in asks for it when it is taken.
            let holds = authorize_role(caller, H::HOLDERS, None);
            match (holds, authorize(&core.policy, caller, op, None)) {
                (Ok(()), Ok(())) => Ok(()),
                // Decided for each grant (own requests, MFA) by the handle.
                (Ok(()), Err(_)) if op.concerns_a_grant() => Ok(()),
                (_, Err(d)) | (Err(d), Ok(())) => Err(d),
            }
        } else {
            Err(Denied::Forbidden {
                why: format!("{op} is not offered to this role"),
            })
        };
        match (allowed, caller) {
            (Ok(()), Caller::Person { id, .. }) => Ok(H::new(Person { core, caller, id })),
            (Ok(()), Caller::Anonymous) => Err(core.deny(caller, op, None, Denied::SignInRequired)),
            (Err(d), _) => Err(core.deny(caller, op, None, d)),
        }
    }

    /// The reader's handle: what every role reads (own grants, or everybody's for
    /// approvers, auditors and admins).
    pub fn reader<'a>(
        &'a self,
        caller: &'a Caller,
        op: Operation,
    ) -> Result<super::Reader<'a>, AccessError> {
        self.handle(caller, op)
    }

    /// The configuration-dependent part of the rules.
    pub fn policy(&self) -> AccessPolicy {
        self.core.policy
    }

    /// Records that `person` signed in as `display_name`, for pages to show them by
    /// name. Best effort: a failure is logged, the sign-in goes on.
    pub async fn saw_person(&self, person: &app::domain::PersonId, display_name: &str) {
        let name = display_name.trim();
        if name.is_empty() || name == person.as_str() {
            return;
        }
        let name: String = name.chars().take(200).collect();
        if let Err(e) = self
            .core
            .store()
            .record_person(person.as_str(), &name, self.core.now())
            .await
        {
            tracing::warn!(error = %e, "could not record a person's display name");
        }
    }

    /// Changes to grants made in this process (the live event stream).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<super::grants::GrantChange> {
        self.core.grants.subscribe()
    }
}

impl Core {
    pub(super) fn store(&self) -> &Arc<dyn Store> {
        self.grants.store()
    }

    pub(super) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.grants.clock().now()
    }

    /// The configured access-portal session, in seconds.
    pub(super) fn portal_seconds(&self) -> i64 {
        self.config
            .identity_center
            .portal_session
            .as_duration()
            .num_seconds()
    }

    /// Refuses `op` (on `grant`, when it concerns one) for `caller`: the one place a
    /// denial is made, so each is logged and counted once.
    pub(super) fn deny(
        &self,
        caller: &Caller,
        op: Operation,
        grant: Option<GrantId>,
        denied: Denied,
    ) -> AccessError {
        self.record(caller, op, grant, denied.code(), &denied.to_string());
        AccessError::Denied(denied)
    }

    /// Refuses `action` on grant `id` for `caller` with the domain rule's reason.
    pub(super) fn refuse(
        &self,
        caller: &Caller,
        action: GrantAction,
        id: GrantId,
        refusal: ActionRefusal,
    ) -> AccessError {
        let op = action.operation();
        self.record(caller, op, Some(id), refusal.code(), &refusal.to_string());
        match refusal {
            ActionRefusal::Denied(d) => AccessError::Denied(d),
            ActionRefusal::Lifecycle(r) => AccessError::Grant(GrantError::Refused(r)),
            ActionRefusal::NoReviewOwed => AccessError::Grant(GrantError::NoReviewOwed(id)),
        }
    }

    fn record(
        &self,
        caller: &Caller,
        op: Operation,
        grant: Option<GrantId>,
        code: &'static str,
        why: &str,
    ) {
        let who = match caller {
            Caller::Person { id, .. } => id.as_str(),
            Caller::Anonymous => "anonymous",
        };
        let grant = grant.map(|g| g.to_string());
        if code == "sign_in_required" {
            // Anonymous visitors are refused all the time; not worth a warning.
            tracing::debug!(caller = who, operation = %op, grant = grant.as_deref(), reason = code, "refused: {why}");
        } else {
            tracing::warn!(caller = who, operation = %op, grant = grant.as_deref(), reason = code, "refused: {why}");
        }
        self.metrics
            .refusals
            .with_label_values(&[op.as_str(), code])
            .inc();
    }

    /// Grant `id`, or [`GrantError::NotFound`].
    pub(super) async fn grant(&self, id: GrantId) -> Result<Grant, AccessError> {
        Ok(self
            .store()
            .get_grant(id)
            .await?
            .ok_or(GrantError::NotFound(id))?)
    }
}

/// What the rule needs to know about a grant beside the grant itself.
#[derive(Debug, Clone, Default)]
pub struct GrantFacts {
    pub approvals: Vec<Approval>,
    decisions: Vec<DecisionSoFar>,
    named_by_policy: bool,
    approvers: Vec<String>,
}

impl GrantFacts {
    fn ctx<'a>(&'a self, policy: &'a AccessPolicy) -> ActionCtx<'a> {
        ActionCtx {
            policy,
            decisions: &self.decisions,
            named_by_policy: self.named_by_policy,
            approvers: &self.approvers,
        }
    }
}

impl<'a> Person<'a> {
    /// The grant's facts, with its approvals when `with_approvals` (a decision
    /// needs them; deciding whether a policy names the caller does not).
    pub(super) async fn facts(
        &self,
        grant: &Grant,
        with_approvals: bool,
    ) -> Result<GrantFacts, AccessError> {
        let approvals = if with_approvals {
            self.core.store().approvals(grant.id).await?
        } else {
            Vec::new()
        };
        Ok(self.facts_with(grant, approvals))
    }

    /// [`Self::facts`] with the grant's `approvals` already read (the inbox reads
    /// them for all its grants at once).
    pub(super) fn facts_with(&self, grant: &Grant, approvals: Vec<Approval>) -> GrantFacts {
        let policy = self.core.grants.policy();
        GrantFacts {
            decisions: approvals
                .iter()
                .filter_map(|a| {
                    Some(DecisionSoFar {
                        by: PersonId::parse(&a.approver).ok()?,
                        approved: a.decision == Decision::Approve,
                    })
                })
                .collect(),
            approvals,
            named_by_policy: policy.names_approver(
                grant.policy.as_deref(),
                self.id.as_str(),
                self.caller.groups(),
            ),
            approvers: grant
                .policy
                .as_deref()
                .and_then(|name| {
                    policy
                        .current()
                        .get(name)
                        .map(|p| p.approvers.iter().map(ToString::to_string).collect())
                })
                .unwrap_or_default(),
        }
    }

    /// What this person may do with `grant` now (the grant page's buttons).
    pub(super) fn actions(&self, grant: &Grant, facts: &GrantFacts) -> GrantActions {
        GrantActions::for_viewer(self.caller, grant, &facts.ctx(&self.core.policy))
    }

    /// The domain rule for `action` on `grant`; a refusal is logged and counted.
    pub(super) fn check(
        &self,
        grant: &Grant,
        facts: &GrantFacts,
        action: GrantAction,
    ) -> Result<(), AccessError> {
        actions::check(self.caller, grant, &facts.ctx(&self.core.policy), action)
            .map_err(|r| self.core.refuse(self.caller, action, grant.id, r))
    }

    /// Refuses `op` on someone else's grant for a handle that acts on the
    /// person's own grants only.
    pub(super) fn only_own(&self, op: Operation, grant: &Grant) -> Result<(), AccessError> {
        if grant.request.requester == *self.id {
            return Ok(());
        }
        let denied = authorize(
            &self.core.policy,
            self.caller,
            op,
            Some(&grant.request.requester),
        )
        .err()
        .unwrap_or_else(|| Denied::Forbidden {
            why: "this is someone else's grant".into(),
        });
        Err(self.core.deny(self.caller, op, Some(grant.id), denied))
    }

    /// Reads grant `id`, checks `action` against the rule (and, with `own_only`,
    /// that the grant is the person's), then takes its lifecycle step.
    pub(super) async fn act(
        &self,
        id: GrantId,
        action: GrantAction,
        own_only: bool,
        reason: Option<impl Into<String>>,
    ) -> Acted {
        let grant = self.core.grant(id).await?;
        if own_only {
            self.only_own(action.operation(), &grant)?;
        }
        let decision = matches!(action, GrantAction::Approve | GrantAction::Deny);
        let facts = self.facts(&grant, decision).await?;
        self.check(&grant, &facts, action)?;
        let Some(step) = action.lifecycle() else {
            return Err(Denied::Forbidden {
                why: format!("{action} does not move a grant"),
            }
            .into());
        };
        let actor = Actor::Person {
            id: self.id.clone(),
            roles: self.caller.roles(),
        };
        Ok(self
            .core
            .grants
            .act(
                id,
                step,
                &actor,
                reason.map(Into::into),
                GrantPatch::default(),
                serde_json::json!({}),
            )
            .await?)
    }

    /// Records the review of break-glass grant `id` (approvers the policy names,
    /// auditors, admins; never its requester).
    pub(super) async fn review(
        &self,
        id: GrantId,
        comment: Option<app::domain::ReviewComment>,
    ) -> Result<Grant, AccessError> {
        let grant = self.core.grant(id).await?;
        let facts = self.facts(&grant, false).await?;
        self.check(&grant, &facts, GrantAction::Review)?;
        Ok(self
            .core
            .grants
            .review(id, self.id, comment.map(String::from))
            .await?)
    }

    /// Refuses `op` unless the person's roles allow it (for operations that concern
    /// no grant; a handle's getter checked it already, this keeps each method honest
    /// on its own).
    pub(super) fn allow(&self, op: Operation) -> Result<(), AccessError> {
        authorize(&self.core.policy, self.caller, op, None)
            .map_err(|d| self.core.deny(self.caller, op, None, d))
    }
}
