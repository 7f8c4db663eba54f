//! First-boot configuration (docs/pid1.md, "First-boot configuration"):
//! an initramfs built by `berth mkimage --config-drive` with a baked
//! config, booted under qemu (tests/common/vm.rs) with a config drive — a
//! small vfat image made here with mkfs.vfat and mtools, attached as a
//! second disk (NVMe, built into Debian's cloud kernel) — and
//! `berth.config=LABEL=BERTHCFG` on the kernel command line:
//! - a drive with a valid config and another container: that container
//!   runs and the baked one does not get to its end; the apply commits
//!   (`config.first_boot_applied`);
//! - a drive with an invalid spec: refused, the console names
//!   `berth/containers/bad.json:LINE:COL`, and the baked config runs.
//!
//! Each boot's containers end the machine themselves (an API `shutdown`
//! through the static berth client) once the event they wait for is in
//! the journal. Every file (images, drives) lives in the test's temporary
//! directory, removed even when the test fails. Skips (saying why)
//! without qemu, the kernel, cpio or mtools, unless BERTH_TEST_REQUIRE_VM=1.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;
use common::vm::{boot_initrd, vm_kernel};
use common::vm_image::{mkimage_initrd, powered_off_cleanly};
use common::*;
use serde_json::{Value, json};

const LABEL: &str = "BERTHCFG";

/// What a container needs to talk to its berth and write on the console.
fn ctl_mounts() -> Value {
    json!([
        {"type": "bind", "source": "/init", "target": "/berth", "read_only": true},
        {"type": "bind", "source": "/run/berth", "target": "/run/berth"},
        {"type": "bind", "source": "/dev/console", "target": "/console", "options": ["dev"]}
    ])
}

/// A container that waits until the journal holds `kind`, then says
/// `message` on the console and powers the machine off.
fn waits_then_shuts_down(kind: &str, message: &str) -> Value {
    let script = format!(
        "for i in $(seq 600); do /berth events --kind {kind} 2>/dev/null | grep -q {kind} && break; \
         sleep 0.2; done; echo '{message}' > /console; /berth ps > /console; /berth shutdown"
    );
    json!({"image": DEMO_REF, "command": ["sh", "-c", script], "mounts": ctl_mounts(),
        "stop_timeout": 1, "update": {"stable_for": 1}})
}

fn settings() -> Value {
    json!({
        "console_logs": true,
        "shutdown": {"on_fatal": "poweroff", "fatal_delay_secs": 1, "kill_grace_secs": 2}
    })
}

/// The baked config: one container that ends the machine once a
/// first-boot config was refused.
fn baked_config(env: &TestEnv) -> Result<()> {
    let mut s = settings();
    s["hostname"] = json!("berth-vm");
    std::fs::write(env.config().join("berth.json"), s.to_string())?;
    let baked = waits_then_shuts_down("config.first_boot_refused", "baked config running");
    env.write_spec("baked", &baked.to_string())
}

/// A vfat image labelled LABEL holding `files` under berth/ (mkfs.vfat,
/// mmd, mcopy: no mount, no root needed for this part).
fn config_drive(dir: &Path, name: &str, files: &[(&str, String)]) -> Result<PathBuf> {
    let image = dir.join(name);
    run_ok(
        Command::new("mkfs.vfat")
            .args(["-C", "-n", LABEL])
            .arg(&image)
            .arg("2048"),
    )?;
    let mtools = |tool: &str| {
        let mut c = Command::new(tool);
        c.env("MTOOLS_SKIP_CHECK", "1").arg("-i").arg(&image);
        c
    };
    run_ok(mtools("mmd").args(["::/berth", "::/berth/containers"]))?;
    let staging = dir.join(format!("{name}.files"));
    std::fs::create_dir_all(&staging)?;
    for (path, content) in files {
        let local = staging.join(path.replace('/', "_"));
        std::fs::write(&local, content)?;
        run_ok(mtools("mcopy").arg(&local).arg(format!("::/berth/{path}")))?;
    }
    Ok(image)
}

/// qemu's arguments for `image` as a second disk.
fn drive_args(image: &Path) -> Vec<String> {
    vec![
        "-drive".into(),
        format!("file={},if=none,id=cfg,format=raw", image.display()),
        "-device".into(),
        "nvme,drive=cfg,serial=berthcfg".into(),
    ]
}

fn have_mtools() -> bool {
    // Spawning is the test: the tools' version options differ.
    let found = ["mkfs.vfat", "mcopy", "mmd"]
        .iter()
        .all(|t| Command::new(t).arg("--version").output().is_ok());
    if !found && std::env::var("BERTH_TEST_REQUIRE_VM").as_deref() == Ok("1") {
        panic!("mkfs.vfat or mtools missing and BERTH_TEST_REQUIRE_VM=1 (scripts/setup.sh --test)");
    }
    if !found {
        eprintln!("skipped: mkfs.vfat or mtools missing (scripts/setup.sh --test installs them)");
    }
    found
}

fn build_initrd(env: &TestEnv, kernel: &Path) -> Result<PathBuf> {
    mkimage_initrd(env, kernel, &["--config-drive", "--compress", "none"])
}

fn boot(kernel: &Path, initrd: &Path, drive: &Path) -> Result<String> {
    let args = drive_args(drive);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let append = format!("berth.config=LABEL={LABEL}");
    let console = boot_initrd(kernel, initrd, &append, &args, |_| {})?;
    powered_off_cleanly(&console)?;
    console
        .lines()
        .filter(|l| l.contains("first-boot") || l.contains("bad.json"))
        .for_each(|l| eprintln!("vm: {l}"));
    Ok(console)
}

fn has(console: &str, line: &str) -> bool {
    console.contains(line)
}

#[test]
fn a_config_drive_replaces_the_baked_config_and_a_broken_one_is_refused() -> Result<()> {
    let Some(kernel) = vm_kernel() else {
        return Ok(());
    };
    if !require_root() || !have_mtools() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    baked_config(&env)?;
    let initrd = build_initrd(&env, &kernel)?;
    let fromdrive = waits_then_shuts_down("config.first_boot_applied", "drive config running");
    let good = config_drive(
        env.dir.path(),
        "good.img",
        &[
            ("berth.json", settings().to_string()),
            ("containers/fromdrive.json", fromdrive.to_string()),
        ],
    )?;
    // Line 3 names a restart policy that does not exist.
    let bad_spec = format!(
        "{{\n  \"image\": \"{DEMO_REF}\",\n  \"restart\": {{\"policy\": \"sometimes\"}}\n}}\n"
    );
    let bad = config_drive(
        env.dir.path(),
        "bad.img",
        &[
            ("berth.json", settings().to_string()),
            ("containers/fromdrive.json", fromdrive.to_string()),
            ("containers/bad.json", bad_spec),
        ],
    )?;

    let console = boot(&kernel, &initrd, &good)?;
    let applied = format!("first-boot config from LABEL={LABEL} applied");
    for line in [
        applied.as_str(),
        "container fromdrive: started",
        "drive config running",
    ] {
        assert!(
            has(&console, line),
            "no {line:?} on the console:\n{console}"
        );
    }
    assert!(
        !has(&console, "baked config running"),
        "the baked config ran to its end:\n{console}"
    );

    let console = boot(&kernel, &initrd, &bad)?;
    let refused = format!("first-boot config from LABEL={LABEL} refused");
    for line in [refused.as_str(), "baked config running"] {
        assert!(
            has(&console, line),
            "no {line:?} on the console:\n{console}"
        );
    }
    let located = console.lines().find(|l| {
        l.split_once("berth/containers/bad.json:3:")
            .is_some_and(|(_, rest)| {
                let col: String = rest.chars().take_while(char::is_ascii_digit).collect();
                !col.is_empty() && rest[col.len()..].starts_with(':')
            })
    });
    assert!(
        located.is_some(),
        "no berth/containers/bad.json:3:COL: on the console:\n{console}"
    );
    assert!(
        !has(&console, "drive config running") && !has(&console, "container fromdrive"),
        "the refused drive's container ran:\n{console}"
    );
    Ok(())
}
