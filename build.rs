//! BERTH_BUILD_EPOCH: when this source was committed (SOURCE_DATE_EPOCH
//! when set, as reproducible builds set it; else the git commit's time;
//! else the build's own time). berth as PID 1 never lets the clock run
//! behind it (src/supervisor/daemon/clock_floor.rs): a device without a
//! real-time clock boots in 1970, where every certificate looks not yet
//! valid.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let from_env = std::env::var("SOURCE_DATE_EPOCH").ok();
    let from_git = || {
        let out = Command::new("git")
            .args(["log", "-1", "--format=%ct"])
            .output()
            .ok()?;
        String::from_utf8(out.stdout).ok()
    };
    let epoch = from_env
        .or_else(from_git)
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    println!("cargo:rustc-env=BERTH_BUILD_EPOCH={epoch}");
}
