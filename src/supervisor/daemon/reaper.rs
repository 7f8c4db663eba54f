//! Reaping: collect every exited child (containers, and as PID 1 every
//! orphan of the namespace) without blocking.

use nix::errno::Errno;
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// Reaps until nothing is left to reap. Signals coalesce, so one SIGCHLD
/// may stand for many exits. Returns (pid, exit code), where death by
/// signal N is 128 + N as a shell reports it.
pub fn reap_children() -> Vec<(Pid, i32)> {
    let mut exits = Vec::new();
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => exits.push((pid, code)),
            Ok(WaitStatus::Signaled(pid, sig, _)) => exits.push((pid, 128 + sig as i32)),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return exits,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(_) => return exits,
        }
    }
}
