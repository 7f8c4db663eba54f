//! Loop devices for the device tests: a 1 MiB temp file attached with
//! `losetup -f --show`, its first bytes a marker the container can read,
//! detached (`losetup -d`) when dropped, even when the test fails.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::process::Command;

use anyhow::{Context, Result, ensure};

use super::run_ok;

pub struct LoopDev {
    /// "/dev/loopN".
    pub path: String,
    pub marker: String,
    _backing: tempfile::NamedTempFile,
}

impl LoopDev {
    /// A new loop device whose first 8 bytes are `marker` (8 bytes).
    pub fn new(marker: &str) -> Result<LoopDev> {
        ensure!(marker.len() == 8, "markers are 8 bytes");
        let backing = tempfile::Builder::new().prefix("berth-loop-").tempfile()?;
        let mut content = vec![0u8; 1 << 20];
        content[..8].copy_from_slice(marker.as_bytes());
        fs::write(backing.path(), &content)?;
        let mut cmd = Command::new("losetup");
        cmd.args(["-f", "--show"]).arg(backing.path());
        let out = run_ok(cmd).context("losetup (are loop devices available?)")?;
        let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        ensure!(path.starts_with("/dev/loop"), "losetup said {path:?}");
        Ok(LoopDev {
            path,
            marker: marker.to_string(),
            _backing: backing,
        })
    }

    /// (major, minor) of the node.
    pub fn numbers(&self) -> Result<(u64, u64)> {
        let meta = fs::metadata(&self.path)?;
        ensure!(
            meta.file_type().is_block_device(),
            "{} is no block device",
            self.path
        );
        let rdev = meta.rdev();
        Ok((nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev)))
    }

    /// `len` bytes at `offset`, read on the host through the device (the
    /// same page cache the container wrote through).
    pub fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        let mut f = fs::File::open(&self.path)?;
        f.seek(SeekFrom::Start(offset))?;
        let mut buf = vec![0u8; len];
        f.read_exact(&mut buf)?;
        Ok(buf)
    }

    /// The node's name in /dev ("loop7").
    pub fn name(&self) -> &str {
        self.path.trim_start_matches("/dev/")
    }
}

impl Drop for LoopDev {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.path]).output();
    }
}
