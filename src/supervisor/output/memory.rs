//! The "memory" log driver: a container's JSON lines in a ring of
//! `max_size` bytes inside a memfd, so the log costs no disk write at all
//! and lives outside the daemon's heap (the pages belong to the memfd, not
//! to the daemon's allocator; they are not mapped, so not in its RSS
//! either). Lost when the daemon or the machine stops, as documented.
//!
//! Layout: 8 bytes of header (bytes ever written, little-endian), then the
//! ring. A reader holds a duplicate of the descriptor and its own position
//! in the stream of bytes ever written: the header tells it how far the
//! writer got and what was overwritten since. Reader and writer run on the
//! same thread (the supervisor's loop), so a read never sees half a write.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::time::SystemTime;

use nix::sys::memfd::{MFdFlags, memfd_create};

use crate::supervisor::output::logs::LogEntry;
use crate::supervisor::spec::bounds::MEMORY_LOG_BYTES;

const HEADER_BYTES: u64 = 8;
const READ_CHUNK_BYTES: u64 = 64 * 1024;

/// The writer's side.
pub struct MemoryRing {
    file: File,
    capacity: u64,
    total: u64,
}

impl MemoryRing {
    /// An empty ring of `capacity` bytes (clamped to the bounds validation
    /// enforces for a spec that names the driver: a berth.json default can
    /// meet a larger `max_size`).
    pub fn new(capacity: u64) -> io::Result<MemoryRing> {
        let capacity = capacity.clamp(MEMORY_LOG_BYTES.min, MEMORY_LOG_BYTES.max);
        let fd = memfd_create("berth-log", MFdFlags::MFD_CLOEXEC).map_err(io::Error::from)?;
        let file = File::from(fd);
        // Sparse: pages are taken as the log fills.
        file.set_len(HEADER_BYTES + capacity)?;
        Ok(MemoryRing {
            file,
            capacity,
            total: 0,
        })
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes appended since the ring was made.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Appends `bytes`; only the newest `capacity` bytes are kept.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let len = bytes.len() as u64;
        let keep = &bytes[bytes.len() - len.min(self.capacity) as usize..];
        let start = self.total + (len - keep.len() as u64);
        let offset = start % self.capacity;
        let first = keep.len().min((self.capacity - offset) as usize);
        self.file
            .write_all_at(&keep[..first], HEADER_BYTES + offset)?;
        self.file.write_all_at(&keep[first..], HEADER_BYTES)?;
        self.total += len;
        self.file.write_all_at(&self.total.to_le_bytes(), 0)
    }

    /// A reader from the oldest line still held.
    pub fn cursor_at_start(&self) -> io::Result<MemoryCursor> {
        let oldest = self.total.saturating_sub(self.capacity);
        Ok(MemoryCursor {
            file: self.file.try_clone()?,
            capacity: self.capacity,
            pos: oldest,
            partial: Vec::new(),
            resync: oldest > 0,
        })
    }
}

/// A reader of a ring: `logs` reads it from the start, `logs -f` then
/// follows it from where that read ended.
pub struct MemoryCursor {
    file: File,
    capacity: u64,
    /// The next byte to read, in bytes ever written.
    pos: u64,
    /// The start of a line whose newline has not been read yet.
    partial: Vec<u8>,
    /// The bytes at `pos` may be the middle of an overwritten line: skip
    /// to the next newline.
    resync: bool,
}

impl MemoryCursor {
    fn written(&self) -> io::Result<u64> {
        let mut header = [0u8; HEADER_BYTES as usize];
        self.file.read_exact_at(&mut header, 0)?;
        Ok(u64::from_le_bytes(header))
    }

    /// Entries written since the last call, reading at most about
    /// `max_bytes`; true when the cursor has caught up with the writer.
    /// Lines overwritten before they were read are skipped.
    pub fn read_new(&mut self, max_bytes: usize) -> io::Result<(Vec<LogEntry>, bool)> {
        let total = self.written()?;
        let oldest = total.saturating_sub(self.capacity);
        if self.pos < oldest {
            self.pos = oldest;
            self.partial.clear();
            self.resync = true;
        }
        let mut budget = max_bytes as u64;
        let mut entries = Vec::new();
        let mut buf = vec![0u8; READ_CHUNK_BYTES.min(self.capacity) as usize];
        while self.pos < total && budget > 0 {
            let offset = self.pos % self.capacity;
            let n = (total - self.pos)
                .min(budget)
                .min(buf.len() as u64)
                .min(self.capacity - offset) as usize;
            self.file
                .read_exact_at(&mut buf[..n], HEADER_BYTES + offset)?;
            self.pos += n as u64;
            budget -= n as u64;
            self.take_bytes(&buf[..n], &mut entries);
        }
        Ok((entries, self.pos == total))
    }

    fn take_bytes(&mut self, mut bytes: &[u8], entries: &mut Vec<LogEntry>) {
        if self.resync {
            match bytes.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    bytes = &bytes[i + 1..];
                    self.resync = false;
                }
                None => return,
            }
        }
        self.partial.extend_from_slice(bytes);
        let Some(last_nl) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        for line in self.partial[..last_nl].split(|b| *b == b'\n') {
            if let Ok(e) = serde_json::from_slice::<LogEntry>(line) {
                entries.push(e);
            }
        }
        self.partial.drain(..=last_nl);
    }
}

/// Everything a ring holds, after `since`, the last `tail`; and a cursor
/// at its end for a follower.
pub fn read_ring(
    ring: &MemoryRing,
    since: Option<SystemTime>,
    tail: Option<usize>,
) -> io::Result<(Vec<LogEntry>, MemoryCursor)> {
    let mut cursor = ring.cursor_at_start()?;
    let (all, _) = cursor.read_new(usize::MAX)?;
    let mut kept = VecDeque::new();
    for e in all {
        if since.is_some_and(|s| e.written_at().is_none_or(|t| t < s)) {
            continue;
        }
        kept.push_back(e);
        if tail.is_some_and(|t| kept.len() > t) {
            kept.pop_front();
        }
    }
    Ok((kept.into(), cursor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::output::logs::{LogWriter, Stream};

    fn memory_logging(max_size: u64) -> crate::supervisor::spec::service::LoggingSpec {
        serde_json::from_value(serde_json::json!({"driver": "memory", "max_size": max_size}))
            .unwrap()
    }

    fn logs(entries: Vec<LogEntry>) -> Vec<String> {
        entries.into_iter().map(|e| e.log).collect()
    }

    #[test]
    fn the_ring_keeps_the_newest_whole_lines_within_max_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::new(dir.path().join("json.log")).with_limits(&memory_logging(4096));
        let lines: Vec<String> = (0..500).map(|i| format!("line {i:04}\n")).collect();
        for l in &lines {
            w.write_output(Stream::Stdout, l.as_bytes()).unwrap();
        }
        // Nothing on disk.
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
        let ring = w.memory().unwrap();
        let (got, _) = read_ring(ring, None, None).unwrap();
        let got = logs(got);
        let json_bytes: usize = got.len() * 80;
        assert!(got.len() > 20 && json_bytes < 2 * 4096, "{}", got.len());
        assert_eq!(got[..], lines[lines.len() - got.len()..]);
        let (tail, _) = read_ring(ring, None, Some(3)).unwrap();
        assert_eq!(logs(tail), lines[497..]);
        assert_eq!(w.disk_bytes(), 0);
    }

    #[test]
    fn a_follower_sees_new_lines_and_skips_what_was_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = LogWriter::new(dir.path().join("json.log")).with_limits(&memory_logging(4096));
        w.write_output(Stream::Stdout, b"old\n").unwrap();
        let (got, mut cursor) = read_ring(w.memory().unwrap(), None, None).unwrap();
        assert_eq!(logs(got), ["old\n"]);
        assert_eq!(cursor.read_new(1 << 20).unwrap(), (vec![], true));
        w.write_output(Stream::Stderr, b"new\n").unwrap();
        assert_eq!(logs(cursor.read_new(1 << 20).unwrap().0), ["new\n"]);
        // Far more than the ring holds between two reads: the cursor
        // jumps to the oldest whole line left, in order, to the last.
        let written: Vec<String> = (0..1000).map(|i| format!("{i:05}\n")).collect();
        for l in &written {
            w.write_output(Stream::Stdout, l.as_bytes()).unwrap();
        }
        let (got, done) = cursor.read_new(1 << 20).unwrap();
        let got = logs(got);
        assert!(done && !got.is_empty() && got.len() < 100);
        assert_eq!(got[..], written[written.len() - got.len()..]);
    }

    #[test]
    fn a_line_longer_than_the_ring_is_lost_not_torn() {
        let mut ring = MemoryRing::new(4096).unwrap();
        let first = b"{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"x\"}\n";
        ring.append(first).unwrap();
        let long = vec![b'z'; 10_000];
        ring.append(&long).unwrap();
        ring.append(b"\n").unwrap();
        let (got, _) = read_ring(&ring, None, None).unwrap();
        assert!(got.is_empty());
        assert_eq!(ring.total(), first.len() as u64 + 10_001);
    }

    #[test]
    fn the_size_is_clamped() {
        assert_eq!(MemoryRing::new(1).unwrap().capacity(), 4096);
        assert_eq!(MemoryRing::new(1 << 40).unwrap().capacity(), 64 << 20);
    }
}
