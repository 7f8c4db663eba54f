//! Driving a `berth` client under a real pty, as a person at a terminal
//! would: what its master shows (read by a thread), typing, resizing the
//! window (TIOCSWINSZ + SIGWINCH, as a terminal emulator does).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::process::{Child, Command};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

pub fn winsize(rows: u16, cols: u16) -> nix::pty::Winsize {
    nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// A client whose stdin, stdout and stderr are a pty's slave.
pub struct PtyClient {
    pub child: Child,
    pub master: File,
    /// The test's own copy of the slave: what is queued on the client's
    /// terminal can be counted (FIONREAD).
    pub slave: File,
    rx: Receiver<Vec<u8>>,
    pub text: String,
}

impl PtyClient {
    pub fn spawn(mut cmd: Command, rows: u16, cols: u16) -> Result<PtyClient> {
        let pty = nix::pty::openpty(Some(&winsize(rows, cols)), None)?;
        let slave = File::from(pty.slave);
        let child = cmd
            .stdin(slave.try_clone()?)
            .stdout(slave.try_clone()?)
            .stderr(slave.try_clone()?)
            .spawn()?;
        let master = File::from(pty.master);
        let mut reader = master.try_clone()?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Ok(PtyClient {
            child,
            master,
            slave,
            rx,
            text: String::new(),
        })
    }

    /// Waits until the screen has shown `what`.
    pub fn wait_for(&mut self, what: &str, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        while !self.text.contains(what) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(b) => self.text.push_str(&String::from_utf8_lossy(&b)),
                Err(_) => bail!("never saw {what:?}; screen: {:?}", self.text),
            }
        }
        Ok(())
    }

    pub fn type_text(&mut self, text: &str) -> Result<()> {
        self.master.write_all(text.as_bytes())?;
        Ok(())
    }

    /// The window changes size, and the client is told (SIGWINCH).
    pub fn resize(&mut self, rows: u16, cols: u16) -> Result<()> {
        let ws = winsize(rows, cols);
        // SAFETY: TIOCSWINSZ reads a winsize we own.
        let set = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        anyhow::ensure!(set == 0, "TIOCSWINSZ failed");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGWINCH,
        )?;
        Ok(())
    }

    /// Bytes waiting to be read on the client's terminal.
    pub fn queued_input(&self) -> Result<i32> {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int we own.
        let r = unsafe { libc::ioctl(self.slave.as_raw_fd(), libc::FIONREAD, &mut n) };
        anyhow::ensure!(r == 0, "FIONREAD failed");
        Ok(n)
    }

    /// The client's exit code, waiting at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Result<Option<i32>> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.code());
            }
            if Instant::now() > deadline {
                bail!(
                    "client did not exit within {limit:?}; screen: {:?}",
                    self.text
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PtyClient {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What every interactive session must show (`run -it`, `exec -t`, the
/// same over ssh): the container's own pty (/dev/pts/0; with `listing`,
/// nothing in /dev/pts but ptmx and it, none of the host's), the client's
/// size at the start and after a resize (SIGWINCH), typed input echoed
/// back as output, and the shell's exit code 3 as the client's.
#[allow(dead_code)]
pub fn check_session(t: &mut PtyClient, listing: bool, limit: Duration) -> Result<()> {
    if listing {
        t.type_text("echo T$(tty)T; ls /dev/pts | tr '\\n' ' '; echo; stty size\n")?;
    } else {
        t.type_text("echo T$(tty)T; stty size\n")?;
    }
    t.wait_for("T/dev/pts/0T", limit)?;
    if listing {
        t.wait_for("0 ptmx", limit)?;
    }
    t.wait_for("24 80", limit)?;
    t.resize(40, 100)?;
    std::thread::sleep(Duration::from_millis(300));
    t.type_text("stty size\n")?;
    t.wait_for("40 100", limit)?;
    t.type_text("echo h\"\"i; exit 3\n")?;
    t.wait_for("\nhi", limit)?;
    let code = t.wait_exit(limit)?;
    if code != Some(3) {
        bail!(
            "exit code {code:?}, not 3; the terminal showed:\n{}",
            t.text
        );
    }
    Ok(())
}
