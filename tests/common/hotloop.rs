//! Loop devices made and removed through /dev/loop-control, for the
//! hotplug tests: LOOP_CTL_ADD and LOOP_CTL_REMOVE make the kernel send
//! its add and remove uevents (detaching alone keeps the node), at
//! numbers far above what `losetup -f` hands the other tests. Detached
//! and removed when dropped, even when the test fails.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};

use super::{run_ok, wait_for};

static NEXT: AtomicU32 = AtomicU32::new(0);

const LOOP_CTL_ADD: libc::c_ulong = 0x4C80;
const LOOP_CTL_REMOVE: libc::c_ulong = 0x4C81;

/// A loop device number nobody uses: far above `losetup -f`'s, spread by
/// pid so parallel test binaries do not meet.
pub fn free_number() -> u32 {
    let base = 3000 + (std::process::id() % 2000) * 20;
    loop {
        let n = base + NEXT.fetch_add(1, Ordering::SeqCst);
        let taken = Path::new(&format!("/dev/loop{n}")).exists()
            || Path::new(&format!("/sys/block/loop{n}")).exists();
        if !taken {
            return n;
        }
    }
}

fn loop_control(request: libc::c_ulong, n: u32) -> std::io::Result<()> {
    let ctl = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")?;
    // SAFETY: LOOP_CTL_ADD/REMOVE take the device number by value; the
    // descriptor is open for the whole call.
    let rc = unsafe { libc::ioctl(ctl.as_raw_fd(), request, libc::c_ulong::from(n)) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// /dev/loopN made with LOOP_CTL_ADD, optionally backed by a 1 MiB file
/// starting with a marker; detached and removed when dropped.
pub struct HotLoop {
    pub n: u32,
    removed: bool,
    _backing: Option<tempfile::NamedTempFile>,
}

impl HotLoop {
    pub fn add(n: u32) -> Result<HotLoop> {
        loop_control(LOOP_CTL_ADD, n).with_context(|| format!("LOOP_CTL_ADD {n}"))?;
        Ok(HotLoop {
            n,
            removed: false,
            _backing: None,
        })
    }

    pub fn path(&self) -> String {
        format!("/dev/loop{}", self.n)
    }

    /// Attaches a backing file whose first 8 bytes are `marker`.
    pub fn attach(&mut self, marker: &str) -> Result<()> {
        let backing = tempfile::Builder::new().prefix("berth-hot-").tempfile()?;
        let mut content = vec![0u8; 1 << 20];
        content[..marker.len()].copy_from_slice(marker.as_bytes());
        fs::write(backing.path(), &content)?;
        let node = self.path();
        wait_for(Duration::from_secs(5), || Ok(Path::new(&node).exists()))?;
        let mut cmd = std::process::Command::new("losetup");
        cmd.arg(&node).arg(backing.path());
        run_ok(cmd)?;
        self._backing = Some(backing);
        Ok(())
    }

    pub fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = fs::File::open(self.path())?;
        f.seek(SeekFrom::Start(offset))?;
        let mut buf = vec![0u8; len];
        f.read_exact(&mut buf)?;
        Ok(buf)
    }

    /// Detach, then LOOP_CTL_REMOVE (retried while something still holds
    /// the device open).
    pub fn remove(&mut self) -> Result<()> {
        if self._backing.is_some() {
            let _ = std::process::Command::new("losetup")
                .args(["-d", &self.path()])
                .output();
        }
        let n = self.n;
        let mut last = None;
        let removed = wait_for(Duration::from_secs(5), || {
            match loop_control(LOOP_CTL_REMOVE, n) {
                Ok(()) => Ok(true),
                Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(true),
                Err(e) => {
                    last = Some(e);
                    Ok(false)
                }
            }
        });
        self.removed = true;
        removed.with_context(|| format!("LOOP_CTL_REMOVE {n}: {last:?}"))
    }
}

impl Drop for HotLoop {
    fn drop(&mut self) {
        if !self.removed {
            let _ = self.remove();
        }
    }
}
