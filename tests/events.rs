//! Durable events through the API: the journal survives a daemon restart
//! and `events --since` replays it with sequence numbers continuing;
//! filters work; a subscriber that never reads is dropped (and that is an
//! event) while another keeps receiving everything; 200 clients at once
//! are all answered.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use anyhow::{Context, Result};
use common::*;
use serde_json::{Value, json};

const DEMO_REF: &str = "localhost/demo/busybox:latest";

fn events(env: &TestEnv, args: &[&str]) -> Result<Vec<Value>> {
    let mut all = vec!["events", "--json"];
    all.extend_from_slice(args);
    let out = run_ok(env.cli(&all))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| Ok(serde_json::from_str(l)?))
        .collect()
}

fn kinds(evs: &[Value]) -> Vec<String> {
    evs.iter()
        .filter_map(|e| e["kind"].as_str().map(String::from))
        .collect()
}

#[test]
fn the_journal_survives_a_restart_and_replays_in_order() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec(
        "once",
        &json!({"image": DEMO_REF, "command": ["true"]}).to_string(),
    )?;
    let daemon = env.start_daemon_checked()?;
    env.wait_state("once", "exited", Duration::from_secs(60))?;
    let before = events(&env, &["--since", "0"])?;
    assert!(
        kinds(&before).starts_with(&[
            "container.created".into(),
            "container.started".into(),
            "container.exited".into()
        ]),
        "{before:?}"
    );
    // The started event says where the start spent its time, every stage
    // from the config to the exec.
    let stages = before[1]["data"]["start_us"]
        .as_object()
        .context("start_us in the started event")?;
    for stage in [
        "config_and_cgroup",
        "clone",
        "place",
        "wake",
        "filesystem",
        "identity",
        "exec",
    ] {
        let us = stages.get(stage).and_then(Value::as_u64);
        assert!(
            us.is_some_and(|us| us < 60_000_000),
            "stage {stage}: {stages:?}"
        );
    }
    let last = before
        .last()
        .and_then(|e| e["seq"].as_u64())
        .context("a seq")?;
    drop(daemon);
    let _daemon = env.start_daemon_checked()?;
    env.wait_state("once", "exited", Duration::from_secs(60))?;
    let after = events(&env, &["--since", "0"])?;
    let seqs: Vec<u64> = after.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "gaps or disorder: {seqs:?}"
    );
    assert!(after.len() > before.len() && after[..before.len()] == before[..]);
    assert!(seqs.last().copied().unwrap_or(0) > last);
    let only = events(
        &env,
        &[
            "--since",
            &last.to_string(),
            "--kind",
            "container.exited",
            "--container",
            "once",
        ],
    )?;
    assert_eq!(kinds(&only), ["container.exited"], "{only:?}");
    Ok(())
}

fn subscribe(env: &TestEnv) -> Result<UnixStream> {
    let mut s = UnixStream::connect(env.socket())?;
    let req = json!({"jsonrpc": "2.0", "id": 1, "method": "events", "params": {"follow": true}});
    writeln!(s, "{req}")?;
    Ok(s)
}

#[test]
fn a_subscriber_that_never_reads_is_dropped_and_others_get_everything() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    // 60 broken specs: every rejected reload is one big event (~8 KiB).
    for i in 0..60 {
        env.write_spec(
            &format!("bad{i}"),
            "{\"image\": \"x\", \"no_such_field_in_a_spec\": true}",
        )?;
    }
    std::fs::rename(env.config().join("containers"), env.config().join("later"))?;
    std::fs::create_dir(env.config().join("containers"))?;
    let _daemon = env.start_daemon_checked()?;
    std::fs::remove_dir(env.config().join("containers"))?;
    std::fs::rename(env.config().join("later"), env.config().join("containers"))?;
    let stalled = subscribe(&env)?;
    let reader = subscribe(&env)?;
    // The drop may come while the reloads still run (a loaded machine
    // makes them slow) and its event may then be pushed out of the bounded
    // journal by the big ones after it: a third subscriber, for
    // `subscriber.*` only, sees it whenever it comes.
    let mut watcher = UnixStream::connect(env.socket())?;
    let req = json!({"jsonrpc": "2.0", "id": 1, "method": "events",
        "params": {"follow": true, "kinds": ["subscriber.*"]}});
    writeln!(watcher, "{req}")?;
    watcher.set_read_timeout(Some(Duration::from_secs(60)))?;
    let saw_drop = std::thread::spawn(move || -> bool {
        BufReader::new(watcher)
            .lines()
            .map_while(Result::ok)
            .any(|line| {
                let v: Value = serde_json::from_str(&line).unwrap_or_default();
                v["params"]["kind"] == "subscriber.dropped"
            })
    });
    let counter = std::thread::spawn(move || -> usize {
        let mut n = 0;
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            let v: Value = serde_json::from_str(&line).unwrap_or_default();
            if v["params"]["kind"] == "config.rejected" {
                n += 1;
                if n == 400 {
                    break;
                }
            }
        }
        n
    });
    let mut client = berth::api::client::Client::connect(&env.socket())?;
    for _ in 0..400 {
        let r = client.call("reload", json!({}));
        assert!(r.is_err(), "the config is meant to be invalid");
    }
    assert_eq!(counter.join().expect("reader thread"), 400);
    // Stalled for longer than the daemon's limit (5 s) while events wait:
    // the next event finds it and drops it (if the reloads did not).
    std::thread::sleep(Duration::from_secs(6));
    let _ = client.call("reload", json!({}));
    assert!(
        saw_drop.join().expect("watcher thread"),
        "no subscriber.dropped event"
    );
    drop(stalled);
    // The daemon still answers.
    run_ok(env.cli(&["ps"]))?;
    Ok(())
}

#[test]
fn two_hundred_clients_at_once_are_all_answered() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let _daemon = env.start_daemon_checked()?;
    let socket = env.socket();
    let handles: Vec<_> = (0..200)
        .map(|_| {
            let socket = socket.clone();
            std::thread::spawn(move || -> Result<usize> {
                let mut client = berth::api::client::Client::connect(&socket)?;
                for _ in 0..10 {
                    client.call("list", json!({}))?;
                }
                Ok(10)
            })
        })
        .collect();
    let answered: usize = handles
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .sum();
    assert_eq!(answered, 2000);
    Ok(())
}

/// A one-thread HTTP receiver: answers 500 until `ok_after`, then 204,
/// and records the seqs of every batch it acknowledged.
fn receiver(
    ok_after: std::time::Instant,
) -> Result<(u16, std::sync::Arc<std::sync::Mutex<Vec<u64>>>)> {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0u8; len];
            let _ = reader.read_exact(&mut body);
            let ok = std::time::Instant::now() >= ok_after;
            if ok {
                let batch: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
                let mut g = seen.lock().expect("lock");
                g.extend(batch.iter().filter_map(|e| e["seq"].as_u64()));
            }
            let status = if ok {
                "204 No Content"
            } else {
                "500 Internal Server Error"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    Ok((port, got))
}

#[test]
fn a_webhook_that_fails_for_a_while_still_gets_every_event_in_order() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let (port, got) = receiver(std::time::Instant::now() + Duration::from_secs(2))?;
    std::fs::write(
        env.config().join("berth.json"),
        json!({"webhooks": [{"name": "test", "url": format!("http://127.0.0.1:{port}/hook")}]})
            .to_string(),
    )?;
    let spec = json!({"image": DEMO_REF, "command": ["sh", "-c", "exit 1"],
                      "restart": {"policy": "on-failure", "max_retries": 3}});
    env.write_spec("crashy", &spec.to_string())?;
    let _daemon = env.start_daemon_checked()?;
    wait_for(Duration::from_secs(60), || {
        let c = env.container("crashy")?;
        Ok(c["state"] == "exited" && c["restarts"] == 3)
    })?;
    let journal: Vec<u64> = events(&env, &["--since", "0"])?
        .iter()
        .filter_map(|e| e["seq"].as_u64())
        .collect();
    wait_for(Duration::from_secs(30), || {
        Ok(got.lock().expect("lock").len() >= journal.len())
    })
    .with_context(|| {
        format!(
            "received {:?} of {journal:?}",
            got.lock().map(|g| g.clone())
        )
    })?;
    let received = got.lock().expect("lock").clone();
    assert_eq!(
        &received[..journal.len()],
        &journal[..],
        "every event, in order, once"
    );
    Ok(())
}

#[test]
fn a_replay_longer_than_one_batch_arrives_whole_without_other_traffic() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.write_spec("bad", "{\"image\": 1}")?;
    std::fs::rename(
        env.config().join("containers/bad.json"),
        env.config().join("bad.later"),
    )?;
    let _daemon = env.start_daemon_checked()?;
    std::fs::rename(
        env.config().join("bad.later"),
        env.config().join("containers/bad.json"),
    )?;
    let mut client = berth::api::client::Client::connect(&env.socket())?;
    for _ in 0..1000 {
        let _ = client.call("reload", json!({}));
    }
    let mut s = UnixStream::connect(env.socket())?;
    let req = json!({"jsonrpc": "2.0", "id": 1, "method": "events",
                     "params": {"follow": true, "since": 0, "kinds": ["config.rejected"]}});
    writeln!(s, "{req}")?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut n = 0;
    for line in BufReader::new(s).lines() {
        let Ok(line) = line else { break };
        if line.contains("\"events.event\"") {
            n += 1;
            if n == 1000 {
                break;
            }
        }
    }
    assert_eq!(n, 1000, "the replay stalled");
    Ok(())
}
