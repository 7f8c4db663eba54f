//! A config drive's block device and its read-only mount. An initramfs
//! has no udev, so no /dev/disk/by-label: the label is read from each
//! block device's superblock, as blkid reads it, for the two filesystems
//! config drives use (cloud-init's NoCloud: vfat or iso9660).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::error::SysError;

/// The ISO 9660 primary volume descriptor starts at 32 KiB; its volume
/// identifier ends 72 bytes in.
const ISO_PVD: usize = 0x8000;
/// What is read of a device to find its label.
const HEAD_BYTES: usize = ISO_PVD + 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsKind {
    Vfat,
    Iso9660,
}

impl FsKind {
    /// The name mount(2) wants.
    pub fn mount_type(self) -> &'static str {
        match self {
            FsKind::Vfat => "vfat",
            FsKind::Iso9660 => "iso9660",
        }
    }
}

/// A filesystem found on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub kind: FsKind,
    /// Trailing spaces dropped; empty when it has none.
    pub label: String,
}

/// The filesystem and label in a device's first bytes, if it is FAT or
/// ISO 9660.
pub fn probe_bytes(head: &[u8]) -> Option<Probe> {
    if let Some(pvd) = head.get(ISO_PVD..ISO_PVD + 72)
        && pvd[0] == 1
        && &pvd[1..6] == b"CD001"
    {
        return Some(Probe {
            kind: FsKind::Iso9660,
            label: text(&pvd[40..72]),
        });
    }
    let boot = head.get(..512)?;
    if boot[510..512] != [0x55, 0xAA] {
        return None;
    }
    let sector = u16::from_le_bytes([boot[11], boot[12]]);
    if !matches!(sector, 512 | 1024 | 2048 | 4096) {
        return None;
    }
    // FAT32 keeps its extended boot record further in than FAT12/16.
    let (signature, label, fs_type) = if &boot[0x52..0x57] == b"FAT32" {
        (boot[0x42], &boot[0x47..0x52], &boot[0x52..0x57])
    } else {
        (boot[0x26], &boot[0x2B..0x36], &boot[0x36..0x3B])
    };
    if signature != 0x29 || !fs_type.starts_with(b"FAT") {
        return None;
    }
    let label = text(label);
    Some(Probe {
        kind: FsKind::Vfat,
        // mkfs.vfat's placeholder for "no label".
        label: if label == "NO NAME" {
            String::new()
        } else {
            label
        },
    })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .trim_end_matches([' ', '\0'])
        .to_string()
}

/// What `probe_bytes` finds on the device `dev`.
pub fn probe(dev: &Path) -> Option<Probe> {
    let file = fs::File::open(dev).ok()?;
    let mut head = Vec::with_capacity(HEAD_BYTES);
    file.take(HEAD_BYTES as u64).read_to_end(&mut head).ok()?;
    probe_bytes(&head)
}

/// Every block device the kernel knows (/sys/class/block: disks and
/// their partitions), as its /dev node, sorted.
pub fn block_devices() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir("/sys/class/block")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| Path::new("/dev").join(e.file_name()))
        .filter(|p| p.exists())
        .collect();
    out.sort();
    out
}

/// The first device whose vfat or iso9660 label is `label` (ASCII case
/// ignored, as FAT labels are usually upper case).
pub fn find_label(label: &str) -> Option<(PathBuf, Probe)> {
    block_devices().into_iter().find_map(|dev| {
        let found = probe(&dev)?;
        found
            .label
            .eq_ignore_ascii_case(label)
            .then_some((dev, found))
    })
}

/// Mounts `dev` read-only at `target` (which exists): nothing on a config
/// drive is run, and nothing on it changes.
pub fn mount_read_only(dev: &Path, target: &Path, kind: FsKind) -> Result<(), SysError> {
    let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some(dev),
        target,
        Some(kind.mount_type()),
        flags,
        None::<&str>,
    )
    .map_err(|e| SysError::at("mount a config drive", dev, e))
}

/// Detaches what `mount_read_only` mounted.
pub fn unmount(target: &Path) -> Result<(), SysError> {
    umount2(target, MntFlags::MNT_DETACH).map_err(|e| SysError::at("unmount", target, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fat16(label: &[u8; 11]) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[11..13].copy_from_slice(&512u16.to_le_bytes());
        b[0x26] = 0x29;
        b[0x2B..0x36].copy_from_slice(label);
        b[0x36..0x3E].copy_from_slice(b"FAT12   ");
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }

    #[test]
    fn fat_labels() {
        let p = probe_bytes(&fat16(b"BERTHCFG   ")).unwrap();
        assert_eq!((p.kind, p.label.as_str()), (FsKind::Vfat, "BERTHCFG"));
        assert_eq!(probe_bytes(&fat16(b"NO NAME    ")).unwrap().label, "");
        let mut b = vec![0u8; 512];
        b[11..13].copy_from_slice(&4096u16.to_le_bytes());
        b[0x42] = 0x29;
        b[0x47..0x52].copy_from_slice(b"CIDATA     ");
        b[0x52..0x5A].copy_from_slice(b"FAT32   ");
        b[510..512].copy_from_slice(&[0x55, 0xAA]);
        assert_eq!(probe_bytes(&b).unwrap().label, "CIDATA");
    }

    #[test]
    fn iso_labels() {
        let mut b = vec![0u8; HEAD_BYTES];
        b[ISO_PVD] = 1;
        b[ISO_PVD + 1..ISO_PVD + 6].copy_from_slice(b"CD001");
        b[ISO_PVD + 40..ISO_PVD + 72].copy_from_slice(&[b' '; 32]);
        b[ISO_PVD + 40..ISO_PVD + 46].copy_from_slice(b"cidata");
        let p = probe_bytes(&b).unwrap();
        assert_eq!((p.kind, p.label.as_str()), (FsKind::Iso9660, "cidata"));
    }

    #[test]
    fn other_bytes_are_no_config_drive() {
        assert_eq!(probe_bytes(&[]), None);
        assert_eq!(probe_bytes(&[0u8; 4096]), None);
        let mut b = fat16(b"BERTHCFG   ");
        b[11] = 7; // no sector size
        assert_eq!(probe_bytes(&b), None);
        let mut b = fat16(b"BERTHCFG   ");
        b[0x36..0x3E].copy_from_slice(b"EXT4    ");
        assert_eq!(probe_bytes(&b), None);
        assert_eq!(probe_bytes(&[0xFFu8; HEAD_BYTES]), None);
    }
}
