//! berth.json's `pull`, `store` and `watchdog` sections: how pulls use a
//! slow or metered link, the free space the image store keeps, and the
//! hardware watchdog (docs/config.md).

use serde::{Deserialize, Serialize};

use crate::supervisor::spec::hardening::ByteSize;

/// Free space the store keeps, and whether a pull may prune to find it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// Bytes left free on the store's filesystem (default 64 MiB).
    #[serde(default)]
    pub reserve: Option<ByteSize>,
    /// Before refusing a pull for want of space, remove what nothing uses.
    #[serde(default)]
    pub auto_prune: bool,
}

impl StoreSettings {
    pub fn reserve_bytes(&self) -> u64 {
        self.reserve
            .map_or(crate::image::space::DEFAULT_RESERVE_BYTES, |r| r.0)
    }
}

/// Pulls over a slow or metered link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullSettings {
    /// A cap on the download rate, all layers together, in bytes per
    /// second ("1m" is 1 MiB/s).
    #[serde(default)]
    pub max_rate: Option<ByteSize>,
    /// Layers downloaded at once (default 3; 1 on a metered link).
    #[serde(default)]
    pub max_parallel: Option<u32>,
    /// How long the daemon keeps retrying a container's missing image
    /// after transient failures; unset: until it comes ("0s": fail at once).
    #[serde(default)]
    pub give_up_after: Option<crate::supervisor::spec::service::Seconds>,
}

/// A hardware watchdog berth pets while its loop turns (docs/pid1.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchdogSettings {
    #[serde(default = "default_watchdog_device")]
    pub device: std::path::PathBuf,
    /// Seconds without a sign of life before the machine resets.
    #[serde(default = "default_watchdog_timeout")]
    pub timeout: crate::supervisor::spec::service::Seconds,
}

fn default_watchdog_device() -> std::path::PathBuf {
    "/dev/watchdog".into()
}

fn default_watchdog_timeout() -> crate::supervisor::spec::service::Seconds {
    crate::supervisor::spec::service::Seconds(std::time::Duration::from_secs(30))
}
