//! Admins: the catalog's sync state (and a button to sync now), the reaper's
//! health (queue, lag, failing grants), drift reports, and a revoke button for any
//! active grant.

use crate::api::{get_admin_status, AdminStatus, RevokeGrant, SyncCatalog};
use crate::components::{or_empty, use_refresh, CheckpointNote, ErrorNote, MaybeWhen, When};
use leptos::form::ActionForm;
use leptos::prelude::*;

#[component]
pub fn AdminPage() -> impl IntoView {
    let refresh = use_refresh();
    let sync = ServerAction::<SyncCatalog>::new();
    let revoke = ServerAction::<RevokeGrant>::new();
    let status = Resource::new(
        move || (refresh.get(), sync.version().get(), revoke.version().get()),
        |_| get_admin_status(),
    );
    view! {
        {move || [sync.value().get().and_then(Result::err), revoke.value().get().and_then(Result::err)]
            .into_iter().flatten().next().map(|e| view! { <ErrorNote error=e/> })}
        <Transition fallback=|| view! { <section><p class="muted">"Loading…"</p></section> }>
            {move || status.get().map(|r| match r {
                Err(e) => view! { <section><h1>"Admin"</h1><ErrorNote error=e/></section> }.into_any(),
                Ok(s) => view! { <AdminView s=s sync=sync revoke=revoke/> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn AdminView(
    s: AdminStatus,
    sync: ServerAction<SyncCatalog>,
    revoke: ServerAction<RevokeGrant>,
) -> impl IntoView {
    view! {
        <section aria-labelledby="catalog-title">
            <h1 id="catalog-title">"Catalog"</h1>
            <p data-testid="catalog-status">
                {match s.catalog.synced_at {
                    Some(t) => view! { "Synced from IAM Identity Center at " <When at=t/> ": " }.into_any(),
                    None => view! { <strong>"Never synced. "</strong> }.into_any(),
                }}
                {format!("{} accounts, {} permission sets.", s.catalog.accounts, s.catalog.permission_sets)}
            </p>
            <ActionForm action=sync>
                <button type="submit" data-testid="sync-catalog">"Sync now"</button>
            </ActionForm>
            <p><a href="/admin/policies">"Policies: who can request what, approved by whom"</a></p>
        </section>
        <section aria-labelledby="reaper-title">
            <h2 id="reaper-title">"Reaper"</h2>
            <p data-testid="reaper-status">
                {if s.reaper.enabled { format!("Running every {} s on this replica. ", s.reaper.interval_seconds) } else { "Disabled on this replica (reaper.enabled = false). ".to_owned() }}
                {format!("{} grant(s) due now; the oldest has waited {} s.", s.reaper.queue_depth, s.reaper.lag_seconds)}
                " Prometheus: " <a href="/metrics" rel="external">"/metrics"</a>
            </p>
            {or_empty(s.reaper.problems, || view! { <p class="ok-note">"No grant is failing."</p> }, |problems| view! {
                    <table>
                        <thead><tr><th scope="col">"Grant"</th><th scope="col">"State"</th><th scope="col">"Attempts"</th><th scope="col">"Last error"</th><th scope="col">"Next try"</th></tr></thead>
                        <tbody>{problems.into_iter().map(|p| view! {
                            <tr>
                                <td><a href=format!("/grants/{}", p.grant_id)>{p.grant_id.chars().take(8).collect::<String>()}</a></td>
                                <td>{p.state.as_str()}</td><td>{p.attempts}</td>
                                <td class="error">{p.last_error}</td><td><MaybeWhen at=p.next_attempt_at/></td>
                            </tr>
                        }).collect_view()}</tbody>
                    </table>
            })}
        </section>
        <section aria-labelledby="drift-title">
            <h2 id="drift-title">"Drift"</h2>
            {or_empty(s.drift, || view! { <p class="ok-note">"Identity Center matches Timebox's records."</p> }, |drift| view! {
                    <ul class="drift">{drift.into_iter().map(|d| view! {
                        <li>
                            <When at=d.at/> " "
                            <strong>{if d.kind == "drift_removed" { "removed a leftover assignment" } else { "assignment made outside Timebox (reported, not removed)" }}</strong>
                            ": " <code>{d.details.to_string()}</code>
                        </li>
                    }).collect_view()}</ul>
            })}
        </section>
        <section aria-labelledby="sessions-title" data-testid="admin-sessions">
            <h2 id="sessions-title">"Closing sessions"</h2>
            <p>
                {format!("Revoked grants' sessions are closed by: {}", s.sessions.mode)}
                {format!(" ({} policy slot{} per account{})", s.sessions.policy_slots,
                    if s.sessions.policy_slots == 1 { "" } else { "s" },
                    if s.sessions.inline_fallback { ", the permission set's inline policy when they are full" } else { "" })}
                ". "
                {s.sessions.management_account.clone().map(|m| format!("The management account {m} is not governed by service control policies. "))}
                "See docs/sessions.md for how, and the Organizations permissions it needs."
            </p>
            {or_empty(s.sessions.open, || view! { <p class="ok-note">"Every revoked grant's sessions are closed (or being closed)."</p> }, |open| view! {
                    <table data-testid="sessions-open">
                        <thead><tr><th scope="col">"Grant"</th><th scope="col">"Access"</th><th scope="col">"Why not closed"</th><th scope="col">"Can last until"</th></tr></thead>
                        <tbody>{open.into_iter().map(|o| view! {
                            <tr>
                                <td><a href=format!("/grants/{}", o.grant_id)>{o.grant_id.chars().take(8).collect::<String>()}</a></td>
                                <td>{format!("{} in {}", o.permission_set, o.account_id)}</td>
                                <td class="error">{o.outcome.describe()}</td>
                                <td><When at=o.until/></td>
                            </tr>
                        }).collect_view()}</tbody>
                    </table>
            })}
            {or_empty(s.sessions.edited, || (), |edited| view! {
                    <ul class="drift">{edited.into_iter().map(|d| view! {
                        <li><When at=d.at/> " " <strong>"a policy Timebox owns was edited by someone else (not overwritten)"</strong> ": " <code>{d.details.to_string()}</code></li>
                    }).collect_view()}</ul>
            })}
        </section>
        <section aria-labelledby="audit-title" data-testid="admin-audit">
            <h2 id="audit-title">"Audit chain"</h2>
            <CheckpointNote audit=s.audit.clone()/>
        </section>
        <section aria-labelledby="admin-active-title">
            <h2 id="admin-active-title">"Active grants"</h2>
            {or_empty(s.active, || view! { <p class="empty">"No grant is active."</p> }, |active| {
                active.into_iter().map(|g| {
                    let id = g.id;
                    view! {
                        <article class="admin-grant">
                            <a href=format!("/grants/{id}")>{format!("{} — {} in {}", g.request.requester, g.request.permission_set, g.request.account_id)}</a>
                            " until " <MaybeWhen at=g.ends_at/>
                            <ActionForm action=revoke attr:class="inline">
                                <input type="hidden" name="id" value=id.to_string()/>
                                <label for=format!("reason-{id}") class="sr-only">"Reason"</label>
                                <input id=format!("reason-{id}") name="reason" type="text" required placeholder="reason"/>
                                <button type="submit" class="danger">"Revoke"</button>
                            </ActionForm>
                        </article>
                    }
                }).collect_view()
            })}
        </section>
    }
}
