//! Habits that hold the line, checked on the source tree itself: every Rust file opens with
//! its `//!` module comment, every source file appears in ARCHITECTURE.md's code map, and
//! no file points outside the project (a clone must explain itself).

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
