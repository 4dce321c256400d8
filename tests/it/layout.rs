//! The source's layout: no import circles between the files of `src/`.
//!
//! A circle (`a` uses `b`, `b` uses `a`, possibly through others) means neither side can be read,
//! tested or changed alone; the fix is to move what both need down to the module that owns it.
//! This builds the module graph from every `use crate::…`/`use super::…` and every inline
//! `crate::…`/`super::…` path outside `#[cfg(test)]` modules (a file is a node; a module
//! declaring or re-exporting its own children is structure, not an edge) and fails on any
//! strongly connected component of more than one file, naming its edges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

/// Every `.rs` file under `src/` of the library (not `main.rs`, the binary's root), by module.
fn modules(src: &Path) -> BTreeMap<Module, PathBuf> {
    fn walk(dir: &Path, src: &Path, out: &mut BTreeMap<Module, PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, src, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(src).unwrap().with_extension("");
                let mut module: Module = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if module == ["main"] {
                    continue;
                }
                if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
                    module.pop();
                }
                out.insert(module, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, src, &mut out);
    out
}

/// `text` without `#[cfg(test)]` modules and `//` comments.
fn code(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let next_is_mod = lines.get(i + 1).is_some_and(|l| {
            let l = l.trim_start();
            (l.starts_with("mod ") || l.starts_with("pub mod ") || l.starts_with("pub(crate) mod "))
                && l.trim_end().ends_with('{')
        });
        if lines[i].trim() == "#[cfg(test)]" && next_is_mod {
            let mut depth = 0i64;
            let mut j = i + 1;
            loop {
                depth += lines[j].matches('{').count() as i64;
                depth -= lines[j].matches('}').count() as i64;
                if depth <= 0 || j + 1 == lines.len() {
                    break;
                }
                j += 1;
            }
            i = j + 1;
            continue;
        }
        let line = lines[i].split("//").next().unwrap_or_default();
        out.push_str(line);
        out.push('\n');
        i += 1;
    }
    out
}

/// `crate::a::{b, c::{d, e}}` as `crate::a::b`, `crate::a::c::d`, `crate::a::c::e`.
fn expand(path: &str) -> Vec<String> {
    let Some(open) = path.find('{') else {
        return vec![path.to_owned()];
    };
    let (prefix, inner) = (&path[..open], &path[open + 1..]);
    let (mut parts, mut current, mut depth) = (Vec::new(), String::new(), 0);
    for ch in inner.chars() {
        match ch {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(ch);
    }
    parts.push(current);
    (parts.iter())
        .filter(|p| !p.is_empty())
        .flat_map(|p| expand(&format!("{prefix}{p}")))
        .collect()
}

/// The file a path used from `from` lands in: its longest prefix that is a module.
fn resolve(from: &Module, path: &str, known: &BTreeMap<Module, PathBuf>) -> Option<Module> {
    let mut segments = path
        .split("::")
        .map(|s| s.split(" as ").next().unwrap_or(s));
    let mut full: Module = match segments.next()? {
        "crate" => Vec::new(),
        "super" => from[..from.len().saturating_sub(1)].to_vec(),
        "self" => from.clone(),
        _ => return None,
    };
    for s in segments {
        match s {
            "super" => {
                full.pop();
            }
            "self" | "*" | "" => {}
            s => full.push(s.to_owned()),
        }
    }
    (0..=full.len())
        .rev()
        .map(|n| full[..n].to_vec())
        .find(|m| known.contains_key(m))
}

/// Each file's imports of other files (not of its own descendants).
fn graph(src: &Path) -> BTreeMap<Module, BTreeSet<Module>> {
    let known = modules(src);
    let mut edges = BTreeMap::new();
    for (module, path) in &known {
        let text = code(&std::fs::read_to_string(path).unwrap());
        let mut paths = Vec::new();
        for (at, _) in text.match_indices("use ") {
            let preceded = text[..at].chars().next_back();
            if preceded.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &text[at + 4..];
            let Some(end) = rest.find(';') else { continue };
            let decl: String = rest[..end].split_whitespace().collect::<Vec<_>>().join(" ");
            let decl = decl.replace(" ::", "::").replace(":: ", "::");
            let decl = decl
                .replace("{ ", "{")
                .replace(" }", "}")
                .replace(", ", ",");
            if ["crate::", "super::", "self::"]
                .iter()
                .any(|p| decl.starts_with(p))
            {
                paths.extend(expand(&decl));
            }
        }
        let bytes = text.as_bytes();
        for root in ["crate::", "super::"] {
            for (at, _) in text.match_indices(root) {
                let before = at.checked_sub(1).map(|i| bytes[i] as char);
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let len = text[at..]
                    .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .unwrap_or(text.len() - at);
                paths.push(text[at..at + len].trim_end_matches(':').to_owned());
            }
        }
        let targets: BTreeSet<Module> = (paths.iter())
            .filter_map(|p| resolve(module, p, &known))
            .filter(|t| !t.starts_with(module))
            .collect();
        edges.insert(module.clone(), targets);
    }
    edges
}

/// Tarjan's strongly connected components of more than one node.
fn circles(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    struct State<'g> {
        edges: &'g BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'g Module, usize>,
        low: BTreeMap<&'g Module, usize>,
        stack: Vec<&'g Module>,
        found: Vec<Vec<Module>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g Module) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        for w in &s.edges[v] {
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.stack.contains(&w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                component.push(w.clone());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.found
}

fn name(m: &Module) -> String {
    if m.is_empty() {
        "lib".into()
    } else {
        m.join("/")
    }
}

#[test]
fn src_has_no_import_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = graph(&src);
    assert!(edges.len() > 50, "read {} files", edges.len());
    let found = circles(&edges);
    let described: Vec<String> = (found.iter())
        .map(|c| {
            let inside: Vec<String> = (c.iter())
                .map(|m| {
                    let to: Vec<String> = (edges[m].iter())
                        .filter(|t| c.contains(t))
                        .map(name)
                        .collect();
                    format!("  {} -> {}", name(m), to.join(", "))
                })
                .collect();
            format!("{} files:\n{}", c.len(), inside.join("\n"))
        })
        .collect();
    assert!(
        found.is_empty(),
        "import circles in src/ (move what both sides need to the module that owns it):\n{}",
        described.join("\n")
    );
}

/// The check sees a circle where there is one, through `use` groups, `super::` and inline paths.
#[test]
fn a_circle_through_groups_super_and_inline_paths_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |rel: &str, text: &str| {
        let path = src.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib.rs", "pub mod a;\npub mod b;\npub mod c;\n");
    write("a/mod.rs", "pub mod inner;\npub use inner::X;\n");
    write(
        "a/inner.rs",
        "use super::super::{b::{self, Y}, c};\npub struct X;\n",
    );
    write(
        "b.rs",
        "pub fn y() { crate::c::z() }\n// crate::a is only named here\n",
    );
    write(
        "c.rs",
        "pub fn z() {}\n#[cfg(test)]\nmod tests {\n    use crate::a::X;\n}\n",
    );
    let edges = graph(src);
    assert!(circles(&edges).is_empty(), "{edges:?}");
    write("c.rs", "pub fn z() { let _ = crate::a::inner::X; }\n");
    let found = circles(&graph(src));
    let names: Vec<Vec<String>> = found.iter().map(|c| c.iter().map(name).collect()).collect();
    assert_eq!(names, [["a/inner", "b", "c"]]);
}
