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
    /// The roles `person` holds: those one of their `groups` maps to
    /// (`oidc.*_groups`) or whose person list (`oidc.*_people`) names them.
    pub fn roles_for(&self, person: &PersonId, groups: &[String]) -> RoleSet {
        let Some(oidc) = &self.config.oidc else {
            return RoleSet::empty();
        };
        Role::ALL.into_iter().fold(RoleSet::empty(), |set, role| {
            if oidc.groups_for(role).iter().any(|g| groups.contains(g))
                || oidc.people_for(role).iter().any(|p| p == person.as_str())
            {
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
                roles: self.roles_for(&id, &person.groups),
                id,
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
        let id = session.id();
        let mut held = None;
        if let Some(id) = &id {
            if let Some(done) = self.current(session, id, &due).await {
                return done;
            }
            if let Some(leases) = &self.refresh_leases {
                match leases.hold(&refresh_key(id)).await {
                    Ok(true) => {
                        held = Some(refresh_key(id));
                        // The replica that held it before may have finished between
                        // the look above and taking the lease.
                        if let Some(done) = self.current(session, id, &due).await {
                            self.release(held.as_deref()).await;
                            return done;
                        }
                    }
                    // Another replica is refreshing this session: its answer lands in
                    // the session within moments.
                    Ok(false) => return self.refreshed_elsewhere(session, id, person, &due).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot take the session's refresh lease; no roles until it can");
                        return Checked::Unconfirmed(person);
                    }
                }
            }
        }
        let refreshed = oidc.refresh(&person).await;
        if let (Ok(fresh), Some(id)) = (&refreshed, &id) {
            // Stored at once, before the lease is given up: the session's other
            // requests and replicas find it there.
            if let Err(e) = self.sessions.put_person(id, fresh).await {
                tracing::warn!(error = %e, "could not store the confirmed groups");
            }
        }
        self.release(held.as_deref()).await;
        match refreshed {
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

impl Auth {
    /// The stored session's person when a re-check is no longer `due` (another
    /// request or replica made it), taken into this request's session too; `Ended`
    /// when the session is gone; `None` when the re-check is still to be made.
    async fn current(
        &self,
        session: &Session,
        id: &tower_sessions::session::Id,
        due: &impl Fn(&SignedIn) -> bool,
    ) -> Option<Checked> {
        match self.sessions.person(id).await {
            Ok(Some(latest)) if !due(&latest) => {
                if let Err(e) = session.insert(PERSON_KEY, &latest).await {
                    tracing::warn!(error = %e, "could not keep the confirmed groups");
                }
                Some(Checked::Current(latest))
            }
            Ok(Some(_)) | Err(_) => None,
            Ok(None) => Some(Checked::Ended),
        }
    }

    /// Gives up the refresh lease `key` if one is held (it would run out anyway).
    async fn release(&self, key: Option<&str>) {
        if let (Some(key), Some(leases)) = (key, &self.refresh_leases) {
            if let Err(e) = leases.release(key).await {
                tracing::debug!(error = %e, "could not give the session's refresh lease up; it runs out");
            }
        }
    }

    /// Waits (up to five seconds) for the replica holding the refresh lease to store
    /// its re-check; meanwhile, and if it never lands, the person holds no role.
    async fn refreshed_elsewhere(
        &self,
        session: &Session,
        id: &tower_sessions::session::Id,
        person: SignedIn,
        due: &impl Fn(&SignedIn) -> bool,
    ) -> Checked {
        for _ in 0..25 {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            if let Some(done) = self.current(session, id, due).await {
                return done;
            }
        }
        tracing::info!("another replica is still re-checking this session; no roles for now");
        Checked::Unconfirmed(person)
    }
}

/// The lease key of session `id`'s refresh: a digest, so the session id (a bearer
/// secret) is not written to the leases table.
fn refresh_key(id: &tower_sessions::session::Id) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(id.to_string().as_bytes());
    format!("session-refresh|{}", hex::encode(&digest[..16]))
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
