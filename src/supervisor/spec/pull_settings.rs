//! berth.json's `pull` and `store` sections: how pulls use a slow or
//! metered link, and the free space the image store keeps
//! (docs/config.md).

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
}
