//! A CDI `deviceNodes` entry: its checks, and the plain node it asks for
//! (what the host must fill in is left `None`; launch/cdi.rs looks it up).

use serde::{Deserialize, Serialize};

use crate::supervisor::plugins::cdi::model::CdiDeviceNode;
use crate::supervisor::plugins::cdi::validate::check_path;
use crate::supervisor::spec::device_rules::parse_permissions;

/// Linux device numbers: 12 bits of major, 20 of minor.
const MAX_MAJOR: i64 = (1 << 12) - 1;
const MAX_MINOR: i64 = (1 << 20) - 1;

/// Container paths no node may take (filesystems of their own).
const NO_NODE_UNDER: &[&str] = &["/proc", "/sys", "/dev/pts", "/dev/shm", "/dev/mqueue"];

/// A device node a CDI spec asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CdiNode {
    pub container_path: String,
    /// `hostPath`, else `path`.
    pub host_path: String,
    /// true for a block device; `None`: the host node's.
    pub block: Option<bool>,
    /// Both or neither (checked): `None` means the host node's.
    pub numbers: Option<(u32, u32)>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub permissions: String,
}

pub fn check_device_node(n: &CdiDeviceNode) -> Result<(), (&'static str, String)> {
    check_path(&n.path).map_err(|e| ("path", e))?;
    if n.path == "/"
        || NO_NODE_UNDER
            .iter()
            .any(|p| std::path::Path::new(&n.path).starts_with(p))
    {
        return Err((
            "path",
            "cannot be / or under /proc, /sys, /dev/pts, /dev/shm or /dev/mqueue".into(),
        ));
    }
    if let Some(h) = &n.host_path {
        check_path(h).map_err(|e| ("hostPath", e))?;
    }
    node_kind(n.kind.as_deref()).map_err(|e| ("type", e))?;
    if let Some(m) = n.major.filter(|m| !(0..=MAX_MAJOR).contains(m)) {
        return Err(("major", format!("{m} is not 0 to {MAX_MAJOR}")));
    }
    if let Some(m) = n.minor.filter(|m| !(0..=MAX_MINOR).contains(m)) {
        return Err(("minor", format!("{m} is not 0 to {MAX_MINOR}")));
    }
    if n.major.is_some() != n.minor.is_some() {
        return Err(("major", "major and minor come together".into()));
    }
    if n.major.is_some() && n.kind.is_none() {
        return Err(("type", "is needed with major and minor".into()));
    }
    if let Some(m) = n.file_mode.filter(|m| *m > 0o7777) {
        return Err(("fileMode", format!("{m:o} has bits beyond 07777")));
    }
    if let Some(p) = &n.permissions
        && parse_permissions(p).is_none()
    {
        return Err((
            "permissions",
            "expected one or more of r, w and m, each once".into(),
        ));
    }
    Ok(())
}

/// `b` is a block device, `c` and `u` character devices; a FIFO (`p`) is
/// refused: berth makes device nodes only.
fn node_kind(kind: Option<&str>) -> Result<Option<bool>, String> {
    match kind {
        None | Some("") => Ok(None),
        Some("b") => Ok(Some(true)),
        Some("c" | "u") => Ok(Some(false)),
        Some("p") => Err("p (a FIFO) is not supported: berth makes device nodes only".into()),
        Some(other) => Err(format!("{other:?} is not one of b, c, u, p")),
    }
}

/// The node asked for (after `check_device_node`).
pub fn cdi_node(n: &CdiDeviceNode) -> CdiNode {
    let numbers = match (n.major, n.minor) {
        (Some(a), Some(b)) => u32::try_from(a).ok().zip(u32::try_from(b).ok()),
        _ => None,
    };
    CdiNode {
        container_path: n.path.clone(),
        host_path: n.host_path.clone().unwrap_or_else(|| n.path.clone()),
        block: node_kind(n.kind.as_deref()).ok().flatten(),
        numbers,
        mode: n.file_mode,
        uid: n.uid,
        gid: n.gid,
        permissions: n.permissions.clone().unwrap_or_else(|| "rwm".into()),
    }
}
