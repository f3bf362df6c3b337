//! CONNECT tunnels for `HTTPS_PROXY` clients: curl through the proxy to a TLS origin and,
//! with `--proxytunnel`, to a plain HTTP origin; raw HTTP/1.1 tunnels to a TCP echo origin
//! (pipelined bytes, half-close, the access log's byte counts); HTTP/2 CONNECT streams (h2c
//! and over TLS); 403 for what no route allows and 400 for a malformed CONNECT, neither
//! forwarded; and the listener's policy applying to tunnels as to any request.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use bytes::Bytes;
use ringside_tests::certs::TestPki;
use ringside_tests::table::{client_runtime, H2Conn, TlsClients};
use ringside_tests::tools::{run_bounded, CURL_LIMIT};
use ringside_tests::*;

/// The tunnel's answer: `200 Connection established` and its `date` (RFC 9110 §6.6.1), whose
/// IMF-fixdate is always 29 bytes long.
const ESTABLISHED_LEN: usize = "HTTP/1.1 200 Connection established\r\nDate: \r\n\r\n".len() + 29;

/// Reads the tunnel's answer off `c` and checks it.
fn read_established(c: &mut Client) {
    let head = String::from_utf8(c.read_exact_bytes(ESTABLISHED_LEN)).unwrap();
    assert!(
        head.starts_with("HTTP/1.1 200 Connection established\r\nDate: ")
            && head.ends_with(" GMT\r\n\r\n"),
        "{head:?}"
    );
}

/// The front proxy: listener `in` (with `listener` lines), a tunnel route per origin, the
/// listener's policy denying `x-deny: 1`, and an ordinary route taking every other request.
fn front(
    listener: &str,
    log: &Path,
    tls_origin: SocketAddr,
    plain: SocketAddr,
    echo: SocketAddr,
) -> String {
    toml(
        r#"
[[listeners]]
name = "in"
bind = "127.0.0.1:0"
access_log = { path = "$log", format = "json" }
$listener

[[authz]]
listener = "in"
action = "deny"
headers = { "x-deny" = "1" }

[[routes]]
listener = "in"
name = "api"
match = { connect = true, host = "api.example.test", ports = [443] }
cluster = "tls-origin"

[[routes]]
listener = "in"
name = "plain"
match = { connect = true, host = "plain.example.test" }
cluster = "plain"

[[routes]]
listener = "in"
name = "echo"
match = { connect = true, host = "echo.example.test", ports = [7] }
cluster = "echo"

[[routes]]
listener = "in"
name = "by-address"
match = { connect = true, host = "127.0.0.1", ports = [$echo_port] }
tunnel_to = "authority"

[[routes]]
listener = "in"
name = "all"
direct_response = { status = 200, body = "not a tunnel" }

[[clusters]]
name = "tls-origin"
endpoints = [ "$tls_origin" ]

[[clusters]]
name = "plain"
endpoints = [ "$plain" ]

[[clusters]]
name = "echo"
endpoints = [ "$echo" ]
"#,
        &[
            ("log", &log.display()),
            ("listener", &listener),
            ("tls_origin", &tls_origin),
            ("plain", &plain),
            ("echo", &echo),
            ("echo_port", &echo.port()),
        ],
    )
}

/// A TLS origin: another ringside with a TLS listener for `api.example.test` answering 200.
fn tls_origin(d: Driver, pki: &TestPki) -> Proxy {
    let (cert, key) = pki.leaf("api", &["api.example.test"], &[]);
    Proxy::start(
        d,
        &format!(
            "[[listeners]]\nname = \"tls\"\nbind = \"127.0.0.1:0\"\n\
             tls = {{ certificates = [ {{ cert = \"{}\", key = \"{}\" }} ] }}\n\
             [[routes]]\nlistener = \"tls\"\ndirect_response = {{ status = 200, body = \"from the tls origin\" }}\n",
            cert.display(),
            key.display()
        ),
    )
}

struct Setup {
    pki: TestPki,
    pki_ca: std::path::PathBuf,
    _origin: Proxy,
    plain: Origin,
    echo: TcpEcho,
    _dir: tempfile::TempDir,
    log: std::path::PathBuf,
    p: Proxy,
}

/// Origins and the front proxy; `tls`: its listener is TLS (certificate for `proxy.test`).
fn setup(d: Driver, tls: bool) -> Setup {
    let pki = TestPki::new();
    let origin = tls_origin(d, &pki);
    let plain = Origin::start(|_| ok("plain origin"));
    let echo = TcpEcho::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.log");
    let listener = if tls {
        let (cert, key) = pki.leaf("proxy", &["proxy.test"], &[]);
        format!(
            "tls = {{ certificates = [ {{ cert = \"{}\", key = \"{}\" }} ] }}",
            cert.display(),
            key.display()
        )
    } else {
        String::new()
    };
    let text = front(
        &listener,
        &log,
        origin.addr("tls"),
        plain.addr(),
        echo.addr(),
    );
    let p = Proxy::start(d, &text);
    Setup {
        pki_ca: pki.ca_path(),
        pki,
        _origin: origin,
        plain,
        echo,
        _dir: dir,
        log,
        p,
    }
}

/// Runs curl with `env` set (HTTPS_PROXY and the like) and no `--noproxy`; returns the
/// CONNECT's status (`%{http_connect}`), the response's, the body and curl's exit code.
fn curl_via(env: &[(&str, String)], args: &[&str]) -> (u16, u16, String, Option<i32>) {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "10",
        "-w",
        "\n@@%{http_connect} %{http_code}",
    ])
    .args(args)
    .env_remove("http_proxy")
    .env_remove("https_proxy")
    .env_remove("HTTPS_PROXY")
    .env_remove("ALL_PROXY")
    .env_remove("NO_PROXY")
    .env_remove("no_proxy");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run_bounded(&mut cmd, CURL_LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, report) = stdout.rsplit_once("\n@@").unwrap_or(("", ""));
    let mut codes = report.split_whitespace().map(|c| c.parse().unwrap_or(0));
    let connect = codes.next().unwrap_or(0);
    let code = codes.next().unwrap_or(0);
    (connect, code, body.to_string(), out.status.code())
}

/// The access log's JSON lines for route `route`, once one has `bytes_out` set.
fn logged(log: &Path, route: &str) -> serde_json::Value {
    let mut found = None;
    eventually(WAIT, || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        found = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["route"] == route);
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("no access-log line for route {route}"))
}

both_drivers!(
    fn https_proxy_clients_reach_a_tls_origin(d) {
        let s = setup(d, false);
        let proxy = format!("http://{}", s.p.addr("in"));
        let ca = s.pki_ca.display().to_string();
        let (connect, code, body, exit) = curl_via(
            &[("HTTPS_PROXY", proxy.clone())],
            &["--cacert", &ca, "https://api.example.test/hello"],
        );
        assert_eq!((connect, code, exit), (200, 200, Some(0)), "{body}");
        assert_eq!(body, "from the tls origin");
        let line = logged(&s.log, "api");
        assert_eq!(line["method"], "CONNECT");
        assert_eq!(line["authority"], "api.example.test:443");
        assert_eq!(line["status"], 200);
        // The tunnel's bytes, both ways: a TLS handshake and one exchange.
        assert!(line["bytes_in"].as_u64().unwrap() > 200, "{line}");
        assert!(line["bytes_out"].as_u64().unwrap() > 500, "{line}");
        // Port 443 only: the same host on another port is refused, never forwarded.
        let (connect, _, _, exit) = curl_via(
            &[("HTTPS_PROXY", proxy)],
            &["--cacert", &ca, "https://api.example.test:8443/hello"],
        );
        assert_eq!(connect, 403);
        assert_ne!(exit, Some(0));
    }
);

both_drivers!(
    fn proxytunnel_carries_plain_http_untouched(d) {
        let s = setup(d, false);
        let proxy = format!("http://{}", s.p.addr("in"));
        let url = format!("http://plain.example.test:{}/hello", s.plain.addr().port());
        let (connect, code, body, _) = curl_via(&[], &["--proxytunnel", "-x", &proxy, &url]);
        assert_eq!((connect, code), (200, 200));
        assert_eq!(body, "plain origin");
        // Through the tunnel the origin gets the client's bytes as they were: no proxy
        // fields were added.
        let got = s.plain.request(0);
        assert_eq!(got.target, "/hello");
        assert!(!got.has_header("x-forwarded-for") && !got.has_header("x-request-id"));
        // Without --proxytunnel the same URL is an ordinary (absolute-form) request, which
        // no tunnel route takes.
        let (_, code, body, _) = curl_via(&[], &["-x", &proxy, &url]);
        assert_eq!((code, body.as_str()), (200, "not a tunnel"));
    }
);

both_drivers!(
    fn a_raw_tunnel_relays_bytes_and_half_close(d) {
        let s = setup(d, false);
        let mut c = Client::connect(s.p.addr("in"));
        // Bytes pipelined after the head are the tunnel's first bytes.
        c.send(b"CONNECT echo.example.test:7 HTTP/1.1\r\nHost: echo.example.test:7\r\n\r\nhello");
        read_established(&mut c);
        assert_eq!(c.read_exact_bytes(5), b"hello");
        let data = pattern(3, 1 << 20);
        let mut w = c.stream().try_clone().unwrap();
        let sent = data.clone();
        let writer = std::thread::spawn(move || std::io::Write::write_all(&mut w, &sent).unwrap());
        assert!(c.read_exact_bytes(data.len()) == data, "1 MiB echoed intact");
        writer.join().unwrap();
        c.shutdown_write();
        assert_eq!(c.read_to_close(), b"bye\n", "the origin's reply after our FIN arrives");
        let line = logged(&s.log, "echo");
        assert_eq!(line["bytes_in"], 5 + (1 << 20));
        assert_eq!(line["bytes_out"], (ESTABLISHED_LEN + 5 + (1 << 20) + 4) as u64);
        assert_eq!(line["upstream"], s.echo.addr().to_string());
        // `tunnel_to = "authority"`: the address the CONNECT names.
        let mut c = Client::connect(s.p.addr("in"));
        let target = s.echo.addr();
        c.send(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\nping").as_bytes());
        read_established(&mut c);
        assert_eq!(c.read_exact_bytes(4), b"ping");
        assert_eq!(s.echo.connections(), 2);
    }
);

both_drivers!(
    fn what_no_route_allows_is_403_and_malformed_is_400(d) {
        let s = setup(d, false);
        let refused = |text: &str, status: u16| {
            let mut c = Client::connect(s.p.addr("in"));
            c.send(text.as_bytes());
            let r = c.read_response_to("CONNECT");
            assert_eq!(r.status, status, "{text:?}: {}", r.head);
            assert!(c.closed_within(WAIT), "{text:?}: the connection closes after a refusal");
        };
        refused("CONNECT other.example.test:443 HTTP/1.1\r\nHost: other.example.test:443\r\n\r\n", 403);
        refused("CONNECT echo.example.test:22 HTTP/1.1\r\nHost: echo.example.test:22\r\n\r\n", 403);
        // An address other than the one `tunnel_to = "authority"` allows.
        refused("CONNECT 127.0.0.2:7 HTTP/1.1\r\nHost: 127.0.0.2:7\r\n\r\n", 403);
        // The listener's policy applies to a tunnel as to any request.
        refused("CONNECT echo.example.test:7 HTTP/1.1\r\nHost: echo.example.test:7\r\nX-Deny: 1\r\n\r\n", 403);
        // Not authority-form: no port, a path, an absolute URI.
        refused("CONNECT echo.example.test HTTP/1.1\r\nHost: echo.example.test\r\n\r\n", 400);
        refused("CONNECT /x HTTP/1.1\r\nHost: echo.example.test:7\r\n\r\n", 400);
        refused("CONNECT http://echo.example.test:7/ HTTP/1.1\r\nHost: echo.example.test:7\r\n\r\n", 400);
        // A declared body: what follows the head is the tunnel's, so it is refused.
        refused("CONNECT echo.example.test:7 HTTP/1.1\r\nHost: echo.example.test:7\r\nContent-Length: 5\r\n\r\nhello", 400);
        refused("CONNECT echo.example.test:7 HTTP/1.1\r\nHost: echo.example.test:7\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400);
        assert_eq!(s.echo.connections(), 0, "nothing refused was forwarded");
        // A tunnel route takes only CONNECTs: a GET for its host goes to the ordinary route.
        let mut c = Client::connect(s.p.addr("in"));
        let r = c.request(b"GET / HTTP/1.1\r\nHost: echo.example.test:7\r\n\r\n");
        assert_eq!((r.status, r.text()), (200, "not a tunnel".to_string()));
    }
);

/// Opens a CONNECT stream on `conn`, sends `ping`, reads it back, ends the stream and reads
/// the echo origin's `bye\n`.
async fn h2_echo(conn: &H2Conn, authority: &str) -> Result<u16, String> {
    let (status, tunnel) = conn.connect_tunnel(authority).await?;
    let Some((mut send, mut recv)) = tunnel else {
        return Ok(status);
    };
    ringside_tests::h2origin::send_all(&mut send, Bytes::from_static(b"ping"), false)
        .await
        .map_err(|e| format!("sending: {e}"))?;
    let mut got = Vec::new();
    let mut ended = false;
    while !ended {
        match monoio::time::timeout(WAIT, recv.data()).await {
            Ok(Some(Ok(data))) => {
                let _ = recv.flow_control().release_capacity(data.len());
                got.extend_from_slice(&data);
                if got == b"ping" {
                    send.send_data(Bytes::new(), true)
                        .map_err(|e| e.to_string())?;
                }
            }
            Ok(None) => ended = true,
            Ok(Some(Err(e))) => return Err(format!("tunnel stream: {e}")),
            Err(_) => return Err(format!("tunnel stalled after {got:?}")),
        }
    }
    if got != b"pingbye\n" {
        return Err(format!(
            "tunnel carried {:?}",
            String::from_utf8_lossy(&got)
        ));
    }
    Ok(status)
}

fn h2_connects(s: &Setup, tls: Option<&TlsClients>) {
    let addr = s.p.addr("in");
    let config = tls.map(|t| (t.h2.clone(), "proxy.test"));
    let rt = &mut client_runtime();
    rt.block_on(async {
        let conn = H2Conn::connect(addr, config).await.unwrap();
        // Two tunnels at once on one connection, then what no route allows.
        let (a, b) = monoio::join!(
            h2_echo(&conn, "echo.example.test:7"),
            h2_echo(&conn, "echo.example.test:7")
        );
        assert_eq!((a, b), (Ok(200), Ok(200)));
        assert_eq!(h2_echo(&conn, "other.example.test:443").await, Ok(403));
        assert_eq!(h2_echo(&conn, "echo.example.test:22").await, Ok(403));
    });
    assert_eq!(s.echo.connections(), 2);
    let line = logged(&s.log, "echo");
    assert_eq!(line["protocol"], "HTTP/2");
    assert_eq!(
        (line["bytes_in"].as_u64(), line["bytes_out"].as_u64()),
        (Some(4), Some(8))
    );
}

both_drivers!(
    fn h2c_connect_streams_are_tunnels(d) {
        let s = setup(d, false);
        h2_connects(&s, None);
    }
);

both_drivers!(
    fn tunnels_over_a_tls_listener(d) {
        let s = setup(d, true);
        // HTTP/1.1 over TLS: curl's HTTPS proxy, then TLS to the origin inside the tunnel.
        let proxy = format!("https://proxy.test:{}", s.p.addr("in").port());
        let resolve = format!("proxy.test:{}:127.0.0.1", s.p.addr("in").port());
        let ca = s.pki_ca.display().to_string();
        let (connect, code, body, exit) = curl_via(
            &[("HTTPS_PROXY", proxy)],
            &["--resolve", &resolve, "--proxy-cacert", &ca, "--cacert", &ca, "https://api.example.test/tls"],
        );
        assert_eq!((connect, code, exit), (200, 200, Some(0)), "{body}");
        assert_eq!(body, "from the tls origin");
        // HTTP/2 over TLS (ALPN h2).
        let (cert, key) = s.pki.leaf("client", &["client.test"], &[]);
        let clients = TlsClients::new(&s.pki_ca, (&cert, &key), "proxy.test");
        h2_connects(&s, Some(&clients));
    }
);
