//! The event journal's readers on arbitrary segment bytes (a crash, bit
//! rot, a stranger's file): `read_range` and the writer's recovery may
//! report problems, never panic, and what they return is in seq order.
//! The check itself is berth_fuzz::journal_read (fuzz/src/lib.rs), which the
//! main test suite replays on this target's seeds and regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::journal_read(data));
