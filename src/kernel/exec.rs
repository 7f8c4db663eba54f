//! Running a further process inside a running container (health checks,
//! like `docker exec`): it joins the container's namespaces and cgroup and
//! gets the same identity, capabilities, Landlock and seccomp as the
//! container's own processes, so it can do nothing they could not.
//!
//! A process cannot enter a PID namespace itself, only its children can:
//! the clone joins the namespaces and forks the command, waits for it and
//! exits with its status. Both die with their parent (PDEATHSIG), so
//! killing the first on a timeout ends the command too.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, dup2_stderr, dup2_stdin, dup2_stdout, pipe2, read, write};

use super::child::{Failure, exec_process, set_identity};
use super::config::{ProcessConfig, SecurityConfig};
use super::error::SysError;
use super::handshake::GO_BYTE;
use super::spawn::{ExecStrings, SpawnError, exec_strings};
use super::sys::{CloneResult, clone_process};

/// What to run and as whom; `process.cwd` is inside the container.
pub struct ExecConfig<'a> {
    pub process: &'a ProcessConfig,
    pub security: &'a SecurityConfig,
    /// Join the container's user namespace too.
    pub userns: bool,
    pub stdio: ExecStdio,
}

/// Where the command's standard streams go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecStdio {
    /// stdin /dev/null; stdout and stderr into one non-blocking pipe the
    /// supervisor reads (health checks).
    Combined,
    /// A pipe each for stdout and stderr (and stdin when asked), whose
    /// other ends, blocking, are for a client (`berth exec`).
    Separate { stdin: bool },
    /// A pty of the container's devpts for all three: `output` is then a
    /// socket on which the master arrives (SCM_RIGHTS), or a message why
    /// none could be opened.
    Terminal,
}

/// A started exec: the pid to wait for, and the read end of its stdout
/// (with stderr when Combined); with Separate, the read end of its stderr
/// and the write end of its stdin.
pub struct ExecHandle {
    pub pid: Pid,
    pub output: OwnedFd,
    pub stderr: Option<OwnedFd>,
    pub stdin: Option<OwnedFd>,
}

/// The command's ends of its streams (None: /dev/null).
struct ChildStdio {
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: Option<OwnedFd>,
    /// `stdout` is the socket for the pty master (Terminal).
    terminal: bool,
}

impl ChildStdio {
    fn err(&self) -> &OwnedFd {
        self.stderr.as_ref().unwrap_or(&self.stdout)
    }
}

type ClientEnds = (OwnedFd, Option<OwnedFd>, Option<OwnedFd>);

/// The pipes for `stdio`: the command's ends and the other ends.
fn make_pipes(stdio: ExecStdio) -> Result<(ChildStdio, ClientEnds), Errno> {
    let flags = match stdio {
        ExecStdio::Combined => OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        ExecStdio::Separate { .. } => OFlag::O_CLOEXEC,
        ExecStdio::Terminal => {
            use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
            let (ours, theirs) = socketpair(
                AddressFamily::Unix,
                SockType::Stream,
                None,
                SockFlag::SOCK_CLOEXEC,
            )?;
            let child = ChildStdio {
                stdin: None,
                stdout: theirs,
                stderr: None,
                terminal: true,
            };
            return Ok((child, (ours, None, None)));
        }
    };
    let (out_read, out_write) = pipe2(flags)?;
    let ExecStdio::Separate { stdin } = stdio else {
        let child = ChildStdio {
            stdin: None,
            stdout: out_write,
            stderr: None,
            terminal: false,
        };
        return Ok((child, (out_read, None, None)));
    };
    let (err_read, err_write) = pipe2(flags)?;
    let (in_read, in_write) = match stdin {
        true => {
            let (r, w) = pipe2(flags)?;
            (Some(r), Some(w))
        }
        false => (None, None),
    };
    let child = ChildStdio {
        stdin: in_read,
        stdout: out_write,
        stderr: Some(err_write),
        terminal: false,
    };
    Ok((child, (out_read, Some(err_read), in_write)))
}

/// Namespaces in the order they are joined; the user namespace last, as
/// joining it gives up the privileges the others need.
const NAMESPACES: [(&str, libc::c_int); 6] = [
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("pid", libc::CLONE_NEWPID),
    ("mnt", libc::CLONE_NEWNS),
];

/// Starts `cfg` in the container whose first process is `target`. `place`
/// puts the new process in the container's cgroup before it runs.
pub fn exec_in_container(
    target: Pid,
    cfg: &ExecConfig<'_>,
    place: impl FnOnce(Pid) -> Result<(), String>,
) -> Result<ExecHandle, SpawnError> {
    let strings = exec_strings(cfg.process)?;
    let mut ns = Vec::new();
    for (name, flag) in NAMESPACES
        .iter()
        .copied()
        .chain(cfg.userns.then_some(("user", libc::CLONE_NEWUSER)))
    {
        let path = format!("/proc/{target}/ns/{name}");
        let f = File::open(&path).map_err(|e| SpawnError::Setup(SysError::io("open", path, &e)))?;
        ns.push((OwnedFd::from(f), flag));
    }
    let setup = |e| SpawnError::Setup(SysError::new("pipe", e));
    let (child_stdio, (out_read, err_read, in_write)) = make_pipes(cfg.stdio).map_err(setup)?;
    let (go_read, go_write) = pipe2(OFlag::O_CLOEXEC).map_err(setup)?;
    // SAFETY: the supervisor is single-threaded; the child only makes
    // system calls on memory prepared before the clone.
    let clone =
        unsafe { clone_process(0) }.map_err(|e| SpawnError::Setup(SysError::new("clone", e)))?;
    match clone {
        CloneResult::Child => {
            drop((out_read, err_read, in_write, go_write));
            let code = run_child(&ns, &go_read, &child_stdio, cfg, &strings);
            // SAFETY: _exit skips the supervisor's atexit state.
            unsafe { libc::_exit(code) }
        }
        CloneResult::Parent(pid) => {
            drop((child_stdio, go_read));
            if let Err(e) = place(pid) {
                let _ = kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
                return Err(SpawnError::Place(e));
            }
            let _ = write(go_write.as_fd(), &[GO_BYTE]);
            Ok(ExecHandle {
                pid,
                output: out_read,
                stderr: err_read,
                stdin: in_write,
            })
        }
    }
}

/// The joining process: namespaces, then fork the command and pass on
/// its exit status.
fn run_child(
    ns: &[(OwnedFd, libc::c_int)],
    go: &OwnedFd,
    stdio: &ChildStdio,
    cfg: &ExecConfig<'_>,
    strings: &ExecStrings,
) -> i32 {
    let out = stdio.err();
    // SAFETY: PR_SET_PDEATHSIG takes plain integers.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let mut b = [0u8; 1];
    if !matches!(read(go, &mut b), Ok(1)) {
        return 125;
    }
    for (fd, flag) in ns {
        // SAFETY: setns takes a descriptor we own and a namespace flag.
        if unsafe { libc::setns(fd.as_raw_fd(), *flag) } != 0 {
            report(out, "join container namespace", Errno::last());
            return 125;
        }
    }
    let mut tty = match stdio.terminal {
        true => match terminal_stdio(out) {
            Ok(t) => Some(t),
            Err(e) => {
                report(out, "open a terminal in the container's /dev/pts", e);
                return 125;
            }
        },
        false => None,
    };
    let stdio = tty.as_ref().unwrap_or(stdio);
    // SAFETY: single-threaded; the grandchild only runs prepared steps.
    match unsafe { clone_process(0) } {
        Ok(CloneResult::Child) => {
            let failure = match run_command(stdio, cfg, strings) {
                Ok(never) => match never {},
                Err(f) => f,
            };
            report(stdio.err(), &failure.detail_or_stage(), failure.errno);
            if failure.errno == Errno::ENOENT {
                127
            } else {
                126
            }
        }
        Ok(CloneResult::Parent(pid)) => loop {
            // Only the command holds the slave: its exit is the master's EOF.
            drop(tty.take());
            match waitpid(pid, None) {
                Ok(WaitStatus::Exited(_, code)) => break code,
                Ok(WaitStatus::Signaled(_, sig, _)) => break 128 + sig as i32,
                Err(Errno::EINTR) | Ok(_) => continue,
                Err(_) => break 125,
            }
        },
        Err(e) => {
            report(out, "fork", e);
            125
        }
    }
}

fn run_command(
    io: &ChildStdio,
    cfg: &ExecConfig<'_>,
    strings: &ExecStrings,
) -> Result<std::convert::Infallible, Failure> {
    // SAFETY: PR_SET_PDEATHSIG takes plain integers.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let stdio = |e: Errno| Failure {
        stage: super::handshake::Stage::Stdio,
        errno: e,
        detail: "set up stdio".into(),
    };
    // The container's own /dev/null: the mount namespace is joined.
    let null = File::open("/dev/null")
        .map_err(|e| stdio(Errno::from_raw(e.raw_os_error().unwrap_or(5))))?;
    match &io.stdin {
        Some(fd) => dup2_stdin(fd),
        None => dup2_stdin(&null),
    }
    .map_err(stdio)?;
    dup2_stdout(&io.stdout).map_err(stdio)?;
    dup2_stderr(io.err()).map_err(stdio)?;
    if io.terminal {
        super::exec_tty::take_terminal().map_err(|e| Failure {
            stage: super::handshake::Stage::Stdio,
            errno: e,
            detail: "take the terminal".into(),
        })?;
    }
    set_identity(cfg.process, cfg.security)?;
    exec_process(&strings.argv, &strings.envp, &strings.candidates)
}

/// A pty of the joined mount namespace: its master sent on `channel`,
/// its slave the command's stdio.
fn terminal_stdio(channel: &OwnedFd) -> Result<ChildStdio, Errno> {
    let (master, slave) = super::exec_tty::open_pty()?;
    super::exec_tty::send_fd(channel, &master)?;
    Ok(ChildStdio {
        stdin: Some(slave.try_clone().map_err(|_| Errno::EMFILE)?),
        stdout: slave,
        stderr: None,
        terminal: true,
    })
}

fn report(out: &OwnedFd, what: &str, errno: Errno) {
    let text = format!("{what}: {}\n", super::error::errno_text(errno));
    let _ = write(out.as_fd(), text.as_bytes());
}

impl Failure {
    fn detail_or_stage(&self) -> String {
        if self.detail.is_empty() {
            self.stage.describe().to_string()
        } else {
            self.detail.clone()
        }
    }
}

/// A small regular file of the running container (its /etc/passwd, say),
/// read as the container sees it: resolved beneath its root, so absolute
/// links and ".." never leave it; a FIFO or device is refused, never
/// waited on. None when absent, not regular, or over `max_bytes`.
pub fn read_container_file(target: Pid, path: &str, max_bytes: u64) -> Option<Vec<u8>> {
    use nix::fcntl::{OpenHow, ResolveFlag, openat2};
    use std::io::Read;
    let root = super::hotplug_node::open_container_root(target).ok()?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = openat2(root.as_fd(), path.trim_start_matches('/'), how).ok()?;
    let file = File::from(fd);
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > max_bytes {
        return None;
    }
    let mut out = Vec::new();
    file.take(max_bytes).read_to_end(&mut out).ok()?;
    Some(out)
}
