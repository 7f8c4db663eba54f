//! A daemon starting after another one died (kill -9, OOM, power loss).
//! berth does not adopt what the old one left: its containers' output
//! pipes died with it (a container writing to them gets SIGPIPE) and their
//! exit status can only be collected by their parent. Containers die with
//! the daemon anyway (PR_SET_PDEATHSIG); whatever survived (an init that
//! exec'd a setuid binary clears that signal) is killed here, and every
//! trace is released before the config's containers start again: leftover
//! cgroups, CNI attachments, and the directories of containers the config
//! no longer names (`berth run` ones included). Plugin volumes a dead run
//! left mounted are unmounted before the container mounts them again
//! (create.rs).

use crate::kernel::cgroup::sweep_children;
use crate::supervisor::ops::Supervisor;
use crate::supervisor::say;

impl Supervisor {
    /// Before the first start: kill and remove what a previous daemon
    /// left. Bounded: every survivor is SIGKILLed at once, and each cgroup
    /// removal waits at most a moment for them to be gone.
    pub fn recover_leftovers(&mut self) {
        for left in sweep_children(&self.options.cgroup_parent) {
            let name = &left.name;
            if !left.killed.is_empty() {
                say(format_args!(
                    "container {name}: killed {} processes a previous daemon left running (pids {:?})",
                    left.killed.len(),
                    left.killed
                ));
            }
            if let Err(e) = left.removed {
                say(format_args!("container {name}: leftover cgroup: {e}"));
            }
        }
        self.cleanup_stale_networks();
        self.remove_unknown_dirs();
    }

    /// Container directories the config does not name: `berth run`
    /// containers and removed specs of a daemon that died before it could
    /// delete them. Moved aside and deleted by a helper.
    fn remove_unknown_dirs(&mut self) {
        let dir = self.store.containers_dir();
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let mut stale: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !self.containers.contains_key(n))
            .collect();
        stale.sort();
        for name in stale {
            let base = dir.join(&name);
            if name.starts_with(".removed-") {
                self.remove_tree(base);
                continue;
            }
            say(format_args!(
                "container {name}: not in the config; removing what a previous daemon left"
            ));
            self.discard_dir(&name, &base);
        }
    }
}
