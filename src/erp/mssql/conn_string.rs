//! ADO.NET connection strings (`server=tcp:host,1433;user=millrace;…`): the keys millrace reads
//! itself (user, timeouts, the target for messages) and the tiberius configuration. Errors never
//! quote the string: it may hold a password.

use std::time::Duration;

use tiberius::{AuthMethod, Config};

use super::{DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT};
use crate::erp::LegacyError;

/// Splits an ADO.NET connection string into lower-cased keys and values, with the quoting
/// tiberius accepts (`'…'`, `"…"` with the quote doubled inside, `{…}`). millrace reads a few
/// keys itself (the user, timeouts, the database for messages); tiberius parses the rest.
/// Errors never quote the string: it may hold a password.
pub(crate) fn ado_pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut key = String::new();
        loop {
            match chars.next() {
                None => {
                    if !key.trim().is_empty() {
                        return Err("a key has no `=` and value".to_string());
                    }
                    return Ok(pairs);
                }
                Some(';') if key.trim().is_empty() => key.clear(),
                Some(';') => return Err("a key has no `=` and value".to_string()),
                Some('=') => break,
                Some(c) => key.push(c),
            }
        }
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        match chars.peek().copied() {
            Some(quote @ ('\'' | '"')) => {
                chars.next();
                loop {
                    match chars.next() {
                        None => return Err("a quoted value is not closed".to_string()),
                        Some(c) if c == quote => {
                            if chars.peek() == Some(&quote) {
                                chars.next();
                                value.push(quote);
                            } else {
                                break;
                            }
                        }
                        Some(c) => value.push(c),
                    }
                }
                skip_to_separator(&mut chars)?;
            }
            Some('{') => {
                chars.next();
                loop {
                    match chars.next() {
                        None => return Err("a braced value is not closed".to_string()),
                        Some('}') => break,
                        Some(c) => value.push(c),
                    }
                }
                skip_to_separator(&mut chars)?;
            }
            _ => {
                for c in chars.by_ref() {
                    if c == ';' {
                        break;
                    }
                    value.push(c);
                }
                value = value.trim().to_string();
            }
        }
        pairs.push((key.trim().to_ascii_lowercase(), value));
    }
}

pub(crate) fn skip_to_separator(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<(), String> {
    for c in chars.by_ref() {
        match c {
            ';' => return Ok(()),
            c if c.is_ascii_whitespace() => {}
            _ => return Err("text follows a quoted value".to_string()),
        }
    }
    Ok(())
}

/// Seconds, `0` meaning no limit (as in ADO.NET).
pub(crate) fn timeout_setting(name: &str, value: &str) -> Result<Option<Duration>, String> {
    let secs: u64 = value.trim().parse().map_err(|_| format!("`{name}` must be a number of seconds"))?;
    Ok((secs > 0).then(|| Duration::from_secs(secs)))
}

/// Everything [`MssqlConnection::connect`] derives from the connection string before touching
/// the network.
pub(crate) struct ConnectSettings {
    pub(crate) config: Config,
    /// `host:port/database`, for messages: never the connection string, which may hold a password.
    pub(crate) target: String,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) command_timeout: Option<Duration>,
    /// The user a separately given password is for (from the string's `User ID`).
    pub(crate) user: Option<String>,
}

impl ConnectSettings {
    pub(crate) fn parse(ado: &str, password: Option<&str>) -> Result<ConnectSettings, LegacyError> {
        let invalid = |target: &str, message: String| LegacyError::Connect {
            target: target.to_string(),
            message: format!("the connection string is not valid: {message}"),
            transient: false,
        };
        let pairs = ado_pairs(ado).map_err(|m| invalid("SQL Server", m))?;
        // Later pairs win, as in ADO.NET.
        let get =
            |names: &[&str]| pairs.iter().rev().find(|(k, _)| names.contains(&k.as_str())).map(|(_, v)| v.as_str());
        let mut config = Config::from_ado_string(ado).map_err(|e| invalid("SQL Server", e.to_string()))?;
        let target = match get(&["database", "initial catalog", "databasename"]) {
            Some(db) if !db.is_empty() => format!("{}/{db}", config.get_addr()),
            _ => config.get_addr(),
        };
        let command_timeout = match get(&["command timeout", "commandtimeout"]) {
            Some(v) => timeout_setting("Command Timeout", v).map_err(|m| invalid(&target, m))?,
            None => Some(DEFAULT_COMMAND_TIMEOUT),
        };
        let connect_timeout = match get(&["connect timeout", "connection timeout", "timeout"]) {
            Some(v) => timeout_setting("Connect Timeout", v).map_err(|m| invalid(&target, m))?,
            None => Some(DEFAULT_CONNECT_TIMEOUT),
        };
        config.command_timeout(command_timeout);
        config.handshake_timeout(connect_timeout);
        if get(&["application name", "applicationname"]).is_none() {
            // Lets a DBA tell millrace's sessions apart in sys.dm_exec_sessions.
            config.application_name("millrace");
        }
        let mut separate_user = None;
        if let Some(password) = password {
            // The password comes from a secret of its own; the user still comes from the string.
            let user = get(&["uid", "username", "user", "user id"]).filter(|u| !u.is_empty()).ok_or_else(|| {
                invalid(&target, "a password was given separately but the connection string names no `User ID`".into())
            })?;
            config.authentication(AuthMethod::sql_server(user, password));
            separate_user = Some(user.to_string());
        }
        Ok(ConnectSettings { config, target, connect_timeout, command_timeout, user: separate_user })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_string_settings() {
        let s =
            ConnectSettings::parse("server=tcp:db.example,1433;database=erp;user=mr;password=S3cret!", None).unwrap();
        assert_eq!(s.target, "db.example:1433/erp");
        assert_eq!(s.config.get_command_timeout(), Some(DEFAULT_COMMAND_TIMEOUT));
        assert_eq!(s.config.get_handshake_timeout(), Some(DEFAULT_CONNECT_TIMEOUT));
        assert_eq!(s.connect_timeout, Some(DEFAULT_CONNECT_TIMEOUT));

        let s = ConnectSettings::parse(
            "server=tcp:db.example,1433;Initial Catalog=erp;Command Timeout=0;Connect Timeout=5;TrustServerCertificate=true",
            None,
        )
        .unwrap();
        assert_eq!(s.command_timeout, None);
        assert_eq!(s.config.get_command_timeout(), None);
        assert_eq!(s.config.get_handshake_timeout(), Some(Duration::from_secs(5)));

        let s =
            ConnectSettings::parse("server=tcp:db,1433;user id=mr;Command Timeout=90", Some("pw;with=special'chars"))
                .unwrap();
        assert_eq!(s.command_timeout, Some(Duration::from_secs(90)));
        assert_eq!(s.target, "db:1433");
    }

    #[test]
    fn connection_errors_never_show_the_password() {
        let cases = [
            ("server=tcp:db,notaport;user=mr;password=TopSecret42", None),
            ("server=tcp:db,1433;user=mr;password='TopSecret42", None),
            ("server=tcp:db,1433;password=TopSecret42", Some("TopSecret42")),
            ("server=tcp:db,1433;user=mr;password=TopSecret42;Command Timeout=soon", None),
        ];
        for (ado, password) in cases {
            let error = ConnectSettings::parse(ado, password).err().expect(ado);
            let message = error.to_string();
            assert!(!message.contains("TopSecret42"), "{message}");
            assert!(!error.is_transient(), "{message}");
        }
        let error = ConnectSettings::parse("server=tcp:db,1433;password=x", Some("y")).err().unwrap();
        assert!(error.to_string().contains("User ID"), "{error}");
    }

    #[test]
    fn ado_strings_split_like_tiberius_splits_them() {
        let pairs = ado_pairs(" Server = tcp:h,1 ; User ID=mr;Password='a;b''c' ;pwd=\"x\"\"y\";App={p;q};;").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("server".to_string(), "tcp:h,1".to_string()),
                ("user id".to_string(), "mr".to_string()),
                ("password".to_string(), "a;b'c".to_string()),
                ("pwd".to_string(), "x\"y".to_string()),
                ("app".to_string(), "p;q".to_string()),
            ]
        );
        assert!(ado_pairs("server").is_err());
        assert!(ado_pairs("a='x' y").is_err());
    }
}
