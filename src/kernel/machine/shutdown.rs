//! The way down: every other process killed and reaped, filesystems
//! synced and unmounted, reboot(2). Mechanism only (policy: pid1.rs).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::kernel::error::SysError;

/// What reboot(2) is asked to do at the very end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerCommand {
    PowerOff,
    Restart,
    Halt,
}

impl PowerCommand {
    fn code(self) -> libc::c_int {
        match self {
            PowerCommand::PowerOff => libc::LINUX_REBOOT_CMD_POWER_OFF,
            PowerCommand::Restart => libc::LINUX_REBOOT_CMD_RESTART,
            PowerCommand::Halt => libc::LINUX_REBOOT_CMD_HALT,
        }
    }
}

/// What is left after [`terminate_all_processes`].
#[derive(Debug, Default)]
pub struct Termination {
    /// (pid, exit code as 128+signal for a death by signal) of each reaped.
    pub reaped: Vec<(Pid, i32)>,
    /// Some process outlived the grace period and was sent SIGKILL.
    pub killed: bool,
}

/// kill(-1, SIGTERM) (every process this one may signal, except itself and
/// its namespace's init), SIGCONT for stopped ones, reaping for up to
/// `grace`; then SIGKILL and reaping until no child is left (bounded).
/// Every user process is a descendant of init (orphans are reparented to
/// it), so "no child left" means done; kill(-1) cannot tell, as in the
/// initial namespace it also reaches kernel threads (which ignore it).
pub fn terminate_all_processes(grace: Duration) -> Termination {
    let mut t = Termination::default();
    let all = Pid::from_raw(-1);
    if kill(all, Signal::SIGTERM) == Err(Errno::ESRCH) {
        reap_until(Instant::now(), &mut t.reaped);
        return t;
    }
    let _ = kill(all, Signal::SIGCONT);
    if reap_until(Instant::now() + grace, &mut t.reaped) {
        return t;
    }
    t.killed = kill(all, Signal::SIGKILL).is_ok();
    // SIGKILL cannot be refused; the bound only covers a process stuck in
    // uninterruptible sleep (a hung filesystem), which nothing can help.
    reap_until(Instant::now() + Duration::from_secs(5), &mut t.reaped);
    t
}

/// Reaps until no child is left (true) or `deadline` passes.
fn reap_until(deadline: Instant, reaped: &mut Vec<(Pid, i32)>) -> bool {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => reaped.push((pid, code)),
            Ok(WaitStatus::Signaled(pid, sig, _)) => reaped.push((pid, 128 + sig as i32)),
            Err(Errno::ECHILD) => return true,
            Ok(WaitStatus::StillAlive) | Err(_) => {
                if Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(_) => {}
        }
    }
}

pub fn sync_filesystems() {
    nix::unistd::sync();
}

/// Unmounts every mount except `/`, deepest (latest) first, then tries to
/// make `/` read-only. A mount still busy is detached instead: the kernel
/// then writes it back whenever its last user lets go, which for a
/// journalled filesystem may be never before the power goes, so callers
/// close their own files first. Best effort: returns the mounts that
/// would not go.
pub fn unmount_all() -> Vec<SysError> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut failed = Vec::new();
    for target in mount_points(&info).iter().rev() {
        if target == Path::new("/") {
            continue;
        }
        let result = match umount2(target, MntFlags::empty()) {
            Err(Errno::EBUSY) => umount2(target, MntFlags::MNT_DETACH),
            other => other,
        };
        if let Err(e) = result
            && e != Errno::EINVAL
            && e != Errno::ENOENT
        {
            failed.push(SysError::at("unmount", target, e));
        }
    }
    let ro = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    let _ = mount(None::<&str>, "/", None::<&str>, ro, None::<&str>);
    failed
}

/// Mount points of a mountinfo text, in mount order (proc_pid_mountinfo(5));
/// octal escapes (`\040` for a space) decoded.
fn mount_points(info: &str) -> Vec<PathBuf> {
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_octal(p)))
        .collect()
}

fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// reboot(2). Returns only when the kernel refused. In a child PID
/// namespace the kernel instead kills that namespace's init, with SIGHUP
/// for a restart and SIGINT for a power-off or halt (reboot(2), Linux 3.4).
pub fn reboot(cmd: PowerCommand) -> SysError {
    // SAFETY: reboot(2) with a valid command; it does not return on success.
    unsafe { libc::reboot(cmd.code()) };
    SysError::new("reboot", Errno::last())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_mount_points_in_order_with_escapes() {
        let info = "22 1 0:21 / / rw - rootfs rootfs rw\n\
                    23 22 0:5 / /proc rw,nosuid - proc proc rw\n\
                    24 22 0:6 / /mnt/a\\040b rw - tmpfs tmpfs rw\n";
        assert_eq!(
            mount_points(info),
            [Path::new("/"), Path::new("/proc"), Path::new("/mnt/a b")]
        );
        assert_eq!(unescape_octal("a\\134b\\0"), "a\\b\\0");
    }

    #[test]
    fn power_commands_are_the_kernel_codes() {
        assert_eq!(PowerCommand::PowerOff.code(), 0x4321_fedc);
        assert_eq!(PowerCommand::Restart.code(), 0x0123_4567);
        assert_eq!(PowerCommand::Halt.code() as u32, 0xcdef_0123);
    }
}
