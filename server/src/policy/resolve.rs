//! Policy against the synced catalog, pure: given the policies, the synced
//! organisation tree and the request, [`resolve`] picks one policy or says why none
//! applies, [`check`] holds the request to that policy's terms, and
//! [`catalog_problems`] lists what the policies name that the catalog does not have.
//!
//! The rule when several policies match (docs/policy.md, "When several policies
//! match"):
//! 1. Break-glass policies are considered only for a request that asks for
//!    break-glass, and such a request considers only break-glass policies.
//! 2. The most specific policy wins, compared in this order: how closely its
//!    `accounts` name the account (the account itself, then the nearest OU — a
//!    nested OU is closer than its parent —, then the root, then `*`); then its
//!    `permission_sets` (a name before `*`); then its `requesters` (`user:` before
//!    `group:` before `*`).
//! 3. Between equally specific policies the stricter wins: more approvals required
//!    (automatic approval counts as 0), then the shorter `max_duration`.
//! 4. Then the name, alphabetically, so the answer never depends on file order.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use app::domain::{Entitlement, ExplainRow, GrantRequest, PolicyRefusal};

use super::model::{
    CompiledPolicy, PermissionSetMatch, PolicyProblem, PolicySet, Principal, Scope,
};
use crate::store::{CatalogNode, NodeKind};

/// The synced organisation tree and permission-set names, as policy needs them.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    nodes: HashMap<String, CatalogNode>,
    permission_sets: BTreeSet<String>,
    synced: bool,
}

impl Catalog {
    /// `synced` is whether a sync ever completed (an empty catalog before the first
    /// sync cannot tell a typo from an account that is simply not synced yet).
    pub fn new(nodes: Vec<CatalogNode>, permission_sets: Vec<String>, synced: bool) -> Self {
        Self {
            nodes: nodes.into_iter().map(|n| (n.id.clone(), n)).collect(),
            permission_sets: permission_sets.into_iter().collect(),
            synced,
        }
    }

    pub fn is_synced(&self) -> bool {
        self.synced
    }

    fn has_kind(&self, id: &str, kind: NodeKind) -> bool {
        self.nodes.get(id).is_some_and(|n| n.kind == kind)
    }

    pub fn has_account(&self, id: &str) -> bool {
        self.has_kind(id, NodeKind::Account)
    }

    pub fn has_ou(&self, id: &str) -> bool {
        self.has_kind(id, NodeKind::Ou)
    }

    pub fn has_root(&self, id: &str) -> bool {
        self.has_kind(id, NodeKind::Root)
    }

    pub fn has_permission_set(&self, name: &str) -> bool {
        self.permission_sets.contains(name)
    }

    /// The account's name, or its id when the catalog does not know it.
    pub fn account_name(&self, id: &str) -> String {
        self.nodes
            .get(id)
            .map_or_else(|| id.to_owned(), |n| n.name.clone())
    }

    /// Every account in the catalog, by id.
    pub fn accounts(&self) -> BTreeSet<String> {
        self.nodes
            .values()
            .filter(|n| n.kind == NodeKind::Account)
            .map(|n| n.id.clone())
            .collect()
    }

    pub fn permission_sets(&self) -> &BTreeSet<String> {
        &self.permission_sets
    }

    /// How many levels above `account` the node `ancestor` is (1 = its OU or root),
    /// following parents; `None` when it is not an ancestor. Guarded against cycles.
    fn distance(&self, account: &str, ancestor: &str) -> Option<u32> {
        let mut at = self.nodes.get(account)?.parent_id.clone();
        let mut d = 1;
        while let Some(id) = at {
            if id == ancestor {
                return Some(d);
            }
            if d > 64 {
                return None;
            }
            at = self.nodes.get(&id).and_then(|n| n.parent_id.clone());
            d += 1;
        }
        None
    }
}

/// References the catalog does not know: accounts, OUs, roots and permission sets that
/// are not (or not yet) in the synced catalog. Empty when the catalog was never synced
/// (nothing can be checked yet).
pub fn catalog_problems(set: &PolicySet, catalog: &Catalog) -> Vec<PolicyProblem> {
    let mut problems = Vec::new();
    if !catalog.is_synced() {
        return problems;
    }
    for p in &set.policies {
        let mut add = |key: &str, problem: String| {
            problems.push(PolicyProblem::at(&p.label(), key, problem));
        };
        for scope in &p.accounts {
            match scope {
                Scope::Account(a) if !catalog.has_account(a) => add(
                    "accounts",
                    format!(
                        "account {a} is not in the organisation's synced catalog; check the id, \
                         or sync the catalog if the account is new"
                    ),
                ),
                Scope::Ou(o) if !catalog.has_ou(o) => add(
                    "accounts",
                    format!(
                        "OU {o} is not in the organisation's synced catalog; check the id \
                         (Organizations console → AWS accounts), or sync the catalog if the OU is new"
                    ),
                ),
                Scope::Root(r) if !catalog.has_root(r) => add(
                    "accounts",
                    format!("root {r} is not the organisation's root in the synced catalog"),
                ),
                _ => {}
            }
        }
        for ps in &p.permission_sets {
            if let PermissionSetMatch::Name(n) = ps {
                if !catalog.has_permission_set(n) {
                    add(
                        "permission_sets",
                        format!(
                            "permission set {n:?} is not in IAM Identity Center's synced catalog; \
                             check the spelling (names are case-sensitive), or sync the catalog \
                             if it is new"
                        ),
                    );
                }
            }
        }
    }
    problems
}

/// How closely `policy` names `account`: 0 for the account itself, the number of
/// levels up for an OU or root, `u32::MAX` for `*`; `None` if it does not cover it.
pub fn account_rank(policy: &CompiledPolicy, catalog: &Catalog, account: &str) -> Option<u32> {
    policy
        .accounts
        .iter()
        .filter_map(|s| scope_rank(s, catalog, account))
        .min()
}

fn scope_rank(scope: &Scope, catalog: &Catalog, account: &str) -> Option<u32> {
    match scope {
        Scope::Account(a) => (a == account).then_some(0),
        Scope::Ou(id) | Scope::Root(id) => catalog.distance(account, id),
        Scope::Any => Some(u32::MAX),
    }
}

fn permission_set_rank(policy: &CompiledPolicy, permission_set: &str) -> Option<u32> {
    policy
        .permission_sets
        .iter()
        .filter(|m| m.matches(permission_set))
        .map(|m| match m {
            PermissionSetMatch::Name(_) => 0,
            PermissionSetMatch::Any => 1,
        })
        .min()
}

/// The (account, permission set name) pairs some policy of `set` can grant, among
/// the catalog's accounts and permission sets: the assignments the drift pass watches.
pub fn grantable(set: &PolicySet, catalog: &Catalog) -> BTreeSet<(String, String)> {
    let accounts = catalog.accounts();
    let mut out = BTreeSet::new();
    for p in &set.policies {
        let sets: Vec<&String> = catalog
            .permission_sets()
            .iter()
            .filter(|n| permission_set_rank(p, n).is_some())
            .collect();
        if sets.is_empty() {
            continue;
        }
        for a in accounts
            .iter()
            .filter(|a| account_rank(p, catalog, a).is_some())
        {
            out.extend(sets.iter().map(|n| (a.clone(), (*n).clone())));
        }
    }
    out
}

/// What is asked, and by whom.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub person: &'a str,
    pub groups: &'a [String],
    pub account_id: &'a str,
    pub permission_set: &'a str,
    pub break_glass: bool,
}

/// The ordering key of rule 2–4: lower wins.
type Key<'p> = (u32, u32, u32, Reverse<u32>, u32, &'p str);

fn key<'p>(p: &'p CompiledPolicy, account: u32, ps: u32, requester: u32) -> Key<'p> {
    (
        account,
        ps,
        requester,
        Reverse(p.rule.approval.approvals_required()),
        p.rule.max_duration_minutes,
        p.rule.name.as_str(),
    )
}

/// The policy that decides `ask`, or why none does.
pub fn resolve<'p>(
    set: &'p PolicySet,
    catalog: &Catalog,
    ask: &Ask<'_>,
) -> Result<&'p CompiledPolicy, PolicyRefusal> {
    let mut best: Option<(Key<'p>, &'p CompiledPolicy)> = None;
    let mut covering = Vec::new();
    for p in set
        .policies
        .iter()
        .filter(|p| p.rule.break_glass == ask.break_glass)
    {
        let (Some(a), Some(s)) = (
            account_rank(p, catalog, ask.account_id),
            permission_set_rank(p, ask.permission_set),
        ) else {
            continue;
        };
        let Some(r) = p.requester_rank(ask.person, ask.groups) else {
            covering.push((p.rule.name.clone(), p.rule.requesters.clone()));
            continue;
        };
        let k = key(p, a, s, r);
        if best.as_ref().is_none_or(|(b, _)| k < *b) {
            best = Some((k, p));
        }
    }
    best.map(|(_, p)| p).ok_or_else(|| PolicyRefusal::NoPolicy {
        account_id: ask.account_id.to_owned(),
        permission_set: ask.permission_set.to_owned(),
        break_glass: ask.break_glass,
        covering,
        catalog_synced: catalog.is_synced(),
    })
}

/// Holds a request to the deciding policy's terms: duration, ticket, justification.
/// (The per-person cap is counted by the store, in the transaction that records the
/// request.)
pub fn check(policy: &CompiledPolicy, request: &GrantRequest) -> Result<(), PolicyRefusal> {
    let rule = &policy.rule;
    let name = || rule.name.clone();
    if request.duration.minutes() > i64::from(rule.max_duration_minutes) {
        return Err(PolicyRefusal::DurationTooLong {
            policy: name(),
            max_minutes: rule.max_duration_minutes,
            asked_minutes: request.duration.minutes(),
        });
    }
    match &request.ticket {
        None if rule.ticket.required => {
            return Err(PolicyRefusal::TicketRequired { policy: name() });
        }
        Some(ticket) => {
            if let (Some(re), Some(pattern)) = (&policy.ticket_regex, &rule.ticket.pattern) {
                if !re.is_match(ticket.as_str()) {
                    return Err(PolicyRefusal::TicketMismatch {
                        policy: name(),
                        ticket: ticket.to_string(),
                        pattern: pattern.clone(),
                    });
                }
            }
        }
        None => {}
    }
    let has = u32::try_from(request.justification.as_str().chars().count()).unwrap_or(u32::MAX);
    if has < rule.min_justification {
        return Err(PolicyRefusal::JustificationTooShort {
            policy: name(),
            min: rule.min_justification,
            has,
        });
    }
    Ok(())
}

/// The accounts a policy covers in the catalog, plus the account ids it names that
/// the catalog does not (yet) have: `(account id, the entry that covers it)`.
fn covered_accounts(policy: &CompiledPolicy, catalog: &Catalog) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for scope in &policy.accounts {
        if let Scope::Account(a) = scope {
            out.insert(a.clone(), a.clone());
        }
    }
    for account in catalog.accounts() {
        if out.contains_key(&account) {
            continue;
        }
        let best = policy
            .accounts
            .iter()
            .filter_map(|s| scope_rank(s, catalog, &account).map(|r| (r, s)))
            .min_by_key(|(r, _)| *r);
        if let Some((_, s)) = best {
            out.insert(account, s.to_string());
        }
    }
    out
}

fn covered_permission_sets(policy: &CompiledPolicy, catalog: &Catalog) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for m in &policy.permission_sets {
        match m {
            PermissionSetMatch::Name(n) => {
                out.insert(n.clone());
            }
            PermissionSetMatch::Any => out.extend(catalog.permission_sets().iter().cloned()),
        }
    }
    out
}

/// What a person may ask for: every (account, permission set) some policy lets them
/// request, with the terms of the policy that decides it. Break-glass entitlements
/// are listed apart (`break_glass: true`). Sorted by break-glass, account name,
/// permission set.
pub fn entitlements(
    set: &PolicySet,
    catalog: &Catalog,
    person: &str,
    groups: &[String],
) -> Vec<Entitlement> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for p in &set.policies {
        if p.requester_rank(person, groups).is_none() {
            continue;
        }
        let accounts = covered_accounts(p, catalog);
        let sets = covered_permission_sets(p, catalog);
        for account in accounts.keys() {
            for ps in &sets {
                let ask = Ask {
                    person,
                    groups,
                    account_id: account,
                    permission_set: ps,
                    break_glass: p.rule.break_glass,
                };
                let Ok(decider) = resolve(set, catalog, &ask) else {
                    continue;
                };
                if !seen.insert((p.rule.break_glass, account.clone(), ps.clone())) {
                    continue;
                }
                let r = &decider.rule;
                out.push(Entitlement {
                    policy: r.name.clone(),
                    account_id: account.clone(),
                    account_name: catalog.account_name(account),
                    permission_set: ps.clone(),
                    max_duration_minutes: r.max_duration_minutes,
                    approval: r.approval.clone(),
                    ticket: r.ticket.clone(),
                    min_justification: r.min_justification,
                    pending_ttl_minutes: r.pending_ttl_minutes,
                    max_active_per_user: r.max_active_per_user,
                    break_glass: r.break_glass,
                });
            }
        }
    }
    out.sort_by(|a, b| {
        (a.break_glass, &a.account_name, &a.permission_set).cmp(&(
            b.break_glass,
            &b.account_name,
            &b.permission_set,
        ))
    });
    out
}

/// Whether two requester lists may name the same person: a shared entry, `*` on
/// either side, or groups on both sides (membership is only known at sign-in).
fn requesters_may_overlap(a: &CompiledPolicy, b: &CompiledPolicy) -> bool {
    let any = |p: &CompiledPolicy| p.requesters.contains(&Principal::Anyone);
    let groups = |p: &CompiledPolicy| {
        p.requesters
            .iter()
            .any(|x| matches!(x, Principal::Group(_)))
    };
    any(a)
        || any(b)
        || (groups(a) && groups(b))
        || a.requesters.iter().any(|x| b.requesters.contains(x))
}

/// "Who can request what, approved by whom": one row per policy, account and
/// permission set it covers, filtered by requester (`user:<id>`, `group:<name>`, or a
/// bare id meaning `user:<id>`; a policy for `*` matches every filter), account (an
/// account id) and permission set. A row's `overridden_by` names the policies that
/// decide instead for people both cover, by the matching rule.
pub fn explain(
    set: &PolicySet,
    catalog: &Catalog,
    requester: Option<&str>,
    account: Option<&str>,
    permission_set: Option<&str>,
) -> Vec<ExplainRow> {
    let wanted = requester.map(|r| {
        let r = r.trim();
        if r.starts_with("user:") || r.starts_with("group:") {
            r.to_owned()
        } else {
            format!("user:{r}")
        }
    });
    let mut rows = Vec::new();
    for p in &set.policies {
        if let Some(w) = &wanted {
            if !p.rule.requesters.iter().any(|r| r == w || r == "*") {
                continue;
            }
        }
        let sets = covered_permission_sets(p, catalog);
        for (acct, via) in covered_accounts(p, catalog) {
            if account.is_some_and(|a| a.trim() != acct) {
                continue;
            }
            for ps in &sets {
                if permission_set.is_some_and(|f| f.trim() != ps) {
                    continue;
                }
                let mine = match (account_rank(p, catalog, &acct), permission_set_rank(p, ps)) {
                    (Some(a), Some(s)) => key(p, a, s, 0),
                    _ => continue,
                };
                let overridden_by = set
                    .policies
                    .iter()
                    .filter(|o| {
                        o.rule.name != p.rule.name && o.rule.break_glass == p.rule.break_glass
                    })
                    .filter(|o| requesters_may_overlap(p, o))
                    .filter_map(|o| {
                        let a = account_rank(o, catalog, &acct)?;
                        let s = permission_set_rank(o, ps)?;
                        (key(o, a, s, 0) < mine).then(|| o.rule.name.clone())
                    })
                    .collect();
                rows.push(ExplainRow {
                    policy: p.rule.name.clone(),
                    requesters: p.rule.requesters.clone(),
                    account_id: acct.clone(),
                    account_name: catalog.account_name(&acct),
                    via: via.clone(),
                    permission_set: ps.clone(),
                    max_duration_minutes: p.rule.max_duration_minutes,
                    approval: p.rule.approval.clone(),
                    ticket: p.rule.ticket.clone(),
                    break_glass: p.rule.break_glass,
                    overridden_by,
                });
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::file::parse;
    use app::domain::{
        AccountId, ApprovalRule, GrantDuration, Justification, PermissionSetName, PersonId,
        TicketRef,
    };

    /// root r-root1
    /// ├── ou-root-prod00001 (Production)
    /// │   ├── 111111111111 payments-prod
    /// │   └── ou-prod-eu0000001 (Production EU)
    /// │       ├── 222222222222 web-prod-eu
    /// │       └── ou-euxx-critical1 (Critical)
    /// │           └── 333333333333 ledger
    /// └── ou-root-dev000001 (Development)
    ///     └── 444444444444 sandbox
    fn catalog() -> Catalog {
        let nodes = [
            ("r-root1", NodeKind::Root, "Root", None),
            (
                "ou-root-prod00001",
                NodeKind::Ou,
                "Production",
                Some("r-root1"),
            ),
            (
                "111111111111",
                NodeKind::Account,
                "payments-prod",
                Some("ou-root-prod00001"),
            ),
            (
                "ou-prod-eu0000001",
                NodeKind::Ou,
                "Production EU",
                Some("ou-root-prod00001"),
            ),
            (
                "222222222222",
                NodeKind::Account,
                "web-prod-eu",
                Some("ou-prod-eu0000001"),
            ),
            (
                "ou-euxx-critical1",
                NodeKind::Ou,
                "Critical",
                Some("ou-prod-eu0000001"),
            ),
            (
                "333333333333",
                NodeKind::Account,
                "ledger",
                Some("ou-euxx-critical1"),
            ),
            (
                "ou-root-dev000001",
                NodeKind::Ou,
                "Development",
                Some("r-root1"),
            ),
            (
                "444444444444",
                NodeKind::Account,
                "sandbox",
                Some("ou-root-dev000001"),
            ),
        ];
        Catalog::new(
            nodes
                .into_iter()
                .map(|(id, kind, name, parent)| CatalogNode {
                    id: id.into(),
                    kind,
                    name: name.into(),
                    parent_id: parent.map(Into::into),
                })
                .collect(),
            vec!["Admin".into(), "ReadOnly".into(), "DbAdmin".into()],
            true,
        )
    }

    /// The policies the tests resolve against, each commented with what it shows.
    const POLICIES: &str = include_str!("testdata/resolve.toml");

    fn decide(
        who: &str,
        groups: &[&str],
        account: &str,
        ps: &str,
        bg: bool,
    ) -> Result<String, String> {
        let set = parse(POLICIES).unwrap_or_else(|p| panic!("{p:?}"));
        let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
        resolve(&set, &catalog(), &asking(who, &groups, account, ps, bg))
            .map(|p| p.rule.name.clone())
            .map_err(|e| e.to_string())
    }

    fn asking<'a>(
        person: &'a str,
        groups: &'a [String],
        account_id: &'a str,
        permission_set: &'a str,
        break_glass: bool,
    ) -> Ask<'a> {
        Ask {
            person,
            groups,
            account_id,
            permission_set,
            break_glass,
        }
    }

    #[test]
    fn resolution_table() {
        let sre: &[&str] = &["sre"];
        /// Who, their groups, account, permission set, break-glass, deciding policy
        /// (or a part of the refusal).
        type Row<'a> = (
            &'a str,
            &'a [&'a str],
            &'a str,
            &'a str,
            bool,
            Result<&'a str, &'a str>,
        );
        let table: &[Row<'_>] = &[
            // `*` covers every account, for anyone.
            ("dave", &[], "444444444444", "ReadOnly", false, Ok("read-anywhere")),
            // An OU covers its direct accounts...
            ("sam", sre, "111111111111", "Admin", false, Ok("prod-admin")),
            ("sam", sre, "111111111111", "DbAdmin", false, Ok("prod-admin")),
            // ...and the nearest OU wins for an account in a nested OU.
            ("sam", sre, "222222222222", "Admin", false, Ok("prod-eu-admin")),
            // Two levels down, still covered by the nested OU (and its parent).
            ("sam", sre, "333333333333", "DbAdmin", false, Ok("prod-admin")),
            // Naming the account beats every OU; equal ones: the stricter wins.
            ("sam", sre, "333333333333", "Admin", false, Ok("ledger-b")),
            // The account rank comes first: rita's policy names the account, so it
            // wins over `*`...
            ("rita", &[], "111111111111", "ReadOnly", false, Ok("rita-payments")),
            // ...and over the group's OU policy even if she were in sre.
            ("rita", sre, "111111111111", "Admin", false, Ok("rita-payments")),
            // Outside production, sre has no admin policy.
            ("sam", sre, "444444444444", "Admin", false, Err("no policy lets you ask for access to Admin in account 444444444444; no policy covers them")),
            // Covered, but not for this person: the message names who may.
            ("dave", &["dev"], "111111111111", "Admin", false, Err("it is covered by policy \"prod-admin\" for group:sre; policy \"rita-payments\" for user:rita, which you are not")),
            // Break-glass only when asked for...
            ("sam", sre, "222222222222", "Admin", true, Ok("prod-break-glass")),
            // ...and then only break-glass policies apply.
            ("sam", sre, "444444444444", "ReadOnly", true, Err("no policy lets you ask for break-glass access to ReadOnly in account 444444444444; no break-glass policy covers them")),
            // An account the catalog does not know is covered by `*` only.
            ("dave", &[], "999999999999", "ReadOnly", false, Ok("read-anywhere")),
            ("sam", sre, "999999999999", "Admin", false, Err("no policy covers them")),
        ];
        for (who, groups, account, ps, bg, expected) in table {
            let got = decide(who, groups, account, ps, *bg);
            match (expected, &got) {
                (Ok(e), Ok(g)) => assert_eq!(e, g, "{who} {account} {ps} bg={bg}"),
                (Err(e), Err(g)) => assert!(g.contains(e), "{who} {account} {ps}: {g}"),
                _ => panic!("{who} {account} {ps} bg={bg}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn the_answer_does_not_depend_on_file_order() {
        let set = parse(POLICIES).unwrap_or_else(|p| panic!("{p:?}"));
        let mut reversed = set.clone();
        reversed.policies.reverse();
        let groups = vec!["sre".to_owned()];
        for account in [
            "111111111111",
            "222222222222",
            "333333333333",
            "444444444444",
        ] {
            for ps in ["Admin", "ReadOnly", "DbAdmin"] {
                for bg in [false, true] {
                    let ask = asking("sam", &groups, account, ps, bg);
                    let a = resolve(&set, &catalog(), &ask).map(|p| p.rule.name.clone());
                    let b = resolve(&reversed, &catalog(), &ask).map(|p| p.rule.name.clone());
                    assert_eq!(a, b, "{account} {ps} {bg}");
                }
            }
        }
    }

    #[test]
    fn ous_cannot_match_before_the_catalog_is_synced() {
        let set = parse(POLICIES).unwrap_or_else(|p| panic!("{p:?}"));
        let groups = vec!["sre".to_owned()];
        let ask = asking("sam", &groups, "111111111111", "Admin", false);
        let e = resolve(&set, &Catalog::default(), &ask).map(|p| p.rule.name.clone());
        let msg = e
            .map_err(|e| e.to_string())
            .expect_err("no OU without a catalog");
        assert!(msg.contains("the catalog has not been synced yet"), "{msg}");
    }

    fn request(duration: i64, ticket: Option<&str>, justification: &str) -> GrantRequest {
        GrantRequest {
            requester: PersonId::parse("sam").unwrap_or_else(|e| panic!("{e}")),
            account_id: AccountId::parse("111111111111").unwrap_or_else(|e| panic!("{e}")),
            permission_set: PermissionSetName::parse("Admin").unwrap_or_else(|e| panic!("{e}")),
            justification: Justification::parse_with_min(justification, 1)
                .unwrap_or_else(|e| panic!("{e}")),
            ticket: ticket.map(|t| TicketRef::parse(t).unwrap_or_else(|e| panic!("{e}"))),
            duration: GrantDuration::from_minutes(duration, None).unwrap_or_else(|e| panic!("{e}")),
            requested_start: None,
            approvals_required: 0,
            extends: None,
        }
    }

    #[test]
    fn terms_are_checked_with_the_field_named() {
        let text = r#"
[[policy]]
name = "strict"
requesters = ["*"]
accounts = ["*"]
permission_sets = ["*"]
max_duration = "1h"
approval = "auto"
ticket = "required"
ticket_pattern = "INC-[0-9]+"
min_justification = 20
"#;
        let set = parse(text).unwrap_or_else(|p| panic!("{p:?}"));
        let p = &set.policies[0];
        let long = "the payments API is down, INC-7";
        assert_eq!(check(p, &request(60, Some("INC-7"), long)), Ok(()));
        let cases = [
            (request(61, Some("INC-7"), long), "duration", "duration: policy \"strict\" allows at most 1h (asked for 1h 1m)"),
            (request(60, None, long), "ticket", "ticket: policy \"strict\" requires a ticket reference"),
            (request(60, Some("CHG-7"), long), "ticket", "ticket: \"CHG-7\" does not match the pattern \"INC-[0-9]+\" that policy \"strict\" requires"),
            (request(60, Some("INC-7x"), long), "ticket", "does not match the pattern"),
            (request(60, Some("INC-7"), "too short"), "justification", "justification: policy \"strict\" asks for at least 20 characters (has 9)"),
        ];
        for (req, field, message) in cases {
            let e = check(p, &req).expect_err(message);
            assert_eq!(e.field(), Some(field));
            assert!(e.to_string().contains(message), "{e}");
        }
    }

    #[test]
    fn entitlements_expand_ous_and_stars_and_keep_the_decider() {
        let set = parse(POLICIES).unwrap_or_else(|p| panic!("{p:?}"));
        let sre = vec!["sre".to_owned()];
        let e = entitlements(&set, &catalog(), "sam", &sre);
        let find = |account: &str, ps: &str, bg: bool| {
            e.iter()
                .find(|x| x.account_id == account && x.permission_set == ps && x.break_glass == bg)
                .map(|x| x.policy.as_str())
        };
        assert_eq!(find("222222222222", "Admin", false), Some("prod-eu-admin"));
        assert_eq!(find("111111111111", "Admin", false), Some("prod-admin"));
        assert_eq!(find("333333333333", "Admin", false), Some("ledger-b"));
        assert_eq!(
            find("444444444444", "ReadOnly", false),
            Some("read-anywhere")
        );
        assert_eq!(find("444444444444", "Admin", false), None);
        assert_eq!(
            find("333333333333", "Admin", true),
            Some("prod-break-glass")
        );
        let eu = e
            .iter()
            .find(|x| x.policy == "prod-eu-admin")
            .unwrap_or_else(|| panic!("eu"));
        assert_eq!(eu.account_name, "web-prod-eu");
        assert_eq!(
            eu.approval,
            ApprovalRule::Required {
                count: 2,
                approvers: vec!["group:sre-leads".into()]
            }
        );
        // Each (account, permission set, break-glass) once.
        let mut keys: Vec<_> = e
            .iter()
            .map(|x| {
                (
                    x.account_id.clone(),
                    x.permission_set.clone(),
                    x.break_glass,
                )
            })
            .collect();
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n);
        // Someone in no group gets read-only everywhere and nothing else.
        let dave = entitlements(&set, &catalog(), "dave", &[]);
        assert_eq!(dave.len(), 4);
        assert!(dave
            .iter()
            .all(|x| x.permission_set == "ReadOnly" && x.policy == "read-anywhere"));
    }

    #[test]
    fn explain_answers_who_can_request_what() {
        let set = parse(POLICIES).unwrap_or_else(|p| panic!("{p:?}"));
        let rows = explain(
            &set,
            &catalog(),
            Some("group:sre"),
            Some("222222222222"),
            Some("Admin"),
        );
        let names: Vec<&str> = rows.iter().map(|r| r.policy.as_str()).collect();
        assert_eq!(
            names,
            vec!["prod-admin", "prod-eu-admin", "prod-break-glass"]
        );
        let prod = &rows[0];
        assert_eq!(prod.via, "ou-root-prod00001");
        assert_eq!(prod.overridden_by, vec!["prod-eu-admin".to_owned()]);
        assert!(rows[1].overridden_by.is_empty());
        // A bare id means user:<id>; `*` policies match everyone.
        let rita = explain(&set, &catalog(), Some("rita"), Some("111111111111"), None);
        let names: BTreeSet<&str> = rows_names(&rita);
        assert_eq!(names, BTreeSet::from(["read-anywhere", "rita-payments"]));
        let ro = rita
            .iter()
            .find(|r| r.policy == "read-anywhere")
            .unwrap_or_else(|| panic!("ro"));
        assert_eq!(ro.overridden_by, vec!["rita-payments".to_owned()]);
    }

    fn rows_names(rows: &[ExplainRow]) -> BTreeSet<&str> {
        rows.iter().map(|r| r.policy.as_str()).collect()
    }
}
