//! `[revocation]`: how the sessions a revoked grant gave out are closed (a `Deny` on
//! the user's Identity Store id, in a service control policy Timebox owns on the
//! account or in the permission set's inline policy), and how many of the account's
//! policy slots Timebox may use. See docs/sessions.md.

use super::kit::{expect_str, one_of, whole_number, Keys, Problem};

/// How sessions are closed at revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseSessions {
    /// A service control policy on the member account (AWS's recommended way).
    Scp,
    /// The permission set's inline policy, provisioned again.
    Inline,
    /// Not closed: the worst case stands, and says so.
    Off,
}

impl CloseSessions {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseSessions::Scp => "scp",
            CloseSessions::Inline => "inline",
            CloseSessions::Off => "off",
        }
    }
}

/// `[revocation]`.
#[derive(Debug, Clone)]
pub struct RevocationConfig {
    /// `None`: not set, so `"scp"` when the Organizations permissions are there
    /// (checked at start-up), else `"off"` with a warning. Set to `"scp"`, a missing
    /// permission stops start-up.
    pub close_sessions: Option<CloseSessions>,
    /// Service control policies Timebox may attach to one account, 1 to 5 (AWS allows
    /// five per target, FullAWSAccess usually takes one). Default 1.
    pub policy_slots: usize,
    /// With `close_sessions = "scp"`: put the denies that do not fit in the slots in
    /// the permission set's inline policy instead of leaving those sessions open.
    /// Default false.
    pub inline_fallback: bool,
}

impl RevocationConfig {
    pub(super) fn read(keys: &mut Keys<'_, '_>) -> Self {
        let close_sessions = keys.value("close_sessions", None, |v| {
            let text = expect_str(v, "\"scp\"")?.trim();
            if text.is_empty() {
                return Ok(None);
            }
            let all = [
                CloseSessions::Scp,
                CloseSessions::Inline,
                CloseSessions::Off,
            ];
            one_of(text, &all, CloseSessions::as_str)
                .map(Some)
                .ok_or_else(|| {
                    Problem::new(
                        "not a way to close sessions",
                        "sessions are closed by a service control policy, by the permission \
                         set's inline policy, or not at all",
                        "use \"scp\", \"inline\" or \"off\"",
                    )
                })
        });
        let policy_slots = keys.value("policy_slots", 1, |v| {
            whole_number(v)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| (1..=5).contains(n))
                .ok_or_else(|| {
                    Problem::new(
                        "not a number of policy slots from 1 to 5",
                        "AWS attaches at most five service control policies to an account",
                        "use 1 unless the account has room for more, such as 2",
                    )
                })
        });
        let inline_fallback = keys.value("inline_fallback", false, super::kit::parse_bool);
        Self {
            close_sessions,
            policy_slots,
            inline_fallback,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_contains, message, with_env};
    use super::*;

    #[test]
    fn close_sessions_is_one_of_three_and_slots_are_bounded() {
        let m = message(with_env(
            "",
            &[
                ("TIMEBOX_REVOCATION__CLOSE_SESSIONS", "always"),
                ("TIMEBOX_REVOCATION__POLICY_SLOTS", "6"),
            ],
        ));
        assert_contains(
            &m,
            "revocation.close_sessions = \"always\" is not a way to close sessions",
        );
        assert_contains(&m, "use \"scp\", \"inline\" or \"off\"");
        assert_contains(
            &m,
            "revocation.policy_slots = \"6\" is not a number of policy slots from 1 to 5",
        );
        let c = with_env("", &[("TIMEBOX_REVOCATION__CLOSE_SESSIONS", "inline")]).unwrap();
        assert_eq!(c.revocation.close_sessions, Some(CloseSessions::Inline));
        let c = with_env("", &[]).unwrap();
        assert_eq!(c.revocation.close_sessions, None);
        assert_eq!(c.revocation.policy_slots, 1);
        assert!(!c.revocation.inline_fallback);
    }
}
