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
}

/// A started exec: the pid to wait for, and the read end of its combined
/// stdout and stderr (non-blocking).
pub struct ExecHandle {
    pub pid: Pid,
    pub output: OwnedFd,
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
    let (out_read, out_write) = pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(setup)?;
    let (go_read, go_write) = pipe2(OFlag::O_CLOEXEC).map_err(setup)?;
    // SAFETY: the supervisor is single-threaded; the child only makes
    // system calls on memory prepared before the clone.
    let clone =
        unsafe { clone_process(0) }.map_err(|e| SpawnError::Setup(SysError::new("clone", e)))?;
    match clone {
        CloneResult::Child => {
            drop((out_read, go_write));
            let code = run_child(&ns, &go_read, &out_write, cfg, &strings);
            // SAFETY: _exit skips the supervisor's atexit state.
            unsafe { libc::_exit(code) }
        }
        CloneResult::Parent(pid) => {
            drop((out_write, go_read));
            if let Err(e) = place(pid) {
                let _ = kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
                return Err(SpawnError::Place(e));
            }
            let _ = write(go_write.as_fd(), &[GO_BYTE]);
            Ok(ExecHandle {
                pid,
                output: out_read,
            })
        }
    }
}

/// The joining process: namespaces, then fork the command and pass on
/// its exit status.
fn run_child(
    ns: &[(OwnedFd, libc::c_int)],
    go: &OwnedFd,
    out: &OwnedFd,
    cfg: &ExecConfig<'_>,
    strings: &ExecStrings,
) -> i32 {
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
    // SAFETY: single-threaded; the grandchild only runs prepared steps.
    match unsafe { clone_process(0) } {
        Ok(CloneResult::Child) => {
            let failure = match run_command(out, cfg, strings) {
                Ok(never) => match never {},
                Err(f) => f,
            };
            report(out, &failure.detail_or_stage(), failure.errno);
            if failure.errno == Errno::ENOENT {
                127
            } else {
                126
            }
        }
        Ok(CloneResult::Parent(pid)) => loop {
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
    out: &OwnedFd,
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
    dup2_stdin(&null).map_err(stdio)?;
    dup2_stdout(out).map_err(stdio)?;
    dup2_stderr(out).map_err(stdio)?;
    set_identity(cfg.process, cfg.security)?;
    exec_process(&strings.argv, &strings.envp, &strings.candidates)
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
