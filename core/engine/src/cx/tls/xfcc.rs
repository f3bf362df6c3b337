//! The element of X-Forwarded-Client-Cert ringside writes for a client whose certificate a
//! listener verified, as `listeners[].client_cert_details` says (Envoy's
//! `set_current_client_cert_details`, plus `By` and `Hash`): `By=` each URI SAN of the
//! certificate ringside served, `Hash=` the SHA-256 of the client's, `Cert=` and `Chain=` it
//! and its chain as URL-encoded PEM, `Subject=` its subject (RFC 2253), `URI=` and `DNS=`
//! each of its SANs, in that order, `;`-separated. Built once per connection, at the
//! handshake; each request copies it.

use std::fmt::Write;

use ringside_config::{CertDetails, CertKey, MeshIdentity};
use rustls::pki_types::CertificateDer;
use x509_parser::prelude::FromDer;

/// A TLS listener's certificates as `By=` needs them: each one's DNS names (to find the one
/// served for a server name, as `resolve.rs` does) and URI SANs.
#[derive(Debug, Default)]
pub(crate) struct Served {
    certs: Vec<(Vec<String>, Vec<String>)>,
}

impl Served {
    pub(crate) fn of_listener(tls: &[CertKey]) -> Served {
        Served {
            certs: tls
                .iter()
                .map(|c| (c.dns_names.clone(), c.uri_names.clone()))
                .collect(),
        }
    }

    pub(crate) fn of_mesh(mesh: &MeshIdentity) -> Served {
        Served::of_listener(std::slice::from_ref(&mesh.identity))
    }

    /// The URI SANs of the certificate served for `sni`.
    pub(crate) fn uris(&self, sni: Option<&str>) -> &[String] {
        let i = super::resolve::pick(self.certs.iter().map(|(dns, _)| dns.as_slice()), sni);
        self.certs.get(i).map_or(&[], |(_, uris)| uris.as_slice())
    }
}

/// The element for a client that presented `chain` (leaf first, verified); `None` when it
/// says nothing (no detail applies: the default `URI=` of a certificate without URI SAN).
pub(crate) fn element(
    d: &CertDetails,
    by: &[String],
    chain: &[CertificateDer<'_>],
) -> Option<String> {
    let leaf = chain.first()?;
    let mut parts: Vec<String> = Vec::new();
    if d.by {
        parts.extend(by.iter().map(|u| format!("By={u}")));
    }
    if d.hash {
        let digest = ring::digest::digest(&ring::digest::SHA256, leaf.as_ref());
        let mut hex = String::with_capacity(64);
        for b in digest.as_ref() {
            let _ = write!(hex, "{b:02x}");
        }
        parts.push(format!("Hash={hex}"));
    }
    if d.cert {
        parts.push(format!("Cert=\"{}\"", url_encode(&pem(leaf))));
    }
    if d.chain {
        let all: String = chain.iter().map(pem).collect();
        parts.push(format!("Chain=\"{}\"", url_encode(&all)));
    }
    let parsed = x509_parser::certificate::X509Certificate::from_der(leaf.as_ref())
        .ok()
        .map(|(_, c)| c);
    if d.subject {
        if let Some(subject) = parsed.as_ref().map(|c| rfc2253(c.subject())) {
            parts.push(format!("Subject=\"{}\"", subject.replace('"', "\\\"")));
        }
    }
    if d.uri || d.dns {
        let (dns, uris) = ringside_config::tls::san_names(leaf.as_ref()).unwrap_or_default();
        if d.uri {
            parts.extend(uris.iter().map(|u| format!("URI={u}")));
        }
        if d.dns {
            parts.extend(dns.iter().map(|n| format!("DNS={n}")));
        }
    }
    (!parts.is_empty()).then(|| parts.join(";"))
}

/// A certificate as PEM, lines of 64 characters.
fn pem(der: &CertificateDer<'_>) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// Percent-encodes all but the unreserved characters of RFC 3986.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A distinguished name as RFC 2253 writes it: the last RDN first, `,` between RDNs, `+`
/// inside one, short attribute names (`CN`, `O`...) or the dotted OID, special characters
/// escaped.
fn rfc2253(name: &x509_parser::x509::X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            let attrs: Vec<String> = rdn
                .iter()
                .map(|a| {
                    let oid = a.attr_type().to_id_string();
                    let key = short_name(&oid).map_or(oid, str::to_string);
                    let value = a.as_str().map_or_else(|_| String::new(), escape);
                    format!("{key}={value}")
                })
                .collect();
            attrs.join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// The names OpenSSL writes for the attributes of subjects (RFC 4514's, and the common
/// others); any other is written as its dotted OID, as RFC 2253 says.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.42" => "GN",
        "2.5.4.43" => "initials",
        "2.5.4.44" => "generationQualifier",
        "2.5.4.46" => "dnQualifier",
        "2.5.4.65" => "pseudonym",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

/// RFC 2253 §2.4: `,` `+` `"` `\` `<` `>` `;` escaped, and a leading `#` or space and a
/// trailing space.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
        let edge = (i == 0 && (c == '#' || c == ' ')) || (i == last && c == ' ');
        if edge || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> CertDetails {
        CertDetails {
            by: true,
            hash: true,
            cert: true,
            chain: true,
            subject: true,
            uri: true,
            dns: true,
        }
    }

    fn cert() -> (CertificateDer<'static>, String) {
        let mut p = rcgen::CertificateParams::new(vec!["a.test".into(), "b.test".into()]).unwrap();
        p.subject_alt_names.push(rcgen::SanType::URI(
            "spiffe://c/ns/x/sa/y".try_into().unwrap(),
        ));
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::OrganizationName, "Acme, Inc");
        dn.push(rcgen::DnType::CommonName, "client #1");
        p.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let c = p.self_signed(&key).unwrap();
        (c.der().clone(), c.pem())
    }

    #[test]
    fn every_detail_in_envoys_order() {
        let (der, pem_text) = cert();
        let by = ["spiffe://c/ns/x/sa/server".to_string()];
        let e = element(&all(), &by, std::slice::from_ref(&der)).unwrap();
        let parts: Vec<&str> = e.split(';').collect();
        assert_eq!(parts[0], "By=spiffe://c/ns/x/sa/server");
        let digest = ring::digest::digest(&ring::digest::SHA256, der.as_ref());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parts[1], format!("Hash={hex}"));
        // rcgen's PEM has the same 64-character lines (and CRLF or LF line ends).
        let want = url_encode(&pem_text.replace("\r\n", "\n"));
        assert_eq!(parts[2], format!("Cert=\"{want}\""));
        assert_eq!(parts[3], format!("Chain=\"{want}\""));
        assert!(
            parts[2].starts_with("Cert=\"-----BEGIN%20CERTIFICATE-----%0A"),
            "{}",
            parts[2]
        );
        assert_eq!(parts[4], "Subject=\"CN=client #1,O=Acme\\, Inc\"");
        assert_eq!(
            &parts[5..],
            ["URI=spiffe://c/ns/x/sa/y", "DNS=a.test", "DNS=b.test"]
        );
    }

    #[test]
    fn the_default_is_the_uri_and_nothing_is_none() {
        let (der, _) = cert();
        let chain = std::slice::from_ref(&der);
        let e = element(&CertDetails::default(), &[], chain);
        assert_eq!(e.as_deref(), Some("URI=spiffe://c/ns/x/sa/y"));
        let dns_only = CertDetails {
            uri: false,
            dns: true,
            ..CertDetails::default()
        };
        assert_eq!(
            element(&dns_only, &[], chain).as_deref(),
            Some("DNS=a.test;DNS=b.test")
        );
        let by_only = CertDetails {
            uri: false,
            by: true,
            ..CertDetails::default()
        };
        assert_eq!(element(&by_only, &[], chain), None);
        assert_eq!(element(&all(), &[], &[]), None);
    }

    #[test]
    fn rfc2253_escapes_its_specials() {
        assert_eq!(
            escape("a,b+c\"d\\e<f>g;h"),
            "a\\,b\\+c\\\"d\\\\e\\<f\\>g\\;h"
        );
        assert_eq!(escape("#lead and trail "), "\\#lead and trail\\ ");
        assert_eq!(escape(" x"), "\\ x");
    }
}
