//! Checks on the OCI documents (types in fetch/oci.rs) that the image
//! layer applies before it trusts them.

pub use crate::fetch::oci::*;

use super::error::ImageError;

/// Parses a JSON document, naming `what` (a file or blob) in the error.
pub fn parse_json<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::invalid(what, e.to_string()))
}

/// Checks a config against its manifest before anything is unpacked.
pub fn validate_config(config: &ImageConfig, what: &str, layers: usize) -> Result<(), ImageError> {
    if config.rootfs.kind != "layers" {
        return Err(ImageError::invalid(
            what,
            format!(
                "rootfs.type must be \"layers\", not {:?}",
                config.rootfs.kind
            ),
        ));
    }
    if config.rootfs.diff_ids.len() != layers {
        return Err(ImageError::invalid(
            what,
            format!(
                "{} diff_ids for {layers} layers in the manifest",
                config.rootfs.diff_ids.len()
            ),
        ));
    }
    if layers == 0 {
        return Err(ImageError::invalid(what, "image has no layers"));
    }
    Ok(())
}
