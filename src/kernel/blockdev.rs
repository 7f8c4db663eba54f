//! Block devices as an init booted from a disk sees them: which disk holds
//! a path, that disk's partitions with their GPT names (the kernel's
//! `PARTNAME`, read from sysfs: there is no udev, so no
//! /dev/disk/by-partlabel), a disk's size and sector size, an ext4
//! superblock's size, and the three operations that grow a partition and
//! its filesystem in place: rewriting bytes of the disk, telling the
//! kernel the partition's new extent (BLKPG_RESIZE_PARTITION) and growing
//! the mounted ext4 (EXT4_IOC_RESIZE_FS).

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};

use super::error::SysError;

type IoctlNum = nix::sys::ioctl::ioctl_num_type;

/// linux/fs.h: BLKSSZGET is _IO(0x12,104), BLKPG _IO(0x12,105),
/// BLKGETSIZE64 _IOR(0x12,114,size_t).
const BLKSSZGET: IoctlNum = nix::request_code_none!(0x12, 104);
const BLKPG: IoctlNum = nix::request_code_none!(0x12, 105);
const BLKGETSIZE64: IoctlNum = nix::request_code_read!(0x12, 114, std::mem::size_of::<usize>());
/// linux/blkpg.h.
const BLKPG_RESIZE_PARTITION: libc::c_int = 3;
/// fs/ext4/ext4.h: _IOW('f', 16, __u64).
const EXT4_IOC_RESIZE_FS: IoctlNum = nix::request_code_write!(b'f', 16, std::mem::size_of::<u64>());
/// sysfs gives partition extents in 512-byte units, whatever the disk's.
const SYSFS_SECTOR: u64 = 512;
const EXT4_MAGIC: u16 = 0xEF53;
const EXT4_SUPER_AT: u64 = 1024;
const EXT4_FEATURE_INCOMPAT_64BIT: u32 = 0x80;
/// The journal holds transactions to replay (the filesystem was not
/// cleanly unmounted).
const EXT4_FEATURE_INCOMPAT_RECOVER: u32 = 0x04;

/// struct blkpg_partition (linux/blkpg.h).
#[repr(C)]
struct BlkpgPartition {
    start: libc::c_longlong,
    length: libc::c_longlong,
    pno: libc::c_int,
    devname: [libc::c_char; 64],
    volname: [libc::c_char; 64],
}

/// struct blkpg_ioctl_arg.
#[repr(C)]
struct BlkpgIoctlArg {
    op: libc::c_int,
    flags: libc::c_int,
    datalen: libc::c_int,
    data: *mut libc::c_void,
}

/// A partition as sysfs describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockPartition {
    /// The kernel's name (`nvme0n1p2`); its node is /dev/NAME.
    pub name: String,
    /// PARTN: the slot in the partition table, from 1.
    pub number: u32,
    /// PARTNAME: the GPT partition name, when it has one.
    pub label: Option<String>,
    pub start_bytes: u64,
    pub size_bytes: u64,
}

impl BlockPartition {
    pub fn dev(&self) -> PathBuf {
        Path::new("/dev").join(&self.name)
    }
}

/// The disk (`nvme0n1`) whose partition, or whole self, holds the
/// filesystem at `path`; None when that filesystem is on no block device
/// (an initramfs, a tmpfs).
pub fn disk_holding(path: &Path) -> Result<Option<String>, SysError> {
    let dev = fs::metadata(path)
        .map_err(|e| SysError::io("stat", path, &e))?
        .dev();
    let link = format!("/sys/dev/block/{}:{}", libc::major(dev), libc::minor(dev));
    let Ok(real) = fs::canonicalize(&link) else {
        return Ok(None);
    };
    let disk = match real.join("partition").exists() {
        true => real.parent().map(Path::to_path_buf),
        false => Some(real),
    };
    Ok(disk.and_then(|d| Some(d.file_name()?.to_string_lossy().into_owned())))
}

/// The partitions of `disk` (a name under /sys/class/block), by number.
pub fn partitions(disk: &str) -> Vec<BlockPartition> {
    let dir = Path::new("/sys/class/block").join(disk);
    let mut out: Vec<BlockPartition> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("partition").exists())
        .filter_map(|e| read_partition(&e.path()))
        .collect();
    out.sort_by_key(|p| p.number);
    out
}

fn read_partition(sys: &Path) -> Option<BlockPartition> {
    let uevent = fs::read_to_string(sys.join("uevent")).ok()?;
    let field = |key: &str| {
        uevent
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
    };
    let number = |file: &str| -> Option<u64> {
        fs::read_to_string(sys.join(file)).ok()?.trim().parse().ok()
    };
    Some(BlockPartition {
        name: field("DEVNAME")?,
        number: field("PARTN")?.parse().ok()?,
        label: field("PARTNAME"),
        start_bytes: number("start")?.checked_mul(SYSFS_SECTOR)?,
        size_bytes: number("size")?.checked_mul(SYSFS_SECTOR)?,
    })
}

/// Opens a disk to rewrite its partition table (O_SYNC: each write is on
/// the disk when it returns, so the order of writes is the order on disk).
pub fn open_disk(dev: &Path) -> Result<File, SysError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_SYNC)
        .open(dev)
        .map_err(|e| SysError::io("open", dev, &e))
}

/// The device's size in bytes and its logical sector size.
pub fn geometry(file: &File, dev: &Path) -> Result<(u64, u64), SysError> {
    let mut bytes: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one u64 into memory we own.
    if unsafe { libc::ioctl(file.as_raw_fd(), BLKGETSIZE64 as _, &mut bytes) } != 0 {
        return Err(SysError::at("BLKGETSIZE64", dev, Errno::last()));
    }
    let mut sector: libc::c_int = 0;
    // SAFETY: BLKSSZGET writes one int into memory we own.
    if unsafe { libc::ioctl(file.as_raw_fd(), BLKSSZGET as _, &mut sector) } != 0 {
        return Err(SysError::at("BLKSSZGET", dev, Errno::last()));
    }
    Ok((bytes, u64::try_from(sector).unwrap_or(512)))
}

/// Reads exactly `len` bytes at `offset`.
pub fn read_at(file: &File, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

pub fn write_at(file: &File, dev: &Path, offset: u64, bytes: &[u8]) -> Result<(), SysError> {
    file.write_all_at(bytes, offset)
        .map_err(|e| SysError::io("write", dev, &e))
}

/// Tells the kernel partition `number` of the disk open as `disk` now
/// spans `length` bytes from `start` (which must not move).
pub fn resize_partition(
    disk: &File,
    dev: &Path,
    number: u32,
    start: u64,
    length: u64,
) -> Result<(), SysError> {
    let too_big = |_| SysError::at("BLKPG_RESIZE_PARTITION", dev, Errno::EOVERFLOW);
    let mut part = BlkpgPartition {
        start: i64::try_from(start).map_err(too_big)?,
        length: i64::try_from(length).map_err(too_big)?,
        pno: libc::c_int::try_from(number).map_err(too_big)?,
        devname: [0; 64],
        volname: [0; 64],
    };
    let arg = BlkpgIoctlArg {
        op: BLKPG_RESIZE_PARTITION,
        flags: 0,
        datalen: std::mem::size_of::<BlkpgPartition>() as libc::c_int,
        data: (&raw mut part).cast(),
    };
    // SAFETY: BLKPG reads the argument and the partition it points to,
    // both alive for the call.
    if unsafe { libc::ioctl(disk.as_raw_fd(), BLKPG as _, &arg) } != 0 {
        return Err(SysError::at("BLKPG_RESIZE_PARTITION", dev, Errno::last()));
    }
    Ok(())
}

/// What berth reads of an ext4 superblock: the size, and whether the
/// journal awaits replay (the last mount did not end in a clean unmount).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ext4Superblock {
    pub blocks: u64,
    pub block_size: u64,
    pub needs_recovery: bool,
}

impl Ext4Superblock {
    pub fn bytes(&self) -> u64 {
        self.blocks.saturating_mul(self.block_size)
    }
}

/// An ext4 superblock (its 1024 bytes); None when it is not one.
pub fn ext4_superblock(sb: &[u8]) -> Option<Ext4Superblock> {
    let u32_at = |at: usize| Some(u32::from_le_bytes(sb.get(at..at + 4)?.try_into().ok()?));
    let magic = u16::from_le_bytes(sb.get(0x38..0x3A)?.try_into().ok()?);
    let log = u32_at(0x18)?;
    if magic != EXT4_MAGIC || log > 6 {
        return None;
    }
    let incompat = u32_at(0x60)?;
    let high = match incompat & EXT4_FEATURE_INCOMPAT_64BIT {
        0 => 0,
        _ => u32_at(0x150)?,
    };
    Some(Ext4Superblock {
        blocks: (u64::from(high) << 32) | u64::from(u32_at(0x04)?),
        block_size: 1024 << log,
        needs_recovery: incompat & EXT4_FEATURE_INCOMPAT_RECOVER != 0,
    })
}

/// The superblock of the ext4 filesystem on `dev`.
pub fn read_ext4_superblock(dev: &Path) -> Result<Option<Ext4Superblock>, SysError> {
    let mut file = File::open(dev).map_err(|e| SysError::io("open", dev, &e))?;
    let mut head = vec![0u8; (EXT4_SUPER_AT + 1024) as usize];
    file.read_exact(&mut head)
        .map_err(|e| SysError::io("read the superblock of", dev, &e))?;
    Ok(ext4_superblock(&head[EXT4_SUPER_AT as usize..]))
}

/// Mounts the ext4 filesystem on `dev` read-write at `target`.
pub fn mount_ext4(dev: &Path, target: &Path) -> Result<(), SysError> {
    mount(
        Some(dev),
        target,
        Some("ext4"),
        MsFlags::MS_NOATIME,
        None::<&str>,
    )
    .map_err(|e| SysError::at("mount ext4", dev, e))
}

/// Grows the ext4 filesystem mounted at `mount_point` to `blocks`.
pub fn resize_ext4(mount_point: &Path, blocks: u64) -> Result<(), SysError> {
    let dir = File::open(mount_point).map_err(|e| SysError::io("open", mount_point, &e))?;
    // SAFETY: EXT4_IOC_RESIZE_FS reads one u64 we own.
    if unsafe { libc::ioctl(dir.as_raw_fd(), EXT4_IOC_RESIZE_FS as _, &blocks) } != 0 {
        return Err(SysError::at(
            "EXT4_IOC_RESIZE_FS",
            mount_point,
            Errno::last(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_are_the_kernels() {
        assert_eq!(BLKSSZGET, 0x1268);
        assert_eq!(BLKPG, 0x1269);
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(BLKGETSIZE64, 0x8008_1272);
            assert_eq!(EXT4_IOC_RESIZE_FS, 0x4008_6610);
        }
    }

    #[test]
    fn an_ext4_superblock_gives_its_size_and_journal_state() {
        let mut sb = vec![0u8; 1024];
        sb[0x38..0x3A].copy_from_slice(&EXT4_MAGIC.to_le_bytes());
        sb[0x18..0x1C].copy_from_slice(&2u32.to_le_bytes());
        sb[0x04..0x08].copy_from_slice(&16384u32.to_le_bytes());
        let size = ext4_superblock(&sb).unwrap();
        assert_eq!(
            (size.blocks, size.block_size, size.bytes()),
            (16384, 4096, 64 << 20)
        );
        sb[0x60] = 0x80;
        sb[0x150..0x154].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(ext4_superblock(&sb).unwrap().blocks, (1 << 32) + 16384);
        assert!(!ext4_superblock(&sb).unwrap().needs_recovery);
        sb[0x60] |= 0x04;
        assert!(ext4_superblock(&sb).unwrap().needs_recovery);
        sb[0x18] = 40;
        assert_eq!(ext4_superblock(&sb), None, "a block size past 64 KiB");
        assert_eq!(ext4_superblock(&sb[..100]), None);
        assert_eq!(ext4_superblock(&[0u8; 1024]), None);
    }
}
