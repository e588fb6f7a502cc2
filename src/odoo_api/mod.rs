//! Odoo's external API: JSON-RPC `execute_kw` as millrace's integration user.
//!
//! Every write into Odoo goes through here, so that Odoo's own logic (stock, costing, the
//! workflows of its screens) runs on it, as it does for a user; this module knows nothing of
//! mappings. A call is one Odoo transaction. Odoo's refusals (`ValidationError`, `UserError`,
//! `AccessError`, `MissingError`, a value its fields do not take) are [`ApiError::Refused`] with
//! Odoo's own message; an outage (connection, 5xx, a concurrency error Odoo gave up retrying)
//! is retried here with backoff where repeating the call cannot do it twice, and otherwise
//! reported as [`ApiError::Unavailable`], for the caller to retry the whole batch.
//!
//! The API key travels in request bodies only: it is never part of an error or a log line. A key
//! from a file (`key_file`) is read again at each login, and when Odoo refuses the key in use
//! (`AccessDenied`): a key rotated by rewriting the file is taken up without a restart, and a
//! call refused meanwhile is an outage (retried), not bad data.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::config::OdooApiSettings;

/// Why a call did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// Odoo refused the call: the data (or the integration user's rights) is at fault, and
    /// calling again would be refused again. `name` is Odoo's exception class
    /// (`odoo.exceptions.ValidationError`).
    #[error("Odoo refused {call}: {message} ({name})")]
    Refused { call: String, name: String, message: String },
    /// Odoo cannot be reached or did not finish the call: try again later.
    #[error("Odoo is unavailable ({call}): {message}")]
    Unavailable { call: String, message: String },
    /// The login or API key is refused.
    #[error("Odoo refused the login of {login} to database {database}: {message}")]
    Login { login: String, database: String, message: String },
}

impl ApiError {
    /// The short form of an Odoo exception class: `ValidationError`.
    pub fn kind(&self) -> Option<&str> {
        match self {
            ApiError::Refused { name, .. } => Some(name.rsplit('.').next().unwrap_or(name)),
            _ => None,
        }
    }
}

/// One field as `fields_get` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldInfo {
    /// `char`, `many2one`, `float`, `selection`, …
    pub ty: String,
    /// The model a relational field points at.
    pub relation: Option<String>,
    pub readonly: bool,
    pub required: bool,
    /// The values a selection field takes.
    pub selection: Vec<String>,
}

/// Whether a failed call may be sent again as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Reads and writes of given values: doing them twice is doing them once.
    Safe,
    /// `create` and workflow buttons: only when Odoo surely did not run it (it could not be
    /// reached, or rolled it back).
    OnlyIfNotRun,
}

/// A logged-in session of the integration user on one database.
pub struct OdooApi {
    endpoint: String,
    database: String,
    login: String,
    /// The key as configured (a file is read again from it).
    key: crate::config::Secret,
    /// The key the session uses now: the one the last login succeeded with.
    in_use: std::sync::Mutex<crate::config::Secret>,
    uid: i64,
    http: reqwest::Client,
    retries: u32,
}

impl std::fmt::Debug for OdooApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OdooApi")
            .field("endpoint", &self.endpoint)
            .field("database", &self.database)
            .field("login", &self.login)
            .field("uid", &self.uid)
            .finish_non_exhaustive()
    }
}

/// What came back from one HTTP exchange.
enum Reply {
    Result(Value),
    /// Odoo's JSON-RPC error: exception class, message.
    Error(String, String),
}

/// Odoo's exception classes that mean "try again": the transaction was rolled back because of
/// another one (Odoo already retried it a few times itself).
fn is_concurrency_error(name: &str) -> bool {
    ["SerializationFailure", "DeadlockDetected", "LockNotAvailable", "TransactionRollbackError", "OperationalError"]
        .iter()
        .any(|n| name.ends_with(n))
}

/// Odoo's refusal of the credentials of a call (a wrong or revoked API key), as opposed to a
/// refusal of what the call does (`AccessError` is about rights on records).
fn is_credentials_refused(name: &str) -> bool {
    name.ends_with("AccessDenied")
}

impl OdooApi {
    /// Logs in (`common.login`) and keeps the session's user id.
    pub async fn login(settings: &OdooApiSettings) -> Result<OdooApi, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ApiError::Unavailable { call: "building the HTTP client".into(), message: e.to_string() })?;
        let key = settings.key.current();
        let mut api = OdooApi {
            endpoint: format!("{}/jsonrpc", settings.url.trim_end_matches('/')),
            database: settings.database.clone(),
            login: settings.login.clone(),
            key: settings.key.clone(),
            in_use: std::sync::Mutex::new(key.clone()),
            uid: 0,
            http,
            retries: 4,
        };
        api.uid = api.authenticate(&key).await?;
        Ok(api)
    }

    /// `common.authenticate` with `key`: the user's id.
    async fn authenticate(&self, key: &crate::config::Secret) -> Result<i64, ApiError> {
        let args = json!([self.database, self.login, key.expose(), {}]);
        let login_failed =
            |message: String| ApiError::Login { login: self.login.clone(), database: self.database.clone(), message };
        match self.call("common", "authenticate", args, "login", Repeat::Safe).await {
            Ok(Value::Number(uid)) => uid.as_i64().ok_or_else(|| login_failed(format!("user id {uid}"))),
            Ok(_) => Err(login_failed("wrong login or API key".into())),
            Err(ApiError::Refused { message, .. }) => Err(login_failed(message)),
            Err(other) => Err(other),
        }
    }

    fn key_in_use(&self) -> crate::config::Secret {
        self.in_use.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// After Odoo refused the key in use (`refused`): the key file is read again, and a new key
    /// in it is logged in with and kept. No new key, or Odoo refusing it too, is an outage the
    /// caller retries (the operator may be halfway through a rotation), not a refusal of data.
    async fn take_up_rotated_key(&self, refused: &crate::config::Secret, call: &str) -> Result<(), ApiError> {
        let current = self.key.current();
        let unavailable = |message: String| ApiError::Unavailable { call: call.to_string(), message };
        if current == *refused {
            let remedy = if self.key.file().is_some() {
                "write a valid key into [odoo.api] key_file"
            } else {
                "restart with a valid key"
            };
            return Err(unavailable(format!("Odoo refused the API key of {} (AccessDenied); {remedy}", self.login)));
        }
        match self.authenticate(&current).await {
            Ok(uid) if uid == self.uid => {
                tracing::info!(login = %self.login, "Odoo accepted the rotated API key; using it");
                *self.in_use.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = current;
                Ok(())
            }
            Ok(uid) => Err(unavailable(format!(
                "the rotated API key logs in as user {uid}, not {} as before; restart millrace to change users",
                self.uid
            ))),
            Err(ApiError::Login { message, .. }) => {
                Err(unavailable(format!("Odoo refused the rotated API key of {} too: {message}", self.login)))
            }
            Err(other) => Err(other),
        }
    }

    /// The integration user's id: Odoo stores it as `create_uid`/`write_uid` of what it writes.
    pub fn uid(&self) -> i64 {
        self.uid
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    /// `model.method(*args, **kwargs)` as the integration user.
    pub async fn execute_kw(
        &self,
        model: &str,
        method: &str,
        args: Value,
        kwargs: Value,
        repeat: Repeat,
    ) -> Result<Value, ApiError> {
        let call = format!("{model}.{method}");
        let key = self.key_in_use();
        let params = json!([self.database, self.uid, key.expose(), model, method, &args, &kwargs]);
        match self.call("object", "execute_kw", params, &call, repeat).await {
            // Refused credentials: Odoo ran nothing, so the call may be made again, with a key
            // rotated meanwhile.
            Err(ApiError::Refused { name, .. }) if is_credentials_refused(&name) => {
                self.take_up_rotated_key(&key, &call).await?;
                let key = self.key_in_use();
                let params = json!([self.database, self.uid, key.expose(), model, method, args, kwargs]);
                match self.call("object", "execute_kw", params, &call, repeat).await {
                    Err(ApiError::Refused { name, message, .. }) if is_credentials_refused(&name) => {
                        Err(ApiError::Unavailable { call, message: format!("Odoo refused the API key: {message}") })
                    }
                    other => other,
                }
            }
            other => other,
        }
    }

    async fn call(
        &self,
        service: &str,
        method: &str,
        args: Value,
        call: &str,
        repeat: Repeat,
    ) -> Result<Value, ApiError> {
        let body = json!({"jsonrpc": "2.0", "method": "call", "id": 1,
                          "params": {"service": service, "method": method, "args": args}});
        let mut delay = Duration::from_millis(250);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let unavailable = |message: String| ApiError::Unavailable { call: call.to_string(), message };
            // `not_run`: the failure proves Odoo did not run the call (it may be sent again
            // whatever it does).
            let (error, not_run) = match self.exchange(&body).await {
                Ok(Reply::Result(value)) => return Ok(value),
                Ok(Reply::Error(name, message)) if is_concurrency_error(&name) => {
                    (unavailable(format!("{message} ({name})")), true)
                }
                Ok(Reply::Error(name, message)) => {
                    return Err(ApiError::Refused { call: call.to_string(), name, message });
                }
                Err((message, not_run)) => (unavailable(message), not_run),
            };
            if attempt > self.retries || !(not_run || repeat == Repeat::Safe) {
                return Err(error);
            }
            tracing::warn!(call, attempt, retry_in_ms = delay.as_millis() as u64, error = %error, "Odoo call failed; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(4));
        }
    }

    /// One POST. An error says whether Odoo surely did not run the call.
    async fn exchange(&self, body: &Value) -> Result<Reply, (String, bool)> {
        let response = self.http.post(&self.endpoint).json(body).send().await.map_err(|e| {
            // Without the URL: reqwest's text names it, and an error must not grow with a URL
            // that might carry credentials.
            let not_run = e.is_connect();
            (format!("POST {}: {}", self.endpoint, e.without_url()), not_run)
        })?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            // A proxy in front of a stopped Odoo (502, 503) never reached it; a 500 from Odoo
            // itself is not a JSON-RPC error and says nothing of what ran.
            let not_run = matches!(status.as_u16(), 502 | 503 | 429);
            return Err((format!("HTTP {status} from {}", self.endpoint), not_run));
        }
        let reply: Value = response.json().await.map_err(|e| (format!("reading Odoo's reply: {e}"), false))?;
        match reply.get("error") {
            Some(error) => {
                let data = &error["data"];
                let name = data["name"].as_str().unwrap_or("error").to_string();
                let message = data["message"]
                    .as_str()
                    .or_else(|| error["message"].as_str())
                    .unwrap_or("no message")
                    .trim()
                    .to_string();
                Ok(Reply::Error(name, message))
            }
            // Odoo leaves "result" out when the method returned None.
            None => Ok(Reply::Result(reply.get("result").cloned().unwrap_or(Value::Null))),
        }
    }

    /// `create` of several records in one call (one Odoo transaction): their ids, in order.
    pub async fn create(&self, model: &str, values: &[Value], context: &Value) -> Result<Vec<i64>, ApiError> {
        let result = self
            .execute_kw(model, "create", json!([values]), json!({"context": context}), Repeat::OnlyIfNotRun)
            .await?;
        let ids: Vec<i64> = match &result {
            Value::Array(ids) => ids.iter().filter_map(Value::as_i64).collect(),
            Value::Number(id) => id.as_i64().into_iter().collect(),
            _ => Vec::new(),
        };
        if ids.len() != values.len() {
            return Err(ApiError::Refused {
                call: format!("{model}.create"),
                name: "millrace".into(),
                message: format!("{} records sent, Odoo answered {result}", values.len()),
            });
        }
        Ok(ids)
    }

    /// `write` of the same values on several records.
    pub async fn write(&self, model: &str, ids: &[i64], values: &Value, context: &Value) -> Result<(), ApiError> {
        self.execute_kw(model, "write", json!([ids, values]), json!({"context": context}), Repeat::Safe).await?;
        Ok(())
    }

    pub async fn unlink(&self, model: &str, ids: &[i64]) -> Result<(), ApiError> {
        self.execute_kw(model, "unlink", json!([ids]), json!({}), Repeat::Safe).await?;
        Ok(())
    }

    /// `search_read(domain, fields)`, archived records included when `with_archived`.
    pub async fn search_read(
        &self,
        model: &str,
        domain: Value,
        fields: &[&str],
        with_archived: bool,
    ) -> Result<Vec<Value>, ApiError> {
        let context = json!({"active_test": !with_archived});
        let rows = self
            .execute_kw(
                model,
                "search_read",
                json!([domain]),
                json!({"fields": fields, "context": context}),
                Repeat::Safe,
            )
            .await?;
        Ok(rows.as_array().cloned().unwrap_or_default())
    }

    /// The fields of a model (`fields_get`); a model that does not exist is refused.
    pub async fn fields_get(&self, model: &str) -> Result<BTreeMap<String, FieldInfo>, ApiError> {
        let attributes = json!(["type", "relation", "readonly", "required", "selection"]);
        let result =
            self.execute_kw(model, "fields_get", json!([]), json!({"attributes": attributes}), Repeat::Safe).await?;
        let Value::Object(fields) = result else {
            return Err(ApiError::Refused {
                call: format!("{model}.fields_get"),
                name: "millrace".into(),
                message: format!("unexpected answer {result}"),
            });
        };
        Ok(fields
            .into_iter()
            .map(|(name, f)| {
                let info = FieldInfo {
                    ty: f["type"].as_str().unwrap_or("").to_string(),
                    relation: f["relation"].as_str().map(str::to_string),
                    readonly: f["readonly"].as_bool().unwrap_or(false),
                    required: f["required"].as_bool().unwrap_or(false),
                    selection: f["selection"]
                        .as_array()
                        .map(|s| s.iter().filter_map(|p| p[0].as_str().map(str::to_string)).collect())
                        .unwrap_or_default(),
                };
                (name, info)
            })
            .collect())
    }

    /// Whether a model exists (`ir.model`), for `check`'s message.
    pub async fn model_exists(&self, model: &str) -> Result<bool, ApiError> {
        let rows = self.search_read("ir.model", json!([["model", "=", model]]), &["id"], false).await?;
        Ok(!rows.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrency_errors_are_retried_and_refusals_are_not() {
        assert!(is_concurrency_error("psycopg2.errors.SerializationFailure"));
        assert!(is_concurrency_error("psycopg2.OperationalError"));
        assert!(!is_concurrency_error("odoo.exceptions.ValidationError"));
        assert!(is_credentials_refused("odoo.exceptions.AccessDenied"));
        assert!(!is_credentials_refused("odoo.exceptions.AccessError"));
        let refused = ApiError::Refused {
            call: "product.product.write".into(),
            name: "odoo.exceptions.UserError".into(),
            message: "no".into(),
        };
        assert_eq!(refused.kind(), Some("UserError"));
    }
}
