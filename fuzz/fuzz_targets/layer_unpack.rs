//! The layer unpacker on arbitrary bytes (tar, gzip or zstd): it may
//! refuse, never panic, and never create anything outside its target.
#![no_main]

use std::path::Path;

use berth::image::digest::Digest;
use berth::image::unpack::{UnpackLimits, unpack_layer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let blob = dir.path().join("blob");
    let target = dir.path().join("layer");
    std::fs::write(&blob, data).expect("write blob");
    std::fs::create_dir(&target).expect("target");
    let limits = UnpackLimits { max_bytes: 64 << 20, max_ratio: 100, ratio_floor_bytes: 1 << 20, max_entries: 10_000 };
    let _ = unpack_layer(&blob, &target, &Digest::of_bytes(data), "fuzz", limits);
    let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["blob", "layer"], "something was written beside the layer");
    assert!(Path::new(&target).is_dir());
});
