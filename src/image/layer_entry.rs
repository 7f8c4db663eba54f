//! What a layer's tar entry may carry into the tree: its metadata (`Meta`),
//! the extended attributes allowed through, and its path made relative to
//! the layer root, refused when it climbs out with "..".

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Entry metadata as the tar header (and PAX records) give it.
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    /// Extended attributes to set (already filtered: see `allowed_xattr`).
    pub xattrs: Vec<(OsString, Vec<u8>)>,
}

/// Xattrs a layer may carry. `trusted.*` (overlayfs's own: redirect,
/// metacopy, opaque) and other `security.*` names are refused, so a layer
/// cannot steer the overlay mount or an LSM.
pub fn allowed_xattr(name: &OsStr) -> bool {
    let n = name.as_bytes();
    n.starts_with(b"user.") || n == b"security.capability"
}

/// `p` relative to the layer root: "." and a leading "/" dropped (an
/// absolute name means the layer's root, as Docker reads it); None when
/// it climbs with "..".
pub fn safe_relative(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}
