//! What type a column's values are read as: a domain as its base type, an array as an array of
//! its element type, everything else as itself.
//!
//! pgoutput names each column's type by oid. Built-in types (oid below 16384) are known here; for
//! the others PostgreSQL sends a Type message before the Relation message that uses them, naming
//! the type's *base* type (for a domain over `integer`, `pg_catalog.int4`), and the stream reads
//! `pg_type` when it connects (domains and arrays of user-defined types, [`CATALOG_TYPES_SQL`]).
//! Together they resolve a domain over a domain, a domain over an array, an array of a domain.

use std::collections::HashMap;
use std::sync::Arc;

/// How one column's values are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnType {
    /// The type whose text output the values are: the column's own type, or a domain's base type.
    /// For an array, the array type (when known; 0 otherwise).
    pub oid: u32,
    /// The type's SQL name (`integer`, `numeric`, `date`, `integer[]`, `public.mood`), carried
    /// by [`crate::model::Value::Raw`] values of the column.
    pub name: Arc<str>,
    /// For an array type: its element type and the delimiter between elements.
    pub array: Option<(Arc<ColumnType>, u8)>,
}

impl ColumnType {
    /// A built-in type, or a type known only by its oid (read as text).
    pub fn builtin(type_oid: u32) -> ColumnType {
        if let Some((element, delimiter)) = builtin_array_element(type_oid) {
            let element = ColumnType::builtin(element);
            return ColumnType {
                oid: type_oid,
                name: format!("{}[]", element.name).into(),
                array: Some((Arc::new(element), delimiter)),
            };
        }
        let name: Arc<str> = match builtin_type_name(type_oid) {
            Some(name) => name.into(),
            None => format!("type {type_oid}").into(),
        };
        ColumnType { oid: type_oid, name, array: None }
    }
}

/// The element type and delimiter of a built-in array type. `int2vector` and `oidvector` are not
/// arrays here: their text is space-separated, without braces.
pub fn builtin_array_element(type_oid: u32) -> Option<(u32, u8)> {
    let element = match type_oid {
        1000 => oid::BOOL,
        1001 => oid::BYTEA,
        1002 => oid::CHAR,
        1003 => oid::NAME,
        1005 => oid::INT2,
        1007 => oid::INT4,
        1009 => oid::TEXT,
        1014 => oid::BPCHAR,
        1015 => oid::VARCHAR,
        1016 => oid::INT8,
        1021 => oid::FLOAT4,
        1022 => oid::FLOAT8,
        1028 => oid::OID,
        1115 => oid::TIMESTAMP,
        1182 => oid::DATE,
        1183 => oid::TIME,
        1185 => oid::TIMESTAMPTZ,
        1187 => 1186,
        1231 => oid::NUMERIC,
        1270 => 1266,
        1561 => 1560,
        1563 => 1562,
        2951 => oid::UUID,
        199 => oid::JSON,
        3807 => oid::JSONB,
        143 => 142,
        791 => 790,
        651 => 650,
        1040 => 829,
        1041 => 869,
        1020 => return Some((603, b';')),
        _ => return None,
    };
    Some((element, b','))
}

/// The oid of a `pg_catalog` type named as `pg_type.typname` (`int4`, `_numeric`), for the base
/// types Type messages name. Only the types [`ColumnType::builtin`] reads specially, and their
/// arrays.
fn pg_catalog_type(typname: &str) -> Option<u32> {
    Some(match typname {
        "bool" => oid::BOOL,
        "bytea" => oid::BYTEA,
        "char" => oid::CHAR,
        "name" => oid::NAME,
        "int8" => oid::INT8,
        "int2" => oid::INT2,
        "int4" => oid::INT4,
        "text" => oid::TEXT,
        "oid" => oid::OID,
        "json" => oid::JSON,
        "xml" => 142,
        "float4" => oid::FLOAT4,
        "float8" => oid::FLOAT8,
        "money" => 790,
        "bpchar" => oid::BPCHAR,
        "varchar" => oid::VARCHAR,
        "date" => oid::DATE,
        "time" => oid::TIME,
        "timestamp" => oid::TIMESTAMP,
        "timestamptz" => oid::TIMESTAMPTZ,
        "interval" => 1186,
        "timetz" => 1266,
        "bit" => 1560,
        "varbit" => 1562,
        "numeric" => oid::NUMERIC,
        "uuid" => oid::UUID,
        "jsonb" => oid::JSONB,
        "inet" => 869,
        "cidr" => 650,
        "macaddr" => 829,
        "box" => 603,
        "_bool" => 1000,
        "_bytea" => 1001,
        "_char" => 1002,
        "_name" => 1003,
        "_int2" => 1005,
        "_int4" => 1007,
        "_text" => 1009,
        "_bpchar" => 1014,
        "_varchar" => 1015,
        "_int8" => 1016,
        "_float4" => 1021,
        "_float8" => 1022,
        "_oid" => 1028,
        "_timestamp" => 1115,
        "_date" => 1182,
        "_time" => 1183,
        "_timestamptz" => 1185,
        "_interval" => 1187,
        "_numeric" => 1231,
        "_timetz" => 1270,
        "_bit" => 1561,
        "_varbit" => 1563,
        "_uuid" => 2951,
        "_json" => 199,
        "_jsonb" => 3807,
        "_xml" => 143,
        "_money" => 791,
        "_cidr" => 651,
        "_macaddr" => 1040,
        "_inet" => 1041,
        "_box" => 1020,
        _ => return None,
    })
}

/// Domains and arrays of user-defined types, read by the stream when it connects. Columns:
/// oid, typtype, typbasetype, typelem, typdelim, schema, name. Arrays of composite types are
/// left out (an Odoo database has one per table; their elements would be text anyway).
pub const CATALOG_TYPES_SQL: &str =
    "SELECT t.oid, t.typtype, t.typbasetype, t.typelem, t.typdelim, n.nspname, t.typname \
     FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
     WHERE t.oid >= 16384 AND (t.typtype = 'd' OR (t.typelem <> 0 AND t.typlen = -1 AND t.typcategory = 'A' \
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.oid = t.typelem AND e.typtype = 'c')))";

/// A user-defined type as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CatalogType {
    Domain { base: u32 },
    Array { element: u32, delimiter: u8 },
}

/// What is known about non-built-in types: Type messages and the catalog.
#[derive(Debug, Default, Clone)]
pub struct TypeRegistry {
    /// From Type messages: oid → (schema, name) of the type, or of its base type for a domain.
    announced: HashMap<u32, (String, String)>,
    /// From the catalog.
    catalog: HashMap<u32, (CatalogType, String)>,
}

impl TypeRegistry {
    /// Records a Type message.
    pub fn announce(&mut self, type_oid: u32, namespace: &str, name: &str) {
        self.announced.insert(type_oid, (namespace.to_string(), name.to_string()));
    }

    /// Replaces what the catalog said with the rows of [`CATALOG_TYPES_SQL`]. Rows that do not
    /// read are ignored: the types they describe are read as text.
    pub fn load_catalog(&mut self, rows: &[Vec<Option<String>>]) {
        self.catalog.clear();
        for row in rows {
            let field = |i: usize| row.get(i).and_then(|v| v.as_deref());
            let number = |i: usize| field(i).and_then(|v| v.parse::<u32>().ok());
            let (Some(type_oid), Some(typtype)) = (number(0), field(1)) else { continue };
            let name = format!("{}.{}", field(5).unwrap_or_default(), field(6).unwrap_or_default());
            let kind = if typtype == "d" {
                match number(2) {
                    Some(base) => CatalogType::Domain { base },
                    None => continue,
                }
            } else {
                match (number(3), field(4).and_then(|d| d.bytes().next())) {
                    (Some(element), Some(delimiter)) => CatalogType::Array { element, delimiter },
                    _ => continue,
                }
            };
            self.catalog.insert(type_oid, (kind, name));
        }
    }

    /// How values of `type_oid` are read.
    pub fn resolve(&self, type_oid: u32) -> ColumnType {
        self.resolve_at(type_oid, 0)
    }

    fn resolve_at(&self, type_oid: u32, depth: u32) -> ColumnType {
        // Domains over domains nest, but never in a cycle; the bound is only a guard.
        if type_oid < 16384 || depth > 16 {
            return ColumnType::builtin(type_oid);
        }
        // A Type message names the base type of a domain; one in pg_catalog is a built-in.
        if let Some((namespace, name)) = self.announced.get(&type_oid) {
            if namespace == "pg_catalog" {
                if let Some(base) = pg_catalog_type(name) {
                    return ColumnType::builtin(base);
                }
            }
        }
        match self.catalog.get(&type_oid) {
            Some((CatalogType::Domain { base }, _)) => self.resolve_at(*base, depth + 1),
            Some((CatalogType::Array { element, delimiter }, _)) => {
                let element = self.resolve_at(*element, depth + 1);
                ColumnType {
                    oid: type_oid,
                    name: format!("{}[]", element.name).into(),
                    array: Some((Arc::new(element), *delimiter)),
                }
            }
            None => {
                let name: Arc<str> = match (self.announced.get(&type_oid), self.catalog.get(&type_oid)) {
                    (Some((namespace, name)), _) => format!("{namespace}.{name}").into(),
                    (None, Some((_, name))) => name.as_str().into(),
                    (None, None) => format!("type {type_oid}").into(),
                };
                ColumnType { oid: type_oid, name, array: None }
            }
        }
    }
}

/// Oids of the built-in types [`super::text_values::decode_text`] reads into something other than text.
pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// The SQL name of a built-in type, for messages; `None` for types this module does not know.
pub fn builtin_type_name(type_oid: u32) -> Option<&'static str> {
    Some(match type_oid {
        oid::BOOL => "boolean",
        oid::BYTEA => "bytea",
        oid::CHAR => "\"char\"",
        oid::NAME => "name",
        oid::INT8 => "bigint",
        oid::INT2 => "smallint",
        oid::INT4 => "integer",
        oid::TEXT => "text",
        oid::OID => "oid",
        oid::JSON => "json",
        oid::FLOAT4 => "real",
        oid::FLOAT8 => "double precision",
        oid::BPCHAR => "character",
        oid::VARCHAR => "character varying",
        oid::DATE => "date",
        oid::TIME => "time",
        oid::TIMESTAMP => "timestamp",
        oid::TIMESTAMPTZ => "timestamptz",
        oid::NUMERIC => "numeric",
        oid::UUID => "uuid",
        oid::JSONB => "jsonb",
        142 => "xml",
        650 => "cidr",
        790 => "money",
        829 => "macaddr",
        869 => "inet",
        1186 => "interval",
        1266 => "timetz",
        1560 => "bit",
        1562 => "varbit",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(values: &[&str]) -> Vec<Option<String>> {
        values.iter().map(|v| Some(v.to_string())).collect()
    }

    #[test]
    fn builtin_arrays_know_their_elements() {
        let ty = ColumnType::builtin(1007);
        assert_eq!(&*ty.name, "integer[]");
        let (element, delimiter) = ty.array.unwrap();
        assert_eq!((element.oid, delimiter), (oid::INT4, b','));
        assert_eq!(ColumnType::builtin(1020).array.unwrap().1, b';');
        assert!(ColumnType::builtin(22).array.is_none(), "int2vector is not an array here");
        assert_eq!(&*ColumnType::builtin(99999).name, "type 99999");
    }

    #[test]
    fn domains_resolve_to_their_base_type() {
        let mut types = TypeRegistry::default();
        // posint (domain over int4) announced by a Type message with its base type's name.
        types.announce(16390, "pg_catalog", "int4");
        assert_eq!(types.resolve(16390), ColumnType::builtin(oid::INT4));
        // A domain over a domain over numeric, and an array of the outer domain, from the catalog.
        types.load_catalog(&[
            row(&["16400", "d", "1700", "0", ",", "public", "qty"]),
            row(&["16401", "d", "16400", "0", ",", "public", "small_qty"]),
            row(&["16402", "b", "0", "16401", ",", "public", "_small_qty"]),
            row(&["16403", "b", "0", "16404", ",", "public", "_mood"]),
        ]);
        assert_eq!(types.resolve(16401), ColumnType::builtin(oid::NUMERIC));
        let array = types.resolve(16402);
        assert_eq!(&*array.name, "numeric[]");
        assert_eq!(*array.array.unwrap().0, ColumnType::builtin(oid::NUMERIC));
        // An enum announced by name, and an array of it: text elements.
        types.announce(16404, "public", "mood");
        let moods = types.resolve(16403);
        assert_eq!(&*moods.name, "public.mood[]");
        assert_eq!(moods.array.unwrap().0.oid, 16404);
        // A domain over a built-in array, announced with the array's name.
        types.announce(16405, "pg_catalog", "_int4");
        assert_eq!(types.resolve(16405), ColumnType::builtin(1007));
        // Unknown: text, named by oid.
        assert_eq!(&*types.resolve(20000).name, "type 20000");
    }
}
