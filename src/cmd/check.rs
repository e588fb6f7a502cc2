//! `millrace check`: validate the config and mappings against both live databases.

use crate::config::Config;

pub async fn run(config: &Config) -> anyhow::Result<()> {
    let mappings = crate::mapping::Mappings::load_dir(&config.sync.mappings)?;
    println!("{} mappings parsed", mappings.entities.len());
    Ok(())
}
