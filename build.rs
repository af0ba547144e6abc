//! Embeds every file under `static/` into the binary: writes `$OUT_DIR/assets.rs`, a table
//! of (path relative to `static/`, bytes) that `src/web/assets.rs` serves. A new page
//! module or vendored library is served as soon as it is added to `static/`; no route to
//! write.

use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
            continue;
        }
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    println!("cargo:rerun-if-changed=static");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    let mut table = String::from(
        "/// Every file under `static/`: (path relative to it, contents).\npub static ASSETS: &[(&str, &[u8])] = &[\n",
    );
    for file in files {
        let rel = file.strip_prefix(&root).expect("under static/").to_string_lossy().replace('\\', "/");
        table.push_str(&format!("    ({rel:?}, include_bytes!({:?})),\n", file.display().to_string()));
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("assets.rs");
    std::fs::write(out, table).expect("write assets.rs");
}
