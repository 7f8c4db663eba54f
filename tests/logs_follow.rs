//! Container logs end to end, through the real daemon, continued
//! (tests/logs.rs has rotation and the flood limit): `logs --since`, and
//! `logs -f` (following, dropping a follower that never reads, clients
//! that hang up while owed an answer).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail, ensure};
use common::container_logs::*;
use common::*;
use serde_json::json;

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
