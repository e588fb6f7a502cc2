//! Which of two processes of one role (`capture` or `apply` of a pipeline) is active: a lease
//! in JetStream's key-value store.
//!
//! The pipeline's bucket `millrace_lease_<pipeline>` keeps one revision per key (`capture`, `apply`) and drops it `[bus] lease_ttl` after
//! it was written. The active process writes its key again every third of that period, each
//! write conditional on the revision it wrote last (compare-and-set), so no two processes can
//! both think they renewed it. A standby tries to create the key every half second: it can only
//! once the key is gone, that is `lease_ttl` after the active one stopped renewing. An active
//! process that could not renew for two thirds of the period gives up its role before the key
//! can expire, so the two never overlap while clocks run at the same speed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{kv, stream};

use super::{Bus, BusError};

/// The pipeline's lease bucket: one per pipeline, so each keeps its own `lease_ttl`.
pub fn bucket_name(pipeline: &str) -> String {
    format!("millrace_lease_{pipeline}")
}

/// A lease held: renewed by a task of its own until dropped or lost.
pub struct Lease {
    lost: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// Set once the lease was lost: the role must stop now.
    pub fn lost_flag(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }

    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn bucket(bus: &Bus) -> Result<kv::Store, BusError> {
    let bucket = bucket_name(&bus.config.pipeline);
    if let Ok(store) = bus.js.get_key_value(&bucket).await {
        return Ok(store);
    }
    // The bucket's stream made here as the client library would make it: its own bucket
    // creation first asks for the account's limits, in a form NATS 2.9 (Debian 12's) does not
    // answer.
    let config = stream::Config {
        name: format!("KV_{bucket}"),
        description: Some("millrace: the active process of each role".into()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age: bus.config.lease_ttl,
        storage: stream::StorageType::File,
        num_replicas: bus.config.replicas,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    };
    let refused = |e: &dyn std::fmt::Display| BusError::Refused {
        what: format!("the lease bucket {bucket}"),
        message: e.to_string(),
    };
    bus.js.get_or_create_stream(config).await.map_err(|e| refused(&e))?;
    bus.js.get_key_value(&bucket).await.map_err(|e| refused(&e))
}

/// The holder's name written into the lease: host and process, for `status` and logs.
pub fn holder_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    format!("{host}:{}", std::process::id())
}

/// Waits until this process holds the lease `key` (the role), calling `standby`
/// once while another holds it; `None` when `stop` was set meanwhile.
pub async fn acquire(
    bus: &Bus,
    key: &str,
    stop: &AtomicBool,
    mut standby: impl FnMut(&str),
) -> Result<Option<Lease>, BusError> {
    let store = bucket(bus).await?;
    let me = holder_name();
    let mut told = false;
    loop {
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        match store.create(key, me.clone().into()).await {
            Ok(revision) => {
                tracing::info!(lease = key, holder = %me, "this process is now the active one");
                return Ok(Some(hold(store, key.to_string(), me, revision, bus.config.lease_ttl)));
            }
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {
                if !told {
                    let holder = match store.get(key).await {
                        Ok(Some(value)) => String::from_utf8_lossy(&value).into_owned(),
                        _ => "another process".into(),
                    };
                    tracing::info!(lease = key, %holder, "standby: another process is active");
                    standby(&holder);
                    told = true;
                }
            }
            Err(error) => {
                tracing::warn!(lease = key, %error, "cannot reach the lease; trying again");
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn hold(store: kv::Store, key: String, me: String, mut revision: u64, ttl: Duration) -> Lease {
    let lost = Arc::new(AtomicBool::new(false));
    let flag = lost.clone();
    let task = tokio::spawn(async move {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(ttl / 3).await;
            match store.update(&key, me.clone().into(), revision).await {
                Ok(next) => {
                    revision = next;
                    renewed = Instant::now();
                }
                Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    tracing::error!(lease = %key, "the lease was taken over by another process; stopping this one's work");
                    flag.store(true, Ordering::SeqCst);
                    return;
                }
                Err(error) => {
                    tracing::warn!(lease = %key, %error, "cannot renew the lease");
                    if renewed.elapsed() >= ttl * 2 / 3 {
                        tracing::error!(lease = %key, "the lease could not be renewed in time; stopping this one's work");
                        flag.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            }
        }
    });
    Lease { lost, task }
}

/// Gives the lease up (a clean stop): the standby need not wait for it to expire.
pub async fn release(bus: &Bus, key: &str, lease: Lease) {
    drop(lease);
    if let Ok(store) = bucket(bus).await {
        if let Err(error) = store.purge(key).await {
            tracing::debug!(lease = key, %error, "could not release the lease; it expires by itself");
        }
    }
}
