//! Black-box tests of the `openpanda` binary: each test starts a real server
//! on 127.0.0.1 with its own data directory and talks to it over HTTP, signed
//! like Panda's client libraries sign.

mod common;

mod api;
mod auth;
mod matrix;
mod quirks;
mod source_url;
mod storage;
