//! berth.json: any bytes must give settings or file:line:col errors,
//! never a panic. The check itself is berth_fuzz::settings_parse
//! (fuzz/src/lib.rs), which the main test suite replays on this target's
//! seeds and regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::settings_parse(data));
