//! The last step of a creation: "go" to the paused child, then its error
//! pipe polled by the loop until the child has exec'd (Spawned) or
//! reported the step that failed (StartFailed). Never a blocking read.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use crate::kernel::{PausedContainer, SpawnError};
use crate::supervisor::ops::Supervisor;
use crate::supervisor::ops::create::{Creation, Prepared, StepError};
use crate::supervisor::runtime::machine::{EXIT_CANNOT_START, Event};

impl Supervisor {
    pub(crate) fn release(
        &mut self,
        name: &str,
        paused: PausedContainer,
        prepared: Box<Prepared>,
    ) -> Result<(), StepError> {
        let starting = paused
            .release()
            .map_err(|e| (e.to_string(), e.exit_code()))?;
        self.creations
            .insert(name.to_string(), Creation::Starting { starting, prepared });
        Ok(())
    }

    /// Error pipes of released children, for the poll loop.
    pub fn starting_fds(&self) -> Vec<BorrowedFd<'_>> {
        self.creations
            .values()
            .filter_map(|c| match c {
                Creation::Starting { starting, .. } => Some(starting.fd()),
                _ => None,
            })
            .collect()
    }

    /// A released child's error pipe is readable: it exec'd or failed.
    pub fn on_starting_fd(&mut self, fd: RawFd) {
        let name = self.creations.iter().find_map(|(n, c)| match c {
            Creation::Starting { starting, .. } if starting.fd().as_raw_fd() == fd => {
                Some(n.clone())
            }
            _ => None,
        });
        if let Some(name) = name {
            self.poll_starting(&name);
        }
    }

    /// Every released child's verdict so far, without waiting.
    pub(crate) fn poll_released(&mut self) {
        let released: Vec<String> = self
            .creations
            .iter()
            .filter(|(_, c)| matches!(c, Creation::Starting { .. }))
            .map(|(n, _)| n.clone())
            .collect();
        for name in released {
            self.poll_starting(&name);
        }
    }

    /// Reads a released child's verdict and fires Spawned or StartFailed.
    /// Returns false while it is still setting up.
    pub(crate) fn poll_starting(&mut self, name: &str) -> bool {
        let Some(Creation::Starting { starting, .. }) = self.creations.get_mut(name) else {
            return false;
        };
        match starting.poll_result() {
            None => false,
            Some(Ok(())) => {
                self.fire(name, Event::Spawned);
                true
            }
            Some(Err(e)) => {
                self.creations.remove(name);
                let code = match &e {
                    SpawnError::Child(_) => e.exit_code(),
                    _ => EXIT_CANNOT_START,
                };
                self.creation_failed(name, e.to_string(), code);
                true
            }
        }
    }

    /// The RecordStart action: the container runs; its record says so.
    pub(crate) fn record_start(&mut self, name: &str) {
        let Some(Creation::Starting {
            starting,
            mut prepared,
        }) = self.creations.remove(name)
        else {
            return;
        };
        prepared.start_stages = starting.stages();
        self.record_run(name, *prepared);
    }
}
