//! Parser for the messages of PostgreSQL's `pgoutput` logical decoding plugin, protocol versions 1
//! and 2 (streamed transactions), as described in the PostgreSQL 15 documentation chapter "Logical
//! Replication Message Formats".
//!
//! [`parse`] takes the payload of one XLogData (`w`) copy message and returns a typed
//! [`LogicalMessage`]. It is pure (no I/O) and is on the hot path of the Odoo source: column values
//! are zero-copy slices of the input [`Bytes`], and only names (relation, column, type, origin,
//! message prefix) are copied into `String`s. Malformed input is an error that names the message,
//! the field and the byte offset; it never panics.
//!
//! [`RelationCache`] and [`TypeCache`] keep what Relation and Type messages announce, so that tuples
//! can be turned into rows (see `tuple::decode_tuple`) and custom types named.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::types::{ColumnType, TypeRegistry};
use crate::model::{Lsn, TableName};

/// Microseconds from the Unix epoch to PostgreSQL's epoch, 2000-01-01 00:00:00 UTC.
const PG_EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// One decoded logical replication message.
///
/// `xid` fields of type `Option<u32>` are `Some` only inside a streamed transaction (between
/// [`LogicalMessage::StreamStart`] and [`LogicalMessage::StreamStop`]), where PostgreSQL prefixes
/// those messages with the xid of the (sub)transaction they belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogicalMessage {
    Begin {
        /// LSN of the commit record of the transaction.
        final_lsn: Lsn,
        commit_ts: DateTime<Utc>,
        xid: u32,
    },
    Commit {
        /// Unused by PostgreSQL 15 (always 0); kept so nothing is silently dropped.
        flags: u8,
        commit_lsn: Lsn,
        /// End LSN of the transaction: the position to confirm once it is applied.
        end_lsn: Lsn,
        commit_ts: DateTime<Utc>,
    },
    Origin {
        /// LSN of the commit on the origin server.
        commit_lsn: Lsn,
        name: String,
    },
    Relation(Relation),
    Type {
        xid: Option<u32>,
        oid: u32,
        /// `pg_catalog` when PostgreSQL sent an empty namespace.
        namespace: String,
        name: String,
    },
    Insert {
        xid: Option<u32>,
        relation_oid: u32,
        new: TupleData,
    },
    Update {
        xid: Option<u32>,
        relation_oid: u32,
        /// Old values of the replica identity columns (`K`), sent when the key changed.
        key: Option<TupleData>,
        /// Full old row (`O`), sent under `REPLICA IDENTITY FULL`.
        old: Option<TupleData>,
        new: TupleData,
    },
    Delete {
        xid: Option<u32>,
        relation_oid: u32,
        /// Exactly one of `key` (`K`) and `old` (`O`) is `Some`.
        key: Option<TupleData>,
        old: Option<TupleData>,
    },
    Truncate {
        xid: Option<u32>,
        cascade: bool,
        restart_identity: bool,
        relation_oids: Vec<u32>,
    },
    /// A message written with `pg_logical_emit_message` (sent only with the `messages` option).
    Message {
        xid: Option<u32>,
        transactional: bool,
        lsn: Lsn,
        prefix: String,
        content: Bytes,
    },
    StreamStart {
        xid: u32,
        first_segment: bool,
    },
    StreamStop,
    StreamCommit {
        xid: u32,
        flags: u8,
        commit_lsn: Lsn,
        end_lsn: Lsn,
        commit_ts: DateTime<Utc>,
    },
    /// Abort of a streamed transaction (`subxid == xid`) or of one of its subtransactions.
    StreamAbort {
        xid: u32,
        subxid: u32,
    },
}

impl LogicalMessage {
    /// The message's name as PostgreSQL's documentation spells it, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            LogicalMessage::Begin { .. } => "Begin",
            LogicalMessage::Commit { .. } => "Commit",
            LogicalMessage::Origin { .. } => "Origin",
            LogicalMessage::Relation(_) => "Relation",
            LogicalMessage::Type { .. } => "Type",
            LogicalMessage::Insert { .. } => "Insert",
            LogicalMessage::Update { .. } => "Update",
            LogicalMessage::Delete { .. } => "Delete",
            LogicalMessage::Truncate { .. } => "Truncate",
            LogicalMessage::Message { .. } => "Message",
            LogicalMessage::StreamStart { .. } => "Stream Start",
            LogicalMessage::StreamStop => "Stream Stop",
            LogicalMessage::StreamCommit { .. } => "Stream Commit",
            LogicalMessage::StreamAbort { .. } => "Stream Abort",
        }
    }
}

/// The values of one row image, one per column of the relation, in column order.
pub type TupleData = Vec<TupleValue>;

/// One column of a [`TupleData`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TupleValue {
    /// `n`: SQL NULL.
    Null,
    /// `u`: a TOASTed value the change left untouched; PostgreSQL does not send it.
    UnchangedToast,
    /// `t`: the value in the type's text output format.
    Text(Bytes),
    /// `b`: the value in the type's binary format (only with the `binary` option).
    Binary(Bytes),
}

/// `REPLICA IDENTITY` of a relation: what old-row image updates and deletes carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplicaIdentity {
    /// `d`: the primary key.
    Default,
    /// `n`: nothing; updates and deletes carry no old image.
    Nothing,
    /// `f`: every column.
    Full,
    /// `i`: the columns of a chosen unique index.
    Index,
}

impl ReplicaIdentity {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            b'd' => Some(ReplicaIdentity::Default),
            b'n' => Some(ReplicaIdentity::Nothing),
            b'f' => Some(ReplicaIdentity::Full),
            b'i' => Some(ReplicaIdentity::Index),
            _ => None,
        }
    }

    /// The byte PostgreSQL uses for it (`pg_class.relreplident`).
    pub fn as_byte(self) -> u8 {
        match self {
            ReplicaIdentity::Default => b'd',
            ReplicaIdentity::Nothing => b'n',
            ReplicaIdentity::Full => b'f',
            ReplicaIdentity::Index => b'i',
        }
    }
}

/// One column of a [`Relation`], as pgoutput describes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelationColumn {
    /// Part of the replica identity.
    pub is_key: bool,
    pub name: String,
    pub type_oid: u32,
    /// `atttypmod`: -1 when the type has no modifier.
    pub type_modifier: i32,
}

/// A Relation message: the columns that tuples of `oid` carry, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub xid: Option<u32>,
    pub oid: u32,
    /// Schema `pg_catalog` when PostgreSQL sent an empty namespace.
    pub table: TableName,
    pub replica_identity: ReplicaIdentity,
    pub columns: Vec<RelationColumn>,
}

/// Why a message could not be parsed. Every variant names the message being read, and those that
/// concern a field name it and its byte offset in the XLogData payload (the type byte is offset 0).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("empty logical replication message")]
    Empty,
    #[error("unknown logical replication message type {}", ShowByte { byte: *.0, hex: true })]
    UnknownMessageType(u8),
    #[error("truncated {message} message: expected {expected} bytes for {field} at offset {offset}, have {have}")]
    Truncated { message: &'static str, field: Cow<'static, str>, offset: usize, expected: usize, have: usize },
    #[error("truncated {message} message: no terminating NUL for {field} starting at offset {offset}")]
    UnterminatedString { message: &'static str, field: &'static str, offset: usize },
    #[error("invalid UTF-8 in {field} of {message} message at offset {offset}")]
    InvalidUtf8 { message: &'static str, field: &'static str, offset: usize },
    #[error("negative {field} ({value}) in {message} message at offset {offset}")]
    NegativeLength { message: &'static str, field: Cow<'static, str>, offset: usize, value: i32 },
    #[error(
        "unknown tuple column kind {} in {message} for relation {relation_oid} at offset {offset}",
        ShowByte { byte: *.kind, hex: false }
    )]
    UnknownColumnKind { message: &'static str, relation_oid: u32, kind: u8, offset: usize },
    #[error(
        "unexpected tuple marker {} in {message} message for relation {relation_oid} at offset {offset}, expected {expected}",
        ShowByte { byte: *.found, hex: false }
    )]
    UnexpectedTupleMarker { message: &'static str, relation_oid: u32, found: u8, expected: &'static str, offset: usize },
    #[error(
        "unknown replica identity {} in Relation message for relation {relation_oid} at offset {offset}",
        ShowByte { byte: *.found, hex: false }
    )]
    UnknownReplicaIdentity { relation_oid: u32, found: u8, offset: usize },
    #[error("{field} {value} in {message} message at offset {offset} is outside the representable timestamp range")]
    TimestampOutOfRange { message: &'static str, field: &'static str, offset: usize, value: i64 },
    #[error("{message} message has {count} unexpected trailing bytes at offset {offset}")]
    TrailingBytes { message: &'static str, offset: usize, count: usize },
}

/// Shows a protocol byte as `'X'` when it is printable ASCII, else as `0x01`; `hex` adds the code
/// to the printable form too (`'X' (0x58)`).
struct ShowByte {
    byte: u8,
    hex: bool,
}

impl fmt::Display for ShowByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let byte = self.byte;
        if byte.is_ascii_graphic() {
            write!(f, "'{}'", char::from(byte))?;
            if self.hex {
                write!(f, " ({byte:#04x})")?;
            }
            Ok(())
        } else {
            write!(f, "{byte:#04x}")
        }
    }
}

/// Parses one pgoutput message: the payload of an XLogData message, starting with its type byte.
///
/// `in_stream` must be true between Stream Start and Stream Stop: there Relation, Type, Insert,
/// Update, Delete, Truncate and Message carry a leading xid. The whole payload must be consumed;
/// trailing bytes are an error because they mean the stream is not the format we think it is
/// (for example a newer protocol version than negotiated).
pub fn parse(buf: Bytes, in_stream: bool) -> Result<LogicalMessage, ProtocolError> {
    let Some(&tag) = buf.first() else {
        return Err(ProtocolError::Empty);
    };
    let message_name = match tag {
        b'B' => "Begin",
        b'C' => "Commit",
        b'O' => "Origin",
        b'R' => "Relation",
        b'Y' => "Type",
        b'I' => "Insert",
        b'U' => "Update",
        b'D' => "Delete",
        b'T' => "Truncate",
        b'M' => "Message",
        b'S' => "Stream Start",
        b'E' => "Stream Stop",
        b'c' => "Stream Commit",
        b'A' => "Stream Abort",
        other => return Err(ProtocolError::UnknownMessageType(other)),
    };
    let mut r = Reader { buf: &buf, pos: 1, message: message_name };
    let message = match tag {
        b'B' => {
            let final_lsn = r.lsn("final LSN")?;
            let commit_ts = r.timestamp("commit timestamp")?;
            let xid = r.u32("xid")?;
            LogicalMessage::Begin { final_lsn, commit_ts, xid }
        }
        b'C' => {
            let flags = r.u8("flags")?;
            let commit_lsn = r.lsn("commit LSN")?;
            let end_lsn = r.lsn("end LSN")?;
            let commit_ts = r.timestamp("commit timestamp")?;
            LogicalMessage::Commit { flags, commit_lsn, end_lsn, commit_ts }
        }
        b'O' => {
            let commit_lsn = r.lsn("commit LSN")?;
            let name = r.cstring("origin name")?;
            LogicalMessage::Origin { commit_lsn, name }
        }
        b'R' => LogicalMessage::Relation(r.relation(in_stream)?),
        b'Y' => {
            let xid = r.stream_xid(in_stream)?;
            let oid = r.u32("type oid")?;
            let namespace = r.namespace()?;
            let name = r.cstring("type name")?;
            LogicalMessage::Type { xid, oid, namespace, name }
        }
        b'I' => {
            let xid = r.stream_xid(in_stream)?;
            let relation_oid = r.u32("relation oid")?;
            r.tuple_marker(relation_oid, b"N", "'N'")?;
            let new = r.tuple(relation_oid)?;
            LogicalMessage::Insert { xid, relation_oid, new }
        }
        b'U' => {
            let xid = r.stream_xid(in_stream)?;
            let relation_oid = r.u32("relation oid")?;
            let (mut key, mut old) = (None, None);
            match r.tuple_marker(relation_oid, b"KON", "'K', 'O' or 'N'")? {
                b'K' => key = Some(r.tuple(relation_oid)?),
                b'O' => old = Some(r.tuple(relation_oid)?),
                _ => {}
            }
            if key.is_some() || old.is_some() {
                r.tuple_marker(relation_oid, b"N", "'N'")?;
            }
            let new = r.tuple(relation_oid)?;
            LogicalMessage::Update { xid, relation_oid, key, old, new }
        }
        b'D' => {
            let xid = r.stream_xid(in_stream)?;
            let relation_oid = r.u32("relation oid")?;
            let marker = r.tuple_marker(relation_oid, b"KO", "'K' or 'O'")?;
            let tuple = r.tuple(relation_oid)?;
            let (key, old) = if marker == b'K' { (Some(tuple), None) } else { (None, Some(tuple)) };
            LogicalMessage::Delete { xid, relation_oid, key, old }
        }
        b'T' => {
            let xid = r.stream_xid(in_stream)?;
            let count = r.length("relation count")?;
            let options = r.u8("options")?;
            // Every oid takes 4 bytes: never reserve more than the payload can hold, whatever the
            // count says.
            let mut relation_oids = Vec::with_capacity(count.min(r.remaining() / 4));
            for _ in 0..count {
                relation_oids.push(r.u32("relation oid")?);
            }
            LogicalMessage::Truncate {
                xid,
                cascade: options & 1 != 0,
                restart_identity: options & 2 != 0,
                relation_oids,
            }
        }
        b'M' => {
            let xid = r.stream_xid(in_stream)?;
            let flags = r.u8("flags")?;
            let lsn = r.lsn("message LSN")?;
            let prefix = r.cstring("prefix")?;
            let len = r.length("content length")?;
            let content = r.bytes(len, "content")?;
            LogicalMessage::Message { xid, transactional: flags & 1 != 0, lsn, prefix, content }
        }
        b'S' => {
            let xid = r.u32("xid")?;
            let first_segment = r.u8("first segment flag")? == 1;
            LogicalMessage::StreamStart { xid, first_segment }
        }
        b'E' => LogicalMessage::StreamStop,
        b'c' => {
            let xid = r.u32("xid")?;
            let flags = r.u8("flags")?;
            let commit_lsn = r.lsn("commit LSN")?;
            let end_lsn = r.lsn("end LSN")?;
            let commit_ts = r.timestamp("commit timestamp")?;
            LogicalMessage::StreamCommit { xid, flags, commit_lsn, end_lsn, commit_ts }
        }
        b'A' => {
            let xid = r.u32("xid")?;
            let subxid = r.u32("subtransaction xid")?;
            LogicalMessage::StreamAbort { xid, subxid }
        }
        // Unreachable: every other tag returned above. An error rather than a panic all the same.
        other => return Err(ProtocolError::UnknownMessageType(other)),
    };
    r.finish()?;
    Ok(message)
}

/// A bounds-checked big-endian reader over one message. Every read names its field so that a
/// short or malformed message yields an error saying what was being read, and where.
struct Reader<'a> {
    buf: &'a Bytes,
    pos: usize,
    message: &'static str,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Checks that `n` more bytes are there and returns the range they occupy.
    fn range(&self, n: usize, field: impl Into<Cow<'static, str>>) -> Result<(usize, usize), ProtocolError> {
        match self.pos.checked_add(n) {
            Some(end) if end <= self.buf.len() => Ok((self.pos, end)),
            _ => Err(ProtocolError::Truncated {
                message: self.message,
                field: field.into(),
                offset: self.pos,
                expected: n,
                have: self.remaining(),
            }),
        }
    }

    fn array<const N: usize>(&mut self, field: impl Into<Cow<'static, str>>) -> Result<[u8; N], ProtocolError> {
        let (start, end) = self.range(N, field)?;
        let mut out = [0u8; N];
        if let Some(bytes) = self.buf.get(start..end) {
            out.copy_from_slice(bytes);
        }
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, ProtocolError> {
        let [byte] = self.array(field)?;
        Ok(byte)
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, ProtocolError> {
        self.array(field).map(u16::from_be_bytes)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, ProtocolError> {
        self.array(field).map(u32::from_be_bytes)
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, ProtocolError> {
        self.array(field).map(i32::from_be_bytes)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, ProtocolError> {
        self.array(field).map(u64::from_be_bytes)
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, ProtocolError> {
        self.array(field).map(i64::from_be_bytes)
    }

    fn lsn(&mut self, field: &'static str) -> Result<Lsn, ProtocolError> {
        self.u64(field).map(Lsn)
    }

    /// An Int64 count of microseconds since 2000-01-01 00:00:00 UTC.
    fn timestamp(&mut self, field: &'static str) -> Result<DateTime<Utc>, ProtocolError> {
        let offset = self.pos;
        let micros = self.i64(field)?;
        micros
            .checked_add(PG_EPOCH_UNIX_MICROS)
            .and_then(DateTime::from_timestamp_micros)
            .ok_or(ProtocolError::TimestampOutOfRange { message: self.message, field, offset, value: micros })
    }

    /// An Int32 length or count, which must not be negative.
    fn length(&mut self, field: impl Into<Cow<'static, str>> + Clone) -> Result<usize, ProtocolError> {
        let offset = self.pos;
        let value = i32::from_be_bytes(self.array(field.clone())?);
        usize::try_from(value).map_err(|_| ProtocolError::NegativeLength {
            message: self.message,
            field: field.into(),
            offset,
            value,
        })
    }

    /// `n` bytes as a zero-copy slice of the message.
    fn bytes(&mut self, n: usize, field: impl Into<Cow<'static, str>>) -> Result<Bytes, ProtocolError> {
        let (start, end) = self.range(n, field)?;
        self.pos = end;
        Ok(self.buf.slice(start..end))
    }

    /// A NUL-terminated UTF-8 string. PostgreSQL sends identifiers in the server encoding, which
    /// the replication connection's `client_encoding` does not convert: a non-UTF-8 server shows
    /// up here as an error rather than as mangled names.
    fn cstring(&mut self, field: &'static str) -> Result<String, ProtocolError> {
        let offset = self.pos;
        let rest = self.buf.get(offset..).unwrap_or_default();
        let Some(len) = rest.iter().position(|&b| b == 0) else {
            return Err(ProtocolError::UnterminatedString { message: self.message, field, offset });
        };
        let text = rest.get(..len).unwrap_or_default();
        let text = std::str::from_utf8(text).map_err(|_| ProtocolError::InvalidUtf8 {
            message: self.message,
            field,
            offset,
        })?;
        self.pos = offset + len + 1;
        Ok(text.to_owned())
    }

    /// A namespace name; the empty string stands for `pg_catalog`.
    fn namespace(&mut self) -> Result<String, ProtocolError> {
        let namespace = self.cstring("namespace")?;
        Ok(if namespace.is_empty() { "pg_catalog".to_owned() } else { namespace })
    }

    /// The leading xid that messages inside a streamed transaction carry.
    fn stream_xid(&mut self, in_stream: bool) -> Result<Option<u32>, ProtocolError> {
        if in_stream {
            self.u32("xid").map(Some)
        } else {
            Ok(None)
        }
    }

    /// Reads a tuple marker byte (`K`, `O`, `N`) that must be one of `allowed`.
    fn tuple_marker(&mut self, relation_oid: u32, allowed: &[u8], expected: &'static str) -> Result<u8, ProtocolError> {
        let offset = self.pos;
        let found = self.u8("tuple marker")?;
        if allowed.contains(&found) {
            Ok(found)
        } else {
            Err(ProtocolError::UnexpectedTupleMarker { message: self.message, relation_oid, found, expected, offset })
        }
    }

    /// TupleData: Int16 column count, then per column a kind byte and, for `t` and `b`, an Int32
    /// length and the value.
    fn tuple(&mut self, relation_oid: u32) -> Result<TupleData, ProtocolError> {
        let count = usize::from(self.u16("column count")?);
        // Each column takes at least its kind byte; cap the reservation by what is left so a
        // corrupt count cannot make us reserve megabytes.
        let mut values = Vec::with_capacity(count.min(self.remaining()));
        for index in 0..count {
            let offset = self.pos;
            let [kind] = self.array(ColumnField("kind", index, count))?;
            let value = match kind {
                b'n' => TupleValue::Null,
                b'u' => TupleValue::UnchangedToast,
                b't' | b'b' => {
                    let len = self.length(ColumnField("value length", index, count))?;
                    let bytes = self.bytes(len, ColumnField("value", index, count))?;
                    if kind == b't' {
                        TupleValue::Text(bytes)
                    } else {
                        TupleValue::Binary(bytes)
                    }
                }
                other => {
                    return Err(ProtocolError::UnknownColumnKind {
                        message: self.message,
                        relation_oid,
                        kind: other,
                        offset,
                    })
                }
            };
            values.push(value);
        }
        Ok(values)
    }

    /// The body of a Relation message.
    fn relation(&mut self, in_stream: bool) -> Result<Relation, ProtocolError> {
        let xid = self.stream_xid(in_stream)?;
        let oid = self.u32("relation oid")?;
        let schema = self.namespace()?;
        let name = self.cstring("relation name")?;
        let identity_offset = self.pos;
        let identity = self.u8("replica identity")?;
        let replica_identity = ReplicaIdentity::from_byte(identity).ok_or(ProtocolError::UnknownReplicaIdentity {
            relation_oid: oid,
            found: identity,
            offset: identity_offset,
        })?;
        let count = usize::from(self.u16("column count")?);
        // A column takes at least 10 bytes (flags, empty name, type oid, modifier).
        let mut columns = Vec::with_capacity(count.min(self.remaining() / 10));
        for _ in 0..count {
            let flags = self.u8("column flags")?;
            let name = self.cstring("column name")?;
            let type_oid = self.u32("column type oid")?;
            let type_modifier = self.i32("column type modifier")?;
            columns.push(RelationColumn { is_key: flags & 1 != 0, name, type_oid, type_modifier });
        }
        Ok(Relation { xid, oid, table: TableName::new(schema, name), replica_identity, columns })
    }

    fn finish(self) -> Result<(), ProtocolError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(ProtocolError::TrailingBytes { message: self.message, offset: self.pos, count }),
        }
    }
}

/// A field of one tuple column, named only when an error needs it ("value length of column 3 of
/// 5"), so that the error-free path allocates nothing.
#[derive(Clone, Copy)]
struct ColumnField(&'static str, usize, usize);

impl From<ColumnField> for Cow<'static, str> {
    fn from(ColumnField(field, index, count): ColumnField) -> Self {
        Cow::Owned(format!("{field} of column {} of {count}", index + 1))
    }
}

/// What the Odoo source needs to know about a relation to turn its tuples into rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationInfo {
    pub relation: Relation,
    /// Column names in tuple order, shared into every [`crate::model::Row`] of the relation.
    pub column_names: Arc<[String]>,
    /// Column type oids in tuple order (same length as `column_names`), as the Relation message
    /// declares them (a domain's own oid).
    pub column_types: Vec<u32>,
    /// How each column's values are read: domains as their base type, arrays by element.
    pub column_kinds: Vec<ColumnType>,
    /// The columns whose change makes an update a change of the row's key: the replica identity
    /// columns, or under `REPLICA IDENTITY FULL` (where every column is flagged) the primary key
    /// when it is known; `None` when there is no key to speak of.
    pub change_key: Option<Vec<usize>>,
}

impl RelationInfo {
    /// A relation whose column types are all built-in (or read as text).
    pub fn new(relation: Relation) -> Self {
        Self::resolve(relation, &TypeRegistry::default(), None)
    }

    /// A relation whose column types are resolved through `types`; `primary_key` names the
    /// primary key columns, used for `change_key` under `REPLICA IDENTITY FULL`.
    pub fn resolve(relation: Relation, types: &TypeRegistry, primary_key: Option<&[String]>) -> Self {
        let column_names = relation.columns.iter().map(|c| c.name.clone()).collect();
        let column_types = relation.columns.iter().map(|c| c.type_oid).collect();
        let column_kinds = relation.columns.iter().map(|c| types.resolve(c.type_oid)).collect();
        let change_key = match relation.replica_identity {
            ReplicaIdentity::Default | ReplicaIdentity::Index => {
                let key: Vec<usize> =
                    relation.columns.iter().enumerate().filter(|(_, c)| c.is_key).map(|(i, _)| i).collect();
                (!key.is_empty()).then_some(key)
            }
            ReplicaIdentity::Full => primary_key.and_then(|names| {
                let key: Option<Vec<usize>> =
                    names.iter().map(|name| relation.columns.iter().position(|c| &c.name == name)).collect();
                key.filter(|k| !k.is_empty())
            }),
            ReplicaIdentity::Nothing => None,
        };
        RelationInfo { relation, column_names, column_types, column_kinds, change_key }
    }

    pub fn oid(&self) -> u32 {
        self.relation.oid
    }

    pub fn table(&self) -> &TableName {
        &self.relation.table
    }

    /// Names of the replica identity columns, in column order.
    pub fn key_columns(&self) -> impl Iterator<Item = &str> {
        self.relation.columns.iter().filter(|c| c.is_key).map(|c| c.name.as_str())
    }
}

/// The relations announced on a replication connection, by oid.
///
/// PostgreSQL sends a Relation message before the first change of a relation on each connection
/// and again after its definition changed, so the cache starts empty on every (re)connect and a
/// later Relation message for the same oid replaces the earlier one. Changes inside a streamed
/// transaction must be looked up against the Relation messages in the order PostgreSQL sent them
/// within that stream; buffering a streamed transaction and replaying all its messages (Relation
/// included) at Stream Commit, as PostgreSQL's own apply worker does, keeps that right.
#[derive(Debug, Default, Clone)]
pub struct RelationCache {
    relations: HashMap<u32, Arc<RelationInfo>>,
    /// Non-built-in types, from Type messages and the catalog.
    types: TypeRegistry,
    /// Primary key columns by table oid, for tables under `REPLICA IDENTITY FULL`.
    primary_keys: HashMap<u32, Vec<String>>,
}

impl RelationCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a Relation message, replacing any earlier one for the same oid, and returns it.
    pub fn insert(&mut self, relation: Relation) -> Arc<RelationInfo> {
        let primary_key = self.primary_keys.get(&relation.oid).map(Vec::as_slice);
        let mut info = RelationInfo::resolve(relation, &self.types, primary_key);
        // PostgreSQL re-sends unchanged relations after every cache invalidation; keep sharing the
        // old column-name list then, so rows before and after share one allocation.
        if let Some(previous) = self.relations.get(&info.relation.oid) {
            if previous.column_names == info.column_names {
                info.column_names = Arc::clone(&previous.column_names);
            }
        }
        let info = Arc::new(info);
        self.relations.insert(info.relation.oid, Arc::clone(&info));
        info
    }

    /// Records a Type message. PostgreSQL sends it before the Relation message that uses the type.
    pub fn announce_type(&mut self, type_oid: u32, namespace: &str, name: &str) {
        self.types.announce(type_oid, namespace, name);
    }

    /// Replaces the catalog's user-defined types with rows of [`super::types::CATALOG_TYPES_SQL`].
    pub fn load_catalog_types(&mut self, rows: &[Vec<Option<String>>]) {
        self.types.load_catalog(rows);
    }

    /// Replaces the primary keys with rows of (table oid, column name), in key order.
    pub fn load_primary_keys(&mut self, rows: &[Vec<Option<String>>]) {
        self.primary_keys.clear();
        for row in rows {
            let (Some(Some(table)), Some(Some(column))) = (row.first(), row.get(1)) else { continue };
            let Ok(table) = table.parse::<u32>() else { continue };
            self.primary_keys.entry(table).or_default().push(column.clone());
        }
    }

    pub fn get(&self, oid: u32) -> Option<&Arc<RelationInfo>> {
        self.relations.get(&oid)
    }

    pub fn remove(&mut self, oid: u32) -> Option<Arc<RelationInfo>> {
        self.relations.remove(&oid)
    }

    pub fn clear(&mut self) {
        self.relations.clear();
    }

    pub fn len(&self) -> usize {
        self.relations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.relations.is_empty()
    }
}

/// Names of the non-built-in types (enums, domains, composite and other custom types) announced by
/// Type messages, so values of those types can be reported by name rather than by oid.
#[derive(Debug, Default, Clone)]
pub struct TypeCache {
    names: HashMap<u32, String>,
}

impl TypeCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a Type message's type as `namespace.name`.
    pub fn insert(&mut self, oid: u32, namespace: &str, name: &str) {
        self.names.insert(oid, format!("{namespace}.{name}"));
    }

    /// `schema.name` of a type announced by a Type message.
    pub fn get(&self, oid: u32) -> Option<&str> {
        self.names.get(&oid).map(String::as_str)
    }

    /// A human name for any type oid: the built-in name (`numeric`), else the announced
    /// `schema.name`, else `type 16385`.
    pub fn describe(&self, oid: u32) -> Cow<'_, str> {
        if let Some(name) = super::types::builtin_type_name(oid) {
            Cow::Borrowed(name)
        } else if let Some(name) = self.get(oid) {
            Cow::Borrowed(name)
        } else {
            Cow::Owned(format!("type {oid}"))
        }
    }

    pub fn clear(&mut self) {
        self.names.clear();
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    /// Builds a message by writing big-endian protocol fields.
    struct W(Vec<u8>);

    /// One column of a tuple to write.
    enum Col<'a> {
        N,
        U,
        T(&'a str),
        B(&'a [u8]),
    }

    impl W {
        fn new(tag: u8) -> Self {
            W(vec![tag])
        }
        fn u8(mut self, v: u8) -> Self {
            self.0.push(v);
            self
        }
        fn u16(mut self, v: u16) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn u32(mut self, v: u32) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn i32(mut self, v: i32) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn u64(mut self, v: u64) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn i64(mut self, v: i64) -> Self {
            self.0.extend_from_slice(&v.to_be_bytes());
            self
        }
        fn raw(mut self, bytes: &[u8]) -> Self {
            self.0.extend_from_slice(bytes);
            self
        }
        fn cstr(self, s: &str) -> Self {
            self.raw(s.as_bytes()).u8(0)
        }
        fn tuple(mut self, cols: &[Col]) -> Self {
            self = self.u16(cols.len() as u16);
            for col in cols {
                self = match col {
                    Col::N => self.u8(b'n'),
                    Col::U => self.u8(b'u'),
                    Col::T(text) => self.u8(b't').i32(text.len() as i32).raw(text.as_bytes()),
                    Col::B(bytes) => self.u8(b'b').i32(bytes.len() as i32).raw(bytes),
                };
            }
            self
        }
        fn build(self) -> Bytes {
            Bytes::from(self.0)
        }
    }

    const LSN: u64 = 0x16_B374_D848;
    const END_LSN: u64 = 0x16_B374_D900;
    /// 2024-01-01 00:00:00.123456 UTC in microseconds since 2000-01-01.
    const TS: i64 = 757_382_400_123_456;
    const REL: u32 = 16384;
    const XID: u32 = 900;

    fn ts() -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(2024, 1, 1).unwrap().and_hms_micro_opt(0, 0, 0, 123_456).unwrap().and_utc()
    }

    fn text(s: &'static str) -> TupleValue {
        TupleValue::Text(Bytes::from_static(s.as_bytes()))
    }

    fn new_tuple() -> Vec<Col<'static>> {
        vec![Col::T("42"), Col::N, Col::U, Col::B(&[1, 2])]
    }

    fn new_values() -> TupleData {
        vec![text("42"), TupleValue::Null, TupleValue::UnchangedToast, TupleValue::Binary(Bytes::from_static(&[1, 2]))]
    }

    fn key_tuple() -> Vec<Col<'static>> {
        vec![Col::T("41"), Col::N, Col::N, Col::N]
    }

    fn key_values() -> TupleData {
        vec![text("41"), TupleValue::Null, TupleValue::Null, TupleValue::Null]
    }

    fn stock_move(xid: Option<u32>) -> Relation {
        Relation {
            xid,
            oid: REL,
            table: TableName::new("public", "stock_move"),
            replica_identity: ReplicaIdentity::Default,
            columns: vec![
                RelationColumn { is_key: true, name: "id".into(), type_oid: 23, type_modifier: -1 },
                RelationColumn { is_key: false, name: "product_qty".into(), type_oid: 1700, type_modifier: -1 },
                RelationColumn { is_key: false, name: "name".into(), type_oid: 1043, type_modifier: 68 },
                RelationColumn { is_key: false, name: "note".into(), type_oid: 25, type_modifier: -1 },
            ],
        }
    }

    /// The Relation message for [`stock_move`], with the streaming xid when given.
    fn stock_move_message(xid: Option<u32>) -> Bytes {
        let mut w = W::new(b'R');
        if let Some(xid) = xid {
            w = w.u32(xid);
        }
        w.u32(REL)
            .cstr("public")
            .cstr("stock_move")
            .u8(b'd')
            .u16(4)
            .u8(1)
            .cstr("id")
            .u32(23)
            .i32(-1)
            .u8(0)
            .cstr("product_qty")
            .u32(1700)
            .i32(-1)
            .u8(0)
            .cstr("name")
            .u32(1043)
            .i32(68)
            .u8(0)
            .cstr("note")
            .u32(25)
            .i32(-1)
            .build()
    }

    /// Starts a message that carries the streaming xid when `xid` is given.
    fn start(tag: u8, xid: Option<u32>) -> W {
        match xid {
            Some(xid) => W::new(tag).u32(xid),
            None => W::new(tag),
        }
    }

    /// Every message type, outside and (where it differs) inside a streamed transaction:
    /// (name, payload, in_stream, expected).
    fn fixtures() -> Vec<(&'static str, Bytes, bool, LogicalMessage)> {
        let mut out = vec![
            (
                "begin",
                W::new(b'B').u64(LSN).i64(TS).u32(771).build(),
                false,
                LogicalMessage::Begin { final_lsn: Lsn(LSN), commit_ts: ts(), xid: 771 },
            ),
            (
                "commit",
                W::new(b'C').u8(0).u64(LSN).u64(END_LSN).i64(TS).build(),
                false,
                LogicalMessage::Commit { flags: 0, commit_lsn: Lsn(LSN), end_lsn: Lsn(END_LSN), commit_ts: ts() },
            ),
            (
                "origin",
                W::new(b'O').u64(LSN).cstr("millrace").build(),
                false,
                LogicalMessage::Origin { commit_lsn: Lsn(LSN), name: "millrace".into() },
            ),
            (
                "relation in pg_catalog, replica identity full",
                W::new(b'R')
                    .u32(1259)
                    .cstr("")
                    .cstr("pg_class")
                    .u8(b'f')
                    .u16(1)
                    .u8(1)
                    .cstr("oid")
                    .u32(26)
                    .i32(-1)
                    .build(),
                false,
                LogicalMessage::Relation(Relation {
                    xid: None,
                    oid: 1259,
                    table: TableName::new("pg_catalog", "pg_class"),
                    replica_identity: ReplicaIdentity::Full,
                    columns: vec![RelationColumn { is_key: true, name: "oid".into(), type_oid: 26, type_modifier: -1 }],
                }),
            ),
            (
                "relation without columns, replica identity nothing",
                W::new(b'R').u32(5).cstr("s").cstr("t").u8(b'n').u16(0).build(),
                false,
                LogicalMessage::Relation(Relation {
                    xid: None,
                    oid: 5,
                    table: TableName::new("s", "t"),
                    replica_identity: ReplicaIdentity::Nothing,
                    columns: vec![],
                }),
            ),
            (
                "relation with index identity",
                W::new(b'R').u32(6).cstr("s").cstr("u").u8(b'i').u16(0).build(),
                false,
                LogicalMessage::Relation(Relation {
                    xid: None,
                    oid: 6,
                    table: TableName::new("s", "u"),
                    replica_identity: ReplicaIdentity::Index,
                    columns: vec![],
                }),
            ),
            (
                "update without old image",
                W::new(b'U').u32(REL).u8(b'N').tuple(&new_tuple()).build(),
                false,
                LogicalMessage::Update { xid: None, relation_oid: REL, key: None, old: None, new: new_values() },
            ),
            (
                "truncate without options",
                W::new(b'T').i32(1).u8(0).u32(REL).build(),
                false,
                LogicalMessage::Truncate {
                    xid: None,
                    cascade: false,
                    restart_identity: false,
                    relation_oids: vec![REL],
                },
            ),
            (
                "non-transactional message with empty content",
                W::new(b'M').u8(0).u64(LSN).cstr("").i32(0).build(),
                false,
                LogicalMessage::Message {
                    xid: None,
                    transactional: false,
                    lsn: Lsn(LSN),
                    prefix: String::new(),
                    content: Bytes::new(),
                },
            ),
            (
                "stream start, first segment",
                W::new(b'S').u32(XID).u8(1).build(),
                false,
                LogicalMessage::StreamStart { xid: XID, first_segment: true },
            ),
            (
                "stream start, later segment",
                W::new(b'S').u32(XID).u8(0).build(),
                false,
                LogicalMessage::StreamStart { xid: XID, first_segment: false },
            ),
            ("stream stop", W::new(b'E').build(), true, LogicalMessage::StreamStop),
            (
                "stream commit",
                W::new(b'c').u32(XID).u8(0).u64(LSN).u64(END_LSN).i64(TS).build(),
                false,
                LogicalMessage::StreamCommit {
                    xid: XID,
                    flags: 0,
                    commit_lsn: Lsn(LSN),
                    end_lsn: Lsn(END_LSN),
                    commit_ts: ts(),
                },
            ),
            (
                "stream abort of a subtransaction",
                W::new(b'A').u32(XID).u32(XID + 1).build(),
                false,
                LogicalMessage::StreamAbort { xid: XID, subxid: XID + 1 },
            ),
        ];
        // The messages that carry an xid inside a streamed transaction, in both modes.
        for xid in [None, Some(XID)] {
            let in_stream = xid.is_some();
            out.extend([
                ("relation", stock_move_message(xid), in_stream, LogicalMessage::Relation(stock_move(xid))),
                (
                    "type",
                    start(b'Y', xid).u32(16390).cstr("public").cstr("move_state").build(),
                    in_stream,
                    LogicalMessage::Type { xid, oid: 16390, namespace: "public".into(), name: "move_state".into() },
                ),
                (
                    "type in pg_catalog",
                    start(b'Y', xid).u32(16391).cstr("").cstr("x").build(),
                    in_stream,
                    LogicalMessage::Type { xid, oid: 16391, namespace: "pg_catalog".into(), name: "x".into() },
                ),
                (
                    "insert with null, unchanged-toast and binary columns",
                    start(b'I', xid).u32(REL).u8(b'N').tuple(&new_tuple()).build(),
                    in_stream,
                    LogicalMessage::Insert { xid, relation_oid: REL, new: new_values() },
                ),
                (
                    "update with key (K) image",
                    start(b'U', xid).u32(REL).u8(b'K').tuple(&key_tuple()).u8(b'N').tuple(&new_tuple()).build(),
                    in_stream,
                    LogicalMessage::Update {
                        xid,
                        relation_oid: REL,
                        key: Some(key_values()),
                        old: None,
                        new: new_values(),
                    },
                ),
                (
                    "update with old (O) image",
                    start(b'U', xid).u32(REL).u8(b'O').tuple(&new_tuple()).u8(b'N').tuple(&key_tuple()).build(),
                    in_stream,
                    LogicalMessage::Update {
                        xid,
                        relation_oid: REL,
                        key: None,
                        old: Some(new_values()),
                        new: key_values(),
                    },
                ),
                (
                    "delete with key (K) image",
                    start(b'D', xid).u32(REL).u8(b'K').tuple(&key_tuple()).build(),
                    in_stream,
                    LogicalMessage::Delete { xid, relation_oid: REL, key: Some(key_values()), old: None },
                ),
                (
                    "delete with old (O) image",
                    start(b'D', xid).u32(REL).u8(b'O').tuple(&new_tuple()).build(),
                    in_stream,
                    LogicalMessage::Delete { xid, relation_oid: REL, key: None, old: Some(new_values()) },
                ),
                (
                    "truncate cascade restart identity",
                    start(b'T', xid).i32(2).u8(3).u32(REL).u32(REL + 1).build(),
                    in_stream,
                    LogicalMessage::Truncate {
                        xid,
                        cascade: true,
                        restart_identity: true,
                        relation_oids: vec![REL, REL + 1],
                    },
                ),
                (
                    "truncate restart identity only",
                    start(b'T', xid).i32(1).u8(2).u32(REL).build(),
                    in_stream,
                    LogicalMessage::Truncate { xid, cascade: false, restart_identity: true, relation_oids: vec![REL] },
                ),
                (
                    "transactional message with content",
                    start(b'M', xid).u8(1).u64(LSN).cstr("millrace").i32(6).raw(b"he\0llo").build(),
                    in_stream,
                    LogicalMessage::Message {
                        xid,
                        transactional: true,
                        lsn: Lsn(LSN),
                        prefix: "millrace".into(),
                        content: Bytes::from_static(b"he\0llo"),
                    },
                ),
            ]);
        }
        out
    }

    #[test]
    fn parses_every_fixture() {
        for (name, buf, in_stream, expected) in fixtures() {
            match parse(buf, in_stream) {
                Ok(message) => assert_eq!(message, expected, "{name}"),
                Err(e) => panic!("{name}: {e}"),
            }
        }
    }

    #[test]
    fn message_names_follow_the_documentation() {
        let names: Vec<_> = fixtures().into_iter().map(|(_, _, _, m)| m.name()).collect();
        for name in ["Begin", "Relation", "Stream Commit", "Stream Abort", "Stream Stop"] {
            assert!(names.contains(&name), "{name}");
        }
    }

    #[test]
    fn streamed_messages_need_the_stream_flag() {
        // Read without the xid, a streamed Insert's xid is taken for the relation oid and the
        // rest no longer lines up: that must be an error, not a wrong message.
        let streamed = start(b'I', Some(XID)).u32(REL).u8(b'N').tuple(&new_tuple()).build();
        assert!(parse(streamed, false).is_err());
        let plain = start(b'I', None).u32(REL).u8(b'N').tuple(&new_tuple()).build();
        assert!(parse(plain, true).is_err());
    }

    #[test]
    fn values_are_slices_of_the_input() {
        let buf = W::new(b'I').u32(REL).u8(b'N').tuple(&[Col::T("hello")]).build();
        let value_offset = buf.len() - 5;
        let LogicalMessage::Insert { new, .. } = parse(buf.clone(), false).unwrap() else { panic!("not an insert") };
        let TupleValue::Text(value) = &new[0] else { panic!("not text") };
        assert_eq!(value.as_ref(), b"hello");
        assert_eq!(value.as_ptr(), buf[value_offset..].as_ptr());
    }

    #[test]
    fn timestamps_count_from_2000() {
        let buf = W::new(b'B').u64(1).i64(-1).u32(1).build();
        let LogicalMessage::Begin { commit_ts, .. } = parse(buf, false).unwrap() else { panic!("not a begin") };
        assert_eq!(commit_ts.to_rfc3339(), "1999-12-31T23:59:59.999999+00:00");
    }

    fn error(buf: Bytes, in_stream: bool) -> String {
        match parse(buf, in_stream) {
            Ok(message) => panic!("parsed as {message:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn errors_say_what_was_read_and_where() {
        assert_eq!(error(Bytes::new(), false), "empty logical replication message");
        assert_eq!(
            error(W::new(b'U').build(), false),
            "truncated Update message: expected 4 bytes for relation oid at offset 1, have 0"
        );
        assert_eq!(
            error(W::new(b'U').u16(1).build(), true),
            "truncated Update message: expected 4 bytes for xid at offset 1, have 2"
        );
        assert_eq!(error(W::new(b'X').build(), false), "unknown logical replication message type 'X' (0x58)");
        assert_eq!(error(W::new(1).build(), false), "unknown logical replication message type 0x01");
        assert_eq!(
            error(W::new(b'I').u32(REL).u8(b'N').u16(1).u8(b'z').build(), false),
            "unknown tuple column kind 'z' in Insert for relation 16384 at offset 8"
        );
        assert_eq!(
            error(W::new(b'I').u32(REL).u8(b'N').u16(2).u8(b'n').u8(b't').i32(10).raw(b"abc").build(), false),
            "truncated Insert message: expected 10 bytes for value of column 2 of 2 at offset 14, have 3"
        );
        assert_eq!(
            error(W::new(b'I').u32(REL).u8(b'N').u16(3).u8(b'n').build(), false),
            "truncated Insert message: expected 1 bytes for kind of column 2 of 3 at offset 9, have 0"
        );
        assert_eq!(
            error(W::new(b'I').u32(REL).u8(b'N').u16(1).u8(b't').i32(-2).build(), false),
            "negative value length of column 1 of 1 (-2) in Insert message at offset 9"
        );
        assert_eq!(
            error(W::new(b'R').u32(REL).cstr("public").raw(b"stock\xff").u8(0).u8(b'd').u16(0).build(), false),
            "invalid UTF-8 in relation name of Relation message at offset 12"
        );
        assert_eq!(
            error(W::new(b'O').u64(LSN).raw(b"millrace").build(), false),
            "truncated Origin message: no terminating NUL for origin name starting at offset 9"
        );
        assert_eq!(
            error(W::new(b'R').u32(REL).cstr("public").cstr("t").u8(b'x').u16(0).build(), false),
            "unknown replica identity 'x' in Relation message for relation 16384 at offset 14"
        );
        assert_eq!(
            error(W::new(b'U').u32(REL).u8(b'X').build(), false),
            "unexpected tuple marker 'X' in Update message for relation 16384 at offset 5, expected 'K', 'O' or 'N'"
        );
        assert_eq!(
            error(W::new(b'U').u32(REL).u8(b'K').tuple(&key_tuple()).u8(b'K').build(), false),
            "unexpected tuple marker 'K' in Update message for relation 16384 at offset 18, expected 'N'"
        );
        assert_eq!(
            error(W::new(b'D').u32(REL).u8(b'N').tuple(&key_tuple()).build(), false),
            "unexpected tuple marker 'N' in Delete message for relation 16384 at offset 5, expected 'K' or 'O'"
        );
        assert_eq!(
            error(W::new(b'I').u32(REL).u8(b'K').tuple(&key_tuple()).build(), false),
            "unexpected tuple marker 'K' in Insert message for relation 16384 at offset 5, expected 'N'"
        );
        assert_eq!(
            error(W::new(b'E').u8(0).build(), true),
            "Stream Stop message has 1 unexpected trailing bytes at offset 1"
        );
        assert_eq!(
            error(W::new(b'B').u64(LSN).i64(i64::MAX).u32(1).build(), false),
            "commit timestamp 9223372036854775807 in Begin message at offset 9 is outside the representable timestamp range"
        );
        assert_eq!(
            error(W::new(b'T').i32(-1).u8(0).build(), false),
            "negative relation count (-1) in Truncate message at offset 1"
        );
        assert_eq!(
            error(W::new(b'M').u8(1).u64(LSN).cstr("p").i32(5).raw(b"abc").build(), false),
            "truncated Message message: expected 5 bytes for content at offset 16, have 3"
        );
    }

    #[test]
    fn absurd_counts_fail_without_reserving_memory_for_them() {
        let truncate = W::new(b'T').i32(i32::MAX).u8(0).u32(1).build();
        assert!(matches!(parse(truncate, false), Err(ProtocolError::Truncated { .. })));
        let insert = W::new(b'I').u32(REL).u8(b'N').u16(u16::MAX).u8(b'n').build();
        assert!(matches!(parse(insert, false), Err(ProtocolError::Truncated { .. })));
        let relation = W::new(b'R').u32(REL).cstr("s").cstr("t").u8(b'd').u16(u16::MAX).build();
        assert!(matches!(parse(relation, false), Err(ProtocolError::Truncated { .. })));
    }

    /// A small deterministic xorshift generator, so the fuzz-style tests need no dependency and
    /// always test the same inputs.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn every_truncated_fixture_is_an_error() {
        for (name, buf, in_stream, _) in fixtures() {
            for len in 0..buf.len() {
                assert!(parse(buf.slice(..len), in_stream).is_err(), "{name} cut to {len} bytes parsed");
            }
            // With a byte too many, too.
            let mut longer = buf.to_vec();
            longer.push(0);
            assert!(parse(Bytes::from(longer), in_stream).is_err(), "{name} with a trailing byte parsed");
        }
    }

    #[test]
    fn corrupt_and_random_input_never_panics() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        // Every byte of every fixture replaced by interesting and random values, in both modes.
        for (_, buf, _, _) in fixtures() {
            for i in 0..buf.len() {
                for replacement in [0x00, 0xFF, 0x7F, 0x80, buf[i].wrapping_add(1), rng.next() as u8] {
                    let mut corrupt = buf.to_vec();
                    corrupt[i] = replacement;
                    let corrupt = Bytes::from(corrupt);
                    let _ = parse(corrupt.clone(), false);
                    let _ = parse(corrupt, true);
                }
            }
        }
        // Random payloads, mostly starting with a valid tag so the bodies get exercised.
        let tags = b"BCORYIUDTMSEcA";
        for _ in 0..20_000 {
            let len = rng.below(48);
            let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if !buf.is_empty() && rng.below(4) != 0 {
                buf[0] = tags[rng.below(tags.len())];
            }
            let _ = parse(Bytes::from(buf), rng.below(2) == 0);
        }
    }

    #[test]
    fn relation_cache_replaces_and_shares_column_names() {
        let mut cache = RelationCache::new();
        assert!(cache.is_empty());
        let first = cache.insert(stock_move(None));
        assert_eq!(first.oid(), REL);
        assert_eq!(first.table().to_string(), "public.stock_move");
        assert_eq!(&*first.column_names, ["id", "product_qty", "name", "note"]);
        assert_eq!(first.column_types, [23, 1700, 1043, 25]);
        assert_eq!(first.key_columns().collect::<Vec<_>>(), ["id"]);

        // Re-sent unchanged: the column names stay one allocation.
        let again = cache.insert(stock_move(None));
        assert!(Arc::ptr_eq(&first.column_names, &again.column_names));
        assert!(Arc::ptr_eq(cache.get(REL).unwrap(), &again));

        // Changed: the new definition wins.
        let mut altered = stock_move(None);
        altered.columns.push(RelationColumn { is_key: false, name: "origin".into(), type_oid: 25, type_modifier: -1 });
        let altered = cache.insert(altered);
        assert_eq!(cache.get(REL).unwrap().column_names.len(), 5);
        assert!(!Arc::ptr_eq(&first.column_names, &altered.column_names));
        assert_eq!(cache.len(), 1);

        assert!(cache.remove(REL).is_some());
        assert!(cache.get(REL).is_none());
        cache.insert(stock_move(None));
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn type_cache_names_custom_types() {
        let mut types = TypeCache::new();
        let LogicalMessage::Type { oid, namespace, name, .. } =
            parse(W::new(b'Y').u32(16390).cstr("public").cstr("move_state").build(), false).unwrap()
        else {
            panic!("not a type")
        };
        types.insert(oid, &namespace, &name);
        assert_eq!(types.get(16390), Some("public.move_state"));
        assert_eq!(types.describe(16390), "public.move_state");
        assert_eq!(types.describe(1700), "numeric");
        assert_eq!(types.describe(99999), "type 99999");
        assert_eq!(types.len(), 1);
        types.clear();
        assert!(types.is_empty());
    }
}
