//! Container spec files: any bytes must give a spec or file:line:col
//! errors, never a panic, and the position must lie inside the text.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(errors) = berth::supervisor::spec::validate::parse_spec(Path::new("fuzz.json"), text) {
        assert!(!errors.is_empty());
        let lines = text.lines().count().max(1) + 1;
        for e in errors {
            assert!(e.line >= 1 && e.line <= lines, "line {} outside the text", e.line);
        }
    }
});
