//! The container commands, through the daemon's socket.

use super::{Command, Group, JSON, SOCKET, cmd};
use crate::cli::args::Opt;

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
    "NAME | --writes",
    "CPU, memory and pids of a running container; or bytes berth wrote since it started",
    &[
        Opt::switch(
            "writes",
            "bytes written per container log, journal, store and state files",
        ),
        JSON,
        SOCKET,
    ],
    "berth stats --writes",
    Group::Containers,
);

pub const RUN: Command = Command {
    leading: true,
    ..cmd(
        "run",
        "IMAGE [COMMAND [ARG...]]",
        "run a container through the daemon: wait for it, print its output, exit with its code (-it: with a terminal of its own)",
        crate::cli::run_flags::OPTIONS,
        "berth run --rm -e GREETING=hi localhost/demo/busybox:latest sh -c 'echo $GREETING'",
        Group::Containers,
    )
};

pub const EXEC: Command = Command {
    leading: true,
    ..cmd(
        "exec",
        "NAME COMMAND [ARG...]",
        "run a command inside a running container; exit with its code",
        &[
            Opt::switch("interactive", "pass this terminal's stdin to the command").short('i'),
            Opt::switch("tty", "a terminal of the container's own for the command (raw mode, window size followed)").short('t'),
            Opt::value("env", "K=V", "set an environment variable (repeatable)").short('e'),
            Opt::value(
                "user",
                "USER",
                "run as USER (name or uid[:gid], from the container's /etc/passwd)",
            )
            .short('u'),
            Opt::value(
                "workdir",
                "DIR",
                "the working directory inside the container",
            )
            .short('w'),
            SOCKET,
        ],
        "berth exec -i -e DEBUG=1 web sh -c 'kill -HUP 1'",
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

pub const APPLY: Command = cmd(
    "apply",
    "DIR|TARBALL",
    "replace the whole config as one transaction: checked, switched, and undone unless every changed container becomes stable (docs/update.md)",
    &[
        Opt::switch(
            "reset",
            "drop the applied config and go back to the daemon's --config directory",
        ),
        JSON,
        SOCKET,
    ],
    "berth apply ./config.tar.gz",
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
