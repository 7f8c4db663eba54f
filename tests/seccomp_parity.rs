//! berth's compiled Docker default seccomp profile, run through a BPF
//! interpreter, against what Docker's own JSON says, for every syscall of
//! x86_64 and its i386 ABI, and aarch64 and its arm ABI, with Docker's
//! default capabilities. The expectations
//! come from tests/data/docker-seccomp-default.json read here with
//! serde_json::Value, not from berth's parser.

mod bpf;

use std::collections::BTreeSet;

use berth::kernel::caps::DOCKER_DEFAULT;
use berth::kernel::seccomp::{CompileContext, Filters, compile, docker_default};
use bpf::{SeccompData, Verdict, verdict};
use seccompiler::TargetArch;
use serde_json::Value;

const PROFILE: &str = include_str!("data/docker-seccomp-default.json");
/// A kernel new enough for every minKernel in the profile (ptrace: 4.8).
const KERNEL: (u32, u32) = (6, 1);
const EPERM: u32 = 1;
const ENOSYS: u32 = 38;
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;

/// What Docker's profile does with one syscall for one arch and cap set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Always,
    Conditional,
    Errno(u32),
    Never,
}

/// One ABI: the host arch it runs on (which names the rules that apply)
/// and its own audit arch and syscall table.
struct Arch {
    name: &'static str,
    target: TargetArch,
    go_name: &'static str,
    audit: u32,
    /// Audit arches no filter of this host may let run.
    foreign_audits: [u32; 3],
    lookup: fn(&str) -> Option<u32>,
    name_of: fn(u32) -> Option<&'static str>,
    last: u32,
}

fn arches() -> [Arch; 4] {
    use syscalls::{aarch64, arm, x86, x86_64};
    let on_x86 = [AUDIT_ARCH_AARCH64, AUDIT_ARCH_ARM, 0];
    let on_arm = [AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, 0];
    [
        Arch {
            name: "x86_64",
            target: TargetArch::x86_64,
            go_name: "amd64",
            audit: AUDIT_ARCH_X86_64,
            foreign_audits: on_x86,
            lookup: |n| n.parse::<x86_64::Sysno>().ok().map(|s| s.id() as u32),
            name_of: |nr| x86_64::Sysno::new(nr as usize).map(|s| s.name()),
            last: x86_64::Sysno::last().id() as u32,
        },
        // Docker's archMap: i386 runs on x86_64 hosts, filtered by the
        // rules that apply to amd64.
        Arch {
            name: "i386",
            target: TargetArch::x86_64,
            go_name: "amd64",
            audit: AUDIT_ARCH_I386,
            foreign_audits: on_x86,
            lookup: |n| n.parse::<x86::Sysno>().ok().map(|s| s.id() as u32),
            name_of: |nr| x86::Sysno::new(nr as usize).map(|s| s.name()),
            last: x86::Sysno::last().id() as u32,
        },
        Arch {
            name: "aarch64",
            target: TargetArch::aarch64,
            go_name: "arm64",
            audit: AUDIT_ARCH_AARCH64,
            foreign_audits: on_arm,
            lookup: |n| n.parse::<aarch64::Sysno>().ok().map(|s| s.id() as u32),
            name_of: |nr| aarch64::Sysno::new(nr as usize).map(|s| s.name()),
            last: aarch64::Sysno::last().id() as u32,
        },
        Arch {
            name: "arm",
            target: TargetArch::aarch64,
            go_name: "arm64",
            audit: AUDIT_ARCH_ARM,
            foreign_audits: on_arm,
            lookup: |n| n.parse::<arm::Sysno>().ok().map(|s| s.id() as u32),
            name_of: |nr| arm::Sysno::new(nr as usize).map(|s| s.name()),
            last: arm::Sysno::last().id() as u32,
        },
    ]
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// moby's setupSeccomp filter, restated: excludes (any) then includes (all).
fn docker_rule_applies(rule: &Value, go_arch: &str, caps: &[String]) -> bool {
    let has = |c: &str| caps.iter().any(|k| k == c);
    let kernel_ok = |v: &Value| {
        let (major, minor) = v
            .as_str()
            .and_then(|s| s.split_once('.'))
            .expect("minKernel");
        KERNEL >= (major.parse().unwrap(), minor.parse().unwrap())
    };
    let exc = &rule["excludes"];
    if strings(&exc["arches"]).contains(&go_arch)
        || strings(&exc["caps"]).into_iter().any(has)
        || (!exc["minKernel"].is_null() && kernel_ok(&exc["minKernel"]))
    {
        return false;
    }
    let inc = &rule["includes"];
    let arches = strings(&inc["arches"]);
    (arches.is_empty() || arches.contains(&go_arch))
        && strings(&inc["caps"]).into_iter().all(has)
        && (inc["minKernel"].is_null() || kernel_ok(&inc["minKernel"]))
}

fn docker_expectation(profile: &Value, name: &str, go_arch: &str, caps: &[String]) -> Expect {
    let default_errno = profile["defaultErrnoRet"].as_u64().unwrap() as u32;
    let mut expect = Expect::Never;
    for rule in profile["syscalls"].as_array().unwrap() {
        if !strings(&rule["names"]).contains(&name) || !docker_rule_applies(rule, go_arch, caps) {
            continue;
        }
        let conditional = rule["args"].as_array().is_some_and(|a| !a.is_empty());
        expect = match (rule["action"].as_str().unwrap(), conditional, expect) {
            ("SCMP_ACT_ALLOW", false, _) => Expect::Always,
            ("SCMP_ACT_ALLOW", true, Expect::Always) => Expect::Always,
            ("SCMP_ACT_ALLOW", true, _) => Expect::Conditional,
            ("SCMP_ACT_ERRNO", false, Expect::Never) => Expect::Errno(
                rule["errnoRet"]
                    .as_u64()
                    .map_or(default_errno, |e| e as u32),
            ),
            other => panic!("the test does not model {other:?} for {name}"),
        };
    }
    expect
}

fn compiled(arch: TargetArch) -> Filters {
    let ctx = CompileContext {
        arch,
        capabilities: &DOCKER_DEFAULT,
        kernel: KERNEL,
    };
    compile(&docker_default(), &ctx).expect("Docker's default profile compiles")
}

#[test]
fn the_embedded_profile_is_the_test_data_copy() {
    assert_eq!(
        include_bytes!("../src/kernel/seccomp/docker-default.json"),
        include_bytes!("data/docker-seccomp-default.json")
    );
}

#[test]
fn every_syscall_matches_docker_on_x86_64_i386_aarch64_and_arm() {
    let profile: Value = serde_json::from_str(PROFILE).unwrap();
    assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
    let caps: Vec<String> = DOCKER_DEFAULT.iter().map(ToString::to_string).collect();
    for arch in arches() {
        let filters = compiled(arch.target).programs;
        let at =
            |nr: u32, args: [u64; 6]| verdict(&filters, &SeccompData::new(nr, arch.audit, args));
        let noisy = [u64::MAX, 0x1234_5678_9abc_def0, 1, 0, 0x7fff_ffff, 42];
        let (mut counts, mut unassigned) = ([0usize; 4], 0);
        let mut conditional = BTreeSet::new();
        for nr in 0..=arch.last {
            let expect = match (arch.name_of)(nr) {
                Some(name) => docker_expectation(&profile, name, arch.go_name, &caps),
                None => {
                    unassigned += 1;
                    Expect::Never
                }
            };
            let name = (arch.name_of)(nr).unwrap_or("(unassigned)");
            for args in [[0; 6], noisy] {
                let got = at(nr, args);
                let ok = match expect {
                    Expect::Always => got == Verdict::Allow,
                    Expect::Never => got.denied(),
                    Expect::Errno(e) => got == Verdict::Errno(e),
                    Expect::Conditional => true, // probed one by one below
                };
                assert!(
                    ok,
                    "{:?} {name} ({nr}): Docker {expect:?}, berth {got:?}",
                    arch.name
                );
            }
            counts[expect_index(expect)] += 1;
            if expect == Expect::Conditional {
                conditional.insert(name);
            }
        }
        // New conditional rules in the profile need probes here.
        assert_eq!(
            conditional,
            BTreeSet::from(["clone", "personality", "socket"])
        );
        check_conditional(&arch, &at);
        let max = highest_named(&profile, &arch);
        check_beyond_the_profile(&arch, &filters, max);
        let f = Filters {
            programs: filters.clone(),
        };
        println!(
            "{}: syscalls 0..={}: {} always, {} conditional, {} errno, {} never ({unassigned} unassigned); profile max {max}; {} programs, {} instructions {:?}",
            arch.name,
            arch.last,
            counts[0],
            counts[1],
            counts[2],
            counts[3],
            f.programs.len(),
            f.instruction_count(),
            f.programs.iter().map(Vec::len).collect::<Vec<_>>(),
        );
    }
}

fn expect_index(e: Expect) -> usize {
    match e {
        Expect::Always => 0,
        Expect::Conditional => 1,
        Expect::Errno(_) => 2,
        Expect::Never => 3,
    }
}

fn check_conditional(arch: &Arch, at: &dyn Fn(u32, [u64; 6]) -> Verdict) {
    let nr = |name: &str| (arch.lookup)(name).unwrap();
    let first = |v: u64| [v, 1, 0, 0, 0, 0];
    let (socket, personality, clone) = (nr("socket"), nr("personality"), nr("clone"));
    for (family, allowed) in [
        (1, true),
        (2, true),
        (10, true),
        (16, true),
        (37, true),
        (38, false),
        (39, true),
        (40, false),
        (41, true),
    ] {
        assert_eq!(
            at(socket, first(family)) == Verdict::Allow,
            allowed,
            "socket({family})"
        );
    }
    assert_eq!(at(socket, first(38)), Verdict::Errno(EPERM), "AF_ALG");
    for (persona, allowed) in [
        (0, true),
        (8, true),
        (0x20000, true),
        (0x20008, true),
        (0xffff_ffff, true),
        (0x0040000, false),
        (0x0400000, false),
    ] {
        assert_eq!(
            at(personality, first(persona)) == Verdict::Allow,
            allowed,
            "personality({persona:#x})"
        );
    }
    const SIGCHLD: u64 = 17;
    const CLONE_VM_VFORK: u64 = 0x100 | 0x4000;
    for (flags, allowed) in [
        (SIGCHLD, true),
        (CLONE_VM_VFORK | SIGCHLD, true),
        (0x10000000 | SIGCHLD, false), // CLONE_NEWUSER
        (0x20000 | SIGCHLD, false),    // CLONE_NEWNS
        (0x40000000 | SIGCHLD, false), // CLONE_NEWNET
    ] {
        assert_eq!(
            at(clone, first(flags)) == Verdict::Allow,
            allowed,
            "clone({flags:#x})"
        );
    }
    assert_eq!(at(nr("clone3"), [0; 6]), Verdict::Errno(ENOSYS), "clone3");
}

/// The highest number any rule names on this arch, read from the JSON.
fn highest_named(profile: &Value, arch: &Arch) -> u32 {
    let rules = profile["syscalls"].as_array().unwrap();
    let names = rules.iter().flat_map(|r| strings(&r["names"]));
    names.filter_map(|n| (arch.lookup)(n)).max().unwrap()
}

fn check_beyond_the_profile(arch: &Arch, filters: &[Vec<seccompiler::sock_filter>], max: u32) {
    let on = |nr: u32, audit: u32| verdict(filters, &SeccompData::new(nr, audit, [0; 6]));
    for nr in [
        max + 1,
        max + 2,
        arch.last + 1,
        1000,
        0xffff,
        0x3fff_ffff,
        u32::MAX,
    ] {
        assert_eq!(
            on(nr, arch.audit),
            Verdict::Errno(ENOSYS),
            "{:?} nr {nr}",
            arch.name
        );
    }
    if arch.audit == AUDIT_ARCH_X86_64 {
        // x32: the same audit arch, numbers with bit 30 set.
        for nr in [0, 1, 2, 59, 512, 547] {
            let got = on(0x4000_0000 | nr, arch.audit);
            assert!(got.denied(), "x32 {nr}: {got:?}");
        }
    }
    for nr in [0, 1, 3, 11, 120, 190] {
        for audit in arch.foreign_audits {
            assert_eq!(
                on(nr, audit),
                Verdict::Kill,
                "foreign arch {audit:#x} nr {nr}"
            );
        }
    }
}
