//! The Odoo source: logical replication from Odoo's PostgreSQL database.
//!
//! `replication.rs` owns the socket and the wire protocol, `pgoutput.rs` and `text_values.rs` turn
//! bytes into typed messages and values (pure functions; `types.rs` knows the built-in types and
//! resolves domains and arrays, `tuple.rs` reads a tuple into a row), `stream.rs` assembles
//! committed transactions across reconnects, `setup.rs` creates the publication and the slot.

pub mod pgoutput;
pub mod replication;
pub mod setup;
mod spill;
pub mod stream;
pub mod text_values;
pub mod tuple;
pub mod types;

pub use stream::{BadRow, OdooSourceError, OdooStream, OdooStreamConfig, StreamItem};
