//! Where a container's start spends its time: monotonic stamps taken by
//! the supervisor and by the child between clone and exec. The child
//! cannot allocate or talk back before exec (its error pipe closes on
//! success), so its stamps go to a page shared with the parent; the
//! parent reads them once the child has exec'd. Costs one mmap and a few
//! clock reads (vDSO) per start.

use std::ptr::NonNull;
use std::time::Duration;

use nix::errno::Errno;

/// The moments stamped, in the order a start passes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// The caller began (before building the config and the cgroup).
    Begin = 0,
    /// `spawn_paused` was entered.
    Spawn,
    /// The clone returned in the parent.
    Cloned,
    /// "go" was written: the child was placed (cgroup, network, hooks).
    Released,
    /// The child read "go".
    ChildGo,
    /// The child's filesystem view is built (overlay, pivot, mounts).
    ChildFilesystem,
    /// Ids, capabilities, Landlock and seccomp are set; execve is next.
    ChildIdentity,
    /// The parent saw the exec (the error pipe's EOF).
    Exec,
}

const MARKS: usize = Mark::Exec as usize + 1;
const LEN: usize = MARKS * size_of::<u64>();

/// Each stage's name and the marks it lies between.
const STAGES: [(&str, Mark, Mark); MARKS - 1] = [
    ("config_and_cgroup", Mark::Begin, Mark::Spawn),
    ("clone", Mark::Spawn, Mark::Cloned),
    ("place", Mark::Cloned, Mark::Released),
    ("wake", Mark::Released, Mark::ChildGo),
    ("filesystem", Mark::ChildGo, Mark::ChildFilesystem),
    ("identity", Mark::ChildFilesystem, Mark::ChildIdentity),
    ("exec", Mark::ChildIdentity, Mark::Exec),
];

/// CLOCK_MONOTONIC in nanoseconds (the clock `Instant` uses). Async-signal
/// safe: the child calls it between clone and exec.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// A clock's reading in nanoseconds (0 if the kernel refuses the clock).
pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    if unsafe { libc::clock_gettime(clock, &mut t) } != 0 {
        return 0;
    }
    (t.tv_sec as u64).saturating_mul(1_000_000_000) + t.tv_nsec as u64
}

/// One start's stamps, in memory the child shares with its parent.
#[derive(Debug)]
pub struct StartClock {
    page: NonNull<u64>,
}

impl StartClock {
    pub fn new() -> Result<StartClock, Errno> {
        // SAFETY: a fresh anonymous mapping aliases no Rust object; it is
        // shared so that the child's writes after clone reach the parent.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if page == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let page = NonNull::new(page.cast::<u64>()).ok_or(Errno::ENOMEM)?;
        Ok(StartClock { page })
    }

    /// Stamps `mark` now. No allocation, no lock: safe in the child.
    pub fn mark(&self, mark: Mark) {
        self.mark_at(mark, monotonic_ns());
    }

    pub fn mark_at(&self, mark: Mark, ns: u64) {
        // SAFETY: `mark` < MARKS, inside the mapping; u64 stores are
        // aligned. Volatile: the other process reads it, not this code.
        unsafe { self.page.as_ptr().add(mark as usize).write_volatile(ns) }
    }

    fn get(&self, mark: Mark) -> u64 {
        // SAFETY: as in mark_at; the child has exec'd (or died) when the
        // parent reads, so nothing writes concurrently.
        unsafe { self.page.as_ptr().add(mark as usize).read_volatile() }
    }

    /// Each stage's duration; a stage with a missing stamp (a start that
    /// skipped it) is left out.
    pub fn stages(&self) -> Vec<(&'static str, Duration)> {
        STAGES
            .iter()
            .filter_map(|&(name, from, to)| {
                let (a, b) = (self.get(from), self.get(to));
                (a != 0 && b >= a).then(|| (name, Duration::from_nanos(b - a)))
            })
            .collect()
    }
}

impl Drop for StartClock {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in new() with this length and is
        // not used after drop.
        unsafe { libc::munmap(self.page.as_ptr().cast(), LEN) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_the_gaps_between_marks() {
        let clock = StartClock::new().expect("mmap");
        for (i, m) in [Mark::Begin, Mark::Spawn, Mark::Cloned].iter().enumerate() {
            clock.mark_at(*m, 1_000 + i as u64 * 500);
        }
        let stages = clock.stages();
        assert_eq!(
            stages,
            vec![
                ("config_and_cgroup", Duration::from_nanos(500)),
                ("clone", Duration::from_nanos(500)),
            ]
        );
    }

    #[test]
    fn a_stamp_from_a_forked_child_reaches_the_parent() {
        let clock = StartClock::new().expect("mmap");
        // SAFETY: the test's child only stamps and _exits.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                clock.mark_at(Mark::ChildGo, 42);
                // SAFETY: _exit skips the test harness's atexit state.
                unsafe { libc::_exit(0) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                nix::sys::wait::waitpid(child, None).expect("wait");
                assert_eq!(clock.get(Mark::ChildGo), 42);
            }
        }
    }
}
