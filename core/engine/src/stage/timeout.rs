//! `Timeout`: the request's deadline, from the route's `timeout_ms` shortened by a gRPC
//! client's `grpc-timeout`.
//!
//! Sits among a route's stages; the deadline it sets bounds the whole upstream call up to the
//! end of the response (504, or gRPC DEADLINE_EXCEEDED, before the response head; a cut
//! stream or connection after it). Without a route timeout and without `grpc-timeout` there
//! is no whole-request deadline (reads from the upstream are still bounded by 60 s each).

use std::time::Duration;

use super::{Flow, Req};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Timeout {
    pub(crate) route: Option<Duration>,
}

impl Timeout {
    pub(crate) fn request<'v>(&self, req: &mut Req<'_>) -> Flow<'v> {
        let mut deadline = self.route;
        if req.grpc {
            if let Some(t) = req.head.header("grpc-timeout").and_then(grpc_timeout) {
                deadline = Some(deadline.map_or(t, |d| d.min(t)));
            }
        }
        req.deadline = deadline;
        Flow::Next
    }
}

/// `grpc-timeout` (e.g. `100m`, `5S`): at most 8 digits and a unit.
fn grpc_timeout(v: &[u8]) -> Option<Duration> {
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b"H" => Duration::from_secs(n.saturating_mul(3600)),
        b"M" => Duration::from_secs(n.saturating_mul(60)),
        b"S" => Duration::from_secs(n),
        b"m" => Duration::from_millis(n),
        b"u" => Duration::from_micros(n),
        b"n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_units_and_bounds() {
        assert_eq!(grpc_timeout(b"100m"), Some(Duration::from_millis(100)));
        assert_eq!(grpc_timeout(b"5S"), Some(Duration::from_secs(5)));
        assert_eq!(grpc_timeout(b"2M"), Some(Duration::from_secs(120)));
        assert_eq!(grpc_timeout(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(grpc_timeout(b"7u"), Some(Duration::from_micros(7)));
        assert_eq!(grpc_timeout(b"9n"), Some(Duration::from_nanos(9)));
        assert_eq!(grpc_timeout(b"123456789S"), None);
        assert_eq!(grpc_timeout(b"S"), None);
        assert_eq!(grpc_timeout(b"1x"), None);
        assert_eq!(grpc_timeout(b""), None);
    }
}
