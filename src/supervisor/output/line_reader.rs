//! Lines from a non-blocking pipe a helper process writes (the notifier's
//! stderr, a pull's progress): reads what is there without blocking, keeps
//! the partial last line for the next call, and bounds every line. Knows
//! nothing of what the lines mean; the caller owns the descriptor.

use std::os::fd::BorrowedFd;

use nix::errno::Errno;

/// Longer lines are cut to this many bytes; the rest, up to the newline,
/// is dropped.
pub const DEFAULT_MAX_LINE_BYTES: usize = 64 << 10;
/// One call reads at most this much, so a writer faster than the loop
/// cannot keep it in one read; poll(2) is level-triggered, so the rest is
/// read on the next turn. Four times a default pipe's capacity (pipe(7)):
/// one call after the writer exited drains the pipe.
const MAX_READ_BYTES_PER_CALL: usize = 256 << 10;
const READ_CHUNK_BYTES: usize = 4096;

#[derive(Debug)]
pub struct LineReader {
    /// The line being read, never longer than `max_line_bytes`.
    partial: Vec<u8>,
    max_line_bytes: usize,
}

/// What one [`LineReader::read`] got.
#[derive(Debug, PartialEq, Eq)]
pub struct Lines {
    /// Complete lines without their newline, invalid UTF-8 replaced; after
    /// EOF or an error, the partial last line too.
    pub lines: Vec<String>,
    pub end: End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Nothing more for now (EAGAIN, or this call's read budget used up).
    Open,
    /// The writer closed the pipe.
    Eof,
    /// The read failed; the pipe is of no further use.
    Failed(Errno),
}

impl End {
    /// Whether the caller should drop the descriptor (and stop polling it).
    pub fn is_closed(self) -> bool {
        self != End::Open
    }
}

impl Default for LineReader {
    fn default() -> Self {
        LineReader::new(DEFAULT_MAX_LINE_BYTES)
    }
}

impl LineReader {
    pub fn new(max_line_bytes: usize) -> Self {
        LineReader {
            partial: Vec::new(),
            max_line_bytes,
        }
    }

    /// Reads `fd` (non-blocking) until EAGAIN, EOF, an error or this call's
    /// budget, and returns the lines completed meanwhile.
    pub fn read(&mut self, fd: BorrowedFd<'_>) -> Lines {
        let mut lines = Vec::new();
        let mut chunk = [0u8; READ_CHUNK_BYTES];
        let mut budget = MAX_READ_BYTES_PER_CALL;
        let end = loop {
            match nix::unistd::read(fd, &mut chunk) {
                Ok(0) => break End::Eof,
                Ok(n) => {
                    self.split(&chunk[..n], &mut lines);
                    budget = budget.saturating_sub(n);
                    if budget == 0 {
                        break End::Open;
                    }
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => break End::Open,
                Err(e) => break End::Failed(e),
            }
        };
        if end.is_closed() && !self.partial.is_empty() {
            lines.push(self.take_line());
        }
        Lines { lines, end }
    }

    fn split(&mut self, mut bytes: &[u8], lines: &mut Vec<String>) {
        while let Some(nl) = bytes.iter().position(|b| *b == b'\n') {
            self.append(&bytes[..nl]);
            lines.push(self.take_line());
            bytes = &bytes[nl + 1..];
        }
        self.append(bytes);
    }

    /// Keeps what fits in the line's bound and drops the rest.
    fn append(&mut self, bytes: &[u8]) {
        let room = self.max_line_bytes.saturating_sub(self.partial.len());
        self.partial
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn take_line(&mut self) -> String {
        let line = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        line
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsFd, OwnedFd};

    use nix::fcntl::OFlag;
    use nix::unistd::{pipe2, write};

    use super::*;

    /// A pipe whose read end is non-blocking, as the supervisor's are.
    fn pipe() -> (OwnedFd, OwnedFd) {
        let (r, w) = pipe2(OFlag::O_CLOEXEC).unwrap();
        nix::fcntl::fcntl(&r, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
        (r, w)
    }

    fn open(lines: &[&str]) -> Lines {
        Lines {
            lines: lines.iter().map(|l| l.to_string()).collect(),
            end: End::Open,
        }
    }

    #[test]
    fn partial_lines_are_joined_across_reads() {
        let (r, w) = pipe();
        let mut reader = LineReader::default();
        assert_eq!(reader.read(r.as_fd()), open(&[]), "EAGAIN on an empty pipe");
        write(&w, b"one\ntw").unwrap();
        assert_eq!(reader.read(r.as_fd()), open(&["one"]));
        write(&w, b"o\n\nthr").unwrap();
        write(&w, b"ee\n").unwrap();
        assert_eq!(reader.read(r.as_fd()), open(&["two", "", "three"]));
    }

    #[test]
    fn an_over_long_line_is_cut_and_the_next_one_is_whole() {
        let (r, w) = pipe();
        let mut reader = LineReader::new(8);
        write(&w, b"0123456789abcdef").unwrap();
        assert_eq!(reader.read(r.as_fd()), open(&[]));
        assert!(reader.partial.len() <= 8);
        write(&w, b"ghij\nnext\n").unwrap();
        assert_eq!(reader.read(r.as_fd()), open(&["01234567", "next"]));
    }

    #[test]
    fn eof_returns_the_trailing_partial_line() {
        let (r, w) = pipe();
        let mut reader = LineReader::default();
        write(&w, b"done\nno newline").unwrap();
        drop(w);
        let got = reader.read(r.as_fd());
        assert_eq!(got.lines, ["done", "no newline"]);
        assert_eq!(got.end, End::Eof);
        assert!(got.end.is_closed());
        assert!(reader.partial.is_empty());
    }

    #[test]
    fn a_failed_read_closes_and_keeps_the_partial_line() {
        let (_r, w) = pipe();
        let mut reader = LineReader::default();
        reader.split(b"half", &mut Vec::new());
        // The write end cannot be read: EBADF.
        let got = reader.read(w.as_fd());
        assert_eq!(got.lines, ["half"]);
        assert_eq!(got.end, End::Failed(Errno::EBADF));
        assert!(got.end.is_closed());
    }

    #[test]
    fn one_call_reads_at_most_its_budget() {
        let (r, w) = pipe();
        nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
        // A pipe can hold this much (F_SETPIPE_SZ up to pipe-max-size, 1 MiB by
        // default): more than one call's budget.
        let size = MAX_READ_BYTES_PER_CALL * 2;
        nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETPIPE_SZ(size as i32)).unwrap();
        let line = [b'x'; 1023];
        let mut written = 0;
        while written < size {
            written += write(&w, &line).unwrap();
            written += write(&w, b"\n").unwrap();
        }
        let mut reader = LineReader::default();
        let first = reader.read(r.as_fd());
        assert_eq!(first.end, End::Open);
        assert_eq!(first.lines.len(), MAX_READ_BYTES_PER_CALL / 1024);
        let second = reader.read(r.as_fd());
        assert_eq!(second.lines.len(), MAX_READ_BYTES_PER_CALL / 1024);
        assert_eq!(reader.read(r.as_fd()), open(&[]));
    }
}
