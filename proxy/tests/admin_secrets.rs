//! Secrets stay secret (issue 15, section 5), on the real `ringside` binary: a gateway
//! configuration with an inline private key, API keys, an inline JWKS with an HS256 secret and
//! a credential header; no admin answer, log line or access-log line shows any of them. And
//! an admin endpoint bound beyond loopback (a veth address in a network namespace the test
//! creates with `unshare -rn`) serves only `/metrics`, `/ready` and `/live` until
//! `admin_full_access = true`.

#![allow(clippy::unwrap_used)]

#[path = "admin/harness.rs"]
#[allow(dead_code)] // shared with admin.rs, which uses the rest
mod harness;

use std::process::Command;

use harness::*;

const API_KEY: &str = "sk-live-4f8a1c9e";
const HS_SECRET: &str = "aHMyNTYtc2hhcmVkLXNlY3JldC0wMTIzNDU2Nzg5";
const HEADER_SECRET: &str = "Bearer upstream-t0ken-77";

/// Everything here that must never be shown.
fn secrets(key_pem: &str) -> Vec<String> {
    let key_body = key_pem.lines().nth(1).unwrap().to_string();
    vec![
        "PRIVATE KEY".into(),
        key_body,
        API_KEY.into(),
        HS_SECRET.into(),
        HEADER_SECRET.into(),
        "upstream-t0ken".into(),
    ]
}

fn assert_clean(what: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!text.contains(s.as_str()), "{what} shows {s:?}:\n{text}");
    }
}

fn gateway_config(dir: &TempDir, cert: &str, key: &str) -> String {
    let access = dir.0.join("access.log");
    let jwks =
        format!(r#"{{"keys":[{{"kty":"oct","kid":"hs","alg":"HS256","k":"{HS_SECRET}"}}]}}"#);
    format!(
        r#"[proxy]
role = "gateway"
workers = 1
driver = "{driver}"
admin = "127.0.0.1:0"

[[listeners]]
name = "tls"
bind = "127.0.0.1:0"
tls = {{ certificates = [ {{ cert_pem = """
{cert}""", key_pem = """
{key}""" }} ] }}

[[listeners]]
name = "in"
bind = "127.0.0.1:0"
access_log = {{ path = "{access}", format = "json" }}

[[listeners]]
name = "combined"
bind = "127.0.0.1:0"
access_log = {{ path = "{access}.combined", format = "combined" }}

[[routes]]
listener = "in"
name = "api"
authn = {{ api_key = {{ query = "apikey" }} }}
request_headers_to_add = [ {{ name = "authorization", value = "{HEADER_SECRET}" }} ]
direct_response = {{ status = 200, body = "ok" }}

[[routes]]
listener = "combined"
name = "c"
direct_response = {{ status = 200, body = "ok" }}

[[routes]]
listener = "tls"
name = "t"
direct_response = {{ status = 200 }}

[[consumers]]
name = "app"
api_keys = [ {{ key = "{API_KEY}" }} ]

[[jwt_providers]]
name = "hs"
issuer = "me"
jwks = '{jwks}'
"#,
        driver = driver(),
        access = access.display(),
    )
}

#[test]
fn secrets_never_reach_admin_answers_logs_or_access_logs() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.key_pair.serialize_pem());
    let secrets = secrets(&key_pem);
    on_both_drivers(|| {
        let dir = TempDir::new();
        let config = gateway_config(&dir, &cert_pem, &key_pem);
        let mut rs = Ringside::start(&dir, &config, &["--log-level", "trace"]);
        let admin = rs.admin();
        let listener = rs.listener("in");
        let combined = rs.listener("combined");

        // Requests carrying the API key and a token in the query, and a Referer with one.
        let path = format!("/x?apikey={API_KEY}&access_token={HS_SECRET}&page=2");
        let r = send(
            listener,
            "GET",
            &path,
            &[("referer", "http://a/?token=upstream-t0ken-77")],
            "",
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let r = send(
            combined,
            "GET",
            &path,
            &[("referer", "http://a/?token=upstream-t0ken-77")],
            "",
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let r = send(listener, "GET", "/x?apikey=wrong-key-1", &[], "");
        assert_eq!(r.status, 401);

        // Every admin answer.
        let config = get(admin, "/config");
        assert_eq!(config.status, 200);
        let json = config.json();
        let tls = &json["config"]["listeners"][0]["tls"]["certificates"][0];
        assert_eq!(tls["key_pem"], "[redacted]");
        assert!(tls["cert_pem"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE"));
        assert_eq!(
            json["config"]["consumers"][0]["api_keys"][0]["key"],
            "[redacted]"
        );
        let jwks = json["config"]["jwt_providers"][0]["jwks"].as_str().unwrap();
        assert!(
            jwks.contains("\"kid\":\"hs\"") && jwks.contains("[redacted]"),
            "{jwks}"
        );
        for path in [
            "/config",
            "/clusters",
            "/stats",
            "/",
            "/metrics",
            "/log-level",
            "/ready",
        ] {
            let r = get(admin, path);
            assert_eq!(r.status, 200, "{path}: {}", r.body);
            assert_clean(path, &r.body, &secrets);
        }

        // The access logs: the query's credentials are redacted, the rest stays.
        let access = dir.0.join("access.log");
        let line = eventually("two access-log lines", || {
            let t = std::fs::read_to_string(&access).unwrap_or_default();
            (t.lines().count() >= 2).then_some(t)
        });
        assert!(
            line.contains("apikey=[redacted]&access_token=[redacted]&page=2"),
            "{line}"
        );
        assert_clean("the access log", &line, &secrets);
        assert!(!line.contains("wrong-key-1"), "{line}");
        let combined_log = eventually("a combined line", || {
            std::fs::read_to_string(dir.0.join("access.log.combined"))
                .ok()
                .filter(|t| !t.is_empty())
        });
        assert!(combined_log.contains("token=[redacted]"), "{combined_log}");
        assert_clean("the combined access log", &combined_log, &secrets);

        // The process's own log, at trace, after a marker request made last.
        assert_eq!(get(admin, "/live").status, 200);
        eventually("the marker logged", || {
            rs.log_text().contains("path=/live").then_some(())
        });
        assert_clean("the log", &rs.log_text(), &secrets);
    });
}

/// `sh` script run in a new user and network namespace: a veth pair, the proxy's admin on
/// 10.200.0.1:9901 (the namespace is the test's own, so a fixed port collides with nothing),
/// then `curl` prints `METHOD PATH STATUS` for each admin path; after a reload with
/// `admin_full_access = true`, once more.
const NETNS_SCRIPT: &str = r#"
set -e
ip link set lo up
ip link add rs0 type veth peer name rs1
ip addr add 10.200.0.1/24 dev rs0
ip link set rs0 up
ip link set rs1 up
"$RINGSIDE" run --config "$DIR/a.toml" --control-socket "$DIR/ctl.sock" 2>"$DIR/log" &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
ok=0
for i in $(seq 1 200); do
  if curl -s -o /dev/null -m 1 http://10.200.0.1:9901/live; then ok=1; break; fi
  sleep 0.05
done
[ $ok = 1 ] || { echo "admin never answered"; cat "$DIR/log"; exit 1; }
probe() {
  for p in /metrics /ready /live /config /clusters /stats / /log-level; do
    echo "GET $p $(curl -s -o /dev/null -w '%{http_code}' -m 5 http://10.200.0.1:9901$p)"
  done
  echo "POST /log-level $(curl -s -o /dev/null -w '%{http_code}' -m 5 -X POST -d debug http://10.200.0.1:9901/log-level)"
}
probe
echo "--- full access"
cp "$DIR/b.toml" "$DIR/a.toml"
kill -HUP $PID
for i in $(seq 1 200); do
  c=$(curl -s -o /dev/null -w '%{http_code}' -m 1 http://10.200.0.1:9901/config || true)
  [ "$c" = 200 ] && break
  sleep 0.05
done
probe
"#;

#[test]
fn a_non_loopback_admin_serves_metrics_ready_and_live_only() {
    let dir = TempDir::new();
    let config = |full: bool| {
        format!(
            "[proxy]\nworkers = 1\nadmin = \"10.200.0.1:9901\"\nadmin_full_access = {full}\n\
             [[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\
             [[routes]]\nlistener = \"in\"\nname = \"r\"\ndirect_response = {{ status = 200 }}\n"
        )
    };
    dir.write("a.toml", &config(false));
    dir.write("b.toml", &config(true));
    let out = Command::new("unshare")
        .args(["-rn", "sh", "-c", NETNS_SCRIPT])
        .env("RINGSIDE", env!("CARGO_BIN_EXE_ringside"))
        .env("DIR", &dir.0)
        .output()
        .expect("unshare (util-linux) runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the namespace script failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (restricted, full) = text.split_once("--- full access").unwrap();
    let codes = |part: &str| -> Vec<String> { part.lines().map(str::to_string).collect() };
    assert_eq!(
        codes(restricted.trim()),
        [
            "GET /metrics 200",
            "GET /ready 200",
            "GET /live 200",
            "GET /config 404",
            "GET /clusters 404",
            "GET /stats 404",
            "GET / 404",
            "GET /log-level 404",
            "POST /log-level 404",
        ],
        "{text}"
    );
    assert_eq!(
        codes(full.trim()),
        [
            "GET /metrics 200",
            "GET /ready 200",
            "GET /live 200",
            "GET /config 200",
            "GET /clusters 200",
            "GET /stats 200",
            "GET / 200",
            "GET /log-level 200",
            "POST /log-level 200",
        ],
        "{text}"
    );
}
