//! The canonical types every stage of the pipeline speaks: values, positions and row changes, and
//! the pure helpers every stage shares over them (a value's text, a key's text, a row's
//! fingerprint).
//!
//! Sources produce [`RowChange`]s; later stages (mapping, sync, sinks, archive) only ever see these
//! types, never a wire format.

mod decimal;
mod pg_text;
mod position;
pub mod row_change;
mod row_hash;
mod text;
mod value;

pub use decimal::{Decimal, DecimalError, DECIMAL_TEXT_MAX, MAX_DIGITS};
pub use pg_text::to_pg_text;
pub use position::{Lsn, Position};
pub use row_change::{quote_ident, Op, Row, RowChange, SourceSystem, TableName};
pub use row_hash::{row_hash, row_hash_i64};
pub use text::{key_text, key_values, value_text};
pub use value::Value;
