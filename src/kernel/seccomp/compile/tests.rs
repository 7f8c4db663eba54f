//! Unit tests of compile.rs: the BPF program each profile rule, action and architecture compiles to.

use super::*;
use crate::kernel::seccomp::parse_profile;
use Capability::{CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN};
use TargetArch::{aarch64, riscv64, x86_64};

fn profile(default: &str, rules: &str) -> Profile {
    let text = format!(r#"{{"defaultAction":"{default}","syscalls":[{rules}]}}"#);
    parse_profile(&text).expect("test profile")
}

fn ctx(arch: TargetArch, capabilities: &[Capability]) -> CompileContext<'_> {
    CompileContext {
        arch,
        capabilities,
        kernel: (6, 1),
    }
}

/// Whether the rule with this tail ("includes":...) applies.
fn applies(tail: &str, c: CompileContext) -> bool {
    let rule = format!(r#"{{"names":["x"],"action":"SCMP_ACT_ALLOW",{tail}}}"#);
    rule_applies(&profile("SCMP_ACT_ERRNO", &rule).rules[0], &c)
}

#[test]
fn includes_caps_need_all_and_excludes_caps_any() {
    let both = [CAP_SYS_ADMIN, CAP_NET_ADMIN];
    let inc = r#""includes":{"caps":["CAP_SYS_ADMIN","CAP_NET_ADMIN"]}"#;
    assert!(applies(inc, ctx(x86_64, &both)));
    assert!(!applies(inc, ctx(x86_64, &both[..1])));
    let exc = r#""excludes":{"caps":["CAP_SYS_ADMIN","CAP_BPF"]}"#;
    assert!(applies(exc, ctx(x86_64, &[])));
    assert!(!applies(exc, ctx(x86_64, &[CAP_BPF])));
    // A capability name the caps crate does not know is never held.
    assert!(!applies(
        r#""includes":{"caps":["CAP_FUTURE"]}"#,
        ctx(x86_64, &both)
    ));
}

#[test]
fn arches_use_go_names_of_the_target() {
    let inc = r#""includes":{"arches":["amd64","x32"]}"#;
    assert!(applies(inc, ctx(x86_64, &[])));
    assert!(!applies(inc, ctx(aarch64, &[])));
    let exc = r#""excludes":{"arches":["s390","arm64"]}"#;
    assert!(applies(exc, ctx(x86_64, &[])));
    assert!(!applies(exc, ctx(aarch64, &[])));
}

#[test]
fn min_kernel_compares_major_then_minor() {
    let at = |kernel| CompileContext {
        kernel,
        ..ctx(x86_64, &[])
    };
    let inc = r#""includes":{"minKernel":"4.8"}"#;
    for (kernel, expected) in [
        ((4, 8), true),
        ((4, 7), false),
        ((5, 0), true),
        ((3, 19), false),
    ] {
        assert_eq!(applies(inc, at(kernel)), expected, "{kernel:?}");
    }
    let exc = r#""excludes":{"minKernel":"5.10"}"#;
    assert!(applies(exc, at((5, 9))));
    assert!(!applies(exc, at((5, 10))));
}

#[test]
fn names_resolve_for_the_target_not_the_host() {
    let x86 = syscall_lookup(x86_64).expect("x86_64 table");
    let arm = syscall_lookup(aarch64).expect("aarch64 table");
    assert_eq!((x86("read"), arm("read")), (Some(0), Some(63)));
    assert_eq!((x86("open"), arm("open")), (Some(2), None));
    assert_eq!(x86("no_such_call"), None);
    let err = compile(&profile("SCMP_ACT_ERRNO", ""), &ctx(riscv64, &[]));
    assert!(matches!(err, Err(CompileError::UnsupportedArch(riscv64))));
}

#[test]
fn the_stack_has_default_per_action_and_enosys_filters() {
    let p = profile(
        "SCMP_ACT_ERRNO",
        r#"{"names":["read","open"],"action":"SCMP_ACT_ALLOW"},
           {"names":["clone3"],"action":"SCMP_ACT_ERRNO","errnoRet":38},
           {"names":["kexec_load"],"action":"SCMP_ACT_KILL_PROCESS"},
           {"names":["no_such_call"],"action":"SCMP_ACT_TRAP"}"#,
    );
    for arch in [x86_64, aarch64] {
        let f = compile(&p, &ctx(arch, &[])).expect("compiles");
        // default, ERRNO(38), KILL_PROCESS, ENOSYS; the TRAP rule names
        // nothing this arch knows, so it gets no filter.
        assert_eq!(f.programs.len(), 4, "{arch:?}");
        assert_eq!(
            f.instruction_count(),
            f.programs.iter().map(Vec::len).sum::<usize>()
        );
    }
    // An ALLOW default needs neither a default nor an ENOSYS filter.
    let p = profile(
        "SCMP_ACT_ALLOW",
        r#"{"names":["keyctl"],"action":"SCMP_ACT_ERRNO"}"#,
    );
    assert_eq!(
        compile(&p, &ctx(x86_64, &[]))
            .expect("compiles")
            .programs
            .len(),
        1
    );
}

#[test]
fn enosys_filter_layout() {
    for (arch, len) in [(x86_64, 7), (aarch64, 6)] {
        let prog = enosys_above(arch, 466);
        assert_eq!(prog.len(), len);
        assert_eq!(prog[len - 1].k, libc::SECCOMP_RET_ALLOW);
        // The arch mismatch lands on the final ALLOW.
        assert_eq!(2 + usize::from(prog[1].jf), len - 1);
    }
}
