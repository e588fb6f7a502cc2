//! Writing to the legacy database through ODBC: the right upsert per dialect (MariaDB/MySQL
//! `ON DUPLICATE KEY UPDATE`, SQL Server `MERGE`, PostgreSQL `ON CONFLICT`, and a portable
//! update-then-insert), one transaction per batch, a savepoint per change so that one bad
//! change is dead-lettered without undoing the others.

use crate::erp::{Dialect, LegacyWriter, WriteError};
use crate::model::Value;

/// One row write. Values are text parameters (drivers convert them to the column types); names
/// are quoted for the dialect, never spliced values.
#[derive(Debug, Clone, PartialEq)]
pub enum LegacyWrite {
    /// Insert the row, or update `update` columns if a row with the key exists. With
    /// `update_only`, never insert: a missing row is reported.
    Upsert {
        table: String,
        key: Vec<(String, Option<String>)>,
        insert: Vec<(String, Option<String>)>,
        update: Vec<(String, Option<String>)>,
        update_only: bool,
    },
    /// Insert the row; a row with the key already there is refused (a ledger: never updated).
    Insert {
        table: String,
        insert: Vec<(String, Option<String>)>,
    },
    Delete {
        table: String,
        key: Vec<(String, Option<String>)>,
    },
}

/// A statement and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Option<String>>,
}

fn where_key(dialect: Dialect, key: &[(String, Option<String>)], params: &mut Vec<Option<String>>) -> String {
    key.iter()
        .map(|(column, value)| {
            params.push(value.clone());
            format!("{} = ?", dialect.quote(column))
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

pub fn update_statement(
    dialect: Dialect,
    table: &str,
    key: &[(String, Option<String>)],
    update: &[(String, Option<String>)],
) -> Statement {
    let mut params = Vec::new();
    let set: Vec<String> = update
        .iter()
        .map(|(c, v)| {
            params.push(v.clone());
            format!("{} = ?", dialect.quote(c))
        })
        .collect();
    let clause = where_key(dialect, key, &mut params);
    Statement { sql: format!("UPDATE {} SET {} WHERE {clause}", dialect.quote_table(table), set.join(", ")), params }
}

pub fn insert_statement(dialect: Dialect, table: &str, insert: &[(String, Option<String>)]) -> Statement {
    insert_rows_statement(dialect, table, &[insert])
}

/// One INSERT of several rows with the same columns (those of the first row).
fn insert_rows_statement(dialect: Dialect, table: &str, rows: &[&[(String, Option<String>)]]) -> Statement {
    let first = rows.first().copied().unwrap_or_default();
    let columns: Vec<String> = first.iter().map(|(c, _)| dialect.quote(c)).collect();
    let marks = format!("({})", vec!["?"; first.len()].join(", "));
    Statement {
        sql: format!(
            "INSERT INTO {} ({}) VALUES {}",
            dialect.quote_table(table),
            columns.join(", "),
            vec![marks.as_str(); rows.len()].join(", ")
        ),
        params: rows.iter().flat_map(|row| row.iter().map(|(_, v)| v.clone())).collect(),
    }
}

/// What turns an INSERT into an upsert, in the dialects that say it after the VALUES:
/// MariaDB/MySQL and PostgreSQL.
fn upsert_clause(dialect: Dialect, key: &[(String, Option<String>)], update: &[(String, Option<String>)]) -> String {
    let q = |c: &str| dialect.quote(c);
    match dialect {
        Dialect::MySql => {
            let set: Vec<String> = if update.is_empty() {
                // A no-op assignment keeps an existing row as it is.
                vec![format!("{0} = {0}", q(&key[0].0))]
            } else {
                update.iter().map(|(c, _)| format!("{0} = VALUES({0})", q(c))).collect()
            };
            format!(" ON DUPLICATE KEY UPDATE {}", set.join(", "))
        }
        _ => {
            let keys: Vec<String> = key.iter().map(|(c, _)| q(c)).collect();
            if update.is_empty() {
                format!(" ON CONFLICT ({}) DO NOTHING", keys.join(", "))
            } else {
                let set: Vec<String> = update.iter().map(|(c, _)| format!("{0} = EXCLUDED.{0}", q(c))).collect();
                format!(" ON CONFLICT ({}) DO UPDATE SET {}", keys.join(", "), set.join(", "))
            }
        }
    }
}

/// The single-statement upsert of a dialect, or `None` where the dialect has none (the portable
/// fallback then runs an UPDATE and, when it changed no row, an INSERT).
pub fn upsert_statement(
    dialect: Dialect,
    table: &str,
    key: &[(String, Option<String>)],
    insert: &[(String, Option<String>)],
    update: &[(String, Option<String>)],
) -> Option<Statement> {
    let q = |c: &str| dialect.quote(c);
    match dialect {
        Dialect::MySql | Dialect::Postgres => {
            let mut s = insert_statement(dialect, table, insert);
            s.sql.push_str(&upsert_clause(dialect, key, update));
            Some(s)
        }
        Dialect::MsSql => {
            let columns: Vec<String> = insert.iter().map(|(c, _)| q(c)).collect();
            let marks = vec!["?"; insert.len()].join(", ");
            let on: Vec<String> = key.iter().map(|(c, _)| format!("tgt.{0} = src.{0}", q(c))).collect();
            let mut sql = format!(
                "MERGE INTO {} WITH (HOLDLOCK) AS tgt USING (VALUES ({marks})) AS src ({}) ON {}",
                dialect.quote_table(table),
                columns.join(", "),
                on.join(" AND ")
            );
            if !update.is_empty() {
                let set: Vec<String> = update.iter().map(|(c, _)| format!("tgt.{0} = src.{0}", q(c))).collect();
                sql.push_str(&format!(" WHEN MATCHED THEN UPDATE SET {}", set.join(", ")));
            }
            let values: Vec<String> = insert.iter().map(|(c, _)| format!("src.{}", q(c))).collect();
            sql.push_str(&format!(
                " WHEN NOT MATCHED THEN INSERT ({}) VALUES ({});",
                columns.join(", "),
                values.join(", ")
            ));
            Some(Statement { sql, params: insert.iter().map(|(_, v)| v.clone()).collect() })
        }
        Dialect::Ansi => None,
    }
}

/// Why one change's writes failed.
#[derive(Debug, Clone)]
pub enum ChangeFailure {
    /// Bad data: dead-letter the change with this reason.
    Data(String),
    /// An update-only write found no row.
    Missing(String),
}

fn savepoint_sql(dialect: Dialect) -> (&'static str, &'static str, Option<&'static str>) {
    match dialect {
        Dialect::MsSql => ("SAVE TRANSACTION millrace_change", "ROLLBACK TRANSACTION millrace_change", None),
        _ => (
            "SAVEPOINT millrace_change",
            "ROLLBACK TO SAVEPOINT millrace_change",
            Some("RELEASE SAVEPOINT millrace_change"),
        ),
    }
}

fn run_write(
    conn: &mut dyn LegacyWriter,
    dialect: Dialect,
    write: &LegacyWrite,
) -> Result<Option<ChangeFailure>, WriteError> {
    match write {
        LegacyWrite::Upsert { table, key, insert, update, update_only } => {
            if *update_only {
                if update.is_empty() {
                    return Ok(None);
                }
                let s = update_statement(dialect, table, key, update);
                let n = conn.execute_write(&s.sql, &s.params)?;
                if n == Some(0) && !row_exists(conn, dialect, table, key)? {
                    return Ok(Some(ChangeFailure::Missing(format!("{table}: no row with this key to update"))));
                }
                return Ok(None);
            }
            match upsert_statement(dialect, table, key, insert, update) {
                Some(s) => {
                    conn.execute_write(&s.sql, &s.params)?;
                }
                None => {
                    let changed = if update.is_empty() {
                        None
                    } else {
                        let s = update_statement(dialect, table, key, update);
                        conn.execute_write(&s.sql, &s.params)?
                    };
                    if changed.unwrap_or(0) == 0 && !row_exists(conn, dialect, table, key)? {
                        let s = insert_statement(dialect, table, insert);
                        conn.execute_write(&s.sql, &s.params)?;
                    }
                }
            }
            Ok(None)
        }
        LegacyWrite::Insert { table, insert } => {
            let s = insert_statement(dialect, table, insert);
            conn.execute_write(&s.sql, &s.params)?;
            Ok(None)
        }
        LegacyWrite::Delete { table, key } => {
            let mut params = Vec::new();
            let clause = where_key(dialect, key, &mut params);
            conn.execute_write(&format!("DELETE FROM {} WHERE {clause}", dialect.quote_table(table)), &params)?;
            Ok(None)
        }
    }
}

/// Whether the table holds a row with this key. An UPDATE that changed nothing may still have
/// matched one: MariaDB (and MySQL) count the rows an UPDATE changed, not those it matched, so
/// writing again what a row already holds (a replay after a crash) reports 0.
fn row_exists(
    conn: &mut dyn LegacyWriter,
    dialect: Dialect,
    table: &str,
    key: &[(String, Option<String>)],
) -> Result<bool, WriteError> {
    let mut params = Vec::new();
    let clause = where_key(dialect, key, &mut params);
    let sql = format!("SELECT 1 FROM {} WHERE {clause}", dialect.quote_table(table));
    let values: Vec<Value> = params.into_iter().map(|p| p.map(Value::Text).unwrap_or(Value::Null)).collect();
    let mut found = false;
    conn.select(table, &sql, &values, &mut |batch| {
        found |= !batch.rows.is_empty();
        Ok(())
    })
    .map_err(|e| WriteError { state: String::new(), transient: e.is_transient(), message: e.to_string() })?;
    Ok(found)
}

/// Rows per multi-row statement at most: well under the 65,535 parameters MariaDB and
/// PostgreSQL take, and a statement text of a few hundred kilobytes.
const BULK_ROWS: usize = 500;
const BULK_PARAMS: usize = 20_000;

/// The changes at the start of `changes` that can go into one multi-row statement: each a
/// single insert or create-or-update of the same table and columns as the first, no key twice
/// (PostgreSQL refuses to update a row twice in one statement, and a ledger's second insert of
/// a key must fail alone). Only MariaDB/MySQL and PostgreSQL say an upsert after its VALUES.
fn bulk_run(dialect: Dialect, changes: &[Vec<LegacyWrite>]) -> usize {
    if !matches!(dialect, Dialect::MySql | Dialect::Postgres) {
        return 0;
    }
    type Shape<'a> = (&'a str, Vec<&'a str>, Option<Vec<&'a str>>);
    fn names(row: &[(String, Option<String>)]) -> Vec<&str> {
        row.iter().map(|(c, _)| c.as_str()).collect()
    }
    /// The statement shape of a change's writes, and the key it writes.
    fn shape(writes: &[LegacyWrite]) -> Option<(Shape<'_>, Vec<&Option<String>>)> {
        match writes {
            [LegacyWrite::Insert { table, insert }] => {
                Some(((table.as_str(), names(insert), None), insert.iter().map(|(_, v)| v).collect()))
            }
            [LegacyWrite::Upsert { table, key, insert, update, update_only: false }] if !key.is_empty() => {
                Some(((table.as_str(), names(insert), Some(names(update))), key.iter().map(|(_, v)| v).collect()))
            }
            _ => None,
        }
    }
    let Some((first, _)) = changes.first().and_then(|w| shape(w)) else { return 0 };
    let columns = first.1.len().max(1);
    let mut keys = std::collections::HashSet::new();
    let mut n = 0;
    for writes in changes {
        match shape(writes) {
            Some((s, key)) if s == first => {
                if !keys.insert(key) {
                    break;
                }
                n += 1;
            }
            _ => break,
        }
        if n >= BULK_ROWS || (n + 1) * columns > BULK_PARAMS {
            break;
        }
    }
    n
}

/// The one statement that makes the writes of `changes` (a [`bulk_run`]).
fn bulk_statement(dialect: Dialect, changes: &[Vec<LegacyWrite>]) -> Option<Statement> {
    let rows: Vec<&[(String, Option<String>)]> = changes
        .iter()
        .filter_map(|w| match w.first() {
            Some(LegacyWrite::Insert { insert, .. } | LegacyWrite::Upsert { insert, .. }) => Some(insert.as_slice()),
            _ => None,
        })
        .collect();
    match changes.first()?.first()? {
        LegacyWrite::Insert { table, .. } => Some(insert_rows_statement(dialect, table, &rows)),
        LegacyWrite::Upsert { table, key, update, .. } => {
            let mut s = insert_rows_statement(dialect, table, &rows);
            s.sql.push_str(&upsert_clause(dialect, key, update));
            Some(s)
        }
        LegacyWrite::Delete { .. } => None,
    }
}

/// Applies a batch in one transaction: per change, its writes under a savepoint. A change whose
/// data the database refuses is rolled back to its savepoint and reported; an outage rolls the
/// whole batch back and is returned as the error (the caller retries the batch).
pub fn apply_batch(
    conn: &mut dyn LegacyWriter,
    dialect: Dialect,
    changes: &[Vec<LegacyWrite>],
) -> Result<Vec<Option<ChangeFailure>>, WriteError> {
    // First without savepoints (a third of the statements); only if some change fails is the
    // batch rolled back and run again with a savepoint per change, to set that change aside.
    match run_in_transaction(conn, dialect, changes, false)? {
        Some(outcomes) => Ok(outcomes),
        None => Ok(run_in_transaction(conn, dialect, changes, true)?.unwrap_or_default()),
    }
}

/// One transaction over the batch. Without savepoints, `None` when a change failed (everything
/// rolled back); with them, each change's outcome.
fn run_in_transaction(
    conn: &mut dyn LegacyWriter,
    dialect: Dialect,
    changes: &[Vec<LegacyWrite>],
    savepoints: bool,
) -> Result<Option<Vec<Option<ChangeFailure>>>, WriteError> {
    conn.begin()?;
    match apply_in_transaction(conn, dialect, changes, savepoints) {
        Ok(Some(outcomes)) => {
            conn.commit()?;
            Ok(Some(outcomes))
        }
        Ok(None) => {
            conn.rollback()?;
            Ok(None)
        }
        Err(error) => {
            let _ = conn.rollback();
            Err(error)
        }
    }
}

fn apply_in_transaction(
    conn: &mut dyn LegacyWriter,
    dialect: Dialect,
    changes: &[Vec<LegacyWrite>],
    savepoints: bool,
) -> Result<Option<Vec<Option<ChangeFailure>>>, WriteError> {
    let (save, rollback, release) = savepoint_sql(dialect);
    let mut outcomes = Vec::with_capacity(changes.len());
    let mut at = 0;
    while at < changes.len() {
        // The first pass writes runs of alike rows as one statement each; a refused statement
        // sends the batch to the second pass, a savepoint per change, to find the bad row.
        let run = if savepoints { 0 } else { bulk_run(dialect, &changes[at..]) };
        if run > 1 {
            if let Some(s) = bulk_statement(dialect, &changes[at..at + run]) {
                match conn.execute_write(&s.sql, &s.params) {
                    Ok(_) => {
                        outcomes.extend(std::iter::repeat_n(None, run));
                        at += run;
                        continue;
                    }
                    Err(e) if !e.transient => return Ok(None),
                    Err(e) => return Err(e),
                }
            }
        }
        let writes = &changes[at];
        at += 1;
        if writes.is_empty() {
            outcomes.push(None);
            continue;
        }
        if savepoints {
            conn.execute_fixed(save)?;
        }
        let mut failure = None;
        for write in writes {
            match run_write(conn, dialect, write) {
                Ok(None) => {}
                Ok(Some(f)) => {
                    failure = Some(f);
                    break;
                }
                // Anything but an outage is this change's own fault (bad data, or a mapping the
                // table refuses): it is dead-lettered and the others go on.
                Err(e) if !e.transient => {
                    failure = Some(ChangeFailure::Data(e.message.clone()));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        if failure.is_some() && !savepoints {
            return Ok(None);
        }
        if savepoints {
            if failure.is_some() {
                conn.execute_fixed(rollback)?;
            } else if let Some(release) = release {
                conn.execute_fixed(release)?;
            }
        }
        outcomes.push(failure);
    }
    Ok(Some(outcomes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, Option<String>)> {
        pairs.iter().map(|(k, v)| (k.to_string(), Some(v.to_string()))).collect()
    }

    #[test]
    fn upsert_per_dialect() {
        let key = kv(&[("ITEM_NO", "A1")]);
        let insert = kv(&[("ITEM_NO", "A1"), ("DESCRIPTION", "Bolt")]);
        let update = kv(&[("DESCRIPTION", "Bolt")]);
        let my = upsert_statement(Dialect::MySql, "ITEM_MASTER", &key, &insert, &update).unwrap();
        assert_eq!(
            my.sql,
            "INSERT INTO `ITEM_MASTER` (`ITEM_NO`, `DESCRIPTION`) VALUES (?, ?) ON DUPLICATE KEY UPDATE `DESCRIPTION` = VALUES(`DESCRIPTION`)"
        );
        assert_eq!(my.params, vec![Some("A1".into()), Some("Bolt".into())]);
        let ms = upsert_statement(Dialect::MsSql, "dbo.ITEM_MASTER", &key, &insert, &update).unwrap();
        assert_eq!(
            ms.sql,
            "MERGE INTO [dbo].[ITEM_MASTER] WITH (HOLDLOCK) AS tgt USING (VALUES (?, ?)) AS src ([ITEM_NO], [DESCRIPTION]) ON tgt.[ITEM_NO] = src.[ITEM_NO] WHEN MATCHED THEN UPDATE SET tgt.[DESCRIPTION] = src.[DESCRIPTION] WHEN NOT MATCHED THEN INSERT ([ITEM_NO], [DESCRIPTION]) VALUES (src.[ITEM_NO], src.[DESCRIPTION]);"
        );
        let pg = upsert_statement(Dialect::Postgres, "item", &key, &insert, &[]).unwrap();
        assert_eq!(
            pg.sql,
            "INSERT INTO \"item\" (\"ITEM_NO\", \"DESCRIPTION\") VALUES (?, ?) ON CONFLICT (\"ITEM_NO\") DO NOTHING"
        );
        assert!(upsert_statement(Dialect::Ansi, "T", &key, &insert, &update).is_none());
        let up = update_statement(Dialect::Ansi, "T", &key, &update);
        assert_eq!(up.sql, "UPDATE \"T\" SET \"DESCRIPTION\" = ? WHERE \"ITEM_NO\" = ?");
        assert_eq!(up.params, vec![Some("Bolt".into()), Some("A1".into())]);
    }

    fn upsert(item: &str, description: &str) -> Vec<LegacyWrite> {
        vec![LegacyWrite::Upsert {
            table: "ITEM_MASTER".into(),
            key: kv(&[("ITEM_NO", item)]),
            insert: kv(&[("ITEM_NO", item), ("DESCRIPTION", description)]),
            update: kv(&[("DESCRIPTION", description)]),
            update_only: false,
        }]
    }

    #[test]
    fn alike_rows_go_in_one_statement_until_a_key_repeats() {
        let changes = vec![upsert("A1", "Bolt"), upsert("A2", "Nut"), upsert("A1", "Bolt M8"), upsert("A3", "Pin")];
        assert_eq!(bulk_run(Dialect::MySql, &changes), 2, "A1 again starts a new statement");
        let s = bulk_statement(Dialect::MySql, &changes[..2]).unwrap();
        assert_eq!(
            s.sql,
            "INSERT INTO `ITEM_MASTER` (`ITEM_NO`, `DESCRIPTION`) VALUES (?, ?), (?, ?) ON DUPLICATE KEY UPDATE `DESCRIPTION` = VALUES(`DESCRIPTION`)"
        );
        assert_eq!(s.params, vec![Some("A1".into()), Some("Bolt".into()), Some("A2".into()), Some("Nut".into())]);
        let pg = bulk_statement(Dialect::Postgres, &changes[..2]).unwrap();
        assert!(pg.sql.ends_with("VALUES (?, ?), (?, ?) ON CONFLICT (\"ITEM_NO\") DO UPDATE SET \"DESCRIPTION\" = EXCLUDED.\"DESCRIPTION\""), "{}", pg.sql);
        // SQL Server and the portable dialect write row by row.
        assert_eq!(bulk_run(Dialect::MsSql, &changes), 0);
        assert_eq!(bulk_run(Dialect::Ansi, &changes), 0);
        // A different shape (update only, other columns, a delete) ends the run.
        let mut only = upsert("B1", "x");
        if let LegacyWrite::Upsert { update_only, .. } = &mut only[0] {
            *update_only = true;
        }
        let other_columns = vec![LegacyWrite::Upsert {
            table: "ITEM_MASTER".into(),
            key: kv(&[("ITEM_NO", "B2")]),
            insert: kv(&[("ITEM_NO", "B2")]),
            update: vec![],
            update_only: false,
        }];
        assert_eq!(bulk_run(Dialect::MySql, &[upsert("A1", "a"), only.clone()]), 1);
        assert_eq!(bulk_run(Dialect::MySql, &[upsert("A1", "a"), other_columns]), 1);
        assert_eq!(bulk_run(Dialect::MySql, &[only]), 0);
        let many: Vec<_> = (0..1200).map(|i| upsert(&format!("I{i}"), "d")).collect();
        assert_eq!(bulk_run(Dialect::MySql, &many), BULK_ROWS);
        let ledger = |n: &str| {
            vec![LegacyWrite::Insert { table: "INV_TRANS".into(), insert: kv(&[("TRANS_NO", n), ("QTY", "1")]) }]
        };
        let s = bulk_statement(Dialect::MySql, &[ledger("7"), ledger("8")]).unwrap();
        assert_eq!(s.sql, "INSERT INTO `INV_TRANS` (`TRANS_NO`, `QTY`) VALUES (?, ?), (?, ?)");
    }

    #[test]
    fn hostile_names_stay_identifiers() {
        let key = kv(&[("K`; DROP TABLE X; --", "1")]);
        let s = upsert_statement(Dialect::MySql, "T", &key, &key, &[]).unwrap();
        assert!(s.sql.contains("`K``; DROP TABLE X; --`"), "{}", s.sql);
        assert!(!s.sql.contains('1'), "values are parameters: {}", s.sql);
    }
}
