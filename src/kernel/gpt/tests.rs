use super::*;

const MIB: u64 = 2048;

fn two_partitions(disk_sectors: u64) -> Gpt {
    let part = |name: &str, n: u8, first, last| NewPartition {
        name: name.into(),
        type_guid: LINUX_FS,
        guid: Guid::from_hash([n; 16]),
        first_lba: first,
        last_lba: last,
    };
    let parts = [
        part("berth-root", 1, MIB, 3 * MIB - 1),
        part("berth-data", 2, 3 * MIB, 5 * MIB - 1),
    ];
    Gpt::new(512, disk_sectors, Guid::from_hash([9; 16]), &parts).unwrap()
}

/// A disk image holding `gpt`'s primary and backup tables.
fn disk(gpt: &Gpt, sectors: u64) -> Vec<u8> {
    let mut d = vec![0u8; (sectors * 512) as usize];
    d[..512].copy_from_slice(&protective_mbr(sectors));
    for w in gpt.primary().into_iter().chain(gpt.backup()) {
        let at = w.offset as usize;
        d[at..at + w.bytes.len()].copy_from_slice(&w.bytes);
    }
    d
}

#[test]
fn a_new_table_reads_back_with_its_names_and_crcs() {
    let sectors = 6 * MIB;
    let gpt = two_partitions(sectors);
    let d = disk(&gpt, sectors);
    assert_eq!(&d[512..520], SIGNATURE);
    let back = Gpt::from_disk(&d, 512).unwrap();
    assert_eq!(back, gpt);
    assert_eq!(back.first_usable, 34);
    assert_eq!(back.last_usable, sectors - 34);
    assert_eq!(back.backup_lba, sectors - 1);
    let data = back.named("berth-data").unwrap();
    assert_eq!(
        (data.index, data.first_lba, data.sectors()),
        (1, 3 * MIB, 2 * MIB)
    );
    // The backup header: at the last sector, pointing back at LBA 1, its
    // entries just before it, with valid CRCs.
    let last = &d[((sectors - 1) * 512) as usize..];
    assert_eq!(&last[..8], SIGNATURE);
    assert_eq!((u64_at(last, 24), u64_at(last, 32)), (sectors - 1, 1));
    assert_eq!(u64_at(last, 72), sectors - 33);
    assert_eq!(header_crc(&last[..HEADER_BYTES]), u32_at(last, 16));
    let entries = &d[((sectors - 33) * 512) as usize..((sectors - 1) * 512) as usize];
    assert_eq!(crc32fast::hash(entries), u32_at(last, 88));
    assert_eq!(LINUX_FS.to_string(), "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
    let mbr = &d[..512];
    assert_eq!((mbr[450], &mbr[510..]), (0xEE, &[0x55u8, 0xAA][..]));
}

#[test]
fn growing_moves_the_backup_and_extends_only_the_last_partition() {
    let gpt = two_partitions(6 * MIB);
    let bigger = 64 * MIB + 7;
    let grown = gpt.grown(bigger, 1, MIB).unwrap().expect("the disk grew");
    let mut d = disk(&grown, bigger);
    // The stale backup of the small disk is still in the middle: ignored.
    let old = disk(&gpt, 6 * MIB);
    d[..old.len()].copy_from_slice(&old[..]);
    for w in grown.primary() {
        let at = w.offset as usize;
        d[at..at + w.bytes.len()].copy_from_slice(&w.bytes);
    }
    let back = Gpt::from_disk(&d, 512).unwrap();
    assert_eq!(back.backup_lba, bigger - 1);
    assert_eq!(back.last_usable, bigger - 34);
    let data = back.named("berth-data").unwrap();
    assert_eq!(data.first_lba, 3 * MIB);
    assert_eq!(data.last_lba, 63 * MIB - 1, "aligned down to 1 MiB");
    // Everything else is as it was: the other entry byte for byte.
    assert_eq!(back.partitions[0], gpt.partitions[0]);
    assert_eq!(back.entries[..128], gpt.entries[..128]);
    assert_eq!(back.entries[256..], gpt.entries[256..]);
    assert_eq!((back.disk_guid, back.first_usable), (gpt.disk_guid, 34));
    // Once grown, nothing more to do; the root cannot grow past the data.
    assert_eq!(back.grown(bigger, 1, MIB).unwrap(), None);
    assert!(back.grown(bigger, 0, MIB).is_err());
    assert!(gpt.grown(MIB, 1, MIB).is_err(), "a smaller disk");
    let mut mbr = protective_mbr(6 * MIB);
    assert!(patch_protective_mbr(&mut mbr, bigger));
    assert_eq!(u32_at(&mbr, 458) as u64, bigger - 1);
}

#[test]
fn a_damaged_or_hostile_table_is_refused() {
    let sectors = 6 * MIB;
    let good = disk(&two_partitions(sectors), sectors);
    let refused = |d: &[u8]| Gpt::from_disk(d, 512).unwrap_err().to_string();
    assert!(refused(&good[..4096]).contains("backup"), "truncated disk");
    assert!(refused(&[]).contains("holds no GPT"));
    assert!(refused(&vec![0u8; 1 << 20]).contains("no GPT"));
    let mut d = good.clone();
    d[512 + 40] ^= 1;
    assert!(refused(&d).contains("header's CRC32"));
    let mut d = good.clone();
    d[1024 + 60] ^= 1;
    assert!(refused(&d).contains("entries' CRC32"));
    // Fields changed with their CRCs fixed up, as a hostile disk would.
    let forge = |edit: &dyn Fn(&mut Vec<u8>)| {
        let mut d = good.clone();
        edit(&mut d);
        let crc = crc32fast::hash(&d[1024..1024 + 16384]);
        d[512 + 88..512 + 92].copy_from_slice(&crc.to_le_bytes());
        let crc = header_crc(&d[512..512 + HEADER_BYTES]);
        d[512 + 16..512 + 20].copy_from_slice(&crc.to_le_bytes());
        refused(&d)
    };
    let huge = forge(&|d| d[512 + 80..512 + 84].copy_from_slice(&u32::MAX.to_le_bytes()));
    assert!(huge.contains("entries of 128 bytes"), "{huge}");
    let beyond = forge(&|d| d[512 + 48..512 + 56].copy_from_slice(&u64::MAX.to_le_bytes()));
    assert!(beyond.contains("do not fit"), "{beyond}");
    let overlap =
        forge(&|d| d[1024 + 128 + 32..1024 + 128 + 40].copy_from_slice(&MIB.to_le_bytes()));
    assert!(overlap.contains("overlap"), "{overlap}");
    let outside = forge(&|d| d[1024 + 40..1024 + 48].copy_from_slice(&(sectors).to_le_bytes()));
    assert!(outside.contains("outside the usable"), "{outside}");
    let entry = forge(&|d| d[512 + 84..512 + 88].copy_from_slice(&100u32.to_le_bytes()));
    assert!(entry.contains("of 100 bytes"), "{entry}");
    assert!(refused(&good[..512 * 40]).contains("do not fit"));
}

#[test]
fn guids_from_a_hash_are_version_4() {
    let g = Guid::from_hash([0xFF; 16]).to_string();
    assert_eq!(g, "FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF");
}
