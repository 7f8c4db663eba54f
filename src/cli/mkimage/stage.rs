//! The root tree written out as a directory, for `mkfs.ext4 -d` to copy:
//! every entry with its mode, owner and mtime as the tree holds them
//! (the same tree an initramfs archives), hard links as hard links. The
//! directories' times are set last, children first, since making an
//! entry changes its parent's mtime. Needs root for the owners and the
//! device nodes.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use nix::fcntl::{AT_FDCWD, AtFlags};
use nix::sys::stat::{Mode, SFlag, UtimensatFlags, makedev, mknod, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchownat};

use super::cpio::{Entry, Kind, Source, Tree};

/// Writes `tree` under `dir` (which must not exist yet).
pub fn materialize(tree: &Tree, dir: &Path) -> Result<(), String> {
    fs::create_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut first_link: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for (rel, entry) in tree.entries() {
        let path = dir.join(std::ffi::OsStr::from_bytes(rel));
        let made = match entry.link.and_then(|k| first_link.get(&k)) {
            Some(first) => fs::hard_link(first, &path),
            None => make(&path, entry),
        };
        made.map_err(|e| format!("the staged root {}: {e}", path.display()))?;
        if let Some(key) = entry.link {
            first_link.entry(key).or_insert(path);
        }
    }
    // Owners, modes and times once everything exists, deepest first.
    for (rel, entry) in tree.entries().rev() {
        let path = dir.join(std::ffi::OsStr::from_bytes(rel));
        finish(&path, entry).map_err(|e| format!("the staged root {}: {e}", path.display()))?;
    }
    finish(dir, &Entry::new(Kind::Dir, 0o755, tree.mtime))
        .map_err(|e| format!("{}: {e}", dir.display()))
}

fn make(path: &Path, entry: &Entry) -> io::Result<()> {
    let node = |kind: SFlag, major: u32, minor: u32| {
        let dev = makedev(u64::from(major), u64::from(minor));
        mknod(path, kind, Mode::from_bits_truncate(0o600), dev).map_err(io::Error::from)
    };
    match &entry.kind {
        Kind::Dir => fs::create_dir(path),
        Kind::File(Source::Bytes(bytes)) => fs::write(path, bytes),
        Kind::File(Source::Host(host, len)) => copy_exactly(host, *len, path),
        Kind::Symlink(target) => symlink(std::ffi::OsStr::from_bytes(target), path),
        Kind::Char(major, minor) => node(SFlag::S_IFCHR, *major, *minor),
        Kind::Block(major, minor) => node(SFlag::S_IFBLK, *major, *minor),
        Kind::Fifo => node(SFlag::S_IFIFO, 0, 0),
    }
}

/// Copies `len` bytes of `host`: a file that changed size since the tree
/// was made would give an image unlike the one described.
fn copy_exactly(host: &Path, len: u64, to: &Path) -> io::Result<()> {
    let mut out = File::create(to)?;
    let copied = io::copy(&mut File::open(host)?.take(len), &mut out)?;
    if copied != len {
        return Err(io::Error::other(format!(
            "{} changed while the image was built",
            host.display()
        )));
    }
    out.flush()
}

fn finish(path: &Path, entry: &Entry) -> io::Result<()> {
    fchownat(
        AT_FDCWD,
        path,
        Some(Uid::from_raw(entry.uid)),
        Some(Gid::from_raw(entry.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    if !matches!(entry.kind, Kind::Symlink(_)) {
        // After chown, which clears setuid and setgid bits.
        fs::set_permissions(path, fs::Permissions::from_mode(entry.perm & 0o7777))?;
    }
    let t = TimeSpec::new(i64::from(entry.mtime), 0);
    utimensat(AT_FDCWD, path, &t, &t, UtimensatFlags::NoFollowSymlink)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_tree_becomes_a_directory_with_its_modes_links_and_times() {
        let d = tempfile::tempdir().unwrap();
        let mut t = Tree::new(5);
        t.add(
            "etc/berth/berth.json",
            Entry::new(Kind::File(Source::Bytes(b"{}".to_vec())), 0o640, 5),
        );
        t.add("tmp", Entry::new(Kind::Dir, 0o1777, 5));
        t.add(
            "sbin/init",
            Entry::new(Kind::Symlink(b"/init".to_vec()), 0o777, 5),
        );
        let out = d.path().join("root");
        materialize(&t, &out).unwrap();
        let meta = fs::metadata(out.join("etc/berth/berth.json")).unwrap();
        assert_eq!(
            (meta.mode() & 0o7777, meta.mtime(), meta.len()),
            (0o640, 5, 2)
        );
        assert_eq!(
            fs::metadata(out.join("tmp")).unwrap().mode() & 0o7777,
            0o1777
        );
        assert_eq!(
            fs::metadata(out.join("etc")).unwrap().mtime(),
            5,
            "set after its children"
        );
        assert_eq!(
            fs::read_link(out.join("sbin/init")).unwrap(),
            Path::new("/init")
        );
    }
}
