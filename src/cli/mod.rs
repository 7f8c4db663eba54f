//! The `berth` command line: dispatch to the daemon, the image commands
//! that work on a store directly, and the API client commands.

mod admin_cmd;
mod apply_cmd;
mod args;
mod client_cmd;
pub mod commands;
pub mod convert;
mod daemon_cmd;
mod detach_keys;
mod dial_session;
mod dial_stdio;
mod events_cmd;
mod exec_cmd;
mod exec_tty;
mod help;
pub mod hostnet_cmd;
mod image_cmd;
pub mod mkimage;
pub mod notify_cmd;
mod progress;
mod remote_relay;
mod run_cmd;
mod run_flags;
mod save_cmd;
mod table;
mod update_cmd;
mod writes_cmd;

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
    let argv = match leading_host(argv) {
        Ok((Some(host), rest)) => {
            crate::api::link::set_host(host);
            rest
        }
        Ok((None, rest)) => rest,
        Err(e) => {
            eprintln!("berth: {e}");
            return 2;
        }
    };
    let Some((command, rest)) = argv.split_first() else {
        eprint!("{}", help::overview());
        return 2;
    };
    if let Some(code) = help_or_usage_error(command, rest) {
        return code;
    }
    let result = match command.as_str() {
        "daemon" => daemon_cmd::daemon(rest),
        "check" => daemon_cmd::check(rest),
        "convert" => convert::convert(rest),
        "import" => image_cmd::import(rest),
        "save" => save_cmd::save(rest),
        "images" => image_cmd::images(rest),
        "rmi" => image_cmd::rmi(rest),
        "pull" => image_cmd::pull(rest),
        "prune" => image_cmd::prune(rest),
        "store" => image_cmd::store(rest),
        "mkimage" => mkimage::mkimage(rest),
        "ps" => client_cmd::ps(rest),
        "run" => run_cmd::run(rest),
        "exec" => exec_cmd::exec(rest),
        "logs" => client_cmd::logs(rest),
        "inspect" => client_cmd::inspect(rest),
        "stats" => client_cmd::stats(rest),
        "reload" => client_cmd::reload(rest),
        "update" => update_cmd::update(rest),
        "apply" => apply_cmd::apply(rest),
        "events" => events_cmd::events(rest),
        "info" => admin_cmd::info(rest),
        "restart" => admin_cmd::restart(rest),
        "kill" => admin_cmd::kill(rest),
        "start" => client_cmd::start(rest),
        "stop" => client_cmd::stop(rest),
        "version" => client_cmd::version(rest),
        "shutdown" => client_cmd::shutdown(rest),
        "system" => dial_stdio::system(rest),
        notify_cmd::NOTIFY_COMMAND => notify_cmd::notify_main(rest),
        hostnet_cmd::HOSTNET_COMMAND => hostnet_cmd::hostnet_main(rest),
        crate::kernel::container_init::INIT_COMMAND => Ok(crate::kernel::container_init::run(rest)),
        crate::image::unpack_helper::HELPER_COMMAND => {
            Ok(crate::image::unpack_helper::helper_main(rest))
        }
        "help" | "--help" | "-h" => help_command(rest),
        "completion" => completion(rest),
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

/// `berth --host URL COMMAND ...` (or `-H URL`, `--host=URL`): the daemon
/// every client command talks to (api/link.rs).
fn leading_host(argv: &[String]) -> Result<(Option<&str>, &[String]), String> {
    match argv {
        [flag, url, rest @ ..] if flag == "--host" || flag == "-H" => {
            Ok((Some(url.as_str()), rest))
        }
        [flag] if flag == "--host" || flag == "-H" => {
            Err("--host wants ssh://[user@]host[:port]".into())
        }
        [first, rest @ ..] => Ok(match first.strip_prefix("--host=") {
            Some(url) => (Some(url), rest),
            None => (None, argv),
        }),
        [] => Ok((None, argv)),
    }
}

/// `berth CMD --help` (exit 0), or an option CMD does not take (exit 2,
/// naming it and where to look); None: run the command.
fn help_or_usage_error(command: &str, rest: &[String]) -> Option<i32> {
    let cmd = commands::find(command)?;
    if args::Args::wants_help(rest, cmd.options, cmd.leading) {
        print!("{}", help::command_help(cmd));
        return Some(0);
    }
    let parsed = if cmd.leading {
        args::Args::parse_leading(rest, cmd.options)
    } else {
        args::Args::parse(rest, cmd.options)
    };
    let e = parsed.err()?;
    eprintln!("berth {command}: {e}; see `berth {command} --help`");
    Some(2)
}

/// `berth help [COMMAND]`.
fn help_command(rest: &[String]) -> Result<i32, String> {
    match rest {
        [] => {
            print!("{}", help::overview());
            Ok(0)
        }
        [name] => match commands::find(name) {
            Some(cmd) => {
                print!("{}", help::command_help(cmd));
                Ok(0)
            }
            None => Err(format!("unknown command {name:?}; see `berth help`")),
        },
        _ => Err("usage: berth help [COMMAND]".into()),
    }
}

/// `berth completion bash|zsh`.
fn completion(rest: &[String]) -> Result<i32, String> {
    let script = match rest {
        [shell] if shell == "bash" => help::bash_completion(),
        [shell] if shell == "zsh" => help::zsh_completion(),
        _ => return Err("usage: berth completion bash|zsh".into()),
    };
    print!("{script}");
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::leading_host;

    #[test]
    fn host_is_taken_only_before_the_command() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let argv = v(&["--host", "ssh://d", "ps"]);
        assert_eq!(leading_host(&argv).unwrap(), (Some("ssh://d"), &argv[2..]));
        let argv = v(&["--host=ssh://d", "ps"]);
        assert_eq!(leading_host(&argv).unwrap(), (Some("ssh://d"), &argv[1..]));
        let argv = v(&["exec", "--host", "x"]);
        assert_eq!(leading_host(&argv).unwrap(), (None, &argv[..]));
        assert!(leading_host(&v(&["-H"])).is_err());
    }
}
