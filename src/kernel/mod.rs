//! Mechanism only: turns one plain [`config::ContainerConfig`] into a running,
//! isolated process, and runs host programs under a deadline
//! ([`command`]). Knows nothing of specs, JSON, images or the network.

pub mod blockdev;
pub mod caps;
pub mod cgroup;
pub mod cgroupns;
mod child;
pub mod clock;
pub mod command;
pub mod config;
pub mod config_drive;
pub mod container_hooks;
pub mod container_init;
mod devices;
pub mod error;
pub mod exec;
pub mod exec_tty;
pub mod gpt;
mod handshake;
pub mod helper;
pub mod host_devices;
pub mod hotplug_node;
pub mod landlock;
pub mod machine;
pub mod memory;
mod mounts;
pub mod net;
pub mod net_state;
mod overlay;
mod rootfs;
pub mod rtnetlink;
pub mod sandbox;
pub mod seccomp;
pub mod signal;
pub mod spawn;
mod spawn_error;
pub mod start_clock;
mod sys;
pub mod sysfs_devices;
mod tmpfs_files;
pub mod uevent;
pub mod userns;
pub mod watchdog;

pub use config::ContainerConfig;
pub use error::SysError;
pub use spawn::{PausedContainer, SpawnError, Starting, spawn_container, spawn_paused};
pub use sys::start_writeback;
