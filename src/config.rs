//! Service configuration: `millrace.toml`, with every value overridable from the environment.
//!
//! Passwords come only from the connection URL, the environment or a file (`password_file`); they
//! are held in [`Secret`], which never prints its content.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::TableName;
use crate::pg::{PgConnInfo, PgConnInfoError};

/// A configuration problem: the CLI exits with code 2 on these.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("no configuration: {path} does not exist and MILLRACE_ODOO_URL is not set; create the file (see README, \"Configuration\") or set the environment variables")]
    Missing { path: PathBuf },
    #[error("{field}: {source}")]
    Url { field: &'static str, source: PgConnInfoError },
    #[error("{field}: cannot read password file {path}: {source}")]
    PasswordFile { field: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
}

/// A password or other secret. `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The whole configuration, after environment overrides and validation.
#[derive(Debug, Clone)]
pub struct Config {
    pub odoo: OdooConfig,
}

/// `[odoo]`: the Odoo PostgreSQL database and its replication slot.
#[derive(Debug, Clone)]
pub struct OdooConfig {
    pub conn: PgConnInfo,
    pub slot: String,
    pub publication: String,
    /// Tables to replicate, until mappings name them.
    pub tables: Vec<TableName>,
    /// Ask the server to stream large in-progress transactions (protocol v2, PostgreSQL 14+).
    pub streaming: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    odoo: RawOdoo,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOdoo {
    url: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    slot: Option<String>,
    publication: Option<String>,
    tables: Option<Vec<String>>,
    streaming: Option<bool>,
}

/// Where the environment comes from; tests pass their own.
pub trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl Config {
    /// Loads `path`; a missing file is fine when the environment supplies what is needed, unless
    /// the path was given explicitly (`explicit`).
    pub fn load(path: &Path, explicit: bool, env: &dyn Env) -> Result<Config, ConfigError> {
        let raw = match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str::<RawConfig>(&text)
                .map_err(|source| ConfigError::Parse { path: path.to_path_buf(), source: Box::new(source) })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                if env.var("MILLRACE_ODOO_URL").is_none() {
                    return Err(ConfigError::Missing { path: path.to_path_buf() });
                }
                RawConfig::default()
            }
            Err(source) => return Err(ConfigError::Read { path: path.to_path_buf(), source }),
        };
        Config::from_raw(raw, env)
    }

    /// Parses TOML text (for tests and `check`).
    pub fn from_toml(text: &str, env: &dyn Env) -> Result<Config, ConfigError> {
        let raw = toml::from_str::<RawConfig>(text)
            .map_err(|source| ConfigError::Parse { path: PathBuf::from("<inline>"), source: Box::new(source) })?;
        Config::from_raw(raw, env)
    }

    fn from_raw(raw: RawConfig, env: &dyn Env) -> Result<Config, ConfigError> {
        let o = raw.odoo;
        let url = env.var("MILLRACE_ODOO_URL").or(o.url).ok_or(ConfigError::Invalid {
            field: "odoo.url",
            message: "missing; set it in the [odoo] section or MILLRACE_ODOO_URL".into(),
        })?;
        let mut conn = PgConnInfo::parse(&url).map_err(|source| ConfigError::Url { field: "odoo.url", source })?;
        let password = resolve_password(
            "odoo.password_file",
            env.var("MILLRACE_ODOO_PASSWORD").or(o.password),
            env.var("MILLRACE_ODOO_PASSWORD_FILE").map(PathBuf::from).or(o.password_file),
        )?;
        if let Some(password) = password {
            conn.password = Some(password);
        }
        let slot = env.var("MILLRACE_ODOO_SLOT").or(o.slot).unwrap_or_else(|| "millrace".into());
        let publication = env.var("MILLRACE_ODOO_PUBLICATION").or(o.publication).unwrap_or_else(|| "millrace".into());
        check_identifier("odoo.slot", &slot, true)?;
        check_identifier("odoo.publication", &publication, false)?;
        let tables: Vec<String> = match env.var("MILLRACE_ODOO_TABLES") {
            Some(list) => list.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect(),
            None => o.tables.unwrap_or_default(),
        };
        let tables = tables.iter().map(|t| TableName::parse(t)).collect();
        let streaming = match env.var("MILLRACE_ODOO_STREAMING") {
            Some(v) => parse_bool("MILLRACE_ODOO_STREAMING", &v)?,
            None => o.streaming.unwrap_or(true),
        };
        Ok(Config { odoo: OdooConfig { conn, slot, publication, tables, streaming } })
    }
}

fn parse_bool(field: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::Invalid { field, message: format!("{value:?} is not true or false") }),
    }
}

/// A password given inline wins over a password file; neither is an error only at connect time.
fn resolve_password(
    field: &'static str,
    inline: Option<String>,
    file: Option<PathBuf>,
) -> Result<Option<Secret>, ConfigError> {
    if let Some(p) = inline {
        return Ok(Some(Secret::new(p)));
    }
    match file {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::PasswordFile {
                field,
                path: path.clone(),
                source,
            })?;
            // A trailing newline from `echo pw > file` is not part of the password.
            Ok(Some(Secret::new(text.trim_end_matches(['\r', '\n']))))
        }
        None => Ok(None),
    }
}

/// Slot names are restricted by PostgreSQL to lower-case letters, digits and underscores.
fn check_identifier(field: &'static str, value: &str, slot_rules: bool) -> Result<(), ConfigError> {
    if value.is_empty() || value.len() > 63 {
        return Err(ConfigError::Invalid { field, message: format!("{value:?} must be 1 to 63 characters") });
    }
    if slot_rules && !value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(ConfigError::Invalid {
            field,
            message: format!(
                "{value:?}: replication slot names may contain only lower-case letters, digits and underscores"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct MapEnv(HashMap<&'static str, String>);
    impl Env for MapEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }

    #[test]
    fn environment_overrides_file_and_password_never_prints() {
        let env = MapEnv(HashMap::from([
            ("MILLRACE_ODOO_SLOT", "other_slot".to_string()),
            ("MILLRACE_ODOO_PASSWORD", "s3cr3t-pw".to_string()),
        ]));
        let cfg = Config::from_toml(
            "[odoo]\nurl = \"postgres://odoo@db.example:5433/prod?sslmode=require\"\nslot = \"a\"\ntables = [\"stock_move\", \"mrp.x\"]\n",
            &env,
        )
        .unwrap();
        assert_eq!(cfg.odoo.slot, "other_slot");
        assert_eq!(cfg.odoo.tables[0], TableName::new("public", "stock_move"));
        assert_eq!(cfg.odoo.tables[1], TableName::new("mrp", "x"));
        assert_eq!(cfg.odoo.conn.password.as_ref().map(Secret::expose), Some("s3cr3t-pw"));
        let printed = format!("{cfg:?} {}", cfg.odoo.conn);
        assert!(!printed.contains("s3cr3t-pw"), "{printed}");
    }

    #[test]
    fn password_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "from-file\n").unwrap();
        let env = MapEnv(HashMap::new());
        let text = format!("[odoo]\nurl = \"postgres://u@h/db\"\npassword_file = {:?}\n", path);
        let cfg = Config::from_toml(&text, &env).unwrap();
        assert_eq!(cfg.odoo.conn.password.unwrap().expose(), "from-file");
    }

    #[test]
    fn errors_name_the_field() {
        let env = MapEnv(HashMap::new());
        let err = Config::from_toml("[odoo]\nurl = \"postgres://u@h/db\"\nslot = \"Bad-Slot\"\n", &env).unwrap_err();
        assert!(err.to_string().starts_with("odoo.slot:"), "{err}");
        let err = Config::from_toml("[odoo]\nurl = \"postgres://u@h/db?sslmode=sometimes\"\n", &env).unwrap_err();
        assert!(err.to_string().contains("sslmode"), "{err}");
        let err = Config::from_toml("[odoo]\nurll = 1\n", &env).unwrap_err();
        assert!(err.to_string().contains("urll"), "{err}");
    }
}
