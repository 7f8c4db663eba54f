//! Changing a running container's device rules (hotplug): on cgroup v1
//! the difference between what devices.list holds and what should hold
//! is written, allows first, then denies. Never "deny all, then allow"
//! as at creation: in that window the container's open devices would
//! fail. On v2 nothing yet (the BPF device filter replaces its program).

use std::collections::BTreeMap;
use std::fs;

use cgroups_rs::Controller;
use cgroups_rs::devices::{DevicePermissions, DeviceType, DevicesController};

use super::{CgroupError, ContainerCgroup, DeviceAccess, DeviceKind, DeviceRule, describe};

/// The allow-list every container starts with (kept equal to
/// `devices.rs`'s, which this file may not reach into).
const DEFAULT_RULES: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

/// (type, major, minor) as devices.list spells them ("c", "7", "*").
type Key = (char, String, String);

/// One devices.list line ("c 7:3 rwm") as its key and access.
fn parse_line(line: &str) -> Option<(Key, DeviceAccess)> {
    let mut words = line.split_whitespace();
    let kind = words.next()?.chars().next()?;
    let (major, minor) = words.next()?.split_once(':')?;
    let letters = words.next()?;
    let access = DeviceAccess {
        read: letters.contains('r'),
        write: letters.contains('w'),
        mknod: letters.contains('m'),
    };
    Some(((kind, major.to_string(), minor.to_string()), access))
}

fn union(a: DeviceAccess, b: DeviceAccess) -> DeviceAccess {
    DeviceAccess {
        read: a.read || b.read,
        write: a.write || b.write,
        mknod: a.mknod || b.mknod,
    }
}

/// What `b` has that `a` lacks.
fn minus(b: DeviceAccess, a: DeviceAccess) -> DeviceAccess {
    DeviceAccess {
        read: b.read && !a.read,
        write: b.write && !a.write,
        mknod: b.mknod && !a.mknod,
    }
}

/// The lines as the kernel merges them: one access per key.
fn merged(lines: impl Iterator<Item = String>) -> BTreeMap<Key, DeviceAccess> {
    let mut out: BTreeMap<Key, DeviceAccess> = BTreeMap::new();
    for (key, access) in lines.filter_map(|l| parse_line(&l)) {
        let e = out.entry(key).or_default();
        *e = union(*e, access);
    }
    out
}

/// The writes that take `now` to `want`: (allow?, key, access).
fn changes(
    now: &BTreeMap<Key, DeviceAccess>,
    want: &BTreeMap<Key, DeviceAccess>,
) -> Vec<(bool, Key, DeviceAccess)> {
    let mut allow = Vec::new();
    let mut deny = Vec::new();
    for (key, w) in want {
        let n = now.get(key).copied().unwrap_or_default();
        let more = minus(*w, n);
        if !more.is_empty() {
            allow.push((true, key.clone(), more));
        }
    }
    for (key, n) in now {
        let w = want.get(key).copied().unwrap_or_default();
        let less = minus(*n, w);
        if !less.is_empty() {
            deny.push((false, key.clone(), less));
        }
    }
    allow.extend(deny);
    allow
}

fn device_type(kind: char) -> Option<DeviceType> {
    DeviceType::from_char(Some(kind))
}

fn number(text: &str) -> Option<i64> {
    if text == "*" {
        return Some(-1);
    }
    text.parse().ok()
}

fn permissions(a: DeviceAccess) -> Vec<DevicePermissions> {
    [
        (a.read, DevicePermissions::Read),
        (a.write, DevicePermissions::Write),
        (a.mknod, DevicePermissions::MkNod),
    ]
    .into_iter()
    .filter_map(|(on, p)| on.then_some(p))
    .collect()
}

impl ContainerCgroup {
    /// Makes the container's rules the defaults plus `extra`, changing
    /// only what differs. A cgroup that allows everything (privileged:
    /// "a *:* rwm") is left as it is.
    pub fn replace_device_rules(&self, extra: &[DeviceRule]) -> Result<(), CgroupError> {
        let Some(devices) = self.cg.controller_of::<DevicesController>() else {
            return Ok(());
        };
        let fail = |reason: String| CgroupError::Op {
            op: "update devices of",
            path: self.path.clone(),
            reason,
        };
        let list = devices.path().join("devices.list");
        let text =
            fs::read_to_string(&list).map_err(|e| fail(format!("read {}: {e}", list.display())))?;
        let now = merged(text.lines().map(str::to_string));
        if now
            .keys()
            .any(|(k, a, b)| *k == 'a' && a == "*" && b == "*")
        {
            return Ok(());
        }
        let wanted = DEFAULT_RULES.iter().map(|s| s.to_string()).chain(
            extra
                .iter()
                .filter(|r| r.kind != DeviceKind::All)
                .map(|r| r.to_string()),
        );
        for (allow, (kind, major, minor), access) in changes(&now, &merged(wanted)) {
            let (Some(t), Some(ma), Some(mi)) = (device_type(kind), number(&major), number(&minor))
            else {
                continue;
            };
            let perms = permissions(access);
            let done = if allow {
                devices.allow_device(t, ma, mi, &perms)
            } else {
                devices.deny_device(t, ma, mi, &perms)
            };
            done.map_err(|e| fail(describe(&e)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(lines: &[&str]) -> BTreeMap<Key, DeviceAccess> {
        merged(lines.iter().map(|s| s.to_string()))
    }

    fn shown(c: &[(bool, Key, DeviceAccess)]) -> Vec<String> {
        c.iter()
            .map(|(allow, (k, a, b), acc)| {
                let verb = if *allow { "allow" } else { "deny" };
                format!("{verb} {k} {a}:{b} {acc}")
            })
            .collect()
    }

    #[test]
    fn only_the_difference_is_written_allows_first() {
        let now = map(&["c 1:3 rwm", "b 7:3 rw", "c 188:0 rwm"]);
        let want = map(&["c 1:3 rwm", "b 7:3 rwm", "b 7:4 r", "c 188:0 r"]);
        assert_eq!(
            shown(&changes(&now, &want)),
            ["allow b 7:3 m", "allow b 7:4 r", "deny c 188:0 wm"]
        );
        assert!(changes(&want, &want).is_empty());
        let dropped = changes(&want, &map(&["c 1:3 rwm"]));
        assert_eq!(
            shown(&dropped),
            ["deny b 7:3 rwm", "deny b 7:4 r", "deny c 188:0 r"]
        );
    }

    #[test]
    fn the_kernels_lines_merge_by_device() {
        let m = map(&["c 1:3 r", "c 1:3 w", "junk", "", "x"]);
        assert_eq!(m.len(), 1);
        let access = m.values().next().copied().unwrap_or_default();
        assert_eq!(access.to_string(), "rw");
        assert_eq!(number("*"), Some(-1));
        assert_eq!(number("x"), None);
    }
}
