//! An ext4 filesystem image made from a directory with the host's
//! `mkfs.ext4 -d` (e2fsprogs; nothing is mounted), sized to what the
//! directory holds, reproducibly: the UUID and directory hash seed are
//! given, the time is E2FSPROGS_FAKE_TIME's, directories are read in
//! byte order (LC_ALL=C), and the times mkfs copies from the staging
//! files or stamps itself are then pinned (ext4_times.rs).

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use super::ext4_times;

pub const BLOCK: u64 = 4096;
const MIB: u64 = 1 << 20;
const INODE_BYTES: u64 = 256;
/// Each retry after "no space" makes the filesystem this much larger (in
/// percent), at most this many times.
const GROW_PERCENT: u64 = 150;
const MAX_TRIES: usize = 6;

/// One filesystem to make.
pub struct Spec<'a> {
    pub label: &'a str,
    pub source: &'a Path,
    /// Text form, as mkfs takes it.
    pub uuid: String,
    pub hash_seed: String,
    /// A journal of this many MiB (the data partition); none for a
    /// read-only root, which never needs one.
    pub journal_mib: Option<u64>,
    /// The smallest size to make it (the data partition's room to start).
    pub min_bytes: u64,
    pub epoch: u32,
}

/// Makes `spec`'s filesystem in the file `out`; returns its size in
/// bytes (a multiple of 1 MiB).
pub fn make(spec: &Spec<'_>, out: &Path) -> Result<u64, String> {
    let need = Need::of(spec.source)?;
    let mut size = round_mib(spec.min_bytes.max(need.estimate(spec.journal_mib)));
    let mut tries = 0;
    loop {
        tries += 1;
        match run_mkfs(spec, &need, out, size) {
            Ok(()) => break,
            Err(e) if tries < MAX_TRIES && is_out_of_space(&e) => {
                size = round_mib(size * GROW_PERCENT / 100);
            }
            Err(e) => return Err(format!("mkfs.ext4 {}: {e}", spec.label)),
        }
    }
    ext4_times::pin(out, spec.epoch).map_err(|e| format!("{}: {e}", spec.label))?;
    Ok(size)
}

fn is_out_of_space(stderr: &str) -> bool {
    ["Could not allocate", "No space left", "Not enough space"]
        .iter()
        .any(|s| stderr.contains(s))
}

fn round_mib(bytes: u64) -> u64 {
    bytes.div_ceil(MIB).max(1) * MIB
}

/// What a directory needs of a filesystem.
#[derive(Debug, Default, Clone, Copy)]
struct Need {
    /// File data, each file's rounded up to blocks.
    data: u64,
    entries: u64,
    dirs: u64,
}

impl Need {
    fn of(dir: &Path) -> Result<Need, String> {
        let mut need = Need::default();
        need.walk(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(need)
    }

    fn walk(&mut self, dir: &Path) -> std::io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            self.entries += 1;
            if meta.is_dir() {
                self.dirs += 1;
                self.walk(&entry.path())?;
            } else if meta.is_file() || meta.is_symlink() {
                // Allocated blocks (sparse files stay sparse), at least
                // the length for a symlink's target.
                self.data += (meta.blocks() * 512).max(meta.len().div_ceil(BLOCK) * BLOCK);
            }
        }
        Ok(())
    }

    /// The inode count for the root: every entry, the reserved inodes
    /// (the first 11) and some room.
    fn inodes(&self) -> u64 {
        self.entries + 11 + 64
    }

    /// Data, a block per directory, the inode table, metadata, the journal
    /// and a tenth to spare.
    fn estimate(&self, journal_mib: Option<u64>) -> u64 {
        let blocks = self.data + (self.dirs + 1) * 2 * BLOCK;
        let table = self.inodes() * INODE_BYTES;
        (blocks + table) * 11 / 10 + 2 * MIB + journal_mib.unwrap_or(0) * MIB
    }
}

fn run_mkfs(spec: &Spec<'_>, need: &Need, out: &Path, size: u64) -> Result<(), String> {
    let _ = fs::remove_file(out);
    File::create(out)
        .and_then(|f| f.set_len(size))
        .map_err(|e| format!("{}: {e}", out.display()))?;
    let mut cmd = Command::new("mkfs.ext4");
    cmd.args(["-q", "-F", "-t", "ext4", "-m", "0"])
        .args(["-b", &BLOCK.to_string(), "-I", &INODE_BYTES.to_string()])
        .args(["-L", spec.label, "-U", &spec.uuid])
        .arg("-E")
        .arg(format!(
            "hash_seed={},root_owner=0:0,lazy_itable_init=0,lazy_journal_init=0,nodiscard",
            spec.hash_seed
        ));
    match spec.journal_mib {
        Some(mib) => cmd.args(["-J", &format!("size={mib}"), "-i", "16384"]),
        // Read-only: no journal, no room reserved to grow, inodes counted.
        None => cmd
            .args(["-O", "^has_journal,^resize_inode"])
            .args(["-N", &need.inodes().to_string()]),
    };
    cmd.arg("-d")
        .arg(spec.source)
        .arg(out)
        .arg(format!("{}k", size / 1024))
        .env("LC_ALL", "C")
        // 0 would mean "now" to e2fsprogs.
        .env("E2FSPROGS_FAKE_TIME", spec.epoch.max(1).to_string());
    let output = cmd.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            "mkfs.ext4 not found: install e2fsprogs (--format disk makes its partitions with it)"
                .to_string()
        }
        _ => e.to_string(),
    })?;
    if !output.status.success() {
        let _ = fs::remove_file(out);
        return Err(format!(
            "{} ({} MiB): {}",
            output.status,
            size / MIB,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}
