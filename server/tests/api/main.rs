//! The server's one integration-test binary: real SQLite files, a real PostgreSQL
//! server (`TIMEBOX_TEST_POSTGRES_URL`, default the local one), and the real server
//! over HTTP. Every storage test runs on both backends: `sqlite::…` and `postgres::…`.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions: a panic is how a test reports failure"
)]
mod access;
mod auth;
mod aws_errors;
mod crash;
mod helpers;
mod http;
mod moto;
mod notify;
mod provider;
mod reaper;
mod startup;
mod store_suite;
