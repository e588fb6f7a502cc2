//! The least privileges millrace needs, derived from the configuration and the mappings: printed
//! as the statements an administrator runs (`millrace setup --print-sql`), and compared with what
//! the configured roles actually hold (`millrace check`).
//!
//! What each connection needs:
//! - **Odoo's database (PostgreSQL)**: a role with `LOGIN` and `REPLICATION` (to create and
//!   stream its slot), `CONNECT` on the database, `USAGE` on each schema and `SELECT` on every
//!   table the mappings read. No write right at all: millrace writes into Odoo only through its
//!   API. The publication is created by the tables' owner (PostgreSQL lets only the owner
//!   publish a table).
//! - **The control state**: the schema `millrace`, owned by millrace's role (it creates and
//!   migrates its own tables there).
//! - **The ERP**: `SELECT` on every table polled or looked up; `INSERT` and `UPDATE` on the
//!   tables the mappings write; `DELETE` only where an Odoo delete deletes the ERP's row
//!   (`on_delete = "delete"` on the legacy side, and Odoo the owner); SQL Server's change tracking also needs
//!   `VIEW CHANGE TRACKING` on the tracked tables.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::config::{LegacyConfig, LegacyKind, OdooConfig, PgConnInfo, Strategy};
use crate::erp::Dialect;
use crate::mapping::{ConflictPolicy, Mappings, OnDelete, System};
use crate::model::row_change::quote_ident;
use crate::model::TableName;

/// Rights on one ERP table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErpRights {
    pub select: bool,
    pub insert: bool,
    pub update: bool,
    pub delete: bool,
    /// SQL Server: `VIEW CHANGE TRACKING` (the table is polled with change tracking).
    pub view_change_tracking: bool,
}

impl ErpRights {
    /// The rights as SQL privilege names, in GRANT order.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        for (has, name) in
            [(self.select, "SELECT"), (self.insert, "INSERT"), (self.update, "UPDATE"), (self.delete, "DELETE")]
        {
            if has {
                names.push(name);
            }
        }
        names
    }

    pub fn writes(&self) -> bool {
        self.insert || self.update || self.delete
    }
}

/// Everything millrace's roles need, for one configuration.
#[derive(Debug, Clone)]
pub struct Needs {
    /// The role millrace connects to Odoo's database as.
    pub odoo_role: String,
    pub odoo_database: String,
    pub publication: String,
    /// Every Odoo table read: the published ones, parents and lookups.
    pub odoo_tables: BTreeSet<TableName>,
    /// The role and database of the control state.
    pub state_role: String,
    pub state_database: String,
    /// The ERP's tables and the rights each needs; `None` without a `[legacy]` section.
    pub erp: Option<ErpNeeds>,
}

/// What the ERP account needs.
#[derive(Debug, Clone)]
pub struct ErpNeeds {
    pub dialect: Dialect,
    /// The login from the connection string (`UID`, `User`, `User ID`), if it names one.
    pub user: Option<String>,
    /// The database from the connection string (`Database`, `Initial Catalog`), if it names one.
    pub database: Option<String>,
    /// By table name as the mappings and `[[legacy.tables]]` write it.
    pub tables: BTreeMap<String, ErpRights>,
}

/// What millrace needs for `odoo` (with the mapped tables), `state`, `legacy` and `mappings`.
pub fn needs(odoo: &OdooConfig, state: &PgConnInfo, legacy: Option<&LegacyConfig>, mappings: &Mappings) -> Needs {
    let mut odoo_tables: BTreeSet<TableName> = odoo.tables.iter().cloned().collect();
    odoo_tables.extend(mappings.odoo_tables().iter().map(|t| TableName::parse(t)));
    // A column read through an SQL expression reads the tables it names (Odoo's properties,
    // say) with millrace's role too.
    for m in &mappings.entities {
        for c in &m.odoo.columns {
            if let Some(expr) = &c.expr {
                odoo_tables.extend(tables_in_sql(expr));
            }
        }
    }
    let erp = legacy.map(|legacy| {
        let mut tables: BTreeMap<String, ErpRights> = BTreeMap::new();
        for t in &legacy.tables {
            let rights = tables.entry(t.table.clone()).or_default();
            rights.select = true;
            rights.view_change_tracking |= matches!(t.strategy, Strategy::ChangeTracking);
        }
        for m in &mappings.entities {
            let side = &m.legacy;
            let rights = tables.entry(side.table.clone()).or_default();
            rights.select = true;
            if let Some(poll) = &side.poll {
                rights.view_change_tracking |= matches!(poll.strategy, Strategy::ChangeTracking);
            }
            if m.writes_into(System::Legacy) {
                rights.insert = true;
                rights.update = true;
                // A delete reaches the ERP only from the owner (or where the ERP accepts
                // anything): elsewhere it is a conflict, never applied.
                let applied = m.owner == System::Odoo || m.conflict == ConflictPolicy::Accept;
                rights.delete |= side.on_delete == OnDelete::Delete && applied;
            }
            let mut read = |table: &str| tables.entry(table.to_string()).or_default().select = true;
            if let Some(parent) = &side.parent {
                read(&parent.table);
            }
            for c in &side.columns {
                if let Some(l) = &c.lookup {
                    read(&l.table);
                }
                if let Some(r) = &c.references {
                    read(&r.table);
                }
            }
        }
        let pairs = connection_string_pairs(&legacy.connection_string);
        let find = |names: &[&str]| {
            pairs.iter().find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n))).map(|(_, v)| v.clone())
        };
        let dialect = match legacy.kind {
            LegacyKind::Mssql => Dialect::MsSql,
            LegacyKind::Odbc => find(&["Driver"]).map_or(Dialect::Ansi, |d| Dialect::from_dbms_name(&d)),
        };
        ErpNeeds {
            dialect,
            user: find(&["UID", "User", "User ID", "Username"]),
            database: find(&["Database", "DB", "Initial Catalog"]),
            tables,
        }
    });
    Needs {
        odoo_role: odoo.conn.user.clone(),
        odoo_database: odoo.conn.dbname.clone(),
        publication: odoo.publication.clone(),
        odoo_tables,
        state_role: state.user.clone(),
        state_database: state.dbname.clone(),
        erp,
    }
}

/// The tables an SQL expression reads: what follows `FROM` or `JOIN` (and the commas of a
/// `FROM` list), unless it is a subquery or a function. Unqualified names are in `public`.
pub fn tables_in_sql(sql: &str) -> Vec<TableName> {
    #[derive(PartialEq)]
    enum Token {
        Word(String),
        Quoted(String),
        Symbol(char),
    }
    let mut tokens = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                // A string literal ('' inside is a quote): skipped.
                while let Some(c) = chars.next() {
                    if c == '\'' && chars.peek() != Some(&'\'') {
                        break;
                    }
                    if c == '\'' {
                        chars.next();
                    }
                }
            }
            '"' => {
                let mut name = String::new();
                while let Some(c) = chars.next() {
                    if c == '"' {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                            name.push('"');
                            continue;
                        }
                        break;
                    }
                    name.push(c);
                }
                tokens.push(Token::Quoted(name));
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut word = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_alphanumeric() || n == '_' || n == '$' {
                        word.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(word.to_ascii_lowercase()));
            }
            c if c.is_whitespace() => {}
            c => tokens.push(Token::Symbol(c)),
        }
    }
    const STOP: &[&str] = &[
        "where",
        "join",
        "on",
        "using",
        "left",
        "right",
        "inner",
        "outer",
        "full",
        "cross",
        "natural",
        "group",
        "order",
        "limit",
        "offset",
        "union",
        "except",
        "intersect",
        "having",
        "window",
        "for",
        "lateral",
        "only",
        "as",
    ];
    let name_at = |i: usize| match tokens.get(i) {
        Some(Token::Word(w)) if !STOP.contains(&w.as_str()) => Some(w.clone()),
        Some(Token::Quoted(q)) => Some(q.clone()),
        _ => None,
    };
    // The table named at `i` (after FROM, JOIN or a comma of a FROM list), if it is one.
    let table_at = |mut i: usize| -> Option<TableName> {
        if matches!(tokens.get(i), Some(Token::Word(w)) if w == "only" || w == "lateral") {
            i += 1;
        }
        let first = name_at(i)?;
        let (table, next) = match (tokens.get(i + 1), name_at(i + 2)) {
            (Some(Token::Symbol('.')), Some(second)) => (TableName::new(first, second), i + 3),
            _ => (TableName::new("public", first), i + 1),
        };
        // A function (FROM unnest(…)) is not a table.
        (tokens.get(next) != Some(&Token::Symbol('('))).then_some(table)
    };
    const ENDS_FROM: &[&str] = &[
        "where",
        "group",
        "order",
        "limit",
        "offset",
        "having",
        "window",
        "union",
        "except",
        "intersect",
        "returning",
    ];
    let mut found = Vec::new();
    // Per parenthesis depth: whether a FROM list is open there (its commas name tables).
    let mut in_from = vec![false];
    for (i, token) in tokens.iter().enumerate() {
        let names_table = match token {
            Token::Symbol('(') => {
                in_from.push(false);
                false
            }
            Token::Symbol(')') => {
                if in_from.len() > 1 {
                    in_from.pop();
                }
                false
            }
            Token::Symbol(',') => in_from.last().copied().unwrap_or(false),
            Token::Word(w) if w == "from" => {
                if let Some(open) = in_from.last_mut() {
                    *open = true;
                }
                true
            }
            Token::Word(w) if w == "join" => true,
            Token::Word(w) if ENDS_FROM.contains(&w.as_str()) => {
                if let Some(open) = in_from.last_mut() {
                    *open = false;
                }
                false
            }
            _ => false,
        };
        if names_table {
            if let Some(table) = table_at(i + 1) {
                if !found.contains(&table) {
                    found.push(table);
                }
            }
        }
    }
    found
}

/// `key=value;` pairs of an ODBC or ADO.NET connection string; `{…}` values may hold `;`.
fn connection_string_pairs(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else { break };
        let (value, next) = match after.strip_prefix('{') {
            Some(braced) => match braced.find('}') {
                Some(end) => (&braced[..end], braced[end + 1..].trim_start_matches(';')),
                None => (braced, ""),
            },
            None => match after.split_once(';') {
                Some((value, next)) => (value, next),
                None => (after, ""),
            },
        };
        pairs.push((key.trim().to_string(), value.trim().to_string()));
        rest = next;
    }
    pairs
}

impl Needs {
    /// The statements for Odoo's database, run by its owner or a superuser: the role's
    /// attributes and the read rights. (The publication and replica identity come from
    /// `setup`'s plan, which knows what already exists.)
    pub fn odoo_sql(&self) -> String {
        let role = quote_ident(&self.odoo_role);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "-- Odoo's database {} (PostgreSQL), as its owner or a superuser. The role needs no write right:\n\
             -- millrace writes into Odoo only through its API.\n\
             -- (once: CREATE ROLE {role} LOGIN REPLICATION PASSWORD '…';)\n\
             ALTER ROLE {role} NOSUPERUSER REPLICATION;\n\
             GRANT CONNECT ON DATABASE {} TO {role};",
            quote_ident(&self.odoo_database),
            quote_ident(&self.odoo_database),
        );
        let schemas: BTreeSet<&str> = self.odoo_tables.iter().map(|t| &*t.schema).collect();
        for schema in schemas {
            let _ = writeln!(out, "GRANT USAGE ON SCHEMA {} TO {role};", quote_ident(schema));
        }
        for table in &self.odoo_tables {
            let _ = writeln!(out, "GRANT SELECT ON {} TO {role};", table.quoted());
        }
        out
    }

    /// The statements for the control state's database: the schema, owned by millrace's role.
    pub fn state_sql(&self) -> String {
        let role = quote_ident(&self.state_role);
        format!(
            "-- The control state, in database {} (PostgreSQL): a schema owned by millrace's role, where it\n\
             -- creates and migrates its own tables.\n\
             GRANT CONNECT ON DATABASE {} TO {role};\n\
             CREATE SCHEMA IF NOT EXISTS millrace AUTHORIZATION {role};\n\
             ALTER SCHEMA millrace OWNER TO {role};\n",
            quote_ident(&self.state_database),
            quote_ident(&self.state_database),
        )
    }
}

impl ErpNeeds {
    /// The account as a GRANT names it.
    fn grantee(&self) -> String {
        let user = self.user.as_deref().unwrap_or("millrace");
        match self.dialect {
            // The host part is where millrace connects from; '%' is any host.
            Dialect::MySql => format!("'{}'@'%'", user.replace('\'', "''")),
            dialect => dialect.quote(user),
        }
    }

    /// A table as a GRANT names it: qualified with the connection's database on MariaDB.
    pub fn grant_table(&self, table: &str) -> String {
        match (self.dialect, &self.database) {
            (Dialect::MySql, Some(db)) if !table.contains('.') => {
                format!("{}.{}", self.dialect.quote(db), self.dialect.quote_table(table))
            }
            (dialect, _) => dialect.quote_table(table),
        }
    }

    /// The statements for the ERP's database, run by an administrator.
    pub fn sql(&self) -> String {
        let grantee = self.grantee();
        let system = match self.dialect {
            Dialect::MySql => "MariaDB/MySQL",
            Dialect::MsSql => "SQL Server",
            Dialect::Postgres => "PostgreSQL",
            Dialect::Ansi => "SQL",
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "-- The ERP's database{} ({system}), as an administrator: read what is polled and looked up, write\n\
             -- only the tables the mappings write.",
            self.database.as_deref().map(|d| format!(" {d}")).unwrap_or_default()
        );
        match self.dialect {
            Dialect::MySql => {
                let _ = writeln!(
                    out,
                    "-- (once: CREATE USER {grantee} IDENTIFIED BY '…'; '%' is any host: narrow it to millrace's)"
                );
            }
            Dialect::MsSql => {
                let _ =
                    writeln!(out, "-- (once: CREATE LOGIN … WITH PASSWORD = '…'; CREATE USER {grantee} FOR LOGIN …;)");
            }
            Dialect::Postgres | Dialect::Ansi => {
                let _ = writeln!(out, "-- (once: CREATE ROLE {grantee} LOGIN PASSWORD '…';)");
            }
        }
        if self.dialect == Dialect::Postgres {
            let schemas: BTreeSet<&str> =
                self.tables.keys().map(|t| t.rsplit_once('.').map_or("public", |(s, _)| s)).collect();
            for schema in schemas {
                let _ = writeln!(out, "GRANT USAGE ON SCHEMA {} TO {grantee};", self.dialect.quote(schema));
            }
        }
        for (table, rights) in &self.tables {
            let names = rights.names();
            if !names.is_empty() {
                let _ = writeln!(out, "GRANT {} ON {} TO {grantee};", names.join(", "), self.grant_table(table));
            }
            if rights.view_change_tracking && self.dialect == Dialect::MsSql {
                let _ = writeln!(out, "GRANT VIEW CHANGE TRACKING ON {} TO {grantee};", self.grant_table(table));
            }
        }
        out
    }
}

/// The statements for the shipped mappings (`mappings/`) with roles named `millrace`, as kept
/// in `sql/grants/`: what a deployment of the shipped mappings grants, for reading beside the
/// plan `millrace setup --print-sql` makes for a live configuration.
pub fn shipped_files(mappings: &Mappings) -> Result<Vec<(&'static str, String)>, crate::config::ConfigError> {
    struct NoEnv;
    impl crate::config::Env for NoEnv {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
    }
    let mut files = Vec::new();
    let header = "-- Generated from the shipped mappings (mappings/) by `cargo test grants::tests::shipped_grants`\n\
                  -- (MILLRACE_BLESS=1 rewrites it). For your own configuration, run\n\
                  -- `millrace setup --print-sql --for odoo|state|erp`, which also knows what exists already.\n";
    for (file, kind, driver) in
        [("mariadb.sql", "odbc", "MariaDB Unicode"), ("sqlserver.sql", "mssql", "ODBC Driver 18 for SQL Server")]
    {
        let toml = format!(
            "[odoo]\nurl = \"postgres://millrace@odoo-db/odoo\"\n[legacy]\nkind = \"{kind}\"\n\
             connection_string = \"Driver={{{driver}}};Server=erp;Database=erp;UID=millrace;\"\n"
        );
        let config = crate::config::Config::from_toml(&toml, &NoEnv)?;
        let mut odoo = config.odoo()?.clone();
        for table in mappings.odoo_tables() {
            let table = TableName::parse(&table);
            if !odoo.tables.contains(&table) {
                odoo.tables.push(table);
            }
        }
        let mut legacy = config.legacy()?.clone();
        legacy.tables.extend(mappings.legacy_tables());
        let needs = needs(&odoo, config.state()?, Some(&legacy), mappings);
        if files.is_empty() {
            let published = odoo.tables.iter().map(TableName::quoted).collect::<Vec<_>>().join(", ");
            let odoo_sql = format!(
                "{header}{}-- The publication (only a table's owner may publish it):\nCREATE PUBLICATION \"millrace\" FOR TABLE {published};\n",
                needs.odoo_sql()
            );
            files.push(("postgres-odoo.sql", odoo_sql));
            files.push(("postgres-state.sql", format!("{header}{}", needs.state_sql())));
        }
        if let Some(erp) = &needs.erp {
            files.push((file, format!("{header}{}", erp.sql())));
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sql/grants/` is what the shipped mappings need; MILLRACE_BLESS=1 rewrites it.
    #[test]
    fn shipped_grants() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mappings = Mappings::load_dir(&root.join("mappings")).expect("shipped mappings");
        for (file, text) in shipped_files(&mappings).expect("grants") {
            let path = root.join("sql/grants").join(file);
            if std::env::var_os("MILLRACE_BLESS").is_some() {
                std::fs::write(&path, &text).expect("write");
            }
            let kept = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(kept, text, "{} is out of date: run MILLRACE_BLESS=1 cargo test --lib grants", path.display());
        }
    }

    #[test]
    fn tables_an_expression_reads() {
        let names = |sql: &str| tables_in_sql(sql).iter().map(|t| t.to_string()).collect::<Vec<_>>();
        assert_eq!(
            names(
                "COALESCE((SELECT p.value_float FROM ir_property p WHERE p.name = 'from x' AND p.res_id = 'product.product,' || m.id), 0)"
            ),
            ["public.ir_property"]
        );
        assert_eq!(
            names("(SELECT l.name FROM stock_lot AS l JOIN \"Sales\".\"Order\" o ON o.id = l.id, res_company c WHERE true)"),
            ["public.stock_lot", "Sales.Order", "public.res_company"]
        );
        assert_eq!(names("(SELECT x FROM unnest(ARRAY[1]) x)"), Vec::<String>::new());
        assert_eq!(names("(SELECT 1 FROM (SELECT 2 FROM stock_move) s)"), ["public.stock_move"]);
        assert_eq!(names("round((1 / NULLIF(m.factor, 0))::numeric, 8)"), Vec::<String>::new());
    }

    #[test]
    fn connection_strings_name_user_and_database() {
        let pairs =
            connection_string_pairs("Driver={MariaDB Unicode};Server=h;User=erp_sync;PWD={a;b};Database=plant1;");
        let get = |k: &str| pairs.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("Driver"), Some("MariaDB Unicode"));
        assert_eq!(get("User"), Some("erp_sync"));
        assert_eq!(get("PWD"), Some("a;b"));
        assert_eq!(get("Database"), Some("plant1"));
    }

    fn erp(dialect: Dialect) -> ErpNeeds {
        let mut tables = BTreeMap::new();
        tables.insert(
            "ITEM_MASTER".to_string(),
            ErpRights { select: true, insert: true, update: true, ..Default::default() },
        );
        tables.insert("UOM".to_string(), ErpRights { select: true, ..Default::default() });
        tables.insert(
            "dbo.STOCK_TXN".to_string(),
            ErpRights { select: true, insert: true, update: true, delete: true, view_change_tracking: true },
        );
        ErpNeeds { dialect, user: Some("sync".into()), database: Some("plant".into()), tables }
    }

    #[test]
    fn mariadb_grants_are_per_table_and_quoted() {
        let sql = erp(Dialect::MySql).sql();
        assert!(sql.contains("GRANT SELECT, INSERT, UPDATE ON `plant`.`ITEM_MASTER` TO 'sync'@'%';"), "{sql}");
        assert!(sql.contains("GRANT SELECT ON `plant`.`UOM` TO 'sync'@'%';"), "{sql}");
        assert!(sql.contains("GRANT SELECT, INSERT, UPDATE, DELETE ON `dbo`.`STOCK_TXN`"), "{sql}");
        assert!(!sql.contains("CHANGE TRACKING ON"), "{sql}");
    }

    #[test]
    fn sql_server_grants_name_change_tracking() {
        let sql = erp(Dialect::MsSql).sql();
        assert!(sql.contains("GRANT SELECT ON [UOM] TO [sync];"), "{sql}");
        assert!(sql.contains("GRANT VIEW CHANGE TRACKING ON [dbo].[STOCK_TXN] TO [sync];"), "{sql}");
    }
}
