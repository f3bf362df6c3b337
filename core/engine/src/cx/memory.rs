//! The memory ceiling (`[proxy] memory_limit_mib`): the process's resident memory, sampled by
//! a thread of its own, and the level the workers act on.
//!
//! Where it sits: the sampler thread (`ringside-memory`, started by `server.rs` once a
//! configuration sets a ceiling) reads `/proc/self/statm` every [`SAMPLE`] and stores the
//! resident size and its [`Level`] in a [`Memory`] every worker holds (from the registry,
//! `cx/shared.rs`). A worker never reads a file: its housekeeping tick loads the level and
//! sheds its oldest idle connections while it is [`Level::Shed`] or worse (`cx/idle.rs`,
//! `worker.rs`), and its accept loops close newcomers at once while it is
//! [`Level::Refuse`]. Requests in flight are never cut: only connections waiting for a
//! request are shed.
//!
//! Thresholds: shedding starts at [`SHED_PERCENT`] of the ceiling, refusing at the ceiling.
//! Config read: `ProxySettings::memory_limit`, followed over reloads (0 clears the level).
//! Metrics: the ceiling and the last sample (`ringside_memory_limit_bytes`,
//! `ringside_memory_resident_bytes`); the workers count what they shed and refused.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use ringside_config::Snapshot;

use super::background::{Background, Seen, Signals};

/// The registry key of the process's [`Memory`].
pub(crate) const KEY: &str = "memory";
/// How often the sampler reads the resident size while a ceiling is set.
pub(crate) const SAMPLE: Duration = Duration::from_millis(50);
/// Idle connections are shed from this share of the ceiling on.
pub(crate) const SHED_PERCENT: u64 = 90;
/// How long the sampler sleeps while no ceiling is set (a reload wakes it).
const UNSET_WAIT: Duration = Duration::from_secs(3600);

/// What the workers do about memory now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// Under [`SHED_PERCENT`] of the ceiling, or no ceiling.
    Normal = 0,
    /// Close idle keep-alive connections, oldest first.
    Shed = 1,
    /// At the ceiling: shed, and close new connections as they are accepted.
    Refuse = 2,
}

impl Level {
    /// The level of `resident` bytes under a ceiling of `limit` bytes (0: none).
    pub(crate) fn of(resident: u64, limit: u64) -> Level {
        if limit == 0 {
            Level::Normal
        } else if resident >= limit {
            Level::Refuse
        } else if u128::from(resident) * 100 >= u128::from(limit) * u128::from(SHED_PERCENT) {
            Level::Shed
        } else {
            Level::Normal
        }
    }
}

/// The process's memory figures, shared by the sampler, the workers and the admin endpoint.
#[derive(Debug, Default)]
pub struct Memory {
    /// The ceiling in bytes; 0: none.
    limit: AtomicU64,
    /// The last sampled resident size in bytes; 0 before the first sample.
    resident: AtomicU64,
    level: AtomicU8,
}

impl Memory {
    pub(crate) fn level(&self) -> Level {
        match self.level.load(Relaxed) {
            2 => Level::Refuse,
            1 => Level::Shed,
            _ => Level::Normal,
        }
    }

    fn store(&self, limit: u64, resident: u64) {
        self.limit.store(limit, Relaxed);
        self.resident.store(resident, Relaxed);
        self.level.store(Level::of(resident, limit) as u8, Relaxed);
    }

    /// Whether a ceiling is set (one load).
    pub(crate) fn limited(&self) -> bool {
        self.limit.load(Relaxed) > 0
    }

    /// The ceiling, the last sample and the level; `None` without a ceiling.
    pub fn figures(&self) -> Option<MemoryReport> {
        let limit = self.limit.load(Relaxed);
        (limit > 0).then(|| MemoryReport {
            limit,
            resident: self.resident.load(Relaxed),
            level: self.level(),
        })
    }
}

/// The memory ceiling's figures, for the admin endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryReport {
    /// The ceiling, in bytes.
    pub limit: u64,
    /// The last sampled resident size, in bytes (0 before the first sample).
    pub resident: u64,
    pub level: Level,
}

/// Starts the sampler thread.
pub(crate) fn spawn(
    shared: Arc<ArcSwap<Snapshot>>,
    memory: Arc<Memory>,
) -> std::io::Result<Background> {
    Background::spawn("ringside-memory", move |signals| {
        sample(&shared, &memory, &signals)
    })
}

fn sample(shared: &ArcSwap<Snapshot>, memory: &Memory, signals: &Signals) {
    let mut seen = Seen::default();
    let mut limit = 0;
    let page = page_size();
    loop {
        if let Some(snap) = seen.changed(shared) {
            limit = snap.config.proxy.memory_limit.unwrap_or(0);
        }
        let wait = if limit == 0 {
            memory.store(0, 0);
            UNSET_WAIT
        } else {
            match resident_pages() {
                Some(pages) => memory.store(limit, pages.saturating_mul(page)),
                None => tracing::warn!(
                    "cannot read /proc/self/statm: the memory ceiling is not enforced"
                ),
            }
            SAMPLE
        };
        if !signals.wait(wait) {
            memory.store(0, 0);
            return;
        }
    }
}

/// The resident set size in pages (`/proc/self/statm`'s second field).
fn resident_pages() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    statm.split_whitespace().nth(1)?.parse().ok()
}

fn page_size() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_ceiling() {
        let mib = 1 << 20;
        assert_eq!(Level::of(500 * mib, 0), Level::Normal);
        assert_eq!(Level::of(89 * mib, 100 * mib), Level::Normal);
        assert_eq!(Level::of(90 * mib, 100 * mib), Level::Shed);
        assert_eq!(Level::of(100 * mib - 1, 100 * mib), Level::Shed);
        assert_eq!(Level::of(100 * mib, 100 * mib), Level::Refuse);
        assert_eq!(Level::of(u64::MAX, u64::MAX - 1), Level::Refuse);
    }

    #[test]
    fn the_sampler_reads_this_process() {
        assert!(resident_pages().is_some_and(|p| p > 0));
        let m = Memory::default();
        assert_eq!(m.figures(), None);
        m.store(1 << 30, 1 << 20);
        let report = m.figures().unwrap();
        assert_eq!((report.limit, report.resident), (1 << 30, 1 << 20));
        assert_eq!(m.level(), Level::Normal);
        m.store(1 << 20, 1 << 20);
        assert_eq!(m.level(), Level::Refuse);
    }
}
