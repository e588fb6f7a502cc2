//! `[http]`: where `run` serves its endpoint, the tokens that guard it, and which endpoints need
//! no token.
//!
//! ```toml
//! [http]
//! listen = "127.0.0.1:9464"
//! token_file = "/etc/millrace/operator.token"   # the token named "operator": reads and acts
//! read_token_file = "/etc/millrace/reader.token" # the token named "reader": reads only
//! open = ["health", "ready", "metrics"]          # what needs no token
//!
//! [[http.tokens]]
//! name = "alice"
//! token_file = "/etc/millrace/alice.token"
//! can = "act"                                     # or "read": required
//! ```
//!
//! Reading (the operator page's data, every `GET /api/…`) needs a token as soon as a read-only
//! token is configured; any configured token then reads. Actions need a token that can act.

use std::path::PathBuf;

use serde::Deserialize;

use super::{resolve_password, ConfigError, Env, Secret};

/// `[http]` (or `MILLRACE_HTTP_LISTEN`): where `run` serves /metrics, /health, /ready and the
/// operator page, and the tokens that guard them.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: std::net::SocketAddr,
    /// The configured tokens and the endpoints open without one; `None` when no token is
    /// configured at all: every read is open and operator actions are refused.
    pub token: Option<HttpTokens>,
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRole {
    /// The page, the API's reads, and every other guarded read.
    Read,
    /// Everything a reader may, and the operator actions (retry, discard).
    Act,
}

/// One named token. Logs, errors and the audit trail name it by `name`, never by its value.
#[derive(Debug, Clone)]
pub struct HttpToken {
    pub name: String,
    pub secret: Secret,
    pub can: TokenRole,
}

/// The endpoints that can be left open (`[http] open`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpEndpoint {
    /// `/health`.
    Health,
    /// `/ready`.
    Ready,
    /// `/metrics`.
    Metrics,
    /// Every read under `/api/` (the operator page's data). The page itself, an empty shell
    /// that holds no data, is always served.
    Api,
}

impl HttpEndpoint {
    pub const ALL: [HttpEndpoint; 4] =
        [HttpEndpoint::Health, HttpEndpoint::Ready, HttpEndpoint::Metrics, HttpEndpoint::Api];

    pub fn as_str(self) -> &'static str {
        match self {
            HttpEndpoint::Health => "health",
            HttpEndpoint::Ready => "ready",
            HttpEndpoint::Metrics => "metrics",
            HttpEndpoint::Api => "api",
        }
    }

    fn parse(name: &str) -> Option<HttpEndpoint> {
        HttpEndpoint::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// The tokens of `[http]` and the endpoints that need none.
#[derive(Debug, Clone)]
pub struct HttpTokens {
    pub tokens: Vec<HttpToken>,
    /// Endpoints served without a token.
    pub open: Vec<HttpEndpoint>,
}

impl HttpTokens {
    /// Whether `endpoint` is served without a token.
    pub fn is_open(&self, endpoint: HttpEndpoint) -> bool {
        self.open.contains(&endpoint)
    }

    /// Whether some token may act (otherwise operator actions are refused).
    pub fn can_act(&self) -> bool {
        self.tokens.iter().any(|t| t.can == TokenRole::Act)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    listen: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    read_token: Option<String>,
    read_token_file: Option<PathBuf>,
    open: Option<Vec<String>>,
    #[serde(default)]
    tokens: Vec<RawHttpToken>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpToken {
    name: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    can: Option<String>,
}

/// The name `token` / `token_file` is known by.
pub const OPERATOR: &str = "operator";
/// The name `read_token` / `read_token_file` is known by.
pub const READER: &str = "reader";

/// `[http]` with its environment overrides; `None` when neither the section nor
/// `MILLRACE_HTTP_LISTEN` is there.
pub(super) fn http_from_raw(raw: Option<RawHttp>, env: &dyn Env) -> Result<Option<HttpConfig>, ConfigError> {
    let listen_env = env.var("MILLRACE_HTTP_LISTEN");
    if raw.is_none() && listen_env.is_none() {
        return Ok(None);
    }
    let raw = raw.unwrap_or_default();
    let listen = listen_env.or(raw.listen).unwrap_or_else(|| "127.0.0.1:9464".into());
    let listen = listen.parse().map_err(|_| ConfigError::Invalid {
        field: "http.listen",
        message: format!("{listen:?} is not an address:port such as 127.0.0.1:9464"),
    })?;
    let mut tokens = Vec::new();
    let operator = match env.var("MILLRACE_HTTP_TOKEN") {
        Some(token) => Some(Secret::new(token)),
        None => resolve_password(
            "http.token_file",
            raw.token,
            env.var("MILLRACE_HTTP_TOKEN_FILE").map(PathBuf::from).or(raw.token_file),
        )?,
    };
    if let Some(secret) = operator {
        tokens.push(named("http.token", OPERATOR, secret, TokenRole::Act)?);
    }
    let reader = match env.var("MILLRACE_HTTP_READ_TOKEN") {
        Some(token) => Some(Secret::new(token)),
        None => resolve_password(
            "http.read_token_file",
            raw.read_token,
            env.var("MILLRACE_HTTP_READ_TOKEN_FILE").map(PathBuf::from).or(raw.read_token_file),
        )?,
    };
    if let Some(secret) = reader {
        tokens.push(named("http.read_token", READER, secret, TokenRole::Read)?);
    }
    for (i, t) in raw.tokens.into_iter().enumerate() {
        tokens.push(listed_token(i, t)?);
    }
    check_distinct(&tokens)?;
    let open = match raw.open {
        Some(names) => {
            let mut open = Vec::new();
            for name in names {
                let endpoint = HttpEndpoint::parse(&name).ok_or_else(|| ConfigError::Invalid {
                    field: "http.open",
                    message: format!(
                        "{name:?} is not an endpoint that can be left open (known: {})",
                        HttpEndpoint::ALL.map(HttpEndpoint::as_str).join(", ")
                    ),
                })?;
                if !open.contains(&endpoint) {
                    open.push(endpoint);
                }
            }
            if tokens.is_empty() && open.len() < HttpEndpoint::ALL.len() {
                return Err(ConfigError::Invalid {
                    field: "http.open",
                    message: "leaves endpoints closed, but no token is configured to open them \
                              (set token_file, read_token_file or [[http.tokens]])"
                        .into(),
                });
            }
            open
        }
        // Reads stay open unless a token limited to reading says they should not.
        None if tokens.iter().any(|t| t.can == TokenRole::Read) => {
            vec![HttpEndpoint::Health, HttpEndpoint::Ready, HttpEndpoint::Metrics]
        }
        None => HttpEndpoint::ALL.to_vec(),
    };
    let token = (!tokens.is_empty()).then_some(HttpTokens { tokens, open });
    Ok(Some(HttpConfig { listen, token }))
}

/// A token given as `token` or `read_token`: it must not be empty.
fn named(field: &'static str, name: &str, secret: Secret, can: TokenRole) -> Result<HttpToken, ConfigError> {
    if secret.expose().is_empty() {
        return Err(ConfigError::Invalid { field, message: "is empty".into() });
    }
    Ok(HttpToken { name: name.to_string(), secret, can })
}

/// One `[[http.tokens]]` entry; errors name it: `http.tokens: [1] (alice) can: …`.
fn listed_token(index: usize, t: RawHttpToken) -> Result<HttpToken, ConfigError> {
    let label = t.name.clone().unwrap_or_default();
    let invalid = |what: &str, message: String| ConfigError::Invalid {
        field: "http.tokens",
        message: format!("[{index}] ({label}) {what}: {message}"),
    };
    let name = t.name.clone().ok_or_else(|| invalid("name", "missing: each token needs a name".into()))?;
    let name_ok = (1..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'));
    if !name_ok {
        return Err(invalid("name", format!("{name:?} must be 1 to 64 letters, digits, or _ - . @")));
    }
    let secret = resolve_password("http.tokens.token_file", t.token, t.token_file)?
        .ok_or_else(|| invalid("token", "missing: set token_file (or token)".into()))?;
    if secret.expose().is_empty() {
        return Err(invalid("token", "is empty".into()));
    }
    // Said out loud: what a token may do is not left to a default.
    let can = match t.can.as_deref() {
        Some("act") => TokenRole::Act,
        Some("read") => TokenRole::Read,
        Some(other) => return Err(invalid("can", format!("{other:?} is not \"act\" or \"read\""))),
        None => return Err(invalid("can", "missing: \"act\" (read and act) or \"read\" (read only)".into())),
    };
    Ok(HttpToken { name, secret, can })
}

/// Each token has a name and a value of its own: the audit names the token an action came with.
fn check_distinct(tokens: &[HttpToken]) -> Result<(), ConfigError> {
    for (i, t) in tokens.iter().enumerate() {
        for earlier in &tokens[..i] {
            if earlier.name == t.name {
                return Err(ConfigError::Invalid {
                    field: "http.tokens",
                    message: format!(
                        "two tokens are named {:?} (token is named {OPERATOR:?}, read_token {READER:?})",
                        t.name
                    ),
                });
            }
            if earlier.secret.expose() == t.secret.expose() {
                return Err(ConfigError::Invalid {
                    field: "http.tokens",
                    message: format!(
                        "tokens {:?} and {:?} have the same value; give each its own",
                        earlier.name, t.name
                    ),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    use super::super::{Config, MapEnv};
    use super::*;

    const ODOO: &str = "[odoo]\nurl = \"postgres://u@h/db\"\n";

    fn http(text: &str, env: &[(&'static str, &str)]) -> Result<Option<HttpConfig>, ConfigError> {
        let env = MapEnv(env.iter().map(|(k, v)| (*k, v.to_string())).collect());
        Config::from_toml(&format!("{ODOO}{text}"), &env).map(|c| c.http)
    }

    #[test]
    fn no_token_leaves_reads_open_and_a_read_token_closes_them() {
        let config = http("[http]\nlisten = \"127.0.0.1:0\"\n", &[]).unwrap().unwrap();
        assert!(config.token.is_none());
        let config = http("[http]\ntoken = \"op\"\n", &[]).unwrap().unwrap();
        let tokens = config.token.unwrap();
        assert_eq!(tokens.open, HttpEndpoint::ALL.to_vec(), "an operator token alone guards actions only");
        assert_eq!((tokens.tokens[0].name.as_str(), tokens.tokens[0].can), (OPERATOR, TokenRole::Act));
        let config = http("[http]\ntoken = \"op\"\n", &[("MILLRACE_HTTP_READ_TOKEN", "rd")]).unwrap().unwrap();
        let tokens = config.token.unwrap();
        assert_eq!(tokens.open, [HttpEndpoint::Health, HttpEndpoint::Ready, HttpEndpoint::Metrics]);
        assert_eq!((tokens.tokens[1].name.as_str(), tokens.tokens[1].can), (READER, TokenRole::Read));
        assert_eq!(tokens.tokens[1].secret.expose(), "rd");
        assert!(!format!("{tokens:?}").contains("rd\""), "{tokens:?}");
    }

    #[test]
    fn named_tokens_read_from_files_with_their_roles_and_open_endpoints() {
        let dir = tempfile::tempdir().unwrap();
        let alice = dir.path().join("alice");
        std::fs::write(&alice, "alice-secret\n").unwrap();
        let text = format!(
            "[http]\nread_token = \"rd\"\nopen = [\"health\"]\n\
             [[http.tokens]]\nname = \"alice\"\ntoken_file = {alice:?}\ncan = \"act\"\n\
             [[http.tokens]]\nname = \"bi\"\ntoken = \"bi-secret\"\ncan = \"read\"\n"
        );
        let tokens = http(&text, &[]).unwrap().unwrap().token.unwrap();
        let summary: Vec<(&str, TokenRole)> = tokens.tokens.iter().map(|t| (t.name.as_str(), t.can)).collect();
        assert_eq!(summary, [("reader", TokenRole::Read), ("alice", TokenRole::Act), ("bi", TokenRole::Read)]);
        assert_eq!(tokens.tokens[1].secret.expose(), "alice-secret");
        assert_eq!(tokens.open, [HttpEndpoint::Health]);
        assert!(tokens.can_act());
    }

    #[test]
    fn mistakes_name_their_field() {
        let error = |text: &str| http(text, &[]).unwrap_err().to_string();
        let e = error("[http]\ntoken = \"a\"\nopen = [\"helth\"]\n");
        assert!(e.starts_with("http.open:") && e.contains("\"helth\"") && e.contains("metrics"), "{e}");
        let e = error("[http]\nopen = [\"health\"]\n");
        assert!(e.starts_with("http.open:") && e.contains("no token"), "{e}");
        let e = error("[[http.tokens]]\nname = \"alice\"\ntoken = \"x\"\ncan = \"write\"\n");
        assert!(e.starts_with("http.tokens: [0] (alice) can:"), "{e}");
        let e = error("[[http.tokens]]\ntoken = \"x\"\n");
        assert!(e.starts_with("http.tokens: [0] () name: missing"), "{e}");
        let e = error("[[http.tokens]]\nname = \"al ice\"\ntoken = \"x\"\n");
        assert!(e.starts_with("http.tokens: [0] (al ice) name:"), "{e}");
        let e = error("[[http.tokens]]\nname = \"alice\"\n");
        assert!(e.starts_with("http.tokens: [0] (alice) token: missing"), "{e}");
        let e = error("[[http.tokens]]\nname = \"alice\"\ntoken = \"x\"\n");
        assert!(e.starts_with("http.tokens: [0] (alice) can: missing"), "{e}");
        let e = error(
            "[http]\ntoken = \"same-value\"\n[[http.tokens]]\nname = \"operator\"\ntoken = \"x\"\ncan = \"read\"\n",
        );
        assert!(e.starts_with("http.tokens:") && e.contains("two tokens are named \"operator\""), "{e}");
        let e = error("[http]\ntoken = \"same-value\"\n[[http.tokens]]\nname = \"alice\"\ntoken = \"same-value\"\ncan = \"read\"\n");
        assert!(e.contains("same value") && !e.contains("same-value"), "the value is never shown: {e}");
        let e = error("[http]\nread_token = \"\"\n");
        assert!(e.starts_with("http.read_token: is empty"), "{e}");
        let e = error("[http]\nread_token_file = \"/nonexistent/millrace-read-token\"\n");
        assert!(e.starts_with("http.read_token_file:") && e.contains("/nonexistent/millrace-read-token"), "{e}");
        let e = error("[http]\nreadtoken = \"x\"\n");
        assert!(e.contains("readtoken"), "{e}");
    }
}
