//! The OpenID provider: discovery, the authorization-code flow with PKCE, `state` and
//! `nonce`, and ID-token verification (signature, issuer, audience, expiry, nonce) with
//! the injected clock. The back-channel HTTP client never follows redirects, so a
//! provider (or someone posing as one) cannot bounce Timebox's requests elsewhere.

use super::session::{PendingLogin, SignedIn};
use super::AuthStartError;
use crate::clock::Clock;
use crate::config::OidcConfig;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreResponseType,
    CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthenticationContextClass, AuthenticationFlow, AuthorizationCode, Client,
    ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields, EndSessionUrl, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IdToken, IdTokenFields, IssuerUrl, LogoutRequest, Nonce,
    NonceVerifier, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, PostLogoutRedirectUrl,
    ProviderMetadataWithLogout, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    StandardErrorResponse, StandardTokenResponse,
};
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long discovery results (endpoints and signing keys) are reused before they
/// are fetched again, so a key rotation at the provider is picked up.
const DISCOVERY_TTL: Duration = Duration::from_secs(15 * 60);
/// How long a person may take at the provider before the callback is refused.
pub const LOGIN_TTL: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// Claims beyond the standard ones; the groups claim's name is configuration, so
/// all of them are kept and the configured one is read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExtraClaims {
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}
impl AdditionalClaims for ExtraClaims {}

type TokenFields = IdTokenFields<
    ExtraClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type TokenResponse = StandardTokenResponse<TokenFields, CoreTokenType>;
type TimeboxIdToken = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type OidcClient = Client<
    ExtraClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why a sign-in failed. `Display` is safe to show and to log: it never contains a
/// code, token, state or nonce value.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("the sign-in provider cannot be reached or described itself wrongly: {0}")]
    Discovery(String),
    #[error(
        "no sign-in was in progress in this browser (it was used already, or started elsewhere)"
    )]
    NoLoginInProgress,
    #[error("the sign-in response does not belong to the sign-in started in this browser (state mismatch)")]
    StateMismatch,
    #[error("the sign-in took too long; start again")]
    LoginExpired,
    #[error("the provider did not sign you in ({0})")]
    ProviderRefused(String),
    #[error("the provider's answer is malformed: {0}")]
    Malformed(&'static str),
    #[error("the provider refused to exchange the sign-in code ({0})")]
    TokenExchange(String),
    #[error("the provider's answer has no ID token")]
    MissingIdToken,
    #[error("the ID token is not valid: {0}")]
    InvalidIdToken(String),
    #[error(
        "the ID token has no {0:?} claim, which identifies a person here (oidc.person_claim): \
         an administrator must name a claim the provider sends, or make the provider send it"
    )]
    MissingPersonClaim(String),
    #[error(
        "the provider sent a pointer (_claim_names) instead of your groups: you are in more \
         groups than fit in a token (Entra ID: over 200). An administrator must make the \
         provider send only the groups assigned to Timebox, or application roles (see \
         docs/identity.md)"
    )]
    GroupOverage,
}

impl LoginError {
    /// A short reason code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            LoginError::Discovery(_) => "discovery",
            LoginError::NoLoginInProgress => "no_login_in_progress",
            LoginError::StateMismatch => "state_mismatch",
            LoginError::LoginExpired => "login_expired",
            LoginError::ProviderRefused(_) => "provider_refused",
            LoginError::Malformed(_) => "malformed",
            LoginError::TokenExchange(_) => "token_exchange",
            LoginError::MissingIdToken => "missing_id_token",
            LoginError::InvalidIdToken(_) => "invalid_id_token",
            LoginError::MissingPersonClaim(_) => "missing_person_claim",
            LoginError::GroupOverage => "group_overage",
        }
    }

    /// Whether the failure is the browser's doing (counted by the rate limiter), as
    /// opposed to the provider being unreachable.
    pub fn counts_against_client(&self) -> bool {
        !matches!(
            self,
            LoginError::Discovery(_) | LoginError::MissingPersonClaim(_) | LoginError::GroupOverage
        )
    }
}

#[derive(Debug)]
struct Discovered {
    client: OidcClient,
    end_session: Option<EndSessionUrl>,
    fetched: Instant,
}

/// The configured provider. Discovery happens at the first use and is refreshed
/// after [`DISCOVERY_TTL`].
#[derive(Debug)]
pub struct Oidc {
    settings: OidcConfig,
    issuer: IssuerUrl,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    discovered: tokio::sync::Mutex<Option<Arc<Discovered>>>,
}

impl Oidc {
    pub fn new(settings: OidcConfig, clock: Arc<dyn Clock>) -> Result<Self, AuthStartError> {
        let http = reqwest::Client::builder()
            // Following redirects would let the provider's answers send Timebox's
            // back-channel requests (with the client secret) anywhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(AuthStartError::HttpClient)?;
        let issuer = IssuerUrl::new(settings.issuer.clone())
            .map_err(|_| AuthStartError::Issuer(settings.issuer.clone()))?;
        Ok(Self {
            settings,
            issuer,
            http,
            clock,
            discovered: tokio::sync::Mutex::new(None),
        })
    }

    pub fn settings(&self) -> &OidcConfig {
        &self.settings
    }

    /// The issuer's origin (`scheme://host[:port]`), which forms may be sent to
    /// (the provider's end-session page after signing out).
    pub fn issuer_origin(&self) -> String {
        self.issuer.url().origin().ascii_serialization()
    }

    async fn discovered(&self) -> Result<Arc<Discovered>, LoginError> {
        let mut cached = self.discovered.lock().await;
        if let Some(d) = cached
            .as_ref()
            .filter(|d| d.fetched.elapsed() < DISCOVERY_TTL)
        {
            return Ok(d.clone());
        }
        let metadata = ProviderMetadataWithLogout::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| LoginError::Discovery(e.to_string()))?;
        let end_session = metadata.additional_metadata().end_session_endpoint.clone();
        let redirect = RedirectUrl::new(self.settings.redirect_url.clone())
            .map_err(|e| LoginError::Discovery(format!("oidc.redirect_url: {e}")))?;
        let client = OidcClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose().to_owned())),
        )
        .set_redirect_uri(redirect);
        let d = Arc::new(Discovered {
            client,
            end_session,
            fetched: Instant::now(),
        });
        *cached = Some(d.clone());
        Ok(d)
    }

    /// Starts a sign-in: the provider URL to send the browser to and what the session
    /// must remember. `mfa` asks the provider for a fresh sign-in with the configured
    /// MFA `acr` values.
    pub async fn begin(
        &self,
        return_to: String,
        mfa: bool,
    ) -> Result<(url::Url, PendingLogin), LoginError> {
        let d = self.discovered().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = d
            .client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &self.settings.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        if mfa {
            // A step-up: authenticate again now, whatever session the provider has.
            request = request
                .add_prompt(CoreAuthPrompt::Login)
                .set_max_age(self.settings.mfa_max_age);
            for acr in &self.settings.mfa_acr {
                request =
                    request.add_auth_context_value(AuthenticationContextClass::new(acr.clone()));
            }
        }
        let (url, state, nonce) = request.url();
        Ok((
            url,
            PendingLogin {
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                started_at: self.clock.now(),
                return_to,
            },
        ))
    }

    /// Finishes a sign-in whose `state` already matched: exchanges the code (with the
    /// PKCE verifier) and verifies the ID token against the session's nonce.
    pub async fn finish(
        &self,
        pending: PendingLogin,
        code: String,
    ) -> Result<SignedIn, LoginError> {
        if self.clock.now() - pending.started_at > LOGIN_TTL {
            return Err(LoginError::LoginExpired);
        }
        let d = self.discovered().await?;
        let response = d
            .client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| LoginError::Discovery(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        let id_token = response
            .extra_fields()
            .id_token()
            .ok_or(LoginError::MissingIdToken)?;
        let mut person = self.verify(&d, id_token, &Nonce::new(pending.nonce))?;
        person.refresh_token = response
            .refresh_token()
            .map(|t| super::session::RefreshSecret(t.secret().clone()));
        Ok(person)
    }

    /// Asks the provider again who `person` is, with their refresh token, without a
    /// sign-in: the new ID token's groups and name replace the old ones; how and when
    /// they authenticated (`amr`, `acr`, `auth_time`) stays the sign-in's. A provider
    /// that cannot be reached is [`LoginError::Discovery`]; one that refuses (the
    /// person was disabled, the token revoked) any other error.
    pub async fn refresh(&self, person: &SignedIn) -> Result<SignedIn, LoginError> {
        let Some(token) = &person.refresh_token else {
            return Err(LoginError::TokenExchange(
                "the provider gave this session no refresh token".into(),
            ));
        };
        let d = self.discovered().await?;
        let token = RefreshToken::new(token.0.clone());
        let response = d
            .client
            .exchange_refresh_token(&token)
            .map_err(|e| LoginError::Discovery(e.to_string()))?
            .request_async(&self.http)
            .await
            .map_err(token_error)?;
        let id_token = response
            .extra_fields()
            .id_token()
            .ok_or(LoginError::MissingIdToken)?;
        // A refreshed ID token carries no nonce (OpenID Connect Core 12.2).
        let mut fresh = self.verify(&d, id_token, |_: Option<&Nonce>| Ok(()))?;
        if fresh.subject != person.subject {
            return Err(LoginError::InvalidIdToken(
                "the refreshed ID token names another person".into(),
            ));
        }
        fresh.refresh_token = response
            .refresh_token()
            .map(|t| super::session::RefreshSecret(t.secret().clone()))
            .or_else(|| person.refresh_token.clone());
        fresh.amr = person.amr.clone();
        fresh.acr = person.acr.clone();
        fresh.auth_time = person.auth_time;
        fresh.signed_in_at = person.signed_in_at;
        fresh.checked_at = Some(self.clock.now());
        Ok(fresh)
    }

    /// Verifies an ID token given as its compact serialization (the JWT) against this
    /// provider and `nonce`.
    pub async fn verify_id_token(&self, jwt: &str, nonce: &str) -> Result<SignedIn, LoginError> {
        let d = self.discovered().await?;
        let token = TimeboxIdToken::from_str(jwt)
            .map_err(|_| LoginError::Malformed("the ID token is not a JWT"))?;
        self.verify(&d, &token, &Nonce::new(nonce.to_owned()))
    }

    fn verify(
        &self,
        d: &Discovered,
        token: &TimeboxIdToken,
        nonce: impl NonceVerifier,
    ) -> Result<SignedIn, LoginError> {
        let clock = self.clock.clone();
        let verifier = d
            .client
            .id_token_verifier()
            .set_time_fn(move || clock.now());
        let claims = token
            .claims(&verifier, nonce)
            .map_err(|e| LoginError::InvalidIdToken(e.to_string()))?;
        let other = &claims.additional_claims().other;
        let overage = other
            .get("_claim_names")
            .and_then(|n| n.get(&self.settings.groups_claim))
            .is_some();
        if overage && other.get(&self.settings.groups_claim).is_none() {
            return Err(LoginError::GroupOverage);
        }
        let groups = match other.get(&self.settings.groups_claim) {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(serde_json::Value::String(one)) => vec![one.clone()],
            Some(_) => {
                return Err(LoginError::Malformed(
                    "the groups claim is not a list of names",
                ))
            }
        };
        // The names `[oidc.group_names]` gives the ids the provider sent: roles and
        // policies may name a group either way.
        let mut groups = groups;
        for (id, name) in &self.settings.group_names {
            if groups.contains(id) && !groups.contains(name) {
                groups.push(name.clone());
            }
        }
        let claim = self.settings.person_claim.as_str();
        let person = match claim {
            "sub" => Some(claims.subject().as_str().to_owned()),
            "email" => claims.email().map(|e| e.as_str().to_owned()),
            "preferred_username" => claims.preferred_username().map(|u| u.as_str().to_owned()),
            other_claim => other.get(other_claim).and_then(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            }),
        }
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| LoginError::MissingPersonClaim(claim.to_owned()))?;
        Ok(SignedIn {
            subject: person,
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_owned())
                .or_else(|| claims.preferred_username().map(|u| u.as_str().to_owned())),
            email: claims.email().map(|e| e.as_str().to_owned()),
            groups,
            amr: claims
                .auth_method_refs()
                .map(|v| v.iter().map(|a| a.as_str().to_owned()).collect())
                .unwrap_or_default(),
            acr: claims.auth_context_ref().map(|a| a.as_str().to_owned()),
            signed_in_at: self.clock.now(),
            auth_time: claims.auth_time(),
            refresh_token: None,
            checked_at: None,
        })
    }

    /// Where to send the browser after the local session ended, if the provider
    /// advertises an end-session endpoint (RP-initiated logout).
    pub async fn end_session_url(&self, after_logout: &str) -> Option<url::Url> {
        let d = self.discovered().await.ok()?;
        let endpoint = d.end_session.clone()?;
        let mut request = LogoutRequest::from(endpoint)
            .set_client_id(ClientId::new(self.settings.client_id.clone()));
        if let Ok(after) = PostLogoutRedirectUrl::new(after_logout.to_owned()) {
            request = request.set_post_logout_redirect_uri(after);
        }
        Some(request.http_get_url())
    }
}

/// What a failed token request means: the provider's refusal, or that it could not be
/// reached ([`LoginError::Discovery`]).
fn token_error<E: std::error::Error + 'static>(
    e: RequestTokenError<E, StandardErrorResponse<CoreErrorResponseType>>,
) -> LoginError {
    match e {
        RequestTokenError::ServerResponse(r) => LoginError::TokenExchange(r.error().to_string()),
        RequestTokenError::Request(_) => {
            LoginError::Discovery("the provider could not be reached".into())
        }
        RequestTokenError::Parse(_, _) => LoginError::TokenExchange("unreadable answer".into()),
        RequestTokenError::Other(_) => LoginError::TokenExchange("unexpected answer".into()),
    }
}
