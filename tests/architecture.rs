//! The shape of the code, checked: the top-level modules of `src/` import each other without
//! a cycle, and so do the files of `src/model/`. A cycle is what makes a module impossible to
//! read, test or move on its own; this test names the first one it finds.
//!
//! It reads the sources as text: `crate::NAME` anywhere (in `use` lines, paths, and
//! `use crate::{a, b}` lists) is an edge to the top-level module NAME, and inside `model/`,
//! `super::NAME` and `crate::model::NAME` an edge to the file NAME. A file's
//! `#[cfg(test)]` module at its end is left out: tests may reach across modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The file's code without its trailing test module.
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The names that follow `prefix` in `code`: `prefix NAME` and `prefix {A, B::c, ...}`.
fn names_after(code: &str, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in code.match_indices(prefix) {
        // `crate::` inside a longer path such as `foo::crate::` does not occur in Rust; but
        // `super::` does (`super::super::`): only a path's first segment counts.
        let before = code[..at].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[at + prefix.len()..];
        if let Some(list) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in list.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        names.push(ident(item.trim()));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 || c != '{' {
                    item.push(c);
                }
            }
            names.push(ident(item.trim()));
        } else {
            names.push(ident(rest));
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

/// The module a file belongs to at `depth` below `root`: `src/a/b.rs` is `a` at depth 0.
fn module_of(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

fn first_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level modules, and which of them each imports.
fn top_level_graph() -> Graph {
    let root = src();
    let modules: BTreeSet<String> = sources(&root)
        .iter()
        .map(|p| module_of(&root, p))
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut graph = Graph::new();
    for path in sources(&root) {
        let from = module_of(&root, &path);
        if !modules.contains(&from) {
            continue;
        }
        let edges = graph.entry(from.clone()).or_default();
        for to in names_after(&code_of(&path), "crate::") {
            if to != from && modules.contains(&to) {
                edges.insert(to);
            }
        }
    }
    graph
}

/// The files of `model/`, and which of them each imports.
fn model_graph() -> Graph {
    let root = src().join("model");
    let files: BTreeSet<String> = sources(&root).iter().map(|p| module_of(&root, p)).collect();
    let mut graph = Graph::new();
    for path in sources(&root) {
        let from = module_of(&root, &path);
        if from == "mod" {
            continue;
        }
        let code = code_of(&path);
        let edges = graph.entry(from.clone()).or_default();
        let mut targets = names_after(&code, "super::");
        targets.extend(names_after(&code, "crate::model::"));
        for to in targets {
            if to != from && files.contains(&to) {
                edges.insert(to);
            }
        }
    }
    graph
}

#[test]
fn top_level_modules_import_each_other_without_a_cycle() {
    let graph = top_level_graph();
    assert!(graph.len() >= 5, "the modules were found: {graph:?}");
    if let Some(cycle) = first_cycle(&graph) {
        panic!("import cycle between modules: {}", cycle.join(" -> "));
    }
}

/// The layers of the module map in docs/architecture.md, lowest first.
const LAYERS: [(&str, &[&str]); 6] = [
    ("leaves", &["units", "clock", "machine", "protobuf"]),
    ("model", &["model"]),
    ("encoding", &["exposition", "gzip", "remote_write"]),
    ("settings", &["config", "error", "settings", "web_config"]),
    ("commands", &["exporter", "history", "report"]),
    ("flags", &["cli"]),
];

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
        .unwrap_or_else(|| {
            panic!("`{module}` is in no layer: add it to LAYERS and to docs/architecture.md")
        })
}

#[test]
fn modules_import_only_their_own_layer_and_those_below() {
    let graph = top_level_graph();
    for (from, imports) in &graph {
        let own = layer_of(from);
        for to in imports {
            let theirs = layer_of(to);
            assert!(
                theirs <= own,
                "{from} (layer {}) imports {to} (layer {}, above it)",
                LAYERS[own].0,
                LAYERS[theirs].0
            );
        }
    }
    assert!(
        graph.contains_key("report"),
        "the modules were found: {graph:?}"
    );
}

#[test]
fn model_files_import_each_other_without_a_cycle() {
    let graph = model_graph();
    assert!(graph.len() >= 5, "the model's files were found: {graph:?}");
    if let Some(cycle) = first_cycle(&graph) {
        panic!("import cycle inside model/: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_model_uses_no_edge_of_the_program() {
    // The model is pure: no clock, no I/O, so it imports nothing but itself and units.
    let graph = top_level_graph();
    let model = graph.get("model").cloned().unwrap_or_default();
    let allowed: BTreeSet<String> = ["units"].iter().map(|s| s.to_string()).collect();
    let extra: Vec<&String> = model.difference(&allowed).collect();
    assert!(extra.is_empty(), "model imports {extra:?}");
}

#[test]
fn the_checker_finds_cycles_and_lists() {
    let mut graph = Graph::new();
    graph.entry("a".into()).or_default().insert("b".into());
    graph.entry("b".into()).or_default().insert("c".into());
    assert_eq!(first_cycle(&graph), None);
    graph.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        first_cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        names_after(
            "use crate::{model::{Frame, x}, units};\nlet t = crate::clock::now();",
            "crate::"
        ),
        ["model", "units", "clock"]
    );
    assert_eq!(names_after("use super::super::x;", "super::"), ["super"]);
}
