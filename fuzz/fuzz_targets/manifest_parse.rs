//! Manifests, indexes and configs as a registry or layout sends them:
//! parsing and validation refuse bad documents without panicking.
#![no_main]

use berth::image::oci::{ImageConfig, Index, Manifest, parse_json, validate_config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = parse_json::<Manifest>(data, "fuzz manifest") {
        let _ = serde_json::to_vec(&m).expect("a parsed manifest serialises");
    }
    let _ = parse_json::<Index>(data, "fuzz index");
    if let Ok(c) = parse_json::<ImageConfig>(data, "fuzz config") {
        let _ = validate_config(&c, "fuzz config", c.rootfs.diff_ids.len());
    }
});
