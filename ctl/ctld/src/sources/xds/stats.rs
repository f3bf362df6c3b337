//! What the xDS source counts, rendered into ctld's `/metrics` (`api/metrics.rs`):
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `ringside_ctld_xds_connected` | gauge | `node` |
//! | `ringside_ctld_xds_responses_total` | counter | `type` (`cds`, `eds`, `lds`, `rds`, `sds`), `outcome` (`ack`, `nack`) |
//! | `ringside_ctld_xds_translate_seconds_total` | counter | `type` |
//! | `ringside_ctld_xds_ignored_total` | counter | `what` (`http_filter:istio.stats`, `field:access_log`, ...) |
//! | `ringside_ctld_xds_stream_failures_total` | counter | `node` |

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Stats {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    connected: BTreeMap<String, bool>,
    responses: BTreeMap<(&'static str, &'static str), u64>,
    /// Seconds spent on the responses of each type: decode, translate, check, validate.
    translate: BTreeMap<&'static str, f64>,
    ignored: BTreeMap<String, u64>,
    failures: BTreeMap<String, u64>,
}

impl Stats {
    fn with(&self, f: impl FnOnce(&mut Inner)) {
        if let Ok(mut i) = self.inner.lock() {
            f(&mut i);
        }
    }

    pub fn connected(&self, node: &str, up: bool) {
        self.with(|i| {
            i.connected.insert(node.to_owned(), up);
        });
    }

    pub fn forget(&self, node: &str) {
        self.with(|i| {
            i.connected.remove(node);
            i.failures.remove(node);
        });
    }

    /// A response of type `kind` answered with `outcome` after `took` of ctld's work.
    pub fn response(&self, kind: &'static str, outcome: &'static str, took: Duration) {
        self.with(|i| {
            *i.responses.entry((kind, outcome)).or_insert(0) += 1;
            *i.translate.entry(kind).or_insert(0.0) += took.as_secs_f64();
        });
    }

    pub fn ignored(&self, what: &[String]) {
        self.with(|i| {
            for w in what {
                *i.ignored.entry(w.clone()).or_insert(0) += 1;
            }
        });
    }

    pub fn failure(&self, node: &str) {
        self.with(|i| *i.failures.entry(node.to_owned()).or_insert(0) += 1);
    }

    /// Appends the families to a Prometheus exposition. Node ids need no escaping; the
    /// ignored names are filter and field names (`"` and `\` are escaped anyway).
    pub fn render(&self, o: &mut String) {
        let Ok(i) = self.inner.lock() else {
            return;
        };
        let family = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            o,
            "ringside_ctld_xds_connected",
            "gauge",
            "1 while the node's ADS stream to the xDS server is open.",
        );
        for (node, up) in &i.connected {
            let _ = writeln!(
                o,
                "ringside_ctld_xds_connected{{node=\"{node}\"}} {}",
                u8::from(*up)
            );
        }
        family(
            o,
            "ringside_ctld_xds_responses_total",
            "counter",
            "xDS responses by type and by what ctld answered (ack, nack).",
        );
        for kind in ["cds", "eds", "lds", "rds", "sds"] {
            for outcome in ["ack", "nack"] {
                let n = i.responses.get(&(kind, outcome)).copied().unwrap_or(0);
                let _ = writeln!(o, "ringside_ctld_xds_responses_total{{type=\"{kind}\",outcome=\"{outcome}\"}} {n}");
            }
        }
        family(o, "ringside_ctld_xds_translate_seconds_total", "counter", "Seconds ctld spent on xDS responses by type: decoding, translating, checking and validating them.");
        for kind in ["cds", "eds", "lds", "rds", "sds"] {
            let s = i.translate.get(kind).copied().unwrap_or(0.0);
            let _ = writeln!(
                o,
                "ringside_ctld_xds_translate_seconds_total{{type=\"{kind}\"}} {s}"
            );
        }
        family(o, "ringside_ctld_xds_ignored_total", "counter", "Filters and fields of accepted xDS resources that ringside ignores (docs/xds.md), per occurrence.");
        for (what, n) in &i.ignored {
            let what = what.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(o, "ringside_ctld_xds_ignored_total{{what=\"{what}\"}} {n}");
        }
        family(o, "ringside_ctld_xds_stream_failures_total", "counter", "ADS streams that failed or could not be opened, per node (each followed by a backoff).");
        for (node, n) in &i.failures {
            let _ = writeln!(
                o,
                "ringside_ctld_xds_stream_failures_total{{node=\"{node}\"}} {n}"
            );
        }
    }
}
