//! Policy and lifecycle: specs to desired state, the event loop, restarts,
//! logs. The only layer that decides what runs and when.

pub mod access;
pub mod config_dir;
pub mod container;
mod dependencies;
pub mod ephemeral;
pub mod event_loop;
pub mod events;
pub mod hardening;
pub mod health;
pub mod hooks;
pub mod journal;
pub mod launch;
mod lifecycle;
pub mod log_follow;
pub mod log_rotation;
pub mod logs;
pub mod manager;
pub mod network;
mod networking;
pub mod notifier;
mod notifier_process;
pub mod notify;
mod ordering;
pub mod pid1;
pub mod pulling;
pub mod ratelimit;
mod reaper;
pub mod reload;
pub mod resources;
pub mod restart;
pub mod settings;
pub mod signals;
pub mod spec;
pub mod spec_hardening;
mod spec_position;
pub mod spec_service;
pub mod timers;
pub mod user;
mod userns_ranges;
pub mod validate;
mod validate_hardening;
pub mod volumes;
pub mod waiting;
pub mod webhooks;

pub use manager::{Supervisor, SupervisorError, SupervisorOptions};
