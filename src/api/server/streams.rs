//! The streaming side of the server: `logs` followers and `events`
//! subscribers, fed once per loop turn, each bounded so a client that
//! stops reading is dropped instead of growing the daemon.

use std::os::fd::RawFd;

use super::{
    ApiServer, FOLLOW_MAX_PENDING_BYTES, FOLLOW_READ_BYTES_PER_TURN, SUBSCRIBER_MAX_PENDING_BYTES,
    SUBSCRIBER_ROOM_BYTES,
};
use crate::api::methods::{follow_result, log_entry_line};
use crate::api::protocol::{CONTAINER_ERROR, RpcError, error_line, success_line};
use crate::supervisor::Supervisor;
use crate::supervisor::say;

impl ApiServer {
    /// Sends subscribers the events of this turn; one that leaves more than
    /// SUBSCRIBER_MAX_PENDING_BYTES unread is dropped (and that is an
    /// event itself), so a stalled reader never grows the daemon.
    pub(super) fn pump_subscribers(&mut self, sup: &mut Supervisor) {
        let connections = &self.connections;
        let room = |fd: RawFd| {
            connections
                .get(&fd)
                .is_some_and(|c| c.output.len() < SUBSCRIBER_ROOM_BYTES)
        };
        let pumped = self.pending.subscriptions.pump(sup, room);
        for fd in pumped.stalled {
            let unread = self.connections.get(&fd).map_or(0, |c| c.output.len());
            self.drop_subscriber(fd, unread, sup);
        }
        for (fd, bytes) in pumped.send {
            let Some(conn) = self.connections.get_mut(&fd) else {
                self.pending.subscriptions.remove_connection(fd);
                continue;
            };
            conn.output.extend_from_slice(&bytes);
            if conn.output.len() > SUBSCRIBER_MAX_PENDING_BYTES {
                let unread = conn.output.len();
                self.drop_subscriber(fd, unread, sup);
                continue;
            }
            self.flush_or_close(fd, sup);
        }
    }

    /// A subscriber that stopped reading: closed, logged, journaled.
    fn drop_subscriber(&mut self, fd: RawFd, unread: usize, sup: &mut Supervisor) {
        self.drop_connection(fd, sup);
        say(format_args!(
            "api: dropped an events subscriber that stopped reading ({unread} bytes unread)"
        ));
        let data = serde_json::json!({"unread_bytes": unread});
        sup.emit(
            crate::supervisor::events::journal::kinds::SUBSCRIBER_DROPPED,
            None,
            data,
        );
    }

    /// Sends each `logs` follower what its container wrote this turn, ends
    /// a follow once its container has exited for good, and drops a
    /// follower that does not read (its entries would pile up without
    /// bound; the loop never waits for it).
    pub(super) fn pump_followers(&mut self, sup: &mut Supervisor) {
        let tokens: Vec<u64> = self.pending.follows.keys().copied().collect();
        for token in tokens {
            let Some(f) = self.pending.follows.get_mut(&token) else {
                continue;
            };
            let fd = f.fd;
            let Some(conn) = self.connections.get_mut(&fd) else {
                self.pending.follows.remove(&token);
                self.pending.by_token.remove(&token);
                continue;
            };
            f.allowance = f.allowance.min(conn.output.len());
            let before = conn.output.len();
            let end = match f.cursor.read_new(FOLLOW_READ_BYTES_PER_TURN) {
                Ok((entries, caught_up)) => {
                    for e in &entries {
                        conn.output.extend_from_slice(&log_entry_line(&f.name, e));
                    }
                    if conn.output.len() > f.allowance + FOLLOW_MAX_PENDING_BYTES {
                        self.drop_connection(fd, sup);
                        continue;
                    }
                    let done = caught_up.then(|| follow_result(sup, &f.name)).flatten();
                    done.map(|v| success_line(&f.id, v))
                }
                Err(e) => {
                    let message = format!("container {}: read log: {e}", f.name);
                    Some(error_line(&f.id, &RpcError::new(CONTAINER_ERROR, message)))
                }
            };
            if let Some(line) = &end {
                conn.output.extend_from_slice(line);
                self.pending.follows.remove(&token);
                self.pending.by_token.remove(&token);
            }
            if conn.output.len() != before {
                self.flush_or_close(fd, sup);
            }
        }
    }
}
