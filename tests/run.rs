//! `berth run`: ephemeral containers through the daemon's API, waited for
//! with a deferred reply, removed with --rm.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use anyhow::Result;
use common::*;

fn daemon_env() -> Result<(TestEnv, Daemon)> {
    let env = TestEnv::new()?;
    env.import_demo()?;
    let daemon = env.start_daemon()?;
    Ok((env, daemon))
}

#[test]
fn run_rm_prints_output_returns_the_exit_code_and_leaves_nothing() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (env, _daemon) = daemon_env()?;
    let out = env
        .cli(&[
            "run",
            "--rm",
            "-e",
            "WHO=berth",
            DEMO_REF,
            "sh",
            "-c",
            "echo hi $WHO; echo oops >&2; exit 7",
        ])
        .output()?;
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi berth\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    assert!(env.ps()?.is_empty(), "removed containers must leave ps");
    // The name is free at once (its directory is moved aside); the
    // writable layer is deleted by a helper, off the daemon's loop.
    let containers = env.root().join("containers");
    assert!(!containers.join("run-1").exists());
    let left = || -> Result<Vec<std::ffi::OsString>> {
        Ok(std::fs::read_dir(&containers)?
            .flatten()
            .map(|e| e.file_name())
            .collect())
    };
    let gone = wait_for(Duration::from_secs(10), || Ok(left()?.is_empty()));
    assert!(
        gone.is_ok(),
        "container directories left behind: {:?}",
        left()?
    );
    assert!(
        cgroup_dirs(&env.cgroup_parent)
            .iter()
            .all(|d| !d.ends_with("run-1"))
    );
    Ok(())
}

#[test]
fn run_reports_exec_errors_like_a_shell() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (env, _daemon) = daemon_env()?;
    let out = env.cli(&["run", "--rm", DEMO_REF, "/bin/nope"]).output()?;
    assert_eq!(out.status.code(), Some(127));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exec /bin/nope: No such file or directory")
    );
    let out = env
        .cli(&["run", "--rm", "localhost/no/such:image", "true"])
        .output()?;
    assert_eq!(out.status.code(), Some(125));
    assert!(
        // Not in the store, so the daemon tried to pull it, and says why that failed.
        String::from_utf8_lossy(&out.stderr).contains("pull localhost/no/such:image: "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[test]
fn detached_runs_can_be_waited_for_and_names_are_unique() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (env, _daemon) = daemon_env()?;
    let out = run_ok(env.cli(&[
        "run",
        "-d",
        "--name",
        "job",
        DEMO_REF,
        "sh",
        "-c",
        "sleep 0.3; exit 4",
    ]))?;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "job\n");
    let dup = env
        .cli(&["run", "-d", "--name", "job", DEMO_REF, "true"])
        .output()?;
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let mut s = BufReader::new(UnixStream::connect(env.socket())?);
    s.get_mut().write_all(
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"wait\",\"params\":{\"name\":\"job\"}}\n",
    )?;
    s.get_mut()
        .set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reply = String::new();
    s.read_line(&mut reply)?;
    let v: serde_json::Value = serde_json::from_str(&reply)?;
    assert_eq!(
        (
            v["result"]["state"].as_str(),
            v["result"]["exit_code"].as_i64()
        ),
        (Some("exited"), Some(4)),
        "{reply}"
    );
    // Not removed without --rm; waiting on an exited container answers at once.
    s.get_mut().write_all(
        b"{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"wait\",\"params\":{\"name\":\"job\"}}\n",
    )?;
    reply.clear();
    s.read_line(&mut reply)?;
    assert!(reply.contains("\"exit_code\":4"), "{reply}");
    Ok(())
}

#[test]
fn a_client_that_leaves_while_waiting_costs_nothing() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (env, _daemon) = daemon_env()?;
    run_ok(env.cli(&["run", "-d", "--name", "long", DEMO_REF, "sleep", "0.5"]))?;
    for _ in 0..20 {
        let mut s = UnixStream::connect(env.socket())?;
        s.write_all(
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"wait\",\"params\":{\"name\":\"long\"}}\n",
        )?;
    }
    wait_for(Duration::from_secs(5), || {
        Ok(env.container("long")?["state"] == "exited")
    })?;
    let out = run_ok(env.cli(&["run", "--rm", DEMO_REF, "echo", "still fine"]))?;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "still fine\n");
    Ok(())
}

#[test]
fn invalid_run_specs_are_params_errors() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (env, _daemon) = daemon_env()?;
    let mut s = BufReader::new(UnixStream::connect(env.socket())?);
    s.get_mut().write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"run\",\"params\":{\"spec\":{\"image\":\"x\",\"command\":[]}}}\n")?;
    let mut reply = String::new();
    s.read_line(&mut reply)?;
    assert!(
        reply.contains("-32602") && reply.contains("spec.command"),
        "{reply}"
    );
    Ok(())
}
