//! Starting a container: resolve everything in the parent, clone into new
//! namespaces, place the child (cgroup), say "go", and wait for exec or for
//! a stage-tagged error record.

use std::ffi::{CString, NulError};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{Pid, pipe2, read, write};

use super::child::{self, ChildPlan};
use super::config::{ContainerConfig, ProcessConfig};
use super::error::SysError;
use super::handshake::{ErrorRecord, GO_BYTE, RECORD_BUF_BYTES};
use super::overlay::plan_overlay;
use super::rootfs::FsOwner;
pub use super::spawn_error::SpawnError;
use super::start_clock::{Mark, StartClock};
use super::sys::{CloneResult, clone_process};
use super::userns::{JoinFds, NamespaceHolder, UsernsConfig};

const CONTAINER_NAMESPACES: libc::c_int = libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWNET;
/// With a user namespace, net/UTS/IPC come from the holder instead, so
/// that they belong to the user namespace.
const USERNS_CONTAINER_NAMESPACES: libc::c_int = libc::CLONE_NEWNS | libc::CLONE_NEWPID;

/// A cloned container that waits for "go": the caller places it (cgroup,
/// network, prestart hooks) meanwhile, then releases or aborts it.
#[derive(Debug)]
pub struct PausedContainer {
    pid: Pid,
    sync_write: OwnedFd,
    starting: Starting,
}

/// A released container on its way to exec: the caller polls `fd()` and
/// calls `poll_result` when it is readable (or once the child exited).
#[derive(Debug)]
pub struct Starting {
    pid: Pid,
    err_read: OwnedFd,
    record: Vec<u8>,
    /// Lives until the child has exec'd, i.e. joined every namespace.
    holder: Option<NamespaceHolder>,
    clock: StartClock,
}

/// Clones the container described by `cfg` into its namespaces and leaves
/// it waiting for [`PausedContainer::release`]. Nothing here waits on the
/// child.
///
/// Must be called from a single-threaded process (the supervisor is one).
pub fn spawn_paused(cfg: &ContainerConfig) -> Result<PausedContainer, SpawnError> {
    let clock = StartClock::new().map_err(|e| SpawnError::Setup(SysError::new("mmap", e)))?;
    clock.mark(Mark::Spawn);
    let holder = match &cfg.userns {
        Some(u) => Some(NamespaceHolder::create(u).map_err(SpawnError::Setup)?),
        None => None,
    };
    let plan = build_plan(cfg, holder.as_ref().map(NamespaceHolder::raw), &clock)?;
    let mut namespaces = if holder.is_some() {
        USERNS_CONTAINER_NAMESPACES
    } else {
        CONTAINER_NAMESPACES
    };
    if cfg.host_network {
        namespaces &= !libc::CLONE_NEWNET;
    }
    let (sync_read, sync_write) =
        pipe2(OFlag::O_CLOEXEC).map_err(|e| SpawnError::Setup(SysError::new("pipe", e)))?;
    let (err_read, err_write) =
        pipe2(OFlag::O_CLOEXEC).map_err(|e| SpawnError::Setup(SysError::new("pipe", e)))?;
    // SAFETY: the supervisor is single-threaded (ARCHITECTURE.md), so the
    // child's copy of the address space holds no lock another thread owns.
    let clone = unsafe { clone_process(namespaces) };
    match clone.map_err(|e| SpawnError::Setup(SysError::new("clone", e)))? {
        CloneResult::Child => {
            drop(sync_write);
            drop(err_read);
            child::run(&plan, sync_read, err_write)
        }
        CloneResult::Parent(pid) => {
            clock.mark(Mark::Cloned);
            drop(sync_read);
            drop(err_write);
            if let Err(e) = fcntl(&err_read, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)) {
                let _ = kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
                return Err(SpawnError::Setup(SysError::new("fcntl error pipe", e)));
            }
            Ok(PausedContainer {
                pid,
                sync_write,
                starting: Starting {
                    pid,
                    err_read,
                    record: Vec::new(),
                    holder,
                    clock,
                },
            })
        }
    }
}

impl PausedContainer {
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The start's stamps, for the caller's own marks (`Mark::Begin`).
    pub fn clock(&self) -> &StartClock {
        &self.starting.clock
    }

    /// Says "go": the child mounts, pivots, drops privileges and execs.
    pub fn release(self) -> Result<Starting, SpawnError> {
        // Before the write: once "go" is written the child may run and
        // stamp ChildGo before this process is scheduled again.
        self.starting.clock.mark(Mark::Released);
        if let Err(e) = write(self.sync_write.as_fd(), &[GO_BYTE]) {
            let _ = kill(self.pid, Signal::SIGKILL);
            return Err(SpawnError::Setup(SysError::new(
                "signal container to start",
                e,
            )));
        }
        Ok(self.starting)
    }

    /// Kills the waiting child; the caller's reaper collects it.
    pub fn abort(self) {
        let _ = kill(self.pid, Signal::SIGKILL);
    }
}

impl Starting {
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The error pipe: readable when the child reported a failure or
    /// exec'd (EOF).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.err_read.as_fd()
    }

    /// Where the start spent its time, once it has exec'd.
    pub fn stages(&self) -> Vec<(&'static str, std::time::Duration)> {
        self.clock.stages()
    }

    /// Reads what the child wrote so far: None while it is still setting
    /// up, Some(Ok) once it exec'd, Some(Err) with its stage-tagged error.
    pub fn poll_result(&mut self) -> Option<Result<(), SpawnError>> {
        let mut buf = [0u8; RECORD_BUF_BYTES];
        loop {
            match read(self.err_read.as_fd(), &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = RECORD_BUF_BYTES.saturating_sub(self.record.len());
                    self.record.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return None,
                Err(e) => {
                    return Some(Err(SpawnError::Setup(SysError::new("read error pipe", e))));
                }
            }
        }
        self.holder = None;
        if self.record.is_empty() {
            self.clock.mark(Mark::Exec);
            return Some(Ok(()));
        }
        Some(Err(match ErrorRecord::decode(&self.record) {
            Some(r) => SpawnError::Child(r),
            None => SpawnError::Setup(SysError::new("read error pipe", Errno::EPROTO)),
        }))
    }
}

/// Starts the container described by `cfg` and returns its pid once it has
/// exec'd, waiting for it: `place` runs between the clone and "go". For
/// callers that may block (tests, one-shot tools); the supervisor uses
/// [`spawn_paused`] and polls instead.
pub fn spawn_container(
    cfg: &ContainerConfig,
    place: impl FnOnce(Pid) -> Result<(), String>,
) -> Result<Pid, SpawnError> {
    let paused = spawn_paused(cfg)?;
    let pid = paused.pid();
    if let Err(e) = place(pid) {
        paused.abort();
        let _ = waitpid(pid, None);
        return Err(SpawnError::Place(e));
    }
    let mut starting = paused.release()?;
    loop {
        let mut fds = [PollFd::new(starting.fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::NONE);
        match starting.poll_result() {
            None => continue,
            Some(Ok(())) => return Ok(pid),
            Some(Err(e)) => {
                // The child exits right after writing; reap it here so the
                // caller's reaper never sees a pid it was not told about.
                let _ = waitpid(pid, None);
                return Err(e);
            }
        }
    }
}

/// argv, envp and the PATH candidates for argv[0], as C strings, built in
/// the parent so the child only copies bytes.
pub(super) struct ExecStrings {
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    pub candidates: Vec<CString>,
}

pub(super) fn exec_strings(p: &ProcessConfig) -> Result<ExecStrings, SpawnError> {
    fn nul(what: &'static str) -> impl Fn(NulError) -> SpawnError {
        move |_| SpawnError::InvalidConfig(format!("{what} contains a NUL byte"))
    }
    let cstr = |s: &str, what: &'static str| CString::new(s).map_err(nul(what));
    let argv: Vec<CString> = p
        .args
        .iter()
        .map(|a| cstr(a, "argument"))
        .collect::<Result<_, _>>()?;
    let program = p
        .args
        .first()
        .ok_or_else(|| SpawnError::InvalidConfig("no command to run".into()))?;
    let envp = p
        .env
        .iter()
        .map(|e| cstr(e, "environment"))
        .collect::<Result<_, _>>()?;
    let candidates = exec_candidates(program, &p.search_path)
        .iter()
        .map(|c| cstr(c, "command path"))
        .collect::<Result<_, _>>()?;
    Ok(ExecStrings {
        argv,
        envp,
        candidates,
    })
}

fn build_plan<'a>(
    cfg: &'a ContainerConfig,
    userns: Option<JoinFds>,
    clock: &'a StartClock,
) -> Result<ChildPlan<'a>, SpawnError> {
    let ExecStrings {
        mut argv,
        envp,
        candidates: exec_candidates,
    } = exec_strings(&cfg.process)?;
    if cfg.init.is_some() {
        let init_argv = super::container_init::init_argv(&cfg.process.args);
        argv = init_argv
            .into_iter()
            .map(CString::new)
            .collect::<Result<_, _>>()
            .map_err(|_| SpawnError::InvalidConfig("argv contains a NUL byte".into()))?;
    }
    let mount_point = path_cstring(&cfg.rootfs.mount_point)?;
    let overlay = plan_overlay(&cfg.rootfs, userns.is_some()).map_err(SpawnError::InvalidConfig)?;
    let fs_owner = match (&cfg.userns, userns) {
        (Some(u), Some(_)) => Some(fs_owner(u)?),
        _ => None,
    };
    Ok(ChildPlan {
        cfg,
        userns,
        fs_owner,
        mount_point,
        overlay,
        argv,
        envp,
        exec_candidates,
        cgroupns: cfg.private_cgroupns.then(super::cgroupns::host_view),
        clock,
        init: cfg.init.as_deref(),
        host_mount_ns: if cfg.hooks.create.is_empty() {
            None
        } else {
            Some(super::container_hooks::open_host_mount_namespace().map_err(SpawnError::Setup)?)
        },
    })
}

/// The host ids of the container's root and tty group, which must be
/// mapped for it to own anything.
fn fs_owner(u: &UsernsConfig) -> Result<FsOwner, SpawnError> {
    const TTY_GID: u32 = 5;
    let missing =
        |what: &str| SpawnError::InvalidConfig(format!("the user namespace maps no {what}"));
    Ok(FsOwner {
        uid: u.host_uid(0).ok_or_else(|| missing("uid 0"))?,
        gid: u.host_gid(0).ok_or_else(|| missing("gid 0"))?,
        tty_gid: u.host_gid(TTY_GID).ok_or_else(|| missing("gid 5 (tty)"))?,
    })
}

fn path_cstring(path: &Path) -> Result<CString, SpawnError> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        SpawnError::InvalidConfig(format!("path {} contains a NUL byte", path.display()))
    })
}

/// argv[0] as execvp would resolve it against the container's PATH.
fn exec_candidates(program: &str, search_path: &str) -> Vec<String> {
    if program.contains('/') {
        return vec![program.to_string()];
    }
    search_path
        .split(':')
        .map(|dir| if dir.is_empty() { "." } else { dir })
        .map(|dir| format!("{}/{program}", dir.trim_end_matches('/')))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_candidates_follow_path_order() {
        assert_eq!(
            exec_candidates("sh", "/usr/bin:/bin"),
            vec!["/usr/bin/sh", "/bin/sh"]
        );
        assert_eq!(exec_candidates("/bin/sh", "/usr/bin"), vec!["/bin/sh"]);
        assert_eq!(exec_candidates("./run", "/usr/bin"), vec!["./run"]);
        assert_eq!(
            exec_candidates("x", "/a/::/b/"),
            vec!["/a/x", "./x", "/b/x"]
        );
    }

    #[test]
    fn child_errors_render_like_a_shell_would() {
        let e = SpawnError::Child(ErrorRecord {
            stage: super::super::handshake::Stage::Exec,
            errno: Errno::ENOENT as i32,
            detail: "exec /bin/nope".into(),
        });
        assert_eq!(e.to_string(), "exec /bin/nope: No such file or directory");
        assert_eq!(e.exit_code(), 127);
    }
}
