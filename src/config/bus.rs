//! `[bus]`: the NATS JetStream cluster `capture` publishes the canonical changes to and `apply`
//! consumes them from.
//!
//! ```toml
//! [bus]
//! kind = "nats"
//! urls = ["nats://nats1:4222", "nats://nats2:4222", "nats://nats3:4222"]
//! pipeline = "plant1"              # subjects millrace.plant1.<system>.<entity>
//! replicas = 3                     # of the stream and the lease bucket
//! max_age = "7d"                   # retention: how far back a consumer can replay
//! max_bytes = 10737418240          # and at most this much (oldest dropped first)
//! duplicate_window = "10m"         # Nats-Msg-Id de-duplication: a re-publish within it is dropped
//! user = "millrace"                # credentials: user + password(_file), token_file or nkey_file
//! password_file = "/etc/millrace/nats.password"
//! tls_ca = "/etc/millrace/nats-ca.pem"
//! ```

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{parse_duration, resolve_password, ConfigError, Env, Secret};

/// How `capture` and `apply` authenticate to NATS. Secrets print `***`.
#[derive(Debug, Clone, PartialEq)]
pub enum BusAuth {
    None,
    UserPassword {
        user: String,
        password: Secret,
    },
    Token(Secret),
    /// An nkey seed (`SU…`), read from `nkey_file`.
    NKey(Secret),
}

/// `[bus]`, validated.
#[derive(Debug, Clone)]
pub struct BusConfig {
    pub urls: Vec<String>,
    /// Names this Odoo ⇄ ERP pair on the bus: the subjects, the stream, the consumer and the
    /// leases carry it.
    pub pipeline: String,
    /// The JetStream stream (`MILLRACE_<PIPELINE>` unless set).
    pub stream: String,
    pub replicas: usize,
    pub max_age: Duration,
    pub max_bytes: Option<i64>,
    pub duplicate_window: Duration,
    pub auth: BusAuth,
    /// A CA certificate (PEM) the servers' certificates are checked against; TLS is then
    /// required.
    pub tls_ca: Option<PathBuf>,
    /// Use the servers the cluster announces besides `urls` (NATS's default). Off when the
    /// urls are the only way in (a proxy, a NAT).
    pub discover_servers: bool,
    /// How long an active `capture` or `apply` holds its role without renewing it: a standby
    /// takes over at most this long after the active one died.
    pub lease_ttl: Duration,
    /// How long JetStream waits for `apply`'s acknowledgement before delivering again.
    pub ack_wait: Duration,
    /// Messages `apply` fetches at a time.
    pub fetch: usize,
}

impl BusConfig {
    /// The subject of one entity's changes from one system.
    pub fn subject(&self, system: &str, entity: &str) -> String {
        format!("millrace.{}.{system}.{entity}", self.pipeline)
    }

    /// Every subject of the pipeline.
    pub fn subjects(&self) -> String {
        format!("millrace.{}.>", self.pipeline)
    }

    /// The durable consumer `apply` reads with.
    pub fn apply_consumer(&self) -> String {
        format!("millrace-apply-{}", self.pipeline)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBus {
    kind: Option<String>,
    urls: Option<Vec<String>>,
    pipeline: Option<String>,
    stream: Option<String>,
    replicas: Option<usize>,
    max_age: Option<String>,
    max_bytes: Option<i64>,
    duplicate_window: Option<String>,
    user: Option<String>,
    password: Option<String>,
    password_file: Option<PathBuf>,
    token_file: Option<PathBuf>,
    nkey_file: Option<PathBuf>,
    tls_ca: Option<PathBuf>,
    discover_servers: Option<bool>,
    lease_ttl: Option<String>,
    ack_wait: Option<String>,
    fetch: Option<usize>,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field, message: message.into() }
}

/// `[bus]` and its `MILLRACE_BUS_*` overrides; `None` when neither is given.
pub(super) fn bus_from_raw(raw: Option<RawBus>, env: &dyn Env) -> Result<Option<BusConfig>, ConfigError> {
    let env_urls = env.var("MILLRACE_BUS_URLS");
    if raw.is_none() && env_urls.is_none() {
        return Ok(None);
    }
    let raw = raw.unwrap_or_default();
    match raw.kind.as_deref() {
        None | Some("nats") => {}
        Some(other) => return Err(invalid("bus.kind", format!("{other:?} is not a bus millrace knows (\"nats\")"))),
    }
    let urls: Vec<String> = match env_urls {
        Some(list) => list.split(',').map(|u| u.trim().to_string()).filter(|u| !u.is_empty()).collect(),
        None => raw.urls.unwrap_or_default(),
    };
    if urls.is_empty() {
        return Err(invalid("bus.urls", "missing; list the NATS servers (or set MILLRACE_BUS_URLS)"));
    }
    for url in &urls {
        let parsed = url::Url::parse(url).map_err(|e| invalid("bus.urls", format!("{url:?}: {e}")))?;
        if !matches!(parsed.scheme(), "nats" | "tls") {
            return Err(invalid("bus.urls", format!("{url:?}: expected nats://host:port or tls://host:port")));
        }
        if parsed.password().is_some() {
            return Err(invalid("bus.urls", "a password in a URL would be printed; use password_file"));
        }
    }
    let pipeline = env.var("MILLRACE_BUS_PIPELINE").or(raw.pipeline).unwrap_or_else(|| "default".into());
    if pipeline.is_empty()
        || pipeline.len() > 63
        || !pipeline.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(invalid(
            "bus.pipeline",
            format!("{pipeline:?}: 1 to 63 letters, digits, '_' or '-' (it is part of subjects and names)"),
        ));
    }
    let stream = raw.stream.unwrap_or_else(|| format!("MILLRACE_{}", pipeline.to_ascii_uppercase().replace('-', "_")));
    if stream.is_empty() || !stream.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(invalid("bus.stream", format!("{stream:?}: letters, digits, '_' or '-' only")));
    }
    let replicas = raw.replicas.unwrap_or(1);
    if !(1..=5).contains(&replicas) {
        return Err(invalid("bus.replicas", format!("{replicas}: JetStream keeps 1 to 5 replicas")));
    }
    let duration = |field: &'static str, text: Option<String>, default: Duration| match text {
        Some(text) => parse_duration(field, &text),
        None => Ok(default),
    };
    let max_age = duration("bus.max_age", raw.max_age, Duration::from_secs(7 * 24 * 3600))?;
    let duplicate_window = duration("bus.duplicate_window", raw.duplicate_window, Duration::from_secs(600))?;
    let lease_ttl = duration("bus.lease_ttl", raw.lease_ttl, Duration::from_secs(5))?;
    if lease_ttl < Duration::from_secs(2) {
        return Err(invalid("bus.lease_ttl", "at least 2 seconds (renewed three times per period)"));
    }
    let ack_wait = duration("bus.ack_wait", raw.ack_wait, Duration::from_secs(300))?;
    if raw.max_bytes.is_some_and(|b| b <= 0) {
        return Err(invalid("bus.max_bytes", "must be positive"));
    }
    let fetch = raw.fetch.unwrap_or(1_000);
    if fetch == 0 {
        return Err(invalid("bus.fetch", "must be at least 1"));
    }
    let user = env.var("MILLRACE_BUS_USER").or(raw.user);
    let password = resolve_password(
        "bus.password_file",
        env.var("MILLRACE_BUS_PASSWORD").or(raw.password),
        env.var("MILLRACE_BUS_PASSWORD_FILE").map(PathBuf::from).or(raw.password_file),
    )?;
    let token = resolve_password(
        "bus.token_file",
        None,
        env.var("MILLRACE_BUS_TOKEN_FILE").map(PathBuf::from).or(raw.token_file),
    )?;
    let nkey = resolve_password("bus.nkey_file", None, raw.nkey_file)?;
    let auth = match (user, password, token, nkey) {
        (None, None, None, None) => BusAuth::None,
        (Some(user), Some(password), None, None) => BusAuth::UserPassword { user, password },
        (None, None, Some(token), None) => BusAuth::Token(token),
        (None, None, None, Some(seed)) => BusAuth::NKey(seed),
        (Some(_), None, None, None) => return Err(invalid("bus.password_file", "bus.user is set without a password")),
        (None, Some(_), None, None) => return Err(invalid("bus.user", "a bus password is set without bus.user")),
        _ => return Err(invalid("bus", "give one of user + password, token_file or nkey_file")),
    };
    if let Some(ca) = &raw.tls_ca {
        if !ca.is_file() {
            return Err(invalid("bus.tls_ca", format!("{} is not a readable file", ca.display())));
        }
    }
    Ok(Some(BusConfig {
        urls,
        pipeline,
        stream,
        replicas,
        max_age,
        max_bytes: raw.max_bytes,
        duplicate_window,
        auth,
        tls_ca: raw.tls_ca,
        discover_servers: raw.discover_servers.unwrap_or(true),
        lease_ttl,
        ack_wait,
        fetch,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::{Config, MapEnv};
    use super::*;

    fn env() -> MapEnv {
        MapEnv(Default::default())
    }

    const BASE: &str = "[odoo]\nurl = \"postgres://o@h/db\"\n";

    #[test]
    fn a_bus_names_its_subjects_stream_and_consumer_from_the_pipeline() {
        let text = format!("{BASE}[bus]\nkind = \"nats\"\nurls = [\"nats://a:4222\", \"nats://b:4222\"]\npipeline = \"plant-1\"\nreplicas = 3\nmax_age = \"2d\"\n");
        let bus = Config::from_toml(&text, &env()).unwrap().bus.unwrap();
        assert_eq!(bus.urls.len(), 2);
        assert_eq!(bus.stream, "MILLRACE_PLANT_1");
        assert_eq!(bus.subject("odoo", "item"), "millrace.plant-1.odoo.item");
        assert_eq!(bus.subjects(), "millrace.plant-1.>");
        assert_eq!(bus.apply_consumer(), "millrace-apply-plant-1");
        assert_eq!(bus.max_age, Duration::from_secs(2 * 24 * 3600));
        assert_eq!(bus.replicas, 3);
        assert_eq!(bus.auth, BusAuth::None);
    }

    #[test]
    fn bad_bus_settings_name_the_setting() {
        for (body, field) in [
            ("kind = \"kafka\"\nurls = [\"nats://a:1\"]", "bus.kind"),
            ("urls = []", "bus.urls"),
            ("urls = [\"http://a:1\"]", "bus.urls"),
            ("urls = [\"nats://u:secret@a:1\"]", "bus.urls"),
            ("urls = [\"nats://a:1\"]\npipeline = \"a.b\"", "bus.pipeline"),
            ("urls = [\"nats://a:1\"]\nreplicas = 7", "bus.replicas"),
            ("urls = [\"nats://a:1\"]\nuser = \"u\"", "bus.password_file"),
            ("urls = [\"nats://a:1\"]\nlease_ttl = \"1s\"", "bus.lease_ttl"),
        ] {
            let text = format!("{BASE}[bus]\n{body}\n");
            match Config::from_toml(&text, &env()) {
                Err(ConfigError::Invalid { field: f, message }) => {
                    assert_eq!(f, field, "{body}: {message}");
                    assert!(!message.contains("secret"), "{message}");
                }
                other => panic!("{body}: expected an error naming {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn bus_secrets_come_from_files_and_never_print() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cret-token\n").unwrap();
        let text = format!("{BASE}[bus]\nurls = [\"nats://a:1\"]\ntoken_file = {:?}\n", file.display().to_string());
        let config = Config::from_toml(&text, &env()).unwrap();
        let bus = config.bus.clone().unwrap();
        match &bus.auth {
            BusAuth::Token(token) => assert_eq!(token.current().expose(), "s3cret-token"),
            other => panic!("expected a token, got {other:?}"),
        }
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn the_environment_gives_the_urls() {
        let env = MapEnv([("MILLRACE_BUS_URLS", "nats://a:1, nats://b:2".to_string())].into_iter().collect());
        let bus = Config::from_toml(BASE, &env).unwrap().bus.unwrap();
        assert_eq!(bus.urls, vec!["nats://a:1".to_string(), "nats://b:2".to_string()]);
        assert_eq!(bus.pipeline, "default");
    }
}
