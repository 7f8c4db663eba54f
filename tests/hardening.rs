//! Container hardening, end to end: an escape battery (tests/escape/probe.c)
//! run inside default containers, each defence shown to be the one that
//! refuses (a control with it off succeeds), resource limits that hold
//! while the host stays usable, and a counter-test that ordinary workloads
//! still run under all of it.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result};
use common::*;
use serde_json::{Value, json};

const PROBE_REF: &str = "localhost/test/probe:latest";
const PROBE: &str = "/usr/local/bin/probe";

/// Generous: these run in parallel with the other suites on 2 cores.
const EXIT_LIMIT: Duration = Duration::from_secs(90);

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
    "landlock_write",
    "umount",
];

/// An OCI layout of busybox plus the probe at /usr/local/bin/probe (in a
/// second layer), built once per test binary.
fn probe_layout() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(unique_name("probe-image"));
        let bin = dir.join("layer/usr/local/bin");
        fs::create_dir_all(&bin).expect("probe layer dir");
        let mut cc = Command::new("cc");
        cc.args(["-static", "-O2", "-o"])
            .arg(bin.join("probe"))
            .arg(repo_path("tests/escape/probe.c"));
        run_ok(cc).expect("build the probe (needs gcc and libc6-dev)");
        fs::set_permissions(bin.join("probe"), fs::Permissions::from_mode(0o755))
            .expect("chmod probe");
        let layout = dir.join("oci");
        make_image(
            "oci",
            PROBE_REF,
            &layout,
            &[busybox_rootfs(), &dir.join("layer")],
        )
        .expect("probe image");
        layout
    })
}

/// A fresh env with the probe image (and busybox) in its store.
fn probe_env() -> Result<TestEnv> {
    let env = TestEnv::new()?;
    env.import_layout(probe_layout())?;
    Ok(env)
}

/// A spec running `command` in the probe image, never restarted, with
/// `extra` fields merged in.
fn spec(command: &[&str], extra: Value) -> String {
    let mut s = json!({"image": PROBE_REF, "command": command, "restart": {"policy": "no"}});
    if let (Some(obj), Some(more)) = (s.as_object_mut(), extra.as_object()) {
        for (k, v) in more {
            obj.insert(k.clone(), v.clone());
        }
    }
    s.to_string()
}

fn sh(script: &str, extra: Value) -> String {
    spec(&["/bin/sh", "-c", script], extra)
}

/// Waits for the container to finish; returns its record, stdout, stderr.
fn finished(env: &TestEnv, name: &str) -> Result<(Value, String, String)> {
    let record = env.wait_state(name, "exited", EXIT_LIMIT)?;
    let (out, err) = env.logs(name)?;
    Ok((record, out, err))
}

/// The probe's verdict lines ("NAME ok ..." / "NAME ESCAPED ..."), by name.
fn verdicts(stdout: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| {
            let name = l.split_whitespace().next()?;
            Some((name.to_string(), l.to_string()))
        })
        .collect()
}

fn is_ok(line: &str) -> bool {
    line.split_whitespace().nth(1) == Some("ok")
}

fn is_escaped(line: &str) -> bool {
    line.split_whitespace().nth(1) == Some("ESCAPED")
}

/// The verdict line for `name`, or an explanation of why there is none.
fn verdict_for(stdout: &str, stderr: &str, name: &str) -> String {
    verdicts(stdout).remove(name).unwrap_or_else(|| {
        format!("{name} printed no verdict (stdout {stdout:?}, stderr {stderr:?})")
    })
}

/// Fails with every message at once, so one run shows every hole.
fn assert_no_failures(failures: &[String], context: &str) {
    assert!(
        failures.is_empty(),
        "{} problem(s) {context}:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

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
const LANDLOCK_ONLY: &[&str] = &["landlock_write"];

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
    let confined = [("NoNewPrivs", "1"), ("Seccomp", "2")];
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
fn fork_bomb_stops_at_pids_limit() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = probe_env()?;
    // The children stay alive for 4 s after fork first fails, so the host
    // can be checked while the container sits at its limit.
    env.write_spec(
        "bomb",
        &spec(
            &[PROBE, "--hold-ms", "4000", "fork_bomb"],
            json!({"resources": {"pids_limit": 64}}),
        ),
    )?;
    let _daemon = env.start_daemon_checked()?;
    let mut line = String::new();
    wait_for(EXIT_LIMIT, || {
        let (out, _) = env.logs("bomb")?;
        line = verdicts(&out).remove("fork_bomb").unwrap_or_default();
        Ok(!line.is_empty() || env.container("bomb")?["state"] == "exited")
    })
    .context("the fork bomb never reported")?;
    // Meanwhile (the bomb holds its children): the daemon answers and the
    // host can fork.
    let during = env.container("bomb")?;
    assert_eq!(
        during["state"], "running",
        "the bomb should still be holding its children: {during}"
    );
    for _ in 0..20 {
        let status = Command::new("true").status()?;
        assert!(
            status.success(),
            "the host could not run `true` during the fork bomb"
        );
    }
    assert!(
        is_ok(&line),
        "the fork bomb was not stopped by pids_limit 64: {line}"
    );
    let children: u32 = line
        .split_whitespace()
        .skip_while(|w| *w != "after")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no child count in {line:?}"))?;
    assert!(
        (1..64).contains(&children),
        "{children} children under pids_limit 64 (the probe and its parent count too): {line}"
    );
    let (record, out, err) = finished(&env, "bomb")?;
    assert_eq!(
        record["exit_code"], 0,
        "record {record}, stdout {out:?}, stderr {err:?}"
    );
    env.ps()
        .context("the daemon stopped answering after the fork bomb")?;
    Ok(())
}

#[test]
fn memory_hog_is_oom_killed_and_reported() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = probe_env()?;
    env.write_spec(
        "hog",
        &spec(
            &[PROBE, "memory_hog"],
            json!({"resources": {"memory": "32m", "memory_swap": "32m"}}),
        ),
    )?;
    let _daemon = env.start_daemon_checked()?;
    let (record, out, err) = finished(&env, "hog")?;
    assert!(
        !out.contains("ESCAPED"),
        "the memory limit did not hold: {out}"
    );
    assert_eq!(
        (record["exit_reason"].as_str(), record["exit_code"].as_i64()),
        (Some("oom_killed"), Some(137)),
        "an OOM kill must be reported as such: record {record}, stderr {err:?}"
    );
    env.ps()
        .context("the daemon stopped answering after the OOM kill")?;
    Ok(())
}

#[test]
fn landlock_limits_writes() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = probe_env()?;
    let try_write = |path: &str| {
        format!("if echo x > {path}; then echo '{path} written'; else echo '{path} refused'; fi")
    };
    let default_script = [
        try_write("/dev/x"),
        try_write("/dev/null"),
        try_write("/tmp/x"),
    ]
    .join("\n");
    let ro_script = [try_write("/etc/x"), try_write("/tmp/x")].join("\n");
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
        out, "/dev/x refused\n/dev/null written\n/tmp/x written\n",
        "default container: /dev is a writable tmpfs, so only Landlock can refuse a new file \
         there; the standard nodes and the rootfs stay writable (stderr {err:?})"
    );
    assert!(
        err.contains("/dev/x: Permission denied"),
        "/dev/x must be refused by Landlock (EACCES): {err:?}"
    );
    let (_, out, err) = finished(&env, "readonly")?;
    assert_eq!(
        out, "/etc/x refused\n/tmp/x written\n",
        "read_only rootfs with a tmpfs on /tmp (stderr {err:?})"
    );
    Ok(())
}

#[test]
fn ordinary_workloads_still_work() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = probe_env()?;
    let data = env.dir.path().join("data");
    fs::create_dir(&data)?;
    let script = r#"set -e
echo "pipe: $(echo hello world | tr a-z A-Z | cut -d' ' -f2)"
echo "subshell: $( (cd /etc && ls passwd group) | sort | tr '\n' ' ')"
echo "passwd: $(cat /etc/passwd | grep -c :)"
date +%s >/dev/null && echo date ok
sleep 0.1 && echo slept
mkdir -p /tmp/a/b && echo f > /tmp/a/b/f && rm -r /tmp/a && echo mkdir and rm ok
httpd -p 127.0.0.1:8080 -h /www
for i in $(seq 50); do
  if page=$(wget -qO- http://127.0.0.1:8080/index.html 2>/dev/null); then break; fi
  sleep 0.1
done
echo "http: $page"
echo from-container > /data/out.txt && echo wrote /data/out.txt
"#;
    env.write_spec(
        "workload",
        &sh(
            script,
            json!({"mounts": [{"type": "bind", "source": data, "target": "/data"}]}),
        ),
    )?;
    let _daemon = env.start_daemon_checked()?;
    let (record, out, err) = finished(&env, "workload")?;
    assert_eq!(
        out,
        "pipe: WORLD\n\
         subshell: group passwd \n\
         passwd: 3\n\
         date ok\n\
         slept\n\
         mkdir and rm ok\n\
         http: hello from berth's demo web server\n\
         wrote /data/out.txt\n",
        "record {record}, stderr {err:?}"
    );
    assert_eq!(record["exit_code"], 0, "stderr {err:?}");
    let host_file = data.join("out.txt");
    assert_eq!(fs::read_to_string(&host_file)?, "from-container\n");
    let meta = fs::metadata(&host_file)?;
    assert_eq!(
        (meta.uid(), meta.gid()),
        (0, 0),
        "root in the container (no user namespace) writes files owned by root"
    );
    Ok(())
}

#[test]
fn bind_mount_options() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = probe_env()?;
    let host = env.dir.path().join("host");
    fs::create_dir(&host)?;
    fs::write(host.join("hello"), "read me\n")?;
    fs::copy(busybox_rootfs().join("bin/busybox"), host.join("busybox"))?;
    // Each option next to a mount without it, so the option is what
    // refuses: binds allow exec by default, tmpfs mounts do not (Docker's
    // --tmpfs defaults), hence the "exec" tmpfs.
    let script = r#"
cat /ro/hello
if echo x > /ro/x; then echo ro: written; else echo ro: refused; fi
if /ro/busybox true; then echo bind: ran; else echo bind: refused; fi
if /hardened/busybox true; then echo bind noexec: ran; else echo bind noexec: refused; fi
cp /bin/busybox /noexec/busybox
cp /bin/busybox /exec/busybox
if /noexec/busybox true; then echo tmpfs noexec: ran; else echo tmpfs noexec: refused; fi
if /exec/busybox true; then echo tmpfs exec: ran; else echo tmpfs exec: refused; fi
grep -q ' /nosuid tmpfs [^ ]*nosuid' /proc/mounts && echo tmpfs nosuid: set
grep -q ' /hardened [^ ]* [^ ]*nosuid,nodev,noexec' /proc/mounts && echo bind options: set
if dd if=/dev/zero of=/small/f bs=1024 count=2048 2>/dev/null; then echo small: 2m fit; else echo small: full; fi
dd if=/dev/zero of=/small/g bs=1024 count=2048 2>&1 | grep -o 'No space left on device' | head -n 1
stat -c 'private: %a' /private
"#;
    let mounts = json!([
        {"type": "bind", "source": host, "target": "/ro", "read_only": true},
        {"type": "bind", "source": host, "target": "/hardened", "options": ["nosuid", "nodev", "noexec"]},
        {"type": "tmpfs", "target": "/noexec", "options": ["noexec"]},
        {"type": "tmpfs", "target": "/exec", "options": ["exec"]},
        {"type": "tmpfs", "target": "/nosuid", "options": ["nosuid"]},
        {"type": "tmpfs", "target": "/small", "size": "1m"},
        {"type": "tmpfs", "target": "/private", "mode": "0700"},
    ]);
    env.write_spec("mounts", &sh(script, json!({"mounts": mounts})))?;
    let _daemon = env.start_daemon_checked()?;
    let (_, out, err) = finished(&env, "mounts")?;
    let expected = [
        "read me",
        "ro: refused",
        "bind: ran",
        "bind noexec: refused",
        "tmpfs noexec: refused",
        "tmpfs exec: ran",
        "tmpfs nosuid: set",
        "bind options: set",
        "small: full",
        "No space left on device",
        "private: 700",
    ];
    let lines: Vec<&str> = out.lines().collect();
    let mut failures = Vec::new();
    for want in expected {
        if !lines.contains(&want) {
            failures.push(format!("expected the line {want:?}"));
        }
    }
    for (what, message) in [
        ("read-only bind", "/ro/x: Read-only file system"),
        ("noexec bind", "/hardened/busybox: Permission denied"),
        ("noexec tmpfs", "/noexec/busybox: Permission denied"),
    ] {
        if !err.contains(message) {
            failures.push(format!("{what}: expected {message:?} on stderr"));
        }
    }
    assert_no_failures(
        &failures,
        &format!("with mount options (stdout {out:?}, stderr {err:?})"),
    );
    Ok(())
}

#[test]
fn sysctls_and_rlimits() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = probe_env()?;
    let script = "cat /proc/sys/kernel/shmmax; ulimit -n; ulimit -Hn; ulimit -c";
    env.write_spec(
        "tuned",
        &sh(
            script,
            json!({
                "sysctls": {"kernel.shmmax": "1073741824"},
                "rlimits": {"nofile": {"soft": 256, "hard": 4096}, "core": 0},
            }),
        ),
    )?;
    {
        let _daemon = env.start_daemon_checked()?;
        let (record, out, err) = finished(&env, "tuned")?;
        assert_eq!(
            out, "1073741824\n256\n4096\n0\n",
            "kernel.shmmax (IPC-namespaced), nofile 256/4096, core 0 (record {record}, stderr {err:?})"
        );
    }

    // kernel.panic is not namespaced: setting it would change the host.
    let env = TestEnv::new()?;
    let text = "{\n  \"image\": \"localhost/test/probe:latest\",\n  \"command\": [\"true\"],\n  \"sysctls\": {\"kernel.panic\": \"0\"}\n}\n";
    env.write_spec("panic", text)?;
    let check = berth(&["check"]).arg(env.config()).output()?;
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(
        check.status.code(),
        Some(1),
        "berth check must refuse kernel.panic: {stderr}"
    );
    let names_field = |s: &str| {
        s.lines()
            .any(|l| l.contains("panic.json:4:") && l.contains("kernel.panic"))
    };
    assert!(
        names_field(&stderr),
        "berth check must name panic.json:4:COL and kernel.panic: {stderr}"
    );
    let out = env.daemon_command().output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the daemon must refuse to start: {stderr}"
    );
    assert!(
        names_field(&stderr),
        "the daemon must name panic.json:4:COL and kernel.panic: {stderr}"
    );
    assert!(
        !env.root().join("containers").exists(),
        "a container was set up despite the refused spec"
    );
    Ok(())
}
