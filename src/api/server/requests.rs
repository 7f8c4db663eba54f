//! One connection's requests: reading its lines (bounded), checking each
//! method against the connection's access, dispatching it, and keeping
//! what a deferred, followed or subscribed answer still owes (`Pending`);
//! then writing the output back without blocking.

use std::io::{ErrorKind, Read};
use std::os::fd::{OwnedFd, RawFd};

use super::{
    Connection, Follower, MAX_REQUEST_LINE_BYTES, OUTPUT_HIGH_WATER_BYTES, Pending,
    READ_CHUNK_BYTES,
};
use crate::api::access::{Access, READ_ONLY_METHODS};
use crate::api::methods::{LogFollow, Outcome, dispatch, log_entry_line};
use crate::api::peer::Peer;
use crate::api::protocol::{
    INVALID_REQUEST, PERMISSION_DENIED, RpcError, error_line, parse_request, success_line,
};
use crate::supervisor::Supervisor;

pub(super) fn read_requests(
    fd: RawFd,
    conn: &mut Connection,
    sup: &mut Supervisor,
    pending: &mut Pending,
) {
    let mut buf = [0u8; READ_CHUNK_BYTES];
    loop {
        match conn.stream.read(&mut buf) {
            Ok(0) => {
                conn.done_reading = true;
                break;
            }
            Ok(n) => {
                conn.input.extend_from_slice(&buf[..n]);
                handle_lines(fd, conn, sup, pending);
                if conn.done_reading || conn.output.len() > OUTPUT_HIGH_WATER_BYTES {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => {
                conn.done_reading = true;
                break;
            }
        }
    }
}

fn handle_lines(fd: RawFd, conn: &mut Connection, sup: &mut Supervisor, pending: &mut Pending) {
    let mut start = 0;
    while let Some(nl) = conn.input[start..].iter().position(|b| *b == b'\n') {
        let line = &conn.input[start..start + nl];
        start += nl + 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if line.len() > MAX_REQUEST_LINE_BYTES {
            refuse_oversized(conn);
            return;
        }
        let mut fds = Vec::new();
        let caller = (conn.access, conn.peer);
        let reply = handle_line(line, sup, fd, pending, caller, &mut fds);
        if !fds.is_empty() && !reply.is_empty() {
            conn.fds.push_back((conn.output.len(), fds));
        }
        conn.output.extend_from_slice(&reply);
    }
    conn.input.drain(..start);
    if conn.input.len() > MAX_REQUEST_LINE_BYTES {
        refuse_oversized(conn);
    }
}

fn refuse_oversized(conn: &mut Connection) {
    let err = RpcError::new(
        INVALID_REQUEST,
        format!("request line longer than {MAX_REQUEST_LINE_BYTES} bytes"),
    );
    conn.output
        .extend_from_slice(&error_line(&serde_json::Value::Null, &err));
    conn.input.clear();
    conn.done_reading = true;
}

fn handle_line(
    line: &[u8],
    sup: &mut Supervisor,
    fd: RawFd,
    pending: &mut Pending,
    (access, peer): (Access, Peer),
    fds: &mut Vec<OwnedFd>,
) -> Vec<u8> {
    let req = match parse_request(line) {
        Ok(req) => req,
        Err((id, err)) => return error_line(&id, &err),
    };
    if access == Access::ReadOnly && !READ_ONLY_METHODS.contains(&req.method.as_str()) {
        let err = RpcError::new(
            PERMISSION_DENIED,
            format!(
                "permission denied: {:?} changes things; this client may only read",
                req.method
            ),
        );
        return req.id.map(|id| error_line(&id, &err)).unwrap_or_default();
    }
    pending.next_token += 1;
    let token = pending.next_token;
    match (
        dispatch(sup, &req.method, req.params, token, access),
        req.id,
    ) {
        (Outcome::Deferred, id) => {
            pending.by_token.insert(token, (fd, id));
            Vec::new()
        }
        (Outcome::Follow(f), Some(id)) => start_follow(pending, fd, token, id, f),
        (Outcome::Follow(_), None) => Vec::new(),
        (Outcome::Exec(p), Some(id)) => match super::exec::start(sup, *p, token, peer, &id, fds) {
            Ok(line) => {
                pending.by_token.insert(token, (fd, Some(id)));
                line
            }
            Err(e) => error_line(&id, &e),
        },
        // Without an id there is no one to give the pipes or the answer.
        (Outcome::Exec(_), None) => Vec::new(),
        (Outcome::Attached(a), Some(id)) => {
            let line = super::exec::attach(a, &id, fds);
            pending.by_token.insert(token, (fd, Some(id)));
            line
        }
        // Its waiter's answer goes nowhere; the console closes with it.
        (Outcome::Attached(_), None) => Vec::new(),
        (Outcome::Subscribe(sub), id) => {
            // Kept like a deferred request: its connection stays open.
            pending.by_token.insert(token, (fd, id));
            pending.subscriptions.add(token, fd, sub);
            Vec::new()
        }
        (Outcome::Reply(_), None) => Vec::new(), // a notification gets no response
        (Outcome::Reply(Ok(v)), Some(id)) => success_line(&id, v),
        (Outcome::Reply(Err(e)), Some(id)) => error_line(&id, &e),
    }
}

/// A `logs` follow: the lines so far now, and the follower that sends
/// the next ones as they come, paced by what this client has read.
fn start_follow(
    pending: &mut Pending,
    fd: RawFd,
    token: u64,
    id: serde_json::Value,
    f: LogFollow,
) -> Vec<u8> {
    let mut out = Vec::new();
    for e in &f.entries {
        out.extend_from_slice(&log_entry_line(&f.name, e));
    }
    pending.by_token.insert(token, (fd, Some(id.clone())));
    let follower = Follower {
        fd,
        id,
        name: f.name,
        cursor: f.cursor,
        allowance: out.len(),
    };
    pending.follows.insert(token, follower);
    out
}
