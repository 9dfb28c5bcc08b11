//! Webhooks (spec §6) and the live event stream.
//!
//! Events are recorded by the database layer in the transaction that makes
//! them happen (`db::notifications`); this module renders them (`event`),
//! signs them (`sign`), announces them in-process (`feed`), reports encoding
//! progress (`progress`) and delivers the outbox (`deliver`).

pub mod deliver;
pub mod event;
pub mod feed;
pub mod progress;
pub mod sign;

pub use deliver::spawn;
