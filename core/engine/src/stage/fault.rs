//! `Fault`: fault injection (Envoy's fault filter) on one route: delay or abort a share of
//! its requests.
//!
//! Sits among a route's stages after `RateLimit`, `HeaderEdits` and `Timeout`, before
//! `Direct` (a direct response route has no fault: validation refuses it). Reads the route's
//! `fault = { delay, abort, header_control }`. Percentages are of the requests the route
//! matches (a rate-limited request never gets here).
//!
//! - **Abort**: the request is answered at once and never forwarded (nor delayed): the
//!   configured HTTP status, or for a gRPC request `grpc_status` (else the gRPC status the
//!   HTTP status maps to) in a trailers-only answer. With only `grpc_status`, only gRPC
//!   requests are aborted. The answer is `ProxyError::FaultAbort`, written by `answer.rs`.
//! - **Delay**: the stage sets `Req::delay`; the forwarding side waits that long before the
//!   upstream call (`pipeline::forward`, the one place both protocols forward through),
//!   inside the route's deadline, so a delay counts against `timeout_ms` (504 when it runs
//!   out first), as in Envoy.
//! - **Header control** (`header_control = true`): a request may ask, for the kinds of fault
//!   configured, with these headers (Envoy's `x-envoy-fault-*`, renamed):
//!   `x-ringside-fault-abort-request` (an HTTP status, 200 to 599),
//!   `x-ringside-fault-abort-grpc-request` (a gRPC status, 0 to 16; gRPC requests),
//!   `x-ringside-fault-abort-request-percentage`, `x-ringside-fault-delay-request`
//!   (milliseconds), `x-ringside-fault-delay-request-percentage`. A header's value replaces
//!   the configured one; a percentage header can only lower the configured percentage. A
//!   value that does not parse is ignored. The headers are forwarded as they came.
//!
//! Counted in `ringside_fault_injected_total` by listener, route and kind.

use std::time::Duration;

use super::{Flow, Local, Req};
use crate::cx::error::ProxyError;

/// A percentage as parts per million (100% = 1_000_000), compared with a random draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Share(u32);

const MILLION: u32 = 1_000_000;

impl Share {
    fn of(percent: f64) -> Share {
        // Validation keeps percent within 0..=100.
        Share(((percent.clamp(0.0, 100.0) * 10_000.0).round()) as u32)
    }

    /// Whether a request is picked, by one random draw.
    fn picks(self, random: &dyn Fn() -> u64) -> bool {
        self.0 >= MILLION || (self.0 > 0 && random() % u64::from(MILLION) < u64::from(self.0))
    }

    /// The share a request asked for in `header`, never more than this one.
    fn capped(self, asked: Option<&[u8]>) -> Share {
        match asked.and_then(parse::<f64>) {
            Some(p) if (0.0..=100.0).contains(&p) => Share(Share::of(p).0.min(self.0)),
            _ => self,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fault {
    /// The route's name (metrics).
    route: Box<str>,
    delay: Option<(Option<Duration>, Share)>,
    abort: Option<(Option<u16>, Option<u8>, Share)>,
    header_control: bool,
}

const DELAY: &str = "x-ringside-fault-delay-request";
const DELAY_PERCENT: &str = "x-ringside-fault-delay-request-percentage";
const ABORT: &str = "x-ringside-fault-abort-request";
const ABORT_GRPC: &str = "x-ringside-fault-abort-grpc-request";
const ABORT_PERCENT: &str = "x-ringside-fault-abort-request-percentage";

impl Fault {
    pub(crate) fn compile(route: &str, f: &ringside_config::Fault) -> Fault {
        Fault {
            route: route.into(),
            delay: f.delay.as_ref().map(|d| (d.fixed, Share::of(d.percent))),
            abort: f
                .abort
                .as_ref()
                .map(|a| (a.status, a.grpc_status, Share::of(a.percent))),
            header_control: f.header_control,
        }
    }

    pub(crate) fn request<'v>(&self, req: &mut Req<'_>) -> Flow<'v> {
        if let Some(abort) = self.abort_of(req) {
            req.stats.fault(&self.route, "abort");
            return Flow::Reply(Local::Error(abort));
        }
        if let Some(delay) = self.delay_of(req) {
            req.stats.fault(&self.route, "delay");
            req.delay = Some(delay);
        }
        Flow::Next
    }

    /// A header's value, when requests may ask for faults.
    fn asked<'h>(&self, req: &Req<'h>, name: &str) -> Option<&'h [u8]> {
        if self.header_control {
            req.head.header(name)
        } else {
            None
        }
    }

    fn abort_of(&self, req: &Req<'_>) -> Option<ProxyError> {
        let (status, grpc, share) = self.abort?;
        let status = self
            .asked(req, ABORT)
            .and_then(parse::<u16>)
            .filter(|s| (200..=599).contains(s))
            .or(status);
        let grpc = if req.grpc {
            self.asked(req, ABORT_GRPC)
                .and_then(parse::<u8>)
                .filter(|c| *c <= 16)
                .or(grpc)
        } else {
            None
        };
        let error = match (status, grpc) {
            (_, Some(code)) => ProxyError::FaultAbort {
                status: status.unwrap_or(200),
                grpc: Some(code),
            },
            (Some(status), None) => ProxyError::FaultAbort { status, grpc: None },
            (None, None) => return None,
        };
        let share = share.capped(self.asked(req, ABORT_PERCENT));
        share.picks(req.random).then_some(error)
    }

    fn delay_of(&self, req: &Req<'_>) -> Option<Duration> {
        let (fixed, share) = self.delay?;
        let delay = self
            .asked(req, DELAY)
            .and_then(parse::<u64>)
            .map(Duration::from_millis)
            .or(fixed)?;
        let share = share.capped(self.asked(req, DELAY_PERCENT));
        share.picks(req.random).then_some(delay)
    }
}

/// A header value as a number (surrounding whitespace allowed).
fn parse<T: std::str::FromStr>(v: &[u8]) -> Option<T> {
    std::str::from_utf8(v).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cx::metrics::ListenerStats;
    use crate::cx::ClientConn;
    use ringside_config::{FaultAbort, FaultDelay};

    fn head(extra: &str) -> ringside_codec::RequestHead {
        crate::stage::test_head(&format!("GET / HTTP/1.1\r\nHost: h\r\n{extra}\r\n"))
    }

    /// Runs the stage `n` times over one head with draws 0, 1, 2... (so a share of p% picks
    /// the first p × 10000 of every million); returns (aborts, delays seen).
    fn run(
        fault: &Fault,
        extra: &str,
        grpc: bool,
        n: u64,
    ) -> (Vec<(u16, Option<u8>)>, Vec<Duration>) {
        let head = head(extra);
        let conn = ClientConn {
            peer: "10.0.0.1:5000".parse().unwrap(),
            tls: false,
            identity: None,
            xfcc: None,
            original_dst: None,
        };
        let stats = ListenerStats::default();
        let draw = std::cell::Cell::new(0u64);
        let random = || {
            let d = draw.get();
            draw.set(d + 1);
            d * 10_000 % u64::from(MILLION)
        };
        let (mut aborts, mut delays) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let mut req = Req::new(&head, &conn, &stats, grpc, false, &random);
            match fault.request(&mut req) {
                Flow::Reply(Local::Error(ProxyError::FaultAbort { status, grpc })) => {
                    aborts.push((status, grpc))
                }
                Flow::Reply(_) => panic!("another answer"),
                Flow::Next => delays.extend(req.delay),
            }
        }
        (aborts, delays)
    }

    fn fault(delay: Option<FaultDelay>, abort: Option<FaultAbort>, header_control: bool) -> Fault {
        Fault::compile(
            "r",
            &ringside_config::Fault::new(delay, abort, header_control),
        )
    }

    #[test]
    fn percentages_pick_that_share_of_requests() {
        // Draws step by 1%: 100 requests see every percent once.
        let abort = fault(None, Some(FaultAbort::new(Some(503), None, 10.0)), false);
        let (aborts, delays) = run(&abort, "", false, 100);
        assert_eq!((aborts.len(), delays.len()), (10, 0));
        assert!(aborts.iter().all(|a| *a == (503, None)));
        let delay = fault(
            Some(FaultDelay::new(Some(Duration::from_millis(7)), 30.0)),
            None,
            false,
        );
        let (aborts, delays) = run(&delay, "", false, 100);
        assert_eq!((aborts.len(), delays.len()), (0, 30));
        assert!(delays.iter().all(|d| *d == Duration::from_millis(7)));
        // 0% never, 100% always; an aborted request is not also delayed.
        let never = fault(None, Some(FaultAbort::new(Some(500), None, 0.0)), false);
        assert!(run(&never, "", false, 100).0.is_empty());
        let both = fault(
            Some(FaultDelay::new(Some(Duration::from_millis(7)), 100.0)),
            Some(FaultAbort::new(Some(500), None, 100.0)),
            false,
        );
        assert_eq!(run(&both, "", false, 100).0.len(), 100);
        assert_eq!(Share::of(0.0001), Share(1));
    }

    #[test]
    fn grpc_requests_get_the_grpc_status() {
        let f = fault(
            None,
            Some(FaultAbort::new(Some(503), Some(14), 100.0)),
            false,
        );
        assert_eq!(run(&f, "", true, 1).0, [(503, Some(14))]);
        assert_eq!(run(&f, "", false, 1).0, [(503, None)]);
        // Only a gRPC status: plain HTTP requests go through.
        let f = fault(None, Some(FaultAbort::new(None, Some(8), 100.0)), false);
        assert_eq!(run(&f, "", true, 1).0, [(200, Some(8))]);
        assert!(run(&f, "", false, 1).0.is_empty());
    }

    #[test]
    fn headers_ask_within_the_configured_share() {
        let f = fault(
            Some(FaultDelay::new(None, 50.0)),
            Some(FaultAbort::new(None, None, 20.0)),
            true,
        );
        // Nothing asked: nothing to inject (no status, no delay configured).
        assert_eq!(run(&f, "", false, 100), (vec![], vec![]));
        // Asked for an abort: at most the configured 20%, and a header asking 100% is capped.
        let asked = "x-ringside-fault-abort-request: 429\r\nx-ringside-fault-abort-request-percentage: 100\r\n";
        let (aborts, _) = run(&f, asked, false, 100);
        assert_eq!(aborts.len(), 20);
        assert!(aborts.iter().all(|a| *a == (429, None)));
        // A lower percentage in the header lowers it.
        let asked = "x-ringside-fault-abort-request: 418\r\nx-ringside-fault-abort-request-percentage: 5\r\n";
        assert_eq!(run(&f, asked, false, 100).0.len(), 5);
        // Out of range or unreadable values are ignored.
        assert!(
            run(&f, "x-ringside-fault-abort-request: 700\r\n", false, 100)
                .0
                .is_empty()
        );
        // A delay, capped at 50%.
        let asked = "x-ringside-fault-delay-request: 250\r\nx-ringside-fault-delay-request-percentage: 80.0\r\n";
        let (_, delays) = run(&f, asked, false, 100);
        assert_eq!(delays.len(), 50);
        assert!(delays.iter().all(|d| *d == Duration::from_millis(250)));
        // gRPC status from a header, for gRPC requests only.
        let asked = "x-ringside-fault-abort-grpc-request: 4\r\n";
        assert_eq!(run(&f, asked, true, 100).0.len(), 20);
        assert!(run(&f, asked, false, 100).0.is_empty());
    }

    #[test]
    fn headers_are_ignored_without_header_control() {
        let f = fault(
            Some(FaultDelay::new(Some(Duration::from_millis(1)), 0.0)),
            Some(FaultAbort::new(Some(503), None, 0.0)),
            false,
        );
        let asked = "x-ringside-fault-abort-request: 503\r\nx-ringside-fault-delay-request: 5\r\n";
        assert_eq!(run(&f, asked, false, 100), (vec![], vec![]));
    }
}
