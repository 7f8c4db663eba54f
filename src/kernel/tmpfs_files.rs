//! A tmpfs filled with copies of files the parent opened, then made
//! read-only: how a container gets files (its secrets) that are neither the
//! host's inodes nor writable. Runs in the child, after pivot_root and
//! before the user namespace is joined, so the ids given are host ids and
//! a container root cannot remount it (its mount namespace is the host's
//! user namespace's).

use std::fs::{self, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt, fchown};
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sys::uio::pread;

use super::config::FileCopy;
use super::error::SysError;
use super::rootfs::{FsOwner, owner_options};

const COPY_CHUNK_BYTES: usize = 64 << 10;

/// Mounts the tmpfs at `target` (root `mode`, owned by the container's
/// root), copies each file in, and remounts it read-only. A file larger
/// than `size` allows (it grew since the parent sized the mount) fails
/// with ENOSPC.
pub fn mount_files(
    target: &Path,
    size: u64,
    mode: u32,
    files: &[FileCopy],
    owner: Option<FsOwner>,
) -> Result<(), SysError> {
    fs::create_dir_all(target).map_err(|e| SysError::io("mkdir", target, &e))?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let data = format!("mode={mode:o},size={size}{}", owner_options(owner));
    mount(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        flags,
        Some(data.as_str()),
    )
    .map_err(|e| SysError::at("mount tmpfs", target, e))?;
    for f in files {
        copy_in(target, f)?;
    }
    mount(
        None::<&str>,
        target,
        None::<&str>,
        flags | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(|e| SysError::at("remount read-only", target, e))
}

/// One file: created new (never through a link), filled from the start of
/// `f.source` (pread: the descriptor's offset is shared and left alone),
/// then given its owner and mode.
fn copy_in(dir: &Path, f: &FileCopy) -> Result<(), SysError> {
    let path = dir.join(&f.name);
    if f.name.is_empty() || f.name.contains('/') || f.name == "." || f.name == ".." {
        return Err(SysError::at("copy a file to", path, Errno::EINVAL));
    }
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| SysError::io("create", &path, &e))?;
    let mut buf = vec![0u8; COPY_CHUNK_BYTES];
    let mut offset: libc::off_t = 0;
    loop {
        let n = pread(&*f.source, &mut buf, offset)
            .map_err(|e| SysError::at("read the source of", &path, e))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n])
            .map_err(|e| SysError::io("write", &path, &e))?;
        offset += n as libc::off_t;
    }
    buf.fill(0);
    fchown(&out, Some(f.uid), Some(f.gid)).map_err(|e| SysError::io("chown", &path, &e))?;
    out.set_permissions(Permissions::from_mode(f.mode))
        .map_err(|e| SysError::io("chmod", &path, &e))
}
