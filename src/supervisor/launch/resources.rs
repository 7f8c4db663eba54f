//! A spec's `resources` in the cgroup layer's terms, with berth's
//! defaults: a pids limit for every container, nothing else unasked.

use crate::kernel::cgroup::{CpuQuota, Resources, SwapLimit};
use crate::supervisor::spec::hardening::{ResourcesSpec, SwapSize};

/// Enough for any ordinary service; a fork bomb stops here instead of
/// exhausting the machine's pids. `pids_limit: 0` lifts it.
pub const DEFAULT_PIDS_LIMIT: u64 = 4096;
/// The CFS period `cpus` is expressed in (Docker's).
const CPU_PERIOD_US: u64 = 100_000;

/// Without `memory_swap`, a memory limit also caps swap at zero (Docker
/// would allow as much swap again): swapping wears a device's flash and
/// hides a leak. Kernels without swap accounting skip that part quietly.
pub fn cgroup_resources(r: &ResourcesSpec) -> Resources {
    let mut optional = r.optional.clone();
    let memory_swap = match (r.memory_swap, r.memory) {
        (Some(SwapSize::Bytes(b)), _) => Some(SwapLimit::Bytes(b)),
        (Some(SwapSize::Unlimited), _) => Some(SwapLimit::Unlimited),
        (None, Some(m)) => {
            optional.push("memory_swap".into());
            Some(SwapLimit::Bytes(m.0))
        }
        (None, None) => None,
    };
    Resources {
        memory_limit: r.memory.map(|m| m.0),
        memory_reservation: r.memory_reservation.map(|m| m.0),
        memory_swap,
        cpu_quota: r.cpus.map(|c| CpuQuota {
            quota_us: (c * CPU_PERIOD_US as f64).round() as u64,
            period_us: CPU_PERIOD_US,
        }),
        cpu_shares: r.cpu_shares,
        pids_limit: match r.pids_limit {
            None => Some(DEFAULT_PIDS_LIMIT),
            Some(0) => None,
            Some(n) => Some(n),
        },
        cpuset_cpus: r.cpuset_cpus.clone(),
        cpuset_mems: r.cpuset_mems.clone(),
        io_weight: r.io_weight,
        optional,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_become_a_quota_and_pids_get_a_default() {
        let r: ResourcesSpec = serde_json::from_str(r#"{"cpus": 0.5, "memory": "64m"}"#).unwrap();
        let c = cgroup_resources(&r);
        assert_eq!(
            c.cpu_quota,
            Some(CpuQuota {
                quota_us: 50_000,
                period_us: 100_000
            })
        );
        assert_eq!(c.memory_limit, Some(64 << 20));
        assert_eq!(c.pids_limit, Some(DEFAULT_PIDS_LIMIT));
        assert_eq!(c.memory_swap, Some(SwapLimit::Bytes(64 << 20)));
        assert_eq!(c.optional, ["memory_swap"]);
        let r: ResourcesSpec = serde_json::from_str(r#"{"pids_limit": 0}"#).unwrap();
        assert_eq!(cgroup_resources(&r).pids_limit, None);
    }
}
