//! From a spec and its image to the kernel's plain `ContainerConfig`: the
//! argv/env/cwd/user merge rules (Docker's), the container's directories,
//! its stdio pipes, and the default hardening.

pub mod cdi;
pub mod check;
mod container_hooks;
pub mod device_match;
pub mod devices;
pub mod etc_files;
pub mod hardening;
pub mod hotplug;
pub mod resources;
pub mod seccomp;
pub mod secrets;
pub mod security;
pub mod update_lock;
pub mod user;
pub mod userns;
pub mod userns_ranges;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

use self::etc_files as networking;
use self::userns as userns_setup;
use crate::image::lookup::{ResolvedImage, read_image_file};
use crate::image::oci::RunConfig;
use crate::kernel::cgroup::{DeviceRule, Resources};
use crate::kernel::config::{ContainerConfig, MountConfig, ProcessConfig, RootfsConfig, Stdio};
use crate::kernel::signal::parse_signal;
use crate::kernel::userns::UsernsConfig;
use crate::supervisor::launch::devices::GivenDevice;
pub use crate::supervisor::launch::security::SecuritySummary;
use crate::supervisor::launch::user::{resolve_group, resolve_user};
use crate::supervisor::plugins::cdi::CdiEdits;
use crate::supervisor::spec::Spec;
use crate::supervisor::spec::hardening::CgroupnsMode;
use crate::supervisor::spec::service::NetworkMode;

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const SHM_SIZE_BYTES: u64 = 64 << 20;
const MAX_ACCOUNT_FILE_BYTES: u64 = 1 << 20;

/// Docker's MaskedPaths (oci/defaults.go).
const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// Docker's ReadonlyPaths.
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The per-container directories under the store's containers/NAME/.
#[derive(Debug, Clone)]
pub struct ContainerDirs {
    pub base: PathBuf,
}

impl ContainerDirs {
    pub fn new(containers_dir: &Path, name: &str) -> Self {
        Self {
            base: containers_dir.join(name),
        }
    }
    pub fn upper(&self) -> PathBuf {
        self.base.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.base.join("work")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.base.join("rootfs")
    }
    pub fn lowers(&self) -> PathBuf {
        self.base.join("lowers")
    }
    /// Present while an `unless-stopped` container is stopped by request.
    pub fn stopped_marker(&self) -> PathBuf {
        self.base.join("stopped")
    }
    pub fn log_file(&self) -> PathBuf {
        self.base.join("logs/json.log")
    }

    pub fn create(&self) -> std::io::Result<()> {
        for d in [
            self.upper(),
            self.work(),
            self.rootfs(),
            self.lowers(),
            self.base.join("logs"),
        ] {
            fs::create_dir_all(d)?;
        }
        Ok(())
    }
}

/// A container ready to spawn, plus the supervisor's ends of its pipes.
pub struct Launch {
    pub config: ContainerConfig,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub stop_signal: i32,
    /// Limits for the container's cgroup, set before it joins.
    pub resources: Resources,
    /// Device rules for its cgroup beyond the default allow-list.
    pub device_rules: Vec<DeviceRule>,
    pub summary: SecuritySummary,
}

/// The program and arguments: Docker's rules for Entrypoint and Cmd.
pub fn effective_argv(spec: &Spec, image: &RunConfig) -> Vec<String> {
    let entrypoint = spec
        .entrypoint
        .clone()
        .or_else(|| image.entrypoint.clone())
        .unwrap_or_default();
    // Overriding the entrypoint drops the image's Cmd (docker run --entrypoint).
    let cmd = match (&spec.command, &spec.entrypoint) {
        (Some(c), _) => c.clone(),
        (None, Some(_)) => Vec::new(),
        (None, None) => image.cmd.clone().unwrap_or_default(),
    };
    entrypoint.into_iter().chain(cmd).collect()
}

/// The image's Env, overridden by key by the spec's, plus PATH, HOSTNAME
/// and HOME defaults. Sorted, so the result is stable.
pub fn effective_env(spec: &Spec, image: &RunConfig, hostname: &str, home: &str) -> Vec<String> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert("PATH".into(), DEFAULT_PATH.into());
    env.insert("HOSTNAME".into(), hostname.into());
    env.insert("HOME".into(), home.into());
    for kv in image.env.iter().flatten() {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        env.insert(k.to_string(), v.to_string());
    }
    env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Where a launch finds what is not in the spec.
pub struct LaunchContext<'a> {
    /// Relative seccomp profile paths start here, and secrets are read
    /// from its secrets/.
    pub config_dir: &'a Path,
    /// The store, which remembers automatic user namespace ranges.
    pub store_root: &'a Path,
    /// Host paths of the spec's volumes, by name, from their drivers.
    pub volume_paths: &'a BTreeMap<String, PathBuf>,
    /// The spec's devices as a helper found them on the host.
    pub devices: &'a [GivenDevice],
    /// What its CDI devices add beyond their nodes.
    pub cdi: &'a CdiEdits,
}

pub fn prepare_launch(
    name: &str,
    spec: &Spec,
    image: &ResolvedImage,
    dirs: &ContainerDirs,
    ctx: &LaunchContext<'_>,
) -> Result<Launch, String> {
    let run = image.config.config.clone().unwrap_or_default();
    let hostname = spec.hostname.clone().unwrap_or_else(|| name.to_string());
    let mut process = process_config(spec, &run, image, &hostname)?;
    cdi::apply_process_edits(&mut process, ctx.cdi);
    let stop_signal = stop_signal(spec, &run)?;
    let userns = userns_setup::userns_config(spec, name, ctx.store_root)?;
    dirs.create()
        .map_err(|e| format!("create {}: {e}", dirs.base.display()))?;
    let mounts = container_mounts(spec, dirs, ctx, &hostname, userns.as_ref())?;
    let device_rules = devices::cgroup_rules(spec, ctx.devices)?;
    let (security, summary) =
        security::security_config(spec, ctx.config_dir, &mounts, ctx.devices, &device_rules)?;
    userns_setup::prepare_upper(dirs, userns.as_ref())?;
    let hooks = spec.hooks.merged(&ctx.cdi.hooks);
    let hooks = container_hooks::container_hooks(name, &hooks, &dirs.base)?;
    let (stdio, stdout, stderr) = container_stdio()?;
    let config = ContainerConfig {
        name: name.to_string(),
        hostname,
        rootfs: rootfs_config(spec, image, dirs),
        process,
        security,
        masked_paths: kernel_paths(spec, MASKED_PATHS),
        readonly_paths: kernel_paths(spec, READONLY_PATHS),
        devices: devices::nodes(ctx.devices, userns.as_ref()),
        writable_sysfs: spec.privileged,
        mounts,
        sysctls: hardening::sysctls(spec),
        userns,
        host_network: spec.network == NetworkMode::Host,
        private_cgroupns: spec.cgroupns == CgroupnsMode::Private,
        hooks,
        init: if spec.init {
            let copy = crate::kernel::container_init::sealed_self_copy();
            Some(copy.map_err(|e| format!("init: {e}"))?)
        } else {
            None
        },
        stdio,
    };
    Ok(Launch {
        config,
        stdout,
        stderr,
        stop_signal,
        resources: resources::cgroup_resources(&spec.resources),
        device_rules,
        summary,
    })
}

/// Every mount beyond the root, in the order they go on: volumes, CDI's,
/// the /etc files berth writes, the update lock, and the secrets last.
fn container_mounts(
    spec: &Spec,
    dirs: &ContainerDirs,
    ctx: &LaunchContext<'_>,
    hostname: &str,
    userns: Option<&UsernsConfig>,
) -> Result<Vec<MountConfig>, String> {
    let mut mounts = hardening::mount_configs(spec, ctx.volume_paths);
    mounts.extend(cdi::mounts(ctx.cdi));
    mounts.extend(networking::etc_mounts(spec, &dirs.base, hostname)?);
    mounts.extend(update_lock::update_lock_mount(spec, &dirs.base)?);
    // Last: /run/secrets goes on top of any mount of /run.
    mounts.extend(secrets::secrets_mount(spec, ctx.config_dir, userns)?);
    Ok(mounts)
}

/// The overlay of the image's layers under the container's upper layer.
fn rootfs_config(spec: &Spec, image: &ResolvedImage, dirs: &ContainerDirs) -> RootfsConfig {
    RootfsConfig {
        lower_dirs: image.layer_dirs.clone(),
        upper_dir: dirs.upper(),
        work_dir: dirs.work(),
        mount_point: dirs.rootfs(),
        scratch_dir: dirs.lowers(),
        shm_size_bytes: spec.shm_size.map_or(SHM_SIZE_BYTES, |s| s.0),
        read_only: spec.read_only,
    }
}

/// Masked or read-only paths: none for a privileged container (Docker's).
fn kernel_paths(spec: &Spec, paths: &[&str]) -> Vec<PathBuf> {
    if spec.privileged {
        return Vec::new();
    }
    paths.iter().map(PathBuf::from).collect()
}

/// The spec's stop signal, else the image's, else SIGTERM.
fn stop_signal(spec: &Spec, run: &RunConfig) -> Result<i32, String> {
    let text = spec
        .stop_signal
        .clone()
        .or(run.stop_signal.clone())
        .unwrap_or_else(|| "SIGTERM".into());
    parse_signal(&text).ok_or_else(|| format!("unknown stop signal {text:?}"))
}

/// argv, env, cwd and the user, by Docker's merge rules.
fn process_config(
    spec: &Spec,
    run: &RunConfig,
    image: &ResolvedImage,
    hostname: &str,
) -> Result<ProcessConfig, String> {
    let args = effective_argv(spec, run);
    if args.is_empty() {
        return Err("no command: the image has no Entrypoint or Cmd and the spec sets none".into());
    }
    let user_text = spec.user.clone().or(run.user.clone()).unwrap_or_default();
    let read_account_file = |p: &str| {
        read_image_file(&image.layer_dirs, Path::new(p), MAX_ACCOUNT_FILE_BYTES)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let group_file = read_account_file("etc/group");
    let mut user = resolve_user(&user_text, &read_account_file("etc/passwd"), &group_file)?;
    for g in &spec.group_add {
        let gid = resolve_group(g, &group_file)?;
        if !user.additional_gids.contains(&gid) {
            user.additional_gids.push(gid);
        }
    }
    let env = effective_env(spec, run, hostname, &user.home);
    let search_path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    let cwd = spec
        .working_dir
        .clone()
        .or(run.working_dir.clone())
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/".into());
    Ok(ProcessConfig {
        args,
        env,
        search_path,
        cwd: PathBuf::from(cwd),
        uid: user.uid,
        gid: user.gid,
        additional_gids: user.additional_gids,
    })
}

/// /dev/null for stdin, and a pipe each for stdout and stderr. Returns the
/// container's ends and the supervisor's read ends.
fn container_stdio() -> Result<(Stdio, OwnedFd, OwnedFd), String> {
    let (stdout_read, stdout_write) =
        pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(|e| format!("pipe: {e}"))?;
    let (stderr_read, stderr_write) =
        pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).map_err(|e| format!("pipe: {e}"))?;
    // The container's ends block: a container that writes faster than we
    // log should wait, not lose output or spin.
    clear_nonblock(&stdout_write)?;
    clear_nonblock(&stderr_write)?;
    let stdin: OwnedFd = File::open("/dev/null")
        .map_err(|e| format!("open /dev/null: {e}"))?
        .into();
    let stdio = Stdio {
        stdin,
        stdout: stdout_write,
        stderr: stderr_write,
        terminal: Vec::new(),
    };
    Ok((stdio, stdout_read, stderr_read))
}

fn clear_nonblock(fd: &OwnedFd) -> Result<(), String> {
    use nix::fcntl::{FcntlArg, fcntl};
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(|e| format!("fcntl: {e}"))?;
    let flags = OFlag::from_bits_truncate(flags) & !OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(flags))
        .map(drop)
        .map_err(|e| format!("fcntl: {e}"))
}

#[cfg(test)]
mod tests;
