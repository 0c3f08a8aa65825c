//! The server's one integration-test binary: real SQLite files, a real PostgreSQL
//! server (`TIMEBOX_TEST_POSTGRES_URL`, default the local one), and the real server
//! over HTTP. Every storage test runs on both backends: `sqlite::…` and `postgres::…`.

mod helpers;
mod http;
mod startup;
mod store_suite;
