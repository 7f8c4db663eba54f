//! Segment files: their names, creating and listing them, and reading
//! their lines back with a bound on line length, so that any file content
//! (a crash, bit rot, a stranger's file) costs bounded memory and never
//! panics. Shared by the writer and the readers; appending events is the
//! writer's (journal.rs).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{Event, JournalError, MAX_EVENT_BYTES};

const SEGMENT_SUFFIX: &str = ".jsonl";
/// u64::MAX has 20 digits: fixed-width names sort like their seqs.
const NAME_DIGITS: usize = 20;

/// A segment's file name: the seq of the first event written to it.
pub(super) fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:0NAME_DIGITS$}{SEGMENT_SUFFIX}")
}

/// The first seq a segment file name carries; None for any other file
/// (a temporary file, something an operator left there).
pub(super) fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&s| s > 0)
}

#[derive(Debug, Clone)]
pub(super) struct Segment {
    pub first_seq: u64,
    pub path: PathBuf,
}

/// The segments in `dir`, oldest first; a missing directory has none.
pub(super) fn list_segments(dir: &Path) -> Result<Vec<Segment>, JournalError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(JournalError::io("list", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(JournalError::io("list", dir))?;
        let name = entry.file_name();
        if let Some(first_seq) = name.to_str().and_then(parse_segment_name) {
            out.push(Segment {
                first_seq,
                path: entry.path(),
            });
        }
    }
    out.sort_by_key(|s| s.first_seq);
    Ok(out)
}

/// One line of a segment, as read.
pub(super) enum RawLine<'a> {
    /// A whole line, without its '\n'.
    Complete(&'a [u8]),
    /// Longer than any event may be: skipped up to its '\n'.
    TooLong,
    /// Bytes at the end of the file with no '\n' after them: a write in
    /// progress (another process is appending) or cut short by a crash.
    Unterminated,
}

/// Reads a segment line by line, tracking byte offsets.
pub(super) struct Lines<R> {
    reader: BufReader<R>,
    /// Offset of the start of the next line.
    pub offset: u64,
    buf: Vec<u8>,
}

impl Lines<File> {
    pub fn open(path: &Path) -> io::Result<Lines<File>> {
        Ok(Lines::new(File::open(path)?))
    }
}

impl<R: Read> Lines<R> {
    pub fn new(inner: R) -> Lines<R> {
        Lines {
            reader: BufReader::with_capacity(64 << 10, inner),
            offset: 0,
            buf: Vec::new(),
        }
    }

    /// The next line and the offset it starts at; None at the end.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, RawLine<'_>)>> {
        let start = self.offset;
        self.buf.clear();
        // One byte over the limit tells "too long" from "exactly the limit".
        let limit = MAX_EVENT_BYTES as u64 + 1;
        let n = (&mut self.reader)
            .take(limit)
            .read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.offset += n as u64;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            return Ok(Some((start, RawLine::Complete(&self.buf))));
        }
        if n as u64 == limit {
            self.skip_to_newline()?;
            return Ok(Some((start, RawLine::TooLong)));
        }
        Ok(Some((start, RawLine::Unterminated)))
    }

    fn skip_to_newline(&mut self) -> io::Result<()> {
        loop {
            let chunk = self.reader.fill_buf()?;
            if chunk.is_empty() {
                return Ok(());
            }
            if let Some(i) = chunk.iter().position(|&b| b == b'\n') {
                self.reader.consume(i + 1);
                self.offset += i as u64 + 1;
                return Ok(());
            }
            let len = chunk.len();
            self.reader.consume(len);
            self.offset += len as u64;
        }
    }
}

/// The seq of a line berth wrote, read without parsing the JSON: the
/// writer always serializes `seq` first, so a reader can skip the events
/// it has already seen cheaply. None for anything else (then parse it).
pub(super) fn peek_seq(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || rest.get(digits) != Some(&b',') {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// A complete line as an event of the segment that starts at `first_seq`,
/// or why it is not one.
pub(super) fn parse_event(line: &[u8], first_seq: u64) -> Result<Event, String> {
    let event: Event = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    if event.seq < first_seq {
        return Err(format!(
            "seq {} is older than the segment's first ({first_seq})",
            event.seq
        ));
    }
    Ok(event)
}

pub(super) fn open_append(path: &Path) -> Result<File, JournalError> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(JournalError::io("open", path))
}

pub(super) fn create_segment(path: &Path) -> Result<File, JournalError> {
    let create = || {
        OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o640)
            .open(path)
    };
    match create() {
        // Only a segment no event reached can have this name: replace it.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(path).map_err(JournalError::io("remove", path))?;
            create()
        }
        other => other,
    }
    .map_err(JournalError::io("create", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_ignored() {
        assert_eq!(segment_name(1), "00000000000000000001.jsonl");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        for other in [
            "1.jsonl",
            "00000000000000000000.jsonl",
            "0000000000000000000a.jsonl",
            ".00000000000000000001.jsonl.tmp",
            "99999999999999999999.jsonl",
        ] {
            assert_eq!(parse_segment_name(other), None, "{other}");
        }
    }

    #[test]
    fn lines_are_bounded_and_unterminated_tails_told_apart() {
        let mut data = b"{\"seq\":1,\"x\":1}\n".to_vec();
        data.extend(vec![b'a'; MAX_EVENT_BYTES + 10]);
        data.extend(b"\nlast\npartial");
        let mut lines = Lines::new(&data[..]);
        let mut kinds = Vec::new();
        while let Some((offset, line)) = lines.next_line().unwrap() {
            kinds.push(match line {
                RawLine::Complete(l) => format!("{offset}:{}", String::from_utf8_lossy(l)),
                RawLine::TooLong => format!("{offset}:too long"),
                RawLine::Unterminated => format!("{offset}:unterminated"),
            });
        }
        let long_end = 16 + MAX_EVENT_BYTES + 11;
        assert_eq!(
            kinds,
            [
                "0:{\"seq\":1,\"x\":1}".to_string(),
                "16:too long".to_string(),
                format!("{long_end}:last"),
                format!("{}:unterminated", long_end + 5),
            ]
        );
        assert_eq!(lines.offset, data.len() as u64);
    }

    #[test]
    fn seq_is_peeked_only_from_the_writers_layout() {
        assert_eq!(peek_seq(b"{\"seq\":42,\"time\":\"x\"}"), Some(42));
        assert_eq!(peek_seq(b"{\"seq\":42}"), None);
        assert_eq!(peek_seq(b"{\"kind\":\"a\",\"seq\":42,}"), None);
        assert_eq!(peek_seq(b"{\"seq\":99999999999999999999999,"), None);
    }
}
