//! The requester's handle: ask for access (as the policy allows, or break-glass),
//! see what one may ask for and the other paths one already has, and act on one's
//! own grants only: withdraw a request, end an active grant ("I'm done"), ask to
//! extend it. What every role reads is its [`reader`](Requester::reader).

use super::access::{role_handle, AccessError, Acted};
use super::catalog;
use app::api::{OtherPath, RequestForm, RequestOptions};
use app::domain::{Denied, Grant, GrantAction, GrantId, GrantRequest, Operation, Reason};

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
        catalog::other_paths(&self.p, account_id, permission_set).await
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
    /// it (see [`super::GrantService::request`]).
    pub async fn ask(&self, request: GrantRequest) -> Result<Grant, AccessError> {
        self.own_request(&request)?;
        Ok(self
            .p
            .core
            .grants
            .request(request, self.p.caller.groups())
            .await?)
    }

    /// Asks for break-glass access (see [`super::GrantService::submit`]).
    pub async fn ask_break_glass(&self, request: GrantRequest) -> Result<Grant, AccessError> {
        self.own_request(&request)?;
        Ok(self
            .p
            .core
            .grants
            .submit(request, self.p.caller.groups(), true)
            .await?)
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

    /// Ends one of the person's active grants now ("I'm done").
    pub async fn finish(&self, id: GrantId, reason: Option<Reason>) -> Acted {
        self.p.act(id, GrantAction::EndEarly, true, reason).await
    }

    /// Asks for more time on one of the person's approved or active grants: a new
    /// request for the same account and permission set that starts now and
    /// overlaps, decided like any request; the running grant is never cut short.
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
        self.request(RequestForm {
            account_id: grant.request.account_id.to_string(),
            permission_set: grant.request.permission_set.to_string(),
            duration,
            start_at: String::new(),
            justification,
            ticket,
            break_glass: false,
        })
        .await
    }
}
