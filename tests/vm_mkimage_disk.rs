//! `berth mkimage --format disk` end to end (docs/images.md, "Disk
//! images"): a config whose container writes a file to a volume and the
//! busybox image built into a GPT disk image for Debian's cloud kernel,
//! made larger with `truncate` as a user flashing a bigger card would, and
//! booted under qemu (TCG) as an NVMe disk, its first partition the
//! read-only root:
//! - host_network's resolv.conf is written on the read-only root (through
//!   the image's /etc/resolv.conf link into /run);
//! - first boot: the data partition is grown to the disk's end (console
//!   lines, and the event, read by the container through the API), the
//!   container finds no file, writes it, and powers the machine off
//!   through the API;
//! - second boot of the same disk: the file written at the first boot is
//!   there (the store and its volumes live on the data partition),
//!   nothing is grown again, and the data partition's journal needed no
//!   replay (the first power-off unmounted it cleanly);
//! - a second image, built from a changed config, boots that config.
//!
//! Prints the image's size and the time from qemu's start to the first
//! container running. Everything lives in the test's temporary
//! directory. Skips (saying why) without qemu, the kernel or e2fsprogs,
//! unless BERTH_TEST_REQUIRE_VM=1.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Result;
use common::vm::{boot_disk, vm_kernel};
use common::*;
use serde_json::{Value, json};

/// The disk is made this large before its first boot.
const DISK_BYTES: u64 = 1 << 30;

fn have_e2fsprogs() -> bool {
    let found = ["mkfs.ext4", "debugfs"]
        .iter()
        .all(|t| Command::new(t).arg("-V").output().is_ok());
    if !found && std::env::var("BERTH_TEST_REQUIRE_VM").as_deref() == Ok("1") {
        panic!(
            "mkfs.ext4 or debugfs missing and BERTH_TEST_REQUIRE_VM=1 (scripts/setup.sh --test)"
        );
    }
    if !found {
        eprintln!("skipped: e2fsprogs missing (scripts/setup.sh --test installs it)");
    }
    found
}

/// A container that says the host's name server (host_network writes it
/// through /etc/resolv.conf's link into /run) and runs `script` with the
/// volume `notes` at /data, the static berth client at /berth and the
/// console at /console, then powers the machine off.
fn container(script: &str) -> Value {
    let script = format!(
        "for i in $(seq 100); do [ -s /hostrun/resolv.conf ] && break; sleep 0.1; done; \
         echo \"host $(grep nameserver /hostrun/resolv.conf)\" > /console; \
         {script}; sync; /berth shutdown"
    );
    json!({"image": DEMO_REF, "command": ["sh", "-c", script], "stop_timeout": 1, "mounts": [
        {"type": "volume", "name": "notes", "target": "/data"},
        {"type": "bind", "source": "/run", "target": "/hostrun", "read_only": true},
        {"type": "bind", "source": "/init", "target": "/berth", "read_only": true},
        {"type": "bind", "source": "/run/berth", "target": "/run/berth"},
        {"type": "bind", "source": "/dev/console", "target": "/console", "options": ["dev"]}
    ]})
}

fn config(env: &TestEnv, name: &str, spec: Value) -> Result<()> {
    let settings = json!({
        "hostname": "berth-disk",
        "modules": ["/lib/modules/overlay.ko"],
        "console_logs": true,
        "shutdown": {"on_fatal": "poweroff", "fatal_delay_secs": 1, "kill_grace_secs": 2},
        // No links: only resolv.conf, written through the image's link
        // into /run (the root is read-only).
        "host_network": {"links": [], "dns": ["192.0.2.53"], "ntp": {"enabled": false}}
    });
    std::fs::write(env.config().join("berth.json"), settings.to_string())?;
    for old in std::fs::read_dir(env.config().join("containers"))? {
        std::fs::remove_file(old?.path())?;
    }
    env.write_spec(name, &spec.to_string())
}

fn mkimage(env: &TestEnv, kernel: &Path, layout: &Path, out: &Path) -> Result<()> {
    common::vm_image::mkimage(env, kernel, layout, &["--format", "disk"], out)
}

/// Boots `disk`; returns the console and the time from qemu's start to
/// berth's "first container running" line.
fn boot(kernel: &Path, disk: &Path) -> Result<(String, Option<Duration>)> {
    let started = Instant::now();
    let mut first = None;
    let console = boot_disk(kernel, disk, "", &[], |line| {
        if first.is_none() && line.contains("first container running") {
            first = Some(started.elapsed());
        }
    })?;
    for bad in ["Kernel panic", "berth: FATAL", "berth: PANIC"] {
        assert!(!console.contains(bad), "{bad:?} on the console:\n{console}");
    }
    assert!(
        console.contains("reboot: Power down"),
        "no power-off:\n{console}"
    );
    if let Some(line) = console
        .lines()
        .find(|l| l.contains("first container running"))
    {
        eprintln!("vm: {}", line.trim());
    }
    for line in console.lines().filter(|l| {
        [
            "store on ",
            "data partition ",
            "ext4 on ",
            "boot: berth started",
            "journal is replayed",
        ]
        .iter()
        .any(|w| l.contains(w))
    }) {
        eprintln!("vm: {}", line.trim());
    }
    if let Some(t) = first {
        eprintln!(
            "vm: first container running {:.2} s after qemu started",
            t.as_secs_f64()
        );
    }
    Ok((console, first))
}

fn has(console: &str, line: &str) {
    assert!(
        console.contains(line),
        "no {line:?} on the console:\n{console}"
    );
}

#[test]
fn a_disk_image_grows_keeps_its_data_across_boots_and_a_new_image_boots_its_config() -> Result<()> {
    let Some(kernel) = vm_kernel() else {
        return Ok(());
    };
    if !require_root() || !have_e2fsprogs() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let layout = demo_layout(&env)?;
    // The journal, on the data partition too, holds the growth's event.
    let note = "/berth events --kind data_partition.grown > /console; \
        if [ -f /data/note ]; then echo \"found the note: $(cat /data/note)\" > /console; \
        else echo written-at-first-boot > /data/note; echo 'wrote the note' > /console; fi";
    config(&env, "writer", container(note))?;
    let disk: PathBuf = env.dir.path().join("disk.img");
    mkimage(&env, &kernel, &layout, &disk)?;
    eprintln!(
        "disk image: {} bytes, grown to {DISK_BYTES} before booting",
        std::fs::metadata(&disk)?.len()
    );
    std::fs::OpenOptions::new()
        .write(true)
        .open(&disk)?
        .set_len(DISK_BYTES)?;

    let (console, _) = boot(&kernel, &disk)?;
    has(
        &console,
        "store on /dev/nvme0n1p2 (berth-data), mounted at /var/lib/berth",
    );
    has(&console, "data partition /dev/nvme0n1p2 grown from");
    has(&console, "ext4 on /dev/nvme0n1p2 grown from");
    has(&console, "wrote the note");
    has(&console, "host nameserver 192.0.2.53");
    has(&console, "data_partition.grown");

    let (console, _) = boot(&kernel, &disk)?;
    has(&console, "found the note: written-at-first-boot");
    // The first boot's power-off unmounted the data partition cleanly:
    // its journal needs no replay.
    assert!(
        !console.contains("its journal is replayed"),
        "the first power-off left the data partition unclean:\n{console}"
    );
    assert!(
        !console.contains("grown from"),
        "grown again at the second boot:\n{console}"
    );

    config(
        &env,
        "other",
        container("echo 'the second config runs' > /console"),
    )?;
    let second = env.dir.path().join("second.img");
    mkimage(&env, &kernel, &layout, &second)?;
    let (console, _) = boot(&kernel, &second)?;
    has(&console, "the second config runs");
    assert!(!console.contains("the note"), "{console}");
    Ok(())
}
