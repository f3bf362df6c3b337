//! Time, passed in: the reconciler never reads a clock itself, so its tests choose the time.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// Parses a duration such as `500ms`, `30s`, `15m`, `24h`, `7d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s:?}: missing unit (ms, s, m, h, d)"))?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: expected a number then a unit, e.g. 24h"))?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h, d)")),
    };
    n.checked_mul(ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{s:?}: too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("h").is_err());
    }
}
