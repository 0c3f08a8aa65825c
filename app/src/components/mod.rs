//! Pieces shared by several pages.

mod forms;
mod live;
mod table;
mod timeline;
mod viewer;

pub use forms::{CancelForm, DecideForm, DoneForm};
pub use live::{format_at, provide_live, use_refresh, LocalOffset, MaybeWhen, When};
pub use table::Table;
pub use timeline::{ActivityMarks, Timeline};
pub use viewer::{provide_viewer, role_name_of, use_viewer, SignedInAs, ViewerResource};

use crate::api::{ApiError, ErrorCode, Viewer};
use crate::domain::{authorize, Caller, GrantState, Operation};
use leptos::prelude::*;

/// The top bar: product name, the pages the viewer's roles open, who is signed in
/// (with sign-in / sign-out), and, once hydrated, a marker end-to-end tests wait for.
#[component]
pub fn Header() -> impl IntoView {
    // Effects run only in the browser, after hydration: the attribute tells a person
    // (and a browser test) that the page is interactive.
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    view! {
        <header class="top" data-hydrated=move || hydrated.get().to_string()>
            <a class="brand" href="/">"Timebox"</a>
            <Nav/>
            <SignedInAs/>
        </header>
    }
}

/// Links to the pages the viewer may use, decided by the same `authorize` as the
/// server.
#[component]
fn Nav() -> impl IntoView {
    let viewer = use_viewer();
    view! {
        <nav aria-label="Pages">
            <Suspense fallback=|| ()>
                {move || viewer.get().map(|v| {
                    let v = v.unwrap_or_default();
                    let may = |op| authorize(&v.policy, &v.caller, op, None).is_ok();
                    let links: Vec<(&str, &str, Operation)> = vec![
                        ("/request", "Ask for access", Operation::RequestGrant),
                        ("/grants", "My grants", Operation::ListOwnGrants),
                        ("/inbox", "Inbox", Operation::ReadInbox),
                        ("/active", "Active now", Operation::ListActiveGrants),
                        ("/history", "History", Operation::ListAllGrants),
                        ("/admin", "Admin", Operation::ReadAdminStatus),
                    ];
                    links
                        .into_iter()
                        .filter(|(_, _, op)| may(*op))
                        .map(|(href, text, _)| view! { <a href=href>{text}</a> })
                        .collect_view()
                })}
            </Suspense>
        </nav>
    }
}

/// A grant's state as a coloured label (the colour is never the only signal: the
/// word is always there).
#[component]
pub fn StateBadge(state: GrantState) -> impl IntoView {
    view! { <span class=format!("badge state-{}", state.as_str()) data-state=state.as_str()>{state.as_str()}</span> }
}

/// A failed request, said plainly, with the field when there is one.
#[component]
pub fn ErrorNote(error: ApiError) -> impl IntoView {
    let hint = match error.code {
        ErrorCode::SignInRequired => {
            Some(view! { " " <a href="/auth/login" rel="external">"Sign in"</a> })
        }
        _ => None,
    };
    view! {
        <p class="error-note" role="alert" data-code=error.code.as_str()>
            {error.to_string()}
            {hint}
        </p>
    }
}

/// What a page shows of a list it loaded: the error, `empty` when there is nothing,
/// else `list` of the items.
pub fn listed<T, E: IntoView + 'static, L: IntoView + 'static>(
    loaded: Result<Vec<T>, ApiError>,
    empty: impl FnOnce() -> E,
    list: impl FnOnce(Vec<T>) -> L,
) -> AnyView {
    match loaded {
        Err(e) => view! { <ErrorNote error=e/> }.into_any(),
        Ok(items) => or_empty(items, empty, list),
    }
}

/// `empty` when there are no `items`, else `list` of them.
pub fn or_empty<T, E: IntoView + 'static, L: IntoView + 'static>(
    items: Vec<T>,
    empty: impl FnOnce() -> E,
    list: impl FnOnce(Vec<T>) -> L,
) -> AnyView {
    if items.is_empty() {
        empty().into_any()
    } else {
        list(items).into_any()
    }
}

/// What a page shows when the viewer may not see it at all.
pub fn may(viewer: &Viewer, op: Operation) -> bool {
    authorize(&viewer.policy, &viewer.caller, op, None).is_ok()
}

/// The signed-in person's id, if any.
pub fn viewer_id(viewer: &Viewer) -> Option<String> {
    match &viewer.caller {
        Caller::Person { id, .. } => Some(id.to_string()),
        Caller::Anonymous => None,
    }
}

/// "prod (111122223333)", or the id alone when the catalog has no name for it.
pub fn account_label(name: Option<&str>, id: &str) -> String {
    match name {
        Some(n) if !n.is_empty() && n != id => format!("{n} ({id})"),
        _ => id.to_owned(),
    }
}
