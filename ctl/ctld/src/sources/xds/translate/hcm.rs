//! The connection settings of a `HttpConnectionManager` → the keys of its listener. Each
//! honoured field is taken out of the message; the caller NACKs whatever is left
//! (`nack::leftover`), naming it.
//!
//! | HCM | listener |
//! |---|---|
//! | `common_http_protocol_options.idle_timeout` | `idle_timeout_ms` (0, Envoy's "none", is refused) |
//! | `common_http_protocol_options.max_headers_count` | `max_headers` |
//! | `max_request_headers_kb` | `max_header_bytes` |
//! | `request_headers_timeout` | `request_head_timeout_ms` (0, "none": ringside's default bound stays) |
//! | `http2_protocol_options` streams, windows, `connection_keepalive` | `http2` |
//! | `http_protocol_options.accept_http_10`, `allow_absolute_url: true` | (what ringside does) |
//! | `server_name` under `server_header_transformation` | a `server` response edit |
//! | `forward_client_cert_details`, `set_current_client_cert_details` | `forward_client_cert`, `client_cert_details` (`by`, `hash` and what is set) |
//! | `normalize_path`, `merge_slashes`, `path_with_escaped_slashes_action` (not `UNESCAPE_AND_REDIRECT`) | `normalize_path`, `merge_slashes`, `escaped_slashes` |
//! | `use_remote_address`, `generate_request_id: true`, `preserve_external_request_id` | (what ringside does; `use_remote_address: false` is counted) |

use std::mem::take;

use envoy_types::pb::envoy::config::core::v3::{
    Http1ProtocolOptions, Http2ProtocolOptions, HttpProtocolOptions, KeepaliveSettings,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::http_connection_manager::{
    ForwardClientCertDetails, PathWithEscapedSlashesAction, ServerHeaderTransformation,
};
use envoy_types::pb::envoy::extensions::filters::network::http_connection_manager::v3::HttpConnectionManager;
use toml::Value;

use super::{int, ms, string, Table};
use crate::sources::xds::nack::{leftover, unsupported, Res};

/// Takes the honoured settings out of `h` into the listener table `t`.
pub fn settings(
    h: &mut HttpConnectionManager,
    at: &str,
    t: &mut Table,
    ignored: &mut Vec<String>,
) -> Res<()> {
    if let Some(o) = h.common_http_protocol_options.take() {
        common(o, &format!("{at}.common_http_protocol_options"), t)?;
    }
    if let Some(kb) = h.max_request_headers_kb.take() {
        t.insert(
            "max_header_bytes".into(),
            int(i64::from(kb.value).saturating_mul(1024)),
        );
    }
    if let Some(d) = h.request_headers_timeout.take() {
        // 0 is Envoy's "no timeout": ringside always bounds the head (its default).
        if ms(&d) > 0 {
            t.insert("request_head_timeout_ms".into(), int(ms(&d)));
        }
    }
    if let Some(o) = h.http2_protocol_options.take() {
        let h2 = http2(o, &format!("{at}.http2_protocol_options"))?;
        if !h2.is_empty() {
            t.insert("http2".into(), Value::Table(h2));
        }
    }
    if let Some(o) = h.http_protocol_options.take() {
        http1(o, &format!("{at}.http_protocol_options"))?;
    }
    server(h, at, t)?;
    path(h, at, t)?;
    xfcc(h, at, t)?;
    // ringside takes the peer's address as the client's and appends it to X-Forwarded-For,
    // as Envoy does with `use_remote_address: true`. With `false` Envoy would not append.
    if h.use_remote_address.take().is_some_and(|b| !b.value) {
        ignored.push("field:use_remote_address".into());
    }
    match h.generate_request_id.take() {
        Some(b) if !b.value => {
            return Err(unsupported(
                &format!("{at}.generate_request_id"),
                "false (ringside gives every request an x-request-id)",
            ))
        }
        _ => {}
    }
    // ringside keeps a client's x-request-id.
    h.preserve_external_request_id = false;
    Ok(())
}

fn common(mut o: HttpProtocolOptions, at: &str, t: &mut Table) -> Res<()> {
    if let Some(d) = o.idle_timeout.take() {
        if ms(&d) == 0 {
            return Err(unsupported(
                &format!("{at}.idle_timeout"),
                "0 (no idle timeout)",
            ));
        }
        t.insert("idle_timeout_ms".into(), int(ms(&d)));
    }
    if let Some(n) = o.max_headers_count.take() {
        t.insert("max_headers".into(), int(n.value));
    }
    leftover(&o, at)
}

fn http2(mut o: Http2ProtocolOptions, at: &str) -> Res<Table> {
    let mut h2 = Table::new();
    let sizes = [
        ("max_concurrent_streams", o.max_concurrent_streams.take()),
        (
            "initial_stream_window_bytes",
            o.initial_stream_window_size.take(),
        ),
        (
            "initial_connection_window_bytes",
            o.initial_connection_window_size.take(),
        ),
    ];
    for (key, v) in sizes {
        if let Some(v) = v {
            h2.insert(key.into(), int(v.value));
        }
    }
    if let Some(k) = o.connection_keepalive.take() {
        keepalive(k, &format!("{at}.connection_keepalive"), &mut h2)?;
    }
    leftover(&o, at)?;
    Ok(h2)
}

fn keepalive(mut k: KeepaliveSettings, at: &str, h2: &mut Table) -> Res<()> {
    // Without an interval Envoy pings only after `connection_idle_interval`, which ringside
    // has no equivalent of.
    let interval =
        k.interval.take().filter(|d| ms(d) > 0).ok_or_else(|| {
            unsupported(&format!("{at}.interval"), "keepalive without an interval")
        })?;
    h2.insert("keepalive_interval_ms".into(), int(ms(&interval)));
    if let Some(d) = k.timeout.take().filter(|d| ms(d) > 0) {
        h2.insert("keepalive_timeout_ms".into(), int(ms(&d)));
    }
    leftover(&k, at)
}

fn http1(mut o: Http1ProtocolOptions, at: &str) -> Res<()> {
    // ringside serves HTTP/1.0 and absolute-form targets.
    o.accept_http_10 = false;
    if o.allow_absolute_url.take().is_some_and(|b| !b.value) {
        return Err(unsupported(
            &format!("{at}.allow_absolute_url"),
            "false (ringside routes absolute-form targets)",
        ));
    }
    leftover(&o, at)
}

/// `server_name`: Envoy's `Server` on the responses it relays → a response edit of the
/// listener (OVERWRITE → `overwrite`, APPEND_IF_ABSENT → `add_if_absent`; PASS_THROUGH relays
/// the origin's, as ringside does without an edit).
fn server(h: &mut HttpConnectionManager, at: &str, t: &mut Table) -> Res<()> {
    let name = take(&mut h.server_name);
    let action = match ServerHeaderTransformation::try_from(h.server_header_transformation) {
        Ok(ServerHeaderTransformation::Overwrite) => "overwrite",
        Ok(ServerHeaderTransformation::AppendIfAbsent) => "add_if_absent",
        Ok(ServerHeaderTransformation::PassThrough) => "",
        Err(_) => {
            return Err(unsupported(
                &format!("{at}.server_header_transformation"),
                format!("value {}", h.server_header_transformation),
            ))
        }
    };
    h.server_header_transformation = 0;
    if name.is_empty() || action.is_empty() {
        return Ok(());
    }
    let mut edit = Table::new();
    edit.insert("name".into(), string("server"));
    // Literal in Envoy; `%` would start a substitution in ringside's value.
    edit.insert("value".into(), string(name.replace('%', "%%")));
    edit.insert("action".into(), string(action));
    t.insert(
        "response_headers_to_add".into(),
        Value::Array(vec![Value::Table(edit)]),
    );
    Ok(())
}

/// What the listener does to request paths: Envoy's three settings are ringside's three keys
/// (docs/config.md). A `false` or default writes nothing (ringside's default is Envoy's).
fn path(h: &mut HttpConnectionManager, at: &str, t: &mut Table) -> Res<()> {
    if h.normalize_path.take().is_some_and(|b| b.value) {
        t.insert("normalize_path".into(), Value::Boolean(true));
    }
    if take(&mut h.merge_slashes) {
        t.insert("merge_slashes".into(), Value::Boolean(true));
    }
    let action = take(&mut h.path_with_escaped_slashes_action);
    let value = match PathWithEscapedSlashesAction::try_from(action) {
        Ok(
            PathWithEscapedSlashesAction::ImplementationSpecificDefault
            | PathWithEscapedSlashesAction::KeepUnchanged,
        ) => return Ok(()),
        Ok(PathWithEscapedSlashesAction::RejectRequest) => "reject",
        Ok(PathWithEscapedSlashesAction::UnescapeAndForward) => "unescape",
        Ok(PathWithEscapedSlashesAction::UnescapeAndRedirect) => {
            return Err(unsupported(
                &format!("{at}.path_with_escaped_slashes_action"),
                "UNESCAPE_AND_REDIRECT (ringside keeps, rejects or unescapes and forwards)",
            ))
        }
        Err(_) => {
            return Err(unsupported(
                &format!("{at}.path_with_escaped_slashes_action"),
                format!("value {action}"),
            ))
        }
    };
    t.insert("escaped_slashes".into(), string(value));
    Ok(())
}

/// `forward_client_cert_details` → `forward_client_cert`, always written: Envoy's default is
/// SANITIZE, ringside's SANITIZE_SET. With SANITIZE_SET and APPEND_FORWARD, the proxy's own
/// element: Envoy always writes `By` and `Hash`, then what `set_current_client_cert_details`
/// asks for (subject, cert, chain, URI, DNS) → `client_cert_details`.
fn xfcc(h: &mut HttpConnectionManager, at: &str, t: &mut Table) -> Res<()> {
    let mode = take(&mut h.forward_client_cert_details);
    let (value, sets) = match ForwardClientCertDetails::try_from(mode) {
        Ok(ForwardClientCertDetails::Sanitize) => ("sanitize", false),
        Ok(ForwardClientCertDetails::ForwardOnly) => ("forward_only", false),
        Ok(ForwardClientCertDetails::AppendForward) => ("append_forward", true),
        Ok(ForwardClientCertDetails::SanitizeSet) => ("sanitize_set", true),
        Ok(ForwardClientCertDetails::AlwaysForwardOnly) => ("always_forward_only", false),
        Err(_) => {
            return Err(unsupported(
                &format!("{at}.forward_client_cert_details"),
                format!("value {mode}"),
            ))
        }
    };
    t.insert("forward_client_cert".into(), string(value));
    let d = h.set_current_client_cert_details.take().unwrap_or_default();
    let mut rest = d;
    (rest.subject, rest.cert, rest.chain, rest.uri, rest.dns) = (None, false, false, false, false);
    // `issuer`, `format` (Envoy's other XFCC encodings): not written by ringside.
    leftover(&rest, &format!("{at}.set_current_client_cert_details"))?;
    if sets {
        let asked = [
            ("by", true),
            ("hash", true),
            ("cert", d.cert),
            ("chain", d.chain),
            ("subject", d.subject.is_some_and(|b| b.value)),
            ("uri", d.uri),
            ("dns", d.dns),
        ];
        let details = asked
            .into_iter()
            .filter(|(_, on)| *on)
            .map(|(name, _)| string(name))
            .collect();
        t.insert("client_cert_details".into(), Value::Array(details));
    }
    Ok(())
}
