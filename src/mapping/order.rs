//! The order entities are backfilled in, derived from what each mapping refers to.
//!
//! An entity depends on another when its mapping names a table the other entity's rows live in:
//!
//! - a `lookup` on either side (`product_id → product_product.default_code` makes a BOM depend
//!   on the item, `UOM_CODE → UOM.DESCRIPTION` an item on the unit), read-only or not: the
//!   record draws on the other entity either way, and its rows are written on both sides
//!   (ownership, hand-overs, `conflict = "accept"`);
//! - a legacy `references` table (a stock move's item must be in ITEM_MASTER);
//! - an Odoo `[odoo.parent]` that millrace does not create (`create = false`: a BOM line's
//!   mrp_bom belongs to the BOM entity).
//!
//! An entity's rows live in its main table on each side and, on the Odoo side, in a parent
//! table it creates (`create = true`: product_template is the item's). Odoo tables compare as
//! schema-qualified names (`uom_uom` is `public.uom_uom`), ERP tables ignoring case, as the ERP
//! does. An Odoo `expr` is not a dependency: it is read-only SQL over whatever tables it likes,
//! and its value is never resolved through another entity when written.
//!
//! The order is a topological sort (Kahn's): an entity comes after every entity it depends on,
//! and among the entities whose dependencies are all placed, the one whose mapping file comes
//! first (file names sorted, the order [`Mappings::load_dir`] keeps) goes next. So the order is
//! the same on every run, and entities that do not depend on each other keep their file order.

use std::collections::BTreeSet;

use super::{Mapping, Mappings, System};
use crate::model::TableName;

/// One entity depending on another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The entity depended on: its index in [`Mappings::entities`].
    pub on: usize,
    /// Where the mapping refers to it (`field uom looks up legacy table UOM`): the first such
    /// place, in the order the mapping lists its columns.
    pub via: String,
}

/// A cycle of dependencies: no order puts each entity after those it depends on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("mapping cycle: {} ({}); no backfill order puts each entity after those it refers to: remove one of these references", .entities.join(" -> "), self.steps())]
pub struct MappingCycle {
    /// The entities of the cycle in order, each depending on the next, the first repeated at
    /// the end (`["bom", "bom_line", "bom"]`). It starts with the entity whose mapping file
    /// comes first.
    pub entities: Vec<String>,
    /// Why each entity depends on the next (one fewer than `entities`).
    pub via: Vec<String>,
}

impl MappingCycle {
    /// `bom -> bom_line: field x looks up odoo table mrp_bom_line; …`
    fn steps(&self) -> String {
        self.entities
            .windows(2)
            .zip(&self.via)
            .map(|(pair, via)| format!("{} -> {}: {via}", pair[0], pair[1]))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A table one side of a mapping names.
struct TableRef<'a> {
    system: System,
    table: &'a str,
}

impl TableRef<'_> {
    fn same_table(&self, system: System, table: &str) -> bool {
        self.system == system
            && match system {
                System::Odoo => TableName::parse(self.table) == TableName::parse(table),
                System::Legacy => self.table.eq_ignore_ascii_case(table),
            }
    }
}

/// The tables an entity's own rows live in.
fn holds(m: &Mapping) -> Vec<TableRef<'_>> {
    let mut tables = vec![
        TableRef { system: System::Odoo, table: &m.odoo.table },
        TableRef { system: System::Legacy, table: &m.legacy.table },
    ];
    if let Some(parent) = m.odoo.parent.as_ref().filter(|p| p.create) {
        tables.push(TableRef { system: System::Odoo, table: &parent.table });
    }
    tables
}

/// The tables of other rows a mapping refers to, each with where it does.
fn refers_to(m: &Mapping) -> Vec<(TableRef<'_>, String)> {
    let mut refs = Vec::new();
    if let Some(parent) = m.odoo.parent.as_ref().filter(|p| !p.create) {
        refs.push((
            TableRef { system: System::Odoo, table: &parent.table },
            format!("[odoo.parent] table {}", parent.table),
        ));
    }
    for side in [&m.odoo, &m.legacy] {
        for c in &side.columns {
            let field = &m.fields[c.field].name;
            if let Some(l) = &c.lookup {
                let via = format!("field {field} looks up {} table {}", side.system.as_str(), l.table);
                refs.push((TableRef { system: side.system, table: &l.table }, via));
            }
            if let Some(r) = &c.references {
                let via = format!("field {field} references {} table {}", side.system.as_str(), r.table);
                refs.push((TableRef { system: side.system, table: &r.table }, via));
            }
        }
    }
    refs
}

/// What each entity depends on, by index in [`Mappings::entities`]: each other entity once
/// (with the first place it is referred to), in file order.
///
/// An entity referring to its own table (a unit's base unit is a unit; an item's parent item)
/// is not a dependency and not a cycle: no order of entities can put a row before the rows of
/// its own entity, and none needs to. Within an entity rows are copied in key order, and a row
/// whose referenced row is not there yet waits parked until it lands (or is dead-lettered, as
/// the reference's `missing` says), as it would for any late dependency. The shipped `uom`
/// refers to itself this way (`base_uom`).
pub fn dependencies(mappings: &Mappings) -> Vec<Vec<Dependency>> {
    let held: Vec<Vec<TableRef<'_>>> = mappings.entities.iter().map(holds).collect();
    mappings
        .entities
        .iter()
        .enumerate()
        .map(|(index, m)| {
            let mut deps: Vec<Dependency> = Vec::new();
            for (table, via) in refers_to(m) {
                for (other, tables) in held.iter().enumerate() {
                    if other == index || deps.iter().any(|d| d.on == other) {
                        continue;
                    }
                    if tables.iter().any(|t| t.same_table(table.system, table.table)) {
                        deps.push(Dependency { on: other, via: via.clone() });
                    }
                }
            }
            deps.sort_by_key(|d| d.on);
            deps
        })
        .collect()
}

/// Every entity, each after those it depends on (see the module's documentation for ties); a
/// cycle of dependencies is an error naming its entities.
pub fn backfill_order(mappings: &Mappings) -> Result<Vec<usize>, MappingCycle> {
    let deps = dependencies(mappings);
    let n = deps.len();
    // How many of its dependencies each entity still waits for, and who waits for each.
    let mut waiting: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (index, ds) in deps.iter().enumerate() {
        for d in ds {
            dependents[d.on].push(index);
        }
    }
    let mut ready: BTreeSet<usize> = (0..n).filter(|i| waiting[*i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(next) = ready.pop_first() {
        order.push(next);
        for dependent in &dependents[next] {
            waiting[*dependent] -= 1;
            if waiting[*dependent] == 0 {
                ready.insert(*dependent);
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    Err(find_cycle(mappings, &deps, &waiting))
}

/// A cycle among the entities the sort could not place (each still waits for one of them).
/// Walks from the first such entity in file order along its first unplaced dependency until an
/// entity repeats; the cycle is named from its entity that comes first in file order.
fn find_cycle(mappings: &Mappings, deps: &[Vec<Dependency>], waiting: &[usize]) -> MappingCycle {
    let unplaced = |i: usize| waiting[i] > 0;
    let mut path: Vec<(usize, &Dependency)> = Vec::new();
    let mut at = (0..deps.len()).find(|i| unplaced(*i));
    while let Some(index) = at {
        if let Some(start) = path.iter().position(|(i, _)| *i == index) {
            let mut cycle = path.split_off(start);
            let first = cycle.iter().enumerate().min_by_key(|(_, (i, _))| *i).map_or(0, |(p, _)| p);
            cycle.rotate_left(first);
            let mut entities: Vec<String> = cycle.iter().map(|(i, _)| mappings.entities[*i].entity.clone()).collect();
            entities.push(entities[0].clone());
            return MappingCycle { entities, via: cycle.iter().map(|(_, d)| d.via.clone()).collect() };
        }
        // An unplaced entity always waits for an unplaced dependency.
        let Some(next) = deps[index].iter().find(|d| unplaced(d.on)) else { break };
        path.push((index, next));
        at = Some(next.on);
    }
    // Not reached: the sort leaves entities unplaced only when they wait on a cycle.
    let entities: Vec<String> =
        (0..deps.len()).filter(|i| unplaced(*i)).map(|i| mappings.entities[i].entity.clone()).collect();
    MappingCycle { via: vec!["(no single cycle found)".into(); entities.len().saturating_sub(1)], entities }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// A mapping whose field `other` is stored as given on each side (a column name, or a
    /// column with a lookup or a reference), with `extra` TOML for the Odoo side (a parent).
    fn mapping(name: &str, odoo_other: &str, legacy_other: &str, extra: &str) -> Mapping {
        let text = format!(
            r#"
entity = "{name}"
key = ["code"]
owner = "legacy"

[fields]
code = {{ type = "text" }}
other = {{ type = "text" }}

[legacy]
table = "{upper}"
strategy = "hashdiff"

[legacy.columns]
code = "CODE"
other = {legacy_other}

[odoo]
table = "{name}"
{extra}

[odoo.columns]
code = "code"
other = {odoo_other}
"#,
            upper = name.to_uppercase()
        );
        Mapping::parse(Path::new(&format!("{name}.toml")), &text).unwrap()
    }

    /// A mapping that refers to nothing.
    fn plain(name: &str) -> Mapping {
        mapping(name, r#""other""#, r#""OTHER""#, "")
    }

    /// A mapping whose Odoo field `other` looks up `table`.
    fn odoo_lookup(name: &str, table: &str) -> Mapping {
        mapping(
            name,
            &format!(r#"{{ column = "other_id", lookup = {{ table = "{table}", value = "code" }} }}"#),
            r#""OTHER""#,
            "",
        )
    }

    fn names(mappings: &Mappings, order: &[usize]) -> Vec<String> {
        order.iter().map(|i| mappings.entities[*i].entity.clone()).collect()
    }

    fn order_of(entities: Vec<Mapping>) -> Result<Vec<String>, MappingCycle> {
        let mappings = Mappings { entities };
        backfill_order(&mappings).map(|order| names(&mappings, &order))
    }

    #[test]
    fn an_entity_comes_after_what_it_refers_to_and_ties_keep_file_order() {
        // File order: a, b, c, d, e. b looks up e's table; d looks up b's; a, c and e are free.
        let order =
            order_of(vec![plain("a"), odoo_lookup("b", "e"), plain("c"), odoo_lookup("d", "public.b"), plain("e")])
                .unwrap();
        // Ready at first: a, c, e (file order); placing e frees b, then b frees d.
        assert_eq!(order, ["a", "c", "e", "b", "d"]);
        let free = order_of(vec![plain("z"), plain("y"), plain("x")]).unwrap();
        assert_eq!(free, ["z", "y", "x"], "no dependencies: the mappings' own order");
    }

    #[test]
    fn every_way_a_mapping_refers_to_another_entity_is_a_dependency() {
        let legacy_lookup = mapping(
            "legacy_lookup",
            r#""other""#,
            r#"{ column = "OTHER", lookup = { table = "unit", key = "CODE", value = "NAME" } }"#,
            "",
        );
        let reference =
            mapping("reference", r#""other""#, r#"{ column = "OTHER", references = { table = "Item" } }"#, "");
        let parent = mapping(
            "line",
            r#""head_id.code""#,
            r#""OTHER""#,
            "[odoo.parent]\ntable = \"head\"\nlink = \"head_id\"\ncreate = false",
        );
        // A lookup into the parent table another entity creates (product_template is the item's).
        let item = mapping(
            "item",
            r#""tmpl_id.code""#,
            r#""OTHER""#,
            "[odoo.parent]\ntable = \"template\"\nlink = \"tmpl_id\"\ncreate = true",
        );
        let via_template = odoo_lookup("via_template", "template");
        let mappings = Mappings {
            entities: vec![legacy_lookup, reference, parent, item, via_template, plain("head"), plain("unit")],
        };
        let deps = dependencies(&mappings);
        let on = |i: usize| -> Vec<(String, String)> {
            deps[i].iter().map(|d| (mappings.entities[d.on].entity.clone(), d.via.clone())).collect()
        };
        assert_eq!(on(0), [("unit".to_string(), "field other looks up legacy table unit".to_string())]);
        assert_eq!(on(1), [("item".to_string(), "field other references legacy table Item".to_string())]);
        assert_eq!(on(2), [("head".to_string(), "[odoo.parent] table head".to_string())]);
        assert_eq!(on(3), [], "a parent the entity creates is its own");
        assert_eq!(on(4), [("item".to_string(), "field other looks up odoo table template".to_string())]);
        let order = names(&mappings, &backfill_order(&mappings).unwrap());
        assert_eq!(order, ["item", "reference", "via_template", "head", "line", "unit", "legacy_lookup"]);
    }

    #[test]
    fn referring_to_itself_is_allowed() {
        // A unit whose base unit is a unit; an item whose parent is an item.
        let unit = mapping(
            "unit",
            r#"{ column = "base_id", lookup = { table = "unit", value = "code" } }"#,
            r#"{ column = "BASE", lookup = { table = "UNIT", key = "CODE", value = "CODE" } }"#,
            "",
        );
        let mappings = Mappings { entities: vec![odoo_lookup("item", "unit"), unit] };
        assert!(dependencies(&mappings)[1].is_empty());
        assert_eq!(names(&mappings, &backfill_order(&mappings).unwrap()), ["unit", "item"]);
    }

    #[test]
    fn a_cycle_is_named_in_order_from_its_first_entity() {
        // bom looks up bom_line, bom_line's parent is bom; "after" depends on the cycle but is
        // not in it; "free" is placed before the error is found and is not named.
        let bom = odoo_lookup("bom", "bom_line");
        let line =
            mapping("bom_line", r#""bom_id.code""#, r#""OTHER""#, "[odoo.parent]\ntable = \"bom\"\nlink = \"bom_id\"");
        let error = order_of(vec![odoo_lookup("after", "bom"), bom, line, plain("free")]).unwrap_err();
        assert_eq!(error.entities, ["bom", "bom_line", "bom"]);
        assert_eq!(
            error.to_string(),
            "mapping cycle: bom -> bom_line -> bom (bom -> bom_line: field other looks up odoo table bom_line; \
             bom_line -> bom: [odoo.parent] table bom); no backfill order puts each entity after those it refers to: \
             remove one of these references"
        );

        // Three entities, named from the first in file order whichever the walk met first.
        let error = order_of(vec![odoo_lookup("p", "r"), plain("q"), odoo_lookup("r", "s"), odoo_lookup("s", "p")])
            .unwrap_err();
        assert_eq!(error.entities, ["p", "r", "s", "p"]);
        assert_eq!(error.via.len(), 3);
        let error = order_of(vec![odoo_lookup("x", "z"), odoo_lookup("y", "x"), odoo_lookup("z", "y")]).unwrap_err();
        assert_eq!(error.entities, ["x", "z", "y", "x"]);
    }

    #[test]
    fn the_shipped_mappings_have_an_order() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
        let mappings = Mappings::load_dir(&dir).unwrap();
        let order = backfill_order(&mappings).unwrap();
        assert_eq!(
            names(&mappings, &order),
            [
                "sales_order",
                "uom",
                "item",
                "bom",
                "bom_line",
                "inventory_transaction",
                "lot",
                "production_order",
                "sales_order_line",
                "work_center"
            ]
        );
        // Each entity after everything it refers to.
        let deps = dependencies(&mappings);
        for (place, index) in order.iter().enumerate() {
            for d in &deps[*index] {
                let before = order.iter().position(|i| *i == d.on).unwrap();
                assert!(
                    before < place,
                    "{} before {}",
                    mappings.entities[d.on].entity,
                    mappings.entities[*index].entity
                );
            }
        }
        let on = |entity: &str| -> Vec<&str> {
            let index = mappings.entities.iter().position(|m| m.entity == entity).unwrap();
            deps[index].iter().map(|d| mappings.entities[d.on].entity.as_str()).collect()
        };
        assert_eq!(on("bom_line"), ["bom", "item", "uom"]);
        assert_eq!(on("sales_order_line"), ["item", "sales_order", "uom"]);
        assert_eq!(on("inventory_transaction"), ["item", "uom"]);
        assert_eq!(on("uom"), Vec::<&str>::new(), "its base unit is a unit: itself");
        assert_eq!(on("work_center"), Vec::<&str>::new());
    }
}
