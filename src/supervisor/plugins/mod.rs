//! What berth runs on a container's behalf but does not own: OCI hooks,
//! CNI plugins, Docker volume plugins. No knowledge of the supervisor.

pub mod hooks;
pub mod network;
pub mod volumes;
