//! Container seccomp filters from Docker-format JSON profiles: parsing
//! (`profile.rs`), compiling to a stack of BPF programs per ABI in the
//! parent (`compile.rs`, `abi.rs`, `bpf.rs`), and installing them in the
//! child (`apply.rs`).

mod abi;
mod apply;
mod bpf;
mod compile;
mod profile;

use std::sync::OnceLock;

pub use apply::apply;
pub use compile::{CompileContext, CompileError, Filters, compile};
pub use profile::{
    Action, ArchMapEntry, ArgCondition, CmpOp, Profile, ProfileError, Rule, RuleFilter,
    parse_profile,
};
/// Re-exported for [`CompileContext::arch`], so callers need no seccompiler.
pub use seccompiler::TargetArch;

/// Docker's default profile: a byte-for-byte copy of moby/profiles
/// `seccomp/default.json` at commit cd3bed8
/// (<https://github.com/moby/profiles/blob/cd3bed8/seccomp/default.json>),
/// also kept as tests/data/docker-seccomp-default.json for the parity test.
const DOCKER_DEFAULT_JSON: &str = include_str!("docker-default.json");

/// The embedded Docker default profile, parsed once.
pub fn docker_default() -> Profile {
    static PARSED: OnceLock<Profile> = OnceLock::new();
    PARSED
        .get_or_init(|| {
            parse_profile(DOCKER_DEFAULT_JSON)
                .expect("embedded Docker default seccomp profile must parse (unit-tested)")
        })
        .clone()
}

/// The architecture berth runs on, as seccompiler names it.
pub fn host_arch() -> TargetArch {
    #[cfg(target_arch = "x86_64")]
    return TargetArch::x86_64;
    #[cfg(target_arch = "aarch64")]
    return TargetArch::aarch64;
    #[cfg(target_arch = "riscv64")]
    return TargetArch::riscv64;
    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64"
    )))]
    compile_error!("seccompiler builds filters for x86_64, aarch64 and riscv64 only");
}

/// (major, minor) of the running kernel, from uname(2), for `minKernel`.
/// (0, 0) if the release is unreadable, which leaves out every rule that
/// needs a minimum kernel.
pub fn host_kernel_version() -> (u32, u32) {
    let mut uts = std::mem::MaybeUninit::<libc::utsname>::zeroed();
    // SAFETY: uname writes only into the utsname it is given, which is
    // ours and the right size.
    if unsafe { libc::uname(uts.as_mut_ptr()) } != 0 {
        return (0, 0);
    }
    // SAFETY: all-zero bytes are a valid utsname (arrays of c_char), and
    // uname succeeded, so the fields are NUL-terminated strings.
    let uts = unsafe { uts.assume_init() };
    let release: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| u8::from_ne_bytes(c.to_ne_bytes()))
        .collect();
    parse_release(&String::from_utf8_lossy(&release)).unwrap_or((0, 0))
}

/// "6.1.0-18-amd64", "3.12-1-amd64", "4.8" → the first two numbers, as
/// moby's parseRelease (`%d.%d`) reads them.
fn parse_release(release: &str) -> Option<(u32, u32)> {
    let (major, rest) = release.split_once('.')?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    Some((major.parse().ok()?, rest[..digits].parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_parse_like_moby() {
        assert_eq!(parse_release("6.18.44-fc-v782"), Some((6, 18)));
        assert_eq!(parse_release("3.12-1-amd64"), Some((3, 12)));
        assert_eq!(parse_release("4.8"), Some((4, 8)));
        assert_eq!(parse_release("garbage"), None);
        assert_eq!(parse_release("6"), None);
    }

    #[test]
    fn host_facts_are_plausible() {
        assert!(host_kernel_version() >= (3, 17), "seccomp(2) needs 3.17");
        assert_eq!(docker_default().rules.len(), 33);
        let f = compile(
            &docker_default(),
            &CompileContext {
                arch: host_arch(),
                capabilities: &crate::kernel::caps::DOCKER_DEFAULT,
                kernel: host_kernel_version(),
            },
        )
        .expect("default profile compiles for the host");
        assert_eq!(
            f.programs.len(),
            6,
            "default, ERRNO(38) for clone3, ENOSYS; for x86_64 and i386"
        );
    }
}
