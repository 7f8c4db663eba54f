//! `init: true`: berth's own binary, from a sealed memfd copy, is the
//! container's PID 1. busybox httpd (which as PID 1 ignores SIGTERM) then
//! stops at once; an orphan's zombie is reaped; the container cannot write
//! to its init (runc's CVE-2019-5736 was a container rewriting the
//! runtime's binary through /proc/PID/exe); `berth run --init` does the same.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use common::vm;
use common::*;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(30);

fn httpd(init: bool) -> String {
    let spec = json!({"image": DEMO_REF, "init": init, "stop_timeout": 3,
        "command": ["httpd", "-f", "-p", "8080", "-h", "/"]});
    spec.to_string()
}

/// How long `berth stop NAME` takes.
fn time_stop(env: &TestEnv, name: &str) -> Result<Duration> {
    env.wait_state(name, "running", LIMIT)?;
    let begin = Instant::now();
    run_ok(env.cli(&["stop", name]))?;
    env.wait_state(name, "exited", LIMIT)?;
    Ok(begin.elapsed())
}

#[test]
fn httpd_under_init_stops_on_sigterm_at_once() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec("with", &httpd(true))?;
    env.write_spec("without", &httpd(false))?;
    let _daemon = env.start_daemon_of(&vm::static_berth()?)?;
    let with = time_stop(&env, "with")?;
    let without = time_stop(&env, "without")?;
    ensure!(with < Duration::from_secs(1), "with init: {with:?}");
    eprintln!("berth stop: {with:?} with init, {without:?} without");
    // The control: as PID 1 httpd ignores SIGTERM and waits for SIGKILL.
    ensure!(
        without >= Duration::from_millis(2500),
        "without init: {without:?}"
    );
    Ok(())
}

/// The states of `pid` and of every process below it.
fn tree_states(pid: i64) -> Vec<(i64, char)> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
        out.push((p, state.unwrap_or('?')));
        let children = fs::read_to_string(format!("/proc/{p}/task/{p}/children"));
        todo.extend(
            children
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|c| c.parse::<i64>().ok()),
        );
    }
    out
}

#[test]
fn an_orphans_zombie_is_reaped_by_the_init_and_not_without_it() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    // The orphan's parent exits at once; after exec, sleep reaps nothing.
    let script = "(sleep 0.2 &); exec sleep 60";
    env.write_spec("with", &sh_in(DEMO_REF, script, json!({"init": true})))?;
    env.write_spec("without", &sh_in(DEMO_REF, script, json!({})))?;
    let _daemon = env.start_daemon_of(&vm::static_berth()?)?;
    let zombies = |name: &str| -> Result<usize> {
        let pid = env.wait_state(name, "running", LIMIT)?["pid"]
            .as_i64()
            .unwrap_or(0);
        Ok(tree_states(pid).iter().filter(|(_, s)| *s == 'Z').count())
    };
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(zombies("with")?, 0);
    assert_eq!(zombies("without")?, 1, "the control shows no zombie");
    Ok(())
}

#[test]
fn the_container_cannot_write_its_init_and_run_init_works() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let script = "readlink /proc/1/exe; tr '\\0' ' ' < /proc/1/cmdline; echo; \
                  (echo x >> /proc/1/exe) 2>/dev/null && echo WROTE || echo REFUSED; \
                  (dd if=/dev/zero of=/proc/1/exe bs=1 count=1 conv=notrunc) 2>/dev/null \
                  && echo WROTE || echo REFUSED";
    let binary = vm::static_berth()?;
    let before = fs::read(&binary)?;
    let _daemon = env.start_daemon_of(&binary)?;
    let out = run_ok(env.cli(&["run", "--rm", "--init", DEMO_REF, "sh", "-c", script]))?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(text.contains("/memfd:berth-init"), "{text}");
    ensure!(text.contains("berth-init _init -- sh -c"), "{text}");
    let verdicts: Vec<&str> = text
        .lines()
        .filter(|l| matches!(*l, "WROTE" | "REFUSED"))
        .collect();
    ensure!(verdicts == ["REFUSED", "REFUSED"], "{text}");
    ensure!(fs::read(&binary)? == before, "the berth binary changed");
    Ok(())
}

#[test]
fn a_dynamically_linked_berth_refuses_init_clearly() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec("dyn", &sh_in(DEMO_REF, "echo RAN", json!({"init": true})))?;
    let _daemon = env.start_daemon()?;
    let record = env.wait_state("dyn", "exited", LIMIT)?;
    let error = record["error"].as_str().unwrap_or_default();
    ensure!(
        error.contains("init: ") && error.contains("dynamically linked"),
        "{record:#}"
    );
    Ok(())
}

#[test]
fn init_runs_in_a_user_namespace_and_passes_the_exit_code_on() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let extra = json!({"init": true, "userns": "auto"});
    env.write_spec(
        "mapped",
        &sh_in(DEMO_REF, "cat /proc/self/uid_map; exit 7", extra),
    )?;
    let _daemon = env.start_daemon_of(&vm::static_berth()?)?;
    let record = env.wait_state("mapped", "exited", LIMIT)?;
    assert_eq!(record["exit_code"], 7, "{record:#}");
    let (out, _) = env.logs("mapped")?;
    ensure!(
        out.contains("1073741824"),
        "not in its own user namespace: {out}"
    );
    Ok(())
}
