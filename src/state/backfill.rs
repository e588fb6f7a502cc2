//! Backfill progress (`millrace.backfill`): per entity, the key of the last chunk copied, how
//! many rows, the source position the rows were read at, whether it finished, and why it last
//! stopped short. `backfill` saves it after every chunk, so a killed backfill resumes after its
//! last chunk; `status` lists it ([`super::report::backfill_progress`]).

use super::{sql, StateError, StateStore};

/// Where an entity's backfill stands.
#[derive(Debug, Clone, PartialEq)]
pub struct BackfillCheckpoint {
    /// The key of the last row copied (`{"id": 42}` from Odoo, the key columns' text from the
    /// ERP); `None` before the first chunk.
    pub last_key: Option<serde_json::Value>,
    pub rows: i64,
    pub finished: bool,
}

impl StateStore {
    /// Forgets the progress of these entities, so their backfill starts again from the first row.
    pub async fn forget_backfills(&self, entities: &[String]) -> Result<u64, StateError> {
        self.client
            .execute("DELETE FROM millrace.backfill WHERE entity = ANY($1)", &[&entities])
            .await
            .map_err(sql("forgetting earlier backfill progress"))
    }

    /// The saved progress of an entity's backfill, if it ever started.
    pub async fn backfill_checkpoint(&self, entity: &str) -> Result<Option<BackfillCheckpoint>, StateError> {
        let row = self
            .client
            .query_opt(
                "SELECT last_key, rows_done, finished_at IS NOT NULL FROM millrace.backfill WHERE entity = $1",
                &[&entity],
            )
            .await
            .map_err(sql("reading backfill progress"))?;
        Ok(row.map(|r| BackfillCheckpoint { last_key: r.get(0), rows: r.get(1), finished: r.get(2) }))
    }

    /// Saves an entity's progress after a chunk (and once more, `finished`, after the last),
    /// clearing the error an earlier run recorded.
    pub async fn save_backfill_checkpoint(
        &self,
        entity: &str,
        source: &str,
        last_key: &serde_json::Value,
        rows: i64,
        position: &str,
        finished: bool,
    ) -> Result<(), StateError> {
        self.client
            .execute(
                "INSERT INTO millrace.backfill (entity, source, last_key, rows_done, position, finished_at)
                 VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN now() END)
                 ON CONFLICT (entity) DO UPDATE SET last_key = EXCLUDED.last_key, rows_done = EXCLUDED.rows_done,
                     position = EXCLUDED.position, finished_at = EXCLUDED.finished_at, error = NULL, updated_at = now()",
                &[&entity, &source, last_key, &rows, &position, &finished],
            )
            .await
            .map_err(sql("saving backfill progress"))?;
        Ok(())
    }

    /// Records why an entity's backfill failed and marks it unfinished, keeping the progress it
    /// made (the next run resumes there).
    pub async fn record_backfill_failure(&self, entity: &str, source: &str, message: &str) -> Result<(), StateError> {
        self.client
            .execute(
                "INSERT INTO millrace.backfill (entity, source, error) VALUES ($1, $2, $3)
                 ON CONFLICT (entity) DO UPDATE SET error = EXCLUDED.error, finished_at = NULL, updated_at = now()",
                &[&entity, &source, &message],
            )
            .await
            .map_err(sql("recording a backfill's failure"))?;
        Ok(())
    }
}
