//! `[oidc]` (sign-in with OpenID Connect) and `[session]` (the browser session), kept
//! apart from the other sections so the sign-in issue owns them in one place.
//!
//! `[oidc]` is optional: without `oidc.issuer` nobody can sign in and every page is
//! seen as an anonymous visitor. With it, `oidc.client_id` is required.

use super::{
    duration_in, expect_str, kind_of, parse_bool, resolve_secret, Checker, ConfigError, Problem,
    Secret,
};
use app::domain::Role;
use figment::value::Value;
use serde::Deserialize;
use std::time::Duration;

/// `[oidc]`: the OpenID provider people sign in with.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The issuer URL, exactly as the provider's discovery document states it.
    pub issuer: String,
    pub client_id: String,
    /// From `oidc.client_secret` or `oidc.client_secret_file`; `None` for a public
    /// client (PKCE only).
    pub client_secret: Option<Secret>,
    /// Where the provider sends the browser back. Default `server.public_url` +
    /// `/auth/callback`.
    pub redirect_url: String,
    /// Scopes asked for besides `openid`. Default `profile`, `email`, `groups`.
    pub scopes: Vec<String>,
    /// The ID-token claim holding the person's groups. Default `groups`.
    pub groups_claim: String,
    /// Group → role mapping: a person holds every role one of their groups maps to.
    pub role_groups: Vec<(Role, Vec<String>)>,
    /// Whether approving needs a sign-in with MFA. Default false.
    pub approvers_need_mfa: bool,
    /// `amr` values that count as MFA. Default `mfa`, `otp`, `hwk`, `swk`.
    pub mfa_amr: Vec<String>,
    /// `acr` values that count as MFA. Default none.
    pub mfa_acr: Vec<String>,
}

impl OidcConfig {
    /// The groups that grant `role`.
    pub fn groups_for(&self, role: Role) -> &[String] {
        self.role_groups
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, g)| g.as_slice())
            .unwrap_or_default()
    }
}

/// `[session]`: the browser session after sign-in.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Signed out after this long without a request (1m..=7d). Default 1h.
    pub idle_timeout: Duration,
    /// Signed out this long after signing in, whatever the activity (5m..=30d).
    /// Default 12h.
    pub absolute_timeout: Duration,
    /// Whether the session cookie is `Secure`. Default true; false is only allowed
    /// when `server.public_url` is plain `http://` (local use).
    pub secure_cookie: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(3600),
            absolute_timeout: Duration::from_secs(12 * 3600),
            secure_cookie: true,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawOidc {
    issuer: Option<Value>,
    client_id: Option<Value>,
    client_secret: Option<Value>,
    client_secret_file: Option<Value>,
    redirect_url: Option<Value>,
    scopes: Option<Value>,
    groups_claim: Option<Value>,
    requester_groups: Option<Value>,
    approver_groups: Option<Value>,
    auditor_groups: Option<Value>,
    admin_groups: Option<Value>,
    approvers_need_mfa: Option<Value>,
    mfa_amr: Option<Value>,
    mfa_acr: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawSession {
    idle_timeout: Option<Value>,
    absolute_timeout: Option<Value>,
    secure_cookie: Option<Value>,
}

pub(super) const OIDC_KEYS: &[&str] = &[
    "issuer",
    "client_id",
    "client_secret",
    "client_secret_file",
    "redirect_url",
    "scopes",
    "groups_claim",
    "requester_groups",
    "approver_groups",
    "auditor_groups",
    "admin_groups",
    "approvers_need_mfa",
    "mfa_amr",
    "mfa_acr",
];
pub(super) const SESSION_KEYS: &[&str] = &["idle_timeout", "absolute_timeout", "secure_cookie"];

/// A list of words: a TOML array of strings, or (from an environment variable) one
/// string of comma-separated words.
pub(super) fn parse_list(value: &Value, example: &str) -> Result<Vec<String>, Problem> {
    let items: Vec<String> = match value {
        Value::Array(_, items) => items
            .iter()
            .map(|v| expect_str(v, example).map(|s| s.trim().to_owned()))
            .collect::<Result<_, _>>()?,
        Value::String(_, s) => s.split(',').map(|s| s.trim().to_owned()).collect(),
        other => {
            return Err(Problem::new(
                "not a list",
                format!("found {}", kind_of(other)),
                format!("write a list of strings such as [{example}], or in an environment variable a comma-separated string"),
            ))
        }
    };
    Ok(items.into_iter().filter(|s| !s.is_empty()).collect())
}

pub(super) fn parse_http_url(value: &Value, example: &str, what: &str) -> Result<String, Problem> {
    let s = expect_str(value, example)?.trim();
    match url::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
            if u.fragment().is_some() {
                return Err(Problem::new(
                    "not usable",
                    "it must not contain a fragment (#…)",
                    format!("set it to {what}, such as {example}"),
                ));
            }
            Ok(s.to_owned())
        }
        _ => Err(Problem::new(
            "not an http(s) URL",
            "it must start with http:// or https:// and name a host",
            format!("set it to {what}, such as {example}"),
        )),
    }
}

impl Checker<'_> {
    pub(super) fn oidc(&mut self, raw: RawOidc, public_url: &str) -> Option<OidcConfig> {
        let issuer = self.value("oidc.issuer", raw.issuer, None, |v| {
            if expect_str(v, "\"https://login.example.com\"")?
                .trim()
                .is_empty()
            {
                return Ok(None);
            }
            parse_http_url(
                v,
                "\"https://login.example.com\"",
                "your OpenID provider's issuer URL (its discovery document is at \
                 <issuer>/.well-known/openid-configuration)",
            )
            .map(|s| Some(s.trim_end_matches('/').to_owned()))
        });
        let client_id = self.optional("oidc.client_id", raw.client_id, "\"timebox\"", |_| Ok(()));
        let inline = self.secret_text("oidc.client_secret", raw.client_secret);
        let file = self.path("oidc.client_secret_file", raw.client_secret_file);
        let client_secret = match resolve_secret("oidc", "client_secret", inline, file) {
            Ok(s) => s,
            Err(e) => {
                self.errors.push(e);
                None
            }
        };
        let default_redirect = format!("{public_url}/auth/callback");
        let redirect_url = self.value(
            "oidc.redirect_url",
            raw.redirect_url,
            default_redirect.clone(),
            |v| {
                if expect_str(v, "\"https://timebox.example.com/auth/callback\"")?
                    .trim()
                    .is_empty()
                {
                    return Ok(default_redirect.clone());
                }
                parse_http_url(
                    v,
                    "\"https://timebox.example.com/auth/callback\"",
                    "Timebox's public address followed by /auth/callback, registered with the \
                     provider as this client's redirect URI",
                )
            },
        );
        let scopes = self.value(
            "oidc.scopes",
            raw.scopes,
            vec![
                "profile".to_owned(),
                "email".to_owned(),
                "groups".to_owned(),
            ],
            |v| parse_list(v, "\"profile\", \"email\", \"groups\""),
        );
        let groups_claim = self.value(
            "oidc.groups_claim",
            raw.groups_claim,
            "groups".to_owned(),
            |v| {
                let s = expect_str(v, "\"groups\"")?.trim();
                if s.is_empty() {
                    Ok("groups".to_owned())
                } else {
                    Ok(s.to_owned())
                }
            },
        );
        let mut role_groups = Vec::new();
        for (role, key, raw) in [
            (
                Role::Requester,
                "oidc.requester_groups",
                raw.requester_groups,
            ),
            (Role::Approver, "oidc.approver_groups", raw.approver_groups),
            (Role::Auditor, "oidc.auditor_groups", raw.auditor_groups),
            (Role::Admin, "oidc.admin_groups", raw.admin_groups),
        ] {
            let groups = self.value(key, raw, Vec::new(), |v| {
                parse_list(v, "\"timebox-requesters\"")
            });
            role_groups.push((role, groups));
        }
        let approvers_need_mfa = self.value(
            "oidc.approvers_need_mfa",
            raw.approvers_need_mfa,
            false,
            parse_bool,
        );
        let mfa_amr = self.value(
            "oidc.mfa_amr",
            raw.mfa_amr,
            ["mfa", "otp", "hwk", "swk"].map(str::to_owned).to_vec(),
            |v| parse_list(v, "\"mfa\", \"otp\""),
        );
        let mfa_acr = self.value("oidc.mfa_acr", raw.mfa_acr, Vec::new(), |v| {
            parse_list(v, "\"urn:example:mfa\"")
        });

        let issuer = issuer?;
        let Some(client_id) = client_id else {
            self.errors.push(ConfigError::Inconsistent {
                key: "oidc.client_id".to_owned(),
                detail: "is missing, but oidc.issuer is set".to_owned(),
                fix: "set oidc.client_id to the client id registered for Timebox at the \
                      provider, or remove oidc.issuer to turn sign-in off"
                    .to_owned(),
            });
            return None;
        };
        if approvers_need_mfa && mfa_amr.is_empty() && mfa_acr.is_empty() {
            self.errors.push(ConfigError::Inconsistent {
                key: "oidc.approvers_need_mfa".to_owned(),
                detail: "is true, but oidc.mfa_amr and oidc.mfa_acr are both empty".to_owned(),
                fix: "list the amr or acr values your provider sends after an MFA sign-in, \
                      such as mfa_amr = [\"mfa\", \"otp\"]"
                    .to_owned(),
            });
        }
        if role_groups.iter().all(|(_, g)| g.is_empty()) {
            tracing::warn!("no oidc.*_groups are set: people can sign in but hold no role");
        }
        Some(OidcConfig {
            issuer,
            client_id,
            client_secret,
            redirect_url,
            scopes,
            groups_claim,
            role_groups,
            approvers_need_mfa,
            mfa_amr,
            mfa_acr,
        })
    }

    pub(super) fn session(&mut self, raw: RawSession, public_url: &str) -> SessionConfig {
        let d = SessionConfig::default();
        let idle_timeout = self.value(
            "session.idle_timeout",
            raw.idle_timeout,
            d.idle_timeout,
            |v| {
                duration_in(
                    v,
                    "\"1h\"",
                    (Duration::from_secs(60), Duration::from_secs(7 * 86_400)),
                    "the idle timeout",
                    "pick how long a session may stay unused before its owner must sign in again, \
                 such as \"1h\"",
                )
            },
        );
        let absolute_timeout = self.value(
            "session.absolute_timeout",
            raw.absolute_timeout,
            d.absolute_timeout,
            |v| {
                duration_in(
                    v,
                    "\"12h\"",
                    (Duration::from_secs(300), Duration::from_secs(30 * 86_400)),
                    "the absolute timeout",
                    "pick how long after signing in a person must sign in again, such as \"12h\"",
                )
            },
        );
        let secure_cookie = self.value(
            "session.secure_cookie",
            raw.secure_cookie,
            d.secure_cookie,
            parse_bool,
        );
        if !secure_cookie && public_url.starts_with("https://") {
            self.errors.push(ConfigError::Inconsistent {
                key: "session.secure_cookie".to_owned(),
                detail: format!(
                    "is false, but server.public_url ({public_url}) is https: the session \
                     cookie would also be sent over plain HTTP"
                ),
                fix: "remove session.secure_cookie (it is only for plain-HTTP local use)"
                    .to_owned(),
            });
        }
        if idle_timeout > absolute_timeout {
            self.errors.push(ConfigError::Inconsistent {
                key: "session.idle_timeout".to_owned(),
                detail: "is longer than session.absolute_timeout".to_owned(),
                fix: "make the idle timeout at most the absolute timeout".to_owned(),
            });
        }
        SessionConfig {
            idle_timeout,
            absolute_timeout,
            secure_cookie,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{load_from, Config};
    use figment::providers::{Format, Toml};
    use figment::Figment;

    fn from_toml(toml: &str) -> Result<Config, super::ConfigError> {
        load_from(Figment::from(Toml::string(toml)))
    }

    #[test]
    fn oidc_is_optional_and_checked() {
        let c = from_toml("").expect("valid");
        assert!(c.oidc.is_none());

        let c = from_toml(
            "[oidc]\nissuer = \"https://login.example.com/\"\nclient_id = \"timebox\"\n\
             approver_groups = [\"leads\"]\n",
        )
        .expect("valid");
        let oidc = c.oidc.expect("configured");
        assert_eq!(oidc.issuer, "https://login.example.com");
        assert_eq!(oidc.redirect_url, "http://127.0.0.1:3000/auth/callback");
        assert_eq!(oidc.groups_for(app::domain::Role::Approver), ["leads"]);
        assert!(oidc.groups_for(app::domain::Role::Admin).is_empty());

        let m = from_toml("[oidc]\nissuer = \"https://login.example.com\"\n")
            .expect_err("no client id")
            .to_string();
        assert!(m.contains("oidc.client_id is missing"), "{m}");

        let m = from_toml("[oidc]\nissuer = \"login.example.com\"\nclient_id = \"x\"\n")
            .expect_err("bad issuer")
            .to_string();
        assert!(
            m.contains("oidc.issuer = \"login.example.com\" is not an http(s) URL"),
            "{m}"
        );

        let m = from_toml(
            "[oidc]\nissuer = \"https://l.example.com\"\nclient_id = \"x\"\nclient_secret = \"hunter2\"\nclient_secret_file = \"/x\"\n",
        )
        .expect_err("both")
        .to_string();
        assert!(m.contains("oidc.client_secret and oidc.client_secret_file are both set"));
        assert!(!m.contains("hunter2"));

        let m = from_toml("[oidc]\nissuer = \"https://l.example.com\"\nclient_id = \"x\"\napprovers_need_mfa = true\nmfa_amr = []\n")
            .expect_err("no mfa values")
            .to_string();
        assert!(
            m.contains("oidc.mfa_amr and oidc.mfa_acr are both empty"),
            "{m}"
        );
    }

    #[test]
    fn session_rules() {
        let c = from_toml("").expect("valid");
        assert!(c.session.secure_cookie);
        let m = from_toml(
            "[server]\npublic_url = \"https://t.example.com\"\n[session]\nsecure_cookie = false\n",
        )
        .expect_err("insecure on https")
        .to_string();
        assert!(m.contains("session.secure_cookie is false"), "{m}");
        let m = from_toml("[session]\nidle_timeout = \"2d\"\nabsolute_timeout = \"1d\"\n")
            .expect_err("idle > absolute")
            .to_string();
        assert!(m.contains("session.idle_timeout is longer"), "{m}");
        from_toml("[session]\nsecure_cookie = false\n").expect("plain http is fine");
    }
}
