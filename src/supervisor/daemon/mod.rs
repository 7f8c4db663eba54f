//! The daemon shell: the poll loop, signals, reaping, PID 1 duties and
//! sd_notify.

pub mod clock_floor;
pub mod data_partition;
pub mod event_loop;
pub mod hw_watchdog;
pub mod idle_trim;
pub mod notify;
pub mod pid1;
pub mod reaper;
pub mod signals;
