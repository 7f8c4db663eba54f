//! The kernel features the suite expects, checked by the test's own means
//! (not berth's): outside CI a test whose feature is missing skips and
//! says why; in CI (`CI` set, or `BERTH_TEST_REQUIRE_FEATURES=1` as
//! scripts/test.sh sets it) it fails, so a kernel path is never skipped
//! in silence.

use std::fmt;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// Landlock with at least this ABI version.
    LandlockAbi(u32),
    /// Seccomp filters (SECCOMP_MODE_FILTER).
    Seccomp,
    /// Unprivileged-enough user namespaces: root may create them.
    UserNamespaces,
    /// overlayfs in /proc/filesystems.
    Overlayfs,
    /// A mounted cgroup hierarchy: v2 (unified) or v1 with pids.
    Cgroups,
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Feature::LandlockAbi(n) => write!(f, "Landlock ABI >= {n}"),
            Feature::Seccomp => write!(f, "seccomp filters"),
            Feature::UserNamespaces => write!(f, "user namespaces"),
            Feature::Overlayfs => write!(f, "overlayfs"),
            Feature::Cgroups => write!(f, "cgroup v1 or v2"),
        }
    }
}

/// Every feature CI's kernel must have.
pub const CI_FEATURES: &[Feature] = &[
    Feature::LandlockAbi(4),
    Feature::Seccomp,
    Feature::UserNamespaces,
    Feature::Overlayfs,
    Feature::Cgroups,
];

/// The kernel's Landlock ABI (0 without Landlock), asked directly.
pub fn landlock_abi() -> u32 {
    // SAFETY: with a null attribute pointer, size 0 and
    // LANDLOCK_CREATE_RULESET_VERSION the call only returns the version.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32,
        )
    };
    u32::try_from(ret).unwrap_or(0)
}

/// Why `feature` is missing, or None when the kernel has it.
pub fn missing(feature: Feature) -> Option<String> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    match feature {
        Feature::LandlockAbi(n) => {
            let abi = landlock_abi();
            (abi < n).then(|| format!("the kernel's Landlock ABI is {abi}"))
        }
        Feature::Seccomp => {
            let actions = read("/proc/sys/kernel/seccomp/actions_avail");
            (!actions.contains("errno")).then(|| {
                "no /proc/sys/kernel/seccomp/actions_avail with errno (no seccomp filters)".into()
            })
        }
        Feature::UserNamespaces => {
            let max: u64 = read("/proc/sys/user/max_user_namespaces")
                .trim()
                .parse()
                .unwrap_or(0);
            (max == 0).then(|| "user.max_user_namespaces is 0 or missing".into())
        }
        Feature::Overlayfs => {
            let has = || read("/proc/filesystems").contains("\toverlay\n");
            if !has() {
                // A module not loaded yet is not a missing feature.
                let _ = std::process::Command::new("modprobe")
                    .arg("overlay")
                    .status();
            }
            (!has()).then(|| "no overlay in /proc/filesystems (modprobe overlay failed)".into())
        }
        Feature::Cgroups => {
            let v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
            let v1 = Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists();
            (!v1 && !v2).then(|| "neither cgroup v2 nor a v1 pids hierarchy is mounted".into())
        }
    }
}

/// Whether missing features fail the test instead of skipping it.
pub fn required() -> bool {
    let ci = std::env::var("CI").unwrap_or_default();
    (!ci.is_empty() && ci != "0" && ci != "false")
        || std::env::var("BERTH_TEST_REQUIRE_FEATURES").as_deref() == Ok("1")
}

/// True when the kernel has `feature`. Otherwise: false (the caller
/// returns, skipping) outside CI, a panic naming what is missing in CI.
pub fn require_feature(feature: Feature) -> bool {
    let Some(why) = missing(feature) else {
        return true;
    };
    if required() {
        panic!("this test needs {feature} and CI requires it: {why}");
    }
    eprintln!("skipped: needs {feature}: {why} (CI=true makes this a failure)");
    false
}
