//! `wait_for` gates against a real daemon: a path that appears later
//! (inotify, no polling), a TCP port that starts listening later (probes
//! with backoff), a timeout that fails the start naming the gate, one that
//! starts it anyway, and `berth ps` saying what each waits for.

mod common;

use std::fs;
use std::net::TcpListener;
use std::time::{Duration, SystemTime};

use anyhow::{Result, ensure};
use common::*;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(30);

fn gated(wait_for: serde_json::Value) -> String {
    sh_in(
        DEMO_REF,
        "echo started; sleep 60",
        json!({"wait_for": wait_for}),
    )
}

fn ps_line(env: &TestEnv, name: &str) -> Result<String> {
    let out = run_ok(env.cli(&["ps"]))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_default()
        .to_string())
}

#[test]
fn a_path_and_a_port_that_appear_later_open_their_gates() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let flag = env.dir.path().join("later/dev/ttyUSB9");
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    env.write_spec("onpath", &gated(json!([{"path": flag}])))?;
    env.write_spec(
        "onport",
        &gated(json!([{"tcp": format!("127.0.0.1:{port}")}])),
    )?;
    let _daemon = env.start_daemon_checked()?;
    wait_for(LIMIT, || {
        Ok(
            ps_line(&env, "onpath")?.contains(&format!("waiting for path {}", flag.display()))
                && ps_line(&env, "onport")?.contains(&format!("waiting for tcp 127.0.0.1:{port}")),
        )
    })?;
    std::thread::sleep(Duration::from_millis(500));
    ensure!(env.container("onpath")?["state"] == "waiting");
    // Two directories that do not exist yet: the watch moves down to them.
    fs::create_dir_all(flag.parent().unwrap())?;
    let appeared = SystemTime::now();
    fs::write(&flag, "")?;
    let record = env.wait_state("onpath", "running", LIMIT)?;
    let started: SystemTime =
        humantime::parse_rfc3339(record["started_at"].as_str().unwrap_or(""))?;
    let after = started.duration_since(appeared).unwrap_or_default();
    ensure!(
        after < Duration::from_millis(200),
        "started {after:?} after the path appeared"
    );
    eprintln!("path gate: started {after:?} after the path appeared");
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    env.wait_state("onport", "running", LIMIT)?;
    drop(listener);
    Ok(())
}

#[test]
fn a_timeout_fails_naming_the_gate_or_starts_anyway() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let never = env.dir.path().join("never");
    env.write_spec("fails", &gated(json!([{"path": never, "timeout": 0.5}])))?;
    env.write_spec(
        "anyway",
        &gated(json!([{"path": never, "timeout": 0.5, "then": "start"}])),
    )?;
    let _daemon = env.start_daemon_checked()?;
    let record = env.wait_state("fails", "exited", LIMIT)?;
    assert_eq!(record["exit_code"], 125, "{record:#}");
    let error = record["error"].as_str().unwrap_or_default();
    let want = format!("path {} not met within 500ms", never.display());
    ensure!(error.contains(&want), "{record:#}");
    env.wait_state("anyway", "running", LIMIT)?;
    wait_for(LIMIT, || Ok(env.logs("anyway")?.0.contains("started")))?;
    Ok(())
}

#[test]
fn bad_gates_are_refused_by_check_naming_the_entry() -> Result<()> {
    let env = TestEnv::new()?;
    env.write_spec(
        "bad",
        &gated(json!([{"path": "/a", "tcp": "b:1"}, {"tcp": "nope"}])),
    )?;
    let out = berth(&["check"]).arg(env.config()).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success());
    ensure!(
        stderr.contains("wait_for.0") && stderr.contains("wait_for.1"),
        "{stderr}"
    );
    Ok(())
}
