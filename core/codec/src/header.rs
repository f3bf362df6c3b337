//! Shared pieces of head parsing: offsets into the owned head bytes, byte classes, and the
//! field-value grammars that decide framing (`Content-Length`, `Transfer-Encoding`,
//! `Connection`) and routing (`Host`, authority).
//!
//! Everything here works on byte slices, returns `Option`/`Result`, and never indexes without
//! a bound: a parsed head stores [`Span`]s (u32 offsets) into one `Bytes` copy of the head
//! instead of allocating a `String` per header.

use std::mem::MaybeUninit;

/// Header slots kept on the stack while tokenizing; a larger `max_headers` spills to the heap.
pub(crate) const STACK_HEADERS: usize = 128;

/// A byte range into a head's owned buffer. `u32` keeps a header entry at 16 bytes; heads
/// larger than 4 GiB are refused before any span is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Span {
    /// The bytes of `buf` this span covers; empty when out of bounds (never panics).
    #[inline]
    pub(crate) fn get(self, buf: &[u8]) -> &[u8] {
        buf.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }

    /// The span of `part`, a sub-slice of `base` (by address), or `None` when it is not
    /// inside `base` or does not fit in u32.
    pub(crate) fn of(base: &[u8], part: &[u8]) -> Option<Span> {
        let start = (part.as_ptr() as usize).checked_sub(base.as_ptr() as usize)?;
        let end = start.checked_add(part.len())?;
        if end > base.len() {
            return None;
        }
        Some(Span {
            start: u32::try_from(start).ok()?,
            end: u32::try_from(end).ok()?,
        })
    }

    /// The sub-span `[from, to)` relative to this span's start, or `None` if out of range.
    pub(crate) fn sub(self, from: usize, to: usize) -> Option<Span> {
        let len = (self.end as usize).checked_sub(self.start as usize)?;
        if from > to || to > len {
            return None;
        }
        let start = (self.start as usize).checked_add(from)?;
        let end = (self.start as usize).checked_add(to)?;
        Some(Span {
            start: u32::try_from(start).ok()?,
            end: u32::try_from(end).ok()?,
        })
    }

    /// A span of `len` bytes at absolute offset `at`.
    pub(crate) fn at(at: usize, len: usize) -> Option<Span> {
        let end = at.checked_add(len)?;
        Some(Span {
            start: u32::try_from(at).ok()?,
            end: u32::try_from(end).ok()?,
        })
    }
}

/// One header field: name as sent, value with surrounding OWS trimmed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hdr {
    pub(crate) name: Span,
    pub(crate) value: Span,
}

/// `&str` view of bytes already validated as ASCII at parse time; `""` if that ever fails.
#[inline]
pub(crate) fn as_str(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// Scratch slots for httparse: on the stack up to [`STACK_HEADERS`], else on the heap.
#[allow(
    clippy::large_enum_variant,
    reason = "the point is a stack array; it lives for one parse call"
)]
pub(crate) enum Scratch<'b> {
    Stack([MaybeUninit<httparse::Header<'b>>; STACK_HEADERS]),
    Heap(Vec<MaybeUninit<httparse::Header<'b>>>),
}

impl<'b> Scratch<'b> {
    pub(crate) fn new(slots: usize) -> Self {
        if slots <= STACK_HEADERS {
            Scratch::Stack([const { MaybeUninit::uninit() }; STACK_HEADERS])
        } else {
            let mut v = Vec::new();
            v.resize_with(slots, MaybeUninit::uninit);
            Scratch::Heap(v)
        }
    }

    pub(crate) fn slots(&mut self, slots: usize) -> &mut [MaybeUninit<httparse::Header<'b>>] {
        match self {
            Scratch::Stack(a) => {
                let n = slots.min(a.len());
                a.get_mut(..n).unwrap_or_default()
            }
            Scratch::Heap(v) => v.as_mut_slice(),
        }
    }
}

/// The line-ending rule httparse does not enforce: every LF is preceded by CR and every CR is
/// followed by LF (no bare LF, no bare CR anywhere in the head).
///
/// Visits only the CR and LF bytes, found with SIMD (`memchr2`): a loop over every byte of
/// the head cost about 3,000 instructions per proxied request (request and response heads).
pub(crate) fn line_endings_ok(head: &[u8]) -> bool {
    memchr::memchr2_iter(b'\r', b'\n', head).all(|i| match head.get(i) {
        Some(b'\r') => head.get(i + 1) == Some(&b'\n'),
        _ => i > 0 && head.get(i - 1) == Some(&b'\r'),
    })
}

/// RFC 9110 `tchar`: the characters of a token (methods, header names). Public so that
/// configuration validates tokens by the very rule requests are parsed with. One table
/// lookup: header names are checked byte by byte on every request.
#[inline]
pub fn is_tchar(b: u8) -> bool {
    TCHAR.get(usize::from(b)).copied().unwrap_or(false)
}

/// `TCHAR[b]`: whether byte `b` is a `tchar`.
static TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        // `i < 256`, the table's length: the loop's bound. (`get_mut` is not `const`.)
        #[allow(clippy::indexing_slicing)]
        let slot = &mut table[i];
        *slot = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    table
};

/// RFC 9110 `field-vchar` / SP / HTAB (obs-text allowed).
#[inline]
pub(crate) fn is_value_byte(b: u8) -> bool {
    b == b'\t' || (0x20..=0x7e).contains(&b) || b >= 0x80
}

#[inline]
pub(crate) fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `bytes` with leading and trailing SP/HTAB removed.
pub(crate) fn trim_ows(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !is_ows(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_ows(b))
        .map_or(start, |i| i + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// The elements of a comma-separated list value, OWS-trimmed (empty elements included, so
/// callers decide whether to tolerate them).
pub(crate) fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows)
}

/// `Content-Length` = 1*DIGIT, no sign, no OWS inside, no overflow.
pub(crate) fn parse_content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in value {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// What a combined `Transfer-Encoding` list means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TeVerdict {
    /// Exactly `chunked` (possibly split across fields).
    Chunked,
    /// Well-formed, ends in `chunked`, but other codings come first (`gzip, chunked`).
    OtherThenChunked,
    /// Malformed, obfuscated, `chunked` twice, or not ending in `chunked`.
    Invalid(&'static str),
}

/// Running interpretation of every `Transfer-Encoding` field of a head, combined as one list.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TeState {
    codings: u32,
    chunked_seen: bool,
    last_is_chunked: bool,
    error: Option<&'static str>,
}

impl TeState {
    /// Folds one more `Transfer-Encoding` field value into the list.
    pub(crate) fn add(&mut self, value: &[u8]) {
        if self.error.is_some() {
            return;
        }
        for element in list(value) {
            if element.is_empty() {
                self.error = Some("empty transfer-coding");
                return;
            }
            if !element.iter().all(|&b| is_tchar(b)) {
                self.error = Some("obfuscated transfer-encoding");
                return;
            }
            if self.chunked_seen {
                // Anything after `chunked` (including a second `chunked`) is refused.
                self.error = Some("transfer-coding after chunked");
                return;
            }
            self.codings = self.codings.saturating_add(1);
            if element.eq_ignore_ascii_case(b"chunked") {
                self.chunked_seen = true;
                self.last_is_chunked = true;
            } else {
                self.last_is_chunked = false;
            }
        }
    }

    pub(crate) fn verdict(&self) -> TeVerdict {
        if let Some(e) = self.error {
            return TeVerdict::Invalid(e);
        }
        if !self.last_is_chunked {
            return TeVerdict::Invalid("transfer-encoding does not end in chunked");
        }
        if self.codings == 1 {
            TeVerdict::Chunked
        } else {
            TeVerdict::OtherThenChunked
        }
    }
}

/// What the `Connection` field(s) say.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ConnFlags {
    pub(crate) close: bool,
    pub(crate) keep_alive: bool,
    pub(crate) upgrade: bool,
}

impl ConnFlags {
    pub(crate) fn add(&mut self, value: &[u8]) {
        for t in list(value) {
            if t.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if t.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if t.eq_ignore_ascii_case(b"upgrade") {
                self.upgrade = true;
            }
        }
    }

    /// Persistence per RFC 9112 §9.3: 1.1 persists unless `close`; 1.0 only with `keep-alive`.
    pub(crate) fn persistent(&self, http11: bool) -> bool {
        if self.close {
            false
        } else {
            http11 || self.keep_alive
        }
    }
}

#[inline]
fn is_unreserved_or_sub_delim(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

/// `reg-name` (RFC 3986): unreserved / pct-encoded / sub-delims.
fn reg_name_ok(host: &[u8]) -> bool {
    let mut i = 0usize;
    while let Some(&b) = host.get(i) {
        if b == b'%' {
            let hex = host.get(i.saturating_add(1)..i.saturating_add(3));
            match hex {
                Some(h) if h.iter().all(u8::is_ascii_hexdigit) => i = i.saturating_add(3),
                _ => return false,
            }
        } else if is_unreserved_or_sub_delim(b) {
            i = i.saturating_add(1);
        } else {
            return false;
        }
    }
    true
}

/// `port` = *DIGIT, at most 5 digits and <= 65535 (empty allowed, as in RFC 3986).
fn port_ok(port: &[u8]) -> bool {
    if port.len() > 5 {
        return false;
    }
    if port.is_empty() {
        return true;
    }
    parse_content_length(port).is_some_and(|p| p <= 65535)
}

/// Validates `uri-host [ ":" port ]` and returns the length of the host part (brackets of an
/// IPv6 literal included). Empty hosts and userinfo are refused.
pub(crate) fn authority_host_len(auth: &[u8]) -> Option<usize> {
    if auth.first() == Some(&b'[') {
        let close = auth.iter().position(|&b| b == b']')?;
        let inner = auth.get(1..close)?;
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        let host_len = close.checked_add(1)?;
        let rest = auth.get(host_len..)?;
        match rest.split_first() {
            None => Some(host_len),
            Some((b':', port)) if port_ok(port) => Some(host_len),
            _ => None,
        }
    } else {
        let colon = auth.iter().position(|&b| b == b':');
        let (host, port) = match colon {
            Some(c) => (auth.get(..c)?, auth.get(c.checked_add(1)?..)?),
            None => (auth, &b""[..]),
        };
        if host.is_empty() || !reg_name_ok(host) || !port_ok(port) {
            return None;
        }
        Some(host.len())
    }
}

/// Whether a header name is hop-by-hop for a proxy regardless of `Connection`.
pub(crate) fn is_fixed_hop_by_hop(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"connection")
        || name.eq_ignore_ascii_case(b"keep-alive")
        || name.eq_ignore_ascii_case(b"te")
        || name.eq_ignore_ascii_case(b"transfer-encoding")
        || name.eq_ignore_ascii_case(b"content-length")
        || name
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"proxy-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table is RFC 9110's `tchar`, byte for byte.
    #[test]
    fn tchar_table() {
        let specials = b"!#$%&'*+-.^_`|~";
        for b in 0..=255u8 {
            let want = b.is_ascii_alphanumeric() || specials.contains(&b);
            assert_eq!(is_tchar(b), want, "byte {b}");
        }
    }

    #[test]
    fn line_endings() {
        assert!(line_endings_ok(b"a\r\nb\r\n\r\n"));
        assert!(!line_endings_ok(b"a\nb\r\n\r\n"));
        assert!(!line_endings_ok(b"\na\r\n"));
        assert!(!line_endings_ok(b"a\rb\r\n"));
        assert!(!line_endings_ok(b"a\r"));
        assert!(line_endings_ok(b""));
        // Against the rule written byte by byte, on every string of up to 7 bytes over
        // CR, LF and a letter.
        let reference = |head: &[u8]| {
            let mut prev = 0u8;
            for &b in head {
                if (b == b'\n' && prev != b'\r') || (prev == b'\r' && b != b'\n') {
                    return false;
                }
                prev = b;
            }
            prev != b'\r'
        };
        for len in 0..=7u32 {
            for n in 0..3usize.pow(len) {
                let head: Vec<u8> = (0..len)
                    .map(|i| [b'a', b'\r', b'\n'][n / 3usize.pow(i) % 3])
                    .collect();
                assert_eq!(line_endings_ok(&head), reference(&head), "{head:?}");
            }
        }
    }

    #[test]
    fn content_length_grammar() {
        assert_eq!(parse_content_length(b"0"), Some(0));
        assert_eq!(parse_content_length(b"007"), Some(7));
        assert_eq!(
            parse_content_length(b"18446744073709551615"),
            Some(u64::MAX)
        );
        assert_eq!(parse_content_length(b"18446744073709551616"), None);
        for bad in [
            &b""[..],
            b"+1",
            b"-1",
            b"1 2",
            b"0x10",
            b"1,1",
            b" 1",
            b"1e3",
        ] {
            assert_eq!(parse_content_length(bad), None, "{bad:?}");
        }
    }

    fn te(values: &[&[u8]]) -> TeVerdict {
        let mut s = TeState::default();
        for v in values {
            s.add(v);
        }
        s.verdict()
    }

    #[test]
    fn transfer_encoding_grammar() {
        assert_eq!(te(&[b"chunked"]), TeVerdict::Chunked);
        assert_eq!(te(&[b"ChUnKeD"]), TeVerdict::Chunked);
        assert_eq!(te(&[b"gzip, chunked"]), TeVerdict::OtherThenChunked);
        assert_eq!(te(&[b"gzip", b"chunked"]), TeVerdict::OtherThenChunked);
        for bad in [
            &[&b"chunked, chunked"[..]][..],
            &[b"chunked", b"chunked"],
            &[b"chunked", b"gzip"],
            &[b"gzip"],
            &[b"xchunked"],
            &[b"chunked;x"],
            &[b"\"chunked\""],
            &[b"chunked,"],
            &[b""],
            &[b"chunked\x0b"],
        ] {
            assert!(matches!(te(bad), TeVerdict::Invalid(_)), "{bad:?}");
        }
    }

    #[test]
    fn authority_grammar() {
        assert_eq!(authority_host_len(b"example.com"), Some(11));
        assert_eq!(authority_host_len(b"example.com:8080"), Some(11));
        assert_eq!(authority_host_len(b"example.com:"), Some(11));
        assert_eq!(authority_host_len(b"[::1]:80"), Some(5));
        assert_eq!(authority_host_len(b"[::1]"), Some(5));
        assert_eq!(authority_host_len(b"a%41b"), Some(5));
        for bad in [
            &b""[..],
            b":80",
            b"a b",
            b"user@host",
            b"host:80:90",
            b"host:65536",
            b"host:123456",
            b"host:8a",
            b"[::1",
            b"[]",
            b"[::1]x",
            b"[zz]",
            b"a%4",
            b"a%zz",
            b"a/b",
            b"a\x00",
        ] {
            assert_eq!(authority_host_len(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hop_by_hop_names() {
        for n in [
            "Connection",
            "keep-alive",
            "TE",
            "Transfer-Encoding",
            "content-length",
            "Proxy-Authorization",
            "proxy-connection",
        ] {
            assert!(is_fixed_hop_by_hop(n.as_bytes()), "{n}");
        }
        for n in ["Host", "Upgrade", "Trailer", "Proxy", "x-proxy-id"] {
            assert!(!is_fixed_hop_by_hop(n.as_bytes()), "{n}");
        }
    }

    #[test]
    fn span_bounds() {
        let base = b"hello world";
        let s = Span::of(base, &base[6..]).unwrap();
        assert_eq!(s.get(base), b"world");
        assert_eq!(Span::of(base, b"elsewhere"), None);
        assert_eq!(s.sub(1, 3).unwrap().get(base), b"or");
        assert_eq!(s.sub(3, 9), None);
        assert_eq!(Span { start: 9, end: 99 }.get(base), b"");
        assert_eq!(Span { start: 5, end: 2 }.get(base), b"");
    }
}
