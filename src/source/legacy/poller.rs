//! Runs each table's strategy, keeps the legacy connection (reconnecting after transient
//! faults), and hands back what acknowledging the poll saves. Nothing is saved here: the caller
//! saves a poll's outcome only once its changes are handled, so a crash re-reads them.

use std::time::Duration;

use super::hashdiff::{self, HashdiffMode};
use super::{LegacyItem, PendingSave, PollError};
use crate::config::{LegacyConfig, LegacyTable, PgConnInfo, Strategy};
use crate::erp::{connect, LegacyConnection, LegacyError};
use crate::state::StateStore;

pub struct LegacyPoller {
    config: LegacyConfig,
    conn: Option<Box<dyn LegacyConnection>>,
    store: StateStore,
    /// Where the control state is, to reconnect `store` after it was lost.
    state: PgConnInfo,
    reconnects: u64,
    state_reconnects: u64,
}

impl LegacyPoller {
    pub async fn open(config: &LegacyConfig, state: &PgConnInfo) -> Result<LegacyPoller, PollError> {
        let store = StateStore::connect(state).await?;
        Ok(LegacyPoller {
            config: config.clone(),
            conn: None,
            store,
            state: state.clone(),
            reconnects: 0,
            state_reconnects: 0,
        })
    }

    /// Times the legacy connection was dropped after a transient failure, to be made again.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// Times the control-state connection was made again after it was lost.
    pub fn state_reconnects(&self) -> u64 {
        self.state_reconnects
    }

    /// Reconnects the control state when its connection was closed (a restart of PostgreSQL, a
    /// terminated backend); the password is read as it is now, so a rotated one is used.
    async fn ensure_store(&mut self) -> Result<(), PollError> {
        if self.store.client().is_closed() {
            self.store = StateStore::connect(&self.state).await?;
            self.state_reconnects += 1;
            tracing::info!("the legacy poller's control-state connection was lost; reconnected");
        }
        Ok(())
    }

    async fn connection(&mut self) -> Result<Box<dyn LegacyConnection>, LegacyError> {
        if let Some(conn) = self.conn.take() {
            return Ok(conn);
        }
        Ok(connect(&self.config).await?)
    }

    /// Polls every table once. Transient faults (lost connection, deadlock, timeout) are
    /// retried with backoff; other failures end the poll with the error (after the other
    /// tables are polled).
    pub async fn poll_once(
        &mut self,
        emit: &mut (dyn FnMut(LegacyItem) -> std::io::Result<()> + Send),
    ) -> Result<Vec<PendingSave>, PollError> {
        let (saves, failures) = self.poll_each(emit).await?;
        match failures.into_iter().next() {
            Some((_, error)) => Err(error),
            None => Ok(saves),
        }
    }

    /// Polls every table once, each on its own: a table that cannot be polled (dropped,
    /// renamed, no permission, a query the database refuses) is returned with its error beside
    /// the others' outcomes, so one broken table does not hold the rest back. Its watermark
    /// stays where it was; what it emitted before failing is read again next time. Failures of
    /// the control state or of the consumer end the poll.
    pub async fn poll_each(
        &mut self,
        emit: &mut (dyn FnMut(LegacyItem) -> std::io::Result<()> + Send),
    ) -> Result<(Vec<PendingSave>, Vec<(String, PollError)>), PollError> {
        self.ensure_store().await?;
        let mut saves = Vec::new();
        let mut failures = Vec::new();
        for table in self.config.tables.clone() {
            match self.poll_table_with_retry(&table, emit).await {
                Ok(table_saves) => saves.extend(table_saves),
                Err(error @ PollError::Legacy(_)) => {
                    // The connection may be mid-result: start the next table on a fresh one.
                    self.conn = None;
                    failures.push((table.table.clone(), error));
                }
                Err(error) => return Err(error),
            }
        }
        Ok((saves, failures))
    }

    async fn poll_table_with_retry(
        &mut self,
        table: &LegacyTable,
        emit: &mut (dyn FnMut(LegacyItem) -> std::io::Result<()> + Send),
    ) -> Result<Vec<PendingSave>, PollError> {
        let mut delay = Duration::from_millis(200);
        loop {
            match self.poll_table(table, emit).await {
                Err(PollError::Legacy(error)) if error.is_transient() => {
                    self.conn = None;
                    self.reconnects += 1;
                    tracing::warn!(table = %table.table, %error, retry_in_ms = delay.as_millis() as u64, "legacy database unavailable; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                other => return other,
            }
        }
    }

    async fn poll_table(
        &mut self,
        table: &LegacyTable,
        emit: &mut (dyn FnMut(LegacyItem) -> std::io::Result<()> + Send),
    ) -> Result<Vec<PendingSave>, PollError> {
        let mut saves = Vec::new();
        let conn = self.connection().await?;
        let conn = match &table.strategy {
            Strategy::Timestamp { column, safety_window } => {
                let (outcome, conn) =
                    super::timestamp::poll(conn, &self.store, table, column, *safety_window, emit).await?;
                saves.push(PendingSave { table: table.table.clone(), strategy: "timestamp", outcome });
                conn
            }
            Strategy::Hashdiff { .. } => {
                let (outcome, conn) = hashdiff::pass(conn, &self.store, table, HashdiffMode::All, emit).await?;
                saves.push(PendingSave { table: table.table.clone(), strategy: "hashdiff", outcome });
                conn
            }
            Strategy::Rowversion { .. } | Strategy::ChangeTracking => {
                let (save, conn) = super::versioned::poll_with_state(conn, &self.store, table, emit).await?;
                saves.push(save);
                conn
            }
        };
        self.conn = Some(conn);
        if let Some(interval) = table.delete_scan_interval {
            if !matches!(table.strategy, Strategy::Hashdiff { .. }) && self.delete_scan_due(table, interval).await? {
                let conn = self.connection().await?;
                let (outcome, conn) = hashdiff::pass(conn, &self.store, table, HashdiffMode::DeletesOnly, emit).await?;
                saves.push(PendingSave { table: table.table.clone(), strategy: "hashdiff", outcome });
                self.conn = Some(conn);
            }
        }
        Ok(saves)
    }

    async fn delete_scan_due(&self, table: &LegacyTable, interval: Duration) -> Result<bool, PollError> {
        let checkpoint = self.store.checkpoint(&table.table, "hashdiff").await?;
        Ok(match checkpoint.last_delete_scan {
            None => true,
            Some(at) => (chrono::Utc::now() - at).to_std().map(|elapsed| elapsed >= interval).unwrap_or(true),
        })
    }

    /// Saves what a poll found, once its changes are handled.
    pub async fn save(&mut self, saves: &[PendingSave]) -> Result<(), PollError> {
        self.ensure_store().await?;
        for save in saves {
            self.store.save(&save.table, save.strategy, &save.outcome).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::{timestamp, versioned};
    use super::*;

    type Emit<'e> = &'e mut (dyn FnMut(LegacyItem) -> std::io::Result<()> + Send);

    /// Checked when compiled: the strategies read the control state through a trait whose
    /// futures carry no `Send` bound; on the concrete `StateStore` a poll of each strategy is
    /// still a future a multi-threaded runtime can run.
    #[test]
    fn each_strategy_polled_on_the_state_store_can_be_spawned() {
        fn send<T: Send>(_: &T) {}
        let _ = |conn: Box<dyn LegacyConnection>, store: &StateStore, table: &LegacyTable, emit: Emit<'_>| {
            send(&timestamp::poll(conn, store, table, "MODIFIED_AT", Duration::ZERO, emit));
        };
        let _ = |conn: Box<dyn LegacyConnection>, store: &StateStore, table: &LegacyTable, emit: Emit<'_>| {
            send(&hashdiff::pass(conn, store, table, HashdiffMode::All, emit));
        };
        let _ = |conn: Box<dyn LegacyConnection>, store: &StateStore, table: &LegacyTable, emit: Emit<'_>| {
            send(&versioned::poll_with_state(conn, store, table, emit));
        };
    }
}
