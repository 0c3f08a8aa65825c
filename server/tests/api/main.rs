//! The server's one integration-test binary: real SQLite files, a real PostgreSQL
//! server (`TIMEBOX_TEST_POSTGRES_URL`, default the local one), and the real server
//! over HTTP. Every storage test runs on both backends: `sqlite::…` and `postgres::…`.

// The Leptos pages are deeply nested view types; laying them out needs more than
// the default depth.
#![recursion_limit = "256"]
#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions: a panic is how a test reports failure"
)]
mod access;
mod api_v1;
mod audit_proof;
mod audit_rows;
mod audit_sinks;
mod auth;
mod aws_errors;
mod crash;
mod evidence;
mod extend;
mod helpers;
mod history_words;
mod http;
mod identity;
mod moto;
mod notify;
mod paths;
mod policy;
mod provider;
mod reaper;
mod sessions;
mod startup;
mod store_suite;
mod timing;
