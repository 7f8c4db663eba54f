//! An optional user namespace for a container, so its root is an
//! unprivileged host uid. The namespaces that decide what container root
//! may do (user, net, UTS, IPC) are created together by a tiny holder
//! process; the container's first process joins net/UTS/IPC before it
//! mounts anything (so /sys shows its own network) and the user namespace
//! last, after every mount: its mount namespace stays owned by the host,
//! so even a container root with CAP_SYS_ADMIN cannot mount.
//!
//! Image layers are shared between containers and owned by the image's
//! own ids; they are seen through idmapped mounts of the layers (kernel
//! 5.19+ for overlayfs, and a filesystem that supports idmapping), while
//! the container's private upper layer is simply owned by its mapped root.

use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{Pid, pipe2, read};

use super::error::SysError;
use super::sys::{CloneResult, clone_process};

/// One line of /proc/PID/uid_map: `size` ids from `container_id` on are
/// the host's ids from `host_id` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsernsConfig {
    pub uid_map: Vec<IdMap>,
    pub gid_map: Vec<IdMap>,
}

impl UsernsConfig {
    pub fn host_uid(&self, container_uid: u32) -> Option<u32> {
        map_id(&self.uid_map, container_uid)
    }
    pub fn host_gid(&self, container_gid: u32) -> Option<u32> {
        map_id(&self.gid_map, container_gid)
    }
}

fn map_id(map: &[IdMap], id: u32) -> Option<u32> {
    map.iter().find_map(|m| {
        let offset = id.checked_sub(m.container_id)?;
        (offset < m.size).then(|| m.host_id.checked_add(offset))?
    })
}

fn map_text(map: &[IdMap]) -> String {
    map.iter()
        .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
        .collect()
}

/// The namespaces a container joins, held open by a sleeping process
/// until the container is in them. Dropping it ends the holder.
#[derive(Debug)]
pub struct NamespaceHolder {
    pid: Pid,
    /// The holder exits when this (its only wake-up) closes.
    _release: OwnedFd,
    pub user: OwnedFd,
    pub net: OwnedFd,
    pub uts: OwnedFd,
    pub ipc: OwnedFd,
}

impl NamespaceHolder {
    /// Creates user+net+UTS+IPC namespaces in one clone and writes the
    /// id maps. The caller must be single-threaded.
    pub fn create(cfg: &UsernsConfig) -> Result<Self, SysError> {
        let (wait_read, wait_write) =
            pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| SysError::new("pipe", e))?;
        let flags =
            libc::CLONE_NEWUSER | libc::CLONE_NEWNET | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
        // SAFETY: the supervisor is single-threaded; the child only blocks
        // in read(2) and exits, touching no shared state.
        match unsafe { clone_process(flags) }
            .map_err(|e| SysError::new("clone namespace holder", e))?
        {
            CloneResult::Child => {
                drop(wait_write);
                // SAFETY: PR_SET_PDEATHSIG takes plain integers.
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
                let mut b = [0u8; 1];
                let _ = read(&wait_read, &mut b);
                // SAFETY: _exit skips the parent's atexit state.
                unsafe { libc::_exit(0) }
            }
            CloneResult::Parent(pid) => {
                drop(wait_read);
                let holder = Self::open(pid, wait_write);
                if holder.is_err() {
                    let _ = kill(pid, Signal::SIGKILL);
                    let _ = waitpid(pid, None);
                }
                let holder = holder?;
                holder.write_maps(cfg)?;
                Ok(holder)
            }
        }
    }

    fn open(pid: Pid, release: OwnedFd) -> Result<Self, SysError> {
        let ns = |name: &str| -> Result<OwnedFd, SysError> {
            let path = format!("/proc/{pid}/ns/{name}");
            fs::File::open(&path)
                .map(OwnedFd::from)
                .map_err(|e| SysError::io("open namespace", path, &e))
        };
        Ok(Self {
            pid,
            _release: release,
            user: ns("user")?,
            net: ns("net")?,
            uts: ns("uts")?,
            ipc: ns("ipc")?,
        })
    }

    fn write_maps(&self, cfg: &UsernsConfig) -> Result<(), SysError> {
        for (file, map) in [("uid_map", &cfg.uid_map), ("gid_map", &cfg.gid_map)] {
            let path = format!("/proc/{}/{file}", self.pid);
            fs::write(&path, map_text(map)).map_err(|e| SysError::io("write id map", path, &e))?;
        }
        Ok(())
    }

    /// The descriptors the container's child joins, as plain numbers (the
    /// child inherits the parent's descriptor table at clone).
    pub fn raw(&self) -> JoinFds {
        JoinFds {
            user: self.user.as_raw_fd(),
            net: self.net.as_raw_fd(),
            uts: self.uts.as_raw_fd(),
            ipc: self.ipc.as_raw_fd(),
        }
    }
}

impl Drop for NamespaceHolder {
    fn drop(&mut self) {
        let _ = kill(self.pid, Signal::SIGKILL);
        // The supervisor's reaper may have collected it already.
        let _ = waitpid(self.pid, None);
    }
}

#[derive(Debug, Clone, Copy)]
pub struct JoinFds {
    pub user: RawFd,
    pub net: RawFd,
    pub uts: RawFd,
    pub ipc: RawFd,
}

fn setns(fd: RawFd, nstype: libc::c_int, what: &'static str) -> Result<(), SysError> {
    // SAFETY: setns takes a descriptor and a flag; the descriptor stays
    // open (owned by the parent's holder) for the child's whole life.
    if unsafe { libc::setns(fd, nstype) } == 0 {
        Ok(())
    } else {
        Err(SysError::new(what, Errno::last()))
    }
}

/// First thing in the child: the holder's network, UTS and IPC namespaces.
pub fn join_owned_namespaces(fds: &JoinFds) -> Result<(), SysError> {
    setns(fds.net, libc::CLONE_NEWNET, "join network namespace")?;
    setns(fds.uts, libc::CLONE_NEWUTS, "join UTS namespace")?;
    setns(fds.ipc, libc::CLONE_NEWIPC, "join IPC namespace")
}

/// After the last mount: from here on the process's privileges count only
/// inside the user namespace.
pub fn join_user_namespace(fds: &JoinFds) -> Result<(), SysError> {
    setns(fds.user, libc::CLONE_NEWUSER, "join user namespace")
}

/// Wraps a raw descriptor the caller guarantees is open, for the
/// duration of a borrow.
pub fn borrow_fd(fd: RawFd) -> std::mem::ManuallyDrop<OwnedFd> {
    // SAFETY: ManuallyDrop never closes it; the holder owns the descriptor.
    std::mem::ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_through_ranges() {
        let cfg = UsernsConfig {
            uid_map: vec![
                IdMap {
                    container_id: 0,
                    host_id: 100_000,
                    size: 1000,
                },
                IdMap {
                    container_id: 5000,
                    host_id: 1_000,
                    size: 1,
                },
            ],
            gid_map: vec![],
        };
        assert_eq!(cfg.host_uid(0), Some(100_000));
        assert_eq!(cfg.host_uid(999), Some(100_999));
        assert_eq!(cfg.host_uid(1000), None);
        assert_eq!(cfg.host_uid(5000), Some(1_000));
        assert_eq!(cfg.host_gid(0), None);
        assert_eq!(map_text(&cfg.uid_map), "0 100000 1000\n5000 1000 1\n");
    }
}
