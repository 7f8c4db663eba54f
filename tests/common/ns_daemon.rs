//! berth as PID 1 of its own PID and mount namespaces, for tests/pid1.rs:
//! started under `unshare --pid --fork --mount-proc`, its stderr collected
//! line by line with arrival times, and the signal the namespace ended
//! with (reboot(2) there kills the namespace's init).

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{TestEnv, wait_for};

pub fn children_of(pid: i32) -> Vec<(i32, String, char)> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...; comm may hold spaces, so split at ')'.
        let Some((head, tail)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head
            .split_once('(')
            .map(|x| x.1.to_string())
            .unwrap_or_default();
        let fields: Vec<&str> = tail.split_whitespace().collect();
        if fields.get(1).and_then(|pp| pp.parse::<i32>().ok()) == Some(pid) {
            out.push((p, comm, fields[0].chars().next().unwrap_or('?')));
        }
    }
    out
}

pub type Lines = Arc<Mutex<Vec<(Instant, String)>>>;

/// berth as PID 1 of its own PID and mount namespaces. Dropping it kills
/// the namespace (SIGKILL to its init) and the wrapper.
pub struct NsDaemon {
    wrapper: Option<Child>,
    pub berth_pid: i32,
    lines: Lines,
}

impl NsDaemon {
    pub fn start(env: &TestEnv) -> Result<NsDaemon> {
        let mut d = NsDaemon::spawn(env, &[])?;
        let wrapper_pid = d.wrapper.as_ref().map_or(0, |w| w.id() as i32);
        wait_for(Duration::from_secs(10), || {
            Ok(std::os::unix::net::UnixStream::connect(env.socket()).is_ok())
        })
        .with_context(|| format!("socket never appeared; stderr:\n{}", d.text()))?;
        d.berth_pid = children_of(wrapper_pid)
            .first()
            .map(|c| c.0)
            .context("berth under unshare")?;
        Ok(d)
    }

    /// Starts the namespace with `vars` added to berth's environment,
    /// without waiting for anything.
    pub fn spawn(env: &TestEnv, vars: &[(&str, &str)]) -> Result<NsDaemon> {
        let daemon = env.daemon_command();
        let mut wrapper = Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc"])
            .arg(daemon.get_program())
            .args(daemon.get_args())
            .envs(vars.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let lines: Lines = Arc::default();
        let stderr = wrapper.stderr.take().context("stderr")?;
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push((Instant::now(), line));
            }
        });
        Ok(NsDaemon {
            wrapper: Some(wrapper),
            berth_pid: 0,
            lines,
        })
    }

    pub fn text(&self) -> String {
        let lines = self.lines.lock().unwrap();
        lines.iter().map(|(_, l)| format!("{l}\n")).collect()
    }

    /// When a line containing `needle` arrived.
    pub fn when(&self, needle: &str) -> Option<Instant> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .find(|(_, l)| l.contains(needle))
            .map(|(t, _)| *t)
    }

    pub fn signal(&self, sig: Signal) -> Result<()> {
        Ok(kill(Pid::from_raw(self.berth_pid), sig)?)
    }

    /// Waits for the namespace to end; returns how the wrapper ended
    /// (util-linux unshare re-raises the signal its child died of).
    pub fn wait_end(&mut self, limit: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + limit;
        let wrapper = self.wrapper.as_mut().context("already waited")?;
        loop {
            if let Some(status) = wrapper.try_wait()? {
                self.wrapper = None;
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!(
                    "berth did not end within {limit:?}; stderr:\n{}",
                    self.text()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for NsDaemon {
    fn drop(&mut self) {
        if let Some(mut w) = self.wrapper.take() {
            // 0 (not found yet) would mean this test's own process group.
            if self.berth_pid > 0 {
                let _ = kill(Pid::from_raw(self.berth_pid), Signal::SIGKILL);
            }
            let _ = w.kill();
            let _ = w.wait();
        }
    }
}

/// reboot(2) as seen from outside the namespace: SIGHUP = restart,
/// SIGINT = power-off or halt.
pub fn ending(status: ExitStatus) -> Option<Signal> {
    status.signal().and_then(|s| Signal::try_from(s).ok())
}
