//! The few raw system calls nix does not wrap: a fork-like clone3 with
//! namespace flags, close_range and pidfd_open.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::Pid;

/// Where execution continues after [`clone_process`].
pub enum CloneResult {
    Parent(Pid),
    Child,
}

/// `struct clone_args` from linux/sched.h (the first, v0 size).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

/// Forks with new namespaces in one step, so the child is born inside them
/// (a new PID namespace only takes effect for children, never the caller).
///
/// With a null stack clone behaves like fork: the child runs on a copy of
/// the caller's stack. Falls back to clone(2) where clone3 is missing.
///
/// # Safety
/// The caller must be single-threaded: the child gets a copy of one thread
/// only, and any lock another thread held stays locked forever.
pub unsafe fn clone_process(namespace_flags: libc::c_int) -> Result<CloneResult, Errno> {
    let args = CloneArgs {
        flags: u64::from(namespace_flags.cast_unsigned()),
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    // SAFETY: args is a live, correctly sized clone_args; a null stack makes
    // clone3 fork-like, and the caller guarantees a single-threaded process.
    let mut ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if ret == -1 && Errno::last() == Errno::ENOSYS {
        let flags = libc::c_ulong::from((namespace_flags | libc::SIGCHLD).cast_unsigned());
        // SAFETY: a null stack and null tid pointers make clone fork-like;
        // the argument order differs between arches only in the pointer
        // arguments, which are all null here.
        ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    }
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(CloneResult::Child),
        pid => Ok(CloneResult::Parent(Pid::from_raw(pid as libc::pid_t))),
    }
}

/// Marks every descriptor from `first` up close-on-exec, so nothing the
/// supervisor holds leaks into the container (see GHSA-xr7r-f8xq-vfvv for
/// what a leaked fd can do).
pub fn cloexec_from(first: u32) -> Result<(), Errno> {
    // SAFETY: close_range only changes descriptor flags; no memory is passed.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// A pidfd for `pid` (pidfd_open(2), Linux 5.3): it polls readable once the
/// process has exited, so a child's exit can be waited for in the same
/// poll(2) as its pipes. The descriptor is close-on-exec.
///
/// The caller must hold `pid` unreaped (a child not yet waited for), or the
/// number may already name another process.
pub fn pidfd_open(pid: Pid) -> Result<OwnedFd, Errno> {
    // SAFETY: pidfd_open takes a pid and flags by value; no memory is passed.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if ret < 0 {
        return Err(Errno::last());
    }
    let fd = RawFd::try_from(ret).map_err(|_| Errno::EBADF)?;
    // SAFETY: the kernel just returned `fd` as a new descriptor of this
    // process; nothing else owns it, so the OwnedFd is its only closer.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Starts writing back the dirty pages of `fd` in `[offset, offset+len)`
/// (len 0: to the end) without waiting for them (sync_file_range(2),
/// SYNC_FILE_RANGE_WRITE): the single syncfs at an import's commit then
/// finds most of the data already on its way to the disk. Durability
/// still comes from that syncfs; this only moves the work earlier.
pub fn start_writeback(
    fd: std::os::fd::BorrowedFd<'_>,
    offset: u64,
    len: u64,
) -> Result<(), Errno> {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(Errno::EINVAL);
    };
    // SAFETY: sync_file_range takes a descriptor (borrowed, so open for
    // the call) and two integers; no memory is passed.
    let ret = unsafe {
        libc::sync_file_range(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            offset,
            len,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}
