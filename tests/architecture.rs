//! The shape of the source tree, checked: no module depends on another that depends back on it
//! (at the top level — `config`, `erp`, `source`, … — and between any two files), and no file
//! holds more than about 800 lines of code outside its tests. DESIGN.md §2 says which folder
//! does what; these checks keep the layers it describes honest.
//!
//! Dependencies are read from the code (`crate::…`, `super::…`, `self::…` paths, `use` groups
//! included; comments and test modules left out), so a doc link is not a dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path: `["source", "legacy", "poller"]`; the crate root is empty.
type Module = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn module_of(src: &Path, file: &Path) -> Module {
    let relative = file.strip_prefix(src).expect("under src").with_extension("");
    let mut parts: Module = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] {
        parts.clear();
    }
    parts
}

/// The code of a file without its test module and comments.
fn code_of(text: &str) -> String {
    let text = match text.find("\n#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            // A `//` inside a string literal would cut the line short; it only loses a path or
            // two there, never invents one.
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Reads `a::b::{c, d::e}` starting at `at` (just after a `::`): every path it names.
fn paths_at(code: &[char], mut at: usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let mut path = prefix;
    loop {
        if at < code.len() && code[at] == '{' {
            at += 1;
            loop {
                while at < code.len() && (code[at].is_whitespace() || code[at] == ',') {
                    at += 1;
                }
                if at >= code.len() || code[at] == '}' {
                    out.push(path);
                    return at + 1;
                }
                at = paths_at(code, at, path.clone(), out);
                // Skip `as name` and anything else up to the next item of the group.
                while at < code.len() && code[at] != ',' && code[at] != '}' {
                    at += 1;
                }
            }
        }
        let start = at;
        while at < code.len() && is_ident(code[at]) {
            at += 1;
        }
        if at > start {
            path.push(code[start..at].iter().collect());
        }
        if at > start && at + 1 < code.len() && code[at] == ':' && code[at + 1] == ':' {
            at += 2;
            continue;
        }
        out.push(path);
        return at;
    }
}

/// Every module path a file's code refers to, made absolute.
fn references(module: &Module, code: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = code.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let preceded = i > 0 && (is_ident(chars[i - 1]) || chars[i - 1] == ':');
        let rest: String = chars[i..(i + 8).min(chars.len())].iter().collect();
        let base = if preceded {
            None
        } else if rest.starts_with("crate::") {
            Some((Vec::new(), 7))
        } else if rest.starts_with("super::") {
            Some((module[..module.len().saturating_sub(1)].to_vec(), 7))
        } else if rest.starts_with("self::") {
            Some((module.clone(), 6))
        } else {
            None
        };
        match base {
            Some((prefix, skip)) => {
                let mut paths = Vec::new();
                i = paths_at(&chars, i + skip, prefix, &mut paths);
                found.extend(paths);
            }
            None => i += 1,
        }
    }
    found
}

struct Tree {
    files: BTreeMap<Module, (PathBuf, String)>,
}

impl Tree {
    fn read() -> Tree {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut paths = Vec::new();
        rust_files(&src, &mut paths);
        let files = paths
            .into_iter()
            .map(|p| {
                let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
                (module_of(&src, &p), (p, text))
            })
            .collect();
        Tree { files }
    }

    /// The longest prefix of `path` that is a module of the tree.
    fn resolve(&self, path: &[String]) -> Option<Module> {
        (1..=path.len()).rev().map(|n| path[..n].to_vec()).find(|m| self.files.contains_key(m))
    }

    /// Module → the modules it uses, cut to `depth` segments; a module and its own ancestors or
    /// descendants do not count (a parent declares its children, children use their parent's
    /// shared types).
    fn edges(&self, depth: usize) -> BTreeMap<Module, BTreeSet<Module>> {
        let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
        for (module, (_, text)) in &self.files {
            for path in references(module, &code_of(text)) {
                let Some(target) = self.resolve(&path) else { continue };
                let from: Module = module.iter().take(depth).cloned().collect();
                let to: Module = target.iter().take(depth).cloned().collect();
                if from.is_empty() || to.is_empty() || from.starts_with(&to) || to.starts_with(&from) {
                    continue;
                }
                edges.entry(from).or_default().insert(to);
            }
        }
        edges
    }
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct State<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<Module, usize>,
        low: BTreeMap<Module, usize>,
        stack: Vec<Module>,
        next: usize,
        found: Vec<Vec<Module>>,
    }
    fn visit(s: &mut State<'_>, v: &Module) {
        s.index.insert(v.clone(), s.next);
        s.low.insert(v.clone(), s.next);
        s.next += 1;
        s.stack.push(v.clone());
        let targets: Vec<Module> = s.edges.get(v).map(|t| t.iter().cloned().collect()).unwrap_or_default();
        for w in &targets {
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v.clone(), low);
            } else if s.stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v.clone(), low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                let done = &w == v;
                component.push(w);
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                s.found.push(component);
            }
        }
    }
    let mut state =
        State { edges, index: BTreeMap::new(), low: BTreeMap::new(), stack: Vec::new(), next: 0, found: Vec::new() };
    for v in edges.keys() {
        if !state.index.contains_key(v) {
            visit(&mut state, v);
        }
    }
    state.found
}

fn describe(edges: &BTreeMap<Module, BTreeSet<Module>>, found: &[Vec<Module>]) -> String {
    let mut out = String::new();
    for component in found {
        out.push_str("cycle:\n");
        for from in component {
            for to in edges.get(from).into_iter().flatten().filter(|t| component.contains(t)) {
                out.push_str(&format!("  {} -> {}\n", from.join("::"), to.join("::")));
            }
        }
    }
    out
}

#[test]
fn top_level_modules_form_no_cycle() {
    let tree = Tree::read();
    let edges = tree.edges(1);
    // The check itself must see the layers, or it proves nothing.
    assert!(
        edges.get(&vec!["sync".to_string()]).is_some_and(|t| t.contains(&vec!["sink".to_string()])),
        "the dependency reader found no sync -> sink edge: {edges:?}"
    );
    let found = cycles(&edges);
    assert!(found.is_empty(), "{}", describe(&edges, &found));
}

#[test]
fn no_two_files_depend_on_each_other() {
    let tree = Tree::read();
    let edges = tree.edges(usize::MAX);
    let found = cycles(&edges);
    assert!(found.is_empty(), "{}", describe(&edges, &found));
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let m = |s: &str| s.split("::").map(str::to_string).collect::<Module>();
    let mut edges = BTreeMap::new();
    edges.insert(m("a"), BTreeSet::from([m("b")]));
    edges.insert(m("b"), BTreeSet::from([m("c")]));
    edges.insert(m("c"), BTreeSet::from([m("a")]));
    edges.insert(m("d"), BTreeSet::from([m("a")]));
    let found = cycles(&edges);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].len(), 3);
    let paths = references(&m("x::y"), "use super::{z::W, q};\nlet v = crate::a::b::c(1);");
    assert!(paths.contains(&m("x::z::W")) && paths.contains(&m("x::q")) && paths.contains(&m("a::b::c")), "{paths:?}");
}

#[test]
fn no_file_holds_more_than_about_800_lines_of_code() {
    let tree = Tree::read();
    let mut too_long = Vec::new();
    for (path, text) in tree.files.values() {
        let lines = code_of(text).lines().filter(|l| !l.trim().is_empty()).count();
        if lines > 800 {
            too_long.push(format!("{}: {lines} lines of code", path.display()));
        }
    }
    assert!(too_long.is_empty(), "split these along their ideas:\n{}", too_long.join("\n"));
}

/// Nothing writes Odoo's tables with SQL: a row written that way skips everything Odoo's own
/// logic does beside it (valuation, computed fields, stock moves); writes into Odoo go through its
/// API (`sink/orm.rs`, `sink/odoo_actions.rs`). The only SQL that changes data is millrace's
/// control state (`src/state/`) and the ERP writer (`sink/erp*.rs`).
#[test]
fn nothing_writes_odoos_tables_with_sql() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let allowed = |file: &Path| {
        let relative = file.strip_prefix(&src).expect("under src").to_string_lossy().replace('\\', "/");
        relative.starts_with("state/") || relative.starts_with("sink/erp")
    };
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("source file");
        for (n, line) in code_of(&text).lines().enumerate() {
            if changes_data(line) && !allowed(file) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "SQL that changes data outside the control state and the ERP writer:\n{}",
        found.join("\n")
    );
    // The statements the retired SQL writer made are what the check catches.
    for retired in [
        "let sql = format!(\"UPDATE {} SET {} WHERE {} = $1\", table, assignments, id);",
        "format!(\"INSERT INTO {} ({}) VALUES ({}) RETURNING id\", table, columns, values)",
        "client.execute(&format!(\"DELETE FROM {} WHERE id = $1\", table), &[&id])",
    ] {
        assert!(changes_data(retired), "{retired}");
    }
    assert!(!changes_data("let update = rows.iter().map(|r| r.set).collect();"));
}

/// Whether a line of code holds SQL that changes data.
fn changes_data(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    lower.contains("insert into")
        || lower.contains("delete from")
        || lower.contains("truncate table")
        || lower.contains("merge into")
        || (lower.contains("update ") && lower.contains(" set "))
}
