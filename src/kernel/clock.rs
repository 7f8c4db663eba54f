//! The realtime clock's state as the kernel keeps it: whether NTP (or
//! anything using adjtimex) has marked it synchronized, and a descriptor
//! that wakes the loop when someone sets it (NTP stepping it at first
//! sync, `date -s`, berth's own clock floor).

use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use super::error::SysError;

/// When this source was committed (build.rs): no clock that runs this
/// binary can honestly be earlier.
pub fn build_time() -> std::time::SystemTime {
    let secs = env!("BERTH_BUILD_EPOCH").parse::<u64>().unwrap_or(0);
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}

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

// adjtimex modes (linux/timex.h; the libc crate has them for musl only).
const ADJ_MAXERROR: u32 = 0x0004;
const ADJ_ESTERROR: u32 = 0x0008;
const ADJ_STATUS: u32 = 0x0010;
const ADJ_SETOFFSET: u32 = 0x0100;
const ADJ_NANO: u32 = 0x2000;
const ADJ_OFFSET_SINGLESHOT: u32 = 0x8001;
const NANOS: i128 = 1_000_000_000;

fn adjtimex(tx: &mut libc::timex, op: &'static str) -> Result<i32, SysError> {
    // SAFETY: adjtimex reads and fills the timex we own.
    let state = unsafe { libc::adjtimex(tx) };
    if state < 0 {
        return Err(SysError::new(op, Errno::last()));
    }
    Ok(state)
}

/// Steps the clock by `offset_ns` at once. ADJ_SETOFFSET adds the offset
/// in the kernel, so no time passes between reading the clock and setting
/// it as with clock_settime; like it, it wakes every TFD_TIMER_CANCEL_ON_SET
/// timer (the loop's `ClockChanges`).
pub fn step(offset_ns: i128) -> Result<(), SysError> {
    // SAFETY: zeroed is a valid timex.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    tx.modes = ADJ_SETOFFSET | ADJ_NANO;
    // The kernel wants a non-negative nanosecond part: -1.5 s is -2 s + 0.5 s.
    let secs = offset_ns.div_euclid(NANOS);
    let nanos = offset_ns.rem_euclid(NANOS);
    let secs = i32::try_from(secs).map_err(|_| SysError::new("step the clock", Errno::ERANGE))?;
    // The field types differ between ABIs; both values fit every one.
    tx.time.tv_sec = secs as _;
    tx.time.tv_usec = nanos as _;
    adjtimex(&mut tx, "step the clock (adjtimex ADJ_SETOFFSET)").map(drop)
}

/// Slews the clock by `offset_ns` (clamped to ±0.5 s): the kernel runs it
/// 0.05 % fast or slow until the offset is gone, as adjtime(3) does.
pub fn slew(offset_ns: i128) -> Result<(), SysError> {
    // SAFETY: zeroed is a valid timex.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    tx.modes = ADJ_OFFSET_SINGLESHOT;
    tx.offset = (offset_ns.clamp(-NANOS / 2, NANOS / 2) / 1000) as _;
    adjtimex(&mut tx, "slew the clock (adjtimex)").map(drop)
}

/// Tells the kernel the clock is synchronized, within `max_error_us`
/// (estimated `est_error_us`): clears STA_UNSYNC, so `synchronized` (and
/// every other reader of adjtimex) sees it. The kernel grows the maximum
/// error by 500 µs a second and sets STA_UNSYNC again past 16 s, so a
/// client that stops polling lets the mark lapse by itself.
pub fn mark_synchronized(max_error_us: i64, est_error_us: i64) -> Result<(), SysError> {
    // SAFETY: zeroed is a valid timex; modes 0 only reads.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    adjtimex(&mut tx, "read the clock's state (adjtimex)")?;
    let status = tx.status & !libc::STA_UNSYNC;
    // SAFETY: as above.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    tx.modes = ADJ_STATUS | ADJ_MAXERROR | ADJ_ESTERROR;
    tx.status = status;
    tx.maxerror = max_error_us.clamp(0, 16_000_000) as _;
    tx.esterror = est_error_us.clamp(0, 16_000_000) as _;
    adjtimex(&mut tx, "mark the clock synchronized (adjtimex)").map(drop)
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
