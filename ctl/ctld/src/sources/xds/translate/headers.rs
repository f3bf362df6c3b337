//! Header edits (`request_headers_to_add`/`_remove`, `response_headers_to_add`/`_remove`)
//! → ringside's keys of the same names. `append_action` APPEND_IF_EXISTS_OR_ADD,
//! ADD_IF_ABSENT and OVERWRITE_IF_EXISTS_OR_ADD → `append`, `add_if_absent`, `overwrite` (the
//! deprecated `append = false` → `overwrite`). The values' `%REQ(name)%`,
//! `%DOWNSTREAM_REMOTE_ADDRESS%` and `%%` mean the same; ringside's validation refuses other
//! substitutions, naming them.

use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::core::v3::HeaderValueOption;
use toml::Value;

use super::{string, Table};
use crate::sources::xds::nack::{leftover, unsupported, Res};

/// The four lists of one level (route configuration, route).
pub struct Edits {
    pub request_add: Vec<HeaderValueOption>,
    pub request_remove: Vec<String>,
    pub response_add: Vec<HeaderValueOption>,
    pub response_remove: Vec<String>,
}

/// Writes `e` into `t` under ringside's keys; `at` names the level.
pub fn edits(e: Edits, at: &str, t: &mut Table) -> Res<()> {
    let adds = [
        ("request_headers_to_add", e.request_add),
        ("response_headers_to_add", e.response_add),
    ];
    for (key, list) in adds {
        if list.is_empty() {
            continue;
        }
        let mut out = Vec::new();
        for (i, o) in list.into_iter().enumerate() {
            out.push(add(o, &format!("{at}.{key}[{i}]"))?);
        }
        t.insert(key.into(), Value::Array(out));
    }
    let removes = [
        ("request_headers_to_remove", e.request_remove),
        ("response_headers_to_remove", e.response_remove),
    ];
    for (key, list) in removes {
        if !list.is_empty() {
            t.insert(
                key.into(),
                Value::Array(list.into_iter().map(string).collect()),
            );
        }
    }
    Ok(())
}

fn add(mut o: HeaderValueOption, at: &str) -> Res<Value> {
    let mut h = o
        .header
        .take()
        .ok_or_else(|| format!("{at}.header: required"))?;
    // `append` is deprecated for append_action; servers still send it.
    #[allow(deprecated)]
    let append = o.append.take().map(|b| b.value);
    let action = match append {
        Some(true) => "append",
        Some(false) => "overwrite",
        None => match HeaderAppendAction::try_from(o.append_action) {
            Ok(HeaderAppendAction::AppendIfExistsOrAdd) => "append",
            Ok(HeaderAppendAction::AddIfAbsent) => "add_if_absent",
            Ok(HeaderAppendAction::OverwriteIfExistsOrAdd) => "overwrite",
            _ => {
                return Err(unsupported(
                    &format!("{at}.append_action"),
                    "OVERWRITE_IF_EXISTS",
                ))
            }
        },
    };
    o.append_action = 0;
    let value = if h.raw_value.is_empty() {
        std::mem::take(&mut h.value)
    } else {
        String::from_utf8(std::mem::take(&mut h.raw_value))
            .map_err(|_| format!("{at}.header.raw_value: not UTF-8"))?
    };
    let mut t = Table::new();
    t.insert("name".into(), string(std::mem::take(&mut h.key)));
    t.insert("value".into(), string(value));
    t.insert("action".into(), string(action));
    leftover(&h, &format!("{at}.header"))?;
    leftover(&o, at)?;
    Ok(Value::Table(t))
}
