//! DHCPv4 answers as anyone on the link may send them: any bytes parse
//! or are dropped, and what parses is bounded. The check itself is
//! berth_fuzz::dhcp_packet (fuzz/src/lib.rs), which the main test suite
//! replays on this target's seeds and regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::dhcp_packet(data));
