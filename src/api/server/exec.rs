//! `exec` on the server side: the command is started with the caller's
//! identity (SO_PEERCRED) for its event, and its pipes go to the client
//! as SCM_RIGHTS on the first byte of an `exec.started` notification;
//! the daemon keeps no copy, so it never relays a byte. The exit code is
//! the request's answer, sent when the reaper reports the exit.

use std::io::{ErrorKind, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use serde_json::{Value, json};

use super::Connection;
use crate::api::params::ExecParams;
use crate::api::peer::Peer;
use crate::api::protocol::RpcError;
use crate::api::reply::supervisor_error;
use crate::api::run_method::Attached;
use crate::supervisor::Supervisor;
use crate::supervisor::ops::exec::ExecRequest;

/// Starts the exec; its `exec.started` line, the descriptors to send
/// with it pushed onto `fds` (stdout, stderr, then stdin if asked; or the
/// terminal socket alone).
pub(super) fn start(
    sup: &mut Supervisor,
    p: ExecParams,
    token: u64,
    peer: Peer,
    id: &Value,
    fds: &mut Vec<OwnedFd>,
) -> Result<Vec<u8>, RpcError> {
    let p_tty = p.tty;
    let req = ExecRequest {
        name: p.name,
        command: p.command,
        env: p.env,
        user: p.user,
        workdir: p.workdir,
        stdin: p.stdin,
        tty: p.tty,
        peer_uid: peer.uid,
        peer_pid: peer.pid,
    };
    let started = sup.exec_start(req, token).map_err(supervisor_error)?;
    let mut names = vec![if p_tty { "terminal" } else { "stdout" }];
    fds.push(started.stdout);
    if let Some(stderr) = started.stderr {
        fds.push(stderr);
        names.push("stderr");
    }
    if let Some(stdin) = started.stdin {
        fds.push(stdin);
        names.push("stdin");
    }
    Ok(started_line(
        "exec.started",
        json!({"id": id, "exec_pid": started.pid, "fds": names}),
    ))
}

/// `run -i`/`-t`: the `run.started` line, its descriptors pushed onto
/// `fds` in the order `params.fds` names them.
pub(super) fn attach(a: Attached, id: &Value, fds: &mut Vec<OwnedFd>) -> Vec<u8> {
    let names: Vec<&str> = a.fds.iter().map(|(n, _)| *n).collect();
    let params = json!({"id": id, "name": a.name, "fds": names});
    fds.extend(a.fds.into_iter().map(|(_, fd)| fd));
    started_line("run.started", params)
}

/// The notification the descriptors ride on (their first byte): `fds`
/// in `params` names them, in order, for the client (or for a relaying
/// `berth system dial-stdio`, docs/api.md).
fn started_line(method: &str, params: Value) -> Vec<u8> {
    let note = json!({"jsonrpc": "2.0", "method": method, "params": params});
    let mut line = serde_json::to_vec(&note).unwrap_or_default();
    line.push(b'\n');
    line
}

/// Writes what it can, descriptors riding on the first byte of the line
/// they were queued with; true when the connection is broken.
pub(super) fn flush_output(conn: &mut Connection) -> bool {
    while !conn.output.is_empty() {
        let (end, with_fds) = match conn.fds.front() {
            Some((0, _)) => (conn.fds.get(1).map_or(conn.output.len(), |f| f.0), true),
            Some((at, _)) => (*at, false),
            None => (conn.output.len(), false),
        };
        let chunk = &conn.output[..end.clamp(1, conn.output.len())];
        let sent = match conn.fds.front() {
            Some((_, fds)) if with_fds => send_with_fds(&conn.stream, chunk, fds),
            _ => conn.stream.write(chunk),
        };
        match sent {
            Ok(0) => return true,
            Ok(n) => {
                conn.output.drain(..n);
                if with_fds {
                    conn.fds.pop_front();
                }
                for f in conn.fds.iter_mut() {
                    f.0 = f.0.saturating_sub(n);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
    false
}

fn send_with_fds(stream: &UnixStream, bytes: &[u8], fds: &[OwnedFd]) -> std::io::Result<usize> {
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let iov = [std::io::IoSlice::new(bytes)];
    let cmsg = [ControlMessage::ScmRights(&raw)];
    let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
    sendmsg::<()>(stream.as_raw_fd(), &iov, &cmsg, flags, None).map_err(std::io::Error::from)
}
