//! The `berth` command line: dispatch to the daemon, the image commands
//! that work on a store directly, and the API client commands.

mod admin_cmd;
mod args;
mod client_cmd;
mod daemon_cmd;
mod events_cmd;
mod image_cmd;
pub mod notify_cmd;
mod progress;
mod run_cmd;
mod run_flags;
mod table;
mod update_cmd;

const USAGE: &str = "usage: berth COMMAND [OPTIONS]

Daemon:
  daemon --config DIR [--root DIR] [--socket PATH] [--cgroup-parent NAME]
                              run the supervisor on DIR/containers/*.json
                              (as PID 1 with no arguments: daemon --config /etc/berth)
  check DIR                   validate DIR/containers/*.json and exit

Images (work on the store directly, no daemon needed):
  import PATH [--name REF] [--root DIR]
                              import an OCI layout directory or a docker-archive tarball
  pull REF [--platform os/arch[/variant]] [--auth-file PATH] [--insecure] [--ca-file PEM] [--root DIR]
                              pull an image from a registry into the store
  images [--json] [--root DIR]
                              list images
  rmi REF [--force] [--root DIR]
                              remove an image reference and what nothing else uses
  prune [--root DIR]          remove every blob and layer no image or container uses
  store verify [--repair] [--json] [--root DIR]
                              re-hash blobs and layers; with --repair remove what is corrupt

Containers (through the daemon's socket: --socket, $BERTH_SOCKET or /run/berth/berth.sock):
  ps [--json]                 list containers
  inspect NAME                a container in full (spec, isolation, cgroup)
  stats NAME [--json]         CPU, memory and pids of a running container
  run [--rm] [--detach] [--name NAME] [--env K=V]... [--entrypoint PROG] [--workdir DIR] [--user USER]
      [--cap-add/--cap-drop CAP] [--security-opt seccomp=...|landlock=off] [--read-only] [--memory SIZE]
      [--cpus N] [--pids-limit N] [--tmpfs PATH[:SIZE]] [-v SRC:DST[:ro]] [--userns auto]
      [--network none|host|cni] [-p [IP:]HOST:CONTAINER] IMAGE [CMD...]
                              run an ephemeral container, print its output, exit with its code
  logs NAME [--tail N] [--since T] [-f]
                              print (or follow) a container's output
  start NAME                  start a stopped container
  restart NAME                stop (if running) and start again
  kill NAME [--signal SIG]    send a signal (default SIGKILL) to the container's process
  info [--json]               the daemon, the machine, container and image counts
  stop NAME                   stop a container (its stop signal, then SIGKILL)
  update NAME|--all [--check] [--json]
                              check the image's tag in its registry now and, unless --check,
                              update (and roll back if the new image fails): docs/update.md
  reload [--json]             re-read the config directory: start new, stop removed, restart changed
  events [--since SEQ] [-f] [--kind GLOB]... [--container NAME] [--json]
                              lifecycle events from the journal, replayed and followed
  version                     print client and daemon versions
  shutdown [--reboot|--halt]  stop every container, then the daemon (as PID 1: power off)
";

/// Runs the command in `argv` (without the program name); returns the
/// process exit code.
pub fn run(argv: &[String]) -> i32 {
    // The kernel starts /init without arguments: as PID 1 that means the
    // daemon with its defaults.
    let pid1_default = ["daemon".to_string()];
    let argv = match argv.is_empty() && std::process::id() == 1 {
        true => &pid1_default[..],
        false => argv,
    };
    let Some((command, rest)) = argv.split_first() else {
        eprint!("{USAGE}");
        return 2;
    };
    let result = match command.as_str() {
        "daemon" => daemon_cmd::daemon(rest),
        "check" => daemon_cmd::check(rest),
        "import" => image_cmd::import(rest),
        "images" => image_cmd::images(rest),
        "rmi" => image_cmd::rmi(rest),
        "pull" => image_cmd::pull(rest),
        "prune" => image_cmd::prune(rest),
        "store" => image_cmd::store(rest),
        "ps" => client_cmd::ps(rest),
        "run" => run_cmd::run(rest),
        "logs" => client_cmd::logs(rest),
        "inspect" => client_cmd::inspect(rest),
        "stats" => client_cmd::stats(rest),
        "reload" => client_cmd::reload(rest),
        "update" => update_cmd::update(rest),
        "events" => events_cmd::events(rest),
        "info" => admin_cmd::info(rest),
        "restart" => admin_cmd::restart(rest),
        "kill" => admin_cmd::kill(rest),
        "start" => client_cmd::start(rest),
        "stop" => client_cmd::stop(rest),
        "version" => client_cmd::version(rest),
        "shutdown" => client_cmd::shutdown(rest),
        notify_cmd::NOTIFY_COMMAND => notify_cmd::notify_main(rest),
        crate::image::unpack_helper::HELPER_COMMAND => {
            Ok(crate::image::unpack_helper::helper_main(rest))
        }
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(0)
        }
        other => Err(format!("unknown command {other:?}; see `berth help`")),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("berth: {message}");
            1
        }
    }
}
