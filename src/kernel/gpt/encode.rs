//! Writing a GPT: a new table for an image, and the same table grown to a
//! larger disk (the backup header and entries moved to its new end, one
//! partition extended to it, every CRC32 computed again). Produces the
//! bytes and where they go; the caller writes them (a file, a device).

use super::{
    ENTRY_BYTES, ENTRY_COUNT, Gpt, GptError, Guid, HEADER_BYTES, NAME_UNITS, Partition, REVISION,
    SIGNATURE, entry_sectors, header_crc, invalid,
};

/// Bytes to write at a byte offset of the disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

/// A partition of a new table.
#[derive(Debug, Clone)]
pub struct NewPartition {
    pub name: String,
    pub type_guid: Guid,
    pub guid: Guid,
    pub first_lba: u64,
    pub last_lba: u64,
}

/// The protective MBR (UEFI 5.2.3): one partition of type 0xEE covering
/// the disk from LBA 1, so MBR-only tools see the disk as in use.
pub fn protective_mbr(disk_sectors: u64) -> [u8; 512] {
    let mut m = [0u8; 512];
    let e = &mut m[446..462];
    // CHS of LBA 1 (0/0/2) and the "too large" end, as the spec says.
    e[1..4].copy_from_slice(&[0x00, 0x02, 0x00]);
    e[4] = 0xEE;
    e[5..8].copy_from_slice(&[0xFF, 0xFF, 0xFF]);
    e[8..12].copy_from_slice(&1u32.to_le_bytes());
    e[12..16].copy_from_slice(&mbr_sectors(disk_sectors).to_le_bytes());
    m[510] = 0x55;
    m[511] = 0xAA;
    m
}

/// The protective partition's size: the disk less LBA 0, at most 2^32-1.
fn mbr_sectors(disk_sectors: u64) -> u32 {
    u32::try_from(disk_sectors.saturating_sub(1)).unwrap_or(u32::MAX)
}

/// Sets a protective MBR's size to a grown disk's, leaving the rest (a
/// bootloader's code in its first 440 bytes) alone. False when `mbr` is
/// not a protective MBR.
pub fn patch_protective_mbr(mbr: &mut [u8], disk_sectors: u64) -> bool {
    if mbr.len() < 512 || mbr[510..512] != [0x55, 0xAA] || mbr[446 + 4] != 0xEE {
        return false;
    }
    mbr[458..462].copy_from_slice(&mbr_sectors(disk_sectors).to_le_bytes());
    true
}

impl Gpt {
    /// A new table of ENTRY_COUNT entries for a disk of `disk_sectors`.
    pub fn new(
        sector: u64,
        disk_sectors: u64,
        disk_guid: Guid,
        parts: &[NewPartition],
    ) -> Result<Gpt, GptError> {
        let array = entry_sectors(ENTRY_COUNT, ENTRY_BYTES, sector);
        let first_usable = 2 + array;
        let last_usable = disk_sectors
            .checked_sub(2 + array)
            .filter(|l| *l >= first_usable)
            .ok_or_else(|| invalid(format!("a disk of {disk_sectors} sectors is too small")))?;
        if parts.len() > ENTRY_COUNT as usize {
            return Err(invalid(format!("{} partitions", parts.len())));
        }
        let mut entries = vec![0u8; (ENTRY_COUNT * ENTRY_BYTES) as usize];
        for (i, p) in parts.iter().enumerate() {
            let e = &mut entries[i * ENTRY_BYTES as usize..(i + 1) * ENTRY_BYTES as usize];
            e[..16].copy_from_slice(&p.type_guid.0);
            e[16..32].copy_from_slice(&p.guid.0);
            e[32..40].copy_from_slice(&p.first_lba.to_le_bytes());
            e[40..48].copy_from_slice(&p.last_lba.to_le_bytes());
            let units: Vec<u16> = p.name.encode_utf16().collect();
            if units.len() > NAME_UNITS {
                return Err(invalid(format!(
                    "the partition name {:?} is too long",
                    p.name
                )));
            }
            for (k, u) in units.iter().enumerate() {
                e[56 + 2 * k..58 + 2 * k].copy_from_slice(&u.to_le_bytes());
            }
        }
        let mut gpt = Gpt {
            sector,
            disk_guid,
            first_usable,
            last_usable,
            backup_lba: disk_sectors - 1,
            entry_count: ENTRY_COUNT,
            entry_bytes: ENTRY_BYTES,
            entries,
            partitions: Vec::new(),
        };
        // The same checks as a table read from a disk.
        gpt.partitions = gpt.parse_entries()?;
        Ok(gpt)
    }

    fn array_sectors(&self) -> u64 {
        entry_sectors(self.entry_count, self.entry_bytes, self.sector)
    }

    /// The header at `my_lba`, its sibling at `other_lba`, its entries at
    /// `entries_lba`, padded to a sector.
    fn header(&self, my_lba: u64, other_lba: u64, entries_lba: u64) -> Vec<u8> {
        let mut h = vec![0u8; self.sector as usize];
        h[..8].copy_from_slice(SIGNATURE);
        h[8..12].copy_from_slice(&REVISION.to_le_bytes());
        h[12..16].copy_from_slice(&(HEADER_BYTES as u32).to_le_bytes());
        h[24..32].copy_from_slice(&my_lba.to_le_bytes());
        h[32..40].copy_from_slice(&other_lba.to_le_bytes());
        h[40..48].copy_from_slice(&self.first_usable.to_le_bytes());
        h[48..56].copy_from_slice(&self.last_usable.to_le_bytes());
        h[56..72].copy_from_slice(&self.disk_guid.0);
        h[72..80].copy_from_slice(&entries_lba.to_le_bytes());
        h[80..84].copy_from_slice(&self.entry_count.to_le_bytes());
        h[84..88].copy_from_slice(&self.entry_bytes.to_le_bytes());
        h[88..92].copy_from_slice(&crc32fast::hash(&self.entries).to_le_bytes());
        let crc = header_crc(&h[..HEADER_BYTES]);
        h[16..20].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// The primary header (LBA 1) and entries (from LBA 2).
    pub fn primary(&self) -> Vec<Write> {
        vec![
            Write {
                offset: self.sector,
                bytes: self.header(1, self.backup_lba, 2),
            },
            Write {
                offset: 2 * self.sector,
                bytes: self.entries.clone(),
            },
        ]
    }

    /// The backup entries and, in the disk's last sector, their header.
    pub fn backup(&self) -> Vec<Write> {
        let entries_lba = self.backup_lba - self.array_sectors();
        vec![
            Write {
                offset: entries_lba * self.sector,
                bytes: self.entries.clone(),
            },
            Write {
                offset: self.backup_lba * self.sector,
                bytes: self.header(self.backup_lba, 1, entries_lba),
            },
        ]
    }

    /// The table for a disk now `disk_sectors` long, with the partition in
    /// slot `index` extended to the disk's end (aligned down to `align`
    /// sectors). None when there is nothing to do: the backup is at the
    /// end and the partition reaches it. Refused when another partition
    /// lies after it or the disk is smaller than the table.
    pub fn grown(
        &self,
        disk_sectors: u64,
        index: usize,
        align: u64,
    ) -> Result<Option<Gpt>, GptError> {
        let last_usable = disk_sectors
            .checked_sub(2 + self.array_sectors())
            .filter(|l| *l >= self.last_usable)
            .ok_or_else(|| {
                invalid(format!(
                    "the disk ({disk_sectors} sectors) is smaller than its table says (backup at LBA {})",
                    self.backup_lba
                ))
            })?;
        let part = self.partition(index)?;
        if let Some(after) = self.partitions.iter().find(|p| p.first_lba > part.last_lba) {
            return Err(invalid(format!(
                "partition {} lies after partition {}: it cannot grow",
                after.index + 1,
                index + 1
            )));
        }
        let align = align.max(1);
        let end = ((last_usable + 1) / align * align).saturating_sub(1);
        let new_last = end.max(part.last_lba);
        if new_last == part.last_lba && self.backup_lba == disk_sectors - 1 {
            return Ok(None);
        }
        let mut grown = self.clone();
        grown.last_usable = last_usable;
        grown.backup_lba = disk_sectors - 1;
        let at = index * self.entry_bytes as usize;
        grown.entries[at + 40..at + 48].copy_from_slice(&new_last.to_le_bytes());
        grown.partitions = grown.parse_entries()?;
        Ok(Some(grown))
    }

    fn partition(&self, index: usize) -> Result<&Partition, GptError> {
        self.partitions
            .iter()
            .find(|p| p.index == index)
            .ok_or_else(|| invalid(format!("no partition {}", index + 1)))
    }
}
