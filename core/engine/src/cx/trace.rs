//! Trace context: W3C `traceparent` propagated (B3 accepted), a new trace started when the
//! request carries none, and sampled spans handed to the OTLP exporter (`otlp.rs`).
//!
//! Per request the proxy is one span: it keeps the trace id, makes a new span id, and sends
//! `traceparent: 00-<trace id>-<its span id>-<flags>` upstream, so the upstream's span is a
//! child of the proxy's, which is a child of the caller's. `tracestate` passes through as is.

/// The trace context of one request as the proxy continues it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TraceContext {
    pub(crate) trace_id: [u8; 16],
    /// The caller's span, if the request carried one.
    pub(crate) parent_span_id: Option<[u8; 8]>,
    /// The proxy's own span for this request.
    pub(crate) span_id: [u8; 8],
    pub(crate) sampled: bool,
}

impl TraceContext {
    /// Continues the request's context (`traceparent`, else B3), or starts a new trace that
    /// is sampled with probability `sample_rate`.
    pub(crate) fn continue_or_start<'a>(
        header: impl Fn(&str) -> Option<&'a [u8]>,
        mut random: impl FnMut() -> u64,
        sample_rate: f64,
    ) -> TraceContext {
        let mut span_id = random().to_be_bytes();
        if span_id == [0; 8] {
            span_id[7] = 1;
        }
        if let Some((trace_id, parent, sampled)) = header("traceparent").and_then(parse_traceparent)
        {
            return TraceContext {
                trace_id,
                parent_span_id: Some(parent),
                span_id,
                sampled,
            };
        }
        if let Some((trace_id, parent, sampled)) = b3(&header) {
            return TraceContext {
                trace_id,
                parent_span_id: parent,
                span_id,
                sampled,
            };
        }
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&random().to_be_bytes());
        trace_id[8..].copy_from_slice(&random().to_be_bytes());
        if trace_id == [0; 16] {
            trace_id[15] = 1;
        }
        // Compare 53 random bits with the rate: exact at 0.0 and 1.0.
        let sampled = ((random() >> 11) as f64) < sample_rate * (1u64 << 53) as f64;
        TraceContext {
            trace_id,
            parent_span_id: None,
            span_id,
            sampled,
        }
    }

    /// The `traceparent` to send upstream.
    #[cfg(test)]
    pub(crate) fn traceparent(&self) -> String {
        let mut v = Vec::with_capacity(55);
        self.write_traceparent(&mut v);
        String::from_utf8(v).unwrap_or_default()
    }

    /// Appends the `traceparent` to send upstream (55 bytes) to `out`.
    pub(crate) fn write_traceparent(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"00-");
        hex_bytes(out, &self.trace_id);
        out.push(b'-');
        hex_bytes(out, &self.span_id);
        out.extend_from_slice(if self.sampled { b"-01" } else { b"-00" });
    }

    pub(crate) fn trace_id_hex(&self) -> String {
        let mut s = String::with_capacity(32);
        hex(&mut s, &self.trace_id);
        s
    }
}

/// Appends `bytes` in lower-case hex to a byte buffer (a table lookup per nibble: this runs
/// for every request's `traceparent` and request id, where `format!` costs thousands of
/// instructions and pushing `char`s hundreds).
pub(crate) fn hex_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digit = |n: u8| DIGITS.get(usize::from(n & 0xf)).copied().unwrap_or(b'0');
    out.extend(bytes.iter().flat_map(|&b| [digit(b >> 4), digit(b)]));
}

/// [`hex_bytes`] into a `String`.
pub(crate) fn hex(out: &mut String, bytes: &[u8]) {
    let mut v = Vec::with_capacity(bytes.len() * 2);
    hex_bytes(&mut v, bytes);
    out.push_str(std::str::from_utf8(&v).unwrap_or_default());
}

fn unhex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let &[hi, lo] = pair else { return None };
        let hi = (hi as char).to_digit(16)?;
        let lo = (lo as char).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// `00-<32 hex>-<16 hex>-<2 hex>` (lower-case; all-zero ids are invalid), per W3C Trace
/// Context. Future versions are read by their first four fields.
fn parse_traceparent(v: &[u8]) -> Option<([u8; 16], [u8; 8], bool)> {
    let v = v.trim_ascii();
    if v.len() < 55 || v.iter().any(u8::is_ascii_uppercase) {
        return None;
    }
    let [version] = unhex::<1>(v.get(0..2)?)?;
    let dash = |i: usize| v.get(i) == Some(&b'-');
    if version == 0xff || (version == 0 && v.len() != 55) || !dash(2) || !dash(35) || !dash(52) {
        return None;
    }
    let trace: [u8; 16] = unhex(v.get(3..35)?)?;
    let span: [u8; 8] = unhex(v.get(36..52)?)?;
    let [flags] = unhex::<1>(v.get(53..55)?)?;
    if trace == [0; 16] || span == [0; 8] {
        return None;
    }
    Some((trace, span, flags & 1 == 1))
}

/// B3: the single `b3` header (`trace-span[-sampled[-parent]]`) or `X-B3-TraceId`,
/// `X-B3-SpanId`, `X-B3-Sampled`. 64-bit trace ids are left-padded to 128 bits.
fn b3<'a>(header: &impl Fn(&str) -> Option<&'a [u8]>) -> Option<([u8; 16], Option<[u8; 8]>, bool)> {
    let (trace, span, sampled) = match header("b3") {
        Some(single) => {
            let mut parts = single.trim_ascii().split(|b| *b == b'-');
            (parts.next()?, parts.next(), parts.next())
        }
        None => (
            header("x-b3-traceid")?,
            header("x-b3-spanid"),
            header("x-b3-sampled"),
        ),
    };
    let trace = trace.trim_ascii();
    let trace_id = match trace.len() {
        32 => unhex::<16>(trace)?,
        16 => {
            let low: [u8; 8] = unhex(trace)?;
            let mut t = [0u8; 16];
            t[8..].copy_from_slice(&low);
            t
        }
        _ => return None,
    };
    if trace_id == [0; 16] {
        return None;
    }
    let parent = span.and_then(|s| unhex::<8>(s.trim_ascii()));
    let sampled = !matches!(sampled.map(<[u8]>::trim_ascii), Some(b"0") | Some(b"false"));
    Some((trace_id, parent, sampled))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(headers: &[(&str, &str)], rate: f64) -> TraceContext {
        let mut n = 0u64;
        TraceContext::continue_or_start(
            |name| {
                headers
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.as_bytes())
            },
            || {
                n = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
                n
            },
            rate,
        )
    }

    #[test]
    fn continues_a_w3c_trace_with_a_new_span() {
        let t = ctx(
            &[(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )],
            0.0,
        );
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            t.parent_span_id,
            Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
        );
        assert!(t.sampled, "the caller's decision wins over the rate");
        let tp = t.traceparent();
        assert!(tp.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(tp.ends_with("-01"));
        assert_ne!(
            &tp[36..52],
            "00f067aa0ba902b7",
            "the proxy's own span id goes upstream"
        );
    }

    #[test]
    fn invalid_traceparents_start_a_new_trace() {
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "garbage",
        ] {
            let t = ctx(&[("traceparent", bad)], 1.0);
            assert_eq!(t.parent_span_id, None, "{bad}");
            assert_ne!(
                t.trace_id_hex(),
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "{bad}"
            );
        }
    }

    #[test]
    fn b3_is_accepted() {
        let t = ctx(
            &[("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0")],
            1.0,
        );
        assert_eq!(t.trace_id_hex(), "80f198ee56343ba864fe8b2a57d3eff7");
        assert!(!t.sampled);
        let t = ctx(
            &[
                ("x-b3-traceid", "463ac35c9f6413ad"),
                ("x-b3-spanid", "a2fb4a1d1a96d312"),
            ],
            0.0,
        );
        assert_eq!(t.trace_id_hex(), "0000000000000000463ac35c9f6413ad");
        assert!(t.sampled);
    }

    #[test]
    fn sampling_rate_bounds_are_exact() {
        assert!(!ctx(&[], 0.0).sampled);
        assert!(ctx(&[], 1.0).sampled);
        let t = ctx(&[], 1.0);
        assert_eq!(t.traceparent().len(), 55);
    }
}
