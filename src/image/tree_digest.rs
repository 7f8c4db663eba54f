//! A digest of an unpacked layer tree — every path, type, mode, owner,
//! size, content, link target, device number and xattr — recorded when the
//! layer is unpacked and recomputed by `berth store verify`. Walks with
//! lstat and never follows a symlink.

use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::digest::{Digest, Hashing};
use super::file_hashes::FileHashes;

/// The tree digest, reading every file.
pub fn tree_digest(root: &Path) -> io::Result<Digest> {
    tree_digest_with(root, &FileHashes::default())
}

/// The tree digest, taking a file's content digest from `known` when it
/// holds one for that inode and size (the extraction that just wrote the
/// tree hashed the bytes on their way in); the same result either way.
pub fn tree_digest_with(root: &Path, known: &FileHashes) -> io::Result<Digest> {
    let mut hasher = Sha256::new();
    walk(root, Path::new(""), &mut hasher, known)?;
    Ok(Digest::of_hasher(hasher))
}

fn walk(root: &Path, rel: &Path, h: &mut Sha256, known: &FileHashes) -> io::Result<()> {
    let dir = root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    describe(&dir, rel, h, known)?;
    for name in names {
        let child = rel.join(&name);
        let meta = fs::symlink_metadata(root.join(&child))?;
        if meta.is_dir() {
            walk(root, &child, h, known)?;
        } else {
            describe(&root.join(&child), &child, h, known)?;
        }
    }
    Ok(())
}

fn describe(path: &Path, rel: &Path, h: &mut Sha256, known: &FileHashes) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    let t = meta.file_type();
    let kind = if t.is_dir() {
        'd'
    } else if t.is_symlink() {
        'l'
    } else if t.is_char_device() {
        'c'
    } else if t.is_block_device() {
        'b'
    } else if t.is_fifo() {
        'p'
    } else if t.is_socket() {
        's'
    } else {
        'f'
    };
    h.update(rel.as_os_str().as_bytes());
    h.update(format!(
        "\0{kind}\0{:o}\0{}\0{}\0{}\0{}\0",
        meta.mode(),
        meta.uid(),
        meta.gid(),
        if t.is_dir() { 0 } else { meta.len() },
        meta.rdev()
    ));
    if t.is_symlink() {
        h.update(fs::read_link(path)?.as_os_str().as_bytes());
    } else if let Some(d) = t
        .is_file()
        .then(|| known.get(meta.ino(), meta.len()))
        .flatten()
    {
        h.update(d.hex());
    } else if t.is_file() {
        let mut reader = Hashing::new(File::open(path)?);
        io::copy(&mut reader, &mut io::sink())?;
        h.update(reader.finish().0.hex());
    }
    if !t.is_symlink() {
        let mut names: Vec<_> = xattr::list(path)?.collect();
        names.sort();
        for n in names {
            h.update(n.as_bytes());
            h.update(b"=");
            h.update(xattr::get(path, &n)?.unwrap_or_default());
        }
    }
    h.update(b"\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_change_changes_the_digest() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("a")).unwrap();
        fs::write(d.path().join("a/f"), "one").unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("l")).unwrap();
        let first = tree_digest(d.path()).unwrap();
        assert_eq!(first, tree_digest(d.path()).unwrap());
        fs::write(d.path().join("a/f"), "two").unwrap();
        let second = tree_digest(d.path()).unwrap();
        assert_ne!(first, second);
        fs::remove_file(d.path().join("l")).unwrap();
        std::os::unix::fs::symlink("/usr", d.path().join("l")).unwrap();
        assert_ne!(second, tree_digest(d.path()).unwrap());
    }
}
