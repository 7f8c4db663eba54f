//! The bounded capture of one output stream: the last `max` bytes a program
//! wrote and how many it wrote in all. No knowledge of what the bytes mean.

/// The tail of a stream. Appending is amortised O(1): the buffer may grow
/// to twice the bound before its head is dropped in one move, so a program
/// writing gigabytes costs a copy per `max` bytes, not one per read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    buf: Vec<u8>,
    max: usize,
    total: u64,
}

impl Captured {
    pub fn new(max_bytes: usize) -> Self {
        Captured {
            buf: Vec::new(),
            max: max_bytes,
            total: 0,
        }
    }

    pub(super) fn push(&mut self, chunk: &[u8]) {
        self.total = self.total.saturating_add(chunk.len() as u64);
        if chunk.len() >= self.max {
            self.buf.clear();
            self.buf.extend_from_slice(&chunk[chunk.len() - self.max..]);
            return;
        }
        if self.buf.len() + chunk.len() > self.max.saturating_mul(2) {
            let keep_from = self.buf.len() - (self.max - chunk.len());
            self.buf.drain(..keep_from);
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The last `max` bytes written (all of them when nothing was dropped).
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.buf.len().saturating_sub(self.max)..]
    }

    /// How many bytes before [`Captured::bytes`] were dropped.
    pub fn dropped(&self) -> u64 {
        self.total - self.bytes().len() as u64
    }

    /// Whether [`Captured::bytes`] is everything the program wrote.
    pub fn is_complete(&self) -> bool {
        self.dropped() == 0
    }

    pub fn into_bytes(mut self) -> Vec<u8> {
        let excess = self.buf.len().saturating_sub(self.max);
        self.buf.drain(..excess);
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_tail_and_counts_what_it_dropped() {
        let mut c = Captured::new(4);
        c.push(b"ab");
        assert_eq!(
            (c.bytes(), c.dropped(), c.is_complete()),
            (&b"ab"[..], 0, true)
        );
        c.push(b"cdef");
        assert_eq!((c.bytes(), c.dropped()), (&b"cdef"[..], 2));
        for b in b"ghijk" {
            c.push(&[*b]);
            assert!(c.buf.len() <= 8, "{} bytes held", c.buf.len());
        }
        assert_eq!((c.bytes(), c.dropped()), (&b"hijk"[..], 7));
        c.push(b"0123456789");
        assert_eq!((c.bytes(), c.dropped()), (&b"6789"[..], 17));
        assert_eq!(c.into_bytes(), b"6789");
    }

    #[test]
    fn a_zero_bound_keeps_nothing_but_the_count() {
        let mut c = Captured::new(0);
        c.push(b"abc");
        c.push(b"");
        assert_eq!((c.bytes(), c.dropped()), (&b""[..], 3));
    }
}
