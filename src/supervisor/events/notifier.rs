//! The webhook notifier: runs in its own helper process (`berth _notify`),
//! one thread per endpoint, so that a slow or dead endpoint can never
//! stall the daemon nor another endpoint. Each endpoint has a persisted
//! cursor (STATE/NAME.cursor, the last seq it acknowledged) and gets every
//! wanted event after it, in order, in batches, at least once: a crash
//! between an acknowledged POST and the cursor write sends that batch
//! again, and receivers dedupe by seq. Reads only journal files; never
//! writes the journal (the daemon is its one writer). docs/events.md.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::supervisor::events::journal::{self, Batch, Event, kinds};
use crate::supervisor::spec::webhooks::WebhookSettings;

mod delivery;

use delivery::Poster;
pub use delivery::sign;

/// Events per POST: one request carries a burst (a reload restarting every
/// container), and a body stays well under a megabyte on the wire even at
/// 50 events of the largest size.
pub const BATCH_MAX_EVENTS: usize = 50;
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// How long an advance over events the endpoint does not want may stay
/// unpersisted: a crash then only re-reads them, but each write is an fsync.
const SKIP_PERSIST_INTERVAL: Duration = Duration::from_secs(2);
/// Remembered problem lines, so a corrupt line read every poll is logged once.
const MAX_REMEMBERED_PROBLEMS: usize = 1000;

/// Prefix of every line the notifier writes to stderr.
pub const LOG_PREFIX: &str = "berth-notify: ";
/// After LOG_PREFIX, a line the daemon may turn into a journal event:
/// `berth-notify: event KIND {json data}`. The notifier does not write the
/// journal itself (one writer), so webhook.failing/recovered travel so.
const REPORT_WORD: &str = "event ";

#[derive(Debug, Clone)]
pub struct NotifierOptions {
    pub journal: PathBuf,
    pub state: PathBuf,
    /// How often the journal is read for new events when caught up.
    pub poll: Duration,
}

/// Runs one thread per endpoint until one of them ends (it never should:
/// a panic). Returns why, so the process exits and the daemon restarts it.
pub fn run_notifier(opts: &NotifierOptions, hooks: Vec<WebhookSettings>) -> Result<(), String> {
    let (done_tx, done_rx) = mpsc::channel::<String>();
    for hook in hooks {
        let opts = opts.clone();
        let done = DoneGuard(hook.name.clone(), done_tx.clone());
        std::thread::Builder::new()
            .name(format!("notify-{}", hook.name))
            .spawn(move || {
                let _done = done;
                Endpoint::new(opts, hook).run()
            })
            .map_err(|e| format!("start a thread: {e}"))?;
    }
    drop(done_tx);
    match done_rx.recv() {
        Ok(name) => Err(format!("the delivery thread of webhook {name} ended")),
        Err(_) => Ok(()),
    }
}

/// Tells `run_notifier` that a thread ended, even by a panic.
struct DoneGuard(String, mpsc::Sender<String>);

impl Drop for DoneGuard {
    fn drop(&mut self) {
        let _ = self.1.send(self.0.clone());
    }
}

/// Parses a report line (`berth-notify: event KIND {json}`) into the kind
/// and data the daemon may append to the journal; None for other lines.
pub fn parse_report(line: &str) -> Option<(String, Value)> {
    let rest = line.strip_prefix(LOG_PREFIX)?.strip_prefix(REPORT_WORD)?;
    let (kind, data) = rest.split_once(' ')?;
    let data: Value = serde_json::from_str(data).ok()?;
    Some((kind.to_string(), data))
}

fn log(message: std::fmt::Arguments<'_>) {
    eprintln!("{LOG_PREFIX}{message}");
}

fn report(kind: &str, data: &Value) {
    eprintln!("{LOG_PREFIX}{REPORT_WORD}{kind} {data}");
}

/// The cursor file of endpoint `name`.
pub fn cursor_path(state: &Path, name: &str) -> PathBuf {
    state.join(format!("{name}.cursor"))
}

/// The last seq endpoint `name` acknowledged; 0 (everything the journal
/// holds) without a cursor file. An unreadable one also reads as 0: sending
/// again is better than skipping.
pub fn load_cursor(state: &Path, name: &str) -> u64 {
    let path = cursor_path(state, name);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().unwrap_or_else(|_| {
            log(format_args!(
                "{name}: {} is not a seq; sending from the start",
                path.display()
            ));
            0
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => {
            log(format_args!(
                "{name}: read {}: {e}; sending from the start",
                path.display()
            ));
            0
        }
    }
}

/// What one turn of an endpoint's loop did.
enum Turn {
    /// Caught up: wait for new events.
    Idle,
    /// More may be there now: go on.
    More,
    /// A delivery failed: back off.
    Failed,
}

struct Endpoint {
    opts: NotifierOptions,
    hook: WebhookSettings,
    poster: Poster,
    cursor: u64,
    persisted: u64,
    persisted_at: Instant,
    /// Consecutive failed deliveries, and when the first failed.
    failures: u32,
    failing_since: Option<Instant>,
    seen_problems: HashSet<String>,
}

impl Endpoint {
    fn new(opts: NotifierOptions, hook: WebhookSettings) -> Endpoint {
        let cursor = load_cursor(&opts.state, &hook.name);
        Endpoint {
            poster: Poster::new(&hook),
            opts,
            hook,
            cursor,
            persisted: cursor,
            persisted_at: Instant::now(),
            failures: 0,
            failing_since: None,
            seen_problems: HashSet::new(),
        }
    }

    fn run(mut self) {
        log(format_args!(
            "{}: delivering events after seq {}",
            self.hook.name, self.cursor
        ));
        loop {
            match self.turn() {
                Turn::More => {}
                Turn::Idle => std::thread::sleep(self.opts.poll),
                Turn::Failed => std::thread::sleep(backoff(self.failures)),
            }
        }
    }

    fn turn(&mut self) -> Turn {
        let batch = match journal::read_range(&self.opts.journal, self.cursor, BATCH_MAX_EVENTS) {
            Ok(b) => b,
            Err(e) => {
                self.problem(e.to_string());
                return Turn::Idle;
            }
        };
        for p in &batch.problems {
            self.problem(p.clone());
        }
        let Some(last) = batch.events.last().map(|e| e.seq) else {
            return self.caught_up(&batch);
        };
        self.notice_gap(&batch);
        let wanted: Vec<&Event> = batch
            .events
            .iter()
            .filter(|e| self.hook.wants(&e.kind))
            .collect();
        if !wanted.is_empty() {
            if let Err(why) = self.poster.send(&wanted) {
                self.failed(&wanted, &why);
                return Turn::Failed;
            }
            self.succeeded();
        }
        self.cursor = last;
        self.persist(!wanted.is_empty());
        Turn::More
    }

    /// Nothing after the cursor: persist a pending skip-advance, and notice
    /// a journal that restarted below the cursor (its directory deleted).
    fn caught_up(&mut self, batch: &Batch) -> Turn {
        if batch.newest > 0 && batch.newest < self.cursor {
            log(format_args!(
                "{}: the journal ends at seq {} but this endpoint acknowledged {}: \
                 the journal was reset; delivering it from its start",
                self.hook.name, batch.newest, self.cursor
            ));
            self.cursor = 0;
            self.persist(true);
            return Turn::More;
        }
        self.persist(false);
        Turn::Idle
    }

    /// Events missing between the cursor and the first one read: logged,
    /// and skipped for good (so a retry does not log them again).
    fn notice_gap(&mut self, batch: &Batch) {
        let Some(first) = batch.events.first().map(|e| e.seq) else {
            return;
        };
        // The cursor file is outside input: it may say u64::MAX.
        let expected = self.cursor.saturating_add(1);
        if first <= expected {
            return;
        }
        let why = if first == batch.oldest {
            "dropped by the journal's size bound before delivery"
        } else {
            "unreadable in the journal"
        };
        log(format_args!(
            "{}: events {} to {} are lost ({why}); going on from {first}",
            self.hook.name,
            expected,
            first - 1
        ));
        self.cursor = first - 1;
    }

    fn failed(&mut self, wanted: &[&Event], why: &str) {
        self.failures = self.failures.saturating_add(1);
        let seq = |e: Option<&&Event>| e.map_or(0, |e| e.seq);
        let (first, last) = (seq(wanted.first()), seq(wanted.last()));
        if self.failures == 1 {
            self.failing_since = Some(Instant::now());
            let data = json!({"name": self.hook.name, "error": why, "seq": first});
            report(kinds::WEBHOOK_FAILING, &data);
        }
        log(format_args!(
            "{}: delivering seq {first}-{last} failed (attempt {}): {why}; retrying in {}s",
            self.hook.name,
            self.failures,
            backoff(self.failures).as_secs()
        ));
    }

    fn succeeded(&mut self) {
        if self.failures > 0 {
            let down = self.failing_since.map_or(0, |t| t.elapsed().as_secs());
            let data = json!({"name": self.hook.name, "failed_attempts": self.failures, "down_secs": down});
            report(kinds::WEBHOOK_RECOVERED, &data);
        }
        self.failures = 0;
        self.failing_since = None;
    }

    /// Writes the cursor: always after a delivery (`delivered`), otherwise
    /// at most every SKIP_PERSIST_INTERVAL.
    fn persist(&mut self, delivered: bool) {
        let due = delivered || self.persisted_at.elapsed() >= SKIP_PERSIST_INTERVAL;
        if self.cursor == self.persisted || !due {
            return;
        }
        let path = cursor_path(&self.opts.state, &self.hook.name);
        match crate::image::store::write_atomic(&path, format!("{}\n", self.cursor).as_bytes()) {
            Ok(()) => {
                self.persisted = self.cursor;
                self.persisted_at = Instant::now();
            }
            // Deliveries go on; a restart re-sends from the persisted seq.
            Err(e) => self.problem(format!("{}: write cursor: {e}", self.hook.name)),
        }
    }

    /// Logs a problem the first time it is seen.
    fn problem(&mut self, message: String) {
        if self.seen_problems.len() >= MAX_REMEMBERED_PROBLEMS {
            self.seen_problems.clear();
        }
        if self.seen_problems.insert(message.clone()) {
            log(format_args!("{message}"));
        }
    }
}

/// 1 s, 2 s, 4 s, … up to 60 s after `failures` consecutive failures.
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    BACKOFF_FIRST
        .saturating_mul(1 << doublings)
        .min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_minute() {
        let secs: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn report_lines_parse_back() {
        let line = format!(
            "{LOG_PREFIX}{REPORT_WORD}webhook.failing {}",
            json!({"name": "a"})
        );
        assert_eq!(
            parse_report(&line),
            Some(("webhook.failing".to_string(), json!({"name": "a"})))
        );
        assert_eq!(parse_report("berth-notify: fleet: delivering"), None);
        assert_eq!(parse_report("berth: event x {}"), None);
    }

    #[test]
    fn cursors_load_with_safe_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_cursor(dir.path(), "a"), 0);
        std::fs::write(cursor_path(dir.path(), "a"), "42\n").unwrap();
        assert_eq!(load_cursor(dir.path(), "a"), 42);
        std::fs::write(cursor_path(dir.path(), "a"), "").unwrap();
        assert_eq!(load_cursor(dir.path(), "a"), 0);
    }
}
