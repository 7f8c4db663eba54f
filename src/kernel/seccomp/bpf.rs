//! The few BPF programs and patches berth writes by hand, beside what
//! seccompiler builds: the ENOSYS filter for numbers newer than the
//! profile, the ABI switch that lets one ABI's stack skip the other's
//! calls, and the arch retarget of a program built from compat numbers.

use seccompiler::{BpfProgram, sock_filter};

use super::abi::Abi;

// Classic BPF opcodes (linux/bpf_common.h) and seccomp_data offsets
// (linux/seccomp.h).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGT_K: u16 = 0x25;
const BPF_JSET_K: u16 = 0x45;
const BPF_RET_K: u16 = 0x06;
const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;
/// x32 syscalls run under AUDIT_ARCH_X86_64 with this bit set in the
/// number (arch/x86/include/uapi/asm/unistd.h).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;

fn op(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// ERRNO(ENOSYS) above `max` on `abi`, ALLOW otherwise. Other arches are
/// let through: the ABI's other filters decide them. On x86_64, x32
/// numbers count as above the max; the explicit bit test keeps that true
/// whatever `max` is.
pub fn enosys_above(abi: Abi, max: u32) -> BpfProgram {
    let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS.unsigned_abs();
    let x32 = abi.audit == AUDIT_ARCH_X86_64;
    // From the arch test, skip the rest to the final ALLOW.
    let to_allow = if x32 { 4 } else { 3 };
    let mut program = vec![
        op(BPF_LD_W_ABS, SECCOMP_DATA_ARCH),
        jump(BPF_JEQ_K, abi.audit, 0, to_allow),
        op(BPF_LD_W_ABS, SECCOMP_DATA_NR),
    ];
    if x32 {
        program.push(jump(BPF_JSET_K, X32_SYSCALL_BIT, 1, 0));
    }
    program.extend([
        jump(BPF_JGT_K, max, 0, 1),
        op(BPF_RET_K, enosys),
        op(BPF_RET_K, libc::SECCOMP_RET_ALLOW),
    ]);
    program
}

/// `program`, except that calls of the `other` ABI are allowed without
/// running it: the other ABI's own stack decides them. Jumps in BPF are
/// relative, so a prefix leaves `program` valid.
pub fn skipping(other: u32, program: BpfProgram) -> BpfProgram {
    let mut out = Vec::with_capacity(program.len() + 3);
    out.extend([
        op(BPF_LD_W_ABS, SECCOMP_DATA_ARCH),
        jump(BPF_JEQ_K, other, 0, 1),
        op(BPF_RET_K, libc::SECCOMP_RET_ALLOW),
    ]);
    out.extend(program);
    out
}

/// A seccompiler program built for the native target, made to check for
/// `to` instead: seccompiler starts every program with "load arch; equal
/// to the target's audit arch, else KILL_PROCESS" and never reads the arch
/// again. `None` if the program does not start that way (a seccompiler
/// change: refuse rather than guess).
pub fn retarget(mut program: BpfProgram, from: u32, to: u32) -> Option<BpfProgram> {
    let starts_right = program.len() > 2
        && program[0].code == BPF_LD_W_ABS
        && program[0].k == SECCOMP_DATA_ARCH
        && program[1].code == BPF_JEQ_K
        && program[1].k == from
        && program[2].code == BPF_RET_K
        && program[2].k == libc::SECCOMP_RET_KILL_PROCESS;
    if !starts_right {
        return None;
    }
    let reads_arch_again = program[3..]
        .iter()
        .any(|i| i.code == BPF_LD_W_ABS && i.k == SECCOMP_DATA_ARCH);
    if reads_arch_again {
        return None;
    }
    program[1].k = to;
    Some(program)
}
