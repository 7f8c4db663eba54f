//! Container logs end to end, through the real daemon: rotation and the
//! flood limit (rate and burst). `logs --since` and `logs -f` are
//! tests/logs_follow.rs's.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, ensure};
use common::container_logs::*;
use common::*;
use serde_json::{Value, json};

#[test]
fn rotation_keeps_max_files_of_whole_lines_and_the_newest_in_order() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    // 5 MiB: 52429 lines of 100 bytes, numbered. The rate is raised so
    // the flood limit does not stretch the test out.
    let lines = 52_429;
    let cmd = format!(
        "awk 'BEGIN {{ for (i = 1; i <= {lines}; i++) printf \"%08d %91s\\n\", i, \"\" }}'"
    );
    env.write_spec(
        "chatty",
        &spec(
            &cmd,
            json!({"max_size": "64k", "max_files": 3, "rate": "100m", "burst": "100m"}),
        ),
    )?;
    let _daemon = env.start_daemon_checked()?;
    env.wait_state("chatty", "exited", Duration::from_secs(60))?;

    let files = log_files(&env, "chatty");
    ensure!(files.len() <= 3, "too many files: {files:?}");
    ensure!(files.len() == 3, "5 MiB should fill 3 files: {files:?}");
    let mut max_line = 0;
    for f in &files {
        let text = fs::read_to_string(f)?;
        for l in text.lines() {
            serde_json::from_str::<Value>(l).with_context(|| format!("torn line in {f:?}"))?;
            max_line = max_line.max(l.len() + 1);
        }
        ensure!(text.ends_with('\n'), "{f:?} ends mid-line");
        ensure!(
            text.len() <= 64 * 1024 + max_line,
            "{f:?} has {} bytes",
            text.len()
        );
        println!("{}: {} bytes", f.display(), text.len());
    }
    // `berth logs` reads across the files, oldest first: consecutive
    // numbers ending with the last line written.
    let numbers: Vec<u64> = entries(&env, "chatty")?
        .iter()
        .map(|e| e["log"].as_str().unwrap_or("")[..8].parse().unwrap_or(0))
        .collect();
    ensure!(
        numbers.last() == Some(&lines),
        "last line {:?}",
        numbers.last()
    );
    ensure!(
        numbers.windows(2).all(|w| w[1] == w[0] + 1),
        "lines out of order or missing"
    );
    println!("lines kept: {} of {lines}", numbers.len());
    let tail = run_ok(env.cli(&["logs", "chatty", "--tail", "2"]))?;
    let tail = String::from_utf8_lossy(&tail.stdout).into_owned();
    ensure!(
        tail.lines().map(|l| &l[..8]).collect::<Vec<_>>() == ["00052428", "00052429"],
        "{tail}"
    );
    Ok(())
}

fn file_len(p: &Path) -> u64 {
    fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

#[test]
fn a_flood_is_held_to_its_rate_and_slows_neither_the_api_nor_others() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    // No newlines: 16 KiB entries, so the file grows by what was read.
    env.write_spec(
        "flood",
        &spec(
            "tr '\\0' x < /dev/zero",
            json!({"rate": "64k", "burst": "64k", "max_size": "100m", "max_files": 1}),
        ),
    )?;
    env.write_spec(
        "ticker",
        &spec("while :; do echo tick; sleep 0.1; done", json!({})),
    )?;
    let daemon = env.start_daemon_checked()?;
    env.wait_state("flood", "running", Duration::from_secs(10))?;
    env.wait_state("ticker", "running", Duration::from_secs(10))?;
    // Let the burst go by.
    std::thread::sleep(Duration::from_millis(1500));

    let flood_log = log_path(&env, "flood");
    let (size0, ticks0, t0) = (
        file_len(&flood_log),
        cpu_ticks(daemon.pid())?,
        Instant::now(),
    );
    let window_start = SystemTime::now();
    // API round trips while it floods, on one connection (a CLI process
    // per call would measure process start-up on a loaded machine).
    let mut client = berth::api::client::Client::connect(&env.socket())?;
    let mut rtts = Vec::new();
    for _ in 0..50 {
        let start = Instant::now();
        client
            .call("list", json!({}))
            .map_err(|e| anyhow::anyhow!("list: {e:?}"))?;
        rtts.push(start.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    let rest = Duration::from_secs(3).saturating_sub(t0.elapsed());
    std::thread::sleep(rest);
    let elapsed = t0.elapsed().as_secs_f64();
    let grown = file_len(&flood_log) - size0;
    let cpu = (cpu_ticks(daemon.pid())? - ticks0) as f64 / 100.0 / elapsed;
    let window_end = SystemTime::now();

    rtts.sort();
    let p50 = rtts[rtts.len() / 2];
    let p99 = rtts[(rtts.len() * 99).div_ceil(100) - 1];
    let rate = grown as f64 / elapsed;
    println!(
        "flood: {rate:.0} bytes/s over {elapsed:.2}s (limit 65536); list p50 {p50:?} p99 {p99:?}; daemon cpu {:.1}%",
        cpu * 100.0
    );
    ensure!(p99 < Duration::from_millis(50), "list p99 {p99:?}");
    ensure!(
        (0.5 * 65536.0..=1.5 * 65536.0).contains(&rate),
        "flood logged {rate:.0} bytes/s"
    );
    ensure!(cpu < 0.3, "the daemon used {:.0}% cpu", cpu * 100.0);

    // The ticker's lines were logged on time: ~10 a second, no big gaps.
    let ticks: Vec<SystemTime> = entries(&env, "ticker")?
        .iter()
        .filter_map(|e| humantime::parse_rfc3339(e["time"].as_str()?).ok())
        .filter(|t| *t >= window_start && *t <= window_end)
        .collect();
    let gaps: Vec<Duration> = ticks
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).unwrap_or_default())
        .collect();
    let max_gap = gaps.iter().max().copied().unwrap_or_default();
    println!(
        "ticker: {} lines in the window, max gap {max_gap:?}",
        ticks.len()
    );
    ensure!(
        ticks.len() as f64 >= elapsed * 6.0,
        "only {} ticks",
        ticks.len()
    );
    ensure!(max_gap < Duration::from_millis(400), "gap {max_gap:?}");
    Ok(())
}
