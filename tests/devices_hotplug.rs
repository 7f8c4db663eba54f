//! Hotplug on the real kernel, with loop devices made and removed through
//! /dev/loop-control (LOOP_CTL_ADD and LOOP_CTL_REMOVE send the kernel's
//! add and remove uevents; detaching alone keeps the node) at numbers far
//! above what `losetup -f` hands the other tests: a device covered by a
//! `device_cgroup_rules` entry appears in a running container within 1 s,
//! is readable and writable there, and goes when removed (with the
//! median latency of 20 rounds printed); an `optional` entry and a
//! `match` entry absent at start are filled when their device appears,
//! with their cgroup rule, and emptied again; a symlink that appears later
//! in a watched directory gives its node; device.added and
//! device.removed are journalled.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::hotloop::{HotLoop, free_number};
use common::*;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(60);
/// The issue's promise: the node is there within a second.
const HOTPLUG_LIMIT: Duration = Duration::from_secs(1);

/// The container's own view of `path` (through its init's root).
fn inside(pid: i64, path: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/root{path}"))
}

fn is_block(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_block_device())
}

/// How long until `path` (inside) is a block node (`present`) or gone.
fn time_until(path: &Path, present: bool) -> Result<Duration> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if is_block(path) == present {
            return Ok(start.elapsed());
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    bail!(
        "{} still {}",
        path.display(),
        if present { "missing" } else { "there" }
    )
}

fn running_pid(env: &TestEnv, name: &str) -> Result<i64> {
    let record = env.wait_state(name, "running", LIMIT)?;
    record["pid"].as_i64().context("no pid")
}

fn events_of(env: &TestEnv, name: &str) -> Result<Vec<Value>> {
    let out = run_ok(env.cli(&["events", "--json"]))?;
    let all: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    Ok(all
        .into_iter()
        .filter(|e| {
            e["container"] == name && e["kind"].as_str().is_some_and(|k| k.starts_with("device."))
        })
        .collect())
}

fn devices_list(env: &TestEnv, name: &str) -> Option<String> {
    if !berth::kernel::cgroup::device_rules_enforced() {
        return None;
    }
    let list = format!(
        "/sys/fs/cgroup/devices/{}/{name}/devices.list",
        env.cgroup_parent
    );
    fs::read_to_string(list).ok()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Waits in the container until `dev` is a 1 MiB disk, then reads its
/// marker and writes `stamp` at block 1.
fn use_when_attached(dev: &str, stamp: &str) -> String {
    format!(
        "i=0; until [ \"$(blockdev --getsize64 {dev} 2>/dev/null)\" = 1048576 ]; do \
           sleep 0.05 2>/dev/null || sleep 1; i=$((i+1)); [ $i -gt 400 ] && echo timeout && exit 3; done; \
         head -c 8 {dev}; echo ' read'; \
         printf {stamp} | dd of={dev} bs=512 seek=1 conv=notrunc 2>&1 && sync && echo wrote; \
         while :; do sleep 1; done"
    )
}

fn wait_for_log(env: &TestEnv, name: &str, want: &str) -> Result<String> {
    let mut text = String::new();
    let found = wait_for(Duration::from_secs(30), || {
        let (out, err) = env.logs(name)?;
        text = format!("{out}{err}");
        Ok(text.contains(want) || text.contains("timeout"))
    });
    found.with_context(|| format!("{want:?} not in {name}'s log:\n{text}"))?;
    ensure!(text.contains(want), "{name}: {text}");
    Ok(text)
}

#[test]
fn a_rule_lets_a_loop_device_made_later_in_and_out_within_a_second() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let n = free_number();
    let node = format!("/dev/loop{n}");
    let env = TestEnv::new()?;
    env.import_demo()?;
    let extra = json!({"device_cgroup_rules": ["b 7:* rw"]});
    let spec = sh_in(DEMO_REF, &use_when_attached(&node, "HOTPLUG1"), extra);
    env.write_spec("rule", &spec)?;
    let _daemon = env.start_daemon_checked()?;
    let pid = running_pid(&env, "rule")?;
    let there = inside(pid, &node);
    ensure!(!is_block(&there), "{node} was there before it was made");
    let mut dev = HotLoop::add(n)?;
    let appeared = time_until(&there, true)?;
    ensure!(appeared <= HOTPLUG_LIMIT, "{node} took {appeared:?}");
    dev.attach("MARKER01")?;
    let log = wait_for_log(&env, "rule", "wrote")?;
    ensure!(log.contains("MARKER01 read"), "{log}");
    assert_eq!(dev.read_at(512, 8)?, b"HOTPLUG1", "{log}");
    let inspected: Value = serde_json::from_slice(&run_ok(env.cli(&["inspect", "rule"]))?.stdout)?;
    let devices = &inspected["security"]["devices"];
    let shown = devices.as_array().context("devices")?;
    ensure!(
        shown
            .iter()
            .any(|d| d["container_path"] == node.as_str() && d["minor"] == n),
        "inspect: {devices:#}"
    );
    dev.remove()?;
    let gone = time_until(&there, false)?;
    ensure!(gone <= HOTPLUG_LIMIT, "{node} stayed {gone:?}");
    // The rule covers every loop device, the other tests' too: this one's.
    let evs: Vec<Value> = events_of(&env, "rule")?
        .into_iter()
        .filter(|e| e["data"]["minor"] == n)
        .collect();
    let kinds: Vec<&str> = evs.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["device.added", "device.removed"], "{evs:#?}");
    let data = &evs[0]["data"];
    assert_eq!(
        (
            &data["container_path"],
            &data["type"],
            &data["major"],
            &data["minor"]
        ),
        (&json!(node), &json!("b"), &json!(7), &json!(n)),
        "{data}"
    );
    // Latency: 20 rounds of add and remove, measured from the ioctl's
    // return to the node inside. LOOP_CTL_REMOVE returns after the daemon
    // has mostly handled its uevent, so the remove round understates; the
    // daemon's own log (uevent read to node made or removed) is below.
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let mut d = HotLoop::add(n)?;
        added.push(time_until(&there, true)?);
        d.remove()?;
        removed.push(time_until(&there, false)?);
    }
    let worst = added
        .iter()
        .chain(&removed)
        .max()
        .copied()
        .unwrap_or_default();
    println!(
        "hotplug latency over 20 rounds: add median {:?}, remove median {:?}, worst {worst:?}",
        median(added),
        median(removed)
    );
    ensure!(worst <= HOTPLUG_LIMIT, "a round took {worst:?}");
    let stderr = fs::read_to_string(env.dir.path().join("daemon.stderr"))?;
    let daemon_side = |what: &str| -> Vec<u64> {
        let mut v: Vec<u64> = stderr
            .lines()
            .filter(|l| l.contains(what))
            .filter_map(|l| l.rsplit_once('(')?.1.strip_suffix(" µs)")?.parse().ok())
            .collect();
        v.sort_unstable();
        v
    };
    let (made, gone) = (daemon_side("device added"), daemon_side("device removed"));
    ensure!(made.len() >= 21 && gone.len() >= 21, "{stderr}");
    println!(
        "daemon: uevent read to node made, median {} µs; to node removed, median {} µs",
        made[made.len() / 2],
        gone[gone.len() / 2]
    );
    Ok(())
}

#[test]
fn optional_and_match_entries_absent_at_start_are_filled_and_emptied() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (late, matched) = (free_number(), free_number());
    let env = TestEnv::new()?;
    env.import_demo()?;
    let extra = json!({"devices": [
        {"path": format!("/dev/loop{late}"), "container_path": "/dev/late",
         "permissions": "rw", "optional": true},
        {"match": {"subsystem": "block", "name": format!("loop{matched}")},
         "container_path": "/dev/matched", "permissions": "r", "optional": true}]});
    env.write_spec(
        "late",
        &sh_in(DEMO_REF, &use_when_attached("/dev/late", "HOTPLUG2"), extra),
    )?;
    let _daemon = env.start_daemon_checked()?;
    let pid = running_pid(&env, "late")?;
    let (late_in, matched_in) = (inside(pid, "/dev/late"), inside(pid, "/dev/matched"));
    ensure!(
        !is_block(&late_in) && !is_block(&matched_in),
        "made before the devices"
    );
    let late_rule = format!("b 7:{late} rw");
    if let Some(list) = devices_list(&env, "late") {
        ensure!(!list.contains(&late_rule), "{list}");
    }
    let mut a = HotLoop::add(late)?;
    ensure!(time_until(&late_in, true)? <= HOTPLUG_LIMIT);
    a.attach("LATEDEV1")?;
    let log = wait_for_log(&env, "late", "wrote")?;
    ensure!(log.contains("LATEDEV1 read"), "{log}");
    assert_eq!(a.read_at(512, 8)?, b"HOTPLUG2", "{log}");
    ensure!(
        !is_block(&matched_in),
        "the match entry took another loop device"
    );
    let mut b = HotLoop::add(matched)?;
    ensure!(time_until(&matched_in, true)? <= HOTPLUG_LIMIT);
    let matched_rule = format!("b 7:{matched} r");
    if let Some(list) = devices_list(&env, "late") {
        for want in [&late_rule, &matched_rule, "c 1:3 rwm", "c 136:* rwm"] {
            ensure!(list.lines().any(|l| l == want), "{want} not in\n{list}");
        }
    }
    a.remove()?;
    ensure!(time_until(&late_in, false)? <= HOTPLUG_LIMIT);
    ensure!(is_block(&matched_in), "the other device went too");
    if let Some(list) = devices_list(&env, "late") {
        ensure!(
            !list.lines().any(|l| l == late_rule),
            "a dropped rule stayed:\n{list}"
        );
        ensure!(list.lines().any(|l| l == matched_rule), "{list}");
    }
    b.remove()?;
    ensure!(time_until(&matched_in, false)? <= HOTPLUG_LIMIT);
    let evs = events_of(&env, "late")?;
    let paths: Vec<String> = evs
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["kind"].as_str().unwrap_or(""),
                e["data"]["container_path"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        paths,
        [
            "device.added /dev/late",
            "device.added /dev/matched",
            "device.removed /dev/late",
            "device.removed /dev/matched"
        ]
    );
    Ok(())
}

#[test]
fn a_symlink_that_appears_later_in_a_watched_directory_gives_its_node() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let n = free_number();
    let env = TestEnv::new()?;
    env.import_demo()?;
    // by-id does not exist yet: its parent is watched until it does.
    let links = env.dir.path().join("serial");
    fs::create_dir_all(&links)?;
    let link = links.join("by-id/usb-FAKE_Modem_A10K-if00");
    let extra = json!({"devices": [{"path": link, "container_path": "/dev/modem",
        "permissions": "rw", "optional": true}]});
    env.write_spec(
        "links",
        &sh_in(DEMO_REF, "while :; do sleep 1; done", extra),
    )?;
    let _daemon = env.start_daemon_checked()?;
    let pid = running_pid(&env, "links")?;
    let modem = inside(pid, "/dev/modem");
    let mut dev = HotLoop::add(n)?;
    std::thread::sleep(Duration::from_millis(300));
    ensure!(!is_block(&modem), "made before its link existed");
    // As udev does it: the directory, then the link, back to back.
    fs::create_dir_all(links.join("by-id"))?;
    symlink(dev.path(), &link)?;
    let took = time_until(&modem, true)?;
    ensure!(took <= HOTPLUG_LIMIT, "the link's node took {took:?}");
    if let Some(list) = devices_list(&env, "links") {
        ensure!(list.lines().any(|l| l == format!("b 7:{n} rw")), "{list}");
    }
    dev.remove()?;
    ensure!(time_until(&modem, false)? <= HOTPLUG_LIMIT);
    Ok(())
}

#[test]
fn a_symlink_planted_by_the_container_cannot_aim_a_hotplugged_node_at_the_host() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let n = free_number();
    let env = TestEnv::new()?;
    env.import_demo()?;
    // A host directory an escape would land in, at the same path inside.
    let target = env.dir.path().join("escape");
    fs::create_dir_all(&target)?;
    let t = target.display();
    let script = format!(
        "mkdir -p {t} && ln -s {t} /dev/planted && echo planted; while :; do sleep 1; done"
    );
    let extra = json!({"devices": [{"path": format!("/dev/loop{n}"),
        "container_path": "/dev/planted/late", "optional": true}]});
    env.write_spec("planted", &sh_in(DEMO_REF, &script, extra))?;
    let _daemon = env.start_daemon_checked()?;
    let pid = running_pid(&env, "planted")?;
    wait_for_log(&env, "planted", "planted")?;
    let mut dev = HotLoop::add(n)?;
    let in_container = inside(pid, &format!("{t}/late"));
    ensure!(time_until(&in_container, true)? <= HOTPLUG_LIMIT);
    ensure!(
        !target.join("late").exists(),
        "the node was made on the host"
    );
    dev.remove()?;
    ensure!(time_until(&in_container, false)? <= HOTPLUG_LIMIT);
    Ok(())
}

#[test]
fn a_match_entry_is_resolved_at_start_from_sysfs() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let n = free_number();
    let _dev = HotLoop::add(n)?;
    let env = TestEnv::new()?;
    env.import_demo()?;
    let extra = json!({"devices": [{"match": {"subsystem": "block", "name": format!("loop{n}")},
        "container_path": "/dev/found", "permissions": "r"}]});
    env.write_spec(
        "found",
        &sh_in(DEMO_REF, "stat -c '%F %t:%T' /dev/found", extra),
    )?;
    let _daemon = env.start_daemon_checked()?;
    env.wait_state("found", "exited", LIMIT)?;
    let (out, err) = env.logs("found")?;
    let want = format!("block special file 7:{n:x}");
    ensure!(out.contains(&want), "{out}{err}");
    let extra = json!({"devices": [{"match": {"name": "berth-no-such-device"},
        "container_path": "/dev/none"}]});
    env.write_spec("none", &sh_in(DEMO_REF, "true", extra))?;
    run_ok(env.cli(&["reload"]))?;
    let record = env.wait_state("none", "exited", LIMIT)?;
    let error = record["error"].as_str().unwrap_or_default();
    ensure!(
        error.contains("berth-no-such-device") && error.contains("no such device"),
        "{record}"
    );
    Ok(())
}
