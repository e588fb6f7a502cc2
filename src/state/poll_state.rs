//! What the legacy change-detection strategies read of the control state, as a trait: the
//! poller runs them on [`StateStore`] (the `millrace` schema), their unit tests on an in-memory
//! state, without a database.

use std::collections::HashMap;

use super::{Checkpoint, RecentHashes, StateError, StateStore};

/// The control state a legacy poll reads: a table's checkpoint and its stored row fingerprints,
/// per strategy. Writing (acknowledging a poll) is not part of it: the strategies only hand back
/// a [`super::SaveOutcome`], which the poller saves once the changes are handled.
///
/// The futures carry no `Send` bound: the poller calls the strategies with the concrete
/// [`StateStore`], whose futures are `Send`, so a spawned poll stays `Send`.
#[allow(async_fn_in_trait)]
pub trait PollState {
    /// A table's saved progress (`exists: false` if no poll of it was ever acknowledged).
    async fn checkpoint(&self, table: &str, strategy: &str) -> Result<Checkpoint, StateError>;

    /// The stored fingerprints of the given keys (keys without one are absent).
    async fn hashes_of(&self, table: &str, strategy: &str, keys: &[String])
        -> Result<HashMap<String, i64>, StateError>;

    /// Every stored fingerprint of a table, packed.
    async fn recent_hashes(&self, table: &str, strategy: &str) -> Result<RecentHashes, StateError>;

    /// Every stored key of a table, handed to `each` in key order, for delete detection.
    async fn stored_keys(&self, table: &str, strategy: &str, each: impl FnMut(String)) -> Result<(), StateError>;
}

impl PollState for StateStore {
    async fn checkpoint(&self, table: &str, strategy: &str) -> Result<Checkpoint, StateError> {
        StateStore::checkpoint(self, table, strategy).await
    }

    async fn hashes_of(
        &self,
        table: &str,
        strategy: &str,
        keys: &[String],
    ) -> Result<HashMap<String, i64>, StateError> {
        StateStore::hashes_of(self, table, strategy, keys).await
    }

    async fn recent_hashes(&self, table: &str, strategy: &str) -> Result<RecentHashes, StateError> {
        StateStore::recent_hashes(self, table, strategy).await
    }

    async fn stored_keys(&self, table: &str, strategy: &str, each: impl FnMut(String)) -> Result<(), StateError> {
        StateStore::stored_keys(self, table, strategy, each).await
    }
}
