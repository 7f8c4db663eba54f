//! Running one CNI plugin binary: the environment of CNI SPEC.md
//! "Section 2", stdin in, result or error JSON out, a deadline after which
//! the plugin's whole process group is killed (kernel::command does the
//! running; this file says what a CNI call looks like).

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::PluginError;
use crate::kernel::command::{self, CommandError, Limits, Output, Program};

/// A result or error larger than this is refused (results are a few KiB).
const MAX_PLUGIN_OUTPUT_BYTES: usize = 1 << 20;
/// Error text kept from the tail of stderr when stdout has no error JSON.
const MAX_STDERR_DETAIL_BYTES: usize = 1024;
/// libcni retries an exec that fails with "text file busy" (a plugin
/// binary being replaced); so does berth, briefly.
const ETXTBSY_RETRIES: u32 = 5;
const ETXTBSY_BACKOFF: Duration = Duration::from_millis(50);
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
    let limits = Limits {
        deadline: Instant::now() + call.timeout,
        max_stdout_bytes: MAX_PLUGIN_OUTPUT_BYTES,
        max_stderr_bytes: MAX_STDERR_DETAIL_BYTES,
    };
    let out = run_retrying_busy(&program(bin, call), stdin, &limits, call.timeout)?;
    if !out.stdout.is_complete() {
        return Err(PluginError::OutputTooLarge(MAX_PLUGIN_OUTPUT_BYTES));
    }
    if out.status.success() {
        return Ok(out.stdout.into_bytes());
    }
    Err(failure(out.stdout.bytes(), out.stderr.bytes(), out.status))
}

fn program(bin: &Path, call: &Call) -> Program {
    let path = std::env::var_os("PATH").unwrap_or(DEFAULT_PATH.into());
    let program = Program::new(bin)
        .env("PATH", path)
        .env("CNI_COMMAND", call.command)
        .env("CNI_CONTAINERID", call.container_id)
        .env("CNI_IFNAME", call.ifname)
        .env("CNI_PATH", join_path(call.cni_path))
        .current_dir("/");
    match call.netns {
        Some(ns) => program.env("CNI_NETNS", ns),
        None => program,
    }
}

/// Runs the plugin, retrying an exec that fails with ETXTBSY after a short
/// pause that grows with each try. The pauses never reach past the call's
/// deadline, so the caller is blocked no longer than `timeout` in all.
fn run_retrying_busy(
    program: &Program,
    stdin: &[u8],
    limits: &Limits,
    timeout: Duration,
) -> Result<Output, PluginError> {
    let mut tries = 0;
    loop {
        let err = match command::run(program, stdin, limits) {
            Ok(out) => return Ok(out),
            Err(e) => e,
        };
        let left = limits.deadline.saturating_duration_since(Instant::now());
        match err {
            CommandError::Spawn { source, .. }
                if source.raw_os_error() == Some(libc::ETXTBSY)
                    && tries < ETXTBSY_RETRIES
                    && !left.is_zero() =>
            {
                tries += 1;
                std::thread::sleep((ETXTBSY_BACKOFF * tries).min(left));
            }
            CommandError::Spawn { program, source } => {
                return Err(PluginError::Spawn {
                    path: program,
                    source,
                });
            }
            CommandError::Io { source, .. } => return Err(PluginError::Io(source)),
            CommandError::TimedOut { .. } => return Err(PluginError::TimedOut(timeout)),
        }
    }
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
            let tail = &text[text.len().saturating_sub(MAX_STDERR_DETAIL_BYTES)..];
            let text = String::from_utf8_lossy(tail);
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

    #[test]
    fn too_much_output_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "chatty", "head -c 2000000 /dev/zero");
        let c = call(dir.path(), Duration::from_secs(20));
        let e = run_plugin(&find_plugin("chatty", c.cni_path).unwrap(), &c, b"{}").unwrap_err();
        assert!(matches!(e, PluginError::OutputTooLarge(_)), "{e}");
    }

    #[test]
    fn a_busy_binary_is_retried_within_the_deadline() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "busy", "exit 0");
        // Open for writing, the binary cannot be executed (ETXTBSY).
        let mut writer = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("busy"))
            .unwrap();
        let c = call(dir.path(), Duration::from_millis(300));
        let bin = find_plugin("busy", c.cni_path).unwrap();
        let t = Instant::now();
        let e = run_plugin(&bin, &c, b"{}").unwrap_err();
        let elapsed = t.elapsed();
        assert!(
            matches!(&e, PluginError::Spawn { source, .. } if source.raw_os_error() == Some(libc::ETXTBSY)),
            "{e}"
        );
        assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
        writer.write_all(b"\n").unwrap();
        drop(writer);
        run_plugin(&bin, &c, b"{}").unwrap();
    }
}
