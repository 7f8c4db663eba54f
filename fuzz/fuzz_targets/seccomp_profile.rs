//! Seccomp profiles: any bytes must parse to a profile or give a
//! positioned error, and any profile must compile for x86_64 and aarch64
//! with Docker's default capabilities, or fail with an error; never panic.
//! The check itself is berth_fuzz::seccomp_profile (fuzz/src/lib.rs), which the
//! main test suite replays on this target's seeds and regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::seccomp_profile(data));
