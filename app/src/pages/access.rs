//! "Your access": who the viewer is, their roles, and one section per thing their
//! roles let them do, each shown only when [`authorize`] allows it, the same function
//! that guards the server.

use crate::api::Viewer;
use crate::components::use_viewer;
use crate::domain::{authorize, authorize_role, Caller, Denied, Operation};
use leptos::prelude::*;

#[component]
pub fn YourAccess() -> impl IntoView {
    let viewer = use_viewer();
    view! {
        <section class="access" aria-labelledby="access-title" data-testid="your-access">
            <h2 id="access-title">"Your access"</h2>
            <Suspense fallback=|| view! { <p class="muted">"Finding out who you are…"</p> }>
                {move || viewer.get().map(|v| match v {
                    Ok(v) => sections(v).into_any(),
                    Err(_) => view! {
                        <p class="error">"Timebox cannot tell who you are right now; reload the page."</p>
                    }
                        .into_any(),
                })}
            </Suspense>
        </section>
    }
}

fn sections(viewer: Viewer) -> impl IntoView {
    let Viewer {
        caller,
        policy,
        sign_in_available,
    } = viewer;
    let Caller::Person {
        ref id,
        ref name,
        roles,
        mfa,
        ..
    } = caller
    else {
        return if sign_in_available {
            view! {
                <p data-testid="anonymous">
                    "You are not signed in. "
                    <a href="/auth/login" rel="external">"Sign in"</a>
                    " to ask for access, decide requests or read the audit log."
                </p>
            }
            .into_any()
        } else {
            view! {
                <p data-testid="anonymous">
                    "Sign-in is not configured on this Timebox ([oidc] in its configuration)."
                </p>
            }
            .into_any()
        };
    };
    let role_list: Vec<&str> = roles.iter().map(crate::components::role_name_of).collect();
    let allowed = |op| authorize(&policy, &caller, op, None);
    let request = allowed(Operation::RequestGrant).is_ok();
    let approve = allowed(Operation::ApproveGrant);
    let decide = authorize_role(&caller, Operation::DenyGrant, None).is_ok();
    let all_grants = allowed(Operation::ListAllGrants).is_ok();
    let audit = allowed(Operation::ReadAuditLog).is_ok();
    view! {
        <p data-testid="whoami">
            "You are " <strong>{name.clone()}</strong> " (" <code>{id.to_string()}</code> ")"
            {if mfa { ", signed in with MFA" } else { "" }} "."
        </p>
        {if role_list.is_empty() {
            view! {
                <p data-testid="roles" class="error">
                    "You hold no Timebox role. Ask an administrator to add you to one of Timebox's groups."
                </p>
            }
                .into_any()
        } else {
            view! { <p>"Your roles: " <strong data-testid="roles">{role_list.join(", ")}</strong></p> }.into_any()
        }}
        {request.then(|| view! {
            <article data-testid="section-request">
                <h3>"Ask for access"</h3>
                <p>"You may ask for one permission set in one account for a bounded time. The request form comes with the dashboard."</p>
            </article>
        })}
        {decide.then(|| {
            let mfa_notice = matches!(approve, Err(Denied::MfaRequired)).then(|| view! {
                <p class="error" data-testid="mfa-notice">
                    {Denied::MfaRequired.to_string()} " "
                    <a href="/auth/login?mfa=1" rel="external">"Sign in again with MFA"</a>
                </p>
            });
            view! {
                <article data-testid="section-approve">
                    <h3>"Decide requests"</h3>
                    <p>"You may approve or deny other people's requests (never your own)."</p>
                    {mfa_notice}
                </article>
            }
        })}
        {all_grants.then(|| view! {
            <article data-testid="section-all-grants">
                <h3>"Everybody's grants"</h3>
                <p>"You may see every grant and its real window."</p>
            </article>
        })}
        {audit.then(|| view! {
            <article data-testid="section-audit">
                <h3>"Audit log"</h3>
                <p>"You may read the audit log and check its hash chain."</p>
            </article>
        })}
    }
    .into_any()
}
