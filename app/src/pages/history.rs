//! The auditors' history: every grant, filtered by user, account, permission set,
//! state, time range and words of the justification, newest first, paged by keyset
//! (the link to the next page carries the position, so pages stay fast at a
//! million grants). A plain GET form: readable and usable without JavaScript.
//! Exports of the filtered history as CSV and JSON come from the JSON API.

use crate::api::{history, HistoryQuery};
use crate::components::{query_value, ErrorNote, MaybeWhen, StateBadge, Table, When};
use crate::domain::{fmt_minutes, GrantState};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// The query string of `q` (without the cursor unless given).
fn query_string(q: &HistoryQuery, cursor: Option<&str>) -> String {
    let mut parts = Vec::new();
    for (k, v) in [
        ("user", &q.user),
        ("account", &q.account),
        ("permission_set", &q.permission_set),
        ("state", &q.state),
        ("from", &q.from),
        ("to", &q.to),
        ("text", &q.text),
    ] {
        if !v.is_empty() {
            parts.push(format!("{k}={}", query_value(v)));
        }
    }
    if let Some(c) = cursor {
        parts.push(format!("cursor={}", query_value(c)));
    }
    parts.join("&")
}

#[component]
pub fn HistoryPage() -> impl IntoView {
    let query = use_query_map();
    let q = Memo::new(move |_| {
        let m = query.read();
        let get = |k: &str| m.get(k).unwrap_or_default();
        HistoryQuery {
            user: get("user"),
            account: get("account"),
            permission_set: get("permission_set"),
            state: get("state"),
            from: get("from"),
            to: get("to"),
            text: get("text"),
            cursor: get("cursor"),
            limit: None,
        }
    });
    let page = Resource::new(move || q.get(), history);
    let field = move |name: &'static str, label: &'static str, placeholder: &'static str| {
        let value = move || {
            let q = q.get();
            match name {
                "user" => q.user,
                "account" => q.account,
                "permission_set" => q.permission_set,
                "from" => q.from,
                "to" => q.to,
                _ => q.text,
            }
        };
        view! {
            <div class="field">
                <label for=format!("h-{name}")>{label}</label>
                <input id=format!("h-{name}") name=name type="text" placeholder=placeholder prop:value=value/>
            </div>
        }
    };
    view! {
        <section aria-labelledby="history-title">
            <h1 id="history-title">"History"</h1>
            <form method="get" action="/history" class="filters" role="search" data-testid="history-filters">
                {field("user", "User", "rita")}
                {field("account", "Account", "111122223333")}
                {field("permission_set", "Permission set", "AdministratorAccess")}
                <div class="field">
                    <label for="h-state">"State"</label>
                    <select id="h-state" name="state">
                        <option value="">"any"</option>
                        {GrantState::ALL.into_iter().map(|s| {
                            let selected = move || q.get().state == s.as_str();
                            view! { <option value=s.as_str() selected=selected>{s.as_str()}</option> }
                        }).collect_view()}
                    </select>
                </div>
                {field("from", "From (UTC day)", "2026-11-01")}
                {field("to", "To (UTC day)", "2026-11-30")}
                {field("text", "Words in the justification", "incident deploy")}
                <div class="buttons">
                    <button type="submit" class="primary">"Filter"</button>
                    <a href="/history">"Clear"</a>
                </div>
            </form>
            <p class="exports">
                "Export these grants: "
                <a rel="external" data-testid="export-csv" href=move || format!("/api/v1/grants/export?format=csv&{}", query_string(&q.get(), None))>"CSV"</a>
                " · "
                <a rel="external" data-testid="export-json" href=move || format!("/api/v1/grants/export?format=json&{}", query_string(&q.get(), None))>"JSON"</a>
            </p>
            <Transition fallback=|| view! { <p class="muted">"Loading the history…"</p> }>
                {move || page.get().map(|r| match r {
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                    Ok(p) if p.grants.is_empty() => view! {
                        <p class="empty" data-testid="history-empty">"No grant matches these filters."</p>
                    }.into_any(),
                    Ok(p) => {
                        let next = p.next.clone().map(|c| format!("/history?{}", query_string(&q.get_untracked(), Some(&c))));
                        view! {
                            <Table testid="history" headers=&["Requested", "Who", "Access", "For", "State", "Revoked", "Real end", "Justification"]>
                                        {p.grants.into_iter().map(|g| view! {
                                            <tr data-grant=g.id.to_string()>
                                                <td><a href=format!("/grants/{}", g.id)><When at=g.created_at/></a></td>
                                                <td>{g.request.requester.to_string()}</td>
                                                <td>{format!("{} in {}", g.request.permission_set, g.request.account_id)}</td>
                                                <td>{fmt_minutes(g.request.duration.minutes())}
                                                    {g.request.extends.map(|e| view! { " " <a href=format!("/grants/{e}") class="extends" data-testid="extends" title="an extension: the same access, continued">"(extends)"</a> })}
                                                </td>
                                                <td><StateBadge state=g.state/></td>
                                                <td><MaybeWhen at=g.revoked_at/></td>
                                                <td><MaybeWhen at=g.real_end/>
                                                    {g.sessions_close.map(|c| {
                                                        let (mark, class) = if c.is_closed() {
                                                            ("sessions closed", "sessions-closed")
                                                        } else if c == crate::domain::SessionsClose::Pending {
                                                            ("closing sessions", "muted")
                                                        } else {
                                                            ("worst case: sessions not closed", "sessions-open")
                                                        };
                                                        let worst = g.windows().and_then(Result::ok).filter(|w| w.is_final).map(|w| w.worst_case_end);
                                                        view! {
                                                            " " <span class=class data-testid="sessions-mark" title=c.describe()>{format!("({mark})")}</span>
                                                            {worst.filter(|_| c.is_closed()).map(|w| view! {
                                                                <br/><span class="muted">"without the deny: " <When at=w/></span>
                                                            })}
                                                        }
                                                    })}
                                                </td>
                                                <td class="justification">{g.request.justification.to_string()}</td>
                                            </tr>
                                        }).collect_view()}
                            </Table>
                            <nav class="pager" aria-label="Pages">
                                {(!q.get_untracked().cursor.is_empty()).then(|| view! {
                                    <a href=format!("/history?{}", query_string(&q.get_untracked(), None))>"First page"</a>
                                })}
                                {next.map(|n| view! { <a href=n data-testid="next-page">"Next page"</a> })}
                            </nav>
                        }.into_any()
                    }
                })}
            </Transition>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_encoded() {
        let q = HistoryQuery {
            user: "rita".into(),
            text: "db & cache".into(),
            ..HistoryQuery::default()
        };
        assert_eq!(
            query_string(&q, Some("1.x")),
            "user=rita&text=db%20%26%20cache&cursor=1.x"
        );
    }
}
