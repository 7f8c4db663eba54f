//! `berth --host ssh://root@127.0.0.1:PORT ...` against a private sshd:
//! every client command runs over `ssh ... berth system dial-stdio`, which
//! relays an exec's pipes or a terminal in-band (api/relay.rs); a key the
//! server does not know fails clearly.

mod common;

use std::io::Write;
use std::process::{Output, Stdio};
use std::time::Duration;

use anyhow::Result;
use common::pty::PtyClient;
use common::sshd::{Sshd, require_sshd};
use common::*;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(30);

/// sshd, and a daemon with a running container `c`.
fn remote() -> Result<(Sshd, TestEnv, Daemon)> {
    let sshd = Sshd::start()?;
    let env = TestEnv::new()?;
    env.import_demo()?;
    let script = "echo ready; while true; do sleep 0.1; done";
    env.write_spec("c", &sh_in(DEMO_REF, script, json!({})))?;
    let daemon = env.start_daemon_checked()?;
    env.wait_state("c", "running", LIMIT)?;
    Ok((sshd, env, daemon))
}

fn over_ssh(sshd: &Sshd, env: &TestEnv, args: &[&str]) -> Result<Output> {
    Ok(sshd
        .berth(&sshd.key(), &env.socket(), args)
        .stdin(Stdio::null())
        .output()?)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn ps_logs_run_and_exec_work_over_ssh() -> Result<()> {
    if !require_root() || !require_sshd() {
        return Ok(());
    }
    let (sshd, env, _daemon) = remote()?;
    let out = over_ssh(&sshd, &env, &["ps", "--json"])?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list: Vec<Value> = serde_json::from_slice(&out.stdout)?;
    assert!(list.iter().any(|c| c["name"] == "c"), "{list:?}");

    let out = over_ssh(&sshd, &env, &["logs", "c"])?;
    assert_eq!(text(&out.stdout), "ready\n", "{}", text(&out.stderr));

    let script = "echo one; sleep 1; echo two";
    let out = over_ssh(
        &sshd,
        &env,
        &["run", "-d", "--name", "f", DEMO_REF, "sh", "-c", script],
    )?;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = over_ssh(&sshd, &env, &["logs", "-f", "f"])?;
    assert_eq!(text(&out.stdout), "one\ntwo\n", "{}", text(&out.stderr));

    let out = over_ssh(
        &sshd,
        &env,
        &["run", "--rm", DEMO_REF, "sh", "-c", "echo ran; exit 6"],
    )?;
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(6), "ran\n".into())
    );

    let script = "echo out; echo err >&2; exit 7";
    let out = over_ssh(&sshd, &env, &["exec", "c", "sh", "-c", script])?;
    assert_eq!(
        (out.status.code(), text(&out.stdout), text(&out.stderr)),
        (Some(7), "out\n".into(), "err\n".into())
    );

    let mut child = sshd
        .berth(&sshd.key(), &env.socket(), &["exec", "-i", "c", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"through ssh\n")?;
    drop(stdin);
    let out = child.wait_with_output()?;
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "through ssh\n".into())
    );
    Ok(())
}

#[test]
fn exec_t_and_run_it_over_ssh_relay_the_terminal_and_its_size() -> Result<()> {
    if !require_root() || !require_sshd() {
        return Ok(());
    }
    let (sshd, env, _daemon) = remote()?;
    let cmd = sshd.berth(&sshd.key(), &env.socket(), &["exec", "-it", "c", "sh"]);
    let mut t = PtyClient::spawn(cmd, 24, 80)?;
    common::pty::check_session(&mut t, false, LIMIT)?;

    let args = ["run", "-it", "--rm", DEMO_REF, "sh"];
    let mut t = PtyClient::spawn(sshd.berth(&sshd.key(), &env.socket(), &args), 24, 80)?;
    t.type_text("echo r\"\"un; exit 4\n")?;
    t.wait_for("\nrun", LIMIT)?;
    assert_eq!(t.wait_exit(LIMIT)?, Some(4), "{}", t.text);
    Ok(())
}

#[test]
fn a_key_the_device_does_not_know_fails_clearly() -> Result<()> {
    if !require_root() || !require_sshd() {
        return Ok(());
    }
    let (sshd, env, _daemon) = remote()?;
    let out = sshd
        .berth(&sshd.other_key(), &env.socket(), &["ps"])
        .stdin(Stdio::null())
        .output()?;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(err.contains("ssh to 127.0.0.1 failed"), "{err}");
    Ok(())
}
