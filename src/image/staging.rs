//! One import as a transaction: blobs and unpacked layers are staged under
//! tmp/, verified, and only then renamed to their final names; the
//! reference table changes last. Dropping an uncommitted staging area
//! removes it, so a failed import leaves the store as it was.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::PathBuf;

use super::digest::{Digest, Hashing};
use super::error::ImageError;
use super::layer_stream::{BlobInput, RangeFetch};
use super::refs::{self, ImageRecord};
use super::store::{Store, sync_dir};

pub struct Staging<'s> {
    pub(super) store: &'s Store,
    pub(super) dir: PathBuf,
    pub(super) blobs: Vec<Digest>,
    pub(super) layers: Vec<Digest>,
}

/// What an incoming blob must be, when the source says so up front.
pub struct Expected<'a> {
    pub digest: Option<&'a Digest>,
    pub size: Option<u64>,
}

impl<'s> Staging<'s> {
    pub fn new(store: &'s Store) -> Result<Self, ImageError> {
        let dir = store.make_tmp_dir("import")?;
        for sub in ["blobs", "layers"] {
            fs::create_dir(dir.join(sub))
                .map_err(ImageError::io("create staging directory", dir.join(sub)))?;
        }
        Ok(Staging {
            store,
            dir,
            blobs: Vec::new(),
            layers: Vec::new(),
        })
    }

    pub(super) fn staged_blob_path(&self, d: &Digest) -> PathBuf {
        self.dir.join("blobs").join(d.hex())
    }

    /// Where the bytes of blob `d` can be read from during this import.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        let staged = self.staged_blob_path(d);
        if staged.exists() {
            staged
        } else {
            self.store.blob_path(d)
        }
    }

    /// Where a layer blob's bytes come from: the store or this staging
    /// area when either has it, else `source`, copied into the staging
    /// area as it streams.
    pub(super) fn blob_input<'a>(&self, d: &Digest, source: &'a dyn RangeFetch) -> BlobInput<'a> {
        if self.store.has_blob(d) || self.blobs.contains(d) {
            return BlobInput::Stored(self.blob_path(d));
        }
        BlobInput::Spooled {
            partial: self.dir.join("blobs").join(format!("incoming-{}", d.hex())),
            done: self.staged_blob_path(d),
            fetch: source,
        }
    }

    /// Streams `reader` into a staged blob, hashing as it goes; the blob is
    /// kept only if it matches `expected`. A blob the store already holds is
    /// not read again.
    pub fn add_blob(
        &mut self,
        reader: impl Read,
        expected: Expected<'_>,
        what: &str,
    ) -> Result<(Digest, u64), ImageError> {
        if let (Some(d), Some(size)) = (expected.digest, expected.size)
            && (self.store.has_blob(d) || self.blobs.contains(d))
        {
            return Ok((d.clone(), size));
        }
        let tmp = self
            .dir
            .join("blobs")
            .join(format!("incoming-{}", self.blobs.len()));
        let file = File::create(&tmp).map_err(ImageError::io("create", &tmp))?;
        let mut writer = Hashing::new(file);
        let limit = expected.size.map_or(u64::MAX, |s| s.saturating_add(1));
        io::copy(&mut reader.take(limit), &mut writer)
            .map_err(ImageError::io("write blob", &tmp))?;
        let (digest, size, file) = writer.finish();
        if let Some(want) = expected.size.filter(|s| *s != size) {
            return Err(ImageError::SizeMismatch {
                what: what.to_string(),
                expected: want,
                actual: size,
            });
        }
        if let Some(want) = expected.digest.filter(|d| **d != digest) {
            return Err(ImageError::DigestMismatch {
                what: what.to_string(),
                expected: want.to_string(),
                actual: digest.to_string(),
            });
        }
        // No fsync here: commit's syncfs makes every staged file durable
        // before anything is renamed to a final name.
        drop(file);
        fs::rename(&tmp, self.staged_blob_path(&digest)).map_err(ImageError::io("rename", &tmp))?;
        if !self.blobs.contains(&digest) {
            self.blobs.push(digest.clone());
        }
        Ok((digest, size))
    }

    pub fn add_blob_bytes(&mut self, bytes: &[u8], what: &str) -> Result<Digest, ImageError> {
        let expected = Expected {
            digest: None,
            size: Some(bytes.len() as u64),
        };
        self.add_blob(bytes, expected, what).map(|(d, _)| d)
    }

    /// Moves everything staged to its final name, then points `refs` at it.
    pub fn commit(self, new_refs: Vec<(String, ImageRecord)>) -> Result<(), ImageError> {
        // One syncfs makes every unpacked file durable before any rename
        // makes it visible (cheaper than an fsync per file).
        let dir = File::open(&self.dir).map_err(ImageError::io("open", &self.dir))?;
        nix::unistd::syncfs(&dir).map_err(|e| ImageError::io("syncfs", &self.dir)(e.into()))?;
        // Exclusive: GC must not see a layer that is renamed in but not yet
        // referenced, and must not race the reference table.
        let guard = refs::lock(self.store, true)?;
        for d in &self.blobs {
            rename_new(&self.staged_blob_path(d), &self.store.blob_path(d))?;
        }
        sync_dir(&self.store.blobs_dir())?;
        for d in &self.layers {
            let (dir, record) = (self.store.layer_path(d), self.store.layer_record_path(d));
            if dir.exists() && !record.exists() {
                // Left by an import killed between its two renames.
                fs::remove_dir_all(&dir)
                    .map_err(ImageError::io("remove incomplete layer", &dir))?;
            }
            rename_new(&self.dir.join("layers").join(d.hex()), &dir)?;
            // The record last: a layer counts only once its record exists.
            rename_new(
                &self.dir.join("layers").join(format!("{}.json", d.hex())),
                &record,
            )?;
        }
        sync_dir(&self.store.layers_dir())?;
        refs::update_locked(self.store, &guard, |table| table.extend(new_refs))
    }
}

/// Renames unless the target already exists (another import got there
/// first with the same, content-addressed, bytes).
fn rename_new(from: &std::path::Path, to: &std::path::Path) -> Result<(), ImageError> {
    if to.exists() {
        return Ok(());
    }
    fs::rename(from, to).map_err(ImageError::io("rename into store", to))
}

impl Drop for Staging<'_> {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}
