//! CDI spec files, read as JSON and as YAML: any bytes give a spec or an
//! error naming a field or a position inside the text, never a panic or
//! an unbounded expansion; an accepted spec's devices resolve to edits
//! whose paths are absolute and clean. The check itself is
//! berth_fuzz::cdi_spec (fuzz/src/lib.rs), which the main test suite
//! replays on this target's seeds and regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::cdi_spec(data));
