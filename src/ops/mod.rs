//! Operations: logging setup, metrics, and the HTTP endpoint (metrics, health, operator page).

pub mod audit;
pub mod auth;
pub mod http;
pub mod logging;
pub mod metrics;
