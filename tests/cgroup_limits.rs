//! Resource limits and statistics on real cgroups (root only): every limit
//! lands in its file, a missing file fails or warns by the limit's name,
//! bad values are refused before any write, and the OOM killer and the
//! pids limit bite a real process. Checks v1 files here, v2 files on a
//! cgroup v2 host.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use berth::kernel::cgroup::{ContainerCgroup, CpuQuota, Resources, SwapLimit};
use common::{CgroupGuard, require_root, unique_name};
use nix::unistd::Pid;

const MIB: u64 = 1024 * 1024;

fn v2() -> bool {
    PathBuf::from("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// A file of `path` in controller `ctl`'s hierarchy (v1) or the unified one.
fn cg_file(ctl: &str, path: &str, file: &str) -> PathBuf {
    let base = PathBuf::from("/sys/fs/cgroup");
    let base = if v2() { base } else { base.join(ctl) };
    base.join(path).join(file)
}

fn read(ctl: &str, path: &str, file: &str) -> Result<String> {
    let p = cg_file(ctl, path, file);
    let text = fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))?;
    Ok(text.trim().to_string())
}

/// A new cgroup `<unique>/c1`, removed with its parent however the test ends.
fn new_cgroup(prefix: &str) -> Result<(CgroupGuard, ContainerCgroup)> {
    let parent = unique_name(prefix);
    let guard = CgroupGuard(parent.clone());
    let cg = ContainerCgroup::create(&format!("{parent}/c1"))?;
    Ok((guard, cg))
}

/// A child killed and reaped when the test ends, however it ends.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `sh -c script` held at a `read` until it is in the cgroup, so
/// nothing it does is charged elsewhere. Returns it and its stdin; one
/// line on that stdin lets it go.
fn spawn_in(cg: &ContainerCgroup, script: &str) -> Result<(ChildGuard, ChildStdin)> {
    let mut child = Command::new("sh")
        .args(["-c", &format!("read go; {script}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdin = child.stdin.take().context("no stdin")?;
    let pid = i32::try_from(child.id())?;
    let guard = ChildGuard(child);
    cg.add_process(Pid::from_raw(pid))?;
    Ok((guard, stdin))
}

fn wait_exit(child: &mut ChildGuard, limit: Duration) -> Result<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.0.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            bail!("child still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn every_limit_lands_in_its_file() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (_guard, cg) = new_cgroup("berth-cg")?;
    let path = cg.path().to_string();
    // A new v1 cpuset cgroup is empty until filled: create filled each level.
    let parent = path.trim_end_matches("/c1");
    for level in [parent, path.as_str()] {
        assert_ne!(read("cpuset", level, "cpuset.cpus")?, "", "{level}");
        assert_ne!(read("cpuset", level, "cpuset.mems")?, "", "{level}");
    }
    let full = Resources {
        memory_limit: Some(64 * MIB),
        memory_reservation: Some(32 * MIB),
        memory_swap: Some(SwapLimit::Bytes(96 * MIB)),
        cpu_quota: Some(CpuQuota {
            quota_us: 50_000,
            period_us: 100_000,
        }),
        cpu_shares: Some(512),
        pids_limit: Some(100),
        cpuset_cpus: Some("0".into()),
        cpuset_mems: Some("0".into()),
        io_weight: Some(300),
        // Not every kernel has a weight-based I/O scheduler.
        optional: vec!["io_weight".into()],
    };
    // Whether this kernel has a weight file for the new cgroup, seen by
    // the test itself (not by berth's warning): with one, the weight must
    // land in it; without, berth must say it skipped the optional limit.
    let io_file = if v2() {
        ["io.weight"].as_slice()
    } else {
        ["blkio.weight", "blkio.bfq.weight"].as_slice()
    }
    .iter()
    .map(|f| cg_file("blkio", &path, f))
    .find(|p| p.exists());
    let warnings = cg.apply_resources(&full)?;
    let io_warned = warnings.iter().any(|w| w.contains("io_weight"));
    assert_eq!(
        io_warned,
        io_file.is_none(),
        "weight file {io_file:?}, warnings {warnings:?}"
    );
    if v2() {
        assert_eq!(read("", &path, "memory.max")?, (64 * MIB).to_string());
        assert_eq!(read("", &path, "memory.low")?, (32 * MIB).to_string());
        assert_eq!(read("", &path, "memory.swap.max")?, (32 * MIB).to_string());
        assert_eq!(read("", &path, "memory.oom.group")?, "1");
        assert_eq!(read("", &path, "cpu.max")?, "50000 100000");
        assert_eq!(read("", &path, "cpu.weight")?, "20");
        if io_file.is_some() {
            assert!(read("", &path, "io.weight")?.contains("default 2930"));
        }
    } else {
        assert_eq!(
            read("memory", &path, "memory.limit_in_bytes")?,
            (64 * MIB).to_string()
        );
        assert_eq!(
            read("memory", &path, "memory.soft_limit_in_bytes")?,
            (32 * MIB).to_string()
        );
        assert_eq!(
            read("memory", &path, "memory.memsw.limit_in_bytes")?,
            (96 * MIB).to_string()
        );
        assert_eq!(read("cpu", &path, "cpu.cfs_quota_us")?, "50000");
        assert_eq!(read("cpu", &path, "cpu.cfs_period_us")?, "100000");
        assert_eq!(read("cpu", &path, "cpu.shares")?, "512");
        if let Some(file) = &io_file {
            let weight = fs::read_to_string(file)?;
            assert!(
                weight.trim().ends_with("300"),
                "{}: {weight}",
                file.display()
            );
        }
    }
    assert_eq!(read("pids", &path, "pids.max")?, "100");
    assert_eq!(read("cpuset", &path, "cpuset.cpus")?, "0");
    assert_eq!(read("cpuset", &path, "cpuset.mems")?, "0");
    assert_eq!(cg.stats().memory_limit_bytes, Some(64 * MIB));
    assert_eq!(cg.stats().pids_limit, Some(100));
    cg.remove()?;
    assert!(!cg.exists());
    Ok(())
}

/// v1 rejects memsw below memory at every step, so lowering and raising
/// both need the right order of writes.
#[test]
fn memory_and_swap_can_be_lowered_and_raised() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (_guard, cg) = new_cgroup("berth-cg")?;
    let file = if v2() {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    };
    for (memory, total) in [(64, 96), (32, 32), (128, 256), (16, 16)] {
        let r = Resources {
            memory_limit: Some(memory * MIB),
            memory_swap: Some(SwapLimit::Bytes(total * MIB)),
            ..Default::default()
        };
        cg.apply_resources(&r)
            .with_context(|| format!("memory {memory} MiB, total {total} MiB"))?;
        assert_eq!(read("memory", cg.path(), file)?, (memory * MIB).to_string());
        if !v2() {
            let memsw = read("memory", cg.path(), "memory.memsw.limit_in_bytes")?;
            assert_eq!(memsw, (total * MIB).to_string());
        }
    }
    Ok(())
}

/// Takes the I/O controller away from the cgroup, as a host without it
/// would: v1 by removing its blkio directory, v2 by disabling io below
/// the parent.
fn take_io_away(path: &str) -> Result<()> {
    if v2() {
        let parent = path.trim_end_matches("/c1");
        let control = cg_file("", parent, "cgroup.subtree_control");
        fs::write(&control, "-io").with_context(|| format!("write {}", control.display()))?;
    } else {
        let dir = PathBuf::from("/sys/fs/cgroup/blkio").join(path);
        fs::remove_dir(&dir).with_context(|| format!("rmdir {}", dir.display()))?;
    }
    Ok(())
}

#[test]
fn a_missing_file_fails_by_name_or_warns_when_optional() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (_guard, cg) = new_cgroup("berth-cg")?;
    take_io_away(cg.path())?;
    let mut r = Resources {
        io_weight: Some(300),
        pids_limit: Some(50),
        ..Default::default()
    };
    let err = cg
        .apply_resources(&r)
        .expect_err("io_weight has nowhere to go");
    let msg = err.to_string();
    assert!(msg.contains(cg.path()), "{msg}");
    assert!(msg.contains("io_weight needs the"), "{msg}");
    assert!(msg.contains(if v2() { "io" } else { "blkio" }), "{msg}");
    // Checked before any write: pids.max is untouched.
    assert_eq!(read("pids", cg.path(), "pids.max")?, "max");

    r.optional = vec!["io_weight".into()];
    let warnings = cg.apply_resources(&r)?;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("io_weight"), "{warnings:?}");
    assert!(warnings[0].contains("optional"), "{warnings:?}");
    assert_eq!(read("pids", cg.path(), "pids.max")?, "50");
    Ok(())
}

#[test]
fn invalid_values_are_refused_with_the_limit_name() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (_guard, cg) = new_cgroup("berth-cg")?;
    let bad_period = Resources {
        cpu_quota: Some(CpuQuota {
            quota_us: 50_000,
            period_us: 500,
        }),
        ..Default::default()
    };
    let msg = cg.apply_resources(&bad_period).unwrap_err().to_string();
    assert!(msg.contains("cpus is invalid: period_us 500"), "{msg}");
    let bad_list = Resources {
        cpuset_cpus: Some("1-0".into()),
        ..Default::default()
    };
    let msg = cg.apply_resources(&bad_list).unwrap_err().to_string();
    assert!(msg.contains("cpuset_cpus is invalid"), "{msg}");
    // Well-formed but beyond this machine: the kernel's EINVAL, explained.
    let too_many = Resources {
        cpuset_cpus: Some("4000".into()),
        ..Default::default()
    };
    let msg = cg.apply_resources(&too_many).unwrap_err().to_string();
    assert!(msg.contains("cpuset_cpus could not be set"), "{msg}");
    assert!(msg.contains("the parent cgroup has cpus"), "{msg}");
    Ok(())
}

#[test]
fn the_oom_killer_takes_a_process_over_its_memory_limit() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (_guard, cg) = new_cgroup("berth-cg")?;
    let r = Resources {
        memory_limit: Some(16 * MIB),
        memory_swap: Some(SwapLimit::Bytes(16 * MIB)),
        pids_limit: Some(16),
        ..Default::default()
    };
    cg.apply_resources(&r)?;
    assert_eq!(cg.oom_kills(), 0);
    // `tail` keeps the whole newline-free "line" in memory, growing until
    // killed; exec makes it the very child we wait for.
    let (mut child, mut go) = spawn_in(&cg, "exec tail /dev/zero")?;
    let before = cg.stats();
    assert_eq!(before.pids_current, 1, "{before:?}");
    assert_eq!(before.pids_limit, Some(16));
    assert_eq!(before.memory_limit_bytes, Some(16 * MIB));
    writeln!(go, "go")?;
    let status = wait_exit(&mut child, Duration::from_secs(30))?;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert!(cg.oom_kills() >= 1, "oom_kills {}", cg.oom_kills());
    let after = cg.stats();
    assert_eq!(after.memory_limit_bytes, Some(16 * MIB));
    assert!(after.memory_peak_bytes.unwrap_or(0) >= 8 * MIB, "{after:?}");
    assert!(after.cpu_usage_ns > 0, "{after:?}");
    cg.remove()?;
    Ok(())
}

#[test]
fn the_pids_limit_stops_forks() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let (_guard, cg) = new_cgroup("berth-cg")?;
    let r = Resources {
        pids_limit: Some(8),
        ..Default::default()
    };
    cg.apply_resources(&r)?;
    let script = "for i in $(seq 20); do sleep 5 & done; wait";
    let (_child, mut go) = spawn_in(&cg, script)?;
    writeln!(go, "go")?;
    let mut most = 0;
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        most = most.max(cg.stats().pids_current);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(most <= 8, "pids_current reached {most}");
    assert!(most >= 2, "the shell never forked: {most}");
    let events = read("pids", cg.path(), "pids.events")?;
    let refused: u64 = events
        .lines()
        .find_map(|l| l.strip_prefix("max "))
        .context("no max line in pids.events")?
        .parse()?;
    assert!(refused >= 1, "no fork was refused: {events}");
    cg.kill_all();
    cg.remove()?;
    assert!(!cg.exists());
    Ok(())
}
