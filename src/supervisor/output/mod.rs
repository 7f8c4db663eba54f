//! Container output: writing logs, rotation, reading and following them,
//! and the per-container flood limit.

pub mod follow;
pub mod logs;
pub mod ratelimit;
pub mod rotation;
