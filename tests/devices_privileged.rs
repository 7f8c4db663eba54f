//! `privileged: true` on the real kernel: the host's devices (a loop
//! device attached for the test among them), every capability the daemon
//! holds, no seccomp (`Seccomp: 0`), no Landlock (mknod works), /sys,
//! /proc/sys and the cgroup view writable, nothing masked; and `berth run`
//! with `--device`, `--privileged` and `--device-cgroup-rule`.

mod common;

use std::fs;
use std::time::Duration;

use anyhow::Result;
use common::loopdev::LoopDev;
use common::*;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);

fn assert_has(text: &str, wants: &[&str]) {
    for want in wants {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

/// A line of this process's /proc/self/status ("CapPrm:\t000001ff…").
fn own_status(key: &str) -> Result<String> {
    let status = fs::read_to_string("/proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with(key));
    Ok(line
        .unwrap_or_default()
        .split_whitespace()
        .last()
        .unwrap_or_default()
        .to_string())
}

#[test]
fn a_privileged_container_has_the_hosts_devices_and_every_capability() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let a = LoopDev::new("PRIVILEG")?;
    let env = TestEnv::new()?;
    env.import_demo()?;
    let script = format!(
        "grep -E '^(CapEff|Seccomp):' /proc/self/status; head -c 8 {dev}; echo ' host node'; \
         [ -c /proc/kcore ] && echo kcore-masked || echo kcore-open; \
         echo privhost > /proc/sys/kernel/hostname && echo proc-sys-writable; \
         grep -E ' /sys (sysfs|tmpfs) ' /proc/mounts; grep ' /sys/fs/cgroup/pids ' /proc/mounts; \
         mknod /tmp/null c 1 3 && echo mknod-ok; echo ptmx=$(readlink /dev/ptmx); \
         [ -e /dev/console ] && echo CONSOLE",
        dev = a.path
    );
    env.write_spec(
        "priv",
        &sh_in(DEMO_REF, &script, json!({"privileged": true})),
    )?;
    let _daemon = env.start_daemon_checked()?;
    env.wait_state("priv", "exited", LIMIT)?;
    let (out, err) = env.logs("priv")?;
    let out = format!("{out}{err}");
    // The daemon holds what this test holds (root): the container gets it
    // all, effective.
    let held = own_status("CapPrm:")?;
    assert_has(
        &out,
        &[
            &format!("CapEff:\t{held}"),
            "Seccomp:\t0",
            "PRIVILEG host node",
            "kcore-open",
            "proc-sys-writable",
            "sysfs /sys sysfs rw,",
            "mknod-ok",
            "ptmx=pts/ptmx",
        ],
    );
    assert!(
        !out.contains("CONSOLE"),
        "the host's console came along:\n{out}"
    );
    let pids_line = out.lines().find(|l| l.contains(" /sys/fs/cgroup/pids "));
    if let Some(line) = pids_line {
        assert!(
            line.contains(" rw,"),
            "the cgroup view is read-only: {line}"
        );
    }
    let inspected: Value = serde_json::from_slice(&run_ok(env.cli(&["inspect", "priv"]))?.stdout)?;
    let security = &inspected["security"];
    assert_eq!(security["privileged"], true, "{security:#}");
    assert_eq!(security["device_rules"], json!(["a *:* rwm"]));
    assert_eq!(security["seccomp"], "unconfined (privileged)");
    assert_eq!(security["landlock"], "disabled (privileged)");
    let devices = security["devices"].as_array().cloned().unwrap_or_default();
    assert!(
        devices
            .iter()
            .any(|d| d["container_path"] == a.path.as_str()),
        "{security:#}"
    );
    Ok(())
}

#[test]
fn berth_run_takes_docker_s_device_flags() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let a = LoopDev::new("RUNFLAGS")?;
    let env = TestEnv::new()?;
    env.import_demo()?;
    let _daemon = env.start_daemon_checked()?;
    let device = format!("{}:/dev/x:r", a.path);
    let script = "head -c 8 /dev/x; echo ' read'; printf x | dd of=/dev/x 2>&1 | head -n 1";
    let args = [
        "run", "--rm", "--device", &device, DEMO_REF, "sh", "-c", script,
    ];
    let out = run_ok(env.cli(&args))?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_has(&text, &["RUNFLAGS read", "Operation not permitted"]);
    let args = [
        "run",
        "--rm",
        "--privileged",
        DEMO_REF,
        "grep",
        "Seccomp:",
        "/proc/self/status",
    ];
    let out = run_ok(env.cli(&args))?;
    assert_has(&String::from_utf8_lossy(&out.stdout), &["Seccomp:\t0"]);
    let args = [
        "run",
        "--rm",
        "--device-cgroup-rule",
        "z 1:1 r",
        DEMO_REF,
        "true",
    ];
    let out = env.cli(&args).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad rule ran");
    assert_has(
        &stderr,
        &["device_cgroup_rules.0: type \"z\": expected a, b or c"],
    );
    Ok(())
}
