#![recursion_limit = "256"]
//! openpanda: a self-hostable video encoding platform that speaks Panda's v2 API.
//!
//! The modules follow the flow of one upload (see `docs/architecture.md`):
//! `api` receives it, `storage` keeps the bytes, `db` keeps the records and the
//! job queue, `worker` runs jobs, `media` turns profiles into ffmpeg runs.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod media;
pub mod notify;
pub mod outbound;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod worker;
