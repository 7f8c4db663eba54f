//! Unit tests of limits.rs: validation, files per limit, v1/v2 conversions.

use super::*;
use crate::kernel::cgroup::CpuQuota;

const MIB: u64 = 1024 * 1024;

#[test]
fn shares_and_io_weights_convert_like_runc() {
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(blkio_to_io_weight(10), 1);
    assert_eq!(blkio_to_io_weight(500), 4950);
    assert_eq!(blkio_to_io_weight(1000), 10_000);
}

#[test]
fn swap_is_a_total_on_v1_and_the_excess_on_v2() {
    let total = SwapLimit::Bytes(48 * MIB);
    assert_eq!(memsw_v1(total), 48 * 1024 * 1024);
    assert_eq!(swap_max_v2(total, 16 * MIB), 32 * 1024 * 1024);
    assert_eq!(swap_max_v2(SwapLimit::Bytes(16 * MIB), 16 * MIB), 0);
    assert_eq!(memsw_v1(SwapLimit::Unlimited), -1);
    assert_eq!(swap_max_v2(SwapLimit::Unlimited, 16 * MIB), -1);
}

#[test]
fn memsw_goes_first_only_when_raising() {
    // Fresh cgroup: memory unlimited (huge), so lowering: memory first.
    assert!(!memsw_first(u64::MAX / 2, SwapLimit::Bytes(32 * MIB)));
    assert!(memsw_first(16 * MIB, SwapLimit::Bytes(64 * MIB)));
    assert!(!memsw_first(64 * MIB, SwapLimit::Bytes(32 * MIB)));
    assert!(memsw_first(64 * MIB, SwapLimit::Unlimited));
}

fn invalid(r: Resources) -> (&'static str, String) {
    validate(&r).expect_err("should be invalid")
}

#[test]
fn validation_names_the_limit_and_the_bound() {
    let quota = |quota_us, period_us| {
        Some(CpuQuota {
            quota_us,
            period_us,
        })
    };
    let (limit, why) = invalid(Resources {
        cpu_quota: quota(50_000, 500),
        ..Default::default()
    });
    assert_eq!(limit, "cpus");
    assert!(
        why.contains("period_us 500 is outside 1000..=1000000"),
        "{why}"
    );
    let cases = [
        (
            "cpus",
            Resources {
                cpu_quota: quota(999, 100_000),
                ..Default::default()
            },
        ),
        (
            "cpu_shares",
            Resources {
                cpu_shares: Some(1),
                ..Default::default()
            },
        ),
        (
            "pids_limit",
            Resources {
                pids_limit: Some(0),
                ..Default::default()
            },
        ),
        (
            "io_weight",
            Resources {
                io_weight: Some(5),
                ..Default::default()
            },
        ),
        (
            "memory",
            Resources {
                memory_limit: Some(MIB),
                ..Default::default()
            },
        ),
        (
            "optional",
            Resources {
                optional: vec!["memroy".into()],
                ..Default::default()
            },
        ),
    ];
    for (limit, r) in cases {
        assert_eq!(invalid(r).0, limit);
    }
}

#[test]
fn a_full_sensible_set_is_valid() {
    let full = Resources {
        memory_limit: Some(64 * MIB),
        memory_reservation: Some(32 * MIB),
        memory_swap: Some(SwapLimit::Bytes(64 * MIB)),
        cpu_quota: Some(CpuQuota {
            quota_us: 50_000,
            period_us: 100_000,
        }),
        cpu_shares: Some(512),
        pids_limit: Some(100),
        cpuset_cpus: Some("0-1,3".into()),
        cpuset_mems: Some("0".into()),
        io_weight: Some(300),
        optional: vec!["io_weight".into()],
    };
    assert_eq!(validate(&full), Ok(()));
}

#[test]
fn swap_needs_memory_and_covers_it() {
    let swap_only = Resources {
        memory_swap: Some(SwapLimit::Unlimited),
        ..Default::default()
    };
    assert_eq!(invalid(swap_only).0, "memory_swap");
    let below = Resources {
        memory_limit: Some(64 * MIB),
        memory_swap: Some(SwapLimit::Bytes(32 * MIB)),
        ..Default::default()
    };
    assert_eq!(invalid(below).0, "memory_swap");
    let reserve_above = Resources {
        memory_limit: Some(64 * MIB),
        memory_reservation: Some(65 * MIB),
        ..Default::default()
    };
    assert_eq!(invalid(reserve_above).0, "memory_reservation");
}

#[test]
fn cpu_lists_follow_the_kernel_syntax() {
    for good in ["0", "0-1,3", "0-15:2/4", " 2 "] {
        assert_eq!(check_list(good), Ok(()), "{good}");
    }
    for bad in ["", "a", "3-1", "0,,1", "1-", "0-3:x"] {
        assert!(check_list(bad).is_err(), "{bad}");
    }
}

#[test]
fn every_limit_has_its_files_on_both_versions() {
    for limit in LIMIT_NAMES {
        for v2 in [false, true] {
            assert!(!interface(limit, v2).1.is_empty());
        }
    }
    assert_eq!(
        interface("io_weight", false).1,
        ["blkio.weight", "blkio.bfq.weight"]
    );
    assert_eq!(interface("memory_swap", true).1, ["memory.swap.max"]);
    assert_eq!(interface("cpu_shares", true).1, ["cpu.weight"]);
}
