//! The standard `process_*` metrics, read from `/proc/self` at scrape time (Linux), as the
//! Prometheus client libraries define them.

use std::fs;

/// What one scrape reads; `None` where the kernel did not say.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: Option<f64>,
    pub resident_memory_bytes: Option<u64>,
    pub virtual_memory_bytes: Option<u64>,
    pub start_time_seconds: Option<f64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
}

/// Reads the current process's figures.
pub fn read() -> ProcessStats {
    // SAFETY: sysconf reads a configuration value and touches no memory of ours.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let stat = fs::read_to_string("/proc/self/stat").ok();
    let boot = fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| boot_time(&s));
    let mut p = stat
        .as_deref()
        .and_then(|s| parse_stat(s, ticks as f64, u64::try_from(page).ok()?, boot))
        .unwrap_or_default();
    p.open_fds = fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as u64);
    p.max_fds = max_fds();
    p
}

fn max_fds() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we pass.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (rc == 0).then_some(lim.rlim_cur)
}

/// `btime` (boot time, Unix seconds) from `/proc/stat`.
fn boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Fields of `/proc/self/stat` (proc(5)); the command name may hold spaces and parentheses,
/// so fields are counted from the last `)`.
fn parse_stat(stat: &str, ticks: f64, page: u64, boot: Option<u64>) -> Option<ProcessStats> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    // Field 3 (state) is index 0.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    let ticks = (ticks > 0.0).then_some(ticks);
    let cpu = match (field(14), field(15), ticks) {
        (Some(u), Some(s), Some(t)) => Some((u + s) as f64 / t),
        _ => None,
    };
    let start = match (field(22), boot, ticks) {
        (Some(st), Some(b), Some(t)) => Some(b as f64 + st as f64 / t),
        _ => None,
    };
    Some(ProcessStats {
        cpu_seconds: cpu,
        resident_memory_bytes: field(24).map(|pages| pages * page),
        virtual_memory_bytes: field(23),
        start_time_seconds: start,
        open_fds: None,
        max_fds: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat() {
        let stat = "1234 (ring side (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 \
                    3 0 1000 104857600 512 18446744073709551615";
        let p = parse_stat(stat, 100.0, 4096, Some(1_700_000_000)).unwrap();
        assert_eq!(p.cpu_seconds, Some(3.0));
        assert_eq!(p.resident_memory_bytes, Some(512 * 4096));
        assert_eq!(p.virtual_memory_bytes, Some(104_857_600));
        assert_eq!(p.start_time_seconds, Some(1_700_000_010.0));
        assert_eq!(
            boot_time("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn reads_this_process() {
        let p = read();
        assert!(p.resident_memory_bytes.unwrap_or(0) > 0);
        assert!(p.open_fds.unwrap_or(0) > 0);
        assert!(p.start_time_seconds.unwrap_or(0.0) > 1e9);
    }
}
