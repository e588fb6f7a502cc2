//! The canonical types every stage of the pipeline speaks: values, positions and row changes.
//!
//! Sources produce [`RowChange`]s; later stages (mapping, sync, sinks, archive) only ever see these
//! types, never a wire format.

mod decimal;
mod position;
pub mod row_change;
mod value;

pub use decimal::{Decimal, DecimalError, DECIMAL_TEXT_MAX, MAX_DIGITS};
pub use position::{Lsn, Position};
pub use row_change::{quote_ident, Op, Row, RowChange, SourceSystem, TableName};
pub use value::Value;
