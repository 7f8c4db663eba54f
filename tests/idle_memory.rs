//! An idle daemon gives back what its last burst of work left resident
//! (supervisor/daemon/idle_trim.rs): after a few container runs and ~2 s
//! of quiet, the main thread's stack below the event loop's frame and
//! most of the executable's code pages are no longer in its RSS.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::*;

/// Rss in KiB of the daemon's mappings whose header line `pick` accepts,
/// from /proc/PID/smaps.
fn rss_kib(pid: i32, pick: impl Fn(&str) -> bool) -> Result<u64> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))?;
    let mut chosen = false;
    let mut total = 0;
    for line in smaps.lines() {
        let is_header = line.split_whitespace().next().is_some_and(|f| {
            f.contains('-') && f.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        });
        if is_header {
            chosen = pick(line);
        } else if let Some(kib) = line.strip_prefix("Rss:")
            && chosen
        {
            total += kib.trim().trim_end_matches(" kB").parse::<u64>()?;
        }
    }
    Ok(total)
}

#[test]
fn an_idle_daemon_releases_its_deep_stack_and_code_pages() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let daemon = env.start_daemon_checked()?;
    let pid = daemon.pid();
    for _ in 0..3 {
        run_ok(env.cli(&["run", "--rm", DEMO_REF, "/bin/true"]))?;
    }
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))?;
    let exe = exe.to_string_lossy().into_owned();
    let stack = |l: &str| l.ends_with("[stack]");
    let code = |l: &str| l.ends_with(exe.as_str()) && l.contains(" r-xp ");
    // Each start ran seccomp's compilation and the spec's parsing on
    // the main thread's stack, and much of berth's code.
    let busy = (rss_kib(pid, stack)?, rss_kib(pid, code)?);
    let mut last = busy;
    // What the loop runs after a trim (its return, building the next
    // poll) faults back in: a few hundred KiB in a release build, more in
    // a debug build's uninlined code.
    wait_for(Duration::from_secs(20), || {
        last = (rss_kib(pid, stack)?, rss_kib(pid, code)?);
        Ok(last.0 <= 48 && last.1 * 2 <= busy.1)
    })
    .with_context(|| {
        format!(
            "still resident after idling: stack {} KiB, code {} KiB (busy: {} and {} KiB)",
            last.0, last.1, busy.0, busy.1
        )
    })?;
    eprintln!(
        "idle: stack {} KiB, code {} KiB resident (busy: {} and {} KiB)",
        last.0, last.1, busy.0, busy.1
    );
    Ok(())
}
