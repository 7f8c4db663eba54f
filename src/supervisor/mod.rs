//! Policy and lifecycle: specs to desired state, the event loop, restarts,
//! logs. The only layer that decides what runs and when.

pub mod config_dir;
pub mod container;
pub mod ephemeral;
pub mod event_loop;
pub mod launch;
mod lifecycle;
pub mod logs;
pub mod manager;
pub mod pulling;
mod reaper;
pub mod restart;
pub mod settings;
pub mod signals;
pub mod spec;
mod spec_position;
pub mod timers;
pub mod user;
pub mod validate;
pub mod waiting;

pub use manager::{Supervisor, SupervisorError, SupervisorOptions};
