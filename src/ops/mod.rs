//! Operations: logging setup, metrics, and the HTTP endpoint (metrics, health, operator page).

pub mod http;
pub mod logging;
pub mod metrics;
