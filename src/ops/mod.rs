//! Operations: logging setup (later metrics, health and status).

pub mod logging;
