//! Landlock's scopes (docs/security.md, ABI 6, both on by default): a
//! container can neither signal a process outside its Landlock domain nor
//! connect to an abstract Unix socket bound outside it. Shown with a host
//! process and a host socket the container can reach by every other rule
//! (a host process joined to the container's PID namespace with nsenter,
//! a socket in the host network namespace the container shares), and a
//! control container with `"scope": []` that does both.

mod common;

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use common::probe::*;
use common::*;
use serde_json::json;

/// A host process (not landlocked) inside a container's PID namespace,
/// killed when the test ends.
struct Joined(Child);

impl Drop for Joined {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The probe tries the socket, then waits for a process whose command
/// line holds `token` (the host's, once it joins) and sends it SIGTERM;
/// then it stays a while, because the end of the container's PID
/// namespace would kill the host process anyway.
fn script(token: &str) -> String {
    format!(
        "{PROBE} abstract_connect; \
         for i in $(seq 300); do for d in /proc/[0-9]*; do \
           [ \"$(tr '\\0' ' ' < $d/cmdline 2>/dev/null)\" = 'sleep {token} ' ] && p=${{d#/proc/}}; \
         done; [ -n \"$p\" ] && break; sleep 0.1; done; \
         [ -n \"$p\" ] || {{ echo no-host-process; exit 1; }}; \
         kill -TERM $p 2>&1 && echo signal-sent; echo tried; sleep 3"
    )
}

#[test]
fn scopes_stop_signals_and_abstract_sockets_reaching_the_host() -> Result<()> {
    if !require_root() || !require_feature(Feature::LandlockAbi(6)) {
        return Ok(());
    }
    let env = probe_env()?;
    let socket = unique_name("berth-scope");
    let listener = UnixListener::bind_addr(&SocketAddr::from_abstract_name(socket.as_bytes())?)?;
    listener.set_nonblocking(true)?;
    let token = |n: u32| format!("{}.{n}", 3000 + std::process::id() % 1000);
    let extra = |scope: Option<Vec<&str>>| {
        let mut e = json!({"network": "host", "env": {"PROBE_ABSTRACT": socket}});
        if let Some(scope) = scope {
            e["landlock"] = json!({"scope": scope});
        }
        e
    };
    env.write_spec("scoped", &sh(&script(&token(1)), extra(None)))?;
    env.write_spec("open", &sh(&script(&token(2)), extra(Some(vec![]))))?;
    let _daemon = env.start_daemon_checked()?;
    let mut joined = Vec::new();
    for (name, n) in [("scoped", 1), ("open", 2)] {
        let record = env.wait_state(name, "running", EXIT_LIMIT)?;
        let pid = record["pid"].as_i64().context("pid")?;
        let child = Command::new("nsenter")
            .args([
                "--target",
                &pid.to_string(),
                "--pid",
                "--",
                "sleep",
                &token(n),
            ])
            .stdout(Stdio::null())
            .spawn()
            .context("nsenter (util-linux)")?;
        joined.push(Joined(child));
    }
    let mut outcomes = Vec::new();
    for (name, host) in ["scoped", "open"].iter().zip(joined.iter_mut()) {
        wait_for(EXIT_LIMIT, || Ok(env.logs(name)?.0.contains("tried\n")))
            .with_context(|| format!("{name}: {:?}", env.logs(name)))?;
        // Give a delivered SIGTERM time to end the host's sleep.
        let mut status = None;
        for _ in 0..25 {
            status = host.0.try_wait()?;
            if status.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let (record, out, err) = finished(&env, name)?;
        assert_eq!(record["exit_code"], 0, "{name}: {out}{err}");
        outcomes.push((out, status));
    }
    let (scoped_out, scoped_host) = &outcomes[0];
    let socket_line = verdict_for(scoped_out, "", "abstract_connect");
    assert!(
        is_ok(&socket_line) && socket_line.contains("EPERM"),
        "{scoped_out}"
    );
    assert!(
        scoped_out.contains("Operation not permitted") && !scoped_out.contains("signal-sent"),
        "{scoped_out}"
    );
    assert!(
        scoped_host.is_none(),
        "the scoped container's signal ended the host process"
    );
    // The control: the same container without scopes reaches both.
    let (open_out, open_host) = &outcomes[1];
    let socket_line = verdict_for(open_out, "", "abstract_connect");
    assert!(
        is_escaped(&socket_line) && socket_line.contains("connect succeeded"),
        "{open_out}"
    );
    assert!(open_out.contains("signal-sent"), "{open_out}");
    // nsenter forwards its child's death as its own.
    assert!(
        open_host.is_some_and(|s| s.signal() == Some(15) || s.code() == Some(143)),
        "the host process was not ended by SIGTERM: {open_host:?}"
    );
    Ok(())
}
