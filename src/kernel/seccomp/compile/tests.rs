//! Unit tests of compile.rs: the BPF program each profile rule, action and architecture compiles to.

use super::*;
use crate::kernel::seccomp::parse_profile;
use Capability::{CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN};
use TargetArch::{aarch64, riscv64, x86_64};
use seccompiler::sock_filter;

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
    let x86 = abi::native(x86_64).expect("x86_64 table").lookup;
    let arm = abi::native(aarch64).expect("aarch64 table").lookup;
    let i386 = abi::compat(x86_64).expect("i386 table").lookup;
    let arm32 = abi::compat(aarch64).expect("arm table").lookup;
    assert_eq!((x86("read"), arm("read")), (Some(0), Some(63)));
    assert_eq!((i386("read"), arm32("read")), (Some(3), Some(3)));
    assert_eq!((x86("open"), arm("open")), (Some(2), None));
    assert_eq!((i386("socketcall"), x86("socketcall")), (Some(102), None));
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
        // default, ERRNO(38), KILL_PROCESS, ENOSYS, for the native and
        // the compat ABI; the TRAP rule names nothing either knows, so it
        // gets no filter.
        assert_eq!(f.programs.len(), 8, "{arch:?}");
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
        2
    );
}

#[test]
fn enosys_filter_layout() {
    let abis = [
        (abi::native(x86_64), 7),
        (abi::native(aarch64), 6),
        (abi::compat(x86_64), 6),
    ];
    for (abi, len) in abis {
        let prog = bpf::enosys_above(abi.expect("known ABI"), 466);
        assert_eq!(prog.len(), len);
        assert_eq!(prog[len - 1].k, libc::SECCOMP_RET_ALLOW);
        // The arch mismatch lands on the final ALLOW.
        assert_eq!(2 + usize::from(prog[1].jf), len - 1);
    }
}

#[test]
fn compat_programs_check_their_own_arch_and_skip_the_others() {
    let p = profile(
        "SCMP_ACT_ERRNO",
        r#"{"names":["read"],"action":"SCMP_ACT_ALLOW"}"#,
    );
    let f = compile(&p, &ctx(x86_64, &[])).expect("compiles");
    let (native, compat) = (abi::native(x86_64).unwrap(), abi::compat(x86_64).unwrap());
    // default and ENOSYS for each ABI.
    assert_eq!(f.programs.len(), 4);
    for (i, prog) in f.programs.iter().enumerate() {
        let (own, other) = if i < 2 {
            (native, compat)
        } else {
            (compat, native)
        };
        // The skip prefix names the other ABI; the program after it checks
        // its own.
        assert_eq!(prog[1].k, other.audit, "program {i}");
        assert_eq!(prog[4].k, own.audit, "program {i}");
    }
}

#[test]
fn retarget_refuses_a_program_it_does_not_recognise() {
    let native = abi::native(x86_64).unwrap().audit;
    let compat = abi::compat(x86_64).unwrap().audit;
    let good = vec![
        sock_filter {
            code: 0x20,
            jt: 0,
            jf: 0,
            k: 4,
        },
        sock_filter {
            code: 0x15,
            jt: 1,
            jf: 0,
            k: native,
        },
        sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_KILL_PROCESS,
        },
        sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ];
    let patched = bpf::retarget(good.clone(), native, compat).expect("recognised");
    assert_eq!(patched[1].k, compat);
    assert_eq!(bpf::retarget(good[1..].to_vec(), native, compat), None);
    assert_eq!(bpf::retarget(good.clone(), compat, native), None);
    let mut rereads = good;
    rereads.push(sock_filter {
        code: 0x20,
        jt: 0,
        jf: 0,
        k: 4,
    });
    assert_eq!(bpf::retarget(rereads, native, compat), None);
}
