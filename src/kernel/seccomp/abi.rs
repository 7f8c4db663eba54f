//! The system-call ABIs a container's filters cover. Docker's profile
//! names sub-architectures in its archMap (x86 and x32 on x86_64, arm on
//! aarch64) and libseccomp filters each of them with the same rules, so
//! 32-bit programs run under Docker. berth compiles one filter stack per
//! ABI: the native one, and the 32-bit compat ABI the kernel offers
//! beside it. x32 is left out: its calls share x86_64's audit arch with
//! bit 30 set in the number, match no rule and get ENOSYS.

use seccompiler::TargetArch;

/// Name to number for one ABI; `None` for names the ABI lacks, which
/// the compiler skips, as libseccomp does.
pub type Lookup = fn(&str) -> Option<u32>;

#[derive(Debug, Clone, Copy)]
pub struct Abi {
    pub name: &'static str,
    /// AUDIT_ARCH_* (linux/audit.h), as seccomp_data.arch reports it.
    pub audit: u32,
    pub lookup: Lookup,
    /// A 32-bit ABI on a 64-bit kernel: arguments are 32-bit values,
    /// zero-extended into seccomp_data, so they compare on their low half
    /// (libseccomp's rule for 32-bit arches).
    pub compat: bool,
}

impl PartialEq for Abi {
    fn eq(&self, other: &Self) -> bool {
        self.audit == other.audit
    }
}

impl Eq for Abi {}

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
const AUDIT_ARCH_ARM: u32 = 0x4000_0028;

/// The ABI seccompiler builds for `arch` (`None`: berth has no syscall
/// table for it).
pub fn native(arch: TargetArch) -> Option<Abi> {
    match arch {
        TargetArch::x86_64 => Some(Abi {
            name: "x86_64",
            audit: AUDIT_ARCH_X86_64,
            lookup: |name| {
                let nr = name.parse::<syscalls::x86_64::Sysno>().ok()?;
                u32::try_from(nr.id()).ok()
            },
            compat: false,
        }),
        TargetArch::aarch64 => Some(Abi {
            name: "aarch64",
            audit: AUDIT_ARCH_AARCH64,
            lookup: |name| {
                let nr = name.parse::<syscalls::aarch64::Sysno>().ok()?;
                u32::try_from(nr.id()).ok()
            },
            compat: false,
        }),
        // berth builds the syscalls crate for x86 and arm only.
        TargetArch::riscv64 => None,
    }
}

/// The 32-bit ABI a kernel for `arch` also runs (when built with
/// IA32_EMULATION or COMPAT).
pub fn compat(arch: TargetArch) -> Option<Abi> {
    match arch {
        TargetArch::x86_64 => Some(Abi {
            name: "i386",
            audit: AUDIT_ARCH_I386,
            lookup: |name| {
                let nr = name.parse::<syscalls::x86::Sysno>().ok()?;
                u32::try_from(nr.id()).ok()
            },
            compat: true,
        }),
        TargetArch::aarch64 => Some(Abi {
            name: "arm",
            audit: AUDIT_ARCH_ARM,
            lookup: |name| {
                let nr = name.parse::<syscalls::arm::Sysno>().ok()?;
                u32::try_from(nr.id()).ok()
            },
            compat: true,
        }),
        TargetArch::riscv64 => None,
    }
}
