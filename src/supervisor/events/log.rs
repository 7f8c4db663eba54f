//! The supervisor's side of events: every lifecycle change is appended to
//! the on-disk journal (journal.rs) with a sequence number, kept in a
//! small in-memory window for live subscribers, and synced once per loop
//! turn. A journal that cannot be written is reported, never fatal.

use std::collections::VecDeque;
use std::path::PathBuf;

use serde_json::Value;

use crate::supervisor::events::journal::{Event, Journal, JournalLimits, read_range};
use crate::supervisor::say;

/// Events kept in memory for subscribers that keep up; older ones are
/// read back from the journal.
const RECENT_EVENTS: usize = 128;

/// The journal and its in-memory tail.
pub struct EventLog {
    dir: PathBuf,
    journal: Option<Journal>,
    recent: VecDeque<Event>,
    /// Set when an append failed, so the error is logged once, not per event.
    failing: bool,
}

impl EventLog {
    /// Opens (or creates) the journal in `dir`; problems found while
    /// recovering it are logged.
    pub fn open(dir: PathBuf) -> EventLog {
        let journal = match Journal::open(&dir, JournalLimits::default()) {
            Ok(mut j) => {
                for p in j.take_problems() {
                    say(format_args!("event journal: {p}"));
                }
                Some(j)
            }
            Err(e) => {
                say(format_args!(
                    "event journal {}: {e}; events are not recorded",
                    dir.display()
                ));
                None
            }
        };
        EventLog {
            dir,
            journal,
            recent: VecDeque::new(),
            failing: false,
        }
    }

    pub fn last_seq(&self) -> u64 {
        self.journal.as_ref().map_or(0, Journal::last_seq)
    }

    pub fn append(&mut self, kind: &str, container: Option<&str>, data: Value) {
        let Some(j) = self.journal.as_mut() else {
            return;
        };
        match j.append(kind, container, data) {
            Ok(event) => {
                self.failing = false;
                if self.recent.len() == RECENT_EVENTS {
                    self.recent.pop_front();
                }
                self.recent.push_back(event);
            }
            Err(e) if !self.failing => {
                self.failing = true;
                say(format_args!("event journal: {e}"));
            }
            Err(_) => {}
        }
    }

    /// Events after `after_seq` (at most `max`), from memory when they are
    /// still there, else from the journal; and the oldest seq still kept
    /// (above `after_seq + 1` means some were lost to the journal's bound).
    pub fn since(&self, after_seq: u64, max: usize) -> (Vec<Event>, u64) {
        if let Some(first) = self.recent.front()
            && first.seq <= after_seq + 1
        {
            let events = self
                .recent
                .iter()
                .filter(|e| e.seq > after_seq)
                .take(max)
                .cloned()
                .collect();
            return (events, after_seq + 1);
        }
        match read_range(&self.dir, after_seq, max) {
            Ok(batch) => (batch.events, batch.oldest),
            Err(e) => {
                say(format_args!("event journal: read: {e}"));
                (Vec::new(), after_seq + 1)
            }
        }
    }

    /// The sync due now, for a helper (see `Journal::take_sync`).
    pub fn take_sync(&mut self) -> Option<crate::supervisor::events::journal::SyncWork> {
        self.journal.as_mut()?.take_sync()
    }

    /// A helper's sync failed: said once until one succeeds again.
    pub fn sync_result(&mut self, error: Option<&str>) {
        match error {
            Some(e) if !self.failing => {
                self.failing = true;
                say(format_args!("event journal: sync: {e}"));
            }
            Some(_) => {}
            None => self.failing = false,
        }
    }

    pub fn sync(&mut self) {
        if let Some(j) = self.journal.as_mut()
            && let Err(e) = j.sync()
            && !self.failing
        {
            self.failing = true;
            say(format_args!("event journal: sync: {e}"));
        }
    }
}
