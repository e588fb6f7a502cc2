//! `millrace dlq`: list, show, retry and discard dead-lettered changes.

use crate::config::Config;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum DlqAction {
    /// List open dead letters.
    List,
}

pub async fn run(config: &Config, _action: DlqAction) -> anyhow::Result<()> {
    let store = crate::state::StateStore::connect(config.state()?).await?;
    for d in store.dead_letters(false).await? {
        println!("{} {} {} {}", d.id, d.entity, d.key, d.reason);
    }
    Ok(())
}
