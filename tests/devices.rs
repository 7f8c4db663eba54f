//! Host devices in a container, on the real kernel with loop devices
//! (cgroup v1's devices controller decides access; tests/devices_privileged.rs
//! has `privileged` and `berth run --device`): a device given by path is
//! readable, writable and answers ioctls, in the default and the
//! read-only mode, while a loop device it was not given is not openable;
//! symlinks and directories are resolved on the host; `r` allows reads
//! only; a missing device fails the start naming it unless `optional`; a
//! `device_cgroup_rules` entry opens what the container can see; a changed
//! list restarts the container with the new rules.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::time::Duration;

use anyhow::{Result, ensure};
use common::loopdev::LoopDev;
use common::*;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);

/// The host's /dev at /hostdev with device nodes usable (`dev`): every
/// loop device is visible, and only the cgroup decides which opens.
fn host_dev_mount() -> Value {
    json!([{"type": "bind", "source": "/dev", "target": "/hostdev", "options": ["dev"]}])
}

/// The container's stdout and stderr once it has exited.
fn output_of(env: &TestEnv, name: &str) -> Result<(Value, String)> {
    let record = env.wait_state(name, "exited", LIMIT)?;
    let (out, err) = env.logs(name)?;
    Ok((record, format!("{out}{err}")))
}

fn assert_has(text: &str, wants: &[&str]) {
    for want in wants {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

/// Reads the marker, writes `stamp` at block `block`, asks the size (an
/// ioctl, BLKGETSIZE64).
fn probe(dev: &str, stamp: &str, block: u32) -> String {
    format!(
        "head -c 8 {dev} && echo ' read'; \
         printf {stamp} | dd of={dev} bs=512 seek={block} conv=notrunc 2>&1 && echo wrote; \
         echo size=$(blockdev --getsize64 {dev}); "
    )
}

#[test]
fn a_given_loop_device_works_in_both_modes_and_its_neighbour_does_not() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (a, b) = (LoopDev::new("AAAAAAAA")?, LoopDev::new("BBBBBBBB")?);
    let env = TestEnv::new()?;
    env.import_demo()?;
    let rw = probe("/dev/A", "WRITE-RW", 1) + &format!("head -c 8 /hostdev/{} 2>&1", b.name());
    let extra = json!({"devices": [format!("{}:/dev/A", a.path)], "mounts": host_dev_mount()});
    env.write_spec("rw", &sh_in(DEMO_REF, &rw, extra))?;
    // Outside /dev in a read-only root: only the node's own Landlock rule
    // lets it be written and its ioctls answer.
    let extra = json!({"read_only": true,
        "devices": [{"path": a.path, "container_path": "/disk/a", "permissions": "rw"}]});
    env.write_spec(
        "ro",
        &sh_in(DEMO_REF, &probe("/disk/a", "WRITE-RO", 2), extra),
    )?;
    let _daemon = env.start_daemon_checked()?;
    let (_, rw_out) = output_of(&env, "rw")?;
    let (_, ro_out) = output_of(&env, "ro")?;
    for out in [&rw_out, &ro_out] {
        assert_has(out, &["AAAAAAAA read", "wrote", "size=1048576"]);
    }
    assert_has(&rw_out, &["Operation not permitted"]);
    ensure!(!rw_out.contains("BBBBBBBB"), "loop B was opened:\n{rw_out}");
    assert_eq!(a.read_at(512, 8)?, b"WRITE-RW", "{rw_out}");
    assert_eq!(a.read_at(1024, 8)?, b"WRITE-RO", "{ro_out}");
    let inspected: Value = serde_json::from_slice(&run_ok(env.cli(&["inspect", "rw"]))?.stdout)?;
    let security = &inspected["security"];
    let (major, minor) = a.numbers()?;
    let device = &security["devices"][0];
    assert_eq!(device["container_path"], "/dev/A", "{security:#}");
    assert_eq!(device["host_path"], a.path.as_str());
    assert_eq!(
        (device["type"].as_str(), device["major"].as_u64()),
        (Some("b"), Some(major))
    );
    let rule = format!("b {major}:{minor} rwm");
    assert_eq!(security["device_rules"], json!([rule]), "{security:#}");
    Ok(())
}

#[test]
fn a_symlink_and_a_directory_are_resolved_on_the_host() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    let a = LoopDev::new("SYMLINKS")?;
    let (major, minor) = a.numbers()?;
    let env = TestEnv::new()?;
    env.import_demo()?;
    let by_id = env.dir.path().join("serial/by-id");
    fs::create_dir_all(&by_id)?;
    let link = by_id.join("usb-FTDI_FAKE-if00");
    symlink(&a.path, &link)?;
    let dir = env.dir.path().join("snd");
    fs::create_dir_all(dir.join("sub"))?;
    mknod(
        &dir.join("sub/disk"),
        SFlag::S_IFBLK,
        Mode::from_bits_truncate(0o600),
        makedev(major, minor),
    )?;
    mknod(
        &dir.join("null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o640),
        makedev(1, 3),
    )?;
    fs::set_permissions(dir.join("null"), fs::Permissions::from_mode(0o640))?;
    fs::write(dir.join("plain"), b"not a device")?;
    symlink("/dev/zero", dir.join("link"))?;
    let script = "stat -c '%F %t:%T' /dev/modem; head -c 8 /dev/modem; echo ' via link'; \
        find /dev/mine | sort; stat -c 'null %a' /dev/mine/null; \
        head -c 8 /dev/mine/sub/disk; echo ' via dir'";
    let extra = json!({"devices": [format!("{}:/dev/modem:rw", link.display()),
        {"path": dir, "container_path": "/dev/mine"}]});
    env.write_spec("links", &sh_in(DEMO_REF, script, extra))?;
    let _daemon = env.start_daemon_checked()?;
    let (_, out) = output_of(&env, "links")?;
    let numbers = format!("block special file {major:x}:{minor:x}");
    let listing = "/dev/mine\n/dev/mine/null\n/dev/mine/sub\n/dev/mine/sub/disk\n";
    assert_has(
        &out,
        &[
            &numbers,
            "SYMLINKS via link",
            listing,
            "null 640",
            "SYMLINKS via dir",
        ],
    );
    Ok(())
}

#[test]
fn read_permission_allows_reads_only_and_a_user_namespace_sees_the_hosts_owner() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let a = LoopDev::new("READONLY")?;
    let env = TestEnv::new()?;
    env.import_demo()?;
    let script = "head -c 8 /dev/ro; echo ' read'; \
        printf x | dd of=/dev/ro conv=notrunc 2>&1; echo dd=$?";
    let extra = json!({"devices": [format!("{}:/dev/ro:r", a.path)]});
    env.write_spec("r", &sh_in(DEMO_REF, script, extra))?;
    let userns = require_feature(Feature::UserNamespaces);
    if userns {
        let script = "stat -c 'owner %u:%g %a' /dev/u; head -c 8 /dev/u; echo ' in userns'";
        let extra = json!({"devices": [format!("{}:/dev/u", a.path)], "userns": "auto"});
        env.write_spec("u", &sh_in(DEMO_REF, script, extra))?;
    }
    let _daemon = env.start_daemon_checked()?;
    let (_, out) = output_of(&env, "r")?;
    assert_has(&out, &["READONLY read", "Operation not permitted", "dd=1"]);
    if userns {
        let meta = fs::metadata(&a.path)?;
        let owner = format!(
            "owner {}:{} {:o}",
            meta.uid(),
            meta.gid(),
            meta.mode() & 0o7777
        );
        let (_, out) = output_of(&env, "u")?;
        assert_has(&out, &[&owner, "READONLY in userns"]);
    }
    Ok(())
}

#[test]
fn a_missing_device_fails_naming_it_and_an_optional_one_is_skipped() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    let missing = format!("/dev/{}", unique_name("berth-missing"));
    env.write_spec(
        "gone",
        &sh_in(DEMO_REF, "echo RAN", json!({"devices": [missing]})),
    )?;
    let extra = json!({"devices": [{"path": missing, "optional": true}, "/dev/null:/dev/n2"]});
    env.write_spec("skip", &sh_in(DEMO_REF, "ls /dev/n2 && echo RAN", extra))?;
    let _daemon = env.start_daemon_checked()?;
    let (record, out) = output_of(&env, "gone")?;
    let want = format!("device {missing}: No such file or directory");
    let error = record["error"].as_str().unwrap_or_default();
    assert!(error.contains(&want), "{record:#}");
    assert_eq!(record["exit_code"], 125, "{record:#}");
    ensure!(!out.contains("RAN"), "it ran:\n{out}");
    let (record, out) = output_of(&env, "skip")?;
    assert_eq!(record["exit_code"], 0, "{record:#}\n{out}");
    assert_has(
        &out,
        &["RAN", &format!("optional device {missing} skipped")],
    );
    Ok(())
}

#[test]
fn a_device_cgroup_rule_opens_every_loop_device_the_container_sees() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (a, b) = (LoopDev::new("RULE-AAA")?, LoopDev::new("RULE-BBB")?);
    let env = TestEnv::new()?;
    env.import_demo()?;
    let script = format!(
        "head -c 8 /hostdev/{}; echo; head -c 8 /hostdev/{}; echo; \
         printf W | dd of=/hostdev/{} bs=512 seek=3 conv=notrunc 2>&1 && echo wroteB",
        a.name(),
        b.name(),
        b.name()
    );
    let extra = json!({"device_cgroup_rules": ["b 7:* rw"], "mounts": host_dev_mount()});
    env.write_spec("rule", &sh_in(DEMO_REF, &script, extra))?;
    let _daemon = env.start_daemon_checked()?;
    let (_, out) = output_of(&env, "rule")?;
    assert_has(&out, &["RULE-AAA", "RULE-BBB", "wroteB"]);
    assert_eq!(b.read_at(1536, 1)?, b"W");
    Ok(())
}

#[test]
fn a_changed_device_list_restarts_the_container_with_the_new_rules() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (a, b) = (LoopDev::new("SWAP-AAA")?, LoopDev::new("SWAP-BBB")?);
    let env = TestEnv::new()?;
    env.import_demo()?;
    let script = format!(
        "trap 'exit 0' TERM; echo run $RUN; \
         echo A=$(head -c 8 /hostdev/{} 2>/dev/null || echo refused); \
         echo B=$(head -c 8 /hostdev/{} 2>/dev/null || echo refused); \
         echo run $RUN done; while :; do sleep 1; done",
        a.name(),
        b.name()
    );
    let spec = |dev: &str, run: &str| {
        sh_in(
            DEMO_REF,
            &script,
            json!({"devices": [dev], "env": {"RUN": run},
            "mounts": host_dev_mount()}),
        )
    };
    env.write_spec("swap", &spec(&a.path, "1"))?;
    let _daemon = env.start_daemon_checked()?;
    wait_for(LIMIT, || Ok(env.logs("swap")?.0.contains("run 1 done")))?;
    env.write_spec("swap", &spec(&b.path, "2"))?;
    run_ok(env.cli(&["reload"]))?;
    wait_for(LIMIT, || Ok(env.logs("swap")?.0.contains("run 2 done")))?;
    let out = env.logs("swap")?.0;
    let (first, second) = out.split_once("run 2\n").unwrap_or((&out, ""));
    assert_has(first, &["A=SWAP-AAA", "B=refused"]);
    assert_has(second, &["A=refused", "B=SWAP-BBB"]);
    // The running container's cgroup lists B's rule, not A's.
    let list = format!(
        "/sys/fs/cgroup/devices/{}/swap/devices.list",
        env.cgroup_parent
    );
    if !berth::kernel::cgroup::cgroup_v2() && berth::kernel::cgroup::device_rules_enforced() {
        let list = fs::read_to_string(&list)?;
        let rule = |d: &LoopDev| -> Result<String> {
            let (major, minor) = d.numbers()?;
            Ok(format!("b {major}:{minor} rwm"))
        };
        assert!(list.contains(&rule(&b)?), "{list}");
        assert!(!list.contains(&rule(&a)?), "{list}");
    }
    Ok(())
}
