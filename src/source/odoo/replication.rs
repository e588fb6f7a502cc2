//! The replication connection: a PostgreSQL wire-protocol client in `replication=database` mode.
//!
//! tokio-postgres has no replication mode, so this speaks the protocol itself on top of
//! `postgres-protocol`'s message writers and SCRAM implementation: startup, authentication (trust,
//! cleartext, md5, SCRAM-SHA-256), TLS by `sslmode`, simple queries (IDENTIFY_SYSTEM, slot
//! commands), START_REPLICATION, and the CopyBoth stream of XLogData and keepalives with standby
//! status updates. It owns the socket; decoding pgoutput is `pgoutput.rs`'s job.

use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::frontend;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::{PgConnInfo, SslMode};
use crate::model::Lsn;
use crate::pg::{client_config, TlsError};

/// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01).
const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    #[error("cannot connect to {target}: {source}")]
    Connect { target: String, source: io::Error },
    #[error("connection to {target} timed out after {secs} s")]
    ConnectTimeout { target: String, secs: u64 },
    #[error("{target} does not accept TLS connections, and sslmode={mode} requires TLS")]
    TlsRefused { target: String, mode: &'static str },
    #[error("TLS setup for {target}: {source}")]
    TlsConfig { target: String, source: TlsError },
    #[error("TLS handshake with {target} failed: {source}")]
    TlsHandshake { target: String, source: io::Error },
    #[error("{target} asks for a password for user {user}, and none is configured (URL, MILLRACE_ODOO_PASSWORD or password_file)")]
    PasswordRequired { target: String, user: String },
    #[error("{target} asks for an authentication method millrace does not support ({method})")]
    UnsupportedAuth { target: String, method: String },
    #[error("SCRAM authentication with {target}: {source}")]
    Scram { target: String, source: io::Error },
    #[error("{target}: {error}")]
    Server { target: String, error: Box<ServerError> },
    #[error("connection to {target} lost: {source}")]
    Io { target: String, source: io::Error },
    #[error("connection to {target} closed by the server")]
    Closed { target: String },
    #[error("protocol error from {target}: {message}")]
    Protocol { target: String, message: String },
}

impl ReplicationError {
    /// Worth reconnecting for: the network or the server went away, as opposed to a refusal that
    /// will repeat (bad password, missing slot, TLS misconfiguration).
    pub fn is_transient(&self) -> bool {
        match self {
            ReplicationError::Connect { .. }
            | ReplicationError::ConnectTimeout { .. }
            | ReplicationError::Io { .. }
            | ReplicationError::Closed { .. } => true,
            // 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now (starting up),
            // 55006 object_in_use (slot still held by a walsender that has not noticed we left).
            ReplicationError::Server { error, .. } => {
                matches!(error.code.as_str(), "57P01" | "57P02" | "57P03" | "55006" | "53300")
            }
            _ => false,
        }
    }

    /// The server refused the credentials (28P01 invalid_password, 28000
    /// invalid_authorization_specification): while a password is being rotated, the file may
    /// not hold the new one yet.
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, ReplicationError::Server { error, .. } if matches!(error.code.as_str(), "28P01" | "28000"))
    }
}

/// An ErrorResponse: severity, SQLSTATE, message, and hint/detail when the server gave them.
#[derive(Debug, Clone)]
pub struct ServerError {
    pub severity: String,
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.severity, self.code, self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; hint: {hint}")?;
        }
        Ok(())
    }
}

/// The answer to IDENTIFY_SYSTEM.
#[derive(Debug, Clone)]
pub struct SystemIdentity {
    pub system_id: String,
    pub timeline: u32,
    /// The server's current WAL flush position.
    pub xlogpos: Lsn,
    pub dbname: Option<String>,
}

/// One message of the replication stream.
#[derive(Debug)]
pub enum ReplicationEvent {
    /// A pgoutput message, with the WAL positions the server attached to it.
    XLogData { wal_start: Lsn, wal_end: Lsn, data: Bytes },
    /// The server's heartbeat; `wal_end` is how far it has sent.
    Keepalive { wal_end: Lsn, reply_requested: bool },
    /// The server ended the stream (CopyDone).
    End,
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One replication connection.
pub struct ReplicationConnection {
    stream: Box<dyn Stream>,
    target: String,
    read_buf: BytesMut,
    write_buf: BytesMut,
    server_version: Option<String>,
    in_copy: bool,
    /// When the last read returned and how many bytes it brought (see [`COALESCE_BELOW`]).
    last_read: Option<(Instant, usize)>,
}

/// While streaming, a read that brought less than this, soon followed by the need for another,
/// means messages arrive one by one as fast as they are handled: the walsender sends each change
/// as its own message, and reading each on its own costs a wake-up and a read (two system calls
/// per change, about a third of the CPU `tail` spent). Then the next read waits [`COALESCE_WAIT`]
/// first, and takes what arrived meanwhile in one go. A stream that trickles (the last read
/// longer ago than twice that) is read at once: the wait only ever delays a change by about a
/// millisecond, and only while changes are arriving back to back.
const COALESCE_BELOW: usize = 64 * 1024;
const COALESCE_WAIT: Duration = Duration::from_millis(1);

/// Session settings that fix the text format of every value pgoutput sends.
const SESSION_OPTIONS: &str =
    "-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=postgres -c extra_float_digits=3 -c bytea_output=hex";

impl ReplicationConnection {
    /// Connects, negotiates TLS by `sslmode`, authenticates, and waits until the server is ready.
    pub async fn connect(info: &PgConnInfo) -> Result<ReplicationConnection, ReplicationError> {
        let target = info.to_string();
        let timeout = info.connect_timeout;
        match tokio::time::timeout(timeout, Self::connect_inner(info, target.clone())).await {
            Ok(result) => result,
            Err(_) => Err(ReplicationError::ConnectTimeout { target, secs: timeout.as_secs() }),
        }
    }

    async fn connect_inner(info: &PgConnInfo, target: String) -> Result<ReplicationConnection, ReplicationError> {
        let tcp = TcpStream::connect((info.host.as_str(), info.port))
            .await
            .map_err(|source| ReplicationError::Connect { target: target.clone(), source })?;
        tcp.set_nodelay(true).map_err(|source| ReplicationError::Connect { target: target.clone(), source })?;
        let stream = Self::negotiate_tls(tcp, info, &target).await?;
        let mut conn = ReplicationConnection {
            stream,
            target,
            read_buf: BytesMut::with_capacity(256 * 1024),
            write_buf: BytesMut::with_capacity(1024),
            server_version: None,
            in_copy: false,
            last_read: None,
        };
        conn.startup(info).await?;
        Ok(conn)
    }

    async fn negotiate_tls(
        mut tcp: TcpStream,
        info: &PgConnInfo,
        target: &str,
    ) -> Result<Box<dyn Stream>, ReplicationError> {
        if info.sslmode == SslMode::Disable {
            return Ok(Box::new(tcp));
        }
        let io_err = |source| ReplicationError::Connect { target: target.to_string(), source };
        let mut buf = BytesMut::new();
        frontend::ssl_request(&mut buf);
        tcp.write_all(&buf).await.map_err(io_err)?;
        let answer = tcp.read_u8().await.map_err(io_err)?;
        match answer {
            b'S' => {}
            b'N' if info.sslmode == SslMode::Prefer => return Ok(Box::new(tcp)),
            b'N' => {
                return Err(ReplicationError::TlsRefused {
                    target: target.to_string(),
                    mode: match info.sslmode {
                        SslMode::Require => "require",
                        SslMode::VerifyCa => "verify-ca",
                        _ => "verify-full",
                    },
                })
            }
            other => {
                return Err(ReplicationError::Protocol {
                    target: target.to_string(),
                    message: format!("unexpected answer {other:#x} to SSLRequest"),
                })
            }
        }
        let config =
            client_config(info).map_err(|source| ReplicationError::TlsConfig { target: target.to_string(), source })?;
        let server_name = ServerName::try_from(info.host.clone()).map_err(|e| ReplicationError::TlsHandshake {
            target: target.to_string(),
            source: io::Error::new(io::ErrorKind::InvalidInput, e),
        })?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(server_name, tcp)
            .await
            .map_err(|source| ReplicationError::TlsHandshake { target: target.to_string(), source })?;
        Ok(Box::new(tls))
    }

    async fn startup(&mut self, info: &PgConnInfo) -> Result<(), ReplicationError> {
        let params = [
            ("user", info.user.as_str()),
            ("database", info.dbname.as_str()),
            ("replication", "database"),
            ("application_name", info.application_name.as_str()),
            ("client_encoding", "UTF8"),
            ("options", SESSION_OPTIONS),
        ];
        frontend::startup_message(params.iter().copied(), &mut self.write_buf).map_err(|e| self.io(e))?;
        self.flush().await?;
        self.authenticate(info).await?;
        loop {
            let (tag, mut body) = self.read_message().await?;
            match tag {
                b'Z' => return Ok(()),
                b'S' => {
                    let name = read_cstr(&mut body).unwrap_or_default();
                    let value = read_cstr(&mut body).unwrap_or_default();
                    if name == "server_version" {
                        self.server_version = Some(value);
                    }
                }
                b'K' | b'N' => {}
                b'E' => return Err(self.server_error(&body)),
                other => return Err(self.unexpected(other, "startup")),
            }
        }
    }

    async fn authenticate(&mut self, info: &PgConnInfo) -> Result<(), ReplicationError> {
        // Read once per connection, as it is now: a rewritten password file rotates it.
        let current = info.password.as_ref().map(crate::config::Secret::current);
        let password = || {
            current
                .as_ref()
                .map(|p| p.expose().as_bytes().to_vec())
                .ok_or_else(|| ReplicationError::PasswordRequired { target: info.to_string(), user: info.user.clone() })
        };
        let mut scram: Option<ScramSha256> = None;
        loop {
            let (tag, mut body) = self.read_message().await?;
            match tag {
                b'E' => return Err(self.server_error(&body)),
                b'R' => {}
                other => return Err(self.unexpected(other, "authentication")),
            }
            if body.remaining() < 4 {
                return Err(self.protocol("short authentication message"));
            }
            let code = body.get_i32();
            match code {
                0 => return Ok(()),
                3 => {
                    frontend::password_message(&password()?, &mut self.write_buf).map_err(|e| self.io(e))?;
                    self.flush().await?;
                }
                5 => {
                    if body.remaining() < 4 {
                        return Err(self.protocol("short md5 salt"));
                    }
                    let mut salt = [0u8; 4];
                    body.copy_to_slice(&mut salt);
                    let hash = postgres_protocol::authentication::md5_hash(info.user.as_bytes(), &password()?, salt);
                    frontend::password_message(hash.as_bytes(), &mut self.write_buf).map_err(|e| self.io(e))?;
                    self.flush().await?;
                }
                10 => {
                    let mut offers_scram = false;
                    while let Some(mechanism) = read_cstr(&mut body) {
                        if mechanism.is_empty() {
                            break;
                        }
                        offers_scram |= mechanism == SCRAM_SHA_256;
                    }
                    if !offers_scram {
                        return Err(ReplicationError::UnsupportedAuth {
                            target: self.target.clone(),
                            method: "SASL without SCRAM-SHA-256".into(),
                        });
                    }
                    // Channel binding (SCRAM-SHA-256-PLUS) is not offered; the server accepts plain SCRAM.
                    let state = ScramSha256::new(&password()?, ChannelBinding::unsupported());
                    frontend::sasl_initial_response(SCRAM_SHA_256, state.message(), &mut self.write_buf)
                        .map_err(|e| self.io(e))?;
                    scram = Some(state);
                    self.flush().await?;
                }
                11 => {
                    let state = scram.as_mut().ok_or_else(|| self.protocol("SASLContinue before SASL"))?;
                    state
                        .update(&body)
                        .map_err(|source| ReplicationError::Scram { target: self.target.clone(), source })?;
                    let message = state.message().to_vec();
                    frontend::sasl_response(&message, &mut self.write_buf).map_err(|e| self.io(e))?;
                    self.flush().await?;
                }
                12 => {
                    let state = scram.as_mut().ok_or_else(|| self.protocol("SASLFinal before SASL"))?;
                    state
                        .finish(&body)
                        .map_err(|source| ReplicationError::Scram { target: self.target.clone(), source })?;
                }
                other => {
                    let method = match other {
                        2 => "Kerberos V5".to_string(),
                        7 | 8 => "GSSAPI".to_string(),
                        9 => "SSPI".to_string(),
                        n => format!("authentication code {n}"),
                    };
                    return Err(ReplicationError::UnsupportedAuth { target: self.target.clone(), method });
                }
            }
        }
    }

    /// The server version string from startup (`15.4 (Debian 15.4-1)`).
    pub fn server_version(&self) -> Option<&str> {
        self.server_version.as_deref()
    }

    /// The server's major version number, e.g. 15.
    pub fn server_major_version(&self) -> Option<u32> {
        self.server_version.as_deref()?.split(['.', ' ']).next()?.parse().ok()
    }

    /// Runs a replication command or query with the simple query protocol and returns its rows as text.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, ReplicationError> {
        frontend::query(sql, &mut self.write_buf).map_err(|e| self.io(e))?;
        self.flush().await?;
        let mut rows = Vec::new();
        let mut failure = None;
        loop {
            let (tag, mut body) = self.read_message().await?;
            match tag {
                b'D' => {
                    if body.remaining() < 2 {
                        return Err(self.protocol("short DataRow"));
                    }
                    let n = body.get_u16();
                    let mut row = Vec::with_capacity(usize::from(n));
                    for _ in 0..n {
                        if body.remaining() < 4 {
                            return Err(self.protocol("short DataRow"));
                        }
                        let len = body.get_i32();
                        if len < 0 {
                            row.push(None);
                        } else {
                            let len = len as usize;
                            if body.remaining() < len {
                                return Err(self.protocol("short DataRow"));
                            }
                            row.push(Some(String::from_utf8_lossy(&body.split_to(len)).into_owned()));
                        }
                    }
                    rows.push(row);
                }
                b'T' | b'C' | b'N' | b'I' | b'S' => {}
                b'E' => failure = Some(self.server_error(&body)),
                b'Z' => {
                    return match failure {
                        Some(error) => Err(error),
                        None => Ok(rows),
                    }
                }
                other => return Err(self.unexpected(other, "query")),
            }
        }
    }

    pub async fn identify_system(&mut self) -> Result<SystemIdentity, ReplicationError> {
        let rows = self.simple_query("IDENTIFY_SYSTEM").await?;
        let row = rows.first().ok_or_else(|| self.protocol("IDENTIFY_SYSTEM returned no row"))?;
        let field = |i: usize| row.get(i).cloned().flatten();
        let xlogpos = field(2)
            .and_then(|s| s.parse::<Lsn>().ok())
            .ok_or_else(|| self.protocol("IDENTIFY_SYSTEM returned no xlogpos"))?;
        Ok(SystemIdentity {
            system_id: field(0).unwrap_or_default(),
            timeline: field(1).and_then(|s| s.parse().ok()).unwrap_or(0),
            xlogpos,
            dbname: field(3),
        })
    }

    /// `pg_current_wal_insert_lsn()`: the end of the WAL inserted so far, written and flushed or not.
    pub async fn current_wal_lsn(&mut self) -> Result<Lsn, ReplicationError> {
        let rows = self.simple_query("SELECT pg_current_wal_insert_lsn()").await?;
        rows.first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|s| s.parse::<Lsn>().ok())
            .ok_or_else(|| self.protocol("pg_current_wal_insert_lsn() returned no position"))
    }

    /// Starts logical decoding from `slot`. The server begins at the slot's confirmed position or
    /// `start`, whichever is later. `options` are the plugin options (already-validated identifiers).
    pub async fn start_logical_replication(
        &mut self,
        slot: &str,
        start: Lsn,
        options: &[(&str, String)],
    ) -> Result<(), ReplicationError> {
        let options = options
            .iter()
            .map(|(k, v)| format!("\"{}\" '{}'", k.replace('"', "\"\""), v.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("START_REPLICATION SLOT \"{}\" LOGICAL {start} ({options})", slot.replace('"', "\"\""));
        frontend::query(&sql, &mut self.write_buf).map_err(|e| self.io(e))?;
        self.flush().await?;
        loop {
            let (tag, body) = self.read_message().await?;
            match tag {
                b'W' => {
                    self.in_copy = true;
                    return Ok(());
                }
                b'N' => {}
                b'E' => {
                    let error = self.server_error(&body);
                    // Consume the ReadyForQuery that follows so the connection stays usable.
                    let _ = self.read_message().await;
                    return Err(error);
                }
                other => return Err(self.unexpected(other, "START_REPLICATION")),
            }
        }
    }

    /// Waits for the next message of the replication stream.
    pub async fn next_event(&mut self) -> Result<ReplicationEvent, ReplicationError> {
        loop {
            let (tag, body) = self.read_message().await?;
            if let Some(event) = self.stream_event(tag, body)? {
                return Ok(event);
            }
        }
    }

    /// The next event if it is already in the read buffer, without waiting on the socket. Most
    /// messages arrive many to a read, so the caller only arms timers when this has none.
    pub fn buffered_event(&mut self) -> Result<Option<ReplicationEvent>, ReplicationError> {
        while let Some((tag, body)) = self.buffered_message()? {
            if let Some(event) = self.stream_event(tag, body)? {
                return Ok(Some(event));
            }
        }
        Ok(None)
    }

    fn stream_event(&mut self, tag: u8, mut body: Bytes) -> Result<Option<ReplicationEvent>, ReplicationError> {
        match tag {
            b'd' => {
                if body.is_empty() {
                    return Err(self.protocol("empty CopyData"));
                }
                match body[0] {
                    b'w' if body.len() >= 25 => {
                        body.advance(1);
                        let wal_start = Lsn(body.get_u64());
                        let wal_end = Lsn(body.get_u64());
                        let _server_time = body.get_i64();
                        Ok(Some(ReplicationEvent::XLogData { wal_start, wal_end, data: body }))
                    }
                    b'k' if body.len() >= 18 => {
                        body.advance(1);
                        let wal_end = Lsn(body.get_u64());
                        let _server_time = body.get_i64();
                        let reply_requested = body.get_u8() == 1;
                        Ok(Some(ReplicationEvent::Keepalive { wal_end, reply_requested }))
                    }
                    other => {
                        Err(self.protocol(&format!("unknown replication message {other:#x} of {} bytes", body.len())))
                    }
                }
            }
            // CopyDone; or, from a walsender of a server shutting down, CommandComplete without
            // CopyDone: either way the stream is over.
            b'c' | b'C' => {
                self.in_copy = false;
                Ok(Some(ReplicationEvent::End))
            }
            b'N' | b'Z' => Ok(None),
            b'E' => Err(self.server_error(&body)),
            other => Err(self.unexpected(other, "replication stream")),
        }
    }

    /// Sends a standby status update. `flush` is what the caller has made durable: the server may
    /// discard WAL and advance the slot up to it.
    pub async fn send_status(
        &mut self,
        write: Lsn,
        flush: Lsn,
        apply: Lsn,
        reply_requested: bool,
    ) -> Result<(), ReplicationError> {
        let mut payload = BytesMut::with_capacity(34);
        payload.put_u8(b'r');
        payload.put_u64(write.0);
        payload.put_u64(flush.0);
        payload.put_u64(apply.0);
        payload.put_i64(pg_now_micros());
        payload.put_u8(u8::from(reply_requested));
        frontend::CopyData::new(payload.freeze()).map_err(|e| self.io(e))?.write(&mut self.write_buf);
        self.flush().await
    }

    /// Ends the stream cleanly: CopyDone, then waits (briefly) for the server to finish, so the last
    /// status update has been processed before the socket closes.
    pub async fn finish(mut self) -> Result<(), ReplicationError> {
        if self.in_copy {
            frontend::copy_done(&mut self.write_buf);
            self.flush().await?;
            let drain = async {
                loop {
                    match self.read_message().await {
                        Ok((b'Z', _)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
        }
        frontend::terminate(&mut self.write_buf);
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), ReplicationError> {
        let buf = self.write_buf.split();
        self.stream.write_all(&buf).await.map_err(|e| self.io(e))?;
        self.stream.flush().await.map_err(|e| self.io(e))
    }

    /// A complete backend message from the read buffer, if one is there.
    fn buffered_message(&mut self) -> Result<Option<(u8, Bytes)>, ReplicationError> {
        if self.read_buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.read_buf[1], self.read_buf[2], self.read_buf[3], self.read_buf[4]]);
        if len < 4 {
            return Err(self.protocol("invalid message length"));
        }
        let total = len as usize + 1;
        if self.read_buf.len() < total {
            self.read_buf.reserve(total - self.read_buf.len());
            return Ok(None);
        }
        let mut frame = self.read_buf.split_to(total).freeze();
        let tag = frame[0];
        frame.advance(5);
        Ok(Some((tag, frame)))
    }

    /// Reads one backend message: its tag and body (zero-copy out of the read buffer).
    async fn read_message(&mut self) -> Result<(u8, Bytes), ReplicationError> {
        loop {
            if let Some(message) = self.buffered_message()? {
                return Ok(message);
            }
            if self.read_buf.capacity() - self.read_buf.len() < 64 * 1024 {
                self.read_buf.reserve(256 * 1024);
            }
            if self.in_copy {
                if let Some((at, bytes)) = self.last_read {
                    if bytes < COALESCE_BELOW && at.elapsed() < 2 * COALESCE_WAIT {
                        tokio::time::sleep(COALESCE_WAIT).await;
                    }
                }
            }
            let n = self.stream.read_buf(&mut self.read_buf).await.map_err(|e| self.io(e))?;
            self.last_read = Some((Instant::now(), n));
            if n == 0 {
                return Err(ReplicationError::Closed { target: self.target.clone() });
            }
        }
    }

    fn io(&self, source: io::Error) -> ReplicationError {
        ReplicationError::Io { target: self.target.clone(), source }
    }

    fn protocol(&self, message: &str) -> ReplicationError {
        ReplicationError::Protocol { target: self.target.clone(), message: message.to_string() }
    }

    fn unexpected(&self, tag: u8, during: &str) -> ReplicationError {
        self.protocol(&format!("unexpected message {:?} during {during}", tag as char))
    }

    fn server_error(&self, body: &[u8]) -> ReplicationError {
        ReplicationError::Server { target: self.target.clone(), error: Box::new(parse_error_fields(body)) }
    }
}

fn read_cstr(buf: &mut Bytes) -> Option<String> {
    let end = buf.iter().position(|&b| b == 0)?;
    let s = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.advance(end + 1);
    Some(s)
}

fn parse_error_fields(body: &[u8]) -> ServerError {
    let mut error =
        ServerError { severity: "ERROR".into(), code: String::new(), message: String::new(), detail: None, hint: None };
    let mut rest = Bytes::copy_from_slice(body);
    while !rest.is_empty() && rest[0] != 0 {
        let kind = rest[0];
        rest.advance(1);
        let Some(value) = read_cstr(&mut rest) else { break };
        match kind {
            b'V' => error.severity = value,
            b'C' => error.code = value,
            b'M' => error.message = value,
            b'D' => error.detail = Some(value),
            b'H' => error.hint = Some(value),
            _ => {}
        }
    }
    error
}

fn pg_now_micros() -> i64 {
    let unix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(unix.as_micros()).unwrap_or(i64::MAX) - PG_EPOCH_OFFSET_MICROS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_response_fields_are_read() {
        let body = b"SERROR\0VERROR\0C42704\0Mreplication slot \"x\" does not exist\0Hcreate it\0\0";
        let e = parse_error_fields(body);
        assert_eq!(e.code, "42704");
        assert_eq!(e.to_string(), "ERROR 42704: replication slot \"x\" does not exist; hint: create it");
    }
}
