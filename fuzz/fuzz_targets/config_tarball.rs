//! A config tarball for `berth apply` on arbitrary bytes (tar or gzip):
//! it may refuse, never panic, never write outside its target, and leaves
//! only files and directories. The check itself is
//! berth_fuzz::config_tarball (fuzz/src/lib.rs), which the main test suite
//! replays on this target's seeds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::config_tarball(data));
