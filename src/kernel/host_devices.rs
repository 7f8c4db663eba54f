//! Device nodes as the host has them: the node a path leads to (symlinks
//! such as /dev/serial/by-id/… followed), every node beneath a directory
//! (/dev/snd), or all of /dev as runc hands it to a privileged container.
//! Only reads the host; the container's own nodes are made by
//! `devices.rs` in the child.

use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use super::error::errno_text;

/// How deep a directory of devices is walked (/dev/bus/usb/001/002 is 3).
const MAX_DEPTH: usize = 16;
/// Entries of any kind looked at beneath one directory: a path like `/`
/// fails in bounded time instead of walking a whole filesystem.
const MAX_ENTRIES: usize = 1 << 16;

/// Directories of /dev a privileged container does not get from the host
/// (runc's list): it has its own pts, shm, mqueue and fd.
const PRIVATE_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];
/// Nodes it does not get either: the console is not the container's, and
/// its /dev/ptmx is the link to its own pts/ptmx.
const PRIVATE_NODES: &[&str] = &["console", "ptmx"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    #[serde(rename = "c")]
    Char,
    #[serde(rename = "b")]
    Block,
}

/// One device node on the host: where it is (no symlink left in the
/// path), its type and numbers, permission bits and owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNode {
    pub path: PathBuf,
    pub kind: NodeKind,
    pub major: u32,
    pub minor: u32,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// What a path leads to: one node, or the nodes beneath a directory,
/// each with its path relative to that directory.
#[derive(Debug)]
pub enum Found {
    Node(HostNode),
    Dir(Vec<(PathBuf, HostNode)>),
}

/// Why a path gave no device: `missing` when nothing is there (a device
/// that is unplugged, a dangling by-id link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDeviceError {
    pub path: PathBuf,
    pub reason: String,
    pub missing: bool,
}

impl fmt::Display for HostDeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl std::error::Error for HostDeviceError {}

fn io_error(path: &Path, e: &io::Error) -> HostDeviceError {
    let reason = e
        .raw_os_error()
        .map_or_else(|| e.to_string(), |n| errno_text(Errno::from_raw(n)));
    HostDeviceError {
        path: path.to_path_buf(),
        reason,
        missing: e.kind() == io::ErrorKind::NotFound,
    }
}

fn other_error(path: &Path, reason: String) -> HostDeviceError {
    HostDeviceError {
        path: path.to_path_buf(),
        reason,
        missing: false,
    }
}

/// The node `path` leads to, or every node beneath it when it leads to a
/// directory (symlinks inside are not followed, as Docker walks). At most
/// `limit` nodes.
pub fn find(path: &Path, limit: usize) -> Result<Found, HostDeviceError> {
    let real = fs::canonicalize(path).map_err(|e| io_error(path, &e))?;
    let meta = fs::symlink_metadata(&real).map_err(|e| io_error(path, &e))?;
    if let Some(node) = node_of(&real, &meta) {
        return Ok(Found::Node(node));
    }
    if meta.is_dir() {
        return walk(&real, &[], &[], limit).map(Found::Dir);
    }
    let shown = if real == path {
        String::new()
    } else {
        format!(" ({} leads to {})", path.display(), real.display())
    };
    Err(other_error(
        path,
        format!("not a device node or a directory of them{shown}"),
    ))
}

/// Every node of the host's /dev but the container's private ones (runc's
/// `HostDevices`): what a privileged container gets. At most `limit`.
pub fn all_host_devices(limit: usize) -> Result<Vec<HostNode>, HostDeviceError> {
    let nodes = walk(Path::new("/dev"), PRIVATE_DIRS, PRIVATE_NODES, limit)?;
    Ok(nodes.into_iter().map(|(_, n)| n).collect())
}

/// The nodes beneath `root`, sorted by path, skipping directories and
/// nodes named in `skip_dirs` and `skip_nodes` at any depth.
fn walk(
    root: &Path,
    skip_dirs: &[&str],
    skip_nodes: &[&str],
    limit: usize,
) -> Result<Vec<(PathBuf, HostNode)>, HostDeviceError> {
    let skipped = |names: &[&str], name: &OsStr| names.iter().any(|n| OsStr::new(n) == name);
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), 0usize)];
    let mut seen = 0usize;
    while let Some((dir, depth)) = stack.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| io_error(&dir, &e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&dir, &e))?;
            seen += 1;
            if seen > MAX_ENTRIES {
                let why = format!("more than {MAX_ENTRIES} entries beneath it");
                return Err(other_error(root, why));
            }
            let (name, path) = (entry.file_name(), entry.path());
            // A node that went away meanwhile is simply not there.
            let Ok(meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if depth < MAX_DEPTH && !skipped(skip_dirs, &name) {
                    stack.push((path, depth + 1));
                }
                continue;
            }
            let Some(node) = node_of(&path, &meta).filter(|_| !skipped(skip_nodes, &name)) else {
                continue;
            };
            if out.len() >= limit {
                let why = format!("more than {limit} device nodes");
                return Err(other_error(root, why));
            }
            let relative = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            out.push((relative, node));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn node_of(path: &Path, meta: &Metadata) -> Option<HostNode> {
    let kind = match meta.file_type() {
        t if t.is_char_device() => NodeKind::Char,
        t if t.is_block_device() => NodeKind::Block,
        _ => return None,
    };
    let rdev = meta.rdev();
    Some(HostNode {
        path: path.to_path_buf(),
        kind,
        major: u32::try_from(nix::sys::stat::major(rdev)).ok()?,
        minor: u32::try_from(nix::sys::stat::minor(rdev)).ok()?,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_leads_to_its_node_and_other_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let link = dir.path().join("by-id-null");
        std::os::unix::fs::symlink("/dev/null", &link).expect("symlink");
        let Ok(Found::Node(n)) = find(&link, 10) else {
            panic!("no node behind the link")
        };
        assert_eq!((n.kind, n.major, n.minor), (NodeKind::Char, 1, 3));
        assert_eq!(n.path, Path::new("/dev/null"));
        let file = dir.path().join("plain");
        fs::write(&file, b"x").expect("write");
        let e = find(&file, 10).unwrap_err();
        assert!(!e.missing && e.reason.contains("not a device node"), "{e}");
        let e = find(&dir.path().join("gone"), 10).unwrap_err();
        assert!(e.missing && e.to_string().ends_with("gone: No such file or directory"));
        let Ok(Found::Dir(nodes)) = find(dir.path(), 10) else {
            panic!("a directory gives its nodes")
        };
        assert!(nodes.is_empty(), "a link inside is not followed: {nodes:?}");
    }

    #[test]
    fn the_hosts_dev_leaves_out_what_the_container_has_of_its_own() {
        let nodes = all_host_devices(100_000).expect("walk /dev");
        assert!(nodes.iter().any(|n| n.path == Path::new("/dev/null")));
        for private in ["/dev/console", "/dev/ptmx"] {
            assert!(nodes.iter().all(|n| n.path != Path::new(private)));
        }
        assert!(nodes.iter().all(|n| !n.path.starts_with("/dev/pts")));
        let e = all_host_devices(1).unwrap_err();
        assert!(e.reason.contains("more than 1 device nodes"), "{e}");
    }
}
