//! The client–daemon boundary: JSON-RPC 2.0 over a Unix socket, one JSON
//! object per line, and the client that speaks it.

pub mod access;
mod admin_methods;
mod admin_params;
pub mod client;
pub mod exec_client;
pub mod link;
mod methods;
pub mod params;
mod peer;
pub mod protocol;
pub mod relay;
mod reply;
mod run_method;
pub mod server;
pub mod ssh;
mod subscriptions;
