//! Node labels (`[proxy] labels`, `ringside run --node-label`) and label selectors
//! (`ringsidectl --selector app=web,zone=a`): one set of rules for the proxy, ctld and the
//! CLI. A key is 1 to 63 characters among `A-Z a-z 0-9 - _ . /`; a value is 0 to 63
//! characters among `A-Z a-z 0-9 - _ .` (Kubernetes' label syntax, loosely).

use std::collections::BTreeMap;

/// Labels by key, sorted.
pub type Labels = BTreeMap<String, String>;

/// Most labels one node may carry.
pub const MAX_LABELS: usize = 64;
const MAX_LEN: usize = 63;

/// Checks one label; the message quotes the offending part.
pub fn check_label(key: &str, value: &str) -> Result<(), String> {
    let key_ok = !key.is_empty()
        && key.len() <= MAX_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
    if !key_ok {
        return Err(format!(
            "invalid label key {key:?}: use 1 to {MAX_LEN} characters among A-Z a-z 0-9 - _ . /"
        ));
    }
    let value_ok = value.len() <= MAX_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !value_ok {
        return Err(format!(
            "invalid value {value:?} of label {key:?}: use 0 to {MAX_LEN} characters among A-Z a-z 0-9 - _ ."
        ));
    }
    Ok(())
}

/// Parses one `KEY=VALUE`.
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected KEY=VALUE"))?;
    check_label(k, v)?;
    Ok((k.to_owned(), v.to_owned()))
}

/// Parses a selector, `KEY=VALUE[,KEY=VALUE…]`: a node matches when it carries every pair.
pub fn parse_selector(s: &str) -> Result<Labels, String> {
    let mut out = Labels::new();
    for part in s.split(',') {
        let (k, v) = parse_label(part.trim())?;
        if out.insert(k.clone(), v).is_some() {
            return Err(format!("selector {s:?}: key {k:?} given twice"));
        }
    }
    Ok(out)
}

/// Whether `labels` carry every pair of `selector` (an empty selector matches everything).
pub fn matches(selector: &Labels, labels: &Labels) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// A selector as the CLI writes it: `app=web,zone=a`.
pub fn format_labels(labels: &Labels) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_and_match() {
        let s = parse_selector("app=web, zone=a").unwrap();
        assert_eq!(format_labels(&s), "app=web,zone=a");
        let mut node = Labels::new();
        node.insert("app".into(), "web".into());
        assert!(!matches(&s, &node));
        node.insert("zone".into(), "a".into());
        node.insert("extra".into(), "x".into());
        assert!(matches(&s, &node));
        assert!(matches(&Labels::new(), &Labels::new()));
        assert!(parse_selector("app=web,app=api").is_err());
        assert!(parse_selector("app").is_err());
        assert!(parse_selector("").is_err());
    }

    #[test]
    fn label_syntax() {
        assert!(check_label("topology.kubernetes.io/zone", "eu-1a").is_ok());
        assert!(check_label("app", "").is_ok());
        assert!(check_label("", "x").is_err());
        assert!(check_label("a b", "x").is_err());
        assert!(check_label("app", "a/b").is_err());
        assert!(check_label(&"k".repeat(64), "x").is_err());
        assert_eq!(
            parse_label("a=b=c").unwrap_err(),
            "invalid value \"b=c\" of label \"a\": use 0 to 63 characters among A-Z a-z 0-9 - _ ."
        );
    }
}
