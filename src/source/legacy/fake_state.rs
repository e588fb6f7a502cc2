//! An in-memory control state for the strategies' unit tests: what [`PollState`] reads, held in
//! maps, and [`FakeState::save`] storing a poll's outcome as `StateStore::save` does, so a test
//! can run one poll after another without a database. Also: what a poll emitted, for asserting.

use std::collections::{BTreeMap, HashMap};

use super::{BadLegacyRow, LegacyItem};
use crate::model::{Op, Position, Row};
use crate::state::{Checkpoint, PollState, RecentHashes, SaveOutcome, StateError};

/// A stored row fingerprint: its hash and version.
type Stored = (i64, Option<String>);

#[derive(Default)]
pub(crate) struct FakeState {
    /// By (table, strategy).
    checkpoints: HashMap<(String, String), Checkpoint>,
    /// By (table, strategy), then key, in key order (as the store pages them).
    hashes: HashMap<(String, String), BTreeMap<String, Stored>>,
}

fn id(table: &str, strategy: &str) -> (String, String) {
    (table.to_string(), strategy.to_string())
}

impl FakeState {
    pub(crate) fn new() -> Self {
        FakeState::default()
    }

    /// A checkpoint as an acknowledged poll leaves it.
    pub(crate) fn with_checkpoint(mut self, table: &str, strategy: &str, watermark: Option<&str>) -> Self {
        let checkpoint = Checkpoint { exists: true, watermark: watermark.map(str::to_string), last_delete_scan: None };
        self.checkpoints.insert(id(table, strategy), checkpoint);
        self
    }

    /// A stored fingerprint.
    pub(crate) fn with_hash(
        mut self,
        table: &str,
        strategy: &str,
        key: &str,
        hash: i64,
        version: Option<&str>,
    ) -> Self {
        self.hashes
            .entry(id(table, strategy))
            .or_default()
            .insert(key.to_string(), (hash, version.map(str::to_string)));
        self
    }

    /// Stores a poll's outcome as `StateStore::save` does: fingerprints upserted (the last of a
    /// key winning), removed, pruned below `prune_before_version` (rows without a version
    /// kept, as SQL's `NULL < x` is not true), and the checkpoint's watermark and delete-scan
    /// time replaced only by values the outcome has.
    pub(crate) fn save(&mut self, table: &str, strategy: &str, outcome: &SaveOutcome) {
        let hashes = self.hashes.entry(id(table, strategy)).or_default();
        for (key, hash, version) in outcome.upserts.iter() {
            hashes.insert(key.to_string(), (hash, version.map(str::to_string)));
        }
        for key in &outcome.deletes {
            hashes.remove(key);
        }
        if let Some(before) = &outcome.prune_before_version {
            hashes.retain(|_, (_, version)| version.as_ref().is_none_or(|v| v >= before));
        }
        let checkpoint = self.checkpoints.entry(id(table, strategy)).or_default();
        checkpoint.exists = true;
        if outcome.watermark.is_some() {
            checkpoint.watermark = outcome.watermark.clone();
        }
        if outcome.scanned_at.is_some() {
            checkpoint.last_delete_scan = outcome.scanned_at;
        }
    }

    /// The stored fingerprints of a table: key, hash, version, in key order.
    pub(crate) fn stored(&self, table: &str, strategy: &str) -> Vec<(String, i64, Option<String>)> {
        self.hashes
            .get(&id(table, strategy))
            .map(|h| h.iter().map(|(k, (hash, v))| (k.clone(), *hash, v.clone())).collect())
            .unwrap_or_default()
    }
}

impl PollState for FakeState {
    async fn checkpoint(&self, table: &str, strategy: &str) -> Result<Checkpoint, StateError> {
        Ok(self.checkpoints.get(&id(table, strategy)).cloned().unwrap_or_default())
    }

    async fn hashes_of(
        &self,
        table: &str,
        strategy: &str,
        keys: &[String],
    ) -> Result<HashMap<String, i64>, StateError> {
        let Some(stored) = self.hashes.get(&id(table, strategy)) else { return Ok(HashMap::new()) };
        Ok(keys.iter().filter_map(|k| stored.get(k).map(|(hash, _)| (k.clone(), *hash))).collect())
    }

    async fn recent_hashes(&self, table: &str, strategy: &str) -> Result<RecentHashes, StateError> {
        let mut recent = RecentHashes::default();
        for (key, (hash, _)) in self.hashes.get(&id(table, strategy)).into_iter().flatten() {
            recent.insert(key, *hash);
        }
        Ok(recent)
    }

    async fn stored_keys(&self, table: &str, strategy: &str, mut each: impl FnMut(String)) -> Result<(), StateError> {
        self.hashes.get(&id(table, strategy)).into_iter().flatten().for_each(|(key, _)| each(key.clone()));
        Ok(())
    }
}

/// What a poll emitted: the changes as (op, key, version), and the unreadable rows.
pub(crate) fn emitted(items: &[LegacyItem]) -> (Vec<(Op, String, String)>, Vec<BadLegacyRow>) {
    let mut changes = Vec::new();
    let mut bad = Vec::new();
    for item in items {
        match item {
            LegacyItem::Change(change) => match &change.position {
                Position::Legacy { version, key } => changes.push((change.op, key.clone(), version.clone())),
                other => panic!("a legacy change at {other}"),
            },
            LegacyItem::Bad(row) => bad.push(row.clone()),
        }
    }
    (changes, bad)
}

/// The row a change carries after it (its values), by key.
pub(crate) fn after_of<'i>(items: &'i [LegacyItem], key: &str) -> Option<&'i Row> {
    items.iter().find_map(|item| match item {
        LegacyItem::Change(change) if matches!(&change.position, Position::Legacy { key: k, .. } if k == key) => {
            change.after.as_ref()
        }
        _ => None,
    })
}
