//! `millrace setup` for the Odoo side: checks that the database can feed a logical slot and creates
//! the publication and the pgoutput slot, idempotently.
//!
//! Every check runs before anything is created, and every problem found is reported at once, each
//! with the statement that fixes it.

use std::collections::BTreeSet;
use std::fmt;

use tokio_postgres::Client;

use crate::config::OdooConfig;
use crate::model::row_change::quote_ident;
use crate::model::TableName;

/// Why the database cannot be set up as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupProblem {
    WalLevel { current: String },
    NoReplicationRole { role: String },
    NoTables,
    MissingTable { table: TableName },
    NotATable { table: TableName, kind: String },
    NoReplicaIdentity { table: TableName, identity: &'static str },
    SlotPluginMismatch { slot: String, plugin: String },
    SlotOtherDatabase { slot: String, database: String },
    SlotNotLogical { slot: String },
}

impl fmt::Display for SetupProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupProblem::WalLevel { current } => write!(
                f,
                "wal_level is '{current}', logical replication needs 'logical': run ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL (a reload is not enough)"
            ),
            SetupProblem::NoReplicationRole { role } => write!(
                f,
                "role {role} lacks the REPLICATION attribute needed to stream changes: run ALTER ROLE {} REPLICATION; as a superuser",
                quote_ident(role)
            ),
            SetupProblem::NoTables => write!(f, "odoo.tables is empty: name the tables to replicate, e.g. tables = [\"public.stock_move\"]"),
            SetupProblem::MissingTable { table } => {
                write!(f, "table {table} (in odoo.tables) does not exist in this database; check the name and schema")
            }
            SetupProblem::NotATable { table, kind } => {
                write!(f, "{table} (in odoo.tables) is a {kind}, not a table; only tables can be published")
            }
            SetupProblem::NoReplicaIdentity { table, identity } => write!(
                f,
                "table {table} has {identity}: updates and deletes would arrive without a key; run ALTER TABLE {} REPLICA IDENTITY FULL; (or add a primary key)",
                table.quoted()
            ),
            SetupProblem::SlotPluginMismatch { slot, plugin } => write!(
                f,
                "replication slot {slot} exists but uses the {plugin} plugin, millrace needs pgoutput: choose another odoo.slot, or drop it with SELECT pg_drop_replication_slot('{slot}'); if nothing else uses it"
            ),
            SetupProblem::SlotOtherDatabase { slot, database } => write!(
                f,
                "replication slot {slot} exists but belongs to database {database}: choose another odoo.slot"
            ),
            SetupProblem::SlotNotLogical { slot } => {
                write!(f, "replication slot {slot} exists but is a physical slot: choose another odoo.slot")
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("the Odoo database cannot be set up:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Refused(Vec<SetupProblem>),
    #[error("{what}: {source}")]
    Sql { what: String, source: tokio_postgres::Error },
}

impl SetupError {
    pub fn problems(&self) -> &[SetupProblem] {
        match self {
            SetupError::Refused(problems) => problems,
            SetupError::Sql { .. } => &[],
        }
    }
}

fn sql_err(what: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> SetupError {
    let what = what.into();
    move |source| SetupError::Sql { what, source }
}

/// One thing setup will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupStep {
    CreatePublication { publication: String, tables: Vec<TableName> },
    SetPublicationTables { publication: String, tables: Vec<TableName> },
    CreateSlot { slot: String },
}

impl SetupStep {
    /// The statement as it would be typed in psql.
    pub fn sql(&self) -> String {
        let table_list = |tables: &[TableName]| tables.iter().map(TableName::quoted).collect::<Vec<_>>().join(", ");
        match self {
            SetupStep::CreatePublication { publication, tables } => {
                format!("CREATE PUBLICATION {} FOR TABLE {};", quote_ident(publication), table_list(tables))
            }
            SetupStep::SetPublicationTables { publication, tables } => {
                format!("ALTER PUBLICATION {} SET TABLE {};", quote_ident(publication), table_list(tables))
            }
            SetupStep::CreateSlot { slot } => {
                format!("SELECT pg_create_logical_replication_slot('{}', 'pgoutput');", slot.replace('\'', "''"))
            }
        }
    }
}

/// Checks the database and works out what is missing. Changes nothing.
pub async fn plan(client: &Client, config: &OdooConfig) -> Result<Vec<SetupStep>, SetupError> {
    plan_with(client, config, true).await
}

/// [`plan`] for statements an administrator runs: the role's missing REPLICATION attribute is
/// among what they grant, not a reason to stop.
pub async fn plan_for_administrator(client: &Client, config: &OdooConfig) -> Result<Vec<SetupStep>, SetupError> {
    plan_with(client, config, false).await
}

async fn plan_with(
    client: &Client,
    config: &OdooConfig,
    role_must_replicate: bool,
) -> Result<Vec<SetupStep>, SetupError> {
    let mut problems = Vec::new();

    let wal_level: String = client.query_one("SHOW wal_level", &[]).await.map_err(sql_err("reading wal_level"))?.get(0);
    if wal_level != "logical" {
        problems.push(SetupProblem::WalLevel { current: wal_level });
    }

    let role = client
        .query_one(
            "SELECT current_user::text, rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(sql_err("reading the role's attributes"))?;
    let (role_name, can_replicate): (String, bool) = (role.get(0), role.get(1));
    if !can_replicate && role_must_replicate {
        problems.push(SetupProblem::NoReplicationRole { role: role_name });
    }

    if config.tables.is_empty() {
        problems.push(SetupProblem::NoTables);
    }
    for table in &config.tables {
        let row = client
            .query_opt(
                "SELECT c.relkind::text, c.relreplident::text,
                        EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = $1 AND c.relname = $2",
                &[&&*table.schema, &&*table.name],
            )
            .await
            .map_err(sql_err(format!("looking up table {table}")))?;
        let Some(row) = row else {
            problems.push(SetupProblem::MissingTable { table: table.clone() });
            continue;
        };
        let (kind, identity, has_pk): (String, String, bool) = (row.get(0), row.get(1), row.get(2));
        if kind != "r" && kind != "p" {
            let kind = match kind.as_str() {
                "v" => "view",
                "m" => "materialized view",
                "f" => "foreign table",
                "S" => "sequence",
                _ => "relation of another kind",
            };
            problems.push(SetupProblem::NotATable { table: table.clone(), kind: kind.to_string() });
            continue;
        }
        match identity.as_str() {
            "d" if !has_pk => problems.push(SetupProblem::NoReplicaIdentity {
                table: table.clone(),
                identity: "no primary key and the default replica identity",
            }),
            "n" => problems
                .push(SetupProblem::NoReplicaIdentity { table: table.clone(), identity: "REPLICA IDENTITY NOTHING" }),
            _ => {}
        }
    }

    let slot = client
        .query_opt(
            "SELECT coalesce(plugin, ''), coalesce(database::text, ''), slot_type::text = 'logical', current_database()::text
               FROM pg_replication_slots WHERE slot_name = $1",
            &[&config.slot],
        )
        .await
        .map_err(sql_err("looking up the replication slot"))?;
    let mut steps = Vec::new();
    match slot {
        None => steps.push(SetupStep::CreateSlot { slot: config.slot.clone() }),
        Some(row) => {
            let (plugin, database, logical, current): (String, String, bool, String) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            if !logical {
                problems.push(SetupProblem::SlotNotLogical { slot: config.slot.clone() });
            } else if plugin != "pgoutput" {
                problems.push(SetupProblem::SlotPluginMismatch { slot: config.slot.clone(), plugin });
            } else if database != current {
                problems.push(SetupProblem::SlotOtherDatabase { slot: config.slot.clone(), database });
            }
        }
    }

    if !problems.is_empty() {
        return Err(SetupError::Refused(problems));
    }

    let exists = client
        .query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&config.publication])
        .await
        .map_err(sql_err("looking up the publication"))?
        .is_some();
    let wanted: BTreeSet<TableName> = config.tables.iter().cloned().collect();
    if !exists {
        steps.insert(
            0,
            SetupStep::CreatePublication {
                publication: config.publication.clone(),
                tables: wanted.into_iter().collect(),
            },
        );
    } else {
        let published: BTreeSet<TableName> = client
            .query(
                "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1",
                &[&config.publication],
            )
            .await
            .map_err(sql_err("reading the publication's tables"))?
            .iter()
            .map(|r| TableName::new(r.get::<_, String>(0), r.get::<_, String>(1)))
            .collect();
        if published != wanted {
            steps.insert(
                0,
                SetupStep::SetPublicationTables {
                    publication: config.publication.clone(),
                    tables: wanted.into_iter().collect(),
                },
            );
        }
    }
    Ok(steps)
}

/// Runs the steps `plan` returned. The publication comes first: a slot created before it would
/// not see changes to tables added later in the same run.
pub async fn apply(client: &Client, steps: &[SetupStep]) -> Result<(), SetupError> {
    for step in steps {
        match step {
            SetupStep::CreateSlot { slot } => {
                client
                    .execute("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", &[slot])
                    .await
                    .map_err(sql_err(format!("creating replication slot {slot}")))?;
            }
            other => {
                client.batch_execute(&other.sql()).await.map_err(sql_err(other.sql()))?;
            }
        }
        tracing::info!(statement = %step.sql(), "setup step done");
    }
    Ok(())
}
