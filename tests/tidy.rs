//! Habits that hold the line, checked on the source tree itself: every Rust file opens with
//! its `//!` module comment, every source file appears in ARCHITECTURE.md's code map, no
//! file points outside the project (a clone must explain itself), imports point down the
//! layers and close no cycle (as rust-analyzer's tidy tests hold its architecture), and
//! every decision the docs cite is in docs/DESIGN.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir` (relative to the root), skipping build output, dependencies and
/// hidden directories.
fn files(dir: &str) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "target" || name == "node_modules" {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else if let Ok(rel) = path.strip_prefix(root) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let root = root();
    let mut out = Vec::new();
    walk(&root, &root.join(dir), &mut out);
    out.sort();
    out
}

fn rust_sources() -> Vec<String> {
    let mut all: Vec<String> = ["src", "tests", "benches"].iter().flat_map(|d| files(d)).collect();
    all.retain(|f| f.ends_with(".rs"));
    all.push("build.rs".to_owned());
    all
}

#[test]
fn every_rust_file_opens_with_its_module_comment() {
    let missing: Vec<String> = rust_sources()
        .into_iter()
        .filter(|f| {
            let text = std::fs::read_to_string(root().join(f)).unwrap_or_default();
            !text.lines().find(|l| !l.trim().is_empty()).is_some_and(|l| l.starts_with("//!"))
        })
        .collect();
    assert!(missing.is_empty(), "these files do not open with a //! comment: {missing:?}");
}

#[test]
fn every_source_file_is_in_the_code_map() {
    let map = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut sources = rust_sources();
    sources.extend(files("static").into_iter().filter(|f| !f.starts_with("static/vendor/")));
    let missing: Vec<String> = sources.into_iter().filter(|f| !map.contains(f.as_str())).collect();
    assert!(missing.is_empty(), "ARCHITECTURE.md's code map does not list: {missing:?}");
}

#[test]
fn every_file_the_code_map_names_exists() {
    let map = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let start = map.find("## Code map").expect("a code map section");
    let end = map[start..].find("\n## ").map_or(map.len(), |i| start + 3 + i);
    let mut gone = Vec::new();
    for row in map[start..end].lines().filter(|l| l.starts_with("| `")) {
        let first = row.split('|').nth(1).unwrap_or_default();
        for path in first.split('`').skip(1).step_by(2) {
            if !root().join(path.trim_end_matches('/')).exists() {
                gone.push(path.to_owned());
            }
        }
    }
    assert!(gone.is_empty(), "ARCHITECTURE.md's code map names files that do not exist: {gone:?}");
}

#[test]
fn no_file_points_outside_the_project() {
    let outside = ["../shared", "/work/shared"];
    let mut offenders = Vec::new();
    let mut all: Vec<String> =
        ["src", "tests", "benches", "static", "scripts", "docs"].iter().flat_map(|d| files(d)).collect();
    all.extend(
        [
            "README.md",
            "ARCHITECTURE.md",
            "RELIABILITY.md",
            "BENCHMARKS.md",
            "Makefile",
            "server_config.yaml",
            "Cargo.toml",
            "build.rs",
        ]
        .map(String::from),
    );
    for file in all {
        if file == "tests/tidy.rs" {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root().join(&file)) else { continue };
        if outside.iter().any(|o| text.contains(o)) {
            offenders.push(file);
        }
    }
    assert!(offenders.is_empty(), "these files refer to documents outside the project: {offenders:?}");
}

#[test]
fn the_documents_a_newcomer_needs_are_in_the_clone() {
    for doc in ["README.md", "ARCHITECTURE.md", "docs/PROTOCOL.md", "docs/DESIGN.md", "docs/OPERATIONS.md"] {
        let text = std::fs::read_to_string(root().join(doc)).unwrap_or_default();
        assert!(text.lines().count() > 20, "{doc} is missing or nearly empty");
    }
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    for link in ["docs/PROTOCOL.md", "docs/DESIGN.md", "docs/OPERATIONS.md", "make run", "make test"] {
        assert!(readme.contains(link), "README.md does not mention {link}");
    }
}

// ---- Layers: imports point down, and no two modules import each other ----------------

/// The layers, top to bottom. A module may import its own layer and the layers below it,
/// never one above it. `lib.rs` sits over them all: it alone knows every part, so no part
/// imports it. ARCHITECTURE.md's "Layers" section says the same in words.
const LAYERS: [&str; 9] =
    ["crate root", "web", "control", "hosting", "services", "runtime", "protocol", "game rules", "core"];

/// The layer of a source file: that of the longest prefix here its path starts with.
const LAYER_OF: &[(&str, &str)] = &[
    ("src/lib.rs", "crate root"),
    ("src/web/", "web"),
    ("src/admission/", "control"),
    ("src/health/", "control"),
    ("src/lobby/", "control"),
    ("src/hosting/", "hosting"),
    ("src/store/", "services"),
    ("src/breaker/", "services"),
    ("src/llm/", "services"),
    ("src/cluster.rs", "services"),
    ("src/runtime/", "runtime"),
    ("src/metrics.rs", "runtime"),
    ("src/protocol/", "protocol"),
    ("src/game/", "game rules"),
    ("src/config/", "core"),
    ("src/ids.rs", "core"),
    ("src/rate.rs", "core"),
];

/// Imports that break the rules today, each `(importing file, imported file, why)`: every
/// import of a higher layer, and for each import cycle the imports that close it (the test
/// takes these out of the graph and fails on any cycle left). The list only shrinks: the
/// test fails on a violation missing from it and on an entry that no longer is one.
const KNOWN_VIOLATIONS: &[(&str, &str, &str)] = &[];

/// One import found in a source file.
#[derive(Debug, PartialEq)]
struct Import {
    line: usize,
    /// The path as written (a use tree's leaf joined to its prefix).
    written: String,
    /// The module path it names, from the crate root (without `crate`).
    path: Vec<String>,
}

/// `text` with every comment (doc comments included), string, raw string and character
/// literal blanked out; line breaks are kept, so line numbers still hold.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if (c == 'r' || (c == 'b' && next == Some('r'))) && (i == 0 || !word(chars[i - 1])) && {
            let start = if c == 'r' { i + 1 } else { i + 2 };
            let hashes = chars[start..].iter().take_while(|&&h| h == '#').count();
            chars.get(start + hashes) == Some(&'"')
        } {
            // A raw string: r"…", r#"…"#, br"…".
            let start = if c == 'r' { i + 1 } else { i + 2 };
            let hashes = chars[start..].iter().take_while(|&&h| h == '#').count();
            let end_quote: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            let body = start + hashes + 1;
            let close = chars[body..]
                .windows(end_quote.len())
                .position(|w| w.iter().copied().eq(end_quote.chars()))
                .map_or(chars.len(), |p| body + p + end_quote.len());
            for &ch in &chars[i..close] {
                blank(&mut out, ch);
            }
            i = close;
        } else if c == '"' {
            blank(&mut out, c);
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
                if i < chars.len() {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
            if i < chars.len() {
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A character literal ('x', '\n', '\''); a lifetime ('a) has no closing quote.
            let mut j = i + 1;
            if chars.get(j) == Some(&'\\') {
                j += 2;
            } else {
                j += 1;
            }
            while j < chars.len() && chars[j] != '\'' {
                j += 1;
            }
            for &ch in &chars[i..(j + 1).min(chars.len())] {
                blank(&mut out, ch);
            }
            i = j + 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// A token of code: a word (identifier, keyword or number) or one punctuation mark, with
/// `::` as one token; and its line.
struct Token {
    line: usize,
    text: String,
}

fn tokens(code: &str) -> Vec<Token> {
    let mut out = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c.is_whitespace() {
                i += 1;
            } else if c.is_alphanumeric() || c == '_' {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                out.push(Token { line: n + 1, text: chars[start..i].iter().collect() });
            } else if c == ':' && chars.get(i + 1) == Some(&':') {
                out.push(Token { line: n + 1, text: "::".to_owned() });
                i += 2;
            } else {
                out.push(Token { line: n + 1, text: c.to_string() });
                i += 1;
            }
        }
    }
    out
}

fn is_ident(text: &str) -> bool {
    text.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// The module path of a source file: `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`.
fn module_of(file: &str) -> Vec<String> {
    let rel = file.strip_prefix("src/").unwrap_or(file).strip_suffix(".rs").unwrap_or(file);
    let mut parts: Vec<String> = rel.split('/').map(str::to_owned).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// Reads one path from token `i` on (segments, `{…}` groups of a use tree, `*`, `self`
/// in a group): pushes each leaf as (line, segments after the start) to `out`; answers the
/// index after the path.
fn path_tree(toks: &[Token], mut i: usize, mut segs: Vec<String>, out: &mut Vec<(usize, Vec<String>)>) -> usize {
    let text = |i: usize| toks.get(i).map_or("", |t| t.text.as_str());
    let mut line = toks.get(i).map_or(0, |t| t.line);
    loop {
        match text(i) {
            "{" => {
                i += 1;
                loop {
                    match text(i) {
                        "}" => return i + 1,
                        "," => i += 1,
                        "" => return i,
                        item if is_ident(item) || item == "{" || item == "*" => {
                            i = path_tree(toks, i, segs.clone(), out);
                        }
                        _ => i += 1,
                    }
                }
            }
            "*" => {
                out.push((line, segs));
                return i + 1;
            }
            word if is_ident(word) => {
                line = toks[i].line;
                if word != "self" {
                    segs.push(word.to_owned());
                }
                i += 1;
                let after = text(i + 1);
                if text(i) == "::" && (is_ident(after) || after == "{" || after == "*") {
                    i += 1;
                    continue;
                }
                out.push((line, segs));
                // `… as name`: the name is this file's own.
                return if text(i) == "as" { i + 2 } else { i };
            }
            _ => {
                out.push((line, segs));
                return i;
            }
        }
    }
}

/// Every import in the source file `file` (a path under `src/`) whose text is `text`:
/// `crate::…` paths (`$crate::…` too) in `use` items, grouped use trees and inline in
/// code, and `super::…` paths, resolved against the module they are written in (an inline
/// `mod tests { … }` included). Comments and literals are not code. A path relative to the
/// file's own child modules (`load::network` beside `mod load;`) is not read.
fn imports(file: &str, text: &str) -> Vec<Import> {
    let toks = tokens(&code_only(text));
    let t = |i: usize| toks.get(i).map_or("", |t| t.text.as_str());
    let file_module = module_of(file);
    let mut out = Vec::new();
    // Inline modules open at this point: (name, brace depth inside it).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    let mut i = 0;
    while i < toks.len() {
        let word = t(i);
        let before = if i == 0 { "" } else { t(i - 1) };
        let starts_path = t(i + 1) == "::" && before != "::" && before != "." && before != "in";
        let here = || {
            let mut m = file_module.clone();
            m.extend(inline.iter().map(|(name, _)| name.clone()));
            m
        };
        let (head, base, after) = match word {
            "{" => {
                depth += 1;
                if i >= 2 && t(i - 2) == "mod" && is_ident(t(i - 1)) {
                    inline.push((t(i - 1).to_owned(), depth));
                }
                i += 1;
                continue;
            }
            "}" => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
                i += 1;
                continue;
            }
            "crate" if starts_path => ("crate".to_owned(), Vec::new(), i + 2),
            "super" if starts_path => {
                let mut module = here();
                let mut j = i;
                let mut head = Vec::new();
                while t(j) == "super" && t(j + 1) == "::" {
                    module.pop();
                    head.push("super");
                    j += 2;
                }
                (head.join("::"), module, j)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        let mut leaves = Vec::new();
        i = path_tree(&toks, after, Vec::new(), &mut leaves);
        for (line, segs) in leaves {
            let written = std::iter::once(head.clone()).chain(segs.iter().cloned()).collect::<Vec<_>>().join("::");
            let mut path = base.clone();
            path.extend(segs);
            out.push(Import { line, written, path });
        }
    }
    out
}

/// The source file a module path names: the longest prefix of it that is a module file
/// (`src/a/b.rs` or `src/a/b/mod.rs`); the crate root (`src/lib.rs`) when none is.
fn resolve(path: &[String], files: &BTreeSet<String>) -> String {
    for k in (1..=path.len()).rev() {
        let joined = path[..k].join("/");
        for candidate in [format!("src/{joined}.rs"), format!("src/{joined}/mod.rs")] {
            if files.contains(&candidate) {
                return candidate;
            }
        }
    }
    "src/lib.rs".to_owned()
}

/// The layer of a source file (an index into [`LAYERS`]), by its longest prefix in
/// [`LAYER_OF`].
fn layer_of(file: &str) -> Option<usize> {
    let (_, name) = LAYER_OF.iter().filter(|(prefix, _)| file.starts_with(prefix)).max_by_key(|(p, _)| p.len())?;
    LAYERS.iter().position(|l| l == name)
}

/// One file-level import: the first line of `from` that imports `to`, and what it says.
struct Edge {
    from: String,
    to: String,
    line: usize,
    written: String,
}

/// The source files the layering covers (every `src/**/*.rs` but `lib.rs`, `main.rs` and
/// `src/bin/`), and each one's imports of another file.
fn import_graph() -> (Vec<String>, Vec<Edge>) {
    let sources: Vec<String> = files("src")
        .into_iter()
        .filter(|f| f.ends_with(".rs") && f != "src/lib.rs" && f != "src/main.rs" && !f.starts_with("src/bin/"))
        .collect();
    let known: BTreeSet<String> = sources.iter().cloned().chain(["src/lib.rs".to_owned()]).collect();
    let mut edges: Vec<Edge> = Vec::new();
    for file in &sources {
        let text = std::fs::read_to_string(root().join(file)).expect("source");
        for import in imports(file, &text) {
            let to = resolve(&import.path, &known);
            if &to == file {
                continue;
            }
            match edges.iter_mut().find(|e| &e.from == file && e.to == to) {
                Some(e) if e.line <= import.line => {}
                Some(e) => (e.line, e.written) = (import.line, import.written),
                None => edges.push(Edge { from: file.clone(), to, line: import.line, written: import.written }),
            }
        }
    }
    (sources, edges)
}

/// The strongly connected components of more than one file.
fn cycles(edges: &[Edge]) -> Vec<BTreeSet<String>> {
    let nodes: BTreeSet<&str> = edges.iter().flat_map(|e| [e.from.as_str(), e.to.as_str()]).collect();
    let reach = |from: &str| {
        let mut seen = BTreeSet::from([from.to_owned()]);
        let mut stack = vec![from.to_owned()];
        while let Some(n) = stack.pop() {
            for e in edges.iter().filter(|e| e.from == n) {
                if seen.insert(e.to.clone()) {
                    stack.push(e.to.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&str, BTreeSet<String>> = nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut out: Vec<BTreeSet<String>> = Vec::new();
    for n in &nodes {
        if out.iter().any(|c| c.contains(*n)) {
            continue;
        }
        let component: BTreeSet<String> =
            reaches[n].iter().filter(|m| reaches[m.as_str()].contains(*n)).cloned().collect();
        if component.len() > 1 {
            out.push(component);
        }
    }
    out
}

/// Up to five of the shortest distinct loops through a strongly connected `component`,
/// each as its imports in order.
fn shortest_cycles<'a>(component: &BTreeSet<String>, edges: &'a [Edge]) -> Vec<Vec<&'a Edge>> {
    let inside: Vec<&Edge> =
        edges.iter().filter(|e| component.contains(&e.from) && component.contains(&e.to)).collect();
    let mut found: Vec<Vec<&Edge>> = Vec::new();
    for start in component {
        // Breadth first from `start` until an import leads back to it.
        let mut came_by: BTreeMap<&str, &Edge> = BTreeMap::new();
        let mut frontier = vec![start.as_str()];
        let mut closing = None;
        while closing.is_none() && !frontier.is_empty() {
            let mut next = Vec::new();
            for node in frontier {
                for e in inside.iter().filter(|e| e.from == node) {
                    if e.to == *start {
                        closing = Some(*e);
                        break;
                    }
                    if !came_by.contains_key(e.to.as_str()) {
                        came_by.insert(&e.to, e);
                        next.push(e.to.as_str());
                    }
                }
                if closing.is_some() {
                    break;
                }
            }
            frontier = next;
        }
        let Some(last) = closing else { continue };
        let mut cycle = vec![last];
        let mut at = last.from.as_str();
        while at != start {
            let e = came_by[at];
            cycle.push(e);
            at = &e.from;
        }
        cycle.reverse();
        let files: BTreeSet<&str> = cycle.iter().map(|e| e.from.as_str()).collect();
        if !found.iter().any(|c| c.iter().map(|e| e.from.as_str()).collect::<BTreeSet<_>>() == files) {
            found.push(cycle);
        }
    }
    found.sort_by_key(Vec::len);
    found.truncate(5);
    found
}

#[test]
fn imports_point_down_the_layers_and_no_two_modules_import_each_other() {
    let (sources, edges) = import_graph();
    // The checker must see the tree: a reader that found nothing would pass everything.
    assert!(edges.len() >= 250, "read only {} imports between files: is the path reader broken?", edges.len());
    let unlayered: Vec<&String> = sources.iter().filter(|f| layer_of(f).is_none()).collect();
    assert!(
        unlayered.is_empty(),
        "these files are in no layer: {unlayered:?}. Add their path (or a prefix of it) to LAYER_OF in \
         tests/tidy.rs and to the \"Layers\" section of ARCHITECTURE.md"
    );
    let known = |e: &Edge| KNOWN_VIOLATIONS.iter().any(|(f, t, _)| *f == e.from && *t == e.to);
    let mut problems = Vec::new();
    // Every import that breaks a rule today: upward, or on a cycle.
    let mut violations: BTreeSet<(&str, &str)> = BTreeSet::new();
    for component in cycles(&edges) {
        let inside = edges.iter().filter(|e| component.contains(&e.from) && component.contains(&e.to));
        violations.extend(inside.map(|e| (e.from.as_str(), e.to.as_str())));
    }
    for e in &edges {
        let (Some(from), Some(to)) = (layer_of(&e.from), layer_of(&e.to)) else { continue };
        if to >= from {
            continue;
        }
        violations.insert((&e.from, &e.to));
        if !known(e) {
            problems.push(format!(
                "{}:{} imports {} (`{}`): layer {} imports layer {}, which is above it. A lower layer must not \
                 know a higher one: move what both need down to the lower layer, or have the higher layer hand \
                 it in (lib.rs wires the parts together).",
                e.from, e.line, e.to, e.written, LAYERS[from], LAYERS[to]
            ));
        }
    }
    // Without the listed imports, no cycle is left.
    let unlisted: Vec<Edge> = edges
        .iter()
        .filter(|e| !known(e))
        .map(|e| Edge { from: e.from.clone(), to: e.to.clone(), line: e.line, written: e.written.clone() })
        .collect();
    for component in cycles(&unlisted) {
        let loops: Vec<String> = shortest_cycles(&component, &unlisted)
            .iter()
            .map(|cycle| {
                let steps: Vec<String> = cycle
                    .iter()
                    .map(|e| format!("    {}:{} imports {} (`{}`)", e.from, e.line, e.to, e.written))
                    .collect();
                steps.join("\n")
            })
            .collect();
        problems.push(format!(
            "an import cycle among {} files {component:?}; its shortest loops:\n{}\nBreak each: move what the \
             files share into one module they import (in the lowest layer that needs it), so the imports point \
             one way.",
            component.len(),
            loops.join("\n  and\n")
        ));
    }
    for (from, to, why) in KNOWN_VIOLATIONS {
        if !violations.contains(&(*from, *to)) {
            problems.push(format!(
                "KNOWN_VIOLATIONS lists {from} → {to} ({why}), but that import is no longer a violation (it is \
                 gone, or points down and closes no cycle): delete its entry from tests/tidy.rs."
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} layering problem(s) (the layers: ARCHITECTURE.md, \"Layers\"; the table: LAYER_OF in \
         tests/tidy.rs). Never add a new violation to KNOWN_VIOLATIONS: that list only shrinks.\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

#[test]
fn the_layers_in_architecture_md_are_the_test_s() {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let start = doc.find("\n## Layers").expect("ARCHITECTURE.md has a \"## Layers\" section");
    let code_map = doc.find("\n## Code map").expect("ARCHITECTURE.md has a code map");
    assert!(start < code_map, "the Layers section comes before the code map");
    let section = &doc[start..code_map];
    for layer in &LAYERS[1..] {
        assert!(section.contains(&format!("**{layer}**")), "the Layers section names the layer {layer} in bold");
    }
    for (prefix, _) in LAYER_OF {
        assert!(section.contains(&format!("`{prefix}`")), "the Layers section lists `{prefix}`");
    }
}

#[test]
fn the_path_reader_finds_grouped_inline_and_super_paths_and_skips_comments_and_literals() {
    let paths = |file: &str, text: &str| -> Vec<(usize, String, String)> {
        imports(file, text).into_iter().map(|i| (i.line, i.written, i.path.join("::"))).collect()
    };
    let text = "\
//! Mentions crate::doc::Comment in a module doc.
use crate::a::{b, c::{d, e as f}, self};
use crate::g::*;
/// See [`crate::doc::Link`].
fn x() -> crate::h::i::J { /* crate::block /* nested */ crate::still::Comment */
    let s = \"crate::in_a::string\"; let r = r#\"crate::raw::\"string\"#; let c = '\"';
    let l: &'static str = crate::k::L; // crate::trailing
    crate::system_actor!(X, Y);
    y.load::<u8>(); pub(crate) fn z() {}
}
";
    assert_eq!(
        paths("src/top.rs", text),
        [
            (2, "crate::a::b".to_owned(), "a::b".to_owned()),
            (2, "crate::a::c::d".to_owned(), "a::c::d".to_owned()),
            (2, "crate::a::c::e".to_owned(), "a::c::e".to_owned()),
            (2, "crate::a".to_owned(), "a".to_owned()),
            (3, "crate::g".to_owned(), "g".to_owned()),
            (5, "crate::h::i::J".to_owned(), "h::i::J".to_owned()),
            (7, "crate::k::L".to_owned(), "k::L".to_owned()),
            (8, "crate::system_actor".to_owned(), "system_actor".to_owned()),
        ]
    );
    let text = "\
use super::{ai::Budget, Seat};
fn f() -> u8 { super::super::up::X; a.super_x::y(); 0 }
mod tests {
    use super::*;
    use super::super::kinds::Z;
}
use super::Later;
";
    assert_eq!(
        paths("src/game/kinds.rs", text),
        [
            (1, "super::ai::Budget".to_owned(), "game::ai::Budget".to_owned()),
            (1, "super::Seat".to_owned(), "game::Seat".to_owned()),
            (2, "super::super::up::X".to_owned(), "up::X".to_owned()),
            (4, "super".to_owned(), "game::kinds".to_owned()),
            (5, "super::super::kinds::Z".to_owned(), "game::kinds::Z".to_owned()),
            (7, "super::Later".to_owned(), "game::Later".to_owned()),
        ]
    );
    // In a mod.rs, `super` is the parent directory's module.
    assert_eq!(paths("src/store/redis/mod.rs", "use super::Guarded;")[0].2, "store::Guarded");
    // The longest prefix that is a module file.
    let files: BTreeSet<String> =
        ["src/lib.rs", "src/a/mod.rs", "src/a/b.rs", "src/game/kinds.rs"].map(String::from).into();
    let path = |p: &str| p.split("::").map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(resolve(&path("a::b::C::new"), &files), "src/a/b.rs");
    assert_eq!(resolve(&path("a::Item"), &files), "src/a/mod.rs");
    assert_eq!(resolve(&path("game::kinds::tests"), &files), "src/game/kinds.rs");
    assert_eq!(resolve(&path("system_actor"), &files), "src/lib.rs");
    // The layer table: the longest prefix wins.
    assert_eq!(layer_of("src/runtime/ticker.rs").map(|l| LAYERS[l]), Some("runtime"));
    assert_eq!(layer_of("src/hosting/supervisor.rs").map(|l| LAYERS[l]), Some("hosting"));
    assert_eq!(layer_of("src/cluster.rs").map(|l| LAYERS[l]), Some("services"));
    assert_eq!(layer_of("src/web/upgrade.rs").map(|l| LAYERS[l]), Some("web"));
}

// ---- Every decision the docs cite is in docs/DESIGN.md -------------------------------

/// The decisions in docs/DESIGN.md: the numbers of its `**Dn. Title.**` paragraphs.
fn decisions() -> BTreeSet<u32> {
    let design = std::fs::read_to_string(root().join("docs/DESIGN.md")).expect("docs/DESIGN.md");
    design
        .lines()
        .filter_map(|l| l.strip_prefix("**D"))
        .filter_map(|rest| rest.split_once(". ").and_then(|(n, _)| n.parse().ok()))
        .collect()
}

/// Every `Dn` a line cites, as (first, last, whether the text claims the whole set): `D11`
/// is (11, 11); a range `D1–D3` (or `D1-3`) cites every number in it; "decisions D1–D11"
/// claims to name them all.
fn citations(line: &str) -> Vec<(u32, u32, bool)> {
    let chars: Vec<char> = line.chars().collect();
    let number = |from: usize| {
        let digits: String = chars[from.min(chars.len())..].iter().take_while(|c| c.is_ascii_digit()).collect();
        (!digits.is_empty()).then(|| (digits.parse::<u32>().unwrap_or(u32::MAX), from + digits.len()))
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i] == 'D' && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_'));
        let Some((first, mut end)) = starts.then(|| number(i + 1)).flatten() else {
            i += 1;
            continue;
        };
        let mut last = first;
        let sep = ['–', '—', '-'];
        if chars.get(end).is_some_and(|c| sep.contains(c)) {
            let from = if chars.get(end + 1) == Some(&'D') { end + 2 } else { end + 1 };
            if let Some((n, after)) = number(from) {
                (last, end) = (n, after);
            }
        }
        if chars.get(end).is_some_and(|c| c.is_alphanumeric()) {
            i = end;
            continue;
        }
        let before: String = chars[..i].iter().collect();
        let whole = before.trim_end().to_lowercase().ends_with("decisions");
        out.push((first, last, whole));
        i = end;
    }
    out
}

#[test]
fn the_citation_reader_reads_single_numbers_ranges_and_claims_of_the_whole_set() {
    assert_eq!(citations("see D11 and D2."), [(11, 11, false), (2, 2, false)]);
    assert_eq!(citations("(decisions D1–D11) and D1–D3, D4-6"), [(1, 11, true), (1, 3, false), (4, 6, false)]);
    assert_eq!(citations("0xD1, AD2, D3x, UTF-8, D"), []);
}

#[test]
fn every_decision_cited_in_the_docs_is_in_docs_design_md() {
    let decided = decisions();
    let highest = decided.iter().max().copied().unwrap_or(0);
    assert!(decided.len() >= 10, "read only {decided:?} from docs/DESIGN.md's `**Dn. Title.**` paragraphs");
    assert_eq!(decided, (1..=highest).collect(), "docs/DESIGN.md numbers its decisions D1, D2, … without gaps");
    let mut texts: Vec<String> =
        ["README.md", "ARCHITECTURE.md", "RELIABILITY.md", "BENCHMARKS.md"].map(String::from).into();
    texts.extend(files("docs").into_iter().filter(|f| f.ends_with(".md")));
    texts.extend(files("src").into_iter().filter(|f| f.ends_with(".rs")));
    let mut problems = Vec::new();
    let mut cited = 0;
    for file in &texts {
        let text = std::fs::read_to_string(root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        for (n, line) in text.lines().enumerate() {
            for (first, last, whole) in citations(line) {
                cited += 1;
                let missing: Vec<u32> = (first..=last).filter(|d| !decided.contains(d)).collect();
                if !missing.is_empty() || last < first {
                    problems.push(format!(
                        "{file}:{} cites D{first}{}, but docs/DESIGN.md has D1–D{highest}: cite a decision it has",
                        n + 1,
                        if last == first { String::new() } else { format!("–D{last}") }
                    ));
                } else if whole && (first, last) != (1, highest) {
                    problems.push(format!(
                        "{file}:{} says \"decisions D{first}–D{last}\", but docs/DESIGN.md has D1–D{highest}: write \
                         D1–D{highest}, or drop the range",
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(cited >= 20, "found only {cited} citations of decisions: is the reader broken?");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
