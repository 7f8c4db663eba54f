//! Reading the journal back from its files alone, so another process (the
//! webhook notifier, `berth events --since`) can replay it while the daemon
//! appends. Segments are read oldest first; a segment rotated away while
//! it is being read is simply gone (the batch says which seq is oldest).

use std::io;
use std::path::Path;

use super::segments::{Lines, RawLine, Segment, list_segments, parse_event, peek_seq};
use super::{Event, JournalError, MAX_EVENT_BYTES};

/// What one read of the journal found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Events with a seq above the one asked for, oldest first, in strictly
    /// increasing seq order, at most `max`.
    pub events: Vec<Event>,
    /// The oldest seq the journal still holds (holding none: the seq its
    /// next event gets). Above `after_seq + 1`, the events in between were
    /// dropped by the journal's bound before they were read.
    pub oldest: u64,
    /// The newest seq seen: the journal's last when fewer than `max` events
    /// came back (everything after `after_seq` was read), else a lower
    /// bound. 0 when the journal holds no event.
    pub newest: u64,
    /// Lines that are not events ("FILE: line N: why"); they are skipped.
    pub problems: Vec<String>,
}

/// Up to `max` events with seq > `after_seq`, and the oldest seq available
/// (see `Batch::oldest`): replay for `events --since` and the notifier.
pub fn read_since(
    dir: &Path,
    after_seq: u64,
    max: usize,
) -> Result<(Vec<Event>, u64), JournalError> {
    let batch = read_range(dir, after_seq, max)?;
    Ok((batch.events, batch.oldest))
}

/// `read_since` with everything a careful reader needs: the newest seq
/// (to notice a journal that was deleted and restarted) and the corrupt
/// lines that were skipped.
pub fn read_range(dir: &Path, after_seq: u64, max: usize) -> Result<Batch, JournalError> {
    let segments = list_segments(dir)?;
    let mut batch = Batch {
        oldest: segments.first().map_or(1, |s| s.first_seq),
        newest: segments.last().map_or(0, |s| s.first_seq - 1),
        ..Batch::default()
    };
    if max == 0 {
        return Ok(batch);
    }
    // The segment holding after_seq + 1 is the last one starting at or
    // before it; the ones before hold only older events.
    let start = segments
        .iter()
        .rposition(|s| s.first_seq <= after_seq.saturating_add(1))
        .unwrap_or(0);
    let mut reader = SegmentReader {
        after_seq,
        floor: after_seq,
        max,
        batch: &mut batch,
    };
    for (i, seg) in segments.iter().enumerate().skip(start) {
        let next_first = segments.get(i + 1).map(|s| s.first_seq);
        if reader.read(seg, next_first)? {
            break;
        }
    }
    Ok(batch)
}

struct SegmentReader<'a> {
    after_seq: u64,
    /// The newest seq handed out: seqs must increase.
    floor: u64,
    max: usize,
    batch: &'a mut Batch,
}

impl SegmentReader<'_> {
    /// Reads one segment into the batch; true once the batch is full.
    fn read(&mut self, seg: &Segment, next_first: Option<u64>) -> Result<bool, JournalError> {
        let mut lines = match Lines::open(&seg.path) {
            Ok(l) => l,
            // Rotated away since the listing: its events are gone.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(JournalError::io("open", &seg.path)(e)),
        };
        let mut line_no = 0usize;
        loop {
            let line = lines
                .next_line()
                .map_err(JournalError::io("read", &seg.path))?;
            let Some((_, line)) = line else {
                return Ok(false);
            };
            line_no += 1;
            let bytes = match line {
                RawLine::Complete(b) => b,
                RawLine::TooLong => {
                    let why = format!("longer than {MAX_EVENT_BYTES} bytes");
                    self.problem(seg, line_no, &why);
                    continue;
                }
                // In the live segment, an append in progress: read it next
                // time. Elsewhere, a write a crash cut short.
                RawLine::Unterminated => {
                    if next_first.is_some() {
                        self.problem(seg, line_no, "no newline at the end");
                    }
                    return Ok(false);
                }
            };
            if let Some(seq) = peek_seq(bytes).filter(|&s| s <= self.after_seq) {
                self.batch.newest = self.batch.newest.max(seq);
                continue;
            }
            if self.take(seg, next_first, line_no, bytes) {
                return Ok(true);
            }
        }
    }

    /// Takes one complete line; true once the batch is full.
    fn take(
        &mut self,
        seg: &Segment,
        next_first: Option<u64>,
        line_no: usize,
        bytes: &[u8],
    ) -> bool {
        let event = match parse_event(bytes, seg.first_seq) {
            Ok(e) => e,
            Err(why) => {
                self.problem(seg, line_no, &why);
                return false;
            }
        };
        if next_first.is_some_and(|n| event.seq >= n) {
            let why = format!("seq {} belongs to a later segment", event.seq);
            self.problem(seg, line_no, &why);
            return false;
        }
        if event.seq <= self.after_seq {
            self.batch.newest = self.batch.newest.max(event.seq);
            return false;
        }
        if event.seq <= self.floor {
            let why = format!("seq {} does not follow {}", event.seq, self.floor);
            self.problem(seg, line_no, &why);
            return false;
        }
        self.floor = event.seq;
        self.batch.newest = self.batch.newest.max(event.seq);
        self.batch.events.push(event);
        self.batch.events.len() >= self.max
    }

    fn problem(&mut self, seg: &Segment, line_no: usize, why: &str) {
        let message = format!("{}: line {line_no}: {why}", seg.path.display());
        self.batch.problems.push(message);
    }
}
