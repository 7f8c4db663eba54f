//! Semantic checks of the isolation fields (hardening.rs; `mounts` are
//! validate_mounts.rs's): names that must be known, paths that must be
//! absolute and clean, numbers the kernel would refuse with a bare EINVAL,
//! and sysctls that must belong to the container's own namespaces.

use crate::kernel::caps::parse_capability;
use crate::kernel::cgroup::LIMIT_NAMES;
use crate::supervisor::spec::hardening::{IdMapSpec, ResourcesSpec, SwapSize, UsernsSpec};
use crate::supervisor::spec::validate::{Problem, problem};
use crate::supervisor::spec::validate_mounts::{check_mounts, clean_absolute};
use crate::supervisor::spec::{SECCOMP_DEFAULT, SECCOMP_UNCONFINED, Spec};

pub const RLIMIT_NAMES: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

pub const LANDLOCK_SCOPES: &[&str] = &["abstract_unix_socket", "signal"];

/// Sysctls that live in a namespace the container owns (IPC, network),
/// as runc allows them; anything else would change the host.
const NAMESPACED_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];
const NAMESPACED_SYSCTL_PREFIXES: &[&str] = &["fs.mqueue.", "net."];

pub fn check_hardening(spec: &Spec, out: &mut Vec<Problem>) {
    check_capabilities(spec, out);
    if spec.seccomp.is_empty() || spec.seccomp.contains('\0') {
        out.push(problem(
            &["seccomp"],
            format!("expected \"{SECCOMP_DEFAULT}\", \"{SECCOMP_UNCONFINED}\" or a profile path"),
        ));
    }
    for (i, scope) in spec.landlock.scope.iter().enumerate() {
        if !LANDLOCK_SCOPES.contains(&scope.as_str()) {
            out.push(problem(
                &["landlock", "scope", &i.to_string()],
                format!("unknown scope {scope:?}: expected one of {LANDLOCK_SCOPES:?}"),
            ));
        }
    }
    for (i, p) in spec.landlock.read_write.iter().enumerate() {
        if !clean_absolute(p) {
            out.push(problem(
                &["landlock", "read_write", &i.to_string()],
                "must be an absolute path without \"..\"",
            ));
        }
    }
    check_mounts(&spec.mounts, out);
    check_sysctls(spec, out);
    check_resources(&spec.resources, out);
    for (name, limit) in &spec.rlimits {
        let (soft, hard) = limit.soft_hard();
        if !RLIMIT_NAMES.contains(&name.as_str()) {
            out.push(problem(
                &["rlimits", name],
                format!("unknown limit: expected one of {RLIMIT_NAMES:?}"),
            ));
        } else if soft > hard {
            out.push(problem(&["rlimits", name], "soft limit exceeds hard limit"));
        }
    }
    if let Some(UsernsSpec::Maps { uid_map, gid_map }) = &spec.userns {
        check_id_map(&["userns", "uid_map"], uid_map, &[0], out);
        check_id_map(&["userns", "gid_map"], gid_map, &[0, 5], out);
    }
    for (i, g) in spec.group_add.iter().enumerate() {
        if !crate::supervisor::spec::validate::valid_account_name(g) {
            out.push(problem(
                &["group_add", &i.to_string()],
                "expected a group name or gid",
            ));
        }
    }
}

/// The largest end (one past the last id) of a range: ids are u32, and
/// u32::MAX itself is (uid_t)-1, "no id".
const MAX_ID_END: u64 = u32::MAX as u64;

/// Ranges must be non-empty, fit in 32 bits, not overlap, map the ids
/// berth needs (root, and the tty group), and never map the host's root
/// (that would be no isolation at all).
fn check_id_map(at: &[&str], map: &[IdMapSpec], needed: &[u32], out: &mut Vec<Problem>) {
    if map.is_empty() || map.len() > 340 {
        out.push(problem(at, "expected 1 to 340 ranges"));
        return;
    }
    let end = |start: u32, size: u32| u64::from(start) + u64::from(size);
    for (i, m) in map.iter().enumerate() {
        let here: Vec<String> = at
            .iter()
            .map(|s| s.to_string())
            .chain([i.to_string()])
            .collect();
        // The kernel refuses a range whose end overflows 32 bits, and id
        // 2^32-1 is (uid_t)-1, "no id" (user_namespaces(7)).
        if m.size == 0
            || end(m.container_id, m.size) > MAX_ID_END
            || end(m.host_id, m.size) > MAX_ID_END
        {
            out.push((
                here,
                "size must be at least 1 and each range must fit in 32-bit ids".into(),
            ));
        } else if m.host_id == 0 {
            out.push((
                here,
                "maps the host's root (host_id 0) into the container".into(),
            ));
        } else if map[..i].iter().any(|o| {
            u64::from(o.container_id) < end(m.container_id, m.size)
                && u64::from(m.container_id) < end(o.container_id, o.size)
        }) {
            out.push((here, "overlaps an earlier range's container ids".into()));
        }
    }
    for id in needed {
        let mapped = map
            .iter()
            .any(|m| *id >= m.container_id && u64::from(*id) < end(m.container_id, m.size));
        if !mapped {
            out.push(problem(at, format!("must map container id {id}")));
        }
    }
}

fn check_capabilities(spec: &Spec, out: &mut Vec<Problem>) {
    for (field, names) in [
        ("add", &spec.capabilities.add),
        ("drop", &spec.capabilities.drop),
    ] {
        for (i, name) in names.iter().enumerate() {
            if !name.eq_ignore_ascii_case("ALL") && parse_capability(name).is_none() {
                out.push(problem(
                    &["capabilities", field, &i.to_string()],
                    format!("unknown capability {name:?}"),
                ));
            }
        }
    }
}

fn check_sysctls(spec: &Spec, out: &mut Vec<Problem>) {
    for (key, value) in &spec.sysctls {
        let well_formed = !key.is_empty()
            && key.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
            });
        if !well_formed {
            out.push(problem(
                &["sysctls", key],
                "expected a dotted name like \"net.ipv4.ip_forward\"",
            ));
        } else if !namespaced_sysctl(key) {
            out.push(problem(
                &["sysctls", key],
                "not a namespaced sysctl: only kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.* and net.* belong to the container",
            ));
        } else if value.contains(['\0', '\n']) {
            out.push(problem(
                &["sysctls", key],
                "value must be one line without NUL",
            ));
        }
    }
}

pub fn namespaced_sysctl(key: &str) -> bool {
    NAMESPACED_SYSCTLS.contains(&key)
        || NAMESPACED_SYSCTL_PREFIXES
            .iter()
            .any(|p| key.starts_with(p))
}

fn check_resources(r: &ResourcesSpec, out: &mut Vec<Problem>) {
    let at = |f: &str| vec!["resources".to_string(), f.to_string()];
    if let (Some(res), Some(mem)) = (r.memory_reservation, r.memory)
        && res.0 > mem.0
    {
        out.push((at("memory_reservation"), "must not exceed memory".into()));
    }
    match (r.memory_swap, r.memory) {
        (Some(_), None) => out.push((at("memory_swap"), "needs resources.memory as well".into())),
        (Some(SwapSize::Bytes(s)), Some(m)) if s < m.0 => out.push((
            at("memory_swap"),
            "is memory plus swap, so it must be at least resources.memory".into(),
        )),
        _ => {}
    }
    for (f, v) in [
        ("cpuset_cpus", &r.cpuset_cpus),
        ("cpuset_mems", &r.cpuset_mems),
    ] {
        if v.as_deref().is_some_and(|s| !valid_cpu_list(s)) {
            out.push((at(f), "expected a list like \"0-2,4\"".into()));
        }
    }
    for (i, name) in r.optional.iter().enumerate() {
        if !LIMIT_NAMES.contains(&name.as_str()) {
            out.push((
                vec!["resources".into(), "optional".into(), i.to_string()],
                format!("unknown limit {name:?}: expected one of {LIMIT_NAMES:?}"),
            ));
        }
    }
}

fn valid_cpu_list(s: &str) -> bool {
    !s.is_empty()
        && s.split(',').all(|part| {
            let mut ends = part.splitn(2, '-');
            let num = |x: Option<&str>| {
                x.is_some_and(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
            };
            let first = ends.next();
            match ends.next() {
                Some(second) => num(first) && num(Some(second)),
                None => num(first),
            }
        })
}

#[cfg(test)]
mod tests {
    use crate::supervisor::spec::validate::parse_spec;
    use std::path::Path;

    fn errors(text: &str) -> Vec<String> {
        match parse_spec(Path::new("c/web.json"), text) {
            Ok(_) => Vec::new(),
            Err(e) => e.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn a_full_hardening_spec_parses() {
        let text = r#"{"image": "x",
          "capabilities": {"add": ["SYS_TIME"], "drop": ["cap_net_raw"]},
          "seccomp": "unconfined", "read_only": true, "shm_size": "16m",
          "landlock": {"net": {"bind_tcp": [80]}, "scope": ["signal"], "read_write": ["/data"]},
          "mounts": [{"type": "tmpfs", "target": "/tmp", "size": "8m", "mode": "1777"},
                     {"type": "bind", "source": "/srv", "target": "/data", "options": ["noexec"], "propagation": "rslave"}],
          "sysctls": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1000"},
          "resources": {"memory": "64m", "memory_swap": -1, "cpus": 0.5, "pids_limit": 100, "optional": ["io_weight"]},
          "rlimits": {"nofile": {"soft": 100, "hard": 200}}, "group_add": ["audio"], "userns": "auto"}"#;
        assert_eq!(errors(text), Vec::<String>::new());
    }

    #[test]
    fn each_bad_field_is_named() {
        let text = r#"{"image": "x",
"capabilities": {"add": ["SYS_NOPE"]},
"mounts": [{"type": "bind", "source": "rel", "target": "/proc/x", "propagation": "shared"},
 {"type": "tmpfs", "target": "/t", "mode": "999", "options": ["bogus"]}],
"sysctls": {"kernel.panic": "1"},
"resources": {"memory": "1m", "memory_swap": "1m", "cpus": 0, "optional": ["gpu"]},
"rlimits": {"nofile": {"soft": 9, "hard": 1}, "nope": 1},
"userns": {"uid_map": [{"container_id": 0, "host_id": 0, "size": 10}], "gid_map": [{"container_id": 1, "host_id": 5000, "size": 3}]}}"#;
        let e = errors(text);
        let want = [
            "c/web.json:2:26: capabilities.add.0: unknown capability",
            "mounts.0.target: cannot be under /proc or /sys",
            "mounts.0.source: must be an absolute host path",
            "mounts.0.propagation: shared propagation",
            "mounts.1.options.0: unknown option \"bogus\"",
            "mounts.1.mode: expected octal",
            "c/web.json:5:13: sysctls.kernel.panic: not a namespaced sysctl",
            "resources.memory: expected 6291456 to",
            "resources.cpus: expected 0.01 to",
            "resources.optional.0: unknown limit \"gpu\"",
            "rlimits.nofile: soft limit exceeds hard limit",
            "rlimits.nope: unknown limit",
            "userns.uid_map.0: maps the host's root",
            "userns.gid_map: must map container id 0",
        ];
        for w in want {
            assert!(e.iter().any(|e| e.contains(w)), "missing {w:?} in {e:#?}");
        }
    }

    #[test]
    fn cpu_lists() {
        assert!(super::valid_cpu_list("0-2,4"));
        assert!(!super::valid_cpu_list("0-"));
        assert!(!super::valid_cpu_list("a"));
    }
}
