//! What ringside cannot honour is refused by field, never dropped: each translator takes
//! the fields it honours out of a message, and [`leftover`] fails naming the first field left
//! set. The NACK's `error_detail` is that message (`route_config "r1":
//! virtual_hosts[0].routes[2].route.priority: not supported by ringside`).

use std::fmt::Debug;

/// A translation result; the error is the whole `error_detail` line.
pub type Res<T> = Result<T, String>;

/// Fails naming the first field of `rest` that is not at its default. `rest` is what remains
/// of a message once the translator took out the fields it honours or knowingly ignores.
pub fn leftover<M: Default + PartialEq + Debug>(rest: &M, at: &str) -> Res<()> {
    if *rest == M::default() {
        return Ok(());
    }
    let field = first_set_field(rest).unwrap_or_else(|| "(a field)".into());
    Err(format!("{at}.{field}: not supported by ringside"))
}

/// The name of the first top-level field whose value differs from the default, read from the
/// messages' `{:#?}` forms (prost derives `Debug` with every field, in declaration order).
fn first_set_field<M: Default + Debug>(rest: &M) -> Option<String> {
    let set = top_fields(&format!("{rest:#?}"));
    let unset = top_fields(&format!("{:#?}", M::default()));
    set.into_iter()
        .find(|f| !unset.contains(f))
        .map(|(name, _)| name.trim_start_matches("r#").to_owned())
}

/// `(field, text)` of each top-level field of a pretty-printed struct.
fn top_fields(pretty: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in pretty.lines().skip(1) {
        let top = line.strip_prefix("    ").filter(|l| !l.starts_with(' '));
        match top.and_then(|l| l.split_once(": ")) {
            Some((name, value)) if is_ident(name) => out.push((name.to_owned(), value.to_owned())),
            _ => {
                if let Some(last) = out.last_mut() {
                    last.1.push('\n');
                    last.1.push_str(line);
                }
            }
        }
    }
    out
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'#')
}

/// The error for a value ringside has no equivalent of.
pub fn unsupported(at: &str, what: impl std::fmt::Display) -> String {
    format!("{at}: {what} is not supported by ringside")
}

#[cfg(test)]
mod tests {
    use super::*;
    use envoy_types::pb::envoy::config::route::v3::route_action::HashPolicy;
    use envoy_types::pb::envoy::config::route::v3::RouteAction;

    #[test]
    fn names_the_first_field_left_set() {
        let mut rest = RouteAction::default();
        assert_eq!(leftover(&rest, "x"), Ok(()));
        rest.hash_policy.push(HashPolicy::default());
        assert_eq!(
            leftover(&rest, "route_config \"r1\": virtual_hosts[0].routes[2].route"),
            Err("route_config \"r1\": virtual_hosts[0].routes[2].route.hash_policy: not supported by ringside".into())
        );
        let mut rest = RouteAction {
            priority: 1,
            ..RouteAction::default()
        };
        rest.prefix_rewrite = "/a".into();
        let e = leftover(&rest, "r").unwrap_err();
        assert_eq!(e, "r.prefix_rewrite: not supported by ringside");
    }
}
