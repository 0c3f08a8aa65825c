//! Timebox's shared crate.
//!
//! - [`api`]: what the pages receive from the server (the viewer) and the server
//!   functions that deliver it.
//! - [`domain`]: validated values, the grant lifecycle and the window arithmetic. No
//!   I/O; compiled into both the server and the browser bundle.
//! - [`pages`] and [`components`]: the Leptos UI, rendered on the server and hydrated
//!   in the browser.
//!
//! `app` never depends on sqlx or the AWS SDK: the server crate implements what the UI
//! needs behind traits defined here.

// The pages are deeply nested view types; laying them out (server and wasm builds)
// needs more than the default depth.
#![recursion_limit = "256"]

pub mod api;
pub mod components;
pub mod domain;
pub mod pages;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path,
};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                // Named, so browsers do not ask for /favicon.ico (a 404).
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    components::provide_viewer();
    components::provide_live();
    view! {
        <Stylesheet id="leptos" href="/pkg/timebox.css"/>
        <Title text="Timebox"/>
        <Router>
            <components::Header/>
            <main id="main">
                <Routes fallback=pages::NotFound>
                    <Route path=path!("") view=pages::HomePage/>
                    <Route path=path!("/request") view=pages::RequestPage/>
                    <Route path=path!("/grants") view=pages::MyGrantsPage/>
                    <Route path=path!("/grants/:id") view=pages::GrantPage/>
                    <Route path=path!("/inbox") view=pages::InboxPage/>
                    <Route path=path!("/active") view=pages::ActivePage/>
                    <Route path=path!("/history") view=pages::HistoryPage/>
                    <Route path=path!("/audit") view=pages::AuditPage/>
                    <Route path=path!("/admin") view=pages::AdminPage/>
                    <Route path=path!("/admin/policies") view=pages::PoliciesPage/>
                </Routes>
            </main>
        </Router>
    }
}

/// Entry point of the wasm bundle: attach the browser to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
