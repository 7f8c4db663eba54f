//! Pull progress for a person: on a terminal, one bar per blob redrawn in
//! place; otherwise plain lines, one per finished blob and per event.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

const BAR_WIDTH: usize = 30;

pub struct ProgressView {
    tty: bool,
    /// Blob → (done, total), in the order first seen.
    bars: BTreeMap<usize, (String, u64, u64)>,
    drawn: usize,
}

/// "WHAT: DONE/TOTAL bytes" as the pull reports a blob's progress.
fn parse_bytes(line: &str) -> Option<(&str, u64, u64)> {
    let (what, rest) = line.rsplit_once(": ")?;
    let (done, total) = rest.strip_suffix(" bytes")?.split_once('/')?;
    Some((what, done.parse().ok()?, total.parse().ok()?))
}

impl ProgressView {
    pub fn new() -> Self {
        ProgressView {
            tty: std::io::stdout().is_terminal(),
            bars: BTreeMap::new(),
            drawn: 0,
        }
    }

    pub fn line(&mut self, line: &str) {
        let Some((what, done, total)) = parse_bytes(line) else {
            self.print_above(line);
            return;
        };
        if !self.tty {
            if done == total {
                println!("{what}: {total} bytes");
            }
            return;
        }
        let key = match self.bars.iter().find(|(_, (w, _, _))| w == what) {
            Some((k, _)) => *k,
            None => self.bars.len(),
        };
        self.bars.insert(key, (what.to_string(), done, total));
        self.redraw();
    }

    fn print_above(&mut self, line: &str) {
        if self.tty && self.drawn > 0 {
            print!("\x1b[{}A\x1b[J", self.drawn);
            self.drawn = 0;
            println!("{line}");
            self.redraw();
        } else {
            println!("{line}");
        }
    }

    fn redraw(&mut self) {
        let mut out = std::io::stdout().lock();
        if self.drawn > 0 {
            let _ = write!(out, "\x1b[{}A", self.drawn);
        }
        for (what, done, total) in self.bars.values() {
            let filled = (done * BAR_WIDTH as u64)
                .checked_div(*total)
                .unwrap_or(BAR_WIDTH as u64) as usize;
            let short = what.get(..what.len().min(24)).unwrap_or(what);
            let _ = writeln!(
                out,
                "\x1b[K{short:<24} [{}{}] {:>7.1} / {:.1} MB",
                "#".repeat(filled),
                " ".repeat(BAR_WIDTH - filled),
                *done as f64 / 1e6,
                *total as f64 / 1e6
            );
        }
        let _ = out.flush();
        self.drawn = self.bars.len();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn byte_progress_lines_parse() {
        assert_eq!(
            super::parse_bytes("blob sha256:ab: 10/20 bytes"),
            Some(("blob sha256:ab", 10, 20))
        );
        assert_eq!(super::parse_bytes("x: pulled"), None);
    }
}
