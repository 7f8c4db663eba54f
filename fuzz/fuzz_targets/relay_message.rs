//! Relay messages a remote client sends `berth system dial-stdio`.
//! The check itself is berth_fuzz::relay_message (fuzz/src/lib.rs), which the
//! main test suite replays on this target's seeds and regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::relay_message(data));
