//! berth: run OCI containers as hardened, supervised services on small
//! Linux machines. One binary: the daemon, and the client that talks to it.

pub mod api;
mod cli;
pub mod fetch;
pub mod image;
pub mod kernel;
pub mod supervisor;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(cli::run(&argv));
}
