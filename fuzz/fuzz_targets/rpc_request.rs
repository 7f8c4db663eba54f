//! JSON-RPC request lines from the control socket.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match berth::api::protocol::parse_request(data) {
        Ok(req) => assert!(req.params.is_object() || req.params.is_array() || req.params.is_null()),
        Err((_, err)) => assert!(err.code <= -32000),
    }
});
