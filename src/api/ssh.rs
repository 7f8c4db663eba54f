//! `--host ssh://[user@]host[:port]`: the client's connection is the
//! stdin/stdout of `ssh ... berth system dial-stdio` on the device (as
//! Docker does), which joins them to the device's control socket. The
//! system ssh client does the authentication; its own messages go to our
//! stderr.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest accepted host, user or URL.
const MAX_URL_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

/// `ssh://[user@]host[:port]` (an IPv6 host in brackets).
pub fn parse_ssh_url(url: &str) -> Result<SshTarget, String> {
    let bad = |why: &str| format!("--host {url:?}: {why}; expected ssh://[user@]host[:port]");
    if url.len() > MAX_URL_BYTES {
        return Err(bad("too long"));
    }
    let rest = url
        .strip_prefix("ssh://")
        .ok_or_else(|| bad("not ssh://"))?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()), h),
        None => (None, rest),
    };
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            (h, after.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| bad("bad port"))?),
        None => None,
    };
    let plain = |s: &str| {
        !s.is_empty()
            && !s.starts_with('-')
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-:%".contains(c))
    };
    // Never an option to ssh, never a path or a shell word.
    if !plain(host)
        || user
            .as_deref()
            .is_some_and(|u| !plain(u) || u.contains(':'))
    {
        return Err(bad("bad user or host"));
    }
    Ok(SshTarget {
        user,
        host: host.to_string(),
        port,
    })
}

/// The ssh process and its pipes.
pub struct SshLink {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
    host: String,
}

impl SshLink {
    /// Starts `ssh [$BERTH_SSH_OPTS] -T [-l user] [-p port] -- host
    /// berth system dial-stdio [--socket PATH]`; `$BERTH_REMOTE_BIN` names
    /// berth on the device when it is not on the ssh user's PATH.
    pub fn spawn(target: &SshTarget, socket: Option<&Path>) -> std::io::Result<SshLink> {
        let mut cmd = Command::new("ssh");
        if let Ok(opts) = std::env::var("BERTH_SSH_OPTS") {
            cmd.args(opts.split_whitespace());
        }
        cmd.arg("-T");
        if let Some(u) = &target.user {
            cmd.args(["-l", u]);
        }
        if let Some(p) = target.port {
            cmd.args(["-p", &p.to_string()]);
        }
        let bin = std::env::var("BERTH_REMOTE_BIN").unwrap_or_else(|_| "berth".into());
        let mut remote = format!("{} system dial-stdio", shell_quote(&bin));
        if let Some(s) = socket {
            remote.push_str(&format!(" --socket {}", shell_quote(&s.to_string_lossy())));
        }
        cmd.args(["--", &target.host, &remote]);
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
        let Some(stdout) = stdout else {
            return Err(std::io::Error::other("ssh without stdout"));
        };
        Ok(SshLink {
            child,
            stdin,
            stdout,
            host: target.host.clone(),
        })
    }

    pub fn read_fd(&self) -> BorrowedFd<'_> {
        self.stdout.as_fd()
    }

    pub fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.stdout.read(buf)
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match &mut self.stdin {
            Some(w) => w.write_all(bytes).and_then(|()| w.flush()),
            None => Err(std::io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// Why the stream ended: ssh's exit, once it has exited (its own
    /// message, e.g. "Permission denied (publickey)", is on our stderr).
    pub fn why_closed(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(s)) if s.code() == Some(255) => {
                    return format!(
                        "ssh to {} failed (exit 255; its message is above)",
                        self.host
                    );
                }
                Ok(Some(s)) => {
                    return format!(
                        "the remote `berth system dial-stdio` on {} ended ({s}; its message is above)",
                        self.host
                    );
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
        format!("the connection to {} closed", self.host)
    }
}

impl Drop for SshLink {
    fn drop(&mut self) {
        // Our end closed, dial-stdio and then ssh end; never wait long.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One word for the remote shell ssh runs the command with.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_urls() {
        let t = parse_ssh_url("ssh://root@10.0.0.2:2222").unwrap();
        assert_eq!(
            t,
            SshTarget {
                user: Some("root".into()),
                host: "10.0.0.2".into(),
                port: Some(2222)
            }
        );
        let t = parse_ssh_url("ssh://dev.local").unwrap();
        assert_eq!((t.user, t.host.as_str(), t.port), (None, "dev.local", None));
        let t = parse_ssh_url("ssh://u@[fe80::1]:22").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("fe80::1", Some(22)));
        for bad in [
            "tcp://x",
            "ssh://-oProxyCommand=x",
            "ssh://a b",
            "ssh://h:99999",
            "ssh://u;x@h",
            "ssh://",
        ] {
            assert!(parse_ssh_url(bad).is_err(), "{bad}");
        }
        assert_eq!(shell_quote("a'b"), "'a'\\''b'");
    }
}
