//! The contract between the browser and the server: data the pages receive and the
//! server functions that deliver it. Server functions are adapters: they read what
//! the server put into the request's context and return it.

use crate::domain::{AccessPolicy, Caller};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Who is looking at the page, as the server resolved it for this request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub caller: Caller,
    /// The rules that depend on configuration (MFA for approvers).
    pub policy: AccessPolicy,
    /// Whether sign-in is configured (`[oidc]`); without it nobody can sign in.
    pub sign_in_available: bool,
}

impl Default for Viewer {
    fn default() -> Self {
        Self {
            caller: Caller::Anonymous,
            policy: AccessPolicy::default(),
            sign_in_available: false,
        }
    }
}

/// The signed-in person and their roles. The server provides [`Viewer`] as context
/// for every request (pages and server functions alike).
#[server(endpoint = "viewer")]
pub async fn current_viewer() -> Result<Viewer, ServerFnError> {
    Ok(use_context::<Viewer>().unwrap_or_default())
}
