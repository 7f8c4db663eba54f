//! From a spec's isolation fields to the kernel layer's plain settings:
//! the capability set, the Landlock rules,
//! the mounts, rlimits and sysctls. Policy lives here; mechanism in kernel/.

use std::collections::{BTreeMap, HashSet};

use std::path::PathBuf;

use caps::{CapSet, Capability};
use nix::sys::resource::Resource;

use crate::kernel::caps::{DOCKER_DEFAULT, parse_capability};
use crate::kernel::config::{MountConfig, MountFlags, Propagation, Rlimit};
use crate::kernel::landlock::LandlockConfig;
use crate::supervisor::spec::Spec;
use crate::supervisor::spec::hardening::MountSpec;
use crate::supervisor::spec::service::NetworkMode;
use crate::supervisor::spec::validate_mounts::parse_mode;

/// Default size of a tmpfs mount without `size` (Docker's --tmpfs has no
/// cap; on a device a runaway writer should hit one, and the memory
/// cgroup charges tmpfs pages to the container anyway).
const DEFAULT_TMPFS_BYTES: u64 = 64 << 20;

/// Docker's rule: start from the default set (or from nothing when `drop`
/// says ALL, or from everything when `add` says ALL), remove `drop`, then
/// add `add`. "Everything" means every capability the daemon itself holds
/// (a daemon without, say, CAP_SYS_RESOURCE cannot hand it out).
pub fn effective_capabilities(spec: &Spec) -> Vec<Capability> {
    if spec.privileged {
        let mut all: Vec<Capability> = daemon_capabilities().into_iter().collect();
        all.sort_by_key(|c| c.index());
        return all;
    }
    let is_all = |v: &[String]| v.iter().any(|c| c.eq_ignore_ascii_case("ALL"));
    let names = |v: &[String]| -> Vec<Capability> {
        v.iter().filter_map(|c| parse_capability(c)).collect()
    };
    let (add, drop) = (&spec.capabilities.add, &spec.capabilities.drop);
    let mut set: HashSet<Capability> = if is_all(add) {
        daemon_capabilities()
    } else {
        DOCKER_DEFAULT.iter().copied().collect()
    };
    if is_all(drop) {
        set.clear();
    } else {
        for c in names(drop) {
            set.remove(&c);
        }
    }
    if !is_all(add) {
        set.extend(names(add));
    }
    let mut out: Vec<Capability> = set.into_iter().collect();
    out.sort_by_key(|c| c.index());
    out
}

/// Named in `capabilities.add` (not just part of the defaults).
pub fn explicitly_added(spec: &Spec, cap: Capability) -> bool {
    spec.capabilities
        .add
        .iter()
        .any(|c| parse_capability(c) == Some(cap))
}

fn daemon_capabilities() -> HashSet<Capability> {
    caps::read(None, CapSet::Permitted).unwrap_or_else(|_| caps::all())
}

/// A capability the daemon does not hold cannot be given to a container;
/// say which, rather than fail later with a bare EPERM.
pub fn check_capabilities_held(capabilities: &[Capability]) -> Result<(), String> {
    let held = daemon_capabilities();
    let missing: Vec<String> = capabilities
        .iter()
        .filter(|c| !held.contains(c))
        .map(|c| c.to_string())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "capabilities.add: the daemon itself does not hold {} (it cannot give what it lacks)",
            missing.join(", ")
        ))
    }
}

/// The spec's mounts in kernel form, parents before children. Volumes
/// are binds of the host paths their drivers gave (`volume_paths`, by
/// volume name; one missing there is skipped, the caller resolved them).
pub fn mount_configs(spec: &Spec, volume_paths: &BTreeMap<String, PathBuf>) -> Vec<MountConfig> {
    let mut out: Vec<MountConfig> = spec
        .mounts
        .iter()
        .filter_map(|m| mount_config(m, volume_paths))
        .collect();
    out.sort_by_key(|m| m.target().components().count());
    out
}

fn mount_config(m: &MountSpec, volume_paths: &BTreeMap<String, PathBuf>) -> Option<MountConfig> {
    let has = |o: &str| m.options().iter().any(|x| x == o);
    Some(match m {
        MountSpec::Tmpfs {
            target,
            size,
            mode,
            read_only,
            ..
        } => MountConfig::Tmpfs {
            target: PathBuf::from(target),
            size_bytes: size.map_or(DEFAULT_TMPFS_BYTES, |s| s.0),
            mode: mode.as_deref().and_then(parse_mode).unwrap_or(0o1777),
            // Docker's --tmpfs defaults: nosuid, nodev, noexec.
            flags: MountFlags {
                read_only: *read_only,
                nosuid: !has("suid"),
                nodev: !has("dev"),
                noexec: !has("exec"),
            },
        },
        MountSpec::Bind {
            source,
            target,
            read_only,
            propagation,
            ..
        } => MountConfig::Bind {
            source: PathBuf::from(source),
            target: PathBuf::from(target),
            flags: bind_flags(*read_only, &has),
            propagation: match propagation.as_deref() {
                Some("slave" | "rslave") => Propagation::Slave,
                _ => Propagation::Private,
            },
        },
        MountSpec::Volume {
            name,
            target,
            read_only,
            ..
        } => MountConfig::Bind {
            source: volume_paths.get(name)?.clone(),
            target: PathBuf::from(target),
            flags: bind_flags(*read_only, &has),
            propagation: Propagation::Private,
        },
    })
}

/// Host data is data: no set-uid programs or device nodes from a bind or
/// a volume unless the spec says so; exec stays allowed (Docker's).
fn bind_flags(read_only: bool, has: &dyn Fn(&str) -> bool) -> MountFlags {
    MountFlags {
        read_only,
        nosuid: !has("suid"),
        nodev: !has("dev"),
        noexec: has("noexec"),
    }
}

/// Landlock rules for a container: read and execute everywhere in its
/// tree; every right but making device nodes on `/` when the root is
/// writable (new entries at the root, as under Docker), else on `/dev`'s
/// tmpfs (writable under Docker's `--read-only` too) and the writable
/// mounts; read and write of /proc's files. What Landlock adds to the
/// mounts' own flags: no device node anywhere (even with CAP_MKNOD),
/// nothing outside the container's root (a leaked host descriptor), and
/// the scopes. None when disabled or privileged.
pub fn landlock_config(spec: &Spec, mounts: &[MountConfig]) -> Option<LandlockConfig> {
    let ll = &spec.landlock;
    if !ll.enabled || spec.privileged {
        return None;
    }
    let root = if spec.read_only { "/dev" } else { "/" };
    let mut read_write = vec![PathBuf::from(root)];
    read_write.extend(
        mounts
            .iter()
            .filter(|m| m.writable())
            .map(|m| m.target().to_path_buf()),
    );
    read_write.extend(ll.read_write.iter().map(PathBuf::from));
    let net = ll.net.clone().unwrap_or_default();
    Some(LandlockConfig {
        read_only: vec![PathBuf::from("/")],
        read_write,
        read_write_files: vec![PathBuf::from("/proc")],
        bind_tcp: net.bind_tcp,
        connect_tcp: net.connect_tcp,
        scope_abstract_unix_socket: ll.scope.iter().any(|s| s == "abstract_unix_socket"),
        scope_signal: ll.scope.iter().any(|s| s == "signal"),
        devices: Vec::new(),
    })
}

/// Docker's defaults for a container with its own network namespace:
/// any user may bind ports below 1024 and open ICMP echo sockets (ping
/// without CAP_NET_RAW). The spec's own values win; written in order.
const OWN_NETWORK_SYSCTLS: &[(&str, &str)] = &[
    ("net.ipv4.ip_unprivileged_port_start", "0"),
    ("net.ipv4.ping_group_range", "0 2147483647"),
];

pub fn sysctls(spec: &Spec) -> Vec<(String, String)> {
    let mut all = BTreeMap::new();
    if spec.network != NetworkMode::Host {
        for (key, value) in OWN_NETWORK_SYSCTLS {
            all.insert(key.to_string(), value.to_string());
        }
    }
    all.extend(spec.sysctls.clone());
    all.into_iter().collect()
}

pub fn rlimits(spec: &Spec) -> Vec<Rlimit> {
    spec.rlimits
        .iter()
        .filter_map(|(name, limit)| {
            let (soft, hard) = limit.soft_hard();
            rlimit_resource(name).map(|resource| Rlimit {
                resource,
                soft,
                hard,
            })
        })
        .collect()
}

fn rlimit_resource(name: &str) -> Option<Resource> {
    Some(match name {
        "as" => Resource::RLIMIT_AS,
        "core" => Resource::RLIMIT_CORE,
        "cpu" => Resource::RLIMIT_CPU,
        "data" => Resource::RLIMIT_DATA,
        "fsize" => Resource::RLIMIT_FSIZE,
        "locks" => Resource::RLIMIT_LOCKS,
        "memlock" => Resource::RLIMIT_MEMLOCK,
        "msgqueue" => Resource::RLIMIT_MSGQUEUE,
        "nice" => Resource::RLIMIT_NICE,
        "nofile" => Resource::RLIMIT_NOFILE,
        "nproc" => Resource::RLIMIT_NPROC,
        "rss" => Resource::RLIMIT_RSS,
        "rtprio" => Resource::RLIMIT_RTPRIO,
        "rttime" => Resource::RLIMIT_RTTIME,
        "sigpending" => Resource::RLIMIT_SIGPENDING,
        "stack" => Resource::RLIMIT_STACK,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn capabilities_follow_dockers_add_and_drop_rules() {
        let default = effective_capabilities(&spec(r#"{"image":"x"}"#));
        assert_eq!(default.len(), 14);
        let s = spec(
            r#"{"image":"x","capabilities":{"add":["SYS_TIME"],"drop":["NET_RAW","cap_chown"]}}"#,
        );
        let c = effective_capabilities(&s);
        assert!(c.contains(&Capability::CAP_SYS_TIME));
        assert!(!c.contains(&Capability::CAP_NET_RAW) && !c.contains(&Capability::CAP_CHOWN));
        assert_eq!(c.len(), 13);
        let s = spec(r#"{"image":"x","capabilities":{"add":["KILL"],"drop":["ALL"]}}"#);
        assert_eq!(effective_capabilities(&s), vec![Capability::CAP_KILL]);
        let s = spec(r#"{"image":"x","capabilities":{"add":["ALL"],"drop":["SYS_ADMIN"]}}"#);
        let c = effective_capabilities(&s);
        assert_eq!(c.len(), daemon_capabilities().len() - 1);
        assert!(check_capabilities_held(&c).is_ok());
        let everything: Vec<Capability> = caps::all().into_iter().collect();
        if daemon_capabilities().len() < everything.len() {
            assert!(check_capabilities_held(&everything).is_err());
        }
    }

    #[test]
    fn mounts_sort_parents_first_with_safe_defaults() {
        let s = spec(
            r#"{"image":"x","mounts":[
            {"type":"tmpfs","target":"/a/b/c"},
            {"type":"bind","source":"/srv","target":"/a","options":["noexec","suid"]}]}"#,
        );
        let m = mount_configs(&s, &BTreeMap::new());
        assert_eq!(m[0].target(), Path::new("/a"));
        let MountConfig::Bind { flags, .. } = &m[0] else {
            panic!()
        };
        assert!(flags.noexec && !flags.nosuid && flags.nodev && !flags.read_only);
        let MountConfig::Tmpfs {
            flags,
            size_bytes,
            mode,
            ..
        } = &m[1]
        else {
            panic!()
        };
        assert!(flags.noexec && flags.nosuid && flags.nodev);
        assert_eq!((*size_bytes, *mode), (DEFAULT_TMPFS_BYTES, 0o1777));
    }

    #[test]
    fn landlock_writes_follow_the_rootfs_mode() {
        let writable = |ll: &LandlockConfig, p: &str| ll.read_write.contains(&PathBuf::from(p));
        let s = spec(r#"{"image":"x"}"#);
        let ll = landlock_config(&s, &[]).unwrap();
        assert!(
            writable(&ll, "/"),
            "new entries at the root, as under Docker"
        );
        assert!(ll.scope_signal && ll.scope_abstract_unix_socket && ll.bind_tcp.is_none());
        let s = spec(
            r#"{"image":"x","read_only":true,"mounts":[{"type":"tmpfs","target":"/tmp"}],
            "landlock":{"net":{"connect_tcp":[443]}}}"#,
        );
        let mounts = mount_configs(&s, &BTreeMap::new());
        let ll = landlock_config(&s, &mounts).unwrap();
        assert!(!writable(&ll, "/") && !writable(&ll, "/etc"));
        assert!(writable(&ll, "/tmp") && writable(&ll, "/dev"));
        assert_eq!(ll.read_write_files, [PathBuf::from("/proc")]);
        assert_eq!(ll.connect_tcp, Some(vec![443]));
        let off = spec(r#"{"image":"x","landlock":{"enabled":false}}"#);
        assert!(landlock_config(&off, &[]).is_none());
    }
}
