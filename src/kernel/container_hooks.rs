//! Programs a container's first process runs itself before its own, as
//! OCI's createContainer and startContainer hooks. createContainer runs
//! once everything is mounted, in the container's namespaces but the
//! host's mount namespace: its path is a host path and the container's
//! finished tree is at /proc/PID/root, where a runtime's bundle rootfs
//! would be before pivot_root. startContainer runs right before exec,
//! confined as the container's process, its path inside the container.
//! Each runs to completion under its deadline, in order; the first failure
//! stops the start. No JSON here: the caller gives the bytes, with a hole
//! where the container's host pid goes, which only the child knows.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use super::command::{self, CommandError, Limits, Program};
use super::error::SysError;

/// Only the tail of a hook's output goes into the error: the record the
/// child sends is 1 KiB.
const MAX_OUTPUT_BYTES: usize = 512;

/// One program and how long it may take.
#[derive(Debug, Clone)]
pub struct ChildHook {
    pub program: Program,
    pub timeout: Duration,
}

/// Bytes with the container's host pid (decimal) between `head` and `tail`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PidTemplate {
    pub head: Vec<u8>,
    pub tail: Vec<u8>,
}

impl PidTemplate {
    pub fn render(&self, pid: i32) -> Vec<u8> {
        let mut out = self.head.clone();
        out.extend_from_slice(pid.to_string().as_bytes());
        out.extend_from_slice(&self.tail);
        out
    }
}

/// The hooks of one container and what they read.
#[derive(Debug, Clone, Default)]
pub struct ContainerHooks {
    pub create: Vec<ChildHook>,
    /// Each createContainer hook's stdin.
    pub create_stdin: PidTemplate,
    pub start: Vec<ChildHook>,
    pub start_stdin: PidTemplate,
    /// A file written on the host before the first hook runs: a runtime
    /// bundle's config.json, through which hooks find the container's root.
    pub bundle_file: Option<(PathBuf, PidTemplate)>,
}

impl ContainerHooks {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.start.is_empty()
    }
}

/// The host's mount namespace, which createContainer hooks run in; opened
/// by the supervisor before the clone (the child is already in its own).
pub fn open_host_mount_namespace() -> Result<Arc<OwnedFd>, SysError> {
    std::fs::File::open("/proc/self/ns/mnt")
        .map(|f| Arc::new(OwnedFd::from(f)))
        .map_err(|e| SysError::io("open", "/proc/self/ns/mnt", &e))
}

/// The child's pid as the host sees it: /proc is still the host's procfs
/// until the child mounts its own after pivot_root.
pub(super) fn host_pid() -> Result<i32, SysError> {
    let link =
        std::fs::read_link("/proc/self").map_err(|e| SysError::io("readlink", "/proc/self", &e))?;
    link.to_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| SysError::at("parse", "/proc/self", Errno::EINVAL))
}

/// Writes `bundle_file` with the pid; on the host, before pivot_root.
pub(super) fn write_bundle_file(hooks: &ContainerHooks, pid: i32) -> Result<(), SysError> {
    let Some((path, template)) = &hooks.bundle_file else {
        return Ok(());
    };
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, template.render(pid)).map_err(|e| SysError::io("write", &tmp, &e))?;
    std::fs::rename(&tmp, path).map_err(|e| SysError::io("rename", path, &e))
}

/// A failed hook: the errno (0 when the program ran and failed) and what
/// to tell the user.
pub(super) struct HookFailure {
    pub errno: Errno,
    pub detail: String,
}

/// Runs `hooks` in order with `stdin`; the first failure stops the rest.
pub(super) fn run_all(stage: &str, hooks: &[ChildHook], stdin: &[u8]) -> Result<(), HookFailure> {
    for hook in hooks {
        run_one(hook, stdin).map_err(|(errno, why)| HookFailure {
            errno,
            detail: format!("{stage} hook {}: {why}", hook.program.path().display()),
        })?;
    }
    Ok(())
}

fn run_one(hook: &ChildHook, stdin: &[u8]) -> Result<(), (Errno, String)> {
    let limits = Limits {
        deadline: Instant::now() + hook.timeout,
        max_stdout_bytes: MAX_OUTPUT_BYTES,
        max_stderr_bytes: 0,
    };
    match command::run(&hook.program, stdin, &limits) {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            let how = command::describe_status(out.status);
            Err((
                Errno::UnknownErrno,
                with_output(how, &out.stdout.into_bytes()),
            ))
        }
        Err(CommandError::TimedOut { stdout, .. }) => {
            let how = format!("timed out after {} s, killed", hook.timeout.as_secs());
            Err((Errno::ETIMEDOUT, with_output(how, &stdout.into_bytes())))
        }
        Err(CommandError::Spawn { source, .. }) => {
            let errno = Errno::from_raw(source.raw_os_error().unwrap_or(0));
            Err((errno, "cannot run it".into()))
        }
        Err(CommandError::Io { source, .. }) => Err((source.errno, source.to_string())),
    }
}

fn with_output(how: String, output: &[u8]) -> String {
    match command::output_line(output) {
        Some(line) => format!("{how}: output: {line}"),
        None => how,
    }
}
