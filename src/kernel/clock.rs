//! The realtime clock's state as the kernel keeps it: whether NTP (or
//! anything using adjtimex) has marked it synchronized, and a descriptor
//! that wakes the loop when someone sets it (NTP stepping it at first
//! sync, `date -s`, berth's own clock floor).

use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use super::error::SysError;

/// Whether the kernel counts the clock as synchronized: adjtimex answers
/// TIME_ERROR while STA_UNSYNC is set (every boot until a time daemon
/// clears it).
pub fn synchronized() -> bool {
    // SAFETY: zeroed is a valid timex; modes 0 only reads the state.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: adjtimex fills the timex we own.
    let state = unsafe { libc::adjtimex(&mut tx) };
    state >= 0 && state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0
}

/// A timerfd on CLOCK_REALTIME armed for a time that never comes, with
/// TFD_TIMER_CANCEL_ON_SET: its read fails with ECANCELED once the clock
/// has been set, and that is all it is for.
pub struct ClockChanges {
    timer: TimerFd,
}

/// 2096: far enough that the timer itself never fires.
const NEVER: i64 = 4_000_000_000;

impl ClockChanges {
    pub fn new() -> Result<ClockChanges, SysError> {
        let flags = TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC;
        let timer = TimerFd::new(ClockId::CLOCK_REALTIME, flags)
            .map_err(|e| SysError::new("timerfd_create", e))?;
        let changes = ClockChanges { timer };
        changes.arm()?;
        Ok(changes)
    }

    fn arm(&self) -> Result<(), SysError> {
        let flags =
            TimerSetTimeFlags::TFD_TIMER_ABSTIME | TimerSetTimeFlags::TFD_TIMER_CANCEL_ON_SET;
        self.timer
            .set(Expiration::OneShot(TimeSpec::new(NEVER, 0)), flags)
            .map_err(|e| SysError::new("timerfd_settime", e))
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.timer.as_fd()
    }

    /// Takes the wake-up: true when the clock was set since the last call
    /// (the timer is armed again for the next).
    pub fn take(&self) -> bool {
        let mut buf = [0u8; 8];
        match nix::unistd::read(self.timer.as_fd(), &mut buf) {
            Err(Errno::ECANCELED) => {
                let _ = self.arm();
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_without_a_clock_change() {
        let changes = ClockChanges::new().unwrap();
        assert!(!changes.take());
    }
}
