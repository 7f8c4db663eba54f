//! Container output into its log: what the poll loop found readable, as
//! much as the container's flood limit allows, and everything left in the
//! pipes once it exited.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Instant;

use crate::supervisor::ops::Supervisor;
use crate::supervisor::runtime::container::Container;
use crate::supervisor::say;

/// Bytes read from one output pipe per wake-up, so one chatty container
/// cannot starve the others.
const MAX_OUTPUT_READ_BYTES: usize = 256 * 1024;

impl Supervisor {
    /// The output pipes the loop should poll at `now`: those of containers
    /// whose bucket has room.
    pub fn output_fds_ready(&self, now: Instant) -> Vec<BorrowedFd<'_>> {
        self.containers
            .values()
            .filter(|c| c.log_bucket.may_read(now))
            .flat_map(|c| c.outputs.iter().map(|o| o.fd.as_fd()))
            .collect()
    }

    /// When the first drained bucket with open pipes has room again; the
    /// loop's poll must wake then.
    pub fn output_refill_deadline(&self, now: Instant) -> Option<Instant> {
        self.containers
            .values()
            .filter(|c| !c.outputs.is_empty())
            .filter_map(|c| c.log_bucket.ready_at(now))
            .min()
    }

    /// Reads what an exited container left in its pipes before anyone
    /// waiting for the exit reads the log. The flood limit does not apply
    /// (the writers are gone, so it is at most what the pipes hold) but
    /// the bytes are still counted.
    pub(crate) fn drain_outputs(&mut self, name: &str) {
        let now = Instant::now();
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        c.log.set_limits(&c.spec.logging);
        let mut idx = 0;
        while idx < c.outputs.len() {
            if !copy_output(c, idx, MAX_OUTPUT_READ_BYTES, now) {
                idx += 1;
            }
        }
    }

    /// Copies what a container wrote on `fd` into its log, as much as its
    /// flood limit (`logging.rate`/`burst`) allows now; the event loop
    /// stops polling its pipes while the bucket is empty.
    pub fn on_output(&mut self, fd: RawFd) {
        let now = Instant::now();
        let Some(c) = self
            .containers
            .values_mut()
            .find(|c| c.outputs.iter().any(|o| o.fd.as_raw_fd() == fd))
        else {
            return;
        };
        let Some(idx) = c.outputs.iter().position(|o| o.fd.as_raw_fd() == fd) else {
            return;
        };
        // The spec may have been reloaded since the last read.
        let logging = &c.spec.logging;
        c.log.set_limits(logging);
        c.log_bucket.set_limits(logging.rate.0, logging.burst.0);
        let budget = usize::try_from(c.log_bucket.available(now))
            .unwrap_or(usize::MAX)
            .min(MAX_OUTPUT_READ_BYTES);
        copy_output(c, idx, budget, now);
    }
}

/// Copies up to `budget` bytes from the container's output pipe `idx` into
/// its log, counting them against its flood limit; a pipe at EOF is
/// flushed and removed (true).
fn copy_output(c: &mut Container, idx: usize, budget: usize, now: Instant) -> bool {
    let stream = c.outputs[idx].stream;
    let copied = c.log.copy_pipe(c.outputs[idx].fd.as_fd(), stream, budget);
    c.log_bucket.take(copied.bytes as u64, now);
    if let Some(e) = copied.log_error {
        say(format_args!("container {}: write log: {e}", c.name));
    }
    if copied.closed {
        let _ = c.log.flush_partial(stream);
        c.outputs.remove(idx);
    }
    copied.closed
}
