//! Sources read raw row changes from one system and emit [`crate::model::RowChange`]s. They know
//! wire protocols and nothing about entities.

pub mod legacy;
pub mod odoo;
