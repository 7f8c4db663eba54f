//! `berth apply` (docs/update.md, "apply") against a real daemon: two
//! changed specs of which one never becomes healthy both go back to the
//! previous specs (and a removed one comes back) with one event naming
//! it; a good apply (a gzip tarball, a changed task among its specs)
//! survives a restart of the daemon, what an unfinished apply left goes
//! at the start, and `--reset` returns to the seed; a bad JSON and a
//! tarball with `..` are refused and change nothing; the daemon killed
//! (SIGKILL, containers' cgroups gone) at each step of an apply comes back
//! with the old config or the new one, whole, and a clean store.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use common::updates::{events, inspect};
use common::*;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(40);

/// A busybox container printing `word`, stable after 1 s.
fn sh(word: &str, extra: Value) -> String {
    let script = format!("trap 'exit 0' TERM; echo {word}; while :; do sleep 0.1; done");
    let mut s = json!({"image": DEMO_REF, "command": ["sh", "-c", script],
        "restart": {"policy": "always"}, "stop_timeout": 1,
        "update": {"stable_for": 1}});
    if let (Value::Object(base), Value::Object(more)) = (&mut s, extra) {
        base.extend(more);
    }
    s.to_string()
}

/// A one-shot task printing `word`.
fn task(word: &str) -> String {
    json!({"image": DEMO_REF, "command": ["sh", "-c", format!("echo {word}; exit 0")],
        "update": {"stable_for": 1}})
    .to_string()
}

/// A config directory beside the seed, with these specs.
fn config_dir(env: &TestEnv, name: &str, specs: &[(&str, String)]) -> Result<PathBuf> {
    let dir = env.dir.path().join(name);
    fs::create_dir_all(dir.join("containers"))?;
    for (n, s) in specs {
        fs::write(dir.join("containers").join(format!("{n}.json")), s)?;
    }
    Ok(dir)
}

/// The word the container's spec prints.
fn word(env: &TestEnv, name: &str) -> Result<String> {
    let c = inspect(env, name)?;
    let script = c["spec"]["command"][2].as_str().context("no command")?;
    Ok(script
        .split("echo ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap_or("")
        .to_string())
}

fn wait_running_as(env: &TestEnv, name: &str, w: &str) -> Result<()> {
    let mut last = String::new();
    let r = wait_for(LIMIT, || {
        last = word(env, name).unwrap_or_default();
        Ok(last == w && env.container(name)?["state"] == "running")
    });
    r.with_context(|| format!("{name} never ran {w:?} (spec says {last:?})"))
}

fn info(env: &TestEnv) -> Result<Value> {
    let out = run_ok(env.cli(&["info", "--json"]))?;
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn apply(env: &TestEnv, args: &[&str]) -> Result<std::process::Output> {
    let mut all = vec!["apply"];
    all.extend_from_slice(args);
    Ok(env.cli(&all).output()?)
}

fn verify_store(env: &TestEnv) -> Result<()> {
    let root = env.root();
    let out = run_ok(berth(&["store", "verify", "--json", "--root"]).arg(&root))?;
    let report: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["problems"], json!([]), "{report}");
    Ok(())
}

/// What is in STORE/config: the names, sorted.
fn config_area(env: &TestEnv) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(env.root().join("config"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn an_unhealthy_spec_rolls_back_every_change() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec("a", &sh("a-v1", json!({})))?;
    env.write_spec("b", &sh("b-v1", json!({})))?;
    // Removed by the new config, so back once it is rolled back.
    env.write_spec("r", &sh("r-v1", json!({})))?;
    let _daemon = env.start_daemon_checked()?;
    wait_running_as(&env, "a", "a-v1")?;
    wait_running_as(&env, "b", "b-v1")?;
    wait_running_as(&env, "r", "r-v1")?;
    let sick = json!({"healthcheck": {"command": ["false"], "interval": 0.2, "retries": 1}});
    let new = config_dir(
        &env,
        "new",
        &[("a", sh("a-v2", json!({}))), ("b", sh("b-v2", sick))],
    )?;
    let started = Instant::now();
    let out = apply(&env, &[new.to_str().unwrap()])?;
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("b: unhealthy"), "{stderr}");
    let rolled = events(&env, "config.apply_rolled_back")?;
    assert_eq!(rolled.len(), 1, "{rolled:?}");
    assert_eq!(
        rolled[0]["data"]["failed"],
        json!([{"name": "b", "reason": "unhealthy"}]),
        "{}",
        rolled[0]
    );
    assert!(events(&env, "config.applied")?.is_empty());
    wait_running_as(&env, "a", "a-v1")?;
    wait_running_as(&env, "b", "b-v1")?;
    wait_running_as(&env, "r", "r-v1")?;
    assert_eq!(info(&env)?["config_dir"], json!(env.config()));
    wait_for(LIMIT, || Ok(config_area(&env).is_empty()))
        .with_context(|| format!("left in the store: {:?}", config_area(&env)))?;
    println!("apply rolled back in {} ms", took.as_millis());
    Ok(())
}

/// A gzip tarball of `dir`'s content.
fn tarball(env: &TestEnv, dir: &Path) -> Result<PathBuf> {
    let path = env.dir.path().join("config.tar.gz");
    let gz = flate2::write::GzEncoder::new(fs::File::create(&path)?, Default::default());
    let mut b = tar::Builder::new(gz);
    b.append_dir_all(".", dir)?;
    b.into_inner()?.finish()?;
    Ok(path)
}

#[test]
fn a_good_apply_survives_a_restart_and_reset_returns_to_the_seed() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec("a", &sh("a-v1", json!({})))?;
    env.write_spec("t", &task("t-v1"))?;
    let daemon = env.start_daemon_checked()?;
    wait_running_as(&env, "a", "a-v1")?;
    env.wait_state("t", "exited", LIMIT)?;
    let new = config_dir(
        &env,
        "new",
        &[
            ("a", sh("a-v2", json!({}))),
            ("c", sh("c-v2", json!({}))),
            // A task that exits 0 is done, not failed.
            ("t", task("t-v2")),
        ],
    )?;
    let tar = tarball(&env, &new)?;
    let started = Instant::now();
    let out = apply(&env, &[tar.to_str().unwrap()])?;
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let active = env.root().join("config/gen-1");
    assert_eq!(info(&env)?["config_dir"], json!(active));
    assert_eq!(info(&env)?["seed_config_dir"], json!(env.config()));
    assert_eq!(events(&env, "config.applied")?.len(), 1);
    wait_running_as(&env, "a", "a-v2")?;
    wait_running_as(&env, "c", "c-v2")?;
    assert_eq!(word(&env, "t")?, "t-v2");
    let (logs, _) = env.logs("t")?;
    assert!(logs.contains("t-v2"), "{logs}");

    let out = run_ok(env.cli(&["check"]))?;
    assert!(String::from_utf8_lossy(&out.stdout).contains("active config is valid"));

    drop(daemon);
    // What an apply killed before its commit leaves: gone at the start.
    let area = env.root().join("config");
    fs::create_dir_all(area.join("staging-1-0/containers"))?;
    fs::create_dir_all(area.join("gen-2/containers"))?;
    fs::write(area.join("gen-2/containers/x.json"), sh("x", json!({})))?;
    let daemon = env.start_daemon_checked()?;
    assert_eq!(info(&env)?["config_dir"], json!(active));
    assert_eq!(config_area(&env), ["current", "gen-1"]);
    assert!(!env.ps()?.iter().any(|c| c["name"] == "x"));
    wait_running_as(&env, "a", "a-v2")?;
    wait_running_as(&env, "c", "c-v2")?;

    let out = apply(&env, &["--reset"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(info(&env)?["config_dir"], json!(env.config()));
    wait_running_as(&env, "a", "a-v1")?;
    wait_for(LIMIT, || Ok(!env.ps()?.iter().any(|c| c["name"] == "c")))?;
    drop(daemon);
    let _daemon = env.start_daemon_checked()?;
    assert_eq!(info(&env)?["config_dir"], json!(env.config()));
    wait_running_as(&env, "a", "a-v1")?;
    assert_eq!(config_area(&env), Vec::<String>::new());
    verify_store(&env)?;
    println!(
        "apply (1 changed, 1 added, 1 task; stable_for 1 s) took {} ms",
        took.as_millis()
    );
    Ok(())
}

#[test]
fn bad_json_and_a_dotdot_tarball_are_refused_and_change_nothing() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec("a", &sh("a-v1", json!({})))?;
    let _daemon = env.start_daemon_checked()?;
    wait_running_as(&env, "a", "a-v1")?;
    let pid = env.container("a")?["pid"].clone();

    let bad = config_dir(&env, "bad", &[("a", "{\n  \"image\": ,\n}".to_string())])?;
    let out = apply(&env, &[bad.to_str().unwrap()])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let named = format!("{}:2:", bad.join("containers/a.json").display());
    assert!(stderr.contains(&named), "{stderr}");

    let evil = env.dir.path().join("evil.tar");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    let name = b"../evil.json";
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_size(2);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &b"{}"[..])?;
    fs::write(&evil, b.into_inner()?)?;
    let out = apply(&env, &[evil.to_str().unwrap()])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("../evil.json") && stderr.contains("refused"),
        "{stderr}"
    );
    assert!(!env.dir.path().join("evil.json").exists());
    assert!(!env.root().join("evil.json").exists());

    assert_eq!(events(&env, "config.rejected")?.len(), 2);
    assert!(events(&env, "config.apply_started")?.is_empty());
    assert_eq!(env.container("a")?["pid"], pid, "a was not touched");
    assert_eq!(info(&env)?["config_dir"], json!(env.config()));
    assert_eq!(config_area(&env), Vec::<String>::new());
    Ok(())
}

/// Kills the daemon as soon as the journal shows `kind` during an apply
/// (for the rollback's step, of an apply whose `b` turns unhealthy);
/// after a restart the config is `expect` (v1: the seed, v2: the new one)
/// for every container, and the store is clean.
fn kill_at(kind: &str, expect: &str) -> Result<()> {
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec("a", &sh("a-v1", json!({})))?;
    env.write_spec("b", &sh("b-v1", json!({})))?;
    let daemon = env.start_daemon_checked()?;
    wait_running_as(&env, "a", "a-v1")?;
    wait_running_as(&env, "b", "b-v1")?;
    // The rollback's step needs a failure: b never becomes healthy.
    let b = match kind {
        "config.apply_rolled_back" => json!({"healthcheck":
            {"command": ["false"], "interval": 0.2, "retries": 1}}),
        _ => json!({}),
    };
    let new = config_dir(
        &env,
        "new",
        &[("a", sh("a-v2", json!({}))), ("b", sh("b-v2", b))],
    )?;
    let mut client = env.cli(&["apply", new.to_str().unwrap()]);
    let mut child = client.spawn()?;
    // Two starts were v1's; a third is a run of the new config.
    let wanted = if kind == "container.started" { 3 } else { 1 };
    let seen = wait_for(LIMIT, || Ok(events(&env, kind)?.len() >= wanted));
    drop(daemon); // SIGKILL, and the containers' cgroups go
    let _ = child.wait();
    seen.with_context(|| format!("never saw {kind}"))?;
    let _daemon = env.start_daemon_checked()?;
    for name in ["a", "b"] {
        wait_running_as(&env, name, &format!("{name}-{expect}"))
            .with_context(|| format!("killed at {kind}"))?;
    }
    let area = config_area(&env);
    match expect {
        "v1" => {
            assert_eq!(info(&env)?["config_dir"], json!(env.config()));
            assert!(area.is_empty(), "killed at {kind}: {area:?}");
        }
        _ => {
            assert_eq!(
                info(&env)?["config_dir"],
                json!(env.root().join("config/gen-1"))
            );
            assert_eq!(area, ["current", "gen-1"], "killed at {kind}");
        }
    }
    verify_store(&env)
}

#[test]
fn a_daemon_killed_at_each_step_comes_back_whole() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    kill_at("config.apply_started", "v1")?;
    kill_at("container.started", "v1")?;
    kill_at("config.applied", "v2")?;
    kill_at("config.apply_rolled_back", "v1")?;
    Ok(())
}
