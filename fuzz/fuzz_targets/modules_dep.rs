//! A kernel's module index (modules.dep, modules.softdep, modules.builtin,
//! modules.alias) as `berth mkimage` reads it: any bytes parse or are
//! refused, and a load order puts every module after its dependencies.
//! The check itself is berth_fuzz::modules_dep (fuzz/src/lib.rs), which
//! the main test suite replays on this target's seeds and regressions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| berth_fuzz::modules_dep(data));
