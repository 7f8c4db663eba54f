//! The bpf(2) calls behind cgroup v2's device filter: load a
//! BPF_PROG_TYPE_CGROUP_DEVICE program, attach it to a cgroup directory
//! with BPF_F_ALLOW_MULTI, and detach the programs it replaces (found with
//! BPF_PROG_QUERY, opened with BPF_PROG_GET_FD_BY_ID). The instructions
//! come from `device_filter.rs`; nothing here knows what they allow.
//!
//! An attached program stays with the cgroup after its fd is closed, until
//! it is detached or the cgroup is removed (the kernel holds it), so
//! nothing is kept open here.

use std::ffi::CStr;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::OnceLock;

use nix::errno::Errno;

use super::device_filter::{Insn, device_program};
use super::devices::DeviceRule;
use crate::kernel::error::errno_text;

// linux/bpf.h: commands, the program and attach types, the attach flag.
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Programs of the cgroup and of its ancestors all run, and all must allow
/// (and a later program may be attached beside this one, to replace it).
const BPF_F_ALLOW_MULTI: u32 = 2;
/// The kernel's limit per cgroup and attach type (BPF_CGROUP_MAX_PROGS).
const MAX_PROGRAMS: usize = 64;
/// Room for the verifier's explanation when a load fails.
const LOG_BYTES: usize = 64 * 1024;
/// What `bpftool prog` shows; letters, digits, '_' and '.' only.
const PROGRAM_NAME: &[u8] = b"berth_devices";
/// berth's own; the program calls no GPL-only helper.
const LICENSE: &CStr = c"Apache-2.0";

/// The BPF_PROG_LOAD part of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct LoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// The BPF_PROG_ATTACH and BPF_PROG_DETACH part.
#[repr(C)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

/// The BPF_PROG_QUERY part (up to prog_cnt, padded to its alignment).
#[repr(C)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    padding: u32,
}

/// The BPF_PROG_GET_FD_BY_ID part.
#[repr(C)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// A failed step: the call ("bpf(BPF_PROG_ATTACH)", "open"), its errno,
/// and the verifier's last words for a refused program.
#[derive(Debug)]
pub struct BpfError {
    call: &'static str,
    errno: Errno,
    detail: String,
}

impl fmt::Display for BpfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.call, errno_text(self.errno))?;
        if !self.detail.is_empty() {
            write!(f, " ({})", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for BpfError {}

fn failed(call: &'static str) -> impl Fn(Errno) -> BpfError {
    move |errno| BpfError {
        call,
        errno,
        detail: String::new(),
    }
}

/// Whether this kernel loads device programs at all (CONFIG_CGROUP_BPF,
/// and the privilege to load): asked once, with a program that allows
/// everything.
pub fn device_filter_supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        device_program(&[DeviceRule::ALLOW_ALL])
            .ok()
            .is_some_and(|program| load_program(&program).is_ok())
    })
}

/// Puts `program` on the cgroup directory `dir` in place of the device
/// programs attached there: the new one is attached first, then the old
/// ones are detached, so there is never a moment without a filter (while
/// both are attached, an access needs both to allow it).
pub fn replace_device_filter(dir: &Path, program: &[Insn]) -> Result<(), BpfError> {
    let program = load_program(program)?;
    let cgroup = open_dir(dir)?;
    let old = attached_programs(&cgroup)?;
    attach(&cgroup, program.as_fd())?;
    for id in old {
        // Gone already (a concurrent replacement): nothing to detach.
        let Some(old) = program_by_id(id)? else {
            continue;
        };
        match detach(&cgroup, old.as_fd()) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(failed("bpf(BPF_PROG_DETACH)")(e)),
        }
    }
    Ok(())
}

/// The ids of the device programs attached to the cgroup v2 directory
/// `dir` itself (not to its ancestors).
pub fn device_programs_of(dir: &Path) -> Result<Vec<u32>, BpfError> {
    attached_programs(&open_dir(dir)?)
}

fn open_dir(dir: &Path) -> Result<File, BpfError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .map_err(|e| BpfError {
            call: "open",
            errno: e.raw_os_error().map_or(Errno::EIO, Errno::from_raw),
            detail: dir.display().to_string(),
        })
}

fn attached_programs(cgroup: &File) -> Result<Vec<u32>, BpfError> {
    let mut ids = [0u32; MAX_PROGRAMS];
    let mut attr = QueryAttr {
        target_fd: fd_number(cgroup.as_raw_fd()),
        attach_type: BPF_CGROUP_DEVICE,
        query_flags: 0,
        attach_flags: 0,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: MAX_PROGRAMS as u32,
        padding: 0,
    };
    // SAFETY: `attr` is a BPF_PROG_QUERY attribute whose prog_ids points at
    // `ids`, live for the call, with room for the prog_cnt ids the kernel
    // may write.
    unsafe { bpf(BPF_PROG_QUERY, &mut attr) }.map_err(failed("bpf(BPF_PROG_QUERY)"))?;
    let count = usize::try_from(attr.prog_cnt).map_or(MAX_PROGRAMS, |n| n.min(MAX_PROGRAMS));
    Ok(ids[..count].to_vec())
}

/// Loads the program; when the kernel refuses it, loads it again with the
/// verifier's log on, to say why.
fn load_program(program: &[Insn]) -> Result<OwnedFd, BpfError> {
    let mut prog_name = [0u8; 16];
    prog_name[..PROGRAM_NAME.len()].copy_from_slice(PROGRAM_NAME);
    let mut attr = LoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(program.len()).map_err(|_| BpfError {
            call: "bpf(BPF_PROG_LOAD)",
            errno: Errno::E2BIG,
            detail: format!("{} instructions", program.len()),
        })?,
        insns: program.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        prog_name,
        ..LoadAttr::default()
    };
    // SAFETY: insns points at `program` (insn_cnt `struct bpf_insn`s, the
    // same layout) and license at a NUL-terminated static; no log buffer.
    let errno = match unsafe { bpf(BPF_PROG_LOAD, &mut attr) } {
        Ok(fd) => return Ok(owned_fd(fd)),
        Err(errno) => errno,
    };
    let mut log = vec![0u8; LOG_BYTES];
    attr.log_level = 1;
    attr.log_size = LOG_BYTES as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    // SAFETY: as above, and log_buf points at `log`, live for the call,
    // log_size bytes long.
    if let Ok(fd) = unsafe { bpf(BPF_PROG_LOAD, &mut attr) } {
        return Ok(owned_fd(fd));
    }
    let detail = match errno {
        // No verifier log for a refusal before the verifier runs.
        Errno::EPERM => "needs CAP_SYS_ADMIN or CAP_BPF; kernels before 5.11 also \
                         count programs against RLIMIT_MEMLOCK"
            .to_string(),
        _ => last_log_lines(&log),
    };
    Err(BpfError {
        call: "bpf(BPF_PROG_LOAD)",
        errno,
        detail,
    })
}

/// The end of the verifier's log, where it says what it refused.
fn last_log_lines(log: &[u8]) -> String {
    let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    match tail.join("; ") {
        t if t.is_empty() => t,
        t => format!("verifier: {t}"),
    }
}

fn attach(cgroup: &File, program: BorrowedFd<'_>) -> Result<(), BpfError> {
    let mut attr = AttachAttr {
        target_fd: fd_number(cgroup.as_raw_fd()),
        attach_bpf_fd: fd_number(program.as_raw_fd()),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    // SAFETY: a BPF_PROG_ATTACH attribute of plain numbers (two open fds).
    unsafe { bpf(BPF_PROG_ATTACH, &mut attr) }
        .map(drop)
        .map_err(failed("bpf(BPF_PROG_ATTACH)"))
}

fn detach(cgroup: &File, program: BorrowedFd<'_>) -> Result<(), Errno> {
    let mut attr = AttachAttr {
        target_fd: fd_number(cgroup.as_raw_fd()),
        attach_bpf_fd: fd_number(program.as_raw_fd()),
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
    };
    // SAFETY: a BPF_PROG_DETACH attribute of plain numbers (two open fds).
    unsafe { bpf(BPF_PROG_DETACH, &mut attr) }.map(drop)
}

/// A program by its id, or None once it is gone.
fn program_by_id(id: u32) -> Result<Option<OwnedFd>, BpfError> {
    let mut attr = GetFdAttr {
        prog_id: id,
        next_id: 0,
        open_flags: 0,
    };
    // SAFETY: a BPF_PROG_GET_FD_BY_ID attribute of plain numbers.
    match unsafe { bpf(BPF_PROG_GET_FD_BY_ID, &mut attr) } {
        Ok(fd) => Ok(Some(owned_fd(fd))),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(failed("bpf(BPF_PROG_GET_FD_BY_ID)")(e)),
    }
}

/// bpf(2) with `attr` as the command's part of `union bpf_attr`; the
/// kernel takes the size given and zero-fills the rest. Returns what the
/// call returns (a new fd for LOAD and GET_FD_BY_ID).
///
/// # Safety
/// `attr` must be the layout `cmd` expects, and every pointer in it must
/// point at memory that is valid for the kernel to read (and, for output
/// buffers, write) for the sizes the attribute gives.
unsafe fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> Result<RawFd, Errno> {
    // SAFETY: `attr` is a live, exclusive `T` of size_of::<T>() bytes, and
    // the caller vouches for the pointers inside it.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size_of::<T>()) };
    let ret = Errno::result(ret)?;
    RawFd::try_from(ret).map_err(|_| Errno::EOVERFLOW)
}

fn owned_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by bpf(2) as a new descriptor that
    // nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// File descriptors are never negative once open.
fn fd_number(fd: RawFd) -> u32 {
    u32::try_from(fd).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_program_is_explained_by_the_verifier() {
        if !nix::unistd::geteuid().is_root() || !device_filter_supported() {
            eprintln!("skipped: needs root and cgroup BPF");
            return;
        }
        // "w0 = 1" and no exit.
        let program = [Insn {
            code: 0xb4,
            regs: 0,
            off: 0,
            imm: 1,
        }];
        let err = load_program(&program).expect_err("refused");
        let text = err.to_string();
        assert!(
            text.starts_with("bpf(BPF_PROG_LOAD): Invalid argument (verifier: "),
            "{text}"
        );
    }

    #[test]
    fn the_log_tail_is_its_last_lines() {
        let log = b"0: (b4) w0 = 1\n\nlast insn is not an exit or jmp\nprocessed 0 insns\n\0junk";
        assert_eq!(
            last_log_lines(log),
            "verifier: 0: (b4) w0 = 1; last insn is not an exit or jmp; processed 0 insns"
        );
        assert_eq!(last_log_lines(b"\0"), "");
    }
}
