//! The everyday edits — a cluster's endpoints, a route's weights — applied to a node's
//! current TOML text with `toml_edit`, so comments and layout survive. The result is validated
//! by the caller like any other configuration.

use ringside_wire::{EndpointOp, WeightSpec};
use toml_edit::{Array, DocumentMut, InlineTable, Item, TableLike, Value};

/// Edits `cluster`'s endpoints. See `docs/control-protocol.md` (`endpoints`).
pub fn endpoints(
    text: &str,
    op: EndpointOp,
    cluster: &str,
    addresses: &[String],
) -> Result<String, String> {
    let mut doc = parse(text)?;
    let mut found = false;
    let mut result = Ok(());
    for_each_table(&mut doc, "clusters", |t| {
        if found || name_of(t) != Some(cluster) {
            return;
        }
        found = true;
        result = edit_endpoints(t, op, cluster, addresses);
    });
    if !found {
        return Err(format!("no cluster named {cluster:?}"));
    }
    result?;
    Ok(doc.to_string())
}

fn edit_endpoints(
    t: &mut dyn TableLike,
    op: EndpointOp,
    cluster: &str,
    addresses: &[String],
) -> Result<(), String> {
    if t.get("endpoints").is_none() {
        t.insert("endpoints", Item::Value(Value::Array(Array::new())));
    }
    let Some(Item::Value(Value::Array(list))) = t.get_mut("endpoints") else {
        return Err(format!(
            "the endpoints of cluster {cluster:?} are not an inline array; edit the file instead"
        ));
    };
    match op {
        EndpointOp::Set => {
            let mut fresh = Array::new();
            for a in addresses {
                push(&mut fresh, a.as_str());
            }
            *list = fresh;
        }
        EndpointOp::Add => {
            for a in addresses {
                if list.iter().any(|v| endpoint_address(v) == Some(a)) {
                    return Err(format!("cluster {cluster:?} already has endpoint {a}"));
                }
                push(list, a.as_str());
            }
        }
        EndpointOp::Remove => {
            for a in addresses {
                let Some(i) = list.iter().position(|v| endpoint_address(v) == Some(a)) else {
                    return Err(format!("cluster {cluster:?} has no endpoint {a}"));
                };
                remove(list, i);
            }
        }
    }
    Ok(())
}

/// The address of an endpoint written as `"IP:port"` or `{ address = "IP:port", … }`.
fn endpoint_address(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s.value()),
        Value::InlineTable(t) => t.get("address").and_then(Value::as_str),
        _ => None,
    }
}

/// Sets weights on a route. See `docs/control-protocol.md` (`weights`).
pub fn weights(
    text: &str,
    route: &str,
    listener: Option<&str>,
    specs: &[WeightSpec],
) -> Result<String, String> {
    let mut doc = parse(text)?;
    let target = route_listener(&mut doc, route, listener)?;
    let mut result = Ok(());
    with_route(&mut doc, route, &target, |t| {
        result = edit_weights(t, route, specs)
    });
    result?;
    Ok(doc.to_string())
}

/// The listener of route `route` (named, or `<listener>/<index>` with `listener` given);
/// an error when there is none or the name is used on several listeners.
pub fn resolve_route(text: &str, route: &str, listener: Option<&str>) -> Result<String, String> {
    route_listener(&mut parse(text)?, route, listener)
}

/// The TOML text of a cluster's `endpoints` array, or a route's `weighted` array.
pub fn get_value(text: &str, field: Field<'_>) -> Result<String, String> {
    let mut doc = parse(text)?;
    let mut found = None;
    let key = field.key();
    field.visit(&mut doc, |t| {
        found = t.get(key).and_then(Item::as_value).map(|v| {
            let mut v = v.clone();
            v.decor_mut().clear();
            v.to_string()
        })
    })?;
    found.ok_or_else(|| format!("{} has no inline {key} list", field.describe()))
}

/// Sets a cluster's `endpoints` or a route's `weighted` (dropping its `cluster`) to `value`,
/// a TOML array.
pub fn set_value(text: &str, field: Field<'_>, value: &str) -> Result<String, String> {
    let mut v = value
        .parse::<Value>()
        .map_err(|e| format!("{}: not a TOML value: {e}", field.describe()))?;
    v.decor_mut().clear();
    let mut doc = parse(text)?;
    let key = field.key();
    let route = matches!(field, Field::Weighted { .. });
    let mut result = Ok(());
    field.visit(&mut doc, |t| {
        if route && t.contains_key("direct_response") {
            result = Err(format!(
                "{} answers with a direct_response",
                field.describe()
            ));
            return;
        }
        if route {
            t.remove("cluster");
        }
        t.insert(key, Item::Value(v.clone()));
    })?;
    result?;
    Ok(doc.to_string())
}

/// A list in a configuration that an operator override replaces whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    /// `clusters[name = cluster].endpoints`
    Endpoints { cluster: &'a str },
    /// `routes[listener, name = route].weighted`
    Weighted { listener: &'a str, route: &'a str },
}

impl Field<'_> {
    fn key(&self) -> &'static str {
        match self {
            Field::Endpoints { .. } => "endpoints",
            Field::Weighted { .. } => "weighted",
        }
    }

    fn describe(&self) -> String {
        match self {
            Field::Endpoints { cluster } => format!("cluster {cluster:?}"),
            Field::Weighted { listener, route } => format!("route {listener}/{route}"),
        }
    }

    /// Calls `f` on the one table the field lives in; an error when it is not there.
    fn visit(
        &self,
        doc: &mut DocumentMut,
        mut f: impl FnMut(&mut dyn TableLike),
    ) -> Result<(), String> {
        let mut found = false;
        match *self {
            Field::Endpoints { cluster } => for_each_table(doc, "clusters", |t| {
                if !found && name_of(t) == Some(cluster) {
                    found = true;
                    f(t);
                }
            }),
            Field::Weighted { listener, route } => with_route(doc, route, listener, |t| {
                found = true;
                f(t);
            }),
        }
        if found {
            Ok(())
        } else {
            Err(format!("no {}", self.describe()))
        }
    }
}

/// Calls `f` on route `route` of listener `target`.
fn with_route(
    doc: &mut DocumentMut,
    route: &str,
    target: &str,
    mut f: impl FnMut(&mut dyn TableLike),
) {
    let mut seen: Vec<(String, usize)> = Vec::new();
    for_each_table(doc, "routes", |t| {
        let l = t
            .get("listener")
            .and_then(|i| i.as_str())
            .unwrap_or("")
            .to_owned();
        let index = next_index(&mut seen, &l);
        if l == target && route_matches(t, &l, index, route, Some(target)) {
            f(t);
        }
    });
}

fn route_listener(
    doc: &mut DocumentMut,
    route: &str,
    listener: Option<&str>,
) -> Result<String, String> {
    // First pass: which listeners have a route of that name? An unnamed route is named
    // `<listener>/<index>` (its position among its listener's routes), which the CLI passes
    // as listener and index.
    let mut listeners: Vec<String> = Vec::new();
    let mut seen: Vec<(String, usize)> = Vec::new();
    for_each_table(doc, "routes", |t| {
        let l = t.get("listener").and_then(|i| i.as_str()).unwrap_or("");
        let index = next_index(&mut seen, l);
        if route_matches(t, l, index, route, listener) {
            listeners.push(l.to_owned());
        }
    });
    match listeners.len() {
        0 => {
            return Err(match listener {
                Some(l) => format!("no route named {route:?} on listener {l:?}"),
                None => format!("no route named {route:?}"),
            })
        }
        1 => {}
        _ => {
            return Err(format!(
                "route name {route:?} is used on listeners {}: write LISTENER/{route}",
                listeners.join(", ")
            ))
        }
    }
    Ok(listeners.swap_remove(0))
}

/// The position of the next route of listener `l` among that listener's routes.
fn next_index(seen: &mut Vec<(String, usize)>, l: &str) -> usize {
    match seen.iter_mut().find(|(name, _)| name == l) {
        Some((_, n)) => {
            *n += 1;
            *n
        }
        None => {
            seen.push((l.to_owned(), 0));
            0
        }
    }
}

/// Whether the route table `t` (the `index`th route of listener `l`) is the route `route`:
/// by its name, or, unnamed, by the index part of its default name `<listener>/<index>`.
fn route_matches(
    t: &dyn TableLike,
    l: &str,
    index: usize,
    route: &str,
    listener: Option<&str>,
) -> bool {
    if listener.is_some_and(|want| want != l) {
        return false;
    }
    match name_of(t) {
        Some(name) => name == route,
        None => listener.is_some() && route == index.to_string(),
    }
}

fn edit_weights(t: &mut dyn TableLike, route: &str, specs: &[WeightSpec]) -> Result<(), String> {
    if t.contains_key("direct_response") {
        return Err(format!(
            "route {route:?} answers with a direct_response: it has no clusters to weigh"
        ));
    }
    if let Some(single) = t.remove("cluster") {
        let name = single
            .as_str()
            .ok_or_else(|| format!("route {route:?}: cluster is not a string"))?
            .to_owned();
        let mut list = Array::new();
        push(&mut list, weight_entry(&name, 1));
        t.insert("weighted", Item::Value(Value::Array(list)));
    }
    let Some(Item::Value(Value::Array(list))) = t.get_mut("weighted") else {
        return Err(format!(
            "route {route:?} has no inline weighted list; edit the file instead"
        ));
    };
    for spec in specs {
        let existing = list.iter_mut().find_map(|v| match v {
            Value::InlineTable(e)
                if e.get("cluster").and_then(Value::as_str) == Some(spec.cluster.as_str()) =>
            {
                Some(e)
            }
            _ => None,
        });
        match existing {
            Some(e) => {
                e.insert("weight", Value::from(i64::from(spec.weight)));
            }
            None => push(list, weight_entry(&spec.cluster, spec.weight)),
        }
    }
    Ok(())
}

/// Appends `v` in the style of the list: `[ "a", "b" ]` + c → `[ "a", "b", "c" ]`.
fn push(list: &mut Array, v: impl Into<Value>) {
    let mut v = v.into();
    if let Some(last) = list.iter_mut().last() {
        let suffix = last.decor().suffix().cloned();
        last.decor_mut().set_suffix("");
        v.decor_mut().set_prefix(" ");
        if let Some(s) = suffix {
            v.decor_mut().set_suffix(s);
        }
    }
    list.push_formatted(v);
}

/// Removes element `i`, keeping the list's spacing at either end.
fn remove(list: &mut Array, i: usize) {
    let len = list.len();
    let removed = list.remove(i);
    if len > 1 && i == 0 {
        if let (Some(p), Some(first)) = (removed.decor().prefix().cloned(), list.get_mut(0)) {
            first.decor_mut().set_prefix(p);
        }
    }
    if len > 1 && i + 1 == len {
        if let (Some(s), Some(last)) = (removed.decor().suffix().cloned(), list.iter_mut().last()) {
            last.decor_mut().set_suffix(s);
        }
    }
}

fn weight_entry(cluster: &str, weight: u32) -> Value {
    let mut e = InlineTable::new();
    e.insert("cluster", Value::from(cluster));
    e.insert("weight", Value::from(i64::from(weight)));
    Value::InlineTable(e)
}

fn parse(text: &str) -> Result<DocumentMut, String> {
    text.parse::<DocumentMut>()
        .map_err(|e| format!("current configuration is not valid TOML: {e}"))
}

fn name_of(t: &dyn TableLike) -> Option<&str> {
    t.get("name").and_then(|i| i.as_str())
}

/// Calls `f` on every table of the top-level array `key` (`[[key]]` or `key = [{…}]`).
fn for_each_table(doc: &mut DocumentMut, key: &str, mut f: impl FnMut(&mut dyn TableLike)) {
    match doc.get_mut(key) {
        Some(Item::ArrayOfTables(aot)) => {
            for t in aot.iter_mut() {
                f(t);
            }
        }
        Some(Item::Value(Value::Array(arr))) => {
            for v in arr.iter_mut() {
                if let Value::InlineTable(t) = v {
                    f(t);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
