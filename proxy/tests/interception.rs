//! Traffic interception end to end (docs/interception.md), as in a pod: two network
//! namespaces joined by a veth pair, the pod (10.77.0.1, fd77::1) and the rest of the network
//! (10.77.0.2, fd77::2). In the pod the rules of deploy/interception/ringside-iptables are
//! installed, ringside runs as group 1337 (the rules' `--proxy-gid`), and unmodified clients
//! (curl, a plain TCP client) running as root dial the origin's own address: the connection
//! goes through ringside, the origin sees ringside's headers, and the access log records the
//! original destination. Inbound too (the network dialling the pod's port), the loop guard,
//! TCP listeners, child listeners chosen by the original destination, and `--clean`. Both drivers; IPv4 and IPv6; HTTP/1.1 and h2c from the
//! client, HTTP/1.1 and HTTP/2 (another ringside as the origin) to the destination.
//!
//! Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN), curl and iptables (scripts/install-test-deps):
//! a test that cannot make its namespaces fails and says why. CI runs as root.

#![allow(clippy::unwrap_used)]

#[allow(dead_code)] // admin.rs uses the rest of the harness
#[path = "admin/harness.rs"]
mod harness;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use harness::*;
use ringside_ctl_testkit::in_netns;
use serde_json::Value;

/// The group ringside runs as, which the rules never redirect.
const PROXY_GID: &str = "1337";

/// A named network namespace (`ip netns`), deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str) -> Netns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let name = format!("rs-{tag}-{}-{n}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap_or_else(|e| panic!("cannot run ip(8) to make a network namespace: {e}"));
        assert!(
            out.status.success(),
            "cannot make a network namespace (ip netns add {name}: {}): these tests need root \
             (CAP_SYS_ADMIN and CAP_NET_ADMIN), as CI runs them",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Netns { name }
    }

    fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// `program args...` inside the namespace.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// `ip -n NS args...`.
    fn ip(&self, args: &[&str]) {
        run(Command::new("ip").args(["-n", &self.name]).args(args));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .status();
    }
}

/// Runs a command to completion; its stdout, or a panic with its stderr.
fn run(c: &mut Command) -> String {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"));
    assert!(
        out.status.success(),
        "{c:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The pod and the network beside it.
struct Pod {
    app: Netns,
    net: Netns,
}

impl Pod {
    fn new() -> Pod {
        let pod = Pod {
            app: Netns::new("pod"),
            net: Netns::new("net"),
        };
        pod.app.ip(&[
            "link",
            "add",
            "a0",
            "type",
            "veth",
            "peer",
            "name",
            "b0",
            "netns",
            &pod.net.name,
        ]);
        for (ns, dev, v4, v6) in [
            (&pod.app, "a0", "10.77.0.1/24", "fd77::1/64"),
            (&pod.net, "b0", "10.77.0.2/24", "fd77::2/64"),
        ] {
            ns.ip(&["addr", "add", v4, "dev", dev]);
            ns.ip(&["addr", "add", v6, "dev", dev, "nodad"]);
            ns.ip(&["link", "set", dev, "up"]);
            ns.ip(&["link", "set", "lo", "up"]);
        }
        // Both ends up, and the IPv6 prefix routed (the kernel adds it once the link is).
        for (ns, dev) in [(&pod.app, "a0"), (&pod.net, "b0")] {
            eventually(&format!("{dev} to be up in {}", ns.name), || {
                let link = run(Command::new("ip").args(["-n", &ns.name, "link", "show", dev]));
                let route = run(Command::new("ip").args([
                    "-n",
                    &ns.name,
                    "-6",
                    "route",
                    "show",
                    "fd77::/64",
                ]));
                (link.contains("LOWER_UP") && !route.trim().is_empty()).then_some(())
            });
        }
        pod
    }

    /// deploy/interception/ringside-iptables in the pod.
    fn rules(&self, args: &[&str]) -> String {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy/interception/ringside-iptables")
            .canonicalize()
            .unwrap();
        run(self.app.command(script.to_str().unwrap()).args(args))
    }

    /// The pod's nat table, both families.
    fn nat_rules(&self) -> String {
        let v4 = run(self.app.command("iptables").args(["-t", "nat", "-S"]));
        let v6 = run(self.app.command("ip6tables").args(["-t", "nat", "-S"]));
        v4 + &v6
    }

    /// ringside in the pod, as group `PROXY_GID`.
    fn ringside(&self, dir: &TempDir, config: &str, extra: &[&str]) -> Ringside {
        let mut c = self.app.command("setpriv");
        c.args(["--regid", PROXY_GID, "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_ringside"));
        Ringside::start_as(c, dir, config, extra)
    }
}

/// Binds `addr` inside `ns`.
fn listen_in(ns: &Netns, addr: &'static str) -> TcpListener {
    in_netns(&ns.path(), move || TcpListener::bind(addr))
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("bind {addr}: {e}"))
}

/// An HTTP/1.1 origin in `ns` answering every request with `name` and the request head it
/// received (lower-cased), so a test sees what ringside sent.
fn http_origin(ns: &Netns, addr: &'static str, name: &'static str) {
    let l = listen_in(ns, addr);
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { return };
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn);
                loop {
                    let mut head = String::new();
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line.trim_end().is_empty() {
                            break;
                        }
                        head.push_str(&line.to_ascii_lowercase());
                    }
                    let body = format!("{name}\n{head}");
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if r.get_mut().write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
}

/// A TCP echo server in `ns`.
fn tcp_echo(ns: &Netns, addr: &'static str) {
    let l = listen_in(ns, addr);
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    if conn.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
}

/// A plain TCP client in `ns` (as root: intercepted): sends `said`, ends its side, and
/// returns everything it reads until the other side closes.
fn tcp_exchange(ns: &Netns, to: &'static str, said: &'static str) -> String {
    in_netns(&ns.path(), move || {
        let mut s = TcpStream::connect(to).unwrap();
        s.write_all(said.as_bytes()).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = String::new();
        s.read_to_string(&mut back).unwrap();
        back
    })
    .join()
    .unwrap()
}

/// curl in `ns` (as root: its traffic is intercepted): the status and the body.
fn curl(ns: &Netns, args: &[&str]) -> (u16, String) {
    let out = run(ns
        .command("curl")
        .args(["-sS", "-g", "--max-time", "5", "-w", "\n%{http_code}"])
        .args(args));
    let (body, status) = out.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_string())
}

/// The access log's line for `path` (waits for the writer thread).
fn logged(log: &Path, path: &str) -> Value {
    eventually(&format!("the access log line of {path}"), || {
        let text = std::fs::read_to_string(log).ok()?;
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["path"] == path)
    })
}

fn http_config(log: &Path) -> String {
    let log = log.display();
    format!(
        r#"{proxy}
[[listeners]]
name = "outbound"
bind = "127.0.0.1:15001"
transparent = true
access_log = {{ path = "{log}" }}

[[listeners]]
name = "outbound6"
bind = "[::1]:15001"
transparent = true
access_log = {{ path = "{log}" }}

[[listeners]]
name = "inbound"
bind = "0.0.0.0:15006"
transparent = true
access_log = {{ path = "{log}" }}

# Policy still applies to intercepted traffic, and routes match the original host.
[[routes]]
listener = "outbound"
match = {{ path_prefix = "/private" }}
direct_response = {{ status = 403 }}

# Routed by the original destination's port.
[[routes]]
listener = "outbound"
match = {{ ports = [ 8090 ] }}
cluster = "passthrough-h2"

[[routes]]
listener = "outbound"
name = "by-host"
match = {{ host = "10.77.0.2" }}
cluster = "passthrough"
request_headers_to_add = [ {{ name = "x-route", value = "by-host" }} ]

[[routes]]
listener = "outbound"
cluster = "passthrough"

[[routes]]
listener = "outbound6"
cluster = "passthrough"

[[routes]]
listener = "inbound"
cluster = "passthrough"
request_headers_to_add = [ {{ name = "x-route", value = "inbound" }} ]

[[clusters]]
name = "passthrough"
kind = "original_dst"

[[clusters]]
name = "passthrough-h2"
kind = "original_dst"
protocol = "http2"
"#,
        proxy = proxy_section(1)
    )
}

/// An HTTP/2 (h2c) origin in the network: another ringside answering by itself, with an
/// access log of what it got.
fn h2_origin(pod: &Pod, dir: &TempDir, log: &Path) -> Ringside {
    let config = format!(
        r#"{proxy}
[[listeners]]
name = "origin"
bind = "0.0.0.0:8090"
access_log = {{ path = "{log}" }}

[[routes]]
listener = "origin"
direct_response = {{ status = 200, body = "h2 origin" }}
"#,
        proxy = proxy_section(1),
        log = log.display()
    );
    let mut origin = Ringside::start_as(
        pod.net.command(env!("CARGO_BIN_EXE_ringside")),
        dir,
        &config,
        &[],
    );
    origin.listener("origin");
    origin
}

#[test]
fn http_clients_reach_their_destination_through_ringside() {
    on_both_drivers(|| {
        let pod = Pod::new();
        http_origin(&pod.net, "[::]:8080", "origin");
        http_origin(&pod.app, "0.0.0.0:8081", "workload");
        let rules = [
            "--proxy-gid",
            PROXY_GID,
            "--include-inbound-ports",
            "8081",
            "--ipv6",
        ];
        pod.rules(&rules);
        // Installing again replaces the rules (one jump from OUTPUT per family).
        pod.rules(&rules);
        let nat = pod.nat_rules();
        assert_eq!(
            nat.matches("-A OUTPUT -p tcp -j RINGSIDE_OUTPUT").count(),
            2,
            "{nat}"
        );
        let dir = TempDir::new();
        let log = dir.0.join("access.log");
        let mut rs = pod.ringside(&dir, &http_config(&log), &[]);
        rs.listener("outbound");
        let admin = rs.admin();
        let origin_dir = TempDir::new();
        let origin_log = origin_dir.0.join("access.log");
        let _h2_origin = h2_origin(&pod, &origin_dir, &origin_log);

        // Outbound, IPv4, HTTP/1.1: routed by the original host, forwarded to the origin.
        let (status, body) = curl(&pod.app, &["http://10.77.0.2:8080/v4"]);
        assert_eq!(status, 200, "{body}");
        assert!(body.starts_with("origin\nget /v4 http/1.1"), "{body}");
        assert!(body.contains("\nx-request-id: "), "{body}");
        assert!(body.contains("\nx-route: by-host"), "{body}");
        let line = logged(&log, "/v4");
        assert_eq!(line["original_dst"], "10.77.0.2:8080", "{line}");
        assert_eq!(line["upstream"], "10.77.0.2:8080", "{line}");
        assert_eq!(line["route"], "by-host", "{line}");

        // h2c from the client, HTTP/1.1 to the origin.
        let (status, body) = curl(
            &pod.app,
            &["--http2-prior-knowledge", "http://10.77.0.2:8080/h2"],
        );
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\nx-request-id: "), "{body}");
        let line = logged(&log, "/h2");
        assert_eq!(line["protocol"], "HTTP/2", "{line}");
        assert_eq!(line["original_dst"], "10.77.0.2:8080", "{line}");

        // HTTP/1.1 from the client, HTTP/2 to the original destination (`protocol = "http2"`),
        // on a route that matches its port.
        let (status, body) = curl(&pod.app, &["http://10.77.0.2:8090/h2c/x"]);
        assert_eq!((status, body.as_str()), (200, "h2 origin"));
        let sent = logged(&log, "/h2c/x");
        assert_eq!(sent["upstream"], "10.77.0.2:8090", "{sent}");
        let got = logged(&origin_log, "/h2c/x");
        assert_eq!(got["protocol"], "HTTP/2", "{got}");
        assert_eq!(got["request_id"], sent["request_id"], "{got}");

        // IPv6.
        let (status, body) = curl(&pod.app, &["http://[fd77::2]:8080/v6"]);
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\nx-request-id: "), "{body}");
        let line = logged(&log, "/v6");
        assert_eq!(line["listener"], "outbound6", "{line}");
        assert_eq!(line["original_dst"], "[fd77::2]:8080", "{line}");

        // A route's policy answers without reaching the origin.
        let (status, _) = curl(&pod.app, &["http://10.77.0.2:8080/private"]);
        assert_eq!(status, 403);

        // Inbound: the network dials the pod's port; ringside's inbound listener forwards to
        // the workload.
        let (status, body) = curl(&pod.net, &["http://10.77.0.1:8081/in"]);
        assert_eq!(status, 200, "{body}");
        assert!(body.starts_with("workload\n"), "{body}");
        assert!(body.contains("\nx-route: inbound"), "{body}");
        let line = logged(&log, "/in");
        assert_eq!(line["listener"], "inbound", "{line}");
        assert_eq!(line["original_dst"], "10.77.0.1:8081", "{line}");

        // A connection to the listener itself would loop: refused and counted.
        let (status, body) = curl(&pod.app, &["http://127.0.0.1:15001/loop"]);
        assert_eq!(status, 502, "{body}");
        let line = logged(&log, "/loop");
        assert_eq!(line["original_dst"], "127.0.0.1:15001", "{line}");
        let (_, samples) = in_netns(&pod.app.path(), move || scrape(admin))
            .join()
            .unwrap();
        let loops = value(
            &samples,
            "ringside_original_dst_loops_total",
            &[("cluster", "passthrough")],
        );
        assert_eq!(loops, 1.0);

        // --clean removes every rule: the client then reaches the origin directly.
        assert!(pod.nat_rules().contains("RINGSIDE_OUTPUT"));
        pod.rules(&["--clean", "--ipv6"]);
        pod.rules(&["--clean", "--ipv6"]); // nothing left to remove: still fine
        let rules = pod.nat_rules();
        assert!(!rules.contains("RINGSIDE"), "{rules}");
        let (status, body) = curl(&pod.app, &["http://10.77.0.2:8080/direct"]);
        assert_eq!(status, 200, "{body}");
        assert!(!body.contains("x-request-id"), "{body}");
    });
}

#[test]
fn tcp_clients_reach_their_destination_through_ringside() {
    on_both_drivers(|| {
        let pod = Pod::new();
        tcp_echo(&pod.net, "[::]:9000");
        // Only port 9000 goes to the TCP listener; nothing inbound.
        pod.rules(&[
            "--proxy-gid",
            PROXY_GID,
            "--outbound-port",
            "15002",
            "--include-outbound-ports",
            "9000",
            "--include-inbound-ports",
            "",
            "--ipv6",
        ]);
        let config = format!(
            r#"{proxy}
[[listeners]]
name = "tcp-outbound"
bind = "127.0.0.1:15002"
protocol = "tcp"
cluster = "passthrough"
transparent = true

[[listeners]]
name = "tcp-outbound6"
bind = "[::1]:15002"
protocol = "tcp"
cluster = "passthrough"
transparent = true

[[clusters]]
name = "passthrough"
kind = "original_dst"
"#,
            proxy = proxy_section(1)
        );
        let dir = TempDir::new();
        let filter = "info,ringside_engine::downstream::tcp=debug";
        let mut rs = pod.ringside(&dir, &config, &["--log-level", filter]);
        rs.listener("tcp-outbound");
        for (to, said) in [
            ("10.77.0.2:9000", "over IPv4"),
            ("[fd77::2]:9000", "over IPv6"),
        ] {
            let echoed = tcp_exchange(&pod.app, to, said);
            assert_eq!(echoed, said, "{}", rs.log_text());
            let logged = rs.log_field(&format!("original_dst={to}"), "original_dst");
            assert_eq!(logged, to);
        }
        assert_eq!(
            rs.count_log("tcp connection closed"),
            2,
            "{}",
            rs.log_text()
        );
    });
}

/// ringside in `pod` as Istio's sidecar lays out its outbound side: the rules send every
/// outbound connection to `virtual-outbound` (127.0.0.1:15001), a transparent TCP passthrough
/// to the original destination with `parent_keys`, whose `children` (listeners, routes,
/// clusters) take the connections they match.
fn outbound_parent(pod: &Pod, dir: &TempDir, parent_keys: &str, children: &str) -> Ringside {
    pod.rules(&["--proxy-gid", PROXY_GID, "--include-inbound-ports", ""]);
    let config = format!(
        r#"{proxy}
[[listeners]]
name = "virtual-outbound"
bind = "127.0.0.1:15001"
transparent = true
protocol = "tcp"
cluster = "passthrough"
{parent_keys}
[[clusters]]
name = "passthrough"
kind = "original_dst"

{children}"#,
        proxy = proxy_section(1)
    );
    let mut rs = pod.ringside(dir, &config, &[]);
    rs.listener("virtual-outbound");
    rs
}

/// Istio's outbound layout: one transparent listener accepts every intercepted connection and
/// hands it, by its original destination, to a child listener (`parent`, `match`): an HTTP
/// child for a port, a more specific child for one address on that port, a TCP child for a
/// port of one address, a child terminating TLS; what no child takes, the parent itself
/// serves (a TCP passthrough).
#[test]
fn the_parent_hands_each_connection_to_the_child_its_destination_picks() {
    on_both_drivers(|| {
        let pod = Pod::new();
        pod.net.ip(&["addr", "add", "10.77.0.3/24", "dev", "b0"]);
        http_origin(&pod.net, "[::]:8080", "origin");
        http_origin(&pod.net, "10.77.0.2:9001", "orders");
        tcp_echo(&pod.net, "[::]:9000");
        let dir = TempDir::new();
        let log = dir.0.join("access.log");
        let cert = rcgen::generate_simple_self_signed(vec!["orders.internal".into()]).unwrap();
        let cert_file = dir.write("orders.pem", &cert.cert.pem());
        let key_file = dir.write("orders-key.pem", &cert.key_pair.serialize_pem());
        let children = format!(
            r#"[[listeners]]
name = "out-8080"
parent = "virtual-outbound"
match = {{ ports = [ 8080 ] }}
access_log = {{ path = "{log}" }}

[[routes]]
listener = "out-8080"
cluster = "passthrough"
request_headers_to_add = [ {{ name = "x-listener", value = "out-8080" }} ]

[[listeners]]
name = "out-8080-canary"
parent = "virtual-outbound"
match = {{ ports = [ 8080 ], addresses = [ "10.77.0.3" ] }}
access_log = {{ path = "{log}" }}

[[routes]]
listener = "out-8080-canary"
direct_response = {{ status = 200, body = "canary child" }}

[[listeners]]
name = "out-8443-tls"
parent = "virtual-outbound"
match = {{ ports = [ 8443 ] }}
tls = {{ certificates = [ {{ cert = "{cert}", key = "{key}" }} ] }}
access_log = {{ path = "{log}" }}

[[routes]]
listener = "out-8443-tls"
direct_response = {{ status = 200, body = "tls child" }}

[[listeners]]
name = "orders-9000"
parent = "virtual-outbound"
match = {{ ports = [ 9000 ], addresses = [ "10.77.0.2" ] }}
protocol = "tcp"
cluster = "orders"


[[clusters]]
name = "orders"
endpoints = [ "10.77.0.2:9001" ]
"#,
            log = log.display(),
            cert = cert_file.display(),
            key = key_file.display(),
        );
        let rs = outbound_parent(&pod, &dir, "", &children);

        // Port 8443: a child terminating TLS with its own certificate, HTTP/1.1 and h2.
        for (flag, path, protocol) in [
            ("--http1.1", "/tls-h1", "HTTP/1.1"),
            ("--http2", "/tls-h2", "HTTP/2"),
        ] {
            let url = format!("https://orders.internal:8443{path}");
            let resolve = "orders.internal:8443:10.77.0.2";
            let (status, body) = curl(&pod.app, &["-k", flag, "--resolve", resolve, &url]);
            assert_eq!((status, body.as_str()), (200, "tls child"));
            let line = logged(&log, path);
            assert_eq!(line["listener"], "out-8443-tls", "{line}");
            assert_eq!(line["protocol"], protocol, "{line}");
        }

        // Port 8080: the HTTP child, over HTTP/1.1 and h2c, to the original destination.
        let (status, body) = curl(&pod.app, &["http://10.77.0.2:8080/child"]);
        assert_eq!(status, 200, "{body}");
        assert!(body.starts_with("origin\nget /child http/1.1"), "{body}");
        assert!(body.contains("\nx-listener: out-8080"), "{body}");
        let line = logged(&log, "/child");
        assert_eq!(line["listener"], "out-8080", "{line}");
        assert_eq!(line["original_dst"], "10.77.0.2:8080", "{line}");
        let (status, body) = curl(
            &pod.app,
            &["--http2-prior-knowledge", "http://10.77.0.2:8080/child-h2"],
        );
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\nx-listener: out-8080"), "{body}");
        assert_eq!(logged(&log, "/child-h2")["protocol"], "HTTP/2");

        // The same port on one named address: the more specific child.
        let (status, body) = curl(&pod.app, &["http://10.77.0.3:8080/canary"]);
        assert_eq!((status, body.as_str()), (200, "canary child"));
        assert_eq!(logged(&log, "/canary")["listener"], "out-8080-canary");

        // Port 9000 of 10.77.0.2: the TCP child, whose cluster is another port.
        let said = "GET /tcp-child HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        let got = tcp_exchange(&pod.app, "10.77.0.2:9000", said);
        assert!(got.contains("\r\n\r\norders\nget /tcp-child"), "{got}");

        // Port 9000 of an address no child takes: the parent's own TCP passthrough.
        let echoed = tcp_exchange(&pod.app, "10.77.0.3:9000", "parent");
        assert_eq!(echoed, "parent", "{}", rs.log_text());
    });
}

/// One port, several children told apart by what the connection opens with (Envoy's TLS and
/// HTTP inspectors, as Istio's inbound chains use them): the server name of a ClientHello,
/// TLS or plaintext, HTTP/1.1 or h2c or other bytes; and a client that waits for the server
/// to speak first, which the parent serves as plaintext once its wait ends.
#[test]
fn the_parent_reads_the_first_bytes_when_its_children_need_them() {
    on_both_drivers(|| {
        let pod = Pod::new();
        tcp_echo(&pod.net, "[::]:9000");
        let dir = TempDir::new();
        let log = dir.0.join("access.log");
        let names = vec!["api.example.com".into(), "other.example.com".into()];
        let cert = rcgen::generate_simple_self_signed(names).unwrap();
        let cert_file = dir.write("cert.pem", &cert.cert.pem());
        let key_file = dir.write("key.pem", &cert.key_pair.serialize_pem());
        let tls = format!(
            r#"tls = {{ certificates = [ {{ cert = "{}", key = "{}" }} ] }}"#,
            cert_file.display(),
            key_file.display()
        );
        let children = format!(
            r#"[[listeners]]
name = "http-9000"
parent = "virtual-outbound"
match = {{ ports = [ 9000 ], transport = "plaintext", alpn = [ "http/1.1", "h2c" ] }}
access_log = {{ path = "{log}" }}

[[routes]]
listener = "http-9000"
direct_response = {{ status = 200, body = "http child" }}

[[listeners]]
name = "tcp-9000"
parent = "virtual-outbound"
match = {{ ports = [ 9000 ], transport = "plaintext" }}
protocol = "tcp"
cluster = "passthrough"

[[listeners]]
name = "api-9000"
parent = "virtual-outbound"
match = {{ ports = [ 9000 ], server_names = [ "api.example.com" ] }}
{tls}
access_log = {{ path = "{log}" }}

[[routes]]
listener = "api-9000"
direct_response = {{ status = 200, body = "api child" }}

[[listeners]]
name = "tls-9000"
parent = "virtual-outbound"
match = {{ ports = [ 9000 ], transport = "tls" }}
{tls}
access_log = {{ path = "{log}" }}

[[routes]]
listener = "tls-9000"
direct_response = {{ status = 200, body = "tls child" }}
"#,
            log = log.display(),
        );
        let rs = outbound_parent(&pod, &dir, "", &children);

        // Plaintext HTTP/1.1 and h2c: the HTTP child, which read no byte twice.
        for (args, path, protocol) in [
            (&[][..], "/h1", "HTTP/1.1"),
            (&["--http2-prior-knowledge"][..], "/h2c", "HTTP/2"),
        ] {
            let url = format!("http://10.77.0.2:9000{path}");
            let (status, body) = curl(&pod.app, &[args, &[url.as_str()]].concat());
            assert_eq!((status, body.as_str()), (200, "http child"));
            let line = logged(&log, path);
            assert_eq!(line["listener"], "http-9000", "{line}");
            assert_eq!(line["protocol"], protocol, "{line}");
        }
        // TLS by server name, then any other TLS, HTTP/1.1 and h2 over it.
        for (name, flag, body_is, listener) in [
            ("api.example.com", "--http1.1", "api child", "api-9000"),
            ("api.example.com", "--http2", "api child", "api-9000"),
            ("other.example.com", "--http1.1", "tls child", "tls-9000"),
            ("other.example.com", "--http2", "tls child", "tls-9000"),
        ] {
            let path = format!("/{listener}{flag}");
            let url = format!("https://{name}:9000{path}");
            let resolve = format!("{name}:9000:10.77.0.2");
            let (status, body) = curl(&pod.app, &["-k", flag, "--resolve", &resolve, &url]);
            assert_eq!((status, body.as_str()), (200, body_is), "{url}");
            assert_eq!(logged(&log, &path)["listener"], listener);
        }
        // Other bytes: the TCP child, relaying what was read to decide, then the rest.
        let echoed = tcp_exchange(&pod.app, "10.77.0.2:9000", "\u{1}raw bytes");
        assert_eq!(echoed, "\u{1}raw bytes", "{}", rs.log_text());
        // A client that waits for the server first: after the parent's wait, plaintext.
        let echoed = in_netns(&pod.app.path(), || {
            let mut s = TcpStream::connect("10.77.0.2:9000").unwrap();
            std::thread::sleep(std::time::Duration::from_millis(1300));
            s.write_all(b"late").unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let mut back = String::new();
            s.read_to_string(&mut back).unwrap();
            back
        })
        .join()
        .unwrap();
        assert_eq!(echoed, "late", "{}", rs.log_text());
    });
}

/// `inspect_timeout_ms` and `inspect_on_timeout = "close"` (Envoy's
/// `listener_filters_timeout` without `continue_on_listener_filters_timeout`): a client that
/// has sent nothing decisive by then is closed; one that spoke in time is served.
#[test]
fn a_parent_that_closes_what_it_cannot_tell_in_time() {
    on_both_drivers(|| {
        let pod = Pod::new();
        tcp_echo(&pod.net, "[::]:9000");
        let dir = TempDir::new();
        let children = r#"[[listeners]]
name = "http-9000"
parent = "virtual-outbound"
match = { ports = [ 9000 ], alpn = [ "http/1.1" ] }

[[routes]]
listener = "http-9000"
direct_response = { status = 200, body = "http child" }
"#;
        let rs = outbound_parent(
            &pod,
            &dir,
            r#"inspect_timeout_ms = 300
inspect_on_timeout = "close"
"#,
            children,
        );
        let (status, body) = curl(&pod.app, &["http://10.77.0.2:9000/in-time"]);
        assert_eq!((status, body.as_str()), (200, "http child"));
        // Decided at once (not HTTP): the parent's passthrough, no wait.
        assert_eq!(tcp_exchange(&pod.app, "10.77.0.2:9000", "\u{1}x"), "\u{1}x");
        // Nothing by 300 ms: closed, nothing relayed.
        let got = in_netns(&pod.app.path(), || {
            let mut s = TcpStream::connect("10.77.0.2:9000").unwrap();
            std::thread::sleep(std::time::Duration::from_millis(600));
            let _ = s.write_all(b"late");
            let mut back = Vec::new();
            let _ = s.read_to_end(&mut back);
            back
        })
        .join()
        .unwrap();
        assert!(got.is_empty(), "{got:?} {}", rs.log_text());
    });
}
