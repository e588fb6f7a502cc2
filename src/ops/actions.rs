//! Reconcile actions asked for from the operator page: repair an entity, or apply the owner's
//! value of a field in conflict. They run in `run`'s process on connections of their own, on a
//! task `run` spawns (the ERP's ODBC connection cannot move between threads, and the HTTP
//! handlers must), so the endpoint hands each one over as a [`ReconcileJob`] and waits for its
//! reply.

use tokio::sync::{mpsc, oneshot};

use crate::state::audit::Actor;

/// What the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReconcileRequest {
    /// Compare the entity and apply the owner's version of every difference.
    Repair { entity: String },
    /// Apply the owner's value of `field` (every field when `None`) to the other side, for the
    /// records of `entity` with these keys (the conflicts the page groups).
    ApplyOwner { entity: String, field: Option<String>, keys: Vec<String> },
}

/// One request, who asked, and where the answer goes: a JSON report (what was compared and
/// written) or an error in words.
#[derive(Debug)]
pub struct ReconcileJob {
    pub request: ReconcileRequest,
    pub actor: Actor,
    pub reply: oneshot::Sender<Result<serde_json::Value, String>>,
}

/// The sending end the HTTP endpoint holds.
pub type ReconcileJobs = mpsc::Sender<ReconcileJob>;

/// Hands `request` to the task that runs reconcile actions and waits for its answer.
pub async fn ask(jobs: &ReconcileJobs, request: ReconcileRequest, actor: Actor) -> Result<serde_json::Value, String> {
    let (reply, answer) = oneshot::channel();
    jobs.send(ReconcileJob { request, actor, reply })
        .await
        .map_err(|_| "the reconcile task has stopped (is the service shutting down?)".to_string())?;
    answer.await.map_err(|_| "the reconcile task stopped before answering".to_string())?
}
