//! The reader's handle: what every role reads. A grant (its page, its evidence and
//! its evidence pack) when [`authorize`] lets the person read it (their own, or
//! anyone's for approvers, auditors and admins); their own grants; the grants active
//! now; and, for approvers, auditors and admins, everybody's grants (the history).

use super::access::{AccessError, Handle, Person, LIST_LIMIT};
use super::evidence::{self, Evidence, PackSource};
use super::history;
use crate::store::{ActivityCursor, GrantFilter};
use app::api::{ActiveItem, GrantDetail, HistoryPage, HistoryQuery};
use app::domain::{authorize, ActivityEvent, Caller, Grant, GrantId, Operation};

/// Reads grants for a signed-in person with any role.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    pub(super) p: Person<'a>,
}

impl<'a> Handle<'a> for Reader<'a> {
    const HOLDERS: Operation = Operation::ListOwnGrants;
    const OPERATIONS: &'static [Operation] = &[
        Operation::ReadGrant,
        Operation::ListOwnGrants,
        Operation::ListActiveGrants,
        Operation::ListAllGrants,
    ];

    fn new(p: Person<'a>) -> Self {
        Self { p }
    }
}

impl Reader<'_> {
    /// Grant `id`, if the person may read it (401, 403, 404 as usual).
    pub async fn read(&self, id: GrantId) -> Result<Grant, AccessError> {
        let p = &self.p;
        let grant = p.core.grant(id).await?;
        authorize(
            &p.core.policy,
            p.caller,
            Operation::ReadGrant,
            Some(&grant.request.requester),
        )
        .map_err(|d| p.core.deny(p.caller, Operation::ReadGrant, Some(id), d))?;
        Ok(grant)
    }

    /// The grant page: the grant with its approvals, audit trail and chain check,
    /// windows, evidence, and what this person may do with it now.
    pub async fn detail(&self, id: GrantId) -> Result<GrantDetail, AccessError> {
        let grant = self.read(id).await?;
        super::detail::detail(&self.p, grant).await
    }

    /// What grant `id`'s activity says and its investigation, once collected.
    pub async fn evidence(&self, id: GrantId) -> Result<Evidence, AccessError> {
        self.read(id).await?;
        evidence::of_grant(self.p.core, id).await
    }

    /// A page of grant `id`'s events in time order, after `after`.
    pub async fn evidence_events(
        &self,
        id: GrantId,
        after: Option<ActivityCursor>,
        limit: u32,
    ) -> Result<Vec<ActivityEvent>, AccessError> {
        self.read(id).await?;
        evidence::events(self.p.core, id, after, limit).await
    }

    /// What grant `id`'s evidence pack is made from, for this person.
    pub async fn evidence_pack(&self, id: GrantId) -> Result<PackSource, AccessError> {
        let grant = self.read(id).await?;
        let generated_for = match self.p.caller {
            Caller::Person { id, name, .. } => format!("{name} ({id})"),
            Caller::Anonymous => "anonymous".to_owned(),
        };
        Ok(PackSource::new(self.p.core, grant, generated_for))
    }

    /// The person's own grants, newest first.
    pub async fn my_grants(&self) -> Result<Vec<Grant>, AccessError> {
        self.p.allow(Operation::ListOwnGrants)?;
        let filter = GrantFilter {
            requester: Some(self.p.id.to_string()),
            ..GrantFilter::default()
        };
        Ok(self
            .p
            .core
            .store()
            .list_grants(&filter, None, LIST_LIMIT)
            .await?)
    }

    /// Grants active now, then revoked grants whose sessions may still be alive.
    pub async fn active_now(&self) -> Result<Vec<ActiveItem>, AccessError> {
        self.p.allow(Operation::ListActiveGrants)?;
        super::status::active_now(self.p.core).await
    }

    /// Everybody's grants, filtered, one page (approvers, auditors, admins).
    pub async fn history(&self, query: HistoryQuery) -> Result<HistoryPage, AccessError> {
        self.p.allow(Operation::ListAllGrants)?;
        history::page(self.p.core, query).await
    }
}
