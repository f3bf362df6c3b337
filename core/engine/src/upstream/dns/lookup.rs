//! One round of lookups with hickory-resolver, on the resolver thread's own current-thread
//! tokio runtime (never a worker's): every name due is asked at once, each bounded by the
//! resolver's timeout and attempts.

use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;
use ringside_config::DnsSettings;

/// How long one query waits for a server, and how many times it is sent: a round whose
/// servers are all down ends within about `TIMEOUT` × `ATTEMPTS`.
const TIMEOUT: Duration = Duration::from_secs(2);
const ATTEMPTS: usize = 2;
/// The system files read when no `[dns] servers` are given.
const SYSTEM_FILES: [&str; 2] = ["/etc/resolv.conf", "/etc/hosts"];

/// What one lookup gave.
pub(super) enum Answer {
    /// The addresses, in the server's order, and until when they may be kept (the TTL,
    /// clamped to `min_ttl..=max_ttl`).
    Found(Vec<IpAddr>, Instant),
    Failed(String),
}

/// A resolver for one `[dns]` setting, and the runtime it runs on.
pub(super) struct Lookup {
    runtime: tokio::runtime::Runtime,
    resolver: Result<TokioResolver, String>,
    settings: DnsSettings,
    /// When the system files were last changed (rebuilt when they change).
    stamp: Vec<Option<SystemTime>>,
}

impl Lookup {
    pub(super) fn new(settings: &DnsSettings) -> std::io::Result<Lookup> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let stamp = stamp(settings);
        let resolver = runtime.block_on(async { build(settings) });
        if let Err(e) = &resolver {
            tracing::error!(error = %e, "dns: cannot set up the resolver; lookups fail until it can");
        }
        Ok(Lookup {
            runtime,
            resolver,
            settings: settings.clone(),
            stamp,
        })
    }

    /// Whether this resolver was made for `settings` and the system files it read are
    /// unchanged.
    pub(super) fn fits(&self, settings: &DnsSettings) -> bool {
        self.settings == *settings && self.stamp == stamp(settings)
    }

    /// Looks up every host of `hosts` at once.
    pub(super) fn round(&self, hosts: Vec<String>) -> Vec<(String, Answer)> {
        let resolver = match &self.resolver {
            Ok(r) => r.clone(),
            Err(e) => {
                return hosts
                    .into_iter()
                    .map(|h| (h, Answer::Failed(e.clone())))
                    .collect()
            }
        };
        let (min, max) = (self.settings.min_ttl, self.settings.max_ttl);
        self.runtime.block_on(async move {
            let mut set = tokio::task::JoinSet::new();
            for host in hosts {
                let resolver = resolver.clone();
                set.spawn(async move {
                    let answer = match resolver.lookup_ip(host.as_str()).await {
                        Ok(found) => {
                            let addresses: Vec<IpAddr> = found.iter().collect();
                            if addresses.is_empty() {
                                Answer::Failed("no A or AAAA record".into())
                            } else {
                                let now = Instant::now();
                                let ttl = found.valid_until().saturating_duration_since(now);
                                Answer::Found(addresses, now + ttl.clamp(min, max))
                            }
                        }
                        Err(e) => Answer::Failed(e.to_string()),
                    };
                    (host, answer)
                });
            }
            let mut out = Vec::new();
            while let Some(done) = set.join_next().await {
                if let Ok(done) = done {
                    out.push(done);
                }
            }
            out
        })
    }
}

/// The resolver: `[dns] servers` alone when given, else `/etc/resolv.conf` with
/// `/etc/hosts` read first (without a readable `/etc/resolv.conf`, `/etc/hosts` alone, and
/// `localhost` which it answers itself). Its own cache keeps answers within the same TTL
/// bounds. Both A and AAAA are asked, IPv4 addresses first (what `logical` takes).
fn build(settings: &DnsSettings) -> Result<TokioResolver, String> {
    let provider = TokioRuntimeProvider::default();
    let mut builder = if settings.servers.is_empty() {
        match TokioResolver::builder(TokioRuntimeProvider::default()) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "dns: cannot read /etc/resolv.conf; names resolve from /etc/hosts only");
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(Vec::new()),
                    provider,
                )
            }
        }
    } else {
        let servers = settings
            .servers
            .iter()
            .map(|s| {
                let mut server = NameServerConfig::udp_and_tcp(s.ip());
                for c in &mut server.connections {
                    c.port = s.port();
                }
                server
            })
            .collect();
        let mut b = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            provider,
        );
        b.options_mut().use_hosts_file = ResolveHosts::Never;
        b
    };
    let opts: &mut ResolverOpts = builder.options_mut();
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    opts.timeout = TIMEOUT;
    opts.attempts = ATTEMPTS;
    opts.positive_min_ttl = Some(settings.min_ttl);
    opts.positive_max_ttl = Some(settings.max_ttl);
    opts.negative_max_ttl = Some(settings.min_ttl);
    builder.build().map_err(|e| e.to_string())
}

/// When the system files the resolver reads were last changed (none with `servers`).
fn stamp(settings: &DnsSettings) -> Vec<Option<SystemTime>> {
    if !settings.servers.is_empty() {
        return Vec::new();
    }
    SYSTEM_FILES
        .iter()
        .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .collect()
}
