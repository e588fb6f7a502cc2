//! SQL Server access (being written).
