//! A container's own cgroup namespace (the default): its cgroup is `/` in
//! /proc/self/cgroup, the cgroup filesystems are mounted read-only at
//! /sys/fs/cgroup, and a runtime reads its own memory limit there (v1
//! memory.limit_in_bytes here, v2 memory.max inside the VM test). With
//! `cgroupns: "host"` it sees the host's paths and nothing is mounted.

mod common;

use anyhow::Result;
use common::probe::{finished, probe_env, sh};
use common::*;
use serde_json::json;

const LIMIT: u64 = 64 << 20;

/// Prints the memory limit from whichever cgroup version is mounted, the
/// cgroup paths, and whether /sys/fs/cgroup can be written.
const SCRIPT: &str = "
if [ -f /sys/fs/cgroup/memory.max ]; then echo limit $(cat /sys/fs/cgroup/memory.max);
else echo limit $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes); fi
sed 's/^[0-9]*:[^:]*:/path /' /proc/self/cgroup | sort -u
if mkdir /sys/fs/cgroup/memory/x 2>/dev/null || mkdir /sys/fs/cgroup/x 2>/dev/null; then echo writable; else echo read-only; fi
";

#[test]
fn a_container_reads_its_own_limit_in_its_own_cgroup_namespace() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let env = probe_env()?;
    let resources = json!({"resources": {"memory": LIMIT}});
    env.write_spec("private", &sh(SCRIPT, resources.clone()))?;
    let mut host = resources;
    host["cgroupns"] = json!("host");
    env.write_spec(
        "host",
        &sh("cat /proc/self/cgroup; ls -A /sys/fs/cgroup | wc -l", host),
    )?;
    let _daemon = env.start_daemon_checked()?;

    let (_, out, err) = finished(&env, "private")?;
    assert!(
        out.starts_with(&format!("limit {LIMIT}\n")),
        "its own limit at /sys/fs/cgroup: {out:?} (stderr {err:?})"
    );
    // Every hierarchy the container is in shows it at its root. (v1
    // hierarchies berth does not manage, like name=systemd, show the
    // daemon's cgroup as root too.)
    let paths: Vec<&str> = out.lines().filter(|l| l.starts_with("path ")).collect();
    assert_eq!(paths, ["path /"], "{out:?}");
    assert!(out.ends_with("read-only\n"), "{out:?} (stderr {err:?})");

    let (_, out, err) = finished(&env, "host")?;
    assert!(
        out.contains(&env.cgroup_parent),
        "the host's cgroup paths with cgroupns host: {out:?} (stderr {err:?})"
    );
    assert!(
        out.ends_with("\n0\n"),
        "nothing mounted at /sys/fs/cgroup: {out:?}"
    );
    Ok(())
}
