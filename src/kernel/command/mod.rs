//! Running a host program to completion under a deadline: stdin bytes in,
//! the bounded tails of stdout and stderr out, its whole process group
//! killed when the deadline passes. Synchronous, and it never blocks past
//! the deadline nor busy-waits (one poll(2) over the pipes and a pidfd).
//! Knows nothing of what the program is (a hook, a CNI plugin) nor of JSON.

mod captured;
mod session;
#[cfg(test)]
mod tests;

use std::ffi::CString;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Instant;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::unistd::pipe2;

pub use captured::Captured;

use crate::kernel::error::SysError;
use session::{Session, Streams};

/// What to run: the program, its argv and its whole environment (nothing of
/// the caller's environment is inherited).
#[derive(Debug, Clone)]
pub struct Program {
    path: PathBuf,
    arg0: Option<OsString>,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    cwd: Option<PathBuf>,
    merge_stderr: bool,
    mount_namespace: Option<Arc<OwnedFd>>,
}

impl Program {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Program {
            path: path.into(),
            arg0: None,
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            merge_stderr: false,
            mount_namespace: None,
        }
    }

    /// `argv[0]`; the path when unset.
    pub fn arg0(mut self, arg0: impl AsRef<OsStr>) -> Self {
        self.arg0 = Some(arg0.as_ref().to_owned());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sends stderr into the stdout pipe, so the capture keeps the two in
    /// the order they were written (what a person reading the tail wants).
    pub fn merge_stderr(mut self) -> Self {
        self.merge_stderr = true;
        self
    }

    /// Enters this mount namespace before exec: the program's path and its
    /// working directory are then resolved there (an OCI hook run from
    /// inside a container but named by a host path). Needs CAP_SYS_ADMIN.
    pub fn mount_namespace(mut self, ns: Arc<OwnedFd>) -> Self {
        self.mount_namespace = Some(ns);
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// How a program ended, for an error message: "exited with status 3",
/// "killed by signal 9 (SIGKILL)".
pub fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => match nix::sys::signal::Signal::try_from(sig) {
            Ok(s) => format!("killed by signal {sig} ({s})"),
            Err(_) => format!("killed by signal {sig}"),
        },
        (None, None) => format!("ended with {status}"),
    }
}

/// A program's output on one line for an error message: its non-blank
/// lines, trimmed, joined by " | "; None when it printed nothing.
pub fn output_line(output: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    (!lines.is_empty()).then(|| lines.join(" | "))
}

/// When the program must be done and how much of its output is kept.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub deadline: Instant,
    pub max_stdout_bytes: usize,
    pub max_stderr_bytes: usize,
}

/// A program that exited (or was killed by a signal) before the deadline.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Captured,
    /// Empty when stderr was merged into stdout.
    pub stderr: Captured,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("run {}: {source}", program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Setting up the pipes or exchanging data failed; the program's
    /// process group has been killed and the program reaped.
    #[error("{}: {source}", program.display())]
    Io {
        program: PathBuf,
        #[source]
        source: SysError,
    },
    /// The deadline passed: the process group has been killed and the
    /// program reaped; what it wrote until then is kept.
    #[error("{} did not finish in time; its process group was killed", program.display())]
    TimedOut {
        program: PathBuf,
        stdout: Captured,
        stderr: Captured,
    },
}

/// Runs `program` with `stdin` as its input until it exits or
/// `limits.deadline` passes.
///
/// The program leads its own process group, so a timeout also kills what it
/// forked. On a normal exit the group is left alone: what the program
/// started in the background is its business, and once the program has
/// exited the output is collected without waiting for those to close the
/// pipes. Killed grandchildren are reparented and reaped by init (or by
/// berth itself as PID 1 or subreaper), not here.
///
/// Writing to a pipe the program closed must give EPIPE, not kill berth:
/// Rust's runtime sets SIGPIPE to SIG_IGN before `main`, and std restores
/// the default in the program it spawns.
pub fn run(program: &Program, stdin: &[u8], limits: &Limits) -> Result<Output, CommandError> {
    let io_error = |source| CommandError::Io {
        program: program.path.clone(),
        source,
    };
    let (ours, theirs) = make_pipes(program.merge_stderr).map_err(io_error)?;
    let mut cmd = command(program, theirs).map_err(io_error)?;
    let child = cmd.spawn().map_err(|source| CommandError::Spawn {
        program: program.path.clone(),
        source,
    })?;
    // Closes our copies of the program's pipe ends, so EOF on a pipe means
    // the program (and whatever it forked) closed it.
    drop(cmd);
    let mut session = Session::new(child, ours, stdin, limits);
    match session.wait() {
        Ok(Some(status)) => Ok(session.into_output(status)),
        Ok(None) => {
            let (stdout, stderr) = session.into_captured();
            Err(CommandError::TimedOut {
                program: program.path.clone(),
                stdout,
                stderr,
            })
        }
        Err(e) => Err(io_error(e)),
    }
}

fn command(program: &Program, theirs: Streams) -> Result<Command, SysError> {
    let mut cmd = Command::new(&program.path);
    if let Some(arg0) = &program.arg0 {
        cmd.arg0(arg0);
    }
    cmd.args(&program.args)
        .env_clear()
        .envs(program.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::from(theirs.stdin))
        .stdout(Stdio::from(theirs.stdout))
        // Its own group, so a timeout kills whatever it forked too.
        .process_group(0);
    if let Some(stderr) = theirs.stderr {
        cmd.stderr(Stdio::from(stderr));
    }
    match &program.mount_namespace {
        Some(ns) => enter_before_exec(&mut cmd, ns.clone(), program.cwd.as_deref())?,
        None => {
            if let Some(dir) = &program.cwd {
                cmd.current_dir(dir);
            }
        }
    }
    Ok(cmd)
}

/// setns(2) in the forked child, then the chdir std would have done before
/// it (entering a mount namespace resets the working directory to its root).
fn enter_before_exec(
    cmd: &mut Command,
    ns: Arc<OwnedFd>,
    cwd: Option<&Path>,
) -> Result<(), SysError> {
    let cwd = CString::new(cwd.unwrap_or(Path::new("/")).as_os_str().as_bytes())
        .map_err(|_| SysError::new("chdir", nix::errno::Errno::EINVAL))?;
    // SAFETY: the closure runs in the forked child before exec and makes
    // only two async-signal-safe syscalls on memory allocated before fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNS) != 0 || libc::chdir(cwd.as_ptr()) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

/// Three pipes (two when stderr is merged): the program's ends stay
/// blocking, as programs expect; ours are non-blocking, for the poll loop.
/// All are close-on-exec; std dup2s the program's ends onto 0, 1 and 2.
fn make_pipes(merge_stderr: bool) -> Result<(Streams, Streams), SysError> {
    let pipe = || pipe2(OFlag::O_CLOEXEC).map_err(|e| SysError::new("create a pipe", e));
    let (stdin_theirs, stdin_ours) = pipe()?;
    let (stdout_ours, stdout_theirs) = pipe()?;
    let (stderr_ours, stderr_theirs) = if merge_stderr {
        let dup = stdout_theirs
            .try_clone()
            .map_err(|e| SysError::io("duplicate", "the stdout pipe", &e))?;
        (None, dup)
    } else {
        let (r, w) = pipe()?;
        (Some(r), w)
    };
    let ours = Streams {
        stdin: stdin_ours,
        stdout: stdout_ours,
        stderr: stderr_ours,
    };
    for fd in ours.iter() {
        fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
            .map_err(|e| SysError::new("make a pipe non-blocking", e))?;
    }
    let theirs = Streams {
        stdin: stdin_theirs,
        stdout: stdout_theirs,
        stderr: Some(stderr_theirs),
    };
    Ok((ours, theirs))
}

impl Streams {
    fn iter(&self) -> impl Iterator<Item = &OwnedFd> {
        [Some(&self.stdin), Some(&self.stdout), self.stderr.as_ref()]
            .into_iter()
            .flatten()
    }
}
