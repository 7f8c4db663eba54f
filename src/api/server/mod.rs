//! The control socket: non-blocking accept, read, dispatch and write, all
//! from the supervisor's poll loop. Lines, connections and output buffers
//! are bounded, so a slow or hostile client can never stall the loop.
//! Here: binding, accepting (with each peer's access), the loop's hooks and
//! deferred answers; a connection's requests are requests.rs's, `logs` and
//! `events` streams streams.rs's.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use nix::poll::PollFlags;

mod exec;
mod requests;
mod streams;

use super::methods::{completion_result, pull_progress_line, pull_result};
use super::peer::{Peer, peer_access};
use super::protocol::{INVALID_REQUEST, PERMISSION_DENIED, RpcError, error_line, success_line};
use super::subscriptions::Subscriptions;
use crate::api::access::{Access, AccessPolicy};
use crate::supervisor::Supervisor;
use crate::supervisor::daemon::event_loop::ControlPlane;
use crate::supervisor::output::follow::LogCursor;
use crate::supervisor::say;
use exec::flush_output;
use requests::read_requests;

pub const MAX_REQUEST_LINE_BYTES: usize = 1 << 20;
pub const MAX_CONNECTIONS: usize = 256;
/// A client that lets this much output pile up unread is dropped.
pub const MAX_PENDING_OUTPUT_BYTES: usize = 32 << 20;
/// Above this much unsent output we stop reading more requests from it.
const OUTPUT_HIGH_WATER_BYTES: usize = 1 << 20;
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// A `logs` follower whose client leaves this much of the new entries
/// unread is dropped (its backlog, the entries it asked for, comes on top).
pub const FOLLOW_MAX_PENDING_BYTES: usize = 1 << 20;
/// Log bytes one follower reads per loop turn, so a big backlog of new
/// lines is sent over several turns instead of stalling the loop.
const FOLLOW_READ_BYTES_PER_TURN: usize = 256 << 10;
/// Unread events a subscriber may leave before it is dropped.
pub const SUBSCRIBER_MAX_PENDING_BYTES: usize = 1 << 20;
/// Events are added to a subscriber's output only below this, so a slow
/// reader is fed at its own pace (POLLOUT wakes the loop for more).
const SUBSCRIBER_ROOM_BYTES: usize = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("another berth daemon is already using {0}")]
    InUse(PathBuf),
    #[error("{} exists and is not a socket", .0.display())]
    NotASocket(PathBuf),
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

struct Connection {
    stream: UnixStream,
    /// Decided from the peer's credentials when it connected.
    access: Access,
    peer: Peer,
    input: Vec<u8>,
    output: Vec<u8>,
    /// Descriptors to send with the output byte at each position (an
    /// `exec`'s pipes), in order.
    fds: VecDeque<(usize, Vec<OwnedFd>)>,
    /// No more requests are read: the peer closed, or sent garbage.
    done_reading: bool,
}

/// Requests whose answer waits for the supervisor (a container's exit):
/// token -> (connection, request id; None for a notification).
#[derive(Default)]
struct Pending {
    next_token: u64,
    by_token: BTreeMap<u64, (RawFd, Option<serde_json::Value>)>,
    /// `logs` requests with `follow`, by token (also in `by_token`, which
    /// keeps their connection open and covers their cleanup).
    follows: BTreeMap<u64, Follower>,
    /// `events` requests with `follow`.
    subscriptions: Subscriptions,
}

struct Follower {
    fd: RawFd,
    id: serde_json::Value,
    name: String,
    cursor: LogCursor,
    /// Unsent output tolerated beyond FOLLOW_MAX_PENDING_BYTES: the
    /// backlog at first, shrinking as the client reads it.
    allowance: usize,
}

impl Pending {
    fn for_connection(&self, fd: RawFd) -> Vec<u64> {
        self.by_token
            .iter()
            .filter(|(_, (f, _))| *f == fd)
            .map(|(t, _)| *t)
            .collect()
    }
}

pub struct ApiServer {
    path: PathBuf,
    listener: UnixListener,
    _lock: Flock<File>,
    connections: BTreeMap<RawFd, Connection>,
    pending: Pending,
    policy: AccessPolicy,
}

impl ApiServer {
    /// Appends the answer to a request that waited, when its client is
    /// still connected and asked with an id; gives the connection to flush.
    fn answer_deferred(
        &mut self,
        token: u64,
        line: impl FnOnce(&serde_json::Value) -> Vec<u8>,
    ) -> Option<RawFd> {
        let (fd, id) = self.pending.by_token.remove(&token)?;
        let conn = self.connections.get_mut(&fd)?;
        conn.output.extend_from_slice(&line(&id?));
        Some(fd)
    }

    /// Binds the socket at `path` (mode 0660), replacing a stale one. A lock
    /// file beside it makes a second daemon on the same path refuse to start.
    pub fn bind(path: &Path) -> Result<ApiServer, BindError> {
        let io = |op, p: &Path| {
            let path = p.to_path_buf();
            move |source| BindError::Io { op, path, source }
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io("create directory", dir))?;
        }
        let lock_path = path.with_extension("lock");
        let lock_file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io("open", &lock_path))?;
        let lock = Flock::lock(lock_file, FlockArg::LockExclusiveNonblock)
            .map_err(|_| BindError::InUse(path.to_path_buf()))?;
        match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => {
                if UnixStream::connect(path).is_ok() {
                    return Err(BindError::InUse(path.to_path_buf()));
                }
                fs::remove_file(path).map_err(io("remove stale socket", path))?;
            }
            Ok(_) => return Err(BindError::NotASocket(path.to_path_buf())),
            Err(_) => {}
        }
        let listener = UnixListener::bind(path).map_err(io("bind", path))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o660)).map_err(io("chmod", path))?;
        listener
            .set_nonblocking(true)
            .map_err(io("set non-blocking", path))?;
        Ok(ApiServer {
            path: path.to_path_buf(),
            listener,
            _lock: lock,
            connections: BTreeMap::new(),
            pending: Pending::default(),
            policy: AccessPolicy::default(),
        })
    }

    /// Lets members of the policy's groups in besides root; the socket's
    /// group becomes `socket_gid` (mode stays 0660).
    pub fn set_access(
        &mut self,
        policy: AccessPolicy,
        socket_gid: Option<u32>,
    ) -> std::io::Result<()> {
        if let Some(gid) = socket_gid {
            std::os::unix::fs::chown(&self.path, Some(0), Some(gid))?;
        }
        self.policy = policy;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if self.connections.len() >= MAX_CONNECTIONS
                        || stream.set_nonblocking(true).is_err()
                    {
                        let err = RpcError::new(INVALID_REQUEST, "too many connections");
                        let _ = (&stream).write_all(&error_line(&serde_json::Value::Null, &err));
                        continue;
                    }
                    let (access, peer) = match peer_access(&stream, &self.policy) {
                        Ok(a) => a,
                        Err(why) => {
                            say(format_args!("api: refused a connection: {why}"));
                            let err = RpcError::new(
                                PERMISSION_DENIED,
                                format!("permission denied: {why}"),
                            );
                            let _ =
                                (&stream).write_all(&error_line(&serde_json::Value::Null, &err));
                            continue;
                        }
                    };
                    let conn = Connection {
                        access,
                        peer,
                        stream,
                        input: Vec::new(),
                        output: Vec::new(),
                        fds: VecDeque::new(),
                        done_reading: false,
                    };
                    self.connections.insert(conn.stream.as_raw_fd(), conn);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    }

    fn service(&mut self, fd: RawFd, revents: PollFlags, sup: &mut Supervisor) {
        let Some(conn) = self.connections.get_mut(&fd) else {
            return;
        };
        if revents.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            && !conn.done_reading
        {
            read_requests(fd, conn, sup, &mut self.pending);
        }
        // POLLHUP on a Unix stream socket: the peer closed both ways, so a
        // deferred answer or a follow can never be delivered; polling it
        // on would spin the loop.
        if revents.contains(PollFlags::POLLHUP) && conn.done_reading {
            self.drop_connection(fd, sup);
            return;
        }
        self.flush_or_close(fd, sup);
    }

    /// Writes what it can; drops the connection when it is broken, hogs
    /// memory, or has nothing more to say (and is owed no deferred answer).
    fn flush_or_close(&mut self, fd: RawFd, sup: &mut Supervisor) {
        let Some(conn) = self.connections.get_mut(&fd) else {
            return;
        };
        let broken = flush_output(conn);
        let owed = self.pending.for_connection(fd);
        let finished = conn.done_reading && conn.output.is_empty() && owed.is_empty();
        if broken || finished || conn.output.len() > MAX_PENDING_OUTPUT_BYTES {
            self.drop_connection(fd, sup);
        }
    }

    /// Closes the connection and forgets what it was owed.
    fn drop_connection(&mut self, fd: RawFd, sup: &mut Supervisor) {
        self.connections.remove(&fd);
        self.pending.subscriptions.remove_connection(fd);
        for token in self.pending.for_connection(fd) {
            self.pending.by_token.remove(&token);
            self.pending.follows.remove(&token);
            sup.cancel_waiter(token);
        }
    }
}

impl ControlPlane for ApiServer {
    fn watched(&self) -> Vec<(BorrowedFd<'_>, PollFlags)> {
        let mut fds = vec![(self.listener.as_fd(), PollFlags::POLLIN)];
        for conn in self.connections.values() {
            let mut events = PollFlags::empty();
            if !conn.done_reading && conn.output.len() <= OUTPUT_HIGH_WATER_BYTES {
                events |= PollFlags::POLLIN;
            }
            if !conn.output.is_empty() {
                events |= PollFlags::POLLOUT;
            }
            fds.push((conn.stream.as_fd(), events));
        }
        fds
    }

    fn on_ready(&mut self, fd: RawFd, revents: PollFlags, sup: &mut Supervisor) {
        if fd == self.listener.as_raw_fd() {
            self.accept_all();
        } else {
            self.service(fd, revents, sup);
        }
    }

    fn after_turn(&mut self, sup: &mut Supervisor) {
        let (progress, outcomes) = sup.take_pull_events();
        let mut touched = Vec::new();
        for p in &progress {
            let Some((fd, Some(_))) = self.pending.by_token.get(&p.token) else {
                continue;
            };
            if let Some(conn) = self.connections.get_mut(fd) {
                conn.output.extend_from_slice(&pull_progress_line(p));
                touched.push(*fd);
            }
        }
        for o in &outcomes {
            touched.extend(self.answer_deferred(o.token, |id| match pull_result(o) {
                Ok(v) => success_line(id, v),
                Err(e) => error_line(id, &e),
            }));
        }
        for (token, result) in sup.take_update_answers() {
            touched.extend(self.answer_deferred(token, |id| success_line(id, result)));
        }
        for done in sup.take_completions() {
            let token = done.token;
            let result = completion_result(done);
            touched.extend(self.answer_deferred(token, |id| success_line(id, result)));
        }
        for done in sup.take_exec_answers() {
            let result = serde_json::json!({"exit_code": done.exit_code});
            touched.extend(self.answer_deferred(done.token, |id| success_line(id, result)));
        }
        touched.sort_unstable();
        touched.dedup();
        for fd in touched {
            self.flush_or_close(fd, sup);
        }
        self.pump_followers(sup);
        self.pump_subscribers(sup);
    }

    fn has_pending_work(&self) -> bool {
        self.pending.subscriptions.behind()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}
