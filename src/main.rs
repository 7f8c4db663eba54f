//! The `berth` binary: the daemon and its client in one.

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(berth::cli::run(&argv));
}
