//! The first-boot config's source, as berth as PID 1 finds it: the
//! kernel command line's `berth.config=` and a config drive's label read
//! from its superblock. The check itself is berth_fuzz::first_boot_source
//! (fuzz/src/lib.rs), which the main test suite replays on this target's
//! seeds and regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::first_boot_source(data));
