//! The update record on disk (containers/NAME/update.json): digests,
//! the rollback pin, the failed digest and the last outcome, so that a
//! restart of the daemon (a power cut after a rollback) starts the pinned
//! image and does not try the failed one again.

use crate::image::store::write_atomic;
use crate::supervisor::ops::Supervisor;
use std::time::Instant;

use crate::supervisor::ops::update_watch::start_limit;
use crate::supervisor::runtime::timers::TimerKind;
use crate::supervisor::runtime::update::{Phase, UpdateRecord};
use crate::supervisor::say;

impl Supervisor {
    /// Writes the container's update record (tmp, fsync, rename: a power
    /// cut after a rollback must not boot the failed image). Small, and
    /// only at an update's steps.
    pub(crate) fn save_update_record(&mut self, name: &str) {
        let Some(c) = self.containers.get(name) else {
            return;
        };
        if c.ephemeral {
            return;
        }
        let path = c.dirs.base.join(UPDATE_RECORD_FILE);
        let saved = serde_json::to_vec(&c.update.record(&c.spec.image))
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                std::fs::create_dir_all(&c.dirs.base).map_err(|e| e.to_string())?;
                write_atomic(&path, &bytes).map_err(|e| e.to_string())
            });
        if let Err(e) = saved {
            say(format_args!(
                "container {name}: save {}: {e}",
                path.display()
            ));
        }
    }

    /// Reads the record saved by an earlier daemon, if any.
    pub(crate) fn load_update_record(&mut self, name: &str) {
        let Some(c) = self.containers.get_mut(name) else {
            return;
        };
        let path = c.dirs.base.join(UPDATE_RECORD_FILE);
        let Ok(bytes) = std::fs::read(&path) else {
            return;
        };
        match serde_json::from_slice::<UpdateRecord>(&bytes) {
            Ok(r) => {
                let image = c.spec.image.clone();
                c.update.restore(r, &image);
                if matches!(c.update.phase, Phase::Replacing { .. }) {
                    say(format_args!(
                        "container {name}: an update was on trial; judging it again"
                    ));
                    let limit = start_limit(c);
                    self.timers
                        .schedule_in(Instant::now(), limit, name, 0, TimerKind::UpdateRetry);
                }
            }
            Err(e) => say(format_args!(
                "container {name}: {}: {e}; ignored",
                path.display()
            )),
        }
    }
}

/// Where a container's update record is kept, in its directory.
const UPDATE_RECORD_FILE: &str = "update.json";
