//! berth.json's hardware watchdog, with the softdog module in a VM (qemu
//! TCG, as tests/vm_boot.rs) and a 3 s timeout: a healthy berth as PID 1
//! keeps the machine up for more than three timeouts and disarms the
//! watchdog on a clean shutdown (no reset); a berth whose loop stops
//! turning (run as a service under a minimal init and stopped with
//! SIGSTOP) gets the machine reset by the watchdog.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use common::vm::{Machine, vm_kernel};
use common::*;
use serde_json::json;

/// What softdog prints when it fires.
const RESET: &str = "Initiating system reboot";

fn settings() -> serde_json::Value {
    json!({
        "modules": [
            "/lib/modules/overlay.ko",
            "/lib/modules/watchdog.ko",
            "/lib/modules/softdog.ko"
        ],
        "watchdog": {"device": "/dev/watchdog", "timeout": 3}
    })
}

/// An initramfs overlay with the kernel's softdog.ko and the watchdog
/// core it needs (and, for the wedged boot, busybox and its init script).
fn extra_with_softdog(machine: &Machine, kernel: &Path) -> Result<PathBuf> {
    let kver = kernel
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .context("kernel file name")?;
    let extra = machine.env.dir.path().join("extra");
    std::fs::create_dir_all(extra.join("lib/modules"))?;
    for name in ["watchdog", "softdog"] {
        let module = format!("/lib/modules/{kver}/kernel/drivers/watchdog/{name}.ko");
        std::fs::copy(&module, extra.join(format!("lib/modules/{name}.ko"))).context(module)?;
    }
    Ok(extra)
}

#[test]
fn a_turning_loop_keeps_the_machine_up_and_a_clean_end_disarms() -> Result<()> {
    let Some(kernel) = vm_kernel() else {
        return Ok(());
    };
    if !require_root() {
        return Ok(());
    }
    let idle =
        json!({"image": DEMO_REF, "command": ["tail", "-f", "/dev/null"], "stop_timeout": 1});
    let machine = Machine::with_settings(&kernel, &[("idle", idle)], settings())?;
    let extra = extra_with_softdog(&machine, &kernel)?;
    let monitor = machine.env.dir.path().join("monitor.sock");
    let monitor_arg = format!("unix:{},server=on,wait=off", monitor.display());
    let mut armed_at = None;
    let mut sender = None;
    let console = machine.boot_with(&extra, "", &["-monitor", &monitor_arg], |line| {
        if armed_at.is_none() && line.contains("watchdog: /dev/watchdog armed") {
            armed_at = Some(Instant::now());
            let monitor = monitor.clone();
            // Three timeouts and then some, then a clean end (Ctrl-Alt-Del).
            sender = Some(std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(10));
                let mut m = std::os::unix::net::UnixStream::connect(&monitor)?;
                m.write_all(b"sendkey ctrl-alt-delete\n")?;
                std::thread::sleep(Duration::from_secs(30));
                Ok::<_, std::io::Error>(())
            }));
        }
    })?;
    let up = armed_at.map(|t| t.elapsed()).context("never armed")?;
    ensure!(!console.contains(RESET), "the watchdog fired:\n{console}");
    ensure!(up >= Duration::from_secs(9), "up {up:?} only:\n{console}");
    for want in [
        "timeout 3 s",
        "SIGINT: shutting down",
        "watchdog: disarmed",
        "reboot: Restarting system",
    ] {
        ensure!(console.contains(want), "no {want:?}:\n{console}");
    }
    drop(sender);
    Ok(())
}

#[test]
fn a_loop_that_stops_turning_gets_the_machine_reset() -> Result<()> {
    let Some(kernel) = vm_kernel() else {
        return Ok(());
    };
    if !require_root() {
        return Ok(());
    }
    let machine = Machine::with_settings(&kernel, &[], settings())?;
    let extra = extra_with_softdog(&machine, &kernel)?;
    std::fs::create_dir_all(extra.join("bin"))?;
    std::fs::copy("/bin/busybox", extra.join("bin/busybox"))?;
    let init = extra.join("test-init");
    std::fs::copy(repo_path("scripts/vm/watchdog-init.sh"), &init)?;
    std::fs::set_permissions(&init, PermissionsExt::from_mode(0o755))?;
    let mut stopped_at = None;
    let console = machine.boot_with(&extra, "rdinit=/test-init", &[], |line| {
        if stopped_at.is_none() && line.contains("test-init: SIGSTOP berth") {
            stopped_at = Some(Instant::now());
        }
    })?;
    let stopped = stopped_at.context("berth was never stopped")?;
    ensure!(console.contains("timeout 3 s"), "not armed:\n{console}");
    ensure!(
        console.contains(RESET),
        "no reset by the watchdog:\n{console}"
    );
    // qemu exits at the reset (-no-reboot): within a few timeouts of the stop.
    ensure!(
        stopped.elapsed() < Duration::from_secs(30),
        "{:?}",
        stopped.elapsed()
    );
    Ok(())
}
