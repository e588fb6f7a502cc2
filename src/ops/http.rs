//! The HTTP endpoint of `millrace run`: `/metrics` (Prometheus), `/health`, `/ready`, the
//! operator page at `/` and its small JSON API. Operator actions (retry, discard a dead letter;
//! repair an entity, apply the owner's value of a field in conflict) need a token that may act;
//! reads need a token too once a read token is configured, except the endpoints left open
//! (`[http] open`; [`super::auth`]). Every action is recorded in the audit trail with the
//! client's address and the token's name (dead letters here, reconcile actions by the task that
//! runs them), and archived.
//!
//! Bound to 127.0.0.1 by default. Nothing served here carries a password or a token: the page
//! shows records and reasons, never connection strings.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::actions::{self, ReconcileRequest};
use super::auth::{self, Denied};
use super::metrics::{Metrics, Scraped};
use crate::config::{HttpEndpoint, HttpTokens, PgConnInfo};
use crate::state::audit::{self, Action, Actor, Refusal, Target, Via};
use crate::state::report;

/// Keys of a conflict group the overview lists (the page shows a few and the count).
const KEYS_SHOWN: i32 = 20;
/// Keys one "apply the owner's value" is asked for: the rest of a larger group stays outstanding
/// and is applied by the next click (the executor reads and writes each key).
const KEYS_PER_APPLY: i64 = 500;
/// Findings of each entity's last reconcile the overview carries (the control state keeps 200,
/// the details files all): the page refreshes every few seconds.
const FINDINGS_SHOWN: usize = 25;

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
    /// Where reconcile actions (repair, apply the owner's value) are handed to `run`'s reconcile
    /// task ([`super::actions`]); `None`: not available in this process.
    pub reconcile: Option<super::actions::ReconcileJobs>,
}

type Ctx = State<Arc<HttpContext>>;

pub fn router(context: Arc<HttpContext>) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/api/overview", get(overview))
        .route("/api/history", get(history))
        .route("/api/dlq/{id}/retry", post(retry))
        .route("/api/dlq/{id}/discard", post(discard))
        .route("/api/reconcile/{entity}/repair", post(repair))
        .route("/api/conflicts/apply-owner", post(apply_owner))
        .with_state(context)
}

/// Serves until `shutdown` completes. The history the page charts is sampled meanwhile, and
/// only meanwhile: it is served nowhere else.
pub async fn serve(
    listener: tokio::net::TcpListener,
    context: Arc<HttpContext>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _sampler = spawn_history_sampler(context.metrics.clone(), context.odoo.clone(), context.slot.clone());
    // The client's address is what the audit trail records of an HTTP action.
    axum::serve(listener, router(context).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Stops the history sampler when dropped.
pub struct SamplerGuard(tokio::task::JoinHandle<()>);

impl Drop for SamplerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Adds a sample to `metrics`' history now and then every [`HISTORY_EVERY`], with the
/// replication slot's lag read over a connection of its own to Odoo's database (made again
/// when it fails; a sample waits a few seconds at most for it). [`serve`] starts it; dropping
/// the guard stops it.
///
/// [`HISTORY_EVERY`]: super::history::HISTORY_EVERY
pub fn spawn_history_sampler(metrics: Arc<Metrics>, odoo: PgConnInfo, slot: String) -> SamplerGuard {
    SamplerGuard(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(super::history::HISTORY_EVERY);
        // After a stall (a suspended VM), one sample rather than a burst of them.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut client: Option<tokio_postgres::Client> = None;
        loop {
            ticks.tick().await;
            if client.as_ref().is_none_or(tokio_postgres::Client::is_closed) {
                client = connect(&odoo).await;
            }
            let bytes = match &client {
                Some(c) => match tokio::time::timeout(Duration::from_secs(3), slot_lag_bytes(c, &slot)).await {
                    Ok(Ok(bytes)) => bytes,
                    Ok(Err(error)) => {
                        tracing::debug!(%error, "history: reading the slot's lag failed; connecting again next time");
                        client = None;
                        None
                    }
                    Err(_) => {
                        client = None;
                        None
                    }
                },
                None => None,
            };
            metrics.sample_history(bytes);
        }
    }))
}

/// WAL between the server's position and the slot's confirmed flush (`None`: no such slot).
async fn slot_lag_bytes(odoo: &tokio_postgres::Client, slot: &str) -> Result<Option<i64>, tokio_postgres::Error> {
    let row = odoo
        .query_opt(
            "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await?;
    Ok(row.and_then(|r| r.get(0)))
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
        if let Ok(bytes) = slot_lag_bytes(&odoo, &ctx.slot).await {
            scraped.replication_lag_bytes = bytes;
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
        "reconcile_actions": ctx.reconcile.is_some(),
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
    match crate::state::reconcile::last_reports::<String>(&state).await {
        Ok(reports) => {
            body["reconcile"] = reports
                .into_iter()
                .map(|mut r| {
                    if let Some(findings) = r.findings.as_array_mut() {
                        findings.truncate(FINDINGS_SHOWN);
                    }
                    r.to_json()
                })
                .collect();
        }
        Err(error) => tracing::debug!(%error, "overview: no reconcile reports"),
    }
    match report::conflict_groups::<String>(&state, KEYS_SHOWN).await {
        Ok(groups) => {
            body["conflict_groups"] = groups
                .into_iter()
                .map(|g| {
                    json!({"entity": g.entity, "field": g.field, "conflicts": g.conflicts, "key_count": g.key_count,
                           "keys": g.keys, "sources": g.sources, "first_at": g.first_at, "last_at": g.last_at})
                })
                .collect();
        }
        Err(error) => tracing::debug!(%error, "overview: no conflict groups"),
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

/// The history the page charts (see [`super::history`]); read-guarded like the overview.
async fn history(State(ctx): Ctx, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Response {
    if let Some(refused) = refusal(&ctx, HttpEndpoint::Api, &headers, peer) {
        return refused;
    }
    Json(ctx.metrics.history_json()).into_response()
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

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// Who takes a reconcile action, or why not: the same check as a dead letter's retry (a token
/// that may act).
fn reconcile_actor(ctx: &HttpContext, headers: &HeaderMap, peer: SocketAddr, what: &str) -> Result<Actor, Denied> {
    let token = auth::act(ctx.token.as_ref(), auth::bearer(headers)).inspect_err(|denied| {
        tracing::warn!(client = %peer, action = what, reason = %denied.message(), "operator action refused");
    })?;
    Ok(Actor { via: Via::Http, client: peer.to_string(), token: Some(token) })
}

/// Hands `request` to `run`'s reconcile task and answers with its report. The task records the
/// audit row (and the action's outcome) itself: it alone knows what was written.
async fn ask_reconcile(jobs: &actions::ReconcileJobs, request: ReconcileRequest, actor: Actor, what: &str) -> Response {
    tracing::info!(action = what, client = %actor.client, token = actor.token.as_deref().unwrap_or_default(), "reconcile action from the HTTP endpoint");
    match actions::ask(jobs, request, actor).await {
        Ok(report) => Json(json!({"ok": true, "action": what, "report": report})).into_response(),
        Err(message) => {
            tracing::warn!(action = what, error = %message, "reconcile action failed");
            // The task answered, or stopped, without doing it: a fault behind the endpoint
            // (a side unreachable, the task gone), not in the request.
            error(StatusCode::BAD_GATEWAY, message)
        }
    }
}

/// The answer when this process has no reconcile task to hand an action to.
fn no_reconcile_task() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "reconcile actions are not available: this process runs no reconcile task")
}

/// `POST /api/reconcile/{entity}/repair`: compare the entity and apply the owner's version of
/// every difference.
async fn repair(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(entity): Path<String>,
    headers: HeaderMap,
) -> Response {
    let actor = match reconcile_actor(&ctx, &headers, peer, "repair") {
        Ok(actor) => actor,
        Err(denied) => return denied.into_response(),
    };
    let Some(jobs) = &ctx.reconcile else { return no_reconcile_task() };
    let what = format!("repair of {entity}");
    ask_reconcile(jobs, ReconcileRequest::Repair { entity }, actor, &what).await
}

/// The body of `POST /api/conflicts/apply-owner`: a group of the page's conflicts.
#[derive(Debug, serde::Deserialize)]
struct ApplyOwnerBody {
    entity: String,
    /// `null`: the group of conflicts that name no field.
    field: Option<String>,
}

/// `POST /api/conflicts/apply-owner` with `{"entity": …, "field": …}`: the owner's value of the
/// field, applied to the other side for the keys of that group's outstanding conflicts (at most
/// [`KEYS_PER_APPLY`]). Read from the control state here, not taken from the page: the page may
/// be minutes old, and an action covers what is outstanding when it is taken.
async fn apply_owner(
    State(ctx): Ctx,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The token first: a client that may not act learns nothing from its body being judged.
    let actor = match reconcile_actor(&ctx, &headers, peer, "apply_owner") {
        Ok(actor) => actor,
        Err(denied) => return denied.into_response(),
    };
    let Some(jobs) = &ctx.reconcile else { return no_reconcile_task() };
    let ApplyOwnerBody { entity, field } = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("expected {{\"entity\": …, \"field\": …}}: {e}")),
    };
    let Some(state) = connect(&ctx.state).await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the control state database is unreachable");
    };
    let group = match &field {
        Some(field) => format!("{entity}.{field}"),
        None => format!("{entity} (whole records)"),
    };
    let keys = match report::outstanding_conflict_keys(&state, &entity, field.as_deref(), KEYS_PER_APPLY).await {
        Ok(keys) => keys,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("control state: {e}")),
    };
    if keys.is_empty() {
        return error(StatusCode::CONFLICT, format!("no outstanding conflicts of {group}"));
    }
    let what = format!("apply the owner's value of {group} ({} keys)", keys.len());
    ask_reconcile(jobs, ReconcileRequest::ApplyOwner { entity, field, keys }, actor, &what).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{HttpToken, Secret, TokenRole};
    use crate::ops::actions::ReconcileJob;

    /// A context whose databases do not answer (nothing listens on port 1), with an operator and
    /// a reader token.
    fn context(reconcile: Option<actions::ReconcileJobs>) -> Arc<HttpContext> {
        let nowhere = PgConnInfo::parse("postgres://millrace@127.0.0.1:1/none?sslmode=disable").expect("conninfo");
        let token = |name: &str, value: &str, can| HttpToken { name: name.into(), secret: Secret::new(value), can };
        Arc::new(HttpContext {
            metrics: Arc::new(Metrics::default()),
            state: nowhere.clone(),
            odoo: nowhere,
            slot: "millrace".into(),
            token: Some(HttpTokens {
                tokens: vec![token("alice", "op-1", TokenRole::Act), token("reader", "rd-2", TokenRole::Read)],
                open: vec![HttpEndpoint::Health],
            }),
            legacy_stale_after: Duration::from_secs(10),
            reconcile,
        })
    }

    async fn start(context: Arc<HttpContext>) -> (String, tokio::sync::oneshot::Sender<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, context, async move {
            let _ = stopped.await;
        }));
        (base, stop)
    }

    async fn post(url: &str, token: &str, body: &str) -> (u16, serde_json::Value) {
        let mut request = reqwest::Client::new().post(url).body(body.to_string());
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("a response");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    #[tokio::test]
    async fn reconcile_actions_need_an_operator_token_and_a_reconcile_task_and_answer_with_its_reply() {
        // A stand-in for run's reconcile task: a repair of "item" works, any other fails.
        let (jobs, mut asked) = tokio::sync::mpsc::channel::<ReconcileJob>(4);
        tokio::spawn(async move {
            while let Some(job) = asked.recv().await {
                let answer = match &job.request {
                    ReconcileRequest::Repair { entity } if entity == "item" => {
                        Ok(json!({"repaired": 3, "by": job.actor.token}))
                    }
                    _ => Err("the ERP does not answer".to_string()),
                };
                let _ = job.reply.send(answer);
            }
        });
        let (base, _stop) = start(context(Some(jobs))).await;
        let repair = format!("{base}/api/reconcile/item/repair");
        assert_eq!(post(&repair, "", "").await.0, 401);
        let (status, body) = post(&repair, "rd-2", "").await;
        assert_eq!(status, 403, "{body}");
        assert!(body["error"].as_str().is_some_and(|e| e.contains("may only read")), "{body}");
        let (status, body) = post(&repair, "op-1", "").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["report"], json!({"repaired": 3, "by": "alice"}), "the task's reply, for alice: {body}");
        let (status, body) = post(&format!("{base}/api/reconcile/bom/repair"), "op-1", "").await;
        assert_eq!((status, body["error"].as_str()), (502, Some("the ERP does not answer")), "{body}");

        let apply = format!("{base}/api/conflicts/apply-owner");
        // The token is judged before the body.
        assert_eq!(post(&apply, "rd-2", "not json").await.0, 403);
        let (status, body) = post(&apply, "op-1", "not json").await;
        assert_eq!(status, 400, "{body}");
        // The group's keys come from the control state, which does not answer here.
        let (status, body) = post(&apply, "op-1", r#"{"entity": "item", "field": "description"}"#).await;
        assert_eq!(status, 503, "{body}");

        // No reconcile task in the process: said so, once the token may act.
        let (base, _stop) = start(context(None)).await;
        assert_eq!(post(&format!("{base}/api/reconcile/item/repair"), "rd-2", "").await.0, 403);
        let (status, body) = post(&format!("{base}/api/reconcile/item/repair"), "op-1", "").await;
        assert_eq!(status, 503, "{body}");
        assert!(body["error"].as_str().is_some_and(|e| e.contains("no reconcile task")), "{body}");
    }

    #[tokio::test]
    async fn the_history_is_read_like_the_overview_and_sampled_while_serving() {
        let ctx = context(None);
        let (base, _stop) = start(ctx.clone()).await;
        let client = reqwest::Client::new();
        let url = format!("{base}/api/history");
        assert_eq!(client.get(&url).send().await.expect("a response").status().as_u16(), 401);
        // The sampler takes its first sample as the endpoint starts (the slot's lag unknown here).
        let mut samples = 0;
        for _ in 0..50 {
            let body: serde_json::Value =
                client.get(&url).bearer_auth("rd-2").send().await.expect("a response").json().await.expect("JSON");
            samples = body["at"].as_array().map_or(0, Vec::len);
            if samples > 0 {
                assert_eq!(body["odoo_to_legacy"]["lag_bytes"][0], serde_json::Value::Null, "{body}");
                assert_eq!(body["every_seconds"], 10);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(samples, 1);
    }
}
