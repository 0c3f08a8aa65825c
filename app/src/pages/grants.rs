//! "My grants": every grant of the viewer with its state, updated live as the
//! reaper and approvers move it (server-sent events), with the actions the domain
//! rule allows the viewer ([`GrantActions`]): cancel a request, "I'm done" on an
//! active grant, extend it.

use crate::api::{my_grants, CancelGrant, RevokeGrant, Viewer};
use crate::components::{
    listed, use_refresh, use_viewer, CancelForm, DoneForm, ErrorNote, MaybeWhen, StateBadge, Table,
    When,
};
use crate::domain::{fmt_minutes, ActionCtx, Grant, GrantActions};
use leptos::prelude::*;

#[component]
pub fn MyGrantsPage() -> impl IntoView {
    let refresh = use_refresh();
    let viewer = use_viewer();
    let cancel = ServerAction::<CancelGrant>::new();
    let finish = ServerAction::<RevokeGrant>::new();
    let grants = Resource::new(
        move || {
            (
                refresh.get(),
                cancel.version().get(),
                finish.version().get(),
            )
        },
        |_| my_grants(),
    );
    let action_error = move || {
        [cancel.value().get(), finish.value().get()]
            .into_iter()
            .flatten()
            .find_map(Result::err)
            .map(|e| view! { <ErrorNote error=e/> })
    };
    view! {
        <section aria-labelledby="mine-title">
            <h1 id="mine-title">"My grants"</h1>
            <p class="hint">
                "Updates by itself as your grants move: pending → approved → provisioning → active → revoking → revoked → closed. "
                <a href="/request">"Ask for access"</a>
            </p>
            {action_error}
            <Transition fallback=|| view! { <p class="muted">"Loading your grants…"</p> }>
                {move || grants.get().map(|r| listed(
                    r,
                    || view! {
                        <p class="empty" data-testid="no-grants">
                            "You have no grants yet. " <a href="/request">"Ask for access"</a> " to get one."
                        </p>
                    },
                    |list| {
                        let viewer = viewer.get().and_then(Result::ok).unwrap_or_default();
                        view! {
                            <Table class="grants" testid="my-grants" headers=&["Access", "State", "Requested", "Ends", "Real end"] last_hidden="Actions">
                                {list.into_iter().map(|g| row(&viewer, g, cancel, finish)).collect_view()}
                            </Table>
                        }
                    },
                ))}
            </Transition>
        </section>
    }
}

fn row(
    viewer: &Viewer,
    g: Grant,
    cancel: ServerAction<CancelGrant>,
    finish: ServerAction<RevokeGrant>,
) -> impl IntoView {
    let id = g.id;
    let href = format!("/grants/{id}");
    let what = format!(
        "{} in {} for {}",
        g.request.permission_set,
        g.request.account_id,
        fmt_minutes(g.request.duration.minutes())
    );
    // One's own grants: nobody decides or reviews them here.
    let may = GrantActions::for_viewer(
        &viewer.caller,
        &g,
        &ActionCtx {
            policy: &viewer.policy,
            decisions: &[],
            named_by_policy: false,
            approvers: &[],
        },
    );
    let actions = view! {
        {may.can_cancel.then(|| view! { <CancelForm id=id cancel=cancel label="Cancel"/> })}
        {may.can_finish.then(|| view! { <DoneForm id=id revoke=finish label="I'm done"/> })}
        {may.can_extend.then(|| view! { " " <a href=format!("{href}#extend")>"Extend…"</a> })}
    };
    view! {
        <tr data-grant=id.to_string() data-state=g.state.as_str()>
            <td><a href=href>{what}</a></td>
            <td><StateBadge state=g.state/></td>
            <td><When at=g.created_at/></td>
            <td><MaybeWhen at=g.ends_at/></td>
            <td><MaybeWhen at=g.real_end/></td>
            <td class="actions">{actions}</td>
        </tr>
    }
}
