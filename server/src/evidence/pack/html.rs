//! The printable page of the evidence pack, as Leptos views (which escape every
//! value) styled by one embedded stylesheet of element and class rules. The page is
//! rendered once without its events; they are streamed into its events table page by
//! page ([`event_rows`]).

use super::PackHeader;
use app::domain::ActivityEvent;
use chrono::{DateTime, Utc};
use leptos::prelude::*;

/// The pack's stylesheet (in a `<style>` element carrying the response's CSP nonce,
/// so the downloaded file looks the same offline).
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;max-width:80rem}\
table{border-collapse:collapse;margin:.5rem 0 1.5rem}\
th,td{border:1px solid #bbb;padding:.25rem .5rem;vertical-align:top}\
th{text-align:left;background:#f3f3f3}\
.flag{color:#8a1c00;font-weight:600}";

/// Where the events go: the page is split here into its head and its tail.
const EVENTS_MARK: &str = "<tbody class=\"events\">";

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "—".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// A header row of column names.
fn head_row(names: &'static [&'static str]) -> impl IntoView {
    view! { <tr>{names.iter().map(|n| view! { <th>{*n}</th> }).collect_view()}</tr> }
}

/// A row of cells.
fn cells(values: Vec<String>) -> impl IntoView {
    view! { <tr>{values.into_iter().map(|v| view! { <td>{v}</td> }).collect_view()}</tr> }
}

/// A table of named values.
fn facts(rows: Vec<(&'static str, String)>) -> impl IntoView {
    view! {
        <table>
            {rows.into_iter().map(|(name, value)| view! { <tr><th>{name}</th><td>{value}</td></tr> }).collect_view()}
        </table>
    }
}

/// A named link, in a table of named values.
fn link_row(name: &'static str, href: String) -> impl IntoView {
    view! { <tr><th>{name}</th><td><a href=href.clone() rel="noopener noreferrer">{href.clone()}</a></td></tr> }
}

fn request(h: &PackHeader) -> impl IntoView {
    let r = &h.grant.request;
    facts(vec![
        ("requester", r.requester.to_string()),
        ("account", r.account_id.to_string()),
        ("permission set", r.permission_set.to_string()),
        ("justification", r.justification.to_string()),
        (
            "ticket",
            r.ticket.as_ref().map_or("—".to_owned(), |t| t.to_string()),
        ),
        ("duration", format!("{} minutes", r.duration.minutes())),
        ("state", h.grant.state.as_str().to_owned()),
        ("requested", time(Some(h.grant.created_at))),
    ])
}

fn approvals(h: &PackHeader) -> AnyView {
    if h.approvals.is_empty() {
        let text = format!(
            "No approvals recorded ({} required).",
            h.grant.request.approvals_required
        );
        return view! { <p>{text}</p> }.into_any();
    }
    let rows = h
        .approvals
        .iter()
        .map(|a| {
            cells(vec![
                a.approver.clone(),
                a.decision.as_str().to_owned(),
                time(Some(a.decided_at)),
                a.comment.clone().unwrap_or_default(),
            ])
        })
        .collect_view();
    view! { <table>{head_row(&["approver", "decision", "at", "comment"])}{rows}</table> }.into_any()
}

fn windows(h: &PackHeader) -> AnyView {
    let Some(w) = &h.windows else {
        return view! { <p>"The grant was never active: it has no windows."</p> }.into_any();
    };
    let ww = &w.windows;
    let rows = vec![
        cells(vec![
            "granted".into(),
            time(Some(ww.granted.start)),
            time(Some(ww.granted.end)),
            w.granted_why.clone(),
        ]),
        cells(vec![
            "real".into(),
            time(Some(ww.real.start)),
            time(Some(w.effective_end)),
            w.real_why.clone(),
        ]),
        cells(vec![
            "observed".into(),
            time(ww.observed.map(|x| x.start)),
            time(ww.observed.map(|x| x.end)),
            w.observed_why.clone(),
        ]),
    ];
    view! { <table>{head_row(&["window", "from", "to", "why"])}{rows}</table> }.into_any()
}

fn activity(h: &PackHeader) -> AnyView {
    let (Some(s), Some(c)) = (&h.summary, &h.collection) else {
        return view! { <p>"No activity has been collected for this grant."</p> }.into_any();
    };
    let mut rows = vec![
        ("source", c.source.to_owned()),
        ("events", s.event_count.to_string()),
        ("errors", s.error_count.to_string()),
        ("access denied", s.access_denied_count.to_string()),
        ("first activity", time(s.first_activity)),
        ("last activity", time(s.last_activity)),
        ("last credential issuance", time(s.last_credential_issuance)),
        (
            "distinct source IPs",
            format!("{} ({})", s.distinct_source_ips, s.source_ips.join(", ")),
        ),
        ("role", s.role_arn.clone().unwrap_or_else(|| "—".into())),
        ("collections", c.collections.to_string()),
        ("last collected", time(c.last_collected_at)),
        (
            "final collection (after the delivery delay)",
            time(c.final_collected_at),
        ),
    ];
    if let Some(closed) = h.grant.sessions_closed_at {
        rows.push(("sessions closed at", time(Some(closed))));
        rows.push((
            "calls refused after the sessions were closed",
            s.refused_after_close.to_string(),
        ));
    }
    if let Some(e) = &c.last_error {
        rows.push(("last collection error", e.clone()));
    }
    let flags = if h.flags.is_empty() {
        view! { <p>"No flags."</p> }.into_any()
    } else {
        let items = h
            .flags
            .iter()
            .map(|f| {
                let description = format!(": {}", f.description);
                view! { <li><span class="flag">{f.title}</span>{description}</li> }
            })
            .collect_view();
        view! { <ul>{items}</ul> }.into_any()
    };
    view! { {facts(rows)}{flags} }.into_any()
}

fn investigation(h: &PackHeader) -> AnyView {
    let Some(i) = &h.investigation else {
        return view! { <p>"No Detective investigation for this grant."</p> }.into_any();
    };
    let mut links = vec![link_row(
        "investigation in the console",
        i.links.investigation.clone(),
    )];
    if let Some(l) = &i.links.role_session {
        links.push(link_row("this person's role session", l.clone()));
    }
    if let Some(l) = &i.links.role {
        links.push(link_row(
            "the role (everyone holding the permission set)",
            l.clone(),
        ));
    }
    let rows = [
        ("investigation", i.investigation_id.clone()),
        ("status", i.status.as_str().to_owned()),
        (
            "severity",
            i.severity.map_or("—", |s| s.as_str()).to_owned(),
        ),
        ("role (entity)", i.entity_arn.clone()),
        (
            "scope",
            format!(
                "{} – {}",
                time(Some(i.scope.start)),
                time(Some(i.scope.end))
            ),
        ),
    ]
    .into_iter()
    .map(|(name, value)| view! { <tr><th>{name}</th><td>{value}</td></tr> })
    .collect_view();
    let indicators = (!i.indicators.is_empty()).then(|| {
        let rows = i
            .indicators
            .iter()
            .map(|ind| {
                let details: Vec<String> = ind
                    .details
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect();
                cells(vec![
                    ind.title().to_owned(),
                    ind.summary.clone(),
                    details.join("; "),
                ])
            })
            .collect_view();
        view! { <table>{head_row(&["indicator", "what", "details"])}{rows}</table> }
    });
    let note = i.shared_role_note.clone();
    view! {
        <p><strong>{note}</strong></p>
        <table>{rows}{links}</table>
        {indicators}
    }
    .into_any()
}

fn audit(h: &PackHeader) -> impl IntoView {
    let rows = h
        .audit
        .events
        .iter()
        .map(|e| {
            let transition = format!(
                "{} → {}",
                e.from_state.as_deref().unwrap_or(""),
                e.to_state.as_deref().unwrap_or("")
            );
            view! {
                <tr>
                    <td>{e.seq}</td>
                    <td>{time(Some(e.at))}</td>
                    <td>{e.actor.clone()}</td>
                    <td>{e.action.clone()}</td>
                    <td>{transition}</td>
                    <td>{e.reason.clone().unwrap_or_default()}</td>
                    <td><code>{e.hash.clone()}</code></td>
                </tr>
            }
        })
        .collect_view();
    let verdict = h.audit.verdict.clone();
    view! {
        <p><strong>{verdict}</strong></p>
        <table>
            {head_row(&["#", "at", "actor", "action", "from → to", "reason", "hash"])}
            {rows}
        </table>
    }
}

const EVENT_COLUMNS: &[&str] = &[
    "time",
    "source",
    "event",
    "region",
    "source IP",
    "user agent",
    "error",
    "read-only",
    "resources",
];

/// The page without its events, split where they go: `(head, tail)`.
pub fn page(h: &PackHeader, nonce: &str) -> (String, String) {
    let id = h.grant.id.to_string();
    let title = format!("Evidence pack — grant {id}");
    let generated = format!(
        ", generated {} for {}.",
        time(Some(h.generated_at)),
        h.generated_for
    );
    let body = view! {
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <title>{title}</title>
                <style nonce=nonce.to_owned() inner_html=STYLE></style>
            </head>
            <body>
                <h1>"Evidence pack"</h1>
                <p>"Grant "<code>{id}</code>{generated}</p>
                <h2>"Request"</h2>
                {request(h)}
                <h2>"Approvals"</h2>
                {approvals(h)}
                <h2>"Windows"</h2>
                {windows(h)}
                <h2>"Activity"</h2>
                {activity(h)}
                <h2>"Detective investigation"</h2>
                {investigation(h)}
                <h2>"Audit trail"</h2>
                {audit(h)}
                <h2>"Events"</h2>
                <table>
                    <thead>{head_row(EVENT_COLUMNS)}</thead>
                    <tbody class="events"></tbody>
                </table>
            </body>
        </html>
    }
    .to_html();
    let document = format!("<!doctype html>\n{body}\n");
    match document.find(EVENTS_MARK) {
        Some(at) => {
            let (head, tail) = document.split_at(at + EVENTS_MARK.len());
            (head.to_owned(), tail.to_owned())
        }
        None => {
            // Cannot happen (the mark is in the view above); the pack then lacks its
            // events rather than breaking the page.
            tracing::error!("the evidence pack's events table is missing");
            (document, String::new())
        }
    }
}

/// One page of events as rows of the events table.
pub fn event_rows(events: &[ActivityEvent], _first: bool) -> String {
    events
        .iter()
        .map(|e| {
            let read_only = match e.read_only {
                Some(true) => "yes",
                Some(false) => "no",
                None => "",
            };
            cells(vec![
                time(Some(e.event_time)),
                e.event_source.clone(),
                e.event_name.clone(),
                e.aws_region.clone().unwrap_or_default(),
                e.source_ip.clone().unwrap_or_default(),
                e.user_agent.clone().unwrap_or_default(),
                e.error_code.clone().unwrap_or_default(),
                read_only.to_owned(),
                e.resources.join(", "),
            ])
            .to_html()
        })
        .collect()
}
