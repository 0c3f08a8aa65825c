//! Admins: the policies in force, the state of the policy file (last reload, its
//! error, references the catalog does not know), and "who can request what,
//! approved by whom" for a chosen user or group, account or permission set. A GET
//! form: usable without JavaScript.

use crate::api::{get_policies, PoliciesView, PolicyQuery};
use crate::components::{ErrorNote, MaybeWhen, Table};
use crate::domain::{fmt_minutes, ApprovalRule};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

fn approval(a: &ApprovalRule) -> String {
    match a {
        ApprovalRule::Auto => "automatic".into(),
        ApprovalRule::Required { count, approvers } => {
            format!("{count} of {}", approvers.join(", "))
        }
    }
}

#[component]
pub fn PoliciesPage() -> impl IntoView {
    let query = use_query_map();
    let q = Memo::new(move |_| {
        let m = query.read();
        PolicyQuery {
            user: m.get("user").unwrap_or_default(),
            account: m.get("account").unwrap_or_default(),
            permission_set: m.get("permission_set").unwrap_or_default(),
        }
    });
    let view_data = Resource::new(move || q.get(), get_policies);
    view! {
        <section aria-labelledby="policies-title">
            <h1 id="policies-title">"Policies"</h1>
            <form method="get" action="/admin/policies" class="filters" role="search">
                <div class="field">
                    <label for="p-user">"User or group"</label>
                    <input id="p-user" name="user" type="text" placeholder="rita, user:rita, group:sre" prop:value=move || q.get().user/>
                </div>
                <div class="field">
                    <label for="p-account">"Account"</label>
                    <input id="p-account" name="account" type="text" placeholder="111122223333" prop:value=move || q.get().account/>
                </div>
                <div class="field">
                    <label for="p-ps">"Permission set"</label>
                    <input id="p-ps" name="permission_set" type="text" placeholder="AdministratorAccess" prop:value=move || q.get().permission_set/>
                </div>
                <div class="buttons"><button type="submit" class="primary">"Who can request what"</button></div>
            </form>
            <Suspense fallback=|| view! { <p class="muted">"Loading the policies…"</p> }>
                {move || view_data.get().map(|r| match r {
                    Err(e) => view! { <ErrorNote error=e/> }.into_any(),
                    Ok(v) => view! { <PoliciesView v=v/> }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn PoliciesView(v: PoliciesView) -> impl IntoView {
    let r = v.reload.clone();
    view! {
        <div data-testid="policy-file">
            {match r.file.clone() {
                Some(f) => view! { <p>"Policy file " <code>{f}</code> ": " {r.policies} " policies, loaded " <MaybeWhen at=r.loaded_at/> "."</p> }.into_any(),
                None => view! { <p class="warning">"No policy file is configured (policy.file): nobody may ask for access."</p> }.into_any(),
            }}
            {r.last_error.clone().map(|e| view! { <p class="error-note" role="alert">"The last reload was refused; the previous policy stays in force: " {e}</p> })}
            {(!r.catalog_problems.is_empty()).then(|| view! {
                <div class="warning"><p>"Not in the synced catalog (these entries match nothing until it has them):"</p>
                    <ul>{r.catalog_problems.iter().map(|p| view! { <li>{p.clone()}</li> }).collect_view()}</ul></div>
            })}
        </div>
        <h2>"Who can request what, approved by whom"</h2>
        {if v.rows.is_empty() {
            view! { <p class="empty" data-testid="explain-empty">"No policy covers this."</p> }.into_any()
        } else {
            view! {
                <Table testid="explain" headers=&["Requesters", "Account", "Permission set", "Up to", "Approval", "Policy"]>
                            {v.rows.into_iter().map(|x| view! {
                                <tr>
                                    <td>{x.requesters.join(", ")}</td>
                                    <td>{x.account_name.clone()} <span class="muted">" " {x.account_id.clone()} " via " {x.via.clone()}</span></td>
                                    <td>{x.permission_set.clone()}</td>
                                    <td>{fmt_minutes(i64::from(x.max_duration_minutes))}</td>
                                    <td>{if x.break_glass { "break-glass (reviewed afterwards)".to_owned() } else { approval(&x.approval) }}
                                        {x.ticket.required.then_some(" · ticket required")}</td>
                                    <td>{x.policy.clone()}
                                        {(!x.overridden_by.is_empty()).then(|| view! { <span class="muted">" (overridden for some by " {x.overridden_by.join(", ")} ")"</span> })}</td>
                                </tr>
                            }).collect_view()}
                </Table>
            }.into_any()
        }}
        <h2>"Policies in force"</h2>
        <ul class="policies">
            {v.policies.into_iter().map(|p| view! {
                <li>
                    <strong>{p.name.clone()}</strong> ": " {p.requesters.join(", ")} " → " {p.permission_sets.join(", ")}
                    " in " {p.accounts.join(", ")} ", up to " {fmt_minutes(i64::from(p.max_duration_minutes))} ", "
                    {if p.break_glass { "break-glass".to_owned() } else { approval(&p.approval) }}
                </li>
            }).collect_view()}
        </ul>
    }
}
