//! `events` subscribers: each remembers the last sequence number it was
//! sent and gets, once per loop turn, the journal's newer events that
//! match its filter, as `events.event` notifications. A subscriber that
//! falls behind the journal's bound is told with an `events.gap`; one that
//! stops reading is dropped by the server (its buffer is bounded).

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::supervisor::Supervisor;
use crate::supervisor::events::journal::Event;
use crate::supervisor::spec::webhooks::glob_match;

/// Events read per subscriber per turn, so one far-behind subscriber
/// cannot hold the loop.
const EVENTS_PER_TURN: usize = 256;
/// A subscriber whose unsent output has not drained for this long while
/// events wait for it has stopped reading: it is dropped.
const STALL_LIMIT: Duration = Duration::from_secs(5);

/// What one turn produced for the server: bytes to send, and subscribers
/// (by connection) that stopped reading.
#[derive(Default)]
pub struct Pumped {
    pub send: Vec<(RawFd, Vec<u8>)>,
    pub stalled: Vec<RawFd>,
}

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Globs on the kind ("container.*"); empty = every kind.
    pub kinds: Vec<String>,
    pub container: Option<String>,
}

impl EventFilter {
    pub fn matches(&self, e: &Event) -> bool {
        (self.kinds.is_empty() || self.kinds.iter().any(|k| glob_match(k, &e.kind)))
            && self
                .container
                .as_ref()
                .is_none_or(|c| e.container.as_deref() == Some(c.as_str()))
    }
}

/// What an `events` request with `follow` asks for.
pub struct EventSubscription {
    /// Send events with a seq above this.
    pub after: u64,
    pub filter: EventFilter,
}

struct Subscriber {
    fd: RawFd,
    after: u64,
    filter: EventFilter,
    /// Since when its output has been too full to add to.
    stuck_since: Option<Instant>,
}

#[derive(Default)]
pub struct Subscriptions {
    by_token: BTreeMap<u64, Subscriber>,
    /// A subscriber got a full batch last turn, so more may be waiting:
    /// the loop must turn again without waiting for a descriptor.
    behind: bool,
}

impl Subscriptions {
    pub fn add(&mut self, token: u64, fd: RawFd, sub: EventSubscription) {
        let s = Subscriber {
            fd,
            after: sub.after,
            filter: sub.filter,
            stuck_since: None,
        };
        self.by_token.insert(token, s);
    }

    pub fn behind(&self) -> bool {
        self.behind
    }

    pub fn remove_connection(&mut self, fd: RawFd) {
        self.by_token.retain(|_, s| s.fd != fd);
    }

    /// New lines for each subscriber whose connection has `room` (the
    /// others wait for POLLOUT, or are dropped once too far behind).
    pub fn pump(&mut self, sup: &Supervisor, room: impl Fn(RawFd) -> bool) -> Pumped {
        let mut out = Pumped::default();
        self.behind = false;
        let newest = sup.events().last_seq();
        let now = Instant::now();
        for s in self.by_token.values_mut() {
            if !room(s.fd) {
                let since = *s.stuck_since.get_or_insert(now);
                if s.after < newest && now.duration_since(since) > STALL_LIMIT {
                    out.stalled.push(s.fd);
                }
                continue;
            }
            s.stuck_since = None;
            let (events, oldest) = sup.events().since(s.after, EVENTS_PER_TURN);
            self.behind |= events.len() == EVENTS_PER_TURN;
            let mut bytes = Vec::new();
            if oldest > s.after + 1 {
                let gap = json!({"lost_after": s.after, "resumed_at": oldest});
                bytes.extend_from_slice(&notification("events.gap", gap));
            }
            for e in &events {
                s.after = e.seq;
                if s.filter.matches(e) {
                    bytes.extend_from_slice(&notification("events.event", json!(e)));
                }
            }
            if let Some(last) = events.last() {
                s.after = s.after.max(last.seq);
            } else if oldest > s.after + 1 {
                s.after = oldest - 1;
            }
            if !bytes.is_empty() {
                out.send.push((s.fd, bytes));
            }
        }
        out
    }
}

fn notification(method: &str, params: Value) -> Vec<u8> {
    let mut line =
        serde_json::to_vec(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .unwrap_or_default();
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_kinds_and_containers() {
        let e = Event {
            seq: 1,
            time: String::new(),
            kind: "container.started".into(),
            container: Some("web".into()),
            data: Value::Null,
        };
        assert!(EventFilter::default().matches(&e));
        let f = EventFilter {
            kinds: vec!["container.*".into()],
            container: Some("web".into()),
        };
        assert!(f.matches(&e));
        let f = EventFilter {
            kinds: vec!["pull.*".into()],
            container: None,
        };
        assert!(!f.matches(&e));
    }
}
