//! `[aws]`: how the AWS SDK clients are reached (endpoint overrides, for an emulator
//! or a private endpoint), this server's AWS call rate and the timeout of one call.
//! Credentials always come from the SDK's default chain.

use std::time::Duration;

use super::kit::{secs, whole_number, Keys, Problem};

/// `[aws]`: how the AWS SDK clients are reached. Credentials always come from the
/// SDK's default chain; the SDK's `AWS_ENDPOINT_URL*` variables work too.
#[derive(Debug, Clone)]
pub struct AwsConfig {
    /// One endpoint for every service (an emulator). Default: AWS's own.
    pub endpoint_url: Option<String>,
    pub sso_admin_endpoint_url: Option<String>,
    pub identity_store_endpoint_url: Option<String>,
    pub organizations_endpoint_url: Option<String>,
    /// Evidence: STS (assuming the read-only role), CloudTrail, Detective and IAM.
    pub sts_endpoint_url: Option<String>,
    pub cloudtrail_endpoint_url: Option<String>,
    pub detective_endpoint_url: Option<String>,
    pub iam_endpoint_url: Option<String>,
    /// Audit checkpoints' S3 bucket (`audit.checkpoint_s3`, `timebox audit verify`).
    /// With this or `endpoint_url` set, S3 is addressed path-style (an emulator has
    /// no per-bucket host names).
    pub s3_endpoint_url: Option<String>,
    /// Upper bound on AWS calls per second from this server; `None` = no bound.
    pub max_calls_per_second: Option<u32>,
    /// Timeout of one AWS call attempt. Default 10s.
    pub call_timeout: Duration,
}

impl AwsConfig {
    pub(super) fn read(keys: &mut Keys<'_, '_>) -> Self {
        let mut endpoint = |key| {
            keys.optional(key, "\"http://127.0.0.1:5000\"", |s| {
                if s.starts_with("http://") || s.starts_with("https://") {
                    return Ok(());
                }
                Err(Problem::new(
                    "not an http(s) URL",
                    "an endpoint override is the URL of an AWS API or an emulator",
                    "write it as \"https://sso.us-east-1.amazonaws.com\" or \
                     \"http://127.0.0.1:5000\", or remove the key to use AWS's own endpoint",
                ))
            })
        };
        Self {
            endpoint_url: endpoint("endpoint_url"),
            sso_admin_endpoint_url: endpoint("sso_admin_endpoint_url"),
            identity_store_endpoint_url: endpoint("identity_store_endpoint_url"),
            organizations_endpoint_url: endpoint("organizations_endpoint_url"),
            sts_endpoint_url: endpoint("sts_endpoint_url"),
            cloudtrail_endpoint_url: endpoint("cloudtrail_endpoint_url"),
            detective_endpoint_url: endpoint("detective_endpoint_url"),
            iam_endpoint_url: endpoint("iam_endpoint_url"),
            s3_endpoint_url: endpoint("s3_endpoint_url"),
            max_calls_per_second: keys.value("max_calls_per_second", Some(20), |v| {
                let problem = || {
                    Problem::new(
                        "not a whole number from 0 to 10000",
                        "it bounds this server's AWS call rate",
                        "write a number such as 20 (0 for no bound)",
                    )
                };
                match whole_number(v).map(u32::try_from) {
                    Some(Ok(0)) => Ok(None),
                    Some(Ok(n)) if n <= 10_000 => Ok(Some(n)),
                    _ => Err(problem()),
                }
            }),
            call_timeout: keys.duration(
                "call_timeout",
                secs(10),
                secs(1)..=secs(120),
                "the AWS call timeout",
                "pick how long one AWS call may take, such as \"10s\"",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::{assert_contains, from_toml, message, with_env};
    use super::super::{Config, UserMatch};

    #[test]
    fn aws_and_identity_mapping_keys() {
        let c = from_toml(
            r#"
            [identity_center]
            user_match = "email"
            catalog_refresh = "15m"
            [aws]
            endpoint_url = "http://127.0.0.1:5000"
            organizations_endpoint_url = "https://organizations.us-east-1.amazonaws.com"
            max_calls_per_second = 0
            call_timeout = "3s"
            "#,
        )
        .unwrap();
        assert_eq!(c.identity_center.user_match, UserMatch::Email);
        assert_eq!(c.identity_center.catalog_refresh, Duration::from_secs(900));
        assert_eq!(c.aws.endpoint_url.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(c.aws.sso_admin_endpoint_url, None);
        assert_eq!(c.aws.max_calls_per_second, None, "0 means no bound");
        assert_eq!(c.aws.call_timeout, Duration::from_secs(3));
        let d = Config::default();
        assert_eq!(d.aws.max_calls_per_second, Some(20));
        assert_eq!(d.identity_center.user_match, UserMatch::UserName);

        let m = message(from_toml(
            "[identity_center]\nuser_match = \"login\"\n[aws]\nendpoint_url = \"localhost:5000\"\nmax_calls_per_second = -1\n",
        ));
        assert_contains(
            &m,
            "identity_center.user_match = \"login\" is not a way to match users",
        );
        assert_contains(&m, "use \"user_name\", \"email\" or \"external_id\"");
        let issuerless = message(from_toml(
            "[identity_center]\nuser_match = \"external_id\"\n",
        ));
        assert_contains(
            &issuerless,
            "identity_center.user_match is \"external_id\", but identity_center.external_id_issuer is not set",
        );
        let c = from_toml(
            "[identity_center]\nuser_match = \"external_id\"\nexternal_id_issuer = \"https://scim.example\"\n",
        )
        .expect("valid");
        assert_eq!(c.identity_center.user_match, UserMatch::ExternalId);
        assert_contains(
            &m,
            "aws.endpoint_url = \"localhost:5000\" is not an http(s) URL",
        );
        assert_contains(
            &m,
            "aws.max_calls_per_second = -1 is not a whole number from 0 to 10000",
        );
        let m = message(with_env("", &[("TIMEBOX_AWS__CALL_TIMEOUT", "10m")]));
        assert_contains(&m, "aws.call_timeout = \"10m\" is out of range");
    }
}
