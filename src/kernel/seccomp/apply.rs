//! Child-side install of compiled filters: no allocation and no parsing,
//! only seccomp(2) calls, so it is safe between fork and exec.

use nix::errno::Errno;
use seccompiler::sock_filter;

use super::compile::Filters;
use crate::kernel::error::SysError;

const OP: &str = "install seccomp filter";

/// Installs every program of `filters`, in order, on the calling thread
/// (and so on what it execs). Needs no_new_privs, or CAP_SYS_ADMIN in the
/// caller's user namespace, else the kernel answers EACCES (seccomp(2)).
///
/// Runs in the child after fork from a single-threaded parent: it only
/// reads the already-built programs and makes raw syscalls, with no
/// allocation and no lock. On an error the earlier programs stay installed;
/// the child is expected to report and exit, never to exec.
pub fn apply(filters: &Filters) -> Result<(), SysError> {
    for program in &filters.programs {
        install(program)?;
    }
    Ok(())
}

fn install(program: &[sock_filter]) -> Result<(), SysError> {
    // sock_fprog.len is 16 bits; seccompiler caps programs at 4096 anyway.
    let len = u16::try_from(program.len()).map_err(|_| SysError::new(OP, Errno::EINVAL))?;
    // seccompiler's sock_filter is #[repr(C)] with the fields of the
    // kernel's struct sock_filter, so the pointer cast keeps the layout.
    let fprog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    let operation = libc::c_ulong::from(libc::SECCOMP_SET_MODE_FILTER);
    let flags: libc::c_ulong = 0;
    // SAFETY: seccomp(SECCOMP_SET_MODE_FILTER) only reads `fprog` and the
    // `len` instructions it points to; both borrow `program`, which outlives
    // the call, and the kernel copies the program before returning.
    let rc = unsafe { libc::syscall(libc::SYS_seccomp, operation, flags, &raw const fprog) };
    if rc != 0 {
        return Err(SysError::new(OP, Errno::last()));
    }
    Ok(())
}
