//! Service configuration: `millrace.toml`, with every value overridable from the environment.
//!
//! Passwords come only from the connection URL, the environment or a file (`password_file`); they
//! are held in [`Secret`], which never prints its content.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use std::time::Duration;

mod bus;
mod conninfo;
mod http;
mod tables;

pub use bus::{BusAuth, BusConfig};
pub use conninfo::{PgConnInfo, PgConnInfoError, SslMode};
pub use http::{HttpConfig, HttpEndpoint, HttpToken, HttpTokens, TokenRole};
pub use tables::{push_column_once, LegacyTable, Strategy};

use crate::model::TableName;

/// The `[archive]` settings: where decided changes are written as Parquet, and when a file is
/// rotated.
#[derive(Debug, Clone)]
pub struct ArchiveSettings {
    pub dir: PathBuf,
    pub rotate_rows: usize,
    pub rotate_after: Duration,
}

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
///
/// A secret given as a file (`password_file`, `key_file`, `token_file` and their `*_FILE`
/// variables) remembers the file: [`Secret::current`] reads it again, so a password rotated by
/// rewriting the file is used by the next connection made, without a restart. A secret given
/// inline (in the config, in a URL, or as the value of an environment variable) is fixed.
#[derive(Clone, Default)]
pub struct Secret {
    /// The value as read when the secret was made.
    value: String,
    file: Option<Arc<SecretFile>>,
}

/// The file a [`Secret`] comes from, shared by its clones: what one of them read last is what
/// every one falls back to.
struct SecretFile {
    path: PathBuf,
    /// The last value read successfully.
    last: Mutex<String>,
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret { value: value.into(), file: None }
    }

    /// Reads the secret from `path` now (a file that cannot be read is an error here, at start)
    /// and remembers the file for [`Secret::current`]. A trailing newline (from `echo pw > file`)
    /// is not part of the secret.
    pub fn from_file(path: impl Into<PathBuf>) -> std::io::Result<Self> {
        let path = path.into();
        let value = read_secret_file(&path)?;
        let file = SecretFile { path, last: Mutex::new(value.clone()) };
        Ok(Secret { value, file: Some(Arc::new(file)) })
    }

    /// The value as it was when this secret was made. A connection uses [`Secret::current`]
    /// instead, so that it picks up a rotated password file.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The file the secret is read from; `None` for a fixed secret.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.path.as_path())
    }

    /// The secret as it is now: a secret from a file reads the file again (call this each time a
    /// connection is made or a login done, not for every statement). When the file cannot be
    /// read at that moment (being replaced, gone, or empty: caught between the truncation and
    /// the write of a rewrite), a warning names the file (never its content) and the last value
    /// read is used. A fixed secret is returned as it is.
    pub fn current(&self) -> Secret {
        let Some(file) = &self.file else { return self.clone() };
        let mut last = file.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match read_secret_file(&file.path) {
            Ok(value) if value.is_empty() && !last.is_empty() => tracing::warn!(
                file = %file.path.display(),
                "the secret file is empty (being rewritten?); using the value read last"
            ),
            Ok(value) => {
                if *last != value {
                    tracing::info!(file = %file.path.display(), "the secret file changed: using its new content");
                    *last = value;
                }
            }
            Err(error) => tracing::warn!(
                file = %file.path.display(),
                %error,
                "cannot read the secret file; using the value read last"
            ),
        }
        Secret::new(last.clone())
    }
}

/// The content of a secret file without its trailing line break.
fn read_secret_file(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value && self.file() == other.file()
    }
}

impl Eq for Secret {}

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
    odoo: Option<OdooConfig>,
    legacy: Option<LegacyConfig>,
    /// Where the control state lives (`[state] url`); the Odoo database by default.
    state: Option<PgConnInfo>,
    pub sync: SyncConfig,
    /// `[http]`: the metrics, health and operator endpoint of `run`, when configured.
    pub http: Option<HttpConfig>,
    /// `[archive]` (or `MILLRACE_ARCHIVE_DIR`): where every decided change is written as
    /// Parquet; no archive when absent.
    pub archive: Option<ArchiveSettings>,
    /// `[reconcile] every` (or `MILLRACE_RECONCILE_EVERY`): how often `run` compares both sides
    /// of every entity (`millrace reconcile`, reporting only); never when absent.
    pub reconcile_every: Option<Duration>,
    /// `[bus]` (or `MILLRACE_BUS_URLS`): the NATS JetStream cluster of `capture` and `apply`.
    pub bus: Option<BusConfig>,
}

/// `[sync]`: the engine's settings.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// The mapping directory (`mappings`, relative to the config file's directory).
    pub mappings: PathBuf,
    /// The replication origin millrace's writes into Odoo run under (`[sync] origin`); by
    /// default the slot's name. Origins are cluster-wide and one session at a time may use one,
    /// so each pipeline (slot) needs its own.
    pub origin: Option<String>,
    /// How often parked changes and dead letters marked for retry are looked at.
    pub retry_interval: Duration,
    /// A larger Odoo transaction is handled in parts of this many row changes, each applied,
    /// recorded and archived before the next is read (`[sync] part_changes`): memory stays
    /// bounded whatever the transaction's size, and a restart resumes after the last part.
    pub part_changes: usize,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            mappings: PathBuf::from("mappings"),
            origin: None,
            retry_interval: Duration::from_secs(2),
            part_changes: 5_000,
        }
    }
}

impl Config {
    /// The `[odoo]` section, or a configuration error saying it is missing.
    pub fn odoo(&self) -> Result<&OdooConfig, ConfigError> {
        self.odoo.as_ref().ok_or(ConfigError::Invalid {
            field: "odoo.url",
            message: "missing; set it in the [odoo] section or MILLRACE_ODOO_URL".into(),
        })
    }

    /// The `[legacy]` section, or a configuration error saying it is missing.
    pub fn legacy(&self) -> Result<&LegacyConfig, ConfigError> {
        self.legacy.as_ref().ok_or(ConfigError::Invalid {
            field: "legacy.connection_string",
            message: "missing; set it in the [legacy] section or MILLRACE_LEGACY_CONNECTION_STRING".into(),
        })
    }

    /// The replication origin of millrace's writes into Odoo: `[sync] origin`, else the slot name.
    pub fn origin(&self) -> String {
        match (&self.sync.origin, &self.odoo) {
            (Some(origin), _) => origin.clone(),
            (None, Some(odoo)) => odoo.slot.clone(),
            (None, None) => "millrace".into(),
        }
    }

    /// The control-state database: `[state] url`, else the Odoo database.
    pub fn state(&self) -> Result<&PgConnInfo, ConfigError> {
        match (&self.state, &self.odoo) {
            (Some(state), _) => Ok(state),
            (None, Some(odoo)) => Ok(&odoo.conn),
            (None, None) => Err(ConfigError::Invalid {
                field: "state.url",
                message: "missing: the control state needs a PostgreSQL database ([state] url, MILLRACE_STATE_URL, or [odoo] url)".into(),
            }),
        }
    }
}

/// Which protocol reaches the legacy database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyKind {
    Odbc,
    Mssql,
}

/// `[legacy]`: the legacy ERP's database and the tables polled in it.
#[derive(Debug, Clone)]
pub struct LegacyConfig {
    pub kind: LegacyKind,
    /// ODBC connection string, or ADO.NET string for SQL Server. A password in it is accepted
    /// but better kept in `password`/`password_file`/`MILLRACE_LEGACY_PASSWORD`.
    pub connection_string: String,
    pub password: Option<Secret>,
    pub poll_interval: Duration,
    pub tables: Vec<LegacyTable>,
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
    /// `[odoo.api]`: Odoo's external API, through which every write into Odoo goes.
    pub api: Option<OdooApiSettings>,
}

/// `[odoo.api]`: the Odoo server's JSON-RPC endpoint and millrace's integration user there.
#[derive(Debug, Clone, PartialEq)]
pub struct OdooApiSettings {
    /// `http://odoo:8069` (the server, without `/jsonrpc`).
    pub url: String,
    /// The Odoo database (by default the one `[odoo] url` names).
    pub database: String,
    pub login: String,
    /// The user's API key (or password).
    pub key: Secret,
    /// How long one call may take before it is given up as an outage.
    pub timeout: Duration,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    odoo: RawOdoo,
    legacy: Option<RawLegacy>,
    #[serde(default)]
    state: RawState,
    #[serde(default)]
    sync: RawSync,
    http: Option<http::RawHttp>,
    archive: Option<RawArchive>,
    reconcile: Option<RawReconcile>,
    bus: Option<bus::RawBus>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReconcile {
    every: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArchive {
    dir: Option<PathBuf>,
    rotate_rows: Option<usize>,
    rotate_after: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSync {
    mappings: Option<PathBuf>,
    origin: Option<String>,
    retry_interval: Option<String>,
    part_changes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    url: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLegacy {
    kind: Option<String>,
    connection_string: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    poll_interval: Option<String>,
    #[serde(default)]
    tables: Vec<RawLegacyTable>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLegacyTable {
    table: String,
    key: Vec<String>,
    strategy: String,
    column: Option<String>,
    safety_window: Option<String>,
    delete_scan_interval: Option<String>,
    chunk_size: Option<usize>,
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
    api: Option<RawOdooApi>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOdooApi {
    url: Option<String>,
    database: Option<String>,
    login: Option<String>,
    key: Option<String>,
    key_file: Option<PathBuf>,
    timeout: Option<String>,
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
                if env.var("MILLRACE_ODOO_URL").is_none() && env.var("MILLRACE_LEGACY_CONNECTION_STRING").is_none() {
                    return Err(ConfigError::Missing { path: path.to_path_buf() });
                }
                RawConfig::default()
            }
            Err(source) => return Err(ConfigError::Read { path: path.to_path_buf(), source }),
        };
        let mut config = Config::from_raw(raw, env)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if config.sync.mappings.is_relative() && env.var("MILLRACE_MAPPINGS").is_none() {
                config.sync.mappings = dir.join(&config.sync.mappings);
            }
            if let Some(archive) = config.archive.as_mut().filter(|a| a.dir.is_relative()) {
                if env.var("MILLRACE_ARCHIVE_DIR").is_none() {
                    archive.dir = dir.join(&archive.dir);
                }
            }
        }
        Ok(config)
    }

    /// Parses TOML text (for tests and `check`).
    pub fn from_toml(text: &str, env: &dyn Env) -> Result<Config, ConfigError> {
        let raw = toml::from_str::<RawConfig>(text)
            .map_err(|source| ConfigError::Parse { path: PathBuf::from("<inline>"), source: Box::new(source) })?;
        Config::from_raw(raw, env)
    }

    fn from_raw(raw: RawConfig, env: &dyn Env) -> Result<Config, ConfigError> {
        let odoo = match env.var("MILLRACE_ODOO_URL").or(raw.odoo.url.clone()) {
            Some(url) => Some(odoo_from_raw(url, raw.odoo, env)?),
            None => None,
        };
        let legacy = legacy_from_raw(raw.legacy.unwrap_or_default(), env)?;
        let state = match env.var("MILLRACE_STATE_URL").or(raw.state.url) {
            Some(url) => {
                let mut conn =
                    PgConnInfo::parse(&url).map_err(|source| ConfigError::Url { field: "state.url", source })?;
                let password = resolve_password(
                    "state.password_file",
                    env.var("MILLRACE_STATE_PASSWORD").or(raw.state.password),
                    env.var("MILLRACE_STATE_PASSWORD_FILE").map(PathBuf::from).or(raw.state.password_file),
                )?;
                if let Some(password) = password {
                    conn.password = Some(password);
                }
                Some(conn)
            }
            None => None,
        };
        if odoo.is_none() && legacy.is_none() {
            return Err(ConfigError::Invalid {
                field: "odoo.url",
                message: "missing; set it in the [odoo] section or MILLRACE_ODOO_URL".into(),
            });
        }
        let mut sync = SyncConfig::default();
        if let Some(dir) = env.var("MILLRACE_MAPPINGS").map(PathBuf::from).or(raw.sync.mappings) {
            sync.mappings = dir;
        }
        if let Some(origin) = raw.sync.origin {
            check_identifier("sync.origin", &origin, false)?;
            sync.origin = Some(origin);
        }
        if let Some(interval) = raw.sync.retry_interval {
            sync.retry_interval = parse_duration("sync.retry_interval", &interval)?;
        }
        if let Some(part) = raw.sync.part_changes {
            if part == 0 {
                return Err(ConfigError::Invalid {
                    field: "sync.part_changes",
                    message: "must be at least 1 (row changes per part of a large transaction)".into(),
                });
            }
            sync.part_changes = part;
        }
        let http = http::http_from_raw(raw.http, env)?;
        let archive = match (raw.archive, env.var("MILLRACE_ARCHIVE_DIR")) {
            (None, None) => None,
            (raw_archive, dir_env) => {
                let raw_archive = raw_archive.unwrap_or_default();
                let dir = dir_env.map(PathBuf::from).or(raw_archive.dir).unwrap_or_else(|| PathBuf::from("archive"));
                let rotate_rows = raw_archive.rotate_rows.unwrap_or(100_000);
                if rotate_rows == 0 {
                    return Err(ConfigError::Invalid {
                        field: "archive.rotate_rows",
                        message: "must be at least 1".into(),
                    });
                }
                let rotate_after = match raw_archive.rotate_after {
                    Some(text) => parse_duration("archive.rotate_after", &text)?,
                    None => Duration::from_secs(60),
                };
                Some(ArchiveSettings { dir, rotate_rows, rotate_after })
            }
        };
        let reconcile_every = match env.var("MILLRACE_RECONCILE_EVERY").or(raw.reconcile.and_then(|r| r.every)) {
            Some(text) => {
                let every = parse_duration("reconcile.every", &text)?;
                if every < Duration::from_secs(10) {
                    return Err(ConfigError::Invalid {
                        field: "reconcile.every",
                        message: format!("{text:?} is shorter than 10 seconds: each run reads both sides whole"),
                    });
                }
                Some(every)
            }
            None => None,
        };
        let bus = bus::bus_from_raw(raw.bus, env)?;
        Ok(Config { odoo, legacy, state, sync, http, archive, reconcile_every, bus })
    }
}

fn odoo_from_raw(url: String, o: RawOdoo, env: &dyn Env) -> Result<OdooConfig, ConfigError> {
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
    let api = odoo_api_from_raw(o.api, &conn.dbname, env)?;
    Ok(OdooConfig { conn, slot, publication, tables, streaming, api })
}

/// `[odoo.api]`, or `MILLRACE_ODOO_API_URL` and its companions.
fn odoo_api_from_raw(
    raw: Option<RawOdooApi>,
    dbname: &str,
    env: &dyn Env,
) -> Result<Option<OdooApiSettings>, ConfigError> {
    let raw = raw.unwrap_or_default();
    let Some(url) = env.var("MILLRACE_ODOO_API_URL").or(raw.url) else {
        return Ok(None);
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ConfigError::Invalid {
            field: "odoo.api.url",
            message: format!("{url:?} is not an http:// or https:// address of the Odoo server"),
        });
    }
    let database = env.var("MILLRACE_ODOO_API_DATABASE").or(raw.database).unwrap_or_else(|| dbname.to_string());
    let login = env.var("MILLRACE_ODOO_API_LOGIN").or(raw.login).ok_or(ConfigError::Invalid {
        field: "odoo.api.login",
        message: "missing: the login of millrace's integration user in Odoo".into(),
    })?;
    let key = resolve_password(
        "odoo.api.key_file",
        env.var("MILLRACE_ODOO_API_KEY").or(raw.key),
        env.var("MILLRACE_ODOO_API_KEY_FILE").map(PathBuf::from).or(raw.key_file),
    )?
    .ok_or(ConfigError::Invalid {
        field: "odoo.api.key",
        message: "missing: set key_file (or MILLRACE_ODOO_API_KEY_FILE, MILLRACE_ODOO_API_KEY) to the integration user's API key".into(),
    })?;
    let timeout = match env.var("MILLRACE_ODOO_API_TIMEOUT").or(raw.timeout) {
        Some(text) => parse_duration("odoo.api.timeout", &text)?,
        None => Duration::from_secs(120),
    };
    Ok(Some(OdooApiSettings { url: url.trim_end_matches('/').to_string(), database, login, key, timeout }))
}

fn legacy_from_raw(l: RawLegacy, env: &dyn Env) -> Result<Option<LegacyConfig>, ConfigError> {
    let Some(connection_string) = env.var("MILLRACE_LEGACY_CONNECTION_STRING").or(l.connection_string) else {
        if !l.tables.is_empty() {
            return Err(ConfigError::Invalid {
                field: "legacy.connection_string",
                message: "missing, but [[legacy.tables]] are configured".into(),
            });
        }
        return Ok(None);
    };
    let kind = match env.var("MILLRACE_LEGACY_KIND").or(l.kind).as_deref().unwrap_or("odbc") {
        "odbc" => LegacyKind::Odbc,
        "mssql" => LegacyKind::Mssql,
        other => {
            return Err(ConfigError::Invalid {
                field: "legacy.kind",
                message: format!("{other:?} is not odbc or mssql"),
            })
        }
    };
    let password = resolve_password(
        "legacy.password_file",
        env.var("MILLRACE_LEGACY_PASSWORD").or(l.password),
        env.var("MILLRACE_LEGACY_PASSWORD_FILE").map(PathBuf::from).or(l.password_file),
    )?;
    let poll_interval = match env.var("MILLRACE_LEGACY_POLL_INTERVAL").or(l.poll_interval) {
        Some(text) => parse_duration("legacy.poll_interval", &text)?,
        None => Duration::from_secs(1),
    };
    let mut tables = Vec::new();
    for (i, t) in l.tables.into_iter().enumerate() {
        tables.push(legacy_table(i, t, kind)?);
    }
    Ok(Some(LegacyConfig { kind, connection_string, password, poll_interval, tables }))
}

fn legacy_table(index: usize, t: RawLegacyTable, kind: LegacyKind) -> Result<LegacyTable, ConfigError> {
    // Field names in errors point at the entry: legacy.tables[2] (ITEM_MASTER).column.
    let invalid = |what: &str, message: String| ConfigError::Invalid {
        field: "legacy.tables",
        message: format!("[{index}] ({}) {what}: {message}", t.table),
    };
    if t.key.is_empty() {
        return Err(invalid("key", "must name at least one column".into()));
    }
    let duration = |what: &'static str, text: &Option<String>| -> Result<Option<Duration>, ConfigError> {
        text.as_deref().map(|v| parse_duration(what, v)).transpose()
    };
    let strategy = match t.strategy.as_str() {
        "timestamp" => Strategy::Timestamp {
            column: t
                .column
                .clone()
                .ok_or_else(|| invalid("column", "the timestamp strategy needs the modified-at column".into()))?,
            safety_window: duration("legacy.tables.safety_window", &t.safety_window)?
                .unwrap_or(Duration::from_secs(600)),
        },
        "hashdiff" => Strategy::Hashdiff { chunk_size: t.chunk_size.unwrap_or(10_000) },
        "rowversion" | "change_tracking" if kind != LegacyKind::Mssql => {
            return Err(invalid("strategy", format!("{} needs kind = \"mssql\"", t.strategy)));
        }
        "rowversion" => Strategy::Rowversion {
            column: t
                .column
                .clone()
                .ok_or_else(|| invalid("column", "the rowversion strategy needs the rowversion column".into()))?,
        },
        "change_tracking" => Strategy::ChangeTracking,
        other => {
            return Err(invalid(
                "strategy",
                format!("{other:?} is not timestamp, hashdiff, rowversion or change_tracking"),
            ))
        }
    };
    let chunk_size = t.chunk_size.unwrap_or(10_000);
    if chunk_size == 0 {
        return Err(invalid("chunk_size", "must be at least 1".into()));
    }
    Ok(LegacyTable {
        table: t.table.clone(),
        key: t.key.clone(),
        strategy,
        delete_scan_interval: duration("legacy.tables.delete_scan_interval", &t.delete_scan_interval)?,
        chunk_size,
        columns: Vec::new(),
    })
}

/// `500ms`, `30s`, `10m`, `2h`, `1d`, or a bare number of seconds.
pub fn parse_duration(field: &'static str, text: &str) -> Result<Duration, ConfigError> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad =
        || ConfigError::Invalid { field, message: format!("{text:?} is not a duration (e.g. 500ms, 30s, 10m, 2h)") };
    let n: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_bool(field: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::Invalid { field, message: format!("{value:?} is not true or false") }),
    }
}

/// A password given inline wins over a password file; neither is an error only at connect time.
/// A password from a file is read again at each connection ([`Secret::current`]): rewriting the
/// file rotates it. An inline one (config, URL, environment variable) cannot rotate.
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
            Secret::from_file(&path).map(Some).map_err(|source| ConfigError::PasswordFile { field, path, source })
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

/// An environment of given variables, for the config tests.
#[cfg(test)]
pub(crate) struct MapEnv(pub std::collections::HashMap<&'static str, String>);

#[cfg(test)]
impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
        assert_eq!(cfg.odoo().unwrap().slot, "other_slot");
        assert_eq!(cfg.odoo().unwrap().tables[0], TableName::new("public", "stock_move"));
        assert_eq!(cfg.odoo().unwrap().tables[1], TableName::new("mrp", "x"));
        assert_eq!(cfg.odoo().unwrap().conn.password.as_ref().map(Secret::expose), Some("s3cr3t-pw"));
        let printed = format!("{cfg:?} {}", cfg.odoo().unwrap().conn);
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
        assert_eq!(cfg.odoo().unwrap().conn.password.as_ref().unwrap().expose(), "from-file");
    }

    #[test]
    fn a_password_file_is_read_again_and_its_last_value_kept_when_it_cannot_be() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        std::fs::write(&path, "first-pw\n").unwrap();
        let env = MapEnv(HashMap::from([("MILLRACE_LEGACY_PASSWORD_FILE", path.display().to_string())]));
        let text = format!(
            "[odoo]\nurl = \"postgres://u@h/db\"\npassword_file = {path:?}\n\n[legacy]\nconnection_string = \"DSN=erp\"\n"
        );
        let cfg = Config::from_toml(&text, &env).unwrap();
        let odoo = cfg.odoo().unwrap().conn.password.clone().unwrap();
        // A clone, as each connection's settings are: it reads the same file.
        let legacy = cfg.legacy().unwrap().password.clone().unwrap();
        assert_eq!(odoo.file(), Some(path.as_path()));
        assert_eq!(odoo.current().expose(), "first-pw");

        // Rewritten: the next connection uses the new value.
        std::fs::write(&path, "second-pw\n").unwrap();
        assert_eq!(odoo.current().expose(), "second-pw");
        assert_eq!(legacy.current().expose(), "second-pw");
        // Caught mid-rewrite (truncated, not yet written): the last value.
        std::fs::write(&path, "").unwrap();
        assert_eq!(odoo.current().expose(), "second-pw");
        // Gone: the last value read, by any clone.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(odoo.current().expose(), "second-pw");
        assert_eq!(legacy.current().expose(), "second-pw");
        let printed = format!("{:?} {} {:?}", odoo, odoo.current(), cfg);
        assert!(!printed.contains("pw"), "{printed}");
        // Back: read again.
        std::fs::write(&path, "third-pw").unwrap();
        assert_eq!(legacy.current().expose(), "third-pw");

        // An inline password (or one in the URL) is fixed.
        let inline =
            Config::from_toml("[odoo]\nurl = \"postgres://u:url-pw@h/db\"\n", &MapEnv(HashMap::new())).unwrap();
        let fixed = inline.odoo().unwrap().conn.password.clone().unwrap();
        assert_eq!((fixed.file(), fixed.current().expose()), (None, "url-pw"));
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
