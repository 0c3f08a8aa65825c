//! Who is told: the people of an event's audience and their email addresses.
//!
//! People are [`PersonId`]s (the OIDC subject / username). [`DirectoryRecipients`]
//! finds addresses in the IAM Identity Center identity store:
//! - a person: the identity-store user matched the way the reaper matches requesters
//!   (`identity_center.user_match`), its primary email first; when matching is by email
//!   the person id is the address;
//! - approvers and auditors: the members of the identity-store groups whose display
//!   names are `oidc.approver_groups` / `oidc.auditor_groups` (the same groups that
//!   give the roles at sign-in, as when the IdP provisions Identity Center by SCIM),
//!   plus the configured `notify.email.approvers_to` / `auditors_to` addresses, which
//!   are always told.
//!
//! A requester is never among the approvers of their own request. The policy work
//! replaces "approvers of a grant" with the approvers its policy names, through the
//! [`Recipients`] trait.

use super::Audience;
use crate::identity_center::{IcError, IcErrorKind, IdentityCenter, IdentityError, UserKey};
use app::domain::{Grant, PersonId};
use async_trait::async_trait;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Someone to email.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Recipient {
    /// The person, when known (configured addresses have none).
    pub person: Option<String>,
    pub email: String,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum RecipientError {
    /// The directory could not be asked; the fan-out is tried again later.
    #[error("recipients could not be looked up: {0}")]
    Directory(#[from] IcError),
}

/// Where the addresses of an event's audience come from.
#[async_trait]
pub trait Recipients: Send + Sync + std::fmt::Debug + 'static {
    /// Those who may decide `grant`: never its requester.
    async fn approvers_of(&self, grant: &Grant) -> Result<Vec<Recipient>, RecipientError>;
    /// Every approver (break-glass).
    async fn all_approvers(&self) -> Result<Vec<Recipient>, RecipientError>;
    async fn auditors(&self) -> Result<Vec<Recipient>, RecipientError>;
    /// The members of the admin groups (drift findings). Empty by default: Slack and
    /// the webhook, which are channel-wide, still carry the event.
    async fn admins(&self) -> Result<Vec<Recipient>, RecipientError> {
        Ok(Vec::new())
    }
    /// One person's addresses (empty when none is known).
    async fn person(&self, who: &PersonId) -> Result<Vec<Recipient>, RecipientError>;
}

/// Resolves `audience` for an event about `grant`, without duplicates.
pub async fn resolve(
    recipients: &dyn Recipients,
    audience: &[Audience],
    grant: Option<&Grant>,
) -> Result<Vec<Recipient>, RecipientError> {
    let mut out: BTreeSet<Recipient> = BTreeSet::new();
    for a in audience {
        let found = match (a, grant) {
            (Audience::Requester, Some(g)) => recipients.person(&g.request.requester).await?,
            (Audience::ApproversOfGrant, Some(g)) => recipients.approvers_of(g).await?,
            (Audience::ApproversOfGrant | Audience::AllApprovers, None)
            | (Audience::AllApprovers, Some(_)) => recipients.all_approvers().await?,
            (Audience::Auditors, _) => recipients.auditors().await?,
            (Audience::Admins, _) => recipients.admins().await?,
            (Audience::Requester, None) => Vec::new(),
        };
        out.extend(found);
    }
    // One delivery per address, whoever it was found through.
    let mut seen = BTreeSet::new();
    Ok(out
        .into_iter()
        .filter(|r| seen.insert(r.email.to_ascii_lowercase()))
        .collect())
}

/// Recipients from configuration and the identity store.
#[derive(Debug, Clone)]
pub struct DirectoryRecipients {
    ic: Arc<dyn IdentityCenter>,
    user_match: UserKey,
    approver_groups: Vec<String>,
    auditor_groups: Vec<String>,
    approvers_to: Vec<String>,
    auditors_to: Vec<String>,
    admin_groups: Vec<String>,
}

impl DirectoryRecipients {
    pub fn new(
        ic: Arc<dyn IdentityCenter>,
        user_match: UserKey,
        approver_groups: Vec<String>,
        auditor_groups: Vec<String>,
        approvers_to: Vec<String>,
        auditors_to: Vec<String>,
    ) -> Self {
        Self {
            ic,
            user_match,
            approver_groups,
            auditor_groups,
            approvers_to,
            auditors_to,
            admin_groups: Vec::new(),
        }
    }

    /// Drift findings go to the members of these groups too.
    pub fn with_admin_groups(mut self, groups: Vec<String>) -> Self {
        self.admin_groups = groups;
        self
    }

    /// From `[oidc]` (the role groups), `[notify.email]` and `[identity_center]`.
    pub fn from_config(c: &crate::config::Config, ic: Arc<dyn IdentityCenter>) -> Self {
        let groups = |role| {
            c.oidc
                .as_ref()
                .map(|o| o.groups_for(role).to_vec())
                .unwrap_or_default()
        };
        let (approvers_to, auditors_to) = c
            .notify
            .email
            .as_ref()
            .map(|e| (e.approvers_to.clone(), e.auditors_to.clone()))
            .unwrap_or_default();
        Self::new(
            ic,
            UserKey::from_config(&c.identity_center),
            groups(app::domain::Role::Approver),
            groups(app::domain::Role::Auditor),
            approvers_to,
            auditors_to,
        )
        .with_admin_groups(groups(app::domain::Role::Admin))
    }

    async fn members(&self, groups: &[String]) -> Result<Vec<Recipient>, RecipientError> {
        let mut out = Vec::new();
        for name in groups {
            let users = match self.ic.group_members(name).await {
                Ok(u) => u,
                // A role group that is not in the identity store is a configuration
                // matter, not a reason to hold the notification back.
                Err(e) if e.kind == IcErrorKind::NotFound => {
                    tracing::debug!(group = %name, "no identity-store group of that name");
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            for user in users {
                match self.ic.user_contact(&user).await {
                    Ok(c) => {
                        if let Some(email) = c.emails.into_iter().next() {
                            out.push(Recipient {
                                person: Some(c.user_name),
                                email,
                            });
                        }
                    }
                    Err(e) if e.kind == IcErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(out)
    }
}

fn configured(addresses: &[String]) -> Vec<Recipient> {
    addresses
        .iter()
        .map(|a| Recipient {
            person: None,
            email: a.clone(),
        })
        .collect()
}

#[async_trait]
impl Recipients for DirectoryRecipients {
    async fn approvers_of(&self, grant: &Grant) -> Result<Vec<Recipient>, RecipientError> {
        let requester = grant.request.requester.as_str();
        Ok(self
            .all_approvers()
            .await?
            .into_iter()
            .filter(|r| {
                r.person.as_deref() != Some(requester) && !r.email.eq_ignore_ascii_case(requester)
            })
            .collect())
    }

    async fn all_approvers(&self) -> Result<Vec<Recipient>, RecipientError> {
        let mut out = configured(&self.approvers_to);
        out.extend(self.members(&self.approver_groups).await?);
        Ok(out)
    }

    async fn auditors(&self) -> Result<Vec<Recipient>, RecipientError> {
        let mut out = configured(&self.auditors_to);
        out.extend(self.members(&self.auditor_groups).await?);
        Ok(out)
    }

    async fn admins(&self) -> Result<Vec<Recipient>, RecipientError> {
        self.members(&self.admin_groups).await
    }

    async fn person(&self, who: &PersonId) -> Result<Vec<Recipient>, RecipientError> {
        let id = who.as_str();
        if self.user_match == UserKey::Email {
            return Ok(vec![Recipient {
                person: Some(id.to_owned()),
                email: id.to_owned(),
            }]);
        }
        let user = match self.ic.find_user(&self.user_match, id).await {
            Ok(u) => u,
            Err(IdentityError::Aws(e)) => return Err(e.into()),
            Err(e) => {
                // Not in the identity store: a person id that is an address is used as
                // one; otherwise there is nobody to email.
                if id.parse::<lettre::Address>().is_ok() {
                    return Ok(vec![Recipient {
                        person: Some(id.to_owned()),
                        email: id.to_owned(),
                    }]);
                }
                tracing::warn!(person = %id, error = %e, "no email address for this person");
                return Ok(Vec::new());
            }
        };
        let contact = self.ic.user_contact(&user.user_id).await?;
        Ok(contact
            .emails
            .into_iter()
            .take(1)
            .map(|email| Recipient {
                person: Some(id.to_owned()),
                email,
            })
            .collect())
    }
}
