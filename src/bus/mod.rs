//! The bus between `capture` and `apply`: a NATS JetStream stream of canonical changes.
//!
//! One stream per pipeline (`[bus] stream`) holds the subjects `millrace.<pipeline>.<system>.<entity>`,
//! replicated `[bus] replicas` times, kept for `[bus] max_age` / `max_bytes`, de-duplicating by
//! `Nats-Msg-Id` within `[bus] duplicate_window`. `apply` reads it with one durable pull consumer;
//! any other system reads it with a durable consumer of its own (the README shows one).
//! [`lease`] decides which of two processes of the same role is active.

pub mod lease;
pub mod message;

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use crate::config::{BusAuth, BusConfig};

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The cluster cannot be reached or did not answer (an outage: retried).
    #[error("the NATS bus ({urls}) is unavailable: {message}")]
    Unavailable { urls: String, message: String },
    /// The cluster refused a setting (a stream or consumer that cannot be made as configured).
    #[error("the NATS bus refused {what}: {message}")]
    Refused { what: String, message: String },
}

/// A connection to the cluster and its JetStream context.
#[derive(Clone)]
pub struct Bus {
    pub config: BusConfig,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
}

impl Bus {
    /// Connects to `[bus] urls` with its credentials and TLS. NATS's client reconnects by itself
    /// after that, for ever; an operation made while it is away fails with a timeout.
    pub async fn connect(config: &BusConfig, name: &str) -> Result<Bus, BusError> {
        let urls = config.urls.join(",");
        let unavailable = |message: String| BusError::Unavailable { urls: urls.clone(), message };
        let mut options = match &config.auth {
            BusAuth::None => async_nats::ConnectOptions::new(),
            BusAuth::UserPassword { user, password } => async_nats::ConnectOptions::with_user_and_password(
                user.clone(),
                password.current().expose().to_string(),
            ),
            BusAuth::Token(token) => async_nats::ConnectOptions::with_token(token.current().expose().to_string()),
            BusAuth::NKey(seed) => async_nats::ConnectOptions::with_nkey(seed.current().expose().to_string()),
        };
        options = options
            .name(name)
            .connection_timeout(Duration::from_secs(3))
            .request_timeout(Some(Duration::from_secs(5)))
            .max_reconnects(None)
            // A fixed, short delay: an outage of the cluster costs at most this much after it ends.
            .reconnect_delay_callback(|attempt| Duration::from_millis((250 * attempt as u64).min(2_000)));
        if let Some(ca) = &config.tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        if !config.discover_servers {
            options = options.ignore_discovered_servers();
        }
        let addresses: Vec<async_nats::ServerAddr> = config
            .urls
            .iter()
            .map(|u| u.parse::<async_nats::ServerAddr>().map_err(|e| unavailable(format!("{u}: {e}"))))
            .collect::<Result<_, _>>()?;
        let client = options.connect(addresses).await.map_err(|e| unavailable(e.to_string()))?;
        let js = jetstream::new(client.clone());
        Ok(Bus { config: config.clone(), client, js })
    }

    fn unavailable(&self, message: impl std::fmt::Display) -> BusError {
        BusError::Unavailable { urls: self.config.urls.join(","), message: message.to_string() }
    }

    /// The pipeline's stream, created as configured if missing, its limits and replicas
    /// updated if they changed.
    pub async fn stream(&self) -> Result<stream::Stream, BusError> {
        let wanted = stream::Config {
            name: self.config.stream.clone(),
            subjects: vec![self.config.subjects()],
            max_age: self.config.max_age,
            max_bytes: self.config.max_bytes.unwrap_or(-1),
            num_replicas: self.config.replicas,
            duplicate_window: self.config.duplicate_window,
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::Limits,
            discard: stream::DiscardPolicy::Old,
            description: Some(format!("millrace canonical changes of pipeline {}", self.config.pipeline)),
            ..Default::default()
        };
        let mut found = self.js.get_or_create_stream(wanted.clone()).await.map_err(|e| self.unavailable(e))?;
        let info = found.info().await.map_err(|e| self.unavailable(e))?.config.clone();
        if info.max_age != wanted.max_age
            || info.max_bytes != wanted.max_bytes
            || info.duplicate_window != wanted.duplicate_window
            || info.num_replicas != wanted.num_replicas
        {
            self.js.update_stream(wanted).await.map_err(|e| BusError::Refused {
                what: format!("the limits of stream {}", self.config.stream),
                message: e.to_string(),
            })?;
        }
        Ok(found)
    }

    /// `apply`'s durable pull consumer: every subject of the pipeline, in stream order, an
    /// acknowledgement covering every message before it.
    pub fn apply_consumer_config(&self, start: Option<u64>) -> consumer::pull::Config {
        consumer::pull::Config {
            durable_name: Some(self.config.apply_consumer()),
            filter_subject: self.config.subjects(),
            ack_policy: consumer::AckPolicy::All,
            ack_wait: self.config.ack_wait,
            max_ack_pending: -1,
            max_deliver: -1,
            deliver_policy: match start {
                Some(start_sequence) => consumer::DeliverPolicy::ByStartSequence { start_sequence },
                None => consumer::DeliverPolicy::All,
            },
            num_replicas: self.config.replicas,
            description: Some("millrace apply".into()),
            ..Default::default()
        }
    }

    /// `apply`'s consumer. `resume`: the previous holder of the role may have died with
    /// messages delivered and not acknowledged, which JetStream would send again only after
    /// `ack_wait`, behind newer ones; the consumer is made again from its acknowledged floor,
    /// so they come first, now.
    pub async fn apply_consumer(&self, resume: bool) -> Result<consumer::PullConsumer, BusError> {
        let stream = self.stream().await?;
        let name = self.config.apply_consumer();
        let existing: Result<consumer::PullConsumer, _> = stream.get_consumer(&name).await;
        if let Ok(mut existing) = existing {
            let info = existing.info().await.map_err(|e| self.unavailable(e))?;
            if !resume || info.num_ack_pending == 0 {
                return Ok(existing);
            }
            let floor = info.ack_floor.stream_sequence;
            tracing::info!(
                consumer = %name,
                unacknowledged = info.num_ack_pending,
                from_sequence = floor + 1,
                "taking over: delivering again what the previous apply left unacknowledged"
            );
            stream.delete_consumer(&name).await.map_err(|e| self.unavailable(e))?;
            return stream
                .create_consumer(self.apply_consumer_config(Some(floor + 1)))
                .await
                .map_err(|e| BusError::Refused { what: format!("consumer {name}"), message: e.to_string() });
        }
        stream
            .create_consumer(self.apply_consumer_config(None))
            .await
            .map_err(|e| BusError::Refused { what: format!("consumer {name}"), message: e.to_string() })
    }
}
