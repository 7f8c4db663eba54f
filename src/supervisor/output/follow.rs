//! Reading a container's log: all of it across the rotated files
//! (`read_log`, with `since` and `tail`), or as it grows (`LogCursor`, for
//! `logs` with `follow`). A cursor holds the file it reads open and
//! remembers the file's identity, so rotation (a rename) and removal (an
//! unlink) never lose its place; at the end of a file that is no longer the
//! live one, it moves on to the next newer file. Polled once per loop turn
//! by the API layer: no threads, no inotify. Writing is logs.rs's business.

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::supervisor::output::logs::LogEntry;
use crate::supervisor::output::memory::MemoryCursor;
use crate::supervisor::output::rotation::{FileId, log_files};

const READ_CHUNK_BYTES: usize = 64 * 1024;

/// The last `tail` entries (all with `None`) of a log, across its rotated
/// files, oldest first. Lines that do not parse (a torn write after a
/// crash) are skipped.
pub fn read_log(path: &Path, tail: Option<usize>) -> std::io::Result<Vec<LogEntry>> {
    read_log_since(path, None, tail)
}

/// Like `read_log`, keeping only entries written at or after `since`
/// (`tail` counts what is left).
pub fn read_log_since(
    path: &Path,
    since: Option<SystemTime>,
    tail: Option<usize>,
) -> std::io::Result<Vec<LogEntry>> {
    let mut entries = std::collections::VecDeque::new();
    for (file_path, _) in log_files(path)? {
        let file = match File::open(&file_path) {
            Ok(f) => f,
            // Rotated away since it was listed.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in BufReader::new(file).lines() {
            let Ok(line) = line else { continue };
            let Ok(e) = serde_json::from_str::<LogEntry>(&line) else {
                continue;
            };
            if since.is_some_and(|s| e.written_at().is_none_or(|t| t < s)) {
                continue;
            }
            entries.push_back(e);
            if tail.is_some_and(|t| entries.len() > t) {
                entries.pop_front();
            }
        }
    }
    Ok(entries.into())
}

/// A container's log, of either driver: the entries after `since` (the
/// last `tail`) and, with `follow`, a cursor at their end for what comes
/// next. (The supervisor writes the log on the same thread, so nothing
/// can slip in between the two.)
pub fn read_container_log(
    log: &crate::supervisor::output::logs::LogWriter,
    since: Option<SystemTime>,
    tail: Option<usize>,
    follow: bool,
) -> std::io::Result<(Vec<LogEntry>, Option<LogCursor>)> {
    if log.is_memory() {
        let ring = log.memory().ok_or_else(|| {
            std::io::Error::other("the memory log could not be made (memfd_create)")
        })?;
        let (entries, cursor) = crate::supervisor::output::memory::read_ring(ring, since, tail)?;
        return Ok((entries, follow.then_some(LogCursor::Memory(cursor))));
    }
    let entries = read_log_since(log.path(), since, tail)?;
    let cursor = follow.then(|| LogCursor::at_end(log.path())).transpose()?;
    Ok((entries, cursor))
}

/// A `since` for the logs: unix seconds (`1700000000`, `1700000000.5`), an
/// RFC 3339 UTC time (`2024-01-02T03:04:05Z`, fractions allowed), or a
/// duration before `now` (`10m`, `1h30m`), as `docker logs --since` takes.
pub fn parse_since(text: &str, now: SystemTime) -> Option<SystemTime> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        let d = Duration::try_from_secs_f64(secs).ok()?;
        return SystemTime::UNIX_EPOCH.checked_add(d);
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        return Some(t);
    }
    let ago = humantime::parse_duration(text).ok()?;
    now.checked_sub(ago)
}

/// A follower of a log, of either driver.
pub enum LogCursor {
    File(FileCursor),
    Memory(MemoryCursor),
}

impl LogCursor {
    /// A cursor at the end of a file log (see `FileCursor::at_end`).
    pub fn at_end(path: &Path) -> std::io::Result<LogCursor> {
        FileCursor::at_end(path).map(LogCursor::File)
    }

    /// Entries written since the last call, reading at most about
    /// `max_bytes`; true when the cursor has caught up with the writer.
    pub fn read_new(&mut self, max_bytes: usize) -> std::io::Result<(Vec<LogEntry>, bool)> {
        match self {
            LogCursor::File(c) => c.read_new(max_bytes),
            LogCursor::Memory(c) => c.read_new(max_bytes),
        }
    }
}

pub struct FileCursor {
    path: PathBuf,
    /// The file being read and its identity; None before the log exists.
    file: Option<(File, FileId)>,
    /// The start of a line whose newline has not been read yet.
    partial: Vec<u8>,
}

impl FileCursor {
    /// A cursor at the end of the log as it is now: it yields only what is
    /// written from now on. (The supervisor writes the log on the same
    /// thread, so nothing can slip in between reading the log and this.)
    pub fn at_end(path: &Path) -> std::io::Result<FileCursor> {
        let mut cursor = FileCursor {
            path: path.to_path_buf(),
            file: None,
            partial: Vec::new(),
        };
        if let Some((newest, id)) = log_files(path)?.pop() {
            match File::open(&newest) {
                Ok(mut f) => {
                    f.seek(SeekFrom::End(0))?;
                    cursor.file = Some((f, id));
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(cursor)
    }

    /// Entries written since the last call, reading at most about
    /// `max_bytes` of the files; the flag is true when the cursor has
    /// reached the end of the live file (nothing more to read for now).
    pub fn read_new(&mut self, max_bytes: usize) -> std::io::Result<(Vec<LogEntry>, bool)> {
        let mut entries = Vec::new();
        let mut budget = max_bytes;
        loop {
            if let Some((file, _)) = &mut self.file
                && !read_lines(file, &mut self.partial, &mut budget, &mut entries)?
            {
                return Ok((entries, false));
            }
            // At the end of the current file: is there a newer one?
            let files = log_files(&self.path)?;
            let current = self
                .file
                .as_ref()
                .and_then(|(_, id)| files.iter().position(|(_, f)| f == id));
            let next = match current {
                Some(i) if i + 1 == files.len() => return Ok((entries, true)),
                Some(i) => i + 1,
                // Ours was rotated away (or there was none yet): every file
                // left is newer.
                None => 0,
            };
            let Some((path, id)) = files.get(next) else {
                return Ok((entries, true));
            };
            match File::open(path) {
                Ok(f) => self.file = Some((f, *id)),
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok((entries, true)),
                Err(e) => return Err(e),
            }
            // A line left unfinished in a rotated file was torn by a crash.
            self.partial.clear();
        }
    }
}

/// Reads whole lines to EOF (true) or until the budget is spent (false).
fn read_lines(
    file: &mut File,
    partial: &mut Vec<u8>,
    budget: &mut usize,
    entries: &mut Vec<LogEntry>,
) -> std::io::Result<bool> {
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    loop {
        if *budget == 0 {
            return Ok(false);
        }
        let want = (*budget).min(buf.len());
        let n = match file.read(&mut buf[..want]) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        *budget -= n;
        partial.extend_from_slice(&buf[..n]);
        let Some(last_nl) = partial.iter().rposition(|b| *b == b'\n') else {
            continue;
        };
        for line in partial[..last_nl].split(|b| *b == b'\n') {
            if let Ok(e) = serde_json::from_slice::<LogEntry>(line) {
                entries.push(e);
            }
        }
        partial.drain(..=last_nl);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::output::logs::{LogWriter, Stream};
    use crate::supervisor::spec::service::LoggingSpec;

    fn logs(entries: Vec<LogEntry>) -> Vec<String> {
        entries.into_iter().map(|e| e.log).collect()
    }

    fn limits(max_size: u64, max_files: u32) -> LoggingSpec {
        serde_json::from_value(serde_json::json!({"max_size": max_size, "max_files": max_files}))
            .unwrap()
    }

    #[test]
    fn only_new_lines_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let mut w = LogWriter::new(path.clone());
        w.write_output(Stream::Stdout, b"old\n").unwrap();
        let mut c = LogCursor::at_end(&path).unwrap();
        assert_eq!(c.read_new(1 << 20).unwrap(), (vec![], true));
        w.write_output(Stream::Stdout, b"new\n").unwrap();
        w.write_output(Stream::Stderr, b"err\n").unwrap();
        let (e, done) = c.read_new(1 << 20).unwrap();
        assert_eq!(
            (logs(e), done),
            (vec!["new\n".into(), "err\n".into()], true)
        );
    }

    #[test]
    fn a_log_that_does_not_exist_yet_is_followed_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/json.log");
        let mut c = LogCursor::at_end(&path).unwrap();
        assert_eq!(c.read_new(1 << 20).unwrap(), (vec![], true));
        let mut w = LogWriter::new(path.clone());
        w.write_output(Stream::Stdout, b"first\n").unwrap();
        assert_eq!(logs(c.read_new(1 << 20).unwrap().0), ["first\n"]);
    }

    #[test]
    fn rotations_between_reads_lose_nothing_that_is_still_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let mut w = LogWriter::new(path.clone()).with_limits(&limits(4096, 3));
        let mut c = LogCursor::at_end(&path).unwrap();
        let mut written = Vec::new();
        let mut read = Vec::new();
        // Rotations between reads (each line is ~180 bytes in JSON, ~22
        // to a file; 30 lines never push the cursor's file out of 3).
        for round in 0..20 {
            for i in 0..30 {
                let l = format!("r{round} l{i} {}\n", "p".repeat(100));
                w.write_output(Stream::Stdout, l.as_bytes()).unwrap();
                written.push(l);
            }
            let (e, done) = c.read_new(1 << 20).unwrap();
            assert!(done);
            read.extend(logs(e));
        }
        assert_eq!(read, written);
    }

    #[test]
    fn a_slow_cursor_skips_what_rotation_dropped_and_keeps_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let mut w = LogWriter::new(path.clone()).with_limits(&limits(4096, 2));
        let mut c = LogCursor::at_end(&path).unwrap();
        let written: Vec<String> = (0..400).map(|i| format!("{i:05}\n")).collect();
        for l in &written {
            w.write_output(Stream::Stdout, l.as_bytes()).unwrap();
        }
        let read = logs(c.read_new(1 << 20).unwrap().0);
        // What is left on disk, in order, ending with the last line.
        assert!(!read.is_empty() && read.len() < written.len());
        assert_eq!(read[..], written[written.len() - read.len()..]);
    }

    #[test]
    fn the_budget_bounds_one_read_and_the_rest_comes_next_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let mut w = LogWriter::new(path.clone());
        let mut c = LogCursor::at_end(&path).unwrap();
        for i in 0..100 {
            w.write_output(Stream::Stdout, format!("{i}\n").as_bytes())
                .unwrap();
        }
        let (first, done) = c.read_new(1000).unwrap();
        assert!(!done && !first.is_empty() && first.len() < 100);
        let (rest, done) = c.read_new(1 << 20).unwrap();
        assert!(done);
        assert_eq!(first.len() + rest.len(), 100);
        assert_eq!(rest.last().unwrap().log, "99\n");
    }

    #[test]
    fn a_removed_log_is_read_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let mut w = LogWriter::new(path.clone());
        w.write_output(Stream::Stdout, b"a\n").unwrap();
        let mut c = LogCursor::at_end(&path).unwrap();
        w.write_output(Stream::Stdout, b"last words\n").unwrap();
        drop(w);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            (logs(c.read_new(1 << 20).unwrap().0), true),
            (vec!["last words\n".to_string()], true)
        );
        assert_eq!(c.read_new(1 << 20).unwrap(), (vec![], true));
    }

    #[test]
    fn since_filters_by_entry_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let mut lines = String::new();
        for (i, t) in [
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:10.5Z",
            "2024-01-01T00:00:20Z",
        ]
        .iter()
        .enumerate()
        {
            lines.push_str(&format!(
                "{{\"log\":\"{i}\\n\",\"stream\":\"stdout\",\"time\":\"{t}\"}}\n"
            ));
        }
        std::fs::write(&path, lines).unwrap();
        let since = parse_since("2024-01-01T00:00:10Z", SystemTime::now());
        let got: Vec<String> = read_log_since(&path, since, None)
            .unwrap()
            .into_iter()
            .map(|e| e.log)
            .collect();
        assert_eq!(got, ["1\n", "2\n"]);
        let got = read_log_since(&path, since, Some(1)).unwrap();
        assert_eq!(got[0].log, "2\n");
    }

    #[test]
    fn since_takes_unix_seconds_rfc3339_or_a_duration_ago() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let at = |s| parse_since(s, now);
        assert_eq!(at("1700000000"), Some(now));
        assert_eq!(at("1700000000.5"), Some(now + Duration::from_millis(500)));
        assert_eq!(at("2023-11-14T22:13:20Z"), Some(now));
        assert_eq!(at("10m"), Some(now - Duration::from_secs(600)));
        assert_eq!(at("yesterday"), None);
        assert_eq!(at("-5"), None);
    }
}
