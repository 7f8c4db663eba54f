//! The client–daemon boundary: JSON-RPC 2.0 over a Unix socket, one JSON
//! object per line, and the client that speaks it.

pub mod access;
mod admin_methods;
mod admin_params;
pub mod client;
pub mod exec_client;
mod methods;
pub mod params;
mod peer;
pub mod protocol;
mod reply;
pub mod server;
mod subscriptions;
