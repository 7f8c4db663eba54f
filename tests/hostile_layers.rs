//! The hostile-layer corpus: each layer is rejected with a clear error or
//! safely contained; nothing is ever written outside the layer directory;
//! a rejected import leaves the store exactly as it was.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Result;
use common::hostile_corpus::{Expect, cases};
use common::layers::write_layout;
use common::*;

fn snapshot(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(e.path());
            }
            out.push(e.path());
        }
    }
    out.sort();
    out
}

#[test]
fn every_hostile_layer_is_rejected_or_contained() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let outside = env.dir.path().join("outside");
    fs::create_dir_all(&outside)?;
    fs::write(outside.join("secret"), "secret")?;
    let passwd_before = fs::read("/etc/passwd")?;
    let root = env.root();
    run_ok(berth(&["images", "--root", root.to_str().unwrap()]))?; // creates the store
    let cases = cases(&outside);
    assert!(cases.len() >= 25, "the corpus must keep at least 25 cases");
    let mut failures = Vec::new();
    for (i, case) in cases.into_iter().enumerate() {
        let layout = env.dir.path().join(format!("case-{i}"));
        let reference = format!("localhost/hostile/case{i}:1");
        write_layout(
            &layout,
            &reference,
            &case.layers,
            case.declared_digest.clone(),
        )?;
        let before = snapshot(&root);
        let out = berth(&[
            "import",
            layout.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
        ])
        .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        match case.expect {
            Expect::Reject(needle) => {
                if out.status.success() {
                    failures.push(format!("{}: accepted", case.name));
                } else if !stderr.contains(needle) {
                    failures.push(format!(
                        "{}: error does not mention {needle:?}: {stderr}",
                        case.name
                    ));
                } else if snapshot(&root) != before {
                    failures.push(format!("{}: the store changed", case.name));
                }
            }
            Expect::Contain(check) => {
                if !out.status.success() {
                    failures.push(format!("{}: rejected: {stderr}", case.name));
                } else {
                    let diff_id = &case.layers[0].diff_id;
                    check(&root.join("layers/sha256").join(diff_id));
                }
            }
        }
        let outside_now: Vec<_> = fs::read_dir(&outside)?
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(
            outside_now.len(),
            1,
            "{}: something was written outside the layer: {outside_now:?}",
            case.name
        );
        assert_eq!(
            fs::read("/etc/passwd")?,
            passwd_before,
            "{}: /etc/passwd changed",
            case.name
        );
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}
