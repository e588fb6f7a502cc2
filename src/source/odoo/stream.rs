//! `OdooStream`: committed row changes from Odoo's database, in commit order, across reconnects.
//!
//! It drives a [`ReplicationConnection`], decodes pgoutput, spills streamed in-progress
//! transactions to disk until they commit, reconnects with backoff when the connection or the
//! server goes away, and reports as flushed only what the caller acknowledged. After a reconnect
//! the server replays from the slot's confirmed position; transactions (and the delivered part of
//! a transaction) already handed out in this process are skipped, so nothing is delivered twice.

use std::collections::HashMap;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::pgoutput::{self, LogicalMessage, ProtocolError, RelationCache, RelationInfo, TupleData};
use super::replication::{ReplicationConnection, ReplicationError, ReplicationEvent};
use super::spill::{SpillFile, SpillReader};
use super::tuple::decode_tuple;
use super::types::CATALOG_TYPES_SQL;
use crate::config::PgConnInfo;
use crate::model::{Lsn, Op, Position, Row, RowChange, TableName, Value};

/// Primary key columns, in key order, of the tables under `REPLICA IDENTITY FULL`.
const FULL_IDENTITY_PRIMARY_KEYS_SQL: &str = "SELECT i.indrelid, a.attname \
     FROM pg_catalog.pg_index i \
     JOIN pg_catalog.pg_class c ON c.oid = i.indrelid \
     CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) \
     JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
     WHERE i.indisprimary AND c.relreplident = 'f' \
     ORDER BY i.indrelid, k.n";

/// How to reach the slot.
#[derive(Debug, Clone)]
pub struct OdooStreamConfig {
    pub conn: PgConnInfo,
    pub slot: String,
    pub publication: String,
    /// Ask for protocol v2 streaming of large in-progress transactions (PostgreSQL 14+).
    pub streaming: bool,
    /// How often a standby status update is sent when the server does not ask for one.
    pub status_interval: Duration,
    /// Where streamed transactions are spilled; the system temp dir when `None`.
    pub spill_dir: Option<PathBuf>,
    /// Hand out an update that changes the row's key as a [`Op::Delete`] of the old key followed
    /// by an [`Op::Insert`] of the new row, as Debezium does (`tail`). The key is the replica
    /// identity, or under `REPLICA IDENTITY FULL` the primary key as the catalog has it when the
    /// stream connects.
    pub split_key_changes: bool,
    /// In an old-key image (`REPLICA IDENTITY DEFAULT` or `USING INDEX`), give the columns
    /// PostgreSQL did not send (every column outside the key) as [`crate::model::Value::Unchanged`]
    /// instead of [`crate::model::Value::Null`], so that "not sent" is not mistaken for NULL.
    pub unsent_as_unchanged: bool,
    /// Told each time a lost connection is re-established (the service counts them).
    pub on_reconnect: OnReconnect,
}

/// A callback run after each reconnection of the stream.
#[derive(Clone, Default)]
pub struct OnReconnect(Option<Arc<dyn Fn() + Send + Sync>>);

impl OnReconnect {
    pub fn new(callback: impl Fn() + Send + Sync + 'static) -> Self {
        OnReconnect(Some(Arc::new(callback)))
    }

    fn call(&self) {
        if let Some(callback) = &self.0 {
            callback();
        }
    }
}

impl std::fmt::Debug for OnReconnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "OnReconnect(callback)" } else { "OnReconnect(none)" })
    }
}

impl OdooStreamConfig {
    pub fn new(conn: PgConnInfo, slot: &str, publication: &str) -> Self {
        OdooStreamConfig {
            conn,
            slot: slot.to_string(),
            publication: publication.to_string(),
            streaming: true,
            status_interval: Duration::from_secs(10),
            spill_dir: None,
            split_key_changes: false,
            unsent_as_unchanged: false,
            on_reconnect: OnReconnect::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OdooSourceError {
    #[error(transparent)]
    Replication(#[from] ReplicationError),
    #[error("undecodable pgoutput message at {lsn}: {source}")]
    Protocol { lsn: Lsn, source: ProtocolError },
    #[error("change for unknown relation oid {oid} at {lsn}: the server sent no Relation message for it")]
    UnknownRelation { oid: u32, lsn: Lsn },
    #[error("spill file for streamed transaction {xid}: {source}")]
    Spill { xid: u32, source: std::io::Error },
}

impl OdooSourceError {
    /// The slot does not exist (SQLSTATE 42704): `millrace setup` has not been run.
    pub fn is_missing_slot(&self) -> bool {
        matches!(self, OdooSourceError::Replication(ReplicationError::Server { error, .. }) if error.code == "42704")
    }
}

/// A row the decoder could not read. The rest of the transaction still flows.
#[derive(Debug, Clone)]
pub struct BadRow {
    pub table: TableName,
    pub op: Op,
    pub lsn: Lsn,
    pub xid: Option<u32>,
    pub reason: String,
}

/// What the stream hands out.
#[derive(Debug)]
pub enum StreamItem {
    Change(RowChange),
    BadRow(BadRow),
    /// Every change of the transaction has been handed out; acknowledge `end_lsn` once they are
    /// handled.
    Commit {
        xid: Option<u32>,
        commit_lsn: Lsn,
        end_lsn: Lsn,
        commit_ts: DateTime<Utc>,
    },
    /// The server has sent everything written before the stream was opened (see
    /// [`OdooStream::caught_up_target`]).
    CaughtUp,
}

/// The transaction whose changes are being handed out.
struct Txn {
    xid: Option<u32>,
    commit_lsn: Lsn,
    commit_ts: DateTime<Utc>,
    origin: Option<String>,
    /// Changes handed out so far (to skip them if the server sends the transaction again).
    delivered: u64,
    /// Changes still to skip because an earlier connection already handed them out.
    skip: u64,
}

pub struct OdooStream {
    config: OdooStreamConfig,
    conn: Option<ReplicationConnection>,
    relations: RelationCache,
    spill_dir: PathBuf,
    /// Streamed transactions not yet committed, by top-level xid.
    spills: HashMap<u32, SpillFile>,
    /// Between Stream Start and Stream Stop: the xid being streamed.
    streaming_xid: Option<u32>,
    /// A committed streamed transaction being read back, with its end position.
    replay: Option<(SpillReader, Lsn)>,
    txn: Option<Txn>,
    /// Commit LSN of the last transaction handed out completely.
    last_delivered: Lsn,
    /// Its end LSN: once acknowledged, nothing handed out is waiting.
    last_delivered_end: Lsn,
    /// A transaction cut short by a lost connection: its commit LSN and how many changes went out.
    partial: Option<(Lsn, u64)>,
    /// What the caller has acknowledged; shared so that another task can acknowledge while this
    /// one waits for the server (see [`OdooStream::ack_handle`]).
    acked: Arc<AtomicU64>,
    received: Lsn,
    target: Lsn,
    caught_up_sent: bool,
    /// Changes decoded from one message that names several tables (Truncate).
    pending: VecDeque<StreamItem>,
    next_status: Instant,
    reconnects: u64,
}

impl OdooStream {
    /// Connects and starts streaming from the slot's confirmed position.
    pub async fn open(config: OdooStreamConfig) -> Result<OdooStream, OdooSourceError> {
        let spill_dir = config.spill_dir.clone().unwrap_or_else(std::env::temp_dir);
        let mut stream = OdooStream {
            next_status: Instant::now() + config.status_interval,
            config,
            conn: None,
            relations: RelationCache::default(),
            spill_dir,
            spills: HashMap::new(),
            streaming_xid: None,
            replay: None,
            txn: None,
            last_delivered: Lsn::ZERO,
            last_delivered_end: Lsn::ZERO,
            partial: None,
            acked: Arc::new(AtomicU64::new(0)),
            received: Lsn::ZERO,
            target: Lsn::ZERO,
            caught_up_sent: false,
            pending: VecDeque::new(),
            reconnects: 0,
        };
        let (conn, xlogpos) = stream.start().await?;
        stream.target = xlogpos;
        stream.conn = Some(conn);
        Ok(stream)
    }

    /// The server's WAL position when the stream was opened: every transaction committed before
    /// the stream opened ends at or before it.
    pub fn caught_up_target(&self) -> Lsn {
        self.target
    }

    /// How many times the connection was re-established.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// Marks everything up to `end_lsn` as handled: the slot may advance to it.
    pub fn ack(&mut self, end_lsn: Lsn) {
        self.acked.fetch_max(end_lsn.0, Ordering::SeqCst);
    }

    /// A handle through which another task acknowledges positions: the stream reads it each time
    /// it reports to the server.
    pub fn ack_handle(&self) -> Arc<AtomicU64> {
        self.acked.clone()
    }

    fn acked(&self) -> Lsn {
        Lsn(self.acked.load(Ordering::SeqCst))
    }

    async fn start(&mut self) -> Result<(ReplicationConnection, Lsn), ReplicationError> {
        let mut conn = ReplicationConnection::connect(&self.config.conn).await?;
        let identity = conn.identify_system().await?;
        // The insert position, not IDENTIFY_SYSTEM's flush position: with synchronous_commit=off a
        // transaction reported as committed may not be flushed yet, and it still counts as "before".
        let current = conn.current_wal_lsn().await?.max(identity.xlogpos);
        let streaming = self.config.streaming && conn.server_major_version().is_some_and(|v| v >= 14);
        // Domains and arrays of user-defined types (Type messages cover only a domain's base
        // type), and the primary keys that decide a key change under REPLICA IDENTITY FULL.
        let types = conn.simple_query(CATALOG_TYPES_SQL).await?;
        self.relations.load_catalog_types(&types);
        if self.config.split_key_changes {
            let keys = conn.simple_query(FULL_IDENTITY_PRIMARY_KEYS_SQL).await?;
            self.relations.load_primary_keys(&keys);
        }
        let mut options = vec![
            ("proto_version", if streaming { "2" } else { "1" }.to_string()),
            ("publication_names", format!("\"{}\"", self.config.publication.replace('"', "\"\""))),
        ];
        if streaming {
            options.push(("streaming", "on".to_string()));
        }
        conn.start_logical_replication(&self.config.slot, self.acked(), &options).await?;
        tracing::info!(
            slot = %self.config.slot,
            publication = %self.config.publication,
            from = %self.acked(),
            server_wal = %current,
            streaming,
            "replication started"
        );
        Ok((conn, current))
    }

    /// Replaces a lost connection, waiting with exponential backoff between attempts.
    async fn reconnect(&mut self, cause: ReplicationError) -> Result<(), OdooSourceError> {
        self.conn = None;
        // The server re-sends in-progress streamed transactions from their start.
        self.spills.clear();
        self.streaming_xid = None;
        if let Some(txn) = self.txn.take() {
            self.partial = Some((txn.commit_lsn, txn.delivered));
        }
        let mut delay = Duration::from_millis(200);
        let mut error = cause;
        loop {
            tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "replication connection lost; reconnecting");
            tokio::time::sleep(delay).await;
            match self.start().await {
                Ok((conn, _)) => {
                    self.conn = Some(conn);
                    self.reconnects += 1;
                    self.config.on_reconnect.call();
                    tracing::info!(reconnects = self.reconnects, "replication connection re-established");
                    return Ok(());
                }
                Err(e) if e.is_transient() => {
                    error = e;
                    delay = (delay * 2).min(Duration::from_secs(15));
                }
                // A password read from a file may be in the middle of a rotation (changed on
                // the server, the file not rewritten yet): the next attempt reads the file again.
                // Only here, not at start, where a wrong password is a configuration error.
                Err(e) if e.is_auth_failure() && self.rotating_password() => {
                    error = e;
                    delay = (delay * 2).min(Duration::from_secs(15));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The password comes from a file, which may be rewritten to rotate it.
    fn rotating_password(&self) -> bool {
        self.config.conn.password.as_ref().is_some_and(|p| p.file().is_some())
    }

    /// The next item. Waits for the server when nothing is buffered.
    pub async fn next(&mut self) -> Result<StreamItem, OdooSourceError> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Ok(item);
            }
            if let Some(item) = self.next_replayed()? {
                return Ok(item);
            }
            let event = match self.read_event().await {
                Ok(event) => event,
                Err(e) if e.is_transient() => {
                    self.reconnect(e).await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            match event {
                ReplicationEvent::XLogData { wal_start, wal_end, data } => {
                    tracing::trace!(%wal_start, %wal_end, len = data.len(), kind = data.first().copied().unwrap_or(0), "xlogdata");
                    self.received = self.received.max(wal_end);
                    if let Some(item) = self.handle_message(data, wal_start)? {
                        return Ok(item);
                    }
                }
                ReplicationEvent::Keepalive { wal_end, reply_requested } => {
                    tracing::trace!(%wal_end, reply_requested, open_txn = self.txn.is_some(), "keepalive");
                    self.received = self.received.max(wal_end);
                    if reply_requested {
                        self.send_status(false).await?;
                    }
                    if !self.caught_up_sent && wal_end >= self.target && self.txn.is_none() && self.spills.is_empty() {
                        self.caught_up_sent = true;
                        return Ok(StreamItem::CaughtUp);
                    }
                }
                ReplicationEvent::End => {
                    let target = self.config.conn.to_string();
                    self.reconnect(ReplicationError::Closed { target }).await?;
                }
            }
        }
    }

    /// Reads one event, sending a status update first when one is due.
    async fn read_event(&mut self) -> Result<ReplicationEvent, ReplicationError> {
        loop {
            if Instant::now() >= self.next_status {
                self.send_status(false).await?;
            }
            let Some(conn) = self.conn.as_mut() else {
                return Err(ReplicationError::Closed { target: self.config.conn.to_string() });
            };
            // The hot path: the next message is usually already buffered, and arming a timer
            // for every message would cost a syscall each.
            if let Some(event) = conn.buffered_event()? {
                return Ok(event);
            }
            let deadline = tokio::time::Instant::from_std(self.next_status);
            tokio::select! {
                event = conn.next_event() => return event,
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Tells the server where we are.
    ///
    /// - flush (what the slot may advance to): nothing (an invalid position) until something is
    ///   acknowledged; then the acknowledged position, or — when every transaction handed out is
    ///   acknowledged and none is in progress — everything received, since no change lies in
    ///   between (PostgreSQL's own apply worker does the same).
    /// - write: the flush position until the stream has caught up, so that the server, seeing us
    ///   behind, sends a keepalive with its position as soon as it is idle (that is how
    ///   [`StreamItem::CaughtUp`] is detected without waiting); afterwards everything received,
    ///   so a server shutting down sees us caught up and need not wait for us.
    async fn send_status(&mut self, reply_requested: bool) -> Result<(), ReplicationError> {
        self.next_status = Instant::now() + self.config.status_interval;
        let idle = self.txn.is_none()
            && self.spills.is_empty()
            && self.replay.is_none()
            && self.pending.is_empty()
            && self.streaming_xid.is_none();
        let acked = self.acked();
        let flush = if acked == Lsn::ZERO {
            Lsn::ZERO
        } else if idle && acked >= self.last_delivered_end {
            acked.max(self.received)
        } else {
            acked
        };
        let write = if self.caught_up_sent && idle { self.received.max(flush) } else { flush };
        match self.conn.as_mut() {
            Some(conn) => conn.send_status(write, flush, flush, reply_requested).await,
            None => Ok(()),
        }
    }

    /// Reports to the server now, without reading from it: while the consumer is too busy to
    /// take the next item, this keeps the server from ending the connection for silence
    /// (`wal_sender_timeout`), since a status update from the client counts as a reply.
    pub async fn keep_alive(&mut self) -> Result<(), OdooSourceError> {
        Ok(self.send_status(false).await?)
    }

    /// How often a status update is due.
    pub fn status_interval(&self) -> Duration {
        self.config.status_interval
    }

    /// Sends the final status update and closes the connection cleanly.
    pub async fn close(mut self) -> Result<(), OdooSourceError> {
        self.send_status(false).await?;
        if let Some(conn) = self.conn.take() {
            conn.finish().await?;
        }
        Ok(())
    }

    fn handle_message(&mut self, data: Bytes, wal_start: Lsn) -> Result<Option<StreamItem>, OdooSourceError> {
        let in_stream = self.streaming_xid.is_some();
        // Only a streamed message is kept raw (for its spill file).
        let raw = if in_stream { data.clone() } else { Bytes::new() };
        let message =
            pgoutput::parse(data, in_stream).map_err(|source| OdooSourceError::Protocol { lsn: wal_start, source })?;
        if let Some(xid) = self.streaming_xid {
            return self.handle_streamed(xid, message, &raw);
        }
        match message {
            LogicalMessage::Begin { final_lsn, commit_ts, xid } => {
                self.begin(Some(xid), final_lsn, commit_ts);
                Ok(None)
            }
            LogicalMessage::Commit { commit_lsn, end_lsn, commit_ts, .. } => {
                Ok(self.commit(commit_lsn, end_lsn, commit_ts))
            }
            LogicalMessage::StreamStart { xid, .. } => {
                self.streaming_xid = Some(xid);
                if !self.spills.contains_key(&xid) {
                    let spill =
                        SpillFile::create(&self.spill_dir).map_err(|source| OdooSourceError::Spill { xid, source })?;
                    self.spills.insert(xid, spill);
                }
                Ok(None)
            }
            LogicalMessage::StreamCommit { xid, commit_lsn, end_lsn, commit_ts, .. } => {
                let Some(spill) = self.spills.remove(&xid) else {
                    return Ok(None);
                };
                let origin = spill.origin.clone();
                let reader = spill.into_reader().map_err(|source| OdooSourceError::Spill { xid, source })?;
                self.begin(Some(xid), commit_lsn, commit_ts);
                if let Some(txn) = self.txn.as_mut() {
                    txn.origin = origin;
                }
                self.replay = Some((reader, end_lsn));
                Ok(None)
            }
            LogicalMessage::StreamAbort { xid, subxid } => {
                if xid == subxid {
                    self.spills.remove(&xid);
                } else if let Some(spill) = self.spills.get_mut(&xid) {
                    spill.aborted_subxids.insert(subxid);
                }
                Ok(None)
            }
            other => self.row_message(other, wal_start),
        }
    }

    /// A message between Stream Start and Stream Stop: kept on disk until the transaction commits.
    fn handle_streamed(
        &mut self,
        xid: u32,
        message: LogicalMessage,
        raw: &[u8],
    ) -> Result<Option<StreamItem>, OdooSourceError> {
        match message {
            LogicalMessage::StreamStop => {
                self.streaming_xid = None;
                return Ok(None);
            }
            LogicalMessage::Relation(relation) => {
                // Later messages of other transactions may need it before this one commits.
                self.relations.insert(relation);
            }
            LogicalMessage::Type { oid, ref namespace, ref name, .. } => {
                self.relations.announce_type(oid, namespace, name);
            }
            LogicalMessage::Origin { name, .. } => {
                if let Some(spill) = self.spills.get_mut(&xid) {
                    spill.origin = Some(name);
                }
                return Ok(None);
            }
            _ => {}
        }
        if let Some(spill) = self.spills.get_mut(&xid) {
            spill.append(raw).map_err(|source| OdooSourceError::Spill { xid, source })?;
        }
        Ok(None)
    }

    /// The next change of a committed streamed transaction being read back from its spill file.
    fn next_replayed(&mut self) -> Result<Option<StreamItem>, OdooSourceError> {
        loop {
            let Some((reader, end_lsn)) = self.replay.as_mut() else {
                return Ok(None);
            };
            let end_lsn = *end_lsn;
            let xid = self.txn.as_ref().and_then(|t| t.xid).unwrap_or(0);
            let next = reader.next_message().map_err(|source| OdooSourceError::Spill { xid, source })?;
            let Some(raw) = next else {
                self.replay = None;
                let (commit_lsn, commit_ts) = match &self.txn {
                    Some(txn) => (txn.commit_lsn, txn.commit_ts),
                    None => return Ok(None),
                };
                return Ok(self.commit(commit_lsn, end_lsn, commit_ts));
            };
            let message =
                pgoutput::parse(raw, true).map_err(|source| OdooSourceError::Protocol { lsn: end_lsn, source })?;
            if let Some(sub) = message_xid(&message) {
                if self.replay.as_ref().is_some_and(|(r, _)| r.aborted_subxids.contains(&sub)) {
                    continue;
                }
            }
            if let Some(item) = self.row_message(message, end_lsn)? {
                return Ok(Some(item));
            }
        }
    }

    fn begin(&mut self, xid: Option<u32>, commit_lsn: Lsn, commit_ts: DateTime<Utc>) {
        let skip = match self.partial {
            Some((lsn, delivered)) if lsn == commit_lsn => delivered,
            _ => 0,
        };
        self.txn = Some(Txn { xid, commit_lsn, commit_ts, origin: None, delivered: skip, skip });
    }

    fn commit(&mut self, commit_lsn: Lsn, end_lsn: Lsn, commit_ts: DateTime<Utc>) -> Option<StreamItem> {
        let txn = self.txn.take();
        self.partial = None;
        if commit_lsn <= self.last_delivered {
            // Already handed out before a reconnect.
            return None;
        }
        self.last_delivered = commit_lsn;
        self.last_delivered_end = end_lsn;
        Some(StreamItem::Commit { xid: txn.and_then(|t| t.xid), commit_lsn, end_lsn, commit_ts })
    }

    /// Relation, Type, Origin and row messages, inside a transaction.
    fn row_message(&mut self, message: LogicalMessage, lsn: Lsn) -> Result<Option<StreamItem>, OdooSourceError> {
        let (oid, op, key, old, new) = match message {
            LogicalMessage::Relation(relation) => {
                self.relations.insert(relation);
                return Ok(None);
            }
            LogicalMessage::Type { oid, namespace, name, .. } => {
                self.relations.announce_type(oid, &namespace, &name);
                return Ok(None);
            }
            LogicalMessage::Origin { name, .. } => {
                if let Some(txn) = self.txn.as_mut() {
                    txn.origin = Some(name);
                }
                return Ok(None);
            }
            LogicalMessage::Insert { relation_oid, new, .. } => (relation_oid, Op::Insert, None, None, Some(new)),
            LogicalMessage::Update { relation_oid, key, old, new, .. } => {
                (relation_oid, Op::Update, key, old, Some(new))
            }
            LogicalMessage::Delete { relation_oid, key, old, .. } => (relation_oid, Op::Delete, key, old, None),
            LogicalMessage::Truncate { relation_oids, .. } => return Ok(self.truncate(&relation_oids)),
            _ => return Ok(None),
        };
        let Some(txn) = self.txn.as_mut() else {
            return Ok(None);
        };
        if txn.commit_lsn <= self.last_delivered {
            return Ok(None);
        }
        if txn.skip > 0 {
            txn.skip -= 1;
            return Ok(None);
        }
        txn.delivered += 1;
        let relation = self.relations.get(oid).ok_or(OdooSourceError::UnknownRelation { oid, lsn })?;
        let table = relation.table().clone();
        let decode = |tuple: Option<TupleData>| -> Result<Option<Row>, String> {
            tuple.map(|t| decode_tuple(relation, &t).map_err(|e| e.to_string())).transpose()
        };
        let key_only = key.is_some() && old.is_none();
        let mut before = match decode(old.or(key)) {
            Ok(row) => row,
            Err(reason) => return Ok(Some(self.bad_row(table, op, reason))),
        };
        let after = match decode(new) {
            Ok(row) => row,
            Err(reason) => return Ok(Some(self.bad_row(table, op, reason))),
        };
        if key_only && self.config.unsent_as_unchanged {
            if let Some(row) = before.as_mut() {
                mark_unsent(relation, row);
            }
        }
        let key_changed = self.config.split_key_changes
            && op == Op::Update
            && matches!((&before, &after), (Some(b), Some(a)) if key_changed(relation, b, a));
        let Some(txn) = self.txn.as_ref() else {
            return Ok(None);
        };
        let change = |op, before, after| RowChange {
            table: table.clone(),
            op,
            before,
            after,
            position: Position::Lsn(txn.commit_lsn),
            commit_ts: Some(txn.commit_ts),
            xid: txn.xid,
            origin: txn.origin.clone(),
        };
        if key_changed {
            // The old key goes, the new row comes: a consumer keyed by the primary key sees the
            // old key deleted rather than an update to a key it never had.
            let insert = change(Op::Insert, None, after);
            let delete = change(Op::Delete, before, None);
            self.pending.push_back(StreamItem::Change(insert));
            return Ok(Some(StreamItem::Change(delete)));
        }
        Ok(Some(StreamItem::Change(change(op, before, after))))
    }

    /// One Truncate message can name several tables; each becomes its own change.
    fn truncate(&mut self, oids: &[u32]) -> Option<StreamItem> {
        for oid in oids {
            let table = match self.relations.get(*oid) {
                Some(relation) => relation.table().clone(),
                None => TableName::new("", format!("relation oid {oid}")),
            };
            let Some(txn) = self.txn.as_mut() else { break };
            if txn.commit_lsn <= self.last_delivered {
                break;
            }
            if txn.skip > 0 {
                txn.skip -= 1;
                continue;
            }
            txn.delivered += 1;
            self.pending.push_back(StreamItem::Change(RowChange {
                table,
                op: Op::Truncate,
                before: None,
                after: None,
                position: Position::Lsn(txn.commit_lsn),
                commit_ts: Some(txn.commit_ts),
                xid: txn.xid,
                origin: txn.origin.clone(),
            }));
        }
        self.pending.pop_front()
    }

    fn bad_row(&self, table: TableName, op: Op, reason: String) -> StreamItem {
        let (lsn, xid) = self.txn.as_ref().map(|t| (t.commit_lsn, t.xid)).unwrap_or((Lsn::ZERO, None));
        StreamItem::BadRow(BadRow { table, op, lsn, xid, reason })
    }
}

/// In an old-key image every column outside the replica identity arrives as NULL although its
/// value was simply not sent: make that [`Value::Unchanged`].
fn mark_unsent(relation: &RelationInfo, row: &mut Row) {
    for (value, column) in row.values.iter_mut().zip(&relation.relation.columns) {
        if !column.is_key {
            *value = Value::Unchanged;
        }
    }
}

/// Whether an update's old and new images differ in a key column. A key column the new image
/// did not send (unchanged TOAST) did not change.
fn key_changed(relation: &RelationInfo, before: &Row, after: &Row) -> bool {
    let Some(key) = &relation.change_key else {
        return false;
    };
    key.iter().any(|&i| match (before.values.get(i), after.values.get(i)) {
        (Some(Value::Unchanged), _) | (_, Some(Value::Unchanged)) | (None, _) | (_, None) => false,
        (Some(Value::Float(b)), Some(Value::Float(a))) => b.to_bits() != a.to_bits(),
        (Some(b), Some(a)) => b != a,
    })
}

/// The (sub)transaction xid a streamed row message carries.
fn message_xid(message: &LogicalMessage) -> Option<u32> {
    match message {
        LogicalMessage::Insert { xid, .. }
        | LogicalMessage::Update { xid, .. }
        | LogicalMessage::Delete { xid, .. }
        | LogicalMessage::Truncate { xid, .. } => *xid,
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::source::odoo::pgoutput::{Relation, RelationColumn, ReplicaIdentity};
    use crate::source::odoo::types::oid;
    use crate::source::odoo::types::TypeRegistry;

    fn relation(identity: ReplicaIdentity, primary_key: Option<&[String]>) -> RelationInfo {
        let column =
            |is_key, name: &str, type_oid| RelationColumn { is_key, name: name.into(), type_oid, type_modifier: -1 };
        let full = identity == ReplicaIdentity::Full;
        RelationInfo::resolve(
            Relation {
                xid: None,
                oid: 16384,
                table: TableName::new("public", "t"),
                replica_identity: identity,
                columns: vec![
                    column(true, "id", oid::INT4),
                    column(full, "label", oid::TEXT),
                    column(full, "body", oid::TEXT),
                ],
            },
            &TypeRegistry::default(),
            primary_key,
        )
    }

    fn row(rel: &RelationInfo, values: Vec<Value>) -> Row {
        Row { columns: Arc::clone(&rel.column_names), values }
    }

    #[test]
    fn a_key_change_is_a_change_of_the_key_columns() {
        let rel = relation(ReplicaIdentity::Default, None);
        let old = row(&rel, vec![Value::Int(1), Value::Null, Value::Null]);
        let same = row(&rel, vec![Value::Int(1), Value::Text("x".into()), Value::Unchanged]);
        let moved = row(&rel, vec![Value::Int(2), Value::Text("x".into()), Value::Unchanged]);
        assert!(!key_changed(&rel, &old, &same));
        assert!(key_changed(&rel, &old, &moved));
        // Under FULL every column is flagged; only the primary key counts, and only when known.
        let text = |s: &str| Value::Text(s.into());
        let full = relation(ReplicaIdentity::Full, Some(&["id".to_string()]));
        let old = row(&full, vec![Value::Int(1), text("a"), text("b")]);
        assert!(!key_changed(&full, &old, &row(&full, vec![Value::Int(1), text("z"), Value::Unchanged])));
        assert!(key_changed(&full, &old, &row(&full, vec![Value::Int(2), text("a"), text("b")])));
        let unknown = relation(ReplicaIdentity::Full, None);
        assert!(!key_changed(&unknown, &old, &row(&unknown, vec![Value::Int(2), text("a"), text("b")])));
        let nothing = relation(ReplicaIdentity::Nothing, None);
        assert!(nothing.change_key.is_none());
    }

    #[test]
    fn columns_an_old_key_image_does_not_carry_are_unsent() {
        let rel = relation(ReplicaIdentity::Default, None);
        let mut old = row(&rel, vec![Value::Int(1), Value::Null, Value::Null]);
        mark_unsent(&rel, &mut old);
        assert_eq!(old.values, vec![Value::Int(1), Value::Unchanged, Value::Unchanged]);
    }
}
