//! `berth store verify [--repair]`: re-hashes every blob, recomputes every
//! layer's tree digest, checks every reference reaches complete content,
//! and lists what dead imports left behind. With repair, what is corrupt
//! or incomplete is removed (and broken references dropped), so that the
//! next import or pull fetches it again.

use std::fs;

use serde::Serialize;

use super::digest::{Digest, Hashing};
use super::error::ImageError;
use super::gc::dead_staging;
use super::layer_record::LayerRecord;
use super::oci::{ImageConfig, Manifest, parse_json};
use super::refs;
use super::store::Store;
use super::tree_digest::tree_digest;

#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    /// Corruption or incompleteness: the store is not clean.
    pub problems: Vec<String>,
    /// Leftovers that harm nothing (staging of killed imports).
    pub garbage: Vec<String>,
    pub repaired: Vec<String>,
    pub blobs_checked: usize,
    pub layers_checked: usize,
}

pub fn verify(store: &Store, repair: bool) -> Result<VerifyReport, ImageError> {
    let guard = refs::lock(store, true)?;
    let mut r = VerifyReport::default();
    check_blobs(store, repair, &mut r)?;
    check_layers(store, repair, &mut r)?;
    let broken = broken_references(store)?;
    for (name, why) in &broken {
        r.problems.push(format!("reference {name}: {why}"));
    }
    if repair && !broken.is_empty() {
        refs::update_locked(store, &guard, |t| {
            broken.iter().for_each(|(n, _)| drop(t.remove(n)))
        })?;
        r.repaired
            .extend(broken.iter().map(|(n, _)| format!("dropped reference {n}")));
    }
    for dir in dead_staging(store)? {
        r.garbage.push(format!(
            "staging left by a killed import: {}",
            dir.display()
        ));
        if repair {
            fs::remove_dir_all(&dir).map_err(ImageError::io("remove staging", &dir))?;
            r.repaired.push(format!("removed {}", dir.display()));
        }
    }
    Ok(r)
}

fn check_blobs(store: &Store, repair: bool, r: &mut VerifyReport) -> Result<(), ImageError> {
    for entry in fs::read_dir(store.blobs_dir())
        .map_err(ImageError::io("list", store.blobs_dir()))?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let ok = match (Digest::from_hex(&name), fs::File::open(&path)) {
            (Some(d), Ok(f)) => {
                let mut h = Hashing::new(f);
                std::io::copy(&mut h, &mut std::io::sink()).is_ok() && h.finish().0 == d
            }
            _ => false,
        };
        r.blobs_checked += 1;
        if !ok {
            r.problems.push(format!(
                "blob {}: content does not match its name",
                path.display()
            ));
            if repair {
                fs::remove_file(&path).map_err(ImageError::io("remove blob", &path))?;
                r.repaired.push(format!("removed {}", path.display()));
            }
        }
    }
    Ok(())
}

fn check_layers(store: &Store, repair: bool, r: &mut VerifyReport) -> Result<(), ImageError> {
    for entry in fs::read_dir(store.layers_dir())
        .map_err(ImageError::io("list", store.layers_dir()))?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(diff_id) = Digest::from_hex(name.strip_suffix(".json").unwrap_or(&name)) else {
            r.problems
                .push(format!("unexpected entry {}", entry.path().display()));
            continue;
        };
        let (dir, record_path) = (
            store.layer_path(&diff_id),
            store.layer_record_path(&diff_id),
        );
        if name.ends_with(".json") {
            // (It may be gone already: repairing its layer removed it.)
            if record_path.exists() && !dir.is_dir() {
                r.problems
                    .push(format!("layer {diff_id}: record without a tree"));
                if repair {
                    fs::remove_file(&record_path)
                        .map_err(ImageError::io("remove", &record_path))?;
                    r.repaired
                        .push(format!("removed {}", record_path.display()));
                }
            }
            continue;
        }
        r.layers_checked += 1;
        let problem = match LayerRecord::read(&record_path) {
            Err(_) => Some("incomplete (no record): interrupted while it was added".to_string()),
            Ok(rec) => match tree_digest(&dir) {
                Ok(t) if t == rec.tree => None,
                Ok(_) => Some("its files differ from what was unpacked".to_string()),
                Err(e) => Some(format!("cannot be read: {e}")),
            },
        };
        if let Some(p) = problem {
            r.problems.push(format!("layer {diff_id}: {p}"));
            if repair {
                fs::remove_dir_all(&dir).map_err(ImageError::io("remove layer", &dir))?;
                let _ = fs::remove_file(&record_path);
                r.repaired.push(format!("removed layer {diff_id}"));
            }
        }
    }
    Ok(())
}

/// References whose manifest, config or layers are not all in the store.
fn broken_references(store: &Store) -> Result<Vec<(String, String)>, ImageError> {
    let mut out = Vec::new();
    for (name, record) in refs::load(store)? {
        let check = || -> Result<(), String> {
            let manifest: Manifest = parse_json(
                &store
                    .read_blob(&record.manifest)
                    .map_err(|e| e.to_string())?,
                "manifest",
            )
            .map_err(|e| e.to_string())?;
            let config: ImageConfig = parse_json(
                &store.read_blob(&record.config).map_err(|e| e.to_string())?,
                "config",
            )
            .map_err(|e| e.to_string())?;
            if manifest.config.digest != record.config {
                return Err("manifest and reference disagree on the config".into());
            }
            match config.rootfs.diff_ids.iter().find(|d| !store.has_layer(d)) {
                Some(d) => Err(format!("layer {d} is missing")),
                None => Ok(()),
            }
        };
        if let Err(why) = check() {
            out.push((name, why));
        }
    }
    Ok(out)
}
