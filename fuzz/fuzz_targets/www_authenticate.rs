//! WWW-Authenticate headers from a registry: any bytes parse to some
//! challenges (maybe none) without panicking; schemes come out lowercased.
//! The check itself is berth_fuzz::www_authenticate (fuzz/src/lib.rs), which the
//! main test suite replays on this target's seeds and regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::www_authenticate(data));
