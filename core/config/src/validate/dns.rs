//! `[dns]`: the resolver's name servers and the bounds on how long an answer is kept.

use std::time::Duration;

use super::Validator;
use crate::check;
use crate::dns::DnsSettings;
use crate::raw::FileDns;

impl Validator {
    pub(super) fn dns(&mut self, raw: &FileDns) -> DnsSettings {
        let mut servers = Vec::new();
        match raw.servers.as_deref() {
            Some([]) => self.err(
                "dns.servers",
                "must name at least one server (leave it out to use /etc/resolv.conf)",
            ),
            Some(list) => {
                for (i, s) in list.iter().enumerate() {
                    match check::socket_addr(s) {
                        Ok(a) if a.port() == 0 => self.err(
                            format!("dns.servers[{i}]"),
                            format!("invalid server {s:?}: port 0 cannot be asked"),
                        ),
                        Ok(a) => servers.push(a),
                        Err(m) => self.err(format!("dns.servers[{i}]"), m),
                    }
                }
            }
            None => {}
        }
        let mut ttl = |key: &str, value: Option<u64>, default: u64| {
            let s = value.unwrap_or(default);
            if (1..=DnsSettings::MAX_TTL_S).contains(&s) {
                Some(s)
            } else {
                self.err(
                    format!("dns.{key}"),
                    format!("must be from 1 to {}, got {s}", DnsSettings::MAX_TTL_S),
                );
                None
            }
        };
        let min = ttl("min_ttl_s", raw.min_ttl_s, DnsSettings::DEFAULT_MIN_TTL_S);
        let max = ttl("max_ttl_s", raw.max_ttl_s, DnsSettings::DEFAULT_MAX_TTL_S);
        if let (Some(min), Some(max)) = (min, max) {
            if min > max {
                self.err(
                    "dns.min_ttl_s",
                    format!("must be at most max_ttl_s ({max}), got {min}"),
                );
            }
        }
        DnsSettings::new(
            servers,
            Duration::from_secs(min.unwrap_or(DnsSettings::DEFAULT_MIN_TTL_S)),
            Duration::from_secs(max.unwrap_or(DnsSettings::DEFAULT_MAX_TTL_S)),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::validate::tests::{errors, ok};
    use std::time::Duration;

    #[test]
    fn defaults_and_settings() {
        let d = ok("").dns;
        assert!(d.servers.is_empty());
        assert_eq!(
            (d.min_ttl, d.max_ttl),
            (Duration::from_secs(1), Duration::from_secs(300))
        );
        let d = ok("[dns]\nservers = [ \"127.0.0.1:5353\" ]\nmin_ttl_s = 5\nmax_ttl_s = 5\n").dns;
        assert_eq!(d.servers, ["127.0.0.1:5353".parse().unwrap()]);
        assert_eq!(
            (d.min_ttl, d.max_ttl),
            (Duration::from_secs(5), Duration::from_secs(5))
        );
    }

    #[test]
    fn bad_settings_are_rejected_with_their_path() {
        assert_eq!(
            errors("[dns]\nmin_ttl_s = 10\nmax_ttl_s = 5\n"),
            ["dns.min_ttl_s: must be at most max_ttl_s (5), got 10"]
        );
        assert_eq!(
            errors("[dns]\nmin_ttl_s = 0\nmax_ttl_s = 100000\n"),
            [
                "dns.min_ttl_s: must be from 1 to 86400, got 0",
                "dns.max_ttl_s: must be from 1 to 86400, got 100000"
            ]
        );
        assert_eq!(
            errors("[dns]\nservers = [ \"ns.local:53\", \"127.0.0.1:0\" ]\n"),
            [
                "dns.servers[0]: invalid socket address \"ns.local:53\"",
                "dns.servers[1]: invalid server \"127.0.0.1:0\": port 0 cannot be asked"
            ]
        );
        assert_eq!(
            errors("[dns]\nservers = []\n"),
            ["dns.servers: must name at least one server (leave it out to use /etc/resolv.conf)"]
        );
        let e = errors("[dns]\nttl = 5\n");
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("dns.ttl: unknown field \"ttl\""), "{e:?}");
        let e =
            errors("[[clusters]]\nname = \"c\"\ndns = \"lazy\"\nendpoints = [ \"a.test:80\" ]\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("clusters[0].dns: unknown variant \"lazy\""),
            "{e:?}"
        );
    }

    #[test]
    fn host_endpoints_are_accepted_and_checked() {
        let c = ok("[[clusters]]\nname = \"c\"\nendpoints = [ \"10.0.0.1:80\", \"Orders.internal:8080\", { address = \"b.test:81\", weight = 3 } ]\n");
        let c = &c.clusters[0];
        assert_eq!(c.endpoints.len(), 1);
        let names: Vec<String> = c
            .names
            .iter()
            .map(|n| format!("{n}*{}", n.endpoint.weight))
            .collect();
        assert_eq!(names, ["orders.internal:8080*1", "b.test:81*3"]);
        assert_eq!(
            errors("[[clusters]]\nname = \"c\"\nendpoints = [ \"a.test:80\", \"A.test:80\", \"a.test:0\", \"a b:80\" ]\n"),
            [
                "clusters[0].endpoints[1]: duplicate endpoint a.test:80 (also endpoints[0])",
                "clusters[0].endpoints[2]: invalid endpoint \"a.test:0\": port 0 cannot be connected to",
                "clusters[0].endpoints[3]: invalid socket address \"a b:80\""
            ]
        );
    }
}
