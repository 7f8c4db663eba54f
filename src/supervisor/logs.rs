//! Container output in Docker's json-file format, one JSON object per line
//! ({"log":"text\n","stream":"stdout","time":"RFC 3339 ns"}), so existing
//! log shippers read berth's logs as they read Docker's.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// Docker splits lines longer than its 16 KiB copy buffer; so do we.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

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

pub fn rfc3339_now() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

/// Appends one container's output to its log file, line by line.
pub struct LogWriter {
    path: PathBuf,
    file: Option<File>,
    partial: [Vec<u8>; 2],
}

impl LogWriter {
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            file: None,
            partial: [Vec::new(), Vec::new()],
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes raw bytes read from a stream; complete lines are written now,
    /// the rest waits for its newline (or the 16 KiB split).
    pub fn write_output(&mut self, stream: Stream, bytes: &[u8]) -> std::io::Result<()> {
        let idx = stream as usize;
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
                self.write_entry(stream, &line)?;
            }
        }
        Ok(())
    }

    /// Writes out a partial line left when a stream closes.
    pub fn flush_partial(&mut self, stream: Stream) -> std::io::Result<()> {
        let line = std::mem::take(&mut self.partial[stream as usize]);
        if line.is_empty() {
            Ok(())
        } else {
            self.write_entry(stream, &line)
        }
    }

    /// A line from berth itself about this container (e.g. an exec error).
    pub fn write_notice(&mut self, text: &str) -> std::io::Result<()> {
        self.write_entry(Stream::Stderr, format!("berth: {text}\n").as_bytes())
    }

    fn write_entry(&mut self, stream: Stream, line: &[u8]) -> std::io::Result<()> {
        let entry = LogEntry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream,
            time: rfc3339_now(),
        };
        let mut json = serde_json::to_vec(&entry).map_err(std::io::Error::other)?;
        json.push(b'\n');
        self.open()?.write_all(&json)
    }

    fn open(&mut self) -> std::io::Result<&mut File> {
        if self.file.is_none() {
            // A container that failed before its directories were made
            // still gets its berth: notice logged.
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o640)
                .open(&self.path)?;
            self.file = Some(f);
        }
        Ok(self.file.as_mut().expect("opened above"))
    }
}

/// The last `tail` entries (all with `None`) of a log file. Lines that do
/// not parse (a torn write after a crash) are skipped.
pub fn read_log(path: &Path, tail: Option<usize>) -> std::io::Result<Vec<LogEntry>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut entries = std::collections::VecDeque::new();
    for line in BufReader::new(file).lines() {
        let Ok(line) = line else { continue };
        if let Ok(e) = serde_json::from_str::<LogEntry>(&line) {
            entries.push_back(e);
            if tail.is_some_and(|t| entries.len() > t) {
                entries.pop_front();
            }
        }
    }
    Ok(entries.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_joined_split_and_tagged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let mut w = LogWriter::new(path.clone());
        w.write_output(Stream::Stdout, b"hel").unwrap();
        w.write_output(Stream::Stderr, b"oops\n").unwrap();
        w.write_output(Stream::Stdout, b"lo\nsecond\npart").unwrap();
        w.flush_partial(Stream::Stdout).unwrap();
        let logs: Vec<_> = read_log(&path, None)
            .unwrap()
            .into_iter()
            .map(|e| (e.stream, e.log))
            .collect();
        assert_eq!(
            logs,
            [
                (Stream::Stderr, "oops\n".into()),
                (Stream::Stdout, "hello\n".into()),
                (Stream::Stdout, "second\n".into()),
                (Stream::Stdout, "part".into())
            ]
        );
        assert_eq!(read_log(&path, Some(1)).unwrap()[0].log, "part");
    }

    #[test]
    fn long_lines_are_split_at_16k() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        let mut w = LogWriter::new(path.clone());
        w.write_output(Stream::Stdout, &vec![b'x'; MAX_LINE_BYTES * 2 + 10])
            .unwrap();
        w.write_output(Stream::Stdout, b"\n").unwrap();
        let sizes: Vec<_> = read_log(&path, None)
            .unwrap()
            .into_iter()
            .map(|e| e.log.len())
            .collect();
        assert_eq!(sizes, [MAX_LINE_BYTES, MAX_LINE_BYTES, 11]);
    }

    #[test]
    fn the_format_is_dockers_json_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("json.log");
        LogWriter::new(path.clone())
            .write_output(Stream::Stdout, b"a\n")
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with(r#"{"log":"a\n","stream":"stdout","time":""#),
            "{text}"
        );
        assert!(text.trim_end().ends_with("Z\"}"), "{text}");
    }
}
