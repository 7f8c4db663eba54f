//! Claims of docs/security.md and docs/spec.md about what a container
//! gets, each shown on a real container: no descriptor of the daemon
//! reaches it, and `no_new_privileges` decides whether a setuid binary
//! raises privileges. The mount claims are tests/claims_mounts.rs's.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use common::*;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(60);

/// A process's open descriptors, as the host sees them: fd -> target.
fn descriptors(pid: i64) -> Result<BTreeMap<u32, String>> {
    let mut out = BTreeMap::new();
    for e in fs::read_dir(format!("/proc/{pid}/fd"))? {
        let e = e?;
        let fd = e.file_name().to_string_lossy().parse()?;
        let target = fs::read_link(e.path()).map(|t| t.display().to_string());
        out.insert(fd, target.unwrap_or_else(|e| format!("({e})")));
    }
    Ok(out)
}

/// Only 0 (/dev/null), 1 and 2 (pipes), as docs/security.md says.
fn assert_only_stdio(what: &str, pid: i64) -> Result<()> {
    let fds = descriptors(pid)?;
    let fds_shown = format!("{what} (pid {pid}): {fds:?}");
    assert_eq!(
        fds.keys().copied().collect::<Vec<_>>(),
        [0, 1, 2],
        "{fds_shown}"
    );
    assert_eq!(fds[&0], "/dev/null", "{fds_shown}");
    assert!(
        fds[&1].starts_with("pipe:") && fds[&2].starts_with("pipe:"),
        "{fds_shown}"
    );
    Ok(())
}

/// Kills a child (a `logs -f` follower) when the test ends.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn no_descriptor_of_the_daemon_reaches_a_container() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    // The health check's process is found by this argument.
    let token = format!("3.{}", std::process::id());
    let check = json!({"healthcheck": {"command": ["sleep", token], "interval": "0.2s",
                                       "timeout": "30s"}});
    env.write_spec("first", &sh_in(DEMO_REF, "exec sleep 60", check))?;
    env.write_spec("later", &sh_in(DEMO_REF, "exec sleep 60", json!({})))?;
    let _daemon = env.start_daemon_checked()?;
    let first = env.wait_state("first", "running", LIMIT)?;
    // With a follower and an event subscriber connected and another
    // container's pipes open, the daemon holds many more descriptors.
    let _follow = Reaped(
        env.cli(&["logs", "-f", "first"])
            .stdout(Stdio::null())
            .spawn()?,
    );
    let _events = Reaped(env.cli(&["events"]).stdout(Stdio::null()).spawn()?);
    std::thread::sleep(Duration::from_millis(300));
    let old_pid = env.wait_state("later", "running", LIMIT)?["pid"].clone();
    run_ok(env.cli(&["restart", "later"]))?;
    wait_for(LIMIT, || {
        let c = env.container("later")?;
        Ok(c["state"] == "running" && c["pid"] != old_pid)
    })?;
    let later = env.container("later")?;
    run_ok(env.cli(&["run", "-d", "--name", "ran", DEMO_REF, "sleep", "60"]))?;
    let ran = env.wait_state("ran", "running", LIMIT)?;
    for (what, record) in [("first", &first), ("later", &later), ("ran", &ran)] {
        let pid = record["pid"].as_i64().context("pid")?;
        assert_only_stdio(what, pid)?;
    }
    let mut checks = Vec::new();
    wait_for(LIMIT, || {
        checks = processes_with(&token)
            .into_iter()
            .filter(|p| {
                let cmd = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                cmd.starts_with(b"sleep\0")
            })
            .collect();
        Ok(!checks.is_empty())
    })
    .context("no health check process seen")?;
    for pid in checks {
        assert_only_stdio("health check", i64::from(pid))?;
    }
    Ok(())
}

/// The `ids` program (tests/escape/ids.c), static, as PATH/ids and as a
/// setuid-root copy PATH/suid-ids, in a layer directory.
fn ids_layer(dir: &Path) -> Result<PathBuf> {
    let bin = dir.join("usr/local/bin");
    fs::create_dir_all(&bin)?;
    let mut cc = Command::new("cc");
    cc.args(["-static", "-O2", "-o"])
        .arg(bin.join("ids"))
        .arg(repo_path("tests/escape/ids.c"));
    run_ok(cc).context("build tests/escape/ids.c (needs gcc and libc6-dev)")?;
    fs::copy(bin.join("ids"), bin.join("suid-ids"))?;
    fs::set_permissions(bin.join("ids"), fs::Permissions::from_mode(0o755))?;
    fs::set_permissions(bin.join("suid-ids"), fs::Permissions::from_mode(0o4755))?;
    Ok(dir.to_path_buf())
}

#[test]
fn no_new_privileges_decides_whether_a_setuid_binary_raises_privileges() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    let layer = ids_layer(&env.dir.path().join("ids-layer"))?;
    let image = env.import_with_layer("ids", &layer)?;
    let script = "ids; suid-ids";
    let user = |nnp: bool| json!({"user": "1000", "no_new_privileges": nnp});
    env.write_spec("nnp-off", &sh_in(&image, script, user(false)))?;
    env.write_spec("nnp-on", &sh_in(&image, script, user(true)))?;
    let _daemon = env.start_daemon_checked()?;
    let mut seen = BTreeMap::new();
    for name in ["nnp-off", "nnp-on"] {
        let record = env.wait_state(name, "exited", LIMIT)?;
        let (out, err) = env.logs(name)?;
        assert_eq!(record["exit_code"], 0, "{name}: {record} {out}{err}");
        let lines: Vec<String> = out.lines().map(str::to_string).collect();
        assert_eq!(lines.len(), 2, "{name}: {out}{err}");
        seen.insert(name, lines);
    }
    // Without the setuid bit: uid 1000 and no capabilities either way.
    for name in ["nnp-off", "nnp-on"] {
        assert!(
            seen[name][0]
                .starts_with("uid=1000/1000/1000 gid=1000/1000/1000 capeff=0000000000000000"),
            "{name}: {:?}",
            seen[name]
        );
    }
    let (off, on) = (&seen["nnp-off"][1], &seen["nnp-on"][1]);
    // false: the setuid-root binary runs with euid 0 (and the bounding
    // set's capabilities, as any setuid-root program).
    assert!(off.starts_with("uid=1000/0/0 "), "nnp false: {off}");
    assert!(!off.contains("capeff=0000000000000000"), "nnp false: {off}");
    assert!(off.ends_with("nnp=0"), "nnp false: {off}");
    // true: the kernel ignores the setuid bit.
    assert!(
        on.starts_with("uid=1000/1000/1000 gid=1000/1000/1000 capeff=0000000000000000")
            && on.ends_with("nnp=1"),
        "nnp true: {on}"
    );
    Ok(())
}
