//! Who may use the control socket: root, members of berth.json's
//! `api.admin_group` (every method) and of `api.read_group` (methods that
//! change nothing). Decided from the peer's credentials (SO_PEERCRED) at
//! connect time; the group lists are read from the host's /etc/group.

use std::fs;

/// What a connected client may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Admin,
    ReadOnly,
}

/// Methods a read-only client may call: they report, never change.
pub const READ_ONLY_METHODS: &[&str] = &[
    "version", "info", "list", "inspect", "stats", "logs", "wait", "images", "events", "check",
    "writes",
];

/// The resolved groups, kept by the API server.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    pub admin_gid: Option<u32>,
    pub read_gid: Option<u32>,
}

impl AccessPolicy {
    /// A peer's access, or why it has none. `groups` are the peer's
    /// supplementary groups (from /proc/PID/status, read at connect).
    pub fn decide(&self, uid: u32, gid: u32, groups: &[u32]) -> Result<Access, String> {
        let member = |g: Option<u32>| g.is_some_and(|g| gid == g || groups.contains(&g));
        if uid == 0 || member(self.admin_gid) {
            Ok(Access::Admin)
        } else if member(self.read_gid) {
            Ok(Access::ReadOnly)
        } else {
            Err(format!(
                "uid {uid} (gid {gid}) is not root and not in the API's admin or read group"
            ))
        }
    }
}

/// The supplementary groups of a process, from /proc/PID/status.
pub fn process_groups(pid: i32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Groups:")).map(|g| {
                g.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_admins_readers_and_strangers() {
        let p = AccessPolicy {
            admin_gid: Some(900),
            read_gid: Some(901),
        };
        assert_eq!(p.decide(0, 0, &[]), Ok(Access::Admin));
        assert_eq!(p.decide(1000, 900, &[]), Ok(Access::Admin));
        assert_eq!(p.decide(1000, 100, &[901]), Ok(Access::ReadOnly));
        assert!(p.decide(1000, 100, &[5]).is_err());
        assert!(AccessPolicy::default().decide(1000, 1000, &[]).is_err());
        use crate::supervisor::spec::settings::host_group_gid;
        assert_eq!(host_group_gid("0"), Some(0));
        assert_eq!(host_group_gid("root"), Some(0));
    }
}
