//! Keeping an idle shim small.
//!
//! A shim spends almost all of its life asleep in `poll`. The big consumer, creating the
//! container (parsing the spec, the seccomp program, mount tables, deep stacks), runs in a
//! short-lived helper child (`create_in_helper` in the shim module), so the shim itself never
//! touches that memory. What is left for [`release`], once the container runs: the stack pages
//! below the idle loop's frame and the free heap pages (`malloc_trim`).
//!
//! Measured (release build, Linux 6.18 x86-64, 20 idle containers, private dirty memory per
//! shim): 192 kB before, 176 kB with [`release`] alone, 76 kB with the helper. Measured and left
//! out: dropping the page-table entries of the binary's and libc's code after the start (frees
//! about one page-table page, 4 kB: the idle loop's own code is spread over the binary and
//! faults most of them back in), and a 16 KiB `M_MMAP_THRESHOLD` for the shim (4 kB, noise).

use std::path::Path;

/// `[start, end)` of the mapping named `name` (e.g. `[stack]`) in `/proc/PID/maps` text.
pub(crate) fn find_mapping(maps: &str, name: &str) -> Option<(usize, usize)> {
    maps.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let range = fields.next()?;
        if fields.nth(4) != Some(name) {
            return None;
        }
        let (start, end) = range.split_once('-')?;
        Some((
            usize::from_str_radix(start, 16).ok()?,
            usize::from_str_radix(end, 16).ok()?,
        ))
    })
}

/// What [`release`] gave back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Released {
    /// Stack bytes dropped.
    pub stack: usize,
}

/// Gives back what an idle shim does not need (see the module documentation). Call it from
/// the shim's main thread, at a shallow point of its call stack. Best effort: what fails is
/// left as it was.
pub fn release() -> Released {
    let mut released = Released::default();
    let stack = std::fs::read_to_string(Path::new("/proc/self/maps"))
        .ok()
        .and_then(|maps| find_mapping(&maps, "[stack]"));
    if let Some((low, high)) = stack {
        // 16 KiB below this frame: far more than the madvise call made from here needs
        released.stack = crate::sys::release_stack_below(low, high, 16 * 1024).unwrap_or(0);
    }
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
