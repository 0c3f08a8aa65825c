//! "Active now": grants in force, with the time left, and revoked grants whose
//! sessions may still be alive (the tail), until when.

use crate::api::{active_now, ActiveItem};
use crate::components::{listed, use_refresh, MaybeWhen, StateBadge, Table};
use crate::domain::format_human;
use chrono::Utc;
use leptos::prelude::*;

#[component]
pub fn ActivePage() -> impl IntoView {
    let refresh = use_refresh();
    let items = Resource::new(move || refresh.get(), |_| active_now());
    view! {
        <section aria-labelledby="active-title">
            <h1 id="active-title">"Active now"</h1>
            <p class="hint">"Grants in force, then revoked grants whose sessions may still be used (the tail)."</p>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || items.get().map(|r| listed(
                    r,
                    || view! { <p class="empty" data-testid="active-empty">"Nobody holds elevated access right now."</p> },
                    |list| view! {
                        <Table testid="active" headers=&["Who", "Access", "State", "Ends", "Left", "Sessions may live until"]>
                            {list.into_iter().map(row).collect_view()}
                        </Table>
                    },
                ))}
            </Transition>
        </section>
    }
}

fn row(i: ActiveItem) -> impl IntoView {
    let g = i.grant;
    let now = Utc::now();
    let left = if i.phase == "tail" {
        g.real_end
            .map(|e| format!("tail: {} more", format_human(e - now)))
            .unwrap_or_default()
    } else {
        g.ends_at
            .map(|e| format_human((e - now).max(chrono::Duration::zero())))
            .unwrap_or_default()
    };
    view! {
        <tr data-phase=i.phase.clone() data-grant=g.id.to_string()>
            <td>{g.request.requester.to_string()}</td>
            <td><a href=format!("/grants/{}", g.id)>{format!("{} in {}", g.request.permission_set, g.request.account_id)}</a></td>
            <td><StateBadge state=g.state/></td>
            <td><MaybeWhen at=g.ends_at/></td>
            <td>{left}</td>
            <td><MaybeWhen at=g.real_end/></td>
        </tr>
    }
}
