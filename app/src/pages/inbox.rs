//! The approver's inbox: pending requests the viewer may decide (never their own),
//! oldest first, each with what an approver needs to decide well.

use crate::api::{inbox, DecideGrant, InboxItem};
use crate::components::{kept_decision, listed, use_refresh, DecideForm, ErrorNote, When};
use crate::domain::fmt_minutes;
use crate::pages::grant::{windows_of, WindowSentence};
use leptos::prelude::*;

#[component]
pub fn InboxPage() -> impl IntoView {
    let refresh = use_refresh();
    let decide = ServerAction::<DecideGrant>::new();
    let items = Resource::new(move || (refresh.get(), decide.version().get()), |_| inbox());
    let kept = kept_decision(decide, None);
    view! {
        <section aria-labelledby="inbox-title">
            <h1 id="inbox-title">"Requests to decide"</h1>
            <p class="hint">"Oldest first. Your own requests never appear here: someone else must decide them."</p>
            {move || decide.value().get().and_then(Result::err).map(|e| view! { <ErrorNote error=e return_to=kept.get()/> })}
            <Transition fallback=|| view! { <p class="muted">"Loading requests…"</p> }>
                {move || items.get().map(|r| listed(
                    r,
                    || view! { <p class="empty" data-testid="inbox-empty">"Nothing is waiting for you."</p> },
                    |list| list.into_iter().map(|i| view! { <Item item=i decide=decide/> }).collect_view(),
                ))}
            </Transition>
        </section>
    }
}

#[component]
fn Item(item: InboxItem, decide: ServerAction<DecideGrant>) -> impl IntoView {
    let g = item.grant.clone();
    let id = g.id;
    let windows = windows_of(
        &g,
        item.portal_session_seconds,
        item.permission_set_session_seconds,
    );
    let have = item
        .approvals
        .iter()
        .filter(|a| a.decision == "approve")
        .count();
    view! {
        <article class="inbox-item" data-grant=id.to_string() data-testid="inbox-item">
            <h2>
                <a href=format!("/grants/{id}")>
                    {g.request.requester.to_string()} " asks for " {g.request.permission_set.to_string()}
                    " in " {crate::components::account_label(item.account_name.as_deref(), g.request.account_id.as_str())}
                    " for " {fmt_minutes(g.request.duration.minutes())}
                </a>
            </h2>
            {g.request.extends.map(|e| view! {
                <p data-testid="extends">"An extension of " <a href=format!("/grants/{e}")>"a grant of the same access"</a>
                    ": approved while that access runs, the extra time counts from its end; approved after it ended, it is a new grant."</p>
            })}
            <p class="justification">{g.request.justification.to_string()}</p>
            <p class="muted">
                {g.request.ticket.as_ref().map(|t| format!("Ticket {t} · "))}
                "asked " <When at=g.created_at/>
                {match g.request.requested_start { Some(t) => view! { " · to start " <When at=t/> }.into_any(), None => view! { " · to start when approved" }.into_any() }}
            </p>
            {windows.map(|w| view! { <WindowSentence windows=w.windows preview=w.preview/> })}
            {match g.paths_at_request.clone() {
                Some(paths) if !paths.is_empty() => view! {
                    <div class="warning" role="note" data-testid="other-paths">
                        <strong>{format!("{} already reaches this access", g.request.requester)}</strong>
                        " (found when the request was made) through:"
                        <ul>{paths.iter().map(|p| view! { <li>{p.describe()}</li> }).collect_view()}</ul>
                    </div>
                }.into_any(),
                Some(_) => view! { <p class="muted" data-testid="other-paths">"No other path to this access was found when the request was made."</p> }.into_any(),
                None => view! { <p class="muted" data-testid="other-paths">"Other paths to this access could not be checked when the request was made."</p> }.into_any(),
            }}
            <p data-testid="recent-use">
                {format!("{} had this permission set in this account {} time{} in the last 30 days",
                    g.request.requester, item.recent.grants_30d, if item.recent.grants_30d == 1 { "" } else { "s" })}
                {if item.recent.flagged_30d > 0 {
                    format!("; {} of those grants were flagged.", item.recent.flagged_30d)
                } else {
                    "; none flagged.".to_owned()
                }}
            </p>
            <p>{format!("Approvals: {have} of {}", g.request.approvals_required)}</p>
            <DecideForm id=id decide=decide comment_id=format!("comment-{id}")/>
        </article>
    }
}
