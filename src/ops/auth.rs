//! Who may read and act on the HTTP endpoint: the bearer token of a request checked against the
//! configured tokens (`[http]`: `token`, `read_token`, `[[http.tokens]]`), in constant time, and
//! against the endpoints left open (`[http] open`). A token is known by its name; its value is
//! never logged, stored or returned.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::config::{HttpEndpoint, HttpToken, HttpTokens, TokenRole};

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No bearer token came with a request that needs one (401).
    NoToken { action: bool },
    /// The token is none of the configured ones (403).
    Wrong,
    /// The token may only read, and this is an action (403).
    ReadOnly { name: String },
    /// No configured token may act (403).
    ActionsDisabled,
}

impl Denied {
    pub fn status(&self) -> StatusCode {
        match self {
            Denied::NoToken { .. } => StatusCode::UNAUTHORIZED,
            _ => StatusCode::FORBIDDEN,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Denied::NoToken { action: true } => "this action needs the operator token".into(),
            Denied::NoToken { action: false } => {
                "reading this needs a token ([http] read_token or an operator token)".into()
            }
            Denied::Wrong => "wrong token".into(),
            Denied::ReadOnly { name } => {
                format!("the token {name:?} may only read; acting needs a token with can = \"act\"")
            }
            Denied::ActionsDisabled => {
                "operator actions are disabled: no [http] token that may act is configured".into()
            }
        }
    }
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.message() }));
        match self {
            Denied::NoToken { .. } => {
                (self.status(), [(header::WWW_AUTHENTICATE, "Bearer realm=\"millrace\"")], body).into_response()
            }
            _ => (self.status(), body).into_response(),
        }
    }
}

/// The bearer token of a request ("" when there is none).
pub fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("")
}

/// Equal, in time that depends on the lengths only: a token cannot be guessed byte by byte.
fn same(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len() && given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// The configured token `given` is. Every token is compared, whichever matches: the time taken
/// does not say which one did. A token from a file is read again (rewriting the file rotates it).
fn find<'a>(tokens: &'a HttpTokens, given: &str) -> Option<&'a HttpToken> {
    let mut found = None;
    for token in &tokens.tokens {
        if same(given.as_bytes(), token.secret.current().expose().as_bytes()) && found.is_none() {
            found = Some(token);
        }
    }
    found
}

/// A read of `endpoint`: `Ok(None)` when it is open (no token looked at), `Ok(Some(name))` with
/// a configured token.
pub fn read(tokens: Option<&HttpTokens>, endpoint: HttpEndpoint, given: &str) -> Result<Option<String>, Denied> {
    let Some(tokens) = tokens.filter(|t| !t.is_open(endpoint)) else { return Ok(None) };
    if given.is_empty() {
        return Err(Denied::NoToken { action: false });
    }
    find(tokens, given).map(|t| Some(t.name.clone())).ok_or(Denied::Wrong)
}

/// An operator action: the name of the token that may take it.
pub fn act(tokens: Option<&HttpTokens>, given: &str) -> Result<String, Denied> {
    let Some(tokens) = tokens.filter(|t| t.can_act()) else { return Err(Denied::ActionsDisabled) };
    if given.is_empty() {
        return Err(Denied::NoToken { action: true });
    }
    match find(tokens, given) {
        None => Err(Denied::Wrong),
        Some(t) if t.can == TokenRole::Read => Err(Denied::ReadOnly { name: t.name.clone() }),
        Some(t) => Ok(t.name.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn tokens(open: &[HttpEndpoint]) -> HttpTokens {
        let token = |name: &str, value: &str, can| HttpToken { name: name.into(), secret: Secret::new(value), can };
        HttpTokens {
            tokens: vec![token("operator", "op-1", TokenRole::Act), token("reader", "rd-22", TokenRole::Read)],
            open: open.to_vec(),
        }
    }

    #[test]
    fn reads_need_a_token_unless_open_and_any_token_reads() {
        let t = tokens(&[HttpEndpoint::Health]);
        assert_eq!(read(Some(&t), HttpEndpoint::Health, ""), Ok(None));
        assert_eq!(read(Some(&t), HttpEndpoint::Health, "nonsense"), Ok(None), "an open endpoint ignores tokens");
        assert_eq!(read(Some(&t), HttpEndpoint::Api, ""), Err(Denied::NoToken { action: false }));
        assert_eq!(read(Some(&t), HttpEndpoint::Api, "rd-2"), Err(Denied::Wrong));
        assert_eq!(read(Some(&t), HttpEndpoint::Api, "rd-22"), Ok(Some("reader".into())));
        assert_eq!(read(Some(&t), HttpEndpoint::Metrics, "op-1"), Ok(Some("operator".into())));
        assert_eq!(read(None, HttpEndpoint::Api, ""), Ok(None), "no token configured: open");
    }

    #[test]
    fn actions_need_a_token_that_may_act() {
        let t = tokens(&HttpEndpoint::ALL);
        assert_eq!(act(Some(&t), ""), Err(Denied::NoToken { action: true }));
        assert_eq!(act(Some(&t), "op-2"), Err(Denied::Wrong));
        assert_eq!(act(Some(&t), "rd-22"), Err(Denied::ReadOnly { name: "reader".into() }));
        assert_eq!(act(Some(&t), "op-1"), Ok("operator".into()));
        assert_eq!(act(None, "op-1"), Err(Denied::ActionsDisabled));
        assert_eq!(Denied::NoToken { action: true }.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(Denied::ReadOnly { name: "reader".into() }.status(), StatusCode::FORBIDDEN);
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer op-1".parse().unwrap());
        assert_eq!(bearer(&headers), "op-1");
        headers.insert(header::AUTHORIZATION, "Basic b3A6MQ==".parse().unwrap());
        assert_eq!(bearer(&headers), "");
    }
}
