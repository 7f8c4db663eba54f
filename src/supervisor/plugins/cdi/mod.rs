//! The Container Device Interface: vendor spec files (/etc/cdi,
//! /var/run/cdi; JSON or YAML) that say what a named device needs in a
//! container — device nodes, environment, mounts, hooks, groups. Read,
//! checked and resolved here; applied by launch/cdi.rs. Host config,
//! trusted like berth.json (docs/security.md). No supervisor knowledge.

pub mod edits;
pub mod model;
pub mod nodes;
pub mod parse;
pub mod registry;
pub mod validate;

use std::path::PathBuf;

pub use edits::CdiEdits;
pub use registry::DEFAULT_SPEC_DIRS;

/// The spec directories to use: berth.json's, else the defaults.
pub fn spec_dirs(configured: Option<&[PathBuf]>) -> Vec<PathBuf> {
    match configured {
        Some(dirs) => dirs.to_vec(),
        None => DEFAULT_SPEC_DIRS.iter().map(PathBuf::from).collect(),
    }
}

/// Reads every spec file in `dirs` and resolves `names`. Blocking (file
/// reads): run in a helper, never the loop.
pub fn resolve_devices(dirs: &[PathBuf], names: &[&str]) -> Result<CdiEdits, String> {
    if names.is_empty() {
        return Ok(CdiEdits::default());
    }
    let specs = registry::load_specs(dirs)?;
    registry::resolve(&specs, names, dirs)
}
