//! Pieces shared by several pages.

mod checkpoint;
mod forms;
mod live;
mod table;
mod timeline;
mod viewer;

pub use checkpoint::CheckpointNote;
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
                        ("/audit", "Audit", Operation::ReadAuditLog),
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

/// A failed request, said plainly, with the field when there is one. An action that
/// needs a recent MFA sign-in links to the step-up sign-in, which comes back to
/// `return_to` (a local path, with the form's content in its query, see
/// [`kept_decision`]) or else to this page.
#[component]
pub fn ErrorNote(
    error: ApiError,
    #[prop(default = None)] return_to: Option<String>,
) -> impl IntoView {
    let hint = match error.code {
        ErrorCode::SignInRequired => {
            Some(view! { " " <a href="/auth/login" rel="external">"Sign in"</a> }.into_any())
        }
        ErrorCode::MfaRequired => {
            let back = return_to.unwrap_or_else(|| {
                leptos_router::hooks::use_location()
                    .pathname
                    .get_untracked()
            });
            Some(
                view! {
                    " "
                    <a href=step_up_href(&back) rel="external" data-testid="step-up">
                        "Sign in again with MFA"
                    </a>
                }
                .into_any(),
            )
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

/// The step-up sign-in (`prompt=login`, a fresh MFA) that comes back to `return_to`.
pub fn step_up_href(return_to: &str) -> String {
    format!("/auth/login?mfa=1&return_to={}", query_value(return_to))
}

/// `value` percent-encoded for a URL's query (everything but RFC 3986's unreserved
/// characters).
pub fn query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where a step-up sign-in brings a person back after deciding (`decide`) or
/// revoking (`revoke`) failed for want of MFA: the grant's page, with the comment or
/// reason they typed in its query (`?comment=` / `?reason=`), which the page's forms
/// are filled from. The last action sent wins.
pub fn kept_decision(
    decide: ServerAction<crate::api::DecideGrant>,
    revoke: Option<ServerAction<crate::api::RevokeGrant>>,
) -> Signal<Option<String>> {
    let kept = RwSignal::new(None::<String>);
    let with = |id: &str, key: &str, text: Option<&str>| {
        let mut path = format!("/grants/{}", query_value(id));
        if let Some(t) = text.filter(|t| !t.trim().is_empty()) {
            path.push_str(&format!("?{key}={}", query_value(t)));
        }
        path
    };
    Effect::new(move |_| {
        if let Some(d) = decide.input().get() {
            kept.set(Some(with(&d.id, "comment", d.comment.as_deref())));
        }
    });
    Effect::new(move |_| {
        if let Some(r) = revoke.and_then(|r| r.input().get()) {
            kept.set(Some(with(&r.id, "reason", r.reason.as_deref())));
        }
    });
    kept.into()
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

/// A person as pages show them: "Display name (person id)" when their sign-in gave
/// a name (`names`, by person id), else the id alone.
pub fn person_label(names: &std::collections::BTreeMap<String, String>, id: &str) -> String {
    match names.get(id) {
        Some(name) if name != id => format!("{name} ({id})"),
        _ => id.to_owned(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_up_comes_back_with_the_form_content() {
        assert_eq!(
            step_up_href("/grants/abc?comment=ok, ship it & go"),
            "/auth/login?mfa=1&return_to=%2Fgrants%2Fabc%3Fcomment%3Dok%2C%20ship%20it%20%26%20go"
        );
        assert_eq!(query_value("é~a"), "%C3%A9~a");
    }
}
