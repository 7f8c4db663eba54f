//! `berth exec`: a command inside a running container, its pipes passed to
//! the client over the API socket, its exit code the answer; inside the
//! container's cgroup and seccomp, able to signal its PID 1, journalled.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Result;
use common::*;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(20);

/// A daemon with one running container `c` whose PID 1 traps HUP.
fn running() -> Result<(TestEnv, Daemon)> {
    let env = TestEnv::new()?;
    env.import_demo()?;
    let script = "trap 'echo got-hup' HUP; echo ready; while true; do sleep 0.1; done";
    let extra = json!({"env": {"FROM_SPEC": "spec"}, "working_dir": "/tmp"});
    env.write_spec("c", &sh_in(DEMO_REF, script, extra))?;
    env.write_spec("done", &sh_in(DEMO_REF, "exit 0", json!({})))?;
    let daemon = env.start_daemon_checked()?;
    env.wait_state("c", "running", LIMIT)?;
    env.wait_state("done", "exited", LIMIT)?;
    Ok((env, daemon))
}

fn exec(env: &TestEnv, args: &[&str]) -> Result<(Option<i32>, String, String)> {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    let out = env.cli(&all).output()?;
    Ok((
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[test]
fn exec_output_exit_code_env_user_and_workdir() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (env, _daemon) = running()?;
    let (code, out, err) = exec(&env, &["c", "sh", "-c", "echo out; echo err >&2; exit 7"])?;
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (Some(7), "out\n", "err\n")
    );

    let script = "echo $FROM_SPEC $EXTRA; pwd; id -u; id -g";
    let (code, out, err) = exec(&env, &["c", "sh", "-c", script])?;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "spec\n/tmp\n0\n0\n");
    let args = [
        "-e",
        "EXTRA=x",
        "-e",
        "FROM_SPEC=over",
        "-u",
        "nobody",
        "-w",
        "/etc",
    ];
    let mut all = args.to_vec();
    all.extend(["c", "sh", "-c", script]);
    let (code, out, err) = exec(&env, &all)?;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "over x\n/etc\n65534\n65534\n");

    let (code, _, err) = exec(&env, &["c", "/no/such"])?;
    assert_eq!(code, Some(127), "{err}");
    let (code, _, err) = exec(&env, &["-u", "ghost", "c", "true"])?;
    assert_ne!(code, Some(0));
    assert!(err.contains("ghost"), "{err}");
    Ok(())
}

#[test]
fn exec_into_a_stopped_or_unknown_container_fails_clearly() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (env, _daemon) = running()?;
    let (code, _, err) = exec(&env, &["done", "true"])?;
    assert_ne!(code, Some(0));
    assert!(
        err.contains("done") && err.contains("exited, not running"),
        "{err}"
    );
    let (code, _, err) = exec(&env, &["nothere", "true"])?;
    assert_ne!(code, Some(0));
    assert!(err.contains("nothere"), "{err}");
    Ok(())
}

#[test]
fn exec_stdin_is_passed_with_i_only() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (env, _daemon) = running()?;
    let mut child = env
        .cli(&["exec", "-i", "c", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"hi\n")?;
    drop(stdin);
    let out = child.wait_with_output()?;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi\n");
    // Without -i the command reads /dev/null, whatever the client's stdin.
    let out = env
        .cli(&["exec", "c", "cat"])
        .stdin(Stdio::piped())
        .output()?;
    assert_eq!((out.status.code(), out.stdout.len()), (Some(0), 0));
    Ok(())
}

#[test]
fn exec_is_confined_like_the_container_and_can_signal_its_pid1() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (env, _daemon) = running()?;
    // Same cgroups as PID 1: in the container's cgroup namespace, a
    // process outside its cgroup would show a "/.." path.
    let script = "cat /proc/self/cgroup; echo --; cat /proc/1/cgroup";
    let (code, out, err) = exec(&env, &["c", "sh", "-c", script])?;
    assert_eq!(code, Some(0), "{err}");
    let (mine, pid1) = out.split_once("--\n").expect("separator");
    assert_eq!(mine, pid1);
    assert!(mine.contains("0::/\n") && !mine.contains(".."), "{mine}");
    // Same seccomp, no_new_privs and capabilities as PID 1.
    let status = "grep -E '^(Seccomp|NoNewPrivs|CapEff|CapBnd):' /proc/self/status /proc/1/status";
    let (code, out, err) = exec(&env, &["c", "sh", "-c", status])?;
    assert_eq!(code, Some(0), "{err}");
    let field = |file: &str, key: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{file}:{key}:")))
            .map(|l| l.rsplit(':').next().unwrap_or("").trim().to_string())
    };
    for key in ["Seccomp", "NoNewPrivs", "CapEff", "CapBnd"] {
        let mine = field("/proc/self/status", key);
        assert_eq!(mine, field("/proc/1/status", key), "{key}: {out}");
        assert!(mine.is_some(), "{key}: {out}");
    }
    assert_eq!(field("/proc/self/status", "Seccomp").as_deref(), Some("2"));
    // A syscall the default profile denies stays denied.
    let (code, _, err) = exec(&env, &["c", "unshare", "-U", "true"])?;
    assert_eq!(code, Some(1), "unshare -U must be refused: {err}");
    assert!(err.contains("Operation not permitted"), "{err}");

    let (code, _, err) = exec(&env, &["c", "kill", "-HUP", "1"])?;
    assert_eq!(code, Some(0), "{err}");
    wait_for(LIMIT, || Ok(env.logs("c")?.0.contains("got-hup")))?;
    Ok(())
}

#[test]
fn exec_is_journalled_with_who_ran_what_and_the_exit_code() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (env, _daemon) = running()?;
    let (code, _, _) = exec(&env, &["c", "sh", "-c", "exit 5"])?;
    assert_eq!(code, Some(5));
    let out = run_ok(env.cli(&["events", "--json", "--since", "0"]))?;
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let of = |kind: &str| events.iter().find(|e| e["kind"] == kind).cloned();
    let started = of("container.exec").expect("container.exec event");
    let exited = of("container.exec_exited").expect("container.exec_exited event");
    assert_eq!(started["container"], "c", "{started}");
    assert_eq!(started["data"]["command"], json!(["sh", "-c", "exit 5"]));
    assert_eq!(started["data"]["peer"]["uid"], 0, "{started}");
    assert!(
        started["data"]["peer"]["pid"].as_i64() > Some(0),
        "{started}"
    );
    assert_eq!(exited["data"]["exit_code"], 5, "{exited}");
    assert_eq!(exited["data"]["exec_pid"], started["data"]["exec_pid"]);
    Ok(())
}

#[test]
fn exec_t_gives_a_terminal_of_the_container_that_follows_the_window_size() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (env, _daemon) = running()?;
    let mut t = common::pty::PtyClient::spawn(env.cli(&["exec", "-t", "c", "sh"]), 24, 80)?;
    common::pty::check_session(&mut t, true, LIMIT)?;
    Ok(())
}
