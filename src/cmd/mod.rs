//! The commands behind the CLI, one file each. `main.rs` only parses arguments and calls these.

pub mod apply;
pub mod backfill;
pub mod capture;
pub mod check;
pub mod check_rights;
pub mod dlq;
pub mod envelope;
pub mod export;
pub mod reconcile;
pub mod run;
pub(crate) mod service;
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
    /// `reconcile` found the two sides differ: not a failure of the command, exit 3.
    #[error("{0}")]
    Differences(String),
}

impl CommandError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CommandError::Config(_) => 2,
            CommandError::Runtime(_) => 1,
            CommandError::Differences(_) => 3,
        }
    }
}

/// The mapping indices of the entities named on the command line (`--entity`), or `None` when
/// none was named; an unknown name is a usage error listing the known ones.
pub fn entity_indices(
    config: &crate::config::Config,
    mappings: &crate::mapping::Mappings,
    names: &[String],
) -> Result<Option<Vec<usize>>, crate::config::ConfigError> {
    if names.is_empty() {
        return Ok(None);
    }
    let mut selected = Vec::new();
    for name in names {
        let index = mappings.entities.iter().position(|m| &m.entity == name).ok_or_else(|| {
            crate::config::ConfigError::Invalid {
                field: "--entity",
                message: format!(
                    "no mapping for entity {name:?} in {} (known: {})",
                    config.sync.mappings.display(),
                    mappings.entities.iter().map(|m| m.entity.as_str()).collect::<Vec<_>>().join(", ")
                ),
            }
        })?;
        selected.push(index);
    }
    Ok(Some(selected))
}
