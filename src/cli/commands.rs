//! Every command of the `berth` client: its synopsis, what it does, its
//! options (the very table its parser reads, so an option cannot exist
//! without its help) and an example. `berth help`, `berth CMD --help` and
//! the shell completions are made from this table.

use super::args::Opt;

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

const SOCKET: Opt = Opt::value(
    "socket",
    "PATH",
    "the daemon's socket (default: $BERTH_SOCKET, else /run/berth/berth.sock)",
);
const ROOT: Opt = Opt::value(
    "root",
    "DIR",
    "the image store, used directly without a daemon (default /var/lib/berth)",
);
const JSON: Opt = Opt::switch("json", "print JSON instead of a table");

const fn cmd(
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
    "DIR",
    "validate DIR/berth.json and DIR/containers/*.json, printing each problem as file:line:col",
    &[],
    "berth check /etc/berth",
    Group::Daemon,
);

pub const IMPORT: Command = cmd(
    "import",
    "PATH",
    "import an OCI layout directory or a docker-archive tarball into the store",
    &[
        Opt::value(
            "name",
            "REF",
            "name the image REF instead of the name the archive carries",
        ),
        ROOT,
    ],
    "berth import ./busybox.tar --name localhost/demo/busybox:latest",
    Group::Images,
);

pub const PULL: Command = cmd(
    "pull",
    "REF",
    "pull an image from a registry (through the daemon, or into --root directly)",
    &[
        Opt::value(
            "platform",
            "OS/ARCH[/VARIANT]",
            "the platform to pull from a multi-platform image (default: this machine's)",
        ),
        Opt::value(
            "auth-file",
            "PATH",
            "credentials in Docker's config.json format (default: the usual places)",
        ),
        Opt::switch(
            "insecure",
            "allow plain HTTP to a registry that is not on loopback",
        ),
        Opt::value(
            "ca-file",
            "PEM",
            "trust this CA bundle instead of the system's",
        ),
        Opt::value(
            "timeout",
            "SECS",
            "each request's timeout, 1-3600 (default 30)",
        ),
        Opt::value(
            "max-rate",
            "BYTES/S",
            "cap the download rate, all layers together (\"1m\" is 1 MiB/s; default: berth.json pull.max_rate, else none)",
        ),
        Opt::value(
            "max-parallel",
            "N",
            "layers downloaded at once, 1-16 (default: berth.json pull.max_parallel, else 3)",
        ),
        Opt::value(
            "config",
            "DIR",
            "read berth.json's registries, pull and store settings from DIR",
        ),
        ROOT,
        SOCKET,
    ],
    "berth pull 127.0.0.1:5000/demo/busybox:1 --max-rate 512k",
    Group::Images,
);

pub const IMAGES: Command = cmd(
    "images",
    "",
    "list the images in the store",
    &[JSON, ROOT],
    "berth images --json",
    Group::Images,
);

pub const RMI: Command = cmd(
    "rmi",
    "REF",
    "remove an image reference, and what nothing else uses",
    &[
        Opt::switch(
            "force",
            "remove it even while a container uses it (the container keeps its layers)",
        ),
        JSON,
        ROOT,
    ],
    "berth rmi localhost/demo/busybox:latest",
    Group::Images,
);

pub const PRUNE: Command = cmd(
    "prune",
    "",
    "remove every blob and layer that no image or container uses",
    &[JSON, ROOT],
    "berth prune --json",
    Group::Images,
);

pub const STORE: Command = cmd(
    "store",
    "verify",
    "re-hash every blob and layer in the store",
    &[
        Opt::switch(
            "repair",
            "remove what is corrupt (the next pull fetches it again)",
        ),
        JSON,
        ROOT,
    ],
    "berth store verify --repair",
    Group::Images,
);

pub const PS: Command = cmd(
    "ps",
    "",
    "list containers and their states",
    &[JSON, SOCKET],
    "berth ps --json",
    Group::Containers,
);

pub const INSPECT: Command = cmd(
    "inspect",
    "NAME",
    "a container in full: spec, state, isolation, cgroup, devices",
    &[SOCKET],
    "berth inspect web",
    Group::Containers,
);

pub const STATS: Command = cmd(
    "stats",
    "NAME",
    "CPU, memory and pids of a running container",
    &[JSON, SOCKET],
    "berth stats web --json",
    Group::Containers,
);

pub const RUN: Command = Command {
    leading: true,
    ..cmd(
        "run",
        "IMAGE [COMMAND [ARG...]]",
        "run a container through the daemon: wait for it, print its output, exit with its code",
        super::run_flags::OPTIONS,
        "berth run --rm -e GREETING=hi localhost/demo/busybox:latest sh -c 'echo $GREETING'",
        Group::Containers,
    )
};

pub const LOGS: Command = cmd(
    "logs",
    "NAME",
    "print (or follow) a container's output",
    &[
        Opt::value("tail", "N", "only the last N lines"),
        Opt::value(
            "since",
            "TIME",
            "only lines after TIME (RFC 3339, or a duration like 10m)",
        ),
        Opt::switch("follow", "keep printing new output until interrupted").short('f'),
        Opt::switch("json", "print each entry as a json-file line"),
        SOCKET,
    ],
    "berth logs web --tail 20 -f",
    Group::Containers,
);

pub const START: Command = cmd(
    "start",
    "NAME",
    "start a stopped container",
    &[SOCKET],
    "berth start web",
    Group::Containers,
);

pub const STOP: Command = cmd(
    "stop",
    "NAME",
    "stop a container: its stop signal, then SIGKILL after its stop timeout",
    &[
        Opt::value(
            "timeout",
            "SECS",
            "seconds before SIGKILL (default: the spec's stop_timeout)",
        ),
        SOCKET,
    ],
    "berth stop web --timeout 5",
    Group::Containers,
);

pub const RESTART: Command = cmd(
    "restart",
    "NAME",
    "stop the container (if running) and start it again",
    &[SOCKET],
    "berth restart web",
    Group::Containers,
);

pub const KILL: Command = cmd(
    "kill",
    "NAME",
    "send a signal to the container's process",
    &[
        Opt::value(
            "signal",
            "SIG",
            "the signal, by name or number (default SIGKILL)",
        ),
        SOCKET,
    ],
    "berth kill web --signal HUP",
    Group::Containers,
);

pub const RELOAD: Command = cmd(
    "reload",
    "",
    "re-read the config directory: start new containers, stop removed ones, restart changed ones",
    &[JSON, SOCKET],
    "berth reload",
    Group::Containers,
);

pub const UPDATE: Command = cmd(
    "update",
    "NAME|--all",
    "check the image's tag in its registry now and, unless --check, update (rolled back if the new image fails; docs/update.md)",
    &[
        Opt::switch("all", "every container whose update.policy is \"digest\""),
        Opt::switch(
            "check",
            "only report the current and available digests; change nothing",
        ),
        JSON,
        SOCKET,
    ],
    "berth update web --check",
    Group::Containers,
);

pub const EVENTS: Command = cmd(
    "events",
    "",
    "lifecycle events from the daemon's journal, replayed and followed",
    &[
        Opt::value(
            "since",
            "SEQ",
            "replay from after this sequence number (0: everything kept)",
        ),
        Opt::switch("follow", "keep printing new events until interrupted").short('f'),
        Opt::value(
            "kind",
            "GLOB",
            "only events whose kind matches (repeatable: container.*)",
        ),
        Opt::value("container", "NAME", "only this container's events"),
        JSON,
        SOCKET,
    ],
    "berth events --since 0 --kind 'container.*' -f",
    Group::Containers,
);

pub const INFO: Command = cmd(
    "info",
    "",
    "the daemon, the machine, and how many containers and images",
    &[JSON, SOCKET],
    "berth info",
    Group::Containers,
);

pub const VERSION: Command = cmd(
    "version",
    "",
    "print the client's and the daemon's versions",
    &[SOCKET],
    "berth version",
    Group::Containers,
);

pub const SHUTDOWN: Command = cmd(
    "shutdown",
    "",
    "stop every container, then the daemon (as PID 1: then power off)",
    &[
        Opt::switch("reboot", "as PID 1, reboot instead of powering off"),
        Opt::switch("halt", "as PID 1, halt instead of powering off"),
        SOCKET,
    ],
    "berth shutdown --reboot",
    Group::Containers,
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

/// Every user-facing command, in `berth help`'s order.
pub const COMMANDS: &[&Command] = &[
    &DAEMON,
    &CHECK,
    &COMPLETION,
    &HELP,
    &IMPORT,
    &PULL,
    &IMAGES,
    &RMI,
    &PRUNE,
    &STORE,
    &PS,
    &INSPECT,
    &STATS,
    &RUN,
    &LOGS,
    &START,
    &STOP,
    &RESTART,
    &KILL,
    &RELOAD,
    &UPDATE,
    &EVENTS,
    &INFO,
    &VERSION,
    &SHUTDOWN,
];

pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().copied().find(|c| c.name == name)
}
