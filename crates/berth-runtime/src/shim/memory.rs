//! Keeping an idle shim small.
//!
//! A shim spends almost all of its life asleep in `poll`. The big consumer, creating the
//! container (parsing the spec, the seccomp program, mount tables, deep stacks), runs in a
//! short-lived helper child (`create_in_helper` in the shim module), so the shim itself never
//! touches that memory. What is left for [`release`], once the container runs and the shim has
//! had nothing to do for a moment (`RELEASE_AFTER_IDLE_MS`): the stack pages below the idle
//! loop's frame, the free heap pages (`malloc_trim`), and the page-table entries of the code
//! and constants of the binary and libc (read-only file mappings without a copied page; see
//! [`clean_file_mappings`]): the start path touched code all over the binary, the idle loop
//! faults back a few pages of it, and the kernel frees the page-table pages left empty
//! (`CONFIG_PT_RECLAIM`, Linux 6.14+; elsewhere only the entries go).
//!
//! Measured (release build, Linux 6.18 x86-64, 20 idle containers, per shim): private dirty
//! memory 192 kB before, 176 kB with the stack and heap release alone, 76-84 kB with the
//! helper; page tables 72 kB, 48-56 kB with the code mappings dropped. Measured and left out:
//! a 16 KiB `M_MMAP_THRESHOLD` for the shim (4 kB, noise).

use std::path::Path;

/// `[start, end)` of a `start-end` address range (hex) of a maps line.
fn parse_range(range: &str) -> Option<(usize, usize)> {
    let (start, end) = range.split_once('-')?;
    Some((
        usize::from_str_radix(start, 16).ok()?,
        usize::from_str_radix(end, 16).ok()?,
    ))
}

/// `[start, end)` of the mapping named `name` (e.g. `[stack]`) in `/proc/PID/maps` or
/// `/proc/PID/smaps` text.
pub(crate) fn find_mapping(maps: &str, name: &str) -> Option<(usize, usize)> {
    maps.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let range = fields.next()?;
        if fields.nth(4) != Some(name) {
            return None;
        }
        parse_range(range)
    })
}

/// What [`release`] gave back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Released {
    /// Stack bytes dropped.
    pub stack: usize,
    /// Bytes of read-only file mappings whose page-table entries were dropped.
    pub code: usize,
}

/// The read-only, private file mappings in `/proc/PID/smaps` text that hold no anonymous
/// (copied-on-write) page: code and constants of the binary and the libraries. Zapping their
/// page-table entries loses nothing: a later access maps the same file page again. A mapping
/// that holds an anonymous page (relocated data made read-only, RELRO) is left out: its
/// contents differ from the file's.
pub(crate) fn clean_file_mappings(smaps: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = parse_range(first) {
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            current = (perms.len() == 4
                && perms.starts_with('r')
                && !perms.contains('w')
                && perms.ends_with('p')
                && path.starts_with('/'))
            .then_some((start, end));
        } else if first == "Anonymous:" {
            if let Some(range) = current.take() {
                if fields.next() == Some("0") {
                    out.push(range);
                }
            }
        }
    }
    out
}

/// Gives back what an idle shim does not need (see the module documentation). Call it from
/// the shim's main thread, at a shallow point of its call stack. Best effort: what fails is
/// left as it was.
pub fn release() -> Released {
    let mut released = Released::default();
    // one read serves both: smaps has every mapping's maps line, and its page counts
    let smaps = std::fs::read_to_string(Path::new("/proc/self/smaps")).unwrap_or_default();
    if let Some((low, high)) = find_mapping(&smaps, "[stack]") {
        // 16 KiB below this frame: far more than the madvise call made from here needs
        released.stack = crate::sys::release_stack_below(low, high, 16 * 1024).unwrap_or(0);
    }
    for (start, end) in clean_file_mappings(&smaps) {
        if crate::sys::drop_file_pages(start, end - start).is_ok() {
            released.code += end - start;
        }
    }
    drop(smaps);
    // last, so that what reading the maps allocated goes back too
    crate::sys::trim_heap();
    released
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAPS: &str = "\
5617d420b000-5617d46db000 r--p 00000000 00:01 1699                       /memfd:berth-shim (deleted)
561811b3e000-561811b5f000 rw-p 00000000 00:00 0                          [heap]
7fac50dc6000-7fac50dc8000 rw-p 00000000 00:00 0 
7ffe84f88000-7ffe84fa9000 rw-p 00000000 00:00 0                          [stack]
7ffe84fb0000-7ffe84fb2000 r-xp 00000000 00:00 0                          [vdso]
";

    #[test]
    fn only_clean_read_only_file_mappings_are_dropped() {
        let smaps = "\
00200000-00663000 r--p 00000000 00:01 2908                               /memfd:berth-shim (deleted)
Rss:                 448 kB
Anonymous:             0 kB
00663000-0165c000 r-xp 00462000 00:01 2908                               /memfd:berth-shim (deleted)
Anonymous:             0 kB
0165c000-0170e000 r--p 0145a000 00:01 2908                               /memfd:berth-shim (deleted)
Anonymous:           200 kB
0170e000-01717000 rw-p 0150b000 00:01 2908                               /memfd:berth-shim (deleted)
Anonymous:             8 kB
29771000-29779000 rw-p 00000000 00:00 0                                  [heap]
Anonymous:            20 kB
7fb907f82000-7fb9080d8000 r-xp 00026000 fe:00 326279                     /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7fb908241000-7fb908244000 r--p 00000000 00:00 0
Anonymous:             0 kB
7fb90824f000-7fb908251000 r-xp 00000000 00:00 0                          [vdso]
Anonymous:             0 kB
7fb908300000-7fb908301000 r--s 00000000 fe:00 1234                       /some/shared/file
Anonymous:             0 kB
";
        assert_eq!(
            clean_file_mappings(smaps),
            vec![
                (0x200000, 0x663000),
                (0x663000, 0x165c000),
                (0x7fb907f82000, 0x7fb9080d8000)
            ]
        );
        // release() finds the stack in the same text
        assert_eq!(
            find_mapping(smaps, "[heap]"),
            Some((0x29771000, 0x29779000))
        );
    }

    #[test]
    fn finds_the_stack_mapping() {
        assert_eq!(
            find_mapping(MAPS, "[stack]"),
            Some((0x7ffe84f88000, 0x7ffe84fa9000))
        );
        assert_eq!(
            find_mapping(MAPS, "[heap]"),
            Some((0x561811b3e000, 0x561811b5f000))
        );
        assert_eq!(find_mapping(MAPS, "[vvar]"), None);
        assert_eq!(find_mapping("", "[stack]"), None);
    }

    #[test]
    fn release_drops_stack_below_the_caller_and_keeps_it_working() {
        // runs on the test harness's threads, whose stacks are not `[stack]`: nothing to drop
        // there; on the main thread of a child process the deep call's pages go
        fn deep(n: u32, sink: &mut Vec<u8>) -> u64 {
            let buf = [n as u8; 512];
            sink.push(buf[(n as usize) % 512]);
            if n == 0 {
                0
            } else {
                deep(n - 1, sink) + u64::from(std::hint::black_box(buf)[0])
            }
        }
        let mut sink = Vec::new();
        let before = deep(200, &mut sink);
        let kept = vec![7u8; 100_000];
        let _ = release();
        assert_eq!(deep(200, &mut sink), before);
        assert!(kept.iter().all(|b| *b == 7));
        // the main thread's stack: a range that holds this frame is left alone above it
        let marker = 0u8;
        let here = std::hint::black_box(&marker) as *const u8 as usize;
        let page = crate::sys::page_size();
        assert_eq!(
            crate::sys::release_stack_below(here - page, here + page, 1024 * 1024)
                .expect("madvise"),
            0,
            "nothing below the margin"
        );
        assert_eq!(
            crate::sys::release_stack_below(here + page, here + 2 * page, 0).expect("madvise"),
            0,
            "a range that does not hold this frame is not touched"
        );
    }
}
