//! The grant row as a projection of its audit events. Every store method that
//! writes a grant row appends, in the same transaction, an event whose `details.set`
//! holds the values the row has after the change for the facts it touched (all of
//! them for the request). Folding a grant's events' `set` objects in sequence order
//! therefore gives the row; a row edited without an event (someone with database
//! access moving `ends_at`, the account, the state…) no longer matches, and
//! [`check`] names the field.
//!
//! Grants requested before the facts were recorded (their request event has no
//! `set`) are checked on the facts a later event recorded only.

use super::audit::AuditEvent;
use app::domain::Grant;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

/// The key under `details` that carries the facts an event set.
pub const SET: &str = "set";

/// The facts of a grant row that its events record, in a fixed order.
pub const FACTS: [&str; 29] = [
    "state",
    "requester",
    "account_id",
    "permission_set",
    "justification",
    "ticket",
    "duration_minutes",
    "requested_start",
    "approvals_required",
    "extends",
    "created_at",
    "policy",
    "break_glass",
    "expires_at",
    "review_required",
    "identity_user_id",
    "identity_user_name",
    "activated_at",
    "ends_at",
    "revoked_at",
    "permission_set_session_seconds",
    "portal_session_seconds",
    "real_end",
    "failure_reason",
    "reviewed_by",
    "reviewed_at",
    "review_comment",
    "sessions_close",
    "sessions_closed_at",
];

fn time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(SecondsFormat::Micros, true))
    })
}

fn text(s: Option<&str>) -> Value {
    s.map_or(Value::Null, |s| Value::String(s.to_owned()))
}

/// The row's value of fact `name` (see [`FACTS`]).
fn fact(g: &Grant, name: &str) -> Value {
    let r = &g.request;
    match name {
        "state" => text(Some(g.state.as_str())),
        "requester" => text(Some(r.requester.as_str())),
        "account_id" => text(Some(r.account_id.as_str())),
        "permission_set" => text(Some(r.permission_set.as_str())),
        "justification" => text(Some(r.justification.as_str())),
        "ticket" => text(r.ticket.as_ref().map(|t| t.as_str())),
        "duration_minutes" => Value::from(r.duration.minutes()),
        "requested_start" => time(r.requested_start),
        "approvals_required" => Value::from(r.approvals_required),
        "extends" => r
            .extends
            .map_or(Value::Null, |id| Value::String(id.to_string())),
        "created_at" => time(Some(g.created_at)),
        "policy" => text(g.policy.as_deref()),
        "break_glass" => Value::Bool(g.break_glass),
        "expires_at" => time(g.expires_at),
        "review_required" => Value::Bool(g.review_required),
        "identity_user_id" => text(g.identity.as_ref().map(|u| u.user_id.as_str())),
        "identity_user_name" => text(g.identity.as_ref().map(|u| u.user_name.as_str())),
        "activated_at" => time(g.activated_at),
        "ends_at" => time(g.ends_at),
        "revoked_at" => time(g.revoked_at),
        "permission_set_session_seconds" => g
            .permission_set_session
            .map_or(Value::Null, |s| Value::from(s.seconds())),
        "portal_session_seconds" => g
            .portal_session
            .map_or(Value::Null, |s| Value::from(s.seconds())),
        "real_end" => time(g.real_end),
        "failure_reason" => text(g.failure_reason.as_deref()),
        "reviewed_by" => text(g.reviewed_by.as_deref()),
        "reviewed_at" => time(g.reviewed_at),
        "review_comment" => text(g.review_comment.as_deref()),
        "sessions_close" => text(g.sessions_close.map(|c| c.as_str())),
        "sessions_closed_at" => time(g.sessions_closed_at),
        _ => Value::Null,
    }
}

/// The `set` object for an event that changed `names` of the row now `g`.
pub fn set_of<'a>(g: &Grant, names: impl IntoIterator<Item = &'a str>) -> Value {
    Value::Object(
        names
            .into_iter()
            .map(|n| (n.to_owned(), fact(g, n)))
            .collect::<Map<_, _>>(),
    )
}

/// Every fact of `g`: the `set` of the event that created the row.
pub fn all_facts(g: &Grant) -> Value {
    set_of(g, FACTS)
}

/// Adds `set` to an event's details (an object; anything else becomes one).
pub fn with_set(details: Value, set: Value) -> Value {
    let mut obj = match details {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => Map::from_iter([("value".to_owned(), other)]),
    };
    obj.insert(SET.to_owned(), set);
    Value::Object(obj)
}

/// One fact on which the row and its events disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub field: &'static str,
    /// The row's value (JSON).
    pub row: String,
    /// The value the grant's events give (JSON).
    pub events: String,
    /// The event that last set it (`None`: no event set it).
    pub set_by: Option<i64>,
}

/// A grant row checked against its events.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProjectionCheck {
    /// False for a grant requested before the facts were recorded: only the facts
    /// a later event set were compared.
    pub complete: bool,
    pub mismatches: Vec<Mismatch>,
}

impl ProjectionCheck {
    pub fn holds(&self) -> bool {
        self.mismatches.is_empty()
    }

    /// "ends_at: the row says …, its events say … (event 12)".
    pub fn problem(&self) -> Option<String> {
        let m = self.mismatches.first()?;
        let by = m.set_by.map_or_else(
            || "no event set it".to_owned(),
            |s| format!("set by event {s}"),
        );
        let more = match self.mismatches.len() {
            1 => String::new(),
            n => format!(" (and {} more field(s))", n - 1),
        };
        Some(format!(
            "the grant's row was changed without an audit event: {} is {} in the row, but its events give {} ({by}){more}",
            m.field, m.row, m.events
        ))
    }
}

/// Times compare as instants (an event written by another backend or version may
/// spell the same instant differently); everything else as JSON.
fn same(a: &Value, b: &Value) -> bool {
    let instant = |v: &Value| {
        v.as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    match (instant(a), instant(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Folds `events` (the grant's, in sequence order) and compares with `g`.
pub fn check(g: &Grant, events: &[AuditEvent]) -> ProjectionCheck {
    let mut folded: Map<String, Value> = Map::new();
    let mut set_by: Map<String, Value> = Map::new();
    let mut complete = false;
    for (i, e) in events.iter().enumerate() {
        let Ok(Value::Object(mut details)) = serde_json::from_str::<Value>(&e.details) else {
            continue;
        };
        let Some(Value::Object(set)) = details.remove(SET) else {
            continue;
        };
        if i == 0 && e.action == "request" {
            complete = true;
        }
        for (k, v) in set {
            set_by.insert(k.clone(), Value::from(e.seq));
            folded.insert(k, v);
        }
    }
    let mismatches = FACTS
        .iter()
        .filter_map(|&field| {
            let row = fact(g, field);
            let from_events = match folded.get(field) {
                Some(v) => v.clone(),
                None if complete => Value::Null,
                None => return None,
            };
            (!same(&row, &from_events)).then(|| Mismatch {
                field,
                row: row.to_string(),
                events: from_events.to_string(),
                set_by: set_by.get(field).and_then(Value::as_i64),
            })
        })
        .collect();
    ProjectionCheck {
        complete,
        mismatches,
    }
}
