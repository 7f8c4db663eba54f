//! berth as the init of a real (emulated) machine: a static berth is
//! /init of an initramfs (scripts/vm/build-initramfs.sh) booted by qemu
//! with Debian's cloud kernel (scripts/vm/boot.sh: TCG, serial console).
//! Everything is asserted from the serial console: the early mounts, the
//! overlay module, cgroup v2 controllers, containers started, a
//! container's output (read back through the API from inside the VM), a
//! cgroup v2 memory limit enforced (an OOM kill) and readable from a
//! private cgroup namespace, MKNOD dropped where
//! neither a devices cgroup (v2 has none) nor Landlock (turned off) would
//! stop a device node, unless the spec adds it, and a clean ending:
//! - an API `shutdown` (a container runs the static berth client) powers off;
//! - SIGTERM to PID 1 reboots. It must come from the machine's own PID
//!   namespace, so the kernel starts scripts/vm/sigterm-init.sh
//!   (`rdinit=/test-init`), which forks a shell that will run `kill -TERM
//!   1` and execs /init: berth is PID 1 as ever;
//! - Ctrl-Alt-Del (qemu's monitor presses it) reaches berth as SIGINT,
//!   because berth routed it to init with reboot(2) CAD_OFF, and reboots.
//!
//! With -no-reboot qemu exits 0 on a power-off, a reboot and a kernel panic
//! (panic=-1) alike, so the verdict is the kernel's own last line
//! ("reboot: Power down" / "reboot: Restarting system") and no panic.
//! Skips (saying why) without qemu, the kernel or cpio, unless
//! BERTH_TEST_REQUIRE_VM=1, as scripts/test.sh sets it.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use anyhow::{Context, Result};
use common::vm::{Machine, vm_kernel};
use common::*;
use serde_json::{Value, json};

fn assert_lines(console: &str, lines: &[&str]) {
    for l in lines {
        assert!(console.contains(l), "no {l:?} on the console:\n{console}");
    }
    for bad in [
        "Kernel panic",
        "berth: FATAL",
        "berth: PANIC",
        "Attempted to kill init",
    ] {
        assert!(!console.contains(bad), "{bad:?} on the console:\n{console}");
    }
}

/// "first container running 2.31 s after the kernel started" -> 2.31
fn boot_to_first_container(console: &str) -> Option<f64> {
    let line = console
        .lines()
        .find(|l| l.contains("first container running"))?;
    line.split_whitespace()
        .skip_while(|w| *w != "running")
        .nth(1)?
        .parse()
        .ok()
}

fn demo(command: &[&str]) -> Value {
    json!({"image": DEMO_REF, "command": command})
}

/// Ignores SIGTERM (PID 1 of its namespace without a handler), so the
/// shutdown shows the stop timeout; a short one keeps the boot short.
fn idle() -> Value {
    let mut spec = demo(&["tail", "-f", "/dev/null"]);
    spec["stop_timeout"] = json!(1);
    spec
}

#[test]
fn boots_runs_containers_and_powers_off_on_api_shutdown() -> Result<()> {
    let Some(kernel) = vm_kernel() else {
        return Ok(());
    };
    if !require_root() {
        return Ok(());
    }
    // Waits for the OOM kill, copies hello's log (through the API) to the
    // console, then asks for the shutdown with the static berth client.
    let ctl_script = "for i in $(seq 200); do /berth ps --json | grep -q oom_killed && break; sleep 0.1; done; \
                      for i in $(seq 200); do /berth logs nomknod | grep -q mknod- && \
                        /berth logs addmknod | grep -q mknod- && \
                        /berth logs limits | grep -q cgroup && break; sleep 0.1; done; \
                      /berth logs hello > /console; /berth logs nomknod > /console; \
                      /berth logs addmknod > /console; /berth logs limits > /console; \
                      /berth shutdown";
    let mut ctl = demo(&["sh", "-c", ctl_script]);
    ctl["mounts"] = json!([
        {"type": "bind", "source": "/init", "target": "/berth", "read_only": true},
        {"type": "bind", "source": "/run/berth", "target": "/run/berth"},
        {"type": "bind", "source": "/dev/console", "target": "/console", "options": ["dev"]}
    ]);
    let mut oom = demo(&["tail", "/dev/zero"]);
    oom["resources"] = json!({"memory": "8m"});
    // cgroup v2 has no devices controller: with Landlock off too, berth
    // drops MKNOD unless the spec adds it (docs/security.md, Cgroups).
    let mknod = |tag: &str, add: &[&str]| {
        let script = format!(
            "grep CapEff /proc/self/status | sed 's/^/{tag} /'; \
             mknod /tmp/n c 1 3 && echo {tag} mknod-made || echo {tag} mknod-refused"
        );
        let mut spec = demo(&["sh", "-c", &script]);
        spec["landlock"] = json!({"enabled": false});
        spec["capabilities"] = json!({"add": add});
        spec
    };
    // Its own cgroup namespace (the default): the container's cgroup is /,
    // and it reads its own memory.max at /sys/fs/cgroup.
    let mut limits = demo(&[
        "sh",
        "-c",
        "echo limits memory.max $(cat /sys/fs/cgroup/memory.max); echo limits cgroup $(cat /proc/self/cgroup)",
    ]);
    limits["resources"] = json!({"memory": "64m"});
    let machine = Machine::new(
        &kernel,
        &[
            (
                "hello",
                demo(&["sh", "-c", "echo hello from a container on berth"]),
            ),
            ("oom", oom),
            ("nomknod", mknod("nomknod", &[])),
            ("addmknod", mknod("addmknod", &["MKNOD"])),
            ("limits", limits),
            ("ctl", ctl),
        ],
    )?;
    let console = machine.boot(&[], |_| {})?;
    assert_lines(
        &console,
        &[
            "berth: mounted /sys /dev /dev/pts /dev/shm /run",
            "berth: module /lib/modules/overlay.ko loaded",
            "berth: cgroup v2 controllers: cpuset cpu io memory",
            "container hello: started",
            "container oom: started",
            "hello from a container on berth",
            "container oom: exited with code 137 (oom_killed)",
            // Docker's 14 capabilities are a80425fb; without MKNOD (bit 27)
            // a00425fb.
            "nomknod CapEff:\t00000000a00425fb",
            "nomknod mknod-refused",
            "addmknod CapEff:\t00000000a80425fb",
            "addmknod mknod-made",
            "limits memory.max 67108864",
            "limits cgroup 0::/",
            "shutdown requested through the API, then poweroff",
            "berth: all containers stopped",
            "berth: powering off",
            "reboot: Power down",
        ],
    );
    let first = boot_to_first_container(&console).context("no boot time line")?;
    eprintln!("vm boot: first container running {first:.2} s after the kernel started");
    assert!(first < 10.0, "{first} s to the first container:\n{console}");
    Ok(())
}

#[test]
fn sigterm_to_pid1_reboots() -> Result<()> {
    let Some(kernel) = vm_kernel() else {
        return Ok(());
    };
    if !require_root() {
        return Ok(());
    }
    let machine = Machine::new(&kernel, &[("idle", idle())])?;
    let extra = machine.env.dir.path().join("extra");
    std::fs::create_dir_all(extra.join("bin"))?;
    std::fs::copy("/bin/busybox", extra.join("bin/busybox"))?;
    std::fs::copy(
        repo_path("scripts/vm/sigterm-init.sh"),
        extra.join("test-init"),
    )?;
    std::fs::set_permissions(extra.join("test-init"), PermissionsExt::from_mode(0o755))?;
    // For the background shell's stdin; berth's devtmpfs covers it later.
    std::fs::create_dir_all(extra.join("dev"))?;
    let null = extra.join("dev/null");
    run_ok(
        Command::new("mknod")
            .args(["-m", "666"])
            .arg(&null)
            .args(["c", "1", "3"]),
    )?;
    let console = machine.boot_with(&extra, "rdinit=/test-init", &[], |_| {})?;
    assert_lines(
        &console,
        &[
            "container idle: started",
            "test-init: kill -TERM 1",
            "SIGTERM: shutting down, then reboot",
            "container idle: stop timeout, sending SIGKILL",
            "berth: rebooting",
            "reboot: Restarting system",
        ],
    );
    Ok(())
}

#[test]
fn ctrl_alt_del_reaches_berth_as_sigint_and_reboots() -> Result<()> {
    let Some(kernel) = vm_kernel() else {
        return Ok(());
    };
    if !require_root() {
        return Ok(());
    }
    let machine = Machine::new(&kernel, &[("idle", idle())])?;
    let monitor = machine.env.dir.path().join("monitor.sock");
    let monitor_arg = format!("unix:{},server=on,wait=off", monitor.display());
    // The connection stays open until qemu exits: qemu drops a command
    // whose client has already gone.
    let mut session = None;
    let console = machine.boot(&["-monitor", &monitor_arg], |line| {
        if session.is_none() && line.contains("first container running") {
            let sent = std::os::unix::net::UnixStream::connect(&monitor).and_then(|mut m| {
                m.write_all(b"sendkey ctrl-alt-delete\n")?;
                Ok(m)
            });
            match sent {
                Ok(m) => session = Some(m),
                Err(e) => eprintln!("qemu monitor: {e}"),
            }
        }
    })?;
    assert!(
        session.is_some(),
        "berth never reported a running container:\n{console}"
    );
    assert_lines(
        &console,
        &[
            "SIGINT: shutting down, then reboot",
            "berth: rebooting",
            "reboot: Restarting system",
        ],
    );
    Ok(())
}
