//! SNTP answers as anyone on the path may send them: the first 8 bytes
//! are the local send time (i64 ns, big-endian), the rest the answer. The
//! check itself is berth_fuzz::sntp_packet (fuzz/src/lib.rs), which the
//! main test suite replays on this target's seeds and regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::sntp_packet(data));
