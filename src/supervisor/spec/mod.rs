//! The container spec: one JSON file per container in the config
//! directory, documented field by field in docs/spec.md. Unknown fields are
//! errors, so a typo never silently does nothing.

pub mod bounds;
pub mod cdi;
pub mod cycles;
pub mod device_match;
pub mod device_rules;
pub mod devices;
pub mod hardening;
pub mod hooks;
pub mod host_network;
pub mod load;
pub mod logging;
pub mod machine_settings;
pub mod plugin_settings;
pub mod position;
pub mod redact;
pub mod secrets;
pub mod service;
pub mod settings;
pub mod update;
pub mod validate;
pub mod validate_bounds;
pub mod validate_hardening;
pub mod validate_mounts;
pub mod wait_for;
pub mod webhooks;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::supervisor::spec::devices::DeviceSpec;
use crate::supervisor::spec::hardening::{
    ByteSize, CapabilitiesSpec, CgroupnsMode, LandlockSpec, MountSpec, ResourcesSpec, Rlimits,
    UsernsSpec,
};
use crate::supervisor::spec::secrets::SecretSpec;
use crate::supervisor::spec::service::{
    DependsOn, HealthcheckSpec, HooksSpec, LoggingSpec, NetworkMode, PortSpec,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Image reference, e.g. "localhost/demo/busybox:latest".
    pub image: String,
    /// Replaces the image's Cmd.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Replaces the image's Entrypoint (and, as in Docker, drops its Cmd).
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// Added to (and overriding by key) the image's Env.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Replaces the image's WorkingDir.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// "name", "uid", "name:group" or "uid:gid"; replaces the image's User.
    #[serde(default)]
    pub user: Option<String>,
    /// Defaults to the container's name.
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub restart: RestartSpec,
    /// Signal that asks the container to stop; defaults to the image's
    /// StopSignal, then SIGTERM.
    #[serde(default)]
    pub stop_signal: Option<String>,
    /// Seconds between the stop signal and SIGKILL.
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout: u64,
    /// When to pull the image from its registry.
    #[serde(default)]
    pub pull: PullPolicy,
    /// Extra supplementary groups (names from the image's /etc/group, or gids).
    #[serde(default)]
    pub group_add: Vec<String>,
    #[serde(default)]
    pub capabilities: CapabilitiesSpec,
    /// Off by default, as in Docker and Podman: setuid binaries and file
    /// capabilities work (seccomp and Landlock are applied either way).
    #[serde(default)]
    pub no_new_privileges: bool,
    /// "default", "unconfined", or the path of a Docker-format profile
    /// (relative paths are relative to the config directory).
    #[serde(default = "default_seccomp")]
    pub seccomp: String,
    #[serde(default)]
    pub landlock: LandlockSpec,
    /// Mount the image's root read-only.
    #[serde(default)]
    pub read_only: bool,
    /// A cgroup namespace of its own (Docker's default on cgroup v2), or
    /// the host's.
    #[serde(default)]
    pub cgroupns: CgroupnsMode,
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
    /// Host devices the container may use: `"HOST[:CONTAINER[:PERMS]]"`
    /// or `{"path", "container_path", "permissions", "optional"}`.
    #[serde(default)]
    pub devices: Vec<DeviceSpec>,
    /// Extra cgroup device rules in Docker's form, e.g. "c 188:* rwm".
    #[serde(default)]
    pub device_cgroup_rules: Vec<String>,
    /// Docker's --privileged: every capability the daemon holds, no
    /// seccomp, no Landlock, every host device, /sys and /proc writable.
    #[serde(default)]
    pub privileged: bool,
    /// Docker's --init: a minimal init (berth itself, from a sealed copy)
    /// is PID 1, forwarding signals to the command and reaping zombies.
    #[serde(default)]
    pub init: bool,
    /// Size of /dev/shm (default 64m).
    #[serde(default)]
    pub shm_size: Option<ByteSize>,
    /// Namespaced kernel parameters, e.g. {"net.ipv4.ip_forward": "1"}.
    #[serde(default)]
    pub sysctls: BTreeMap<String, String>,
    #[serde(default)]
    pub resources: ResourcesSpec,
    /// Resource limits by name ("nofile", "nproc", "core", ...).
    #[serde(default)]
    pub rlimits: Rlimits,
    /// Run in a user namespace: "auto" or explicit id maps.
    #[serde(default)]
    pub userns: Option<UsernsSpec>,
    /// Containers that must reach a condition before this one starts;
    /// stopped after this one at shutdown.
    #[serde(default)]
    pub depends_on: DependsOn,
    #[serde(default)]
    pub healthcheck: Option<HealthcheckSpec>,
    #[serde(default)]
    pub logging: LoggingSpec,
    #[serde(default)]
    pub network: NetworkMode,
    /// Host ports published to the container (`network: "cni"` only).
    #[serde(default)]
    pub ports: Vec<PortSpec>,
    #[serde(default)]
    pub hooks: HooksSpec,
    /// Files from the config directory's secrets/, copied onto a
    /// read-only tmpfs at /run/secrets at each start (spec/secrets.rs).
    #[serde(default)]
    pub secrets: Vec<SecretSpec>,
    /// Follow the image's tag in its registry (docs/update.md).
    #[serde(default)]
    pub update: update::UpdateSpec,
    /// Conditions of the world it waits for before it starts.
    #[serde(default)]
    pub wait_for: Vec<wait_for::WaitForSpec>,
}

pub const SECCOMP_DEFAULT: &str = "default";
pub const SECCOMP_UNCONFINED: &str = "unconfined";

fn default_seccomp() -> String {
    SECCOMP_DEFAULT.to_string()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullPolicy {
    /// Pull only when the store does not have the image.
    #[default]
    Missing,
    /// Pull once each time the daemon first starts the container.
    Always,
    /// Never pull: a missing image is an error.
    Never,
}

pub const DEFAULT_STOP_TIMEOUT_SECS: u64 = 10;

fn default_stop_timeout() -> u64 {
    DEFAULT_STOP_TIMEOUT_SECS
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartSpec {
    #[serde(default)]
    pub policy: RestartPolicy,
    /// With "on-failure": how many restarts at most (unlimited if absent).
    #[serde(default)]
    pub max_retries: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    OnFailure,
    Always,
    /// Like "always", except after a stop asked for through the API: then
    /// it stays stopped until started again, even across daemon restarts.
    UnlessStopped,
}
