//! The admin endpoint of the `ringside` binary (docs/admin.md): exact counters in `/metrics`
//! after a known mix of requests, consistent histograms, OpenMetrics, `/ready` during a drain,
//! `/config` across SIGHUP with the reload counters, `/clusters` with passive health, the log
//! level changed at run time, HTTP edge cases, a port in use, a hot upgrade keeping the admin
//! port, and the status page rendered by a real headless Chromium.
//!
//! Self-contained (std + serde_json; the harness is `admin/harness.rs`): configs go to a fresh
//! temp directory, every listener (the admin one too) binds 127.0.0.1:0 and its real address
//! is read from the log. Origins are std threads. Nothing sleeps to synchronise: every wait
//! polls with a deadline.

#![allow(clippy::unwrap_used)]

#[path = "admin/harness.rs"]
mod harness;

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use harness::*;

// ---------------------------------------------------------------------------------------
// /metrics

#[test]
fn metrics_count_a_known_mix_of_requests_exactly() {
    on_both_drivers(|| {
        let origin = Origin::start(|path| match path {
            "/app/fail" => (500, "boom".into()),
            _ => (200, "ok".into()),
        });
        let refused = refused_addr();
        let dir = TempDir::new();
        let config = format!(
            "{}\n[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\n\
             [[routes]]\nlistener = \"in\"\nname = \"app\"\nmatch = {{ path_prefix = \"/app\" }}\ncluster = \"app\"\n\n\
             [[routes]]\nlistener = \"in\"\nname = \"gone\"\nmatch = {{ path_prefix = \"/gone\" }}\ncluster = \"gone\"\n\n\
             [[clusters]]\nname = \"app\"\nendpoints = [\"{}\"]\n\n\
             [[clusters]]\nname = \"gone\"\nendpoints = [\"{refused}\"]\n",
            proxy_section(2),
            origin.addr
        );
        let mut rs = Ringside::start(&dir, &config, &[]);
        let admin = rs.admin();
        let addr = rs.listener("in");

        // Before any request every configured listener and cluster is already exposed.
        let (_, samples) = scrape(admin);
        let count = "ringside_downstream_request_duration_seconds_count";
        assert!(samples
            .iter()
            .any(|s| s.name == count && s.labels["listener"] == "in"));
        assert_eq!(
            value(
                &samples,
                "ringside_upstream_connect_failures_total",
                &[("cluster", "gone")]
            ),
            0.0
        );

        // The mix: 7 × 2xx and 3 × 5xx from the origin, 2 × 404 (no route), 2 × 502
        // (upstream refused); one connection each.
        let mut expect = Vec::new();
        expect.extend(std::iter::repeat_n(("/app/ok", 200), 7));
        expect.extend(std::iter::repeat_n(("/app/fail", 500), 3));
        expect.extend(std::iter::repeat_n(("/nowhere", 404), 2));
        expect.extend(std::iter::repeat_n(("/gone/x", 502), 2));
        for (path, status) in &expect {
            assert_eq!(get(addr, path).status, *status, "{path}");
        }

        // Counters are recorded as each request ends: poll until all 14 are in, then
        // every figure must be exact.
        let total = "ringside_downstream_requests_total";
        let samples = eventually("14 requests counted", || {
            let (_, s) = scrape(admin);
            (sum(&s, total, &[]) >= 14.0
                && sum(&s, "ringside_upstream_requests_total", &[]) >= 10.0)
                .then_some(s)
        });
        let down = |route, class| {
            value(
                &samples,
                total,
                &[("listener", "in"), ("route", route), ("code_class", class)],
            )
        };
        assert_eq!(down("app", "2xx"), 7.0);
        assert_eq!(down("app", "5xx"), 3.0);
        assert_eq!(down("", "4xx"), 2.0);
        assert_eq!(down("gone", "5xx"), 2.0);
        assert_eq!(sum(&samples, total, &[]), 14.0, "nothing else counted");

        let endpoint = origin.addr.to_string();
        let up = |class| {
            value(
                &samples,
                "ringside_upstream_requests_total",
                &[
                    ("cluster", "app"),
                    ("endpoint", &endpoint),
                    ("code_class", class),
                ],
            )
        };
        assert_eq!((up("2xx"), up("5xx"), up("error")), (7.0, 3.0, 0.0));
        assert_eq!(
            sum(
                &samples,
                "ringside_upstream_requests_total",
                &[("cluster", "gone")]
            ),
            0.0,
            "a refused connect is not an exchange"
        );
        assert_eq!(
            value(
                &samples,
                "ringside_upstream_connect_failures_total",
                &[("cluster", "gone")]
            ),
            2.0
        );
        assert_eq!(
            value(
                &samples,
                "ringside_upstream_connect_failures_total",
                &[("cluster", "app")]
            ),
            0.0
        );

        // Histograms: consistent, and counting what the counters count.
        assert_histograms_consistent(&samples, "ringside_downstream_request_duration_seconds");
        assert_histograms_consistent(&samples, "ringside_upstream_request_duration_seconds");
        assert_eq!(value(&samples, count, &[("listener", "in")]), 14.0);
        assert_eq!(
            value(
                &samples,
                "ringside_upstream_request_duration_seconds_count",
                &[("cluster", "app")]
            ),
            10.0
        );

        // Connections: 14 accepted over the two workers; none open any more.
        let accepted = sum(&samples, "ringside_downstream_connections_total", &[]);
        assert_eq!(accepted, 14.0);
        let workers: Vec<_> = samples
            .iter()
            .filter(|s| s.name == "ringside_downstream_connections_total")
            .map(|s| s.labels["worker"].clone())
            .collect();
        assert_eq!(workers, ["0", "1"], "one series per worker");
        let open = eventually("connections closed", || {
            let (_, s) = scrape(admin);
            let n = sum(&s, "ringside_downstream_connections", &[("listener", "in")]);
            (n == 0.0).then_some(n)
        });
        assert_eq!(open, 0.0);
        assert!(samples
            .iter()
            .any(|s| s.name == "ringside_upstream_connections"
                && s.labels["cluster"] == "app"
                && s.labels["state"] == "idle"));

        // Process and build figures.
        let driver = driver();
        assert_eq!(
            value(&samples, "ringside_io_driver", &[("driver", driver)]),
            1.0,
            "driver"
        );
        assert_eq!(
            value(
                &samples,
                "ringside_build_info",
                &[("version", env!("CARGO_PKG_VERSION"))]
            ),
            1.0
        );
        assert_eq!(value(&samples, "ringside_config_generation", &[]), 1.0);
        for name in [
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert!(value(&samples, name, &[]) > 0.0, "{name}");
        }
        assert!(samples
            .iter()
            .any(|s| s.name == "process_cpu_seconds_total"));
        rs.signal("TERM");
        assert!(rs.wait_exit().success());
    });
}

#[test]
fn metrics_text_is_well_formed_and_openmetrics_on_request() {
    let dir = TempDir::new();
    let config = format!(
        "{}\n[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\n\
         [[routes]]\nlistener = \"in\"\nname = \"all.routes-1\"\ndirect_response = {{ status = 200 }}\n",
        proxy_section(1)
    );
    let mut rs = Ringside::start(&dir, &config, &[]);
    let admin = rs.admin();
    let addr = rs.listener("in");
    assert_eq!(get(addr, "/").status, 200);
    let (text, samples) = eventually("the request counted", || {
        let (t, s) = scrape(admin);
        (sum(&s, "ringside_downstream_requests_total", &[]) == 1.0).then_some((t, s))
    });
    // (Names cannot hold characters that need escaping; escaping has unit tests.)
    assert_eq!(
        sum(
            &samples,
            "ringside_downstream_requests_total",
            &[("route", "all.routes-1")]
        ),
        1.0
    );
    // Every family has HELP and TYPE, declared once, before its samples.
    let mut declared: Vec<(String, String)> = Vec::new();
    let mut helped: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.push(rest.split(' ').next().unwrap().to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(helped.contains(&name.to_string()), "no HELP before {line}");
            assert!(
                !declared.iter().any(|(n, _)| n == name),
                "{name} declared twice"
            );
            declared.push((name.to_string(), kind.to_string()));
        } else {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = declared.iter().rev().find(|(n, kind)| {
                name == n
                    || (kind == "histogram"
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| name == format!("{n}{s}")))
            });
            assert!(family.is_some(), "sample {name} outside its family");
            if let Some((n, kind)) = family {
                if kind == "counter" {
                    assert!(n.ends_with("_total"), "counter {n} without _total");
                }
            }
        }
    }
    for family in [
        "ringside_downstream_requests_total",
        "ringside_downstream_request_duration_seconds",
        "ringside_upstream_requests_total",
        "ringside_upstream_request_duration_seconds",
        "ringside_upstream_connect_failures_total",
        "ringside_upstream_connections",
        "ringside_downstream_connections",
        "ringside_downstream_connections_total",
        "ringside_config_generation",
        "ringside_config_reload_total",
        "ringside_io_driver",
        "ringside_build_info",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            declared.iter().any(|(n, _)| n == family),
            "no family {family}"
        );
    }

    let om = send(
        admin,
        "GET",
        "/metrics",
        &[(
            "Accept",
            "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )],
        "",
    );
    assert_eq!(om.status, 200);
    assert!(
        om.head
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{}",
        om.head
    );
    assert!(om.body.ends_with("# EOF\n"), "no # EOF");
    assert!(om
        .body
        .contains("# TYPE ringside_downstream_requests counter\n"));
    let mut families: Vec<&str> = om
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let n = families.len();
    families.sort_unstable();
    families.dedup();
    assert_eq!(
        families.len(),
        n,
        "family names must be unique in OpenMetrics"
    );
    assert_eq!(
        sum(
            &parse_exposition(&om.body),
            "ringside_downstream_requests_total",
            &[]
        ),
        1.0
    );
}

// ---------------------------------------------------------------------------------------
// /ready, /live

#[test]
fn ready_is_200_then_503_while_draining() {
    let (arrived_tx, arrived) = mpsc::channel::<()>();
    let (release_tx, release) = mpsc::channel::<()>();
    let arrived_tx = Mutex::new(arrived_tx);
    let release = Mutex::new(release);
    let origin = Origin::start(move |_| {
        arrived_tx.lock().unwrap().send(()).unwrap();
        let _ = release.lock().unwrap().recv_timeout(WAIT);
        (200, "slow done".into())
    });
    let dir = TempDir::new();
    let config = format!(
        "{}\n[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\n\
         [[routes]]\nlistener = \"in\"\nname = \"slow\"\ncluster = \"slow\"\n\n\
         [[clusters]]\nname = \"slow\"\nendpoints = [\"{}\"]\n",
        proxy_section(1),
        origin.addr
    );
    let mut rs = Ringside::start(&dir, &config, &[]);
    let admin = rs.admin();
    let addr = rs.listener("in");
    let r = get(admin, "/ready");
    assert_eq!((r.status, r.body.as_str()), (200, "ready\n"));
    assert_eq!(get(admin, "/live").status, 200);

    // Hold one request in flight, so that the drain lasts until we let it go.
    let client = std::thread::spawn(move || get(addr, "/slow"));
    arrived
        .recv_timeout(WAIT)
        .expect("the request reached the origin");
    rs.signal("TERM");
    let r = eventually("/ready to say 503", || {
        let r = get(admin, "/ready");
        (r.status == 503).then_some(r)
    });
    assert_eq!(r.body, "draining\n");
    assert_eq!(
        get(admin, "/live").status,
        200,
        "still alive while draining"
    );
    let (_, samples) = scrape(admin);
    assert_eq!(value(&samples, "ringside_draining", &[]), 1.0);
    release_tx.send(()).unwrap();
    let r = client.join().unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "slow done"));
    assert!(rs.wait_exit().success(), "log:\n{}", rs.log_text());
}

// ---------------------------------------------------------------------------------------
// /config and the reload counters

fn direct_config(body: &str, extra_listener: Option<SocketAddr>) -> String {
    let mut c = format!(
        "{}\n[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\n\
         [[routes]]\nlistener = \"in\"\nname = \"all\"\ndirect_response = {{ status = 200, body = \"{body}\" }}\n",
        proxy_section(1)
    );
    if let Some(a) = extra_listener {
        c.push_str(&format!(
            "\n[[listeners]]\nname = \"taken\"\nbind = \"{a}\"\n\n\
             [[routes]]\nlistener = \"taken\"\nname = \"t\"\ndirect_response = {{ status = 200 }}\n"
        ));
    }
    c
}

fn reloads(admin: SocketAddr) -> (f64, f64, f64) {
    let (_, s) = scrape(admin);
    let r = |result| value(&s, "ringside_config_reload_total", &[("result", result)]);
    (r("ok"), r("invalid"), r("failed"))
}

#[test]
fn config_json_follows_sighup_and_reloads_are_counted() {
    let dir = TempDir::new();
    let mut rs = Ringside::start(&dir, &direct_config("one", None), &[]);
    let admin = rs.admin();
    let c = get(admin, "/config");
    assert_eq!(c.status, 200);
    assert!(
        c.head.contains("content-type: application/json"),
        "{}",
        c.head
    );
    let c = c.json();
    assert_eq!(c["generation"], 1);
    assert_eq!(c["config"]["routes"][0]["direct_response"]["body"], "one");
    assert_eq!(c["config"]["proxy"]["admin"], "127.0.0.1:0");
    assert_eq!(c["config"]["proxy"]["workers"], 1);
    let hash1 = c["config_hash"].as_str().unwrap().to_string();
    assert_eq!(hash1.len(), 16);
    assert_eq!(reloads(admin), (0.0, 0.0, 0.0));

    // A valid change: generation 2, new content, new hash; counted "ok".
    dir.write("ringside.toml", &direct_config("two", None));
    rs.signal("HUP");
    let c = eventually("generation 2 in /config", || {
        let c = get(admin, "/config").json();
        (c["generation"] == 2).then_some(c)
    });
    assert_eq!(c["config"]["routes"][0]["direct_response"]["body"], "two");
    assert_ne!(c["config_hash"].as_str().unwrap(), hash1);
    assert_eq!(reloads(admin), (1.0, 0.0, 0.0));
    let (_, s) = scrape(admin);
    assert_eq!(value(&s, "ringside_config_generation", &[]), 2.0);

    // An invalid file: rejected, counted "invalid", the generation stays.
    dir.write(
        "ringside.toml",
        "[[listeners]]\nname = \"in\"\nbind = \"nope\"\n",
    );
    rs.signal("HUP");
    eventually("an invalid reload counted", || {
        (reloads(admin) == (1.0, 1.0, 0.0)).then_some(())
    });
    assert_eq!(get(admin, "/config").json()["generation"], 2);

    // A valid file that cannot be applied (a port in use): counted "failed".
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = busy.local_addr().unwrap();
    dir.write("ringside.toml", &direct_config("three", Some(taken)));
    rs.signal("HUP");
    eventually("a failed reload counted", || {
        (reloads(admin) == (1.0, 1.0, 1.0)).then_some(())
    });
    assert_eq!(get(admin, "/config").json()["generation"], 2);
    drop(busy);

    // The admin endpoint itself is not reconfigured by a reload.
    let moved =
        direct_config("four", None).replace("admin = \"127.0.0.1:0\"", "admin = \"127.0.0.1:1\"");
    dir.write("ringside.toml", &moved);
    rs.signal("HUP");
    let c = eventually("generation 3", || {
        let c = get(admin, "/config").json();
        (c["generation"] == 3).then_some(c)
    });
    assert_eq!(c["config"]["proxy"]["admin"], "127.0.0.1:1");
    assert_eq!(
        get(admin, "/live").status,
        200,
        "still on its first address"
    );
}

// ---------------------------------------------------------------------------------------
// /clusters

#[test]
fn clusters_show_endpoints_with_weights_counters_and_health() {
    let origin = Origin::start(|_| (200, "ok".into()));
    let refused = refused_addr();
    let dir = TempDir::new();
    let config = format!(
        "{}\n[[listeners]]\nname = \"in\"\nbind = \"127.0.0.1:0\"\n\n\
         [[routes]]\nlistener = \"in\"\nname = \"app\"\ncluster = \"app\"\n\n\
         [[clusters]]\nname = \"app\"\nlb = \"round_robin\"\nfail_timeout_ms = 60000\n\
         endpoints = [{{ address = \"{}\", weight = 3 }}, {{ address = \"{refused}\", weight = 1 }}]\n\n\
         [[clusters]]\nname = \"spare\"\nlb = \"least_request\"\nendpoints = [\"{}\"]\n",
        proxy_section(1),
        origin.addr,
        origin.addr
    );
    let mut rs = Ringside::start(&dir, &config, &[]);
    let admin = rs.admin();
    let addr = rs.listener("in");
    // Round robin reaches the refused endpoint within four picks; its failed connect ejects
    // it and the request is retried on the other one, so every answer is 200.
    for _ in 0..4 {
        assert_eq!(get(addr, "/").status, 200);
    }
    let v = eventually("4 exchanges in /clusters", || {
        let v = get(admin, "/clusters").json();
        (v["clusters"][0]["requests"] == 4).then_some(v)
    });
    assert_eq!(v["generation"], 1);
    let app = &v["clusters"][0];
    assert_eq!(app["name"], "app");
    assert_eq!(app["lb"], "round_robin");
    assert_eq!(app["healthy_endpoints"], 1);
    assert_eq!(app["connect_failures"], 1);
    let good = &app["endpoints"][0];
    assert_eq!(good["address"], origin.addr.to_string());
    assert_eq!(good["weight"], 3);
    assert_eq!(good["health"], "healthy");
    assert_eq!(good["requests"], 4);
    assert_eq!(good["responses"]["2xx"], 4);
    assert_eq!(good["errors"], 0);
    let bad = &app["endpoints"][1];
    assert_eq!(bad["address"], refused.to_string());
    assert_eq!(bad["weight"], 1);
    assert_eq!(bad["health"], "ejected");
    assert_eq!(bad["times_ejected"], 1);
    assert!(
        bad["ejected_ms"]
            .as_u64()
            .is_some_and(|ms| ms > 0 && ms <= 60_000),
        "{bad}"
    );
    assert_eq!(
        bad["health_check"],
        serde_json::Value::Null,
        "no health_check configured"
    );
    assert_eq!(bad["connect_failures"], 1);
    assert_eq!(bad["requests"], 0);
    for key in ["active", "idle"] {
        assert!(good[key].is_u64(), "{key}: {good}");
    }
    // The pooled connection shows as idle here and in /metrics alike.
    let idle = eventually("the connection back in the pool", || {
        let v = get(admin, "/clusters").json();
        let e = &v["clusters"][0]["endpoints"][0];
        (e["active"] == 0 && e["idle"] == 1).then_some(1.0)
    });
    let (_, s) = scrape(admin);
    assert_eq!(
        value(
            &s,
            "ringside_upstream_connections",
            &[("cluster", "app"), ("state", "idle")]
        ),
        idle
    );
    let spare = &v["clusters"][1];
    assert_eq!(spare["name"], "spare");
    assert_eq!(spare["lb"], "least_request");
    assert_eq!(spare["requests"], 0);
    assert_eq!(spare["endpoints"][0]["health"], "healthy");
}

// ---------------------------------------------------------------------------------------
// /log-level

#[test]
fn log_level_changes_at_run_time() {
    let dir = TempDir::new();
    let mut rs = Ringside::start(&dir, &direct_config("hi", None), &["--log-level", "info"]);
    let admin = rs.admin();
    let r = get(admin, "/log-level");
    assert_eq!((r.status, r.body.as_str()), (200, "info\n"));
    // Each admin request is logged at debug: nothing at info.
    assert_eq!(get(admin, "/live").status, 200);
    assert_eq!(rs.count_log("admin request"), 0, "{}", rs.log_text());

    let r = send(admin, "POST", "/log-level?level=debug", &[], "");
    assert_eq!((r.status, r.body.as_str()), (200, "debug\n"));
    assert_eq!(get(admin, "/live").status, 200);
    eventually("a debug line", || {
        (rs.count_log("admin request") > 0).then_some(())
    });
    assert!(rs.log_text().contains("DEBUG"));

    // A bad level is refused and changes nothing.
    let r = send(admin, "POST", "/log-level", &[], "loud");
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("loud"), "{}", r.body);
    assert_eq!(get(admin, "/log-level").body, "debug\n");
    let r = send(admin, "POST", "/log-level", &[], "");
    assert_eq!(r.status, 400, "no level at all");

    // The level in the body, plain or form-encoded; at warn, admin requests are not logged.
    let r = send(admin, "POST", "/log-level", &[], "level=warn");
    assert_eq!((r.status, r.body.as_str()), (200, "warn\n"));
    for _ in 0..3 {
        assert_eq!(get(admin, "/live").status, 200);
    }
    // A directive list; then a marker request, after which every earlier line has arrived.
    let r = send(
        admin,
        "POST",
        "/log-level",
        &[],
        "warn,ringside_proxy=debug",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(get(admin, "/ready").status, 200);
    let logged = |path: &str| {
        let needle = format!("path={path} ");
        let log = rs.log.lock().unwrap();
        log.iter()
            .filter(|l| l.contains("admin request") && l.contains(&needle))
            .count()
    };
    eventually("the marker request logged", || {
        (logged("/ready") == 1).then_some(())
    });
    assert_eq!(
        logged("/live"),
        1,
        "only the /live made at debug is logged:\n{}",
        rs.log_text()
    );
}

// ---------------------------------------------------------------------------------------
// HTTP edges, startup errors, upgrade

#[test]
fn unknown_paths_wrong_methods_and_oversized_requests() {
    let dir = TempDir::new();
    let mut rs = Ringside::start(&dir, &direct_config("hi", None), &[]);
    let admin = rs.admin();
    assert_eq!(get(admin, "/nope").status, 404);
    let r = send(admin, "DELETE", "/metrics", &[], "");
    assert_eq!(r.status, 405);
    assert!(r.head.contains("allow: get, head"), "{}", r.head);
    let r = send(admin, "POST", "/ready", &[], "");
    assert_eq!(r.status, 405);
    let r = send(admin, "PUT", "/log-level", &[], "debug");
    assert_eq!(r.status, 405);
    assert!(r.head.contains("allow: get, head, post"), "{}", r.head);
    let r = send(admin, "HEAD", "/metrics", &[], "");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    let big = "x".repeat(10_000);
    let r = send(admin, "GET", "/live", &[("X-Big", &big)], "");
    assert_eq!(r.status, 431);
    let r = send(admin, "POST", "/log-level", &[], &"d".repeat(5000));
    assert_eq!(r.status, 413);
    let r = get(admin, "/");
    assert_eq!(r.status, 200);
    assert!(r.head.contains("content-type: text/html"), "{}", r.head);
    assert!(
        !r.body.contains("http://") && !r.body.contains("https://"),
        "external assets"
    );
    // A connection that sends nothing is closed after the deadline, not held forever.
    let mut idle = TcpStream::connect(admin).unwrap();
    idle.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(idle.read(&mut buf).unwrap_or(0), 0);
}

#[test]
fn an_admin_port_in_use_is_a_startup_error() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = busy.local_addr().unwrap();
    let dir = TempDir::new();
    let config = direct_config("hi", None)
        .replace("admin = \"127.0.0.1:0\"", &format!("admin = \"{taken}\""));
    let mut rs = Ringside::start(&dir, &config, &[]);
    let status = rs.wait_exit();
    assert_eq!(status.code(), Some(1), "log:\n{}", rs.log_text());
    let needle = format!("cannot bind the admin endpoint (proxy.admin) {taken}");
    eventually("the error on stderr", || {
        (rs.count_log(&needle) == 1).then_some(())
    });
    assert_eq!(
        rs.count_log("listening"),
        0,
        "nothing started: {}",
        rs.log_text()
    );
}

#[test]
fn a_hot_upgrade_keeps_serving_the_admin_port() {
    use ringside_wire::{client_handshake, Conn, Peer, Reply, Request};
    // A fixed port, so that the new process binds the very same one.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = TempDir::new();
    let config = direct_config("hi", None).replace(
        "admin = \"127.0.0.1:0\"",
        &format!("admin = \"127.0.0.1:{port}\""),
    );
    let mut old = Ringside::start(&dir, &config, &[]);
    let admin = old.admin();
    assert_eq!(admin.port(), port);
    assert_eq!(get(admin, "/stats").json()["pid"], old.child.id());
    let mut c = Conn::connect(dir.0.join("ctl.sock")).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    client_handshake(&mut c, Peer::Cli).unwrap();
    let reply = c
        .call(Request::Upgrade {
            binary: env!("CARGO_BIN_EXE_ringside").into(),
            args: Vec::new(),
        })
        .unwrap();
    assert!(
        matches!(reply, Reply::Upgraded { .. }),
        "{reply:?}; log:\n{}",
        old.log_text()
    );
    assert!(old.wait_exit().success());
    // The new process answers on the same admin port.
    let after = eventually("the new process on the admin port", || {
        let r = get(admin, "/stats");
        (r.status == 200).then(|| r.json())
    });
    assert_ne!(after["pid"], old.child.id());
    assert_eq!(get(admin, "/ready").status, 200);
    // The control socket is the new process's once it has bound it again.
    let mut c = eventually("the new process's control socket", || {
        let mut c = Conn::connect(dir.0.join("ctl.sock")).ok()?;
        client_handshake(&mut c, Peer::Cli).ok()?;
        Some(c)
    });
    assert_eq!(c.call(Request::Drain).unwrap(), Reply::Ok);
    eventually("the new process gone", || {
        TcpStream::connect(admin).is_err().then_some(())
    });
}

// ---------------------------------------------------------------------------------------
// The status page in a real browser

#[test]
fn status_page_renders_in_headless_chromium() {
    let browser = chromium(); // fail first, with the install hint, if there is none
    let origin = Origin::start(|_| (200, "ok".into()));
    let dir = TempDir::new();
    let config = format!(
        "{}\n[[listeners]]\nname = \"edge\"\nbind = \"127.0.0.1:0\"\n\n\
         [[routes]]\nlistener = \"edge\"\nname = \"api\"\nmatch = {{ path_prefix = \"/api\" }}\ncluster = \"backend\"\n\n\
         [[routes]]\nlistener = \"edge\"\nname = \"static\"\ndirect_response = {{ status = 200, body = \"s\" }}\n\n\
         [[clusters]]\nname = \"backend\"\nendpoints = [\"{}\"]\n",
        proxy_section(2),
        origin.addr
    );
    let mut rs = Ringside::start(&dir, &config, &[]);
    let admin = rs.admin();
    let addr = rs.listener("edge");
    let traffic = Traffic::start(addr, &["/api/a", "/api/b", "/static"]);
    traffic.wait_for(50);
    // Under virtual time the page's polls are real milliseconds apart, so a rate is the
    // traffic of that short window: on a starved machine it may be zero (or the browser
    // slow), and the page is loaded again, within a deadline.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut attempt = 0;
    let dom = loop {
        attempt += 1;
        let profile = dir.0.join(format!("chromium-profile-{attempt}"));
        let started = Instant::now();
        let dom = dump_dom(
            &browser,
            &format!("http://{admin}/"),
            &profile,
            Duration::from_secs(60),
        );
        eprintln!("chromium attempt {attempt}: {:?}", started.elapsed());
        let out_of_time = Instant::now() > deadline;
        match dom {
            Some(dom)
                if out_of_time || element_text(&dom, "total-rate").parse().unwrap_or(0.0) > 0.0 =>
            {
                break dom
            }
            None if out_of_time => panic!("chromium never finished loading the page"),
            _ => {}
        }
    };
    traffic.stop();

    for name in ["edge", "api", "static", "backend", &origin.addr.to_string()] {
        assert!(
            dom.contains(&format!(">{name}<")),
            "{name} not shown:\n{dom}"
        );
    }
    let total: f64 = element_text(&dom, "total-rate")
        .parse()
        .unwrap_or_else(|_| panic!("no total rate in\n{dom}"));
    assert!(total > 0.0, "total request rate {total}:\n{dom}");
    assert!(row_rate(&dom, "listener", "edge") > 0.0, "{dom}");
    assert!(row_rate(&dom, "route", "edge/api") > 0.0, "{dom}");
    assert!(row_rate(&dom, "cluster", "backend") > 0.0, "{dom}");
    assert!(
        element_text(&dom, "summary").contains("generation 1"),
        "{dom}"
    );
    assert!(
        !element_text(&dom, "status").contains("cannot"),
        "the page could not poll /stats:\n{dom}"
    );
}
