//! Mirroring, the upstream half: a copy of a request, owned so that it outlives the request,
//! and one exchange that sends it to the mirror cluster and drops the answer.
//!
//! ```text
//! retry.rs: body kept ─▶ Mirror::send (downstream/mirror.rs: share, bound, spawn)
//!                              └─▶ a task of its own: run(Copy) ─▶ call_once(Down::Discard)
//! ```
//! The copy is made after the body is kept and before the first try, and it runs in a task
//! of its own: the main request never waits for it, and its answer (or failure) never
//! reaches the client. A body too big to keep is not copied: the request is not mirrored.

use std::time::Duration;

use bytes::Bytes;
use ringside_codec::{Edits, RequestHead};
use ringside_config::Cluster;

use super::cluster::ClusterState;
use super::retry::{Replay, Try};
use super::{Client, Down, Exchange, Progress, ResponseHook};
use crate::cx::error::ProxyError;

/// Where a route's copies go; implemented by the downstream layer, which can start tasks.
pub(crate) trait Mirror {
    /// Copies the request `x` with its kept `body` (`None`: the body was too big to keep,
    /// and the request is not mirrored).
    fn send(&self, x: &Exchange<'_>, body: Option<Replay>);
}

/// A request as the mirror sends it.
pub(crate) struct Copy {
    head: RequestHead,
    /// The proxy's fields, as the request had them.
    set: Vec<(&'static str, Bytes)>,
    edits: Edits,
    body: Replay,
    grpc: bool,
}

impl Copy {
    /// A copy of `x` with `body`; `host_suffix` goes after the host (before its port).
    pub(crate) fn of(
        x: &Exchange<'_>,
        body: Replay,
        host_suffix: Option<&str>,
    ) -> Result<Copy, ProxyError> {
        let head = match host_suffix {
            Some(suffix) => with_host_suffix(x.head, suffix)?,
            None => x.head.clone(),
        };
        Ok(Copy {
            head,
            set: x
                .set
                .iter()
                .map(|(n, v)| (proxy_field(n), Bytes::copy_from_slice(v)))
                .collect(),
            edits: x.edits.clone(),
            body,
            grpc: x.grpc,
        })
    }
}

/// The proxy's own field names are static strings; a name not among them (none today) is
/// sent as `x-ringside-field`.
fn proxy_field(name: &str) -> &'static str {
    const NAMES: [&str; 6] = [
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Request-Id",
        "traceparent",
        "X-Forwarded-Client-Cert",
        "x-ringside-attempt",
    ];
    NAMES
        .iter()
        .find(|n| n.eq_ignore_ascii_case(name))
        .copied()
        .unwrap_or("x-ringside-field")
}

/// The head with `suffix` after its host: `orders:8080` → `orders-shadow:8080`.
fn with_host_suffix(head: &RequestHead, suffix: &str) -> Result<RequestHead, ProxyError> {
    let host = head.authority().or(head.host()).unwrap_or_default();
    // The port follows the last ':' outside an IPv6 literal's brackets.
    let split = match host.rfind(':') {
        Some(i) if !host.get(i..).unwrap_or_default().contains(']') => i,
        _ => host.len(),
    };
    let (name, port) = host.split_at(split);
    let shadow = format!("{name}{suffix}{port}");
    head.retarget(None, Some(&shadow))
        .map_err(|e| ProxyError::BadRequest(format!("mirror copy: {e:?}")))
}

/// A copy's response head is not edited: nobody sees it.
struct Unedited;

impl ResponseHook for Unedited {
    fn edits(&self, _present: &dyn Fn(&str) -> bool) -> Edits {
        Edits::NONE
    }
}

/// Sends `copy` to `cluster` and reads its answer to the end, within `limit`. Returns the
/// answer's status.
pub(crate) async fn run(
    client: Client<'_>,
    cluster: &Cluster,
    state: &ClusterState,
    copy: &Copy,
    limit: Duration,
) -> Result<u16, ProxyError> {
    let set: Vec<(&str, &[u8])> = copy.set.iter().map(|(n, v)| (*n, &v[..])).collect();
    let x = Exchange {
        head: &copy.head,
        set: &set,
        edits: &copy.edits,
        body_limit: None,
        response: &Unedited,
        hash: None,
        idle: super::UPSTREAM_READ_TIMEOUT,
        grpc: copy.grpc,
        retry: None,
        mirror: None,
        attempt: Try {
            replay: Some(&copy.body),
            gate: None,
            avoid: &[],
        },
    };
    let progress = Progress::default();
    let mut down = Down::Discard;
    let call = super::call_once(client, cluster, state, &x, &mut down, &progress);
    match crate::cx::io::within(limit, call).await {
        Some(Ok(_)) => Ok(progress.status.get()),
        Some(Err(e)) => Err(e),
        None => Err(ProxyError::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> RequestHead {
        let limits = ringside_codec::Limits {
            max_header_bytes: 8192,
            max_headers: 64,
            max_uri_bytes: 4096,
            path: ringside_codec::PathRules::NONE,
        };
        ringside_codec::parse_request(text.as_bytes(), &limits)
            .unwrap()
            .unwrap()
            .0
    }

    #[test]
    fn the_suffix_goes_after_the_host_before_the_port() {
        let cases = [
            ("orders:8080", "orders-shadow:8080"),
            ("orders", "orders-shadow"),
            ("10.0.0.1:80", "10.0.0.1-shadow:80"),
        ];
        for (host, want) in cases {
            let h = head(&format!(
                "POST /o?x=1 HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2\r\nX-A: b\r\n\r\n"
            ));
            let copy = with_host_suffix(&h, "-shadow").unwrap();
            assert_eq!(copy.authority(), Some(want), "{host}");
            assert_eq!(copy.header("x-a"), Some(&b"b"[..]));
            assert_eq!(copy.path_and_query(), "/o?x=1");
            assert_eq!(copy.body(), ringside_codec::BodyKind::Length(2));
        }
        // An IPv6 literal cannot take a suffix: no copy is made (and that is counted).
        let h = head("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n");
        assert!(with_host_suffix(&h, "-shadow").is_err());
    }
}
