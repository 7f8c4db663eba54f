//! The cgroup v2 device filter as eBPF instructions: a
//! BPF_PROG_TYPE_CGROUP_DEVICE program that allows what the v1 allow-list
//! would (the defaults plus a container's rules) and denies the rest. Pure:
//! no syscalls here (loading and attaching are `device_bpf.rs`).
//!
//! The shape is the one runc's devicefilter.go and crun's ebpf.c emit: load
//! the device type, access, major and minor from `struct bpf_cgroup_dev_ctx`
//! into r2..r5, then one block per rule that jumps to the next block on the
//! first field that does not match and returns 1 (allow) otherwise; the
//! program ends with "return 0" (deny). Rules only ever allow, so their
//! order does not matter.

use super::devices::{DeviceAccess, DeviceKind, DeviceRule};

/// `struct bpf_insn` (linux/bpf.h): opcode, dst_reg in the low nibble and
/// src_reg in the high one (both targets are little-endian), offset,
/// immediate.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u8,
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes (linux/bpf_common.h, linux/bpf.h): class | op | source.
const BPF_LDX: u8 = 0x01;
const BPF_ALU: u8 = 0x04; // 32-bit ALU: the result is zero-extended
const BPF_JMP: u8 = 0x05;
const BPF_W: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
const BPF_AND: u8 = 0x50;
const BPF_RSH: u8 = 0x70;
const BPF_MOV: u8 = 0xb0;
const BPF_JNE: u8 = 0x50;
const BPF_EXIT: u8 = 0x90;

pub(crate) const LDX_W: u8 = BPF_LDX | BPF_MEM | BPF_W;
pub(crate) const AND32_K: u8 = BPF_ALU | BPF_AND | BPF_K;
pub(crate) const RSH32_K: u8 = BPF_ALU | BPF_RSH | BPF_K;
pub(crate) const MOV32_K: u8 = BPF_ALU | BPF_MOV | BPF_K;
pub(crate) const MOV32_X: u8 = BPF_ALU | BPF_MOV | BPF_X;
pub(crate) const JNE_K: u8 = BPF_JMP | BPF_JNE | BPF_K;
pub(crate) const JNE_X: u8 = BPF_JMP | BPF_JNE | BPF_X;
pub(crate) const EXIT: u8 = BPF_JMP | BPF_EXIT;

/// `access_type`'s low half (BPF_DEVCG_DEV_*) and high half
/// (BPF_DEVCG_ACC_*), linux/bpf.h.
pub(crate) const DEV_BLOCK: i32 = 1;
pub(crate) const DEV_CHAR: i32 = 2;
pub(crate) const ACC_MKNOD: i32 = 1;
pub(crate) const ACC_READ: i32 = 2;
pub(crate) const ACC_WRITE: i32 = 4;

// Registers: r1 holds the context on entry; r2..r5 the fields; r1 is free
// as scratch once they are loaded; r0 is the verdict.
const R0: u8 = 0;
const R1: u8 = 1;
const TYPE: u8 = 2;
const ACCESS: u8 = 3;
const MAJOR: u8 = 4;
const MINOR: u8 = 5;

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            regs: (src << 4) | (dst & 0x0f),
            off,
            imm,
        }
    }

    #[cfg(test)]
    pub fn dst(self) -> u8 {
        self.regs & 0x0f
    }

    #[cfg(test)]
    pub fn src(self) -> u8 {
        self.regs >> 4
    }
}

/// A rule the program cannot express.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("device rule {rule}: {reason}")]
pub struct FilterError {
    pub rule: String,
    pub reason: &'static str,
}

/// The program for `rules` (the defaults and a container's own, in any
/// order): an access is allowed when one rule covers its type, numbers and
/// every access bit asked for, as on cgroup v1. A rule for every device
/// with every access (a privileged container's) makes the program one
/// unconditional "allow".
pub fn device_program<'a>(
    rules: impl IntoIterator<Item = &'a DeviceRule>,
) -> Result<Vec<Insn>, FilterError> {
    let mut program = prologue();
    for rule in rules {
        if rule.access.is_empty() {
            continue;
        }
        if *rule == DeviceRule::ALLOW_ALL {
            return Ok(verdict(true).to_vec());
        }
        program.extend(rule_block(rule)?);
    }
    program.extend(verdict(false));
    Ok(program)
}

/// r2 = type, r3 = access, r4 = major, r5 = minor (struct
/// bpf_cgroup_dev_ctx: u32 access_type, u32 major, u32 minor).
fn prologue() -> Vec<Insn> {
    vec![
        Insn::new(LDX_W, TYPE, R1, 0, 0),
        Insn::new(AND32_K, TYPE, 0, 0, 0xffff),
        Insn::new(LDX_W, ACCESS, R1, 0, 0),
        Insn::new(RSH32_K, ACCESS, 0, 0, 16),
        Insn::new(LDX_W, MAJOR, R1, 4, 0),
        Insn::new(LDX_W, MINOR, R1, 8, 0),
    ]
}

/// r0 = allow; exit.
fn verdict(allow: bool) -> [Insn; 2] {
    [
        Insn::new(MOV32_K, R0, 0, 0, i32::from(allow)),
        Insn::new(EXIT, 0, 0, 0, 0),
    ]
}

/// The checks of one rule, each jumping past the block when its field does
/// not match, then "allow". A field the rule leaves open ("*", "a", "rwm")
/// gets no check.
fn rule_block(rule: &DeviceRule) -> Result<Vec<Insn>, FilterError> {
    // Placeholder offsets; fixed once the block's length is known.
    let mut checks = Vec::new();
    match rule.kind {
        DeviceKind::All => {}
        DeviceKind::Char => checks.push(Insn::new(JNE_K, TYPE, 0, 0, DEV_CHAR)),
        DeviceKind::Block => checks.push(Insn::new(JNE_K, TYPE, 0, 0, DEV_BLOCK)),
    }
    if rule.access != DeviceAccess::ALL {
        // (access & allowed) != access: a bit was asked that is not allowed.
        checks.push(Insn::new(MOV32_X, R1, ACCESS, 0, 0));
        checks.push(Insn::new(AND32_K, R1, 0, 0, access_bits(rule.access)));
        checks.push(Insn::new(JNE_X, R1, ACCESS, 0, 0));
    }
    // The registers hold zero-extended u32s and JNE compares all 64 bits
    // with the sign-extended immediate, so numbers must fit in an i32;
    // the kernel's own are 12 (major) and 20 (minor) bits.
    let number = |n: u32| {
        i32::try_from(n).map_err(|_| FilterError {
            rule: rule.to_string(),
            reason: "device number too large",
        })
    };
    if let Some(major) = rule.major {
        checks.push(Insn::new(JNE_K, MAJOR, 0, 0, number(major)?));
    }
    if let Some(minor) = rule.minor {
        checks.push(Insn::new(JNE_K, MINOR, 0, 0, number(minor)?));
    }
    checks.extend(verdict(true));
    let len = checks.len();
    for (i, insn) in checks.iter_mut().enumerate() {
        if insn.code == JNE_K || insn.code == JNE_X {
            // A jump lands at pc + 1 + off; the next block starts at len.
            // A block is at most 8 instructions long.
            insn.off = i16::try_from(len - i - 1).unwrap_or(i16::MAX);
        }
    }
    Ok(checks)
}

fn access_bits(access: DeviceAccess) -> i32 {
    [
        (access.read, ACC_READ),
        (access.write, ACC_WRITE),
        (access.mknod, ACC_MKNOD),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .fold(0, |bits, (_, bit)| bits | bit)
}

#[cfg(test)]
mod tests;
