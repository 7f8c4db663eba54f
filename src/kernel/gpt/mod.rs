//! GUID Partition Tables (UEFI 2.10, chapter 5): the table `berth mkimage
//! --format disk` writes, and the one berth as PID 1 reads back from its
//! boot disk to grow the data partition. A table read from a disk is
//! outside input: every field is bounded and checked (signature, header
//! and entry CRC32s, LBAs inside the disk, partitions inside the usable
//! range and apart) before anything is believed; a table that fails any of
//! it is refused, never half-used. Writing is `encode.rs`.

mod encode;

pub use encode::{NewPartition, Write, patch_protective_mbr, protective_mbr};

use std::fmt;

pub const SIGNATURE: &[u8; 8] = b"EFI PART";
pub const REVISION: u32 = 0x0001_0000;
/// The header's own length (the rest of its sector is zero).
pub const HEADER_BYTES: usize = 92;
pub const ENTRY_BYTES: u32 = 128;
/// What mkimage writes (the usual count: 16 KiB of entries).
pub const ENTRY_COUNT: u32 = 128;
/// A partition name is 36 UTF-16 code units.
pub const NAME_UNITS: usize = 36;
/// The entry array read from a disk is at most this long (128 entries of
/// 128 bytes is 16 KiB; nothing legitimate comes near).
const MAX_ENTRY_ARRAY: u64 = 1 << 20;
/// Largest entry accepted (the spec allows 128 * 2^n).
const MAX_ENTRY_BYTES: u32 = 4096;

/// "Linux filesystem data" (0FC63DAF-8483-4772-8E79-3D69D8477DE4).
pub const LINUX_FS: Guid = Guid::from_fields(
    0x0FC6_3DAF,
    0x8483,
    0x4772,
    [0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D, 0xE4],
);

/// A GUID in its on-disk byte order (the first three fields little-endian).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    pub const fn from_fields(a: u32, b: u16, c: u16, d: [u8; 8]) -> Guid {
        let (a, b, c) = (a.to_le_bytes(), b.to_le_bytes(), c.to_le_bytes());
        Guid([
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5],
            d[6], d[7],
        ])
    }

    /// A GUID made of 16 bytes of a hash, marked as a random (version 4,
    /// RFC 4122 variant) one: fixed for fixed inputs, unlike a random one.
    pub fn from_hash(h: [u8; 16]) -> Guid {
        let mut t = h;
        t[6] = (t[6] & 0x0F) | 0x40;
        t[8] = (t[8] & 0x3F) | 0x80;
        let field = |r: std::ops::Range<usize>| {
            let mut v = t[r].to_vec();
            v.reverse();
            v
        };
        let mut out = [0u8; 16];
        out[..4].copy_from_slice(&field(0..4));
        out[4..6].copy_from_slice(&field(4..6));
        out[6..8].copy_from_slice(&field(6..8));
        out[8..].copy_from_slice(&t[8..]);
        Guid(out)
    }

    pub fn is_zero(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-",
            b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]
        )?;
        write!(f, "{:02X}{:02X}-", b[8], b[9])?;
        b[10..].iter().try_for_each(|x| write!(f, "{x:02X}"))
    }
}

/// One used entry of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Its slot in the entry array; the kernel's partition number is
    /// `index + 1`.
    pub index: usize,
    pub type_guid: Guid,
    pub guid: Guid,
    pub first_lba: u64,
    /// Inclusive.
    pub last_lba: u64,
    pub attributes: u64,
    pub name: String,
}

impl Partition {
    pub fn sectors(&self) -> u64 {
        self.last_lba - self.first_lba + 1
    }
}

/// A table as read (or made): the primary header's fields, the raw entry
/// array (kept as it is, so a rewrite changes only what it means to) and
/// the used entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gpt {
    /// Logical sector size, in bytes.
    pub sector: u64,
    pub disk_guid: Guid,
    pub first_usable: u64,
    pub last_usable: u64,
    /// Where the backup header is: the disk's last sector, unless the disk
    /// grew since the table was written.
    pub backup_lba: u64,
    pub entry_count: u32,
    pub entry_bytes: u32,
    pub entries: Vec<u8>,
    pub partitions: Vec<Partition>,
}

#[derive(Debug, thiserror::Error)]
pub enum GptError {
    #[error("no GPT: no \"EFI PART\" signature at LBA 1")]
    NotGpt,
    #[error("the GPT is invalid: {0}")]
    Invalid(String),
    #[error("read the GPT: {0}")]
    Read(#[from] std::io::Error),
}

fn invalid(what: impl Into<String>) -> GptError {
    GptError::Invalid(what.into())
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

fn guid_at(b: &[u8], at: usize) -> Guid {
    let mut g = [0u8; 16];
    g.copy_from_slice(&b[at..at + 16]);
    Guid(g)
}

/// The CRC32 of a header: over its own length, its CRC field as zero.
pub(crate) fn header_crc(header: &[u8]) -> u32 {
    let mut h = header.to_vec();
    h[16..20].fill(0);
    crc32fast::hash(&h)
}

/// Sectors the entry array takes.
pub(crate) fn entry_sectors(count: u32, bytes: u32, sector: u64) -> u64 {
    (u64::from(count) * u64::from(bytes)).div_ceil(sector)
}

impl Gpt {
    /// Reads the primary table of a disk of `disk_bytes` with `sector`-byte
    /// sectors; `read(offset, len)` returns exactly `len` bytes or fails.
    pub fn read(
        read: &mut dyn FnMut(u64, usize) -> std::io::Result<Vec<u8>>,
        sector: u64,
        disk_bytes: u64,
    ) -> Result<Gpt, GptError> {
        if !matches!(sector, 512 | 1024 | 2048 | 4096) {
            return Err(invalid(format!("a sector size of {sector} bytes")));
        }
        let disk_sectors = disk_bytes / sector;
        if disk_sectors < 3 {
            return Err(invalid(format!(
                "a disk of {disk_bytes} bytes holds no GPT"
            )));
        }
        let header = read(sector, sector as usize)?;
        let mut gpt = Self::parse_header(&header, sector, disk_sectors)?;
        let len = u64::from(gpt.entry_count) * u64::from(gpt.entry_bytes);
        // Checked in parse_header: the array lies inside the disk.
        gpt.entries = read(2 * sector, len as usize)?;
        if crc32fast::hash(&gpt.entries) != u32_at(&header, 88) {
            return Err(invalid(
                "the partition entries' CRC32 does not match the header's",
            ));
        }
        gpt.partitions = gpt.parse_entries()?;
        Ok(gpt)
    }

    /// A table read from a whole disk held in memory (tests, fuzzing).
    pub fn from_disk(disk: &[u8], sector: u64) -> Result<Gpt, GptError> {
        let mut read = |offset: u64, len: usize| {
            usize::try_from(offset)
                .ok()
                .and_then(|o| disk.get(o..o.checked_add(len)?))
                .map(<[u8]>::to_vec)
                .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
        };
        Self::read(&mut read, sector, disk.len() as u64)
    }

    fn parse_header(h: &[u8], sector: u64, disk_sectors: u64) -> Result<Gpt, GptError> {
        if h.len() < HEADER_BYTES || &h[..8] != SIGNATURE {
            return Err(GptError::NotGpt);
        }
        if u32_at(h, 8) != REVISION {
            return Err(invalid(format!("revision {:#x}", u32_at(h, 8))));
        }
        let size = u32_at(h, 12) as usize;
        if size < HEADER_BYTES || size as u64 > sector {
            return Err(invalid(format!("a header of {size} bytes")));
        }
        if header_crc(&h[..size]) != u32_at(h, 16) {
            return Err(invalid("the header's CRC32 does not match"));
        }
        let (my_lba, backup_lba) = (u64_at(h, 24), u64_at(h, 32));
        let (first_usable, last_usable) = (u64_at(h, 40), u64_at(h, 48));
        let (entries_lba, count, bytes) = (u64_at(h, 72), u32_at(h, 80), u32_at(h, 84));
        if my_lba != 1 || entries_lba != 2 {
            return Err(invalid(format!(
                "the primary header says it is at LBA {my_lba}, its entries at {entries_lba} (1 and 2 expected)"
            )));
        }
        if !(ENTRY_BYTES..=MAX_ENTRY_BYTES).contains(&bytes)
            || !bytes.is_power_of_two()
            || count == 0
            || u64::from(count) * u64::from(bytes) > MAX_ENTRY_ARRAY
        {
            return Err(invalid(format!("{count} entries of {bytes} bytes")));
        }
        let array_end = 2 + entry_sectors(count, bytes, sector);
        if first_usable < array_end
            || last_usable < first_usable
            || backup_lba <= last_usable
            || backup_lba >= disk_sectors
        {
            return Err(invalid(format!(
                "usable LBAs {first_usable}..={last_usable} and a backup at {backup_lba} do not fit a disk of {disk_sectors} sectors"
            )));
        }
        Ok(Gpt {
            sector,
            disk_guid: guid_at(h, 56),
            first_usable,
            last_usable,
            backup_lba,
            entry_count: count,
            entry_bytes: bytes,
            entries: Vec::new(),
            partitions: Vec::new(),
        })
    }

    fn parse_entries(&self) -> Result<Vec<Partition>, GptError> {
        let mut parts = Vec::new();
        for (index, e) in self
            .entries
            .chunks_exact(self.entry_bytes as usize)
            .enumerate()
        {
            let type_guid = guid_at(e, 0);
            if type_guid.is_zero() {
                continue;
            }
            let (first_lba, last_lba) = (u64_at(e, 32), u64_at(e, 40));
            if first_lba < self.first_usable || last_lba < first_lba || last_lba > self.last_usable
            {
                return Err(invalid(format!(
                    "partition {} spans LBAs {first_lba}..={last_lba}, outside the usable {}..={}",
                    index + 1,
                    self.first_usable,
                    self.last_usable
                )));
            }
            let units: Vec<u16> = e[56..56 + 2 * NAME_UNITS]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|u| *u != 0)
                .collect();
            parts.push(Partition {
                index,
                type_guid,
                guid: guid_at(e, 16),
                first_lba,
                last_lba,
                attributes: u64_at(e, 48),
                name: String::from_utf16_lossy(&units),
            });
        }
        let mut by_start: Vec<&Partition> = parts.iter().collect();
        by_start.sort_by_key(|p| p.first_lba);
        if let Some(w) = by_start
            .windows(2)
            .find(|w| w[1].first_lba <= w[0].last_lba)
        {
            return Err(invalid(format!(
                "partitions {} and {} overlap",
                w[0].index + 1,
                w[1].index + 1
            )));
        }
        Ok(parts)
    }

    /// The partition named `name`.
    pub fn named(&self, name: &str) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.name == name)
    }
}

#[cfg(test)]
mod tests;
