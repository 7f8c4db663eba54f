//! Device cgroup rules and device entries in Docker's short forms: any
//! text parses or is refused, a parsed rule prints back to itself. The
//! check itself is berth_fuzz::device_rule (fuzz/src/lib.rs), which the
//! main test suite replays on this target's seeds and regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::device_rule(data));
