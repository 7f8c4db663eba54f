//! Device rules on cgroup v1's devices controller (devices.allow,
//! devices.deny, devices.list; Documentation/admin-guide/cgroup-v1/
//! devices.rst): rebuilt from "deny all" for a new container, changed in
//! place for a running one. The rules themselves are `devices.rs`.

use std::collections::BTreeMap;

use cgroups_rs::devices::{DevicePermissions, DeviceType, DevicesController};

use super::devices::{DEFAULT_RULES, DeviceAccess, DeviceKind, DeviceRule};
use super::{CgroupError, ContainerCgroup, describe};

/// What the kernel keeps per exception: its type and numbers (None =
/// "*"); rules with the same key merge their access bits.
type Key = (char, Option<u32>, Option<u32>);

/// The exceptions to "deny all", or None for "allow all" ("a *:* rwm").
type Exceptions = Option<BTreeMap<Key, DeviceAccess>>;

impl ContainerCgroup {
    /// Deny all, the defaults, then `extra` in order.
    pub(super) fn reset_v1_rules(
        &self,
        devices: &DevicesController,
        extra: &[DeviceRule],
    ) -> Result<(), CgroupError> {
        self.write_v1_rule(devices, false, &DeviceRule::ALLOW_ALL)?;
        for rule in v1_rules(DEFAULT_RULES.iter().chain(extra)) {
            self.write_v1_rule(devices, true, &rule)?;
        }
        Ok(())
    }

    /// From what devices.list holds to the defaults plus `extra`: first
    /// every access that is new is allowed, then every one dropped is
    /// denied, so an access kept is never refused on the way. Going from
    /// "allow all" (a privileged container) to a list has to pass through
    /// "deny all", which only ever refuses more.
    pub(super) fn update_v1_rules(
        &self,
        devices: &DevicesController,
        extra: &[DeviceRule],
    ) -> Result<(), CgroupError> {
        let wanted = exceptions(DEFAULT_RULES.iter().chain(extra));
        let current = devices.allowed_devices().map_err(|e| CgroupError::Op {
            op: "read devices.list of",
            path: self.path.clone(),
            reason: describe(&e),
        })?;
        let current = self.current_exceptions(&current)?;
        let Some(wanted) = wanted else {
            return self.write_v1_rule(devices, true, &DeviceRule::ALLOW_ALL);
        };
        let Some(current) = current else {
            return self.reset_v1_rules(devices, extra);
        };
        let none = DeviceAccess::default();
        for (key, access) in &wanted {
            let new = access.minus(*current.get(key).unwrap_or(&none));
            self.write_v1_rule(devices, true, &rule_of(*key, new))?;
        }
        for (key, access) in &current {
            let dropped = access.minus(*wanted.get(key).unwrap_or(&none));
            self.write_v1_rule(devices, false, &rule_of(*key, dropped))?;
        }
        Ok(())
    }

    /// devices.list as exceptions.
    fn current_exceptions(
        &self,
        list: &[cgroups_rs::DeviceResource],
    ) -> Result<Exceptions, CgroupError> {
        let mut rules = Vec::with_capacity(list.len());
        for entry in list {
            let rule = rule_of_listed(entry).ok_or_else(|| CgroupError::Op {
                op: "read devices.list of",
                path: self.path.clone(),
                reason: format!("unexpected entry {entry:?}"),
            })?;
            rules.push(rule);
        }
        Ok(exceptions(rules.iter()))
    }

    /// One line into devices.allow or devices.deny; nothing for no access.
    fn write_v1_rule(
        &self,
        devices: &DevicesController,
        allow: bool,
        rule: &DeviceRule,
    ) -> Result<(), CgroupError> {
        if rule.access.is_empty() {
            return Ok(());
        }
        let kind = match rule.kind {
            DeviceKind::All => DeviceType::All,
            DeviceKind::Char => DeviceType::Char,
            DeviceKind::Block => DeviceType::Block,
        };
        let number = |n: Option<u32>| n.map_or(-1, i64::from);
        let (major, minor) = (number(rule.major), number(rule.minor));
        let perms = rule.access.permissions();
        let written = if allow {
            devices.allow_device(kind, major, minor, &perms)
        } else {
            devices.deny_device(kind, major, minor, &perms)
        };
        written.map_err(|e| CgroupError::Op {
            op: if allow {
                "allow a device in"
            } else {
                "deny a device in"
            },
            path: self.path.clone(),
            reason: format!("{rule}: {}", describe(&e)),
        })
    }
}

/// The rules as v1 must be told them. v1 reads any "a" line as "allow (or
/// deny) everything", whatever its numbers and access, so an "a" rule that
/// is not exactly that becomes a "c" and a "b" rule, as the v2 program
/// reads it.
fn v1_rules<'a>(rules: impl Iterator<Item = &'a DeviceRule>) -> Vec<DeviceRule> {
    let mut out = Vec::new();
    for rule in rules.filter(|r| !r.access.is_empty()) {
        if rule.kind == DeviceKind::All && *rule != DeviceRule::ALLOW_ALL {
            for kind in [DeviceKind::Char, DeviceKind::Block] {
                out.push(DeviceRule { kind, ..*rule });
            }
        } else {
            out.push(*rule);
        }
    }
    out
}

/// The kernel's list for `rules` on top of "deny all": one entry per type
/// and numbers with the union of their access, or None when one rule
/// allows everything.
fn exceptions<'a>(rules: impl Iterator<Item = &'a DeviceRule>) -> Exceptions {
    let mut list = BTreeMap::new();
    for rule in v1_rules(rules) {
        if rule == DeviceRule::ALLOW_ALL {
            return None;
        }
        let kind = if rule.kind == DeviceKind::Block {
            'b'
        } else {
            'c'
        };
        let access: &mut DeviceAccess = list.entry((kind, rule.major, rule.minor)).or_default();
        *access = access.union(rule.access);
    }
    Some(list)
}

fn rule_of((kind, major, minor): Key, access: DeviceAccess) -> DeviceRule {
    DeviceRule {
        kind: if kind == 'b' {
            DeviceKind::Block
        } else {
            DeviceKind::Char
        },
        major,
        minor,
        access,
    }
}

/// A devices.list line ("c 1:3 rwm", "b *:* m", "a *:* rwm") as a rule.
fn rule_of_listed(entry: &cgroups_rs::DeviceResource) -> Option<DeviceRule> {
    let number = |n: i64| match n {
        -1 => Some(None),
        n => u32::try_from(n).ok().map(Some),
    };
    let has = |p: DevicePermissions| entry.access.contains(&p);
    Some(DeviceRule {
        kind: match entry.devtype {
            DeviceType::All => DeviceKind::All,
            DeviceType::Char => DeviceKind::Char,
            DeviceType::Block => DeviceKind::Block,
        },
        major: number(entry.major)?,
        minor: number(entry.minor)?,
        access: DeviceAccess {
            read: has(DevicePermissions::Read),
            write: has(DevicePermissions::Write),
            mknod: has(DevicePermissions::MkNod),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: DeviceKind, major: Option<u32>, letters: &str) -> DeviceRule {
        DeviceRule {
            kind,
            major,
            minor: None,
            access: DeviceAccess {
                read: letters.contains('r'),
                write: letters.contains('w'),
                mknod: letters.contains('m'),
            },
        }
    }

    #[test]
    fn an_a_rule_with_numbers_is_one_per_type_on_v1() {
        let both = rule(DeviceKind::All, Some(7), "rw");
        let split = v1_rules([both].iter());
        let text: Vec<String> = split.iter().map(|r| r.to_string()).collect();
        assert_eq!(text, ["c 7:* rw", "b 7:* rw"]);
        assert_eq!(
            v1_rules([DeviceRule::ALLOW_ALL].iter()),
            [DeviceRule::ALLOW_ALL]
        );
    }

    #[test]
    fn exceptions_merge_by_type_and_numbers() {
        let list = exceptions(
            [
                rule(DeviceKind::Block, Some(7), "r"),
                rule(DeviceKind::Block, Some(7), "w"),
                rule(DeviceKind::Char, Some(7), "m"),
            ]
            .iter(),
        )
        .expect("a list");
        assert_eq!(list.len(), 2);
        assert_eq!(list[&('b', Some(7), None)].to_string(), "rw");
        let all = exceptions([rule(DeviceKind::Char, None, "r"), DeviceRule::ALLOW_ALL].iter());
        assert!(all.is_none());
    }
}
