//! A hardware watchdog (/dev/watchdog, watchdog(4) API): once opened it
//! resets the machine unless it is written to within its timeout. berth
//! pets it from its loop, so a loop that stops turning lets the device
//! reset; on a clean shutdown the "magic close" ('V', then close) disarms
//! it. Works with the softdog module as with real hardware.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;

use super::error::SysError;

// linux/watchdog.h: _IOR('W', 5, int) and _IOWR('W', 6, int).
const WDIOC_KEEPALIVE: libc::c_ulong = 0x8004_5705;
const WDIOC_SETTIMEOUT: libc::c_ulong = 0xc004_5706;

/// What `info` shows of an armed watchdog.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WatchdogInfo {
    pub device: PathBuf,
    pub timeout_secs: u64,
}

#[derive(Debug)]
pub struct Watchdog {
    file: File,
    path: PathBuf,
    /// What the driver accepted (it may round the request).
    timeout: Duration,
}

impl Watchdog {
    /// Opens (and so arms) the watchdog and asks for `timeout`.
    pub fn open(path: &Path, timeout: Duration) -> Result<Watchdog, SysError> {
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| SysError::io("open watchdog", path, &e))?;
        let mut secs = libc::c_int::try_from(timeout.as_secs()).unwrap_or(libc::c_int::MAX);
        // SAFETY: WDIOC_SETTIMEOUT reads and writes one int we own.
        if unsafe { libc::ioctl(file.as_raw_fd(), WDIOC_SETTIMEOUT as _, &mut secs) } != 0 {
            return Err(SysError::at("set watchdog timeout", path, Errno::last()));
        }
        let timeout = Duration::from_secs(u64::try_from(secs).unwrap_or(0).max(1));
        let dog = Watchdog {
            file,
            path: path.to_path_buf(),
            timeout,
        };
        dog.keepalive()?;
        Ok(dog)
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Restarts the countdown.
    pub fn keepalive(&self) -> Result<(), SysError> {
        let mut unused: libc::c_int = 0;
        // SAFETY: WDIOC_KEEPALIVE takes a pointer to an int it ignores.
        if unsafe { libc::ioctl(self.file.as_raw_fd(), WDIOC_KEEPALIVE as _, &mut unused) } != 0 {
            return Err(SysError::at("pet watchdog", &self.path, Errno::last()));
        }
        Ok(())
    }

    /// Disarms it (unless the driver was built "nowayout"): 'V', then
    /// close.
    pub fn magic_close(mut self) -> Result<(), SysError> {
        self.file
            .write_all(b"V")
            .map_err(|e| SysError::io("disarm watchdog", &self.path, &e))
    }
}
