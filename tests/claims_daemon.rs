//! Claims of docs/api.md and docs/spec.md about the daemon itself: a
//! second daemon on the same socket refuses to start (and disturbs
//! nothing), SIGHUP reloads the config directory, a reload never touches
//! containers started with `berth run`, and a spec file is at most 1 MiB.

mod common;

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);

fn forever(tag: &str) -> String {
    json!({"image": DEMO_REF, "command": ["sh", "-c", format!("echo {tag}; exec sleep 60")],
           "stop_timeout": 1})
    .to_string()
}

fn pid_of(env: &TestEnv, name: &str) -> Result<Value> {
    Ok(env.container(name)?["pid"].clone())
}

#[test]
fn a_second_daemon_on_the_same_socket_refuses_to_start() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec("a", &forever("a"))?;
    let _daemon = env.start_daemon_checked()?;
    env.wait_state("a", "running", LIMIT)?;
    let pid = pid_of(&env, "a")?;
    // The same everything, then another store and cgroup parent: either
    // way the socket is taken.
    let other_root = env.dir.path().join("other-root");
    let mut variants = vec![env.daemon_command()];
    let mut other = berth(&["daemon"]);
    other
        .arg("--config")
        .arg(env.config())
        .arg("--root")
        .arg(&other_root)
        .arg("--socket")
        .arg(env.socket())
        .args(["--cgroup-parent", &unique_name("berth-test-second")]);
    variants.push(other);
    for mut cmd in variants {
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the second daemon is still running: it did not refuse");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = child
            .wait_with_output()
            .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())?;
        assert!(!status.success(), "{stderr}");
        assert!(
            stderr.contains("another berth daemon is already using")
                && stderr.contains(&env.socket().display().to_string()),
            "{stderr}"
        );
    }
    // The first daemon and its container are as they were: same socket,
    // same process, nothing started twice.
    assert!(env.socket().exists());
    assert_eq!(pid_of(&env, "a")?, pid);
    assert_eq!(env.ps()?.len(), 1);
    let logs = env.logs("a")?.0;
    assert_eq!(logs, "a\n", "the container ran again");
    assert!(
        !other_root.join("containers/a").exists(),
        "the refused daemon prepared a container"
    );
    Ok(())
}

#[test]
fn sighup_reloads_the_config_directory() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec("keep", &forever("keep"))?;
    env.write_spec("change", &forever("before"))?;
    let daemon = env.start_daemon_checked()?;
    env.wait_state("keep", "running", LIMIT)?;
    env.wait_state("change", "running", LIMIT)?;
    let (keep_pid, change_pid) = (pid_of(&env, "keep")?, pid_of(&env, "change")?);
    let hup = || kill(Pid::from_raw(daemon.pid()), Signal::SIGHUP);

    // An invalid directory: refused as a whole, nothing changes.
    env.write_spec("added", &forever("added"))?;
    env.write_spec("broken", "{\"image\": \"x\", \"bogus\": 1}")?;
    hup()?;
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        env.container("added").is_err(),
        "a rejected reload started added"
    );
    assert_eq!(pid_of(&env, "change")?, change_pid);

    fs::remove_file(env.config().join("containers/broken.json"))?;
    env.write_spec("change", &forever("after"))?;
    hup()?;
    env.wait_state("added", "running", LIMIT)?;
    wait_for(LIMIT, || Ok(env.logs("change")?.0.contains("after")))?;
    env.wait_state("change", "running", LIMIT)?;
    assert_ne!(pid_of(&env, "change")?, change_pid);
    assert_eq!(
        pid_of(&env, "keep")?,
        keep_pid,
        "an unchanged spec was restarted"
    );
    // The daemon is still there, serving, after two SIGHUPs.
    assert!(kill(Pid::from_raw(daemon.pid()), None).is_ok());
    assert_eq!(env.ps()?.len(), 3);
    Ok(())
}

#[test]
fn a_reload_leaves_berth_run_containers_alone() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    env.write_spec("svc", &forever("svc"))?;
    let daemon = env.start_daemon_checked()?;
    let svc = env.wait_state("svc", "running", LIMIT)?["pid"].clone();
    for name in ["adhoc", "clash"] {
        run_ok(env.cli(&["run", "-d", "--name", name, DEMO_REF, "sleep", "60"]))?;
        env.wait_state(name, "running", LIMIT)?;
    }
    let (adhoc, clash) = (pid_of(&env, "adhoc")?, pid_of(&env, "clash")?);
    let untouched = |when: &str| -> Result<()> {
        for (name, pid) in [("adhoc", &adhoc), ("clash", &clash)] {
            let record = env.container(name)?;
            assert_eq!(
                (&record["pid"], &record["state"]),
                (pid, &json!("running")),
                "{when}: the reload touched the `berth run` container {name}: {record}"
            );
        }
        Ok(())
    };
    // A spec file named like a `berth run` container: that container
    // would be "changed" and restarted with the file's spec, so the whole
    // reload is refused, by the API and by SIGHUP alike.
    fs::remove_file(env.config().join("containers/svc.json"))?;
    env.write_spec("other", &forever("other"))?;
    env.write_spec("clash", &forever("from the config"))?;
    let out = env.cli(&["reload"]).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "clash.json:1:1: the name \"clash\" belongs to a container started with `berth run`"
        ),
        "{stderr}"
    );
    kill(Pid::from_raw(daemon.pid()), Signal::SIGHUP)?;
    std::thread::sleep(Duration::from_millis(500));
    untouched("refused reloads")?;
    assert_eq!(pid_of(&env, "svc")?, svc, "a refused reload stopped svc");
    assert!(
        env.container("other").is_err(),
        "a refused reload started other"
    );
    // Without the clash: svc goes, other comes, the run containers stay.
    fs::remove_file(env.config().join("containers/clash.json"))?;
    let out = run_ok(env.cli(&["reload", "--json"]))?;
    let summary: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        summary,
        json!({"added": ["other"], "removed": ["svc"], "changed": [], "unchanged": []})
    );
    env.wait_state("other", "running", LIMIT)?;
    wait_for(LIMIT, || Ok(env.container("svc").is_err()))?;
    kill(Pid::from_raw(daemon.pid()), Signal::SIGHUP)?;
    std::thread::sleep(Duration::from_millis(500));
    untouched("accepted reloads")?;
    let (logs, _) = env.logs("clash")?;
    assert!(!logs.contains("from the config"), "{logs}");
    Ok(())
}

#[test]
fn a_spec_file_is_at_most_one_mib() -> Result<()> {
    let env = TestEnv::new()?;
    const MIB: usize = 1 << 20;
    // Valid JSON padded with spaces to exactly `len` bytes.
    let padded = |len: usize| {
        let body = format!("{{\"image\": \"{DEMO_REF}\", \"command\": [\"true\"]}}");
        format!("{body}{}", " ".repeat(len - body.len()))
    };
    let check = || -> Result<(Option<i32>, String)> {
        let out = berth(&["check"]).arg(env.config()).output()?;
        Ok((
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    };
    env.write_spec("big", &padded(MIB))?;
    let (code, stderr) = check()?;
    assert_eq!(code, Some(0), "exactly 1 MiB refused: {stderr}");
    env.write_spec("big", &padded(MIB + 1))?;
    let (code, stderr) = check()?;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("big.json:1:1: larger than 1048576 bytes"),
        "{stderr}"
    );
    // An endless file is refused the same way, after reading 1 MiB.
    fs::remove_file(env.config().join("containers/big.json"))?;
    std::os::unix::fs::symlink("/dev/zero", env.config().join("containers/zero.json"))?;
    let started = Instant::now();
    let (code, stderr) = check()?;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("zero.json:1:1: larger than 1048576 bytes"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    Ok(())
}
