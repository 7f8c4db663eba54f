//! Landlock for a container's first process: read and execute on the
//! container's own tree, write only where the container may write, no
//! device nodes, optional TCP port lists and scopes. Applied in the child
//! after every mount (a landlocked process can no longer mount) and
//! inherited by everything the container runs.
//!
//! Rules are attached to the container's paths as seen after pivot_root:
//! Landlock follows bind mounts but not overlayfs layers, so the merged
//! tree is what must be named. Whatever is not beneath the container's
//! root (a host directory reached through a leaked descriptor, say) gets
//! no right at all.

use std::fs;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, NetPort, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope,
};
use nix::errno::Errno;

use super::error::SysError;

/// The ABI berth asks for: filesystem rights through IOCTL_DEV (5), TCP
/// ports (4) and scopes (6). Pinned so a crate upgrade never adds
/// restrictions silently; older kernels enforce what they know.
pub const CONTAINER_ABI: ABI = ABI::V6;
pub const CONTAINER_ABI_NUMBER: u32 = 6;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LandlockConfig {
    /// Rights beneath these paths: read and execute only.
    pub read_only: Vec<PathBuf>,
    /// Every filesystem right except making device nodes.
    pub read_write: Vec<PathBuf>,
    /// Files (/proc's entries) that may be read and written but under
    /// which nothing can be created.
    pub read_write_files: Vec<PathBuf>,
    /// `Some(ports)`: binding TCP is allowed only to these ports.
    pub bind_tcp: Option<Vec<u16>>,
    /// `Some(ports)`: connecting over TCP is allowed only to these ports.
    pub connect_tcp: Option<Vec<u16>>,
    pub scope_abstract_unix_socket: bool,
    pub scope_signal: bool,
    /// Device nodes the container was given: opened for reading and/or
    /// writing (with their ioctls) wherever they sit, a read-only part of
    /// the tree included. Nothing here allows making a node.
    pub devices: Vec<DeviceFile>,
}

/// One device node's rights (file rights only: it is not a directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFile {
    pub path: PathBuf,
    pub read: bool,
    pub write: bool,
}

impl DeviceFile {
    /// Reading, or writing (an `O_TRUNC` open, as a shell's `>` does,
    /// needs Truncate), and ioctls either way.
    fn access(&self) -> BitFlags<AccessFs> {
        let mut access = BitFlags::empty();
        if self.read {
            access |= AccessFs::ReadFile;
        }
        if self.write {
            access |= AccessFs::WriteFile | AccessFs::Truncate;
        }
        if !access.is_empty() {
            access |= AccessFs::IoctlDev;
        }
        access
    }
}

/// The Landlock ABI the running kernel offers (0 when Landlock is not
/// built in or is disabled).
pub fn kernel_abi() -> u32 {
    // SAFETY: with a null attribute pointer, size 0 and the VERSION flag,
    // landlock_create_ruleset only returns the ABI version (or an error).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        )
    };
    u32::try_from(ret).unwrap_or(0)
}

/// The ABI a container actually gets: what both berth and the kernel know.
pub fn enforced_abi() -> u32 {
    kernel_abi().min(CONTAINER_ABI_NUMBER)
}

fn read_exec() -> BitFlags<AccessFs> {
    AccessFs::from_read(CONTAINER_ABI)
}

fn read_write() -> BitFlags<AccessFs> {
    AccessFs::from_all(CONTAINER_ABI) & !(AccessFs::MakeChar | AccessFs::MakeBlock)
}

fn file_read_write() -> BitFlags<AccessFs> {
    AccessFs::from_file(CONTAINER_ABI)
}

/// Restricts the calling process (and everything it will run). Paths
/// that do not exist are skipped. Needs no_new_privs or CAP_SYS_ADMIN.
/// Returns how much was enforced: "full", "partial" or "none".
pub fn restrict_self(cfg: &LandlockConfig) -> Result<&'static str, SysError> {
    let fail = |e: landlock::RulesetError| SysError::new(landlock_op(&e), Errno::EINVAL);
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(CONTAINER_ABI))
        .map_err(fail)?;
    if cfg.bind_tcp.is_some() {
        ruleset = ruleset.handle_access(AccessNet::BindTcp).map_err(fail)?;
    }
    if cfg.connect_tcp.is_some() {
        ruleset = ruleset.handle_access(AccessNet::ConnectTcp).map_err(fail)?;
    }
    if cfg.scope_abstract_unix_socket {
        ruleset = ruleset.scope(Scope::AbstractUnixSocket).map_err(fail)?;
    }
    if cfg.scope_signal {
        ruleset = ruleset.scope(Scope::Signal).map_err(fail)?;
    }
    let mut created = ruleset.create().map_err(fail)?;
    let mut rules: Vec<(&Path, BitFlags<AccessFs>)> = Vec::new();
    for (paths, access) in [
        (&cfg.read_only, read_exec()),
        (&cfg.read_write, read_write()),
        (&cfg.read_write_files, file_read_write()),
    ] {
        rules.extend(paths.iter().map(|p| (p.as_path(), access)));
    }
    rules.extend(cfg.devices.iter().map(|d| (d.path.as_path(), d.access())));
    for (path, access) in rules
        .into_iter()
        .filter(|(p, a)| exists(p) && !a.is_empty())
    {
        let fd = PathFd::new(path)
            .map_err(|_| SysError::at("open for landlock", path, Errno::last()))?;
        created = created
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|e| SysError::at(landlock_op(&e), path, Errno::EINVAL))?;
    }
    for (ports, access) in [
        (&cfg.bind_tcp, AccessNet::BindTcp),
        (&cfg.connect_tcp, AccessNet::ConnectTcp),
    ] {
        for port in ports.iter().flatten() {
            created = created
                .add_rule(NetPort::new(*port, access))
                .map_err(fail)?;
        }
    }
    // no_new_privs is the caller's decision (the spec's), not the crate's.
    let status = created
        .no_new_privs(false)
        .restrict_self()
        .map_err(|e| SysError::new(landlock_op(&e), Errno::last()))?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => "full",
        RulesetStatus::PartiallyEnforced => "partial",
        RulesetStatus::NotEnforced => "none",
    })
}

fn landlock_op(e: &landlock::RulesetError) -> &'static str {
    use landlock::RulesetError as E;
    match e {
        E::HandleAccesses(_) => "landlock: handle accesses",
        E::CreateRuleset(_) => "landlock: create ruleset",
        E::AddRules(_) => "landlock: add rule",
        E::RestrictSelf(_) => "landlock: restrict self",
        _ => "landlock",
    }
}

fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}
