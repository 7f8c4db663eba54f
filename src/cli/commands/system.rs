//! The daemon, `check`, and this tool's own `help` and `completion`.

use super::{Command, Group, SOCKET, cmd};
use crate::cli::args::Opt;

pub const DAEMON: Command = cmd(
    "daemon",
    "",
    "run the supervisor on DIR/containers/*.json (as PID 1 with no arguments: the config in /etc/berth)",
    &[
        Opt::value(
            "config",
            "DIR",
            "the config directory: berth.json and containers/ (required unless PID 1)",
        ),
        Opt::value(
            "root",
            "DIR",
            "the image store and container state (default /var/lib/berth)",
        ),
        Opt::value(
            "socket",
            "PATH",
            "where to answer the API (default /run/berth/berth.sock)",
        ),
        Opt::value(
            "cgroup-parent",
            "NAME",
            "the cgroup holding every container's (default berth)",
        ),
    ],
    "berth daemon --config /etc/berth",
    Group::Daemon,
);

pub const CHECK: Command = cmd(
    "check",
    "[DIR]",
    "validate DIR/berth.json and DIR/containers/*.json, printing each problem as file:line:col; without DIR, the running daemon's active config",
    &[SOCKET],
    "berth check /etc/berth",
    Group::Daemon,
);

pub const CONVERT: Command = cmd(
    "convert",
    "COMPOSE_FILE",
    "turn a docker-compose file into berth specs (DIR/containers/SERVICE.json), listing each key it cannot map; exit 3 when some could not be",
    &[
        Opt::value(
            "output",
            "DIR",
            "the config directory to write containers/SERVICE.json into (default: the current directory)",
        )
        .short('o'),
        Opt::switch(
            "strict",
            "write nothing (exit 3) when any key cannot be mapped",
        ),
        Opt::value(
            "env-file",
            "PATH",
            "variables for ${VAR} interpolation (default: .env beside the compose file; the environment wins)",
        ),
    ],
    "berth convert docker-compose.yml -o /etc/berth",
    Group::Daemon,
);

pub const COMPLETION: Command = cmd(
    "completion",
    "bash|zsh",
    "print a shell completion script (bash: source <(berth completion bash))",
    &[],
    "berth completion bash > /etc/bash_completion.d/berth",
    Group::Daemon,
);

pub const HELP: Command = cmd(
    "help",
    "[COMMAND]",
    "list the commands, or explain one",
    &[],
    "berth help run",
    Group::Daemon,
);

pub const SYSTEM: Command = cmd(
    "system",
    "dial-stdio",
    "dial-stdio: join stdin/stdout to the daemon's socket, relaying descriptors in-band; what `berth --host ssh://...` runs on the device through ssh",
    &[SOCKET],
    "berth system dial-stdio --socket /run/berth/berth.sock",
    Group::Daemon,
);
