//! The record beside each unpacked layer (layers/sha256/<diff_id>.json):
//! written last, so a layer without one is incomplete; holding the tree
//! digest that `berth store verify` checks the layer against.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::ImageError;
use super::store::write_atomic;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LayerRecord {
    pub diff_id: Digest,
    /// tree_digest() of the unpacked directory.
    pub tree: Digest,
    pub entries: u64,
    /// Uncompressed bytes of the layer tarball.
    pub bytes: u64,
}

impl LayerRecord {
    pub fn write(&self, path: &Path) -> Result<(), ImageError> {
        let bytes = serde_json::to_vec(self)
            .map_err(|e| ImageError::invalid(path.display().to_string(), e.to_string()))?;
        write_atomic(path, &bytes)
    }

    pub fn read(path: &Path) -> Result<LayerRecord, ImageError> {
        let bytes = std::fs::read(path).map_err(ImageError::io("read layer record", path))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::invalid(path.display().to_string(), e.to_string()))
    }
}
