//! The commands behind the CLI, one file each. `main.rs` only parses arguments and calls these.

pub mod backfill;
pub mod check;
pub mod dlq;
pub mod envelope;
pub mod export;
pub mod run;
pub mod setup;
pub mod status;
pub mod tail;
pub mod tail_legacy;

/// How a command failed, which decides the exit code: 2 for usage and configuration, 1 otherwise.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

impl CommandError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CommandError::Config(_) => 2,
            CommandError::Runtime(_) => 1,
        }
    }
}
