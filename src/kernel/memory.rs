//! Giving back the pages of berth's own code it is not running. A daemon
//! that has started its containers and sits in poll(2) touches almost no
//! code, yet `ps` shows every page startup ran (and the kernel's
//! fault-around maps up to 16 neighbours of each): about 3.8 MiB of the
//! binary's text and read-only data. Those pages are clean and
//! file-backed, so dropping them from berth's page tables costs nothing
//! but a minor fault (from the page cache) when that code runs again.

use std::fs;

/// Drops the resident pages of the executable's read-only mappings
/// (text, rodata) from this process; returns the bytes they spanned.
/// Only mappings with no private (copy-on-write) page are touched: the
/// writable ones (data, bss) and read-only ones written before they were
/// made read-only (RELRO, relocated at start) hold state the file lacks.
pub fn release_code_pages() -> usize {
    let Ok(exe) = fs::read_link("/proc/self/exe") else {
        return 0;
    };
    let Ok(smaps) = fs::read_to_string("/proc/self/smaps") else {
        return 0;
    };
    let exe = exe.to_string_lossy();
    let mut released = 0;
    for (start, end) in clean_code_ranges(&smaps, &exe) {
        // SAFETY: [start, end) is a whole private, file-backed mapping of
        // our own executable, without write permission and without a
        // single copy-on-write page, as /proc/self/smaps lists it: its
        // bytes are the file's. MADV_DONTNEED only drops its page-table
        // entries, and a later access faults the same bytes back in from
        // the page cache.
        let rc =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if rc == 0 {
            released += end - start;
        }
    }
    released
}

/// Returns the heap's free memory to the kernel: glibc keeps what a burst
/// of work freed (a hundred container starts leave megabytes) for reuse.
pub fn release_free_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks glibc's own arenas, under their locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Below the current frame, what the stack may still need before the
/// next trim: the calls this one makes, and the red zone (128 bytes on
/// x86-64) a leaf function may use without moving the stack pointer.
const STACK_KEEP: usize = 16 << 10;

/// Drops the main thread's stack pages deeper than the caller's frame:
/// one deep call chain at startup (parsing, a filter's compilation)
/// leaves its pages resident for the process's life. Returns the bytes
/// released; 0 when called off the main thread's stack.
pub fn release_unused_stack() -> usize {
    let Ok(maps) = fs::read_to_string("/proc/self/maps") else {
        return 0;
    };
    let here = 0u8;
    let sp = std::hint::black_box(std::ptr::addr_of!(here)) as usize;
    let Some((start, end)) = stack_range(&maps) else {
        return 0;
    };
    if !(start..end).contains(&sp) {
        return 0;
    }
    let page = page_size();
    let top = sp.saturating_sub(STACK_KEEP) & !(page - 1);
    if top <= start {
        return 0;
    }
    // SAFETY: [start, top) lies in the main thread's stack mapping, wholly
    // below the current frame and the margin kept for the calls made from
    // here: no live frame or red zone is in it. MADV_DONTNEED turns its
    // pages into fresh zero pages, which is what unused stack holds for
    // any code that later grows into it.
    let rc = unsafe { libc::madvise(start as *mut libc::c_void, top - start, libc::MADV_DONTNEED) };
    if rc == 0 { top - start } else { 0 }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory effects.
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    }
}

/// The `[stack]` mapping of a /proc/self/maps text.
fn stack_range(maps: &str) -> Option<(usize, usize)> {
    let line = maps.lines().find(|l| l.ends_with("[stack]"))?;
    let (start, end) = line.split_whitespace().next()?.split_once('-')?;
    Some((
        usize::from_str_radix(start, 16).ok()?,
        usize::from_str_radix(end, 16).ok()?,
    ))
}

/// `(start, end)` of each private mapping of `exe` without write
/// permission whose `Anonymous:` (copy-on-write) size is 0.
fn clean_code_ranges(smaps: &str, exe: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        if let Some(range) = mapping_of(line, exe) {
            current = range;
            continue;
        }
        if let (Some(range), Some(anon)) = (current, line.strip_prefix("Anonymous:")) {
            if anon.trim() == "0 kB" {
                out.push(range);
            }
            current = None;
        }
    }
    out
}

/// For a mapping's header line: `Some(Some(range))` when it is a
/// read-only private mapping of `exe`, `Some(None)` for any other
/// mapping, `None` for a field line.
fn mapping_of(line: &str, exe: &str) -> Option<Option<(usize, usize)>> {
    let mut fields = line.split_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let perms = fields.next()?;
    if perms.len() != 4 {
        return None;
    }
    let (Ok(start), Ok(end)) = (
        usize::from_str_radix(start, 16),
        usize::from_str_radix(end, 16),
    ) else {
        return None;
    };
    let path = fields.nth(3);
    let ours = path == Some(exe) && !perms.contains('w') && perms.ends_with('p') && end > start;
    Some(ours.then_some((start, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_read_only_private_mappings_of_the_executable() {
        let smaps = "\
00200000-003cd000 r--p 00000000 fe:00 1 /usr/bin/berth
Rss:                 832 kB
Anonymous:             0 kB
003cd000-00878000 r-xp 001cc000 fe:00 1 /usr/bin/berth
Anonymous:             0 kB
00878000-0087d000 r--p 00676000 fe:00 1 /usr/bin/berth
Anonymous:            20 kB
0087d000-00881000 rw-p 0067a000 fe:00 1 /usr/bin/berth
Anonymous:             0 kB
00881000-00887000 rw-p 00000000 00:00 0
Anonymous:            24 kB
7f00000000-7f00001000 r-xp 00000000 fe:00 2 /usr/lib/libc.so.6
Anonymous:             0 kB
7f00002000-7f00003000 r--s 00000000 fe:00 1 /usr/bin/berth
Anonymous:             0 kB
";
        assert_eq!(
            clean_code_ranges(smaps, "/usr/bin/berth"),
            [(0x200000, 0x3cd000), (0x3cd000, 0x878000)]
        );
    }

    #[test]
    fn the_stack_mapping_is_found() {
        let maps = "00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/berth\n\
                    7ffc6f2b4000-7ffc6f2d6000 rw-p 00000000 00:00 0                          [stack]\n";
        assert_eq!(stack_range(maps), Some((0x7ffc6f2b4000, 0x7ffc6f2d6000)));
        assert_eq!(stack_range("00400000-00452000 r-xp 0 0 1 /x\n"), None);
    }

    #[test]
    fn a_thread_off_the_main_stack_releases_nothing() {
        // The test harness runs each test on its own thread.
        assert_eq!(release_unused_stack(), 0);
    }

    #[test]
    fn code_runs_on_after_its_pages_are_released() {
        assert!(release_code_pages() > 0);
        // Formatting, allocation and the smaps parser itself fault back in.
        let again = format!("{:?}", clean_code_ranges("", "x"));
        assert_eq!(again, "[]");
        assert!(release_code_pages() > 0);
    }
}
