//! Time, passed in: the reconciler never reads a clock itself, so its tests choose the time.

#[cfg(test)]
use std::time::Duration;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// One moment, on both clocks: monotonic for deadlines, wall-clock seconds for what is
/// recorded (`created_at`, `acked_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono: Instant,
    pub unix: u64,
}

impl Now {
    pub fn system() -> Now {
        Now {
            mono: Instant::now(),
            unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    /// This moment plus `d` (tests step time this way).
    #[cfg(test)]
    pub fn after(self, d: Duration) -> Now {
        Now {
            mono: self.mono + d,
            unix: self.unix + d.as_secs(),
        }
    }
}

pub use ringside_config::duration::parse_duration;
