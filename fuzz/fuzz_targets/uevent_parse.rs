//! Kernel uevent messages as the netlink socket delivers them: any bytes
//! parse or are dropped, and what parses is bounded. The check itself is
//! berth_fuzz::uevent_parse (fuzz/src/lib.rs), which the main test suite
//! replays on this target's seeds and regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::uevent_parse(data));
