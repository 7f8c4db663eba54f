//! The event journal: what happened (pulls, container lifecycle, reloads),
//! appended as JSON lines to size-bounded segment files in one directory,
//! so that it survives a crash of the daemon and can be replayed by seq
//! (`events --since`, the webhook notifier). The writer is the daemon's
//! alone; readers need only the files (`read_since`). docs/events.md.
//!
//! Crash safety: each event is one `write(2)` of a whole line, so a crash
//! leaves at most one torn line at the end of the live segment, which
//! `open` cuts off. `sync` makes what was appended durable; the daemon
//! calls it once per loop turn rather than once per event.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

mod read;
mod recover;
mod segments;
#[cfg(test)]
mod tests;

pub use read::{Batch, read_range, read_since};
use recover::{recover_live, scan_segment};
use segments::{create_segment, list_segments, open_append, segment_name};

/// The largest event, as a JSON line with its newline. An event is a
/// notice, not a payload: bounding it bounds every reader's memory.
pub const MAX_EVENT_BYTES: usize = 64 << 10;

/// The kinds berth emits, where journal users have always found them.
pub use super::kinds;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// 1, 2, 3, … in append order, never reused while the directory lives
    /// (except after a power loss: docs/events.md).
    pub seq: u64,
    /// RFC 3339, UTC, nanoseconds.
    pub time: String,
    /// e.g. "container.started" (see `kinds`).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default)]
    pub data: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalLimits {
    /// A segment is closed once the next event would take it past this.
    pub segment_bytes: u64,
    /// Segments kept, the live one included; the oldest go first.
    pub max_segments: u32,
}

impl Default for JournalLimits {
    /// 8 × 256 KiB: some thousands of events, small enough for flash.
    fn default() -> Self {
        JournalLimits {
            segment_bytes: 256 << 10,
            max_segments: 8,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal: {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("journal: event {kind} is {bytes} bytes, more than the {max} allowed")]
    TooLarge {
        kind: String,
        bytes: usize,
        max: usize,
    },
    #[error("journal: encode event {kind}: {source}")]
    Encode {
        kind: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("journal: invalid limits: {0}")]
    Limits(&'static str),
    #[error("journal: no seq left after {0}")]
    SeqExhausted(u64),
}

impl JournalError {
    fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> JournalError {
        let path = path.into();
        move |source| JournalError::Io { op, path, source }
    }
}

/// A sync of the journal, done in another process (see `take_sync`).
#[derive(Debug)]
pub struct SyncWork {
    /// The live segment, and segments left since the last sync with
    /// unsynced events (duplicate descriptors the helper inherits).
    pub files: Vec<File>,
    pub dir: Option<PathBuf>,
}

impl SyncWork {
    pub fn run(&self) -> Result<(), String> {
        for file in &self.files {
            file.sync_data().map_err(|e| format!("fdatasync: {e}"))?;
        }
        if let Some(dir) = &self.dir {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| format!("fsync {}: {e}", dir.display()))?;
        }
        Ok(())
    }
}

/// The writer. One per directory: the daemon's.
pub struct Journal {
    dir: PathBuf,
    limits: JournalLimits,
    /// First seqs of the segments on disk, oldest first; the last is live.
    segments: VecDeque<u64>,
    file: File,
    /// Bytes in the live segment.
    size: u64,
    last_seq: u64,
    /// Appended since the last fdatasync.
    dirty: bool,
    /// Segments rotated out with unsynced events, for the next sync.
    retired: Vec<File>,
    /// A segment was created since the directory was last fsynced.
    dir_dirty: bool,
    /// A failed write may have left part of a line that could not be taken
    /// back: the next append starts a new segment rather than glue onto it.
    poisoned: bool,
    problems: Vec<String>,
}

impl Journal {
    /// Opens (creating) the journal in `dir`. Recovers from a crash: a torn
    /// last line is cut off and seq continues after the last complete
    /// event. Corrupt lines are left in place, skipped by readers, and
    /// reported through `take_problems`; they never make `open` fail.
    pub fn open(dir: &Path, limits: JournalLimits) -> Result<Journal, JournalError> {
        if limits.segment_bytes == 0 {
            return Err(JournalError::Limits("segment_bytes must be above 0"));
        }
        if limits.max_segments == 0 {
            return Err(JournalError::Limits("max_segments must be at least 1"));
        }
        fs::create_dir_all(dir).map_err(JournalError::io("create", dir))?;
        let mut segments = list_segments(dir)?;
        let mut problems = Vec::new();
        let Some(live) = segments.pop() else {
            return Journal::create_fresh(dir, limits);
        };
        for (i, seg) in segments.iter().enumerate() {
            let next = segments.get(i + 1).map_or(live.first_seq, |s| s.first_seq);
            let scan = scan_segment(seg, Some(next))?;
            problems.extend(scan.problems.into_iter().map(|(_, p)| p));
        }
        let (size, last_seq) = recover_live(&live, &mut problems)?;
        let file = open_append(&live.path)?;
        let mut journal = Journal {
            dir: dir.to_path_buf(),
            limits,
            segments: segments
                .iter()
                .chain([&live])
                .map(|s| s.first_seq)
                .collect(),
            file,
            size,
            last_seq,
            dirty: false,
            retired: Vec::new(),
            dir_dirty: false,
            poisoned: false,
            problems,
        };
        // The bound may have been lowered since the last run.
        journal.prune();
        Ok(journal)
    }

    fn create_fresh(dir: &Path, limits: JournalLimits) -> Result<Journal, JournalError> {
        let path = dir.join(segment_name(1));
        let file = create_segment(&path)?;
        Ok(Journal {
            dir: dir.to_path_buf(),
            limits,
            segments: VecDeque::from([1]),
            file,
            size: 0,
            last_seq: 0,
            dirty: false,
            retired: Vec::new(),
            dir_dirty: true,
            poisoned: false,
            problems: Vec::new(),
        })
    }

    /// Appends one event as one JSON line and returns it. An event over
    /// `MAX_EVENT_BYTES` is refused (nothing written, no seq used).
    pub fn append(
        &mut self,
        kind: &str,
        container: Option<&str>,
        data: Value,
    ) -> Result<Event, JournalError> {
        let seq = self
            .last_seq
            .checked_add(1)
            .ok_or(JournalError::SeqExhausted(self.last_seq))?;
        let event = Event {
            seq,
            time: crate::supervisor::output::logs::rfc3339_now(),
            kind: kind.to_string(),
            container: container.map(str::to_string),
            data,
        };
        let mut line = serde_json::to_vec(&event).map_err(|source| JournalError::Encode {
            kind: kind.to_string(),
            source,
        })?;
        line.push(b'\n');
        if line.len() > MAX_EVENT_BYTES {
            return Err(JournalError::TooLarge {
                kind: kind.to_string(),
                bytes: line.len(),
                max: MAX_EVENT_BYTES,
            });
        }
        let full = self.size > 0 && self.size + line.len() as u64 > self.limits.segment_bytes;
        if full || self.poisoned {
            self.rotate(seq)?;
        }
        self.write_line(&line)?;
        self.last_seq = seq;
        Ok(event)
    }

    fn write_line(&mut self, line: &[u8]) -> Result<(), JournalError> {
        if let Err(e) = self.file.write_all(line) {
            // Part of the line may be on disk (ENOSPC midway): take it back
            // so the next line does not glue onto it.
            if self.file.set_len(self.size).is_err() {
                self.poisoned = true;
            }
            return Err(JournalError::io("append to", self.live_path())(e));
        }
        self.size += line.len() as u64;
        self.dirty = true;
        crate::supervisor::writes::count(
            crate::supervisor::writes::WriteKind::Journal,
            line.len() as u64,
        );
        Ok(())
    }

    /// Closes the live segment and starts one whose first event is `seq`.
    fn rotate(&mut self, seq: u64) -> Result<(), JournalError> {
        // The next sync must still cover this file's unsynced events: keep
        // a descriptor for it (the loop never waits on the disk).
        if self.dirty {
            if let Ok(f) = self.file.try_clone() {
                self.retired.push(f);
            }
            self.dirty = false;
        }
        self.file = create_segment(&self.dir.join(segment_name(seq)))?;
        self.size = 0;
        self.poisoned = false;
        self.dir_dirty = true;
        if self.segments.back() != Some(&seq) {
            self.segments.push_back(seq);
        }
        self.prune();
        Ok(())
    }

    /// Drops the oldest segments beyond the bound.
    fn prune(&mut self) {
        while self.segments.len() > self.limits.max_segments as usize {
            let Some(first) = self.segments.pop_front() else {
                break;
            };
            let path = self.dir.join(segment_name(first));
            if let Err(e) = fs::remove_file(&path)
                && e.kind() != io::ErrorKind::NotFound
            {
                self.problems
                    .push(format!("remove {}: {e}", path.display()));
            }
        }
    }

    /// Makes every event appended so far durable: fdatasync of the live
    /// segment, and an fsync of the directory when a segment was created.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        self.sync_live()?;
        if self.dir_dirty {
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(JournalError::io("fsync", &self.dir))?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    /// Events were appended (or a segment made) since the last sync.
    pub fn needs_sync(&self) -> bool {
        self.dirty || self.dir_dirty || !self.retired.is_empty()
    }

    /// What a sync must cover now, for a helper process to do it: the live
    /// segment's descriptor (the helper inherits it) and the directory if
    /// a segment was created. Clears the flags; the helper reports failure.
    pub fn take_sync(&mut self) -> Option<SyncWork> {
        if !self.dirty && !self.dir_dirty && self.retired.is_empty() {
            return None;
        }
        let mut files = std::mem::take(&mut self.retired);
        if self.dirty {
            files.extend(self.file.try_clone().ok());
        }
        let work = SyncWork {
            files,
            dir: self.dir_dirty.then(|| self.dir.clone()),
        };
        self.dirty = false;
        self.dir_dirty = false;
        Some(work)
    }

    /// fdatasync of the live segment, if anything was appended since.
    fn sync_live(&mut self) -> Result<(), JournalError> {
        for f in std::mem::take(&mut self.retired) {
            let path = self.dir.clone();
            f.sync_data().map_err(JournalError::io("fdatasync", path))?;
        }
        if self.dirty {
            let path = self.live_path();
            self.file
                .sync_data()
                .map_err(JournalError::io("fdatasync", path))?;
            self.dirty = false;
        }
        Ok(())
    }

    /// The oldest seq still held; last_seq + 1 while the journal is empty.
    pub fn first_seq(&self) -> u64 {
        let next = self.last_seq.saturating_add(1);
        self.segments.front().map_or(next, |&f| f.min(next))
    }

    /// The seq of the last event appended (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What recovery found at `open` and what went wrong dropping old
    /// segments since: for the daemon to log, once.
    pub fn take_problems(&mut self) -> Vec<String> {
        std::mem::take(&mut self.problems)
    }

    fn live_path(&self) -> PathBuf {
        let first = self.segments.back().copied().unwrap_or(1);
        self.dir.join(segment_name(first))
    }
}
