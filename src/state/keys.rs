//! Keys the ERP numbers itself (`assign = "next"`): an Odoo record bound to an ERP number
//! through the cross-reference. The number is handed out, and the binding saved, before the ERP
//! row is written, so a replay after a crash writes the same number again instead of a second
//! row under a new one.

use std::collections::HashMap;

use super::{sql, StateError, StateStore};

/// The control table of the numbers handed out per entity (created with the schema).
pub(super) const DDL: &str = "
CREATE TABLE IF NOT EXISTS millrace.key_counter (
    entity     text PRIMARY KEY,
    next       bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
";

impl StateStore {
    /// The canonical keys bound to these source-side ids: id → key.
    pub async fn xref_keys(
        &self,
        entity: &str,
        system: &str,
        ids: &[String],
    ) -> Result<HashMap<String, String>, StateError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = self
            .client
            .query(
                "SELECT id, key FROM millrace.xref WHERE entity = $1 AND system = $2 AND id = ANY($3::text[])",
                &[&entity, &system, &ids],
            )
            .await
            .map_err(sql("reading cross-references"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The source-side ids bound to these canonical keys: key → id.
    pub async fn xref_ids(
        &self,
        entity: &str,
        system: &str,
        keys: &[String],
    ) -> Result<HashMap<String, String>, StateError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = self
            .client
            .query(
                "SELECT key, id FROM millrace.xref WHERE entity = $1 AND system = $2 AND key = ANY($3::text[]) AND id IS NOT NULL",
                &[&entity, &system, &keys],
            )
            .await
            .map_err(sql("reading cross-references"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Hands out the next numbers of `entity` to the Odoo ids that have none yet, at least
    /// `floor` (one above the ERP's highest), and binds each id to its number in the
    /// cross-reference, in one transaction: id → key text. Ids already bound keep their key.
    pub async fn allocate_keys(
        &mut self,
        entity: &str,
        ids: &[String],
        floor: i64,
    ) -> Result<HashMap<String, String>, StateError> {
        let tx = self.client.transaction().await.map_err(sql("allocating ERP numbers"))?;
        // The counter row is locked by the upsert until commit: one allocation at a time.
        let next: i64 = tx
            .query_one(
                "INSERT INTO millrace.key_counter (entity, next) VALUES ($1, $2)
                 ON CONFLICT (entity) DO UPDATE SET next = GREATEST(millrace.key_counter.next, EXCLUDED.next),
                                                    updated_at = now()
                 RETURNING next",
                &[&entity, &floor],
            )
            .await
            .map_err(sql("allocating ERP numbers"))?
            .get(0);
        let bound: HashMap<String, String> = tx
            .query(
                "SELECT id, key FROM millrace.xref WHERE entity = $1 AND system = 'odoo' AND id = ANY($2::text[])",
                &[&entity, &ids],
            )
            .await
            .map_err(sql("allocating ERP numbers"))?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let mut out = bound.clone();
        let mut number = next;
        let (mut new_ids, mut new_keys) = (Vec::new(), Vec::new());
        for id in ids {
            if bound.contains_key(id) || out.contains_key(id) {
                continue;
            }
            let key = crate::model::key_text(&[&crate::model::Value::Int(number)]);
            number += 1;
            out.insert(id.clone(), key.clone());
            new_ids.push(id.clone());
            new_keys.push(key);
        }
        if !new_ids.is_empty() {
            tx.execute(
                "INSERT INTO millrace.xref (entity, key, system, id)
                 SELECT $1, k, 'odoo', i FROM unnest($2::text[], $3::text[]) AS u(k, i)
                 ON CONFLICT (entity, key, system) DO UPDATE SET id = EXCLUDED.id, updated_at = now()",
                &[&entity, &new_keys, &new_ids],
            )
            .await
            .map_err(sql("binding ERP numbers"))?;
            tx.execute("UPDATE millrace.key_counter SET next = $2 WHERE entity = $1", &[&entity, &number])
                .await
                .map_err(sql("allocating ERP numbers"))?;
        }
        tx.commit().await.map_err(sql("allocating ERP numbers"))?;
        Ok(out)
    }
}

impl StateStore {
    /// Records that Odoo record `id` is the record of `key` (reconcile's match rules), for each
    /// pair, unless the key or the id is bound already: a binding made by the engine is never
    /// overwritten. The number of bindings made.
    pub async fn bind_odoo_ids(&self, entity: &str, pairs: &[(String, i64)]) -> Result<u64, StateError> {
        if pairs.is_empty() {
            return Ok(0);
        }
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        let ids: Vec<String> = pairs.iter().map(|(_, id)| id.to_string()).collect();
        self.client
            .execute(
                "INSERT INTO millrace.xref (entity, key, system, id)
                 SELECT $1, u.k, 'odoo', u.i FROM unnest($2::text[], $3::text[]) AS u(k, i)
                  WHERE NOT EXISTS (SELECT 1 FROM millrace.xref x WHERE x.entity = $1 AND x.system = 'odoo' AND x.id = u.i)
                 ON CONFLICT (entity, key, system) DO NOTHING",
                &[&entity, &keys, &ids],
            )
            .await
            .map_err(sql("binding records matched by reconcile"))
    }
}
