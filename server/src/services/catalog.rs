//! What a requester may ask for and how a request form becomes a request: the synced
//! catalog (read once per call), the policy's offers over it, the request form's
//! options, the form checked against the catalog and the offer that allows it, and
//! the other paths by which the person already reaches an access (asked of Identity
//! Center, cached for a minute and rate-limited per person).

use super::access::{Access, AccessError, Core, Person};
use crate::identity_center::{IdentityError, IdentityUser, UserKey};
use crate::policy::Catalog as PolicyCatalog;
use crate::store::{CatalogNode, CatalogPermissionSet, GrantFilter, NodeKind};
use app::api::{
    AccountChoice, CatalogStatus, Offer, OtherPath, PermissionSetChoice, RequestForm,
    RequestOptions,
};
use app::domain::{
    AccountId, ApprovalRule, FieldError, GrantRequest, GrantState, PermissionSetName, PersonId,
};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// The synced catalog as one call read it, shared by what the call derives from it
/// (choices, the policy's view, the admin's counts).
pub(super) struct CatalogSnapshot {
    nodes: Vec<CatalogNode>,
    permission_sets: Vec<CatalogPermissionSet>,
    synced_at: Option<DateTime<Utc>>,
}

impl CatalogSnapshot {
    pub(super) async fn read(core: &Core) -> Result<Self, AccessError> {
        let store = core.store();
        Ok(Self {
            nodes: store.catalog_nodes().await?,
            permission_sets: store.catalog_permission_sets().await?,
            synced_at: store.catalog_synced_at().await?,
        })
    }

    /// Accounts for the request form, by name.
    fn account_choices(&self) -> Vec<AccountChoice> {
        let mut accounts = account_choices(&self.nodes);
        accounts.sort_by_key(|a| a.name.to_lowercase());
        accounts
    }

    /// Permission sets for the request form, by name.
    fn permission_set_choices(&self) -> Vec<PermissionSetChoice> {
        let mut sets: Vec<PermissionSetChoice> = self
            .permission_sets
            .iter()
            .map(|p| PermissionSetChoice {
                name: p.name.clone(),
                description: p.description.clone(),
                session_seconds: p.session_duration_seconds,
            })
            .collect();
        sets.sort_by(|a, b| a.name.cmp(&b.name));
        sets
    }

    pub(super) fn status(&self) -> CatalogStatus {
        CatalogStatus {
            synced_at: self.synced_at,
            accounts: self
                .nodes
                .iter()
                .filter(|n| n.kind == NodeKind::Account)
                .count() as u32,
            permission_sets: self.permission_sets.len() as u32,
        }
    }

    /// What `p` may ask for: the policy's entitlements over this catalog.
    fn offers(&self, p: &Person<'_>) -> Vec<Offer> {
        let policy_catalog = PolicyCatalog::new(
            self.nodes.clone(),
            self.permission_sets
                .iter()
                .map(|p| p.name.clone())
                .collect(),
            self.synced_at.is_some(),
        );
        p.core
            .grants
            .policy()
            .entitlements_for(p.caller, &policy_catalog)
            .into_iter()
            .map(|e| {
                let (approvals_required, approvers) = match e.approval {
                    ApprovalRule::Auto => (0, Vec::new()),
                    ApprovalRule::Required { count, approvers } => (count, approvers),
                };
                Offer {
                    account_id: e.account_id,
                    account_name: e.account_name,
                    permission_set: e.permission_set,
                    policy: e.policy,
                    max_duration_minutes: e.max_duration_minutes,
                    approvals_required,
                    approvers,
                    ticket_required: e.ticket.required,
                    ticket_pattern: e.ticket.pattern,
                    min_justification: e.min_justification,
                    break_glass: e.break_glass,
                }
            })
            .collect()
    }
}

/// Everything the request form needs.
pub(super) async fn request_options(p: &Person<'_>) -> Result<RequestOptions, AccessError> {
    let catalog = CatalogSnapshot::read(p.core).await?;
    Ok(RequestOptions {
        offers: catalog.offers(p),
        accounts: catalog.account_choices(),
        permission_sets: catalog.permission_set_choices(),
        portal_session_seconds: p.core.portal_seconds(),
        catalog_synced_at: catalog.synced_at,
        management_account: p.core.store().management_account().await?,
    })
}

/// The form checked against the synced catalog and parsed with the limits of the
/// offer that allows it, as a request of `p`'s. Without a matching offer the form's
/// own rules still apply, and the policy then says precisely why it refuses.
pub(super) async fn parse_form(
    p: &Person<'_>,
    form: &RequestForm,
) -> Result<GrantRequest, AccessError> {
    let catalog = CatalogSnapshot::read(p.core).await?;
    let account_id = AccountId::parse(&form.account_id)?;
    let ps = PermissionSetName::parse(&form.permission_set)?;
    if !catalog
        .nodes
        .iter()
        .any(|n| n.kind == NodeKind::Account && n.id == account_id.as_str())
    {
        return Err(FieldError::new(
            "account_id",
            "is not an account of the organisation (as last synced)",
        )
        .into());
    }
    if !catalog
        .permission_sets
        .iter()
        .any(|s| s.name == ps.as_str())
    {
        return Err(FieldError::new(
            "permission_set",
            "is not a permission set of the Identity Center instance (as last synced)",
        )
        .into());
    }
    let offers = catalog.offers(p);
    let offer = offers.iter().find(|o| {
        o.account_id == account_id.as_str()
            && o.permission_set == ps.as_str()
            && o.break_glass == form.break_glass
    });
    Ok(form.parse(p.id, offer, p.core.now())?)
}

/// Other ways `p` already reaches `permission_set` in `account_id`, cached for
/// [`super::other_paths::OTHER_PATHS_TTL`]; a person causes at most
/// [`super::other_paths::OTHER_PATHS_PER_MINUTE`] Identity Center lookups a minute.
///
/// `user` is the person's Identity Center user when the caller has already looked it
/// up (a request being sent), so it is not asked twice.
pub(super) async fn other_paths(
    p: &Person<'_>,
    account_id: &str,
    permission_set: &str,
    user: Option<&IdentityUser>,
) -> Result<Vec<OtherPath>, AccessError> {
    let account = AccountId::parse(account_id)?;
    let ps = PermissionSetName::parse(permission_set)?;
    let key = (p.id.to_string(), account.to_string(), ps.to_string());
    let cache = &p.core.other_paths;
    if let Some(paths) = cache.cached(&key) {
        return Ok(paths);
    }
    cache.count(p.id.as_str()).map_err(|wait| {
        AccessError::TooMany(format!(
            "other paths were looked up too often; try again in {wait} seconds"
        ))
    })?;
    let paths = look_up_other_paths(p, &account, &ps, user).await?;
    cache.keep(key, &paths);
    Ok(paths)
}

/// Other ways `p` already reaches `ps` in `account`, asked of Identity Center: group
/// assignments, and a standing direct one (not one of their own running grants).
async fn look_up_other_paths(
    p: &Person<'_>,
    account: &AccountId,
    ps: &PermissionSetName,
    user: Option<&IdentityUser>,
) -> Result<Vec<OtherPath>, AccessError> {
    let store = p.core.store();
    let Some(arn) = store
        .catalog_permission_sets()
        .await?
        .into_iter()
        .find(|s| s.name == ps.as_str())
        .map(|s| s.arn)
    else {
        return Err(FieldError::new("permission_set", "is not in the synced catalog").into());
    };
    let ic = &p.core.identity_center;
    let unavailable =
        || AccessError::Unavailable("Identity Center could not be asked; try again".to_owned());
    let user_id = match user {
        Some(u) => u.user_id.clone(),
        None => match identity_of(p).await {
            Ok(u) => u.user_id,
            // Nobody in the identity store: no other path either.
            Err(AccessError::UnknownIdentity(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        },
    };
    let aws = |e: crate::identity_center::IcError| {
        tracing::warn!(error = %e, "an Identity Center call failed while serving a request");
        unavailable()
    };
    let groups = ic.user_groups(&user_id).await.map_err(aws)?;
    let assignments = ic
        .list_assignments(account.as_str(), &arn)
        .await
        .map_err(aws)?;
    // A direct assignment that one of the person's own running grants made is not
    // another path.
    let own_running = store
        .list_grants(
            &GrantFilter {
                requester: Some(p.id.to_string()),
                account_id: Some(account.to_string()),
                permission_set: Some(ps.to_string()),
                states: vec![
                    GrantState::Provisioning,
                    GrantState::Active,
                    GrantState::Revoking,
                ],
                ..GrantFilter::default()
            },
            None,
            1,
        )
        .await?;
    Ok(crate::identity_center::other_paths(
        ic.as_ref(),
        &assignments,
        &groups,
        &user_id,
        p.id.as_str(),
        own_running.is_empty(),
    )
    .await)
}

/// The Identity Center user `p` maps to (`oidc.person_claim` gives the person id,
/// `identity_center.user_match` says which attribute of the identity store holds it).
/// A person who maps to nobody, or to several users, is told which id and which
/// settings; an Identity Center that cannot be asked is [`AccessError::Unavailable`].
pub(super) async fn identity_of(p: &Person<'_>) -> Result<IdentityUser, AccessError> {
    let config = &p.core.config;
    let key = UserKey::from_config(&config.identity_center);
    match p.core.identity_center.find_user(&key, p.id.as_str()).await {
        Ok(u) => Ok(u),
        Err(e @ (IdentityError::NoMatch { .. } | IdentityError::Ambiguous { .. })) => {
            tracing::warn!(person = %p.id, error = %e, "a person maps to no single Identity Center user");
            Err(AccessError::UnknownIdentity(format!(
                "{}; nothing was stored",
                unmapped(p.core, p.id, &e)
            )))
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot map a person to Identity Center");
            Err(AccessError::Unavailable(
                "Identity Center could not be asked; try again".to_owned(),
            ))
        }
    }
}

/// What a person who maps to no single Identity Store user (`e`) is told: who they are
/// signed in as, by which claim, and what an administrator must set.
fn unmapped(core: &Core, person: &PersonId, e: &IdentityError) -> String {
    let config = &core.config;
    let claim = config
        .oidc
        .as_ref()
        .map_or("sub", |o| o.person_claim.as_str());
    format!(
        "you are signed in as {:?} (the sign-in claim {claim:?}), and {e}. An \
         administrator must make oidc.person_claim and identity_center.user_match \
         (now {:?}) name the same attribute, or add you to IAM Identity Center",
        person.as_str(),
        UserKey::from_config(&config.identity_center).as_str(),
    )
}

impl Access {
    /// What a person who has just signed in must be told about their identity: that
    /// they map to no single Identity Store user, so they cannot ask for access (they
    /// still decide and audit as their roles allow). Identity Center is asked only
    /// once it has answered Timebox (the catalog has been synced), and for at most two
    /// seconds: a sign-in is never held up by it, and a request says the same when it
    /// is sent.
    pub async fn sign_in_notice(&self, person: &PersonId) -> Option<String> {
        let core = &*self.core;
        if !matches!(core.store().catalog_synced_at().await, Ok(Some(_))) {
            return None;
        }
        let key = UserKey::from_config(&core.config.identity_center);
        let asked = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            core.identity_center.find_user(&key, person.as_str()),
        )
        .await;
        match asked {
            Ok(Err(e @ (IdentityError::NoMatch { .. } | IdentityError::Ambiguous { .. }))) => {
                tracing::warn!(%person, error = %e, "a person who signed in maps to no single Identity Center user");
                Some(unmapped(core, person, &e))
            }
            Ok(Ok(_)) | Ok(Err(_)) | Err(_) => None,
        }
    }
}

/// The accounts' display names by id, as synced.
pub(super) async fn account_names(core: &Core) -> Result<HashMap<String, String>, AccessError> {
    Ok(core
        .store()
        .catalog_nodes()
        .await?
        .into_iter()
        .filter(|n| n.kind == app::domain::NodeKind::Account)
        .map(|n| (n.id, n.name))
        .collect())
}

/// The permission sets' sessions (seconds) by name, as synced.
pub(super) async fn sessions(core: &Core) -> Result<HashMap<String, i64>, AccessError> {
    Ok(core
        .store()
        .catalog_permission_sets()
        .await?
        .into_iter()
        .map(|p| (p.name, p.session_duration_seconds))
        .collect())
}

/// Accounts with their place in the organisation (`Root / Workloads / Prod`).
fn account_choices(nodes: &[CatalogNode]) -> Vec<AccountChoice> {
    let by_id: HashMap<&str, &CatalogNode> = nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Account)
        .map(|n| {
            let mut path = Vec::new();
            let mut parent = n.parent_id.as_deref();
            // Bounded: a malformed tree with a cycle cannot loop forever.
            for _ in 0..32 {
                let Some(p) = parent.and_then(|id| by_id.get(id)) else {
                    break;
                };
                path.push(p.name.clone());
                parent = p.parent_id.as_deref();
            }
            path.reverse();
            AccountChoice {
                id: n.id.clone(),
                name: n.name.clone(),
                path: path.join(" / "),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_carry_their_path() {
        let node = |id: &str, kind, name: &str, parent: Option<&str>| CatalogNode {
            id: id.into(),
            kind,
            name: name.into(),
            parent_id: parent.map(Into::into),
        };
        let nodes = vec![
            node("r-1", NodeKind::Root, "Root", None),
            node("ou-1", NodeKind::Ou, "Workloads", Some("r-1")),
            node("ou-2", NodeKind::Ou, "Prod", Some("ou-1")),
            node("111122223333", NodeKind::Account, "payments", Some("ou-2")),
        ];
        let a = account_choices(&nodes);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].path, "Root / Workloads / Prod");
    }
}
