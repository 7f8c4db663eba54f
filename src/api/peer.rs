//! Who is on the other end of a control connection: SO_PEERCRED (the
//! peer's pid, uid and gid when it connected) and its supplementary
//! groups, judged by the access policy.

use std::os::unix::net::UnixStream;

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

use crate::api::access::{Access, AccessPolicy, process_groups};

/// The connecting process, as the kernel reported it at connect time
/// (named in events such as `container.exec`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub pid: i32,
}

/// The connecting process's access and identity, or why it has none.
pub fn peer_access(stream: &UnixStream, policy: &AccessPolicy) -> Result<(Access, Peer), String> {
    let cred = getsockopt(stream, PeerCredentials).map_err(|e| format!("SO_PEERCRED: {e}"))?;
    let groups = process_groups(cred.pid());
    let peer = Peer {
        uid: cred.uid(),
        pid: cred.pid(),
    };
    policy
        .decide(cred.uid(), cred.gid(), &groups)
        .map(|a| (a, peer))
        .map_err(|why| format!("pid {}: {why}", cred.pid()))
}
