//! OCI runtime-spec hooks: runs a spec's prestart, poststart and poststop
//! executables on the host with the container's state on stdin, and checks
//! their spec. When each stage runs, and what a failure does, is the
//! lifecycle's business (docs/plugins.md); no spec parsing here.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Seek, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Pid, pipe2};
use serde::Serialize;

use crate::supervisor::spec::service::{HookSpec, HooksSpec};
use crate::supervisor::spec::validate::{Problem, problem};

/// The runtime-spec version whose state format hooks receive.
pub const OCI_VERSION: &str = "1.0.2";
pub const DEFAULT_HOOK_TIMEOUT_SECS: u64 = 10;
pub const MAX_HOOK_TIMEOUT_SECS: u64 = 300;
/// Only the tail of a hook's output goes into the error: enough to show
/// why it failed, bounded so a chatty hook cannot bloat logs or memory.
pub const MAX_HOOK_OUTPUT_BYTES: usize = 4096;
/// How often a running hook is checked for having exited while its output
/// pipe stays open (a background child of the hook may hold it).
const POLL_SLICE_MS: u16 = 50;

/// The container's state as the runtime spec defines it ("State" in
/// runtime.md), written to each hook's stdin as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    /// The container's name.
    pub id: String,
    pub status: HookStatus,
    /// The container's init as the host sees it; absent once it is gone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// The container's directory: the closest thing berth has to a bundle.
    pub bundle: PathBuf,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HookStatus {
    Creating,
    Created,
    Running,
    Stopped,
}

impl HookState {
    pub fn new(id: &str, status: HookStatus, pid: Option<i32>, bundle: &Path) -> Self {
        HookState {
            oci_version: OCI_VERSION.into(),
            id: id.into(),
            status,
            pid,
            bundle: bundle.into(),
            annotations: BTreeMap::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum HookError {
    #[error("cannot run: {0}")]
    Spawn(#[source] io::Error),
    #[error("{0}")]
    Setup(String),
    #[error("{}{}", describe_status(*status), output_suffix(output))]
    Failed { status: ExitStatus, output: Vec<u8> },
    #[error(
        "timed out after {}, its process group was killed{}",
        humantime::format_duration(*after),
        output_suffix(output)
    )]
    TimedOut { after: Duration, output: Vec<u8> },
}

/// Runs `hooks` in order, as the runtime spec's lifecycle says: at
/// "prestart" the first failure stops the rest and is returned (the
/// container must not start); at "poststart" and "poststop" every hook runs
/// and the failures come back joined, for the caller to log as a warning
/// and otherwise carry on as if they had succeeded.
pub fn run_hooks(stage: &str, hooks: &[HookSpec], state: &HookState) -> Result<(), String> {
    let fail_fast = match stage {
        "prestart" => true,
        "poststart" | "poststop" => false,
        _ => return Err(format!("unknown hook stage {stage:?}")),
    };
    let json = serde_json::to_vec(state).map_err(|e| format!("{stage} hooks: state: {e}"))?;
    let mut failures = Vec::new();
    for hook in hooks {
        if let Err(e) = run_hook(hook, &json, &state.bundle) {
            let message = format!("{stage} hook {}: {e}", hook.path);
            if fail_fast {
                return Err(message);
            }
            failures.push(message);
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

fn run_hook(hook: &HookSpec, state_json: &[u8], bundle: &Path) -> Result<(), HookError> {
    let timeout = Duration::from_secs(hook.timeout.unwrap_or(DEFAULT_HOOK_TIMEOUT_SECS));
    let (out_read, out_write) = pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| HookError::Setup(format!("create output pipe: {e}")))?;
    let out_write_2 = out_write
        .try_clone()
        .map_err(|e| HookError::Setup(format!("duplicate output pipe: {e}")))?;
    let mut cmd = Command::new(&hook.path);
    let (arg0, rest) = match hook.args.split_first() {
        Some((first, rest)) => (first.as_str(), rest),
        None => (hook.path.as_str(), &[][..]),
    };
    cmd.arg0(arg0)
        .args(rest)
        // The runtime spec gives hooks exactly `env`: nothing of berth's
        // own environment leaks into them.
        .env_clear()
        .stdin(state_file(state_json)?)
        .stdout(Stdio::from(out_write))
        .stderr(Stdio::from(out_write_2))
        // Its own group, so a timeout kills whatever it forked too.
        .process_group(0);
    for entry in &hook.env {
        let (key, value) = split_env(entry)
            .ok_or_else(|| HookError::Setup(format!("env entry {entry:?} is not KEY=VALUE")))?;
        cmd.env(key, value);
    }
    // runc and crun run hooks from the bundle directory; so does berth.
    if bundle.is_dir() {
        cmd.current_dir(bundle);
    }
    let mut child = cmd.spawn().map_err(HookError::Spawn)?;
    // Drops our copies of the pipe's write end, so EOF means the hook (and
    // anything it forked) closed its output.
    drop(cmd);
    let (outcome, output) = wait_with_output(&mut child, &out_read, Instant::now() + timeout);
    match outcome {
        Outcome::Exited(s) if s.success() => Ok(()),
        Outcome::Exited(status) => Err(HookError::Failed { status, output }),
        Outcome::TimedOut => Err(HookError::TimedOut {
            after: timeout,
            output,
        }),
        Outcome::Lost(e) => Err(HookError::Setup(format!("wait: {e}"))),
    }
}

/// The state JSON in an anonymous file rather than a pipe: the hook may
/// read it or not, and berth never blocks writing it.
fn state_file(state_json: &[u8]) -> Result<File, HookError> {
    let setup = |e: &dyn std::fmt::Display| HookError::Setup(format!("state file: {e}"));
    let fd = memfd_create("berth-hook-state", MFdFlags::MFD_CLOEXEC).map_err(|e| setup(&e))?;
    let mut file = File::from(fd);
    file.write_all(state_json).map_err(|e| setup(&e))?;
    file.rewind().map_err(|e| setup(&e))?;
    Ok(file)
}

fn split_env(entry: &str) -> Option<(&str, &str)> {
    entry.split_once('=').filter(|(key, _)| !key.is_empty())
}

enum Outcome {
    Exited(ExitStatus),
    /// Its process group has been killed.
    TimedOut,
    /// Waiting failed (someone else reaped it); its group has been killed.
    Lost(io::Error),
}

/// Collects the hook's output until it exits or `deadline` passes.
fn wait_with_output(child: &mut Child, out: &OwnedFd, deadline: Instant) -> (Outcome, Vec<u8>) {
    let mut output = Vec::new();
    let mut open = true;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                // What it wrote just before exiting is still in the pipe;
                // the deadline stops a background child that keeps writing.
                while open
                    && Instant::now() < deadline
                    && read_ready(out, 0, &mut output, &mut open)
                {}
                return (Outcome::Exited(status), output);
            }
            Ok(None) => {}
            Err(e) => {
                kill_group(child);
                return (Outcome::Lost(e), output);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            kill_group(child);
            return (Outcome::TimedOut, output);
        }
        let slice =
            u16::try_from(left.as_millis()).map_or(POLL_SLICE_MS, |ms| ms.min(POLL_SLICE_MS));
        if open {
            read_ready(out, slice.max(1), &mut output, &mut open);
        } else {
            std::thread::sleep(Duration::from_millis(u64::from(slice.max(1))));
        }
    }
}

/// Waits up to `ms` for output and reads one chunk of it, keeping only the
/// last MAX_HOOK_OUTPUT_BYTES. Returns whether anything was read.
fn read_ready(out: &OwnedFd, ms: u16, output: &mut Vec<u8>, open: &mut bool) -> bool {
    let mut fds = [PollFd::new(out.as_fd(), PollFlags::POLLIN)];
    if !matches!(poll(&mut fds, ms), Ok(n) if n > 0) {
        return false;
    }
    let mut buf = [0u8; 4096];
    match nix::unistd::read(out, &mut buf) {
        Ok(0) | Err(_) => {
            *open = false;
            false
        }
        Ok(n) => {
            output.extend_from_slice(&buf[..n]);
            let excess = output.len().saturating_sub(MAX_HOOK_OUTPUT_BYTES);
            output.drain(..excess);
            true
        }
    }
}

fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    // SIGKILL cannot be caught, so this wait is short; it keeps the hook
    // from lingering as a zombie the reaper would have to explain.
    let _ = child.kill();
    let _ = child.wait();
}

fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => match Signal::try_from(sig) {
            Ok(s) => format!("killed by signal {sig} ({s})"),
            Err(_) => format!("killed by signal {sig}"),
        },
        (None, None) => format!("ended with {status}"),
    }
}

/// ": output: ..." with the tail on one line, or nothing when it was quiet.
fn output_suffix(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        String::new()
    } else {
        format!(": output: {}", lines.join(" | "))
    }
}

/// Config errors in a spec's hooks, at ["hooks", STAGE, INDEX, FIELD].
/// Whether `path` exists is checked when the hook runs: it is on the host
/// and may appear later (a package installed after the spec was written).
pub fn check_hooks(h: &HooksSpec) -> Vec<Problem> {
    let mut problems = Vec::new();
    let stages = [
        ("prestart", &h.prestart),
        ("poststart", &h.poststart),
        ("poststop", &h.poststop),
    ];
    for (stage, hooks) in stages {
        for (i, hook) in hooks.iter().enumerate() {
            let index = i.to_string();
            for (field, message) in check_hook(hook) {
                problems.push(problem(&["hooks", stage, &index, field], message));
            }
        }
    }
    problems
}

fn check_hook(hook: &HookSpec) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    if !hook.path.starts_with('/') {
        problems.push(("path", "must be an absolute path on the host".into()));
    }
    let has_nul = |s: &String| s.contains('\0');
    if has_nul(&hook.path) || hook.args.iter().any(has_nul) || hook.env.iter().any(has_nul) {
        problems.push((
            "path",
            "must not contain NUL bytes (nor may args or env)".into(),
        ));
    }
    if let Some(bad) = hook.env.iter().find(|e| split_env(e).is_none()) {
        problems.push(("env", format!("{bad:?} is not KEY=VALUE")));
    }
    // In a raw environ the first of two equal keys wins for getenv(3); the
    // hook gets one entry per key, so a duplicate would be ambiguous.
    let mut keys = std::collections::BTreeSet::new();
    if let Some((key, _)) = hook
        .env
        .iter()
        .filter_map(|e| split_env(e))
        .find(|(k, _)| !keys.insert(*k))
    {
        problems.push(("env", format!("{key} is set twice")));
    }
    if let Some(t) = hook.timeout
        && !(1..=MAX_HOOK_TIMEOUT_SECS).contains(&t)
    {
        let message = format!("must be 1 to {MAX_HOOK_TIMEOUT_SECS} seconds");
        problems.push(("timeout", message));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(path: &str) -> HookSpec {
        HookSpec {
            path: path.into(),
            args: vec![],
            env: vec![],
            timeout: None,
        }
    }

    #[test]
    fn state_serializes_as_the_runtime_spec_says() {
        let state = HookState::new("web", HookStatus::Running, Some(42), Path::new("/b"));
        let v: serde_json::Value = serde_json::to_value(&state).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"ociVersion": "1.0.2", "id": "web", "status": "running",
                "pid": 42, "bundle": "/b", "annotations": {}})
        );
        let stopped = HookState::new("web", HookStatus::Stopped, None, Path::new("/b"));
        let v = serde_json::to_value(&stopped).unwrap();
        assert!(v.get("pid").is_none());
        assert_eq!(v["status"], "stopped");
    }

    #[test]
    fn check_hooks_points_at_the_field() {
        let mut bad = hook("hooks/x");
        bad.env = vec!["NOEQUALS".into(), "A=1".into(), "A=2".into()];
        bad.timeout = Some(0);
        let mut slow = hook("/bin/true");
        slow.timeout = Some(301);
        let spec = HooksSpec {
            prestart: vec![hook("/bin/true"), bad],
            poststart: vec![],
            poststop: vec![slow],
        };
        let got: Vec<String> = check_hooks(&spec)
            .into_iter()
            .map(|(p, _)| p.join("."))
            .collect();
        assert_eq!(
            got,
            [
                "hooks.prestart.1.path",
                "hooks.prestart.1.env",
                "hooks.prestart.1.env",
                "hooks.prestart.1.timeout",
                "hooks.poststop.0.timeout"
            ]
        );
        // A missing executable is a start-time error, not a config error.
        assert!(
            check_hooks(&HooksSpec {
                prestart: vec![hook("/nonexistent/hook")],
                ..HooksSpec::default()
            })
            .is_empty()
        );
    }

    #[test]
    fn output_tail_is_one_line() {
        assert_eq!(output_suffix(b"\n  a\n\nb  \n"), ": output: a | b");
        assert_eq!(output_suffix(b"  \n"), "");
    }

    #[test]
    fn unknown_stage_is_an_error() {
        let state = HookState::new("x", HookStatus::Creating, Some(1), Path::new("/"));
        assert!(
            run_hooks("prestop", &[], &state)
                .unwrap_err()
                .contains("prestop")
        );
    }
}
