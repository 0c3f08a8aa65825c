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

    /// Whether this sign-in used MFA (one of the configured `amr` values, or the
    /// configured `acr`) no longer than `oidc.mfa_max_age` ago, counted from the
    /// provider's `auth_time`. An older MFA sign-in does not count: approving and
    /// break-glass then ask for a step-up sign-in.
    pub fn used_mfa(&self, person: &SignedIn) -> bool {
        let Some(oidc) = &self.config.oidc else {
            return false;
        };
        let multi_factor = person.amr.iter().any(|a| oidc.mfa_amr.contains(a))
            || person
                .acr
                .as_ref()
                .is_some_and(|a| oidc.mfa_acr.contains(a));
        let at = person.auth_time.unwrap_or(person.signed_in_at);
        let age = self.clock.now() - at;
        let max = chrono::TimeDelta::from_std(oidc.mfa_max_age).unwrap_or(chrono::TimeDelta::MAX);
        multi_factor && age <= max
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
                match auth.rechecked(&session, person).await {
                    Checked::Current(person) => auth.caller_for(&person),
                    Checked::Unconfirmed(person) => auth.caller_for(&person).without_roles(),
                    Checked::Ended => {
                        if let Err(e) = session.flush().await {
                            tracing::warn!(error = %e, "could not end a session");
                        }
                        Caller::Anonymous
                    }
                }
            }
        }
        Ok(None) => Caller::Anonymous,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the session; treating the request as anonymous");
            Caller::Anonymous
        }
    };
    // Static assets (the same for everyone) stay cacheable.
    let signed_in =
        !matches!(caller, Caller::Anonymous) && !request.uri().path().starts_with("/pkg/");
    request.extensions_mut().insert(caller);
    let mut response = next.run(request).await;
    if signed_in {
        // What a signed-in person saw is theirs: no shared or back-button cache keeps
        // it after they sign out.
        response.headers_mut().insert(
            axum::http::header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
    }
    response
}

/// What the periodic re-check of a person's groups found.
#[derive(Debug)]
pub enum Checked {
    /// Confirmed within `session.refresh` (now, or earlier).
    Current(SignedIn),
    /// The provider could not be asked: signed in, but holding no role until it can.
    Unconfirmed(SignedIn),
    /// The provider no longer vouches for the person (or gave no refresh token).
    Ended,
}

impl Auth {
    /// `person` as the provider confirms them: every `session.refresh`, their
    /// groups are asked again with the sign-in's refresh token and the session
    /// updated. Fails closed: a provider that cannot be asked leaves the person
    /// without roles for now; one that refuses ends the session.
    pub async fn rechecked(&self, session: &Session, person: SignedIn) -> Checked {
        let (Some(oidc), Ok(every)) = (
            &self.oidc,
            chrono::TimeDelta::from_std(self.config.session.refresh),
        ) else {
            return Checked::Current(person);
        };
        let due = |p: &SignedIn| self.clock.now() - p.checked_at.unwrap_or(p.signed_in_at) > every;
        if !due(&person) {
            return Checked::Current(person);
        }
        let _one = self.refreshing.lock().await;
        // Another request of this session may have refreshed it meanwhile.
        if let Some(id) = session.id() {
            match self.sessions.person(&id).await {
                Ok(Some(latest)) if !due(&latest) => return Checked::Current(latest),
                Ok(Some(_)) | Err(_) => {}
                Ok(None) => return Checked::Ended,
            }
        }
        match oidc.refresh(&person).await {
            Ok(fresh) => {
                tracing::info!(
                    subject = %fresh.subject,
                    groups = ?fresh.groups,
                    "groups confirmed by the provider"
                );
                if let Err(e) = session.insert(PERSON_KEY, &fresh).await {
                    tracing::warn!(error = %e, "could not keep the confirmed groups");
                }
                Checked::Current(fresh)
            }
            Err(e @ super::oidc::LoginError::Discovery(_)) => {
                tracing::warn!(error = %e, "cannot confirm a person's groups now; no roles until it can");
                Checked::Unconfirmed(person)
            }
            Err(e) => {
                tracing::info!(reason = e.code(), error = %e, "the provider no longer confirms this person; signed out");
                Checked::Ended
            }
        }
    }
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
