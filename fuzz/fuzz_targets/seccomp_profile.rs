//! Seccomp profiles: any bytes must parse to a profile or give a
//! positioned error, and any profile must compile for x86_64 and aarch64
//! with Docker's default capabilities, or fail with an error; never panic.
#![no_main]

use berth::kernel::caps::DOCKER_DEFAULT;
use berth::kernel::seccomp::{CompileContext, TargetArch, compile, parse_profile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let profile = match parse_profile(text) {
        Ok(p) => p,
        Err(e) => {
            assert!(e.line >= 1, "error without a position: {e}");
            return;
        }
    };
    for arch in [TargetArch::x86_64, TargetArch::aarch64] {
        let ctx = CompileContext {
            arch,
            capabilities: &DOCKER_DEFAULT,
            kernel: (6, 1),
        };
        if let Ok(filters) = compile(&profile, &ctx) {
            assert!(
                filters
                    .programs
                    .iter()
                    .all(|p| !p.is_empty() && p.len() <= 4096)
            );
        }
    }
});
