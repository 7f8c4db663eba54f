//! The daemon a test started: dropping it kills it and removes its
//! cgroups, even when the test fails.

use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::remove_cgroup_tree;

/// The daemon process; dropping it kills it and removes its cgroups.
pub struct Daemon {
    pub(super) child: Option<Child>,
    pub(super) cgroup_parent: String,
}

impl Daemon {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    /// Sends `sig` and waits for the exit; returns (status, stderr).
    pub fn signal_and_wait(
        &mut self,
        sig: nix::sys::signal::Signal,
        limit: Duration,
    ) -> Result<(std::process::ExitStatus, String)> {
        let mut child = self.child.take().context("daemon already gone")?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig)?;
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait()? {
                let out = child.wait_with_output()?;
                return Ok((status, String::from_utf8_lossy(&out.stderr).into_owned()));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("daemon did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        remove_cgroup_tree(&self.cgroup_parent);
    }
}
