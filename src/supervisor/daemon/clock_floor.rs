//! A clock floor, as systemd keeps one: a device without a battery-backed
//! clock boots at 1970 until NTP answers, and then every TLS certificate
//! is "not yet valid" and every timestamp berth writes is wrong. At start
//! the system time must not be earlier than berth's own build (its commit
//! time, build.rs) nor than the newest write to its event journal (the
//! last moment this machine is known to have lived). As the machine's
//! init berth sets the clock forward to that floor and says so; as a
//! service the clock is the host's business, so it only warns.

use std::path::Path;
use std::time::SystemTime;

use crate::kernel::clock::build_time;
use crate::kernel::machine::set_realtime;
use crate::supervisor::say;

/// The newest modification time among the journal's files.
fn journal_time(dir: &Path) -> Option<SystemTime> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .take(4096)
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max()
}

/// Where the clock must at least be, when `now` is behind it.
fn floor_for(
    now: SystemTime,
    build: SystemTime,
    journal: Option<SystemTime>,
) -> Option<SystemTime> {
    let floor = journal.map_or(build, |j| j.max(build));
    (now < floor).then_some(floor)
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Checks the clock against the floor; `may_set` (PID 1) steps it.
pub fn apply_clock_floor(journal_dir: &Path, may_set: bool) {
    let now = SystemTime::now();
    let Some(floor) = floor_for(now, build_time(), journal_time(journal_dir)) else {
        return;
    };
    let (now_text, floor_text) = (rfc3339(now), rfc3339(floor));
    if !may_set {
        return say(format_args!(
            "clock: warning: the system time {now_text} is before {floor_text} (berth's build or its last event); TLS certificates will look not yet valid until the clock is set"
        ));
    }
    match set_realtime(floor) {
        Ok(()) => say(format_args!(
            "clock: the system time {now_text} was before {floor_text} (berth's build or its last event): set forward to it until the clock is synchronized"
        )),
        Err(e) => say(format_args!("clock: set forward to {floor_text}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn the_floor_is_the_newer_of_the_build_and_the_journal() {
        let t = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(floor_for(t(5), t(100), None), Some(t(100)));
        assert_eq!(floor_for(t(5), t(100), Some(t(200))), Some(t(200)));
        assert_eq!(floor_for(t(5), t(100), Some(t(50))), Some(t(100)));
        assert_eq!(floor_for(t(300), t(100), Some(t(200))), None);
        assert!(build_time() > t(1_700_000_000), "build.rs gave no epoch");
    }
}
