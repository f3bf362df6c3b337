//! The ring_hash key of a request, and the stable 64-bit hash behind it (XXH64).
//!
//! Where it sits: the Balance stage (after routing, before the pool) calls [`request_hash`] for
//! clusters with `lb = "ring_hash"` and hands the result to `Balancer::pick`; the ring places
//! its points with the same [`xxh64`]. The hash must give the same value in every process, on
//! every run and after every upgrade, or clients would change endpoints on a restart: so it is
//! XXH64 with seed 0, checked against the reference vectors below, never std's `RandomState`.
//! (Envoy hashes header values and ring points with XXH64 as well.)
//!
//! Config read: `Cluster::hash_key` (a lower-case header name, a cookie name, or the client's
//! source IP). Metrics: none. Errors: none; `None` means the request carries no key (absent or
//! empty), and the balancer then picks at random.

use std::net::IpAddr;

use ringside_config::HashKey;

/// Computes the request's hash key for ring_hash. `header(lower_name)` returns the first value of a header.
/// Cookie: parse the Cookie header(s) ("a=1; session=xyz") and hash the named cookie's value.
/// None when the key is absent from the request.
///
/// Details: an empty header or cookie value counts as absent. Only the first `Cookie` header is
/// parsed (HTTP/1.1 clients send a single one, RFC 6265 §5.4). Cookie names compare exactly
/// (they are case-sensitive); the first cookie with the name wins; a value in double quotes is
/// hashed without them. An IPv4-mapped IPv6 source (`::ffff:10.0.0.1`, from a dual-stack
/// listener) hashes like the IPv4 address.
pub fn request_hash<'a>(
    key: &HashKey,
    header: impl Fn(&str) -> Option<&'a [u8]>,
    source_ip: std::net::IpAddr,
) -> Option<u64> {
    match key {
        HashKey::Header(name) => header(name)
            .filter(|value| !value.is_empty())
            .map(|value| xxh64(value, 0)),
        HashKey::Cookie(name) => header("cookie")
            .and_then(|cookies| cookie_value(cookies, name.as_bytes()))
            .filter(|value| !value.is_empty())
            .map(|value| xxh64(value, 0)),
        HashKey::SourceIp => Some(match source_ip.to_canonical() {
            IpAddr::V4(ip) => xxh64(&ip.octets(), 0),
            IpAddr::V6(ip) => xxh64(&ip.octets(), 0),
        }),
    }
}

/// A `hash_cookie` for a client that sent none: the cookie's value, made from the client's
/// address and port (so a connection's requests before the answer reach it hash alike),
/// and the hash of the request, the one the cookie will give later requests.
pub fn made_cookie(client: std::net::SocketAddr) -> (u64, u64) {
    let value = xxh64(client.to_string().as_bytes(), 0);
    (value, xxh64(format!("{value:016x}").as_bytes(), 0))
}

/// The value of the first cookie called `name` in a `Cookie` header (`a=1; b="2"`).
fn cookie_value<'h>(header: &'h [u8], name: &[u8]) -> Option<&'h [u8]> {
    header.split(|&b| b == b';').find_map(|pair| {
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (cookie, value) = pair.split_at_checked(eq)?;
        if cookie.trim_ascii() != name {
            return None;
        }
        let value = value.get(1..)?.trim_ascii();
        Some(
            value
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(value),
        )
    })
}

const P1: u64 = 0x9e37_79b1_85eb_ca87;
const P2: u64 = 0xc2b2_ae3d_27d4_eb4f;
const P3: u64 = 0x1656_67b1_9e37_79f9;
const P4: u64 = 0x85eb_ca77_c2b2_ae63;
const P5: u64 = 0x27d4_eb2f_1656_67c5;

/// XXH64 (Yann Collet's xxHash, 64-bit variant) of `data`: fast, well mixed, and specified
/// byte for byte (little-endian reads), so stable across machines, processes and versions.
pub(super) fn xxh64(data: &[u8], seed: u64) -> u64 {
    let mut rest = data;
    let mut h = if data.len() >= 32 {
        let mut acc = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        let mut stripes = data.chunks_exact(32);
        for stripe in &mut stripes {
            for (lane, word) in acc.iter_mut().zip(stripe.chunks_exact(8)) {
                *lane = round(*lane, read_u64(word));
            }
        }
        rest = stripes.remainder();
        let [v1, v2, v3, v4] = acc;
        let mut h = v1
            .rotate_left(1)
            .wrapping_add(v2.rotate_left(7))
            .wrapping_add(v3.rotate_left(12))
            .wrapping_add(v4.rotate_left(18));
        for lane in acc {
            h = (h ^ round(0, lane)).wrapping_mul(P1).wrapping_add(P4);
        }
        h
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(data.len() as u64);

    let mut words = rest.chunks_exact(8);
    for word in &mut words {
        h ^= round(0, read_u64(word));
        h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
    }
    rest = words.remainder();
    if let Some((word, tail)) = rest.split_first_chunk::<4>() {
        h ^= u64::from(u32::from_le_bytes(*word)).wrapping_mul(P1);
        h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
        rest = tail;
    }
    for &byte in rest {
        h ^= u64::from(byte).wrapping_mul(P5);
        h = h.rotate_left(11).wrapping_mul(P1);
    }

    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^ (h >> 32)
}

fn round(acc: u64, input: u64) -> u64 {
    acc.wrapping_add(input.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

/// Callers pass exact 8-byte chunks; anything shorter would read as 0 rather than panic.
fn read_u64(word: &[u8]) -> u64 {
    word.first_chunk::<8>()
        .map_or(0, |w| u64::from_le_bytes(*w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// The reference values of the xxHash specification (seed 0): lengths 0, 1, 3, 16, 39, 46
    /// cover the byte tail, the 4-byte word, the 8-byte words and the 32-byte stripes.
    #[test]
    fn xxh64_matches_the_reference_vectors() {
        assert_eq!(xxh64(b"", 0), 0xef46_db37_51d8_e999);
        assert_eq!(xxh64(b"a", 0), 0xd24e_c4f1_a98c_6e5b);
        assert_eq!(xxh64(b"abc", 0), 0x44bc_2cf5_ad77_0999);
        assert_eq!(xxh64(b"Call me Ishmael.", 0), 0x6d04_390f_c9d6_1a90);
        assert_eq!(
            xxh64(b"Nobody inspects the spammish repetition", 0),
            0xfbce_a83c_8a37_8bf1
        );
        assert_eq!(
            xxh64(b"Some years ago--never mind how long precisely-", 0),
            0x8f26_f2b9_86af_dc52
        );
        assert_ne!(xxh64(b"abc", 1), xxh64(b"abc", 0));
    }

    fn headers<'a>(list: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a [u8]> + 'a {
        move |name| {
            list.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_bytes())
        }
    }

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));

    fn header_key(name: &str) -> HashKey {
        HashKey::Header(name.to_owned())
    }

    fn cookie_key(name: &str) -> HashKey {
        HashKey::Cookie(name.to_owned())
    }

    #[test]
    fn header_key_hashes_the_value_and_is_none_when_absent_or_empty() {
        let req = [("x-user", "alice"), ("x-empty", "")];
        let key = header_key("x-user");
        assert_eq!(
            request_hash(&key, headers(&req), IP),
            Some(xxh64(b"alice", 0))
        );
        let bob = [("x-user", "bob")];
        assert_ne!(
            request_hash(&key, headers(&req), IP),
            request_hash(&key, headers(&bob), IP)
        );
        assert_eq!(
            request_hash(&header_key("x-other"), headers(&req), IP),
            None
        );
        assert_eq!(
            request_hash(&header_key("x-empty"), headers(&req), IP),
            None
        );
    }

    #[test]
    fn cookie_key_finds_the_named_cookie_among_several() {
        let want = Some(xxh64(b"xyz", 0));
        let key = cookie_key("session");
        for cookie in [
            "session=xyz",
            "a=1; session=xyz",
            "a=1;session=xyz",
            "a=1;   session = xyz ;b=2",
            "a=1; session=xyz; b=2",
            "a=1; session=\"xyz\"",
            "xsession=nope; sessionx=nope; session=xyz",
            "flag; a=; session=xyz; session=later",
        ] {
            let req = [("cookie", cookie)];
            assert_eq!(request_hash(&key, headers(&req), IP), want, "{cookie:?}");
        }
    }

    #[test]
    fn cookie_key_is_none_when_the_cookie_is_missing_or_empty() {
        let key = cookie_key("session");
        for cookie in [
            "",
            "a=1; b=2",
            "Session=xyz",
            "sessions=xyz",
            "session",
            "session=",
            "a=1; session=\"\"",
            ";;;",
        ] {
            let req = [("cookie", cookie)];
            assert_eq!(request_hash(&key, headers(&req), IP), None, "{cookie:?}");
        }
        assert_eq!(request_hash(&key, headers(&[]), IP), None);
    }

    #[test]
    fn cookie_value_keeps_everything_after_the_first_equals_sign() {
        assert_eq!(cookie_value(b"t=a=b==; u=1", b"t"), Some(&b"a=b=="[..]));
        assert_eq!(cookie_value(b"t=\"", b"t"), Some(&b"\""[..]));
    }

    #[test]
    fn source_ip_key_hashes_the_address_and_unmaps_ipv4_in_ipv6() {
        let key = HashKey::SourceIp;
        let none = headers(&[]);
        let v4 = request_hash(&key, &none, IP);
        assert_eq!(v4, Some(xxh64(&[192, 0, 2, 7], 0)));
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        assert_eq!(request_hash(&key, &none, mapped), v4);
        let other = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 8));
        assert_ne!(request_hash(&key, &none, other), v4);
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1));
        assert_eq!(
            request_hash(&key, &none, v6),
            Some(xxh64(&v6_octets(v6), 0))
        );
    }

    fn v6_octets(ip: IpAddr) -> [u8; 16] {
        match ip {
            IpAddr::V6(v6) => v6.octets(),
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        }
    }
}
