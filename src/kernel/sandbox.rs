//! Confining a helper process (layer unpacking, later pulling) before it
//! touches untrusted bytes: capabilities cut to a list, no_new_privs,
//! Landlock to the paths it needs, and a seccomp filter refusing what no
//! helper has business doing. Irreversible for the calling process.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use caps::{CapSet, Capability};
use landlock::{
    ABI, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
    path_beneath_rules,
};
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter};

/// The Landlock ABI berth asks for; pinned so a crate upgrade never adds
/// restrictions silently. Older kernels get what they support.
const LANDLOCK_ABI: ABI = ABI::V5;

#[derive(Debug, Clone, Default)]
pub struct Confinement {
    /// Read (and execute) beneath these paths.
    pub read_only: Vec<PathBuf>,
    /// Any file operation beneath these paths.
    pub read_write: Vec<PathBuf>,
    /// Capabilities kept; every other one leaves every set.
    pub keep_caps: Vec<Capability>,
}

#[derive(Debug, thiserror::Error)]
#[error("confine helper: {step}: {reason}")]
pub struct SandboxError {
    pub step: &'static str,
    pub reason: String,
}

fn fail(step: &'static str) -> impl Fn(String) -> SandboxError {
    move |reason| SandboxError { step, reason }
}

/// How much of Landlock the kernel enforced: "full", "partial" or "none".
pub fn describe(status: RulesetStatus) -> &'static str {
    match status {
        RulesetStatus::FullyEnforced => "full",
        RulesetStatus::PartiallyEnforced => "partial",
        RulesetStatus::NotEnforced => "none",
    }
}

/// Applies the confinement to the calling (single-threaded) process.
/// Returns how much of Landlock was enforced.
pub fn confine(c: &Confinement) -> Result<&'static str, SandboxError> {
    // Compiled before anything is dropped, so nothing fails half-way for
    // want of memory or a privilege.
    let filter = helper_filter().map_err(fail("compile seccomp filter"))?;
    keep_only_caps(&c.keep_caps).map_err(fail("drop capabilities"))?;
    let landlock = Ruleset::default()
        .handle_access(AccessFs::from_all(LANDLOCK_ABI))
        .and_then(|r| r.create())
        .and_then(|r| {
            r.add_rules(path_beneath_rules(
                &c.read_only,
                AccessFs::from_read(LANDLOCK_ABI),
            ))
        })
        .and_then(|r| {
            r.add_rules(path_beneath_rules(
                &c.read_write,
                AccessFs::from_all(LANDLOCK_ABI),
            ))
        })
        // restrict_self also sets no_new_privs, which seccomp needs too.
        .and_then(|r| r.restrict_self())
        .map_err(|e| SandboxError {
            step: "landlock",
            reason: e.to_string(),
        })?;
    // Last: after this, even the calls above would be refused.
    seccompiler::apply_filter(&filter).map_err(|e| SandboxError {
        step: "seccomp",
        reason: e.to_string(),
    })?;
    Ok(describe(landlock.ruleset))
}

fn keep_only_caps(keep: &[Capability]) -> Result<(), String> {
    let keep_set: HashSet<Capability> = keep.iter().copied().collect();
    for cap in caps::all() {
        if !keep_set.contains(&cap) && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, cap).map_err(|e| e.to_string())?;
        }
    }
    caps::clear(None, CapSet::Ambient).map_err(|e| e.to_string())?;
    caps::clear(None, CapSet::Inheritable).map_err(|e| e.to_string())?;
    let current = caps::read(None, CapSet::Permitted).map_err(|e| e.to_string())?;
    let kept: caps::CapsHashSet = current
        .intersection(&keep_set.iter().copied().collect())
        .copied()
        .collect();
    caps::set(None, CapSet::Effective, &kept).map_err(|e| e.to_string())?;
    caps::set(None, CapSet::Permitted, &kept).map_err(|e| e.to_string())
}

/// Calls a helper never needs, refused with EPERM: networking, tracing,
/// mounting and namespaces, kernel keys and modules, BPF, io_uring,
/// running another program.
fn denied_syscalls() -> Vec<libc::c_long> {
    let mut v = vec![
        libc::SYS_socket,
        libc::SYS_socketpair,
        libc::SYS_connect,
        libc::SYS_bind,
        libc::SYS_listen,
        libc::SYS_accept,
        libc::SYS_accept4,
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_fsopen,
        libc::SYS_fsmount,
        libc::SYS_fsconfig,
        libc::SYS_fspick,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_mount_setattr,
        libc::SYS_bpf,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_perf_event_open,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_userfaultfd,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_personality,
        libc::SYS_acct,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_syslog,
        libc::SYS_quotactl,
        libc::SYS_execve,
        libc::SYS_execveat,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([libc::SYS_iopl, libc::SYS_ioperm]);
    v
}

fn helper_filter() -> Result<BpfProgram, String> {
    let rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> = denied_syscalls()
        .into_iter()
        .map(|s| (s, Vec::new()))
        .collect();
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| format!("{e:?}"))?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| e.to_string())?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())
}
