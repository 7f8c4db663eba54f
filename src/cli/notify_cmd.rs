//! `berth _notify`: the webhook notifier helper process the daemon starts
//! (hidden from the usage). It delivers the journal to the configured
//! endpoints (supervisor::notifier) and dies with the daemon.

use std::fs::File;
use std::path::PathBuf;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::Signal;

use super::args::{Args, Opt};
use crate::supervisor::events::notifier::{LOG_PREFIX, NotifierOptions, run_notifier};
use crate::supervisor::spec::webhooks::load_webhooks;

/// The hidden subcommand's name.
pub const NOTIFY_COMMAND: &str = "_notify";
const NOTIFY_USAGE: &str =
    "berth _notify --journal DIR --state DIR --config FILE [--parent-pid PID]";
/// How often the journal is read for new events once an endpoint is caught up.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Runs the notifier until the daemon dies; returns only on an error (or 0
/// when there is no webhook to serve).
pub fn notify_main(argv: &[String]) -> Result<i32, String> {
    let args = Args::parse(
        argv,
        &[
            Opt::value("journal", "DIR", "the event journal"),
            Opt::value("state", "DIR", "where delivery progress is kept"),
            Opt::value("config", "DIR", "berth.json's webhooks"),
            Opt::value(
                "parent-pid",
                "PID",
                "the daemon, whose death ends the notifier",
            ),
        ],
    )?;
    args.expect_positional(0, NOTIFY_USAGE)?;
    let path = |name: &str| {
        args.value(name)
            .map(PathBuf::from)
            .ok_or_else(|| format!("usage: {NOTIFY_USAGE}"))
    };
    let (journal, state, config) = (path("journal")?, path("state")?, path("config")?);
    die_with_parent(args.value("parent-pid"))?;
    let hooks = load_webhooks(&config).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        lines.join("\n")
    })?;
    if hooks.is_empty() {
        eprintln!(
            "{LOG_PREFIX}no webhooks in {}; nothing to do",
            config.display()
        );
        return Ok(0);
    }
    std::fs::create_dir_all(&state).map_err(|e| format!("create {}: {e}", state.display()))?;
    // Two notifiers on one state directory would race on the cursors.
    let _lock = lock_state(&state)?;
    let opts = NotifierOptions {
        journal,
        state,
        poll: POLL_INTERVAL,
    };
    run_notifier(&opts, hooks)?;
    Ok(0)
}

/// PR_SET_PDEATHSIG: the kernel kills this process when the daemon (the
/// thread that forked it; the daemon is single-threaded) exits, so no
/// notifier outlives it. SIGKILL, because a signal mask inherited from the
/// daemon could block anything else, and at-least-once delivery makes
/// dying at any instant safe. With `parent`, closes the race of a daemon
/// that died before the prctl (prctl(2)).
fn die_with_parent(parent: Option<&str>) -> Result<(), String> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|e| format!("prctl PR_SET_PDEATHSIG: {e}"))?;
    let Some(parent) = parent else {
        return Ok(());
    };
    let expected: i32 = parent
        .parse()
        .map_err(|_| format!("--parent-pid {parent:?}: expected a process id"))?;
    if nix::unistd::getppid().as_raw() != expected {
        return Err(format!(
            "the parent {expected} exited before the notifier started"
        ));
    }
    Ok(())
}

fn lock_state(state: &std::path::Path) -> Result<Flock<File>, String> {
    let path = state.join(".lock");
    let file = File::create(&path).map_err(|e| format!("create {}: {e}", path.display()))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        format!(
            "lock {}: {errno} (another notifier uses this state directory)",
            path.display()
        )
    })
}
