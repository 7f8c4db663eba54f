use super::*;

fn spec_json(kind: &str, devices: &[(&str, &str)], common_env: &str) -> String {
    let devs: Vec<String> = devices
        .iter()
        .map(|(name, env)| {
            format!(r#"{{"name": "{name}", "containerEdits": {{"env": ["{env}"], "deviceNodes": [{{"path": "/dev/{name}", "type": "c", "major": 1, "minor": 3}}]}}}}"#)
        })
        .collect();
    format!(
        r#"{{"cdiVersion": "0.6.0", "kind": "{kind}", "devices": [{}], "containerEdits": {{"env": ["{common_env}"]}}}}"#,
        devs.join(",")
    )
}

fn dirs() -> (tempfile::TempDir, Vec<PathBuf>) {
    let root = tempfile::tempdir().unwrap();
    let dirs = vec![root.path().join("etc"), root.path().join("run")];
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    (root, dirs)
}

fn resolve_in(dirs: &[PathBuf], names: &[&str]) -> Result<CdiEdits, String> {
    let specs = load_specs(dirs)?;
    resolve(&specs, names, dirs)
}

#[test]
fn one_device_or_all_and_the_common_edits_once() {
    let (_root, dirs) = dirs();
    let text = spec_json("vendor.com/dev", &[("a", "A=1"), ("b", "B=1")], "COMMON=1");
    std::fs::write(dirs[0].join("dev.json"), text).unwrap();
    let a = resolve_in(&dirs, &["vendor.com/dev=a"]).unwrap();
    assert_eq!(a.env, ["COMMON=1", "A=1"]);
    assert_eq!(a.nodes.len(), 1);
    let all = resolve_in(&dirs, &["vendor.com/dev=all"]).unwrap();
    assert_eq!(all.env, ["COMMON=1", "A=1", "B=1"]);
    assert_eq!(all.nodes.len(), 2);
    let twice = resolve_in(&dirs, &["vendor.com/dev=a", "vendor.com/dev=all"]).unwrap();
    assert_eq!(twice.nodes.len(), 2);
}

#[test]
fn a_later_directory_wins_and_a_conflict_in_one_is_an_error() {
    let (_root, dirs) = dirs();
    let old = spec_json("vendor.com/dev", &[("a", "FROM=etc")], "X=1");
    let new = spec_json("vendor.com/dev", &[("a", "FROM=run")], "X=2");
    std::fs::write(dirs[0].join("dev.json"), &old).unwrap();
    std::fs::write(dirs[1].join("dev.json"), &new).unwrap();
    let a = resolve_in(&dirs, &["vendor.com/dev=a"]).unwrap();
    assert_eq!(a.env, ["X=2", "FROM=run"]);
    std::fs::write(dirs[1].join("other.json"), &old).unwrap();
    let e = resolve_in(&dirs, &["vendor.com/dev=a"]).unwrap_err();
    assert!(e.contains("defined in both"), "{e}");
}

#[test]
fn unknown_names_say_what_was_searched() {
    let (_root, dirs) = dirs();
    let text = spec_json("vendor.com/dev", &[("a", "A=1")], "C=1");
    std::fs::write(dirs[0].join("dev.json"), text).unwrap();
    let e = resolve_in(&dirs, &["vendor.com/dev=zz"]).unwrap_err();
    assert!(
        e.contains("vendor.com/dev=zz") && e.contains(&dirs[0].display().to_string()),
        "{e}"
    );
    assert!(e.contains("kind vendor.com/dev has a"), "{e}");
    let e = resolve_in(&dirs, &["other.com/x=a"]).unwrap_err();
    assert!(e.contains("no spec file defines kind other.com/x"), "{e}");
}

#[test]
fn a_broken_file_is_named_and_other_files_are_ignored() {
    let (_root, dirs) = dirs();
    std::fs::write(dirs[0].join("README"), "not a spec").unwrap();
    std::fs::write(
        dirs[0].join("bad.yaml"),
        "cdiVersion: 0.3.0\nkind: v.com/x\ndevices: []\n",
    )
    .unwrap();
    let e = resolve_in(&dirs, &["v.com/x=a"]).unwrap_err();
    assert!(e.contains("bad.yaml") && e.contains("devices"), "{e}");
    let missing = vec![PathBuf::from("/nonexistent/cdi")];
    assert!(
        resolve_in(&missing, &["v.com/x=a"])
            .unwrap_err()
            .contains("not found")
    );
}

#[test]
fn hooks_go_to_their_stage_and_unsupported_edits_are_refused() {
    let (_root, dirs) = dirs();
    let text = r#"{"cdiVersion": "0.7.0", "kind": "v.com/x", "devices": [
        {"name": "hook", "containerEdits": {"hooks": [{"hookName": "createContainer", "path": "/bin/true"},
            {"hookName": "startContainer", "path": "/bin/true"}, {"hookName": "createRuntime", "path": "/bin/true"}]}},
        {"name": "rdt", "containerEdits": {"intelRdt": {"closID": "x"}}},
        {"name": "ok", "containerEdits": {"hooks": [{"hookName": "poststop", "path": "/bin/true"}], "additionalGids": [5, 5]}}
    ]}"#;
    std::fs::write(dirs[0].join("x.json"), text).unwrap();
    let hooks = resolve_in(&dirs, &["v.com/x=hook"]).unwrap().hooks;
    let counts = [hooks.create_container.len(), hooks.start_container.len()];
    assert_eq!((counts, hooks.prestart.len()), ([1, 1], 1));
    let e = resolve_in(&dirs, &["v.com/x=rdt"]).unwrap_err();
    assert!(e.contains("intelRdt"), "{e}");
    let ok = resolve_in(&dirs, &["v.com/x=ok"]).unwrap();
    assert_eq!(ok.hooks.poststop.len(), 1);
    assert_eq!(ok.additional_gids, [5]);
    let bad = r#"{"cdiVersion": "0.7.0", "kind": "v.com/y", "devices": [
        {"name": "bad", "containerEdits": {"hooks": [{"hookName": "preStart", "path": "/bin/true"}]}}]}"#;
    std::fs::write(dirs[0].join("y.json"), bad).unwrap();
    let e = resolve_in(&dirs, &["v.com/y=bad"]).unwrap_err();
    assert!(e.contains("preStart") && e.contains("y.json"), "{e}");
}
