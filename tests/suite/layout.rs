//! The layering rule of docs/engine.md, checked on the source: no import
//! circle between the files of `src/` (a module and its own submodules may
//! use each other; test code does not count), and the layers import only
//! downwards.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A file's module path: `src/inference/request.rs` is `["inference", "request"]`.
type Module = Vec<String>;

fn module_of(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Module = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text without comments and without `#[cfg(test)] mod name { ... }`.
fn code_of(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(|l| l.split("//").next().unwrap_or("")).collect();
    let text = lines.join("\n");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        let head = after.trim_start();
        let is_block = (head.starts_with("mod ") || head.starts_with("pub(crate) mod "))
            && head.find('{').is_some_and(|b| head.find(';').is_none_or(|s| b < s));
        if !is_block {
            rest = after;
            continue;
        }
        let open = after.find('{').unwrap();
        let mut depth = 0;
        let mut end = after.len();
        for (i, c) in after[open..].char_indices() {
            depth += match c {
                '{' => 1,
                '}' => -1,
                _ => 0,
            };
            if depth == 0 {
                end = open + i + 1;
                break;
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Every path the code names from `crate::` or `super::`, groups expanded
/// (`crate::a::{b, c::d}` names `a::b` and `a::c::d`), made absolute.
fn paths_named(code: &str, me: &Module) -> Vec<Module> {
    let mut found = Vec::new();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(start) {
            let at = from + at;
            from = at + start.len();
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let base: Module = if start == "crate::" {
                vec![]
            } else {
                // `super` of `a/b.rs` is `a`, and so is that of `a/b/mod.rs`.
                me[..me.len().saturating_sub(1)].to_vec()
            };
            let tail = &code[from..];
            let prefix_len = tail.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(tail.len());
            let prefix: Module = tail[..prefix_len].split("::").filter(|s| !s.is_empty()).map(str::to_string).collect();
            let mut full = base.clone();
            full.extend(prefix.iter().cloned());
            if tail[prefix_len..].starts_with('{') && tail[..prefix_len].ends_with("::") {
                let close = tail[prefix_len..].find('}').map_or(tail.len(), |c| prefix_len + c);
                for item in tail[prefix_len + 1..close].split(',') {
                    let item = item.split(" as ").next().unwrap().trim().trim_start_matches('{');
                    let mut path = full.clone();
                    path.extend(item.split("::").filter(|s| !s.is_empty() && *s != "self").map(str::to_string));
                    found.push(path);
                }
            } else {
                found.push(full);
            }
        }
    }
    found
}

/// The import graph between the files of `src/`, edges between a module and
/// its own submodules left out.
fn graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<Module> =
        files.iter().filter(|f| !f.ends_with("main.rs")).map(|f| module_of(&src, f)).collect();
    let mut edges = BTreeMap::new();
    for file in files.iter().filter(|f| !f.ends_with("main.rs")) {
        let me = module_of(&src, file);
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let mut to = BTreeSet::new();
        for path in paths_named(&code, &me) {
            // The longest prefix that is a file's module.
            let target = (0..=path.len()).rev().map(|k| path[..k].to_vec()).find(|m| modules.contains(m));
            if let Some(t) = target {
                let nested = t.starts_with(&me) || me.starts_with(&t);
                if !nested {
                    to.insert(t);
                }
            }
        }
        edges.insert(me, to);
    }
    edges
}

/// Strongly connected components of more than one module (Tarjan).
fn circles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct State<'a> {
        edges: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        found: Vec<Vec<Module>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a Module) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        for w in &s.edges[v] {
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.stack.contains(&w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.found.push(component);
            }
        }
    }
    let mut s = State { edges, index: BTreeMap::new(), low: BTreeMap::new(), stack: vec![], found: vec![] };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.found
}

#[test]
fn no_import_circle_between_the_files_of_src() {
    let edges = graph();
    assert!(edges.len() > 50, "found only {} files: the walk is broken", edges.len());
    let found = circles(&edges);
    let shown: Vec<String> =
        found.iter().map(|c| c.iter().map(|m| m.join("::")).collect::<Vec<_>>().join(" <-> ")).collect();
    assert!(found.is_empty(), "import circles: {shown:#?}");
}

#[test]
fn the_layers_import_only_downwards() {
    // docs/engine.md, "The layers": each top-level module may import only
    // modules of its own layer or of a lower one (a lower index).
    const LAYERS: &[&[&str]] = &[
        &["base"],
        &["input", "engine"],
        &["catalog", "spot", "zones"],
        &["scenarios"],
        &["output"],
        &["experiment"],
        &["commands"],
    ];
    let layer = |m: &str| LAYERS.iter().position(|l| l.contains(&m));
    let mut wrong = Vec::new();
    for (from, to) in graph() {
        let Some(a) = from.first() else { continue };
        let la = layer(a).unwrap_or_else(|| panic!("src/{a} is in no layer of docs/engine.md"));
        for t in to {
            let b = &t[0];
            let lb = layer(b).unwrap_or_else(|| panic!("src/{b} is in no layer of docs/engine.md"));
            if lb > la {
                wrong.push(format!("{} imports {}", from.join("::"), t.join("::")));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers: {wrong:#?}");
}

/// The folder a module's file lies in: a module with files of its own
/// below it (a `mod.rs`) is its own folder.
fn folder_of(module: &Module, modules: &BTreeSet<Module>) -> Module {
    let is_folder = modules.iter().any(|m| m.len() > module.len() && m.starts_with(module));
    if is_folder { module.clone() } else { module[..module.len().saturating_sub(1)].to_vec() }
}

/// The imports between folders: folder A imports folder B when a file
/// directly in A imports a file directly in B.
fn folder_graph(edges: &BTreeMap<Module, BTreeSet<Module>>) -> BTreeMap<Module, BTreeSet<Module>> {
    let modules: BTreeSet<Module> = edges.keys().cloned().collect();
    let mut folders: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (from, to) in edges {
        let a = folder_of(from, &modules);
        let entry = folders.entry(a.clone()).or_default();
        for t in to {
            let b = folder_of(t, &modules);
            if b != a {
                entry.insert(b);
            }
        }
    }
    for targets in folders.clone().into_values() {
        for b in targets {
            folders.entry(b).or_default();
        }
    }
    folders
}

#[test]
fn no_two_folders_import_from_each_other() {
    let folders = folder_graph(&graph());
    assert!(folders.len() > 10, "found only {} folders: the walk is broken", folders.len());
    let found = circles(&folders);
    let shown: Vec<String> =
        found.iter().map(|c| c.iter().map(|m| m.join("/")).collect::<Vec<_>>().join(" <-> ")).collect();
    assert!(found.is_empty(), "folders that import from each other: {shown:#?}");
}

#[test]
fn the_scenarios_import_neither_each_other() {
    // docs/engine.md: the scenarios stand side by side on the layers below.
    let mut wrong = Vec::new();
    for (from, to) in graph() {
        let [top, a, ..] = from.as_slice() else { continue };
        for t in to {
            if top == "scenarios" && t.len() >= 2 && t[0] == "scenarios" && t[1] != *a {
                wrong.push(format!("{} imports {}", from.join("::"), t.join("::")));
            }
        }
    }
    assert!(wrong.is_empty(), "one scenario imports another: {wrong:#?}");
}

#[test]
fn the_checker_sees_a_folder_tie() {
    // A file of folder x imports one of folder y, and one of y imports one
    // of x: a tie, though no two files form a circle.
    let m = |p: &str| p.split('/').map(str::to_string).collect::<Module>();
    let edges = BTreeMap::from([
        (m("x/a"), BTreeSet::from([m("y/b")])),
        (m("y/c"), BTreeSet::from([m("x/d")])),
        (m("x/d"), BTreeSet::new()),
        (m("y/b"), BTreeSet::new()),
    ]);
    assert!(circles(&edges).is_empty());
    let folders = folder_graph(&edges);
    assert_eq!(circles(&folders), vec![vec![m("y"), m("x")]], "{folders:?}");
    // A child folder importing its parent's files, while the parent's files
    // import the child's, is a tie too (the shape issue 25 removed).
    let edges = BTreeMap::from([
        (m("i/design"), BTreeSet::from([m("i/llm/step")])),
        (m("i/llm/engine"), BTreeSet::from([m("i/design")])),
        (m("i/llm/step"), BTreeSet::new()),
    ]);
    assert_eq!(circles(&folder_graph(&edges)).len(), 1);
}

#[test]
fn the_checker_sees_a_circle() {
    // The check can fail: a two-file circle is found.
    let a = vec!["a".to_string()];
    let b = vec!["b".to_string()];
    let edges = BTreeMap::from([(a.clone(), BTreeSet::from([b.clone()])), (b.clone(), BTreeSet::from([a.clone()]))]);
    assert_eq!(circles(&edges).len(), 1);
    // And group imports and `super::` resolve.
    let code = "use crate::spot::{trace::SpotTrace, Market};\nuse super::design::Endpoint;";
    let me = vec!["inference".to_string(), "request".to_string()];
    let named = paths_named(code, &me);
    assert!(named.contains(&vec!["spot".into(), "trace".into(), "SpotTrace".into()]), "{named:?}");
    assert!(named.contains(&vec!["inference".into(), "design".into(), "Endpoint".into()]), "{named:?}");
    assert!(code_of("#[cfg(test)]\nmod tests {\n use crate::x::y;\n}\nfn f() {}").contains("fn f"));
    assert!(!code_of("#[cfg(test)]\nmod tests {\n use crate::x::y;\n}\n").contains("crate::x"));
}
