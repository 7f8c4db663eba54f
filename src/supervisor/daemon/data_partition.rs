//! The store on a disk image's data partition (docs/images.md, "Disk
//! images"). As the machine's init booted from a disk (the root a
//! read-only ext4), berth mounts the partition named `berth-data` on the
//! root's own disk at the store's path before anything opens the store.
//! When the disk is larger than the image was (a `truncate`d file, a
//! bigger SD card), the partition is first extended to the disk's end —
//! the GPT rewritten with its backup at the new end, the kernel told — and
//! the ext4 on it is grown once mounted. Policy only: the mechanism is
//! `kernel::gpt` and `kernel::blockdev`.

use std::path::{Path, PathBuf};

use crate::kernel::blockdev::{self, BlockPartition};
use crate::kernel::gpt::{Gpt, patch_protective_mbr};
use crate::supervisor::say;

/// The GPT name of the partition the store lives on (mkimage writes it).
pub const DATA_PARTITION: &str = "berth-data";
/// The partition's new end is aligned to this (as it was made).
const ALIGN_BYTES: u64 = 1 << 20;
/// Growth smaller than this is not worth a table rewrite (alignment slack).
const MIN_GROWTH_BYTES: u64 = ALIGN_BYTES;

/// What was mounted, and grown.
#[derive(Debug, Clone)]
pub struct DataMount {
    pub device: PathBuf,
    pub disk: String,
    pub grown: Option<Growth>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Growth {
    pub partition_from: u64,
    pub partition_to: u64,
    /// The ext4's size before and after (equal when it could not grow).
    pub fs_from: u64,
    pub fs_to: u64,
}

/// Mounts the data partition of the root's disk at `store`; None when
/// berth does not boot from such a disk (an initramfs keeps its store
/// where it is). Each step that fails is said on the console; a partition
/// that cannot grow is still mounted.
pub fn mount_store(store: &Path) -> Option<DataMount> {
    let disk = match blockdev::disk_holding(Path::new("/")) {
        Ok(Some(disk)) => disk,
        Ok(None) => return None,
        Err(e) => {
            say(format_args!("data partition: {e}"));
            return None;
        }
    };
    let part = blockdev::partitions(&disk)
        .into_iter()
        .find(|p| p.label.as_deref() == Some(DATA_PARTITION))?;
    let dev = part.dev();
    let partition_to = match grow_partition(&disk, &part) {
        Ok(to) => to,
        Err(e) => {
            say(format_args!(
                "data partition {}: {e}; it keeps its size",
                dev.display()
            ));
            None
        }
    };
    let fs_before = blockdev::read_ext4_superblock(&dev).ok().flatten();
    if fs_before.is_some_and(|sb| sb.needs_recovery) {
        say(format_args!(
            "data partition {}: its journal is replayed (the last shutdown did not unmount it)",
            dev.display()
        ));
    }
    if let Err(e) = blockdev::mount_ext4(&dev, store) {
        say(format_args!(
            "data partition {} ({DATA_PARTITION}): {e}; the store {} stays on the root",
            dev.display(),
            store.display()
        ));
        return None;
    }
    say(format_args!(
        "store on {} ({DATA_PARTITION}), mounted at {}",
        dev.display(),
        store.display()
    ));
    let grown = grow_filesystem(&part, partition_to, fs_before, store);
    Some(DataMount {
        device: dev,
        disk,
        grown,
    })
}

/// Extends `part` to its disk's end when the disk has grown: the backup
/// table first, then the primary (a crash between them leaves the old
/// primary valid, and the next boot does it again), then the kernel is
/// told. Returns the partition's new size in bytes; None: nothing to do.
fn grow_partition(disk: &str, part: &BlockPartition) -> Result<Option<u64>, String> {
    let dev = Path::new("/dev").join(disk);
    let file = blockdev::open_disk(&dev).map_err(|e| e.to_string())?;
    let (disk_bytes, sector) = blockdev::geometry(&file, &dev).map_err(|e| e.to_string())?;
    let mut read = |offset: u64, len: usize| blockdev::read_at(&file, offset, len);
    let gpt =
        Gpt::read(&mut read, sector, disk_bytes).map_err(|e| format!("{}: {e}", dev.display()))?;
    let index = part.number.checked_sub(1).ok_or("partition number 0")? as usize;
    let ours = gpt
        .partitions
        .iter()
        .find(|p| p.index == index && p.name == DATA_PARTITION)
        .ok_or_else(|| {
            format!(
                "{}: the GPT has no {DATA_PARTITION} in slot {}",
                dev.display(),
                part.number
            )
        })?;
    let old_bytes = ours.sectors() * sector;
    let grown = match gpt.grown(disk_bytes / sector, index, ALIGN_BYTES / sector) {
        Ok(Some(g)) => g,
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", dev.display())),
    };
    let new = grown
        .partitions
        .iter()
        .find(|p| p.index == index)
        .ok_or("the grown table lost the partition")?;
    let new_bytes = new.sectors() * sector;
    if new_bytes < old_bytes + MIN_GROWTH_BYTES && grown.backup_lba == gpt.backup_lba {
        return Ok(None);
    }
    for w in grown.backup().into_iter().chain(grown.primary()) {
        blockdev::write_at(&file, &dev, w.offset, &w.bytes).map_err(|e| e.to_string())?;
    }
    if let Ok(mut mbr) = blockdev::read_at(&file, 0, 512)
        && patch_protective_mbr(&mut mbr, disk_bytes / sector)
    {
        blockdev::write_at(&file, &dev, 0, &mbr).map_err(|e| e.to_string())?;
    }
    blockdev::resize_partition(&file, &dev, part.number, new.first_lba * sector, new_bytes)
        .map_err(|e| e.to_string())?;
    say(format_args!(
        "data partition {} grown from {} to {} (the disk {} is {}): GPT rewritten, backup moved to the disk's end",
        part.dev().display(),
        mib(old_bytes),
        mib(new_bytes),
        dev.display(),
        mib(disk_bytes)
    ));
    Ok(Some(new_bytes))
}

/// Grows the mounted ext4 to its partition when the partition is larger
/// (this boot extended it, or an earlier boot did and stopped before).
fn grow_filesystem(
    part: &BlockPartition,
    partition_to: Option<u64>,
    before: Option<blockdev::Ext4Superblock>,
    store: &Path,
) -> Option<Growth> {
    let size = before?;
    let part_bytes = partition_to.unwrap_or(part.size_bytes);
    let target = part_bytes / size.block_size;
    if target <= size.blocks {
        return None;
    }
    let grown = Growth {
        partition_from: part.size_bytes,
        partition_to: part_bytes,
        fs_from: size.bytes(),
        fs_to: target * size.block_size,
    };
    match blockdev::resize_ext4(store, target) {
        Ok(()) => {
            say(format_args!(
                "ext4 on {} grown from {} to {}",
                part.dev().display(),
                mib(grown.fs_from),
                mib(grown.fs_to)
            ));
            Some(grown)
        }
        Err(e) => {
            say(format_args!("{e}; the store keeps {}", mib(size.bytes())));
            Some(Growth {
                fs_to: grown.fs_from,
                ..grown
            })
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}
