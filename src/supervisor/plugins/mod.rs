//! What berth runs on a container's behalf but does not own: OCI hooks,
//! CNI plugins, Docker volume plugins, CDI device specs. No knowledge of the supervisor.

pub mod cdi;
pub mod hooks;
pub mod network;
pub mod volumes;
