//! What a notification says, once, for every channel: a title, a sentence, the facts
//! of the grant, its real window and the link to the grant page (where approvers
//! approve). Each channel only lays this out (`channels/`).

use super::NotificationKind;
use crate::store::NotificationEventRecord;
use app::domain::{Grant, Windows};
use chrono::{DateTime, Utc};

/// The real window shown in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowText {
    /// "2026-11-28 09:00 UTC → 2026-11-28 18:00 UTC".
    pub range: String,
    /// Why it is that long ([`Windows::explanation`]).
    pub why: String,
    /// Computed from the request (nothing is active yet): a preview.
    pub preview: bool,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl WindowText {
    pub fn new(w: &Windows, preview: bool) -> Self {
        Self {
            range: format!("{} → {}", when(w.real.start), when(w.real.end)),
            why: w.explanation(),
            preview,
            start: w.real.start,
            end: w.real.end,
        }
    }
}

/// A rendered notification.
#[derive(Debug, Clone)]
pub struct Message {
    pub event_id: uuid::Uuid,
    pub kind: NotificationKind,
    pub occurred_at: DateTime<Utc>,
    pub title: String,
    /// One or two sentences.
    pub summary: String,
    /// Label → value, in order.
    pub facts: Vec<(&'static str, String)>,
    pub window: Option<WindowText>,
    /// The grant page.
    pub link: Option<String>,
    /// "Review and approve", "Open the grant".
    pub link_label: &'static str,
    pub grant: Option<Grant>,
    pub details: serde_json::Value,
}

pub fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn detail<'a>(d: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    d.get(key).and_then(serde_json::Value::as_str)
}

impl Message {
    /// Names account `id` by its display name from the catalog: "prod
    /// (111122223333)" in the summary and the facts, "prod" in the title.
    pub fn name_account(&mut self, id: &str, name: &str) {
        if name.is_empty() || name == id {
            return;
        }
        let both = format!("{name} ({id})");
        self.title = self.title.replace(id, name);
        self.summary = self.summary.replace(id, &both);
        for (label, value) in &mut self.facts {
            if *label == "Account" && value == id {
                value.clone_from(&both);
            }
        }
    }

    /// Renders `event` about `grant` (as it is now). `window` is the grant's real
    /// window, or its preview for a request not yet active.
    pub fn render(
        event: &NotificationEventRecord,
        grant: Option<&Grant>,
        window: Option<WindowText>,
        public_url: &str,
    ) -> Self {
        let d = &event.details;
        let (who, what, account) = match grant {
            Some(g) => (
                g.request.requester.to_string(),
                g.request.permission_set.to_string(),
                g.request.account_id.to_string(),
            ),
            None => (
                "someone".to_owned(),
                "a permission set".to_owned(),
                "an account".to_owned(),
            ),
        };
        let ends = grant.and_then(|g| g.ends_at).map(when);
        let (title, summary) = match event.kind {
            NotificationKind::NewRequest => {
                let paths = match grant.and_then(|g| g.paths_at_request.as_ref()) {
                    Some(p) if !p.is_empty() => format!(
                        " {who} already reaches this access through {}.",
                        p.iter().map(app::domain::OtherPath::describe).collect::<Vec<_>>().join(", ")
                    ),
                    Some(_) => String::new(),
                    None => " Other paths to this access could not be checked.".to_owned(),
                };
                (
                    format!("Approval needed: {who} asks for {what} in {account}"),
                    format!("{who} asks for {what} in account {account}.{paths} Review the request and approve or deny it on its page."),
                )
            }
            NotificationKind::Decision => {
                let decision = detail(d, "decision").unwrap_or("decided");
                let by = detail(d, "by").unwrap_or("an approver");
                let automatic = d.get("automatic").and_then(serde_json::Value::as_bool) == Some(true);
                let mut s = if automatic {
                    format!("Your request for {what} in {account} was approved automatically by policy.")
                } else {
                    format!("Your request for {what} in {account} was {decision} by {by}.")
                };
                if let Some(c) = detail(d, "comment") {
                    s.push_str(&format!(" Comment: {c}"));
                }
                let head = if decision == "denied" { "Denied" } else { "Approved" };
                (format!("{head}: {what} in {account}"), s)
            }
            NotificationKind::GrantActive => (
                format!("Active now: {what} in {account}"),
                format!(
                    "Your access to {what} in account {account} is in place{}.",
                    ends.as_deref().map(|e| format!(" until {e}")).unwrap_or_default()
                ),
            ),
            NotificationKind::EndingSoon => {
                let at = d
                    .get("ends_at")
                    .and_then(|v| serde_json::from_value::<DateTime<Utc>>(v.clone()).ok())
                    .map(when)
                    .or(ends)
                    .unwrap_or_else(|| "soon".to_owned());
                (
                    format!("Ending at {at}: {what} in {account}"),
                    format!("Your access to {what} in account {account} ends at {at}. Save your work; ask again if you need more time."),
                )
            }
            NotificationKind::Revoked => (
                format!("Revoked: {what} in {account}"),
                format!("Your access to {what} in account {account} was removed. Sessions opened before can last until the end of the real window below."),
            ),
            NotificationKind::RevocationFailing => {
                let attempts = d.get("attempts").and_then(serde_json::Value::as_i64).unwrap_or(0);
                let error = detail(d, "error").unwrap_or("no error recorded");
                (
                    format!("Revocation failing: {who}'s {what} in {account}"),
                    format!("Removing {who}'s access to {what} in account {account} failed {attempts} times and is still being retried. Last error: {error}. The access stays in place until it succeeds; check Identity Center."),
                )
            }
            NotificationKind::BreakGlassUsed => (
                format!("Break-glass used: {who} took {what} in {account}"),
                format!("{who} used break-glass access to {what} in account {account}, without approval. Review it afterwards on the grant's page."),
            ),
            NotificationKind::ActivityAfterRevocation => {
                let events = d.get("events").and_then(serde_json::Value::as_u64).unwrap_or(0);
                (
                    format!("Activity after revocation: {who} in {account}"),
                    format!("CloudTrail shows {events} calls by {who}'s {what} session in account {account} after the access was revoked (inside the real window's tail)."),
                )
            }
            NotificationKind::InvestigationSevere => {
                let severity = detail(d, "severity").unwrap_or("high");
                let id = detail(d, "investigation_id").unwrap_or("?");
                (
                    format!("Detective: {severity} investigation of {what} in {account}"),
                    format!("Amazon Detective rated investigation {id} of the {what} role in account {account} {severity}. The role is shared by everyone holding {what} there; see the grant's evidence."),
                )
            }
            NotificationKind::Drift => {
                let finding = detail(d, "finding").unwrap_or("a difference");
                let account = detail(d, "account_id").unwrap_or(&account).to_owned();
                (
                    format!("Drift in {account}: {}", detail(d, "kind").unwrap_or("finding")),
                    format!("Identity Center differs from Timebox's record in account {account}: {finding}. See the status page's drift findings."),
                )
            }
            NotificationKind::SessionsNotClosed => {
                let why = detail(d, "why").unwrap_or("no reason recorded");
                (
                    format!("Sessions not closed: {who}'s {what} in {account}"),
                    format!("{who}'s access to {what} in account {account} was removed, but the role sessions it gave out could not be closed: {why}. They can last until the end of the real window; see the grant's page and docs/sessions.md."),
                )
            }
            NotificationKind::ActivityAfterSessionsClosed => {
                let events = d.get("events").and_then(serde_json::Value::as_u64).unwrap_or(0);
                (
                    format!("CRITICAL: calls succeeded after the sessions were closed: {who} in {account}"),
                    format!("CloudTrail shows {events} successful calls by {who}'s {what} session in account {account} after Timebox closed its sessions with a Deny. The deny did not work: check the service control policy on the account and the grant's evidence now."),
                )
            }
            NotificationKind::ProvisionFailed => {
                let reason = detail(d, "reason").unwrap_or("no reason recorded");
                (
                    format!("Not given: {who}'s {what} in {account}"),
                    format!("{who}'s access to {what} in account {account} was not given: {reason}. Nothing was assigned; ask again once this is resolved."),
                )
            }
        };
        let mut facts = Vec::new();
        if let Some(g) = grant {
            facts.push(("Requester", g.request.requester.to_string()));
            facts.push(("Account", g.request.account_id.to_string()));
            facts.push(("Permission set", g.request.permission_set.to_string()));
            facts.push(("Duration", g.request.duration.to_string()));
            facts.push(("Justification", g.request.justification.to_string()));
            if let Some(t) = &g.request.ticket {
                facts.push(("Ticket", t.to_string()));
            }
            facts.push(("State", g.state.as_str().to_owned()));
        }
        let link = grant.map(|g| format!("{}/grants/{}", public_url.trim_end_matches('/'), g.id));
        Self {
            event_id: event.id,
            kind: event.kind,
            occurred_at: event.created_at,
            title,
            summary,
            facts,
            window,
            link,
            link_label: if event.kind == NotificationKind::NewRequest {
                "Review and approve"
            } else {
                "Open the grant"
            },
            grant: grant.cloned(),
            details: event.details.clone(),
        }
    }

    /// The window as one line of text.
    pub fn window_line(&self) -> Option<String> {
        self.window.as_ref().map(|w| {
            if w.preview {
                format!(
                    "Real window if approved now (worst case): {}; {}",
                    w.range, w.why
                )
            } else {
                format!("Real window (worst case): {}; {}", w.range, w.why)
            }
        })
    }
}
