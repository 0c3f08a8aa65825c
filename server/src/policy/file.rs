//! The policy file: TOML text → a validated [`PolicySet`], or every problem found, each
//! naming the policy, the key and what to change (docs/policy.md describes the format).
//!
//! Checks here need only the file. Checks against the synced catalog (does this
//! permission set, account or OU exist?) are [`super::resolve::catalog_problems`].

use std::collections::BTreeSet;
use std::time::Duration;

use app::domain::{
    AccountId, ApprovalRule, GrantDuration, Justification, PermissionSetName, PersonId, Policy,
    TicketRule,
};
use toml::Value;

use super::model::{
    label, CompiledPolicy, PermissionSetMatch, PolicyProblem, PolicySet, Principal, Scope,
};
use crate::config::edit_distance;

/// Every key a `[[policy]]` table may hold, for "did you mean" hints.
pub const POLICY_KEYS: &[&str] = &[
    "name",
    "requesters",
    "accounts",
    "permission_sets",
    "max_duration",
    "approvers",
    "approvals_required",
    "approval",
    "ticket",
    "ticket_pattern",
    "min_justification",
    "pending_ttl",
    "max_active_per_user",
    "break_glass",
];

/// Default `pending_ttl`: a request nobody decides in a day expires.
pub const DEFAULT_PENDING_TTL: Duration = Duration::from_secs(24 * 3600);
const MIN_PENDING_TTL: Duration = Duration::from_secs(5 * 60);
const MAX_PENDING_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
const MAX_APPROVALS: i64 = 10;
const MAX_CAP: i64 = 1000;

/// Why a policy file was refused: every problem found, at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the policy file {file} was refused ({} problem{}); fix it (docs/policy.md describes every key):{}", .problems.len(), if .problems.len() == 1 { "" } else { "s" }, bullets(.problems))]
pub struct PolicyFileError {
    pub file: String,
    pub problems: Vec<PolicyProblem>,
}

fn bullets(problems: &[PolicyProblem]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}

/// Parses and validates the text of a policy file.
pub fn parse(text: &str) -> Result<PolicySet, Vec<PolicyProblem>> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        let detail = e.to_string().trim_end().replace('\n', "\n    ");
        vec![PolicyProblem::of_file(
            None,
            format!("is not valid TOML: {detail}"),
        )]
    })?;
    let mut problems = Vec::new();
    let mut policies = Vec::new();
    for (key, value) in &table {
        if key != "policy" {
            problems.push(PolicyProblem::of_file(
                Some(key),
                "unknown top-level key; the file holds [[policy]] tables only",
            ));
            continue;
        }
        let Value::Array(entries) = value else {
            problems.push(PolicyProblem::of_file(
                Some("policy"),
                "must be an array of tables: write each policy under its own [[policy]] header \
                 (two brackets)",
            ));
            continue;
        };
        for (i, entry) in entries.iter().enumerate() {
            let Value::Table(t) = entry else {
                problems.push(PolicyProblem {
                    policy: Some(format!("policy #{}", i + 1)),
                    key: None,
                    problem: "must be a table ([[policy]] followed by its keys)".into(),
                });
                continue;
            };
            let mut check = Check {
                label: match t.get("name") {
                    Some(Value::String(n)) if !n.trim().is_empty() => label(n.trim()),
                    _ => format!("policy #{}", i + 1),
                },
                problems: &mut problems,
            };
            if let Some(p) = check.policy(t) {
                policies.push(p);
            }
        }
    }
    if !table.contains_key("policy") && problems.is_empty() {
        problems.push(PolicyProblem::of_file(
            None,
            "defines no policy, so nobody could ask for access; add at least one [[policy]] \
             table",
        ));
    }
    let mut seen = BTreeSet::new();
    for p in &policies {
        if !seen.insert(p.rule.name.clone()) {
            problems.push(PolicyProblem::at(
                &p.label(),
                "name",
                "is used by more than one policy; names must be unique (grants record the \
                 name of the policy that decided them)",
            ));
        }
    }
    if problems.is_empty() {
        Ok(PolicySet {
            policies,
            sha256: String::new(),
        })
    } else {
        Err(problems)
    }
}

struct Check<'a> {
    label: String,
    problems: &'a mut Vec<PolicyProblem>,
}

impl Check<'_> {
    fn problem(&mut self, key: &str, problem: impl Into<String>) {
        self.problems
            .push(PolicyProblem::at(&self.label, key, problem));
    }

    fn policy(&mut self, t: &toml::Table) -> Option<CompiledPolicy> {
        let before = self.problems.len();
        for key in t.keys() {
            if !POLICY_KEYS.contains(&key.as_str()) {
                let hint = closest(key, POLICY_KEYS)
                    .map(|k| format!(" (did you mean {k}?)"))
                    .unwrap_or_default();
                self.problem(
                    key,
                    format!("unknown key{hint}; a policy has {}", POLICY_KEYS.join(", ")),
                );
            }
        }
        let name = self.name(t.get("name"));
        let requesters = self.principals(t.get("requesters"), "requesters", true);
        let accounts = self.accounts(t.get("accounts"));
        let permission_sets = self.permission_sets(t.get("permission_sets"));
        let max_duration = self.max_duration(t.get("max_duration"));
        let break_glass = self.boolean(t.get("break_glass"), "break_glass");
        let (approval, approvers) = self.approval(t, break_glass, &requesters);
        let ticket_required = self.ticket(t.get("ticket"));
        let (pattern, ticket_regex) = self.ticket_pattern(t.get("ticket_pattern"));
        let min_justification = self
            .integer(
                t.get("min_justification"),
                "min_justification",
                1,
                i64::try_from(Justification::MAX_CHARS).unwrap_or(2000),
            )
            .unwrap_or(i64::try_from(Justification::MIN_CHARS).unwrap_or(10));
        let pending_ttl = match t.get("pending_ttl") {
            None => Some(DEFAULT_PENDING_TTL),
            Some(v) => self.duration(
                v,
                "pending_ttl",
                (MIN_PENDING_TTL, MAX_PENDING_TTL),
                "\"24h\"",
            ),
        };
        let max_active_per_user = match t.get("max_active_per_user") {
            None => None,
            Some(_) => self.integer(
                t.get("max_active_per_user"),
                "max_active_per_user",
                1,
                MAX_CAP,
            ),
        };
        if self.problems.len() > before {
            return None;
        }
        let minutes = |d: Duration| u32::try_from(d.as_secs() / 60).unwrap_or(u32::MAX);
        let reviewers = if break_glass {
            approvers.iter().map(ToString::to_string).collect()
        } else {
            Vec::new()
        };
        Some(CompiledPolicy {
            rule: Policy {
                name: name?,
                requesters: requesters.iter().map(ToString::to_string).collect(),
                accounts: accounts.iter().map(ToString::to_string).collect(),
                permission_sets: permission_sets.iter().map(ToString::to_string).collect(),
                max_duration_minutes: minutes(max_duration?),
                approval: approval?,
                ticket: TicketRule {
                    required: ticket_required,
                    pattern,
                },
                min_justification: u32::try_from(min_justification).unwrap_or(u32::MAX),
                pending_ttl_minutes: minutes(pending_ttl?),
                max_active_per_user: max_active_per_user.and_then(|n| u32::try_from(n).ok()),
                break_glass,
                reviewers,
            },
            requesters,
            accounts,
            permission_sets,
            approvers,
            ticket_regex,
        })
    }

    fn name(&mut self, v: Option<&Value>) -> Option<String> {
        let Some(v) = v else {
            self.problem(
                "name",
                "is missing; give every policy a unique name such as \"ec2-admin-oncall\"",
            );
            return None;
        };
        let Value::String(s) = v else {
            self.problem("name", "must be a string such as \"ec2-admin-oncall\"");
            return None;
        };
        let s = s.trim();
        if s.is_empty()
            || s.chars().count() > 64
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            self.problem(
                "name",
                format!("{s:?} is not a usable name: use 1 to 64 letters, digits, '-', '_' or '.'"),
            );
            return None;
        }
        Some(s.to_owned())
    }

    /// A non-empty array of strings; problems name the key.
    fn strings(&mut self, v: Option<&Value>, key: &str, example: &str) -> Option<Vec<String>> {
        let Some(v) = v else {
            self.problem(key, format!("is missing; write e.g. {key} = {example}"));
            return None;
        };
        let Value::Array(items) = v else {
            self.problem(
                key,
                format!("must be an array of strings, e.g. {key} = {example}"),
            );
            return None;
        };
        if items.is_empty() {
            self.problem(
                key,
                format!(
                    "is empty, so the policy would match nothing; write e.g. {key} = {example}"
                ),
            );
            return None;
        }
        let mut out = Vec::new();
        for item in items {
            match item {
                Value::String(s) => out.push(s.trim().to_owned()),
                other => {
                    self.problem(
                        key,
                        format!(
                            "holds {}, not a string; write e.g. {key} = {example}",
                            other.type_str()
                        ),
                    );
                    return None;
                }
            }
        }
        Some(out)
    }

    fn principals(&mut self, v: Option<&Value>, key: &str, anyone_allowed: bool) -> Vec<Principal> {
        let example = "[\"group:sre-oncall\", \"user:alice\"]";
        let Some(items) = self.strings(v, key, example) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for s in items {
            if s == "*" {
                if anyone_allowed {
                    out.push(Principal::Anyone);
                } else {
                    self.problem(
                        key,
                        "\"*\" is not allowed here: name the approvers (group:x or user:y)",
                    );
                }
            } else if let Some(g) = s.strip_prefix("group:") {
                if g.trim().is_empty() {
                    self.problem(
                        key,
                        "\"group:\" needs a group name, e.g. \"group:sre-leads\"",
                    );
                } else {
                    out.push(Principal::Group(g.trim().to_owned()));
                }
            } else if let Some(u) = s.strip_prefix("user:") {
                match PersonId::parse(u) {
                    Ok(id) => out.push(Principal::User(id.to_string())),
                    Err(e) => self.problem(key, format!("{s:?}: the user {}", e.message)),
                }
            } else {
                self.problem(
                    key,
                    format!(
                        "{s:?} is neither \"group:<name>\" nor \"user:<id>\"{}",
                        if anyone_allowed { " nor \"*\"" } else { "" }
                    ),
                );
            }
        }
        // Duplicates dropped, the order kept as written (pages show it).
        let mut seen = BTreeSet::new();
        out.retain(|p| seen.insert(p.clone()));
        out
    }

    fn accounts(&mut self, v: Option<&Value>) -> Vec<Scope> {
        let Some(items) = self.strings(v, "accounts", "[\"111122223333\", \"ou-ab12-cdef3456\"]")
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for s in items {
            if s == "*" {
                out.push(Scope::Any);
            } else if s.starts_with("ou-") {
                if is_ou_id(&s) {
                    out.push(Scope::Ou(s));
                } else {
                    self.problem(
                        "accounts",
                        format!("{s:?} is not an OU id (ou-<4 to 32 characters>-<8 to 32 characters>, lower case)"),
                    );
                }
            } else if s.starts_with("r-") {
                if is_root_id(&s) {
                    out.push(Scope::Root(s));
                } else {
                    self.problem(
                        "accounts",
                        format!(
                            "{s:?} is not a root id (r-<4 to 32 lower-case letters or digits>)"
                        ),
                    );
                }
            } else {
                match AccountId::parse(&s) {
                    Ok(a) => out.push(Scope::Account(a.to_string())),
                    Err(e) => self.problem(
                        "accounts",
                        format!(
                            "{s:?} is not an account id ({}), an OU id (ou-…), a root id (r-…) or \"*\"",
                            e.message
                        ),
                    ),
                }
            }
        }
        out
    }

    fn permission_sets(&mut self, v: Option<&Value>) -> Vec<PermissionSetMatch> {
        let Some(items) = self.strings(v, "permission_sets", "[\"EC2AdminAccess\"]") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for s in items {
            if s == "*" {
                out.push(PermissionSetMatch::Any);
                continue;
            }
            match PermissionSetName::parse(&s) {
                Ok(n) => out.push(PermissionSetMatch::Name(n.to_string())),
                Err(e) => self.problem("permission_sets", format!("{s:?}: {}", e.message)),
            }
        }
        out
    }

    fn duration(
        &mut self,
        v: &Value,
        key: &str,
        (min, max): (Duration, Duration),
        example: &str,
    ) -> Option<Duration> {
        let Value::String(s) = v else {
            self.problem(
                key,
                format!(
                    "must be a quoted duration with a unit such as {example} (found {})",
                    v.type_str()
                ),
            );
            return None;
        };
        let d = match humantime::parse_duration(s.trim()) {
            Ok(d) => d,
            Err(e) => {
                self.problem(
                    key,
                    format!("{s:?} is not a duration ({e}); write e.g. {example}, \"30m\" or \"1h 30m\""),
                );
                return None;
            }
        };
        if d.as_secs() % 60 != 0 {
            self.problem(key, format!("{s:?} is not a whole number of minutes"));
            return None;
        }
        if d < min || d > max {
            self.problem(
                key,
                format!(
                    "{s:?} is out of range: it must be between {} and {}",
                    humantime::format_duration(min),
                    humantime::format_duration(max)
                ),
            );
            return None;
        }
        Some(d)
    }

    fn max_duration(&mut self, v: Option<&Value>) -> Option<Duration> {
        let Some(v) = v else {
            self.problem(
                "max_duration",
                "is missing; say how long a grant may last, e.g. max_duration = \"4h\"",
            );
            return None;
        };
        let max_minutes = u64::try_from(GrantDuration::ABSOLUTE_MAX_MINUTES).unwrap_or(720);
        self.duration(
            v,
            "max_duration",
            (
                Duration::from_secs(60),
                Duration::from_secs(max_minutes * 60),
            ),
            "\"4h\"",
        )
    }

    fn boolean(&mut self, v: Option<&Value>, key: &str) -> bool {
        match v {
            None => false,
            Some(Value::Boolean(b)) => *b,
            Some(other) => {
                self.problem(
                    key,
                    format!("must be true or false (found {})", other.type_str()),
                );
                false
            }
        }
    }

    fn integer(&mut self, v: Option<&Value>, key: &str, min: i64, max: i64) -> Option<i64> {
        match v? {
            Value::Integer(n) if (min..=max).contains(n) => Some(*n),
            Value::Integer(n) => {
                self.problem(
                    key,
                    format!("{n} is out of range: it must be {min} to {max}"),
                );
                None
            }
            other => {
                self.problem(
                    key,
                    format!("must be a whole number (found {})", other.type_str()),
                );
                None
            }
        }
    }

    /// `approval`, `approvers` and `approvals_required` together.
    fn approval(
        &mut self,
        t: &toml::Table,
        break_glass: bool,
        requesters: &[Principal],
    ) -> (Option<ApprovalRule>, Vec<Principal>) {
        let auto = match t.get("approval") {
            None => false,
            Some(Value::String(s)) if s.trim() == "auto" => true,
            Some(other) => {
                self.problem(
                    "approval",
                    format!(
                        "{} is not allowed: the only value is \"auto\" (approved by Timebox at \
                         once); for approval by people remove it and set approvers and \
                         approvals_required",
                        written(other)
                    ),
                );
                return (None, Vec::new());
            }
        };
        if break_glass {
            if t.contains_key("approvals_required") {
                self.problem(
                    "approvals_required",
                    "a break-glass policy is never approved by people (it starts at once and \
                     is reviewed afterwards); remove approvals_required (approvers, if set, \
                     name who may review its use)",
                );
                return (None, Vec::new());
            }
            let reviewers = if t.contains_key("approvers") {
                self.principals(t.get("approvers"), "approvers", false)
            } else {
                Vec::new()
            };
            return (Some(ApprovalRule::Auto), reviewers);
        }
        if auto {
            for key in ["approvers", "approvals_required"] {
                if t.contains_key(key) {
                    self.problem(
                        key,
                        "conflicts with approval = \"auto\": remove it, or remove approval = \
                         \"auto\" to have people approve",
                    );
                }
            }
            return (Some(ApprovalRule::Auto), Vec::new());
        }
        if !t.contains_key("approvers") {
            self.problem(
                "approvers",
                "is missing: name who approves (e.g. approvers = [\"group:sre-leads\"] with \
                 approvals_required = 1), or set approval = \"auto\"",
            );
            return (None, Vec::new());
        }
        let approvers = self.principals(t.get("approvers"), "approvers", false);
        let count = match t.get("approvals_required") {
            None => Some(1),
            Some(Value::Integer(0)) => {
                self.problem(
                    "approvals_required",
                    "is 0 without approval = \"auto\": set at least 1, or write approval = \
                     \"auto\" (and remove approvers) for automatic approval",
                );
                None
            }
            v => self.integer(v, "approvals_required", 1, MAX_APPROVALS),
        };
        let Some(count) = count else {
            return (None, approvers);
        };
        if approvers.is_empty() {
            return (None, approvers);
        }
        if let [Principal::Group(only)] = requesters {
            if approvers.contains(&Principal::Group(only.clone())) {
                self.problem(
                    "approvers",
                    format!(
                        "group:{only} is also the only requester group, so requesters would \
                         approve each other's requests; name a separate approver group or users"
                    ),
                );
                return (None, approvers);
            }
        }
        if approvers.iter().all(|p| matches!(p, Principal::User(_)))
            && i64::try_from(approvers.len()).unwrap_or(i64::MAX) < count
        {
            self.problem(
                "approvals_required",
                format!(
                    "{count} distinct approvals can never be reached with only {} approver{} named",
                    approvers.len(),
                    if approvers.len() == 1 { "" } else { "s" }
                ),
            );
            return (None, approvers);
        }
        let rule = ApprovalRule::Required {
            count: u32::try_from(count).unwrap_or(1),
            approvers: approvers.iter().map(ToString::to_string).collect(),
        };
        (Some(rule), approvers)
    }

    fn ticket(&mut self, v: Option<&Value>) -> bool {
        match v {
            None => false,
            Some(Value::String(s)) if s.trim() == "optional" => false,
            Some(Value::String(s)) if s.trim() == "required" => true,
            Some(other) => {
                self.problem(
                    "ticket",
                    format!(
                        "must be \"optional\" or \"required\" (found {})",
                        written(other)
                    ),
                );
                false
            }
        }
    }

    fn ticket_pattern(&mut self, v: Option<&Value>) -> (Option<String>, Option<regex::Regex>) {
        let Some(v) = v else {
            return (None, None);
        };
        let Value::String(s) = v else {
            self.problem(
                "ticket_pattern",
                format!(
                    "must be a string holding a regular expression such as '^INC-[0-9]+$' (found {})",
                    v.type_str()
                ),
            );
            return (None, None);
        };
        // Anchored: the whole ticket must match, whatever the author wrote.
        match regex::RegexBuilder::new(&format!("^(?:{s})$"))
            .size_limit(1 << 20)
            .build()
        {
            Ok(r) => (Some(s.clone()), Some(r)),
            Err(e) => {
                let detail = e.to_string().replace('\n', " ");
                self.problem(
                    "ticket_pattern",
                    format!("{s:?} is not a valid regular expression: {detail}"),
                );
                (None, None)
            }
        }
    }
}

/// The key within two edits of `word`, if any; on a tie the alphabetically first.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, c)| c)
}

/// A value as messages show it: a string quoted, anything else by its type.
fn written(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        v => v.type_str().to_owned(),
    }
}

fn lower_alnum(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
}

/// `ou-<4..32>-<8..32>`, lower-case letters and digits (the Organizations format).
fn is_ou_id(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("ou-") else {
        return false;
    };
    let Some((a, b)) = rest.split_once('-') else {
        return false;
    };
    (4..=32).contains(&a.len()) && (8..=32).contains(&b.len()) && lower_alnum(a) && lower_alnum(b)
}

/// `r-<4..32>`, lower-case letters and digits.
fn is_root_id(s: &str) -> bool {
    s.strip_prefix("r-")
        .is_some_and(|r| (4..=32).contains(&r.len()) && lower_alnum(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid policy to break one key at a time.
    const GOOD: &str = r#"
[[policy]]
name = "ec2-admin-oncall"
requesters = ["group:sre-oncall"]
accounts = ["111122223333", "ou-ab12-cdef3456"]
permission_sets = ["EC2AdminAccess"]
max_duration = "4h"
approvers = ["group:sre-leads"]
approvals_required = 1
ticket = "required"
ticket_pattern = "INC-[0-9]+"
"#;

    fn problems(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(_) => Vec::new(),
            Err(p) => p.iter().map(ToString::to_string).collect(),
        }
    }

    /// `GOOD` with `key = value` replaced (or removed when `value` is `None`).
    fn with(key: &str, value: Option<&str>) -> String {
        let mut out: Vec<String> = GOOD
            .lines()
            .filter(|l| !l.starts_with(&format!("{key} =")))
            .map(str::to_owned)
            .collect();
        if let Some(v) = value {
            out.push(format!("{key} = {v}"));
        }
        out.join("\n")
    }

    fn only_problem(text: &str) -> String {
        let p = problems(text);
        assert_eq!(p.len(), 1, "{p:#?}");
        p.into_iter().next().unwrap_or_default()
    }

    #[test]
    fn the_design_example_parses() {
        let set = parse(GOOD).unwrap_or_else(|p| panic!("{p:?}"));
        let p = &set.policies[0];
        assert_eq!(p.rule.name, "ec2-admin-oncall");
        assert_eq!(p.rule.max_duration_minutes, 240);
        assert_eq!(
            p.rule.approval,
            ApprovalRule::Required {
                count: 1,
                approvers: vec!["group:sre-leads".into()]
            }
        );
        assert!(p.rule.ticket.required);
        assert_eq!(p.rule.min_justification, 10);
        assert_eq!(p.rule.pending_ttl_minutes, 24 * 60);
        assert_eq!(
            p.accounts,
            vec![
                Scope::Account("111122223333".into()),
                Scope::Ou("ou-ab12-cdef3456".into())
            ]
        );
        let re = p.ticket_regex.as_ref().unwrap_or_else(|| panic!("regex"));
        assert!(re.is_match("INC-42"));
        assert!(!re.is_match("xINC-42"), "anchored at the start");
        assert!(!re.is_match("INC-42x"), "anchored at the end");
    }

    /// Each broken key gives one message naming the policy, the key and the fix.
    #[test]
    fn every_validation_error_names_the_policy_the_key_and_the_problem() {
        let name = "policy \"ec2-admin-oncall\"";
        let cases: Vec<(String, String)> = vec![
            (
                with("permission_sets", Some("[\"EC2 Admin\"]")),
                format!("{name}: permission_sets: \"EC2 Admin\": may only contain letters, digits and + = , . @ - _ (found ' ')"),
            ),
            (
                with("accounts", Some("[\"1234\"]")),
                format!("{name}: accounts: \"1234\" is not an account id (must be exactly 12 digits (got \"1234\")), an OU id (ou-…), a root id (r-…) or \"*\""),
            ),
            (
                with("accounts", Some("[\"ou-AB\"]")),
                format!("{name}: accounts: \"ou-AB\" is not an OU id (ou-<4 to 32 characters>-<8 to 32 characters>, lower case)"),
            ),
            (
                with("accounts", Some("[]")),
                format!("{name}: accounts: is empty, so the policy would match nothing; write e.g. accounts = [\"111122223333\", \"ou-ab12-cdef3456\"]"),
            ),
            (
                with("requesters", Some("[\"sre\"]")),
                format!("{name}: requesters: \"sre\" is neither \"group:<name>\" nor \"user:<id>\" nor \"*\""),
            ),
            (
                with("approvers", Some("[\"group:sre-oncall\"]")),
                format!("{name}: approvers: group:sre-oncall is also the only requester group, so requesters would approve each other's requests; name a separate approver group or users"),
            ),
            (
                with("approvers", Some("[\"*\"]")),
                format!("{name}: approvers: \"*\" is not allowed here: name the approvers (group:x or user:y)"),
            ),
            (
                with("approvals_required", Some("0")),
                format!("{name}: approvals_required: is 0 without approval = \"auto\": set at least 1, or write approval = \"auto\" (and remove approvers) for automatic approval"),
            ),
            (
                with("approvals_required", Some("11")),
                format!("{name}: approvals_required: 11 is out of range: it must be 1 to 10"),
            ),
            (
                format!("{}\napprovers = [\"user:mia\"]\napprovals_required = 2", with("approvers", None).replace("approvals_required = 1\n", "")),
                format!("{name}: approvals_required: 2 distinct approvals can never be reached with only 1 approver named"),
            ),
            (
                with("approvers", None),
                format!("{name}: approvers: is missing: name who approves (e.g. approvers = [\"group:sre-leads\"] with approvals_required = 1), or set approval = \"auto\""),
            ),
            (
                with("max_duration", Some("\"13h\"")),
                format!("{name}: max_duration: \"13h\" is out of range: it must be between 1m and 12h"),
            ),
            (
                with("max_duration", Some("\"four hours\"")),
                format!("{name}: max_duration: \"four hours\" is not a duration (expected number at 0); write e.g. \"4h\", \"30m\" or \"1h 30m\""),
            ),
            (
                with("max_duration", Some("4")),
                format!("{name}: max_duration: must be a quoted duration with a unit such as \"4h\" (found integer)"),
            ),
            (
                with("max_duration", Some("\"90s\"")),
                format!("{name}: max_duration: \"90s\" is not a whole number of minutes"),
            ),
            (
                with("max_duration", None),
                format!("{name}: max_duration: is missing; say how long a grant may last, e.g. max_duration = \"4h\""),
            ),
            (
                with("ticket_pattern", Some("'INC-[0-9+'")),
                format!("{name}: ticket_pattern: \"INC-[0-9+\" is not a valid regular expression: "),
            ),
            (
                with("ticket", Some("\"sometimes\"")),
                format!("{name}: ticket: must be \"optional\" or \"required\" (found \"sometimes\")"),
            ),
            (
                with("approval", Some("\"manual\"")),
                format!("{name}: approval: \"manual\" is not allowed: the only value is \"auto\""),
            ),
            (
                with("pending_ttl", Some("\"1m\"")),
                format!("{name}: pending_ttl: \"1m\" is out of range: it must be between 5m and 7days"),
            ),
            (
                with("min_justification", Some("0")),
                format!("{name}: min_justification: 0 is out of range: it must be 1 to 2000"),
            ),
            (
                with("max_active_per_user", Some("\"two\"")),
                format!("{name}: max_active_per_user: must be a whole number (found string)"),
            ),
            (
                with("break_glass", Some("\"yes\"")),
                format!("{name}: break_glass: must be true or false (found string)"),
            ),
            (
                with("max_duraton", Some("\"4h\"")),
                format!("{name}: max_duraton: unknown key (did you mean max_duration?)"),
            ),
            (
                with("name", None),
                "policy #1: name: is missing; give every policy a unique name such as \"ec2-admin-oncall\"".to_owned(),
            ),
        ];
        for (text, expected) in cases {
            let got = only_problem(&text);
            assert!(
                got.starts_with(&expected),
                "\nexpected: {expected}\n     got: {got}\nfor:\n{text}"
            );
        }
    }

    #[test]
    fn auto_and_break_glass_rules() {
        let auto = with("approval", Some("\"auto\""));
        let got = problems(&auto);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0].contains("approvers: conflicts with approval = \"auto\""),
            "{got:?}"
        );
        let auto_ok = GOOD
            .replace("approvers = [\"group:sre-leads\"]\n", "")
            .replace("approvals_required = 1\n", "approval = \"auto\"\n");
        let set = parse(&auto_ok).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(set.policies[0].rule.approval, ApprovalRule::Auto);

        let bg = format!("{}\nbreak_glass = true", GOOD);
        assert_eq!(
            only_problem(&bg),
            "policy \"ec2-admin-oncall\": approvals_required: a break-glass policy is never \
             approved by people (it starts at once and is reviewed afterwards); remove \
             approvals_required (approvers, if set, name who may review its use)"
        );
        let bg_ok = format!(
            "{}\nbreak_glass = true",
            GOOD.replace("approvals_required = 1\n", "")
        );
        let set = parse(&bg_ok).unwrap_or_else(|p| panic!("{p:?}"));
        let p = &set.policies[0];
        assert!(p.rule.break_glass);
        assert_eq!(p.rule.approval, ApprovalRule::Auto);
        assert_eq!(p.rule.reviewers, vec!["group:sre-leads".to_owned()]);
    }

    #[test]
    fn whole_file_problems() {
        assert!(only_problem("").contains("defines no policy"));
        assert!(only_problem("[policy]\nname = \"x\"").contains(
            "policy: must be an array of tables: write each policy under its own [[policy]] header"
        ));
        assert!(only_problem("polcy = 1").starts_with("polcy: unknown top-level key"));
        let syntax = only_problem("[[policy]\nname = ");
        assert!(syntax.starts_with("is not valid TOML"), "{syntax}");
        assert!(syntax.contains("line 1"), "says where: {syntax}");
        let dup = format!("{GOOD}\n{GOOD}");
        assert_eq!(
            only_problem(&dup),
            "policy \"ec2-admin-oncall\": name: is used by more than one policy; names must be \
             unique (grants record the name of the policy that decided them)"
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
[[policy]]
name = "a"
requesters = []
accounts = ["1"]
permission_sets = ["*"]
max_duration = "1d"
approval = "auto"

[[policy]]
name = "b"
requesters = ["*"]
accounts = ["*"]
permission_sets = ["*"]
"#;
        let p = problems(text);
        assert_eq!(p.len(), 5, "{p:#?}");
        assert!(p.iter().any(|m| m.starts_with("policy \"a\": requesters:")));
        assert!(p.iter().any(|m| m.starts_with("policy \"a\": accounts:")));
        assert!(p
            .iter()
            .any(|m| m.starts_with("policy \"a\": max_duration:")));
        assert!(p
            .iter()
            .any(|m| m.starts_with("policy \"b\": max_duration:")));
        assert!(p.iter().any(|m| m.starts_with("policy \"b\": approvers:")));
    }

    #[test]
    fn the_error_lists_every_problem_with_the_file() {
        let e = PolicyFileError {
            file: "/etc/timebox/policy.toml".into(),
            problems: vec![
                PolicyProblem {
                    policy: Some("policy \"a\"".into()),
                    key: Some("accounts".into()),
                    problem: "bad".into(),
                },
                PolicyProblem {
                    policy: None,
                    key: None,
                    problem: "worse".into(),
                },
            ],
        };
        assert_eq!(
            e.to_string(),
            "the policy file /etc/timebox/policy.toml was refused (2 problems); fix it \
             (docs/policy.md describes every key):\n  - policy \"a\": accounts: bad\n  - worse"
        );
    }
}
