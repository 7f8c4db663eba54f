//! Checks of a spec's `logging` (driver, size, files, flood limit).
//! Writing logs is output/.

use serde::{Deserialize, Serialize};

use crate::supervisor::spec::bounds::{
    LOG_BURST_BYTES, LOG_MAX_SIZE_BYTES, LOG_RATE_BYTES, MEMORY_LOG_BYTES,
};
use crate::supervisor::spec::service::LoggingSpec;

/// Where a container's output is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogDriver {
    /// Docker's json-file format in rotated files on disk.
    #[default]
    JsonFile,
    /// A RAM ring of `max_size`, outside the daemon's heap; never written
    /// to disk, lost on reboot (flash-friendly).
    Memory,
}

/// The most rotated files a container's log may keep.
pub const MAX_LOG_FILES: u32 = 100;

/// Semantic checks of a spec's `logging`: (field path, message) pairs, as
/// validate.rs reports them.
pub fn check_logging(spec: &LoggingSpec) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut problem = |field: &str, message: String| {
        out.push((vec!["logging".to_string(), field.to_string()], message));
    };
    let size_bound = match spec.driver {
        Some(LogDriver::Memory) => &MEMORY_LOG_BYTES,
        _ => &LOG_MAX_SIZE_BYTES,
    };
    if let Err(why) = size_bound.check(spec.max_size.0) {
        problem("max_size", why);
    }
    if !(1..=MAX_LOG_FILES).contains(&spec.max_files) {
        problem("max_files", format!("must be 1 to {MAX_LOG_FILES}"));
    }
    if let Err(why) = LOG_RATE_BYTES.check(spec.rate.0) {
        problem("rate", why);
    }
    if let Err(why) = LOG_BURST_BYTES.check(spec.burst.0) {
        problem("burst", why);
    } else if spec.burst.0 < spec.rate.0 {
        problem(
            "burst",
            format!("must be at least the rate ({} bytes)", spec.rate.0),
        );
    }
    out
}
