//! Container logs end to end, through the real daemon: rotation, the
//! flood limit (rate and burst), `logs --since`, and `logs -f` (following,
//! and dropping a follower that never reads).

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use common::*;
use serde_json::{Value, json};

fn spec(command: &str, logging: Value) -> String {
    json!({
        "image": DEMO_REF,
        "command": ["sh", "-c", command],
        "stop_timeout": 1,
        "logging": logging,
    })
    .to_string()
}

fn log_path(env: &TestEnv, name: &str) -> std::path::PathBuf {
    env.root()
        .join("containers")
        .join(name)
        .join("logs/json.log")
}

/// json.log and its rotated files (json.log.N), whatever exists.
fn log_files(env: &TestEnv, name: &str) -> Vec<std::path::PathBuf> {
    let live = log_path(env, name);
    let dir = live.parent().unwrap().to_path_buf();
    let mut files: Vec<_> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("json.log"))
        })
        .collect();
    files.sort();
    files
}

/// One JSON-RPC call on a fresh connection.
fn rpc(env: &TestEnv, method: &str, params: Value) -> Result<Value> {
    let mut s = BufReader::new(UnixStream::connect(env.socket())?);
    let req = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    s.get_mut().write_all(format!("{req}\n").as_bytes())?;
    let mut line = String::new();
    s.read_line(&mut line)?;
    Ok(serde_json::from_str(&line)?)
}

fn entries(env: &TestEnv, name: &str) -> Result<Vec<Value>> {
    let v = rpc(env, "logs", json!({"name": name}))?;
    v["result"]
        .as_array()
        .cloned()
        .with_context(|| format!("logs reply: {v}"))
}

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

/// The daemon's CPU time (user + system), in clock ticks.
fn cpu_ticks(pid: i32) -> Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_comm = &stat[stat.rfind(')').context("stat")? + 2..];
    let f: Vec<&str> = after_comm.split(' ').collect();
    Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
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
    // API round trips while it floods.
    let mut rtts = Vec::new();
    for _ in 0..50 {
        let start = Instant::now();
        run_ok(env.cli(&["ps", "--json"]))?;
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
        "flood: {rate:.0} bytes/s over {elapsed:.2}s (limit 65536); ps p50 {p50:?} p99 {p99:?}; daemon cpu {:.1}%",
        cpu * 100.0
    );
    ensure!(p99 < Duration::from_millis(50), "ps p99 {p99:?}");
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

#[test]
fn logs_since_keeps_what_came_after() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec(
        "two",
        &spec("echo one; sleep 2; echo two; sleep 1000", json!({})),
    )?;
    let _daemon = env.start_daemon_checked()?;
    wait_for(Duration::from_secs(15), || {
        Ok(entries(&env, "two")?.len() == 2)
    })?;
    let all = entries(&env, "two")?;
    let second = all[1]["time"].as_str().unwrap().to_string();
    let since = |s: &str| -> Result<String> {
        let out = run_ok(env.cli(&["logs", "two", "--since", s]))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    assert_eq!(since(&second)?, "two\n");
    let t = humantime::parse_rfc3339(&second)?;
    let secs = t.duration_since(SystemTime::UNIX_EPOCH)?.as_secs();
    assert_eq!(since(&secs.to_string())?, "two\n");
    assert_eq!(since("1h")?, "one\ntwo\n");
    assert_eq!(since("2000000000")?, "");
    // The API takes a number too, and refuses what is not a time.
    let v = rpc(&env, "logs", json!({"name": "two", "since": secs}))?;
    assert_eq!(v["result"].as_array().map(Vec::len), Some(1), "{v}");
    let v = rpc(&env, "logs", json!({"name": "two", "since": "soon"}))?;
    assert_eq!(v["error"]["code"], -32602, "{v}");
    let out = env.cli(&["logs", "two", "--since", "soon"]).output()?;
    assert!(!out.status.success());
    Ok(())
}

#[test]
fn logs_follow_shows_new_lines_and_ends_when_the_container_exits() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec(
        "talker",
        &spec(
            "echo first; sleep 2; echo second; echo oops >&2; sleep 1; echo third",
            json!({}),
        ),
    )?;
    let _daemon = env.start_daemon_checked()?;
    wait_for(Duration::from_secs(15), || {
        Ok(!entries(&env, "talker")?.is_empty())
    })?;
    let started = Instant::now();
    let mut follow = env
        .cli(&["logs", "talker", "-f"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut out = BufReader::new(follow.stdout.take().unwrap());
    let mut seen = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        out.read_line(&mut line)?;
        seen.push((line, started.elapsed()));
    }
    println!("{seen:?}");
    let lines: Vec<&str> = seen.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(lines, ["first\n", "second\n", "third\n"]);
    // "second" came while following, not all at the end.
    assert!(
        seen[1].1 + Duration::from_millis(500) < seen[2].1,
        "{seen:?}"
    );
    // The container exited: the follow ends by itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = follow.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = follow.kill();
            bail!("logs -f did not end after the container exited");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    follow.stderr.take().unwrap().read_to_string(&mut err)?;
    assert!(status.success(), "{status}: {err}");
    assert_eq!(err, "oops\n");
    // Following an exited container prints its log and ends at once.
    let out = run_ok(env.cli(&["logs", "talker", "--follow", "--tail", "1"]))?;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "third\n");
    Ok(())
}

#[test]
fn a_follower_that_never_reads_is_dropped_and_the_daemon_serves_on() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec(
        "firehose",
        &spec(
            "tr '\\0' y < /dev/zero",
            json!({"rate": "2m", "burst": "2m", "max_size": "1m", "max_files": 2}),
        ),
    )?;
    let _daemon = env.start_daemon_checked()?;
    env.wait_state("firehose", "running", Duration::from_secs(10))?;
    let mut lazy = UnixStream::connect(env.socket())?;
    let req = json!({"jsonrpc": "2.0", "id": 7, "method": "logs", "params": {"name": "firehose", "tail": 0, "follow": true}});
    lazy.write_all(format!("{req}\n").as_bytes())?;
    // It never reads; meanwhile everyone else is served promptly.
    let until = Instant::now() + Duration::from_secs(4);
    let mut slowest = Duration::ZERO;
    while Instant::now() < until {
        let start = Instant::now();
        let v = rpc(&env, "list", json!({}))?;
        ensure!(v["result"].is_array(), "{v}");
        slowest = slowest.max(start.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("slowest list while a follower stalls: {slowest:?}");
    // Generous: a debug build spends ~15 ms a turn turning a 2 MiB burst
    // into JSON; what matters is that nothing waits for the stalled client.
    ensure!(
        slowest < Duration::from_millis(250),
        "list took {slowest:?}"
    );
    // The daemon hung up on it: what the socket still holds, then EOF,
    // and no final answer.
    lazy.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut got = Vec::new();
    lazy.read_to_end(&mut got)
        .context("the stalled follower was not disconnected")?;
    let text = String::from_utf8_lossy(&got);
    println!("the stalled follower got {} bytes before EOF", got.len());
    ensure!(text.contains("\"logs.entry\""), "no entries at all");
    ensure!(!text.contains("\"result\""), "a final answer was sent");
    ensure!(got.len() < 8 << 20, "{} bytes", got.len());
    Ok(())
}

#[test]
fn clients_that_hang_up_while_owed_an_answer_cost_the_daemon_nothing() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec("quiet", &spec("echo hi; sleep 1000", json!({})))?;
    let daemon = env.start_daemon_checked()?;
    env.wait_state("quiet", "running", Duration::from_secs(10))?;
    // A follower and a waiter, both gone before their answer.
    for (method, params) in [
        ("logs", json!({"name": "quiet", "follow": true})),
        ("wait", json!({"name": "quiet"})),
    ] {
        let mut s = UnixStream::connect(env.socket())?;
        let req = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        s.write_all(format!("{req}\n").as_bytes())?;
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(200));
    let ticks = cpu_ticks(daemon.pid())?;
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(daemon.pid())? - ticks;
    println!("daemon cpu over 2 s with hung-up clients: {used} ticks");
    ensure!(used < 20, "the daemon spun: {used} ticks in 2 s");
    let v = rpc(&env, "list", json!({}))?;
    ensure!(v["result"].is_array(), "{v}");
    Ok(())
}
