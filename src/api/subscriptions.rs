//! `events` subscribers: each remembers the last sequence number it was
//! sent and gets, once per loop turn, the journal's newer events that
//! match its filter, as `events.event` notifications. A subscriber that
//! falls behind the journal's bound is told with an `events.gap`; one that
//! stops reading is dropped by the server (its buffer is bounded).

use std::collections::BTreeMap;
use std::os::fd::RawFd;

use serde_json::{Value, json};

use crate::supervisor::Supervisor;
use crate::supervisor::journal::Event;
use crate::supervisor::webhooks::glob_match;

/// Events read per subscriber per turn, so one far-behind subscriber
/// cannot hold the loop.
const EVENTS_PER_TURN: usize = 256;

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
}

#[derive(Default)]
pub struct Subscriptions {
    by_token: BTreeMap<u64, Subscriber>,
}

impl Subscriptions {
    pub fn add(&mut self, token: u64, fd: RawFd, sub: EventSubscription) {
        let s = Subscriber {
            fd,
            after: sub.after,
            filter: sub.filter,
        };
        self.by_token.insert(token, s);
    }

    pub fn remove_connection(&mut self, fd: RawFd) {
        self.by_token.retain(|_, s| s.fd != fd);
    }

    /// New lines for each subscriber: (its connection, the bytes).
    pub fn pump(&mut self, sup: &Supervisor) -> Vec<(RawFd, Vec<u8>)> {
        let mut out = Vec::new();
        for s in self.by_token.values_mut() {
            let (events, oldest) = sup.events.since(s.after, EVENTS_PER_TURN);
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
                out.push((s.fd, bytes));
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
