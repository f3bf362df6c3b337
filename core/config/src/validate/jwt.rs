//! `[[jwt_providers]]` (gateway role): issuer, audiences, where the keys are (fetched,
//! inline or in a file, read and parsed here so that a bad JWKS is a configuration error),
//! where a request carries its token, and the claims given to the upstream.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use super::headers::header_name;
use super::Validator;
use crate::hash::Fnv64;
use crate::jwt::{ClaimHeader, JwksSource, JwtProvider, KeySet, RemoteJwks, TokenSource};
use crate::material;
use crate::model::Role;
use crate::raw::FileJwtProvider;
use crate::read::Slot;

const DEFAULT_REFRESH_S: u64 = 600;
const MAX_REFRESH_S: u64 = 86_400;
const DEFAULT_SKEW_S: u64 = 60;
const MAX_SKEW_S: u64 = 600;
/// The longest `jwks` / `jwks_file` document.
const MAX_JWKS_BYTES: usize = 1 << 20;

impl Validator {
    /// `[[jwt_providers]]`: each valid provider by name (an invalid one is left out; its
    /// error is recorded, and a route naming it is not reported again).
    pub(super) fn jwt_providers(
        &mut self,
        role: Role,
        slots: &[Slot<FileJwtProvider>],
    ) -> HashMap<String, Option<Arc<JwtProvider>>> {
        let ids = self.names(
            "jwt_providers",
            "JWT provider",
            slots,
            |p: &FileJwtProvider| &p.name,
        );
        let mut out: HashMap<String, Option<Arc<JwtProvider>>> =
            ids.keys().map(|n| ((*n).to_owned(), None)).collect();
        for (i, slot) in slots.iter().enumerate() {
            let Slot::Ok(f) = slot else { continue };
            let p = format!("jwt_providers[{i}]");
            if role != Role::Gateway {
                self.err(&*p, super::consumers::GATEWAY_ONLY);
                continue;
            }
            if ids.get(f.name.as_str()) != Some(&i) {
                continue;
            }
            let provider = self.jwt_provider(&p, f).map(Arc::new);
            out.insert(f.name.clone(), provider);
        }
        out
    }

    fn jwt_provider(&mut self, p: &str, f: &FileJwtProvider) -> Option<JwtProvider> {
        let mut fingerprint = Fnv64::new();
        let _ = write!(fingerprint, "{f:?}");
        if f.issuer.is_empty() {
            self.err(format!("{p}.issuer"), "must not be empty");
        }
        let audiences = f.audiences.clone().unwrap_or_default();
        if audiences.iter().any(String::is_empty) {
            self.err(format!("{p}.audiences"), "an audience must not be empty");
        }
        let keys = self.jwks_source(p, f, &mut fingerprint);
        let from = match &f.from {
            None => vec![
                TokenSource::Header {
                    name: "authorization".into(),
                    prefix: "Bearer ".into(),
                },
                TokenSource::Query("access_token".into()),
            ],
            Some(list) if list.is_empty() => {
                self.err(format!("{p}.from"), "must name at least one place");
                Vec::new()
            }
            Some(list) => list
                .iter()
                .enumerate()
                .filter_map(|(j, s)| match token_source(s) {
                    Ok(t) => Some(t),
                    Err(m) => self.fail(format!("{p}.from[{j}]"), m),
                })
                .collect(),
        };
        let mut claims_to_headers = Vec::new();
        for (claim, header) in f.claims_to_headers.iter().flatten() {
            let at = format!("{p}.claims_to_headers.{claim}");
            let path: Vec<String> = claim.split('.').map(str::to_owned).collect();
            if path.iter().any(String::is_empty) {
                self.err(
                    &*at,
                    format!("invalid claim {claim:?}: dot-separated names"),
                );
                continue;
            }
            match header_name(header, "set") {
                Ok(h) if h == "x-consumer-name" => self.err(
                    &*at,
                    "x-consumer-name is set by the proxy from the consumer, not from a claim",
                ),
                Ok(h)
                    if claims_to_headers
                        .iter()
                        .any(|c: &ClaimHeader| c.header == h) =>
                {
                    self.err(&*at, format!("header {h:?} is given two claims"));
                }
                Ok(header) => claims_to_headers.push(ClaimHeader { path, header }),
                Err(m) => self.err(&*at, m),
            }
        }
        let skew = f.clock_skew_s.unwrap_or(DEFAULT_SKEW_S);
        if skew > MAX_SKEW_S {
            self.err(
                format!("{p}.clock_skew_s"),
                format!("must be from 0 to {MAX_SKEW_S}, got {skew}"),
            );
        }
        Some(JwtProvider {
            name: f.name.clone(),
            issuer: f.issuer.clone(),
            audiences,
            keys: keys?,
            from,
            forward: f.forward.unwrap_or(false),
            claims_to_headers,
            clock_skew: Duration::from_secs(skew),
            fingerprint: fingerprint.finish(),
        })
    }

    /// Exactly one of `jwks_uri`, `jwks_file` and `jwks`.
    fn jwks_source(
        &mut self,
        p: &str,
        f: &FileJwtProvider,
        fingerprint: &mut Fnv64,
    ) -> Option<JwksSource> {
        let given = [
            f.jwks_uri.is_some(),
            f.jwks_file.is_some(),
            f.jwks.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return self.fail(p, "needs exactly one of jwks_uri, jwks_file and jwks");
        }
        if f.jwks_uri.is_none() {
            for (key, given) in [
                ("jwks_ca", f.jwks_ca.is_some()),
                ("jwks_refresh_s", f.jwks_refresh_s.is_some()),
            ] {
                if given {
                    self.err(
                        format!("{p}.{key}"),
                        "only with jwks_uri (keys that are fetched)",
                    );
                }
            }
        }
        if let Some(json) = &f.jwks {
            return self.key_set(&format!("{p}.jwks"), json.as_bytes(), true);
        }
        if let Some(file) = &f.jwks_file {
            let m = self
                .material(p, (("jwks_file", Some(file)), ("jwks", None)))
                .ok()??;
            fingerprint.write(&m.bytes);
            return self.key_set(&format!("{p}.jwks_file"), &m.bytes, false);
        }
        let uri = f.jwks_uri.as_deref()?;
        let at = format!("{p}.jwks_uri");
        let (https, host, port, path) = match parse_uri(uri) {
            Ok(parts) => parts,
            Err(m) => return self.fail(at, m),
        };
        if !https && !is_loopback(&host) {
            return self.fail(
                at,
                "http:// is accepted only to a loopback address (127.0.0.0/8, ::1, localhost); use https://",
            );
        }
        let roots = match f.jwks_ca.as_ref() {
            None => crate::tls::system_roots(),
            Some(ca) => {
                let m = self
                    .material(p, (("jwks_ca", Some(ca)), ("jwks_ca_pem", None)))
                    .ok()??;
                fingerprint.write(&m.bytes);
                match material::roots(&m.bytes, &m.what) {
                    Ok(r) => Arc::new(r),
                    Err(e) => return self.fail(format!("{p}.jwks_ca"), e),
                }
            }
        };
        let refresh = f.jwks_refresh_s.unwrap_or(DEFAULT_REFRESH_S);
        if !(1..=MAX_REFRESH_S).contains(&refresh) {
            return self.fail(
                format!("{p}.jwks_refresh_s"),
                format!("must be from 1 to {MAX_REFRESH_S}, got {refresh}"),
            );
        }
        Some(JwksSource::Remote(RemoteJwks {
            uri: uri.to_owned(),
            https,
            host,
            port,
            path,
            roots,
            refresh: Duration::from_secs(refresh),
        }))
    }

    fn key_set(&mut self, at: &str, json: &[u8], inline: bool) -> Option<JwksSource> {
        if json.len() > MAX_JWKS_BYTES {
            return self.fail(at, format!("longer than {MAX_JWKS_BYTES} bytes"));
        }
        match KeySet::parse(json, inline) {
            Ok(set) => Some(JwksSource::Static(Arc::new(set))),
            Err(m) => self.fail(at, m),
        }
    }
}

/// `header:<name>:<prefix>`, `query:<param>` or `cookie:<name>`.
fn token_source(s: &str) -> Result<TokenSource, String> {
    let bad_param = |n: &str| {
        n.is_empty()
            || n.bytes()
                .any(|b| matches!(b, b'&' | b'=' | b'#' | b'%' | b';') || !b.is_ascii_graphic())
    };
    if let Some(rest) = s.strip_prefix("header:") {
        let (name, prefix) = rest.split_once(':').unwrap_or((rest, ""));
        let name = header_name(name, "read")?;
        if prefix.bytes().any(|b| !(0x20..0x7f).contains(&b)) {
            return Err(format!(
                "invalid prefix {prefix:?}: visible ASCII and spaces"
            ));
        }
        return Ok(TokenSource::Header {
            name,
            prefix: prefix.to_owned(),
        });
    }
    if let Some(q) = s.strip_prefix("query:") {
        if bad_param(q) {
            return Err(format!(
                "invalid query parameter name {q:?}: visible ASCII without & = # % ;"
            ));
        }
        return Ok(TokenSource::Query(q.to_owned()));
    }
    if let Some(c) = s.strip_prefix("cookie:") {
        if bad_param(c) {
            return Err(format!(
                "invalid cookie name {c:?}: visible ASCII without & = # % ;"
            ));
        }
        return Ok(TokenSource::Cookie(c.to_owned()));
    }
    Err(format!(
        "unknown place {s:?}, expected \"header:<name>:<prefix>\", \"query:<param>\" or \"cookie:<name>\""
    ))
}

/// `http(s)://host[:port][/path]` → (https, host, port, path).
fn parse_uri(uri: &str) -> Result<(bool, String, u16, String), String> {
    // Error messages quote the URI without the values of credential query parameters.
    let shown = crate::redact::redact_query(uri);
    let (https, rest) = if let Some(r) = uri.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = uri.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!(
            "invalid URI {shown:?}: must start with https:// (or http:// to loopback)"
        ));
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_owned()
    };
    if authority.contains('@') || path.contains('#') || path.bytes().any(|b| !b.is_ascii_graphic())
    {
        return Err(format!(
            "invalid URI {shown:?}: no user info, fragment or spaces"
        ));
    }
    let default_port = if https { 443 } else { 80 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or(format!("invalid URI {shown:?}: unclosed ["))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or(format!("invalid port in {shown:?}"))?,
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
    {
        return Err(format!("invalid host in {shown:?}"));
    }
    Ok((https, host.to_ascii_lowercase(), port, path))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        assert_eq!(
            parse_uri("https://id.example.com/.well-known/jwks.json").unwrap(),
            (
                true,
                "id.example.com".into(),
                443,
                "/.well-known/jwks.json".into()
            )
        );
        assert_eq!(
            parse_uri("http://[::1]:8080").unwrap(),
            (false, "::1".into(), 8080, "/".into())
        );
        assert_eq!(parse_uri("http://127.0.0.1:9?x=1").unwrap().3, "/?x=1");
        assert!(parse_uri("ftp://x/").is_err());
        assert!(parse_uri("https://u@x/").is_err());
        assert!(parse_uri("https://x:0/").is_err());
        assert!(parse_uri("https:///a").is_err());
        assert!(is_loopback("127.0.0.2") && is_loopback("::1") && !is_loopback("10.0.0.1"));
    }

    #[test]
    fn token_sources() {
        assert_eq!(
            token_source("header:Authorization:Bearer ").unwrap(),
            TokenSource::Header {
                name: "authorization".into(),
                prefix: "Bearer ".into()
            }
        );
        assert_eq!(
            token_source("header:x-token").unwrap(),
            TokenSource::Header {
                name: "x-token".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            token_source("query:t").unwrap(),
            TokenSource::Query("t".into())
        );
        assert_eq!(
            token_source("cookie:s").unwrap(),
            TokenSource::Cookie("s".into())
        );
        assert!(token_source("body:t").is_err());
        assert!(token_source("query:").is_err());
        assert!(token_source("cookie:a;b").is_err());
        assert!(token_source("header::x").is_err());
    }
}
