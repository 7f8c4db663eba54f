//! The daemon as PID 1 of a PID namespace (`unshare --pid --fork
//! --mount-proc berth daemon …`): it reaps orphans that are not its
//! containers, and still stops cleanly on SIGTERM.

mod common;

use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Kills a pid when the test ends, however it ends.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = kill(Pid::from_raw(self.0), Signal::SIGKILL);
    }
}

fn children_of(pid: i32) -> Vec<(i32, String, char)> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...; comm may hold spaces, so split at ')'.
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head
            .split_once('(')
            .map(|x| x.1.to_string())
            .unwrap_or_default();
        let fields: Vec<&str> = tail.split_whitespace().collect();
        if fields.get(1).and_then(|pp| pp.parse::<i32>().ok()) == Some(pid) {
            out.push((p, comm, fields[0].chars().next().unwrap_or('?')));
        }
    }
    out
}

#[test]
fn as_pid1_it_reaps_an_orphaned_grandchild() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = TestEnv::new()?;
    env.import_demo()?;
    // Not a sleep, so the orphan below cannot be mistaken for the container.
    env.write_spec("idle", &serde_json::json!({"image": DEMO_REF, "command": ["tail", "-f", "/dev/null"], "stop_timeout": 1}).to_string())?;
    let daemon = env.daemon_command();
    let mut unshare = Command::new("unshare");
    unshare
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(daemon.get_program())
        .args(daemon.get_args());
    let mut wrapper = unshare
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let _wrapper_guard = KillOnDrop(wrapper.id() as i32);
    let _cgroups = CgroupGuard(env.cgroup_parent.clone());
    wait_for(Duration::from_secs(10), || {
        Ok(std::os::unix::net::UnixStream::connect(env.socket()).is_ok())
    })?;
    let berth_pid = children_of(wrapper.id() as i32)
        .first()
        .map(|c| c.0)
        .context("berth under unshare")?;
    let _berth_guard = KillOnDrop(berth_pid);
    let status = fs::read_to_string(format!("/proc/{berth_pid}/status"))?;
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("NSpid:") && l.ends_with("\t1")),
        "berth is not PID 1 in its namespace:\n{status}"
    );

    // A shell entering berth's PID namespace starts a sleep and exits: the
    // sleep is orphaned and the kernel hands it to the namespace's init.
    run_ok(Command::new("nsenter").args([
        "-t",
        &berth_pid.to_string(),
        "-p",
        "--",
        "sh",
        "-c",
        "sleep 1 >/dev/null 2>&1 & exit 0",
    ]))?;
    let adopted = children_of(berth_pid)
        .into_iter()
        .filter(|c| c.1 == "sleep")
        .count();
    assert_eq!(
        adopted,
        1,
        "the orphan was not reparented to berth: {:?}",
        children_of(berth_pid)
    );
    // Once it exits, berth must reap it: no zombie may remain.
    wait_for(Duration::from_secs(5), || {
        Ok(!children_of(berth_pid).iter().any(|c| c.1 == "sleep"))
    })
    .with_context(|| format!("orphan not reaped: {:?}", children_of(berth_pid)))?;
    assert_eq!(
        env.container("idle")?["state"],
        "running",
        "the container is unaffected"
    );

    kill(Pid::from_raw(berth_pid), Signal::SIGTERM)?;
    wait_for(Duration::from_secs(10), || {
        Ok(wrapper.try_wait()?.is_some())
    })?;
    let out = wrapper.wait_with_output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(cgroup_dirs(&env.cgroup_parent).is_empty());
    Ok(())
}
