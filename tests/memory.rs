//! An idle daemon gives back the code pages its start left resident and
//! the stack its last burst of work grew (kernel/memory.rs,
//! daemon/idle_trim.rs), and containers with Docker's
//! default profile share one compiled seccomp filter: the daemon's memory
//! with 20 containers grows by less than 40 KiB each (a debug build needs
//! ~26; a private ~28 KiB BPF copy per container would cross the bound).

mod common;

use std::fs;
use std::time::Duration;

use anyhow::{Context, Result};
use common::*;

fn status_kib(pid: i32, key: &str) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {key} in /proc/{pid}/status"))
}

/// A daemon with the demo image in its store (None without root).
fn demo_daemon() -> Result<Option<(TestEnv, Daemon)>> {
    if !require_root() {
        return Ok(None);
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let daemon = env.start_daemon_checked()?;
    Ok(Some((env, daemon)))
}

/// Rss in KiB of the daemon's `[stack]` mapping, from /proc/PID/smaps.
fn stack_rss_kib(pid: i32) -> Result<u64> {
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    let mut lines = smaps.lines().skip_while(|l| !l.ends_with("[stack]"));
    lines
        .find_map(|l| {
            l.strip_prefix("Rss:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .with_context(|| format!("no [stack] Rss in /proc/{pid}/smaps"))
}

#[test]
fn an_idle_daemon_gives_back_the_stack_a_burst_grew() -> Result<()> {
    let Some((env, daemon)) = demo_daemon()? else {
        return Ok(());
    };
    let pid = daemon.pid();
    // Each start runs the spec's parsing and the seccomp filter's
    // compilation on the main thread's stack.
    for _ in 0..3 {
        run_ok(env.cli(&["run", "--rm", DEMO_REF, "/bin/true"]))?;
    }
    let busy = stack_rss_kib(pid)?;
    let mut idle = busy;
    wait_for(Duration::from_secs(20), || {
        idle = stack_rss_kib(pid)?;
        Ok(idle <= 48)
    })
    .with_context(|| format!("stack resident: {busy} KiB after the runs, {idle} KiB once idle"))?;
    println!("stack {busy} -> {idle} KiB");
    Ok(())
}

#[test]
fn an_idle_daemon_gives_back_its_code_pages_and_shares_filters() -> Result<()> {
    let Some((env, daemon)) = demo_daemon()? else {
        return Ok(());
    };
    let pid = daemon.pid();
    let busy = status_kib(pid, "RssFile:")?;
    // Idle 2 s, then trimmed at the end of a turn (and again 5 s later,
    // after whatever the first trim's turn started).
    std::thread::sleep(Duration::from_secs(8));
    let idle = status_kib(pid, "RssFile:")?;
    assert!(
        idle * 2 < busy,
        "code pages resident: {busy} KiB after start, {idle} KiB once idle"
    );
    let anon_before = status_kib(pid, "RssAnon:")?;
    for i in 0..20 {
        let name = format!("m{i}");
        run_ok(env.cli(&[
            "run", "-d", "--rm", "--name", &name, DEMO_REF, "sleep", "600",
        ]))?;
    }
    std::thread::sleep(Duration::from_secs(8));
    let anon_after = status_kib(pid, "RssAnon:")?;
    let per_container = anon_after.saturating_sub(anon_before) / 20;
    println!(
        "file {busy} -> {idle} KiB; anon {anon_before} -> {anon_after} KiB ({per_container} KiB per container)"
    );
    assert!(
        per_container < 40,
        "{per_container} KiB of heap per container: shared filters leave ~26 (debug build); a private seccomp copy would add 28"
    );
    for i in 0..20 {
        run_ok(env.cli(&["kill", &format!("m{i}")]))?;
    }
    Ok(())
}
