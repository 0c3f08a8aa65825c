//! The auditors' audit log: every recorded event, newest first, filtered by grant,
//! actor, action and time, paged by sequence number; with the chain's latest signed
//! checkpoint, where it was published, and the command that verifies the whole log
//! with the public key (docs/audit.md). A plain GET form, usable without JavaScript.

use crate::api::{audit_log, AuditQuery};
use crate::components::{query_value, CheckpointNote, ErrorNote, Table, When};
use crate::domain::AuditAction;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// The query string of `q` (without the position unless given).
fn query_string(q: &AuditQuery, before: Option<i64>) -> String {
    let mut parts = Vec::new();
    for (k, v) in [
        ("grant", &q.grant),
        ("actor", &q.actor),
        ("action", &q.action),
        ("from", &q.from),
        ("to", &q.to),
    ] {
        if !v.is_empty() {
            parts.push(format!("{k}={}", query_value(v)));
        }
    }
    if let Some(b) = before {
        parts.push(format!("before={b}"));
    }
    parts.join("&")
}

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let q = Memo::new(move |_| {
        let m = query.read();
        let get = |k: &str| m.get(k).unwrap_or_default();
        AuditQuery {
            grant: get("grant"),
            actor: get("actor"),
            action: get("action"),
            from: get("from"),
            to: get("to"),
            before: get("before").parse().ok(),
            limit: None,
        }
    });
    let page = Resource::new(move || q.get(), audit_log);
    let field = move |name: &'static str, label: &'static str, placeholder: &'static str| {
        let value = move || {
            let q = q.get();
            match name {
                "grant" => q.grant,
                "actor" => q.actor,
                "from" => q.from,
                _ => q.to,
            }
        };
        view! {
            <div class="field">
                <label for=format!("a-{name}")>{label}</label>
                <input id=format!("a-{name}") name=name type="text" placeholder=placeholder prop:value=value/>
            </div>
        }
    };
    view! {
        <section aria-labelledby="audit-title">
            <h1 id="audit-title">"Audit log"</h1>
            <form method="get" action="/audit" class="filters" role="search" data-testid="audit-filters">
                {field("grant", "Grant", "a grant id")}
                {field("actor", "Who", "rita, or timebox")}
                <div class="field">
                    <label for="a-action">"Action"</label>
                    <select id="a-action" name="action">
                        <option value="">"any"</option>
                        {AuditAction::all().map(|a| {
                            let selected = move || q.get().action == a.as_str();
                            view! { <option value=a.as_str() selected=selected>{a.as_str()}</option> }
                        }).collect_view()}
                    </select>
                </div>
                {field("from", "From (UTC day)", "2026-11-01")}
                {field("to", "To (UTC day)", "2026-11-30")}
                <div class="buttons">
                    <button type="submit" class="primary">"Filter"</button>
                    <a href="/audit">"Clear"</a>
                </div>
            </form>
            <Transition fallback=|| view! { <p class="muted">"Loading the audit log…"</p> }>
                {move || page.get().map(|r| match r {
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                    Ok(p) => {
                        let next = p.next.map(|b| format!("/audit?{}", query_string(&q.get_untracked(), Some(b))));
                        let checkpoint = view! { <CheckpointNote audit=p.audit.clone()/> };
                        let rows = if p.events.is_empty() {
                            view! { <p class="empty" data-testid="audit-empty">"No event matches these filters."</p> }.into_any()
                        } else {
                            view! {
                                <Table testid="audit-log" headers=&["#", "When", "Who", "What", "Grant", "Why", "Hash"]>
                                    {p.events.into_iter().map(|e| view! {
                                        <tr data-seq=e.seq>
                                            <td>{e.seq}</td>
                                            <td><When at=e.at/></td>
                                            <td>{e.actor.clone()}</td>
                                            <td>{match (&e.from_state, &e.to_state) {
                                                (Some(f), Some(t)) => format!("{} ({f} → {t})", e.action),
                                                _ => e.action.clone(),
                                            }}</td>
                                            <td>{e.grant_id.clone().map(|g| view! { <a href=format!("/grants/{g}")>{g.chars().take(8).collect::<String>()}</a> })}</td>
                                            <td>{e.reason.clone().unwrap_or_default()}</td>
                                            <td><code title=e.hash.clone()>{e.hash.chars().take(12).collect::<String>()}</code></td>
                                        </tr>
                                    }).collect_view()}
                                </Table>
                            }.into_any()
                        };
                        view! {
                            {checkpoint}
                            {rows}
                            <nav class="pager" aria-label="Pages">
                                {(q.get_untracked().before.is_some()).then(|| view! {
                                    <a href=format!("/audit?{}", query_string(&q.get_untracked(), None))>"Newest"</a>
                                })}
                                {next.map(|href| view! { " " <a href=href rel="next" data-testid="audit-next">"Older"</a> })}
                            </nav>
                        }.into_any()
                    }
                })}
            </Transition>
        </section>
    }
}
