//! The house rules of ARCHITECTURE.md, checked on the workspace's sources: no source file over 600
//! lines, and no two modules of a crate that use each other (`use` or a `crate::`/`super::` path
//! in both directions). A parent declaring its children is not a use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;
const CRATES: [&str; 4] = ["backend/src", "backend/engine/src", "shared/src", "frontend/src"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace").to_path_buf()
}

fn rust_files(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

/// `a/b/mod.rs` and `a/b.rs` are module `a::b`; `lib.rs` / `main.rs` the root.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut path: Vec<String> = relative.iter().map(|part| part.to_string_lossy().into_owned()).collect();
    if matches!(path.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        path.pop();
    }
    path
}

/// The source without comments (line comments; doc comments are line comments too).
fn code_of(text: &str) -> String {
    text.lines().map(|line| line.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// Every path a `use` tree names, braces expanded (`a::{b, c::d}` → `a::b`, `a::c::d`).
fn expand_use(tree: &str) -> Vec<String> {
    let Some(open) = tree.find('{') else { return vec![tree.to_string()] };
    let close = tree.rfind('}').unwrap_or(tree.len());
    let (prefix, body) = (&tree[..open], &tree[open + 1..close]);
    let (mut parts, mut depth, mut current) = (Vec::new(), 0, String::new());
    for c in body.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
        .iter()
        .filter(|part| !part.trim().is_empty())
        .flat_map(|part| expand_use(part))
        .map(|p| prefix.to_string() + &p)
        .collect()
}

/// The paths of a file that start at `crate`, `super` or `self`.
fn paths_of(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(start) = rest.find("use ") {
        let statement = &rest[start + 4..];
        let boundary =
            start == 0 || !rest.as_bytes()[start - 1].is_ascii_alphanumeric() && rest.as_bytes()[start - 1] != b'_';
        if let Some(end) = statement.find(';') {
            if boundary {
                let tree: String = statement[..end].chars().filter(|c| !c.is_whitespace()).collect();
                paths.extend(expand_use(&tree));
            }
            rest = &statement[end..];
        } else {
            break;
        }
    }
    let bytes = code.as_bytes();
    for keyword in ["crate::", "super::", "self::"] {
        for (at, _) in code.match_indices(keyword) {
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_' || bytes[at - 1] == b':') {
                continue;
            }
            let path: String =
                code[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':').collect();
            paths.push(path);
        }
    }
    paths
}

/// The deepest module of `modules` that `segments` starts with.
fn resolve(modules: &BTreeSet<Vec<String>>, segments: &[String]) -> Vec<String> {
    (1..=segments.len())
        .rev()
        .map(|n| segments[..n].to_vec())
        .find(|prefix| modules.contains(prefix))
        .unwrap_or_default()
}

#[test]
fn no_source_file_is_over_600_lines() {
    let mut too_long = Vec::new();
    for src in CRATES {
        let mut files = Vec::new();
        rust_files(&workspace().join(src), &mut files);
        for file in files {
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            if lines > MAX_LINES {
                too_long.push(format!("{} ({lines} lines)", file.strip_prefix(workspace()).unwrap().display()));
            }
        }
    }
    assert!(too_long.is_empty(), "over {MAX_LINES} lines: {too_long:?}");
}

#[test]
fn no_two_modules_use_each_other() {
    let mut circles = Vec::new();
    for src in CRATES {
        let src = workspace().join(src);
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let modules: BTreeSet<Vec<String>> = files.iter().map(|file| module_of(&src, file)).collect();
        let mut uses: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
        for file in &files {
            let module = module_of(&src, file);
            let code = code_of(&std::fs::read_to_string(file).unwrap());
            for path in paths_of(&code) {
                let segments: Vec<String> = path.split("::").filter(|s| !s.is_empty()).map(String::from).collect();
                let target = match segments.first().map(String::as_str) {
                    Some("crate") => resolve(&modules, &segments[1..]),
                    Some("super" | "self") => {
                        let mut base = module.clone();
                        let mut rest = segments.as_slice();
                        while let Some(first) = rest.first() {
                            match first.as_str() {
                                "super" => base.pop(),
                                "self" => None,
                                _ => break,
                            };
                            rest = &rest[1..];
                        }
                        let full: Vec<String> = base.iter().chain(rest).cloned().collect();
                        let found = resolve(&modules, &full);
                        if found.len() < base.len() {
                            base
                        } else {
                            found
                        }
                    }
                    _ => continue,
                };
                // A module's own items, and a parent declaring or re-exporting its children.
                if target == module || (target.starts_with(&module) && !module.is_empty()) || module.is_empty() {
                    continue;
                }
                uses.entry(module.clone()).or_default().insert(target);
            }
        }
        for (module, targets) in &uses {
            for target in targets {
                if module < target && uses.get(target).is_some_and(|back| back.contains(module)) {
                    circles.push(format!("{src:?}: {} <-> {}", module.join("::"), target.join("::")));
                }
            }
        }
    }
    assert!(circles.is_empty(), "modules that use each other: {circles:#?}");
}

#[test]
fn the_checker_reads_use_trees_and_inline_paths() {
    assert_eq!(expand_use("crate::a::{b,c::{d,e}}"), ["crate::a::b", "crate::a::c::d", "crate::a::c::e"]);
    let paths = paths_of("use super::x::{Y, z};\nfn f() { crate::store::Store::open(); }");
    for expected in ["super::x::Y", "super::x::z", "crate::store::Store::open"] {
        assert!(paths.iter().any(|path| path == expected), "{expected} in {paths:?}");
    }
    let modules: BTreeSet<Vec<String>> = [vec!["store".to_string()], vec!["store".into(), "runs".into()]].into();
    let segments: Vec<String> = ["store", "runs", "Run", "new"].map(String::from).to_vec();
    assert_eq!(resolve(&modules, &segments), ["store", "runs"]);
}
