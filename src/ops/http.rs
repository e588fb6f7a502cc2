//! The HTTP endpoint of `millrace run`: `/metrics` (Prometheus), `/health`, `/ready`, the
//! operator page at `/` and its small JSON API. Read-only views are open; operator actions
//! (retry, discard a dead letter) need the token from `[http] token` as a bearer token.
//!
//! Bound to 127.0.0.1 by default. Nothing served here carries a password: the page shows
//! records and reasons, never connection strings.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::metrics::{Metrics, Scraped};
use crate::config::PgConnInfo;
use crate::config::Secret;
use crate::state::report;

/// What the endpoint needs from the service.
pub struct HttpContext {
    pub metrics: Arc<Metrics>,
    pub state: PgConnInfo,
    pub odoo: PgConnInfo,
    pub slot: String,
    pub token: Option<Secret>,
    /// A legacy table whose last handled poll is older than this makes the service not ready.
    pub legacy_stale_after: Duration,
}

type Ctx = State<Arc<HttpContext>>;

pub fn router(context: Arc<HttpContext>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/api/overview", get(overview))
        .route("/api/dlq/{id}/retry", post(retry))
        .route("/api/dlq/{id}/discard", post(discard))
        .with_state(context)
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    context: Arc<HttpContext>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(context)).with_graceful_shutdown(shutdown).await
}

const PAGE: &str = include_str!("page.html");

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // The page loads nothing from anywhere else (plants are often offline).
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
            ),
        ],
        Html(PAGE),
    )
}

async fn health() -> impl IntoResponse {
    Json(json!({"status": "alive"}))
}

/// Reasons the service is not ready: a side failing, or a legacy table not polled lately.
fn not_ready(ctx: &HttpContext) -> Vec<serde_json::Value> {
    let mut reasons: Vec<serde_json::Value> = ctx
        .metrics
        .not_ready()
        .into_iter()
        .map(|n| json!({"system": n.system, "reason": n.reason, "since_seconds": n.since_seconds}))
        .collect();
    for (table, lag) in ctx.metrics.legacy_lag() {
        if lag > ctx.legacy_stale_after.as_secs_f64() {
            reasons.push(json!({"system": "legacy", "reason": format!("table {table} last polled {lag:.0}s ago"), "since_seconds": lag}));
        }
    }
    reasons
}

async fn ready(State(ctx): Ctx) -> Response {
    let reasons = not_ready(&ctx);
    if reasons.is_empty() {
        (StatusCode::OK, Json(json!({"ready": true}))).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"ready": false, "reasons": reasons}))).into_response()
    }
}

async fn connect(info: &PgConnInfo) -> Option<tokio_postgres::Client> {
    match tokio::time::timeout(Duration::from_secs(3), crate::pg::connect(info)).await {
        Ok(Ok(client)) => Some(client),
        _ => None,
    }
}

async fn scrape(ctx: &HttpContext) -> Scraped {
    let mut scraped = Scraped::default();
    if let Some(state) = connect(&ctx.state).await {
        if let Ok(depths) = report::queue_depths(&state).await {
            scraped.parked = Some(depths.parked);
            scraped.dlq_open = Some(depths.dead_letters);
        }
    }
    if let Some(odoo) = connect(&ctx.odoo).await {
        if let Ok(Some(row)) = odoo
            .query_opt(
                "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1",
                &[&ctx.slot],
            )
            .await
        {
            scraped.replication_lag_bytes = row.get(0);
        }
    }
    scraped
}

async fn metrics(State(ctx): Ctx) -> impl IntoResponse {
    let scraped = scrape(&ctx).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], ctx.metrics.render(&scraped))
}

async fn overview(State(ctx): Ctx) -> Response {
    let scraped = scrape(&ctx).await;
    let mut body = json!({
        "ready": not_ready(&ctx).is_empty(),
        "not_ready": not_ready(&ctx),
        "replication_lag_bytes": scraped.replication_lag_bytes,
        "legacy_lag_seconds": ctx.metrics.legacy_lag(),
        "parked": scraped.parked,
        "dlq_open": scraped.dlq_open,
        "actions_enabled": ctx.token.is_some(),
    });
    let Some(state) = connect(&ctx.state).await else {
        body["error"] = json!("the control state database is unreachable");
        return (StatusCode::OK, Json(body)).into_response();
    };
    // Timestamps as the server writes them (`::text`): the page shows them as they are.
    if let Ok(rows) = report::decision_counts::<String>(&state).await {
        body["decisions"] = rows
            .into_iter()
            .map(|r| {
                json!({"entity": r.entity, "source": r.source, "decision": r.decision, "count": r.n, "last_at": r.last_at})
            })
            .collect();
    }
    if let Ok(rows) = report::open_dead_letters::<String>(&state, 200).await {
        body["dead_letters"] = rows
            .into_iter()
            .map(|r| {
                json!({"id": r.id, "entity": r.entity, "key": r.key, "source": r.source, "op": r.op,
                       "record": r.record, "position": r.position, "field": r.field, "reason": r.reason,
                       "created_at": r.created_at, "status": r.status})
            })
            .collect();
    }
    if let Ok(rows) = report::recent_conflicts::<String>(&state, 20).await {
        body["conflicts"] = rows
            .into_iter()
            .map(|r| {
                json!({"id": r.id, "entity": r.entity, "key": r.key, "source": r.source, "fields": r.fields,
                       "policy": r.policy, "at": r.at})
            })
            .collect();
    }
    (StatusCode::OK, Json(body)).into_response()
}

/// Checks the bearer token; `Some` is the refusal to send.
fn refusal(ctx: &HttpContext, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &ctx.token else {
        return Some(
            (
                StatusCode::FORBIDDEN,
                Json(json!({"error": "operator actions are disabled: no [http] token is configured"})),
            )
                .into_response(),
        );
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if given.is_empty() {
        return Some(
            (StatusCode::UNAUTHORIZED, Json(json!({"error": "this action needs the operator token"}))).into_response(),
        );
    }
    // Compared in constant time, so the token cannot be guessed byte by byte.
    let expected = token.expose().as_bytes();
    let matches = given.len() == expected.len()
        && given.as_bytes().iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if !matches {
        return Some((StatusCode::FORBIDDEN, Json(json!({"error": "wrong operator token"}))).into_response());
    }
    None
}

async fn set_status(ctx: &HttpContext, headers: &HeaderMap, id: i64, status: &str) -> Response {
    if let Some(response) = refusal(ctx, headers) {
        return response;
    }
    let store = match crate::state::StateStore::connect(&ctx.state).await {
        Ok(store) => store,
        Err(e) => {
            return (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": format!("control state: {e}")})))
                .into_response()
        }
    };
    match store.set_dead_letter_status(Some(&[id]), status).await {
        Ok(0) => {
            (StatusCode::NOT_FOUND, Json(json!({"error": format!("dead letter {id} does not exist or is not open")})))
                .into_response()
        }
        Ok(_) => {
            tracing::info!(dead_letter = id, status, "operator action from the HTTP endpoint");
            (StatusCode::OK, Json(json!({"ok": true, "id": id, "status": status}))).into_response()
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": format!("{e}")}))).into_response(),
    }
}

async fn retry(State(ctx): Ctx, Path(id): Path<i64>, headers: HeaderMap) -> Response {
    set_status(&ctx, &headers, id, "retry").await
}

async fn discard(State(ctx): Ctx, Path(id): Path<i64>, headers: HeaderMap) -> Response {
    set_status(&ctx, &headers, id, "discarded").await
}
