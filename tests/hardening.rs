//! Container hardening, end to end: an escape battery (tests/escape/probe.c)
//! run inside default containers, each defence shown to be the one that
//! refuses (a control with it off succeeds), the capability sets, and
//! Landlock's limits on writes. Resource limits, mount options, sysctls
//! and ordinary workloads are tests/hardening_limits.rs's.

mod common;

use std::collections::BTreeMap;

use anyhow::Result;
use common::probe::*;
use common::*;
use serde_json::{Value, json};

/// Every attempt of the battery that Docker's defaults must refuse. Not
/// raw_socket or chown_foreign (the default capabilities allow them; they
/// have their own tests), nor the resource attacks. umount goes last: if it
/// worked it would unmount /proc for the attempts after it.
const BATTERY: &[&str] = &[
    "mount",
    "fsopen",
    "pivot_root",
    "unshare_user",
    "unshare_mnt",
    "setns",
    "sethostname",
    "keyctl",
    "add_key",
    "bpf",
    "perf_event_open",
    "io_uring_setup",
    "userfaultfd",
    "open_by_handle_at",
    "kexec_load",
    "init_module",
    "reboot",
    "swapon",
    "settimeofday",
    "syslog",
    "read_kcore",
    "sysrq",
    "sys_write",
    "proc_sys_write",
    "mknod_block",
    "landlock_mknod",
    "umount",
];

#[test]
fn escape_battery_every_attempt_fails() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = probe_env()?;
    let mut command = vec![PROBE];
    command.extend_from_slice(BATTERY);
    env.write_spec("battery", &spec(&command, json!({})))?;
    let _daemon = env.start_daemon_checked()?;
    let (record, out, err) = finished(&env, "battery")?;
    let found = verdicts(&out);
    let mut failures = Vec::new();
    for name in BATTERY {
        match found.get(*name) {
            Some(line) if is_ok(line) => {}
            Some(line) => failures.push(line.clone()),
            None => failures.push(format!("{name}: no verdict printed")),
        }
    }
    if record["exit_code"] != 0 && failures.is_empty() {
        failures.push(format!(
            "probe exit code {} (expected 0)",
            record["exit_code"]
        ));
    }
    assert_no_failures(
        &failures,
        &format!("in a default container (record {record}; stderr {err:?})"),
    );
    assert_eq!(record["exit_code"], 0, "probe output:\n{out}");
    Ok(())
}

/// The attempts only seccomp refuses (no capability is involved), and the
/// one only Landlock refuses.
const SECCOMP_ONLY: &[&str] = &["unshare_user", "keyctl", "add_key"];
const LANDLOCK_ONLY: &[&str] = &["landlock_mknod"];

/// The battery's control: with seccomp and Landlock off, the attempts that
/// only they refuse must show as escapes, so the battery's "ok" lines come
/// from berth's defences, not from the probe or the host.
#[test]
fn escape_battery_sees_escapes_when_seccomp_and_landlock_are_off() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = probe_env()?;
    let mut command = vec![PROBE];
    command.extend_from_slice(SECCOMP_ONLY);
    command.extend_from_slice(LANDLOCK_ONLY);
    env.write_spec(
        "open",
        &spec(
            &command,
            json!({"seccomp": "unconfined", "landlock": {"enabled": false}}),
        ),
    )?;
    let _daemon = env.start_daemon_checked()?;
    let (record, out, err) = finished(&env, "open")?;
    let mut failures = Vec::new();
    for name in SECCOMP_ONLY.iter().chain(LANDLOCK_ONLY) {
        let line = verdict_for(&out, &err, name);
        if !is_escaped(&line) {
            failures.push(format!("expected an escape, got: {line}"));
        }
    }
    if record["exit_code"] != 1 {
        failures.push(format!(
            "probe exit code {} (expected 1)",
            record["exit_code"]
        ));
    }
    assert_no_failures(&failures, "with seccomp unconfined and Landlock off");
    Ok(())
}

/// Runs `probe ATTEMPT` in two containers, one with `extra` spec fields and
/// a control with the defaults; returns both verdict lines and exit codes.
fn with_and_without(attempt: &str, extra: Value) -> Result<[(String, Value); 2]> {
    let env = probe_env()?;
    env.write_spec("hardened", &spec(&[PROBE, attempt], extra))?;
    env.write_spec("control", &spec(&[PROBE, attempt], json!({})))?;
    let _daemon = env.start_daemon_checked()?;
    let mut out = Vec::new();
    for name in ["hardened", "control"] {
        let (record, stdout, stderr) = finished(&env, name)?;
        out.push((
            verdict_for(&stdout, &stderr, attempt),
            record["exit_code"].clone(),
        ));
    }
    Ok(out.try_into().expect("two containers"))
}

#[test]
fn raw_socket_refused_after_drop_net_raw() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let [(dropped, dropped_code), (control, control_code)] =
        with_and_without("raw_socket", json!({"capabilities": {"drop": ["NET_RAW"]}}))?;
    assert!(
        is_ok(&dropped) && dropped_code == 0,
        "with NET_RAW dropped a raw socket must be refused, got: {dropped} (exit {dropped_code})"
    );
    assert!(
        is_escaped(&control) && control_code == 1,
        "control: Docker's default set includes NET_RAW, so a raw socket must open \
         (else the drop proved nothing), got: {control} (exit {control_code})"
    );
    Ok(())
}

#[test]
fn chown_refused_after_drop_all() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let [(dropped, dropped_code), (control, control_code)] =
        with_and_without("chown_foreign", json!({"capabilities": {"drop": ["ALL"]}}))?;
    assert!(
        is_ok(&dropped) && dropped_code == 0,
        "with ALL capabilities dropped chown to another uid must be refused, got: {dropped} (exit {dropped_code})"
    );
    assert!(
        is_escaped(&control) && control_code == 1,
        "control: Docker's default set includes CHOWN, so chown must work \
         (else the drop proved nothing), got: {control} (exit {control_code})"
    );
    Ok(())
}

/// Docker's 14 default capabilities as a /proc/PID/status mask.
const DOCKER_CAPS: &str = "00000000a80425fb";
/// The same plus SYS_TIME (bit 25), minus CHOWN (bit 0).
const DOCKER_CAPS_PLUS_SYS_TIME_MINUS_CHOWN: &str = "00000000aa0425fa";
const NO_CAPS: &str = "0000000000000000";

/// Compares the Cap*/NoNewPrivs/Seccomp lines of a /proc/self/status dump
/// with `expected`, adding one message per mismatch to `failures`.
fn check_status(who: &str, status: &str, expected: &[(&str, &str)], failures: &mut Vec<String>) {
    let fields: BTreeMap<&str, &str> = status
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    for (key, want) in expected {
        match fields.get(key) {
            Some(got) if got == want => {}
            Some(got) => failures.push(format!("{who}: {key} is {got}, expected {want}")),
            None => failures.push(format!("{who}: no {key} line in {status:?}")),
        }
    }
}

#[test]
fn capability_sets_for_root_and_non_root() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let status = ["cat", "/proc/self/status"];
    // no_new_privs is off by default, as in Docker; seccomp is on.
    let confined = [("NoNewPrivs", "0"), ("Seccomp", "2")];
    let mut failures = Vec::new();

    let env = probe_env()?;
    env.write_spec("root", &spec(&status, json!({})))?;
    env.write_spec("app", &spec(&status, json!({"user": "1000:1000"})))?;
    {
        let _daemon = env.start_daemon_checked()?;
        let (_, out, _) = finished(&env, "root")?;
        let mut want = vec![
            ("CapBnd", DOCKER_CAPS),
            ("CapPrm", DOCKER_CAPS),
            ("CapEff", DOCKER_CAPS),
            ("CapInh", NO_CAPS),
            ("CapAmb", NO_CAPS),
        ];
        want.extend(confined);
        check_status("root in a default container", &out, &want, &mut failures);
        let (_, out, _) = finished(&env, "app")?;
        let mut want = vec![
            ("CapBnd", DOCKER_CAPS),
            ("CapPrm", NO_CAPS),
            ("CapEff", NO_CAPS),
            ("CapInh", NO_CAPS),
            ("CapAmb", NO_CAPS),
        ];
        want.extend(confined);
        check_status("user 1000:1000", &out, &want, &mut failures);
    }

    // A second daemon: if the spec fields are unknown, the default cases
    // above have still been checked and reported.
    let env = probe_env()?;
    env.write_spec(
        "tuned",
        &spec(
            &status,
            json!({"capabilities": {"add": ["SYS_TIME"], "drop": ["CAP_CHOWN"]}}),
        ),
    )?;
    match env.start_daemon_checked() {
        Ok(_daemon) => {
            let (_, out, _) = finished(&env, "tuned")?;
            let mut want = vec![
                ("CapBnd", DOCKER_CAPS_PLUS_SYS_TIME_MINUS_CHOWN),
                ("CapPrm", DOCKER_CAPS_PLUS_SYS_TIME_MINUS_CHOWN),
                ("CapEff", DOCKER_CAPS_PLUS_SYS_TIME_MINUS_CHOWN),
                ("CapInh", NO_CAPS),
                ("CapAmb", NO_CAPS),
            ];
            want.extend(confined);
            check_status("add SYS_TIME, drop CHOWN", &out, &want, &mut failures);
        }
        Err(e) => failures.push(format!("add SYS_TIME, drop CHOWN: {e:#}")),
    }
    assert_no_failures(&failures, "with capability sets");
    Ok(())
}

#[test]
fn landlock_limits_writes() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = probe_env()?;
    let attempt = |what: &str, cmd: &str| {
        format!("if {cmd}; then echo '{what} done'; else echo '{what} refused'; fi")
    };
    let default_script = [
        attempt("/dev/x", "echo x > /dev/x"),
        attempt("/newdir", "mkdir /newdir"),
        attempt("mknod /dev/null2", "mknod /dev/null2 c 1 3"),
        attempt("mknod /tmp/null2", "mknod /tmp/null2 c 1 3"),
    ]
    .join("\n");
    let ro_script = [
        attempt("/etc/x", "echo x > /etc/x"),
        attempt("/tmp/x", "echo x > /tmp/x"),
        attempt("/dev/x", "echo x > /dev/x"),
    ]
    .join("\n");
    env.write_spec("default", &sh(&default_script, json!({})))?;
    env.write_spec(
        "readonly",
        &sh(
            &ro_script,
            json!({"read_only": true, "mounts": [{"type": "tmpfs", "target": "/tmp"}]}),
        ),
    )?;
    let _daemon = env.start_daemon_checked()?;
    let (_, out, err) = finished(&env, "default")?;
    assert_eq!(
        out, "/dev/x done\n/newdir done\nmknod /dev/null2 refused\nmknod /tmp/null2 refused\n",
        "default container: new entries anywhere Docker allows them, but no device node \
         even with CAP_MKNOD (stderr {err:?})"
    );
    assert_eq!(
        err.matches("Permission denied").count(),
        2,
        "both mknods refused by Landlock (EACCES): {err:?}"
    );
    let (_, out, err) = finished(&env, "readonly")?;
    assert_eq!(
        out, "/etc/x refused\n/tmp/x done\n/dev/x done\n",
        "read_only rootfs with a tmpfs on /tmp; /dev stays a writable tmpfs (stderr {err:?})"
    );
    Ok(())
}
