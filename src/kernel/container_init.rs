//! berth as a container's PID 1 when its spec says `init: true` (what
//! tini is as docker-init): the container's command runs as its child,
//! every signal berth can catch is passed on to it, every process
//! reparented to PID 1 is reaped, and it exits as the command did.
//!
//! The binary is never the daemon's own file: the supervisor copies itself
//! once into a sealed memfd (no write, grow, shrink or new seal) and the
//! container's first process executes that descriptor. A container that
//! opens /proc/1/exe for writing reaches only the sealed copy, which takes
//! no write (runc's CVE-2019-5736 was a container rewriting the runtime's
//! binary through that link).

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::{Arc, OnceLock};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::error::SysError;

/// The hidden command the sealed copy is run with: `berth _init -- CMD...`.
pub const INIT_COMMAND: &str = "_init";

/// argv[0] of a container's init, as `ps` inside shows it.
const INIT_ARGV0: &str = "berth-init";

/// The argv a container's first process executes the sealed copy with.
pub fn init_argv(command: &[String]) -> Vec<String> {
    let mut argv = vec![INIT_ARGV0.into(), INIT_COMMAND.into(), "--".into()];
    argv.extend(command.iter().cloned());
    argv
}

/// The sealed copy of the running binary, made at the first call and shared
/// by every container after it (a failure, too, is remembered: the binary
/// does not change).
pub fn sealed_self_copy() -> Result<Arc<OwnedFd>, String> {
    static COPY: OnceLock<Result<Arc<OwnedFd>, String>> = OnceLock::new();
    COPY.get_or_init(|| make_sealed_copy().map(Arc::new).map_err(|e| e.to_string()))
        .clone()
}

fn make_sealed_copy() -> Result<OwnedFd, SysError> {
    let name = c"berth-init";
    // SAFETY: memfd_create takes a NUL-terminated name and flags; it
    // returns a new descriptor or -1.
    let raw =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if raw < 0 {
        return Err(SysError::new("memfd_create", Errno::last()));
    }
    // SAFETY: memfd_create just returned this descriptor; nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut source =
        File::open("/proc/self/exe").map_err(|e| SysError::io("open", "/proc/self/exe", &e))?;
    let mut copy = File::from(fd);
    std::io::copy(&mut source, &mut copy)
        .map_err(|e| SysError::io("copy", "/proc/self/exe", &e))?;
    if needs_interpreter(&copy).map_err(|e| SysError::io("read", "/proc/self/exe", &e))? {
        // It would look for ld.so (and libc) inside the container's image.
        return Err(SysError::new(
            "run as a container's init: berth is dynamically linked (build it static, as scripts/build-release.sh does)",
            Errno::ENOEXEC,
        ));
    }
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS takes an integer argument on our own descriptor.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(SysError::new("seal the init copy", Errno::last()));
    }
    Ok(OwnedFd::from(copy))
}

/// Whether the ELF file names a program interpreter (PT_INTERP): a
/// dynamically linked binary. Only 64-bit little-endian ELF is read (what
/// berth is built for); anything else counts as static.
fn needs_interpreter(file: &File) -> std::io::Result<bool> {
    use std::os::unix::fs::FileExt;
    const PT_INTERP: u32 = 3;
    let mut header = [0u8; 64];
    file.read_exact_at(&mut header, 0)?;
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Ok(false);
    }
    let u16_at = |b: &[u8], i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let phoff = u64::from_le_bytes(header[0x20..0x28].try_into().unwrap_or_default());
    let (entry_size, count) = (u16_at(&header, 0x36), u16_at(&header, 0x38));
    let mut entry = vec![0u8; usize::from(entry_size).max(4)];
    for i in 0..u64::from(count) {
        file.read_exact_at(&mut entry, phoff + i * u64::from(entry_size))?;
        if u32::from_le_bytes([entry[0], entry[1], entry[2], entry[3]]) == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Replaces the calling process with the sealed copy; returns only on failure.
pub(super) fn exec_sealed(fd: &OwnedFd, argv: &[CString], envp: &[CString]) -> Errno {
    let pointers = |strings: &[CString]| -> Vec<*mut libc::c_char> {
        let mut v: Vec<_> = strings.iter().map(|s| s.as_ptr().cast_mut()).collect();
        v.push(std::ptr::null_mut());
        v
    };
    let (argv_ptrs, envp_ptrs) = (pointers(argv), pointers(envp));
    // SAFETY: both arrays are NULL-terminated and point at CStrings that
    // outlive the call (execveat never writes through them); the empty
    // path with AT_EMPTY_PATH executes `fd`.
    unsafe {
        libc::execveat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv_ptrs.as_ptr(),
            envp_ptrs.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Errno::last()
}

/// Signals that are the init's own faults, or job control, and are never
/// passed on (tini's list).
const NOT_FORWARDED: [Signal; 9] = [
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGABRT,
    Signal::SIGTRAP,
    Signal::SIGSYS,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
];

/// `berth _init -- CMD...`: runs CMD and stays its parent until it exits;
/// returns the exit code to leave with.
pub fn run(argv: &[String]) -> i32 {
    let command = match argv.split_first() {
        Some((dash, rest)) if dash == "--" => rest,
        _ => argv,
    };
    let Some((program, args)) = command.split_first() else {
        eprintln!("berth-init: usage: berth _init -- COMMAND [ARG...]");
        return 2;
    };
    // Everything blocked before the fork: a signal that arrives before the
    // loop waits stays pending instead of being lost (or, as PID 1 with
    // default dispositions, dropped by the kernel).
    let caught = catchable();
    if let Err(e) = caught.thread_block() {
        eprintln!("berth-init: block signals: {e}");
        return 1;
    }
    if std::process::id() != 1 {
        // SAFETY: PR_SET_CHILD_SUBREAPER takes a plain integer argument.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1) };
    }
    // std restores SIGPIPE in the child and looks the program up in the
    // container's PATH; the mask blocked above is ours to undo.
    let mut command = Command::new(program);
    command.args(args);
    // SAFETY: runs in the forked child before exec; pthread_sigmask is
    // async-signal-safe and the empty set is built on the stack.
    unsafe {
        command.pre_exec(|| {
            SigSet::empty()
                .thread_set_mask()
                .map_err(std::io::Error::from)
        });
    }
    let child = match command.spawn() {
        Ok(child) => Pid::from_raw(child.id() as i32),
        Err(e) => {
            eprintln!("berth-init: exec {program}: {e}");
            return if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
        }
    };
    supervise(child, &caught)
}

fn catchable() -> SigSet {
    let mut set = SigSet::all();
    set.remove(Signal::SIGKILL);
    set.remove(Signal::SIGSTOP);
    set
}

/// Waits for signals: SIGCHLD reaps, anything else goes to the child.
fn supervise(child: Pid, caught: &SigSet) -> i32 {
    loop {
        let signal = match caught.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if signal != Signal::SIGCHLD {
            if !NOT_FORWARDED.contains(&signal) {
                let _ = kill(child, signal);
            }
            continue;
        }
        if let Some(code) = reap_all(child) {
            return code;
        }
    }
}

/// Reaps every child that has exited; the command's exit code once it is
/// among them (128 + the signal that killed it, as a shell says).
fn reap_all(child: Pid) -> Option<i32> {
    let mut result = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => result = Some(code),
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                result = Some(128 + sig as i32)
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return result,
            Ok(_) => {}
        }
    }
}
