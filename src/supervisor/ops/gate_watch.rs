//! The sources that wake `wait_for` gates: inotify on the nearest existing
//! directory of each awaited path, and a netlink socket for link, address
//! and route changes. Opened the first time a gate needs them.

use std::collections::BTreeSet;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::kernel::net_state::RouteEvents;
use crate::supervisor::say;

#[derive(Default)]
pub struct GateWatch {
    inotify: Option<Inotify>,
    watched: BTreeSet<PathBuf>,
    routes: Option<RouteEvents>,
    /// Opening failed once: said, and not tried again.
    failed: bool,
}

impl GateWatch {
    fn open(&mut self) {
        if self.inotify.is_some() || self.failed {
            return;
        }
        let flags = InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC;
        match (Inotify::init(flags), RouteEvents::open()) {
            (Ok(i), Ok(r)) => {
                self.inotify = Some(i);
                self.routes = Some(r);
            }
            (Err(e), _) => self.fail(&format!("inotify_init1: {e}")),
            (_, Err(e)) => self.fail(&e.to_string()),
        }
    }

    fn fail(&mut self, why: &str) {
        self.failed = true;
        say(format_args!(
            "wait_for gates are checked on their timers only: {why}"
        ));
    }

    /// Watches the directory `path` would appear in, or its nearest
    /// existing ancestor (/dev/serial/by-id appears with its first device).
    pub fn watch_path(&mut self, path: &Path) {
        self.open();
        let Some(inotify) = &self.inotify else {
            return;
        };
        let Some(dir) = path.ancestors().skip(1).find(|d| d.is_dir()) else {
            return;
        };
        if self.watched.contains(dir) {
            return;
        }
        let flags = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_ATTRIB
            | AddWatchFlags::IN_DELETE_SELF;
        if inotify.add_watch(dir, flags).is_ok() {
            self.watched.insert(dir.to_path_buf());
        }
    }

    /// Also used for network gates: opened by the first check.
    pub fn watch_network(&mut self) {
        self.open();
    }

    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let inotify = self.inotify.as_ref().map(|i| i.as_fd());
        let routes = self.routes.as_ref().map(|r| r.fd());
        inotify.into_iter().chain(routes).collect()
    }

    /// Takes what woke the loop. A directory deleted and made again must
    /// be watched anew: forget them all, the next check adds them back.
    pub fn drain(&mut self) {
        if let Some(i) = &self.inotify
            && let Ok(events) = i.read_events()
            && events
                .iter()
                .any(|e| e.mask.contains(AddWatchFlags::IN_IGNORED))
        {
            self.watched.clear();
        }
        if let Some(r) = &self.routes {
            r.drain();
        }
    }
}
