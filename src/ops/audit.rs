//! Operator actions into the archive: the audit rows ([`crate::state::audit`]) whose records
//! are not archived yet are written as archive files ([`crate::archive::operator`]) and marked.
//! Called after every action, by the CLI and the HTTP endpoint alike, so a row whose archive
//! write failed (a full disk, an archive not configured where the action was taken) is archived
//! by the next action taken where the archive is reachable.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::archive::operator::{self, OperatorRecord};
use crate::archive::ArchiveError;
use crate::mapping::{Mappings, System};
use crate::state::audit::ToArchive;
use crate::state::{StateError, StateStore};

#[derive(Debug, thiserror::Error)]
pub enum AuditArchiveError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("archiving operator action {audit}: {source}")]
    Archive { audit: i64, source: ArchiveError },
    #[error("archiving operator action {audit}: the writer thread failed: {message}")]
    Thread { audit: i64, message: String },
}

/// The archive's records of one audit row.
pub fn records(entry: &ToArchive) -> Vec<OperatorRecord> {
    entry
        .letters
        .iter()
        .filter_map(|letter| {
            let t = &letter.touched;
            let source = System::parse(&t.source)?;
            let why = letter.reason.as_deref().map(|r| format!("; it was dead-lettered for: {r}")).unwrap_or_default();
            Some(OperatorRecord {
                entity: t.entity.clone(),
                key: t.key.clone(),
                source,
                op: if letter.op.as_deref() == Some("delete") { "d" } else { "u" },
                position: letter.position.clone().unwrap_or_default(),
                record: letter.record.clone(),
                decision: entry.action.decision(),
                reason: format!(
                    "operator {} of dead letter {} by {} (audit {}){why}",
                    entry.action.as_str(),
                    t.dead_letter,
                    entry.actor,
                    entry.id
                ),
                at: entry.at,
            })
        })
        .collect()
}

/// Archives every audit row not archived yet; returns the files written.
pub async fn archive_pending(
    store: &StateStore,
    dir: &Path,
    mappings: Arc<Mappings>,
) -> Result<Vec<PathBuf>, AuditArchiveError> {
    const PAGE: i64 = 50;
    let mut files = Vec::new();
    loop {
        let pending = store.audit_to_archive(PAGE).await?;
        let done = (pending.len() as i64) < PAGE;
        for entry in pending {
            let records = records(&entry);
            let (dir, mappings, audit) = (dir.to_path_buf(), mappings.clone(), entry.id);
            let written = tokio::task::spawn_blocking(move || operator::write(&dir, &mappings, audit, &records))
                .await
                .map_err(|e| AuditArchiveError::Thread { audit, message: e.to_string() })?
                .map_err(|source| AuditArchiveError::Archive { audit, source })?;
            store.audit_archived(entry.id).await?;
            files.extend(written);
        }
        if done {
            return Ok(files);
        }
    }
}
