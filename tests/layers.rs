//! The module graph stays one way down (docs/architecture.md): every
//! `crate::…`, `super::…` and `self::…` path in src/ is resolved to the
//! unit it names, and each unit may only reach the units below it. Reads
//! the sources as text, so it runs in milliseconds (tools that build the
//! whole crate graph are far too slow for CI here).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Who may use whom. A unit is a top-level module, or for the supervisor
/// one of its folders; `supervisor` alone is its root module (`say`, the
/// re-exports).
const ALLOWED: &[(&str, &[&str])] = &[
    ("kernel", &[]),
    ("fetch", &["kernel"]),
    ("image", &["fetch", "kernel"]),
    ("supervisor", &["supervisor/ops"]),
    // Leaves: the write counters, and the applied config's directories.
    ("supervisor/writes", &[]),
    ("supervisor/config_store", &[]),
    ("supervisor/spec", &["fetch", "kernel", "image"]),
    (
        "supervisor/plugins",
        &["supervisor/spec", "kernel", "image", "fetch"],
    ),
    (
        "supervisor/output",
        &["supervisor/spec", "supervisor/writes", "kernel"],
    ),
    (
        "supervisor/events",
        &[
            "supervisor/spec",
            "supervisor/writes",
            "kernel",
            "fetch",
            "image",
        ],
    ),
    (
        "supervisor/launch",
        &[
            "supervisor/spec",
            "supervisor/plugins",
            "kernel",
            "image",
            "fetch",
        ],
    ),
    (
        "supervisor/runtime",
        &[
            "supervisor/spec",
            "supervisor/launch",
            "supervisor/output",
            "kernel",
        ],
    ),
    // The PID-1 network helper: its report comes back as events.
    (
        "supervisor/hostnet",
        &["supervisor/spec", "supervisor/events", "kernel"],
    ),
    (
        "supervisor/ops",
        &[
            "supervisor/hostnet",
            "supervisor/spec",
            "supervisor/plugins",
            "supervisor/output",
            "supervisor/events",
            "supervisor/launch",
            "supervisor/runtime",
            "supervisor/writes",
            "supervisor/config_store",
            "kernel",
            "image",
            "fetch",
        ],
    ),
    (
        "supervisor/daemon",
        &[
            "supervisor/ops",
            "supervisor/spec",
            "supervisor/runtime",
            "kernel",
        ],
    ),
    (
        "api",
        &["supervisor", "supervisor/*", "kernel", "image", "fetch"],
    ),
    ("cli", &["*"]),
];

/// `say` (the daemon's log line) is the supervisor root's only item every
/// part of it may use.
const ROOT_ITEMS_FOR_ALL: &[&str] = &["say"];

fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

fn unit_of(path: &[String]) -> Option<String> {
    match path {
        [] => None,
        [top] if top == "supervisor" => Some("supervisor".into()),
        [top, sub, ..] if top == "supervisor" => {
            // `crate::supervisor::Supervisor` and friends: the root.
            let is_module = sub.chars().next().is_some_and(|c| c.is_ascii_lowercase());
            if is_module && !ROOT_ITEMS_FOR_ALL.contains(&sub.as_str()) {
                Some(format!("supervisor/{sub}"))
            } else if ROOT_ITEMS_FOR_ALL.contains(&sub.as_str()) {
                None
            } else {
                Some("supervisor".into())
            }
        }
        [top, ..] => Some(top.clone()),
    }
}

fn allowed(from: &str, to: &str) -> bool {
    if from == to || to.starts_with(&format!("{from}/")) {
        return true;
    }
    let Some((_, targets)) = ALLOWED.iter().find(|(u, _)| *u == from) else {
        return false;
    };
    targets.iter().any(|t| {
        *t == "*" || *t == to || (t.ends_with("/*") && to.starts_with(t.trim_end_matches('*')))
    })
}

/// The code of a file without comments, string literals and its test
/// module (tests may reach anywhere).
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start() == "#[cfg(test)]" && !line.starts_with(' ') {
            break;
        }
        let code = line.split("//").next().unwrap_or("");
        let mut clean = String::new();
        let mut in_str = false;
        let mut prev = ' ';
        for ch in code.chars() {
            if ch == '"' && prev != '\\' {
                in_str = !in_str;
            } else if !in_str {
                clean.push(ch);
            }
            prev = ch;
        }
        out.push((i + 1, clean));
    }
    out
}

/// Every path a line names through `crate::`, `super::` or `self::`,
/// resolved against the file's module.
fn referenced_paths(module: &[String], line: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &line[i..];
        let boundary = i == 0
            || !(bytes[i - 1].is_ascii_alphanumeric()
                || bytes[i - 1] == b'_'
                || bytes[i - 1] == b':');
        let start = ["crate::", "super::", "self::"]
            .into_iter()
            .find(|p| rest.starts_with(p));
        let (Some(prefix), true) = (start, boundary) else {
            i += 1;
            continue;
        };
        let token = rest
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .next()
            .unwrap_or("");
        let segs: Vec<&str> = token.split("::").filter(|s| !s.is_empty()).collect();
        i += token.len().max(prefix.len());
        // The module a file's own `super` names is its parent; a mod.rs
        // file is the module itself.
        let mut base: Vec<String> = module.to_vec();
        let mut segs = segs.into_iter().peekable();
        match segs.next() {
            Some("crate") => base.clear(),
            Some("self") => {}
            Some("super") => {
                base.pop();
                while segs.peek() == Some(&"super") {
                    segs.next();
                    base.pop();
                }
            }
            _ => continue,
        }
        base.extend(segs.map(String::from));
        found.push(base);
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src").flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_module_reaches_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    let mut edges: BTreeMap<(String, String), usize> = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        let Some(from) = unit_of(&module) else {
            continue;
        };
        let text = fs::read_to_string(file).expect("read a source file");
        for (n, line) in code_lines(&text) {
            for path in referenced_paths(&module, &line) {
                let Some(to) = unit_of(&path) else { continue };
                *edges.entry((from.clone(), to.clone())).or_default() += 1;
                if !allowed(&from, &to) {
                    violations.push(format!(
                        "{}:{n}: {from} may not use {to} ({})",
                        file.strip_prefix(&src).unwrap_or(file).display(),
                        path.join("::")
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "{} upward or sideways imports:\n{}",
        violations.len(),
        violations.join("\n")
    );
    // The test must see the graph it guards.
    assert!(edges.contains_key(&("supervisor/ops".into(), "supervisor/runtime".into())));
    assert!(edges.contains_key(&("api".into(), "supervisor".into())));
}

#[test]
fn paths_resolve_like_the_compiler_does() {
    let m = |s: &str| s.split("::").map(String::from).collect::<Vec<_>>();
    let here = m("supervisor::ops::start");
    assert_eq!(
        referenced_paths(&here, "use super::jobs::JobKind;"),
        vec![m("supervisor::ops::jobs::JobKind")]
    );
    assert_eq!(
        referenced_paths(&here, "x = crate::kernel::spawn(super::super::say)"),
        vec![m("kernel::spawn"), m("supervisor::say")]
    );
    assert_eq!(
        unit_of(&m("supervisor::ops::Supervisor")).as_deref(),
        Some("supervisor/ops")
    );
    assert_eq!(
        unit_of(&m("supervisor::Supervisor")).as_deref(),
        Some("supervisor")
    );
    assert_eq!(unit_of(&m("supervisor::say")), None);
    assert!(!allowed("supervisor/spec", "supervisor/ops"));
    assert!(allowed("supervisor/ops", "supervisor/spec"));
}
