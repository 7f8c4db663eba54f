//! Helper processes for work that may be slow (a plugin, a hook, a sync,
//! a big deletion): the caller forks, the child runs one closure and
//! writes its answer to a pipe, then exits. The caller's loop polls the
//! pipe and reaps the child like any other, so it never waits on the
//! work itself.

use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, signal, sigprocmask};
use nix::unistd::{ForkResult, Pid, fork, getppid, pipe2, setpgid, write};

use super::error::SysError;

/// A running helper: its pid (also its process group) and the read end of
/// its answer pipe, non-blocking.
#[derive(Debug)]
pub struct Helper {
    pub pid: Pid,
    pub output: OwnedFd,
}

/// The exit code of a helper whose closure panicked.
pub const HELPER_PANICKED: i32 = 101;

/// Signals a supervisor catches; a helper gets the default actions back
/// so that its own children's exits and a SIGTERM behave as usual.
const RESET_SIGNALS: [Signal; 8] = [
    Signal::SIGCHLD,
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGPWR,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGPIPE,
];

/// Forks a helper that runs `work` and writes what it returns to its
/// answer pipe. In the child every descriptor above stderr is closed
/// except the pipe and `keep`; it leads its own process group (a deadline
/// kills the group) and dies with its parent.
///
/// Must be called from a single-threaded process: the child runs Rust code
/// after fork, which is only sound when no other thread held a lock.
pub fn fork_helper(keep: &[RawFd], work: impl FnOnce() -> Vec<u8>) -> Result<Helper, SysError> {
    let (read_end, write_end) =
        pipe2(OFlag::O_CLOEXEC).map_err(|e| SysError::new("pipe for a helper", e))?;
    let parent = nix::unistd::getpid();
    // SAFETY: the supervisor is single-threaded (ARCHITECTURE.md), so the
    // child's copy of the address space holds no lock another thread owns
    // and may run ordinary Rust code until it exits.
    match unsafe { fork() }.map_err(|e| SysError::new("fork a helper", e))? {
        ForkResult::Child => {
            drop(read_end);
            let code = run_child(parent, &write_end, keep, work);
            // SAFETY: _exit ends the child without running the parent's
            // atexit handlers or destructors of state it shares.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            // Also set here: a kill of the group must not race the child's
            // own setpgid.
            let _ = setpgid(child, child);
            fcntl(&read_end, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
                .map_err(|e| SysError::new("set a helper's pipe non-blocking", e))?;
            Ok(Helper {
                pid: child,
                output: read_end,
            })
        }
    }
}

fn run_child(parent: Pid, out: &OwnedFd, keep: &[RawFd], work: impl FnOnce() -> Vec<u8>) -> i32 {
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    // SAFETY: prctl with PR_SET_PDEATHSIG and a valid signal number only
    // changes this process's own attribute.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    if getppid() != parent {
        return 1; // the parent died before the death signal was armed
    }
    for sig in RESET_SIGNALS {
        // SAFETY: restoring the default action installs no handler.
        let _ = unsafe { signal(sig, SigHandler::SigDfl) };
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
    close_all_but(out.as_raw_fd(), keep);
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(answer) => {
            if write_all(out, &answer).is_err() {
                return 1;
            }
            0
        }
        Err(_) => HELPER_PANICKED,
    }
}

/// Closes every descriptor above stderr except `out` and `keep`, so the
/// helper holds none of the supervisor's sockets or container pipes open.
fn close_all_but(out: RawFd, keep: &[RawFd]) {
    let mut open: Vec<RawFd> = keep.iter().copied().filter(|fd| *fd > 2).collect();
    open.push(out);
    open.sort_unstable();
    open.dedup();
    let mut first: u32 = 3;
    for fd in open {
        let Ok(fd) = u32::try_from(fd) else { continue };
        if fd > first {
            close_range(first, fd - 1);
        }
        first = fd.saturating_add(1);
    }
    close_range(first, u32::MAX);
}

fn close_range(first: u32, last: u32) {
    // SAFETY: close_range only closes descriptors of this process; the
    // ones we still need were excluded by the caller.
    unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> Result<(), Errno> {
    while !bytes.is_empty() {
        match write(fd.as_fd(), bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::{WaitStatus, waitpid};

    fn read_to_end(fd: &OwnedFd) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(fd.as_fd(), &mut buf) {
                Ok(0) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(Errno::EAGAIN) => std::thread::sleep(std::time::Duration::from_millis(1)),
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Runs in a forked child per test: the test harness is threaded, and
    /// fork_helper wants a single-threaded caller.
    fn in_child(test: fn()) {
        // SAFETY: the child only runs `test` and exits; see the note above.
        match unsafe { fork() }.expect("fork") {
            ForkResult::Child => {
                let ok = catch_unwind(test).is_ok();
                // SAFETY: ends the test child without unwinding into the harness.
                unsafe { libc::_exit(if ok { 0 } else { 1 }) }
            }
            ForkResult::Parent { child } => {
                assert_eq!(
                    waitpid(child, None).expect("wait"),
                    WaitStatus::Exited(child, 0)
                );
            }
        }
    }

    #[test]
    fn a_helper_answers_through_its_pipe() {
        in_child(|| {
            let big = vec![7u8; 300_000]; // larger than a pipe's buffer
            let h = fork_helper(&[], move || big).expect("fork");
            assert_eq!(read_to_end(&h.output).len(), 300_000);
            assert_eq!(waitpid(h.pid, None), Ok(WaitStatus::Exited(h.pid, 0)));
        });
    }

    #[test]
    fn a_panicking_helper_exits_with_its_own_code() {
        in_child(|| {
            let h = fork_helper(&[], || panic!("boom")).expect("fork");
            assert!(read_to_end(&h.output).is_empty());
            assert_eq!(
                waitpid(h.pid, None),
                Ok(WaitStatus::Exited(h.pid, HELPER_PANICKED))
            );
        });
    }

    #[test]
    fn a_helper_holds_no_other_descriptor() {
        in_child(|| {
            let (keep_r, _keep_w) = pipe2(OFlag::O_CLOEXEC).expect("pipe");
            let (other_r, _other_w) = pipe2(OFlag::O_CLOEXEC).expect("pipe");
            let keep = keep_r.as_raw_fd();
            let other = other_r.as_raw_fd();
            let h = fork_helper(&[keep], move || {
                // SAFETY: F_GETFD only asks whether the number is open.
                let open = |fd: RawFd| unsafe { libc::fcntl(fd, libc::F_GETFD) } != -1;
                format!("{} {}", open(keep), open(other)).into_bytes()
            })
            .expect("fork");
            assert_eq!(read_to_end(&h.output), b"true false");
            let _ = waitpid(h.pid, None);
        });
    }
}
