//! `berth _hostnet`: the helper process that configures the machine's own
//! links, /etc/resolv.conf and clock (supervisor::hostnet), started by the
//! daemon when it is the machine's init and berth.json has `host_network`
//! (hidden from the usage). It dies with the daemon.

use super::args::{Args, Opt};
use crate::supervisor::hostnet::{LOG_PREFIX, run_hostnet};
use crate::supervisor::spec::host_network::HostNetworkSettings;
use crate::supervisor::spec::validate::parse_checked;

pub use crate::supervisor::hostnet::HOSTNET_COMMAND;
const HOSTNET_USAGE: &str = "berth _hostnet --settings JSON --parent-pid PID";

/// Runs until killed; returns only on an error.
pub fn hostnet_main(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(
        argv,
        &[
            Opt::value("settings", "JSON", "berth.json's host_network, as checked"),
            Opt::value(
                "parent-pid",
                "PID",
                "the daemon, whose death ends the helper",
            ),
        ],
    )?;
    args.expect_positional(0, HOSTNET_USAGE)?;
    let text = args
        .value("settings")
        .ok_or_else(|| format!("usage: {HOSTNET_USAGE}"))?;
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| format!("prctl PR_SET_PDEATHSIG: {e}"))?;
    if let Some(parent) = args.value("parent-pid")
        && parent.parse::<i32>().ok() != Some(nix::unistd::getppid().as_raw())
    {
        return Err(format!(
            "the parent {parent} exited before the helper started"
        ));
    }
    // The same checks as berth.json's, so nothing unchecked reaches the
    // links or the clock even if the argument were not the daemon's.
    let check = |s: &HostNetworkSettings| {
        let mut out = Vec::new();
        let meaning = crate::supervisor::spec::host_network::check_host_network(
            s,
            &mut crate::supervisor::spec::validate_bounds::BoundsCheck::new(&mut out),
        );
        out.extend(meaning);
        out
    };
    let settings: HostNetworkSettings =
        parse_checked(std::path::Path::new("--settings"), text, check).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            lines.join("\n")
        })?;
    eprintln!("{LOG_PREFIX}started");
    run_hostnet(&settings)?;
    Ok(0)
}
