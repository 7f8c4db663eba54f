//! Manifests, indexes and configs as a registry or layout sends them:
//! parsing and validation refuse bad documents without panicking.
//! The check itself is berth_fuzz::manifest_parse (fuzz/src/lib.rs), which the
//! main test suite replays on this target's seeds and regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::manifest_parse(data));
