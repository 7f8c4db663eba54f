//! A disk's GUID partition table, as berth as PID 1 reads its boot disk
//! to grow the data partition (and the ext4 superblock it reads there).
//! The check itself is berth_fuzz::gpt_table (fuzz/src/lib.rs), which the
//! main test suite replays on this target's seeds and regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::gpt_table(data));
