//! millrace: change-data-capture replication between Odoo (PostgreSQL) and a legacy ERP.
//!
//! Data flows one way: sources ([`source`]) read row changes, later stages map, decide, apply and
//! archive them. See DESIGN.md in the repository for the whole picture.

pub mod archive;
pub mod bus;
pub mod cmd;
pub mod config;
pub mod erp;
pub mod export;
pub mod grants;
pub mod mapping;
pub mod model;
pub mod odoo_api;
pub mod ops;
pub mod pg;
pub mod reconcile;
pub mod sink;
pub mod source;
pub mod state;
pub mod sync;
