//! Writing one layer's tar entries below a root directory without ever
//! following a symlink: every directory is opened with openat2
//! RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, every file is created with
//! O_NOFOLLOW | O_EXCL, and metadata is set through descriptors. A link in
//! the layer that points anywhere (even "/") is just stored, never used.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstatat, makedev, mkdirat,
    mknodat, utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};

use super::file_hashes::FileHashes;
// Re-exported so `image::extract::{Meta, ...}` stays the public path
// (layer_entry itself is private).
pub use super::layer_entry::{Meta, allowed_xattr, safe_relative};

/// Where extraction stands, and the rules it enforces.
pub struct LayerWriter {
    root: OwnedFd,
    root_path: PathBuf,
    /// Directory mtimes are set last: creating children changes them.
    dir_times: Vec<(PathBuf, i64)>,
    /// Directories marked opaque (`.wh..wh..opq`), relative to the root.
    pub opaque_dirs: Vec<PathBuf>,
    /// What each written file holds, for the tree digest.
    pub file_hashes: FileHashes,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct ExtractError {
    pub path: String,
    pub reason: String,
}

fn err(path: &Path, reason: impl Into<String>) -> ExtractError {
    ExtractError {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn errno_err(path: &Path, op: &str, e: Errno) -> ExtractError {
    let hint = if e == Errno::ELOOP {
        " (passes through a symlink: refused)"
    } else {
        ""
    };
    err(
        path,
        format!("{op}: {}{hint}", crate::kernel::error::errno_text(e)),
    )
}

const RESOLVE: ResolveFlag = ResolveFlag::RESOLVE_BENEATH
    .union(ResolveFlag::RESOLVE_NO_SYMLINKS)
    .union(ResolveFlag::RESOLVE_NO_MAGICLINKS);

impl LayerWriter {
    pub fn open(root: &Path) -> Result<LayerWriter, ExtractError> {
        let fd = nix::fcntl::open(
            root,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| errno_err(root, "open layer root", e))?;
        Ok(LayerWriter {
            root: fd,
            root_path: root.to_path_buf(),
            dir_times: Vec::new(),
            opaque_dirs: Vec::new(),
            file_hashes: FileHashes::default(),
        })
    }

    fn open_dir(&self, rel: &Path) -> Result<OwnedFd, Errno> {
        let path = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        let how = OpenHow::new()
            .flags(OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC)
            .resolve(RESOLVE);
        openat2(self.root.as_fd(), path, how)
    }

    /// Opens `rel` as a directory, creating missing components (0755,
    /// root-owned, as tar does for implied parents).
    pub fn ensure_dir(&self, rel: &Path) -> Result<OwnedFd, ExtractError> {
        match self.open_dir(rel) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(errno_err(rel, "open directory", e)),
        }
        let mut cur = PathBuf::new();
        let mut fd = self
            .open_dir(&cur)
            .map_err(|e| errno_err(rel, "open layer root", e))?;
        for part in rel.components() {
            cur.push(part);
            match mkdirat(&fd, part.as_os_str(), Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(errno_err(&cur, "mkdir", e)),
            }
            fd = self
                .open_dir(&cur)
                .map_err(|e| errno_err(&cur, "open directory", e))?;
        }
        Ok(fd)
    }

    /// Removes whatever is at `name` in `dir`, unless it is a directory and
    /// `keep_dir` (tar: a directory entry over a directory only changes
    /// its attributes).
    fn clear(
        &self,
        dir: &OwnedFd,
        rel: &Path,
        name: &OsStr,
        keep_dir: bool,
    ) -> Result<bool, ExtractError> {
        let st = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(false),
            Err(e) => return Err(errno_err(rel, "stat", e)),
        };
        let is_dir = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR;
        if is_dir && keep_dir {
            return Ok(true);
        }
        if is_dir {
            // The directory's own path has no symlink in it (open_dir said
            // so), and remove_dir_all never follows the links it meets.
            std::fs::remove_dir_all(self.root_path.join(rel))
                .map_err(|e| err(rel, format!("remove directory: {e}")))?;
        } else {
            unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)
                .map_err(|e| errno_err(rel, "unlink", e))?;
        }
        Ok(false)
    }

    /// (parent directory fd, file name) for `rel`, parents created.
    fn parent_of<'p>(&self, rel: &'p Path) -> Result<(OwnedFd, &'p OsStr), ExtractError> {
        let name = rel
            .file_name()
            .ok_or_else(|| err(rel, "has no file name"))?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        Ok((self.ensure_dir(parent)?, name))
    }

    /// The layer's root directory, e.g. to ask its filesystem's free space.
    pub fn root_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.root)
    }

    pub fn write_file(
        &mut self,
        rel: &Path,
        meta: &Meta,
        data: &mut dyn Read,
        size: u64,
    ) -> Result<(), ExtractError> {
        let (dir, name) = self.parent_of(rel)?;
        self.clear(&dir, rel, name, false)?;
        let how = OpenHow::new()
            .flags(
                OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_WRONLY
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
            )
            .mode(Mode::from_bits_truncate(0o600))
            .resolve(RESOLVE);
        let fd = openat2(&dir, name, how).map_err(|e| errno_err(rel, "create", e))?;
        let mut file = File::from(fd);
        let copied = self
            .file_hashes
            .copy_into(data, &mut file, size)
            .map_err(|e| err(rel, format!("write: {e}")))?;
        if copied != size {
            return Err(err(
                rel,
                format!("archive ends after {copied} of {size} bytes"),
            ));
        }
        self.set_meta_fd(rel, file.as_fd(), meta)
    }

    pub fn make_dir(&mut self, rel: &Path, meta: &Meta) -> Result<(), ExtractError> {
        if rel.as_os_str().is_empty() {
            let root = self.open_dir(rel).map_err(|e| errno_err(rel, "open", e))?;
            self.dir_times.push((rel.to_path_buf(), meta.mtime));
            return self.set_meta_fd(
                rel,
                root.as_fd(),
                &Meta {
                    mtime: -1,
                    xattrs: Vec::new(),
                    ..*meta
                },
            );
        }
        let (dir, name) = self.parent_of(rel)?;
        if !self.clear(&dir, rel, name, true)? {
            mkdirat(&dir, name, Mode::from_bits_truncate(0o700))
                .map_err(|e| errno_err(rel, "mkdir", e))?;
        }
        let fd = self
            .open_dir(rel)
            .map_err(|e| errno_err(rel, "open directory", e))?;
        self.dir_times.push((rel.to_path_buf(), meta.mtime));
        self.set_meta_fd(
            rel,
            fd.as_fd(),
            &Meta {
                mtime: -1,
                xattrs: meta.xattrs.clone(),
                ..*meta
            },
        )
    }

    pub fn make_symlink(
        &mut self,
        rel: &Path,
        target: &Path,
        meta: &Meta,
    ) -> Result<(), ExtractError> {
        let (dir, name) = self.parent_of(rel)?;
        self.clear(&dir, rel, name, false)?;
        symlinkat(target, &dir, name).map_err(|e| errno_err(rel, "symlink", e))?;
        chown_at(&dir, name, rel, meta)?;
        let t = TimeSpec::new(meta.mtime, 0);
        utimensat(&dir, name, &t, &t, UtimensatFlags::NoFollowSymlink)
            .map_err(|e| errno_err(rel, "set symlink times", e))
    }

    /// A hard link to an entry earlier in this same layer.
    pub fn make_hardlink(&mut self, rel: &Path, target: &Path) -> Result<(), ExtractError> {
        let target = safe_relative(target).ok_or_else(|| {
            err(
                rel,
                format!("hard link target {} leaves the layer", target.display()),
            )
        })?;
        let (tdir, tname) = {
            let name = target
                .file_name()
                .ok_or_else(|| err(rel, "hard link to the layer root"))?;
            let parent = target.parent().unwrap_or(Path::new(""));
            let fd = self
                .open_dir(parent)
                .map_err(|e| errno_err(&target, "hard link target", e))?;
            (fd, name.to_os_string())
        };
        let (dir, name) = self.parent_of(rel)?;
        self.clear(&dir, rel, name, false)?;
        // Flags 0: a symlink target is linked as the symlink, never followed.
        linkat(&tdir, tname.as_os_str(), &dir, name, AtFlags::empty())
            .map_err(|e| errno_err(rel, "hard link", e))
    }

    pub fn make_node(
        &mut self,
        rel: &Path,
        kind: SFlag,
        major: u64,
        minor: u64,
        meta: &Meta,
    ) -> Result<(), ExtractError> {
        let (dir, name) = self.parent_of(rel)?;
        self.clear(&dir, rel, name, false)?;
        mknodat(
            &dir,
            name,
            kind,
            Mode::from_bits_truncate(0o600),
            makedev(major, minor),
        )
        .map_err(|e| errno_err(rel, "mknod", e))?;
        // The node was created just now by this single-threaded process,
        // so naming it again cannot reach anything else.
        chown_at(&dir, name, rel, meta)?;
        fchmodat(
            &dir,
            name,
            Mode::from_bits_truncate(meta.mode & 0o7777),
            FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| errno_err(rel, "chmod", e))?;
        let t = TimeSpec::new(meta.mtime, 0);
        utimensat(&dir, name, &t, &t, UtimensatFlags::NoFollowSymlink)
            .map_err(|e| errno_err(rel, "set times", e))
    }

    /// overlayfs's whiteout for `rel`: a 0/0 character device.
    pub fn whiteout(&mut self, rel: &Path) -> Result<(), ExtractError> {
        let (dir, name) = self.parent_of(rel)?;
        self.clear(&dir, rel, name, false)?;
        mknodat(&dir, name, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
            .map_err(|e| errno_err(rel, "create whiteout", e))
    }

    /// Sets overlayfs's opaque xattr on `rel` (done by the supervisor after
    /// the helper, since trusted.* needs CAP_SYS_ADMIN).
    pub fn set_opaque_xattr(&self, rel: &Path) -> Result<(), ExtractError> {
        let fd = self
            .open_dir(rel)
            .map_err(|e| errno_err(rel, "open opaque directory", e))?;
        let dir = File::from(fd);
        xattr::FileExt::set_xattr(&dir, "trusted.overlay.opaque", b"y")
            .map_err(|e| err(rel, format!("mark opaque: {e}")))
    }

    pub fn mark_opaque(&mut self, rel: &Path) -> Result<(), ExtractError> {
        self.ensure_dir(rel)?;
        self.opaque_dirs.push(rel.to_path_buf());
        Ok(())
    }

    /// Owner before mode (chown clears setuid bits); xattrs after chown
    /// (it clears security.capability); times last.
    fn set_meta_fd(
        &self,
        rel: &Path,
        fd: std::os::fd::BorrowedFd<'_>,
        meta: &Meta,
    ) -> Result<(), ExtractError> {
        fchown(
            fd,
            Some(Uid::from_raw(meta.uid)),
            Some(Gid::from_raw(meta.gid)),
        )
        .map_err(|e| errno_err(rel, "chown", e))?;
        fchmod(fd, Mode::from_bits_truncate(meta.mode & 0o7777))
            .map_err(|e| errno_err(rel, "chmod", e))?;
        let file = File::from(
            fd.try_clone_to_owned()
                .map_err(|e| err(rel, e.to_string()))?,
        );
        for (name, value) in &meta.xattrs {
            xattr::FileExt::set_xattr(&file, name, value)
                .map_err(|e| err(rel, format!("set xattr {}: {e}", name.to_string_lossy())))?;
        }
        if meta.mtime >= 0 {
            let t = TimeSpec::new(meta.mtime, 0);
            nix::sys::stat::futimens(fd, &t, &t).map_err(|e| errno_err(rel, "set times", e))?;
        }
        Ok(())
    }

    /// Sets directory mtimes, deepest first, once all entries are written.
    pub fn finish(&mut self) -> Result<(), ExtractError> {
        let mut dirs = std::mem::take(&mut self.dir_times);
        dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (rel, mtime) in dirs {
            let Ok(fd) = self.open_dir(&rel) else {
                continue;
            };
            let t = TimeSpec::new(mtime, 0);
            nix::sys::stat::futimens(&fd, &t, &t).map_err(|e| errno_err(&rel, "set times", e))?;
        }
        Ok(())
    }
}

/// Owner of the entry `name` in `dir` itself (a symlink is not followed).
fn chown_at(dir: &OwnedFd, name: &OsStr, rel: &Path, meta: &Meta) -> Result<(), ExtractError> {
    let (uid, gid) = (Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)));
    fchownat(dir, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| errno_err(rel, "chown", e))
}
