//! From a spec and its image to the kernel's plain `ContainerConfig`: the
//! argv/env/cwd/user merge rules (Docker's), the container's directories,
//! its stdio pipes, and the default hardening.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

use super::spec::Spec;
use super::user::resolve_user;
use crate::image::lookup::{ResolvedImage, read_image_file};
use crate::image::oci::RunConfig;
use crate::kernel::caps::DOCKER_DEFAULT;
use crate::kernel::config::{ContainerConfig, ProcessConfig, RootfsConfig, SecurityConfig, Stdio};
use crate::kernel::signal::parse_signal;

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

pub fn prepare_launch(
    name: &str,
    spec: &Spec,
    image: &ResolvedImage,
    dirs: &ContainerDirs,
) -> Result<Launch, String> {
    let run = image.config.config.clone().unwrap_or_default();
    let args = effective_argv(spec, &run);
    if args.is_empty() {
        return Err("no command: the image has no Entrypoint or Cmd and the spec sets none".into());
    }
    let user_text = spec.user.clone().or(run.user.clone()).unwrap_or_default();
    let read_account_file = |p: &str| {
        read_image_file(&image.layer_dirs, Path::new(p), MAX_ACCOUNT_FILE_BYTES)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let user = resolve_user(
        &user_text,
        &read_account_file("etc/passwd"),
        &read_account_file("etc/group"),
    )?;
    let hostname = spec.hostname.clone().unwrap_or_else(|| name.to_string());
    let env = effective_env(spec, &run, &hostname, &user.home);
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
    let stop_signal_text = spec
        .stop_signal
        .clone()
        .or(run.stop_signal.clone())
        .unwrap_or_else(|| "SIGTERM".into());
    let stop_signal = parse_signal(&stop_signal_text)
        .ok_or_else(|| format!("unknown stop signal {stop_signal_text:?}"))?;
    dirs.create()
        .map_err(|e| format!("create {}: {e}", dirs.base.display()))?;
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
    let config = ContainerConfig {
        name: name.to_string(),
        hostname,
        rootfs: RootfsConfig {
            lower_dirs: image.layer_dirs.clone(),
            upper_dir: dirs.upper(),
            work_dir: dirs.work(),
            mount_point: dirs.rootfs(),
            scratch_dir: dirs.lowers(),
            shm_size_bytes: SHM_SIZE_BYTES,
        },
        process: ProcessConfig {
            args,
            env,
            search_path,
            cwd: PathBuf::from(cwd),
            uid: user.uid,
            gid: user.gid,
            additional_gids: user.additional_gids,
        },
        security: SecurityConfig {
            capabilities: DOCKER_DEFAULT.to_vec(),
            no_new_privs: true,
        },
        masked_paths: MASKED_PATHS.iter().map(PathBuf::from).collect(),
        readonly_paths: READONLY_PATHS.iter().map(PathBuf::from).collect(),
        stdio: Stdio {
            stdin,
            stdout: stdout_write,
            stderr: stderr_write,
        },
    };
    Ok(Launch {
        config,
        stdout: stdout_read,
        stderr: stderr_read,
        stop_signal,
    })
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
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> RunConfig {
        let v = |x: Option<&[&str]>| x.map(|a| a.iter().map(|s| s.to_string()).collect());
        RunConfig {
            entrypoint: v(entrypoint),
            cmd: v(cmd),
            ..RunConfig::default()
        }
    }

    #[test]
    fn argv_follows_docker_rules() {
        let img = image(Some(&["/entry"]), Some(&["default"]));
        assert_eq!(
            effective_argv(&spec(r#"{"image":"x"}"#), &img),
            ["/entry", "default"]
        );
        assert_eq!(
            effective_argv(&spec(r#"{"image":"x","command":["c"]}"#), &img),
            ["/entry", "c"]
        );
        assert_eq!(
            effective_argv(&spec(r#"{"image":"x","entrypoint":["/e2"]}"#), &img),
            ["/e2"]
        );
        assert!(effective_argv(&spec(r#"{"image":"x"}"#), &image(None, None)).is_empty());
    }

    #[test]
    fn env_merges_by_key_with_spec_winning() {
        let img = RunConfig {
            env: Some(vec!["PATH=/img".into(), "A=1".into(), "B=2".into()]),
            ..RunConfig::default()
        };
        let env = effective_env(
            &spec(r#"{"image":"x","env":{"B":"3"}}"#),
            &img,
            "web",
            "/root",
        );
        assert_eq!(
            env,
            ["A=1", "B=3", "HOME=/root", "HOSTNAME=web", "PATH=/img"]
        );
    }
}
