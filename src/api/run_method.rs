//! `run`: an ephemeral container; with `tty` or `stdin` its console is
//! handed to the client (a `run.started` notification carrying the
//! descriptors, SCM_RIGHTS) before the deferred answer, its exit.

use std::os::fd::OwnedFd;

use super::methods::{Outcome, container_state};
use super::params::RunParams;
use super::protocol::{CONTAINER_ERROR, INVALID_PARAMS, RpcError};
use super::reply::supervisor_error;
use crate::supervisor::Supervisor;
use crate::supervisor::ops::run::RunRequest;
use crate::supervisor::runtime::container::Console;

/// A started run whose console goes to the client: its name, and the
/// descriptors with the names the client knows them by.
pub struct Attached {
    pub name: String,
    pub fds: Vec<(&'static str, OwnedFd)>,
}

pub(super) fn run(sup: &mut Supervisor, p: RunParams, token: u64) -> Outcome {
    let wait = p.wait.then_some((token, p.rm));
    let (console, client_fds) = match run_console(&p) {
        Ok(c) => c,
        Err(e) => return Outcome::Reply(Err(e)),
    };
    let attached = console.is_some();
    let req = RunRequest {
        name: p.name,
        spec: p.spec,
        remove_on_exit: p.rm,
        wait,
        console,
    };
    match sup.run_ephemeral(req) {
        Err(e) => Outcome::Reply(Err(supervisor_error(e))),
        Ok(name) if attached => Outcome::Attached(Attached {
            name,
            fds: client_fds,
        }),
        Ok(_) if p.wait => Outcome::Deferred,
        Ok(name) => Outcome::Reply(container_state(sup, &name)),
    }
}

type RunConsole = (
    Option<(Console, Option<OwnedFd>)>,
    Vec<(&'static str, OwnedFd)>,
);

/// `run` with `tty`: two channels the container's first process sends its
/// pty master on, one whose other end goes to the client, one the daemon
/// keeps (never reading it) so a detached terminal stays open. With
/// `stdin` alone: a pipe whose write end goes to the client.
fn run_console(p: &RunParams) -> Result<RunConsole, RpcError> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    if !p.wait && (p.tty || p.stdin) {
        let why = "tty and stdin need wait: true (a client to attach)";
        return Err(RpcError::new(INVALID_PARAMS, why));
    }
    let failed =
        |what: &str, e: nix::errno::Errno| RpcError::new(CONTAINER_ERROR, format!("{what}: {e}"));
    let pair = || {
        socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .map_err(|e| failed("socketpair", e))
    };
    if p.tty {
        let (client, child_a) = pair()?;
        let (hold, child_b) = pair()?;
        let console = Console {
            stdin: None,
            terminal: vec![child_a, child_b],
        };
        return Ok((Some((console, Some(hold))), vec![("terminal", client)]));
    }
    if p.stdin {
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| failed("pipe", e))?;
        let console = Console {
            stdin: Some(read),
            terminal: Vec::new(),
        };
        return Ok((Some((console, None)), vec![("stdin", write)]));
    }
    Ok((None, Vec::new()))
}
