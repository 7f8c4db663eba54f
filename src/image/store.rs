//! The store's on-disk layout and its one crash-safety rule: content is
//! written under tmp/, fsynced, then renamed to its final name, and the
//! directory is fsynced. Nothing half-written ever has a final name.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::digest::Digest;
use super::error::ImageError;

pub const DEFAULT_ROOT: &str = "/var/lib/berth";

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// Bytes kept free on the store's filesystem (space.rs).
    reserve: u64,
}

impl Store {
    /// Opens the store at `root`, creating its directories if needed.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, ImageError> {
        let store = Store {
            root: root.into(),
            reserve: super::space::DEFAULT_RESERVE_BYTES,
        };
        for dir in [
            store.blobs_dir(),
            store.layers_dir(),
            store.images_dir(),
            store.tmp_dir(),
        ] {
            fs::create_dir_all(&dir).map_err(ImageError::io("create store directory", &dir))?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// berth.json's `store.reserve` instead of the default.
    pub fn with_reserve(mut self, bytes: u64) -> Store {
        self.reserve = bytes;
        self
    }

    pub fn reserve(&self) -> u64 {
        self.reserve
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers/sha256")
    }

    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.hex())
    }

    /// The unpacked tree of the layer whose uncompressed digest is `diff_id`.
    pub fn layer_path(&self, diff_id: &Digest) -> PathBuf {
        self.layers_dir().join(diff_id.hex())
    }

    /// The record written once a layer is complete (see layer_record.rs).
    pub fn layer_record_path(&self, diff_id: &Digest) -> PathBuf {
        self.layers_dir().join(format!("{}.json", diff_id.hex()))
    }

    /// A layer is in the store only when both its tree and its record are.
    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.layer_record_path(diff_id).is_file() && self.layer_path(diff_id).is_dir()
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, ImageError> {
        let path = self.blob_path(d);
        let bytes = fs::read(&path).map_err(ImageError::io("read blob", &path))?;
        let actual = Digest::of_bytes(&bytes);
        if &actual != d {
            return Err(ImageError::DigestMismatch {
                what: format!("blob {}", path.display()),
                expected: d.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    /// A fresh, unique directory under tmp/ for staging one operation.
    pub fn make_tmp_dir(&self, purpose: &str) -> Result<PathBuf, ImageError> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = self
            .tmp_dir()
            .join(format!("{purpose}-{}-{n}", std::process::id()));
        fs::create_dir(&dir).map_err(ImageError::io("create staging directory", &dir))?;
        Ok(dir)
    }
}

/// Writes `bytes` to `path` so that after a crash `path` holds either the
/// old content or the new, never a mix: tmp file, fsync, rename, fsync dir.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let (dir, tmp) = temporary_beside(path);
    let mut f = File::create(&tmp).map_err(ImageError::io("create", &tmp))?;
    f.write_all(bytes).map_err(ImageError::io("write", &tmp))?;
    f.sync_all().map_err(ImageError::io("fsync", &tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(ImageError::io("rename into place", path))?;
    sync_dir(dir)
}

/// Atomic (readers see the old or the new bytes) but not durable: for
/// files that need not survive a crash.
pub fn replace_file(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    let (_, tmp) = temporary_beside(path);
    fs::write(&tmp, bytes).map_err(ImageError::io("write", &tmp))?;
    fs::rename(&tmp, path).map_err(ImageError::io("rename into place", path))
}

/// `path`'s directory and a temporary name in it, unique to this process.
fn temporary_beside(path: &Path) -> (&Path, PathBuf) {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    (dir, dir.join(format!(".{name}.tmp-{}", std::process::id())))
}

pub fn sync_dir(dir: &Path) -> Result<(), ImageError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(ImageError::io("fsync directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_file_replaces_content_and_leaves_no_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        replace_file(&p, b"one").unwrap();
        replace_file(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn atomic_write_replaces_content_and_leaves_no_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn read_blob_verifies_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Digest::of_bytes(b"hello");
        fs::write(store.blob_path(&d), b"hellO").unwrap();
        assert!(matches!(
            store.read_blob(&d),
            Err(ImageError::DigestMismatch { .. })
        ));
    }
}
