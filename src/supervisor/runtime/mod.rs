//! The containers' lifecycle as data: the state machine, timers, restart
//! backoff and start order. No I/O here.

pub mod container;
pub mod gate_state;
pub mod health;
pub mod machine;

pub mod ordering;
pub mod restart;
pub mod timers;
pub mod update;
