//! Who is on the other end of a control connection: SO_PEERCRED (the
//! peer's pid, uid and gid when it connected) and its supplementary
//! groups, judged by the access policy.

use std::os::unix::net::UnixStream;

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

use crate::api::access::{Access, AccessPolicy, process_groups};

/// The connecting process's access, or why it has none.
pub fn peer_access(stream: &UnixStream, policy: &AccessPolicy) -> Result<Access, String> {
    let cred = getsockopt(stream, PeerCredentials).map_err(|e| format!("SO_PEERCRED: {e}"))?;
    let groups = process_groups(cred.pid());
    policy
        .decide(cred.uid(), cred.gid(), &groups)
        .map_err(|why| format!("pid {}: {why}", cred.pid()))
}
