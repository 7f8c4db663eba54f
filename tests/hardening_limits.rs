//! Container hardening, end to end, continued (tests/hardening.rs has the
//! escape battery, capabilities and Landlock): resource limits that hold
//! while the host stays usable, mount options, sysctls and rlimits, and a
//! counter-test that ordinary workloads still run under all of it.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use anyhow::{Context, Result};
use common::probe::*;
use common::*;
use serde_json::json;

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
