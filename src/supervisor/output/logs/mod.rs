//! Writing container output in Docker's json-file format, one JSON object
//! per line ({"log":"text\n","stream":"stdout","time":"RFC 3339 ns"}), so
//! existing log shippers read berth's logs as they read Docker's: copying
//! from the pipes, rotating at `max_size` (log_rotation.rs), an optional
//! copy to the console, and the checks of a spec's `logging`. With the
//! "memory" driver the same lines go to a RAM ring instead (memory.rs).
//! Reading is follow.rs's business.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use serde::{Deserialize, Serialize};

pub use crate::supervisor::output::follow::read_log;
use crate::supervisor::output::memory::MemoryRing;
use crate::supervisor::output::rotation::{RotationLimits, rotate_files};
use crate::supervisor::spec::logging::LogDriver;
use crate::supervisor::spec::service::LoggingSpec;

/// berth.json's `logging.default_driver` is "memory": read once at the
/// daemon's start (specs are loaded and reloaded without berth.json).
static DEFAULT_DRIVER_MEMORY: AtomicBool = AtomicBool::new(false);

/// The driver of a spec that names none, from now on.
pub fn set_default_driver(driver: LogDriver) {
    DEFAULT_DRIVER_MEMORY.store(driver == LogDriver::Memory, Ordering::Relaxed);
}

/// The driver a container's `logging` means, the default applied.
pub fn effective_driver(logging: &LoggingSpec) -> LogDriver {
    let default = if DEFAULT_DRIVER_MEMORY.load(Ordering::Relaxed) {
        LogDriver::Memory
    } else {
        LogDriver::JsonFile
    };
    logging.driver.unwrap_or(default)
}

/// Docker splits lines longer than its 16 KiB copy buffer; so do we.
pub const MAX_LINE_BYTES: usize = 16 * 1024;
/// One read(2) from a container's pipe.
const PIPE_CHUNK_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub log: String,
    pub stream: Stream,
    pub time: String,
}

impl LogEntry {
    /// When the entry was written; None for a time that does not parse.
    pub fn written_at(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339(&self.time).ok()
    }
}

pub fn rfc3339_now() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

/// What one `copy_pipe` call did.
#[derive(Debug, Default)]
pub struct PipeCopy {
    /// Bytes read from the pipe.
    pub bytes: usize,
    /// EOF, or an error other than EAGAIN: the pipe is done.
    pub closed: bool,
    /// The first failure to write the log (the output is then lost).
    pub log_error: Option<std::io::Error>,
}

/// Appends one container's output to its log file, line by line, rotating
/// the file at `max_size`.
pub struct LogWriter {
    path: PathBuf,
    file: Option<File>,
    /// Bytes in the live file, `batch` included (read from the file when
    /// it is opened).
    size: u64,
    /// Whole JSON lines for the live file, written at the end of each call.
    batch: Vec<u8>,
    limits: RotationLimits,
    partial: [Vec<u8>; 2],
    console: Option<ConsoleCopy>,
    /// The "memory" driver's ring (then no file is ever opened): Some
    /// with the ring's size, which may wait for its memfd.
    memory: Option<(u64, Option<MemoryRing>)>,
    /// Bytes written to the log's files since the daemon started.
    disk_bytes: u64,
}

impl LogWriter {
    /// A writer with the default limits (see `with_limits`).
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            file: None,
            size: 0,
            batch: Vec::new(),
            limits: RotationLimits::default(),
            partial: [Vec::new(), Vec::new()],
            console: None,
            memory: None,
            disk_bytes: 0,
        }
    }

    pub fn with_limits(mut self, logging: &LoggingSpec) -> Self {
        self.set_limits(logging);
        self
    }

    /// Follows a changed spec from the next line on.
    /// Follows a changed spec from the next line on. A new driver or ring
    /// size starts an empty ring (what a file log had stays on disk).
    pub fn set_limits(&mut self, logging: &LoggingSpec) {
        self.limits = RotationLimits::from_logging(logging);
        match effective_driver(logging) {
            LogDriver::JsonFile => self.memory = None,
            LogDriver::Memory => {
                let size = logging.max_size.0;
                if self.memory.as_ref().is_none_or(|(s, _)| *s != size) {
                    self.file = None;
                    // Made now so that `logs -f` can follow it before the
                    // first line; a failure is retried at the first line.
                    self.memory = Some((size, MemoryRing::new(size).ok()));
                }
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ring, with the "memory" driver (None: read the files).
    pub fn memory(&self) -> Option<&MemoryRing> {
        self.memory.as_ref()?.1.as_ref()
    }

    pub fn is_memory(&self) -> bool {
        self.memory.is_some()
    }

    /// Bytes written to the log's files since the daemon started (0 with
    /// the "memory" driver).
    pub fn disk_bytes(&self) -> u64 {
        self.disk_bytes
    }

    /// Also copies every line, as "NAME: line", to `console` (PID 1 mode's
    /// `console_logs`); None stops it. The descriptor is made
    /// non-blocking (a flag its duplicates share): a slow serial console
    /// loses lines, counted and reported, rather than stall the supervisor.
    pub fn set_console(&mut self, name: &str, console: Option<File>) {
        self.console = console.map(|file| {
            let _ = set_nonblocking(file.as_fd());
            ConsoleCopy {
                prefix: format!("{name}: "),
                file,
                dropped: 0,
            }
        });
    }

    /// Reads what is waiting in `pipe`, at most `limit` bytes, into the
    /// log. Never blocks (the pipe is non-blocking).
    pub fn copy_pipe(&mut self, pipe: BorrowedFd<'_>, stream: Stream, limit: usize) -> PipeCopy {
        let mut buf = [0u8; PIPE_CHUNK_BYTES];
        let mut out = PipeCopy::default();
        while out.bytes < limit {
            let want = (limit - out.bytes).min(buf.len());
            match nix::unistd::read(pipe, &mut buf[..want]) {
                Ok(0) => {
                    out.closed = true;
                    break;
                }
                Ok(n) => {
                    out.bytes += n;
                    if let Err(e) = self.write_output(stream, &buf[..n]) {
                        out.log_error.get_or_insert(e);
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                Err(_) => {
                    out.closed = true;
                    break;
                }
            }
        }
        out
    }

    /// Takes raw bytes read from a stream; complete lines are written now
    /// (in one write(2), stamped with one time: they were read together),
    /// the rest waits for its newline (or the 16 KiB split).
    pub fn write_output(&mut self, stream: Stream, bytes: &[u8]) -> std::io::Result<()> {
        let time = rfc3339_now();
        let idx = stream as usize;
        let mut result = Ok(());
        let mut rest = bytes;
        while !rest.is_empty() {
            let buf = &mut self.partial[idx];
            let room = MAX_LINE_BYTES - buf.len();
            let take = rest
                .iter()
                .take(room)
                .position(|b| *b == b'\n')
                .map_or(rest.len().min(room), |i| i + 1);
            buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if buf.ends_with(b"\n") || buf.len() >= MAX_LINE_BYTES {
                let line = std::mem::take(buf);
                result = result.and(self.queue_entry(stream, &line, &time));
            }
        }
        result.and(self.write_batch())
    }

    /// Writes out a partial line left when a stream closes.
    pub fn flush_partial(&mut self, stream: Stream) -> std::io::Result<()> {
        let line = std::mem::take(&mut self.partial[stream as usize]);
        if line.is_empty() {
            return Ok(());
        }
        let queued = self.queue_entry(stream, &line, &rfc3339_now());
        queued.and(self.write_batch())
    }

    /// A line from berth itself about this container (e.g. an exec error).
    pub fn write_notice(&mut self, text: &str) -> std::io::Result<()> {
        let line = format!("berth: {text}\n");
        let queued = self.queue_entry(Stream::Stderr, line.as_bytes(), &rfc3339_now());
        queued.and(self.write_batch())
    }

    fn queue_entry(&mut self, stream: Stream, line: &[u8], time: &str) -> std::io::Result<()> {
        let entry = LogEntry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream,
            time: time.to_string(),
        };
        let mut json = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        json.push(b'\n');
        if let Some(console) = &mut self.console {
            console.copy_line(&entry.log);
        }
        self.queue_line(&json)
    }

    /// Adds one whole JSON line to the batch for the live file, rotating
    /// first when it would not fit: a line is never split across files.
    fn queue_line(&mut self, json: &[u8]) -> std::io::Result<()> {
        if let Some((size, ring)) = &mut self.memory {
            if ring.is_none() {
                *ring = Some(MemoryRing::new(*size)?);
            }
            self.batch.extend_from_slice(json);
            return Ok(());
        }
        let mut rotate_error = None;
        if self.file.is_none() {
            self.open()?;
        }
        if self.limits.must_rotate(self.size, json.len() as u64) {
            self.write_batch()?;
            match rotate_files(&self.path, self.limits.max_files) {
                Ok(()) => {
                    self.file = None;
                    self.open()?;
                }
                // Keep appending to the current file and try again after
                // another max_size, rather than lose output or fail on
                // every line.
                Err(e) => {
                    self.size = 0;
                    rotate_error = Some(std::io::Error::new(
                        e.kind(),
                        format!("rotate {}: {e}", self.path.display()),
                    ));
                }
            }
        }
        self.batch.extend_from_slice(json);
        self.size += json.len() as u64;
        rotate_error.map_or(Ok(()), Err)
    }

    /// Appends the queued lines to the live file (a failed write loses
    /// them, as a failed write of each would).
    fn write_batch(&mut self) -> std::io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let result = match (self.file.as_mut(), &mut self.memory) {
            (_, Some((_, Some(ring)))) => ring.append(&self.batch),
            (_, Some((_, None))) => Ok(()),
            (Some(f), None) => {
                let written = f.write_all(&self.batch);
                self.disk_bytes += self.batch.len() as u64;
                crate::supervisor::writes::count(
                    crate::supervisor::writes::WriteKind::Logs,
                    self.batch.len() as u64,
                );
                written
            }
            (None, None) => Ok(()),
        };
        self.batch.clear();
        result
    }

    fn open(&mut self) -> std::io::Result<()> {
        // A container that failed before its directories were made still
        // gets its berth: notice logged.
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(&self.path)?;
        self.size = f.metadata()?.len();
        self.file = Some(f);
        Ok(())
    }
}

/// The console copy of a container's lines.
struct ConsoleCopy {
    prefix: String,
    file: File,
    /// Lines lost to a full console since the last report.
    dropped: u64,
}

impl ConsoleCopy {
    fn copy_line(&mut self, text: &str) {
        if self.dropped > 0 {
            let note = format!("{}berth: {} lines not shown\n", self.prefix, self.dropped);
            if !self.write_whole(note.as_bytes()) {
                self.dropped += 1;
                return;
            }
            self.dropped = 0;
        }
        let mut line = String::with_capacity(self.prefix.len() + text.len() + 1);
        line.push_str(&self.prefix);
        line.push_str(text);
        if !line.ends_with('\n') {
            line.push('\n');
        }
        if !self.write_whole(line.as_bytes()) {
            self.dropped += 1;
        }
    }

    /// One non-blocking attempt; false when (part of) it was not written.
    fn write_whole(&mut self, bytes: &[u8]) -> bool {
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.file.write(rest) {
                Ok(0) => return false,
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        true
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> nix::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(drop)
}

#[cfg(test)]
mod tests;
