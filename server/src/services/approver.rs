//! The approver's handle: the inbox of requests to decide, approving and denying
//! them (never one's own, only where the deciding policy names one), ending someone
//! else's grant early, and reviewing break-glass use the policy names one for. What
//! every role reads, and everybody's grants, through its [`reader`](Approver::reader).

use super::access::{role_handle, AccessError, Acted, Answer};
use super::inbox;
use app::api::InboxItem;
use app::domain::{Comment, Grant, GrantAction, GrantId, Operation, Reason, ReviewComment};

role_handle!(
    /// Acts for a person who decides requests (approvers and admins).
    Approver,
    approver,
    holders: DenyGrant,
    offers: &[
        Operation::ApproveGrant,
        Operation::DenyGrant,
        Operation::RevokeGrantEarly,
        Operation::ReviewGrant,
        Operation::ReadInbox,
        Operation::ReadGrant,
        Operation::ListOwnGrants,
        Operation::ListAllGrants,
        Operation::ListActiveGrants,
    ]
);

impl Approver<'_> {
    /// Approves someone else's pending request (an MFA sign-in when configured).
    pub async fn approve(&self, id: GrantId, comment: Option<Comment>) -> Acted {
        self.p.act(id, GrantAction::Approve, false, comment).await
    }

    /// Denies someone else's pending request.
    pub async fn deny(&self, id: GrantId, comment: Option<Comment>) -> Acted {
        self.p.act(id, GrantAction::Deny, false, comment).await
    }

    /// The pending requests the person may decide now, oldest first.
    pub async fn inbox(&self) -> Result<Vec<Grant>, AccessError> {
        self.p.allow(Operation::ReadInbox)?;
        Ok(inbox::to_decide(&self.p)
            .await?
            .into_iter()
            .map(|(g, _)| g)
            .collect())
    }

    /// The inbox with what deciding needs (approvals so far, recent use, sessions).
    pub async fn inbox_items(&self) -> Result<Vec<InboxItem>, AccessError> {
        self.p.allow(Operation::ReadInbox)?;
        inbox::items(&self.p).await
    }

    /// Ends an active grant now (someone else's, or one's own), with the rest of the
    /// access it is part of (its extensions, or the grant it extends).
    pub async fn revoke(&self, id: GrantId, reason: Option<Reason>) -> Acted {
        self.p.end_access(id, false, reason.map(String::from)).await
    }

    /// Records the review of a break-glass grant whose policy names the person.
    pub async fn review(&self, id: GrantId, comment: Option<ReviewComment>) -> Answer<Grant> {
        self.p.review(id, comment).await
    }
}
