//! The times that would make two builds of the same ext4 differ. `mkfs.ext4
//! -d` copies each staged file's atime and ctime (no system call sets a
//! ctime, and reading a file to copy it moves its atime) and stamps its
//! creation time: every inode in use gets them pinned to the epoch with
//! debugfs, found from the filesystem's own inode bitmaps (so a file
//! name never has to pass through debugfs's command parser). The mtimes
//! are the content's: staged as the tree says (stage.rs), or clamped to
//! the epoch in the store (`clamp_mtimes`).

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use nix::fcntl::AT_FDCWD;
use nix::sys::stat::{UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;

const SUPER_AT: u64 = 1024;
const EXT4_MAGIC: u16 = 0xEF53;
const INCOMPAT_64BIT: u32 = 0x80;
/// bg_flags: the group's inode bitmap was never written (no inode used).
const BG_INODE_UNINIT: u16 = 0x1;
const ROOT_INODE: u64 = 2;

/// Sets every inode's atime, ctime and crtime in the image to `epoch`.
pub fn pin(image: &Path, epoch: u32) -> Result<(), String> {
    let inodes = in_use(image).map_err(|e| format!("{}: {e}", image.display()))?;
    let script = image.with_extension("debugfs");
    let mut text = String::new();
    for ino in &inodes {
        for field in ["atime", "ctime", "crtime"] {
            text.push_str(&format!("sif <{ino}> {field} @{epoch}\n"));
        }
    }
    File::create(&script)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("{}: {e}", script.display()))?;
    let out = Command::new("debugfs")
        .arg("-w")
        .arg("-f")
        .arg(&script)
        .arg(image)
        .env("E2FSPROGS_FAKE_TIME", epoch.max(1).to_string())
        .output();
    let _ = fs::remove_file(&script);
    let out = out.map_err(|e| format!("debugfs (e2fsprogs): {e}"))?;
    // debugfs exits 0 when a command fails; only its banner may be on stderr.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("debugfs "))
        .collect();
    if !out.status.success() || !errors.is_empty() {
        return Err(format!(
            "debugfs, pinning the times of {} inodes: {} {}",
            inodes.len(),
            out.status,
            errors.join("; ")
        ));
    }
    Ok(())
}

/// Inode numbers in use: the root directory and every one from the
/// first non-reserved inode on, per the groups' inode bitmaps.
fn in_use(image: &Path) -> std::io::Result<Vec<u64>> {
    let file = File::open(image)?;
    let read = |at: u64, len: usize| -> std::io::Result<Vec<u8>> {
        let mut b = vec![0u8; len];
        file.read_exact_at(&mut b, at)?;
        Ok(b)
    };
    let sb = read(SUPER_AT, 1024)?;
    let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]);
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let bad = |what: &str| std::io::Error::other(format!("not the ext4 mkfs made: {what}"));
    if u16_at(&sb, 0x38) != EXT4_MAGIC {
        return Err(bad("no ext4 magic"));
    }
    let block = 1024u64 << u32_at(&sb, 0x18).min(6);
    let (count, per_group) = (u64::from(u32_at(&sb, 0)), u64::from(u32_at(&sb, 0x28)));
    let first_ino = u64::from(u32_at(&sb, 0x54));
    let desc = match u32_at(&sb, 0x60) & INCOMPAT_64BIT {
        0 => 32,
        _ => u64::from(u16_at(&sb, 0xFE)),
    };
    if per_group == 0 || desc < 32 {
        return Err(bad("no inodes per group"));
    }
    let groups = count.div_ceil(per_group);
    let gdt = (u64::from(u32_at(&sb, 0x14)) + 1) * block;
    let table = read(gdt, (groups * desc) as usize)?;
    let mut used = Vec::new();
    for g in 0..groups {
        let d = &table[(g * desc) as usize..((g + 1) * desc) as usize];
        if u16_at(d, 0x12) & BG_INODE_UNINIT != 0 {
            continue;
        }
        let high = if desc >= 64 {
            u64::from(u32_at(d, 0x24))
        } else {
            0
        };
        let bitmap_block = (high << 32) | u64::from(u32_at(d, 0x04));
        let bitmap = read(bitmap_block * block, per_group.div_ceil(8) as usize)?;
        for i in 0..per_group {
            let ino = g * per_group + i + 1;
            if bitmap[(i / 8) as usize] & (1 << (i % 8)) != 0
                && (ino == ROOT_INODE || ino >= first_ino)
            {
                used.push(ino);
            }
        }
    }
    Ok(used)
}

/// Clamps every mtime under `dir` (symlinks themselves, not followed) to
/// at most `epoch`, as the initramfs's entries are, and sets each atime
/// to it: the store's files carry their import's times otherwise.
pub fn clamp_mtimes(dir: &Path, epoch: u32) -> Result<(), String> {
    let err = |p: &Path, e: &dyn std::fmt::Display| format!("{}: {e}", p.display());
    let meta = fs::symlink_metadata(dir).map_err(|e| err(dir, &e))?;
    if meta.is_dir() {
        for entry in fs::read_dir(dir).map_err(|e| err(dir, &e))? {
            let entry = entry.map_err(|e| err(dir, &e))?;
            clamp_mtimes(&entry.path(), epoch)?;
        }
    }
    let t = TimeSpec::new(meta.mtime().clamp(0, i64::from(epoch)), 0);
    utimensat(AT_FDCWD, dir, &t, &t, UtimensatFlags::NoFollowSymlink).map_err(|e| err(dir, &e))
}
