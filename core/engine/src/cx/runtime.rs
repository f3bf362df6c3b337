//! The worker runtime: which I/O driver, and how a worker thread runs its future on it.
//!
//! `driver = "auto"` takes io_uring when the kernel offers the operations monoio needs and the
//! ring can be created (locked-memory limits and seccomp profiles can forbid it), and falls
//! back to epoll with a log line otherwise. An explicit `io_uring` that cannot be had is an
//! error at start.

use std::fmt;
use std::future::Future;
use std::io;

use monoio::{IoUringDriver, LegacyDriver, RuntimeBuilder};
use ringside_config::DriverChoice;

/// The driver a process actually runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveDriver {
    IoUring,
    Epoll,
}

impl fmt::Display for ActiveDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActiveDriver::IoUring => "io_uring",
            ActiveDriver::Epoll => "epoll",
        })
    }
}

/// Submission-queue entries per worker ring.
const RING_ENTRIES: u32 = 1024;

/// Decides the driver once, at start, by building (and dropping) a probe ring.
pub(crate) fn resolve(choice: DriverChoice) -> io::Result<ActiveDriver> {
    match choice {
        DriverChoice::Epoll => Ok(ActiveDriver::Epoll),
        DriverChoice::IoUring => {
            probe_uring()?;
            Ok(ActiveDriver::IoUring)
        }
        DriverChoice::Auto => match probe_uring() {
            Ok(()) => Ok(ActiveDriver::IoUring),
            Err(e) => {
                tracing::warn!(error = %e, "io_uring unavailable, falling back to epoll");
                Ok(ActiveDriver::Epoll)
            }
        },
    }
}

fn probe_uring() -> io::Result<()> {
    // On a short-lived thread of its own: rings created and dropped on the caller's thread
    // were seen to interrupt that thread's later blocking syscalls (EINTR).
    std::thread::spawn(|| {
        if !monoio::utils::detect_uring() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the kernel does not offer the io_uring operations needed (or io_uring is disabled)",
            ));
        }
        RuntimeBuilder::<IoUringDriver>::new()
            .with_entries(RING_ENTRIES)
            .enable_timer()
            .build()
            .map(drop)
    })
    .join()
    .unwrap_or_else(|_| Err(io::Error::other("io_uring probe panicked")))
}

/// Runs `fut` to completion on a fresh single-thread runtime with the given driver. With
/// `fallback` (the `auto` choice), a worker whose io_uring ring cannot be created — locked
/// memory runs out as workers multiply — runs on epoll instead, with a log line.
pub(crate) fn block_on<F: Future>(
    driver: ActiveDriver,
    fallback: bool,
    fut: F,
) -> io::Result<F::Output> {
    if driver == ActiveDriver::IoUring {
        match uring_runtime() {
            Ok(mut rt) => return Ok(rt.block_on(fut)),
            Err(e) if fallback => {
                tracing::warn!(error = %e, "cannot create this worker's io_uring ring; it runs on epoll");
            }
            Err(e) => return Err(e),
        }
    }
    let mut rt = RuntimeBuilder::<LegacyDriver>::new()
        .enable_timer()
        .build()?;
    Ok(rt.block_on(fut))
}

/// A worker's io_uring runtime. `COOP_TASKRUN` (Linux 5.19+): completions do not interrupt
/// the worker with an IPI; their work runs when the worker next enters the kernel, which it
/// does on every loop — less CPU per request on a busy worker. Kernels without the flag get a
/// plain ring.
fn uring_runtime() -> io::Result<monoio::Runtime<monoio::time::TimeDriver<IoUringDriver>>> {
    let mut coop = io_uring::IoUring::builder();
    coop.setup_coop_taskrun();
    RuntimeBuilder::<IoUringDriver>::new()
        .with_entries(RING_ENTRIES)
        .uring_builder(coop)
        .enable_timer()
        .build()
        .or_else(|_| {
            RuntimeBuilder::<IoUringDriver>::new()
                .with_entries(RING_ENTRIES)
                .enable_timer()
                .build()
        })
}

/// Pins the calling thread to one CPU (best effort: a failure is logged, not fatal).
pub(crate) fn pin_to_cpu(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET write within it and
    // sched_setaffinity reads exactly size_of::<cpu_set_t>() bytes from it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        tracing::debug!(cpu, error = %io::Error::last_os_error(), "could not pin worker");
    }
}

/// CPUs this process may run on, in order (respects taskset/cgroup cpusets).
pub(crate) fn allowed_cpus() -> Vec<usize> {
    // SAFETY: as above; sched_getaffinity fills the set it is given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoll_always_resolves_and_runs() {
        assert_eq!(resolve(DriverChoice::Epoll).unwrap(), ActiveDriver::Epoll);
        assert_eq!(
            block_on(ActiveDriver::Epoll, false, async { 7 }).unwrap(),
            7
        );
    }

    #[test]
    fn auto_resolves_to_a_driver_that_runs() {
        let d = resolve(DriverChoice::Auto).unwrap();
        assert_eq!(block_on(d, true, async { 1 }).unwrap(), 1);
    }

    #[test]
    fn allowed_cpus_is_not_empty() {
        assert!(!allowed_cpus().is_empty());
    }
}
