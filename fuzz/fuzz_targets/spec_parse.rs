//! Container spec files: any bytes must give a spec or file:line:col
//! errors, never a panic, and the position must lie inside the text.
//! The check itself is berth_fuzz::spec_parse (fuzz/src/lib.rs), which the
//! main test suite replays on this target's seeds and regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::spec_parse(data));
