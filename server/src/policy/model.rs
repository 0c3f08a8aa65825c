//! The parsed policy file as both parsing ([`super::file`]) and resolution
//! ([`super::resolve`]) see it: the policies in force, each rule as written with its
//! parsed matchers, and one problem of the file. No I/O and no catalog here.

use std::fmt;

use app::domain::Policy;

/// Who a `requesters` / `approvers` entry names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Principal {
    /// `user:<id>`: the person whose sign-in subject is `<id>`.
    User(String),
    /// `group:<name>`: anyone whose groups claim holds `<name>`.
    Group(String),
    /// `*`: anyone (with the requester role). Not allowed among approvers.
    Anyone,
}

impl Principal {
    /// Whether a person with this id and these groups is named.
    pub fn matches(&self, person: &str, groups: &[String]) -> bool {
        match self {
            Principal::User(u) => u == person,
            Principal::Group(g) => groups.iter().any(|x| x == g),
            Principal::Anyone => true,
        }
    }

    /// 0 for a user, 1 for a group, 2 for anyone: lower is more specific.
    pub fn rank(&self) -> u32 {
        match self {
            Principal::User(_) => 0,
            Principal::Group(_) => 1,
            Principal::Anyone => 2,
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::User(u) => write!(f, "user:{u}"),
            Principal::Group(g) => write!(f, "group:{g}"),
            Principal::Anyone => f.write_str("*"),
        }
    }
}

/// What an `accounts` entry covers. `Display` is the entry as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Account(String),
    /// An OU and everything under it (nested OUs and their accounts).
    Ou(String),
    /// An organisation root: every account under it.
    Root(String),
    /// `*`: every account.
    Any,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Account(id) | Scope::Ou(id) | Scope::Root(id) => f.write_str(id),
            Scope::Any => f.write_str("*"),
        }
    }
}

/// A `permission_sets` entry. `Display` is the entry as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionSetMatch {
    Name(String),
    Any,
}

impl PermissionSetMatch {
    pub fn matches(&self, name: &str) -> bool {
        match self {
            PermissionSetMatch::Name(n) => n == name,
            PermissionSetMatch::Any => true,
        }
    }
}

impl fmt::Display for PermissionSetMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PermissionSetMatch::Name(n) => f.write_str(n),
            PermissionSetMatch::Any => f.write_str("*"),
        }
    }
}

/// One validated policy: the rule as written ([`Policy`], what pages show) and its
/// parsed matchers.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    pub rule: Policy,
    pub requesters: Vec<Principal>,
    pub accounts: Vec<Scope>,
    pub permission_sets: Vec<PermissionSetMatch>,
    /// Who approves (approval policies) or who may review besides auditors and admins
    /// (break-glass policies).
    pub approvers: Vec<Principal>,
    /// `ticket_pattern`, anchored: the whole ticket must match.
    pub ticket_regex: Option<regex::Regex>,
}

impl CompiledPolicy {
    /// Whether the person is among the requesters; the most specific matching entry's
    /// rank (user 0, group 1, anyone 2).
    pub fn requester_rank(&self, person: &str, groups: &[String]) -> Option<u32> {
        self.requesters
            .iter()
            .filter(|p| p.matches(person, groups))
            .map(Principal::rank)
            .min()
    }

    /// Whether the person is named among the approvers (or reviewers).
    pub fn names_approver(&self, person: &str, groups: &[String]) -> bool {
        self.approvers.iter().any(|p| p.matches(person, groups))
    }

    pub fn name(&self) -> &str {
        &self.rule.name
    }

    /// How this policy is named in problems: `policy "name"`.
    pub(crate) fn label(&self) -> String {
        label(&self.rule.name)
    }
}

/// How a policy is named in problems: `policy "name"`.
pub(crate) fn label(name: &str) -> String {
    format!("policy {name:?}")
}

/// The policies in force, in file order.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    pub policies: Vec<CompiledPolicy>,
    /// SHA-256 (hex) of the file's text: which version of the file decided a
    /// request (recorded in its audit event) and what each load put in force.
    pub sha256: String,
}

impl PolicySet {
    pub fn get(&self, name: &str) -> Option<&CompiledPolicy> {
        self.policies.iter().find(|p| p.rule.name == name)
    }

    /// The rules as written, for pages.
    pub fn rules(&self) -> Vec<Policy> {
        self.policies.iter().map(|p| p.rule.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }
}

/// One problem in the policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyProblem {
    /// The policy's name, else its position (`policy #2`); `None` for the whole file.
    pub policy: Option<String>,
    /// The key at fault.
    pub key: Option<String>,
    /// What is wrong and what to write instead.
    pub problem: String,
}

impl PolicyProblem {
    /// A problem of `key` in the policy `label` (`policy "name"` or `policy #2`).
    pub(crate) fn at(label: &str, key: &str, problem: impl Into<String>) -> Self {
        Self {
            policy: Some(label.to_owned()),
            key: Some(key.to_owned()),
            problem: problem.into(),
        }
    }

    /// A problem of the whole file, or of one of its top-level keys.
    pub(crate) fn of_file(key: Option<&str>, problem: impl Into<String>) -> Self {
        Self {
            policy: None,
            key: key.map(str::to_owned),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.policy, &self.key) {
            (Some(p), Some(k)) => write!(f, "{p}: {k}: {}", self.problem),
            (Some(p), None) => write!(f, "{p}: {}", self.problem),
            (None, Some(k)) => write!(f, "{k}: {}", self.problem),
            (None, None) => f.write_str(&self.problem),
        }
    }
}
