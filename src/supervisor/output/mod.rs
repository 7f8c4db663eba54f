//! Container output: writing logs (files or a RAM ring), rotation, reading and following them,
//! and the per-container flood limit; and the line reader for the pipes of
//! berth's own helper processes.

pub mod follow;
pub mod line_reader;
pub mod logs;
pub mod memory;
pub mod ratelimit;
pub mod rotation;
