//! Pieces shared by several pages.

mod viewer;

pub use viewer::{provide_viewer, role_name_of, use_viewer, SignedInAs, ViewerResource};

use leptos::prelude::*;

/// The top bar: product name, who is signed in (with sign-in / sign-out), and, once
/// hydrated, a marker end-to-end tests wait for.
#[component]
pub fn Header() -> impl IntoView {
    // Effects run only in the browser, after hydration: the attribute tells a person
    // (and a browser test) that the page is interactive.
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    view! {
        <header class="top" data-hydrated=move || hydrated.get().to_string()>
            <a class="brand" href="/">"Timebox"</a>
            <span class="tagline">"Just-in-time access to AWS, with the real window"</span>
            <SignedInAs/>
        </header>
    }
}
