//! berth: run OCI containers as hardened, supervised services.

pub mod fetch;
pub mod image;
pub mod kernel;

fn main() {}
