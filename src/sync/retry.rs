//! Second chances: parked changes are re-decided when something was applied (their dependency
//! may have arrived) and dead-lettered past their mapping's deadline; dead letters an operator
//! marked for retry are re-read from their source, as it holds them now, and re-decided.

use chrono::Utc;

use super::{BatchSummary, Change, ChangeOp, Engine, Input, SyncError};
use crate::mapping::{Record, System};
use crate::state::sync::{DeadLetter, StateWrites};

impl Engine {
    /// Re-decides every parked change; those past their deadline are dead-lettered instead.
    pub async fn retry_parked(&mut self) -> Result<BatchSummary, SyncError> {
        let parked = self.state.parked().await?;
        let mut total = BatchSummary::default();
        if parked.is_empty() {
            return Ok(total);
        }
        let mut expired = StateWrites::default();
        for source in [System::Legacy, System::Odoo] {
            let mut inputs = Vec::new();
            for p in parked.iter().filter(|p| p.source == source.as_str()) {
                let Some(index) = self.mappings.entities.iter().position(|m| m.entity == p.entity) else { continue };
                let m = &self.mappings.entities[index];
                let age = (Utc::now() - p.parked_at).to_std().unwrap_or_default();
                if age > m.park_deadline {
                    expired.unpark.push((p.entity.clone(), p.key.clone(), p.source.clone()));
                    expired.count(&p.entity, source.as_str(), "dead_letter");
                    tracing::error!(entity = %p.entity, key = %p.key, source = %p.source, position = %p.position, reason = %p.reason, "dead-lettered: parked past its deadline");
                    expired.dead_letters.push(DeadLetter {
                        id: 0,
                        entity: p.entity.clone(),
                        key: p.key.clone(),
                        source: p.source.clone(),
                        op: p.op.clone(),
                        record: p.record.clone(),
                        position: p.position.clone(),
                        field: None,
                        reason: format!("parked for {}s, past the deadline: {}", age.as_secs(), p.reason),
                        created_at: Utc::now(),
                        status: "open".into(),
                        resolution: None,
                    });
                    continue;
                }
                let record = match &p.record {
                    Some(json) => match Record::from_json(m, json) {
                        Ok(r) => Some(r),
                        Err(e) => {
                            tracing::warn!(entity = %p.entity, key = %p.key, error = %e, "parked record unreadable with the current mapping; dropped");
                            expired.unpark.push((p.entity.clone(), p.key.clone(), p.source.clone()));
                            continue;
                        }
                    },
                    None => None,
                };
                inputs.push(Input::Change(Change {
                    entity: index,
                    source,
                    op: if p.op == "delete" { ChangeOp::Delete } else { ChangeOp::Upsert },
                    key: p.key.clone(),
                    record,
                    position: p.position.clone(),
                    ours: false,
                    by_integration_user: false,
                    source_id: None,
                    dead_letter: None,
                }));
            }
            if !inputs.is_empty() {
                let s = self.process(source, inputs, None).await?;
                total.applied += s.applied;
                total.parked += s.parked;
                total.in_flight += s.in_flight;
                total.dead_lettered += s.dead_lettered;
            }
        }
        self.state.commit_writes(&expired).await?;
        Ok(total)
    }

    /// Re-runs the dead letters marked `retry`, reading each key's current source row.
    pub async fn retry_dead_letters(&mut self) -> Result<BatchSummary, SyncError> {
        let letters = self.state.dead_letters_to_retry().await?;
        let mut total = BatchSummary::default();
        for d in letters {
            let Some(index) = self.mappings.entities.iter().position(|m| m.entity == d.entity) else {
                self.state.reopen_dead_letter(d.id, &format!("no mapping for entity {}", d.entity)).await?;
                continue;
            };
            let m = self.mappings.entities[index].clone();
            let Some(source) = System::parse(&d.source) else { continue };
            let current = match source {
                System::Legacy => {
                    self.legacy.ensure_lookups(&self.mappings).await?;
                    self.legacy.read_by_key(&m, &d.key).await?.map(|r| r.map(|rec| (rec, None)))
                }
                System::Odoo => {
                    let xref = self.state.xref_id(&m.entity, &d.key, "odoo").await?;
                    let record = Record::from_key(&m, &d.key);
                    super::facts::read_odoo_row(self, &m, &d.key, &record, xref.as_deref())
                        .await?
                        .map(|(id, r)| r.map(|rec| (rec, Some(id.to_string()))).map_err(|p| p.error))
                }
            };
            let (record, source_id) = match current {
                None => {
                    let mut w = StateWrites::default();
                    w.resolved.push((d.id, format!("the {} row no longer exists", d.source)));
                    self.state.commit_writes(&w).await?;
                    continue;
                }
                Some(Err(error)) => {
                    self.state
                        .reopen_dead_letter(
                            d.id,
                            &format!("{} in {}: still unreadable: {error}", m.entity, m.side(source).table),
                        )
                        .await?;
                    continue;
                }
                Some(Ok(found)) => found,
            };
            let change = Change {
                entity: index,
                source,
                op: ChangeOp::Upsert,
                key: d.key.clone(),
                record: Some(record),
                position: d.position.clone(),
                ours: false,
                by_integration_user: false,
                source_id,
                dead_letter: Some(d.id),
            };
            let s = self.process(source, vec![Input::Change(change)], None).await?;
            total.applied += s.applied;
            total.dead_lettered += s.dead_lettered;
            total.stale += s.stale;
        }
        Ok(total)
    }
}
