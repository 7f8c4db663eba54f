//! berth.json's `watchdog`: the hardware watchdog is petted from the loop,
//! at a third of its timeout, and only there — a loop that stops turning
//! (wedged in a call, stopped, dead) stops the petting and the device
//! resets the machine. A clean shutdown disarms it (magic close) just
//! before the end, so only an unclean end resets.

use std::time::{Duration, Instant};

use crate::kernel::watchdog::{Watchdog, WatchdogInfo};
use crate::supervisor::say;
use crate::supervisor::spec::machine_settings::WatchdogSettings;

pub struct HardwareWatchdog {
    dog: Watchdog,
    interval: Duration,
    next: Instant,
}

impl HardwareWatchdog {
    /// Opens and arms it; a device that cannot be opened is logged and the
    /// daemon runs on without one (it cannot do better by refusing to run).
    pub fn arm(settings: &WatchdogSettings) -> Option<HardwareWatchdog> {
        let dog = match Watchdog::open(&settings.device, settings.timeout.0) {
            Ok(dog) => dog,
            Err(e) => {
                say(format_args!("watchdog: {e}; running without it"));
                return None;
            }
        };
        let interval = dog.timeout() / 3;
        say(format_args!(
            "watchdog: {} armed, timeout {} s, petted every {} ms while the loop turns",
            dog.path().display(),
            dog.timeout().as_secs(),
            interval.as_millis()
        ));
        Some(HardwareWatchdog {
            dog,
            interval,
            next: Instant::now() + interval,
        })
    }

    pub fn info(&self) -> WatchdogInfo {
        WatchdogInfo {
            device: self.dog.path().to_path_buf(),
            timeout_secs: self.dog.timeout().as_secs(),
        }
    }

    /// When the loop must wake to pet it.
    pub fn deadline(&self) -> Instant {
        self.next
    }

    /// Called every loop turn: pets it when due.
    pub fn tick(&mut self, now: Instant) {
        if now < self.next {
            return;
        }
        if let Err(e) = self.dog.keepalive() {
            say(format_args!("watchdog: {e}"));
        }
        self.next = now + self.interval;
    }

    /// A clean end: no reset.
    pub fn disarm(self) {
        match self.dog.magic_close() {
            Ok(()) => say(format_args!("watchdog: disarmed")),
            Err(e) => say(format_args!("watchdog: {e}")),
        }
    }
}
