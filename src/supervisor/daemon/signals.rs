//! Signals as events for the poll loop: signal-hook sets a flag per signal
//! and writes a byte to a pipe the loop watches (the self-pipe trick).

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use libc::{SIGCHLD, SIGHUP, SIGINT, SIGPWR, SIGTERM, SIGUSR1, SIGUSR2};

/// As PID 1 a signal without a handler is never delivered (the kernel
/// marks init SIGNAL_UNKILLABLE), so every signal that means something is
/// handled here; pid1.rs says what each shutdown signal ends in.
pub const HANDLED: [i32; 7] = [SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGPWR, SIGUSR1, SIGUSR2];

pub struct SignalPipe {
    read: UnixStream,
    _write: UnixStream,
    flags: Vec<(i32, Arc<AtomicBool>)>,
}

impl SignalPipe {
    pub fn install() -> std::io::Result<SignalPipe> {
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let mut flags = Vec::new();
        for sig in HANDLED {
            let flag = Arc::new(AtomicBool::new(false));
            signal_hook::flag::register(sig, Arc::clone(&flag))?;
            signal_hook::low_level::pipe::register(sig, write.try_clone()?)?;
            flags.push((sig, flag));
        }
        Ok(SignalPipe {
            read,
            _write: write,
            flags,
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }

    /// Empties the pipe and returns the signals raised since the last call.
    pub fn take_raised(&mut self) -> Vec<i32> {
        let mut buf = [0u8; 64];
        while matches!(self.read.read(&mut buf), Ok(n) if n > 0) {}
        self.flags
            .iter()
            .filter(|(_, f)| f.swap(false, Ordering::SeqCst))
            .map(|(s, _)| *s)
            .collect()
    }
}
