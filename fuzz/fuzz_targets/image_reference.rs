//! Image references: parse, print, parse again gives the same reference.
//! The check itself is berth_fuzz::image_reference (fuzz/src/lib.rs), which the
//! main test suite replays on this target's seeds and regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::image_reference(data));
