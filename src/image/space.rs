//! The store's disk guard: a device whose disk fills never recovers by
//! itself (logs cannot be written, the journal stops, the next update
//! fails half-way), so berth keeps a reserve free on the store's
//! filesystem. A pull first estimates what it needs and refuses up front
//! (pruning unused content first when asked to); unpacking, whose size no
//! manifest gives, checks the free space as it writes and stops cleanly
//! before the reserve would be crossed. Either way nothing is committed,
//! so the store stays as it was.

use std::os::fd::AsFd;
use std::path::Path;

use nix::sys::statvfs::Statvfs;

use super::error::ImageError;

/// `store.reserve`'s default.
pub const DEFAULT_RESERVE_BYTES: u64 = 64 << 20;
/// Layers of real images unpack to about 2–3 times their gzip size; the
/// estimate takes the high end (the compressed blob is kept besides).
const UNPACKED_PER_COMPRESSED: f64 = 2.5;
/// Free space is looked at again after this much has been written.
const RECHECK_EVERY_BYTES: u64 = 8 << 20;

/// Bytes available to an unprivileged writer, from a statvfs answer.
fn free_bytes(s: &Statvfs) -> u64 {
    s.blocks_available().saturating_mul(s.fragment_size())
}

/// Free bytes on the filesystem of `fd`.
pub fn available_fd(fd: impl AsFd) -> std::io::Result<u64> {
    Ok(free_bytes(&nix::sys::statvfs::fstatvfs(fd)?))
}

/// Free bytes on the filesystem of `path`.
pub fn available(path: &Path) -> Result<u64, ImageError> {
    let s = nix::sys::statvfs::statvfs(path).map_err(|e| ImageError::Io {
        op: "statvfs",
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    Ok(free_bytes(&s))
}

/// What a pull of `compressed` new bytes is expected to take: the blobs,
/// and their layers unpacked.
pub fn estimate_need(compressed: u64) -> u64 {
    compressed.saturating_add((compressed as f64 * UNPACKED_PER_COMPRESSED) as u64)
}

/// "12.5 MiB".
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// Refuses when `need` more bytes would leave less than `reserve` free.
pub fn check_room(root: &Path, need: u64, reserve: u64, what: &str) -> Result<(), ImageError> {
    let free = available(root)?;
    if free >= need.saturating_add(reserve) {
        return Ok(());
    }
    Err(ImageError::invalid(
        what,
        format!(
            "not enough space in {}: needs about {} (estimated) and keeps {} free (store.reserve), but {} is available",
            root.display(),
            mib(need),
            mib(reserve),
            mib(free)
        ),
    ))
}

/// Watches the free space while a layer is written: asked before each
/// file with its size, it looks at the filesystem again every few MiB
/// and refuses the write that would cross the reserve.
#[derive(Debug)]
pub struct SpaceGuard {
    reserve: u64,
    /// Free bytes when last looked, minus what was written since.
    free: Option<u64>,
    since_check: u64,
}

impl SpaceGuard {
    pub fn new(reserve: u64) -> SpaceGuard {
        SpaceGuard {
            reserve,
            free: None,
            since_check: 0,
        }
    }

    /// Before writing `size` bytes onto the filesystem of `fd`.
    pub fn before_write(&mut self, fd: impl AsFd, size: u64) -> Result<(), String> {
        if self.reserve == 0 {
            return Ok(());
        }
        let stale = self.since_check.saturating_add(size) >= RECHECK_EVERY_BYTES;
        let free = match self.free {
            Some(free) if !stale && free >= size.saturating_add(self.reserve) => free,
            _ => {
                self.since_check = 0;
                available_fd(fd).map_err(|e| format!("statvfs: {e}"))?
            }
        };
        if free < size.saturating_add(self.reserve) {
            return Err(format!(
                "the store's filesystem would fall below its reserve of {} (store.reserve): {} free, {} more to write",
                mib(self.reserve),
                mib(free),
                mib(size)
            ));
        }
        self.free = Some(free - size);
        self.since_check += size;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_counts_blobs_and_unpacked_layers() {
        assert_eq!(estimate_need(100 << 20), 350 << 20);
        assert_eq!(estimate_need(u64::MAX), u64::MAX);
    }

    #[test]
    fn a_write_that_would_cross_the_reserve_is_refused() {
        let dir = std::env::temp_dir();
        let file = std::fs::File::open(&dir).expect("open temp dir");
        let free = available_fd(&file).expect("statvfs");
        let mut guard = SpaceGuard::new(free / 2);
        assert!(guard.before_write(&file, 1 << 20).is_ok());
        let e = guard
            .before_write(&file, free)
            .expect_err("crosses the reserve");
        assert!(e.contains("store.reserve"), "{e}");
        assert!(SpaceGuard::new(0).before_write(&file, u64::MAX).is_ok());
    }
}
