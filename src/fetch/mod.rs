//! Distribution: image references, credentials, the registry client with
//! token auth, manifest and platform selection. Never starts containers.

mod agent;
pub mod challenge;
pub mod credentials;
pub mod deadline;
pub mod digest;
pub mod error;
pub mod manifest;
pub mod oci;
pub mod rate;
pub mod reference;
pub mod registry;
pub mod tag_digest;
pub mod token;
