//! The kernel features CI expects, asserted up front: Landlock ABI >= 4,
//! seccomp filters, user namespaces, overlayfs and a cgroup hierarchy.
//! Outside CI a missing one is reported and skipped; with `CI` set (or
//! BERTH_TEST_REQUIRE_FEATURES=1, as scripts/test.sh sets it) this test
//! fails, naming every feature missing at once.

mod common;

use common::features::{CI_FEATURES, missing, required};

#[test]
fn the_kernel_has_every_feature_ci_expects() {
    let absent: Vec<String> = CI_FEATURES
        .iter()
        .filter_map(|f| missing(*f).map(|why| format!("{f}: {why}")))
        .collect();
    if absent.is_empty() {
        return;
    }
    if required() {
        panic!("missing kernel features:\n  {}", absent.join("\n  "));
    }
    eprintln!(
        "skipped, missing kernel features:\n  {}",
        absent.join("\n  ")
    );
}
