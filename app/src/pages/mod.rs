//! One module per page.

mod access;
mod active;
mod admin;
mod audit;
pub mod grant;
mod grants;
mod history;
mod home;
mod inbox;
mod policies;
mod request;

pub use access::YourAccess;
pub use active::ActivePage;
pub use admin::AdminPage;
pub use audit::AuditPage;
pub use grant::GrantPage;
pub use grants::MyGrantsPage;
pub use history::HistoryPage;
pub use home::HomePage;
pub use inbox::InboxPage;
pub use policies::PoliciesPage;
pub use request::RequestPage;

use leptos::prelude::*;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <section class="empty">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. " <a href="/">"Back to the start page"</a></p>
        </section>
    }
}
