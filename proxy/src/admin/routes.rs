//! Path → handler. Each handler gathers what it shows from the `ServerHandle` and the process
//! context at the time of the request; nothing is cached between requests.

use std::time::{SystemTime, UNIX_EPOCH};

use super::http::{form_value, Request, Response};
use super::json::{self, Facts};
use super::prometheus::{self, Scrape, Telemetry};
use super::totals::Totals;
use super::{process, Admin};
use crate::control::ReloadResult;

/// The status page (`GET /`): one self-contained file, no external assets.
pub const STATUS_PAGE: &str = include_str!("status.html");

pub fn handle(admin: &Admin, req: &Request) -> Response {
    if !super::PUBLIC_PATHS.contains(&req.path.as_str()) && !admin.full_access() {
        return Response::text(
            404,
            "not found; on a non-loopback address the admin endpoint serves /metrics, /ready \
             and /live only (proxy.admin_full_access = true serves the rest)",
        );
    }
    let allow = match req.path.as_str() {
        "/" | "/stats" | "/metrics" | "/ready" | "/live" | "/config" | "/clusters" => "GET, HEAD",
        "/log-level" => "GET, HEAD, POST",
        _ => {
            return Response::text(
                404,
                "not found; the admin endpoint serves /, /stats, /metrics, /ready, /live, \
                 /config, /clusters and /log-level",
            )
        }
    };
    // HEAD is answered as GET without the body.
    let method = match req.method.as_str() {
        "HEAD" => "GET",
        m => m,
    };
    match (method, req.path.as_str()) {
        ("GET", "/") => Response::new(200, "text/html; charset=utf-8", STATUS_PAGE),
        ("GET", "/stats") => stats(admin),
        ("GET", "/metrics") => metrics(admin, req.header("accept")),
        ("GET", "/ready") => ready(admin),
        ("GET", "/live") => Response::text(200, "live"),
        ("GET", "/config") => match json::config(&admin.ctx.handle.snapshot()) {
            // Secrets redacted: see `json::config`.
            Ok(v) => Response::json(&v),
            Err(e) => Response::text(500, e),
        },
        ("GET", "/clusters") => Response::json(&json::clusters(
            &admin.ctx.handle.snapshot(),
            &totals(admin),
            &admin.ctx.handle.health(),
        )),
        ("GET", "/log-level") => match &admin.log {
            Some(log) => Response::text(200, log.current()),
            None => Response::text(503, "the log level cannot be changed in this process"),
        },
        ("POST", "/log-level") => set_log_level(admin, req),
        _ => Response::text(405, format!("{} {}: use {allow}", req.method, req.path))
            .with_header("Allow", allow),
    }
}

fn totals(admin: &Admin) -> Totals {
    Totals::merge(&admin.ctx.handle.metrics())
}

/// 200 once the listeners are bound and a configuration is loaded — both true before this
/// endpoint starts — and 503 from the moment a drain begins.
fn ready(admin: &Admin) -> Response {
    if admin.ctx.handle.draining() {
        Response::text(503, "draining")
    } else {
        Response::text(200, "ready")
    }
}

fn metrics(admin: &Admin, accept: Option<&str>) -> Response {
    let handle = &admin.ctx.handle;
    let snap = handle.snapshot();
    let totals = totals(admin);
    let tel = handle.telemetry();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let scrape = Scrape {
        totals: &totals,
        listeners: snap
            .config
            .listeners
            .iter()
            .map(|l| l.name.clone())
            .collect(),
        clusters: snap
            .config
            .clusters
            .iter()
            .map(|c| c.name.clone())
            .collect(),
        generation: snap.generation,
        reloads: ReloadResult::ALL
            .iter()
            .map(|r| (r.label(), admin.ctx.reloads.get(*r)))
            .collect(),
        driver: handle.driver().to_string(),
        workers: handle.workers(),
        draining: handle.draining(),
        ctld_connected: admin.ctx.uses_ctld.then(|| {
            admin
                .ctx
                .ctld_connected
                .load(std::sync::atomic::Ordering::Relaxed)
        }),
        telemetry: Telemetry {
            log_lines_written: load(&tel.log_lines_written),
            log_lines_dropped: load(&tel.log_lines_dropped),
            spans_exported: load(&tel.spans_exported),
            spans_dropped: load(&tel.spans_dropped),
        },
        process: process::read(),
        health: handle.health(),
        jwks: handle.jwks(),
        redis: handle.redis(),
        dns: handle.dns(),
        memory: handle.memory(),
    };
    let openmetrics = prometheus::wants_openmetrics(accept);
    let content_type = if openmetrics {
        prometheus::CONTENT_TYPE_OPENMETRICS
    } else {
        prometheus::CONTENT_TYPE_TEXT
    };
    Response::new(200, content_type, prometheus::render(&scrape, openmetrics))
}

fn stats(admin: &Admin) -> Response {
    let handle = &admin.ctx.handle;
    let snap = handle.snapshot();
    let totals = totals(admin);
    let facts = Facts {
        time: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        uptime_seconds: admin.ctx.started.elapsed().as_secs(),
        node_id: admin.ctx.node_id.clone(),
        driver: handle.driver().to_string(),
        draining: handle.draining(),
        connections: handle.connections(),
        addresses: snap
            .config
            .listeners
            .iter()
            .filter_map(|l| {
                Some((
                    l.name.clone(),
                    handle
                        .local_addr(l.parent.as_deref().unwrap_or(&l.name))?
                        .to_string(),
                ))
            })
            .collect(),
        health: handle.health(),
    };
    Response::json(&json::stats(&snap, &totals, &facts))
}

/// `POST /log-level?level=debug`, or the level as the body (`debug`, or `level=debug`).
fn set_log_level(admin: &Admin, req: &Request) -> Response {
    let Some(log) = &admin.log else {
        return Response::text(503, "the log level cannot be changed in this process");
    };
    let body = String::from_utf8_lossy(&req.body);
    let body = body.trim();
    let level = req.query_param("level").or_else(|| {
        if body.is_empty() {
            None
        } else if body.starts_with("level=") {
            form_value(body, "level")
        } else {
            Some(body.to_string())
        }
    });
    let Some(level) = level else {
        return Response::text(
            400,
            "give the level as ?level=LEVEL or as the request body (off, error, warn, info, \
             debug, trace, or a filter such as info,ringside_engine=debug)",
        );
    };
    match log.set(&level) {
        Ok(now) => {
            tracing::info!(level = %now, "log level changed by the admin endpoint");
            Response::text(200, now)
        }
        Err(e) => Response::text(400, e),
    }
}
