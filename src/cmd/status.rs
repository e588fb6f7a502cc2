//! `millrace status`: lag, positions, decisions, parked changes and dead letters.

use crate::config::Config;

pub async fn run(config: &Config, _json: bool) -> anyhow::Result<()> {
    let store = crate::state::StateStore::connect(config.state()?).await?;
    println!("dead letters: {}", store.dead_letters(false).await?.len());
    Ok(())
}
