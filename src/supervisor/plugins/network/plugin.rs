//! Running one CNI plugin binary: the environment of CNI SPEC.md
//! "Section 2", stdin in, result or error JSON out, a deadline after which
//! the plugin's whole process group is killed. Synchronous, but it never
//! blocks past the deadline (stdin, stdout and stderr are polled together).

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::Deserialize;

use super::PluginError;

/// A result or error larger than this is refused (results are a few KiB).
const MAX_PLUGIN_OUTPUT_BYTES: usize = 1 << 20;
/// Error text kept from stderr when stdout has no error JSON.
const MAX_STDERR_DETAIL_BYTES: usize = 1024;
/// libcni retries an exec that fails with "text file busy" (a plugin
/// binary being replaced); so does berth, briefly.
const ETXTBSY_RETRIES: u32 = 5;
/// Plugins exec iptables, ip6tables and IPAM plugins through PATH.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The per-call part of the environment.
pub(super) struct Call<'a> {
    pub command: &'static str,
    pub container_id: &'a str,
    pub netns: Option<&'a Path>,
    pub ifname: &'a str,
    pub cni_path: &'a [PathBuf],
    pub timeout: Duration,
}

/// `type` looked up in each CNI_PATH directory in turn.
pub(super) fn find_plugin(kind: &str, cni_path: &[PathBuf]) -> Result<PathBuf, PluginError> {
    if kind.is_empty() || kind.contains('/') || kind.starts_with('.') {
        return Err(PluginError::BadType(kind.to_string()));
    }
    cni_path
        .iter()
        .map(|d| d.join(kind))
        .find(|p| p.is_file())
        .ok_or_else(|| PluginError::NotFound {
            search: join_path(cni_path),
        })
}

fn join_path(dirs: &[PathBuf]) -> String {
    let parts: Vec<_> = dirs.iter().map(|d| d.to_string_lossy()).collect();
    parts.join(":")
}

/// Runs the plugin and returns its stdout (the result; empty for DEL).
pub(super) fn run_plugin(bin: &Path, call: &Call, stdin: &[u8]) -> Result<Vec<u8>, PluginError> {
    let deadline = Instant::now() + call.timeout;
    let mut child = spawn(bin, call)?;
    let mut pipes = Pipes {
        stdin: child.stdin.take(),
        input: stdin,
        written: 0,
        stdout: child.stdout.take(),
        out: Vec::new(),
        stderr: child.stderr.take(),
        err: Vec::new(),
    };
    let status = pipes
        .pump(deadline)
        .and_then(|()| wait_until(&mut child, deadline));
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            kill_group(&mut child);
            return Err(match e {
                PluginError::TimedOut(_) => PluginError::TimedOut(call.timeout),
                other => other,
            });
        }
    };
    if status.success() {
        return Ok(pipes.out);
    }
    Err(failure(&pipes.out, &pipes.err, status))
}

fn spawn(bin: &Path, call: &Call) -> Result<Child, PluginError> {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or(DEFAULT_PATH.into()),
        )
        .env("CNI_COMMAND", call.command)
        .env("CNI_CONTAINERID", call.container_id)
        .env("CNI_IFNAME", call.ifname)
        .env("CNI_PATH", join_path(call.cni_path))
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a timeout also kills the IPAM plugin it runs.
        .process_group(0);
    if let Some(ns) = call.netns {
        cmd.env("CNI_NETNS", ns);
    }
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Ok(c) => return Ok(c),
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < ETXTBSY_RETRIES => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50 * u64::from(tries)));
            }
            Err(source) => {
                return Err(PluginError::Spawn {
                    path: bin.to_path_buf(),
                    source,
                });
            }
        }
    }
}

struct Pipes<'a> {
    stdin: Option<ChildStdin>,
    input: &'a [u8],
    written: usize,
    stdout: Option<ChildStdout>,
    out: Vec<u8>,
    stderr: Option<ChildStderr>,
    err: Vec<u8>,
}

impl Pipes<'_> {
    /// Feeds stdin and drains stdout and stderr until both reach EOF.
    fn pump(&mut self, deadline: Instant) -> Result<(), PluginError> {
        for fd in [
            self.stdin.as_ref().map(|f| f.as_fd()),
            self.stdout.as_ref().map(|f| f.as_fd()),
            self.stderr.as_ref().map(|f| f.as_fd()),
        ]
        .into_iter()
        .flatten()
        {
            fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
                .map_err(|e| PluginError::Io(e.into()))?;
        }
        if self.input.is_empty() {
            self.stdin = None;
        }
        while self.stdout.is_some() || self.stderr.is_some() {
            let ready = self.wait_ready(deadline)?;
            if ready[0] {
                self.feed()?;
            }
            if ready[1] && drain(&mut self.stdout, &mut self.out, MAX_PLUGIN_OUTPUT_BYTES)? {
                self.stdout = None;
            }
            if ready[2] && drain(&mut self.stderr, &mut self.err, MAX_PLUGIN_OUTPUT_BYTES)? {
                self.stderr = None;
            }
        }
        Ok(())
    }

    /// Which of stdin, stdout, stderr can make progress.
    fn wait_ready(&self, deadline: Instant) -> Result<[bool; 3], PluginError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(PluginError::TimedOut(Duration::ZERO));
        }
        let slots = [
            (self.stdin.as_ref().map(|f| f.as_fd()), PollFlags::POLLOUT),
            (self.stdout.as_ref().map(|f| f.as_fd()), PollFlags::POLLIN),
            (self.stderr.as_ref().map(|f| f.as_fd()), PollFlags::POLLIN),
        ];
        let mut which = Vec::with_capacity(3);
        let mut fds = Vec::with_capacity(3);
        for (i, (fd, events)) in slots.iter().enumerate() {
            if let Some(fd) = fd {
                which.push(i);
                fds.push(PollFd::new(*fd, *events));
            }
        }
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(PluginError::Io(e.into())),
        }
        let mut ready = [false; 3];
        for (i, p) in which.into_iter().zip(&fds) {
            ready[i] = p.revents().is_some_and(|r| !r.is_empty());
        }
        Ok(ready)
    }

    fn feed(&mut self) -> Result<(), PluginError> {
        let Some(w) = self.stdin.as_mut() else {
            return Ok(());
        };
        match w.write(&self.input[self.written..]) {
            Ok(n) => self.written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
            // A plugin that exits without reading (a usage error) closes
            // its stdin: its exit status and output tell why.
            Err(e) if e.kind() == ErrorKind::BrokenPipe => self.written = self.input.len(),
            Err(e) => return Err(PluginError::Io(e)),
        }
        if self.written >= self.input.len() {
            self.stdin = None; // EOF: skel reads stdin to the end
        }
        Ok(())
    }
}

/// Reads what is available; true at EOF.
fn drain<R: Read>(src: &mut Option<R>, buf: &mut Vec<u8>, max: usize) -> Result<bool, PluginError> {
    let Some(r) = src.as_mut() else {
        return Ok(true);
    };
    let mut chunk = [0u8; 8192];
    loop {
        match r.read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) if buf.len() + n > max => return Err(PluginError::OutputTooLarge(max)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(PluginError::Io(e)),
        }
    }
}

fn wait_until(child: &mut Child, deadline: Instant) -> Result<ExitStatus, PluginError> {
    loop {
        if let Some(status) = child.try_wait().map_err(PluginError::Io)? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            return Err(PluginError::TimedOut(Duration::ZERO));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The spec's error JSON (`code`, `msg`, `details`) if stdout holds one,
/// else stderr's text and the exit status.
fn failure(out: &[u8], err: &[u8], status: ExitStatus) -> PluginError {
    #[derive(Deserialize)]
    struct ErrorJson {
        code: Option<u64>,
        #[serde(default)]
        msg: String,
        #[serde(default)]
        details: String,
    }
    let status = status.to_string();
    match serde_json::from_slice::<ErrorJson>(out) {
        Ok(e) if e.code.is_some() || !e.msg.is_empty() => PluginError::Failed {
            code: e.code,
            msg: e.msg,
            details: e.details,
            status,
        },
        _ => {
            let text = if err.iter().all(u8::is_ascii_whitespace) {
                out
            } else {
                err
            };
            let text = String::from_utf8_lossy(&text[..text.len().min(MAX_STDERR_DETAIL_BYTES)]);
            PluginError::Failed {
                code: None,
                msg: text.trim().to_string(),
                details: String::new(),
                status,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn call(dir: &Path, timeout: Duration) -> Call<'static> {
        Call {
            command: "ADD",
            container_id: "berth-x",
            netns: None,
            ifname: "eth0",
            cni_path: Vec::leak(vec![dir.to_path_buf()]),
            timeout,
        }
    }

    #[test]
    fn plugins_get_env_and_stdin_and_errors_are_parsed() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "echo",
            r#"printf '{"env":"%s %s %s","in":' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_IFNAME"; cat; printf '}'"#,
        );
        script(
            dir.path(),
            "bad",
            r#"cat >/dev/null; echo '{"cniVersion":"1.0.0","code":7,"msg":"no bridge","details":"x"}'; exit 1"#,
        );
        script(dir.path(), "crash", "echo oops >&2; exit 2");
        let c = call(dir.path(), Duration::from_secs(5));
        let bin = find_plugin("echo", c.cni_path).unwrap();
        let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(300_000));
        let out = run_plugin(&bin, &c, big.as_bytes()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["env"], "ADD berth-x eth0");
        assert_eq!(v["in"]["pad"].as_str().unwrap().len(), 300_000);
        let e = run_plugin(&find_plugin("bad", c.cni_path).unwrap(), &c, b"{}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed with code 7 (invalid network config): no bridge: x"
        );
        let e = run_plugin(&find_plugin("crash", c.cni_path).unwrap(), &c, b"{}").unwrap_err();
        assert_eq!(e.to_string(), "failed (exit status: 2): oops");
        assert!(matches!(
            find_plugin("nope", c.cni_path),
            Err(PluginError::NotFound { .. })
        ));
        assert!(matches!(
            find_plugin("../sh", c.cni_path),
            Err(PluginError::BadType(_))
        ));
    }

    #[test]
    fn a_hung_plugin_is_killed_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "hang", "sleep 30 & sleep 30");
        let c = call(dir.path(), Duration::from_millis(300));
        let t = Instant::now();
        let e = run_plugin(&find_plugin("hang", c.cni_path).unwrap(), &c, b"{}").unwrap_err();
        assert!(matches!(e, PluginError::TimedOut(_)), "{e}");
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
