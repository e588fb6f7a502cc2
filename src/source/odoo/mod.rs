//! The Odoo source: logical replication from Odoo's PostgreSQL database.
//!
//! `replication.rs` owns the socket and the wire protocol, `pgoutput.rs` and `text_values.rs` turn
//! bytes into typed messages and values (pure functions; `types.rs` resolves domains and arrays,
//! `array_text.rs` reads array values), `stream.rs` assembles committed transactions across
//! reconnects, `setup.rs` creates the publication and the slot.

mod array_text;
pub mod pgoutput;
pub mod replication;
pub mod setup;
mod spill;
pub mod stream;
pub mod text_values;
pub mod types;

pub use stream::{BadRow, OdooSourceError, OdooStream, OdooStreamConfig, StreamItem};
