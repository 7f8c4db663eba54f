//! WWW-Authenticate headers from a registry: any bytes parse to some
//! challenges (maybe none) without panicking; schemes come out lowercased.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for c in berth::fetch::challenge::parse_challenges(text) {
        assert_eq!(c.scheme, c.scheme.to_ascii_lowercase());
        assert!(c.params.keys().all(|k| *k == k.to_ascii_lowercase()));
    }
});
