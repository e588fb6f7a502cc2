//! The HTTP endpoint of `millrace run`: `/metrics` (Prometheus), `/health`, `/ready`, the
//! operator page at `/` and its small JSON API. Operator actions (retry, discard a dead letter)
//! need a token that may act; reads need a token too once a read token is configured, except
//! the endpoints left open (`[http] open`; [`super::auth`]). Every action is recorded in the
//! audit trail with the client's address and the token's name, and archived.
//!
//! Bound to 127.0.0.1 by default. Nothing served here carries a password or a token: the page
//! shows records and reasons, never connection strings.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::auth::{self, Denied};
use super::metrics::{Metrics, Scraped};
use crate::config::{HttpEndpoint, HttpTokens, PgConnInfo};
use crate::state::audit::{self, Action, Actor, Refusal, Target, Via};
use crate::state::report;

/// What the endpoint needs from the service.
pub struct HttpContext {
    pub metrics: Arc<Metrics>,
    pub state: PgConnInfo,
    pub odoo: PgConnInfo,
    pub slot: String,
    /// The tokens and the endpoints open without one (`[http]`); `None`: no token is
    /// configured, every read is open and actions are refused.
    pub token: Option<HttpTokens>,
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
    // The client's address is what the audit trail records of an HTTP action.
    axum::serve(listener, router(context).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Checks a read of `endpoint`; `Some` is the refusal to send.
fn refusal(ctx: &HttpContext, endpoint: HttpEndpoint, headers: &HeaderMap, peer: SocketAddr) -> Option<Response> {
    let denied = auth::read(ctx.token.as_ref(), endpoint, auth::bearer(headers)).err()?;
    if denied == Denied::Wrong {
        tracing::warn!(client = %peer, endpoint = endpoint.as_str(), "HTTP read refused: wrong token");
    }
    Some(denied.into_response())
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

async fn health(State(ctx): Ctx, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    if let Some(refused) = refusal(&ctx, HttpEndpoint::Health, &headers, peer) {
        return refused;
    }
    Json(json!({"status": "alive"})).into_response()
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

async fn ready(State(ctx): Ctx, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    if let Some(refused) = refusal(&ctx, HttpEndpoint::Ready, &headers, peer) {
        return refused;
    }
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

async fn metrics(State(ctx): Ctx, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    if let Some(refused) = refusal(&ctx, HttpEndpoint::Metrics, &headers, peer) {
        return refused;
    }
    let scraped = scrape(&ctx).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], ctx.metrics.render(&scraped)).into_response()
}

async fn overview(State(ctx): Ctx, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    if let Some(refused) = refusal(&ctx, HttpEndpoint::Api, &headers, peer) {
        return refused;
    }
    let scraped = scrape(&ctx).await;
    let mut body = json!({
        "ready": not_ready(&ctx).is_empty(),
        "not_ready": not_ready(&ctx),
        "replication_lag_bytes": scraped.replication_lag_bytes,
        "legacy_lag_seconds": ctx.metrics.legacy_lag(),
        "parked": scraped.parked,
        "dlq_open": scraped.dlq_open,
        "actions_enabled": ctx.token.as_ref().is_some_and(HttpTokens::can_act),
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
    if let Ok(rows) = audit::recent_actions::<String>(&state, 20).await {
        body["operator_actions"] = rows
            .into_iter()
            .map(|a| {
                json!({"id": a.id, "at": a.at, "action": a.action, "via": a.via, "client": a.client,
                       "token": a.token, "dead_letters": a.dead_letters, "touched": a.touched,
                       "outcome": a.outcome, "detail": a.detail})
            })
            .collect();
    }
    (StatusCode::OK, Json(body)).into_response()
}

async fn act(ctx: &HttpContext, headers: &HeaderMap, peer: SocketAddr, id: i64, action: Action) -> Response {
    let token = match auth::act(ctx.token.as_ref(), auth::bearer(headers)) {
        Ok(name) => name,
        Err(denied) => {
            tracing::warn!(client = %peer, dead_letter = id, action = action.as_str(), reason = %denied.message(), "operator action refused");
            return denied.into_response();
        }
    };
    let unavailable = |e: &dyn std::fmt::Display| {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"error": format!("control state: {e}")}))).into_response()
    };
    let mut store = match crate::state::StateStore::connect(&ctx.state).await {
        Ok(store) => store,
        Err(e) => return unavailable(&e),
    };
    let actor = Actor { via: Via::Http, client: peer.to_string(), token: Some(token) };
    let outcome = match store.act_on_dead_letters(action, Target::One(id), &actor).await {
        Ok(outcome) => outcome,
        Err(e) => return unavailable(&e),
    };
    tracing::info!(dead_letter = id, action = action.as_str(), client = %actor.client, token = actor.token.as_deref().unwrap_or_default(), audit = outcome.audit_id, refused = outcome.refused.is_some(), "operator action from the HTTP endpoint");
    // The archive of this process (`run`'s), when it has one.
    if let Some((dir, mappings)) = crate::archive::operator::opened() {
        if let Err(error) = super::audit::archive_pending(&store, &dir, mappings).await {
            tracing::error!(%error, audit = outcome.audit_id, "the operator action is recorded in millrace.audit but not in the archive yet; the next action archives it");
        }
    }
    let status = match action {
        Action::Retry => "retry",
        Action::Discard => "discarded",
    };
    match outcome.refused {
        None => (StatusCode::OK, Json(json!({"ok": true, "id": id, "status": status, "audit": outcome.audit_id})))
            .into_response(),
        Some(Refusal::Missing) => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("dead letter {id} does not exist"), "audit": outcome.audit_id})),
        )
            .into_response(),
        Some(Refusal::Closed { status, resolution }) => {
            let how = resolution.map(|r| format!(": {r}")).unwrap_or_default();
            let error = format!("dead letter {id} is {status}{how}; only open dead letters can be acted on");
            (StatusCode::CONFLICT, Json(json!({"error": error, "audit": outcome.audit_id}))).into_response()
        }
    }
}

async fn retry(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    act(&ctx, &headers, peer, id, Action::Retry).await
}

async fn discard(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    act(&ctx, &headers, peer, id, Action::Discard).await
}
