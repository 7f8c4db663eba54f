//! `exec`: a command run inside a running container for a client (like
//! `docker exec`), through kernel::exec as health checks are, with its
//! stdout, stderr (and stdin) pipes handed to the client; the daemon never
//! touches the bytes. Reaped like any child: its exit code is the client's
//! answer and an event.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use nix::unistd::Pid;

use crate::kernel::config::{ProcessConfig, SecurityConfig};
use crate::kernel::exec::{ExecConfig, ExecStdio, exec_in_container, read_container_file};
use crate::supervisor::events::kinds;
use crate::supervisor::launch::user::resolve_user;
use crate::supervisor::ops::{Supervisor, SupervisorError};
use crate::supervisor::runtime::container::State;
use crate::supervisor::runtime::health::ExecTemplate;

/// /etc/passwd and /etc/group bigger than this are not read.
const MAX_ACCOUNT_FILE_BYTES: u64 = 1 << 20;

/// What a client asked to run, and who it is (SO_PEERCRED).
pub struct ExecRequest {
    pub name: String,
    pub command: Vec<String>,
    /// `KEY=VALUE`, over the container's environment.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub stdin: bool,
    /// A pty of the container's for all three streams.
    pub tty: bool,
    pub peer_uid: u32,
    pub peer_pid: i32,
}

/// A started exec: the client's ends of its pipes, or (tty) the socket
/// its terminal's master arrives on, as `stdout`.
pub struct ExecStarted {
    pub pid: i32,
    pub stdout: OwnedFd,
    pub stderr: Option<OwnedFd>,
    pub stdin: Option<OwnedFd>,
}

/// An exec still running, by the pid the reaper will report.
pub(crate) struct RunningExec {
    pid: Pid,
    token: u64,
    container: String,
    peer_uid: u32,
    command: Vec<String>,
}

/// An exec that exited: the answer owed to request `token`.
pub struct ExecAnswer {
    pub token: u64,
    pub exit_code: i32,
}

impl Supervisor {
    /// Starts `req` in its container; the answer comes with the exit
    /// (take_exec_answers) under `token`.
    pub fn exec_start(
        &mut self,
        req: ExecRequest,
        token: u64,
    ) -> Result<ExecStarted, SupervisorError> {
        let cgroup_path = format!("{}/{}", self.options.cgroup_parent, req.name);
        let c = self.container(&req.name)?;
        let fail = |message: String| SupervisorError::Container {
            name: req.name.clone(),
            message,
        };
        let state = c.state();
        let (Some(pid), Some(tpl), State::Running) = (c.pid, &c.exec_template, state) else {
            let state = format!("{state:?}").to_lowercase();
            return Err(fail(format!("is {state}, not running: nothing to exec in")));
        };
        let process = exec_process(tpl, &req, pid).map_err(fail)?;
        let cfg = ExecConfig {
            process: &process,
            security: &exec_security(&tpl.security),
            userns: tpl.userns,
            stdio: match req.tty {
                true => ExecStdio::Terminal,
                false => ExecStdio::Separate { stdin: req.stdin },
            },
        };
        let cgroup = crate::kernel::cgroup::ContainerCgroup::load(&cgroup_path);
        let handle = exec_in_container(pid, &cfg, |p| {
            cgroup.add_process(p).map_err(|e| e.to_string())
        })
        .map_err(|e| fail(format!("exec: {e}")))?;
        let data = serde_json::json!({
            "exec_pid": handle.pid.as_raw(),
            "command": req.command,
            "user": req.user,
            "tty": req.tty,
            "peer": {"uid": req.peer_uid, "pid": req.peer_pid},
        });
        self.emit(kinds::CONTAINER_EXEC, Some(&req.name), data);
        self.execs.push(RunningExec {
            pid: handle.pid,
            token,
            container: req.name,
            peer_uid: req.peer_uid,
            command: req.command,
        });
        Ok(ExecStarted {
            pid: handle.pid.as_raw(),
            stdout: handle.output,
            stderr: handle.stderr,
            stdin: handle.stdin,
        })
    }

    /// A reaped child that was an exec: true if it was one.
    pub(crate) fn on_exec_exit(&mut self, pid: Pid, code: i32) -> bool {
        let Some(i) = self.execs.iter().position(|e| e.pid == pid) else {
            return false;
        };
        let e = self.execs.swap_remove(i);
        let data = serde_json::json!({
            "exec_pid": pid.as_raw(),
            "command": e.command,
            "peer": {"uid": e.peer_uid},
            "exit_code": code,
        });
        self.emit(kinds::CONTAINER_EXEC_EXITED, Some(&e.container), data);
        self.exec_answers.push(ExecAnswer {
            token: e.token,
            exit_code: code,
        });
        true
    }

    pub fn take_exec_answers(&mut self) -> Vec<ExecAnswer> {
        std::mem::take(&mut self.exec_answers)
    }
}

/// The container's Landlock rules without its signal and abstract-socket
/// scopes. A process that joins a container restricts itself and so gets
/// a Landlock domain of its own, beside the container's: with the scopes,
/// it could not signal the container's processes (`kill -HUP 1`, `nginx
/// -s reload`). What the scopes guard is already bounded for it: it is in
/// the container's PID namespace (it sees and signals only the container's
/// processes) and network namespace (abstract sockets are per network
/// namespace). Everything else (identity, capabilities, seccomp, the
/// filesystem and port rules) is the container's own.
pub fn exec_security(security: &SecurityConfig) -> SecurityConfig {
    let mut s = security.clone();
    if let Some(l) = s.landlock.as_mut() {
        l.scope_signal = false;
        l.scope_abstract_unix_socket = false;
    }
    s
}

/// The container's process settings with the request's command, user,
/// working directory and environment.
fn exec_process(tpl: &ExecTemplate, req: &ExecRequest, pid: Pid) -> Result<ProcessConfig, String> {
    if req.command.is_empty() {
        return Err("exec: no command".into());
    }
    let mut p = tpl.process.clone();
    p.args = req.command.clone();
    if let Some(user) = &req.user {
        let read = |path: &str| {
            read_container_file(pid, path, MAX_ACCOUNT_FILE_BYTES)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        let u = resolve_user(user, &read("/etc/passwd"), &read("/etc/group"))
            .map_err(|e| format!("exec: user: {e}"))?;
        (p.uid, p.gid, p.additional_gids) = (u.uid, u.gid, u.additional_gids);
        set_env(&mut p.env, &format!("HOME={}", u.home));
    }
    if let Some(dir) = &req.workdir {
        if !dir.starts_with('/') {
            return Err(format!("exec: workdir {dir:?} is not an absolute path"));
        }
        p.cwd = PathBuf::from(dir);
    }
    for kv in &req.env {
        if !kv.contains('=') || kv.starts_with('=') {
            return Err(format!("exec: env {kv:?} is not KEY=VALUE"));
        }
        set_env(&mut p.env, kv);
    }
    if let Some(path) = p.env.iter().find_map(|e| e.strip_prefix("PATH=")) {
        p.search_path = path.to_string();
    }
    Ok(p)
}

/// Replaces (or adds) the variable `kv` names.
fn set_env(env: &mut Vec<String>, kv: &str) {
    let key = kv.split('=').next().unwrap_or_default();
    env.retain(|e| e.split('=').next() != Some(key));
    env.push(kv.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_keeps_the_landlock_rules_but_not_the_scopes() {
        use crate::kernel::landlock::LandlockConfig;
        let ll = LandlockConfig {
            read_only: vec!["/".into()],
            read_write: vec!["/tmp".into()],
            bind_tcp: Some(vec![80]),
            scope_abstract_unix_socket: true,
            scope_signal: true,
            ..LandlockConfig::default()
        };
        let security = SecurityConfig {
            capabilities: Vec::new(),
            no_new_privs: true,
            seccomp: None,
            landlock: Some(ll.clone()),
            rlimits: Vec::new(),
        };
        let exec = exec_security(&security).landlock.expect("landlock kept");
        assert!(!exec.scope_signal && !exec.scope_abstract_unix_socket);
        let unscoped = LandlockConfig {
            scope_signal: false,
            scope_abstract_unix_socket: false,
            ..ll
        };
        assert_eq!(exec, unscoped);
        assert!(security.landlock.is_some_and(|l| l.scope_signal));
    }

    #[test]
    fn env_replaces_by_key() {
        let mut env = vec!["A=1".to_string(), "PATH=/bin".to_string()];
        set_env(&mut env, "A=2");
        set_env(&mut env, "B=");
        assert_eq!(env, ["PATH=/bin", "A=2", "B="]);
    }
}
