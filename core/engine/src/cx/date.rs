//! The `Date` field ringside adds to the responses it sends (RFC 9110 §6.6.1: an origin with
//! a clock sends one in its 2xx, 3xx and 4xx responses, and a recipient that forwards a
//! response without one appends one). Each worker formats it at most once a second and
//! hands out clones of the same `Bytes`.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::telemetry::civil;

thread_local! {
    /// The second last formatted, and its text.
    static CACHED: RefCell<(u64, Bytes)> = const { RefCell::new((u64::MAX, Bytes::new())) };
}

/// Now, as an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub(crate) fn now() -> Bytes {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    CACHED.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            *c = (secs, Bytes::from(imf_fixdate(secs)));
        }
        c.1.clone()
    })
}

/// Unix seconds as an IMF-fixdate (RFC 9110 §5.6.7).
pub fn imf_fixdate(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, day, h, mi, s) = civil(secs);
    // 1970-01-01 was a Thursday.
    let wd = DAYS
        .get((secs / 86_400 % 7) as usize)
        .copied()
        .unwrap_or("Thu");
    let m = MONTHS
        .get((mo as usize).wrapping_sub(1))
        .copied()
        .unwrap_or("Jan");
    format!("{wd}, {day:02} {m} {y:04} {h:02}:{mi:02}:{s:02} GMT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_imf_fixdates() {
        assert_eq!(imf_fixdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        // RFC 9110's own example.
        assert_eq!(imf_fixdate(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(imf_fixdate(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(imf_fixdate(1_796_601_599), "Sun, 06 Dec 2026 23:59:59 GMT");
    }

    #[test]
    fn now_is_cached_within_a_second() {
        let a = now();
        let b = now();
        assert_eq!(a.len(), 29);
        // Same second: the same allocation, not a new string.
        if a == b {
            assert_eq!(a.as_ptr(), b.as_ptr());
        }
    }
}
