//! Sinks: applying decided changes to a target system, idempotently, in batched transactions.
//! `postgres` writes into Odoo's database; `odbc` into the legacy database.

pub mod odbc;
pub mod postgres;
