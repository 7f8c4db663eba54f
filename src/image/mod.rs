//! Content: the content-addressed image store, layer unpacking into
//! overlayfs form, import of OCI layouts and docker-archive tarballs.
//! Never starts containers.

pub mod digest;
mod docker_archive;
pub mod error;
pub mod import;
mod layout;
pub mod lookup;
pub mod oci;
pub mod refs;
mod staging;
pub mod store;
mod unpack;

pub use error::ImageError;
pub use store::Store;
