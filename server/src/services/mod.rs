//! The service layer: what people may do, as role-scoped handles over the grant
//! service. The web layer asks [`Access`] for the handle the caller's role gives for
//! the operation they want and calls one of its methods; a handle has only the
//! methods its role may perform, and each checks the grant against the domain rule.
//!
//! - [`grants`]: the grant service (lifecycle decision + stored change), also used by
//!   the reaper and the evidence collector as the system;
//! - [`access`]: the handle factory, the gate, and the one place refusals are made
//!   (logged and counted);
//! - the handles: [`reader`] (what every role reads), [`requester`], [`approver`],
//!   [`auditor`], [`admin`];
//! - read models: [`detail`] (the grant page), [`inbox`], [`history`], [`status`]
//!   (active now, the admin's view), [`catalog`] (request options and the request
//!   form), [`evidence`];
//! - [`backend`]: `app::api::backend::Backend` over the handles (their errors
//!   become the API's in `crate::web::error`).
//!
//! A new operation: a variant of [`app::domain::Operation`] with its row in
//! `authorize` and in both authorization tables, a method on each handle whose role
//! may perform it (and the operation in that handle's `OPERATIONS`), and one line
//! in [`backend`] that picks the handle.

pub mod access;
pub mod admin;
pub mod approver;
mod audit_log;
pub mod auditor;
pub mod backend;
mod catalog;
mod detail;
pub mod evidence;
pub mod extensions;
pub mod grants;
pub mod history;
mod inbox;
mod other_paths;
pub mod reader;
pub mod requester;
mod status;

pub use access::{Access, AccessError, AccessParts, Handle};
pub use admin::Admin;
pub use approver::Approver;
pub use auditor::Auditor;
pub use backend::Dashboard;
pub use grants::{Applied, GrantChange, GrantError, GrantService};
pub use reader::Reader;
pub use requester::Requester;

use app::domain::Operation;

/// Each handle with the operations it offers: the authorization table per handle
/// (`server/tests/api/access.rs` checks it against `app::domain::authorize`).
pub const HANDLES: [(&str, &[Operation]); 5] = [
    ("reader", <Reader<'static> as Handle<'static>>::OPERATIONS),
    (
        "requester",
        <Requester<'static> as Handle<'static>>::OPERATIONS,
    ),
    (
        "approver",
        <Approver<'static> as Handle<'static>>::OPERATIONS,
    ),
    ("auditor", <Auditor<'static> as Handle<'static>>::OPERATIONS),
    ("admin", <Admin<'static> as Handle<'static>>::OPERATIONS),
];
