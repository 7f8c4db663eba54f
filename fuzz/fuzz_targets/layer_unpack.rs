//! The layer unpacker on arbitrary bytes (tar, gzip or zstd): it may
//! refuse, never panic, and never create anything outside its target.
//! The check itself is berth_fuzz::layer_unpack (fuzz/src/lib.rs), which the
//! main test suite replays on this target's seeds and regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::layer_unpack(data));
