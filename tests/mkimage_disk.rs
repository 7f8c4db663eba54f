//! `berth mkimage --format disk` without qemu (docs/images.md, "Disk
//! images"), on the fake kernel and module tree of
//! tests/common/mkimage_inputs.rs and the demo's busybox image: the GPT
//! read back independently of berth's reader (protective MBR, signature,
//! both headers' and entry arrays' CRC32s, the backup header at the last
//! sector, the two named partitions in place), each partition's ext4
//! checked with e2fsck and read with debugfs, two builds byte for byte the
//! same, and a host without mkfs.ext4 told to install e2fsprogs with
//! nothing left behind. tests/vm_mkimage_disk.rs boots such an image.

mod common;

use std::path::Path;

use anyhow::{Context, Result};
use common::mkimage_inputs::*;
use common::*;
use serde_json::Value;

/// A GPT read back as the spec says, independently of berth's own reader:
/// the primary header, its entries, the backup header at the last sector
/// pointing back at LBA 1, both with valid CRC32s; the used entries'
/// (name, first LBA, last LBA).
fn gpt_partitions(disk: &[u8]) -> Vec<(String, u64, u64)> {
    assert_eq!(disk.len() % 512, 0);
    assert_eq!(
        (disk[450], &disk[510..512]),
        (0xEE, &[0x55u8, 0xAA][..]),
        "protective MBR"
    );
    let sectors = (disk.len() / 512) as u64;
    let primary = gpt_header(disk, 1);
    assert_eq!(
        le64(primary, 32),
        sectors - 1,
        "backup header at the last sector"
    );
    let backup = gpt_header(disk, sectors - 1);
    assert_eq!(le64(backup, 32), 1);
    assert_eq!(primary[56..72], backup[56..72], "one disk GUID");
    disk[1024..1024 + 128 * 128]
        .chunks(128)
        .filter(|e| e[..16] != [0; 16])
        .map(|e| {
            let units: Vec<u16> = e[56..128]
                .chunks(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|u| *u != 0)
                .collect();
            (String::from_utf16_lossy(&units), le64(e, 32), le64(e, 40))
        })
        .collect()
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// The GPT header at `lba`, its own CRC and its entries' checked.
fn gpt_header(disk: &[u8], lba: u64) -> &[u8] {
    let h = &disk[(lba * 512) as usize..(lba * 512 + 512) as usize];
    assert_eq!(&h[..8], b"EFI PART", "signature at LBA {lba}");
    let mut zeroed = h[..92].to_vec();
    zeroed[16..20].fill(0);
    assert_eq!(
        crc32fast::hash(&zeroed),
        le32(h, 16),
        "header CRC at LBA {lba}"
    );
    assert_eq!(le64(h, 24), lba);
    let (entries, n, size) = (
        le64(h, 72) as usize,
        le32(h, 80) as usize,
        le32(h, 84) as usize,
    );
    let array = &disk[entries * 512..entries * 512 + n * size];
    assert_eq!(
        crc32fast::hash(array),
        le32(h, 88),
        "entries CRC of LBA {lba}"
    );
    h
}

/// `debugfs -R "cat PATH"` of the ext4 in `fs`.
fn debugfs_cat(fs: &Path, path: &str) -> Vec<u8> {
    let out = std::process::Command::new("debugfs")
        .args(["-R", &format!("cat {path}")])
        .arg(fs)
        .output()
        .expect("debugfs");
    out.stdout
}

#[test]
fn a_disk_image_is_a_valid_gpt_of_two_ext4_partitions_and_the_same_bytes_twice() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let i = inputs(host_arch())?;
    let layout = demo_layout(&i.env)?;
    let layout = layout.to_str().context("path")?;
    let extra = ["--format", "disk", "--image", layout];
    let out = ok(i.mkimage("one.img", &extra));
    eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim());
    // Another time, other ctimes and inode order in the staging: the
    // same bytes.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    ok(i.mkimage("two.img", &extra));
    let (one, two) = (i.read("one.img"), i.read("two.img"));
    assert!(one == two, "two builds of the disk image differ");
    let parts = gpt_partitions(&one);
    let names: Vec<&str> = parts.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(names, ["berth-root", "berth-data"]);
    assert_eq!(parts[0].1, 2048, "aligned to 1 MiB");
    assert_eq!(parts[1].1, parts[0].2 + 1, "data right after the root");
    assert!(
        (parts[1].2 - parts[1].1 + 1) * 512 >= 64 << 20,
        "64 MiB of data at least"
    );
    let dir = i.env.dir.path();
    for (name, first, last) in &parts {
        let fs = dir.join(format!("{name}.ext4"));
        std::fs::write(
            &fs,
            &one[(*first * 512) as usize..((*last + 1) * 512) as usize],
        )?;
        let fsck = std::process::Command::new("e2fsck")
            .arg("-fn")
            .arg(&fs)
            .output()?;
        assert!(
            fsck.status.success(),
            "e2fsck {name}: {}{}",
            String::from_utf8_lossy(&fsck.stdout),
            String::from_utf8_lossy(&fsck.stderr)
        );
    }
    let root = dir.join("berth-root.ext4");
    assert_eq!(debugfs_cat(&root, "/init"), std::fs::read(&i.berth)?);
    let settings: Value = serde_json::from_slice(&debugfs_cat(&root, "/etc/berth/berth.json"))?;
    assert!(
        settings["modules"][0]
            .as_str()
            .unwrap_or_default()
            .ends_with("overlay.ko")
    );
    let refs = debugfs_cat(&dir.join("berth-data.ext4"), "/images/refs.json");
    assert!(
        String::from_utf8_lossy(&refs).contains(DEMO_REF),
        "the store on the data partition"
    );
    Ok(())
}

#[test]
fn a_disk_image_without_mkfs_ext4_is_refused_naming_e2fsprogs() -> Result<()> {
    if !require_root() {
        return Ok(());
    }
    let i = inputs(host_arch())?;
    let empty = i.env.dir.path().join("empty-path");
    std::fs::create_dir(&empty)?;
    let mut cmd = berth(&["mkimage", "--format", "disk", "--config"]);
    cmd.arg(i.env.config())
        .arg("--kernel")
        .arg(&i.kernel)
        .arg("--berth")
        .arg(&i.berth)
        .arg("--modules")
        .arg(&i.modules)
        .arg("--ca-bundle")
        .arg(&i.ca)
        .arg("-o")
        .arg(i.env.dir.path().join("x.img"))
        .env("PATH", &empty);
    let err = refused(cmd.output()?);
    assert!(
        err.contains("mkfs.ext4 not found") && err.contains("e2fsprogs"),
        "{err}"
    );
    assert!(!i.env.dir.path().join("x.img").exists());
    let left: Vec<_> = std::fs::read_dir(i.env.dir.path())?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("mkimage"))
        .collect();
    assert!(left.is_empty(), "scratch left behind: {left:?}");
    Ok(())
}
