//! The reference table: which manifest each image name points to. One JSON
//! file, replaced atomically, its read-modify-write serialised by a lock.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::PathBuf;

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::ImageError;
use super::store::{Store, write_atomic};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageRecord {
    pub manifest: Digest,
    pub config: Digest,
}

pub type RefTable = BTreeMap<String, ImageRecord>;

fn table_path(store: &Store) -> PathBuf {
    store.images_dir().join("refs.json")
}

pub fn load(store: &Store) -> Result<RefTable, ImageError> {
    let path = table_path(store);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::invalid(path.display().to_string(), e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RefTable::new()),
        Err(e) => Err(ImageError::io("read", path)(e)),
    }
}

/// The store's lock: exclusive for anything that adds or removes content
/// (an import's commit, GC, verify), shared for readers that must not see
/// content vanish underneath them (a container being started).
pub struct StoreLock {
    _lock: Flock<File>,
}

pub fn lock(store: &Store, exclusive: bool) -> Result<StoreLock, ImageError> {
    let (lock_path, lock_file) = open_lock_file(store)?;
    let arg = if exclusive {
        FlockArg::LockExclusive
    } else {
        FlockArg::LockShared
    };
    let lock = Flock::lock(lock_file, arg)
        .map_err(|(_, e)| ImageError::io("lock", &lock_path)(std::io::Error::from(e)))?;
    Ok(StoreLock { _lock: lock })
}

fn open_lock_file(store: &Store) -> Result<(std::path::PathBuf, File), ImageError> {
    let lock_path = store.images_dir().join("refs.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(ImageError::io("open", &lock_path))?;
    Ok((lock_path, file))
}

/// A shared lock if one can be had now, None while a writer holds the
/// exclusive one (a pull committing): for callers that must not wait.
pub fn try_lock_shared(store: &Store) -> Result<Option<StoreLock>, ImageError> {
    let (lock_path, lock_file) = open_lock_file(store)?;
    match Flock::lock(lock_file, FlockArg::LockSharedNonblock) {
        Ok(lock) => Ok(Some(StoreLock { _lock: lock })),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(ImageError::io("lock", &lock_path)(std::io::Error::from(e))),
    }
}

/// Applies `change` to the table under an exclusive lock and saves it.
pub fn update<T>(store: &Store, change: impl FnOnce(&mut RefTable) -> T) -> Result<T, ImageError> {
    let guard = lock(store, true)?;
    update_locked(store, &guard, change)
}

/// As `update`, for a caller already holding the exclusive lock.
pub fn update_locked<T>(
    store: &Store,
    _held: &StoreLock,
    change: impl FnOnce(&mut RefTable) -> T,
) -> Result<T, ImageError> {
    let mut table = load(store)?;
    let out = change(&mut table);
    let bytes = serde_json::to_vec_pretty(&table)
        .map_err(|e| ImageError::invalid("reference table", e.to_string()))?;
    write_atomic(&table_path(store), &bytes)?;
    Ok(out)
}
