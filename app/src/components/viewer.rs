//! Who is looking: the viewer, fetched once per page load (server-rendered, then
//! handed to the browser with the page), and the header's sign-in / sign-out corner.

use crate::api::{current_viewer, Viewer};
use crate::domain::{Caller, Role};
use leptos::prelude::*;

/// The viewer of this page load.
///
/// A `Resource` with no source (so fetched once), not a `OnceResource`: leptos 0.8's
/// `OnceResource` reads its value with a *try*-lock, and a read on one server thread
/// while the fetch stored the value on another found the lock taken and panicked
/// ("already been disposed"), about one page in a thousand under concurrent load
/// (`bench_http`). A `Resource` waits for the lock.
pub type ViewerResource = Resource<Result<Viewer, ServerFnError>>;

/// Fetches the viewer once for the whole app (call in [`crate::App`]).
pub fn provide_viewer() {
    let viewer: ViewerResource = Resource::new(|| (), |()| current_viewer());
    provide_context(viewer);
}

/// The viewer resource [`provide_viewer`] made.
pub fn use_viewer() -> ViewerResource {
    expect_context::<ViewerResource>()
}

pub fn role_name_of(role: Role) -> &'static str {
    match role {
        Role::Requester => "requester",
        Role::Approver => "approver",
        Role::Auditor => "auditor",
        Role::Admin => "admin",
    }
}

/// "Signed in as … · Sign out", or a sign-in link.
#[component]
pub fn SignedInAs() -> impl IntoView {
    let viewer = use_viewer();
    view! {
        <div class="who">
            <Suspense fallback=|| ()>
                {move || viewer.get().map(|v| match v {
                    Ok(Viewer { caller: Caller::Person { name, roles, .. }, .. }) => {
                        let roles: Vec<&str> = roles.iter().map(role_name_of).collect();
                        view! {
                            <span data-testid="signed-in-as">
                                "Signed in as " <strong>{name}</strong>
                                {if roles.is_empty() { String::new() } else { format!(" ({})", roles.join(", ")) }}
                            </span>
                            // A form, not a link: signing out changes state, so it is a POST
                            // that the cross-site check guards.
                            <form method="post" action="/auth/logout" class="inline">
                                <button type="submit" data-testid="sign-out">"Sign out"</button>
                            </form>
                        }
                            .into_any()
                    }
                    Ok(Viewer { sign_in_available: true, .. }) => view! {
                        <a href="/auth/login" rel="external" data-testid="sign-in">"Sign in"</a>
                    }
                        .into_any(),
                    Ok(_) => view! { <span class="muted">"Sign-in is not configured"</span> }.into_any(),
                    Err(_) => view! { <span class="muted">"Cannot tell who you are"</span> }.into_any(),
                })}
            </Suspense>
        </div>
    }
}
