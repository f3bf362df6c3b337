//! Start-up code given back: once the proxy serves, the pages of its own machine code that
//! only start-up touched (argument and TOML parsing, validation, building the workers) are
//! unmapped from the process, so its idle RSS is what serving needs.
//!
//! The binary's code is about 6 MB; starting touches functions all over it, and each fault
//! maps the 64 KiB around it, so a fresh process held about 4.7 MB of it. `MADV_DONTNEED` on
//! the executable's read-only, executable mappings drops those mappings; a function called
//! later faults its page back in from the page cache (where the kernel keeps it as long as
//! it likes; nothing is read from disk while the file is cached). Only `r-xp` mappings of
//! the executable are touched: code is never written, so dropping it loses nothing. Data,
//! relocated read-only data (`.data.rel.ro`), shared libraries and the heap are left alone.
//! Figures: docs/perf.md, "Idle RSS".

/// Drops the executable's clean read-only pages from the process's mappings (best effort:
/// any error leaves them mapped). Call once, when start-up is over.
pub(crate) fn release_startup_code() {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return;
    };
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut released = 0usize;
    for (start, len) in clean_ranges(&smaps, &exe) {
        // SAFETY: `start..start + len` is a whole mapping of this process's executable that
        // cannot be written (`r-xp` or `r--p`) and holds no page copied on write (no
        // relocation was written into it), as /proc/self/smaps lists it. MADV_DONTNEED on a private file
        // mapping only drops its page table entries: the next access maps the same bytes
        // from the file again, so its contents stay what they were.
        let rc = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
        if rc == 0 {
            released += len;
        }
    }
    tracing::debug!(
        bytes = released,
        "start-up pages of the executable released"
    );
}

/// The executable's mappings in `smaps` that are read-only (`r-xp` code, `r--p` constants)
/// and unwritten: no page copied on write (`Anonymous: 0 kB`).
fn clean_ranges(smaps: &str, exe: &std::path::Path) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    let mut clean = true;
    let mut finish = |current: &mut Option<(usize, usize)>, clean: bool| {
        if let (Some(range), true) = (current.take(), clean) {
            out.push(range);
        }
    };
    for line in smaps.lines() {
        if let Some(range) = mapping(line) {
            finish(&mut current, clean);
            current = range
                .filter(|(_, _, perms, path)| {
                    matches!(*perms, "r-xp" | "r--p") && std::path::Path::new(path) == exe
                })
                .map(|(start, len, _, _)| (start, len));
            clean = true;
            continue;
        }
        // A page this process wrote (a relocation) is an anonymous copy. (`*_Dirty` count
        // page-cache pages not yet written back too, as for a binary just copied in place.)
        if line
            .strip_prefix("Anonymous:")
            .is_some_and(|v| v.trim() != "0 kB")
        {
            clean = false;
        }
    }
    finish(&mut current, clean);
    out
}

/// A mapping's header line in /proc/self/maps or smaps: `Some(None)` for a header that does
/// not parse, `None` for any other line (smaps' `Key: value` lines).
#[allow(clippy::type_complexity)]
fn mapping(line: &str) -> Option<Option<(usize, usize, &str, &str)>> {
    let mut fields = line.split_whitespace();
    let range = fields.next()?;
    let (start, end) = range.split_once('-')?;
    if range.ends_with(':') || !start.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let parsed = (|| {
        let perms = fields.next()?;
        // offset, device, inode, then the path (absent for anonymous mappings).
        let path = fields.nth(3).unwrap_or("");
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        let len = end.checked_sub(start).filter(|len| *len > 0)?;
        Some((start, len, perms, path))
    })();
    Some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_executables_clean_read_only_mappings() {
        let exe = std::path::Path::new("/usr/bin/ringside");
        let smaps = "\
55d0c2800000-55d0c2a00000 r--p 00000000 fd:01 1234   /usr/bin/ringside
Rss:                1000 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
55d0c2a00000-55d0c3000000 r-xp 00200000 fd:01 1234   /usr/bin/ringside
Shared_Dirty:        896 kB
Private_Dirty:       224 kB
Anonymous:             0 kB
55d0c3000000-55d0c3100000 r--p 00800000 fd:01 1234   /usr/bin/ringside
Private_Dirty:       120 kB
Anonymous:           120 kB
55d0c3100000-55d0c3200000 rw-p 00900000 fd:01 1234   /usr/bin/ringside
Private_Dirty:         0 kB
55d0c3200000-55d0c3300000 rw-p 00000000 00:00 0 
Private_Dirty:         8 kB
7f0000000000-7f0000100000 r-xp 00000000 fd:01 99     /usr/lib/x86_64-linux-gnu/libc.so.6
Private_Dirty:         0 kB
";
        assert_eq!(
            clean_ranges(smaps, exe),
            [(0x55d0_c280_0000, 0x20_0000), (0x55d0_c2a0_0000, 0x60_0000)]
        );
        assert_eq!(mapping("Rss:                1000 kB"), None);
        assert_eq!(mapping("7ffd-7ffc r-xp 0 0:0 0 /x"), Some(None));
    }

    /// The process keeps running code and reading constants it dropped: their pages come
    /// back on the next access.
    #[test]
    fn code_runs_after_its_pages_are_released() {
        release_startup_code();
        let v: Vec<u64> = (0..1000).map(|i| i * 3).collect();
        assert_eq!(v.iter().sum::<u64>(), 1_498_500);
        assert!(format!("{:?}", std::path::Path::new("/x")).contains('x'));
    }
}
