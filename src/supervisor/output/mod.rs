//! Container output: writing logs, rotation, reading and following them,
//! and the per-container flood limit; and the line reader for the pipes of
//! berth's own helper processes.

pub mod follow;
pub mod line_reader;
pub mod logs;
pub mod ratelimit;
pub mod rotation;
