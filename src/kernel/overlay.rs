//! The overlay mount of a container's root. mount(2) copies at most one
//! page of options, which a few dozen long layer paths exceed; for those
//! images the lower layers are named through short symlinks on a private
//! scratch tmpfs (the child's mount namespace only), the way moby's
//! overlay2 uses short link ids, but with nothing left in the store.

use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::unistd::{chdir, symlinkat};

use super::config::RootfsConfig;
use super::error::SysError;
use super::mounts;

/// mount(2) copies one page of option data, NUL included.
const MAX_MOUNT_DATA_BYTES: usize = 4095;

pub struct OverlayPlan {
    target: CString,
    data: CString,
    short_links: Option<ShortLinks>,
}

struct ShortLinks {
    scratch: CString,
    /// (link name, layer directory)
    links: Vec<(CString, CString)>,
}

fn cstring(bytes: &[u8], what: &str) -> Result<CString, String> {
    CString::new(bytes).map_err(|_| format!("{what} contains a NUL byte"))
}

/// overlayfs wants ':', ',' and '\' escaped inside its path options.
pub fn escape_overlay_path(path: &Path) -> String {
    let s = path.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ':' | ',' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn options(lowers: &[String], r: &RootfsConfig) -> String {
    format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        escape_overlay_path(&r.upper_dir),
        escape_overlay_path(&r.work_dir)
    )
}

/// Resolved in the parent, so the child only copies bytes. With
/// `short_names` the layers are always named through the scratch tmpfs
/// (idmapped layers need it: they are mounts there, not links).
pub fn plan_overlay(r: &RootfsConfig, short_names: bool) -> Result<OverlayPlan, String> {
    let target = cstring(r.mount_point.as_os_str().as_bytes(), "mount point")?;
    let full: Vec<String> = r
        .lower_dirs
        .iter()
        .map(|p| escape_overlay_path(p))
        .collect();
    let data = options(&full, r);
    if data.len() <= MAX_MOUNT_DATA_BYTES && !short_names {
        return Ok(OverlayPlan {
            target,
            data: cstring(data.as_bytes(), "overlay options")?,
            short_links: None,
        });
    }
    let names: Vec<String> = (0..r.lower_dirs.len()).map(|i| i.to_string()).collect();
    let data = options(&names, r);
    if data.len() > MAX_MOUNT_DATA_BYTES {
        return Err(format!(
            "{} layers are more than an overlay mount can take",
            r.lower_dirs.len()
        ));
    }
    let links = names
        .iter()
        .zip(&r.lower_dirs)
        .map(|(n, dir)| {
            Ok((
                cstring(n.as_bytes(), "link")?,
                cstring(dir.as_os_str().as_bytes(), "layer path")?,
            ))
        })
        .collect::<Result<_, String>>()?;
    let scratch = cstring(r.scratch_dir.as_os_str().as_bytes(), "scratch directory")?;
    Ok(OverlayPlan {
        target,
        data: cstring(data.as_bytes(), "overlay options")?,
        short_links: Some(ShortLinks { scratch, links }),
    })
}

fn target_of(c: &CStr) -> String {
    c.to_string_lossy().into_owned()
}

/// Mounts the planned overlay (in the child, after / was made private).
/// With `idmap_userns`, each layer is an idmapped copy of its directory,
/// showing the image's ids as that user namespace's.
pub fn mount_overlay(plan: &OverlayPlan, idmap_userns: Option<RawFd>) -> Result<(), SysError> {
    let Some(short) = &plan.short_links else {
        return mount(
            Some("overlay"),
            plan.target.as_c_str(),
            Some("overlay"),
            MsFlags::empty(),
            Some(plan.data.as_c_str()),
        )
        .map_err(|e| SysError::at("mount overlay", target_of(&plan.target), e));
    };
    let scratch = short.scratch.as_c_str();
    mount(
        Some("tmpfs"),
        scratch,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=700"),
    )
    .map_err(|e| SysError::at("mount scratch tmpfs", target_of(scratch), e))?;
    let dir = nix::fcntl::open(
        scratch,
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| SysError::at("open scratch", target_of(scratch), e))?;
    for (name, layer) in &short.links {
        match idmap_userns {
            None => symlinkat(layer.as_c_str(), &dir, name.as_c_str())
                .map_err(|e| SysError::at("link layer", target_of(layer), e))?,
            Some(userns) => {
                let target = Path::new(&target_of(scratch)).join(target_of(name));
                let layer = Path::new(&target_of(layer)).to_path_buf();
                std::fs::create_dir(&target).map_err(|e| SysError::io("mkdir", &target, &e))?;
                let tree = mounts::clone_tree(&layer)?;
                mounts::idmap_tree(&tree, userns)
                    .map_err(|e| SysError::at("idmap layer", &layer, e))?;
                mounts::attach_tree(&tree, &target)?;
            }
        }
    }
    // The relative lowerdirs resolve against the working directory, once,
    // at mount time; the links may go away right after.
    chdir(scratch).map_err(|e| SysError::at("chdir", target_of(scratch), e))?;
    mount(
        Some("overlay"),
        plan.target.as_c_str(),
        Some("overlay"),
        MsFlags::empty(),
        Some(plan.data.as_c_str()),
    )
    .map_err(|e| SysError::at("mount overlay", target_of(&plan.target), e))?;
    chdir("/").map_err(|e| SysError::at("chdir", "/", e))?;
    umount2(scratch, MntFlags::MNT_DETACH)
        .map_err(|e| SysError::at("unmount scratch", target_of(scratch), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn rootfs(layers: usize) -> RootfsConfig {
        RootfsConfig {
            lower_dirs: (0..layers)
                .map(|i| PathBuf::from(format!("/var/lib/berth/layers/sha256/{i:064x}")))
                .collect(),
            upper_dir: "/c/upper".into(),
            work_dir: "/c/work".into(),
            mount_point: "/c/rootfs".into(),
            scratch_dir: "/c/lowers".into(),
            shm_size_bytes: 0,
            read_only: false,
        }
    }

    #[test]
    fn few_layers_mount_directly() {
        let p = plan_overlay(&rootfs(3), false).unwrap();
        assert!(p.short_links.is_none());
        assert!(
            p.data
                .to_str()
                .unwrap()
                .starts_with("lowerdir=/var/lib/berth/layers/sha256/")
        );
    }

    #[test]
    fn many_layers_go_through_short_links() {
        let p = plan_overlay(&rootfs(200), false).unwrap();
        assert_eq!(p.short_links.as_ref().unwrap().links.len(), 200);
        assert!(p.data.to_str().unwrap().starts_with("lowerdir=0:1:2:"));
        assert!(p.data.as_bytes().len() <= MAX_MOUNT_DATA_BYTES);
    }

    #[test]
    fn overlay_paths_are_escaped() {
        assert_eq!(escape_overlay_path(Path::new("/a:b,c")), "/a\\:b\\,c");
    }
}
