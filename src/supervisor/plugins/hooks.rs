//! OCI runtime-spec hooks: runs a spec's prestart, poststart and poststop
//! executables on the host with the container's state on stdin, and checks
//! their spec. When each stage runs, and what a failure does, is the
//! lifecycle's business (docs/plugins.md); no spec parsing here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::kernel::SysError;
use crate::kernel::command::{self, CommandError, Limits, Program};
use crate::supervisor::spec::service::HookSpec;

/// The runtime-spec version whose state format hooks receive.
pub const OCI_VERSION: &str = "1.0.2";
pub const DEFAULT_HOOK_TIMEOUT_SECS: u64 = 10;
pub use crate::supervisor::spec::hooks::MAX_HOOK_TIMEOUT_SECS;
/// Only the tail of a hook's output goes into the error: enough to show
/// why it failed, bounded so a chatty hook cannot bloat logs or memory.
pub const MAX_HOOK_OUTPUT_BYTES: usize = 4096;

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
    Spawn(#[source] std::io::Error),
    /// By position: the entry itself may be a credential.
    #[error("env entry {0} is not KEY=VALUE")]
    BadEnv(usize),
    #[error("{0}")]
    Exchange(#[source] SysError),
    #[error("{}{}", command::describe_status(*status), output_suffix(output))]
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

/// The hook's program: its argv (argv[0] defaults to the path), exactly
/// its `env` (the runtime spec's rule: nothing of berth's own environment
/// leaks in), stderr merged into stdout. Err(i): env entry i is not
/// KEY=VALUE.
pub fn hook_program(hook: &HookSpec) -> Result<Program, usize> {
    let (arg0, rest) = match hook.args.split_first() {
        Some((first, rest)) => (first.as_str(), rest),
        None => (hook.path.as_str(), &[][..]),
    };
    let mut program = Program::new(&hook.path)
        .arg0(arg0)
        .args(rest)
        .merge_stderr();
    for (i, entry) in hook.env.iter().enumerate() {
        let (key, value) = split_env(entry).ok_or(i)?;
        program = program.env(key, value);
    }
    Ok(program)
}

fn run_hook(hook: &HookSpec, state_json: &[u8], bundle: &Path) -> Result<(), HookError> {
    let timeout = Duration::from_secs(hook.timeout.unwrap_or(DEFAULT_HOOK_TIMEOUT_SECS));
    let mut program = hook_program(hook).map_err(HookError::BadEnv)?;
    // runc and crun run hooks from the bundle directory; so does berth.
    if bundle.is_dir() {
        program = program.current_dir(bundle);
    }
    let limits = Limits {
        deadline: Instant::now() + timeout,
        max_stdout_bytes: MAX_HOOK_OUTPUT_BYTES,
        max_stderr_bytes: 0, // merged into stdout
    };
    match command::run(&program, state_json, &limits) {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(HookError::Failed {
            status: out.status,
            output: out.stdout.into_bytes(),
        }),
        Err(CommandError::TimedOut { stdout, .. }) => Err(HookError::TimedOut {
            after: timeout,
            output: stdout.into_bytes(),
        }),
        Err(CommandError::Spawn { source, .. }) => Err(HookError::Spawn(source)),
        Err(CommandError::Io { source, .. }) => Err(HookError::Exchange(source)),
    }
}

fn split_env(entry: &str) -> Option<(&str, &str)> {
    entry.split_once('=').filter(|(key, _)| !key.is_empty())
}

/// ": output: ..." with the tail on one line, or nothing when it was quiet.
fn output_suffix(output: &[u8]) -> String {
    command::output_line(output).map_or_else(String::new, |line| format!(": output: {line}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::spec::hooks::check_hooks;
    use crate::supervisor::spec::service::HooksSpec;

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
            create_container: vec![],
            start_container: vec![hook("bin/in-container")],
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
                "hooks.poststop.0.timeout",
                "hooks.startContainer.0.path"
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
