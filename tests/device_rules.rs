//! Device rules on the real kernel, below any container: cgroup v2's BPF
//! device filter attached to a cgroup of the host's cgroup2 hierarchy (a
//! hybrid host's /sys/fs/cgroup/unified, or /sys/fs/cgroup) decides what a
//! process in it can open, and a replacement leaves exactly one program;
//! on a cgroup v1 host `replace_device_rules` changes a cgroup's
//! devices.list in place, and a process in it opens what the new list
//! allows. Loop devices stand for disks. tests/vm_boot.rs shows the filter
//! under berth's containers on a cgroup v2 machine.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use berth::kernel::cgroup::{
    ContainerCgroup, DeviceAccess, DeviceKind, DeviceRule, cgroup_v2, device_programs_of,
    install_device_filter,
};
use common::loopdev::LoopDev;
use common::*;

/// Where this host mounts a cgroup2 hierarchy, from mountinfo.
fn cgroup2_mount() -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|line| {
        let (mount, fs_part) = line.split_once(" - ")?;
        fs_part
            .starts_with("cgroup2 ")
            .then(|| mount.split(' ').nth(4).map(PathBuf::from))?
    })
}

/// The loop device's rule with `letters` ("r", "rw").
fn rule_for(dev: &LoopDev, letters: &str) -> Result<DeviceRule> {
    let (major, minor) = dev.numbers()?;
    Ok(DeviceRule {
        kind: DeviceKind::Block,
        major: Some(u32::try_from(major)?),
        minor: Some(u32::try_from(minor)?),
        access: DeviceAccess {
            read: letters.contains('r'),
            write: letters.contains('w'),
            mknod: letters.contains('m'),
        },
    })
}

/// A shell that joins the cgroup whose cgroup.procs is `procs`, then reads
/// /dev/null and the first 8 bytes of each device and opens the first for
/// writing; its stdout and stderr.
fn opens_from(procs: &Path, devs: &[&LoopDev]) -> Result<String> {
    let mut script = format!(
        "echo $$ > {} || exit 9; head -c 1 /dev/null && echo null-ok; ",
        procs.display()
    );
    for d in devs {
        script.push_str(&format!("head -c 8 {0}; echo ' <- read {0}'; ", d.path));
    }
    script.push_str(&format!(
        "dd if=/dev/zero of={} bs=1 count=0 conv=notrunc 2>&1 && echo write-open-ok",
        devs[0].path
    ));
    let out = Command::new("sh").arg("-c").arg(&script).output()?;
    anyhow::ensure!(out.status.code() != Some(9), "could not join {procs:?}");
    Ok(format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

fn assert_has(text: &str, wants: &[&str], unwanted: &[&str]) {
    for want in wants {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    for bad in unwanted {
        assert!(!text.contains(bad), "unexpected {bad:?} in:\n{text}");
    }
}

#[test]
fn the_v2_filter_allows_exactly_its_rules_and_a_replacement_leaves_one_program() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let Some(mount) = cgroup2_mount() else {
        eprintln!("skipped: no cgroup2 hierarchy is mounted");
        return Ok(());
    };
    let (a, b) = (LoopDev::new("AAAAAAAA")?, LoopDev::new("BBBBBBBB")?);
    let name = unique_name("berth-test-bpf");
    let _guard = CgroupGuard(name.clone());
    let dir = mount.join(&name);
    fs::create_dir(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
    let procs = dir.join("cgroup.procs");
    let programs = |dir: &Path| device_programs_of(dir).map(|ids| ids.len());

    install_device_filter(&dir, &[]).map_err(anyhow::Error::msg)?;
    assert_eq!(programs(&dir)?, 1);
    let refused = "Operation not permitted";
    let out = opens_from(&procs, &[&a, &b])?;
    assert_has(
        &out,
        &["null-ok", refused],
        &["AAAAAAAA", "BBBBBBBB", "write-open-ok"],
    );

    // a, read only: the old program is detached once the new one is on.
    install_device_filter(&dir, &[rule_for(&a, "r")?]).map_err(anyhow::Error::msg)?;
    assert_eq!(programs(&dir)?, 1, "the replaced program is still attached");
    let out = opens_from(&procs, &[&a, &b])?;
    assert_has(
        &out,
        &["null-ok", "AAAAAAAA <- read", refused],
        &["BBBBBBBB", "write-open-ok"],
    );

    install_device_filter(&dir, &[rule_for(&a, "rw")?]).map_err(anyhow::Error::msg)?;
    let out = opens_from(&procs, &[&a, &b])?;
    assert_has(&out, &["AAAAAAAA <- read", "write-open-ok"], &["BBBBBBBB"]);

    // A privileged container's rule: everything.
    install_device_filter(&dir, &[DeviceRule::ALLOW_ALL]).map_err(anyhow::Error::msg)?;
    assert_eq!(programs(&dir)?, 1);
    let out = opens_from(&procs, &[&b, &a])?;
    assert_has(&out, &["AAAAAAAA", "BBBBBBBB", "write-open-ok"], &[refused]);
    Ok(())
}

#[test]
fn replacing_v1_rules_changes_the_list_in_place() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    if cgroup_v2() || !berth::kernel::cgroup::device_rules_enforced() {
        eprintln!("skipped: no cgroup v1 devices hierarchy (the v2 filter has its own test)");
        return Ok(());
    }
    let (a, b) = (LoopDev::new("AAAAAAAA")?, LoopDev::new("BBBBBBBB")?);
    let name = unique_name("berth-test-v1rules");
    let _guard = CgroupGuard(name.clone());
    let cgroup = ContainerCgroup::create_with_devices(&name, &[rule_for(&a, "rw")?])?;
    let dir = Path::new("/sys/fs/cgroup/devices").join(&name);
    let list = || fs::read_to_string(dir.join("devices.list"));
    let line = |d: &LoopDev, access: &str| -> Result<String> {
        let (major, minor) = d.numbers()?;
        Ok(format!("b {major}:{minor} {access}\n"))
    };
    assert!(list()?.contains(&line(&a, "rw")?), "{}", list()?);

    // a loses w, b comes with r.
    cgroup.replace_device_rules(&[rule_for(&a, "r")?, rule_for(&b, "r")?])?;
    let now = list()?;
    assert_has(
        &now,
        &[&line(&a, "r")?, &line(&b, "r")?, "c 1:3 rwm", "b *:* m"],
        &[],
    );
    let out = opens_from(&dir.join("cgroup.procs"), &[&a, &b])?;
    assert_has(
        &out,
        &["AAAAAAAA", "BBBBBBBB", "null-ok"],
        &["write-open-ok"],
    );

    // Everything, then back to a list without b.
    cgroup.replace_device_rules(&[DeviceRule::ALLOW_ALL])?;
    assert_eq!(list()?, "a *:* rwm\n");
    cgroup.replace_device_rules(&[rule_for(&a, "r")?])?;
    let now = list()?;
    assert_has(
        &now,
        &[&line(&a, "r")?, "c 136:* rwm"],
        &[&line(&b, "r")?, "a *:*"],
    );
    let out = opens_from(&dir.join("cgroup.procs"), &[&b])?;
    assert_has(&out, &["Operation not permitted", "null-ok"], &["BBBBBBBB"]);
    Ok(())
}
