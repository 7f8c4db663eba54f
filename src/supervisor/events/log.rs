//! The supervisor's side of events: every lifecycle change is appended to
//! the on-disk journal (journal.rs) with a sequence number, kept in a
//! small in-memory window for live subscribers, and synced as berth.json's
//! `journal.sync` says (by default once per loop turn). A journal that
//! cannot be written is reported, never fatal.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Instant;

use serde_json::Value;

use crate::supervisor::events::journal::{Event, Journal, JournalLimits, read_range};
use crate::supervisor::say;
use crate::supervisor::spec::machine_settings::JournalSync;

/// Events kept in memory for subscribers that keep up; older ones are
/// read back from the journal.
const RECENT_EVENTS: usize = 128;

/// An event kept in memory as its JSON text: one allocation, where the
/// `Value` tree is dozens. The window outlives the bursts of work around
/// it, and scattered small allocations pin heap pages that `malloc_trim`
/// cannot give back once the burst is over.
struct RecentEvent {
    seq: u64,
    json: Box<str>,
}

/// The journal and its in-memory tail.
pub struct EventLog {
    dir: PathBuf,
    journal: Option<Journal>,
    recent: VecDeque<RecentEvent>,
    /// Set when an append failed, so the error is logged once, not per event.
    failing: bool,
    policy: JournalSync,
    /// When the last sync was started (for `JournalSync::Interval`).
    last_sync: Option<Instant>,
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
            policy: JournalSync::Always,
            last_sync: None,
        }
    }

    pub fn set_sync_policy(&mut self, policy: JournalSync) {
        self.policy = policy;
    }

    pub fn sync_policy(&self) -> JournalSync {
        self.policy
    }

    /// When the loop must wake for a sync that the interval held back.
    pub fn sync_deadline(&self) -> Option<Instant> {
        let JournalSync::Interval(every) = self.policy else {
            return None;
        };
        let due = self.journal.as_ref()?.needs_sync();
        let from = self.last_sync?;
        due.then(|| from.checked_add(every)).flatten()
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
                if let Ok(json) = serde_json::to_string(&event) {
                    self.recent.push_back(RecentEvent {
                        seq: event.seq,
                        json: json.into_boxed_str(),
                    });
                } else {
                    // Not kept, so the window must not skip over it.
                    self.recent.clear();
                }
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
                .filter_map(|e| serde_json::from_str(&e.json).ok())
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

    /// The sync due at `now` under the policy, for a helper (see
    /// `Journal::take_sync`). With "never" the work is dropped: nothing is
    /// synced, and the descriptors of rotated segments are not kept.
    pub fn take_sync(
        &mut self,
        now: Instant,
    ) -> Option<crate::supervisor::events::journal::SyncWork> {
        let journal = self.journal.as_mut()?;
        match self.policy {
            JournalSync::Always => {}
            JournalSync::Never => {
                drop(journal.take_sync());
                return None;
            }
            JournalSync::Interval(every) => {
                let waited = self
                    .last_sync
                    .is_none_or(|t| now.saturating_duration_since(t) >= every);
                if !waited || !journal.needs_sync() {
                    return None;
                }
            }
        }
        let work = journal.take_sync()?;
        self.last_sync = Some(now);
        Some(work)
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

    /// Syncs now, waiting for the disk (the daemon's end), unless the
    /// policy is "never".
    pub fn sync(&mut self) {
        if self.policy == JournalSync::Never {
            return;
        }
        if let Some(j) = self.journal.as_mut()
            && let Err(e) = j.sync()
            && !self.failing
        {
            self.failing = true;
            say(format_args!("event journal: sync: {e}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn log_with(policy: JournalSync) -> (tempfile::TempDir, EventLog) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = EventLog::open(dir.path().join("events"));
        log.set_sync_policy(policy);
        (dir, log)
    }

    #[test]
    fn an_interval_holds_syncs_back_and_says_when_the_next_is_due() {
        let every = Duration::from_secs(5);
        let (_dir, mut log) = log_with(JournalSync::Interval(every));
        let t0 = Instant::now();
        log.append("a", None, Value::Null);
        assert!(log.take_sync(t0).is_some(), "the first sync is not held");
        assert_eq!(log.sync_deadline(), None, "nothing to sync");
        log.append("b", None, Value::Null);
        assert!(log.take_sync(t0 + Duration::from_secs(1)).is_none());
        assert_eq!(log.sync_deadline(), Some(t0 + every));
        assert!(log.take_sync(t0 + every).is_some());
        assert_eq!(log.sync_deadline(), None);
    }

    #[test]
    fn always_syncs_each_turn_and_never_does_not() {
        let (_dir, mut log) = log_with(JournalSync::Always);
        let now = Instant::now();
        log.append("a", None, Value::Null);
        assert!(log.take_sync(now).is_some());
        log.append("b", None, Value::Null);
        assert!(log.take_sync(now).is_some());
        assert_eq!(log.sync_deadline(), None);
        let (_dir, mut log) = log_with(JournalSync::Never);
        log.append("a", None, Value::Null);
        assert!(log.take_sync(now).is_none());
        assert_eq!(log.sync_deadline(), None);
    }
}
