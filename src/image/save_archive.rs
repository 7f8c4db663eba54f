//! The bytes of a `berth save` archive: a tar stream holding an OCI image
//! layout (`oci-layout`, `index.json`, `blobs/sha256/…`) and, for the
//! docker-archive format, the `manifest.json` that `docker load` and
//! `podman load` read — the shape Docker 25's `docker save` writes. Blobs
//! are copied from the store as they are, each re-hashed while it streams.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::digest::Digest;
use super::error::ImageError;
use super::oci::{self, Descriptor};
use super::store::Store;

/// A blob to be written: its digest and the size the manifest declares.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct BlobRef {
    pub digest: Digest,
    pub size: u64,
}

/// Everything an archive holds besides the blobs: the JSON documents.
pub struct ArchiveDocs {
    pub index: Vec<u8>,
    /// None for an OCI archive.
    pub docker_manifest: Option<Vec<u8>>,
    /// Manifests, already read (and verified) from the store.
    pub manifests: Vec<(Digest, Vec<u8>)>,
}

/// One manifest.json entry, as `docker save` writes it.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerEntry {
    pub config: String,
    pub repo_tags: Vec<String>,
    pub layers: Vec<String>,
}

pub fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

pub fn index_json(manifests: Vec<Descriptor>) -> Result<Vec<u8>, ImageError> {
    let index = oci::Index {
        schema_version: 2,
        media_type: Some(oci::MT_OCI_INDEX.into()),
        manifests,
    };
    serde_json::to_vec(&index).map_err(|e| ImageError::invalid("index.json", e.to_string()))
}

/// Writes the whole archive to `out`: small documents first (a reader
/// streaming it learns what follows), then each blob once.
pub fn write_archive<W: Write>(
    store: &Store,
    docs: &ArchiveDocs,
    blobs: &[BlobRef],
    out: W,
    dest: &Path,
) -> Result<W, ImageError> {
    let mut tar = tar::Builder::new(out);
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    append_bytes(&mut tar, dest, "oci-layout", layout)?;
    append_bytes(&mut tar, dest, "index.json", &docs.index)?;
    if let Some(manifest) = &docs.docker_manifest {
        append_bytes(&mut tar, dest, "manifest.json", manifest)?;
    }
    append_dir(&mut tar, dest, "blobs/")?;
    append_dir(&mut tar, dest, "blobs/sha256/")?;
    for (digest, bytes) in &docs.manifests {
        append_bytes(&mut tar, dest, &blob_name(digest), bytes)?;
    }
    for blob in blobs {
        let mut header = file_header(blob.size);
        let mut reader = VerifiedBlob::open(store, blob)?;
        tar.append_data(&mut header, blob_name(&blob.digest), &mut reader)
            .map_err(|e| unwrap_blob_error(e, dest))?;
    }
    tar.into_inner().map_err(write_error(dest))
}

/// Reads every blob through its check without writing anything: before
/// a stream that cannot be taken back (stdout) is begun.
pub fn verify_blobs(store: &Store, blobs: &[BlobRef]) -> Result<(), ImageError> {
    for blob in blobs {
        io::copy(&mut VerifiedBlob::open(store, blob)?, &mut io::sink())
            .map_err(|e| unwrap_blob_error(e, &store.blob_path(&blob.digest)))?;
    }
    Ok(())
}

fn file_header(size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    dest: &Path,
    path: &str,
    bytes: &[u8],
) -> Result<(), ImageError> {
    let mut header = file_header(bytes.len() as u64);
    tar.append_data(&mut header, path, bytes)
        .map_err(write_error(dest))
}

fn append_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    dest: &Path,
    path: &str,
) -> Result<(), ImageError> {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    header.set_mode(0o755);
    header.set_mtime(0);
    tar.append_data(&mut header, path, io::empty())
        .map_err(write_error(dest))
}

fn write_error(dest: &Path) -> impl FnOnce(io::Error) -> ImageError {
    ImageError::io("write archive", dest)
}

/// A blob's own error (carried through the tar writer as an io::Error),
/// or a write error on `dest`.
fn unwrap_blob_error(e: io::Error, dest: &Path) -> ImageError {
    if !e.get_ref().is_some_and(|r| r.is::<ImageError>()) {
        return write_error(dest)(e);
    }
    match e.into_inner().map(|inner| inner.downcast::<ImageError>()) {
        Some(Ok(err)) => *err,
        _ => ImageError::Helper(format!("write archive {}", dest.display())),
    }
}

/// A store blob read through sha256: it ends (returns 0) only once the
/// bytes read match the digest and the declared size; a short, long or
/// altered blob is an error naming it, so the tar entry is never finished.
struct VerifiedBlob {
    file: File,
    path: PathBuf,
    blob: BlobRef,
    hasher: Sha256,
    read: u64,
}

impl VerifiedBlob {
    fn open(store: &Store, blob: &BlobRef) -> Result<VerifiedBlob, ImageError> {
        let path = store.blob_path(&blob.digest);
        let file = File::open(&path).map_err(ImageError::io("open blob", &path))?;
        Ok(VerifiedBlob {
            file,
            path,
            blob: blob.clone(),
            hasher: Sha256::new(),
            read: 0,
        })
    }

    fn what(&self) -> String {
        format!("blob {} ({})", self.blob.digest, self.path.display())
    }

    fn fail(&self, err: ImageError) -> io::Error {
        io::Error::other(err)
    }

    fn check_end(&mut self) -> io::Result<()> {
        if self.read != self.blob.size {
            return Err(self.fail(ImageError::SizeMismatch {
                what: self.what(),
                expected: self.blob.size,
                actual: self.read,
            }));
        }
        let actual = Digest::of_hasher(std::mem::take(&mut self.hasher));
        if actual != self.blob.digest {
            return Err(self.fail(ImageError::DigestMismatch {
                what: self.what(),
                expected: self.blob.digest.to_string(),
                actual: actual.to_string(),
            }));
        }
        Ok(())
    }
}

impl Read for VerifiedBlob {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte past the declared size is enough to know it is too long.
        let room = self.blob.size.saturating_sub(self.read).saturating_add(1);
        let len = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = match self.file.read(&mut buf[..len]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => return Err(self.fail(ImageError::io("read blob", &self.path)(e))),
        };
        if n == 0 {
            self.check_end()?;
            return Ok(0);
        }
        self.read += n as u64;
        if self.read > self.blob.size {
            return Err(self.fail(ImageError::SizeMismatch {
                what: self.what(),
                expected: self.blob.size,
                actual: self.read,
            }));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_with(bytes: &[u8], stored: &[u8]) -> (tempfile::TempDir, Store, BlobRef) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let digest = Digest::of_bytes(bytes);
        std::fs::write(store.blob_path(&digest), stored).unwrap();
        let blob = BlobRef {
            digest,
            size: bytes.len() as u64,
        };
        (dir, store, blob)
    }

    #[test]
    fn an_intact_blob_reads_through() {
        let (_d, store, blob) = store_with(b"layer bytes", b"layer bytes");
        verify_blobs(&store, &[blob]).unwrap();
    }

    #[test]
    fn an_altered_short_or_long_blob_fails_naming_it() {
        for stored in [&b"layer bytez"[..], b"layer", b"layer bytes and more"] {
            let (_d, store, blob) = store_with(b"layer bytes", stored);
            let err = verify_blobs(&store, std::slice::from_ref(&blob))
                .unwrap_err()
                .to_string();
            assert!(err.contains(&blob.digest.to_string()), "{err}");
            let mut out = Vec::new();
            let docs = ArchiveDocs {
                index: b"{}".to_vec(),
                docker_manifest: None,
                manifests: vec![],
            };
            let err = write_archive(
                &store,
                &docs,
                std::slice::from_ref(&blob),
                &mut out,
                Path::new("out.tar"),
            )
            .err()
            .unwrap()
            .to_string();
            assert!(err.contains(&blob.digest.to_string()), "{err}");
        }
    }
}
