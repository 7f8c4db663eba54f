//! What one start attempt of a container has learnt of its `wait_for`
//! gates: when it began waiting (timeouts count from there), which probed
//! gates (dns, tcp) answered, which probes run, when a failed one may run
//! again, and the wake-up already asked for.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

#[derive(Debug, Default, Clone)]
pub struct GateState {
    pub since: Option<Instant>,
    /// Entries (by index) a probe found met.
    pub probed: BTreeSet<usize>,
    pub probing: BTreeSet<usize>,
    /// Entries whose timeout passed with `then: start`: met from then on.
    pub let_through: BTreeSet<usize>,
    /// A failed probe's entry: when it may run again, failures in a row.
    pub retry: BTreeMap<usize, (Instant, u32)>,
    /// The GateCheck timer pending, so checks do not pile timers up.
    pub wake_at: Option<Instant>,
}
