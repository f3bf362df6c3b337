//! A request's path as its listener's rules make it, before routing or any stage reads it
//! and before it is sent upstream ([`PathRules`], carried in [`Limits::path`]):
//!
//! 1. escaped slashes (`%2F`, `%5C`, either case) kept, refused (400) or unescaped
//!    (`escaped_slashes`);
//! 2. RFC 3986 §6.2.2 normalization (`normalize_path`): percent-encoded unreserved
//!    characters decoded (`%41` → `A`, `%2E` → `.`), the other escapes' hex digits upper-cased
//!    (`%2f` → `%2F`), a `%` not followed by two hex digits refused (400), then dot segments
//!    removed (§5.2.4: `/a/./b/../c` → `/a/c`; a `..` above the root stays at the root);
//! 3. runs of slashes merged into one (`merge_slashes`: `//a///b` → `/a/b`).
//!
//! The order is Envoy's (`path_with_escaped_slashes_action`, `normalize_path`,
//! `merge_slashes` of its HTTP connection manager): an unescaped slash is a separator by the
//! time dot segments are removed, so `/a%2F..%2Fb` is `/b` when slashes are unescaped. Only
//! the path changes: the query goes on as sent, and a request's `target()` stays what the
//! client wrote. Origin-form paths only (`/...`, also the path of an absolute-form target);
//! `*` and a CONNECT's authority have none.
//!
//! Why a proxy does this: a route or an `[[authz]]` rule that matches `/public` must not let
//! `/public/../admin` through to an origin that resolves it to `/admin` (the mismatch behind
//! Envoy's CVE-2019-9901).
//!
//! [`Limits::path`]: crate::Limits::path

use crate::chunked::hex_value;
use crate::RequestError;

/// What a listener does to request paths. The default does nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PathRules {
    /// RFC 3986 normalization: unreserved escapes decoded, dot segments removed.
    pub normalize: bool,
    /// Runs of `/` merged into one.
    pub merge_slashes: bool,
    /// What `%2F` and `%5C` do.
    pub escaped_slashes: EscapedSlashes,
}

/// What an escaped slash (`%2F`, `%5C`) in a path does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EscapedSlashes {
    /// Stays as sent: not a separator for routing or dot segments.
    #[default]
    Keep,
    /// The request is refused (400).
    Reject,
    /// Decoded (`%2F` → `/`, `%5C` → `\`) before normalization.
    Unescape,
}

impl PathRules {
    /// Nothing changes.
    pub const NONE: PathRules = PathRules {
        normalize: false,
        merge_slashes: false,
        escaped_slashes: EscapedSlashes::Keep,
    };

    /// Whether the rules change nothing (the one check a request pays for them then).
    pub fn is_none(&self) -> bool {
        *self == PathRules::NONE
    }

    /// `path` (origin-form: it starts with `/`; no query) under these rules: `Ok(None)` when
    /// it stays as it is, else the new path. Never longer than `path`.
    pub fn apply(&self, path: &[u8]) -> Result<Option<Vec<u8>>, RequestError> {
        let escapes = memchr::memchr(b'%', path).is_some()
            && (self.normalize || self.escaped_slashes != EscapedSlashes::Keep);
        let dots = self.normalize && has_dot_segment(path);
        let slashes = self.merge_slashes && memchr::memmem::find(path, b"//").is_some();
        if !(escapes || dots || slashes) {
            return Ok(None);
        }
        let mut p = if escapes {
            self.escapes(path)?
        } else {
            path.to_vec()
        };
        if self.normalize && has_dot_segment(&p) {
            p = remove_dot_segments(&p);
        }
        if self.merge_slashes {
            p.dedup_by(|b, a| *a == b'/' && *b == b'/');
        }
        Ok((p != path).then_some(p))
    }

    /// Steps 1 and 2's percent-encoding (see the module's comment).
    fn escapes(&self, path: &[u8]) -> Result<Vec<u8>, RequestError> {
        let mut out = Vec::with_capacity(path.len());
        let mut rest = path;
        while let Some((&b, tail)) = rest.split_first() {
            rest = tail;
            if b != b'%' {
                out.push(b);
                continue;
            }
            let (hi, lo) = match rest {
                [h, l, ..] => (hex_value(*h), hex_value(*l)),
                _ => (None, None),
            };
            let (Some(hi), Some(lo)) = (hi, lo) else {
                if self.normalize {
                    return Err(RequestError::Malformed(
                        "invalid percent-encoding in the path",
                    ));
                }
                out.push(b);
                continue;
            };
            let sent = rest.get(..2).unwrap_or_default();
            rest = rest.get(2..).unwrap_or_default();
            let v = (hi << 4) | lo;
            match v {
                b'/' | b'\\' => match self.escaped_slashes {
                    EscapedSlashes::Keep => push_escape(&mut out, sent, self.normalize),
                    EscapedSlashes::Reject => {
                        return Err(RequestError::Malformed("escaped slash in the path"))
                    }
                    EscapedSlashes::Unescape => out.push(v),
                },
                _ if self.normalize && is_unreserved(v) => out.push(v),
                _ => push_escape(&mut out, sent, self.normalize),
            }
        }
        Ok(out)
    }
}

/// `%` and the two hex digits as sent, upper-cased when normalizing.
fn push_escape(out: &mut Vec<u8>, digits: &[u8], upper: bool) {
    out.push(b'%');
    if upper {
        out.extend(digits.iter().map(u8::to_ascii_uppercase));
    } else {
        out.extend_from_slice(digits);
    }
}

/// RFC 3986 §2.3.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Whether a segment of `path` is `.` or `..`.
fn has_dot_segment(path: &[u8]) -> bool {
    memchr::memmem::find(path, b"/.").is_some()
        && path.split(|&b| b == b'/').any(|s| s == b"." || s == b"..")
}

/// RFC 3986 §5.2.4 on an absolute path: `.` segments dropped, each `..` removing the segment
/// before it (none above the root); a path that ended in a dot segment ends in `/`.
fn remove_dot_segments(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    out.push(b'/');
    // `out` ends in `/` except after the last segment, when that one is kept.
    let mut segments = path
        .get(1..)
        .unwrap_or_default()
        .split(|&b| b == b'/')
        .peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        match seg {
            b"." => {}
            b".." => {
                let before = out.len().saturating_sub(1);
                let cut = out
                    .get(..before)
                    .and_then(|o| o.iter().rposition(|&b| b == b'/'))
                    .map_or(1, |i| i.saturating_add(1));
                out.truncate(cut);
            }
            _ => {
                out.extend_from_slice(seg);
                if !last {
                    out.push(b'/');
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rules: PathRules, path: &str) -> Result<String, RequestError> {
        rules.apply(path.as_bytes()).map(|p| match p {
            Some(p) => String::from_utf8(p).unwrap(),
            None => path.to_owned(),
        })
    }

    const NORMALIZE: PathRules = PathRules {
        normalize: true,
        ..PathRules::NONE
    };

    #[test]
    fn dot_segments_are_removed_as_rfc_3986_says() {
        for (input, want) in [
            ("/", "/"),
            ("/a/b/c", "/a/b/c"),
            ("/a/./b", "/a/b"),
            ("/a/b/../c", "/a/c"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/a/./", "/a/"),
            ("/..", "/"),
            ("/../../a", "/a"),
            ("/./a", "/a"),
            ("/public/../admin", "/admin"),
            ("/a//../b", "/a/b"),
            ("/a/.../b", "/a/.../b"),
            ("/a/..b/.c", "/a/..b/.c"),
            ("/a/b/../../..", "/"),
            // RFC 3986 §5.4's examples, on an absolute path.
            ("/a/b/c/./../../g", "/a/g"),
            ("/mid/content=5/../6", "/mid/6"),
        ] {
            assert_eq!(run(NORMALIZE, input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn unreserved_escapes_are_decoded_and_the_others_upper_cased() {
        for (input, want) in [
            ("/%41%62c", "/Abc"),
            ("/%7euser", "/~user"),
            ("/a%2fb", "/a%2Fb"),
            ("/a%20b", "/a%20b"),
            ("/a%3f%3Fb", "/a%3F%3Fb"),
            ("/%e2%82%ac", "/%E2%82%AC"),
            ("/%25", "/%25"),
            ("/%2541", "/%2541"),
            // Encoded dots are dots.
            ("/a/%2e%2E/b", "/b"),
            ("/a/%2e/b", "/a/b"),
        ] {
            assert_eq!(run(NORMALIZE, input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn a_broken_escape_is_refused_when_normalizing() {
        for input in ["/%", "/a%2", "/%zz", "/%g0", "/a%"] {
            assert_eq!(
                run(NORMALIZE, input),
                Err(RequestError::Malformed(
                    "invalid percent-encoding in the path"
                )),
                "{input}"
            );
            // Without normalization nothing reads them.
            assert_eq!(run(PathRules::NONE, input).unwrap(), input);
        }
    }

    #[test]
    fn escaped_slashes_are_kept_refused_or_unescaped() {
        let rules = |escaped_slashes, normalize| PathRules {
            normalize,
            escaped_slashes,
            merge_slashes: false,
        };
        let keep = rules(EscapedSlashes::Keep, false);
        assert_eq!(run(keep, "/a%2f..%2fb").unwrap(), "/a%2f..%2fb");
        assert_eq!(
            run(rules(EscapedSlashes::Keep, true), "/a%2f..%2fb").unwrap(),
            "/a%2F..%2Fb"
        );
        for s in ["/a%2Fb", "/a%2fb", "/a%5Cb", "/a%5cb"] {
            assert_eq!(
                run(rules(EscapedSlashes::Reject, false), s),
                Err(RequestError::Malformed("escaped slash in the path"))
            );
        }
        assert_eq!(
            run(rules(EscapedSlashes::Reject, false), "/a%2Eb").unwrap(),
            "/a%2Eb"
        );
        let unescape = rules(EscapedSlashes::Unescape, false);
        assert_eq!(run(unescape, "/a%2Fb%5cc%41").unwrap(), "/a/b\\c%41");
        // Unescaped first, so the slashes separate the dot segments.
        assert_eq!(
            run(rules(EscapedSlashes::Unescape, true), "/a%2F..%2Fb").unwrap(),
            "/b"
        );
    }

    #[test]
    fn slashes_are_merged_after_normalization() {
        let merge = PathRules {
            merge_slashes: true,
            ..PathRules::NONE
        };
        assert_eq!(run(merge, "//a///b//").unwrap(), "/a/b/");
        assert_eq!(run(merge, "/a/b").unwrap(), "/a/b");
        let both = PathRules {
            normalize: true,
            merge_slashes: true,
            ..PathRules::NONE
        };
        // `..` removes the empty segment first (RFC 3986), then the runs merge.
        assert_eq!(run(both, "/a//../b").unwrap(), "/a/b");
        assert_eq!(run(both, "/a///b/./..//c").unwrap(), "/a/c");
    }

    #[test]
    fn an_unchanged_path_is_none() {
        let all = PathRules {
            normalize: true,
            merge_slashes: true,
            escaped_slashes: EscapedSlashes::Unescape,
        };
        for p in ["/", "/a/b", "/a/b/", "/%2541", "/a%20b"] {
            assert_eq!(all.apply(p.as_bytes()).unwrap(), None, "{p}");
        }
        assert!(PathRules::NONE.is_none());
        assert!(!all.is_none());
    }
}
