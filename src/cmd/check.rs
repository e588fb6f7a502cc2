//! `millrace check`: validate the config and mappings against both live databases.
//!
//! Every table and column a mapping names is looked up where it should be: in Odoo's catalog
//! (`information_schema`) for the Odoo side, its parent, lookup tables and defaults; in the
//! legacy database through ODBC (`SELECT * FROM T WHERE 1=0` returns a table's column names
//! without a row) for the legacy side. On the side a mapping creates rows on, NOT NULL columns
//! must be given a value by a field or a default. Each problem is printed on a line of its own
//! naming the mapping file, entity, side, table and column; the command then fails. Mappings
//! that refer to each other in a cycle (no backfill order exists) are a problem too, naming
//! the entities of the cycle. A missing slot or publication is only a warning: `millrace setup`
//! creates them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;

use anyhow::{anyhow, Context};
use tokio_postgres::Client;

use super::CommandError;
use crate::config::Strategy;
use crate::config::{Config, ConfigError, LegacyConfig, LegacyKind, OdooConfig};
use crate::erp::odbc::OdbcConnection;
use crate::erp::{Dialect, LegacyConnection, LegacyError, ReadRow};
use crate::mapping::{ColumnTable, ConflictPolicy, Mapping, Mappings, System};
use crate::model::{TableName, Value};

/// What `check` found.
#[derive(Debug, Default)]
struct Report {
    problems: Vec<String>,
    warnings: Vec<String>,
}

/// One column as a catalog describes it.
#[derive(Debug, Clone)]
struct ColumnInfo {
    data_type: String,
    not_null: bool,
    has_default: bool,
}

/// A table's columns by name; `None` when the table does not exist (or cannot be read).
type Catalog = HashMap<String, Option<BTreeMap<String, ColumnInfo>>>;

pub async fn run(config: &Config) -> Result<(), CommandError> {
    let dir = &config.sync.mappings;
    let mappings =
        Mappings::load_dir(dir).map_err(|e| ConfigError::Invalid { field: "sync.mappings", message: e.to_string() })?;
    let odoo = config.odoo()?;
    let legacy = config.legacy()?;
    let mut report = Report::default();

    // `backfill` copies entities in an order derived from what their mappings refer to, which a
    // cycle makes impossible.
    if let Err(cycle) = crate::mapping::order::backfill_order(&mappings) {
        report.problems.push(cycle.to_string());
    }
    check_odoo(odoo, &mappings, &mut report).await?;
    check_legacy(legacy, &mappings, &mut report).await?;
    check_rights(config, &mappings, &mut report).await?;

    let mut out = std::io::stdout().lock();
    for warning in &report.warnings {
        writeln!(out, "warning: {warning}").context("writing the report")?;
    }
    for problem in &report.problems {
        writeln!(out, "error: {problem}").context("writing the report")?;
    }
    let n = report.problems.len();
    if n > 0 {
        return Err(anyhow!("{n} {}", if n == 1 { "problem" } else { "problems" }).into());
    }
    let count = mappings.entities.len();
    writeln!(out, "ok: {count} {} checked against both databases", if count == 1 { "mapping" } else { "mappings" })
        .context("writing the report")?;
    Ok(())
}

/// The configured roles' rights against what the mappings need ([`crate::grants`]): missing
/// ones are problems, ones beyond need warnings. A side that cannot be reached was reported
/// already.
async fn check_rights(config: &Config, mappings: &Mappings, report: &mut Report) -> anyhow::Result<()> {
    use super::check_rights as rights;
    let odoo = super::setup::odoo_with_mapped_tables(config)?;
    let legacy = super::setup::legacy_config(config, mappings)?;
    let state = config.state()?;
    let needs = crate::grants::needs(&odoo, state, Some(&legacy), mappings);
    let mut findings = rights::Findings::default();
    if let Ok(client) = crate::pg::connect(&odoo.conn).await {
        rights::odoo(&client, &needs, &mut findings).await?;
    }
    if let Ok(client) = crate::pg::connect(state).await {
        rights::state(&client, &mut findings).await?;
    }
    if let (Some(erp), LegacyKind::Odbc) = (needs.erp.clone(), legacy.kind) {
        let found = tokio::task::spawn_blocking(move || {
            let mut findings = rights::Findings::default();
            if let Ok(mut conn) = OdbcConnection::connect(&legacy.connection_string, legacy.password.as_ref()) {
                rights::erp(&mut conn, &erp, &mut findings);
            }
            findings
        })
        .await
        .context("the legacy connection thread failed")?;
        findings.problems.extend(found.problems);
        findings.warnings.extend(found.warnings);
    }
    report.problems.extend(findings.problems);
    report.warnings.extend(findings.warnings);
    Ok(())
}

/// `bom.toml: entity bom, odoo side`.
fn place(m: &Mapping, side: System) -> String {
    format!("{}: entity {}, {} side", m.file.display(), m.entity, side.as_str())
}

/// Whether the entity's rows are created on `side` (from the other side's changes).
fn creates_on(m: &Mapping, side: System) -> bool {
    m.owner != side || m.conflict == ConflictPolicy::Accept
}

fn field_name(m: &Mapping, field: usize) -> &str {
    &m.fields[field].name
}

// ---------------------------------------------------------------------------------------------
// Odoo

async fn odoo_catalog(client: &Client, tables: &BTreeSet<String>) -> anyhow::Result<Catalog> {
    let mut catalog = Catalog::new();
    for table in tables {
        let name = TableName::parse(table);
        let rows = client
            .query(
                "SELECT column_name::text, data_type::text, is_nullable = 'NO',
                        column_default IS NOT NULL OR is_identity = 'YES' OR is_generated = 'ALWAYS'
                   FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
                &[&&*name.schema, &&*name.name],
            )
            .await
            .with_context(|| format!("reading the columns of {name} from information_schema"))?;
        let columns: BTreeMap<String, ColumnInfo> = rows
            .iter()
            .map(|r| (r.get(0), ColumnInfo { data_type: r.get(1), not_null: r.get(2), has_default: r.get(3) }))
            .collect();
        catalog.insert(table.clone(), if columns.is_empty() { None } else { Some(columns) });
    }
    Ok(catalog)
}

/// Every Odoo table the mappings and the config name.
fn odoo_tables(mappings: &Mappings, odoo: &OdooConfig) -> BTreeSet<String> {
    let mut tables: BTreeSet<String> = mappings.odoo_tables().into_iter().collect();
    tables.extend(odoo.tables.iter().map(|t| t.to_string()));
    tables
}

async fn check_odoo(odoo: &OdooConfig, mappings: &Mappings, report: &mut Report) -> anyhow::Result<()> {
    let client = crate::pg::connect(&odoo.conn).await.context("connecting to Odoo's database")?;
    let tables = odoo_tables(mappings, odoo);
    let catalog = odoo_catalog(&client, &tables).await?;
    let role: String =
        client.query_one("SELECT current_user::text", &[]).await.context("reading the current role")?.get(0);
    let missing_hint = format!("or role {role} may not read it");
    for table in &odoo.tables {
        if catalog.get(&table.to_string()).is_none_or(Option::is_none) {
            report.problems.push(format!("odoo.tables: table {table} does not exist ({missing_hint})"));
        }
    }
    for m in &mappings.entities {
        // Odoo's tables are only read (writes go through its API, which fills what a create
        // leaves out itself): the API's fields are checked for writing, below.
        check_odoo_mapping(m, &catalog, &missing_hint, report);
        check_odoo_expressions(&client, m, report).await;
    }
    match &odoo.api {
        Some(api) => check_odoo_api(api, mappings, report).await,
        None if mappings.entities.iter().any(|m| m.writes_into(System::Odoo)) => report.warnings.push(
            "odoo.api: not configured, so nothing is written into Odoo: each change bound there is dead-lettered \
             (millrace writes into Odoo only through its API; add [odoo.api], then `millrace dlq retry`)"
                .into(),
        ),
        None => {}
    }
    check_slot_and_publication(&client, odoo, &tables, report).await
}

/// Every model and field the mappings write through Odoo's API, against the live Odoo
/// (`fields_get`): the model exists, each field exists on it, a mapped value is one of a
/// selection's values, and (a warning) a field Odoo shows read-only may ignore what is written.
async fn check_odoo_api(api: &crate::config::OdooApiSettings, mappings: &Mappings, report: &mut Report) {
    let session = match crate::odoo_api::OdooApi::login(api).await {
        Ok(session) => session,
        Err(e) => {
            report.problems.push(format!("odoo.api: {e} (the models of the mappings were not checked)"));
            return;
        }
    };
    for m in &mappings.entities {
        let at = place(m, System::Odoo);
        let model = &m.odoo.model;
        let fields = match session.fields_get(model).await {
            Ok(fields) => fields,
            Err(crate::odoo_api::ApiError::Refused { message, .. }) => {
                let exists = session.model_exists(model).await.unwrap_or(true);
                report.problems.push(if exists {
                    format!("{at}: model {model} cannot be read by the integration user {}: {message}", api.login)
                } else {
                    format!("{at}: Odoo has no model {model} ([odoo] model; installed modules?)")
                });
                continue;
            }
            Err(e) => {
                report.problems.push(format!("{at}: {e}"));
                continue;
            }
        };
        // Fields a workflow records are never written: its action records them.
        let recorded: Vec<usize> = m.odoo.workflow.as_ref().map(|w| w.fields()).unwrap_or_default();
        if let Some(workflow) = &m.odoo.workflow {
            let (wanted, action) = match workflow.kind {
                crate::mapping::WorkflowKind::Production => ("mrp.production", "production"),
                crate::mapping::WorkflowKind::Delivery => ("sale.order.line", "delivery"),
            };
            if model != wanted {
                report
                    .problems
                    .push(format!("{at}: [odoo.workflow] kind {action:?} records on {wanted}, not on model {model}"));
            }
        }
        for c in m.odoo.columns.iter().filter(|c| !c.read_only && !recorded.contains(&c.field)) {
            let Some(name) = &c.orm_field else { continue };
            let field = field_name(m, c.field);
            for name in std::iter::once(name).chain(c.also.iter()) {
                let Some(info) = fields.get(name) else {
                    report.problems.push(format!("{at}: model {model} has no field {name} (field {field})"));
                    continue;
                };
                // What millrace only reads (an Odoo-owned field; a state of older Odoo versions
                // kept in a map) needs nothing of the field; what it may write does.
                let written = m.writes_field_into(c.field, System::Odoo);
                if written && info.readonly {
                    report.warnings.push(format!(
                        "{at}: field {name} of {model} is read-only in Odoo (field {field}): Odoo may compute it over what millrace writes"
                    ));
                }
                if written && info.ty == "selection" && !info.selection.is_empty() {
                    for (stored, _) in &c.map {
                        if !info.selection.contains(stored) {
                            report.problems.push(format!(
                                "{at}: field {field} maps to {stored:?}, which is not a value of {model}.{name} ({})",
                                info.selection.join(", ")
                            ));
                        }
                    }
                }
            }
        }
        let parent_defaults = m.odoo.parent.iter().filter(|p| p.create).flat_map(|p| p.defaults.iter());
        for (name, _) in m.odoo.defaults.iter().chain(parent_defaults) {
            if !fields.contains_key(name) {
                report.problems.push(format!("{at}: model {model} has no field {name} ([odoo] defaults)"));
            }
        }
    }
}

/// Each `expr` column is planned by the server against the mapping's tables, so a wrong column
/// or a syntax error shows now, with the server's message, rather than on the first change.
async fn check_odoo_expressions(client: &Client, m: &Mapping, report: &mut Report) {
    for c in m.odoo.columns.iter().filter(|c| c.expr.is_some()) {
        let expr = c.expr.as_deref().unwrap_or_default();
        let sql = format!("SELECT ({expr})::text {} LIMIT 0", crate::mapping::odoo::from_clause(m));
        if let Err(e) = client.prepare(&sql).await {
            let message = e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string());
            report.problems.push(format!(
                "{}: field {}: expr {expr:?} does not run: {message}",
                place(m, System::Odoo),
                field_name(m, c.field)
            ));
        }
    }
}

fn check_odoo_mapping(m: &Mapping, catalog: &Catalog, missing_hint: &str, report: &mut Report) {
    let side = &m.odoo;
    let at = place(m, System::Odoo);
    let table_of = |name: &str| catalog.get(name).and_then(Option::as_ref);
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let need_column = |table: &str, column: &str, why: &str, problems: &mut Vec<String>| -> Option<ColumnInfo> {
        let columns = table_of(table)?;
        match columns.get(column) {
            Some(info) => Some(info.clone()),
            None => {
                problems.push(format!("{at}: column {table}.{column} does not exist ({why})"));
                None
            }
        }
    };

    let main = table_of(&side.table);
    if main.is_none() {
        problems.push(format!("{at}: table {} does not exist ({missing_hint}) ([odoo] table)", side.table));
    }
    need_column(&side.table, &side.id_column, "[odoo] id_column", &mut problems);
    if let Some(parent) = &side.parent {
        if table_of(&parent.table).is_none() {
            problems
                .push(format!("{at}: table {} does not exist ({missing_hint}) ([odoo.parent] table)", parent.table));
        }
        need_column(&side.table, &parent.link, "[odoo.parent] link", &mut problems);
        need_column(&parent.table, "id", "the parent's id, which the link references", &mut problems);
    }
    for c in side.columns.iter().filter(|c| c.expr.is_none()) {
        let field = field_name(m, c.field);
        let table = match (c.table, &side.parent) {
            (ColumnTable::Parent, Some(parent)) => parent.table.as_str(),
            _ => side.table.as_str(),
        };
        let why = format!("field {field}");
        let info = need_column(table, &c.column, &why, &mut problems);
        for also in &c.also {
            need_column(table, also, &format!("field {field}, `also`"), &mut problems);
        }
        match (&info, &c.translate, &c.lookup) {
            (Some(info), Some(lang), _) if info.data_type != "jsonb" => problems.push(format!(
                "{at}: column {table}.{} is {}, not a translated jsonb (field {field} has translate = {lang:?})",
                c.column, info.data_type
            )),
            (Some(info), None, None) if info.data_type == "jsonb" => warnings.push(format!(
                "{at}: column {table}.{} is jsonb (translated?) and field {field} reads it whole; add translate = \"en_US\" if it holds translations",
                c.column
            )),
            _ => {}
        }
        if let Some(l) = &c.lookup {
            if table_of(&l.table).is_none() {
                problems
                    .push(format!("{at}: table {} does not exist ({missing_hint}) (lookup of field {field})", l.table));
                continue;
            }
            need_column(&l.table, &l.key, &format!("lookup key of field {field}"), &mut problems);
            let value = need_column(&l.table, &l.value, &format!("lookup value of field {field}"), &mut problems);
            if let (Some(value), Some(lang)) = (value, &l.translate) {
                if value.data_type != "jsonb" {
                    problems.push(format!(
                        "{at}: column {}.{} is {}, not a translated jsonb (lookup of field {field} has translate = {lang:?})",
                        l.table, l.value, value.data_type
                    ));
                }
            }
            for (column, _) in &l.filter {
                need_column(&l.table, column, &format!("lookup `where` of field {field}"), &mut problems);
            }
        }
    }
    report.problems.extend(problems);
    report.warnings.extend(warnings);
}

/// NOT NULL columns without a default that nothing gives a value on insert.
fn uncovered(
    at: &str,
    table: &str,
    columns: &BTreeMap<String, ColumnInfo>,
    given: &BTreeSet<&str>,
    defaults_section: &str,
) -> Vec<String> {
    columns
        .iter()
        .filter(|(name, info)| info.not_null && !info.has_default && !given.contains(name.as_str()))
        .map(|(name, _)| {
            format!(
                "{at}: column {table}.{name} is NOT NULL without a default, and no field or {defaults_section} gives it a value: rows created here would be refused"
            )
        })
        .collect()
}

/// Fields stored only on `side` in NOT NULL columns: a row created from the other side's
/// change has no value for them, so the insert writes NULL and fails.
fn only_here(
    m: &Mapping,
    side: System,
    which: ColumnTable,
    table: &str,
    columns: &BTreeMap<String, ColumnInfo>,
) -> Vec<String> {
    let other = m.side(side.other());
    m.side(side)
        .columns
        .iter()
        // A number the ERP assigns (`assign`) is given when the row is created.
        .filter(|c| c.table == which && !c.read_only && c.assign.is_none() && other.column_of(c.field).is_none())
        .filter(|c| columns.get(&c.column).is_some_and(|info| info.not_null))
        .map(|c| {
            format!(
                "{}: column {table}.{} is NOT NULL, but field {} is stored on this side only: rows created from {} changes would get NULL",
                place(m, side),
                c.column,
                field_name(m, c.field),
                side.other().as_str()
            )
        })
        .collect()
}

async fn check_slot_and_publication(
    client: &Client,
    odoo: &OdooConfig,
    tables: &BTreeSet<String>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let slot = client
        .query_opt("SELECT plugin::text FROM pg_replication_slots WHERE slot_name = $1", &[&odoo.slot])
        .await
        .context("reading pg_replication_slots")?;
    match slot {
        None => report
            .warnings
            .push(format!("odoo: replication slot {} does not exist yet (`millrace setup` creates it)", odoo.slot)),
        Some(row) => {
            let plugin: Option<String> = row.get(0);
            if plugin.as_deref() != Some("pgoutput") {
                report.warnings.push(format!(
                    "odoo: replication slot {} uses plugin {}, not pgoutput (`millrace setup` explains what to do)",
                    odoo.slot,
                    plugin.as_deref().unwrap_or("(none: a physical slot)")
                ));
            }
        }
    }
    let publication = client
        .query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&odoo.publication])
        .await
        .context("reading pg_publication")?;
    if publication.is_none() {
        report
            .warnings
            .push(format!("odoo: publication {} does not exist yet (`millrace setup` creates it)", odoo.publication));
        return Ok(());
    }
    let published: BTreeSet<String> = client
        .query(
            "SELECT schemaname::text || '.' || tablename::text FROM pg_publication_tables WHERE pubname = $1",
            &[&odoo.publication],
        )
        .await
        .context("reading pg_publication_tables")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for table in tables {
        let name = TableName::parse(table).to_string();
        if !published.contains(&name) {
            report.warnings.push(format!(
                "odoo: publication {} does not publish {name}, so its changes go unseen (`millrace setup` adds it)",
                odoo.publication
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Legacy

/// What the legacy database says about the tables the mappings name.
#[derive(Debug, Default)]
struct LegacyFacts {
    /// Column names by table, as the driver returns them; the error when the table cannot be read.
    columns: HashMap<String, Result<Vec<String>, String>>,
    /// NOT NULL and default of each column, for tables rows are created in; `None` when the
    /// catalog could not be read.
    meta: HashMap<String, Option<BTreeMap<String, ColumnInfo>>>,
}

fn legacy_message(error: LegacyError) -> String {
    match error {
        LegacyError::Query { message, .. } => message,
        other => other.to_string(),
    }
}

/// `INFORMATION_SCHEMA.COLUMNS` of one table: NOT NULL and default per column.
fn legacy_meta(conn: &mut OdbcConnection, table: &str) -> Option<BTreeMap<String, ColumnInfo>> {
    let (schema, name) = match table.rsplit_once('.') {
        Some((schema, name)) => (Some(schema), name),
        None => (None, table),
    };
    let current = match conn.dialect() {
        Dialect::MySql => "DATABASE()",
        Dialect::MsSql => "SCHEMA_NAME()",
        Dialect::Postgres => "current_schema()",
        Dialect::Ansi => return None,
    };
    let mut params = vec![Value::Text(name.to_string())];
    let schema_clause = match schema {
        Some(schema) => {
            params.push(Value::Text(schema.rsplit('.').next().unwrap_or(schema).to_string()));
            "TABLE_SCHEMA = ?".to_string()
        }
        None => format!("TABLE_SCHEMA = {current}"),
    };
    let sql = format!(
        "SELECT COLUMN_NAME, IS_NULLABLE, COLUMN_DEFAULT FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_NAME = ? AND {schema_clause}"
    );
    let mut columns = BTreeMap::new();
    let result = conn.select(table, &sql, &params, &mut |batch| {
        for row in batch.rows {
            let ReadRow::Ok(values) = row else { continue };
            let text = |i: usize| match values.get(i) {
                Some(Value::Text(s)) => Some(s.clone()),
                _ => None,
            };
            let Some(column) = text(0) else { continue };
            let not_null = text(1).is_some_and(|n| n.trim().eq_ignore_ascii_case("NO"));
            // MariaDB reports an explicit `DEFAULT NULL` as the text NULL.
            let has_default = text(2).is_some_and(|d| !d.eq_ignore_ascii_case("NULL"));
            columns.insert(column, ColumnInfo { data_type: String::new(), not_null, has_default });
        }
        Ok(())
    });
    match result {
        Ok(()) if !columns.is_empty() => Some(columns),
        _ => None,
    }
}

/// Connects and reads what `check` needs; blocking (ODBC), so it runs on the blocking pool.
fn read_legacy(
    legacy: &LegacyConfig,
    tables: BTreeSet<String>,
    creating: BTreeSet<String>,
) -> Result<LegacyFacts, LegacyError> {
    let mut conn = OdbcConnection::connect(&legacy.connection_string, legacy.password.as_ref())?;
    let dialect = conn.dialect();
    let mut facts = LegacyFacts::default();
    for table in tables {
        let sql = format!("SELECT * FROM {} WHERE 1=0", dialect.quote_table(&table));
        let columns = conn.result_columns(&table, &sql).map_err(legacy_message);
        if columns.is_ok() && creating.contains(&table) {
            let meta = legacy_meta(&mut conn, &table);
            facts.meta.insert(table.clone(), meta);
        }
        facts.columns.insert(table, columns);
    }
    Ok(facts)
}

async fn check_legacy(legacy: &LegacyConfig, mappings: &Mappings, report: &mut Report) -> anyhow::Result<()> {
    if legacy.kind == LegacyKind::Mssql {
        report.problems.push(
            "[legacy] kind = \"mssql\": `millrace run` writes to the legacy database through ODBC only; \
             use kind = \"odbc\" with Microsoft's ODBC driver (the legacy side was not checked)"
                .into(),
        );
        return Ok(());
    }
    let mut tables = BTreeSet::new();
    let mut creating = BTreeSet::new();
    for m in &mappings.entities {
        tables.insert(m.legacy.table.clone());
        if creates_on(m, System::Legacy) {
            creating.insert(m.legacy.table.clone());
        }
        for c in &m.legacy.columns {
            if let Some(l) = &c.lookup {
                tables.insert(l.table.clone());
            }
            if let Some(r) = &c.references {
                tables.insert(r.table.clone());
            }
        }
    }
    tables.extend(legacy.tables.iter().map(|t| t.table.clone()));
    let config = legacy.clone();
    let facts = tokio::task::spawn_blocking(move || read_legacy(&config, tables, creating))
        .await
        .context("the legacy connection thread failed")?;
    let facts = match facts {
        Ok(facts) => facts,
        Err(error) => {
            // The message names the target with its password hidden.
            report.problems.push(format!("legacy: {error} (the legacy side was not checked)"));
            return Ok(());
        }
    };
    for t in &legacy.tables {
        let at = format!("[[legacy.tables]] {}", t.table);
        let mut wanted: Vec<(String, &str)> = t.key.iter().map(|k| (k.clone(), "key")).collect();
        if let Some(column) = strategy_column(&t.strategy) {
            wanted.push((column, "strategy column"));
        }
        legacy_columns(&facts, &at, &t.table, &wanted, &mut report.problems);
    }
    for m in &mappings.entities {
        check_legacy_mapping(m, &facts, &mut report.problems);
    }
    Ok(())
}

fn strategy_column(strategy: &Strategy) -> Option<String> {
    match strategy {
        Strategy::Timestamp { column, .. } | Strategy::Rowversion { column } => Some(column.clone()),
        Strategy::Hashdiff { .. } | Strategy::ChangeTracking => None,
    }
}

/// Checks that `table` can be read and has each wanted column, named exactly as the driver
/// returns it (rows are read by column name).
fn legacy_columns(facts: &LegacyFacts, at: &str, table: &str, wanted: &[(String, &str)], problems: &mut Vec<String>) {
    match facts.columns.get(table) {
        None => {}
        Some(Err(message)) => problems.push(format!("{at}: table {table} cannot be read: {message}")),
        Some(Ok(columns)) => {
            for (column, why) in wanted {
                if columns.iter().any(|c| c == column) {
                    continue;
                }
                let hint = match columns.iter().find(|c| c.eq_ignore_ascii_case(column)) {
                    Some(actual) => format!("; the table has {actual}, and names must match exactly"),
                    None => String::new(),
                };
                problems.push(format!("{at}: column {table}.{column} does not exist ({why}{hint})"));
            }
        }
    }
}

fn check_legacy_mapping(m: &Mapping, facts: &LegacyFacts, problems: &mut Vec<String>) {
    let side = &m.legacy;
    let at = place(m, System::Legacy);
    let mut wanted: Vec<(String, String)> = Vec::new();
    for c in &side.columns {
        let field = field_name(m, c.field);
        wanted.push((c.column.clone(), format!("field {field}")));
        for also in &c.also {
            wanted.push((also.clone(), format!("field {field}, `also`")));
        }
    }
    for (column, _) in &side.defaults {
        wanted.push((column.clone(), "[legacy.defaults]".into()));
    }
    if let Some(column) = side.poll.as_ref().and_then(|p| strategy_column(&p.strategy)) {
        wanted.push((column, "[legacy] column, the strategy's change column".into()));
    }
    let wanted: Vec<(String, &str)> = wanted.iter().map(|(c, w)| (c.clone(), w.as_str())).collect();
    legacy_columns(facts, &at, &side.table, &wanted, problems);

    for c in &side.columns {
        let Some(l) = &c.lookup else { continue };
        let field = field_name(m, c.field);
        let why_key = format!("lookup key of field {field}");
        let why_value = format!("lookup value of field {field}");
        let why_filter = format!("lookup `where` of field {field}");
        let mut wanted = vec![(l.key.clone(), why_key.as_str()), (l.value.clone(), why_value.as_str())];
        wanted.extend(l.filter.iter().map(|(column, _)| (column.clone(), why_filter.as_str())));
        legacy_columns(facts, &at, &l.table, &wanted, problems);
    }
    for c in &side.columns {
        let Some(r) = &c.references else { continue };
        let why = format!("what field {} references", field_name(m, c.field));
        legacy_columns(facts, &at, &r.table, &[(r.column.clone(), why.as_str())], problems);
    }

    if !creates_on(m, System::Legacy) {
        return;
    }
    let Some(Some(meta)) = facts.meta.get(&side.table) else { return };
    let mut given: BTreeSet<&str> = side.defaults.iter().map(|(c, _)| c.as_str()).collect();
    for c in side.columns.iter().filter(|c| !c.read_only) {
        given.insert(&c.column);
        given.extend(c.also.iter().map(String::as_str));
    }
    problems.extend(uncovered(&at, &side.table, meta, &given, "[legacy.defaults]"));
    problems.extend(only_here(m, System::Legacy, ColumnTable::Main, &side.table, meta));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn mapping(text: &str) -> Mapping {
        Mapping::parse(Path::new("mappings/thing.toml"), text).unwrap()
    }

    const THING: &str = r#"
entity = "thing"
key = ["code"]
owner = "legacy"
[fields]
code = { type = "text" }
name = { type = "text" }
note = { type = "text" }
[odoo]
table = "thing"
defaults = { kind = "x" }
[odoo.columns]
code = "code"
name = { column = "name", translate = "en_US" }
note = "note"
[legacy]
table = "THING"
[legacy.columns]
code = "CODE"
name = "NAME"
"#;

    fn info(data_type: &str, not_null: bool, has_default: bool) -> ColumnInfo {
        ColumnInfo { data_type: data_type.into(), not_null, has_default }
    }

    #[test]
    fn odoo_problems_name_file_entity_side_table_and_column() {
        let m = mapping(THING);
        let mut catalog = Catalog::new();
        catalog.insert(
            "thing".into(),
            Some(BTreeMap::from([
                ("id".to_string(), info("integer", true, true)),
                ("code".to_string(), info("character varying", true, false)),
                ("name".to_string(), info("character varying", true, false)),
                ("note".to_string(), info("text", true, false)),
                ("company_id".to_string(), info("integer", true, false)),
            ])),
        );
        let mut report = Report::default();
        check_odoo_mapping(&m, &catalog, "hint", &mut report);
        let all = report.problems.join("\n");
        assert!(
            all.contains("mappings/thing.toml: entity thing, odoo side: column thing.name is character varying, not a translated jsonb"),
            "{all}"
        );
        // Odoo's tables are only read: what a create leaves out is Odoo's to fill (its API's
        // fields are checked against the live server instead).
        assert!(!all.contains("NOT NULL"), "{all}");
        assert_eq!(report.problems.len(), 1, "{all}");
    }

    #[test]
    fn legacy_names_must_match_exactly() {
        let m = mapping(THING);
        let mut facts = LegacyFacts::default();
        facts.columns.insert("THING".into(), Ok(vec!["code".into(), "NAME".into(), "LAST_UPD".into()]));
        let mut problems = Vec::new();
        check_legacy_mapping(&m, &facts, &mut problems);
        assert_eq!(
            problems,
            vec!["mappings/thing.toml: entity thing, legacy side: column THING.CODE does not exist (field code; the table has code, and names must match exactly)"]
        );
        facts.columns.insert("THING".into(), Err("Table 'THING' doesn't exist".into()));
        problems.clear();
        check_legacy_mapping(&m, &facts, &mut problems);
        assert_eq!(problems, vec!["mappings/thing.toml: entity thing, legacy side: table THING cannot be read: Table 'THING' doesn't exist"]);
    }
}
