//! Extensions as one access: a grant and the grants that extend it (directly or
//! through another extension) form a chain the pages show as one continuous access,
//! and that ends as one. "I'm done" or an early revocation of any of its grants ends
//! every active grant of the chain and withdraws the requester's requests still
//! waiting in it; an extension approved after the access ended is a new grant (the
//! reaper counts its time from its own activation).

use super::access::{Acted, Person};
use crate::store::{GrantPatch, Store, StoreError};
use app::domain::{Action, Actor, Grant, GrantId, GrantState, RevokeCause};
use std::collections::{BTreeMap, VecDeque};

/// A chain holds at most this many grants (an extension of an extension …): a bound
/// on what one read walks, far above what a person asks for.
const CHAIN_LIMIT: usize = 100;

/// Every grant linked to `grant` through `extends`, `grant` included, oldest first.
pub async fn chain(store: &dyn Store, grant: &Grant) -> Result<Vec<Grant>, StoreError> {
    let mut root = grant.clone();
    for _ in 0..CHAIN_LIMIT {
        let Some(up) = root.request.extends else {
            break;
        };
        match store.get_grant(up).await? {
            Some(g) => root = g,
            None => break,
        }
    }
    let mut seen: BTreeMap<GrantId, Grant> = BTreeMap::new();
    let mut todo = VecDeque::from([root]);
    while let Some(g) = todo.pop_front() {
        if seen.len() >= CHAIN_LIMIT || seen.contains_key(&g.id) {
            continue;
        }
        for next in store.extensions_of(g.id).await? {
            todo.push_back(next);
        }
        seen.insert(g.id, g);
    }
    let mut out: Vec<Grant> = seen.into_values().collect();
    out.sort_by_key(|g| (g.created_at, g.id));
    Ok(out)
}

impl Person<'_> {
    /// Ends grant `id` now (checked as [`Person::act`] checks it), then the rest of its
    /// chain: its other active grants end early too, and the requester's own
    /// requests still pending or approved in it are withdrawn (an admin's too), so
    /// the access ends as one. Each step is its own audited lifecycle step.
    pub(super) async fn end_access(
        &self,
        id: GrantId,
        own_only: bool,
        reason: Option<String>,
    ) -> Acted {
        let applied = self
            .act(
                id,
                app::domain::GrantAction::EndEarly,
                own_only,
                reason.clone(),
            )
            .await?;
        let store = self.core.store();
        let others = chain(store.as_ref(), &applied.grant).await?;
        let actor = Actor::Person {
            id: self.id.clone(),
            roles: self.caller.roles(),
        };
        let withdraws = self.id == &applied.grant.request.requester
            || self.caller.roles().contains(app::domain::Role::Admin);
        for g in others.into_iter().filter(|g| g.id != id) {
            let step = match g.state {
                GrantState::Active => Action::Revoke(RevokeCause::Early),
                GrantState::Pending | GrantState::Approved if withdraws => Action::Cancel,
                _ => continue,
            };
            let result = self
                .core
                .grants
                .act(
                    g.id,
                    step,
                    &actor,
                    reason.clone(),
                    GrantPatch::default(),
                    serde_json::json!({ "with": id, "why": "the access it is part of ended" }),
                )
                .await;
            if let Err(e) = result {
                // Raced by the reaper or another person: the grant moved on its own.
                tracing::info!(grant = %g.id, error = %e, "a linked grant could not be ended with its chain");
            }
        }
        Ok(applied)
    }
}
