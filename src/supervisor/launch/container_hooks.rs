//! The createContainer and startContainer hooks of a container (its spec's,
//! then its CDI devices'), turned into what its first process runs: each
//! program with its argv, environment and deadline, the OCI state each
//! reads on stdin, and the bundle config.json hooks read to find the root
//! (nvidia-cdi-hook and its kind look for `root.path` there).

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::kernel::container_hooks::{ChildHook, ContainerHooks, PidTemplate};
use crate::supervisor::plugins::hooks::{
    DEFAULT_HOOK_TIMEOUT_SECS, HookState, HookStatus, OCI_VERSION, hook_program,
};
use crate::supervisor::spec::service::{HookSpec, HooksSpec};

/// Stands for the pid in the JSON until the child knows it; a number no
/// pid can be, in a place no string can hold it (keys are quoted).
const PID_MARK: i32 = i32::MIN;

pub fn container_hooks(
    name: &str,
    hooks: &HooksSpec,
    bundle: &Path,
) -> Result<ContainerHooks, String> {
    if hooks.create_container.is_empty() && hooks.start_container.is_empty() {
        return Ok(ContainerHooks::default());
    }
    let programs = |list: &[HookSpec], cwd: Option<&Path>| -> Result<Vec<ChildHook>, String> {
        list.iter().map(|h| child_hook(h, cwd)).collect()
    };
    let state = |status| {
        let state = HookState::new(name, status, Some(PID_MARK), bundle);
        split_at_pid(&serde_json::to_vec(&state).map_err(|e| e.to_string())?)
    };
    // The root as the host's mount namespace sees the running child.
    let bundle_config = json!({
        "ociVersion": OCI_VERSION,
        "root": { "path": format!("/proc/{PID_MARK}/root") },
    });
    let config_bytes = serde_json::to_vec(&bundle_config).map_err(|e| e.to_string())?;
    Ok(ContainerHooks {
        // runc and crun run hooks from the bundle directory.
        create: programs(&hooks.create_container, Some(bundle))?,
        create_stdin: state(HookStatus::Creating)?,
        start: programs(&hooks.start_container, None)?,
        start_stdin: state(HookStatus::Created)?,
        bundle_file: Some((bundle.join("config.json"), split_at_pid(&config_bytes)?)),
    })
}

fn child_hook(hook: &HookSpec, cwd: Option<&Path>) -> Result<ChildHook, String> {
    let mut program = hook_program(hook)
        .map_err(|i| format!("hook {}: env entry {i} is not KEY=VALUE", hook.path))?;
    if let Some(dir) = cwd {
        program = program.current_dir(dir);
    }
    let secs = hook.timeout.unwrap_or(DEFAULT_HOOK_TIMEOUT_SECS);
    Ok(ChildHook {
        program,
        timeout: Duration::from_secs(secs),
    })
}

fn split_at_pid(bytes: &[u8]) -> Result<PidTemplate, String> {
    let mark = PID_MARK.to_string();
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    match text.split_once(&mark) {
        Some((head, tail)) if !tail.contains(&mark) => Ok(PidTemplate {
            head: head.as_bytes().to_vec(),
            tail: tail.as_bytes().to_vec(),
        }),
        _ => Err("hook state: the pid's place is not unique".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(path: &str) -> HookSpec {
        HookSpec {
            path: path.into(),
            args: vec!["h".into(), "--x".into()],
            env: vec!["A=1".into()],
            timeout: Some(3),
        }
    }

    #[test]
    fn state_and_bundle_config_name_the_pid_the_child_fills_in() {
        let hooks = HooksSpec {
            create_container: vec![hook("/usr/bin/h")],
            start_container: vec![hook("/bin/h")],
            ..HooksSpec::default()
        };
        let got = container_hooks("web", &hooks, Path::new("/var/lib/berth/c/web")).unwrap();
        let state: serde_json::Value =
            serde_json::from_slice(&got.create_stdin.render(4242)).unwrap();
        assert_eq!(state["pid"], 4242);
        assert_eq!(state["status"], "creating");
        assert_eq!(state["id"], "web");
        assert_eq!(state["bundle"], "/var/lib/berth/c/web");
        let start: serde_json::Value = serde_json::from_slice(&got.start_stdin.render(7)).unwrap();
        assert_eq!(start["status"], "created");
        let (path, config) = got.bundle_file.unwrap();
        assert_eq!(path, Path::new("/var/lib/berth/c/web/config.json"));
        let config: serde_json::Value = serde_json::from_slice(&config.render(4242)).unwrap();
        assert_eq!(config["root"]["path"], "/proc/4242/root");
        assert_eq!(got.create[0].timeout, Duration::from_secs(3));
        assert_eq!(got.create.len() + got.start.len(), 2);
    }

    #[test]
    fn no_in_container_hooks_means_nothing_for_the_child() {
        let hooks = HooksSpec {
            prestart: vec![hook("/usr/bin/h")],
            ..HooksSpec::default()
        };
        let got = container_hooks("web", &hooks, Path::new("/b")).unwrap();
        assert!(got.is_empty() && got.bundle_file.is_none());
    }
}
