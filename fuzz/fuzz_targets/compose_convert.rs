//! docker-compose files as `berth convert` reads them: any bytes give
//! specs and a list of unmapped keys, or an error whose position lies
//! inside the text, never a panic or an unbounded expansion (aliases,
//! merge keys, interpolation). The check itself is
//! berth_fuzz::compose_convert (fuzz/src/lib.rs), which the main test
//! suite replays on this target's seeds and regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::compose_convert(data));
