//! Profile to a stack of BPF programs for one architecture, capability set
//! and kernel version. Pure computation: nothing here touches the kernel.
//!
//! Why a stack. seccompiler builds filters with one match action and one
//! mismatch action, while a profile mixes actions (ALLOW lists, ERRNO(38)
//! for clone3, a default ERRNO(1)). The kernel runs every installed filter
//! on every syscall and keeps the most restrictive result: KILL_PROCESS >
//! KILL_THREAD > TRAP > ERRNO > TRACE > LOG > ALLOW; between results of the
//! same kind (ERRNO(1) vs ERRNO(38)) the most recently installed filter wins
//! (kernel/seccomp.c seccomp_run_filters). So, installed in this order:
//!
//! 1. the default filter: ALLOW every syscall some applicable rule names
//!    (under that rule's conditions, whatever its action), the profile's
//!    default action for everything else. Left out when the default is
//!    ALLOW, since it could only say ALLOW;
//! 2. one filter per distinct non-ALLOW rule action A, in order of first
//!    appearance: A where a rule with action A matches, ALLOW elsewhere.
//!    Filter 1 says ALLOW exactly where some rule matches, so for any call
//!    at most one of filters 1 and 2 objects, and that one decides, even
//!    when A is less restrictive than the default (ERRNO(38) under a KILL
//!    default). Only where rules with different actions overlap do two
//!    objections meet: the more restrictive wins, and between two ERRNO
//!    values the later filter's;
//! 3. when the default is ERRNO: ENOSYS for syscall numbers above the
//!    highest one the profile names for this architecture, so syscalls
//!    newer than the profile look unimplemented and libc falls back to an
//!    older call, as runc does. Filter 1 gives those numbers the default
//!    ERRNO too (the profile names none of them), so filter 3 must be
//!    installed after it for its ENOSYS to win. It never loosens anything:
//!    it only says ALLOW or ERRNO, and ALLOW never overrides another filter.
//!
//! Per ABI. seccompiler filters check the architecture first and
//! KILL_PROCESS any other, and build for 64-bit targets only. Docker's
//! archMap also covers the 32-bit ABI (i386 on x86_64, arm on aarch64), so
//! the same stack is compiled again for it, from its own syscall numbers,
//! and retargeted to its audit arch (`abi.rs`, `bpf.rs`). Each program of
//! either stack lets the other ABI's calls through, so for any call only
//! its own ABI's stack decides, in that stack's order; any third arch is
//! killed. x32 calls (native audit arch, number bit 30 set) match no rule,
//! so they get the default action, and ENOSYS from filter 3.

use std::collections::{BTreeMap, BTreeSet};

use caps::Capability;
use seccompiler::{
    BackendError, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

use super::abi::{self, Abi};
use super::bpf;
use super::profile::{Action, ArgCondition, CmpOp, Profile, Rule};

/// What the filters are compiled for.
#[derive(Debug, Clone, Copy)]
pub struct CompileContext<'a> {
    pub arch: TargetArch,
    /// The container's capabilities (Docker checks the bounding set).
    pub capabilities: &'a [Capability],
    /// (major, minor) of the kernel that will run the filters.
    pub kernel: (u32, u32),
}

/// BPF programs to install in order (see the module comment).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filters {
    pub programs: Vec<BpfProgram>,
}

impl Filters {
    pub fn instruction_count(&self) -> usize {
        self.programs.iter().map(Vec::len).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("compile seccomp filter: no syscall table for {0:?}")]
    UnsupportedArch(TargetArch),
    #[error(
        "compile seccomp filter for {0:?}: seccompiler's arch check is not where berth expects it"
    )]
    Layout(TargetArch),
    #[error("compile seccomp filter for {what}: {source}")]
    Filter {
        what: String,
        #[source]
        source: BackendError,
    },
}

/// Compiles `profile` into the filter stack for `ctx`: the native ABI's
/// programs, then the compat ABI's, each skipping the other's calls.
pub fn compile(profile: &Profile, ctx: &CompileContext) -> Result<Filters, CompileError> {
    let native = abi::native(ctx.arch).ok_or(CompileError::UnsupportedArch(ctx.arch))?;
    let applicable: Vec<&Rule> = profile
        .rules
        .iter()
        .filter(|r| rule_applies(r, ctx))
        .collect();
    let mut programs = stack(profile, &applicable, ctx.arch, native)?;
    if let Some(compat) = abi::compat(ctx.arch) {
        let compat_programs = stack(profile, &applicable, ctx.arch, compat)?;
        programs = programs
            .into_iter()
            .map(|p| bpf::skipping(compat.audit, p))
            .chain(
                compat_programs
                    .into_iter()
                    .map(|p| bpf::skipping(native.audit, p)),
            )
            .collect();
    }
    Ok(Filters { programs })
}

/// The stack for one ABI (see the module comment). Rules apply or not by
/// the host's arch (moby compares `includes.arches` with GOARCH for every
/// ABI of the archMap); their names resolve in the ABI's own table.
fn stack(
    profile: &Profile,
    applicable: &[&Rule],
    arch: TargetArch,
    abi: Abi,
) -> Result<Vec<BpfProgram>, CompileError> {
    let mut programs = Vec::new();
    if profile.default_action != Action::Allow {
        let every_rule =
            syscall_rules(applicable, abi).map_err(failed("the default action", abi))?;
        programs.push(build(
            every_rule,
            Action::Allow,
            profile.default_action,
            arch,
            abi,
        )?);
    }
    let mut actions: Vec<Action> = Vec::new();
    for rule in applicable {
        if rule.action != Action::Allow && !actions.contains(&rule.action) {
            actions.push(rule.action);
        }
    }
    for action in actions {
        let with_action: Vec<&Rule> = applicable
            .iter()
            .copied()
            .filter(|r| r.action == action)
            .collect();
        let rules =
            syscall_rules(&with_action, abi).map_err(failed(&format!("{action:?}"), abi))?;
        // Names unknown on this ABI can leave nothing to match.
        if !rules.is_empty() {
            programs.push(build(rules, action, Action::Allow, arch, abi)?);
        }
    }
    if let (Action::Errno(_), Some(max)) = (profile.default_action, highest_named(profile, abi)) {
        programs.push(bpf::enosys_above(abi, max));
    }
    Ok(programs)
}

/// Go's name for the arch, as `includes.arches` spells it (moby goToNative).
fn go_arch(arch: TargetArch) -> &'static str {
    match arch {
        TargetArch::x86_64 => "amd64",
        TargetArch::aarch64 => "arm64",
        TargetArch::riscv64 => "riscv64",
    }
}

/// moby's setupSeccomp: excluded if any `excludes` entry holds, included
/// only if every `includes` entry holds (all caps, one of the arches).
fn rule_applies(rule: &Rule, ctx: &CompileContext) -> bool {
    let arch = go_arch(ctx.arch);
    let has_cap = |name: &String| {
        name.parse::<Capability>()
            .is_ok_and(|c| ctx.capabilities.contains(&c))
    };
    // Tuples compare major first, then minor, as kernelGreaterEqualThan.
    let kernel_at_least = |v: (u32, u32)| ctx.kernel >= v;
    let (inc, exc) = (&rule.includes, &rule.excludes);
    let excluded = exc.arches.iter().any(|a| a == arch)
        || exc.caps.iter().any(has_cap)
        || exc.min_kernel.is_some_and(kernel_at_least);
    let included = (inc.arches.is_empty() || inc.arches.iter().any(|a| a == arch))
        && inc.caps.iter().all(has_cap)
        && inc.min_kernel.is_none_or(kernel_at_least);
    !excluded && included
}

/// Per syscall number, the ORed rules of `rules`; an empty list means
/// unconditional, which is how seccompiler spells "any arguments".
fn syscall_rules(
    rules: &[&Rule],
    abi: Abi,
) -> Result<BTreeMap<i64, Vec<SeccompRule>>, BackendError> {
    let mut conditional: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let mut unconditional = BTreeSet::new();
    for rule in rules {
        for name in &rule.names {
            let Some(nr) = (abi.lookup)(name).map(i64::from) else {
                continue;
            };
            if rule.args.is_empty() {
                unconditional.insert(nr);
                continue;
            }
            let conditions = rule
                .args
                .iter()
                .map(|a| condition(a, arg_len(name, a, abi)))
                .collect::<Result<Vec<_>, _>>()?;
            let rule = SeccompRule::new(conditions)?;
            let chain = conditional.entry(nr).or_default();
            if !chain.contains(&rule) {
                chain.push(rule);
            }
        }
    }
    // One unconditional rule makes the syscall unconditional: an OR with
    // "always" is "always".
    for nr in unconditional {
        conditional.insert(nr, Vec::new());
    }
    Ok(conditional)
}

/// Arguments the kernel reads as a C `int`: it ignores their upper 32
/// bits, so a 64-bit comparison (libseccomp's, and Docker's) can be
/// dodged, e.g. socket(0x1_0000_0028) passes "family > 40" and still
/// opens AF_VSOCK. These compare their low 32 bits only.
const INT_ARGS: &[(&str, &[u8])] = &[
    ("socket", &[0, 1, 2]),
    ("socketpair", &[0, 1, 2]),
    ("personality", &[0]),
];

fn arg_len(syscall: &str, arg: &ArgCondition, abi: Abi) -> SeccompCmpArgLen {
    let is_int = INT_ARGS
        .iter()
        .any(|(name, args)| *name == syscall && args.contains(&arg.index));
    let fits = arg.value <= u64::from(u32::MAX) && arg.value_two <= u64::from(u32::MAX);
    // On a 32-bit ABI every argument is 32 bits wide (libseccomp's rule).
    if (is_int || abi.compat) && fits {
        SeccompCmpArgLen::Dword
    } else {
        SeccompCmpArgLen::Qword
    }
}

/// Arguments compare as 64-bit values (Qword), as libseccomp does on
/// 64-bit ABIs, except the `int` ones above.
fn condition(arg: &ArgCondition, len: SeccompCmpArgLen) -> Result<SeccompCondition, BackendError> {
    let (op, value) = match arg.op {
        CmpOp::Ne => (SeccompCmpOp::Ne, arg.value),
        CmpOp::Lt => (SeccompCmpOp::Lt, arg.value),
        CmpOp::Le => (SeccompCmpOp::Le, arg.value),
        CmpOp::Eq => (SeccompCmpOp::Eq, arg.value),
        CmpOp::Ge => (SeccompCmpOp::Ge, arg.value),
        CmpOp::Gt => (SeccompCmpOp::Gt, arg.value),
        // Docker: value is the mask, valueTwo the expected masked value.
        CmpOp::MaskedEq => (SeccompCmpOp::MaskedEq(arg.value), arg.value_two),
    };
    SeccompCondition::new(arg.index, len, op, value)
}

fn build(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    on_match: Action,
    on_mismatch: Action,
    arch: TargetArch,
    abi: Abi,
) -> Result<BpfProgram, CompileError> {
    let what = if on_match == Action::Allow {
        "the default action".to_string()
    } else {
        format!("{on_match:?}")
    };
    // Note seccompiler's argument order: mismatch before match.
    let program = SeccompFilter::new(
        rules,
        seccomp_action(on_mismatch),
        seccomp_action(on_match),
        arch,
    )
    .and_then(BpfProgram::try_from)
    .map_err(failed(&what, abi))?;
    if !abi.compat {
        return Ok(program);
    }
    // Built as the native target from the compat ABI's numbers; only the
    // arch check differs.
    let native = abi::native(arch).ok_or(CompileError::UnsupportedArch(arch))?;
    bpf::retarget(program, native.audit, abi.audit).ok_or(CompileError::Layout(arch))
}

fn failed(what: &str, abi: Abi) -> impl Fn(BackendError) -> CompileError + '_ {
    move |source| CompileError::Filter {
        what: format!("{what} ({})", abi.name),
        source,
    }
}

fn seccomp_action(action: Action) -> SeccompAction {
    match action {
        Action::Allow => SeccompAction::Allow,
        Action::Errno(e) => SeccompAction::Errno(e),
        Action::KillThread => SeccompAction::KillThread,
        Action::KillProcess => SeccompAction::KillProcess,
        Action::Trap => SeccompAction::Trap,
        Action::Log => SeccompAction::Log,
        Action::Trace(data) => SeccompAction::Trace(data),
    }
}

/// The highest number any rule names for this ABI, applicable or not:
/// what the profile's author knew about.
fn highest_named(profile: &Profile, abi: Abi) -> Option<u32> {
    let names = profile.rules.iter().flat_map(|r| r.names.iter());
    names.filter_map(|n| (abi.lookup)(n)).max()
}

#[cfg(test)]
mod tests;
