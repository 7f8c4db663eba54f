//! Nothing slow runs in the daemon's loop: while one container's prestart
//! hook, CNI plugin or volume plugin takes 5 s at every start, the API
//! answers at once, a crash-looping neighbour keeps its backoff schedule,
//! and the slow container shows what it waits for and can be stopped.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::*;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);
/// How long the API is sampled while the slow step runs.
const SAMPLE_FOR: Duration = Duration::from_secs(8);

/// A crash-looping container: exits 1 at once, restart always.
fn crash_loop_spec() -> String {
    json!({"image": DEMO_REF, "command": ["sh", "-c", "exit 1"], "restart": {"policy": "always"}})
        .to_string()
}

fn write_script(path: &Path, body: &str) -> Result<()> {
    write_executable(path, &format!("#!/bin/sh\n{body}\n"))
}

/// `list` latencies (ms) over `SAMPLE_FOR`, one request every 20 ms on
/// one connection, as a client polling the daemon would see them.
fn sample_list_latency(env: &TestEnv) -> Result<Vec<f64>> {
    let mut client = berth::api::client::Client::connect(&env.socket())?;
    let mut samples = Vec::new();
    let end = Instant::now() + SAMPLE_FOR;
    while Instant::now() < end {
        let t = Instant::now();
        client
            .call("list", json!({}))
            .map_err(|e| anyhow::anyhow!("list: {e:?}"))?;
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(samples)
}

fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let idx = ((s.len() as f64 - 1.0) * p).round() as usize;
    s[idx.min(s.len() - 1)]
}

/// The crash-looper's exits, from the journal: each gap between two exits
/// must be its backoff delay plus a start, never a wait on the slow one.
fn check_backoff_schedule(env: &TestEnv) -> Result<usize> {
    let out = run_ok(env.cli(&[
        "events",
        "--json",
        "--since",
        "0",
        "--container",
        "crash",
        "--kind",
        "container.*",
    ]))?;
    let mut exits = Vec::new();
    let mut delays = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let e: Value = serde_json::from_str(line)?;
        match e["kind"].as_str() {
            Some("container.exited") => {
                let t = humantime::parse_rfc3339(e["time"].as_str().unwrap_or_default())?;
                exits.push(t);
            }
            Some("container.restarting") => {
                delays.push(e["data"]["delay_ms"].as_u64().unwrap_or(0))
            }
            _ => {}
        }
    }
    ensure!(
        exits.len() >= 5,
        "only {} exits of the crash-looper",
        exits.len()
    );
    for (i, pair) in exits.windows(2).enumerate() {
        let gap = pair[1].duration_since(pair[0])?.as_millis() as u64;
        let delay = delays.get(i).copied().unwrap_or(0);
        ensure!(
            gap < delay + 700,
            "crash-looper exit {i}→{}: {gap} ms apart for a {delay} ms backoff (the loop stalled)",
            i + 1
        );
    }
    Ok(exits.len())
}

/// Runs the common checks once `slow` is stuck in its slow step.
fn check_responsive(env: &TestEnv, slow: &str, waiting_for: &str) -> Result<()> {
    wait_for(LIMIT, || {
        let c = env.container(slow)?;
        Ok(c["state"] == "creating" && c["waiting_for"].as_str() == Some(waiting_for))
    })
    .with_context(|| format!("{slow} never showed creating / {waiting_for}"))?;
    let samples = sample_list_latency(env)?;
    let (p99, max) = (percentile(&samples, 0.99), percentile(&samples, 1.0));
    eprintln!(
        "{slow}: list latency over {} samples: p50 {:.2} ms, p99 {p99:.2} ms, max {max:.2} ms",
        samples.len(),
        percentile(&samples, 0.5)
    );
    ensure!(p99 < 100.0, "{slow}: list p99 {p99:.1} ms (limit 100)");
    ensure!(max < 500.0, "{slow}: list max {max:.1} ms (limit 500)");
    let exits = check_backoff_schedule(env)?;
    eprintln!("{slow}: the crash-looper exited {exits} times on schedule");
    // It can be stopped while it waits, at once.
    wait_for(LIMIT, || Ok(env.container(slow)?["state"] == "creating"))?;
    let t = Instant::now();
    run_ok(env.cli(&["stop", slow]))?;
    env.wait_state(slow, "exited", Duration::from_secs(3))?;
    eprintln!("{slow}: stopped while creating in {:?}", t.elapsed());
    Ok(())
}

#[test]
fn a_slow_prestart_hook_stalls_nothing_else() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let hook = env.dir.path().join("slow-hook");
    write_script(&hook, "sleep 5")?;
    let slow = json!({"image": DEMO_REF, "command": ["true"], "restart": {"policy": "always"},
        "hooks": {"prestart": [{"path": hook, "timeout": 30}]}});
    env.write_spec("slow", &slow.to_string())?;
    env.write_spec("crash", &crash_loop_spec())?;
    let _daemon = env.start_daemon_checked()?;
    check_responsive(&env, "slow", "prestart hooks")
}

/// A CNI plugin of the test's own, in the standard plugin directory.
struct CniPlugin(PathBuf);

impl Drop for CniPlugin {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[test]
fn a_stalling_cni_plugin_stalls_nothing_else() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let kind = unique_name("berth-stall");
    fs::create_dir_all("/opt/cni/bin")?;
    let plugin = CniPlugin(PathBuf::from("/opt/cni/bin").join(&kind));
    // ADD takes 5 s, then gives no address; DEL is instant.
    write_script(
        &plugin.0,
        r#"cat >/dev/null
if [ "$CNI_COMMAND" = ADD ]; then sleep 5; echo '{"cniVersion":"1.0.0","interfaces":[],"ips":[]}'; fi
if [ "$CNI_COMMAND" = VERSION ]; then echo '{"cniVersion":"1.0.0","supportedVersions":["1.0.0"]}'; fi
exit 0"#,
    )?;
    let list = json!({"cniVersion": "1.0.0", "name": kind, "plugins": [{"type": kind}]});
    fs::create_dir_all(env.config().join("cni"))?;
    fs::write(env.config().join("cni/berth.conflist"), list.to_string())?;
    let slow = json!({"image": DEMO_REF, "command": ["true"], "restart": {"policy": "always"}, "network": "cni"});
    env.write_spec("slow", &slow.to_string())?;
    env.write_spec("crash", &crash_loop_spec())?;
    let _daemon = env.start_daemon_checked()?;
    check_responsive(&env, "slow", "network (CNI ADD)")
}

struct VolumePlugin(Child);

impl Drop for VolumePlugin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_stalling_volume_plugin_stalls_nothing_else() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let sockets = env.dir.path().join("plugins");
    fs::create_dir_all(&sockets)?;
    let socket = sockets.join("stall.sock");
    let _plugin = VolumePlugin(
        Command::new("python3")
            .arg(repo_path("tests/data/volume-plugin.py"))
            .arg("--socket")
            .arg(&socket)
            .arg("--root")
            .arg(env.dir.path().join("stall-root"))
            .arg("--log")
            .arg(env.dir.path().join("stall.log"))
            .args(["--hang", "Mount"])
            .spawn()
            .context("python3 volume-plugin.py")?,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        if Instant::now() > deadline {
            bail!("the volume plugin never listened");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every Mount waits out the 5 s timeout: each start takes 5 s, fails.
    fs::write(
        env.config().join("berth.json"),
        json!({"volume_plugins": {"socket_dir": sockets, "spec_dirs": [], "timeout": 5}})
            .to_string(),
    )?;
    let slow = json!({"image": DEMO_REF, "command": ["true"], "restart": {"policy": "always"},
        "mounts": [{"type": "volume", "name": "v", "driver": "stall", "target": "/data"}]});
    env.write_spec("slow", &slow.to_string())?;
    env.write_spec("crash", &crash_loop_spec())?;
    let _daemon = env.start_daemon_checked()?;
    check_responsive(&env, "slow", "volume plugins")
}

/// A pull committing holds the store's lock: a container starting then
/// waits for it in a helper (creating, "the image store"), not in the loop.
#[test]
fn a_store_lock_held_by_a_pull_stalls_nothing_else() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let lock_path = env.root().join("images/refs.lock");
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)?;
    let held = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow::anyhow!("flock: {e}"))?;
    env.write_spec(
        "slow",
        &json!({"image": DEMO_REF, "command": ["sleep", "60"], "stop_timeout": 1}).to_string(),
    )?;
    env.write_spec("crash", &crash_loop_spec())?;
    let _daemon = env.start_daemon_checked()?;
    wait_for(LIMIT, || {
        let c = env.container("slow")?;
        Ok(c["state"] == "creating" && c["waiting_for"] == "the image store")
    })?;
    let samples = sample_list_latency(&env)?;
    let max = percentile(&samples, 1.0);
    eprintln!(
        "store lock held: list max {max:.2} ms over {} samples",
        samples.len()
    );
    ensure!(
        percentile(&samples, 0.99) < 100.0 && max < 500.0,
        "list max {max:.1} ms"
    );
    // The crash-looper could not start either (same lock), but the loop
    // kept turning: it is creating too, not stuck in a blocking call.
    drop(held);
    env.wait_state("slow", "running", LIMIT)?;
    Ok(())
}
