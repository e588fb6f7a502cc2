//! Operations: logging setup, metrics, and the HTTP endpoint (metrics, health, operator page).

pub mod actions;
pub mod audit;
pub mod auth;
pub mod history;
pub mod http;
pub mod logging;
pub mod metrics;
