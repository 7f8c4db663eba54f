//! Docker's detach sequence, ctrl-p ctrl-q, read from the client's raw
//! terminal: the client leaves, the container keeps running. A ctrl-p is
//! held back until the next byte shows it is not the sequence.

const CTRL_P: u8 = 0x10;
const CTRL_Q: u8 = 0x11;

pub(super) struct DetachKeys {
    enabled: bool,
    held: bool,
}

impl DetachKeys {
    pub(super) fn new(enabled: bool) -> DetachKeys {
        DetachKeys {
            enabled,
            held: false,
        }
    }

    /// The bytes to pass on, and whether the sequence was typed (then the
    /// bytes are those before it).
    pub(super) fn filter(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        if !self.enabled {
            return (input.to_vec(), false);
        }
        let mut out = Vec::with_capacity(input.len() + 1);
        for &b in input {
            if self.held {
                self.held = false;
                if b == CTRL_Q {
                    return (out, true);
                }
                out.push(CTRL_P);
            }
            if b == CTRL_P {
                self.held = true;
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_p_ctrl_q_detaches_even_split_across_reads() {
        let mut k = DetachKeys::new(true);
        assert_eq!(k.filter(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(k.filter(b"\x11zz"), (Vec::new(), true));
        let mut k = DetachKeys::new(true);
        assert_eq!(k.filter(b"\x10\x10x"), (b"\x10\x10x".to_vec(), false));
        assert_eq!(k.filter(b"q\x10\x11"), (b"q".to_vec(), true));
        let mut off = DetachKeys::new(false);
        assert_eq!(off.filter(b"\x10\x11"), (b"\x10\x11".to_vec(), false));
    }
}
