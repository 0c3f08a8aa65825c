//! The auditors' audit log: every recorded event, newest first, filtered by grant,
//! actor, action and time, paged by sequence number (a plain GET form, usable
//! without JavaScript); the last whole-chain verification with a button to run one
//! (its progress refreshed every two seconds while it runs); the newest signed
//! checkpoints and where each was published, with the command that verifies the
//! whole log offline with the public key (docs/audit.md).

use crate::api::{
    audit_log, audit_verification, AuditQuery, CheckpointView, VerificationView, VerifyAudit,
};
use crate::components::{query_value, CheckpointNote, ErrorNote, Table, When};
use crate::domain::{AuditAction, VerificationState};
use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use std::time::Duration;

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
        <Verification/>
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
                        let checkpoint = view! { <CheckpointNote audit=p.audit.clone()/> <Checkpoints checkpoints=p.checkpoints.clone()/> };
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

/// The last verification of the whole record, and the button that asks for one.
#[component]
fn Verification() -> impl IntoView {
    let verify = ServerAction::<VerifyAudit>::new();
    // While one is open, ask again every two seconds (in the browser only).
    let tick = RwSignal::new(0u64);
    let open = RwSignal::new(false);
    Effect::new(move |_| {
        let beat = move || {
            if open.try_get_untracked() == Some(true) {
                tick.try_update(|t| *t += 1);
            }
        };
        // Stopped when the page goes away.
        if let Ok(handle) = set_interval_with_handle(beat, Duration::from_secs(2)) {
            on_cleanup(move || handle.clear());
        }
    });
    let last = Resource::new(
        move || (verify.version().get(), tick.get()),
        |_| audit_verification(),
    );
    Effect::new(move |_| {
        if let Some(Ok(v)) = last.get() {
            open.set(v.is_some_and(|v| v.state.is_open()));
        }
    });
    view! {
        <section aria-labelledby="verify-title" data-testid="audit-verification">
            <h2 id="verify-title">"Verification of the whole record"</h2>
            {move || verify.value().get().and_then(Result::err).map(|e| view! { <ErrorNote error=e/> })}
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || last.get().map(|r| match r {
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                    Ok(None) => view! {
                        <p class="muted" data-testid="verification-none">"No verification was asked for yet. It walks every event, link and signed checkpoint, then checks every grant's record against its events."</p>
                    }.into_any(),
                    Ok(Some(v)) => view! { <VerificationNote v=v/> }.into_any(),
                })}
            </Transition>
            <ActionForm action=verify>
                <button type="submit" data-testid="verify-audit" disabled=move || open.get()>"Verify the whole record now"</button>
            </ActionForm>
        </section>
    }
}

#[component]
fn VerificationNote(v: VerificationView) -> impl IntoView {
    let asked =
        view! { " (asked for by " {v.requested_by.clone()} " at " <When at=v.requested_at/> ")" };
    match v.state {
        VerificationState::Queued => view! {
            <p class="muted" data-testid="verification-state" data-state="queued">"Queued; it starts within seconds" {asked} "."</p>
        }.into_any(),
        VerificationState::Running => view! {
            <p data-testid="verification-state" data-state="running">
                {format!("Running: {} of {} events verified", v.events_verified, v.head_seq)}
                {(v.grants_checked > 0).then(|| format!(", {} grant records checked", v.grants_checked))}
                {asked} " "
                <progress max=v.head_seq.max(1) value=v.events_verified></progress>
            </p>
        }.into_any(),
        VerificationState::Passed => view! {
            <p class="ok-note" data-testid="verification-state" data-state="passed">
                "Passed at " {v.finished_at.map(|t| view! { <When at=t/> })} {asked} ": " {v.summary.clone().unwrap_or_default()}
            </p>
        }.into_any(),
        VerificationState::Failed => view! {
            <p class="error-note" role="alert" data-testid="verification-state" data-state="failed">
                "FAILED at " {v.finished_at.map(|t| view! { <When at=t/> })} {asked} ": "
                <strong data-testid="verification-problem">{v.problem.clone().unwrap_or_default()}</strong>
                {v.first_broken_seq.map(|seq| view! { " " <a href=format!("/audit?before={}", seq + 1)>{format!("See event {seq} in the log")}</a> })}
            </p>
        }.into_any(),
        VerificationState::Error => view! {
            <p class="warning" role="alert" data-testid="verification-state" data-state="error">
                "Could not be checked" {asked} ": " {v.problem.clone().unwrap_or_default()}
            </p>
        }.into_any(),
    }
}

/// The newest signed checkpoints and where each was published.
#[component]
fn Checkpoints(checkpoints: Vec<CheckpointView>) -> impl IntoView {
    (!checkpoints.is_empty()).then(|| view! {
        <Table testid="audit-checkpoints" headers=&["Checkpoint at event", "Signed", "Events", "Chain hash", "Published to"]>
            {checkpoints.into_iter().map(|c| view! {
                <tr>
                    <td>{c.seq}</td>
                    <td><When at=c.at/></td>
                    <td>{c.events}</td>
                    <td><code title=c.hash.clone()>{c.hash.chars().take(16).collect::<String>()}</code></td>
                    <td>{if c.published.is_empty() {
                        "not yet (retried each pass)".to_owned()
                    } else {
                        c.published.iter().map(|(sink, _)| sink.clone()).collect::<Vec<_>>().join(", ")
                    }}</td>
                </tr>
            }).collect_view()}
        </Table>
    })
}
