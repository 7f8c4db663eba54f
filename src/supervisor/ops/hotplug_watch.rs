//! Hotplug's sources and bookkeeping: the uevent socket, the inotify
//! watches on the directories the running containers' `devices` entries
//! name (where udev makes /dev/serial/by-id/… links only after the
//! uevent), and per running container what hotplug needs (its init's pid,
//! its user namespace). ops/hotplug.rs acts on what these report.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use nix::unistd::Pid;

use crate::kernel::uevent::UeventSocket;
use crate::kernel::userns::UsernsConfig;
use crate::supervisor::launch::device_match::SYS_ROOT;
use crate::supervisor::launch::userns::userns_config;
use crate::supervisor::ops::Supervisor;
use crate::supervisor::runtime::machine::State;
use crate::supervisor::say;

/// Levels walked up from a missing directory to one that can be watched
/// (/dev/serial/by-id appears with the first USB serial device).
const MAX_MISSING_LEVELS: usize = 8;

/// One running container, as hotplug sees it.
#[derive(Debug, Clone)]
pub struct RunDevices {
    pub run_id: u64,
    pub pid: Pid,
    pub userns: Option<UsernsConfig>,
    /// Container paths where the device's node was there already (not
    /// berth's: never removed).
    pub not_ours: Vec<PathBuf>,
}

/// The supervisor's hotplug state.
pub struct Hotplug {
    pub(crate) uevents: Option<UeventSocket>,
    pub(crate) inotify: Option<Inotify>,
    pub(crate) watches: BTreeMap<WatchDescriptor, PathBuf>,
    /// Running containers with devices, rules or privileged, by name.
    pub(crate) runs: BTreeMap<String, RunDevices>,
    pub(crate) sys_root: PathBuf,
}

impl Hotplug {
    /// Opens the sources; without them hotplug is off (said once), and
    /// everything else works.
    pub fn open() -> Hotplug {
        let uevents = UeventSocket::open()
            .map_err(|e| say(format_args!("hotplug off: {e}")))
            .ok();
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|e| {
                say(format_args!(
                    "device links not followed: inotify_init1: {e}"
                ))
            })
            .ok();
        Hotplug {
            uevents,
            inotify,
            watches: BTreeMap::new(),
            runs: BTreeMap::new(),
            sys_root: PathBuf::from(SYS_ROOT),
        }
    }

    /// Hotplug that watches nothing (for a supervisor that is not the
    /// daemon).
    pub fn off() -> Hotplug {
        Hotplug {
            uevents: None,
            inotify: None,
            watches: BTreeMap::new(),
            runs: BTreeMap::new(),
            sys_root: PathBuf::from(SYS_ROOT),
        }
    }

    pub fn uevent_fd(&self) -> Option<BorrowedFd<'_>> {
        self.uevents.as_ref().map(UeventSocket::fd)
    }

    pub fn inotify_fd(&self) -> Option<BorrowedFd<'_>> {
        self.inotify.as_ref().map(|i| i.as_fd())
    }
}

/// The directory to watch for `dir`: itself, or its nearest existing
/// ancestor (whose IN_CREATE tells when the next level appears).
fn watchable(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .take(MAX_MISSING_LEVELS)
        .find(|a| a.is_dir())
        .map(Path::to_path_buf)
}

impl Supervisor {
    /// The running containers that hotplug serves, with the run of each.
    fn hotplug_candidates(&self) -> Vec<(String, u64, Pid)> {
        self.containers
            .values()
            .filter(|c| c.state() == State::Running)
            .filter(|c| {
                let s = &c.spec;
                s.privileged || !s.devices.is_empty() || !s.device_cgroup_rules.is_empty()
            })
            .filter_map(|c| Some((c.name.clone(), c.run_id(), c.pid?)))
            .collect()
    }

    /// Once per loop turn: follows which containers run, and when that
    /// changed, which directories are watched. Cheap when nothing did.
    pub fn sync_hotplug(&mut self) {
        if self.hotplug.uevents.is_none() {
            return;
        }
        let now = self.hotplug_candidates();
        let same = now.len() == self.hotplug.runs.len()
            && now.iter().all(|(name, run_id, _)| {
                self.hotplug
                    .runs
                    .get(name)
                    .is_some_and(|r| r.run_id == *run_id)
            });
        if same {
            return;
        }
        let store_root = self.store.root().to_path_buf();
        let mut runs = BTreeMap::new();
        for (name, run_id, pid) in now {
            let kept = self
                .hotplug
                .runs
                .remove(&name)
                .filter(|r| r.run_id == run_id);
            let run = kept.unwrap_or_else(|| RunDevices {
                run_id,
                pid,
                not_ours: Vec::new(),
                userns: self
                    .containers
                    .get(&name)
                    .and_then(|c| userns_config(&c.spec, &name, &store_root).ok().flatten()),
            });
            runs.insert(name, run);
        }
        self.hotplug.runs = runs;
        let _ = self.sync_device_watches();
    }

    /// Watches the parent directory of every path entry of the running
    /// containers (or its nearest existing ancestor), and no other;
    /// returns the directories newly watched.
    pub(crate) fn sync_device_watches(&mut self) -> Vec<PathBuf> {
        let Some(inotify) = &self.hotplug.inotify else {
            return Vec::new();
        };
        let mut wanted: Vec<PathBuf> = Vec::new();
        for name in self.hotplug.runs.keys() {
            let Some(c) = self.containers.get(name) else {
                continue;
            };
            let parents = c
                .spec
                .devices
                .iter()
                .filter(|d| d.device_match.is_none() && !d.cdi)
                .filter_map(|d| Path::new(&d.path).parent().and_then(watchable));
            wanted.extend(parents);
        }
        wanted.sort();
        wanted.dedup();
        let flags =
            AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_ONLYDIR;
        let watches = &mut self.hotplug.watches;
        watches.retain(|wd, dir| {
            let keep = wanted.contains(dir);
            if !keep {
                let _ = inotify.rm_watch(*wd);
            }
            keep
        });
        let mut fresh = Vec::new();
        for dir in wanted {
            if watches.values().any(|d| *d == dir) {
                continue;
            }
            match inotify.add_watch(&dir, flags) {
                Ok(wd) => {
                    watches.insert(wd, dir.clone());
                    fresh.push(dir);
                }
                Err(e) => say(format_args!("hotplug: watch {}: {e}", dir.display())),
            }
        }
        fresh
    }

    /// The path entries in `dirs`: what a directory that appeared may
    /// already hold (udev makes the directory and its first link back to
    /// back, before its watch is in place).
    pub(crate) fn entries_in(&self, dirs: &[PathBuf]) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for name in self.hotplug.runs.keys() {
            let Some(c) = self.containers.get(name) else {
                continue;
            };
            let paths = c
                .spec
                .devices
                .iter()
                .filter(|d| d.device_match.is_none())
                .map(|d| PathBuf::from(&d.path))
                .filter(|p| {
                    p.parent()
                        .is_some_and(|parent| dirs.iter().any(|d| d == parent))
                });
            out.extend(paths);
        }
        out.sort();
        out.dedup();
        out
    }

    /// Paths that appeared in the watched directories.
    pub(crate) fn read_device_links(&mut self) -> Vec<PathBuf> {
        let Some(inotify) = &self.hotplug.inotify else {
            return Vec::new();
        };
        let mut out = Vec::new();
        // A bounded number of reads per turn; the rest waits for the next.
        for _ in 0..16 {
            let Ok(events) = inotify.read_events() else {
                break;
            };
            for e in events {
                let (Some(dir), Some(name)) = (self.hotplug.watches.get(&e.wd), e.name) else {
                    continue;
                };
                out.push(dir.join(name));
            }
        }
        out
    }
}
