//! Resolves the session into an [`app::domain::Caller`] once per request (the
//! [`resolve_caller`] middleware) and hands it to handlers ([`CurrentCaller`]) and to
//! Leptos (as a [`Viewer`] in context). Roles come from the signed-in person's groups
//! through the configured mapping, at every request, so a mapping change applies at
//! once; a session older than `session.absolute_timeout` is ended here.

use super::session::{SignedIn, PERSON_KEY};
use super::Auth;
use app::api::Viewer;
use app::domain::{Caller, PersonId, Role, RoleSet};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use std::convert::Infallible;
use tower_sessions::Session;

impl Auth {
    /// The roles `groups` map to.
    pub fn roles_for(&self, groups: &[String]) -> RoleSet {
        let Some(oidc) = &self.config.oidc else {
            return RoleSet::empty();
        };
        Role::ALL.into_iter().fold(RoleSet::empty(), |set, role| {
            if oidc.groups_for(role).iter().any(|g| groups.contains(g)) {
                set.with(role)
            } else {
                set
            }
        })
    }

    /// Whether this sign-in used MFA: one of the configured `amr` values, or the
    /// configured `acr`.
    pub fn used_mfa(&self, person: &SignedIn) -> bool {
        let Some(oidc) = &self.config.oidc else {
            return false;
        };
        person.amr.iter().any(|a| oidc.mfa_amr.contains(a))
            || person
                .acr
                .as_ref()
                .is_some_and(|a| oidc.mfa_acr.contains(a))
    }

    /// The caller for a signed-in person.
    pub fn caller_for(&self, person: &SignedIn) -> Caller {
        match PersonId::parse(&person.subject) {
            Ok(id) => Caller::Person {
                name: person.name.clone().unwrap_or_else(|| id.to_string()),
                id,
                roles: self.roles_for(&person.groups),
                mfa: self.used_mfa(person),
                groups: person.groups.clone(),
            },
            Err(_) => Caller::Anonymous,
        }
    }

    /// What the pages are told about `caller`.
    pub fn viewer(&self, caller: &Caller) -> Viewer {
        Viewer {
            caller: caller.clone(),
            policy: self.policy(),
            sign_in_available: self.oidc.is_some(),
        }
    }
}

/// Reads the session once and puts the [`Caller`] into the request's extensions.
pub async fn resolve_caller(
    State(auth): State<Auth>,
    session: Session,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match session.get::<SignedIn>(PERSON_KEY).await {
        Ok(Some(person)) => {
            let age = auth.clock.now() - person.signed_in_at;
            let limit = chrono::TimeDelta::from_std(auth.config.session.absolute_timeout)
                .unwrap_or(chrono::TimeDelta::MAX);
            if age > limit {
                tracing::info!("session reached its absolute timeout; signed out");
                if let Err(e) = session.flush().await {
                    tracing::warn!(error = %e, "could not end an expired session");
                }
                Caller::Anonymous
            } else {
                auth.caller_for(&person)
            }
        }
        Ok(None) => Caller::Anonymous,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the session; treating the request as anonymous");
            Caller::Anonymous
        }
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// The caller [`resolve_caller`] found, for handlers: `CurrentCaller(caller)`.
#[derive(Debug, Clone)]
pub struct CurrentCaller(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for CurrentCaller {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Without the middleware nobody is signed in: failing closed.
        Ok(CurrentCaller(
            parts
                .extensions
                .get::<Caller>()
                .cloned()
                .unwrap_or(Caller::Anonymous),
        ))
    }
}
