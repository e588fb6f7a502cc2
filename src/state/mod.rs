//! Control state in the `millrace` schema of a PostgreSQL database (`[state] url`, by default
//! the Odoo database): legacy watermarks and row fingerprints, so a restart resumes where the
//! last acknowledged poll stopped (this file); the sync engine's records ([`sync`]), keys the
//! ERP numbers ([`keys`]), backfill progress ([`backfill`]), the audit trail of operator actions
//! ([`audit`]) and what `status` and the HTTP endpoint report ([`report`]). Every statement
//! against the schema is here: the commands and the endpoint call these functions.

use std::collections::HashMap;

use tokio_postgres::Client;

use crate::config::PgConnInfo;
use crate::pg;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Connect(#[from] pg::ConnectError),
    /// The message is the server's own (see [`pg_error_text`]); the driver's error is kept for
    /// callers that need it ([`StateError::pg_error`]), not as a `source`, so a printed chain
    /// does not end in the driver's bare "db error".
    #[error("control state ({what}): {}", pg_error_text(.error))]
    Sql { what: &'static str, error: tokio_postgres::Error },
}

impl StateError {
    /// The driver's error behind a failed statement.
    pub fn pg_error(&self) -> Option<&tokio_postgres::Error> {
        match self {
            StateError::Sql { error, .. } => Some(error),
            StateError::Connect(_) => None,
        }
    }
}

/// Wraps a failed statement's error with what millrace was doing.
pub(crate) fn sql(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StateError {
    move |error| StateError::Sql { what, error }
}

pub use crate::pg::error_text as pg_error_text;

/// The rows of a multi-row `INSERT … ON CONFLICT DO UPDATE`, one per key: PostgreSQL refuses
/// a statement that would update the same row twice ("ON CONFLICT DO UPDATE command cannot
/// affect row a second time"), so of the rows sharing a key only the last is kept, as if the
/// rows had been written one statement at a time. Each key keeps the place of its first row.
pub(crate) fn last_per_key<T, K: Eq + std::hash::Hash>(
    rows: impl IntoIterator<Item = T>,
    key: impl Fn(&T) -> K,
) -> Vec<T> {
    let mut at: HashMap<K, usize> = HashMap::new();
    let mut out: Vec<T> = Vec::new();
    for row in rows {
        match at.entry(key(&row)) {
            std::collections::hash_map::Entry::Occupied(e) => out[*e.get()] = row,
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(out.len());
                out.push(row);
            }
        }
    }
    out
}

/// The schema, created and migrated idempotently.
const MIGRATIONS: &str = "
CREATE TABLE IF NOT EXISTS millrace.legacy_checkpoint (
    table_name       text NOT NULL,
    strategy         text NOT NULL,
    watermark        text,
    last_delete_scan timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, strategy)
);
CREATE TABLE IF NOT EXISTS millrace.legacy_row_hash (
    table_name text NOT NULL,
    strategy   text NOT NULL,
    row_key    text NOT NULL,
    row_hash   bigint NOT NULL,
    version    text,
    PRIMARY KEY (table_name, strategy, row_key)
);
-- Sync engine (DESIGN §7). `system` is 'odoo' or 'legacy'; `key` is the canonical natural key
-- as JSON text, e.g. [A100] written with double quotes.
CREATE TABLE IF NOT EXISTS millrace.xref (
    entity     text NOT NULL,
    key        text NOT NULL,
    system     text NOT NULL,
    id         text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity, key, system)
);
CREATE INDEX IF NOT EXISTS xref_by_id ON millrace.xref (entity, system, id);
-- What millrace believes each side holds for each key: the canonical record, its fingerprint,
-- the position it was last seen or written at, whether millrace wrote it, and the fingerprint
-- of a write in flight (recorded before the target commits, so its echo is recognised even if
-- millrace dies before recording the write itself).
CREATE TABLE IF NOT EXISTS millrace.known (
    entity              text NOT NULL,
    key                 text NOT NULL,
    system              text NOT NULL,
    record              jsonb,
    fingerprint         bigint,
    position            text,
    written             boolean NOT NULL DEFAULT false,
    pending_fingerprint bigint,
    pending_record      jsonb,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity, key, system)
);
ALTER TABLE millrace.known ADD COLUMN IF NOT EXISTS pending_record jsonb;
-- When the write in flight (pending_fingerprint) was first sent: a create Odoo may still commit
-- after a restart is looked for again, not made twice, until it must have finished.
ALTER TABLE millrace.known ADD COLUMN IF NOT EXISTS pending_at timestamptz;
-- Fingerprints of millrace's latest writes of the key (up to 8) and when the last was made: a poll
-- can read a row between two of millrace's writes, and that intermediate state is an echo too.
ALTER TABLE millrace.known ADD COLUMN IF NOT EXISTS recent_written bigint[];
ALTER TABLE millrace.known ADD COLUMN IF NOT EXISTS recent_at timestamptz;
CREATE TABLE IF NOT EXISTS millrace.parked (
    entity      text NOT NULL,
    key         text NOT NULL,
    source      text NOT NULL,
    op          text NOT NULL,
    record      jsonb,
    position    text NOT NULL,
    reason      text NOT NULL,
    parked_at   timestamptz NOT NULL DEFAULT now(),
    attempts    integer NOT NULL DEFAULT 0,
    PRIMARY KEY (entity, key, source)
);
CREATE TABLE IF NOT EXISTS millrace.dlq (
    id          bigserial PRIMARY KEY,
    entity      text NOT NULL,
    key         text NOT NULL,
    source      text NOT NULL,
    op          text NOT NULL,
    record      jsonb,
    position    text NOT NULL,
    field       text,
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    status      text NOT NULL DEFAULT 'open',
    resolved_at timestamptz,
    resolution  text
);
CREATE INDEX IF NOT EXISTS dlq_open ON millrace.dlq (entity, key) WHERE status IN ('open', 'retry');
-- At most one open dead letter per (entity, key, source): a newer failure supersedes the older
-- letter (StateStore::commit_writes). Letters from before that rule are settled the same way.
UPDATE millrace.dlq d
   SET status = 'superseded', resolved_at = now(),
       resolution = 'replaced by dead letter ' || n.id || ', a newer failure of this key'
  FROM (SELECT entity, key, source, max(id) AS id FROM millrace.dlq
         WHERE status IN ('open', 'retry') GROUP BY entity, key, source HAVING count(*) > 1) n
 WHERE d.entity = n.entity AND d.key = n.key AND d.source = n.source AND d.id < n.id
   AND d.status IN ('open', 'retry');
CREATE TABLE IF NOT EXISTS millrace.conflict (
    id         bigserial PRIMARY KEY,
    entity     text NOT NULL,
    key        text NOT NULL,
    source     text NOT NULL,
    fields     text[] NOT NULL,
    policy     text NOT NULL,
    record     jsonb,
    position   text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS millrace.decision_count (
    entity    text NOT NULL,
    source    text NOT NULL,
    decision  text NOT NULL,
    n         bigint NOT NULL DEFAULT 0,
    last_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity, source, decision)
);
CREATE TABLE IF NOT EXISTS millrace.backfill (
    entity       text PRIMARY KEY,
    source       text NOT NULL,
    last_key     jsonb,
    rows_done    bigint NOT NULL DEFAULT 0,
    position     text,
    started_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);
-- Why the entity's last backfill stopped short (NULL once it finishes).
ALTER TABLE millrace.backfill ADD COLUMN IF NOT EXISTS error text;
-- A large Odoo transaction handled in parts: how many of its row changes are applied,
-- decided and archived, so that a restart resumes after them (DESIGN §7).
CREATE TABLE IF NOT EXISTS millrace.odoo_txn_progress (
    slot        text PRIMARY KEY,
    commit_lsn  text NOT NULL,
    changes     bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS millrace.source_status (
    source      text PRIMARY KEY,
    position    text,
    last_batch  timestamptz,
    last_error  text,
    error_at    timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
";

/// A table's saved progress.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Checkpoint {
    /// Whether a poll of this table was ever acknowledged (an empty table leaves no watermark).
    pub exists: bool,
    pub watermark: Option<String>,
    pub last_delete_scan: Option<chrono::DateTime<chrono::Utc>>,
}

/// Row fingerprints a poll stores once acknowledged, packed: the keys' text in one buffer, and
/// per row its hash and an index into the poll's distinct versions. A first poll of a million
/// rows holds about 30 bytes per row this way, where a struct per row held three allocations
/// (about 140 bytes). Entries can be dropped from the front (a timestamp poll keeps only the
/// rows inside its re-read window).
#[derive(Debug, Clone, Default)]
pub struct Fingerprints {
    keys: String,
    /// Where each key ends in `keys`.
    ends: Vec<usize>,
    hashes: Vec<i64>,
    /// Index into `versions`; `u32::MAX`: no version.
    version_of: Vec<u32>,
    versions: Vec<String>,
    /// Entries before this index were dropped.
    start: usize,
}

impl Fingerprints {
    const NO_VERSION: u32 = u32::MAX;

    /// Adds a row. Consecutive rows of the same version share its text.
    pub fn push(&mut self, key: &str, hash: i64, version: Option<&str>) {
        let version_of = match version {
            None => Self::NO_VERSION,
            Some(v) => {
                if self.versions.last().map(String::as_str) != Some(v) {
                    self.versions.push(v.to_string());
                }
                (self.versions.len() - 1) as u32
            }
        };
        self.keys.push_str(key);
        self.ends.push(self.keys.len());
        self.hashes.push(hash);
        self.version_of.push(version_of);
    }

    pub fn len(&self) -> usize {
        self.hashes.len() - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries, oldest first: key, hash, version.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i64, Option<&str>)> + '_ {
        (self.start..self.hashes.len()).map(move |i| {
            let from = if i == 0 { 0 } else { self.ends[i - 1] };
            let version = match self.version_of[i] {
                Self::NO_VERSION => None,
                v => Some(self.versions[v as usize].as_str()),
            };
            (&self.keys[from..self.ends[i]], self.hashes[i], version)
        })
    }

    /// Drops the `n` oldest entries.
    pub fn drop_front(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.hashes.len());
        // Give the memory back once most of it is dropped entries.
        if self.start >= 4096 && self.start * 2 >= self.hashes.len() {
            let cut = self.ends[self.start - 1];
            self.keys.drain(..cut);
            self.ends.drain(..self.start);
            self.ends.iter_mut().for_each(|end| *end -= cut);
            self.hashes.drain(..self.start);
            self.version_of.drain(..self.start);
            let first_version = self.version_of.iter().copied().filter(|v| *v != Self::NO_VERSION).min();
            if let Some(first) = first_version.filter(|f| *f > 0) {
                self.versions.drain(..first as usize);
                self.version_of.iter_mut().filter(|v| **v != Self::NO_VERSION).for_each(|v| *v -= first);
            }
            self.start = 0;
        }
    }
}

/// Stored fingerprints by key, for recognising rows a poll reads again. A key is held only as
/// a 64-bit hash of its text: 16 bytes an entry, where the key's text, its hash and its version
/// took about 150 (a million rows stamped inside one re-read window are a million entries). Two
/// keys with the same hash leave one entry: the other key's row then reads as changed, which
/// deciding finds is not, or (only if its row hash also equals the other's) as unchanged.
#[derive(Debug, Default)]
pub struct RecentHashes(HashMap<u64, i64>);

impl RecentHashes {
    fn key_hash(key: &str) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut hasher);
        hasher.finish()
    }

    pub fn insert(&mut self, key: &str, row_hash: i64) {
        self.0.insert(Self::key_hash(key), row_hash);
    }

    /// Whether `key` was stored with this row hash.
    pub fn matches(&self, key: &str, row_hash: i64) -> bool {
        self.0.get(&Self::key_hash(key)) == Some(&row_hash)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub mod audit;
pub mod backfill;
pub mod keys;
mod poll_state;
pub mod reconcile;
pub mod report;
pub mod sync;

pub use poll_state::PollState;

pub struct StateStore {
    client: Client,
}

impl StateStore {
    pub async fn connect(info: &PgConnInfo) -> Result<StateStore, StateError> {
        let client = pg::connect(info).await?;
        let store = StateStore { client };
        store.migrate().await?;
        Ok(store)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Whether the control schema exists in the database `client` is connected to (before
    /// [`StateStore::connect`] creates it: `setup --print-sql` only reports what it would do).
    pub async fn schema_exists(client: &Client) -> Result<bool, StateError> {
        let row = client
            .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = 'millrace'", &[])
            .await
            .map_err(sql("reading whether the control schema exists"))?;
        Ok(row.is_some())
    }

    pub async fn migrate(&self) -> Result<(), StateError> {
        // Created only when missing: CREATE SCHEMA IF NOT EXISTS needs the right to create
        // schemas in the database even when the schema exists, and a least-privileged role
        // only owns the schema an administrator made for it (sql/grants/).
        if !Self::schema_exists(&self.client).await? {
            self.client
                .batch_execute("CREATE SCHEMA IF NOT EXISTS millrace")
                .await
                .map_err(sql("creating the millrace schema (or have an administrator run: CREATE SCHEMA millrace AUTHORIZATION <millrace's role>)"))?;
        }
        // IF NOT EXISTS on every run would otherwise print a dozen notices per connection.
        self.client
            .batch_execute(&format!(
                "SET client_min_messages = warning; {MIGRATIONS} {} {} {}",
                keys::DDL,
                audit::DDL,
                reconcile::DDL
            ))
            .await
            .map_err(sql("creating the millrace schema"))
    }

    /// The part of a large Odoo transaction already handled: (commit LSN, row changes done).
    pub async fn odoo_txn_progress(&self, slot: &str) -> Result<Option<(String, u64)>, StateError> {
        let row = self
            .client
            .query_opt("SELECT commit_lsn, changes FROM millrace.odoo_txn_progress WHERE slot = $1", &[&slot])
            .await
            .map_err(sql("reading the progress of a large transaction"))?;
        Ok(row.map(|r| (r.get(0), r.get::<_, i64>(1).max(0) as u64)))
    }

    /// Records that the first `changes` row changes of the transaction committed at
    /// `commit_lsn` are handled.
    pub async fn save_odoo_txn_progress(&self, slot: &str, commit_lsn: &str, changes: u64) -> Result<(), StateError> {
        self.client
            .execute(
                "INSERT INTO millrace.odoo_txn_progress (slot, commit_lsn, changes) VALUES ($1, $2, $3)
                 ON CONFLICT (slot) DO UPDATE SET commit_lsn = EXCLUDED.commit_lsn, changes = EXCLUDED.changes, updated_at = now()",
                &[&slot, &commit_lsn, &(changes as i64)],
            )
            .await
            .map_err(sql("saving the progress of a large transaction"))?;
        Ok(())
    }

    pub async fn checkpoint(&self, table: &str, strategy: &str) -> Result<Checkpoint, StateError> {
        let row = self
            .client
            .query_opt(
                "SELECT watermark, last_delete_scan FROM millrace.legacy_checkpoint WHERE table_name = $1 AND strategy = $2",
                &[&table, &strategy],
            )
            .await
            .map_err(sql("reading a checkpoint"))?;
        Ok(row
            .map(|r| Checkpoint { exists: true, watermark: r.get(0), last_delete_scan: r.get(1) })
            .unwrap_or_default())
    }

    /// Stored fingerprints of the given keys.
    pub async fn hashes_of(
        &self,
        table: &str,
        strategy: &str,
        keys: &[String],
    ) -> Result<HashMap<String, i64>, StateError> {
        let rows = self
            .client
            .query(
                "SELECT row_key, row_hash FROM millrace.legacy_row_hash
                  WHERE table_name = $1 AND strategy = $2 AND row_key = ANY($3)",
                &[&table, &strategy, &keys],
            )
            .await
            .map_err(sql("reading row fingerprints"))?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Every stored fingerprint of a table (for the timestamp strategy's small re-read window).
    /// Every stored fingerprint of a table, packed (see [`RecentHashes`]).
    pub async fn recent_hashes(&self, table: &str, strategy: &str) -> Result<RecentHashes, StateError> {
        let mut recent = RecentHashes::default();
        self.stored_fingerprints(table, strategy, |key, hash| recent.insert(&key, hash)).await?;
        Ok(recent)
    }

    /// Every stored key of a table, in pages, for delete detection.
    pub async fn stored_keys(
        &self,
        table: &str,
        strategy: &str,
        mut each: impl FnMut(String),
    ) -> Result<(), StateError> {
        self.stored_fingerprints(table, strategy, |key, _| each(key)).await
    }

    /// Every stored (key, hash) of a table, read in pages of 50,000 in key order, so that a
    /// table of a million rows never sits in memory as rows.
    async fn stored_fingerprints(
        &self,
        table: &str,
        strategy: &str,
        mut each: impl FnMut(String, i64),
    ) -> Result<(), StateError> {
        let mut after = String::new();
        loop {
            let rows = self
                .client
                .query(
                    "SELECT row_key, row_hash FROM millrace.legacy_row_hash
                      WHERE table_name = $1 AND strategy = $2 AND row_key > $3 ORDER BY row_key LIMIT 50000",
                    &[&table, &strategy, &after],
                )
                .await
                .map_err(sql("reading row fingerprints"))?;
            let Some(last) = rows.last() else { return Ok(()) };
            after = last.get(0);
            let done = rows.len() < 50000;
            for row in rows {
                each(row.get(0), row.get(1));
            }
            if done {
                return Ok(());
            }
        }
    }

    /// Saves a poll's outcome in one transaction: the watermark, the fingerprints to store and
    /// remove, and (for the timestamp strategy) fingerprints older than `prune_before_version`.
    pub async fn save(&mut self, table: &str, strategy: &str, outcome: &SaveOutcome) -> Result<(), StateError> {
        let tx = self.client.transaction().await.map_err(sql("starting a state transaction"))?;
        // In statements of 10,000 rows, read from the packed fingerprints as they go (a key twice
        // in one statement keeps its last row; a later statement overwrites an earlier one).
        let mut entries: Vec<(&str, i64, Option<&str>)> = Vec::new();
        let mut all = outcome.upserts.iter().peekable();
        while all.peek().is_some() {
            entries.clear();
            entries.extend(all.by_ref().take(10_000));
            let chunk = last_per_key(entries.iter(), |h| h.0);
            let keys: Vec<&str> = chunk.iter().map(|h| h.0).collect();
            let hashes: Vec<i64> = chunk.iter().map(|h| h.1).collect();
            let versions: Vec<Option<&str>> = chunk.iter().map(|h| h.2).collect();
            tx.execute(
                "INSERT INTO millrace.legacy_row_hash (table_name, strategy, row_key, row_hash, version)
                 SELECT $1, $2, k, h, v FROM unnest($3::text[], $4::bigint[], $5::text[]) AS u(k, h, v)
                 ON CONFLICT (table_name, strategy, row_key) DO UPDATE SET row_hash = EXCLUDED.row_hash, version = EXCLUDED.version",
                &[&table, &strategy, &keys, &hashes, &versions],
            )
            .await
            .map_err(sql("storing row fingerprints"))?;
        }
        for chunk in outcome.deletes.chunks(10_000) {
            tx.execute(
                "DELETE FROM millrace.legacy_row_hash WHERE table_name = $1 AND strategy = $2 AND row_key = ANY($3)",
                &[&table, &strategy, &chunk],
            )
            .await
            .map_err(sql("removing row fingerprints"))?;
        }
        if let Some(before) = &outcome.prune_before_version {
            tx.execute(
                "DELETE FROM millrace.legacy_row_hash WHERE table_name = $1 AND strategy = $2 AND version < $3",
                &[&table, &strategy, before],
            )
            .await
            .map_err(sql("pruning row fingerprints"))?;
        }
        tx.execute(
            "INSERT INTO millrace.legacy_checkpoint (table_name, strategy, watermark, last_delete_scan)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (table_name, strategy) DO UPDATE
                SET watermark = COALESCE(EXCLUDED.watermark, millrace.legacy_checkpoint.watermark),
                    last_delete_scan = COALESCE(EXCLUDED.last_delete_scan, millrace.legacy_checkpoint.last_delete_scan),
                    updated_at = now()",
            &[&table, &strategy, &outcome.watermark, &outcome.scanned_at],
        )
        .await
        .map_err(sql("saving a checkpoint"))?;
        tx.commit().await.map_err(sql("committing state"))
    }
}

/// What acknowledging a poll writes.
#[derive(Debug, Clone, Default)]
pub struct SaveOutcome {
    pub watermark: Option<String>,
    pub upserts: Fingerprints,
    pub deletes: Vec<String>,
    pub prune_before_version: Option<String>,
    pub scanned_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_row_upsert_holds_each_key_once_the_last_row_winning() {
        let rows = vec![("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5), ("a", 6)];
        assert_eq!(last_per_key(rows, |r| r.0), vec![("a", 6), ("b", 5), ("c", 4)]);
        assert_eq!(last_per_key(Vec::<(&str, i32)>::new(), |r| r.0), vec![]);
        let mut hashes = Fingerprints::default();
        hashes.push("k", 1, None);
        hashes.push("k", 2, Some("v2"));
        let kept = last_per_key(hashes.iter(), |h| h.0);
        assert_eq!(kept, vec![("k", 2, Some("v2"))]);
    }

    #[test]
    fn recent_hashes_match_a_key_only_with_its_own_row_hash() {
        let mut recent = RecentHashes::default();
        recent.insert("[\"A\"]", 1);
        recent.insert("[\"B\"]", 2);
        recent.insert("[\"A\"]", 3);
        assert_eq!(recent.len(), 2);
        assert!(recent.matches("[\"A\"]", 3));
        assert!(!recent.matches("[\"A\"]", 1), "the last stored hash counts");
        assert!(!recent.matches("[\"B\"]", 3));
        assert!(!recent.matches("[\"C\"]", 2));
    }

    #[test]
    fn packed_fingerprints_read_back_and_drop_from_the_front() {
        let mut f = Fingerprints::default();
        for i in 0..10_000 {
            let version = format!("v{}", i / 100);
            f.push(&format!("[\"K{i}\"]"), i, (i % 7 != 0).then_some(version.as_str()));
        }
        assert_eq!(f.len(), 10_000);
        assert_eq!(f.iter().nth(3), Some(("[\"K3\"]", 3, Some("v0"))));
        f.drop_front(5_000);
        f.drop_front(1);
        assert_eq!(f.len(), 4_999);
        let entries: Vec<_> = f.iter().collect();
        assert_eq!(entries[0], ("[\"K5001\"]", 5001, Some("v50")));
        assert_eq!(entries[4_998], ("[\"K9999\"]", 9999, Some("v99")));
        assert_eq!(entries.iter().filter(|e| e.2.is_none()).count(), (5001..10_000).filter(|i| i % 7 == 0).count());
        f.push("last", -1, Some("v99"));
        assert_eq!(f.iter().last(), Some(("last", -1, Some("v99"))));
        f.drop_front(usize::MAX / 2);
        assert!(f.is_empty());
    }

    #[tokio::test]
    async fn an_error_without_a_server_message_names_its_cause() {
        // Nothing listens on port 1: the driver's error is an I/O error, whose cause is shown.
        let error = tokio_postgres::connect("host=127.0.0.1 port=1 user=x connect_timeout=2", tokio_postgres::NoTls)
            .await
            .err()
            .expect("nothing listens on port 1");
        let text = pg_error_text(&error);
        assert!(text.starts_with("error connecting to server: "), "{text}");
        assert!(text.len() > "error connecting to server: ".len() + 3, "the cause follows: {text}");
        let state = StateError::Sql { what: "reading a checkpoint", error };
        assert_eq!(state.to_string(), format!("control state (reading a checkpoint): {text}"));
        assert!(std::error::Error::source(&state).is_none(), "the message is whole, no bare driver error after it");
        assert!(state.pg_error().is_some());
    }
}
