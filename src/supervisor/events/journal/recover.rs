//! What the writer checks when it opens a journal: where the valid events
//! of a segment end (a crash mid-append leaves a torn last line; a power
//! loss can leave zeros after it) and which lines are corrupt; and cutting
//! the live segment back to its last complete event.

use std::fs::OpenOptions;

use super::segments::{Lines, RawLine, Segment, parse_event};
use super::{JournalError, MAX_EVENT_BYTES};

/// One segment, read through.
pub(super) struct Scan {
    /// Offset just past the last valid event (0: none).
    pub valid_end: u64,
    pub last_seq: Option<u64>,
    pub file_len: u64,
    /// Lines that are not events, with the offset they start at.
    pub problems: Vec<(u64, String)>,
}

/// Reads `seg` through, checking that seqs increase and stay below the
/// next segment's first (`next_first`).
pub(super) fn scan_segment(seg: &Segment, next_first: Option<u64>) -> Result<Scan, JournalError> {
    let mut lines = Lines::open(&seg.path).map_err(JournalError::io("open", &seg.path))?;
    let mut scan = Scan {
        valid_end: 0,
        last_seq: None,
        file_len: 0,
        problems: Vec::new(),
    };
    let mut line_no = 0usize;
    while let Some((start, line)) = lines
        .next_line()
        .map_err(JournalError::io("read", &seg.path))?
    {
        line_no += 1;
        let why = match line {
            RawLine::Complete(bytes) => match parse_event(bytes, seg.first_seq) {
                Ok(e) if scan.last_seq.is_some_and(|last| e.seq <= last) => {
                    format!(
                        "seq {} does not follow {}",
                        e.seq,
                        scan.last_seq.unwrap_or(0)
                    )
                }
                Ok(e) if next_first.is_some_and(|n| e.seq >= n) => {
                    format!("seq {} belongs to a later segment", e.seq)
                }
                Ok(e) => {
                    scan.last_seq = Some(e.seq);
                    scan.valid_end = lines.offset;
                    continue;
                }
                Err(why) => why,
            },
            RawLine::TooLong => format!("longer than {MAX_EVENT_BYTES} bytes"),
            RawLine::Unterminated => "no newline at the end (a write cut short)".to_string(),
        };
        let message = format!("{}: line {line_no}: {why}", seg.path.display());
        scan.problems.push((start, message));
    }
    scan.file_len = lines.offset;
    Ok(scan)
}

/// Finds where the live segment's valid events end, cuts anything after
/// (a torn line, zeros left by a power loss), and returns its size and the
/// last seq written.
pub(super) fn recover_live(
    live: &Segment,
    problems: &mut Vec<String>,
) -> Result<(u64, u64), JournalError> {
    let scan = scan_segment(live, None)?;
    let kept = scan
        .problems
        .into_iter()
        .filter(|(at, _)| *at < scan.valid_end);
    problems.extend(kept.map(|(_, p)| p));
    if scan.file_len > scan.valid_end {
        let f = OpenOptions::new()
            .write(true)
            .open(&live.path)
            .map_err(JournalError::io("open", &live.path))?;
        f.set_len(scan.valid_end)
            .and_then(|()| f.sync_data())
            .map_err(JournalError::io("truncate", &live.path))?;
        problems.push(format!(
            "{}: cut {} bytes after the last complete event (a write cut short by a crash)",
            live.path.display(),
            scan.file_len - scan.valid_end
        ));
    }
    // The segment is named after the first seq written to it: an empty one
    // continues right after the previous segment.
    let last_seq = scan.last_seq.unwrap_or(live.first_seq - 1);
    Ok((scan.valid_end, last_seq))
}
