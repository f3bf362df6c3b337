//! Reading: TOML text → raw types, one element at a time.
//!
//! The text is parsed into a `toml::Table` first (a syntax error is the only error that
//! stops everything), then `[proxy]`, `[mesh]` and each element of `[[listeners]]`,
//! `[[routes]]`, `[[authz]]`, `[[clusters]]`, `[[consumers]]`, `[[jwt_providers]]`, `[[redis]]` and `[dns]` is deserialized on its own through `serde_path_to_error`, so that a typo in
//! one element neither hides the mistakes in the others nor loses its path.

use serde::de::DeserializeOwned;
use toml::Value;

use crate::error::ConfigError;
use crate::raw::{
    FileAuthz, FileCluster, FileConsumer, FileDns, FileJwtProvider, FileListener, FileMesh,
    FileProxy, FileRedis, FileRoute,
};

/// The top-level keys, in the order errors are reported.
pub(crate) const SECTIONS: [&str; 10] = [
    "proxy",
    "mesh",
    "listeners",
    "routes",
    "authz",
    "clusters",
    "consumers",
    "jwt_providers",
    "redis",
    "dns",
];

/// One element of an array of tables.
#[derive(Debug)]
pub(crate) enum Slot<T> {
    Ok(T),
    /// Did not deserialize (its error is already recorded). Its `name`, when it had a string
    /// one, is kept so that references to it are not reported as unknown as well.
    Broken {
        name: Option<String>,
    },
}

/// The file as raw types, element by element, indices as in the file.
#[derive(Debug, Default)]
pub(crate) struct RawFile {
    pub proxy: FileProxy,
    /// `None` when the file has no `[mesh]` table.
    pub mesh: Option<Slot<FileMesh>>,
    pub listeners: Vec<Slot<FileListener>>,
    pub routes: Vec<Slot<FileRoute>>,
    pub authz: Vec<Slot<FileAuthz>>,
    pub clusters: Vec<Slot<FileCluster>>,
    pub consumers: Vec<Slot<FileConsumer>>,
    pub jwt_providers: Vec<Slot<FileJwtProvider>>,
    pub redis: Vec<Slot<FileRedis>>,
    pub dns: FileDns,
}

/// Reads `text`, appending every structural error (unknown key, wrong type, missing field) to
/// `errors`. `None` only on a TOML syntax error, which is then the one error.
pub(crate) fn read(text: &str, errors: &mut Vec<ConfigError>) -> Option<RawFile> {
    let table = match text.parse::<toml::Table>() {
        Ok(table) => table,
        Err(e) => {
            errors.push(syntax_error(text, &e));
            return None;
        }
    };
    let mut raw = RawFile::default();
    for (key, value) in table {
        match key.as_str() {
            "proxy" => {
                if let Some(proxy) = element(value, "proxy", errors) {
                    raw.proxy = proxy;
                }
            }
            "mesh" => {
                raw.mesh = Some(match element(value, "mesh", errors) {
                    Some(mesh) => Slot::Ok(mesh),
                    None => Slot::Broken { name: None },
                });
            }
            "listeners" => raw.listeners = elements(value, "listeners", errors),
            "routes" => raw.routes = elements(value, "routes", errors),
            "authz" => raw.authz = elements(value, "authz", errors),
            "clusters" => raw.clusters = elements(value, "clusters", errors),
            "consumers" => raw.consumers = elements(value, "consumers", errors),
            "jwt_providers" => raw.jwt_providers = elements(value, "jwt_providers", errors),
            "redis" => raw.redis = elements(value, "redis", errors),
            "dns" => {
                if let Some(dns) = element(value, "dns", errors) {
                    raw.dns = dns;
                }
            }
            _ => errors.push(ConfigError {
                message: format!(
                    "unknown field \"{key}\", expected one of \"proxy\", \"mesh\", \"listeners\", \"routes\", \"authz\", \"clusters\", \"consumers\", \"jwt_providers\", \"redis\", \"dns\""
                ),
                path: key,
            }),
        }
    }
    Some(raw)
}

/// Deserializes each element of an array of tables, keeping file indices.
fn elements<T: DeserializeOwned>(
    value: Value,
    key: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<Slot<T>> {
    let items = match value {
        Value::Array(items) => items,
        Value::Table(_) => {
            errors.push(ConfigError {
                path: key.to_owned(),
                message: format!("expected an array of tables: write [[{key}]], not [{key}]"),
            });
            return Vec::new();
        }
        other => {
            errors.push(ConfigError {
                path: key.to_owned(),
                message: format!(
                    "invalid type: {}, expected an array of tables ([[{key}]])",
                    other.type_str()
                ),
            });
            return Vec::new();
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let name = item.get("name").and_then(Value::as_str).map(str::to_owned);
            match element(item, &format!("{key}[{i}]"), errors) {
                Some(v) => Slot::Ok(v),
                None => Slot::Broken { name },
            }
        })
        .collect()
}

/// Deserializes one value, turning a failure into an error whose path is `base` followed by
/// the path inside the value.
fn element<T: DeserializeOwned>(
    value: Value,
    base: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(serde_error(base, &e));
            None
        }
    }
}

fn serde_error(base: &str, e: &serde_path_to_error::Error<toml::de::Error>) -> ConfigError {
    use serde_path_to_error::Segment;

    let mut path = base.to_owned();
    for segment in e.path().iter() {
        match segment {
            Segment::Seq { index } => path.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                path.push('.');
                path.push_str(&key_segment(key));
            }
            Segment::Enum { variant } => {
                path.push('.');
                path.push_str(variant);
            }
            Segment::Unknown => path.push_str(".?"),
        }
    }
    let mut message = humanize(e.inner().message().trim());
    if crate::redact::is_secret_path(&path) {
        message = crate::redact::redact_quoted(&message);
    }
    ConfigError { path, message }
}

/// Rewrites serde's wording for users: backtick-quoted values become double-quoted strings or
/// bare numbers, and Rust type names become what a TOML author writes.
fn humanize(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut parts = message.split('`');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    // Odd parts were inside backticks.
    for (i, part) in parts.enumerate() {
        let quoted = i % 2 == 0;
        let bare = part.parse::<f64>().is_ok() || part == "true" || part == "false";
        if quoted && !bare {
            out.push('"');
            out.push_str(part);
            out.push('"');
        } else {
            out.push_str(part);
        }
    }
    // Every raw struct is a TOML table.
    if let Some(at) = out.find("expected struct File") {
        out.truncate(at);
        out.push_str("expected a table");
        return out;
    }
    for (rust, toml) in [
        ("expected u64", "expected a non-negative integer"),
        ("expected u32", "expected an integer from 0 to 4294967295"),
        ("expected u16", "expected an integer from 0 to 65535"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
    ] {
        if let Some(rest) = out.strip_suffix(rust) {
            return format!("{rest}{toml}");
        }
    }
    out
}

/// A map key as it appears in a path: bare when TOML would accept it bare, quoted otherwise
/// (`match.headers."x canary"`).
pub(crate) fn key_segment(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

/// A syntax error as one error: `TOML syntax error at line 3, column 7: ...`.
fn syntax_error(text: &str, e: &toml::de::Error) -> ConfigError {
    let message = e.message().trim().replace('\n', "; ").replace('`', "\"");
    let message = match e.span() {
        Some(span) => {
            let (line, column) = line_column(text, span.start);
            format!("TOML syntax error at line {line}, column {column}: {message}")
        }
        None => format!("TOML syntax error: {message}"),
    };
    ConfigError {
        path: String::new(),
        message,
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(text: &str) -> Vec<String> {
        let mut errors = Vec::new();
        read(text, &mut errors);
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn line_column_counts_from_one() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("ab\ncd", 99), (2, 3));
    }

    #[test]
    fn syntax_error_is_one_error_with_line_and_column() {
        let errors = errors_of("[proxy]\nrole = \"sidecar\"\nworkers = = 2\n");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("TOML syntax error at line 3, column "),
            "{errors:?}"
        );
    }

    #[test]
    fn a_table_instead_of_an_array_of_tables_is_explained() {
        let errors = errors_of("[listeners]\nname = \"a\"\n");
        assert_eq!(
            errors,
            ["listeners: expected an array of tables: write [[listeners]], not [listeners]"]
        );
    }

    #[test]
    fn each_element_is_read_on_its_own() {
        let text = r#"
[[clusters]]
name = "a"
lb = "fastest"

[[clusters]]
name = "b"

[[clusters]]
nme = "c"
"#;
        let mut errors = Vec::new();
        let raw = read(text, &mut errors).expect("no syntax error");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].path, "clusters[0].lb");
        assert!(matches!(&raw.clusters[0], Slot::Broken { name: Some(n) } if n == "a"));
        assert!(matches!(&raw.clusters[1], Slot::Ok(c) if c.name == "b"));
        assert!(matches!(&raw.clusters[2], Slot::Broken { name: None }));
    }

    #[test]
    fn serde_wording_is_rewritten_for_toml_authors() {
        assert_eq!(
            humanize("invalid value: integer `-1`, expected u64"),
            "invalid value: integer -1, expected a non-negative integer"
        );
        assert_eq!(
            humanize("unknown variant `x`, expected `sidecar` or `gateway`"),
            "unknown variant \"x\", expected \"sidecar\" or \"gateway\""
        );
        assert_eq!(
            humanize("invalid type: integer `3`, expected struct FileProxy"),
            "invalid type: integer 3, expected a table"
        );
    }

    #[test]
    fn key_segments_are_quoted_only_when_needed() {
        assert_eq!(key_segment("x-canary"), "x-canary");
        assert_eq!(key_segment("x canary"), "\"x canary\"");
        assert_eq!(key_segment(""), "\"\"");
    }
}
