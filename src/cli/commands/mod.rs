//! Every command of the `berth` client: its synopsis, what it does, its
//! options (the very table its parser reads, so an option cannot exist
//! without its help) and an example. `berth help`, `berth CMD --help` and
//! the shell completions are made from this table.

use super::args::Opt;

mod containers;
mod images;
mod system;

pub use containers::*;
pub use images::*;
pub use system::*;

/// Where a command does its work, for `berth help`'s grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Daemon,
    Images,
    Containers,
}

#[derive(Debug)]
pub struct Command {
    pub name: &'static str,
    /// The positionals after the name (`NAME`, `IMAGE [COMMAND [ARG...]]`).
    pub args: &'static str,
    pub summary: &'static str,
    pub options: &'static [Opt],
    pub example: &'static str,
    /// Options stop at the first positional (the rest is a container's
    /// command line).
    pub leading: bool,
    pub group: Group,
}

pub(super) const SOCKET: Opt = Opt::value(
    "socket",
    "PATH",
    "the daemon's socket (default: $BERTH_SOCKET, else /run/berth/berth.sock)",
);
pub(super) const ROOT: Opt = Opt::value(
    "root",
    "DIR",
    "the image store, used directly without a daemon (default /var/lib/berth)",
);
pub(super) const JSON: Opt = Opt::switch("json", "print JSON instead of a table");

pub(super) const fn cmd(
    name: &'static str,
    args: &'static str,
    summary: &'static str,
    options: &'static [Opt],
    example: &'static str,
    group: Group,
) -> Command {
    Command {
        name,
        args,
        summary,
        options,
        example,
        leading: false,
        group,
    }
}

/// Every user-facing command, in `berth help`'s order.
pub const COMMANDS: &[&Command] = &[
    &DAEMON,
    &CHECK,
    &CONVERT,
    &COMPLETION,
    &HELP,
    &SYSTEM,
    &IMPORT,
    &SAVE,
    &PULL,
    &IMAGES,
    &RMI,
    &PRUNE,
    &STORE,
    &MKIMAGE,
    &PS,
    &INSPECT,
    &STATS,
    &RUN,
    &EXEC,
    &LOGS,
    &START,
    &STOP,
    &RESTART,
    &KILL,
    &RELOAD,
    &UPDATE,
    &APPLY,
    &EVENTS,
    &INFO,
    &VERSION,
    &SHUTDOWN,
];

pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().copied().find(|c| c.name == name)
}
