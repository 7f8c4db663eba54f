//! Service mode: the daemon under a fake service manager. A datagram
//! socket stands in for systemd's $NOTIFY_SOCKET: READY=1 arrives once the
//! API socket answers, WATCHDOG=1 keeps arriving while the loop runs, and
//! STOPPING=1 arrives when a shutdown begins. The API's `shutdown` stops a
//! service daemon as SIGTERM does.

mod common;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram, UnixStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The next datagram, or an error after `limit`.
fn next_message(sock: &UnixDatagram, limit: Duration) -> Result<String> {
    sock.set_read_timeout(Some(limit))?;
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).context("no sd_notify message")?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Reads messages until one contains `key`; returns all read.
fn wait_message(sock: &UnixDatagram, key: &str) -> Result<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let m = next_message(sock, Duration::from_secs(10))?;
        let found = m.lines().any(|l| l == key);
        seen.push(m);
        if found {
            return Ok(seen);
        }
    }
    bail!("no {key} within 10 s; got {seen:?}")
}

fn notify_flow(env: &TestEnv, notify_socket: &str, server: &UnixDatagram) -> Result<()> {
    let child = env
        .daemon_command()
        .env("NOTIFY_SOCKET", notify_socket)
        .env("WATCHDOG_USEC", "200000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = Pid::from_raw(child.id() as i32);
    let result = (|| -> Result<()> {
        let ready = wait_message(server, "READY=1")?;
        // READY=1 means "serving": the API must answer right now.
        UnixStream::connect(env.socket()).context("READY=1 before the socket answered")?;
        assert!(
            ready
                .last()
                .unwrap()
                .contains("STATUS=supervising 0 containers")
        );
        // 200 ms watchdog: a ping every 100 ms or so.
        wait_message(server, "WATCHDOG=1")?;
        wait_message(server, "WATCHDOG=1")?;
        kill(pid, Signal::SIGTERM)?;
        wait_message(server, "STOPPING=1")?;
        Ok(())
    })();
    let _ = kill(pid, Signal::SIGKILL);
    let out = child.wait_with_output()?;
    result.with_context(|| String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn ready_watchdog_and_stopping_reach_a_path_socket() -> Result<()> {
    let env = TestEnv::new()?;
    let path = env.dir.path().join("notify.sock");
    let server = UnixDatagram::bind(&path)?;
    notify_flow(&env, path.to_str().context("utf-8 path")?, &server)
}

#[test]
fn ready_watchdog_and_stopping_reach_an_abstract_socket() -> Result<()> {
    let env = TestEnv::new()?;
    let name = unique_name("berth-notify");
    let server = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes())?)?;
    notify_flow(&env, &format!("@{name}"), &server)
}

#[test]
fn api_shutdown_stops_a_service_daemon_and_its_containers() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let polite = "trap 'exit 0' TERM; echo trapped; while true; do sleep 0.1; done";
    env.write_spec(
        "svc",
        &serde_json::json!({"image": DEMO_REF, "command": ["sh", "-c", polite]}).to_string(),
    )?;
    let mut daemon = env.start_daemon_checked()?;
    // Until sh has set its trap, SIGTERM would be ignored (PID 1 of its
    // namespace): wait for the line printed after it.
    wait_for(Duration::from_secs(10), || {
        Ok(env.logs("svc")?.0.contains("trapped"))
    })?;
    let out = run_ok(env.cli(&["shutdown", "--reboot"]))?;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "shutting down: the daemon exits once its containers stopped",
        "not PID 1: no reboot, only the daemon stops"
    );
    // Already on its way down; the signal only collects the exit status.
    let (status, _) = daemon.signal_and_wait(Signal::SIGCONT, Duration::from_secs(15))?;
    let stderr = std::fs::read_to_string(env.dir.path().join("daemon.stderr"))?;
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("shutdown requested through the API\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("container svc: exited with code 0"),
        "{stderr}"
    );
    assert!(
        stderr.contains("all containers stopped; exiting"),
        "{stderr}"
    );
    Ok(())
}
