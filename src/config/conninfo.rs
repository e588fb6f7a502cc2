//! libpq-style connection URLs: `postgres://user:password@host:port/dbname?sslmode=verify-full&sslrootcert=/ca.pem`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use percent_encoding::percent_decode_str;

use crate::config::Secret;

/// `sslmode` as libpq defines it (`allow` is treated as `prefer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<SslMode> {
        Some(match value {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PgConnInfoError {
    #[error("not a postgres:// URL ({0})")]
    NotUrl(String),
    #[error("URL scheme must be postgres:// or postgresql://, not {0}://")]
    Scheme(String),
    #[error("sslmode={0:?} is not one of disable, allow, prefer, require, verify-ca, verify-full")]
    SslMode(String),
    #[error("{key}={value:?} is not a valid value")]
    Value { key: String, value: String },
    #[error("URL parameter {0:?} is not supported (supported: sslmode, sslrootcert, application_name, connect_timeout, options, user, password, host, port, dbname)")]
    UnknownParam(String),
}

/// Where and how to connect. `Display` prints it without the password.
#[derive(Clone, Debug)]
pub struct PgConnInfo {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<Secret>,
    pub dbname: String,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub application_name: String,
    pub connect_timeout: Duration,
}

impl PgConnInfo {
    pub fn parse(text: &str) -> Result<PgConnInfo, PgConnInfoError> {
        // Never echo the URL itself in an error: it may hold a password.
        let url = url::Url::parse(text).map_err(|e| PgConnInfoError::NotUrl(e.to_string()))?;
        if url.scheme() != "postgres" && url.scheme() != "postgresql" {
            return Err(PgConnInfoError::Scheme(url.scheme().to_string()));
        }
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        let mut info = PgConnInfo {
            host: url.host_str().map(|h| h.trim_matches(['[', ']']).to_string()).unwrap_or_else(|| "localhost".into()),
            port: url.port().unwrap_or(5432),
            user: if url.username().is_empty() { default_user() } else { decode(url.username()) },
            password: url.password().map(|p| Secret::new(decode(p))),
            dbname: String::new(),
            sslmode: SslMode::Prefer,
            sslrootcert: None,
            application_name: "millrace".into(),
            connect_timeout: Duration::from_secs(10),
        };
        let path = url.path().trim_start_matches('/');
        info.dbname = if path.is_empty() { info.user.clone() } else { decode(path) };
        for (key, value) in url.query_pairs() {
            let value = value.into_owned();
            match key.as_ref() {
                "sslmode" => info.sslmode = SslMode::parse(&value).ok_or(PgConnInfoError::SslMode(value))?,
                "sslrootcert" => info.sslrootcert = Some(PathBuf::from(value)),
                "application_name" => info.application_name = value,
                "connect_timeout" => {
                    let secs: u64 = value
                        .parse()
                        .map_err(|_| PgConnInfoError::Value { key: key.to_string(), value: value.clone() })?;
                    info.connect_timeout = Duration::from_secs(secs.max(1));
                }
                "user" => info.user = value,
                "password" => info.password = Some(Secret::new(value)),
                "host" => info.host = value,
                "dbname" => info.dbname = value,
                "port" => {
                    info.port = value.parse().map_err(|_| PgConnInfoError::Value { key: key.to_string(), value })?
                }
                other => return Err(PgConnInfoError::UnknownParam(other.to_string())),
            }
        }
        Ok(info)
    }

    /// The same server and credentials, another database.
    pub fn with_dbname(&self, dbname: &str) -> PgConnInfo {
        PgConnInfo { dbname: dbname.to_string(), ..self.clone() }
    }
}

fn default_user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "postgres".into())
}

impl fmt::Display for PgConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "postgres://{}@{}:{}/{}", self.user, self.host, self.port, self.dbname)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_url_with_tls_options() {
        let info = PgConnInfo::parse(
            "postgresql://odoo:p%40ss@db.example:6432/prod?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(info.host, "db.example");
        assert_eq!(info.port, 6432);
        assert_eq!(info.user, "odoo");
        assert_eq!(info.password.as_ref().unwrap().expose(), "p@ss");
        assert_eq!(info.dbname, "prod");
        assert_eq!(info.sslmode, SslMode::VerifyFull);
        assert_eq!(info.sslrootcert.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
        assert_eq!(info.to_string(), "postgres://odoo@db.example:6432/prod");
    }

    #[test]
    fn errors_do_not_echo_the_password() {
        let err = PgConnInfo::parse("postgres://u:hunter2@h/db?sslmode=bogus").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
        let err = PgConnInfo::parse("mysql://u:hunter2@h/db").unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
    }
}
