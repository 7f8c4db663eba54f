//! JSON-RPC request lines from the control socket.
//! The check itself is berth_fuzz::rpc_request (fuzz/src/lib.rs), which the
//! main test suite replays on this target's seeds and regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::rpc_request(data));
