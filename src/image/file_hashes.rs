//! The content digest of every regular file an extraction wrote, keyed by
//! inode, taken while the bytes pass on their way to disk: the tree
//! digest then needs no second read of the layer. Only extraction's own
//! writes fill it; `berth store verify` reads every file afresh.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;

use sha2::{Digest as _, Sha256};

use super::digest::Digest;

/// Bytes copied per read/write: few syscalls for large files, little
/// memory (one buffer per extraction).
const COPY_BUFFER_BYTES: usize = 256 * 1024;

#[derive(Default)]
pub struct FileHashes {
    /// inode -> (size, content digest). An inode freed by a later entry
    /// and reused by a new file is overwritten when that file is written.
    by_inode: HashMap<u64, (u64, Digest)>,
    buf: Vec<u8>,
}

impl FileHashes {
    /// The digest recorded for the file with this inode and size, if any.
    pub fn get(&self, ino: u64, size: u64) -> Option<&Digest> {
        self.by_inode
            .get(&ino)
            .filter(|(s, _)| *s == size)
            .map(|(_, d)| d)
    }

    /// Copies exactly `size` bytes of `from` into the new file `to`,
    /// hashing them; returns how many bytes there were (fewer than `size`
    /// when `from` ends early).
    pub fn copy_into(&mut self, from: &mut dyn Read, to: &mut File, size: u64) -> io::Result<u64> {
        if self.buf.is_empty() {
            self.buf = vec![0u8; COPY_BUFFER_BYTES];
        }
        let mut hasher = Sha256::new();
        let mut copied: u64 = 0;
        while copied < size {
            let want = usize::try_from(size - copied)
                .unwrap_or(usize::MAX)
                .min(self.buf.len());
            let n = match from.read(&mut self.buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&self.buf[..n]);
            to.write_all(&self.buf[..n])?;
            copied += n as u64;
        }
        // Best effort: the commit's syncfs is what makes the file durable.
        let _ = crate::kernel::start_writeback(std::os::fd::AsFd::as_fd(to), 0, 0);
        if copied == size {
            let ino = to.metadata()?.ino();
            let digest = Digest::of_hasher(hasher);
            self.by_inode.insert(ino, (size, digest));
        }
        Ok(copied)
    }
}
