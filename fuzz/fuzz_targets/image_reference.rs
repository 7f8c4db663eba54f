//! Image references: parse, print, parse again gives the same reference.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(r) = berth::fetch::reference::Reference::parse(text) {
        let again = berth::fetch::reference::Reference::parse(&r.to_string()).expect("printed reference parses");
        assert_eq!(r, again);
    }
});
