//! Policy and lifecycle: specs to desired state, the event loop, restarts,
//! logs. The only layer that decides what runs and when.
//!
//! One way down: `daemon` → `ops` → `runtime`, `launch`, `plugins`,
//! `output`, `events` → `spec`.

pub mod config_store;
pub mod daemon;
pub mod events;
pub mod hostnet;
pub mod launch;
pub mod ops;
pub mod output;
pub mod plugins;
pub mod runtime;
pub mod spec;
pub mod writes;

pub use ops::{Supervisor, SupervisorError, SupervisorOptions};

/// The daemon's own log lines, on its stderr (the console in PID 1 mode).
pub fn say(message: std::fmt::Arguments<'_>) {
    eprintln!("berth: {message}");
}
