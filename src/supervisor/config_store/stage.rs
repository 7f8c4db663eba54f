//! Copying a config to apply into a staging directory: a directory as it
//! is, or a tarball (plain or gzip) unpacked. Both are untrusted: only
//! regular files and directories are taken; a symlink, a device, a link,
//! an absolute path or a `..` refuses the whole config; the entries, the
//! bytes and the depth are bounded. Every file and directory is fsynced
//! before the stage counts as done.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// At most this many files and directories in a config.
pub const MAX_ENTRIES: usize = 10_000;
/// At most this many bytes of file content, all files together.
pub const MAX_BYTES: u64 = 64 << 20;
/// At most this deep.
pub const MAX_DEPTH: usize = 32;
/// What a tarball may hold in all (headers, padding, long names).
const MAX_STREAM_BYTES: u64 = MAX_BYTES * 2;

#[derive(Default)]
struct Budget {
    entries: usize,
    bytes: u64,
}

impl Budget {
    fn entry(&mut self, path: &Path, size: u64) -> Result<(), String> {
        self.entries += 1;
        self.bytes = self.bytes.saturating_add(size);
        if self.entries > MAX_ENTRIES {
            return Err(format!(
                "more than {MAX_ENTRIES} entries (at {})",
                path.display()
            ));
        }
        if self.bytes > MAX_BYTES {
            return Err(format!(
                "more than {MAX_BYTES} bytes of files (at {})",
                path.display()
            ));
        }
        if path.components().count() > MAX_DEPTH {
            return Err(format!("{} is deeper than {MAX_DEPTH}", path.display()));
        }
        Ok(())
    }
}

/// Copies `source` (a directory, or a tarball file) into `staging`, which
/// exists and is empty.
pub fn stage(source: &Path, staging: &Path) -> Result<(), String> {
    let meta = fs::metadata(source).map_err(|e| format!("{}: {e}", source.display()))?;
    let mut budget = Budget::default();
    if meta.is_dir() {
        copy_dir(source, staging, Path::new(""), &mut budget)?;
    } else if meta.is_file() {
        let file = fs::File::open(source).map_err(|e| format!("open {}: {e}", source.display()))?;
        unpack(file, staging).map_err(|e| format!("{}: {e}", source.display()))?;
    } else {
        return Err(format!(
            "{} is neither a directory nor a tarball",
            source.display()
        ));
    }
    sync_tree(staging)
}

fn copy_dir(from: &Path, to: &Path, rel: &Path, budget: &mut Budget) -> Result<(), String> {
    let entries = fs::read_dir(from).map_err(|e| format!("list {}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("list {}: {e}", from.display()))?;
        let path = entry.path();
        let rel = rel.join(entry.file_name());
        let meta = fs::symlink_metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let kind = meta.file_type();
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            budget.entry(&rel, 0)?;
            fs::create_dir(&dest).map_err(|e| format!("create {}: {e}", dest.display()))?;
            copy_dir(&path, &dest, &rel, budget)?;
        } else if kind.is_file() {
            budget.entry(&rel, meta.len())?;
            let src = fs::File::open(&path).map_err(|e| format!("open {}: {e}", path.display()))?;
            write_file(&dest, src.take(meta.len()), meta.permissions().mode())?;
        } else {
            return Err(format!(
                "{}: only files and directories are taken (a symlink or special file)",
                path.display()
            ));
        }
    }
    Ok(())
}

/// Unpacks a tarball (gzip when it starts so) into `to`.
pub fn unpack(mut file: impl Read, to: &Path) -> Result<(), String> {
    let mut magic = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match file.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let head = io::Cursor::new(magic[..got].to_vec()).chain(file);
    let stream: Box<dyn Read> = if magic[..got] == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(head))
    } else {
        Box::new(head)
    };
    let bounded = Bounded {
        inner: stream,
        left: MAX_STREAM_BYTES,
    };
    let mut archive = tar::Archive::new(bounded);
    let mut budget = Budget::default();
    let entries = archive
        .entries()
        .map_err(|e| format!("not a tarball: {e}"))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("tarball: {e}"))?;
        unpack_entry(entry, to, &mut budget)?;
    }
    Ok(())
}

fn unpack_entry(
    entry: tar::Entry<'_, impl Read>,
    to: &Path,
    budget: &mut Budget,
) -> Result<(), String> {
    let raw = entry
        .path()
        .map_err(|e| format!("tarball: an entry's name: {e}"))?
        .into_owned();
    let rel = safe_relative(&raw)?;
    let kind = entry.header().entry_type();
    if kind == tar::EntryType::XGlobalHeader {
        return Ok(());
    }
    let size = entry
        .header()
        .size()
        .map_err(|e| format!("{}: {e}", raw.display()))?;
    budget.entry(&rel, if kind.is_file() { size } else { 0 })?;
    let taken = matches!(
        kind,
        tar::EntryType::Directory | tar::EntryType::Regular | tar::EntryType::Continuous
    );
    if !taken {
        return Err(format!(
            "{}: only files and directories are taken, not {kind:?}",
            raw.display()
        ));
    }
    if rel.as_os_str().is_empty() {
        return Ok(());
    }
    let dest = to.join(&rel);
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
    }
    match kind {
        tar::EntryType::Directory => match fs::create_dir(&dest) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dest.is_dir() => Ok(()),
            Err(e) => Err(format!("create {}: {e}", dest.display())),
        },
        _ => {
            let mode = entry.header().mode().unwrap_or(0o644);
            write_file(&dest, entry.take(size), mode)
        }
    }
}

/// The entry's name as a path below the staging directory: no root, no
/// `..`; `.` parts dropped.
pub fn safe_relative(raw: &Path) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "{}: an entry outside the config directory (absolute or `..`) is refused",
                    raw.display()
                ));
            }
        }
    }
    Ok(out)
}

/// A new file (never one there already: a name twice refuses the config),
/// owner-writable only, set-id bits dropped, fsynced.
fn write_file(dest: &Path, mut content: impl Read, mode: u32) -> Result<(), String> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode & 0o755)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(dest)
        .map_err(|e| format!("create {}: {e}", dest.display()))?;
    io::copy(&mut content, &mut file).map_err(|e| format!("write {}: {e}", dest.display()))?;
    file.set_permissions(fs::Permissions::from_mode(mode & 0o755))
        .and_then(|_| file.sync_all())
        .map_err(|e| format!("fsync {}: {e}", dest.display()))
}

/// fsync of every directory, the deepest first.
fn sync_tree(dir: &Path) -> Result<(), String> {
    for entry in fs::read_dir(dir).map_err(|e| format!("list {}: {e}", dir.display()))? {
        let entry = entry.map_err(|e| format!("list {}: {e}", dir.display()))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            sync_tree(&entry.path())?;
        }
    }
    super::sync_dir(dir)
}

/// A reader that fails past its limit (an endless stream is refused, not
/// cut silently).
struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::other(format!(
                "the tarball holds more than {MAX_STREAM_BYTES} bytes"
            ))
        })?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tarball(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data) in entries {
            let mut h = tar::Header::new_gnu();
            // set_path refuses `..`; the raw name field does not.
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            if *kind == tar::EntryType::Symlink {
                h.set_link_name("/etc/passwd").unwrap();
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn unpacks_files_and_directories() {
        let to = tempfile::tempdir().unwrap();
        let t = tarball(&[
            ("containers/", tar::EntryType::Directory, b""),
            ("./containers/a.json", tar::EntryType::Regular, b"{}"),
        ]);
        unpack(&t[..], to.path()).unwrap();
        assert_eq!(
            fs::read(to.path().join("containers/a.json")).unwrap(),
            b"{}"
        );
    }

    #[test]
    fn refuses_dotdot_absolute_and_links() {
        for (name, kind) in [
            ("../evil.json", tar::EntryType::Regular),
            ("containers/../../evil", tar::EntryType::Regular),
            ("/etc/evil", tar::EntryType::Regular),
            ("containers/link", tar::EntryType::Symlink),
            ("containers/dev", tar::EntryType::Char),
        ] {
            let to = tempfile::tempdir().unwrap();
            let t = tarball(&[(name, kind, b"")]);
            let e = unpack(&t[..], to.path()).unwrap_err();
            assert!(
                e.contains(name.trim_start_matches('/')) || e.contains("taken"),
                "{e}"
            );
            assert_eq!(fs::read_dir(to.path()).unwrap().count(), 0, "{name}");
        }
    }

    #[test]
    fn refuses_garbage_and_a_name_twice() {
        let to = tempfile::tempdir().unwrap();
        assert!(
            unpack(&b"not a tarball at all"[..], to.path()).is_err() || {
                fs::read_dir(to.path()).unwrap().count() == 0
            }
        );
        let t = tarball(&[
            ("a.json", tar::EntryType::Regular, b"1"),
            ("a.json", tar::EntryType::Regular, b"2"),
        ]);
        assert!(unpack(&t[..], to.path()).is_err());
    }

    #[test]
    fn a_directory_with_a_symlink_is_refused() {
        let from = tempfile::tempdir().unwrap();
        fs::create_dir(from.path().join("containers")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", from.path().join("containers/x.json")).unwrap();
        let to = tempfile::tempdir().unwrap();
        let e = stage(from.path(), to.path()).unwrap_err();
        assert!(e.contains("x.json"), "{e}");
    }
}
