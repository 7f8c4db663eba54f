//! Unit tests of device_filter.rs: the generated programs run through a
//! small eBPF interpreter (only the instructions the generator emits; any
//! other one, a backward or out-of-range jump, or a read of a register
//! never written fails the test) and compared with cgroup v1's own rule,
//! "one rule covers the type, the numbers and every access bit asked".

use super::*;
use crate::kernel::cgroup::devices::DEFAULT_RULES;

/// One device access as the kernel hands it to the program.
#[derive(Debug, Clone, Copy)]
struct Asked {
    kind: i32,
    major: u32,
    minor: u32,
    access: i32,
}

fn asked(text: &str) -> Asked {
    // "c 1:3 rw"
    let mut words = text.split_whitespace();
    let kind = match words.next() {
        Some("c") => DEV_CHAR,
        Some("b") => DEV_BLOCK,
        other => panic!("bad type {other:?}"),
    };
    let numbers = words.next().expect("numbers");
    let (major, minor) = numbers.split_once(':').expect("major:minor");
    let letters = words.next().expect("access");
    Asked {
        kind,
        major: major.parse().expect("major"),
        minor: minor.parse().expect("minor"),
        access: access_of(letters),
    }
}

fn access_of(letters: &str) -> i32 {
    letters.chars().fold(0, |bits, c| {
        bits | match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            other => panic!("bad access {other}"),
        }
    })
}

/// Runs `program` on one access like the kernel would: true for "allow".
fn run(program: &[Insn], a: Asked) -> bool {
    let access_type =
        (u32::try_from(a.access).expect("access") << 16) | u32::try_from(a.kind).expect("kind");
    let ctx = [access_type, a.major, a.minor];
    let mut regs: [Option<u64>; 11] = [None; 11];
    let mut r1_is_ctx = true;
    let mut pc = 0usize;
    loop {
        let insn = *program.get(pc).expect("ran past the end of the program");
        let (dst, src) = (usize::from(insn.dst()), usize::from(insn.src()));
        let read = |r: usize| regs[r].unwrap_or_else(|| panic!("r{r} read before written"));
        let imm = insn.imm as u32;
        let mut next = pc + 1;
        let value = match insn.code {
            LDX_W => {
                assert!(src == 1 && r1_is_ctx, "load from r{src}, not the context");
                let field = usize::try_from(insn.off).expect("offset") / 4;
                assert_eq!(insn.off % 4, 0, "unaligned load");
                Some(u64::from(ctx[field]))
            }
            AND32_K => Some(u64::from(read(dst) as u32 & imm)),
            RSH32_K => Some(u64::from((read(dst) as u32) >> imm)),
            MOV32_K => Some(u64::from(imm)),
            MOV32_X => Some(u64::from(read(src) as u32)),
            JNE_K | JNE_X => {
                let other = if insn.code == JNE_K {
                    i64::from(insn.imm) as u64
                } else {
                    read(src)
                };
                let off = usize::try_from(insn.off).expect("backward jump");
                if read(dst) != other {
                    next += off;
                }
                assert!(next <= program.len(), "jump past the end");
                None
            }
            EXIT => {
                let r0 = read(0);
                assert!(r0 <= 1, "verdict {r0}");
                return r0 == 1;
            }
            other => panic!("unexpected opcode {other:#x} at {pc}"),
        };
        if let Some(v) = value {
            regs[dst] = Some(v);
            r1_is_ctx &= dst != 1;
        }
        pc = next;
    }
}

/// cgroup v1's answer (security/device_cgroup.c, match_exception).
fn v1_allows(rules: &[DeviceRule], a: Asked) -> bool {
    rules.iter().any(|r| {
        let kind = match r.kind {
            DeviceKind::All => true,
            DeviceKind::Char => a.kind == DEV_CHAR,
            DeviceKind::Block => a.kind == DEV_BLOCK,
        };
        kind && r.major.is_none_or(|m| m == a.major)
            && r.minor.is_none_or(|m| m == a.minor)
            && a.access & !access_bits(r.access) == 0
    })
}

fn rule(kind: DeviceKind, major: Option<u32>, minor: Option<u32>, letters: &str) -> DeviceRule {
    DeviceRule {
        kind,
        major,
        minor,
        access: DeviceAccess {
            read: letters.contains('r'),
            write: letters.contains('w'),
            mknod: letters.contains('m'),
        },
    }
}

fn with_defaults(extra: &[DeviceRule]) -> Vec<DeviceRule> {
    DEFAULT_RULES.iter().chain(extra).copied().collect()
}

fn program_for(extra: &[DeviceRule]) -> Vec<Insn> {
    device_program(&with_defaults(extra)).expect("program")
}

#[test]
fn the_defaults_allow_the_standard_nodes_and_mknod_only() {
    let program = program_for(&[]);
    for allowed in [
        "c 1:3 rw",
        "c 1:5 r",
        "c 1:9 rwm",
        "c 5:0 rw",
        "c 5:2 rw",
        "c 136:7 rw",
        "c 10:200 rw",
        "b 259:0 m",
        "c 4:1 m",
    ] {
        assert!(run(&program, asked(allowed)), "{allowed} denied");
    }
    for denied in [
        "b 259:0 r",
        "b 259:0 w",
        "b 259:0 rm",
        "c 1:4 r",
        "c 5:3 w",
        "c 10:201 r",
        "b 1:3 r",
        "c 4:1 r",
        "b 7:0 rw",
    ] {
        assert!(!run(&program, asked(denied)), "{denied} allowed");
    }
}

#[test]
fn a_container_rule_allows_its_device_with_its_access_only() {
    let disk = rule(DeviceKind::Block, Some(259), Some(0), "r");
    let serial = rule(DeviceKind::Char, Some(188), None, "rwm");
    let program = program_for(&[disk, serial]);
    assert!(run(&program, asked("b 259:0 r")));
    assert!(!run(&program, asked("b 259:0 rw")), "w was not given");
    assert!(!run(&program, asked("b 259:1 r")), "another minor");
    assert!(!run(&program, asked("c 259:0 r")), "another type");
    assert!(run(&program, asked("c 188:0 rw")));
    assert!(run(&program, asked("c 188:4095 rwm")), "a wildcard minor");
    assert!(!run(&program, asked("b 188:0 r")));
    assert!(!run(&program, asked("c 189:0 r")));
}

#[test]
fn allow_all_is_one_unconditional_allow() {
    let program = program_for(&[DeviceRule::ALLOW_ALL]);
    assert_eq!(program.len(), 2);
    for any in ["b 259:0 rwm", "c 4:1 rw", "b 8:0 w"] {
        assert!(run(&program, asked(any)), "{any}");
    }
    // 'a' with every access but given numbers is not "everything".
    let both = rule(DeviceKind::All, Some(7), None, "rw");
    let program = program_for(&[both]);
    assert!(run(&program, asked("b 7:3 rw")));
    assert!(run(&program, asked("c 7:3 r")));
    assert!(!run(&program, asked("b 8:0 r")));
}

#[test]
fn every_access_agrees_with_cgroup_v1() {
    let sets = [
        vec![],
        vec![rule(DeviceKind::Block, Some(7), None, "rw")],
        vec![
            rule(DeviceKind::Char, None, Some(3), "r"),
            rule(DeviceKind::Block, Some(259), Some(1), "wm"),
            rule(DeviceKind::All, Some(10), Some(237), "m"),
            rule(DeviceKind::Char, Some(1), Some(3), "r"),
        ],
        vec![rule(DeviceKind::Char, None, None, "w")],
        vec![DeviceRule::ALLOW_ALL],
    ];
    let numbers = [
        0u32,
        1,
        3,
        5,
        7,
        9,
        10,
        136,
        188,
        200,
        237,
        259,
        4095,
        (1 << 20) - 1,
    ];
    for extra in &sets {
        let rules = with_defaults(extra);
        let program = device_program(&rules).expect("program");
        for kind in [DEV_CHAR, DEV_BLOCK] {
            for (major, minor) in numbers
                .iter()
                .flat_map(|a| numbers.iter().map(move |b| (*a, *b)))
            {
                for access in 1..=7 {
                    let a = Asked {
                        kind,
                        major,
                        minor,
                        access,
                    };
                    assert_eq!(
                        run(&program, a),
                        v1_allows(&rules, a),
                        "{a:?} under {extra:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_instructions_are_the_expected_ones() {
    let program =
        device_program(&[rule(DeviceKind::Block, Some(259), Some(0), "r")]).expect("program");
    let code: Vec<(u8, u8, i16, i32)> = program
        .iter()
        .map(|i| (i.code, i.regs, i.off, i.imm))
        .collect();
    assert_eq!(
        code,
        [
            (0x61, 0x12, 0, 0),      // r2 = *(u32 *)(r1 + 0)
            (0x54, 0x02, 0, 0xffff), // w2 &= 0xffff
            (0x61, 0x13, 0, 0),      // r3 = *(u32 *)(r1 + 0)
            (0x74, 0x03, 0, 16),     // w3 >>= 16
            (0x61, 0x14, 4, 0),      // r4 = *(u32 *)(r1 + 4)
            (0x61, 0x15, 8, 0),      // r5 = *(u32 *)(r1 + 8)
            (0x55, 0x02, 7, 1),      // if r2 != BLOCK goto +7
            (0xbc, 0x31, 0, 0),      // w1 = w3
            (0x54, 0x01, 0, 2),      // w1 &= READ
            (0x5d, 0x31, 4, 0),      // if r1 != r3 goto +4
            (0x55, 0x04, 3, 259),    // if r4 != 259 goto +3
            (0x55, 0x05, 2, 0),      // if r5 != 0 goto +2
            (0xb4, 0x00, 0, 1),      // w0 = 1
            (0x95, 0x00, 0, 0),      // exit
            (0xb4, 0x00, 0, 0),      // w0 = 0
            (0x95, 0x00, 0, 0),      // exit
        ]
    );
}

#[test]
fn empty_rules_add_nothing_and_huge_numbers_are_refused() {
    let none = rule(DeviceKind::Block, Some(8), None, "");
    assert_eq!(program_for(&[none]), program_for(&[]));
    let huge = rule(DeviceKind::Char, Some(u32::MAX), None, "r");
    let err = device_program(&[huge]).expect_err("too large");
    assert_eq!(
        err.to_string(),
        "device rule c 4294967295:* r: device number too large"
    );
}
