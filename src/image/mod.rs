//! Content: the content-addressed image store, layer unpacking into
//! overlayfs form, import of OCI layouts and docker-archive tarballs.
//! Never starts containers.

pub use crate::fetch::digest;
mod docker_archive;
pub mod error;
pub mod extract;
mod file_hashes;
pub mod gc;
pub mod import;
mod inflate;
mod layer_entry;
pub mod layer_record;
mod layer_stream;
mod layout;
pub mod lookup;
pub mod oci;
mod oci_archive;
pub mod pull;
mod pull_blob;
pub mod refs;
pub mod save;
mod save_archive;
pub mod space;
mod stage_layers;
mod staging;
pub mod store;
pub mod tree_digest;
pub mod unpack;
pub mod unpack_helper;
pub mod usage;
pub mod verify;

pub use error::ImageError;
pub use store::Store;
