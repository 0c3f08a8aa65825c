//! The requester's handle: ask for access (as the policy allows, or break-glass),
//! see what one may ask for and the other paths one already has, and act on one's
//! own grants only: withdraw a request, end an active grant ("I'm done"), ask to
//! extend it. What every role reads is its [`reader`](Requester::reader).

use super::access::{role_handle, AccessError, Acted};
use super::catalog;
use super::grants::FoundAtRequest;
use app::api::{OtherPath, RequestForm, RequestOptions};
use app::domain::{
    Denied, Grant, GrantAction, GrantId, GrantRequest, IdentityUser, Operation, Reason,
};

/// How long a request waits for its other paths before it is recorded without them.
const PATHS_AT_REQUEST_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

role_handle!(
    /// Acts for a person who may ask for access (requesters and admins).
    Requester,
    requester,
    holders: RequestGrant,
    offers: &[
        Operation::RequestGrant,
        Operation::CancelGrant,
        Operation::RevokeGrantEarly,
        Operation::ReadGrant,
        Operation::ListOwnGrants,
        Operation::ListActiveGrants,
    ]
);

impl Requester<'_> {
    /// Accounts, permission sets and what the policy lets the person ask for.
    pub async fn request_options(&self) -> Result<RequestOptions, AccessError> {
        self.p.allow(Operation::RequestGrant)?;
        catalog::request_options(&self.p).await
    }

    /// Other ways the person already reaches this access, asked of Identity Center.
    pub async fn other_paths(
        &self,
        account_id: &str,
        permission_set: &str,
    ) -> Result<Vec<OtherPath>, AccessError> {
        self.p.allow(Operation::RequestGrant)?;
        catalog::other_paths(&self.p, account_id, permission_set, None).await
    }

    /// Asks for what the form says (break-glass when it says so), checked against
    /// the synced catalog and the offer that allows it.
    pub async fn request(&self, form: RequestForm) -> Result<Grant, AccessError> {
        self.p.allow(Operation::RequestGrant)?;
        let request = catalog::parse_form(&self.p, &form).await?;
        if form.break_glass {
            self.ask_break_glass(request).await
        } else {
            self.ask(request).await
        }
    }

    /// Asks for an already parsed request of the person's own, as the policy decides
    /// it (see [`super::GrantService::request`]), with the other paths to the same
    /// access looked up now for the approvers.
    pub async fn ask(&self, request: GrantRequest) -> Result<Grant, AccessError> {
        self.submit(request, false).await
    }

    /// Asks for break-glass access (see [`super::GrantService::submit`]). Where
    /// approving needs MFA, so does break-glass (it approves itself): a recent MFA
    /// sign-in, else a step-up.
    pub async fn ask_break_glass(&self, request: GrantRequest) -> Result<Grant, AccessError> {
        let mfa = matches!(self.p.caller, app::domain::Caller::Person { mfa: true, .. });
        if self.p.core.policy.approvers_need_mfa && !mfa {
            return Err(self.p.core.deny(
                self.p.caller,
                Operation::RequestGrant,
                None,
                Denied::MfaRequired,
            ));
        }
        self.submit(request, true).await
    }

    async fn submit(&self, request: GrantRequest, break_glass: bool) -> Result<Grant, AccessError> {
        self.own_request(&request)?;
        // A person who maps to no Identity Center user is told now, and nothing is
        // stored; an Identity Center that cannot be asked does not stop a request
        // (the reaper resolves the user at provisioning).
        let identity = match catalog::identity_of(&self.p).await {
            Ok(u) => Some(u),
            Err(AccessError::Unavailable(_)) => None,
            Err(e) => return Err(e),
        };
        let paths = match &identity {
            Some(user) => self.paths_now(&request, user).await,
            // Identity Center could not be asked for the user: nor for the paths.
            None => None,
        };
        let found = FoundAtRequest { identity, paths };
        Ok(self
            .p
            .core
            .grants
            .submit_with(request, self.p.caller.groups(), break_glass, found)
            .await?)
    }

    /// The other paths to the requested access, or `None` when they could not be
    /// looked up now (Identity Center unavailable, the person's lookups spent): the
    /// request is never refused for that, and the approvers are told it is unknown.
    async fn paths_now(
        &self,
        request: &GrantRequest,
        user: &IdentityUser,
    ) -> Option<Vec<OtherPath>> {
        let lookup = catalog::other_paths(
            &self.p,
            request.account_id.as_str(),
            request.permission_set.as_str(),
            Some(user),
        );
        match tokio::time::timeout(PATHS_AT_REQUEST_WAIT, lookup).await {
            Ok(Ok(paths)) => Some(paths),
            Ok(Err(e)) => {
                tracing::info!(error = %e, "other paths not known at request time");
                None
            }
            Err(_) => {
                tracing::info!("other paths not known at request time: Identity Center is slow");
                None
            }
        }
    }

    fn own_request(&self, request: &GrantRequest) -> Result<(), AccessError> {
        self.p.allow(Operation::RequestGrant)?;
        if request.requester == *self.p.id {
            return Ok(());
        }
        let why = "you can only ask for access for yourself".to_owned();
        Err(self.p.core.deny(
            self.p.caller,
            Operation::RequestGrant,
            None,
            Denied::Forbidden { why },
        ))
    }

    /// Withdraws one of the person's requests before it starts.
    pub async fn cancel(&self, id: GrantId, reason: Option<Reason>) -> Acted {
        self.p.act(id, GrantAction::Cancel, true, reason).await
    }

    /// Ends one of the person's active grants now ("I'm done"), with the rest of the
    /// access it is part of (its extensions, or the grant it extends).
    pub async fn finish(&self, id: GrantId, reason: Option<Reason>) -> Acted {
        self.p.end_access(id, true, reason.map(String::from)).await
    }

    /// Asks for more time on one of the person's approved or active grants: a new
    /// request for the same account and permission set that records which grant it
    /// extends, decided like any request. Once approved, the reaper gives it the end
    /// of the access it extends plus `duration` (never earlier); approved after that
    /// access ended, it is a new grant from its own activation. The running grant is
    /// never cut short.
    pub async fn extend(
        &self,
        id: GrantId,
        duration: String,
        justification: String,
        ticket: String,
    ) -> Result<Grant, AccessError> {
        let grant = self.reader().read(id).await?;
        let facts = self.p.facts(&grant, false).await?;
        self.p.check(&grant, &facts, GrantAction::Extend)?;
        let form = RequestForm {
            account_id: grant.request.account_id.to_string(),
            permission_set: grant.request.permission_set.to_string(),
            duration,
            start_at: String::new(),
            justification,
            ticket,
            break_glass: false,
        };
        self.p.allow(Operation::RequestGrant)?;
        let mut request = catalog::parse_form(&self.p, &form).await?;
        request.extends = Some(grant.id);
        self.ask(request).await
    }
}
