//! The plain description of one container, in the spirit of an OCI runtime
//! config: what to mount, what to run, as whom, with which privileges.
//! No serde and no policy here: the supervisor fills it in.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

use caps::Capability;
use nix::sys::resource::Resource;

use super::container_hooks::ContainerHooks;
use super::host_devices::NodeKind;
use super::landlock::LandlockConfig;
use super::seccomp::Filters;
use super::userns::UsernsConfig;

/// Everything `spawn_container` needs to start one container.
#[derive(Debug)]
pub struct ContainerConfig {
    /// Used only to label errors ("container web: ...").
    pub name: String,
    pub hostname: String,
    pub rootfs: RootfsConfig,
    pub process: ProcessConfig,
    pub security: SecurityConfig,
    /// Paths inside the container hidden behind /dev/null (files) or an
    /// empty read-only tmpfs (directories).
    pub masked_paths: Vec<PathBuf>,
    /// Paths inside the container remounted read-only.
    pub readonly_paths: Vec<PathBuf>,
    /// Device nodes made in the container besides the default ones.
    pub devices: Vec<DeviceNode>,
    /// /sys, and the cgroup view at /sys/fs/cgroup, mounted read-write
    /// (a privileged container's); otherwise read-only.
    pub writable_sysfs: bool,
    /// Extra mounts, mounted in this order (parents before children).
    pub mounts: Vec<MountConfig>,
    /// Namespaced sysctls written under /proc/sys, e.g. ("net.ipv4.ip_forward", "1").
    pub sysctls: Vec<(String, String)>,
    /// Run in a user namespace with these id maps (`None`: the host's ids).
    pub userns: Option<UsernsConfig>,
    /// Share the host's network namespace instead of getting a new one.
    pub host_network: bool,
    /// A cgroup namespace of its own, with the cgroup filesystems mounted
    /// read-only at /sys/fs/cgroup (`false`: the host's namespace, and
    /// nothing mounted there).
    pub private_cgroupns: bool,
    /// OCI createContainer and startContainer hooks, run by the child.
    pub hooks: ContainerHooks,
    /// Run the command under this sealed copy of berth as the container's
    /// init (kernel/container_init.rs); `None`: the command is PID 1.
    pub init: Option<Arc<OwnedFd>>,
    pub stdio: Stdio,
}

/// The container's root: an overlay of read-only image layers under a
/// private writable upper directory, mounted at `mount_point` inside the
/// container's own mount namespace.
#[derive(Debug, Clone)]
pub struct RootfsConfig {
    /// Image layers, topmost first (overlayfs order).
    pub lower_dirs: Vec<PathBuf>,
    pub upper_dir: PathBuf,
    pub work_dir: PathBuf,
    /// An empty host directory the overlay is mounted on (in the child's
    /// mount namespace only, so the host never sees it).
    pub mount_point: PathBuf,
    /// An empty host directory for a private scratch tmpfs, used when the
    /// layers are too many to name in one mount call.
    pub scratch_dir: PathBuf,
    /// Size of the tmpfs on /dev/shm, in bytes.
    pub shm_size_bytes: u64,
    /// Remount the root read-only once everything is mounted on it.
    pub read_only: bool,
}

/// A device node to make inside the container: where, which device, its
/// permission bits and its owner (host ids, already mapped through any
/// user namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceNode {
    pub path: PathBuf,
    pub kind: NodeKind,
    pub major: u32,
    pub minor: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// argv; `args[0]` is looked up in `search_path` when it has no '/'.
    pub args: Vec<String>,
    /// `KEY=VALUE` strings.
    pub env: Vec<String>,
    /// The PATH used to find `args[0]` (the container's own PATH).
    pub search_path: String,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct SecurityConfig {
    /// Capabilities kept in the bounding set (and, for uid 0, in the
    /// permitted and effective sets). Everything else is dropped.
    pub capabilities: Vec<Capability>,
    pub no_new_privs: bool,
    /// Seccomp filters, installed last before exec; `None` = unconfined.
    /// Shared: containers with the same profile and capabilities hold one
    /// compiled copy.
    pub seccomp: Option<Arc<Filters>>,
    /// Landlock rules derived from the mounts; `None` = not applied.
    pub landlock: Option<LandlockConfig>,
    pub rlimits: Vec<Rlimit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rlimit {
    pub resource: Resource,
    pub soft: u64,
    pub hard: u64,
}

/// Per-mount flags (MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MountFlags {
    pub read_only: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountConfig {
    Tmpfs {
        target: PathBuf,
        size_bytes: u64,
        mode: u32,
        flags: MountFlags,
    },
    /// A host file or directory, recursively bind-mounted (`rbind`).
    Bind {
        source: PathBuf,
        target: PathBuf,
        flags: MountFlags,
        propagation: Propagation,
    },
    /// A new tmpfs (nosuid, nodev, noexec) holding copies of files the
    /// parent opened, made read-only once filled: the container sees what
    /// the sources held at its start, never their inodes.
    Files {
        target: PathBuf,
        size_bytes: u64,
        /// Permissions of the tmpfs's root, owned by the container's root.
        mode: u32,
        files: Vec<FileCopy>,
    },
}

/// One file of a [`MountConfig::Files`]: its name there (one path
/// component), an open descriptor to copy from, and its owner (host ids)
/// and permissions.
#[derive(Debug, Clone)]
pub struct FileCopy {
    pub name: String,
    pub source: Arc<OwnedFd>,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// The same copy: the same name, owner and mode from the same open file.
impl PartialEq for FileCopy {
    fn eq(&self, other: &Self) -> bool {
        (&self.name, self.uid, self.gid, self.mode)
            == (&other.name, other.uid, other.gid, other.mode)
            && Arc::ptr_eq(&self.source, &other.source)
    }
}

impl Eq for FileCopy {}

impl MountConfig {
    pub fn target(&self) -> &std::path::Path {
        match self {
            MountConfig::Tmpfs { target, .. }
            | MountConfig::Bind { target, .. }
            | MountConfig::Files { target, .. } => target,
        }
    }
    pub fn writable(&self) -> bool {
        match self {
            MountConfig::Tmpfs { flags, .. } | MountConfig::Bind { flags, .. } => !flags.read_only,
            MountConfig::Files { .. } => false,
        }
    }
}

/// How mount events travel between a bind mount and its host source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Propagation {
    /// Neither way (Docker's default, "rprivate").
    #[default]
    Private,
    /// Host mounts under the source appear in the container; never the
    /// reverse ("rslave").
    Slave,
}

/// The container's standard streams, handed over as owned descriptors.
#[derive(Debug)]
pub struct Stdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// Sockets that each get the master of a pty of the container's own
    /// devpts, whose slave then replaces all three streams (`run -t`);
    /// empty: no terminal.
    pub terminal: Vec<OwnedFd>,
}
