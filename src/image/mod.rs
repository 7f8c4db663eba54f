//! Content: the content-addressed image store, layer unpacking into
//! overlayfs form, import of OCI layouts and docker-archive tarballs.
//! Never starts containers.

pub mod digest;
mod docker_archive;
pub mod error;
pub mod extract;
pub mod import;
mod layout;
pub mod lookup;
pub mod oci;
pub mod refs;
mod staging;
pub mod store;
pub mod unpack;
pub mod unpack_helper;

pub use error::ImageError;
pub use store::Store;
