//! `[identity_center]`: the IAM Identity Center instance Timebox works with, its
//! access-portal session length, how people are found in its identity store and how
//! often its catalog is re-read.

use std::time::Duration;

use app::domain::PortalSession;
use figment::value::Value;

use super::kit::{
    expect_str, hours, human, is_region, mins, one_of, parse_duration, secs, Keys, Problem,
};

const PORTAL_SESSION_FIX: &str = "set it to your Identity Center instance's session duration \
     (Settings → Authentication → Session duration)";

/// How a dashboard person is looked up in the identity store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserMatch {
    /// The person id is the user's `userName` (SCIM from Entra ID sets it to the
    /// user principal name; Okta and Google to the login email).
    UserName,
    /// The person id is one of the user's email addresses (compared without case).
    Email,
    /// The person id is the user's `externalId` from
    /// `identity_center.external_id_issuer` (SCIM from Entra ID sets it to the
    /// object id, the `oid` claim).
    ExternalId,
}

impl UserMatch {
    /// The spelling used in the configuration: `user_name`, `email` or
    /// `external_id`.
    pub fn as_str(self) -> &'static str {
        match self {
            UserMatch::UserName => "user_name",
            UserMatch::Email => "email",
            UserMatch::ExternalId => "external_id",
        }
    }
}

/// `[identity_center]`: the IAM Identity Center instance Timebox works with.
#[derive(Debug, Clone)]
pub struct IdentityCenterConfig {
    /// The instance's access-portal session length (15m..=90d). Default 8h.
    pub portal_session: PortalSession,
    /// AWS region of the instance, such as `us-east-1`.
    pub region: Option<String>,
    /// `arn:aws:sso:::instance/ssoins-…`.
    pub instance_arn: Option<String>,
    /// `d-…` (or the UUID form).
    pub identity_store_id: Option<String>,
    /// How a dashboard person is found in the identity store. Default `user_name`.
    pub user_match: UserMatch,
    /// The issuer of the external ids matched when `user_match = "external_id"`: the
    /// identity store records one per source (for SCIM from Entra ID, the
    /// `Issuer` that `aws identitystore describe-user` shows on the user's
    /// ExternalIds).
    pub external_id_issuer: Option<String>,
    /// How often the catalog (permission sets, accounts, OUs) is re-read. Default 1h.
    pub catalog_refresh: Duration,
}

impl IdentityCenterConfig {
    pub(super) fn read(keys: &mut Keys<'_, '_>) -> Self {
        let config = Self {
            portal_session: keys.value(
                "portal_session",
                PortalSession::DEFAULT,
                parse_portal_session,
            ),
            region: keys.optional("region", "\"us-east-1\"", |s| {
                is_region(s).then_some(()).ok_or_else(|| {
                    Problem::new(
                        "not an AWS region",
                        "a region code is lowercase words and a number joined by dashes",
                        "use the region of your Identity Center instance, such as \"us-east-1\" \
                         or \"eu-west-1\"",
                    )
                })
            }),
            instance_arn: keys.optional(
                "instance_arn",
                "\"arn:aws:sso:::instance/ssoins-0123456789abcdef\"",
                |s| {
                    is_instance_arn(s).then_some(()).ok_or_else(|| {
                        Problem::new(
                            "not an Identity Center instance ARN",
                            "it looks like arn:aws:sso:::instance/ssoins-0123456789abcdef",
                            "copy the instance ARN from the IAM Identity Center console \
                             (Settings → Details), or from `aws sso-admin list-instances`",
                        )
                    })
                },
            ),
            identity_store_id: keys.optional("identity_store_id", "\"d-0123456789\"", |s| {
                is_identity_store_id(s).then_some(()).ok_or_else(|| {
                    Problem::new(
                        "not an identity store ID",
                        "it looks like d-0123456789 (d- and ten hexadecimal digits)",
                        "copy the identity store ID from the IAM Identity Center console \
                         (Settings → Identity source), or from `aws sso-admin list-instances`",
                    )
                })
            }),
            user_match: keys.value("user_match", UserMatch::UserName, |v| {
                let all = [UserMatch::UserName, UserMatch::Email, UserMatch::ExternalId];
                one_of(expect_str(v, "\"user_name\"")?, &all, UserMatch::as_str).ok_or_else(|| {
                    Problem::new(
                        "not a way to match users",
                        "a dashboard person is found in the identity store by userName, by \
                         email or by externalId",
                        "use \"user_name\", \"email\" or \"external_id\"",
                    )
                })
            }),
            external_id_issuer: keys.optional(
                "external_id_issuer",
                "\"https://scim.example.com\"",
                |_| Ok(()),
            ),
            catalog_refresh: keys.duration(
                "catalog_refresh",
                hours(1),
                mins(1)..=hours(24),
                "the catalog refresh interval",
                "pick how often permission sets and accounts are re-read, such as \"1h\"",
            ),
        };
        if config.user_match == UserMatch::ExternalId && config.external_id_issuer.is_none() {
            keys.inconsistent(
                "user_match",
                "is \"external_id\", but identity_center.external_id_issuer is not set",
                "set identity_center.external_id_issuer to the Issuer of your users' \
                 ExternalIds (`aws identitystore describe-user` shows it)",
            );
        }
        config
    }
}

fn parse_portal_session(value: &Value) -> Result<PortalSession, Problem> {
    let d = parse_duration(value, "\"8h\"")?;
    i64::try_from(d.as_secs())
        .ok()
        .and_then(|s| PortalSession::from_seconds(s).ok())
        .ok_or_else(|| {
            let bound = |s: i64| human(secs(u64::try_from(s).unwrap_or_default()));
            Problem::new(
                "out of range",
                format!(
                    "the access-portal session must be between {} and {}",
                    bound(PortalSession::MIN_SECONDS),
                    bound(PortalSession::MAX_SECONDS)
                ),
                PORTAL_SESSION_FIX,
            )
        })
}

fn is_instance_arn(s: &str) -> bool {
    let Some((partition, rest)) = s.strip_prefix("arn:").and_then(|r| r.split_once(':')) else {
        return false;
    };
    if partition.is_empty()
        || !partition
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'-')
    {
        return false;
    }
    let Some(id) = rest.strip_prefix("sso:::instance/") else {
        return false;
    };
    id.strip_prefix("ssoins-")
        .or_else(|| id.strip_prefix("ins-"))
        .is_some_and(|suffix| {
            !suffix.is_empty()
                && suffix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        })
}

fn is_identity_store_id(s: &str) -> bool {
    let hex = |part: &str, len: usize| {
        part.len() == len
            && part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if let Some(rest) = s.strip_prefix("d-") {
        return hex(rest, 10);
    }
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(len, p)| hex(p, *len))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_contains, from_toml, message, with_env};

    #[test]
    fn portal_session_out_of_range_is_refused() {
        let m = message(from_toml("[identity_center]\nportal_session = \"10m\"\n"));
        assert_contains(
            &m,
            "identity_center.portal_session = \"10m\" is out of range: the access-portal \
             session must be between 15m and 90d; set it to your Identity Center instance's \
             session duration (Settings → Authentication → Session duration)",
        );
        let m = message(from_toml("[identity_center]\nportal_session = \"5m\"\n"));
        assert_contains(
            &m,
            "identity_center.portal_session = \"5m\" is out of range",
        );
        let m = message(from_toml("[identity_center]\nportal_session = \"91d\"\n"));
        assert_contains(
            &m,
            "identity_center.portal_session = \"91d\" is out of range",
        );
        assert_contains(&m, "between 15m and 90d");

        // The bounds themselves are accepted, and everything between.
        for ok in ["15m", "7d", "8d", "30d", "90d", "1h 30m"] {
            from_toml(&format!("[identity_center]\nportal_session = \"{ok}\"\n"))
                .unwrap_or_else(|e| panic!("{ok} refused: {e}"));
        }
    }

    #[test]
    fn identity_center_values_are_checked() {
        let m = message(from_toml("[identity_center]\nregion = \"US East\"\n"));
        assert_contains(
            &m,
            "identity_center.region = \"US East\" is not an AWS region",
        );
        let m = message(from_toml(
            "[identity_center]\ninstance_arn = \"ssoins-123\"\n",
        ));
        assert_contains(
            &m,
            "identity_center.instance_arn = \"ssoins-123\" is not an Identity Center instance ARN",
        );
        let m = message(from_toml(
            "[identity_center]\nidentity_store_id = \"d-12\"\n",
        ));
        assert_contains(
            &m,
            "identity_center.identity_store_id = \"d-12\" is not an identity store ID",
        );

        // Empty optional values mean "not set".
        let c = with_env(
            "[identity_center]\nregion = \"us-east-1\"\n",
            &[("TIMEBOX_IDENTITY_CENTER__REGION", "")],
        )
        .expect("valid");
        assert_eq!(c.identity_center.region, None);
        let c = from_toml("[identity_center]\nidentity_store_id = \"a1b2c3d4-1234-5678-9abc-def012345678\"\nregion = \"us-gov-west-1\"\ninstance_arn = \"arn:aws-us-gov:sso:::instance/ssoins-72231d7d1e0a5bcd\"\n")
            .expect("valid");
        assert_eq!(c.identity_center.region.as_deref(), Some("us-gov-west-1"));
    }
}
