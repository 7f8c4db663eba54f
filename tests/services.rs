//! The supervisor as a service manager: dependency order (and a failing
//! one-shot task), health checks flipping and restarting, unless-stopped
//! across daemon restarts, reload with added/removed/changed/invalid
//! specs, shutdown in reverse dependency order, and restart backoff.

mod common;

use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use common::*;
use serde_json::{Value, json};

const DEMO_REF: &str = "localhost/demo/busybox:latest";
const LIMIT: Duration = Duration::from_secs(60);

fn sh(script: &str, extra: Value) -> String {
    let mut s = json!({"image": DEMO_REF, "command": ["sh", "-c", script]});
    if let (Value::Object(base), Value::Object(more)) = (&mut s, extra) {
        base.extend(more);
    }
    s.to_string()
}

fn time(v: &Value) -> Result<SystemTime> {
    let t = v.as_str().context("timestamp")?;
    Ok(humantime::parse_rfc3339(t)?)
}

#[test]
fn dependencies_start_in_order_and_a_failed_setup_task_stops_its_dependents() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec("setup", &sh("sleep 0.5; echo setup-done", json!({})))?;
    let health = json!({"command": ["test", "-f", "/tmp/ready"], "interval": 0.2, "retries": 1});
    env.write_spec(
        "db",
        &sh(
            "sleep 1; touch /tmp/ready; sleep 60",
            json!({"healthcheck": health}),
        ),
    )?;
    let deps = json!({"depends_on": {"db": "healthy", "setup": "completed_successfully"}});
    env.write_spec("app", &sh("echo app-up; sleep 60", deps))?;
    env.write_spec("bad", &sh("exit 3", json!({})))?;
    env.write_spec(
        "after-bad",
        &sh(
            "echo SHOULD-NOT-RUN",
            json!({"depends_on": {"bad": "completed_successfully"}}),
        ),
    )?;
    let _daemon = env.start_daemon_checked()?;
    let app = env.wait_state("app", "running", LIMIT)?;
    let db = env.container("db")?;
    let setup = env.container("setup")?;
    assert_eq!(db["health"], "healthy", "{db}");
    assert!(
        time(&app["started_at"])? >= time(&setup["finished_at"])?,
        "{app} {setup}"
    );
    assert!(
        time(&app["started_at"])? >= time(&db["started_at"])? + Duration::from_millis(900),
        "app started before db could be healthy: {app} {db}"
    );
    let failed = env.wait_state("after-bad", "exited", LIMIT)?;
    let error = failed["error"].as_str().unwrap_or("");
    assert!(
        error.contains("dependency bad failed (exit code 3)"),
        "{failed}"
    );
    assert_eq!(env.logs("after-bad")?.0, "");
    Ok(())
}

#[test]
fn a_dependency_cycle_is_refused_at_load() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.write_spec("a", &sh("true", json!({"depends_on": {"b": "started"}})))?;
    env.write_spec("b", &sh("true", json!({"depends_on": {"a": "started"}})))?;
    env.write_spec("c", &sh("true", json!({"depends_on": {"nope": "started"}})))?;
    let out = berth(&["check"]).arg(env.config()).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("c.json:1:") && stderr.contains("depends_on.nope: no container"),
        "{stderr}"
    );
    // Cycles are reported once the names are right.
    env.write_spec("c", &sh("true", json!({})))?;
    let out = berth(&["check"]).arg(env.config()).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a.json:1:") && stderr.contains("dependency cycle: a -> b -> a"),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn health_flips_to_unhealthy_and_back_and_can_restart_the_container() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let health =
        json!({"command": ["test", "-f", "/tmp/ok"], "interval": 0.2, "timeout": 2, "retries": 2});
    let script = "touch /tmp/ok; sleep 1.5; rm /tmp/ok; sleep 1.5; touch /tmp/ok; sleep 60";
    env.write_spec("flip", &sh(script, json!({"healthcheck": health})))?;
    let failing = json!({"command": ["sh", "-c", "echo checking; exit 1"], "interval": 0.2, "retries": 2,
                         "on_unhealthy": "restart"});
    env.write_spec(
        "sick",
        &sh(
            "sleep 60",
            json!({"healthcheck": failing, "stop_timeout": 1}),
        ),
    )?;
    let _daemon = env.start_daemon_checked()?;
    let mut seen = Vec::new();
    wait_for(Duration::from_secs(20), || {
        let h = env.container("flip")?["health"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if seen.last() != Some(&h) {
            seen.push(h);
        }
        Ok(seen.ends_with(&["healthy".into(), "unhealthy".into(), "healthy".into()]))
    })
    .with_context(|| format!("health went {seen:?}"))?;
    wait_for(Duration::from_secs(20), || {
        Ok(env.container("sick")?["restarts"].as_u64().unwrap_or(0) >= 1)
    })?;
    let inspect: Value = serde_json::from_slice(&run_ok(env.cli(&["inspect", "sick"]))?.stdout)?;
    let detail = &inspect["health_detail"];
    assert_eq!(detail["last_output"], "checking\n", "{detail}");
    assert_eq!(detail["last_exit_code"], 1);
    Ok(())
}

#[test]
fn unless_stopped_stays_stopped_across_daemon_restarts_until_started() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let spec = sh(
        "trap 'exit 0' TERM; while :; do sleep 0.1; done",
        json!({"restart": {"policy": "unless-stopped"}}),
    );
    env.write_spec("svc", &spec)?;
    let daemon = env.start_daemon_checked()?;
    env.wait_state("svc", "running", LIMIT)?;
    run_ok(env.cli(&["stop", "svc"]))?;
    drop(daemon);
    let daemon = env.start_daemon_checked()?;
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(env.container("svc")?["state"], "exited");
    run_ok(env.cli(&["start", "svc"]))?;
    env.wait_state("svc", "running", LIMIT)?;
    drop(daemon);
    let _daemon = env.start_daemon_checked()?;
    env.wait_state("svc", "running", LIMIT)?;
    Ok(())
}

#[test]
fn reload_starts_new_stops_removed_restarts_changed_and_rejects_invalid() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let forever = |tag: &str| sh(&format!("echo {tag}; sleep 60"), json!({"stop_timeout": 1}));
    for name in ["keep", "change", "drop"] {
        env.write_spec(name, &forever(name))?;
    }
    let _daemon = env.start_daemon_checked()?;
    for name in ["keep", "change", "drop"] {
        env.wait_state(name, "running", LIMIT)?;
    }
    let pid = |name: &str| -> Result<Value> { Ok(env.container(name)?["pid"].clone()) };
    let (keep_pid, change_pid) = (pid("keep")?, pid("change")?);
    env.write_spec("change", &forever("changed"))?;
    std::fs::remove_file(env.config().join("containers/drop.json"))?;
    env.write_spec("add", &forever("added"))?;
    env.write_spec("broken", "{\"image\": \"x\",\n \"bogus\": 1}")?;
    let out = env.cli(&["reload"]).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("broken.json:2:2: bogus: unknown field"),
        "{stderr}"
    );
    assert_eq!(
        pid("change")?,
        change_pid,
        "a rejected reload changed nothing"
    );
    assert!(env.container("add").is_err());
    std::fs::remove_file(env.config().join("containers/broken.json"))?;
    let out: Value = serde_json::from_slice(&run_ok(env.cli(&["reload", "--json"]))?.stdout)?;
    assert_eq!(
        out,
        json!({"added": ["add"], "removed": ["drop"], "changed": ["change"], "unchanged": ["keep"]})
    );
    env.wait_state("add", "running", LIMIT)?;
    wait_for(LIMIT, || Ok(env.logs("change")?.0.contains("changed")))?;
    env.wait_state("change", "running", LIMIT)?;
    assert_ne!(pid("change")?, change_pid);
    assert_eq!(pid("keep")?, keep_pid);
    wait_for(LIMIT, || Ok(env.container("drop").is_err()))?;
    Ok(())
}

#[test]
fn shutdown_stops_dependents_first_and_kills_after_the_stop_timeout() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec(
        "db",
        &sh("trap 'exit 0' TERM; while :; do sleep 0.1; done", json!({})),
    )?;
    // Ignores SIGTERM (PID 1 without a handler): SIGKILL after 1 s.
    env.write_spec(
        "app",
        &sh(
            "sleep 60",
            json!({"depends_on": {"db": "started"}, "stop_timeout": 1}),
        ),
    )?;
    let mut daemon = env.start_daemon()?;
    env.wait_state("app", "running", LIMIT)?;
    let started = std::time::Instant::now();
    let (status, stderr) = daemon.signal_and_wait(nix::sys::signal::Signal::SIGTERM, LIMIT)?;
    let took = started.elapsed();
    assert!(status.success(), "{stderr}");
    let app_exit = stderr
        .find("container app: exited")
        .context(stderr.clone())?;
    let db_exit = stderr
        .find("container db: exited")
        .context(stderr.clone())?;
    assert!(
        app_exit < db_exit,
        "db stopped before its dependent:\n{stderr}"
    );
    assert!(
        stderr.contains("container app: stop timeout, sending SIGKILL"),
        "{stderr}"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "{took:?}"
    );
    Ok(())
}

#[test]
fn restart_backoff_doubles_between_runs() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let spec = sh(
        "echo run; exit 1",
        json!({"restart": {"policy": "on-failure", "max_retries": 5}}),
    );
    env.write_spec("crash", &spec)?;
    let _daemon = env.start_daemon_checked()?;
    wait_for(LIMIT, || {
        let c = env.container("crash")?;
        Ok(c["state"] == "exited" && c["restarts"] == 5)
    })?;
    let out = run_ok(env.cli(&["logs", "crash", "--tail", "100"]))?;
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 6);
    let entries: Value = {
        let mut client = berth::api::client::Client::connect(&env.socket())?;
        client.call("logs", json!({"name": "crash"}))?
    };
    let times: Vec<SystemTime> = entries
        .as_array()
        .context("entries")?
        .iter()
        .filter(|e| e["log"] == "run\n")
        .map(|e| time(&e["time"]))
        .collect::<Result<_>>()?;
    let gaps: Vec<u128> = times
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).unwrap_or_default().as_millis())
        .collect();
    // 100, 200, 400, 800, 1600 ms plus the start itself.
    for (i, gap) in gaps.iter().enumerate() {
        let expected = 100u128 << i;
        assert!(
            *gap >= expected * 9 / 10 && *gap < expected + 1000,
            "gaps {gaps:?}"
        );
    }
    Ok(())
}
