//! Unit tests of launch/mod.rs: Docker's argv, env and cwd merge rules.

use super::*;

fn spec(json: &str) -> Spec {
    serde_json::from_str(json).unwrap()
}

fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> RunConfig {
    let v = |x: Option<&[&str]>| x.map(|a| a.iter().map(|s| s.to_string()).collect());
    RunConfig {
        entrypoint: v(entrypoint),
        cmd: v(cmd),
        ..RunConfig::default()
    }
}

#[test]
fn argv_follows_docker_rules() {
    let img = image(Some(&["/entry"]), Some(&["default"]));
    assert_eq!(
        effective_argv(&spec(r#"{"image":"x"}"#), &img),
        ["/entry", "default"]
    );
    assert_eq!(
        effective_argv(&spec(r#"{"image":"x","command":["c"]}"#), &img),
        ["/entry", "c"]
    );
    assert_eq!(
        effective_argv(&spec(r#"{"image":"x","entrypoint":["/e2"]}"#), &img),
        ["/e2"]
    );
    assert!(effective_argv(&spec(r#"{"image":"x"}"#), &image(None, None)).is_empty());
}

#[test]
fn env_merges_by_key_with_spec_winning() {
    let img = RunConfig {
        env: Some(vec!["PATH=/img".into(), "A=1".into(), "B=2".into()]),
        ..RunConfig::default()
    };
    let env = effective_env(
        &spec(r#"{"image":"x","env":{"B":"3"}}"#),
        &img,
        "web",
        "/root",
    );
    assert_eq!(
        env,
        ["A=1", "B=3", "HOME=/root", "HOSTNAME=web", "PATH=/img"]
    );
}
