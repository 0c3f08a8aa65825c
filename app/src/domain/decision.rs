//! An approver's decision on a request, as it is recorded (stored as `approve` /
//! `deny`).

use serde::Serialize;

/// A decision recorded on a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approve,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approve => "approve",
            Decision::Deny => "deny",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Decision::Approve, Decision::Deny]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::Decision;

    #[test]
    fn decisions_round_trip() {
        for d in [Decision::Approve, Decision::Deny] {
            assert_eq!(Decision::parse(d.as_str()), Some(d));
        }
        assert_eq!(Decision::parse("abstain"), None);
    }
}
