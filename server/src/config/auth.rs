//! `[oidc]` (sign-in with OpenID Connect) and `[session]` (the browser session), the
//! two sections of sign-in.
//!
//! `[oidc]` is optional: without `oidc.issuer` nobody can sign in and every page is
//! seen as an anonymous visitor. With it, `oidc.client_id` is required.

use std::time::Duration;

use app::domain::Role;

use super::kit::{days, hours, http_url, mins, parse_bool, parse_list, Keys, Problem, Secret};
use figment::value::Value;

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
    /// The ID-token claim that identifies a person: their person id in policies,
    /// the audit log and approvals, and what `identity_center.user_match` looks up.
    /// Default `sub`; with Entra ID `oid` (with `user_match = "external_id"`) or
    /// `preferred_username`/`upn` (with `user_match = "user_name"`), with Okta and
    /// Google `email`. Emails and other values with `@` compare without case.
    pub person_claim: String,
    /// The ID-token claim holding the person's groups. Default `groups`.
    pub groups_claim: String,
    /// Group ids as the provider sends them (Entra ID: object ids) → readable names,
    /// so roles and policies may name a group either way. Default none.
    pub group_names: Vec<(String, String)>,
    /// Group → role mapping: a person holds every role one of their groups maps to.
    pub role_groups: Vec<(Role, Vec<String>)>,
    /// Person → role mapping (`oidc.*_people`: person ids, emails compared without
    /// case), for providers that send no groups claim (Google) or for a few named
    /// people; a person holds the roles of their groups and of these lists.
    pub role_people: Vec<(Role, Vec<String>)>,
    /// Whether approving, denying, break-glass and changes to other people's grants or
    /// the catalog need a recent sign-in with MFA. Default true.
    pub approvers_need_mfa: bool,
    /// `amr` values that count as MFA: by default multi-factor or second-factor
    /// methods only ([`DEFAULT_MFA_AMR`]), never `pwd` alone.
    pub mfa_amr: Vec<String>,
    /// `acr` values that count as MFA. Default none.
    pub mfa_acr: Vec<String>,
    /// How long an MFA sign-in counts for approving and break-glass, from its
    /// `auth_time` (1m..=12h). Default 15m; after it, a step-up sign-in.
    pub mfa_max_age: Duration,
}

/// `[session]`: the browser session after sign-in.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Signed out after this long without a request (1m..=7d). Default 1h.
    pub idle_timeout: Duration,
    /// Signed out this long after signing in, whatever the activity (5m..=30d).
    /// Default 12h.
    pub absolute_timeout: Duration,
    /// How often a person's groups (and so roles) are confirmed with the provider
    /// (5m..=1d), with the sign-in's refresh token; a person the provider no longer
    /// knows, or without a refresh token, is signed out. Default 1h.
    pub refresh: Duration,
    /// Whether the session cookie is `Secure`. Default true; false is only allowed
    /// when `server.public_url` is plain `http://` (local use).
    pub secure_cookie: bool,
}

/// The `amr` values (RFC 8176) that count as MFA unless `oidc.mfa_amr` says
/// otherwise: multiple factors (`mfa`), or a factor beyond a password (one-time
/// codes, hardware and software keys, smart cards, biometrics, proof of
/// possession). `pwd`, `pin`, `kba`, `sms` and `tel` alone are not.
pub const DEFAULT_MFA_AMR: &[&str] = &[
    "mfa", "otp", "hwk", "swk", "sc", "fpt", "face", "iris", "retina", "vbm", "pop",
];

const ISSUER_EXAMPLE: &str = "\"https://login.example.com\"";
const REDIRECT_EXAMPLE: &str = "\"https://timebox.example.com/auth/callback\"";

impl OidcConfig {
    /// The groups that grant `role`.
    pub fn groups_for(&self, role: Role) -> &[String] {
        self.role_groups
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, g)| g.as_slice())
            .unwrap_or_default()
    }

    /// The person ids `oidc.<role>_people` gives `role`.
    pub fn people_for(&self, role: Role) -> &[String] {
        self.role_people
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, p)| p.as_slice())
            .unwrap_or_default()
    }

    /// `[oidc]`; `None` when `oidc.issuer` is not set. `public_url` is
    /// `server.public_url`, the base of the default redirect URL.
    pub(super) fn read(keys: &mut Keys<'_, '_>, public_url: &str) -> Option<Self> {
        let issuer = keys
            .optional("issuer", ISSUER_EXAMPLE, |s| {
                http_url(
                    s,
                    ISSUER_EXAMPLE,
                    "your OpenID provider's issuer URL (its discovery document is at \
                     <issuer>/.well-known/openid-configuration)",
                )
            })
            .map(|s| s.trim_end_matches('/').to_owned());
        let client_id = keys.optional("client_id", "\"timebox\"", |_| Ok(()));
        let client_secret = keys.secret("client_secret", "client_secret_file");
        let redirect_url = keys
            .optional("redirect_url", REDIRECT_EXAMPLE, |s| {
                http_url(
                    s,
                    REDIRECT_EXAMPLE,
                    "Timebox's public address followed by /auth/callback, registered with the \
                     provider as this client's redirect URI",
                )
            })
            .unwrap_or_else(|| format!("{public_url}/auth/callback"));
        let scopes = keys.value("scopes", words(&["profile", "email", "groups"]), |v| {
            parse_list(v, "\"profile\", \"email\", \"groups\"")
        });
        let person_claim = keys
            .optional("person_claim", "\"preferred_username\"", |s| {
                if s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c))
                {
                    Ok(())
                } else {
                    Err(Problem::new(
                        "not a claim name",
                        "a claim name is letters, digits, `_`, `-`, `.` or `:`",
                        "name the ID-token claim that identifies a person, such as \"sub\", \
                         \"oid\", \"preferred_username\" or \"email\"",
                    ))
                }
            })
            .unwrap_or_else(|| "sub".to_owned());
        let groups_claim = keys
            .optional("groups_claim", "\"groups\"", |_| Ok(()))
            .unwrap_or_else(|| "groups".to_owned());
        let group_names = keys.value("group_names", Vec::new(), parse_group_names);
        let role_groups = [
            (Role::Requester, "requester_groups"),
            (Role::Approver, "approver_groups"),
            (Role::Auditor, "auditor_groups"),
            (Role::Admin, "admin_groups"),
        ]
        .map(|(role, key)| {
            let groups = keys.value(key, Vec::new(), |v| parse_list(v, "\"timebox-requesters\""));
            (role, groups)
        })
        .to_vec();
        let role_people = [
            (Role::Requester, "requester_people"),
            (Role::Approver, "approver_people"),
            (Role::Auditor, "auditor_people"),
            (Role::Admin, "admin_people"),
        ]
        .map(|(role, key)| {
            let people = keys.value(key, Vec::new(), parse_people);
            (role, people)
        })
        .to_vec();
        let approvers_need_mfa = keys.value("approvers_need_mfa", true, parse_bool);
        let mfa_amr = keys.value("mfa_amr", words(DEFAULT_MFA_AMR), |v| {
            parse_list(v, "\"mfa\", \"otp\"")
        });
        let mfa_acr = keys.value("mfa_acr", Vec::new(), |v| {
            parse_list(v, "\"urn:example:mfa\"")
        });
        let mfa_max_age = keys.duration(
            "mfa_max_age",
            mins(15),
            mins(1)..=hours(12),
            "the MFA age",
            "pick how long after an MFA sign-in a person may approve or use break-glass \
             without signing in again, such as \"15m\"",
        );

        let issuer = issuer?;
        let Some(client_id) = client_id else {
            keys.inconsistent(
                "client_id",
                "is missing, but oidc.issuer is set",
                "set oidc.client_id to the client id registered for Timebox at the \
                 provider, or remove oidc.issuer to turn sign-in off",
            );
            return None;
        };
        if approvers_need_mfa && mfa_amr.is_empty() && mfa_acr.is_empty() {
            keys.inconsistent(
                "approvers_need_mfa",
                "is true, but oidc.mfa_amr and oidc.mfa_acr are both empty",
                "list the amr or acr values your provider sends after an MFA sign-in, \
                 such as mfa_amr = [\"mfa\", \"otp\"]",
            );
        }
        if role_groups.iter().all(|(_, g)| g.is_empty())
            && role_people.iter().all(|(_, p)| p.is_empty())
        {
            tracing::warn!(
                "no oidc.*_groups or oidc.*_people are set: people can sign in but hold no role"
            );
        }
        Some(OidcConfig {
            issuer,
            client_id,
            client_secret,
            redirect_url,
            scopes,
            person_claim,
            groups_claim,
            group_names,
            role_groups,
            role_people,
            approvers_need_mfa,
            mfa_amr,
            mfa_acr,
            mfa_max_age,
        })
    }
}

/// `oidc.*_people`: person ids as `oidc.person_claim` gives them (emails are kept
/// in lower case, as person ids compare).
fn parse_people(value: &Value) -> Result<Vec<String>, Problem> {
    parse_list(value, "\"ada@corp.example\"")?
        .into_iter()
        .map(|p| {
            app::domain::PersonId::parse(&p)
                .map(|id| id.as_str().to_owned())
                .map_err(|e| {
                    Problem::new(
                        "has an entry that is not a person id",
                        format!("{p:?}: {e}"),
                        "list the person ids (the oidc.person_claim values) of the people \
                         who hold the role, such as [\"ada@corp.example\"]",
                    )
                })
        })
        .collect()
}

/// `[oidc.group_names]`: a table of group id → name, both non-empty strings.
fn parse_group_names(value: &Value) -> Result<Vec<(String, String)>, Problem> {
    let example = "{ \"5f1c6a1e-0b7d-4c5e-9a51-3d2f7e8a9b01\" = \"timebox-requesters\" }";
    let fix = "write a table of the provider's group ids and the names policies use, such \
               as [oidc.group_names] followed by \"<object id>\" = \"sre-leads\"";
    // From the environment (TIMEBOX_OIDC__GROUP_NAMES): "<id>=<name>, <id>=<name>".
    if let Value::String(_, text) = value {
        let mut out = Vec::new();
        for pair in text.split(',').filter(|p| !p.trim().is_empty()) {
            match pair.split_once('=') {
                Some((id, name)) if !id.trim().is_empty() && !name.trim().is_empty() => {
                    out.push((id.trim().to_owned(), name.trim().to_owned()));
                }
                _ => {
                    return Err(Problem::new(
                        "has a pair that is not <id>=<name>",
                        format!("{pair:?} in {text:?}"),
                        "write the pairs as \"<object id>=<name>, <object id>=<name>\"",
                    ))
                }
            }
        }
        return Ok(out);
    }
    let Value::Dict(_, entries) = value else {
        return Err(Problem::new(
            "not a table",
            format!("expected {example}"),
            fix,
        ));
    };
    let mut out = Vec::new();
    for (id, name) in entries {
        match name {
            Value::String(_, n) if !n.trim().is_empty() && !id.trim().is_empty() => {
                out.push((id.trim().to_owned(), n.trim().to_owned()));
            }
            _ => {
                return Err(Problem::new(
                    "has an entry that is not a name",
                    format!("the entry for {id:?} must be a non-empty string"),
                    fix,
                ))
            }
        }
    }
    Ok(out)
}

fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|&w| w.to_owned()).collect()
}

impl SessionConfig {
    /// `[session]`; `public_url` is `server.public_url` (a secure cookie is required
    /// over https).
    pub(super) fn read(keys: &mut Keys<'_, '_>, public_url: &str) -> Self {
        let idle_timeout = keys.duration(
            "idle_timeout",
            hours(1),
            mins(1)..=days(7),
            "the idle timeout",
            "pick how long a session may stay unused before its owner must sign in again, \
             such as \"1h\"",
        );
        let absolute_timeout = keys.duration(
            "absolute_timeout",
            hours(12),
            mins(5)..=days(30),
            "the absolute timeout",
            "pick how long after signing in a person must sign in again, such as \"12h\"",
        );
        let refresh = keys.duration(
            "refresh",
            hours(1),
            mins(5)..=days(1),
            "the group refresh interval",
            "pick how often a person's groups are confirmed with the sign-in provider, \
             such as \"1h\"",
        );
        let secure_cookie = keys.value("secure_cookie", true, parse_bool);
        if !secure_cookie && public_url.starts_with("https://") {
            keys.inconsistent(
                "secure_cookie",
                format!(
                    "is false, but server.public_url ({public_url}) is https: the session \
                     cookie would also be sent over plain HTTP"
                ),
                "remove session.secure_cookie (it is only for plain-HTTP local use)",
            );
        }
        if idle_timeout > absolute_timeout {
            keys.inconsistent(
                "idle_timeout",
                "is longer than session.absolute_timeout",
                "make the idle timeout at most the absolute timeout",
            );
        }
        SessionConfig {
            idle_timeout,
            absolute_timeout,
            refresh,
            secure_cookie,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{from_toml, message};

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

        let m = message(from_toml(
            "[oidc]\nissuer = \"https://login.example.com\"\n",
        ));
        assert!(m.contains("oidc.client_id is missing"), "{m}");

        let m = message(from_toml(
            "[oidc]\nissuer = \"login.example.com\"\nclient_id = \"x\"\n",
        ));
        assert!(
            m.contains("oidc.issuer = \"login.example.com\" is not an http(s) URL"),
            "{m}"
        );

        let m = message(from_toml("[oidc]\nissuer = \"https://l.example.com\"\nclient_id = \"x\"\nclient_secret = \"hunter2\"\nclient_secret_file = \"/x\"\n"));
        assert!(m.contains("oidc.client_secret and oidc.client_secret_file are both set"));
        assert!(!m.contains("hunter2"));

        let m = message(from_toml("[oidc]\nissuer = \"https://l.example.com\"\nclient_id = \"x\"\napprovers_need_mfa = true\nmfa_amr = []\n"));
        assert!(
            m.contains("oidc.mfa_amr and oidc.mfa_acr are both empty"),
            "{m}"
        );
    }

    #[test]
    fn session_rules() {
        let c = from_toml("").expect("valid");
        assert!(c.session.secure_cookie);
        let m = message(from_toml(
            "[server]\npublic_url = \"https://t.example.com\"\n[session]\nsecure_cookie = false\n",
        ));
        assert!(m.contains("session.secure_cookie is false"), "{m}");
        let m = message(from_toml(
            "[session]\nidle_timeout = \"2d\"\nabsolute_timeout = \"1d\"\n",
        ));
        assert!(m.contains("session.idle_timeout is longer"), "{m}");
        from_toml("[session]\nsecure_cookie = false\n").expect("plain http is fine");
    }
}
