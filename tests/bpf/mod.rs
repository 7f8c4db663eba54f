//! A classic-BPF interpreter for seccomp filters, enough for what
//! seccompiler and berth's hand-written filter emit, plus the kernel's rule
//! for combining a stack of filters. Any other instruction panics, so a
//! change in what seccompiler emits shows up as a test failure.

use seccompiler::sock_filter;

/// `struct seccomp_data` (linux/seccomp.h), minus the instruction pointer.
#[derive(Debug, Clone, Copy)]
pub struct SeccompData {
    pub nr: u32,
    pub arch: u32,
    pub args: [u64; 6],
}

impl SeccompData {
    pub fn new(nr: u32, arch: u32, args: [u64; 6]) -> Self {
        Self { nr, arch, args }
    }

    /// A 32-bit load at byte `offset`, little-endian like both targets.
    fn load(&self, offset: u32) -> u32 {
        match offset {
            0 => self.nr,
            4 => self.arch,
            8 | 12 => 0, // instruction_pointer
            16..=63 if offset.is_multiple_of(4) => {
                let arg = self.args[((offset - 16) / 8) as usize];
                if offset.is_multiple_of(8) {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
            _ => panic!("load outside seccomp_data or unaligned: {offset}"),
        }
    }
}

/// Runs one program; returns its SECCOMP_RET_* value.
pub fn run(program: &[sock_filter], data: &SeccompData) -> u32 {
    let mut a: u32 = 0;
    let mut pc = 0usize;
    loop {
        let ins = program
            .get(pc)
            .unwrap_or_else(|| panic!("jumped past the end to {pc}"));
        let branch = |taken: bool| pc + 1 + usize::from(if taken { ins.jt } else { ins.jf });
        pc = match ins.code {
            0x20 => {
                a = data.load(ins.k); // ld [k]
                pc + 1
            }
            0x54 => {
                a &= ins.k; // and #k
                pc + 1
            }
            0x44 => {
                a |= ins.k; // or #k
                pc + 1
            }
            0x05 => pc + 1 + ins.k as usize, // ja
            0x15 => branch(a == ins.k),      // jeq #k
            0x25 => branch(a > ins.k),       // jgt #k
            0x35 => branch(a >= ins.k),      // jge #k
            0x45 => branch(a & ins.k != 0),  // jset #k
            0x06 => return ins.k,            // ret #k
            other => panic!("unsupported BPF opcode {other:#06x} at {pc}"),
        };
    }
}

/// The kernel's combination (kernel/seccomp.c seccomp_run_filters): the
/// most recently installed filter runs first, and a result replaces the
/// current one only if its action is strictly more restrictive, compared
/// as signed 32-bit values of the action bits (KILL_PROCESS is negative).
pub fn run_stack(programs: &[Vec<sock_filter>], data: &SeccompData) -> u32 {
    let action_only = |ret: u32| (ret & 0xffff_0000) as i32;
    let mut ret = libc::SECCOMP_RET_ALLOW;
    for program in programs.iter().rev() {
        let current = run(program, data);
        if action_only(current) < action_only(ret) {
            ret = current;
        }
    }
    ret
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Errno(u32),
    Kill,
    Other(u32),
}

impl Verdict {
    pub fn of(ret: u32) -> Self {
        match ret & 0xffff_0000 {
            libc::SECCOMP_RET_ALLOW => Self::Allow,
            libc::SECCOMP_RET_ERRNO => Self::Errno(ret & 0xffff),
            libc::SECCOMP_RET_KILL_PROCESS | libc::SECCOMP_RET_KILL_THREAD => Self::Kill,
            _ => Self::Other(ret),
        }
    }

    pub fn denied(self) -> bool {
        matches!(self, Self::Errno(_) | Self::Kill)
    }
}

pub fn verdict(programs: &[Vec<sock_filter>], data: &SeccompData) -> Verdict {
    Verdict::of(run_stack(programs, data))
}
