//! Pieces shared by several pages.

use leptos::prelude::*;

/// The top bar: product name and, once hydrated, a marker end-to-end tests wait for.
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
        </header>
    }
}
