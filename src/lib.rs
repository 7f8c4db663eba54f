//! berth: run OCI containers as hardened, supervised services on small
//! Linux machines. The layers, lowest first: `kernel` (mechanism), `fetch`
//! (distribution), `image` (content), `supervisor` (policy), `api` (the
//! client–daemon boundary). A lower layer never imports a higher one.

pub mod api;
pub mod cli;
pub mod fetch;
pub mod image;
pub mod kernel;
pub mod supervisor;
